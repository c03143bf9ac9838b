import Collector
import EventStore
import Foundation
import InMemoryLogging
import Logging
import QMPTestSupport
import Reports
import ServiceLifecycleTestKit
import Testing

/// End to end against a real libvirt daemon running real QEMU guests under TCG: the recorder
/// records through libvirt's QMP passthrough while the test acts on the domain with virsh, and the
/// database must hold exactly what QEMU emitted, in sessions that follow each domain run.
///
/// Serialized: the recorder sees every domain of the daemon, and one test restarts the daemon.
@Suite(.serialized, .enabled(if: LibvirtDaemon.shouldRun, "libvirt is not installed, or not root"))
struct RealLibvirtTests {
    @Test func guestPowerOffIsOneGuestShutdownThoughLibvirtSignalsQEMUAfterIt() async throws {
        let recorded = try await record(.acpiPowerOff) { domain, harness in
            try await harness.waitUntil("the domain to stop") { !domain.isActive }
        }
        #expect(
            recorded.events == [
                EventSummary("RESUME"), EventSummary("SHUTDOWN", guest: true, reason: "guest-shutdown"),
                EventSummary("STOP"), EventSummary("SHUTDOWN", guest: false, reason: "host-signal"),
            ]
        )
        #expect(recorded.sessions.map(\.endReason) == ["domain-stopped: shutdown"])
        #expect(recorded.sessions.first?.initialStatus == "prelaunch")
        let shutdowns = try await recorded.report(.shutdowns)
        #expect(shutdowns.value("shutdowns") == .integer(1))
        #expect(shutdowns.value("guest") == .integer(1))
        #expect(shutdowns.value("duplicates_ignored") == .integer(1))
        // report stops: one run, one stop
        try await recorded.expectStops(["guest-poweroff"])
        try await recorded.expectPauses([])
    }

    @Test func virshShutdownAnsweredByTheGuestIsAHostRequestedACPIShutdown() async throws {
        let recorded = try await record(.powerButtonPowerOff) { domain, harness in
            // Pressed again until the guest, once booted and listening for the button, answers.
            try await harness.waitUntil("the domain to stop") {
                if domain.isActive { _ = try? domain.virsh("shutdown") }
                try await Task.sleep(for: .seconds(1))
                return !domain.isActive
            }
        }
        let powerdowns = recorded.events.prefix {
            $0 != EventSummary("SHUTDOWN", guest: true, reason: "guest-shutdown")
        }
        #expect(powerdowns.first == EventSummary("RESUME"))
        #expect(powerdowns.count >= 2 && powerdowns.dropFirst().allSatisfy { $0 == EventSummary("POWERDOWN") })
        #expect(
            recorded.events.dropFirst(powerdowns.count) == [
                EventSummary("SHUTDOWN", guest: true, reason: "guest-shutdown"), EventSummary("STOP"),
                EventSummary("SHUTDOWN", guest: false, reason: "host-signal"),
            ]
        )
        let shutdowns = try await recorded.report(.shutdowns)
        #expect(shutdowns.value("host_requested_acpi") == .integer(1))
        #expect(shutdowns.value("shutdowns") == .integer(1))
        // report stops: one run, one stop
        try await recorded.expectStops(["host-acpi"])
        try await recorded.expectPauses([])
    }

    @Test func virshDestroyIsAHostSignalShutdownAndEndsTheRun() async throws {
        let recorded = try await record(.idle) { domain, harness in
            try domain.virsh("destroy")
        }
        #expect(
            recorded.events == [EventSummary("RESUME"), EventSummary("SHUTDOWN", guest: false, reason: "host-signal")]
        )
        #expect(recorded.sessions.map(\.endReason) == ["domain-stopped: destroyed"])
        #expect(try await recorded.report(.shutdowns).value("host") == .integer(1))
        // report stops: one run, one stop
        try await recorded.expectStops(["host-signal"])
    }

    @Test func virshResetIsOneHostResetWhateverTheFirmwareAdds() async throws {
        let recorded = try await record(.idle) { domain, harness in
            try domain.virsh("reset")
            try await Task.sleep(for: .milliseconds(500))
            try domain.virsh("destroy")
        }
        try #require(recorded.events.count >= 4)
        #expect(recorded.events[0] == EventSummary("RESUME"))
        #expect(recorded.events[1] == EventSummary("RESET", guest: false, reason: "host-qmp-system-reset"))
        // SeaBIOS answers with guest resets of its own
        #expect(
            recorded.events.dropFirst(2).dropLast().allSatisfy {
                $0 == EventSummary("RESET", guest: true, reason: "guest-reset")
            }
        )
        let resets = try await recorded.report(.resets)
        #expect(resets.value("host") == .integer(1))
        #expect(resets.value("guest") == .integer(0))
        // report stops: one run, one stop
        try await recorded.expectStops(["host-signal"])
    }

    @Test func suspendAndResumeArePauseTimeInTheStatesReport() async throws {
        let recorded = try await record(.idle) { domain, harness in
            try domain.virsh("suspend")
            try await Task.sleep(for: .seconds(1))
            try domain.virsh("resume")
            try domain.virsh("destroy")
        }
        #expect(
            recorded.events == [
                EventSummary("RESUME"), EventSummary("STOP"), EventSummary("RESUME"),
                EventSummary("SHUTDOWN", guest: false, reason: "host-signal"),
            ]
        )
        let states = try await recorded.report(.states)
        let table = try #require(states.primaryTable)
        let paused = try #require(table.columns.firstIndex(of: "paused"))
        let row = try #require(table.rows.first { $0.first == .text(recorded.domainName) })
        guard case .duration(let microseconds) = row[paused] else {
            Issue.record("paused is \(row[paused])")
            return
        }
        #expect(microseconds >= 900_000 && microseconds < 10_000_000)
        // report stops: one run, one stop; report pauses: the suspend, not the start
        try await recorded.expectStops(["host-signal"])
        try await recorded.expectPauses(["host-stop"])
    }

    @Test func pvpanicIsAPanicAndLibvirtsCrashActionEndsTheRun() async throws {
        let recorded = try await record(.pvpanic) { domain, harness in
            try await harness.waitUntil("the domain to stop") { !domain.isActive }
        }
        // libvirt's default panic action pauses the guest, then destroys the domain: no SHUTDOWN.
        #expect(
            recorded.events == [
                EventSummary("RESUME"), EventSummary("GUEST_PANICKED", action: "pause"), EventSummary("STOP"),
            ]
        )
        #expect(recorded.sessions.map(\.endReason) == ["domain-stopped: crashed"])
        #expect(try await recorded.report(.panics).value("panics") == .integer(1))
        // report stops: one run, one stop
        try await recorded.expectStops(["guest-panic"])
        try await recorded.expectPauses(["guest-panic"])
    }

    @Test func killedQEMULeavesNoShutdownAndTheRunEndsAsFailed() async throws {
        let recorded = try await record(.idle) { domain, harness in
            let pid = try #require(domain.qemuProcessIdentifier)
            kill(pid, SIGKILL)
            try await harness.waitUntil("the domain to stop") { !domain.isActive }
        }
        #expect(recorded.events == [EventSummary("RESUME")])
        #expect(recorded.sessions.map(\.endReason) == ["domain-stopped: failed"])
        #expect(try await recorded.report(.shutdowns).value("shutdowns") == .integer(0))
        // report stops: one run, one stop
        try await recorded.expectStops(["killed"])
        try await recorded.expectPauses([])
    }

    @Test(.disabled(if: LibvirtDaemon.hostHasItsOwnDaemon, "restarts libvirtd: only one the tests started themselves"))
    func libvirtdRestartedWhileADomainRunsIsAGapThenANewSession() async throws {
        let daemon = try await LibvirtDaemon.shared()
        let recorded = try await record(.idle) { domain, harness in
            try await harness.waitUntil("one session") { try await Self.sessions(of: domain, in: harness).count == 1 }
            try await daemon.restart()
            try await harness.waitUntil("a second session") {
                try await Self.sessions(of: domain, in: harness).count == 2
            }
            try domain.virsh("suspend")
            try domain.virsh("destroy")
        }
        #expect(recorded.sessions.map(\.endReason) == ["libvirt-lost: end of file", "domain-stopped: destroyed"])
        // The domain kept running through the gap: the new session starts running.
        #expect(recorded.sessions.last?.initialStatus == "running")
        #expect(recorded.sessions.last?.initialRunning == true)
        #expect(
            recorded.events == [
                EventSummary("RESUME"), EventSummary("STOP"),
                EventSummary("SHUTDOWN", guest: false, reason: "host-signal"),
            ]
        )
        let gap = try #require(recorded.sessions.last?.startedAt) - (try #require(recorded.sessions.first?.endedAt))
        #expect(gap > 0)
        // report stops: one run, one stop
        try await recorded.expectStops(["host-signal"])
    }

    // MARK: - Helpers

    struct Recorded {
        var domainName: String
        var events: [EventSummary]
        var sessions: [Session]
        var database: EventDatabase

        /// `report stops` lists exactly stops of these classes for the domain.
        func expectStops(_ expected: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let incidents = try await report(.stops).tables.first { $0.name == "incidents" }
            let classes = (incidents?.rows ?? []).map { row in
                if case .text(let text) = row[2] { text } else { "?" }
            }
            #expect(
                classes == expected,
                "\(incidents?.rows ?? []) events \(events) sessions \(sessions.map { ($0.startedAt, $0.endedAt, $0.endReason) })",
                sourceLocation: sourceLocation
            )
        }

        /// `report pauses` lists exactly episodes of these causes: a libvirt start (`-S`, then `cont`) and
        /// a powered-off guest libvirt holds before it signals QEMU are no pauses.
        func expectPauses(_ expected: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let episodes = try await report(.pauses).tables.first { $0.name == "episodes" }
            let causes = (episodes?.rows ?? []).map { row in
                if case .text(let text) = row[3] { text } else { "?" }
            }
            #expect(causes == expected, "\(episodes?.rows ?? []) events \(events)", sourceLocation: sourceLocation)
        }

        func report(_ kind: ReportKind) async throws -> ReportResult {
            try await kind.run(
                on: database,
                query: ReportQuery(machines: [domainName], now: Int64(Date().timeIntervalSince1970 * 1_000_000))
            )
        }
    }

    /// Starts a recorder on the daemon, then a domain running `bootSector`; runs `drive`; waits for
    /// the domain's last session to end; stops the recorder. Returns the domain's rows.
    private func record(
        _ bootSector: BootSector,
        _ drive: (LibvirtTestDomain, RecordingHarness) async throws -> Void
    ) async throws -> Recorded {
        let daemon = try await LibvirtDaemon.shared()
        let harness = try RecordingHarness()
        defer { harness.remove() }
        let logs = InMemoryLogHandler()
        let service = harness.makeService(
            targets: [],
            libvirt: [LibvirtDaemon.uri],
            once: false,
            logger: Logger(label: "test", factory: { _ in logs })
        )
        var domain: LibvirtTestDomain?
        defer { domain?.remove() }
        try await testGracefulShutdown { trigger in
            async let recording: Void = service.run()
            try await harness.waitUntil("the recorder to connect") {
                logs.entries.contains { $0.message.description == "Connected to libvirt" }
            }
            let started = try LibvirtTestDomain(daemon: daemon, bootSector: bootSector)
            domain = started
            try await drive(started, harness)
            try await harness.waitUntil("the domain's run to end") {
                let sessions = try await Self.sessions(of: started, in: harness)
                return !sessions.isEmpty && sessions.allSatisfy { $0.endedAt != nil } && !started.isActive
            }
            trigger.triggerGracefulShutdown()
            try await recording
        }
        let started = try #require(domain)
        let machine = try #require(try await harness.database.allMachines().first { $0.name == started.name })
        #expect(machine.uuid == started.uuid)
        #expect(machine.identity == "name:\(started.name)")
        let events = try await harness.database.allEvents().filter { $0.machineId == machine.id }
        // A run's events never precede its session, however late libvirt delivered them
        let sessions = try await Self.sessions(of: started, in: harness)
        for event in events {
            let session = try #require(sessions.first { $0.id == event.sessionId })
            #expect(try #require(event.time) >= session.startedAt, "\(event) before \(session)")
        }
        for session in Set(events.map(\.sessionId)) {
            let seqs = events.filter { $0.sessionId == session }.map(\.seq)
            #expect(seqs == Array(1...Int64(seqs.count)), "arrival order is kept")
        }
        return Recorded(
            domainName: started.name,
            events: events.map(EventSummary.init),
            sessions: try await Self.sessions(of: started, in: harness),
            database: harness.database
        )
    }

    /// The domain's sessions, oldest first.
    static func sessions(of domain: LibvirtTestDomain, in harness: RecordingHarness) async throws -> [Session] {
        guard let machine = try await harness.database.allMachines().first(where: { $0.name == domain.name }) else {
            return []
        }
        return try await harness.database.allSessions().filter { $0.machineId == machine.id }.sorted { $0.id < $1.id }
    }
}

extension ReportResult {
    /// The summary value for `key`.
    func value(_ key: String) -> ReportValue? { summary.first { $0.key == key }?.value }
}
