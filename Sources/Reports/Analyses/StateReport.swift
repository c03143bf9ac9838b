import EventStore

/// Time each VM spent running, paused, suspended, shut down and not yet started (`prelaunch`: QEMU
/// started with `-S`, as libvirt starts every domain), from its sessions and events.
///
/// A session starts in the state `query-status` reported at attach; STOP, RESUME, SUSPEND,
/// SUSPEND_DISK, WAKEUP, SHUTDOWN and RESET move it; the session's end ends what is known. Time outside
/// every session is **unknown**, never guessed.
enum StateReport {
    enum State: String, CaseIterable {
        case running, paused, suspended, shutdown, prelaunch
    }

    static let stateEvents = ["STOP", "RESUME", "SUSPEND", "SUSPEND_DISK", "WAKEUP", "SHUTDOWN", "RESET"]
    /// The events after which the state is known whatever it was before (see ``state(after:from:)``).
    static let settlingEvents: Set<String> = ["RESUME", "WAKEUP", "SUSPEND", "SUSPEND_DISK", "SHUTDOWN"]

    /// The state `query-status` reports, in five buckets. Unknown statuses count as paused (not running).
    static func state(forStatus status: String?) -> State {
        switch status {
        case "running": .running
        case "suspended": .suspended
        case "shutdown": .shutdown
        case "prelaunch": .prelaunch
        default: .paused  // paused, inmigrate, postmigrate, io-error, guest-panicked, watchdog, …
        }
    }

