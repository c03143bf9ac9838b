import Collector
import EventStore
import Foundation
import QMPTestSupport
import Testing

/// End to end against a real `qemu-system-x86_64` under TCG: the recorder attaches to one monitor,
/// the test drives the VM through another, and the database must hold exactly what QEMU emitted.
///
/// QEMU starts paused (`-S`) because it drops events until a client has negotiated capabilities;
/// the test continues it only after the recorder's session exists.
@Suite(.serialized, .enabled(if: QEMUProcess.shouldRun, "qemu-system-x86_64 is not installed"))
struct RealQEMUTests {
    @Test func stopAndContinueThenQuitAreRecordedAsHostEvents() async throws {
        let rows = try await record { qemu, driver in
            try driver.execute("cont")
            try driver.execute("stop")
            try driver.execute("cont")
            try driver.execute("quit")
        }
        #expect(
            rows == [
                EventSummary("RESUME"), EventSummary("STOP"), EventSummary("RESUME"),
                EventSummary("SHUTDOWN", guest: false, reason: "host-qmp-quit"),
            ]
        )
    }

    @Test func systemResetIsAHostResetFollowedByFirmwareResets() async throws {
        let rows = try await record { qemu, driver in
            try driver.execute("cont")
            try driver.execute("system_reset")
            try await Task.sleep(for: .milliseconds(300))
            try driver.execute("quit")
        }
        // SeaBIOS answers a reset with one or more guest resets of its own; they must be recorded as such.
        try #require(rows.count >= 3)
        #expect(rows.first == EventSummary("RESUME"))
        #expect(rows[1] == EventSummary("RESET", guest: false, reason: "host-qmp-system-reset"))
        #expect(
            rows.dropFirst(2).dropLast().allSatisfy { $0 == EventSummary("RESET", guest: true, reason: "guest-reset") }
        )
        #expect(rows.last == EventSummary("SHUTDOWN", guest: false, reason: "host-qmp-quit"))
    }

    @Test func sigtermToQEMUIsAHostSignalShutdown() async throws {
        let rows = try await record { qemu, driver in
            try driver.execute("cont")
            qemu.send(signal: SIGTERM)
        }
        try #require(rows.count >= 2)
        #expect(rows[0] == EventSummary("RESUME"))
        // QEMU sometimes repeats SHUTDOWN on SIGTERM; every one is recorded, all as host-signal.
        #expect(rows.count <= 3)
        #expect(rows.dropFirst().allSatisfy { $0 == EventSummary("SHUTDOWN", guest: false, reason: "host-signal") })
    }

    @Test func guestACPIPowerOffIsAGuestShutdown() async throws {
        let rows = try await record(bootSector: .acpiPowerOff) { _, driver in
            try driver.execute("cont")
        }
        #expect(rows == [EventSummary("RESUME"), EventSummary("SHUTDOWN", guest: true, reason: "guest-shutdown")])
    }

    @Test func guestKeyboardControllerResetWithNoRebootIsAGuestResetShutdown() async throws {
        let rows = try await record(bootSector: .keyboardControllerReset, extraArguments: ["-no-reboot"]) { _, driver in
            try driver.execute("cont")
        }
        #expect(rows == [EventSummary("RESUME"), EventSummary("SHUTDOWN", guest: true, reason: "guest-reset")])
    }

    @Test func guestPanicThroughPvpanicIsRecordedWithItsAction() async throws {
        let rows = try await record(bootSector: .pvpanic, extraArguments: ["-device", "pvpanic"]) { _, driver in
            try driver.execute("cont")
        }
        #expect(
            rows == [
                EventSummary("RESUME"), EventSummary("GUEST_PANICKED", action: "poweroff"),
                EventSummary("SHUTDOWN", guest: true, reason: "guest-panic"),
            ]
        )
    }

    @Test func sessionRecordsQEMUVersionInitialStatusAndEnd() async throws {
        let harness = try RecordingHarness()
        defer { harness.remove() }
        let qemu = try QEMUProcess(extraArguments: ["-name", "realvm", "-uuid", "6f9619ff-8b86-d011-b42d-00cf4fc964ff"])
        defer { qemu.terminate() }
        let service = harness.makeService(targets: [qemu.recorderSocket])
        async let recording: Void = service.run()
        try await harness.waitForSessions(1)
        try QMPTestDriver(path: qemu.controlSocket).execute("quit")
        try await qemu.waitForExit()
        try await recording

        let session = try #require(try await harness.database.allSessions().first)
        #expect(session.qemuVersion.hasPrefix("\(try #require(session.qemuVersion.split(separator: ".").first))."))
        #expect(session.initialStatus == "prelaunch")
        #expect(session.initialRunning == false)
        #expect(session.endReason == "eof")
        #expect(session.endedAt != nil)
        let machine = try #require(try await harness.database.allMachines().first)
        #expect(machine.name == "realvm")
        #expect(machine.uuid == "6f9619ff-8b86-d011-b42d-00cf4fc964ff")
        #expect(machine.identity == "name:realvm")
    }

    // MARK: - Helpers

    /// Starts QEMU, records it until it exits, and returns the events stored.
    private func record(
        bootSector: BootSector? = nil,
        extraArguments: [String] = [],
        _ drive: (QEMUProcess, QMPTestDriver) async throws -> Void
    ) async throws -> [EventSummary] {
        let harness = try RecordingHarness()
        defer { harness.remove() }
        try await harness.recordQEMU(bootSector, extraArguments, drive)
        let events = try await harness.database.allEvents()
        #expect(events.map(\.seq) == Array(1...Int64(events.count)), "arrival order is kept")
        return events.map(EventSummary.init)
    }
}
