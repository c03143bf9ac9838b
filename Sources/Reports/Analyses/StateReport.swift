import EventStore
import GRDB

/// Time each VM spent running, paused, suspended and shut down, from its sessions and events.
///
/// A session starts in the state `query-status` reported at attach; STOP, RESUME, SUSPEND,
/// SUSPEND_DISK, WAKEUP and SHUTDOWN move it; the session's end ends what is known. Time outside
/// every session is **unknown**, never guessed.
enum StateReport {
    enum State: String, CaseIterable {
        case running, paused, suspended, shutdown
    }

    static let stateEvents = ["STOP", "RESUME", "SUSPEND", "SUSPEND_DISK", "WAKEUP", "SHUTDOWN"]

    /// The state `query-status` reports, in four buckets. Unknown statuses count as paused (not running).
    static func state(forStatus status: String?) -> State {
        switch status {
        case "running": .running
        case "suspended": .suspended
        case "shutdown": .shutdown
        default: .paused  // paused, prelaunch, inmigrate, postmigrate, io-error, guest-panicked, watchdog, …
        }
    }

    static func state(after event: String, from state: State) -> State {
        switch event {
        case "STOP": .paused
        case "RESUME", "WAKEUP": .running
        case "SUSPEND", "SUSPEND_DISK": .suspended
        case "SHUTDOWN": .shutdown
        default: state
        }
    }

    /// Durations per state within the window, with an optional series split per bucket.
    struct Accumulator {
        let windowStart: Int64
        let windowEnd: Int64
        let interval: ReportInterval?
        var totals: [State: Int64] = [:]
        var covered: Int64 = 0
        /// The end of the last session already counted for this VM.
        var coveredUntil: Int64 = .min
        var buckets: [Int64: [State: Int64]] = [:]

        mutating func add(_ state: State, from: Int64, to: Int64) {
            var start = max(from, windowStart)
            let end = min(to, windowEnd)
            guard end > start else { return }
            totals[state, default: 0] += end - start
            covered += end - start
            guard let interval else { return }
            while start < end {
                let bucket = interval.bucket(of: start)
                let stop = min(end, bucket + interval.length)
                buckets[bucket, default: [:]][state, default: 0] += stop - start
                start = stop
            }
        }
    }

    static func run(_ data: ReportData) async throws -> ReportResult {
        let query = data.query
        let sessions = try await data.sessions()
        let windowStart = query.since ?? sessions.map(\.startedAt).min() ?? query.end
        let windowEnd = query.end
        // One session's state changes at a time, streamed in arrival order through the
        // UNIQUE(sessionId, seq) index: memory does not grow with the number of events.
        let changes = """
            SELECT name, COALESCE(time, received) FROM event
            WHERE sessionId = ? AND name IN (\(stateEvents.map { _ in "?" }.joined(separator: ",")))
            ORDER BY seq
            """
        let (perMachine, openSessions) = try await data.database.writer.read { db in
            var perMachine: [Int64: Accumulator] = [:]
            var openSessions = 0
            let statement = try db.cachedStatement(sql: changes)
            for session in sessions {
                var accumulator =
                    perMachine[session.machineId]
                    ?? Accumulator(windowStart: windowStart, windowEnd: windowEnd, interval: query.interval)
                let end = session.endedAt ?? query.now
                if session.endedAt == nil { openSessions += 1 }
                // Overlapping sessions of one VM (two monitors) must not count the same time twice.
                var time = max(session.startedAt, accumulator.coveredUntil)
                var state = state(forStatus: session.initialStatus)
                let cursor = try Row.fetchCursor(statement, arguments: StatementArguments([session.id] + stateEvents))
                while let row = try cursor.next() {
                    let at = min(max(row[1] as Int64, time), end)
                    accumulator.add(state, from: time, to: at)
                    time = at
                    state = self.state(after: row[0], from: state)
                }
                accumulator.add(state, from: time, to: end)
                accumulator.coveredUntil = max(accumulator.coveredUntil, end)
                perMachine[session.machineId] = accumulator
            }
            return (perMachine, openSessions)
        }
        let windowLength = max(0, windowEnd - windowStart)
        let ids = data.machineNames.keys.sorted { data.name(of: $0) < data.name(of: $1) }
        let columns = ["vm"] + State.allCases.map(\.rawValue) + ["unknown"]
        let rows = ids.map { id -> [ReportValue] in
            let accumulator = perMachine[id]
            let durations: [ReportValue] = State.allCases.map { .duration(accumulator?.totals[$0] ?? 0) }
            return [.text(data.name(of: id))] + durations + [.duration(windowLength - (accumulator?.covered ?? 0))]
        }
        var tables = [ReportTable(name: "by_vm", title: "Time per VM and state", columns: columns, rows: rows)]
        if let interval = query.interval {
            var seriesRows: [[ReportValue]] = []
            var bucket = interval.bucket(of: windowStart)
            while bucket < windowEnd, windowLength > 0 {
                let length = min(windowEnd, bucket + interval.length) - max(windowStart, bucket)
                for id in ids {
                    let states = perMachine[id]?.buckets[bucket] ?? [:]
                    let covered = states.values.reduce(0, +)
                    let durations: [ReportValue] = State.allCases.map { .duration(states[$0] ?? 0) }
                    seriesRows.append(
                        [.time(bucket), .text(data.name(of: id))] + durations + [.duration(length - covered)]
                    )
                }
                bucket += interval.length
            }
            tables.insert(
                ReportTable(
                    name: "series",
                    title: "Time per \(interval.rawValue), VM and state",
                    columns: ["bucket"] + columns,
                    rows: seriesRows
                ),
                at: 0
            )
        }
        var caveats = [
            "unknown: time when qmplog was not attached to the VM (no session); nothing is guessed for it.",
            "paused includes every non-running status QEMU reports at attach (prelaunch, inmigrate, io-error, …).",
        ]
        if openSessions > 0 {
            caveats.append(
                "\(openSessions) session(s) have not ended; they are counted up to now (a recorder still attached, or one that was killed)."
            )
        }
        return ReportResult(
            report: "states",
            query: query,
            summary: [("vms", .count(ids.count)), ("window", .duration(windowLength))],
            tables: tables,
            caveats: caveats
        )
    }
}
