import Collector
import EventStore
import Foundation
import InMemoryLogging
import Logging
import QMP
import QMPTestSupport
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

/// The recorder left running: reconnecting to restarted VMs, QEMU connecting to it, sockets
/// appearing and disappearing.
@Suite(.serialized)
struct LongRunningRecorderTests {
    @Test(.enabled(if: QEMUProcess.shouldRun))
    func aVMRestartedOnTheSameSocketIsRecordedOnceASessionWithGapsBetween() async throws {
        let harness = try RecordingHarness()
        defer { harness.remove() }
        let sockets = try TemporaryDirectory(prefix: "restart")
        defer { sockets.remove() }
        let service = harness.makeService(targets: [sockets.file("rec.qmp")], once: false)

        try await testGracefulShutdown { trigger in
            async let recording: Void = service.run()
            for run in 1...3 {
                // Given QEMU started (again) on the same socket path
                let qemu = try QEMUProcess(extraArguments: ["-name", "restarted"], directory: sockets)
                defer { qemu.terminate() }
                // When the recorder has attached, the VM runs and quits
                try await harness.waitForSessions(run)
                let driver = try QMPTestDriver(path: qemu.controlSocket)
                try driver.execute("cont")
                try driver.execute("quit")
                try await qemu.waitForExit()
                try await harness.waitUntil("session \(run) ended") {
                    try await harness.database.allSessions().filter { $0.endedAt != nil }.count == run
                }
            }
            trigger.triggerGracefulShutdown()
            try await recording
        }

        // Then: one session per run, each ended by EOF, gaps between them, every event of every run
        let sessions = try await harness.database.allSessions()
        #expect(sessions.count == 3)
        #expect(sessions.allSatisfy { $0.endReason == "eof" && $0.initialStatus == "prelaunch" })
        #expect(Set(sessions.map(\.machineId)).count == 1)
        for (earlier, later) in zip(sessions, sessions.dropFirst()) {
            #expect(try #require(earlier.endedAt) <= later.startedAt, "a gap, not an overlap")
        }
        let events = try await harness.database.allEvents()
        for session in sessions {
            let names = events.filter { $0.sessionId == session.id }.map(\.name)
            #expect(names == ["RESUME", "SHUTDOWN"])
        }
    }

    @Test(.enabled(if: QEMUProcess.shouldRun))
    func qemuConnectsToTheListenerAndReconnectsAfterTheRecorderRestarts() async throws {
        let harness = try RecordingHarness()
        defer { harness.remove() }
        let listenPath = harness.directory.file("listen.sock")
        // Given QEMU started first, trying to connect out every second
        let qemu = try QEMUProcess(extraArguments: [
            "-name", "outbound", "-chardev", "socket,id=qmplog,path=\(listenPath),reconnect=1",
            "-mon", "chardev=qmplog,mode=control",
        ])
        defer { qemu.terminate() }
        let driver = try QMPTestDriver(path: qemu.controlSocket)

        // When qmplog starts listening, records a STOP, and is restarted
        for run in 1...2 {
            let service = harness.makeService(targets: [], listen: [listenPath], once: false)
            try await testGracefulShutdown { trigger in
                async let recording: Void = service.run()
                try await harness.waitForSessions(run)
                let mode = try FileManager.default.attributesOfItem(atPath: listenPath)[.posixPermissions] as? Int
                #expect(mode == 0o600)
                try driver.execute(run == 1 ? "cont" : "stop")
                try await harness.waitUntil("event \(run)") { try await harness.database.allEvents().count == run }
                trigger.triggerGracefulShutdown()
                try await recording
            }
        }

        // Then each connection was a session of the same VM, with QEMU's pid as the peer
        let sessions = try await harness.database.allSessions()
        #expect(sessions.count == 2)
        #expect(sessions.allSatisfy { $0.peer?.hasPrefix("pid \(qemu.processIdentifier) ") == true })
        #expect(sessions.allSatisfy { $0.endReason == "recorder-stopped" })
        #expect(sessions.map(\.initialStatus) == ["prelaunch", "running"])
        #expect(try await harness.database.allMachines().map(\.name) == ["outbound"])
        #expect(try await harness.database.allEvents().map(\.name) == ["RESUME", "STOP"])
    }

    @Test func discoversSocketsThatAppearAndForgetsDeletedOnes() async throws {
        let harness = try RecordingHarness()
        defer { harness.remove() }
        let watched = try TemporaryDirectory(prefix: "watch")
        defer { watched.remove() }
        // Given one VM already there, and a file that does not match the pattern
        let first = try await FakeQMPServer.start(
            at: watched.file("one.qmp"),
            behavior: .qemu(name: "one", events: [FakeQMPBehavior.event("STOP")], close: false)
        )
        let other = try await FakeQMPServer.start(at: watched.file("ignored.sock"), behavior: .qemu(name: "ignored"))
        let logs = InMemoryLogHandler()
        let service = harness.makeService(
            targets: [],
            watch: [WatchedDirectory(path: watched.path, pattern: "*.qmp")],
            once: false,
            logger: Logger(label: "test", factory: { _ in logs })
        )
        var second: FakeQMPServer?

        try await testGracefulShutdown { trigger in
            async let recording: Void = service.run()
            try await harness.waitForSessions(1)
            // When a second VM appears, and the first one goes away (socket deleted)
            second = try await FakeQMPServer.start(
                at: watched.file("two.qmp"),
                behavior: .qemu(name: "two", events: [FakeQMPBehavior.event("RESUME")], close: false)
            )
            try await harness.waitForSessions(2)
            await first.stop()
            try await harness.waitUntil("the removed socket's recorder to stop") {
                logs.entries.contains { $0.message.description.hasPrefix("Socket removed") }
            }
            trigger.triggerGracefulShutdown()
            try await recording
        }
        await second?.stop()
        await other.stop()

        // Then both were recorded, the deleted socket was not retried, the unmatched one never touched
        let names = try await harness.database.allMachines().map(\.name)
        #expect(names == ["one", "two"])
        #expect(first.connectionCount == 1)
        #if os(Linux)
            let watching = logs.entries.first { $0.message.description == "Watching directory" }
            #expect(watching?.metadata["watch.mode"]?.description == "inotify")
        #endif
        let removed = logs.entries.filter { $0.message.description.hasPrefix("Socket removed") }
        #expect(removed.map { $0.metadata["qmp.endpoint"]?.description } == ["unix:\(watched.file("one.qmp"))"])
        let sessions = try await harness.database.allSessions()
        #expect(sessions.first?.endReason == "eof")
        #expect(other.connectionCount == 0)
        #expect(try await harness.database.allEvents().map(\.name) == ["STOP", "RESUME"])
    }
}
