import EventStore
import Foundation
import QMPTestSupport
import Reports
import Testing

@testable import Collector

/// `qmplog import`: parsers on transcripts captured from a real libvirtd (fixtures/libvirt, made by
/// its capture.sh), and the import into a real database file.
struct HistoryImportTests {
    @Test func libvirtsLogTellsStartSignalSenderAndStopReason() throws {
        let parsed = LibvirtLogParser(text: try HistoryImporter.read(Fixtures.path("libvirt/fx-poweroff.log")))
        #expect(parsed.name == "fx-poweroff")
        #expect(parsed.uuid == "3d22b475-c04e-4b61-bf10-b02d941b68c6")
        #expect(parsed.unknownLines == 0)
        #expect(parsed.events.map(\.event.name) == ["LIBVIRT_START", "QEMU_SIGNAL", "LIBVIRT_SHUTDOWN"])
        let signal = parsed.events[1]
        #expect(signal.sender == SignalSender(signal: 15, pid: 16012, program: "/usr/sbin/libvirtd"))
        // QEMU's own timestamp (microseconds, T…Z) and libvirt's (milliseconds, +0000) in one file
        #expect(signal.event.seconds == 1_796_203_534 && signal.event.microseconds == 740_744)
        #expect(parsed.events[2].event.reason == "shutdown")
        #expect(parsed.events[2].event.seconds == 1_796_203_536 && parsed.events[2].event.microseconds == 343_000)
        #expect(parsed.events[0].event.data == #"{"libvirt":"9.0.0","qemu":"7.2.22Debian 1:7.2+dfsg-7+deb12u18+b3"}"#)
    }

    @Test(arguments: [
        ("fx-destroy", "destroyed", true), ("fx-reset", "destroyed", true), ("fx-suspend", "destroyed", true),
        ("fx-shutdown", "shutdown", true), ("fx-panic", "crashed", true),
        // kill -9: libvirt notices QEMU gone, nobody sent a signal it could log
        ("fx-kill", "crashed", false),
    ])
    func everyCapturedScenarioEndsWithLibvirtsReason(name: String, reason: String, signalled: Bool) throws {
        let parsed = LibvirtLogParser(text: try HistoryImporter.read(Fixtures.path("libvirt/\(name).log")))
        #expect(parsed.name == name)
        #expect(parsed.events.first?.event.name == "LIBVIRT_START")
        #expect(parsed.events.last { $0.event.name == "LIBVIRT_SHUTDOWN" }?.event.reason == reason)
        #expect(parsed.events.contains { $0.event.name == "QEMU_SIGNAL" } == signalled)
    }

    /// libvirt writes a panic line only for a panic that carries crash information, which no guest
    /// here can produce: these lines follow libvirt's format (qemuMonitorGuestPanicEventInfoFormatMsg).
    @Test func panicLinesCarryTheirCrashInformation() {
        let parsed = LibvirtLogParser(
            text: """
                -name guest=win1,debug-threads=on \\
                2026-11-30 16:30:49.506+0000: panic hyper-v: arg1='0x3e', arg2='0x46d359bbdff', arg3='0x56d359bbdff', arg4='0x0', arg5='0x0'
                2026-11-30 16:31:02.000+0000: panic s390: core='1' psw-mask='0x0002000180000000' psw-addr='0x000000000010f146' reason='disabled-wait'
                2026-11-30T16:31:03.100000Z qemu-system-s390x: terminating on signal 15 from pid 1 (<unknown process>)
                2026-11-30T16:31:04.100000Z qemu-system-s390x: terminating on signal 2
                """
        )
        #expect(parsed.name == "win1")
        #expect(parsed.events.map(\.event.name) == ["GUEST_PANICKED", "GUEST_PANICKED", "QEMU_SIGNAL", "QEMU_SIGNAL"])
        #expect(parsed.events[0].event.panicType == "hyper-v")
        #expect(parsed.events[0].event.panicArg1 == "62")
        #expect(parsed.events[1].event.panicType == "s390")
        #expect(parsed.events[1].event.panicReason == "disabled-wait")
        #expect(parsed.events[2].sender == SignalSender(signal: 15, pid: 1, program: nil))
        #expect(parsed.events[3].sender == SignalSender(signal: 2, pid: nil, program: nil))
    }

