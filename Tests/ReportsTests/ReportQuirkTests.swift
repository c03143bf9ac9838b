import EventStore
import Foundation
import QMPTestSupport
import Reports
import Testing

/// Each QEMU quirk the reports correct for, on events written by the test.
///
/// These sequences are synthetic where real QEMU cannot produce them here (a guest OS that honours
/// the ACPI power button, QEMU < 6.0's double panic, other architectures' crash information, a
/// firing watchdog); the real-QEMU sequences are in the golden tests.
struct ReportQuirkTests {
    static let t0: Int64 = 1_795_000_000

    @Test func aGuestShutdownAfterAPowerdownIsHostRequestedWithinTheWindowOnly() async throws {
        let fixture = try await FixtureDatabase([
            (
                "vm1",
                [
                    .init(lines: [
                        FixtureDatabase.event("POWERDOWN", at: Self.t0),
                        FixtureDatabase.event(
                            "SHUTDOWN",
                            at: Self.t0 + 20,
                            data: #"{"guest": true, "reason": "guest-shutdown"}"#
                        ),
                    ]),
                    .init(lines: [
                        FixtureDatabase.event("POWERDOWN", at: Self.t0 + 1000),
                        FixtureDatabase.event(
                            "SHUTDOWN",
                            at: Self.t0 + 1400,
                            data: #"{"guest": true, "reason": "guest-shutdown"}"#
                        ),
                    ]),
                    .init(lines: [
                        FixtureDatabase.event(
                            "SHUTDOWN",
                            at: Self.t0 + 5000,
                            data: #"{"guest": false, "reason": "host-qmp-quit"}"#
                        )
                    ]),
                ]
            )
        ])
        defer { fixture.remove() }

        let result = try await fixture.run(.shutdowns)

        #expect(result.value("host_requested_acpi") == .integer(1))
        #expect(result.value("guest") == .integer(1), "400 s after the POWERDOWN is past the 300 s window")
        #expect(result.value("host") == .integer(1))
        #expect(result.value("guest_host_ratio") == .number(0.5))
        var wide = FixtureDatabase.query()
        wide.powerdownWindow = 500_000_000
        #expect(try await fixture.run(.shutdowns, wide).value("host_requested_acpi") == .integer(2))
    }

    @Test func aRepeatedShutdownInOneSessionIsOneShutdownUntilTheVMRunsAgain() async throws {
        let sigterm = #"{"guest": false, "reason": "host-signal"}"#
        let fixture = try await FixtureDatabase([
            (
                "vm1",
                [
                    .init(lines: [
                        FixtureDatabase.event("SHUTDOWN", at: Self.t0, data: sigterm),
                        FixtureDatabase.event("SHUTDOWN", at: Self.t0, 5, data: sigterm),
                        FixtureDatabase.event("RESUME", at: Self.t0 + 10),
                        FixtureDatabase.event("SHUTDOWN", at: Self.t0 + 20, data: #"{"reason": "guest-shutdown"}"#),
                    ])
                ]
            )
        ])
        defer { fixture.remove() }

        let result = try await fixture.run(.shutdowns)

        #expect(result.value("shutdowns") == .integer(2))
        #expect(result.value("duplicates_ignored") == .integer(1))
        #expect(result.value("unknown") == .integer(1), "no guest flag: QEMU < 2.10")
        #expect(result.table("by_reason")?.rows.first == ["host", "host-signal", 1])
    }

    @Test func qemuBefore6DoublePanicIsOnePanicWithTheLastAction() async throws {
        let hyperv =
            #"{"action": "pause", "info": {"type": "hyper-v", "arg1": 126, "arg2": 0, "arg3": 0, "arg4": 0, "arg5": 18446744073709551615}}"#
        let fixture = try await FixtureDatabase([
            (
                "win",
                [
                    .init(
                        lines: [
                            FixtureDatabase.event("GUEST_PANICKED", at: Self.t0, data: hyperv),
                            FixtureDatabase.event(
                                "GUEST_PANICKED",
                                at: Self.t0,
                                10,
                                data: hyperv.replacingOccurrences(of: "\"pause\"", with: "\"poweroff\"")
                            ),
                            FixtureDatabase.event(
                                "SHUTDOWN",
                                at: Self.t0,
                                20,
                                data: #"{"guest": true, "reason": "guest-panic"}"#
                            ),
                        ],
                        qemuVersion: "5.2.0"
                    )
                ]
            ),
            (
                "s390",
                [
                    .init(lines: [
                        FixtureDatabase.event(
                            "GUEST_PANICKED",
                            at: Self.t0 + 100,
                            data:
                                #"{"action": "pause", "info": {"core": 0, "psw-mask": 562956395315200, "psw-addr": 4660, "reason": "disabled-wait", "type": "s390"}}"#
                        ),
                        FixtureDatabase.event("RESUME", at: Self.t0 + 200),
                        FixtureDatabase.event(
                            "GUEST_PANICKED",
                            at: Self.t0 + 300,
                            data:
                                #"{"action": "pause", "info": {"core": 1, "psw-mask": 0, "psw-addr": 0, "reason": "brand-new-loop", "type": "s390"}}"#
                        ),
                    ])
                ]
            ),
        ])
        defer { fixture.remove() }

        let result = try await fixture.run(.panics)

        #expect(result.value("panics") == .integer(3))
        #expect(result.value("repeated_events_merged") == .integer(1))
        #expect(result.table("by_type")?.rows == [["s390", 2], ["hyper-v", 1]])
        #expect(result.table("hyperv_by_code")?.rows == [["0x0000007E", 1]])
        #expect(
            result.table("s390_by_reason")?.rows == [["brand-new-loop", 1], ["disabled-wait", 1]],
            "ties in key order"
        )
        #expect(result.table("by_action")?.rows == [["pause", 2], ["poweroff", 1]])
    }

