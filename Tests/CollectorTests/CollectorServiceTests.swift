import Collector
import EventStore
import Foundation
import GRDB
import QMP
import QMPTestSupport
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

/// The recorder against fake QMP peers: what real QEMU cannot produce here (other architectures'
/// crash information, newer enum values, floods, broken peers).
struct CollectorServiceTests {
    @Test func storesEveryEventKnownOrUnknownWithItsColumns() async throws {
        // Given a VM that sends a mix QEMU 7.2 on x86 cannot produce
        let events = [
            FakeQMPBehavior.event("STOP", seconds: -1, micro: -1),
            FakeQMPBehavior.event(
                "GUEST_PANICKED",
                data:
                    #"{"action": "pause", "info": {"type": "hyper-v", "arg1": 18446744073709551615, "arg2": 1, "arg3": 2, "arg4": 3, "arg5": 4}}"#
            ),
            FakeQMPBehavior.event(
                "GUEST_PANICKED",
                data:
                    #"{"action": "pause", "info": {"core": 1, "psw-mask": 562956395315200, "psw-addr": 1234, "reason": "extint-loop", "type": "s390"}}"#
            ),
            FakeQMPBehavior.event("SHUTDOWN", data: #"{"guest": "yes", "reason": "cosmic-ray"}"#),
            FakeQMPBehavior.event("FUTURE_EVENT", data: #"{"x": [1, {"y": null}]}"#),
            FakeQMPBehavior.event("WATCHDOG", data: #"{"action": "inject-nmi"}"#),
        ]
        let harness = try RecordingHarness()
        defer { harness.remove() }
        let server = try await FakeQMPServer.start(
            at: harness.directory.file("vm.qmp"),
            behavior: .qemu(name: "s390-guest", events: events)
        )
        defer { Task { await server.stop() } }

        // When it is recorded once
        try await harness.makeService(targets: [server.path]).run()

        // Then every event is a row, unknown values kept as strings and wrong types left NULL
        let rows = try await harness.database.allEvents()
        #expect(
            rows.map(\.name) == ["STOP", "GUEST_PANICKED", "GUEST_PANICKED", "SHUTDOWN", "FUTURE_EVENT", "WATCHDOG"]
        )
        #expect(rows[0].seconds == -1 && rows[0].microseconds == -1 && rows[0].time == nil && rows[0].data == nil)
        #expect(
            rows[1].panicType == "hyper-v" && rows[1].panicArg1 == "18446744073709551615" && rows[1].action == "pause"
        )
        #expect(rows[2].panicType == "s390" && rows[2].panicReason == "extint-loop")
        #expect(rows[3].guest == nil && rows[3].reason == "cosmic-ray")
        #expect(rows[4].data == #"{"x": [1, {"y": null}]}"#)
        #expect(rows[5].action == "inject-nmi")
        #expect(try await harness.database.allMachines().map(\.name) == ["s390-guest"])
        #expect(server.receivedCommands.allSatisfy(QMPCommand.isAllowed), "\(server.receivedCommands)")
        #expect(server.receivedCommands == ["qmp_capabilities", "query-name", "query-uuid", "query-status"])
    }

    @Test func aTimestampThatIsNoInstantIsStoredAsSentWithoutATime() async throws {
        // Given a peer whose timestamps overflow microseconds, or are out of range, beside a normal VM
        let hostile = [
            FakeQMPBehavior.event("STOP", seconds: 9_223_372_036_855, micro: 0),
            FakeQMPBehavior.event("STOP", seconds: 9_223_372_036_854_775_807, micro: 999_999),
            FakeQMPBehavior.event("STOP", seconds: 1_795_772_653, micro: 1_000_000),
            FakeQMPBehavior.event("STOP", seconds: 253_402_300_800, micro: 0),
            FakeQMPBehavior.event("RESUME", seconds: 253_402_300_799, micro: 999_999),
        ]
        let harness = try RecordingHarness()
        defer { harness.remove() }
        let bad = try await FakeQMPServer.start(
            at: harness.directory.file("bad.qmp"),
            behavior: .qemu(name: "bad", events: hostile)
        )
        let good = try await FakeQMPServer.start(
            at: harness.directory.file("good.qmp"),
            behavior: .qemu(name: "good", events: [FakeQMPBehavior.event("RESET", micro: 7)])
        )
        defer { Task { for server in [bad, good] { await server.stop() } } }

        // When both are recorded
        try await harness.makeService(targets: [bad.path, good.path]).run()

        // Then every event is stored, the raw numbers kept, and only a real instant has a time
        let rows = try await harness.database.allEvents()
        let machines = try await harness.database.allMachines()
        let badId = try #require(machines.first { $0.name == "bad" }?.id)
        let badRows = rows.filter { $0.machineId == badId }
        #expect(
            badRows.map(\.seconds) == [
                9_223_372_036_855, 9_223_372_036_854_775_807, 1_795_772_653, 253_402_300_800, 253_402_300_799,
            ]
        )
        #expect(badRows.map(\.microseconds) == [0, 999_999, 1_000_000, 0, 999_999])
        #expect(badRows.map(\.time) == [nil, nil, nil, nil, 253_402_300_799_999_999])
        #expect(rows.filter { $0.machineId != badId }.map(\.name) == ["RESET"])
        #expect(try await harness.database.allSessions().allSatisfy { $0.endReason == "eof" })
    }