    @Test func virshsThreeFormsReadAsTheSameEvents() throws {
        let forms = try ["plain", "pretty", "timestamp"].map {
            VirshEventParser(text: try HistoryImporter.read(Fixtures.path("libvirt/virsh-\($0).txt")))
        }
        for form in forms {
            #expect(form.unknownLines == 0)
            #expect(form.events.values.map(\.count).reduce(0, +) == 24)  // "events received: 24"
        }
        let (plain, pretty, stamped) = (forms[0], forms[1], forms[2])
        for (domain, events) in plain.events {
            let summary = { (events: [ImportedEvent]?) in
                (events ?? []).map {
                    "\($0.event.name) \($0.event.data ?? "-") \($0.event.guest.map(String.init) ?? "-")"
                }
            }
            #expect(summary(pretty.events[domain]) == summary(events), "\(domain)")
            #expect(summary(stamped.events[domain]) == summary(events), "\(domain)")
            // --timestamp shows when virsh received each event, not QEMU's time: up to seconds later
            let stampedEvents = stamped.events[domain] ?? []
            #expect(stampedEvents.allSatisfy { $0.event.time == nil })
            for (received, event) in zip(stampedEvents.map(\.event.received), events) {
                let qemuTime = try #require(event.event.time)
                #expect(received / 1000 >= qemuTime / 1000 && received - qemuTime < 5_000_000)
            }
        }
        let poweroff = try #require(plain.events["fx-poweroff"])
        #expect(poweroff.map(\.event.name) == ["RESUME", "SHUTDOWN", "STOP", "SHUTDOWN"])
        #expect(poweroff[1].event.reason == "guest-shutdown" && poweroff[1].event.guest == true)
        #expect(poweroff[0].event.data == nil)
    }

    @Test func noDataSpelledEitherWayIsNoData() {
        let parsed = VirshEventParser(
            text: """
                event STOP at 1796203534.739967 for domain 'a': (null)
                event RESUME at 1796203535.000001 for domain 'a': <null>
                something else
                """
        )
        #expect(parsed.events["a"]?.map(\.event.data) == [nil, nil])
        #expect(parsed.unknownLines == 1 && parsed.firstUnknownLines == [3])
    }

    @Test func importingTwiceAddsNothingAndSendersMeetTheirShutdowns() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = try EventDatabase.openForWriting(path: directory.file("events.sqlite"))
        let importer = HistoryImporter(database: database)

        // Given libvirt's logs imported before the virsh transcript that holds the SHUTDOWNs
        var logs = ImportOutcome()
        for name in ["fx-poweroff", "fx-destroy", "fx-kill"] {
            logs = logs + (try await importer.importFile(Fixtures.path("libvirt/\(name).log"), as: .libvirtLog)).outcome
        }
        #expect(logs.added == 8)
        let virsh = try await importer.importFile(Fixtures.path("libvirt/virsh-plain.txt"), as: .virsh).outcome
        #expect(virsh.added == 24)
        // Then each host-signal SHUTDOWN of a signalled VM has its sender
        #expect(virsh.sendersAttached == 2)

        // When the same history comes again: the rotated log, the pretty and the timestamped transcripts
        let rotated = try await importer.importFile(Fixtures.path("libvirt/fx-destroy.log.1.gz"), as: .libvirtLog)
        #expect(rotated.outcome.added == 0 && rotated.outcome.alreadyImported == 3)
        for form in ["pretty", "timestamp"] {
            let again = try await importer.importFile(Fixtures.path("libvirt/virsh-\(form).txt"), as: .virsh)
            #expect(again.outcome.added == 0, "\(form)")
        }

