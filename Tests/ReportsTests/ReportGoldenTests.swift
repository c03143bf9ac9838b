import EventStore
import Foundation
import QMP
import QMPTestSupport
import Reports
import Testing

/// Every report in every format over one fleet built from real QEMU 7.2 transcripts (fixtures/)
/// plus one VM with crash information real QEMU cannot produce here (s390, hyper-v, watchdog).
@Suite(.serialized)
struct ReportGoldenTests {
    static let hour: Int64 = 3_600_000_000

    static func makeFleet() async throws -> FixtureDatabase {
        try await FixtureDatabase([
            (
                "alpha",
                [
                    .init(lines: try FixtureDatabase.transcript("host-stop-cont-quit")),
                    .init(lines: try FixtureDatabase.transcript("guest-acpi-poweroff"), offset: 1 * hour),
                    .init(lines: try FixtureDatabase.transcript("host-sigterm"), offset: 30 * hour),
                ]
            ),
            (
                "beta",
                [
                    .init(lines: try FixtureDatabase.transcript("host-system-reset")),
                    .init(lines: try FixtureDatabase.transcript("guest-panic-pvpanic-poweroff"), offset: 2 * hour),
                    .init(lines: try FixtureDatabase.transcript("guest-acpi-poweroff-no-shutdown"), offset: 26 * hour),
                ]
            ),
            (
                "gamma",
                [
                    .init(lines: try FixtureDatabase.transcript("guest-reset-no-reboot")),
                    .init(lines: try FixtureDatabase.transcript("host-powerdown-no-acpi-guest"), offset: 3 * hour),
                    .init(
                        lines: try FixtureDatabase.transcript("guest-panic-pvpanic-pause"),
                        offset: 4 * hour,
                        open: true
                    ),
                ]
            ),
            (
                // Synthetic: what real QEMU cannot produce here.
                "delta",
                [
                    .init(
                        lines: [
                            FixtureDatabase.event("RESUME", at: 1_795_775_000),
                            FixtureDatabase.event("WATCHDOG", at: 1_795_775_100, data: #"{"action": "reset"}"#),
                            FixtureDatabase.event(
                                "RESET",
                                at: 1_795_775_100,
                                200,
                                data: #"{"guest": true, "reason": "guest-reset"}"#
                            ),
                            FixtureDatabase.event(
                                "GUEST_PANICKED",
                                at: 1_795_775_200,
                                data:
                                    #"{"action": "pause", "info": {"core": 0, "psw-mask": 562956395315200, "psw-addr": 18446744073709551615, "reason": "disabled-wait", "type": "s390"}}"#
                            ),
                            FixtureDatabase.event("RESUME", at: 1_795_775_300),
                            FixtureDatabase.event(
                                "GUEST_PANICKED",
                                at: 1_795_775_400,
                                data:
                                    #"{"action": "poweroff", "info": {"type": "hyper-v", "arg1": 209, "arg2": 1, "arg3": 2, "arg4": 3, "arg5": 4}}"#
                            ),
                            FixtureDatabase.event("POWERDOWN", at: 1_795_775_500),
                            FixtureDatabase.event(
                                "SHUTDOWN",
                                at: 1_795_775_530,
                                data: #"{"guest": true, "reason": "guest-shutdown"}"#
                            ),
                        ],
                        initialStatus: "running"
                    )
                ]
            ),
        ])
    }

    @Test(arguments: ReportKind.allCases)
    func everyReportMatchesItsGoldenFiles(_ kind: ReportKind) async throws {
        let fleet = try await Self.makeFleet()
        defer { fleet.remove() }
        let plain = try await fleet.run(kind, FixtureDatabase.query(byMachine: true))
        for format in ReportFormat.allCases {
            try assertSnapshot(format.render(plain), named: "\(kind.rawValue).\(format.rawValue)")
        }
        // The JSON contract: one object, unique snake_case keys, report/since/until/vms/summary first, caveats last.
        guard case .object(let members) = try JSONValue(parsing: Array(ReportFormat.json.render(plain).utf8)) else {
            Issue.record("JSON output is not an object")
            return
        }
        let keys = members.map(\.key)
        #expect(Set(keys).count == keys.count)
        #expect(Array(keys.prefix(5)) == ["report", "since", "until", "vms", "summary"])
        #expect(keys.last == "caveats")
        #expect(keys.allSatisfy { $0 == $0.lowercased() && !$0.contains("-") && !$0.contains(" ") })
        let series = try await fleet.run(kind, FixtureDatabase.query(interval: .day))
        try assertSnapshot(ReportFormat.csv.render(series), named: "\(kind.rawValue).day.csv")
    }

    @Test func vmListMatchesItsGoldenFile() async throws {
        let fleet = try await Self.makeFleet()
        defer { fleet.remove() }
        let database = try EventDatabase.openForReading(path: fleet.directory.file("events.sqlite"))
        let result = try await MachineListReport.run(on: database, now: FixtureDatabase.now)
        try assertSnapshot(ReportFormat.table.render(result), named: "vms.table")
        // Its JSON keeps the reports' contract: one object with unique keys.
        guard case .object(let members) = try JSONValue(parsing: Array(ReportFormat.json.render(result).utf8)) else {
            Issue.record("JSON output is not an object")
            return
        }
        let keys = members.map(\.key)
        #expect(Set(keys).count == keys.count, "\(keys)")
        #expect(keys == ["report", "since", "until", "vms", "summary", "known_vms", "caveats"])
    }

    @Test func shutdownsCountTheFleetsRealQEMUShutdownsCorrectly() async throws {
        let fleet = try await Self.makeFleet()
        defer { fleet.remove() }
        let result = try await fleet.run(.shutdowns)
        // alpha: quit (host), guest ACPI off (guest), SIGTERM (host); beta: quit, guest panic (guest),
        // guest off with -no-shutdown (guest) then quit (host, after STOP: a new shutdown? no RESUME between → duplicate);
        // gamma: guest reset (guest), quit after POWERDOWN (host), quit (host); delta: POWERDOWN→guest off (host ACPI).
        #expect(result.value("guest") == .integer(4))
        #expect(result.value("host") == .integer(5))
        #expect(result.value("host_requested_acpi") == .integer(1))
        #expect(result.value("duplicates_ignored") == .integer(1))
    }
}

extension ReportGoldenTests {
    @Test func stopsClassifyEveryRunOfTheFleet() async throws {
        let fleet = try await Self.makeFleet()
        defer { fleet.remove() }
        let result = try await fleet.run(.stops)
        // alpha: quit, guest ACPI off, SIGTERM; beta: quit after a reset, pvpanic poweroff, guest off
        // held by -no-shutdown then quit (one stop); gamma: -no-reboot reset, quit after an unanswered
        // POWERDOWN, quit after a panic pause; delta: POWERDOWN answered by the guest.
        #expect(result.value("stops") == .integer(10))
        #expect(result.value("host_qmp_quit") == .integer(4))
        #expect(result.value("guest_poweroff") == .integer(2))
        #expect(result.value("host_acpi") == .integer(1))
        #expect(result.value("host_signal") == .integer(1))
        #expect(result.value("guest_panic") == .integer(1))
        #expect(result.value("guest_reset_no_reboot") == .integer(1))
        #expect(result.value("killed") == .integer(0))
        // delta: a watchdog reset and two panics within 5 minutes
        #expect(result.value("crash_loops") == .integer(1))
    }
}

extension ReportGoldenTests {
    @Test func pausesFollowEveryEpisodeOfTheFleet() async throws {
        let fleet = try await Self.makeFleet()
        defer { fleet.remove() }
        let result = try await fleet.run(.pauses)
        // alpha's stop/cont is a pause, and gamma's panic with action pause is still going (its
        // session is open). The nine runs started with -S are no pause until cont (prelaunch), nor
        // is beta's guest held shut down by -no-shutdown until quit: `report states` has both.
        #expect(result.value("episodes") == .integer(2))
        #expect(result.value("host_stop") == .integer(1))
        #expect(result.value("shutdown_held") == nil)
        #expect(result.value("guest_panic") == .integer(1))
        #expect(result.value("ongoing") == .integer(1))
    }
}

extension ReportGoldenTests {
    /// One VM's timeline in every format: gamma's -no-reboot reset, its unanswered POWERDOWN and
    /// quit, and its panic pause still going, with the gaps between its sessions.
    @Test func timelineMatchesItsGoldenFiles() async throws {
        let fleet = try await Self.makeFleet()
        defer { fleet.remove() }
        let database = try EventDatabase.openForReading(path: fleet.directory.file("events.sqlite"))
        let result = try await TimelineReport.run(on: database, query: FixtureDatabase.query(machines: ["gamma"]))
        for format in ReportFormat.allCases {
            try assertSnapshot(format.render(result), named: "timeline.\(format.rawValue)")
        }
        #expect(result.value("gaps") == .integer(2))
        #expect(result.value("stops") == .integer(3))
        let kinds = try #require(result.tables.first?.rows.map { $0[2] })
        #expect(kinds.first == .text("session"))
        // Only the panic's pause: gamma's starts with -S are prelaunch, no pause
        #expect(kinds.filter { $0 == .text("pause") }.count == 1)
        // Every VM's timeline needs its name
        await #expect(throws: ReportsError.self) {
            try await TimelineReport.run(on: database, query: FixtureDatabase.query())
        }
    }
}
