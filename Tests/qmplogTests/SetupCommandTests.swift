import EventStore
import Foundation
import QMPTestSupport
import Testing

@testable import qmplog

/// `qmplog setup libvirt|proxmox`: the second monitor's text, and a real libvirt domain using it.
@Suite(.serialized)
struct SetupCommandTests {
    @Test(arguments: [
        ((7, 2), "socket,id=qmplog,path=/run/qmplog/qmp.sock,reconnect=5"),
        ((9, 1), "socket,id=qmplog,path=/run/qmplog/qmp.sock,reconnect=5"),
        ((9, 2), "socket,id=qmplog,path=/run/qmplog/qmp.sock,reconnect-ms=5000"),
        ((10, 2), "socket,id=qmplog,path=/run/qmplog/qmp.sock,reconnect-ms=5000"),
    ])
    func theReconnectOptionFollowsTheQEMUVersion(version: (Int, Int), chardev: String) {
        #expect(SecondMonitor(socket: "/run/qmplog/qmp.sock", qemuVersion: version).chardev == chardev)
    }

    @Test func aCommaInTheSocketPathIsDoubledForQEMU() {
        #expect(SecondMonitor(socket: "/run/a,b.sock", qemuVersion: (9, 2)).chardev.contains("path=/run/a,,b.sock,"))
    }

    @Test(arguments: [
        "relative.sock", "/run/with space.sock", "/run/quote'.sock", "/run/x<y.sock", "/run/a,b.sock", "/run/*.sock",
        "/run/{a,b}.sock", "/run/#x.sock", "/run/(x).sock", "/run/!x.sock", "/run/../etc/x.sock", "/tmp",
        "/run/x.sock\nrm -rf /", "/run/qmplog/",
    ])
    func aSocketPathThatCannotBeWrittenSafelyIsRefused(socket: String) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (code, output) = try await QmplogBinaryTests.run(
            ["setup", "libvirt", "web1", "--socket", socket, "--qemu-version", "7.2"],
            in: directory
        )
        #expect(code == 64)
        #expect(output.contains("--socket"), "\(output)")
    }

    /// A domain name is printed in `#` comments and shell lines: a line break would step out of them.
    @Test func aDomainOrUserWithALineBreakIsRefusedAndOddNamesAreQuoted() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        for arguments in [["web\nrm -rf /"], ["web1", "--qemu-user", "x\ny"]] {
            let (code, output) = try await QmplogBinaryTests.run(
                ["setup", "libvirt"] + arguments + ["--qemu-version", "7.2"],
                in: directory
            )
            #expect(code == 64, "\(arguments): \(output)")
        }
        let (code, output) = try await QmplogBinaryTests.run(
            ["setup", "libvirt", "web $(id)", "--qemu-version", "7.2"],
            in: directory
        )
        #expect(code == 0)
        #expect(output.contains("virsh edit 'web $(id)'"), "\(output)")
        let uncommented = output.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.hasPrefix("  <") }
        #expect(
            uncommented.allSatisfy { $0.hasPrefix("<qemu:commandline>") || $0.hasPrefix("</qemu:") },
            "\(uncommented)"
        )
    }

    @Test func qemuVersionsAreReadFromQEMUsOwnWords() {
        #expect(SecondMonitor.parseVersion("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)")! == (7, 2))
        #expect(SecondMonitor.parseVersion("10.2")! == (10, 2))
        #expect(SecondMonitor.parseVersion("ten") == nil)
    }

    @Test func proxmoxGetsAnArgsLine() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (code, output) = try await QmplogBinaryTests.run(
            ["setup", "proxmox", "101", "--qemu-version", "9.2"],
            in: directory
        )
        #expect(code == 0)
        let lines = output.split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(
            lines == [
                "args: -chardev socket,id=qmplog,path=/run/qmplog/qmp.sock,reconnect-ms=5000 -mon chardev=qmplog,mode=control"
            ]
        )
        #expect(output.contains("/etc/pve/qemu-server/101.conf"))
    }

    /// The whole path: the XML `setup libvirt` prints validates, and a real domain given it connects
    /// to `record --listen` as libvirt's QEMU user and is recorded under its name.
    @Test(.enabled(if: LibvirtDaemon.shouldRun, "libvirt is not installed, or not root"))
    func aLibvirtDomainWithTheSecondMonitorIsRecordedThroughTheListener() async throws {
        let daemon = try await LibvirtDaemon.shared()
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        chmod(directory.path, 0o755)  // libvirt-qemu must reach the socket
        let socket = directory.file("qmp.sock")
        let database = directory.file("events.sqlite")

        // Given the element `setup libvirt` prints
        let (code, output) = try await QmplogBinaryTests.run(
            ["setup", "libvirt", "web1", "--socket", socket],
            in: directory
        )
        #expect(code == 0, "\(output)")
        let start = try #require(output.range(of: "<qemu:commandline>"))
        let end = try #require(output.range(of: "</qemu:commandline>"))
        let element = String(output[start.lowerBound..<end.upperBound])
        let recordLine = try #require(output.split(separator: "\n").first { $0.contains("qmplog record --listen") })
        #expect(recordLine.hasSuffix("--listen-group kvm --listen-allow-uid libvirt-qemu"), "\(recordLine)")

        // and a recorder listening as it says
        let recorder = try ChildProcess(
            QmplogBinaryTests.binary,
            arguments: [
                "record", "--db", database, "--listen", socket, "--listen-group", "kvm", "--listen-allow-uid",
                "libvirt-qemu",
            ],
            outputPath: directory.file("record.log")
        )
        defer { recorder.kill9() }
        try await QmplogBinaryTests.waitUntil { FileManager.default.fileExists(atPath: socket) }

        // When a domain is given the element: its XML is valid libvirt domain XML
        let domain = try LibvirtTestDomain(daemon: daemon, bootSector: .idle, extraXML: element, start: false)
        defer { domain.remove() }
        _ = try LibvirtDaemon.run("/usr/bin/virt-xml-validate", [domain.xmlPath, "domain"])
        try domain.start()

        // Then its QEMU, running as libvirt-qemu, connects and is recorded under the domain's name
        try await QmplogBinaryTests.waitForSession(database: database)
        try domain.virsh("suspend")
        try domain.virsh("destroy")
        let store = try EventDatabase.openForReading(path: database)
        try await QmplogBinaryTests.waitUntil {
            try await store.allSessions().first?.endedAt != nil
        }
        let machine = try #require(try await store.allMachines().first)
        #expect(machine.name == domain.name)
        #expect(machine.uuid == domain.uuid)
        let session = try #require(try await store.allSessions().first)
        #expect(session.peer?.hasSuffix("uid 64055") == true, "\(session.peer ?? "nil")")
        #expect(session.endReason == "eof")
        // QEMU connects before libvirt resumes it: the run's first RESUME is seen
        #expect(try await store.allEvents().map(\.name) == ["RESUME", "STOP", "SHUTDOWN"])
        // and libvirt marked the domain as the output said
        let log = (try? String(contentsOfFile: "/var/log/libvirt/qemu/\(domain.name).log", encoding: .utf8)) ?? ""
        #expect(log.contains("tainted: custom-argv"), "\(log)")
        #expect(output.contains("tainted (custom-argv)"))
        recorder.send(signal: SIGTERM)
        #expect(try await recorder.waitForExit() == 0)
    }
}
