import EventStore

/// Every end of a VM's run, classified by what caused it, and the crash loops among them.
///
/// A run ends at its first SHUTDOWN (QEMU repeats SHUTDOWN on some signals, and libvirt SIGTERMs
/// QEMU after a guest's power-off: neither is a second stop), or, with no SHUTDOWN, when QEMU went
/// away: the monitor closed (`eof`) or libvirt reported the domain stopped. What came before says
/// why: a POWERDOWN (`host-acpi`), a GUEST_PANICKED (`guest-panic`), a WATCHDOG (`watchdog`), and
/// nothing at all makes it `killed` (SIGKILL, the OOM killer, a QEMU crash). A VM found freshly
/// started after a time nobody watched stopped unseen (`unknown`), as does one whose stop only an
/// imported libvirt log tells.
enum StopReport {
    enum StopClass: String, CaseIterable {
        case guestPoweroff = "guest-poweroff"
        case hostACPI = "host-acpi"
        case hostSignal = "host-signal"
        case hostQMPQuit = "host-qmp-quit"
        case guestPanic = "guest-panic"
        case watchdog
        case guestResetNoReboot = "guest-reset-no-reboot"
        case killed
        /// A SHUTDOWN with another reason (host-error, host-ui, …, or none from QEMU < 4.0).
        case other
        case unknown
    }

    struct Stop {
        var machineId: Int64
        var time: Int64
        var stopClass: StopClass
        var evidence: String
    }

    struct CrashLoop {
        var machineId: Int64
        var from: Int64
        var until: Int64
        var count: Int
    }

    /// The events that tell why a run ended.
    static let eventNames = [
        "SHUTDOWN", "POWERDOWN", "RESUME", "RESET", "GUEST_PANICKED", "WATCHDOG", "LIBVIRT_SHUTDOWN",
    ]
    /// A SHUTDOWN within this after a WATCHDOG (action shutdown or poweroff) is the watchdog's.
    static let watchdogWindow: Int64 = 60_000_000
    /// An imported libvirt stop line within this of a stop already known is that stop.
    static let libvirtLineWindow: Int64 = 10_000_000
    /// A second GUEST_PANICKED this close to the first is the same panic (QEMU < 6.0 sends two).
    static let panicRepeatWindow: Int64 = 5_000_000

    static func run(_ data: ReportData) async throws -> ReportResult {
        let (stops, loops) = try await analyze(data)
        return result(stops, loops: loops, data: data)
    }

    /// The stops and crash loops in `data`'s window (also counted by `report summary`).
    ///
    /// - Parameters:
    ///   - keepingStops: `false` when only the crash loops are wanted (summary, rollup).
    ///   - oneVMAtATime: read one VM at a time through the machine index, so that memory holds one
    ///     VM's timeline, not the fleet's (a whole-history walk of 10 M events held 800 MiB), at 3–5
    ///     times the time of one scan in id order: for the rollup the recorder builds.
    static func analyze(_ data: ReportData, keepingStops: Bool = true, oneVMAtATime: Bool = false) async throws -> (
        stops: [Stop], loops: [CrashLoop]
    ) {
        let query = data.query
        let lookback = query.powerdownWindow + query.crashLoopWindow
        let sessions = try await data.sessions()
        var timelines: [Int64: [Item]] = [:]
        for (index, session) in sessions.enumerated() {
            timelines[session.machineId, default: []].append(Item(start: session, index: index))
            if let end = session.endedAt {
                timelines[session.machineId, default: []].append(Item(end: end, index: index))
            }
        }
        let window = data.selection(lookback: lookback)
        var sendersAt: [Int64: [Int64: SignalSenderFact]] = [:]
        for sender in try await data.database.signalSenders(in: window) {
            sendersAt[sender.machineId, default: [:]][sender.time] = sender
        }
        var order: Int32 = 0
        /// Appends an event to its VM's timeline; a RESUME or RESET right after another of its
        /// session changes nothing (most of a busy VM's events) and is left out.
        func add(_ event: EventFacts, to items: inout [Item]) {
            order &+= 1
            let item = Item(event, order: order)
            if item.kind == .runs, let last = items.last, last.kind == .runs, last.session == item.session,
                last.time <= item.time
            {
                return
            }
            items.append(item)
        }
        var stops: [Stop] = []
        var loops: [CrashLoop] = []
        func walk(_ machineId: Int64, _ items: inout [Item]) {
            items.sortInTimeOrder()
            var walk = Walk(machineId: machineId, query: query, senders: sendersAt[machineId] ?? [:])
            for item in items { walk.apply(item, sessions: sessions) }
            walk.matchLibvirtLines()
            if keepingStops { stops += walk.stops.filter { query.contains($0.time) } }
            loops += crashLoops(walk.crashes.sorted(), machineId: machineId, query: query)
        }
        if !oneVMAtATime {
            try data.database.forEachEvent(named: eventNames, in: window) { batch in
                for event in batch { add(event, to: &timelines[event.machineId, default: []]) }
            }
            for machineId in Array(timelines.keys) {
                guard var items = timelines.removeValue(forKey: machineId) else { continue }
                walk(machineId, &items)
            }
        } else {
            for machineId in window.machineIds ?? data.machineNames.keys.sorted() {
                var items = timelines.removeValue(forKey: machineId) ?? []
                let oneVM = EventSelection(machineIds: [machineId], from: window.from, until: window.until)
                try data.database.forEachEvent(named: eventNames, in: oneVM) { batch in
                    for event in batch { add(event, to: &items) }
                }
                if !items.isEmpty { walk(machineId, &items) }
            }
        }
        stops.sort { ($0.time, $0.machineId) < ($1.time, $1.machineId) }
        loops = loops.filter { query.contains($0.until) }.sorted { ($0.from, $0.machineId) < ($1.from, $1.machineId) }
        return (stops, loops)
    }

