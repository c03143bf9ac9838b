import EventStore
import Foundation
import QMPTestSupport
import Testing

/// What a VM or peer names itself or puts in an event reaches people only escaped.
@Suite(.serialized)
struct HostileTextTests {
    /// A window title (OSC), BEL, CSI as a C1 control, and a line break: as QEMU sends them in JSON.
    static let hostileName = #"\u001b]0;pwned\u0007evil\u009b31m\nline"#
    static let decodedName = "\u{1b}]0;pwned\u{07}evil\u{9b}31m\nline"

    /// The control characters a terminal acts on: C0 but for the line break that ends output lines,
    /// DEL, and C1.
    static func controls(in text: String) -> [Unicode.Scalar] {
        text.unicodeScalars.filter { ($0.value < 0x20 && $0 != "\n") || (0x7F...0x9F).contains($0.value) }
    }

    @Test func namesAndFieldsFromAVMAreEscapedForTerminalsAndKeptAsDataInExports() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // Given a VM with a hostile name and a SHUTDOWN whose reason and an unknown event's name carry
        // escape sequences, recorded by the binary with text logs
        let server = try await FakeQMPServer.start(
            at: directory.file("vm.qmp"),
            behavior: .qemu(
                name: Self.hostileName,
                events: [
                    FakeQMPBehavior.event("SHUTDOWN", data: #"{"guest": true, "reason": "\u001b[2J\u009b2J"}"#),
                    FakeQMPBehavior.event(#"X_\u001b[31mRED"#),
                ]
            )
        )
        defer { Task { await server.stop() } }
        let database = directory.file("events.sqlite")
        let (recordCode, log) = try await QmplogBinaryTests.run(
            ["record", "--once", "--db", database, server.path],
            in: directory
        )
        #expect(recordCode == 0, "\(log)")
        #expect(log.contains(#"machine.name=\e]0;pwned\u{7}evil\u{9b}31m\nline"#), "\(log)")

        // When people read it: tables, logs, JSON and errors
        let readers = [
            ["vms"], ["report", "shutdowns", "--by", "vm"], ["report", "summary"], ["report", "states"],
            ["vms", "--format", "json"], ["report", "shutdowns", "--format", "json"],
            ["report", "summary", "--vm", "nope"],
        ]
        for arguments in readers {
            let (_, output) = try await QmplogBinaryTests.run(arguments + ["--db", database], in: directory)
            // Then no control character reaches the terminal
            #expect(Self.controls(in: output).isEmpty, "\(arguments): \(output.debugDescription)")
        }
        let (_, table) = try await QmplogBinaryTests.run(["vms", "--wide", "--db", database], in: directory)
        #expect(table.contains(#"\e]0;pwned\u{7}evil\u{9b}31m\nline"#), "\(table)")
        let (_, json) = try await QmplogBinaryTests.run(["vms", "--db", database, "--format", "json"], in: directory)
        #expect(json.contains(#"\u001b]0;pwned\u0007evil\u009b31m\nline"#), "\(json)")
        let (_, error) = try await QmplogBinaryTests.run(
            ["report", "summary", "--db", database, "--vm", "nope"],
            in: directory
        )
        #expect(error.contains(#"known VMs: \e]0;pwned"#), "\(error)")

        // And exports keep the data exactly
        let (_, csv) = try await QmplogBinaryTests.run(["export", "--db", database], in: directory)
        #expect(csv.contains(Self.decodedName))
        #expect(csv.contains("\u{1b}[2J\u{9b}2J"))
        let (_, ndjson) = try await QmplogBinaryTests.run(
            ["export", "--db", database, "--format", "ndjson"],
            in: directory
        )
        #expect(ndjson.contains("X_\\u001b[31mRED"))
    }
}
