import EventStore
import Foundation
import QMP
import QMPTestSupport
import Testing

/// `report states` against what a real QEMU says its run state is.
@Suite(.serialized)
struct RunStateTests {
    @Test(.enabled(if: QEMUProcess.shouldRun))
    func aVMHeldShutDownIsShutDownNotPausedUntilResetAndContinued() async throws {
        // Given a VM started with -no-shutdown whose guest powers itself off, recorded by qmplog
        let qemu = try QEMUProcess(bootSector: .acpiPowerOff, extraArguments: ["-no-shutdown"])
        defer { qemu.terminate() }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = directory.file("events.sqlite")
        let qmplog = try ChildProcess(
            QmplogBinaryTests.binary,
            arguments: ["record", "--once", "--db", database, qemu.recorderSocket],
            outputPath: directory.file("qmplog.out")
        )
        defer { qmplog.kill9() }
        try await QmplogBinaryTests.waitForSession(database: database)
        let driver = try QMPTestDriver(path: qemu.controlSocket)

        // When the guest powers off and is held shut down, then is reset (in prelaunch), continued,
        // and powers off again
        try driver.execute("cont")
        try await waitForStatus("shutdown", driver)
        try await Task.sleep(for: .milliseconds(1500))
        try driver.execute("system_reset")
        #expect(try status(driver) == "prelaunch", "QEMU's own word: reset out of shutdown is not running")
        try await Task.sleep(for: .milliseconds(500))
        try driver.execute("cont")
        try await waitForStatus("shutdown", driver)
        try driver.execute("quit")
        #expect(try await qmplog.waitForExit() == 0)

        // Then the report counts the held time as shut down, the start (-S) and the reset's wait as
        // prelaunch, and nothing as paused
        let store = try EventDatabase.openForReading(path: database)
        let events = try await store.allEvents()
        let session = try #require(try await store.allSessions().first)
        func time(_ name: String, _ occurrence: Int) throws -> Int64 {
            let matching = events.filter { $0.name == name }
            try #require(matching.count > occurrence, "\(events.map(\.name))")
            return matching[occurrence].time ?? matching[occurrence].received
        }
        let end = try #require(session.endedAt)
        let expectedShutdown = try (time("RESET", 0) - time("SHUTDOWN", 0)) + (end - time("SHUTDOWN", 1))
        let expectedPrelaunch = try (time("RESUME", 0) - session.startedAt) + (time("RESUME", 1) - time("RESET", 0))
        let (code, json) = try await QmplogBinaryTests.run(
            ["report", "states", "--db", database, "--format", "json"],
            in: directory
        )
        #expect(code == 0, "\(json)")
        let report = try JSONValue(parsing: Array(json.utf8))
        guard case .array(let rows) = report["by_vm"], let row = rows.first,
            case .number(let shutdownText) = row["shutdown"], case .number(let pausedText) = row["paused"],
            case .number(let prelaunchText) = row["prelaunch"], let shutdown = Double(shutdownText),
            let paused = Double(pausedText), let prelaunch = Double(prelaunchText)
        else {
            Issue.record("unexpected report: \(json)")
            return
        }
        #expect(shutdown >= 1.5)
        #expect(abs(shutdown - Double(expectedShutdown) / 1e6) < 0.001, "shutdown \(shutdown) s")
        #expect(abs(prelaunch - Double(expectedPrelaunch) / 1e6) < 0.001, "prelaunch \(prelaunch) s")
        #expect(paused == 0, "paused \(paused) s")
        // And qmplog vms shows the state QEMU was left in
        let (_, vms) = try await QmplogBinaryTests.run(["vms", "--wide", "--db", database], in: directory)
        #expect(vms.contains("shutdown"), "\(vms)")
    }

    private func status(_ driver: QMPTestDriver) throws -> String? {
        try driver.execute("query-status")["return"]?["status"]?.stringValue
    }

    private func waitForStatus(_ wanted: String, _ driver: QMPTestDriver) async throws {
        for _ in 0..<500 {
            if try status(driver) == wanted { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw QEMUTestError("QEMU never reached \(wanted)")
    }
}
