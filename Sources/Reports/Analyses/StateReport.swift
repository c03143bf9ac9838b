import EventStore

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
        // Sessions and state changes are walked together in (machine, session, seq) order: one pass
        // over a cursor, so memory does not grow with the number of events.
        let ordered = sessions.sorted { ($0.machineId, $0.id) < ($1.machineId, $1.id) }
        var walk = SessionWalk(sessions: ordered, windowStart: windowStart, windowEnd: windowEnd, query: query)
        try data.forEachEvent(named: stateEvents, lookback: Int64.max / 4) { event in
            walk.advance(to: (event.machineId, event.sessionId))
            walk.apply(event)
        }
        walk.advance(to: (Int64.max, Int64.max))
        let perMachine = walk.perMachine
        let openSessions = walk.openSessions
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

/// The state of the walk over sessions in (machine, id) order while their events stream past.
struct SessionWalk {
    let sessions: [Session]
    let windowStart: Int64
    let windowEnd: Int64
    let query: ReportQuery
    var perMachine: [Int64: StateReport.Accumulator] = [:]
    var openSessions = 0
    private var next = 0
    private var current:
        (session: Session, accumulator: StateReport.Accumulator, time: Int64, state: StateReport.State)?

    init(sessions: [Session], windowStart: Int64, windowEnd: Int64, query: ReportQuery) {
        self.sessions = sessions
        self.windowStart = windowStart
        self.windowEnd = windowEnd
        self.query = query
    }

    /// Closes every session before `key` and opens the one at `key`, if it is in the list.
    mutating func advance(to key: (machineId: Int64, sessionId: Int64)) {
        if let open = current, (open.session.machineId, open.session.id) == key { return }
        finishCurrent()
        while next < sessions.count, (sessions[next].machineId, sessions[next].id) <= key {
            let session = sessions[next]
            next += 1
            start(session)
            if (session.machineId, session.id) == key { return }
            finishCurrent()
        }
    }

    /// Moves the open session through one STOP/RESUME/… event (events of other sessions are ignored).
    mutating func apply(_ event: EventRow) {
        guard var open = current, open.session.id == event.sessionId else { return }
        let end = open.session.endedAt ?? query.now
        let at = min(max(event.time, open.time), end)
        open.accumulator.add(open.state, from: open.time, to: at)
        open.time = at
        open.state = StateReport.state(after: event.name, from: open.state)
        current = open
    }

    private mutating func start(_ session: Session) {
        let accumulator =
            perMachine[session.machineId]
            ?? StateReport.Accumulator(windowStart: windowStart, windowEnd: windowEnd, interval: query.interval)
        if session.endedAt == nil { openSessions += 1 }
        // Overlapping sessions of one VM (two monitors) must not count the same time twice.
        let time = max(session.startedAt, accumulator.coveredUntil)
        current = (session, accumulator, time, StateReport.state(forStatus: session.initialStatus))
    }

    private mutating func finishCurrent() {
        guard var open = current else { return }
        let end = open.session.endedAt ?? query.now
        open.accumulator.add(open.state, from: open.time, to: end)
        open.accumulator.coveredUntil = max(open.accumulator.coveredUntil, end)
        perMachine[open.session.machineId] = open.accumulator
        current = nil
    }
}