    @Test func aBusyBrokenOrMissingVMNeverStopsTheOthers() async throws {
        let harness = try RecordingHarness()
        defer { harness.remove() }
        let good = try await FakeQMPServer.start(
            at: harness.directory.file("good.qmp"),
            behavior: .qemu(
                name: "good",
                events: (1...50).map {
                    FakeQMPBehavior.event("RESET", data: #"{"guest": true, "reason": "guest-reset"}"#, micro: Int64($0))
                }
            )
        )
        let silent = try await FakeQMPServer.start(
            at: harness.directory.file("silent.qmp"),
            behavior: FakeQMPBehavior(onConnect: []) { _, _ in ([], false) }
        )
        let garbage = try await FakeQMPServer.start(
            at: harness.directory.file("garbage.qmp"),
            behavior: .qemu(
                name: "garbage",
                events: [FakeQMPBehavior.event("STOP"), "{\"event\": \u{1}}}} not json"],
                close: false
            )
        )
        defer { Task { for server in [good, silent, garbage] { await server.stop() } } }
        let missing = harness.directory.file("missing.qmp")

        let service = harness.makeService(
            targets: [silent.path, garbage.path, missing, good.path],
            greetingTimeout: .seconds(2)
        )
        let error = await #expect(throws: CollectorError.self) { try await service.run() }

        #expect(error?.code == .targetsFailed)
        let message = error?.message ?? ""
        #expect(message.hasPrefix("3 of 4 targets could not be recorded"))
        #expect(
            message.contains(
                "unix:\(silent.path): unix:\(silent.path) accepted the connection but sent no QMP greeting"
            )
        )
        #expect(message.contains("unix:\(missing): cannot connect to unix:\(missing): no such file"))
        #expect(message.contains("unix:\(garbage.path): invalid JSON"))
        let events = try await harness.database.allEvents()
        let machines = try await harness.database.allMachines()
        let goodId = try #require(machines.first { $0.name == "good" }?.id)
        let garbageId = try #require(machines.first { $0.name == "garbage" }?.id)
        #expect(events.filter { $0.machineId == goodId }.count == 50)
        #expect(
            events.filter { $0.machineId == garbageId }.map(\.name) == ["STOP"],
            "what arrived before the garbage is kept"
        )
        let sessions = try await harness.database.allSessions()
        #expect(sessions.first { $0.machineId == garbageId }?.endReason?.hasPrefix("error: invalid JSON") == true)
        #expect(sessions.first { $0.machineId == goodId }?.endReason == "eof")
    }

    @Test func aFloodIsStoredCompletelyInArrivalOrder() async throws {
        let count = 20_000
        let lines = (1...count).map { FakeQMPBehavior.event($0 % 2 == 0 ? "RESUME" : "STOP", micro: Int64($0)) }
        let harness = try RecordingHarness()
        defer { harness.remove() }
        let server = try await FakeQMPServer.start(
            at: harness.directory.file("flood.qmp"),
            behavior: .qemu(events: lines)
        )
        defer { Task { await server.stop() } }

        try await harness.makeService(targets: [server.path]).run()

        let rows = try await harness.database.allEvents()
        #expect(rows.count == count)
        #expect(rows.enumerated().allSatisfy { $1.seq == Int64($0 + 1) && $1.microseconds == Int64($0 + 1) })
    }

    @Test func gracefulShutdownCommitsEverythingReceivedAndClosesSessions() async throws {
        // Given a VM that sends events and keeps the connection open
        let harness = try RecordingHarness()
        defer { harness.remove() }
        let events = (1...10).map { FakeQMPBehavior.event("STOP", micro: Int64($0)) }
        let server = try await FakeQMPServer.start(
            at: harness.directory.file("vm.qmp"),
            behavior: .qemu(events: events, close: false)
        )
        defer { Task { await server.stop() } }
        let service = harness.makeService(targets: [server.path], once: false)

        // When the recorder is asked to shut down gracefully
        try await testGracefulShutdown { trigger in
            async let recording: Void = service.run()
            try await harness.waitUntil("10 events committed") { try await harness.database.allEvents().count == 10 }
            trigger.triggerGracefulShutdown()
            try await recording
        }

        // Then it returned normally, with the session closed as stopped by the recorder
        let session = try #require(try await harness.database.allSessions().first)
        #expect(session.endReason == "recorder-stopped")
        #expect(session.endedAt != nil)
        #expect(try await harness.database.allEvents().count == 10)
    }

    @Test func moreVMsThanTheAttachLimitAreAllRecordedAtOnce() async throws {
        // Given five VMs that stay connected, and a recorder that dials at most two at a time
        let harness = try RecordingHarness()
        defer { harness.remove() }
        var servers: [FakeQMPServer] = []
        for index in 0..<5 {
            servers.append(
                try await FakeQMPServer.start(
                    at: harness.directory.file("vm\(index).qmp"),
                    behavior: .qemu(events: [FakeQMPBehavior.event("STOP")], close: false)
                )
            )
        }
        defer { for server in servers { Task { await server.stop() } } }
        let service = harness.makeService(targets: servers.map(\.path), once: false, maximumConcurrentAttaches: 2)

        try await testGracefulShutdown { trigger in
            async let recording: Void = service.run()
            // Then all five are attached at the same time: an attach gives its place back once its
            // session is open, not when the VM goes away
            try await harness.waitForSessions(5)
            try await harness.waitUntil("an event from each VM") { try await harness.database.allEvents().count == 5 }
            trigger.triggerGracefulShutdown()
            try await recording
        }

        let sessions = try await harness.database.allSessions()
        #expect(sessions.count == 5)
        #expect(sessions.allSatisfy { $0.endReason == "recorder-stopped" })
    }

    @Test func connectionsToTheListenerWaitForAnAttachPlace() async throws {
        // Given a recorder listening with one attach place, and a peer that connects and never
        // greets: it holds the place until its greeting timeout (2 s)
        let harness = try RecordingHarness()
        defer { harness.remove() }
        let listenPath = harness.directory.file("listen.sock")
        let service = harness.makeService(
            targets: [],
            listen: [listenPath],
            once: false,
            greetingTimeout: .seconds(2),
            maximumConcurrentAttaches: 1
        )

        try await testGracefulShutdown { trigger in
            async let recording: Void = service.run()
            try await harness.waitUntil("the listening socket") { FileManager.default.fileExists(atPath: listenPath) }
            let silentConnected = CollectorConfiguration.systemNow()
            let silent = try await FakeQMPServer.connectOut(to: listenPath, behavior: .silent)
            // When a QEMU connects out right after it
            try await Task.sleep(for: .milliseconds(100))
            let late = try await FakeQMPServer.connectOut(
                to: listenPath,
                behavior: .qemu(name: "late", events: [FakeQMPBehavior.event("STOP")], close: false)
            )
            // Then that QEMU is attached, but only once the silent peer's place came free
            try await harness.waitForSessions(1)
            let session = try #require(try await harness.database.allSessions().first)
            #expect(session.startedAt >= silentConnected + 2_000_000)
            try await harness.waitUntil("its event") { try await harness.database.allEvents().count == 1 }
            trigger.triggerGracefulShutdown()
            try await recording
            await silent.close()
            await late.close()
        }
        #expect(try await harness.database.allMachines().map(\.name) == ["late"])
    }

    @Test func reconnectsWhenAConnectionEndsUnlessOnce() async throws {
        let harness = try RecordingHarness()
        defer { harness.remove() }
        let server = try await FakeQMPServer.start(
            at: harness.directory.file("vm.qmp"),
            behavior: .qemu(events: [
                FakeQMPBehavior.event("SHUTDOWN", data: #"{"guest": false, "reason": "host-qmp-quit"}"#)
            ])
        )
        defer { Task { await server.stop() } }
        let service = harness.makeService(targets: [server.path], once: false)

        try await testGracefulShutdown { trigger in
            async let recording: Void = service.run()
            try await harness.waitForSessions(3)
            trigger.triggerGracefulShutdown()
            try await recording
        }

        let sessions = try await harness.database.allSessions()
        #expect(sessions.count >= 3)
        #expect(Set(sessions.map(\.machineId)).count == 1, "one VM, several sessions")
        #expect(sessions.dropLast().allSatisfy { $0.endReason == "eof" })
        let events = try await harness.database.allEvents()
        #expect(events.count >= sessions.count - 1)
    }

    @Test func aFailingDatabaseStopsTheRecorderWithTheReasonAndKeepsWhatWasCommitted() async throws {
        // Given a database holding one recorded event, that then fails every write like a full disk
        let harness = try RecordingHarness()
        defer { harness.remove() }
        let first = try await FakeQMPServer.start(
            at: harness.directory.file("first.qmp"),
            behavior: .qemu(name: "first", events: [FakeQMPBehavior.event("STOP")])
        )
        defer { Task { await first.stop() } }
        try await harness.makeService(targets: [first.path]).run()
        try await harness.database.writer.write { db in
            try db.execute(
                sql:
                    "CREATE TRIGGER fail BEFORE INSERT ON event BEGIN SELECT RAISE(FAIL, 'simulated write failure'); END"
            )
        }

        // When a VM's events cannot be written, even in the reconnecting mode
        let second = try await FakeQMPServer.start(
            at: harness.directory.file("second.qmp"),
            behavior: .qemu(name: "second", events: [FakeQMPBehavior.event("RESUME")], close: false)
        )
        defer { Task { await second.stop() } }
        let error = await #expect(throws: EventStoreError.self) {
            try await harness.makeService(targets: [second.path], once: false).run()
        }

        // Then the recorder stops with an error naming the database, and the committed event survives
        #expect(error?.description.contains(harness.directory.file("events.sqlite")) == true)
        #expect(error?.description.contains("simulated write failure") == true)
        #expect(try await harness.database.allEvents().map(\.name) == ["STOP"])
    }
}
