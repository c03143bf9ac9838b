import Collector
import EventStore
import Foundation
import QMP
import QMPTestSupport
import Reports
import Testing

/// `report stops` on histories real QEMU cannot produce here: unwatched stops, crash loops at their
/// thresholds, a QEMU < 6.0 double panic.
struct StopReportTests {
    static let t0: Int64 = 1_796_000_000_000_000
    static let second: Int64 = 1_000_000

    @Test func aVMFoundFreshlyStartedAfterAGapStoppedUnseen() async throws {
        try await withDatabase { database in
            // Given a recorder stopped while the VM ran, and a later session that finds QEMU just started
            try await Self.session(database, at: 0, until: 10, reason: "recorder-stopped", events: [("RESUME", 1)])
            try await Self.session(database, at: 60, until: 70, status: "prelaunch", reason: "eof", events: [])
            // And a reattach to a VM that kept running (no stop)
            try await Self.session(
                database,
                at: 100,
                until: 110,
                status: "running",
                reason: "recorder-stopped",
                events: []
            )
            try await Self.session(
                database,
                at: 120,
                until: 130,
                status: "running",
                reason: "recorder-stopped",
                events: []
            )
            let result = try await Self.stops(database)
            let incidents = try #require(result.tables.first { $0.name == "incidents" })
            // Then: one unknown stop at the first gap's start, and the run that ended with eof killed
            #expect(incidents.rows.map { $0[2] } == [.text("unknown"), .text("killed")])
            #expect(incidents.rows.first?[1] == .time(Self.t0 + 10 * Self.second))
        }
    }

    @Test(arguments: [(3, 600, 1), (3, 599, 0), (4, 600, 0), (2, 300, 1)])
    func crashLoopsAtTheirThresholds(count: Int, windowSeconds: Int64, loops: Int) async throws {
        try await withDatabase { database in
            // Given three kills 300 s apart: 600 s from the first to the third
            for index in 0..<3 {
                let start = Int64(index) * 300
                try await Self.session(
                    database,
                    at: start,
                    until: start + 1,
                    status: "prelaunch",
                    reason: "eof",
                    events: []
                )
            }
            let result = try await Self.stops(database, count: count, window: windowSeconds)
            #expect(result.summary.first { $0.key == "killed" }?.value == .integer(3))
            #expect(result.summary.first { $0.key == "crash_loops" }?.value == .integer(Int64(loops)))
        }
    }

    @Test func aDoublePanicOfOldQEMUIsOneCrash() async throws {
        try await withDatabase { database in
            // QEMU < 6.0: GUEST_PANICKED pause, then GUEST_PANICKED poweroff, per panic
            var events: [(String, Int64, String?)] = []
            for panic in 0..<2 {
                let at = Int64(panic) * 100
                events += [
                    ("RESUME", at, nil), ("GUEST_PANICKED", at + 1, #"{"action":"pause"}"#),
                    ("GUEST_PANICKED", at + 1, #"{"action":"poweroff"}"#),
                ]
            }
            try await Self.session(database, at: 0, until: 300, reason: "eof", detailed: events)
            // Then two panics in 100 s are no crash loop of three
            #expect(try await Self.stops(database).summary.first { $0.key == "crash_loops" }?.value == .integer(0))
            #expect(
                try await Self.stops(database, count: 2).summary.first { $0.key == "crash_loops" }?.value == .integer(1)
            )
        }
    }

    // MARK: - Helpers

    private func withDatabase(_ body: (EventDatabase) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await body(try EventDatabase.openForWriting(path: directory.file("events.sqlite")))
    }

    static func stops(_ database: EventDatabase, count: Int = 3, window: Int64 = 600) async throws -> ReportResult {
        try await ReportKind.stops.run(
            on: database,
            query: ReportQuery(crashLoopCount: count, crashLoopWindow: window * second, now: t0 + 86_400 * second)
        )
    }

    static func session(
        _ database: EventDatabase,
        at start: Int64,
        until end: Int64,
        status: String = "running",
        reason: String,
        events: [(String, Int64)]
    ) async throws {
        try await session(
            database,
            at: start,
            until: end,
            status: status,
            reason: reason,
            detailed: events.map { ($0.0, $0.1, nil) }
        )
    }

    /// A session of VM `vm` from `start` (seconds after `t0`) with `events`, ended at `end` for
    /// `reason`, or still open when `end` is `nil`.
    static func session(
        _ database: EventDatabase,
        at start: Int64,
        until end: Int64?,
        status: String = "running",
        reason: String,
        detailed events: [(String, Int64, String?)]
    ) async throws {
        let handle = try await database.beginSession(
            NewSession(
                machine: MachineIdentity(name: "vm", uuid: nil, endpoint: "unix:/run/vm.qmp"),
                endpoint: "unix:/run/vm.qmp",
                qemuVersion: "7.2.22",
                qemuPackage: "",
                initialStatus: status,
                initialRunning: status == "running",
                startedAt: t0 + start * second
            )
        )
        let rows = try events.enumerated().map { index, event in
            let time = t0 + event.1 * second
            let data = try event.2.map { try JSONValue(parsing: Array($0.utf8)) }
            let qmp = QMPEvent(name: event.0, seconds: time / second, microseconds: 0, data: data, dataText: event.2)
            return NewEvent(qmp, session: handle, seq: Int64(index + 1), received: time)
        }
        try await database.write(
            events: rows,
            endings: end.map { [SessionEnd(sessionId: handle.sessionId, endedAt: t0 + $0 * second, reason: reason)] }
                ?? []
        )
    }
}