        // Then the reports count the imported shutdowns once and say who signalled
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        let shutdowns = try await ReportKind.shutdowns.run(
            on: database,
            query: ReportQuery(machines: ["fx-poweroff", "fx-destroy"], now: now)
        )
        #expect(shutdowns.summary.first { $0.key == "shutdowns" }?.value == .integer(2))
        let senders = try #require(shutdowns.tables.first { $0.name == "signal_senders" })
        #expect(senders.rows.map { $0[0] } == [.text("fx-poweroff"), .text("fx-destroy")])
        #expect(senders.rows.allSatisfy { $0[2] == .text("SIGTERM") && $0[4] == .text("/usr/sbin/libvirtd") })
        // and imported history is no observed time: no VM counts as watched
        let summary = try await ReportKind.summary.run(on: database, query: ReportQuery(now: now))
        #expect(summary.summary.first { $0.key == "sessions" }?.value == .integer(0), "\(summary.summary)")
        let sessions = try await database.allSessions()
        #expect(sessions.allSatisfy { $0.source != nil && $0.endReason == "imported" })
    }

    @Test func eventsARecorderSawAreNotImportedAgain() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = try EventDatabase.openForWriting(path: directory.file("events.sqlite"))
        // Given fx-destroy recorded live from before its start to after its stop
        let handle = try await database.beginSession(
            NewSession(
                machine: MachineIdentity(name: "fx-destroy", uuid: nil, endpoint: "libvirt:qemu:///system"),
                endpoint: "libvirt:qemu:///system",
                qemuVersion: "7.2.22",
                qemuPackage: "",
                initialStatus: "prelaunch",
                initialRunning: false,
                startedAt: 1_796_203_541_000_000
            )
        )
        try await database.write(
            events: [
                NewEvent(
                    session: handle,
                    seq: 1,
                    name: "SHUTDOWN",
                    seconds: 1_796_203_543,
                    microseconds: 10_381,
                    received: 1_796_203_543_011_000,
                    guest: false,
                    reason: "host-signal",
                    data: #"{"guest":false,"reason":"host-signal"}"#
                )
            ],
            endings: [
                SessionEnd(
                    sessionId: handle.sessionId,
                    endedAt: 1_796_203_545_000_000,
                    reason: "domain-stopped: destroyed"
                )
            ]
        )
        // When its transcript and its log are imported
        let importer = HistoryImporter(database: database)
        let virsh = try await importer.importFile(Fixtures.path("libvirt/virsh-plain.txt"), as: .virsh).outcome
        let log = try await importer.importFile(Fixtures.path("libvirt/fx-destroy.log"), as: .libvirtLog).outcome
        // Then its two QMP events are left out (the recorder saw them); its log lines are facts the
        // recorder could not see, and the signal's sender is attached to the recorded SHUTDOWN
        #expect(virsh.alreadyKnown == 2)
        #expect(log.added == 3)
        #expect(log.sendersAttached == 1)
        let events = try await database.allEvents().filter { $0.sessionId == handle.sessionId }
        #expect(events.map(\.name) == ["SHUTDOWN"])
    }

    /// Numbers no instant can hold (they overflowed into a trap): stored like QEMU's -1/-1, as written.
    @Test(arguments: ["9223372036854.775808", "99999999999999.0", "-99999999999999.0", "253402300800.000000"])
    func aTimestampThatIsNoInstantIsKeptAsWritten(stamp: String) throws {
        let parsed = VirshEventParser(text: "event SHUTDOWN at \(stamp) for domain 'x': {}\n")
        let event = try #require(parsed.events["x"]?.first?.event)
        #expect(event.time == nil)
        #expect("\(event.seconds).\(event.microseconds)" == stamp.replacingOccurrences(of: ".000000", with: ".0"))
        #expect(event.received == 0)
    }

    @Test func crlfLinesEscapedCommasAndNULsKeepEveryVMApart() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = try EventDatabase.openForWriting(path: directory.file("events.sqlite"))
        // Given a log with CRLF line ends whose VM's name holds QEMU's escaped comma
        let log = directory.file("web.log")
        try Data(
            [
                "2026-11-30 16:30:00.000+0000: starting up libvirt version: 9.0.0, qemu version: 7.2.22",
                "-name guest=web,,prod,debug-threads=on \\",
                "2026-11-30T16:31:00.100000Z qemu-system-x86_64: terminating on signal 15 from pid 1 (/usr/sbin/libvirtd)",
                "2026-11-30 16:31:01.000+0000: shutting down, reason=shutdown",
            ].joined(separator: "\r\n").utf8
        ).write(to: URL(fileURLWithPath: log))
        // and a transcript with a NUL in one domain's name
        let transcript = directory.file("events.txt")
        try Data(
            "event STOP at 1796203534.000001 for domain 'nul\u{0}x': <null>\r\nevent STOP at 1796203534.000002 for domain 'nul': <null>\r\n"
                .utf8
        ).write(to: URL(fileURLWithPath: transcript))
        // When both are imported
        let importer = HistoryImporter(database: database)
        let logResult = try await importer.importFile(log, as: .libvirtLog)
        let virshResult = try await importer.importFile(transcript, as: .virsh)
        // Then every line is an event of the VM its command line names, and the two domains stay two
        #expect(logResult.machines == ["web,prod"])
        #expect(logResult.outcome.added == 3 && logResult.unknownLines == 0)
        #expect(virshResult.machines == ["nul", "nul\u{FFFD}x"])
        #expect(Set(try await database.allMachines().compactMap(\.name)) == ["web,prod", "nul", "nul\u{FFFD}x"])
    }

    @Test func aLargeFileIsStoredInBatchesAndAnOverlongLineIsCut() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = try EventDatabase.openForWriting(path: directory.file("events.sqlite"))
        // Given more events than a batch, behind a 3 MiB line that holds no newline
        let count = HistoryImporter.batchSize * 2 + 17
        var text = String(repeating: "x", count: 3 << 20) + "\n"
        for index in 0..<count {
            text += "event RESET at \(1_796_000_000 + index).000000 for domain 'big': {\"guest\":true}\n"
        }
        let path = directory.file("big.txt")
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        // When it is imported, twice
        let importer = HistoryImporter(database: database)
        let first = try await importer.importFile(path, as: .virsh)
        let second = try await importer.importFile(path, as: .virsh)
        // Then every event is stored once, and the long line is one line not understood
        #expect(first.outcome.added == count && first.unknownLines == 1)
        #expect(second.outcome.added == 0 && second.outcome.alreadyImported == count)
    }

    /// prune deletes the events, never what they were imported as: importing again adds nothing
    /// (else the fleet would receive them a second time).
    @Test func importingAgainAfterAPruneAddsNothing() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = try EventDatabase.openForWriting(path: directory.file("events.sqlite"))
        let importer = HistoryImporter(database: database)
        let files = ["fx-poweroff", "fx-destroy"].map { Fixtures.path("libvirt/\($0).log") }
        var first = 0
        for file in files { first += try await importer.importFile(file, as: .libvirtLog).outcome.added }
        let pruned = try await database.pruneEvents(before: Int64.max)
        #expect(first > 0 && pruned.deleted == first - 1)  // the newest event always stays
        for file in files {
            let again = try await importer.importFile(file, as: .libvirtLog).outcome
            #expect(again.added == 0, "\(file)")
        }
        #expect(try await database.allEvents().count == 1)
    }
}
