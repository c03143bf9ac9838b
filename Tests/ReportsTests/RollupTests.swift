import Collector
import EventStore
import Foundation
import QMP
import QMPTestSupport
import Reports
import Testing

/// The rollup must not change a report: rollup facts plus the events after the cut read the same
/// as a scan of every event, in every format.
@Suite(.serialized)
struct RollupTests {
    /// The whole history, as `qmplog report` asks without --since/--until/--interval.
    static func wholeHistory(machines: [String] = []) -> ReportQuery {
        ReportQuery(machines: machines, byMachine: true, now: FixtureDatabase.now)
    }

    /// Cuts: after every event, and in the middle of the fleet's two days (sessions open across it).
    static let cuts: [Int64] = [FixtureDatabase.now, 1_795_790_000_000_000]

    @Test(arguments: cuts)
    func rollupAndTailReadTheSameAsAScan(now: Int64) async throws {
        let fleet = try await ReportGoldenTests.makeFleet()
        defer { fleet.remove() }
        var scanned: [ReportKind: ReportResult] = [:]
        for kind in ReportKind.allCases {
            scanned[kind] = try await fleet.run(kind, Self.wholeHistory())
        }

        let rollup = try await RollupBuilder.rebuild(fleet.database, now: now)

        #expect(rollup.cut <= now && now - rollup.cut < 3_600_000_000)
        // The middle cut leaves events on both sides; the last one leaves none after it.
        let rolledEvents = try #require(try await fleet.database.currentRollup(report: "summary")).facts.reduce(0) {
            $0 + $1.value
        }
        let allEvents = Int64(try await fleet.database.allEvents().count)
        #expect(rolledEvents > 0)
        #expect(now == FixtureDatabase.now ? rolledEvents == allEvents : rolledEvents < allEvents)
        for kind in ReportKind.allCases {
            let fromRollup = try await fleet.run(kind, Self.wholeHistory())
            for format in ReportFormat.allCases {
                #expect(
                    format.render(fromRollup) == format.render(try #require(scanned[kind])),
                    "\(kind) \(format) with the cut at \(rollup.cut)"
                )
            }
        }
        // --vm selects the rollup's facts of that VM only.
        let alpha = try await fleet.run(.shutdowns, Self.wholeHistory(machines: ["alpha"]))
        #expect(alpha.value("shutdowns") == .integer(3))
    }

    /// What a count carries over the cut: a SHUTDOWN repeated after it is still a duplicate, a
    /// GUEST_PANICKED repeated after it (QEMU < 6.0) still one panic with the last action, and a
    /// paused VM still paused.
    @Test func contextCarriedAcrossTheCut() async throws {
        let fixture = try await FixtureDatabase([
            (
                "old-qemu",
                [
                    .init(
                        lines: [
                            FixtureDatabase.event("STOP", at: 1_795_780_000),
                            FixtureDatabase.event(
                                "GUEST_PANICKED",
                                at: 1_795_780_100,
                                data:
                                    #"{"action": "pause", "info": {"type": "s390", "reason": "disabled-wait", "core": 0, "psw-mask": 0, "psw-addr": 0}}"#
                            ),
                            FixtureDatabase.event(
                                "GUEST_PANICKED",
                                at: 1_795_790_100,
                                data:
                                    #"{"action": "poweroff", "info": {"type": "s390", "reason": "disabled-wait", "core": 0, "psw-mask": 0, "psw-addr": 0}}"#
                            ),
                        ],
                        qemuVersion: "5.2.0",
                        open: true
                    )
                ]
            ),
            (
                "sigterm",
                [
                    .init(
                        lines: [
                            FixtureDatabase.event(
                                "SHUTDOWN",
                                at: 1_795_780_000,
                                data: #"{"guest": false, "reason": "host-signal"}"#
                            ),
                            FixtureDatabase.event(
                                "SHUTDOWN",
                                at: 1_795_790_100,
                                data: #"{"guest": false, "reason": "host-signal"}"#
                            ),
                        ],
                        open: true
                    )
                ]
            ),
        ])
        defer { fixture.remove() }
        var scanned: [ReportKind: ReportResult] = [:]
        for kind in ReportKind.allCases { scanned[kind] = try await fixture.run(kind, Self.wholeHistory()) }
        #expect(scanned[.panics]?.value("panics") == .integer(1))
        #expect(scanned[.shutdowns]?.value("duplicates_ignored") == .integer(1))

        try await RollupBuilder.rebuild(fixture.database, now: 1_795_790_000_000_000)

        for kind in ReportKind.allCases {
            let fromRollup = try await fixture.run(kind, Self.wholeHistory())
            #expect(ReportFormat.json.render(fromRollup) == ReportFormat.json.render(try #require(scanned[kind])))
        }
        let panics = try await fixture.run(.panics, Self.wholeHistory())
        #expect(panics.table("by_action")?.rows == [["poweroff", 1]])
    }

    @Test func aLateEventStampedBeforeTheCutMakesReportsScanAgain() async throws {
        let fleet = try await ReportGoldenTests.makeFleet()
        defer { fleet.remove() }
        try await RollupBuilder.rebuild(fleet.database, now: FixtureDatabase.now)
        let before = try await fleet.run(.summary, Self.wholeHistory())

        // A host clock behind ours: an event arrives after the build, stamped before the cut.
        let handle = try await fleet.database.beginSession(
            NewSession(
                machine: MachineIdentity(name: "alpha", uuid: nil, endpoint: "unix:/run/alpha.qmp"),
                endpoint: "unix:/run/alpha.qmp",
                qemuVersion: "7.2.22",
                qemuPackage: "fixture",
                initialStatus: "running",
                initialRunning: true,
                startedAt: 1_795_780_000_000_000
            )
        )
        guard
            case .event(let event) = try QMPMessage(frame: Array(FixtureDatabase.event("STOP", at: 1_795_780_001).utf8))
        else { throw QEMUTestError("not an event") }
        try await fleet.database.write(events: [NewEvent(event, session: handle, seq: 1, received: FixtureDatabase.now)]
        )

        #expect(try await fleet.database.currentRollup(report: "summary") == nil)
        let after = try await fleet.run(.summary, Self.wholeHistory())
        let eventsBefore = try #require(Self.count(before))
        #expect(Self.count(after) == eventsBefore + 1)
    }

    private static func count(_ result: ReportResult) -> Int64? {
        if case .integer(let value) = result.value("events") { return value }
        return nil
    }
}