    /// The crash loops in `data`'s window, for `report summary`: from the rollup where it can answer
    /// (the loops it holds, and a scan of what came after), else from the events.
    static func crashLoops(_ data: ReportData) async throws -> [CrashLoop] {
        let query = data.query
        let defaults = ReportQuery(now: query.now)
        guard query.crashLoopCount == defaults.crashLoopCount, query.crashLoopWindow == defaults.crashLoopWindow,
            let rollup = try await data.rollup(for: ReportKind.stops.rawValue),
            rollup.facts.contains(where: { $0.report == ReportKind.stops.rawValue && $0.key == rollupMarker })
        else { return try await analyze(data, keepingStops: false).loops }
        var facts = FactTally()
        facts.load(rollup.facts.filter { $0.report == ReportKind.stops.rawValue }, for: data)
        var loops: [CrashLoop] = []
        for (machineId, keys) in facts.values {
            for (key, count) in keys where key.count == 3 && key[0] == "loop" {
                guard let from = Int64(key[1]), let until = Int64(key[2]) else { continue }
                loops.append(CrashLoop(machineId: machineId, from: from, until: until, count: Int(count)))
            }
        }
        // The rollup holds the loops that ended a window before its cut: no later crash extends them.
        let boundary = rollup.cut - query.crashLoopWindow
        let recent = try await analyze(data.narrowed(since: boundary), keepingStops: false).loops
            .filter { $0.until >= boundary }
        return (loops + recent).sorted { ($0.from, $0.machineId) < ($1.from, $1.machineId) }
    }

    /// What the rollup keeps of `data` (the history before the cut): the crash loops no later crash
    /// can extend, and a marker that it kept them.
    static func rollupFacts(_ data: ReportData) async throws -> FactTally {
        var tally = FactTally()
        tally.add(0, rollupMarker)
        let boundary = (data.query.until ?? data.query.now) - data.query.crashLoopWindow
        for loop in try await analyze(data, keepingStops: false, oneVMAtATime: true).loops where loop.until < boundary {
            tally.add(loop.machineId, ["loop", String(loop.from), String(loop.until)], Int64(loop.count))
        }
        return tally
    }

    static let rollupMarker = ["crash-loops"]

    /// One VM's event or session bound, kept small: a busy history has millions.
    struct Item: TimelineItem {
        enum Kind: UInt8 {
            /// A session starts; `order` is its index in the sessions read.
            case start
            case shutdown, powerdown
            /// RESUME or RESET: the guest runs (again).
            case runs
            case panic, watchdog, libvirtShutdown
            /// A session ends; `order` is its index.
            case end
        }

        var time: Int64
        var kind: Kind
        var rank: UInt8 {
            switch kind {
            case .start: 0
            case .end: 2
            default: 1
            }
        }
        var guest: Bool?
        /// Arrival order among events; the session's index for a bound.
        var order: Int32
        var reason: String?
        var action: String?
        /// The event's session (bounds: none).
        var session: Int64 = 0

        init(_ event: EventFacts, order: Int32) {
            time = event.time
            self.order = order
            session = event.sessionId
            switch event.name {
            case "SHUTDOWN": kind = .shutdown
            case "POWERDOWN": kind = .powerdown
            case "GUEST_PANICKED": kind = .panic
            case "WATCHDOG": kind = .watchdog
            case "LIBVIRT_SHUTDOWN": kind = .libvirtShutdown
            default: kind = .runs
            }
            if kind == .shutdown || kind == .libvirtShutdown {
                guest = event.guest
                reason = event.reason
            }
            if kind == .panic || kind == .watchdog { action = event.action }
        }