    @Test func resetsAfterAWatchdogAreTheWatchdogsAndFirmwareBurstsAreOneReset() async throws {
        let guestReset = #"{"guest": true, "reason": "guest-reset"}"#
        let fixture = try await FixtureDatabase([
            (
                "vm1",
                [
                    .init(lines: [
                        FixtureDatabase.event("WATCHDOG", at: Self.t0, data: #"{"action": "reset"}"#),
                        FixtureDatabase.event("RESET", at: Self.t0 + 1, data: guestReset),
                        FixtureDatabase.event(
                            "RESET",
                            at: Self.t0 + 60,
                            data: #"{"guest": false, "reason": "host-qmp-system-reset"}"#
                        ),
                        FixtureDatabase.event("RESET", at: Self.t0 + 60, 70_000, data: guestReset),
                        FixtureDatabase.event("RESET", at: Self.t0 + 60, 900_000, data: guestReset),
                        FixtureDatabase.event("RESET", at: Self.t0 + 120, data: guestReset),
                    ])
                ]
            )
        ])
        defer { fixture.remove() }

        let result = try await fixture.run(.resets)

        #expect(result.value("reset_events") == .integer(5))
        #expect(result.value("distinct_resets") == .integer(3))
        #expect(result.value("watchdog") == .integer(1))
        #expect(result.value("host") == .integer(1))
        #expect(result.value("guest") == .integer(1))
        let watchdog = try await fixture.run(.watchdog)
        #expect(watchdog.value("firings") == .integer(1))
        #expect(watchdog.caveats.first?.contains("lower bounds") == true)
    }

    @Test func statesCountOnlyObservedTimeAndLeaveGapsUnknown() async throws {
        // Session 1 (t0-1 … t0+31): prelaunch 1 s, running 30 s (the -1/-1 STOP and RESUME take the
        // previous event's time, t0+10), paused 1 s. Gap of 69 s: unknown.
        // Session 2 (t0+100 … t0+111): attached running, 1 s; SHUTDOWN at t0+101, 9 s shut down; the RESET
        // at t0+110 leaves QEMU in prelaunch (not running, nor paused): 1 s prelaunch.
        let fixture = try await FixtureDatabase([
            (
                "vm1",
                [
                    .init(lines: [
                        FixtureDatabase.event("RESUME", at: Self.t0),
                        FixtureDatabase.event("STOP", at: Self.t0 + 10),
                        FixtureDatabase.event("STOP", at: -1, -1),
                        FixtureDatabase.event("RESUME", at: -1, -1),
                        FixtureDatabase.event("STOP", at: Self.t0 + 30),
                    ]),
                    .init(
                        lines: [
                            FixtureDatabase.event(
                                "SHUTDOWN",
                                at: Self.t0 + 101,
                                data: #"{"guest": true, "reason": "guest-shutdown"}"#
                            ),
                            FixtureDatabase.event("RESET", at: Self.t0 + 110),
                        ],
                        initialStatus: "running"
                    ),
                ]
            )
        ])
        defer { fixture.remove() }
        let second: Int64 = 1_000_000
        let since = (Self.t0 - 1) * second
        let until = (Self.t0 + 111) * second

        let result = try await fixture.run(.states, ReportQuery(since: since, until: until, now: until))

        let row = try #require(result.table("by_vm")?.rows.first)
        #expect(
            row == [
                "vm1", .duration(31 * second), .duration(1 * second), .duration(0), .duration(9 * second),
                .duration(2 * second), .duration(69 * second),
            ]
        )
    }