/// Every quirk the reports correct, with its pair a moment either side of the rollup's cut: the
/// rollup plus the events after the cut must read as a scan does, in every report.
struct RollupCutQuirkTests {
    static let now: Int64 = 1_795_790_000_000_000
    /// The cut `now` gives: the start of its hour, in seconds.
    static let cut: Int64 = 1_795_788_000

    static func at(_ offset: Double) -> (Int64, Int64) {
        let micro = Int64((offset * 1_000_000).rounded())
        let total = cut * 1_000_000 + micro
        return (total / 1_000_000, total % 1_000_000)
    }

    static func event(_ name: String, _ offset: Double, data: String? = nil) -> String {
        let (seconds, micro) = at(offset)
        return FixtureDatabase.event(name, at: seconds, micro, data: data)
    }

    static let panicPause =
        #"{"action": "pause", "info": {"type": "hyper-v", "arg1": 1, "arg2": 0, "arg3": 0, "arg4": 0, "arg5": 0}}"#
    static let panicOff =
        #"{"action": "poweroff", "info": {"type": "hyper-v", "arg1": 1, "arg2": 0, "arg3": 0, "arg4": 0, "arg5": 0}}"#

    /// One VM per quirk, each attached from a minute before the cut; `open` leaves the sessions open.
    static func fleet(open: Bool) async throws -> FixtureDatabase {
        func vm(_ name: String, _ lines: [String], qemu: String = "7.2.22") -> (
            name: String, sessions: [FixtureDatabase.SessionSpec]
        ) {
            (name, [.init(lines: [event("RESUME", -60)] + lines, qemuVersion: qemu, open: open)])
        }
        return try await FixtureDatabase([
            vm(
                "acpi",
                [
                    event("POWERDOWN", -0.5),
                    event("SHUTDOWN", 0.5, data: #"{"guest": true, "reason": "guest-shutdown"}"#),
                ]
            ),
            vm(
                "sigterm",
                [
                    event("SHUTDOWN", -0.5, data: #"{"guest": false, "reason": "host-signal"}"#),
                    event("SHUTDOWN", 0.5, data: #"{"guest": false, "reason": "host-signal"}"#),
                ]
            ),
            vm(
                "double-panic",
                [
                    event("GUEST_PANICKED", -0.5, data: panicPause), event("GUEST_PANICKED", 0.5, data: panicOff),
                    event("SHUTDOWN", 0.6, data: #"{"guest": true, "reason": "guest-panic"}"#),
                ],
                qemu: "5.2.0"
            ),
            vm(
                "watchdog",
                [
                    event("WATCHDOG", -0.5, data: #"{"action": "reset"}"#),
                    event("RESET", 0.5, data: #"{"guest": true, "reason": "guest-reset"}"#),
                ]
            ),
            vm(
                "burst",
                [
                    event("RESET", -0.5, data: #"{"guest": false, "reason": "host-qmp-system-reset"}"#),
                    event("RESET", 0.2, data: #"{"guest": true, "reason": "guest-reset"}"#),
                    event("RESET", 0.9, data: #"{"guest": true, "reason": "guest-reset"}"#),
                ]
            ),
            vm(
                "held",
                [
                    event("SHUTDOWN", -0.5, data: #"{"guest": true, "reason": "guest-shutdown"}"#), event("STOP", -0.4),
                    event("RESET", 0.5, data: #"{"guest": false, "reason": "host-qmp-system-reset"}"#),
                    event("RESUME", 1),
                ]
            ),
            vm("paused", [event("STOP", -0.5), event("RESUME", 0.5)]),
            // A millisecond either side, with the panic's STOP between, recorded by a recorder whose
            // clock is 35 minutes ahead: its session starts after the cut (hostile input, round 2)
            (
                "double-panic-ms",
                [
                    .init(
                        lines: [
                            event("RESUME", -1800), event("GUEST_PANICKED", -0.001, data: panicPause),
                            event("STOP", -0.0005), event("GUEST_PANICKED", 0.001, data: panicOff),
                            event("SHUTDOWN", 0.002, data: #"{"guest": true, "reason": "guest-panic"}"#),
                        ],
                        qemuVersion: "5.2.0",
                        open: open,
                        recorderAhead: 2_100_000_000
                    )
                ]
            ),
            // A microsecond either side
            vm(
                "double-panic-us",
                [
                    event("GUEST_PANICKED", -0.000001, data: panicPause), event("GUEST_PANICKED", 0, data: panicOff),
                ],
                qemu: "5.2.0"
            ),
        ])
    }

    @Test(arguments: [true, false])
    func quirksStraddlingTheCutCountOnce(open: Bool) async throws {
        let fleet = try await Self.fleet(open: open)
        defer { fleet.remove() }
        let query = ReportQuery(byMachine: true, now: Self.now)
        var scanned: [ReportKind: String] = [:]
        for kind in ReportKind.allCases { scanned[kind] = ReportFormat.json.render(try await fleet.run(kind, query)) }

        let rollup = try await RollupBuilder.rebuild(fleet.database, now: Self.now)

        #expect(rollup.cut == Self.cut * 1_000_000)
        for kind in ReportKind.allCases {
            let fromRollup = ReportFormat.json.render(try await fleet.run(kind, query))
            #expect(fromRollup == scanned[kind], "\(kind), sessions open: \(open)")
        }
        // And the scan itself corrects each quirk once.
        let shutdowns = try await fleet.run(.shutdowns, query)
        #expect(shutdowns.value("host_requested_acpi") == .integer(1))
        #expect(shutdowns.value("duplicates_ignored") == .integer(1))
        let panics = try await fleet.run(.panics, query)
        #expect(panics.value("panics") == .integer(3))
        let resets = try await fleet.run(.resets, query)
        #expect(resets.value("watchdog") == .integer(1))
    }
}