    /// QEMU's run state after `event`. A VM held shut down (`-no-shutdown`, or libvirt until it
    /// signals QEMU) stops its vCPUs with SHUTDOWN then STOP: that STOP is no pause, `query-status`
    /// says `shutdown`. A reset of a VM that is not running leaves it in `prelaunch` until `cont`.
    static func state(after event: String, from state: State) -> State {
        switch event {
        case "STOP": state == .shutdown || state == .prelaunch ? state : .paused
        case "RESET": state == .running ? .running : .prelaunch
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

    /// The most rows a series may have: every bucket of the window for every VM.
    static let maximumSeriesRows = 1_000_000

    /// Refuses a series longer than ``maximumSeriesRows`` before any work (an hourly series since
    /// the year 1 would be 17.7 million rows a VM).
    static func checkSeriesSize(from start: Int64, to end: Int64, every interval: ReportInterval, vms: Int) throws {
        guard end > start else { return }
        let buckets = (end - interval.bucket(of: start)) / interval.length + 1
        let (rows, overflow) = buckets.multipliedReportingOverflow(by: Int64(max(vms, 1)))
        guard overflow || rows > maximumSeriesRows else { return }
        throw ReportsError(
            code: .invalidQuery,
            message: "--interval \(interval.rawValue) over this window is \(buckets) buckets for each of \(vms) VMs, "
                + "more than \(maximumSeriesRows) rows: use a longer --interval, a later --since or fewer --vm"
        )
    }

    static func run(_ data: ReportData) async throws -> ReportResult {
        let query = data.query
        let sessions = try await data.sessions()
        let windowStart = query.since ?? sessions.map(\.startedAt).min() ?? query.end
        let windowEnd = query.end
        if let interval = query.interval {
            try checkSeriesSize(from: windowStart, to: windowEnd, every: interval, vms: data.machineNames.count)
        }
        var rolled = FactTally()
        let (scan, rollup) = try await data.loadingRollup(.states, into: &rolled)
        var walk: SessionWalk
        if let rollup {
            // The rollup's totals up to its cut, then the sessions still open at the cut, each from
            // the state the rollup saved for it.
            let open = sessions.filter { ($0.endedAt ?? query.now) > rollup.cut }
            walk = SessionWalk(sessions: open, windowStart: rollup.cut, windowEnd: windowEnd, query: query)
            walk.resume(savedStates(rollup))
            try scan.forEachEvent(named: stateEvents) { walk.apply($0) }
        } else {
            walk = SessionWalk(sessions: sessions, windowStart: windowStart, windowEnd: windowEnd, query: query)
            // A session that started before the window replays its events from its start.
            let replay = sessions.contains { $0.startedAt < windowStart }
            try data.forEachEvent(named: stateEvents, lookback: replay ? nil : 0) { walk.apply($0) }
        }
        walk.finish()
        var perMachine = walk.perMachine
        for (machineId, keys) in rolled.values {
            var accumulator =
                perMachine[machineId] ?? Accumulator(windowStart: windowStart, windowEnd: windowEnd, interval: nil)
            for (key, value) in keys {
                if key == ["covered"] { accumulator.covered += value }
                if key.count == 2, key[0] == "state", let state = State(rawValue: key[1]) {
                    accumulator.totals[state, default: 0] += value
                }
            }
            perMachine[machineId] = accumulator
        }
        let openSessions = sessions.count { $0.endedAt == nil }
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
            "paused includes every non-running status QEMU reports at attach (inmigrate, io-error, …) but prelaunch: "
                + "started with -S (every libvirt start) or reset while not running, until cont.",
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

    /// Facts for the rollup over `data` (whose window ends at the cut): per VM `["state", name]` →
    /// microseconds and `["covered"]` → observed microseconds; carried, per session still open at
    /// the cut, `["carry", "state", id, state]` → 1 (a tally drops zeros: the state is in the key).
    static func rollupFacts(_ data: ReportData) async throws -> FactTally {
        let sessions = try await data.sessions()
        let cut = data.query.end
        let windowStart = sessions.map(\.startedAt).min() ?? cut
        var walk = SessionWalk(sessions: sessions, windowStart: windowStart, windowEnd: cut, query: data.query)
        try data.forEachEvent(named: stateEvents) { walk.apply($0) }
        walk.finish()
        var facts = FactTally()
        for (machineId, accumulator) in walk.perMachine {
            for (state, duration) in accumulator.totals where duration > 0 {
                facts.add(machineId, ["state", state.rawValue], duration)
            }
            if accumulator.covered > 0 { facts.add(machineId, ["covered"], accumulator.covered) }
        }
        for session in sessions where (session.endedAt ?? .max) > cut {
            if let state = walk.finalStates[session.id] {
                facts.add(session.machineId, [FactTally.carry, "state", String(session.id), state.rawValue])
            }
        }
        return facts
    }

    /// The states a rollup saved for the sessions open at its cut.
    static func savedStates(_ rollup: Rollup) -> [Int64: State] {
        var saved: [Int64: State] = [:]
        for carried in rollup.carried("state") where carried.key.count == 2 {
            if let id = carried.key.first.flatMap({ Int64($0) }), let state = carried.key.last.flatMap(State.init) {
                saved[id] = state
            }
        }
        return saved
    }
}

/// Every session's state while the events stream past in arrival order.
struct SessionWalk {
    let query: ReportQuery
    private(set) var perMachine: [Int64: StateReport.Accumulator] = [:]
    /// Per session: its VM, where its counted time starts, its end, and the current state.
    private var walking: [Int64: (machineId: Int64, time: Int64, end: Int64, state: StateReport.State)] = [:]

    init(sessions: [Session], windowStart: Int64, windowEnd: Int64, query: ReportQuery) {
        self.query = query
        // Overlapping sessions of one VM (two monitors) must not count the same time twice: a
        // session's time starts where the VM's earlier sessions (by start) ended.
        var coveredUntil: [Int64: Int64] = [:]
        for session in sessions.sorted(by: { ($0.machineId, $0.startedAt, $0.id) < ($1.machineId, $1.startedAt, $1.id) }
        ) {
            let end = session.endedAt ?? query.now
            let start = max(session.startedAt, coveredUntil[session.machineId] ?? .min)
            coveredUntil[session.machineId] = max(coveredUntil[session.machineId] ?? .min, end)
            perMachine[session.machineId] =
                perMachine[session.machineId]
                ?? StateReport.Accumulator(windowStart: windowStart, windowEnd: windowEnd, interval: query.interval)
            walking[session.id] = (
                session.machineId, min(start, end), end, StateReport.state(forStatus: session.initialStatus)
            )
        }
    }

    /// Moves the event's session through one STOP/RESUME/… event (sessions outside the window are ignored).
    mutating func apply(_ event: EventFacts) {
        guard var session = walking[event.sessionId] else { return }
        let at = min(max(event.time, session.time), session.end)
        perMachine[session.machineId]?.add(session.state, from: session.time, to: at)
        session.time = at
        session.state = StateReport.state(after: event.name, from: session.state)
        walking[event.sessionId] = session
    }

    /// Each session's state when ``finish()`` ended the walk.
    private(set) var finalStates: [Int64: StateReport.State] = [:]

    /// Starts these sessions in the given states instead of their state at attach (a rollup saved
    /// where they were at its cut).
    mutating func resume(_ states: [Int64: StateReport.State]) {
        for (id, state) in states { walking[id]?.state = state }
    }

    /// Counts every session's last state up to its end (or now).
    mutating func finish() {
        for (id, session) in walking {
            perMachine[session.machineId]?.add(session.state, from: session.time, to: session.end)
            finalStates[id] = session.state
        }
        walking.removeAll()
    }
}