    @Test func aSessionALostRecorderLeftOpenCountsOnlyUntilItsLastEventOnceEnded() async throws {
        // Session 1, left open by a killed recorder: attached t0-1 (in prelaunch),
        // running at t0, paused at t0+10. Session 2, a new recorder: attached t0+99 running, paused
        // at t0+150, ended t0+151.
        let fixture = try await FixtureDatabase([
            (
                "vm1",
                [
                    .init(
                        lines: [
                            FixtureDatabase.event("RESUME", at: Self.t0),
                            FixtureDatabase.event("STOP", at: Self.t0 + 10),
                        ],
                        open: true
                    ),
                    .init(
                        lines: [
                            FixtureDatabase.event("RESUME", at: Self.t0 + 100),
                            FixtureDatabase.event("STOP", at: Self.t0 + 150),
                        ],
                        initialStatus: "running"
                    ),
                ]
            )
        ])
        defer { fixture.remove() }
        let second: Int64 = 1_000_000
        let query = ReportQuery(
            since: (Self.t0 - 1) * second,
            until: (Self.t0 + 200) * second,
            now: (Self.t0 + 200) * second
        )
        func row() async throws -> [ReportValue] {
            try #require(try await fixture.run(.states, query).table("by_vm")?.rows.first)
        }
        // While open, the lost session seems to last until now, paused, and hides the second one
        let lostOpen = try await row()
        #expect(
            lostOpen == [
                "vm1", .duration(10 * second), .duration(190 * second), .duration(0), .duration(0),
                .duration(1 * second),
                .duration(0),
            ]
        )

        // Once ended at its last event (what a recorder starting alone does), both sessions count
        _ = try await fixture.database.endAbandonedSessions()
        let ended = try await row()
        #expect(
            ended == [
                "vm1", .duration(61 * second), .duration(1 * second), .duration(0), .duration(0), .duration(1 * second),
                .duration(138 * second),
            ]
        )
    }

    @Test func aVMNobodyRecordedIsAnErrorNamingTheKnownOnes() async throws {
        let fixture = try await FixtureDatabase([("vm1", [.init(lines: [FixtureDatabase.event("STOP", at: Self.t0)])])])
        defer { fixture.remove() }
        let error = await #expect(throws: ReportsError.self) {
            try await fixture.run(.summary, FixtureDatabase.query(machines: ["vm9"]))
        }
        #expect(
            error?.message.hasSuffix("no VM named vm9 in \(fixture.directory.file("events.sqlite")); known VMs: vm1")
                == true
        )
    }

    @Test(arguments: ReportKind.allCases)
    func anEmptyDatabaseGivesAnEmptyReport(_ kind: ReportKind) async throws {
        let fixture = try await FixtureDatabase([])
        defer { fixture.remove() }
        let result = try await fixture.run(kind)
        #expect(result.tables.allSatisfy { $0.rows.isEmpty })
    }

    /// A window that starts before the first event bounds nothing (reports then read the whole
    /// history in arrival order); one that starts later cuts at its start exactly, through the
    /// time index.
    @Test func aWindowCountsTheEventsFromItsStartWhereverThatFalls() async throws {
        let fixture = try await FixtureDatabase([
            (
                "vm1",
                [
                    .init(lines: [
                        FixtureDatabase.event("STOP", at: Self.t0),
                        FixtureDatabase.event("RESUME", at: Self.t0 + 10),
                        FixtureDatabase.event("STOP", at: Self.t0 + 20),
                    ])
                ]
            )
        ])
        defer { fixture.remove() }
        let second: Int64 = 1_000_000
        func eventCount(since: Int64) async throws -> Int64 {
            let result = try await fixture.run(.summary, FixtureDatabase.query(since: since * second))
            return try #require(result.table("events_by_name")).rows.reduce(0) { total, row in
                guard case .integer(let count) = row[1] else { return total }
                return total + count
            }
        }

        #expect(try await eventCount(since: Self.t0 - 86_400) == 3)
        #expect(try await eventCount(since: Self.t0) == 3)
        #expect(try await eventCount(since: Self.t0 + 1) == 2)
        #expect(try await eventCount(since: Self.t0 + 20) == 1)
        #expect(try await eventCount(since: Self.t0 + 21) == 0)
    }
}