        init(start session: Session, index: Int) {
            time = session.startedAt
            kind = .start
            order = Int32(clamping: index)
        }

        init(end: Int64, index: Int) {
            time = end
            kind = .end
            order = Int32(clamping: index)
        }
    }

    /// Runs of at least `crashLoopCount` crashes, each within `crashLoopWindow` of the one
    /// `crashLoopCount - 1` before it.
    static func crashLoops(_ times: [Int64], machineId: Int64, query: ReportQuery) -> [CrashLoop] {
        let count = max(query.crashLoopCount, 1)
        var loops: [CrashLoop] = []
        var index = 0
        while index + count - 1 < times.count {
            guard times[index + count - 1] - times[index] <= query.crashLoopWindow else {
                index += 1
                continue
            }
            var last = index + count - 1
            while last + 1 < times.count, times[last + 1] - times[last + 2 - count] <= query.crashLoopWindow {
                last += 1
            }
            loops.append(
                CrashLoop(machineId: machineId, from: times[index], until: times[last], count: last - index + 1)
            )
            index = last + 1
        }
        return loops
    }

    static func result(_ stops: [Stop], loops: [CrashLoop], data: ReportData) -> ReportResult {
        let query = data.query
        var byClass = Tally<StopClass>()
        var byMachine: [Int64: Tally<StopClass>] = [:]
        for stop in stops {
            byClass.add(stop.stopClass)
            byMachine[stop.machineId, default: Tally()].add(stop.stopClass)
        }
        var summary: [(key: String, value: ReportValue)] = [("stops", .count(stops.count))]
        summary += StopClass.allCases.map { ($0.key, .count(byClass[$0])) }
        summary.append(("crash_loops", .count(loops.count)))
        summary.append(("vms_affected", .count(byMachine.count)))
        var tables = [
            ReportTable(
                name: "by_class",
                title: "Stops by class",
                columns: ["class", "count"],
                rows: byClass.sortedKeys.map { [.text($0.rawValue), .count(byClass[$0])] }
            ),
            ReportTable(
                name: "incidents",
                title: "Stops",
                columns: ["vm", "time", "class", "evidence"],
                rows: stops.map {
                    [
                        .text(data.name(of: $0.machineId)), .time($0.time), .text($0.stopClass.rawValue),
                        .text($0.evidence),
                    ]
                }
            ),
            ReportTable(
                name: "crash_loops",
                title: "Crash loops (\(query.crashLoopCount) or more panics, watchdog firings or kills within "
                    + "\(query.crashLoopWindow / 60_000_000) min)",
                columns: ["vm", "from", "until", "crashes"],
                rows: loops.map {
                    [.text(data.name(of: $0.machineId)), .time($0.from), .time($0.until), .count($0.count)]
                }
            ),
        ]
        if let interval = query.interval {
            var perBucket: [Int64: Tally<StopClass>] = [:]
            for stop in stops { perBucket[interval.bucket(of: stop.time), default: Tally()].add(stop.stopClass) }
            tables.insert(
                ReportTable(
                    name: "series",
                    title: "Stops per \(interval.rawValue)",
                    columns: ["bucket"] + StopClass.allCases.map(\.key) + ["total"],
                    rows: perBucket.keys.sorted().map { bucket in
                        let tally = perBucket[bucket] ?? Tally()
                        return [.time(bucket)] + StopClass.allCases.map { .count(tally[$0]) }
                            + [.count(StopClass.allCases.reduce(0) { $0 + tally[$1] })]
                    }
                ),
                at: 0
            )
        }
        if query.byMachine {
            let ids = byMachine.keys.sorted { data.name(of: $0) < data.name(of: $1) }
            tables.append(
                ReportTable(
                    name: "by_vm",
                    title: "Stops per VM",
                    columns: ["vm"] + StopClass.allCases.map(\.key) + ["total"],
                    rows: ids.map { id in
                        let tally = byMachine[id] ?? Tally()
                        return [.text(data.name(of: id))] + StopClass.allCases.map { .count(tally[$0]) }
                            + [.count(StopClass.allCases.reduce(0) { $0 + tally[$1] })]
                    }
                )
            )
        }
        return ReportResult(
            report: "stops",
            query: query,
            summary: summary,
            tables: tables,
            caveats: [
                "One stop per run: QEMU's repeated SHUTDOWN, and libvirt's SIGTERM after a guest's power-off, are not "
                    + "stops of their own.",
                "killed: QEMU went away with no SHUTDOWN (SIGKILL, the OOM killer, a crash). unknown: the VM stopped "
                    + "while no recorder watched it.",
                "host-signal senders come from imported libvirt logs (qmplog import libvirt-log).",
            ]
        )
    }
}
