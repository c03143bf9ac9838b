import EventStore
import Foundation
import QMPTestSupport
import Testing

/// Runs the built `qmplog` binary the way an operator does, against real QEMU.
@Suite(.serialized)
struct QmplogBinaryTests {
    @Test(.enabled(if: QEMUProcess.shouldRun))
    func recordOnceStoresAGuestShutdownAndExitsZero() async throws {
        // Given a paused VM whose guest powers itself off, and qmplog recording it
        let qemu = try QEMUProcess(bootSector: .acpiPowerOff)
        defer { qemu.terminate() }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = directory.file("events.sqlite")
        let qmplog = try runQmplog(["record", "--once", "--db", database, qemu.recorderSocket], in: directory)
        defer { qmplog.kill9() }
        try await Self.waitForSession(database: database)

        // When the VM runs
        try QMPTestDriver(path: qemu.controlSocket).execute("cont")

        // Then qmplog exits 0 once QEMU is gone, with the events committed
        #expect(try await qmplog.waitForExit() == 0, "\(output(directory))")
        let events = try await EventDatabase.openForReading(path: database).allEvents()
        #expect(events.map(\.name) == ["RESUME", "SHUTDOWN"])
        #expect(events.last?.guest == true)
        #expect(events.last?.reason == "guest-shutdown")
        let mode = try FileManager.default.attributesOfItem(atPath: database)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test(.enabled(if: QEMUProcess.shouldRun))
    func sigtermStopsRecordingGracefullyAndExitsZero() async throws {
        let qemu = try QEMUProcess()
        defer { qemu.terminate() }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = directory.file("events.sqlite")
        let qmplog = try runQmplog(["record", "--db", database, qemu.recorderSocket], in: directory)
        defer { qmplog.kill9() }
        try await Self.waitForSession(database: database)
        let driver = try QMPTestDriver(path: qemu.controlSocket)
        try driver.execute("cont")
        try driver.execute("stop")
        try await Self.waitUntil { try await EventDatabase.openForReading(path: database).allEvents().count == 2 }

        qmplog.send(signal: SIGTERM)

        #expect(try await qmplog.waitForExit() == 0, "\(output(directory))")
        let store = try EventDatabase.openForReading(path: database)
        #expect(try await store.allEvents().map(\.name) == ["RESUME", "STOP"])
        #expect(try await store.allSessions().map(\.endReason) == ["recorder-stopped"])
        #expect(qemu.isRunning, "stopping the recorder never touches the VM")
    }

    @Test(.enabled(if: QEMUProcess.shouldRun))
    func theRecorderKeepsTheReportRollupFresh() async throws {
        let qemu = try QEMUProcess()
        defer { qemu.terminate() }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = directory.file("events.sqlite")
        let qmplog = try runQmplog(
            ["record", "--rollup-every", "1", "--db", database, qemu.recorderSocket],
            in: directory
        )
        defer { qmplog.kill9() }
        try await Self.waitForSession(database: database)
        let driver = try QMPTestDriver(path: qemu.controlSocket)
        try driver.execute("cont")
        try driver.execute("stop")

        // Rebuilt once the events are in (the cut is the start of the hour, so they count after it).
        try await Self.waitUntil {
            try await EventDatabase.openForReading(path: database).rollupHeader()?.lastEventId == 2
        }
        qmplog.send(signal: SIGTERM)
        #expect(try await qmplog.waitForExit() == 0, "\(output(directory))")
        let store = try EventDatabase.openForReading(path: database)
        #expect(try await store.currentRollup(report: "summary") != nil)
        #expect(output(directory).contains("Rebuilt the report rollup"))
    }

    @Test func aMissingSocketWithOnceExitsNonZeroNamingThePath() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let socket = directory.file("nope.qmp")
        let qmplog = try runQmplog(["record", "--once", "--db", directory.file("e.sqlite"), socket], in: directory)
        #expect(try await qmplog.waitForExit() == 1)
        #expect(output(directory).contains("cannot connect to unix:\(socket): no such file"))
    }

    @Test func aDatabaseInAMissingDirectoryIsAUsageError() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let qmplog = try runQmplog(
            ["record", "--db", directory.file("no/such/dir/e.sqlite"), "/run/x.qmp"],
            in: directory
        )
        #expect(try await qmplog.waitForExit() == 64)
        #expect(output(directory).contains("directory \(directory.file("no/such/dir")) does not exist"))
    }

    // MARK: - Helpers

    /// The `qmplog` binary built beside this test bundle.
    static let binary: String = {
        let runner = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return runner.deletingLastPathComponent().appendingPathComponent("qmplog").path
    }()

    /// Runs qmplog to completion and returns its exit code and combined output.
    static func run(
        _ arguments: [String],
        in directory: TemporaryDirectory,
        timeout: Duration = .seconds(30)
    ) async throws -> (Int32, String) {
        let outputPath = directory.file("run-\(UUID().uuidString).out")
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build qmplog first: \(binary)")
        let process = try ChildProcess(binary, arguments: arguments, outputPath: outputPath)
        let code = try await process.waitForExit(timeout: timeout)
        return (code, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }

    private func runQmplog(_ arguments: [String], in directory: TemporaryDirectory) throws -> ChildProcess {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build qmplog first: \(Self.binary)")
        return try ChildProcess(Self.binary, arguments: arguments, outputPath: directory.file("qmplog.out"))
    }

    private func output(_ directory: TemporaryDirectory) -> String {
        (try? String(contentsOfFile: directory.file("qmplog.out"), encoding: .utf8)) ?? ""
    }

    static func waitForSession(database: String) async throws {
        try await Self.waitUntil {
            guard FileManager.default.fileExists(atPath: database) else { return false }
            // Identified: the session is open before the VM has answered who it is.
            return try await EventDatabase.openForReading(path: database).allSessions().filter {
                $0.initialStatus != nil
            }
            .count == 1
        }
    }

    static func waitUntil(_ condition: () async throws -> Bool) async throws {
        let clock = ContinuousClock()
        // Generous: the suites run in parallel, and a headless browser or a TCG boot beside this
        // one can take seconds of a 2-core machine.
        let deadline = clock.now.advanced(by: .seconds(60))
        while !((try? await condition()) ?? false) {
            guard clock.now < deadline else { throw QEMUTestError("timed out") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
