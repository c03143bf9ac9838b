import Collector
import EventStore
import Foundation
import QMPTestSupport
import Reports
import Testing

/// `report stops` on what a real QEMU under TCG did: each class it can produce here, with the
/// stop's time being the SHUTDOWN's, or the moment the monitor closed.
@Suite(.serialized, .enabled(if: QEMUProcess.shouldRun, "qemu-system-x86_64 is not installed"))
struct StopReportRealQEMUTests {
    @Test func guestACPIPowerOffIsGuestPoweroff() async throws {
        let recorded = try await record(.acpiPowerOff) { _, driver in try driver.execute("cont") }
        try recorded.expectOneStop("guest-poweroff", atEvent: "SHUTDOWN")
    }

    @Test func systemPowerdownAnsweredByTheGuestIsHostACPI() async throws {
        let recorded = try await record(.powerButtonPowerOff) { qemu, driver in
            try driver.execute("cont")
            // Pressed until the guest, once booted and listening for the button, answers.
            let deadline = Date().addingTimeInterval(20)
            while qemu.isRunning, Date() < deadline {
                _ = try? driver.execute("system_powerdown")
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        try recorded.expectOneStop("host-acpi", atEvent: "SHUTDOWN")
    }

    @Test func sigtermToQEMUIsHostSignal() async throws {
        let recorded = try await record(.idle) { qemu, driver in
            try driver.execute("cont")
            qemu.send(signal: SIGTERM)
        }
        try recorded.expectOneStop("host-signal", atEvent: "SHUTDOWN")
    }

    @Test func sigkillToQEMUIsKilledWhenTheMonitorCloses() async throws {
        let recorded = try await record(.idle) { qemu, driver in
            try driver.execute("cont")
            try await Task.sleep(for: .milliseconds(200))
            qemu.send(signal: SIGKILL)
        }
        try recorded.expectOneStop("killed", atSessionEnd: true)
    }

    @Test func quitIsHostQMPQuit() async throws {
        let recorded = try await record(.idle) { _, driver in
            try driver.execute("cont")
            try driver.execute("quit")
        }
        try recorded.expectOneStop("host-qmp-quit", atEvent: "SHUTDOWN")
    }

    @Test func pvpanicWithPoweroffIsGuestPanic() async throws {
        // QEMU 7.2's default panic action powers off (its -action panic= takes pause, shutdown or none)
        let recorded = try await record(.pvpanic, ["-device", "pvpanic"]) { _, driver in
            try driver.execute("cont")
        }
        try recorded.expectOneStop("guest-panic", atEvent: "SHUTDOWN")
    }

    @Test func pvpanicWithPauseThenQuitStopsByTheQuit() async throws {
        let recorded = try await record(.pvpanic, ["-device", "pvpanic", "-action", "panic=pause"]) { _, driver in
            try driver.execute("cont")
            try await Task.sleep(for: .seconds(2))
            try driver.execute("quit")
        }
        #expect(recorded.eventNames.contains("GUEST_PANICKED"))
        try recorded.expectOneStop("host-qmp-quit", atEvent: "SHUTDOWN")
    }

    @Test func guestResetWithNoRebootIsGuestResetNoReboot() async throws {
        let recorded = try await record(.keyboardControllerReset, ["-no-reboot"]) { _, driver in
            try driver.execute("cont")
        }
        try recorded.expectOneStop("guest-reset-no-reboot", atEvent: "SHUTDOWN")
    }

    @Test func watchdogPoweroffIsWatchdogWhenQEMUExits() async throws {
        let recorded = try await record(.ib700Watchdog, ["-device", "ib700", "-action", "watchdog=poweroff"]) {
            _,
            driver in
            try driver.execute("cont")
        }
        // QEMU 7.2 exits on a watchdog poweroff without sending SHUTDOWN
        #expect(recorded.eventNames == ["RESUME", "WATCHDOG"])
        try recorded.expectOneStop("watchdog", atSessionEnd: true)
    }

    @Test func aWatchdogResettingTheGuestEveryTwoSecondsIsACrashLoop() async throws {
        let recorded = try await record(.ib700Watchdog, ["-device", "ib700", "-action", "watchdog=reset"]) {
            qemu,
            driver in
            try driver.execute("cont")
            // ~2 s per firing: wait for four, then stop QEMU
            try await Task.sleep(for: .seconds(9))
            try driver.execute("quit")
        }
        let firings = recorded.eventNames.filter { $0 == "WATCHDOG" }.count
        try #require(firings >= 3)
        let loops = try #require(recorded.stops.tables.first { $0.name == "crash_loops" })
        #expect(loops.rows.count == 1)
        #expect(loops.rows.first?[3] == .integer(Int64(firings)))
        #expect(recorded.stops.summary.first { $0.key == "crash_loops" }?.value == .integer(1))
        // A watchdog that resets is no stop; the quit at the end is
        try recorded.expectOneStop("host-qmp-quit", atEvent: "SHUTDOWN")
    }

    // MARK: - Helpers

    struct Recorded {
        var events: [RecordedEvent]
        var sessions: [Session]
        var stops: ReportResult

        var eventNames: [String] { events.map(\.name) }

        /// Exactly one stop, of `stopClass`, at the time of the last `event` (or of the session's end).
        func expectOneStop(_ stopClass: String, atEvent event: String? = nil, atSessionEnd: Bool = false) throws {
            let incidents = try #require(stops.tables.first { $0.name == "incidents" })
            try #require(incidents.rows.count == 1, "\(incidents.rows)")
            let row = incidents.rows[0]
            #expect(row[2] == .text(stopClass), "\(row)")
            if let event {
                let shutdown = try #require(events.first { $0.name == event })
                #expect(row[1] == .time(try #require(shutdown.time)))
            }
            if atSessionEnd {
                #expect(row[1] == .time(try #require(sessions.first?.endedAt)))
            }
            let key = stopClass.replacingOccurrences(of: "-", with: "_")
            #expect(stops.summary.first { $0.key == key }?.value == .integer(1))
            #expect(stops.summary.first { $0.key == "stops" }?.value == .integer(1))
        }
    }

    /// Starts QEMU paused running `bootSector`, records it until it exits, and runs `report stops`.
    private func record(
        _ bootSector: BootSector,
        _ extraArguments: [String] = [],
        _ drive: (QEMUProcess, QMPTestDriver) async throws -> Void
    ) async throws -> Recorded {
        let harness = try RecordingHarness()
        defer { harness.remove() }
        try await harness.recordQEMU(bootSector, extraArguments, drive)
        let stops = try await ReportKind.stops.run(
            on: harness.database,
            query: ReportQuery(now: Int64(Date().timeIntervalSince1970 * 1_000_000))
        )
        return Recorded(
            events: try await harness.database.allEvents(),
            sessions: try await harness.database.allSessions(),
            stops: stops
        )
    }
}
