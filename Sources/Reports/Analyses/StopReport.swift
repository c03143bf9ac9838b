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
        let query = data.query
        let lookback = query.powerdownWindow + query.crashLoopWindow
        var timelines: [Int64: [Item]] = [:]
        try data.forEachEvent(named: eventNames, lookback: lookback) { event in
            timelines[event.machineId, default: []].append(.event(event))
        }
        for session in try await data.sessions() {
            timelines[session.machineId, default: []].append(.start(session))
            if let end = session.endedAt { timelines[session.machineId, default: []].append(.end(session, end)) }
        }
        let senders = try await data.database.signalSenders(in: data.selection(lookback: lookback))
        var sendersAt: [Int64: [Int64: SignalSenderFact]] = [:]
        for sender in senders { sendersAt[sender.machineId, default: [:]][sender.time] = sender }

        var stops: [Stop] = []
        var loops: [CrashLoop] = []
        for (machineId, items) in timelines {
            var walk = Walk(machineId: machineId, query: query, senders: sendersAt[machineId] ?? [:])
            for item in items.enumerated().sorted(by: Item.precedes).map(\.element) { walk.apply(item) }
            walk.matchLibvirtLines()
            stops += walk.stops
            loops += crashLoops(walk.crashes.sorted(), machineId: machineId, query: query)
        }
        stops = stops.filter { query.contains($0.time) }.sorted { ($0.time, $0.machineId) < ($1.time, $1.machineId) }
        loops = loops.filter { query.contains($0.until) }.sorted { ($0.from, $0.machineId) < ($1.from, $1.machineId) }
        return result(stops, loops: loops, data: data)
    }

    /// One VM's events and session bounds, in time order.
    enum Item {
        case start(Session)
        case event(EventFacts)
        case end(Session, Int64)

        var time: Int64 {
            switch self {
            case .start(let session): session.startedAt
            case .event(let event): event.time
            case .end(_, let time): time
            }
        }

        /// At one instant a session starts before its events, and ends after them.
        var rank: Int {
            switch self {
            case .start: 0
            case .event: 1
            case .end: 2
            }
        }

        /// Time order; ties keep the rank, then arrival order.
        static func precedes(_ lhs: (offset: Int, element: Item), _ rhs: (offset: Int, element: Item)) -> Bool {
            (lhs.element.time, lhs.element.rank, lhs.offset) < (rhs.element.time, rhs.element.rank, rhs.offset)
        }
    }

    /// Walks one VM's timeline.
    struct Walk {
        let machineId: Int64
        let query: ReportQuery
        let senders: [Int64: SignalSenderFact]
        var stops: [Stop] = []
        /// Panics, watchdog firings and kills: what a crash loop counts.
        var crashes: [Int64] = []
        /// The run has stopped (a SHUTDOWN) and not run again since.
        private var stopped = false
        private var lastPowerdown: Int64?
        private var panic: (time: Int64, action: String?)?
        private var watchdog: (time: Int64, action: String?)?
        private var lastPanic: Int64?
        /// When the previous session ended without the VM's end being seen (the recorder stopped).
        private var unwatchedSince: Int64?
        private var lastDomainId: String?
        /// Imported `shutting down` lines, with what preceded each in its run.
        private var libvirtLines: [(time: Int64, reason: String, stopped: Bool, panic: String??, sawRun: Bool)] = []
        /// Events of the current run were seen (a transcript or a recorder covered it).
        private var sawRun = false

        init(machineId: Int64, query: ReportQuery, senders: [Int64: SignalSenderFact]) {
            self.machineId = machineId
            self.query = query
            self.senders = senders
        }

        mutating func apply(_ item: Item) {
            switch item {
            case .start(let session): start(session)
            case .event(let event): apply(event)
            case .end(let session, let time): end(session, at: time)
            }
        }

        private mutating func start(_ session: Session) {
            let domainId = session.endpoint.hasPrefix("libvirt:") ? session.peer : nil
            let freshRun = session.initialStatus == "prelaunch" || (domainId != nil && domainId != lastDomainId)
            if let since = unwatchedSince, freshRun {
                stops.append(
                    Stop(
                        machineId: machineId,
                        time: since,
                        stopClass: .unknown,
                        evidence: "not watched from \(Timestamp.rfc3339(microseconds: since)) until "
                            + "\(Timestamp.rfc3339(microseconds: session.startedAt)), when it had started again"
                    )
                )
            }
            if freshRun { newRun() }
            unwatchedSince = nil
            lastDomainId = domainId ?? lastDomainId
        }

        /// The guest runs again (RESUME, RESET): what stopped or paused it is over.
        private mutating func resetRun() {
            stopped = false
            panic = nil
            watchdog = nil
        }

        /// Another QEMU process: nothing of the last one carries over.
        private mutating func newRun() {
            resetRun()
            sawRun = false
        }

        private mutating func apply(_ event: EventFacts) {
            if event.name != "LIBVIRT_SHUTDOWN" { sawRun = true }
            switch event.name {
            case "SHUTDOWN":
                guard !stopped else { return }
                stopped = true
                let (stopClass, evidence) = classify(event)
                stops.append(Stop(machineId: machineId, time: event.time, stopClass: stopClass, evidence: evidence))
            case "RESUME", "RESET":
                resetRun()
            case "POWERDOWN":
                lastPowerdown = event.time
            case "GUEST_PANICKED":
                panic = (event.time, event.action)
                if let last = lastPanic, event.time - last <= StopReport.panicRepeatWindow {
                    lastPanic = event.time
                    return
                }
                lastPanic = event.time
                crashes.append(event.time)
            case "WATCHDOG":
                watchdog = (event.time, event.action)
                if event.action != "none", event.action != "debug" { crashes.append(event.time) }
            case "LIBVIRT_SHUTDOWN":
                libvirtLines.append((event.time, event.reason ?? "(none)", stopped, panic.map(\.action), sawRun))
                newRun()
            default:
                break
            }
        }

        private func classify(_ event: EventFacts) -> (StopClass, String) {
            let shutdown = "SHUTDOWN guest=\(event.guest.map(String.init) ?? "?") reason=\(event.reason ?? "(none)")"
            switch event.reason {
            case "guest-shutdown":
                if let powerdown = lastPowerdown, event.time >= powerdown,
                    event.time - powerdown <= query.powerdownWindow
                {
                    return (.hostACPI, "POWERDOWN at \(Timestamp.rfc3339(microseconds: powerdown)), then \(shutdown)")
                }
                if let watchdog, event.time - watchdog.time <= StopReport.watchdogWindow {
                    return (.watchdog, "WATCHDOG action=\(watchdog.action ?? "?"), then \(shutdown)")
                }
                return (.guestPoweroff, shutdown)
            case "host-signal":
                guard let sender = senders[event.time] else { return (.hostSignal, shutdown) }
                let program = sender.program ?? "an unknown process"
                let pid = sender.pid.map { "pid \($0) " } ?? ""
                return (
                    .hostSignal,
                    "\(shutdown): \(ShutdownReport.signalName(sender.signal)) from \(pid)(\(program))"
                )
            case "host-qmp-quit": return (.hostQMPQuit, shutdown)
            case "guest-panic":
                return (
                    .guestPanic,
                    panic.map { "GUEST_PANICKED action=\($0.action ?? "?"), then " }.map { $0 + shutdown } ?? shutdown
                )
            case "guest-reset": return (.guestResetNoReboot, shutdown)
            default:
                if event.reason == nil, event.guest == true { return (.guestPoweroff, shutdown) }
                return (.other, shutdown)
            }
        }

        private mutating func end(_ session: Session, at time: Int64) {
            let reason = session.endReason ?? ""
            let qemuGone = reason == "eof" || reason.hasPrefix("domain-stopped")
            guard qemuGone else {
                unwatchedSince = time
                return
            }
            defer {
                newRun()
                lastDomainId = nil
            }
            guard !stopped else { return }
            let closed =
                reason == "eof" ? "the monitor closed with no SHUTDOWN" : "libvirt: \(reason), with no SHUTDOWN"
            if let panic {
                stops.append(
                    Stop(
                        machineId: machineId,
                        time: time,
                        stopClass: .guestPanic,
                        evidence: "GUEST_PANICKED action=\(panic.action ?? "?"), then \(closed)"
                    )
                )
            } else if let watchdog, watchdog.action != "none", watchdog.action != "debug" {
                stops.append(
                    Stop(
                        machineId: machineId,
                        time: time,
                        stopClass: .watchdog,
                        evidence: "WATCHDOG action=\(watchdog.action ?? "?"), then \(closed)"
                    )
                )
            } else {
                stops.append(Stop(machineId: machineId, time: time, stopClass: .killed, evidence: closed))
                crashes.append(time)
            }
        }

        /// A run's end that only an imported libvirt log tells (`shutting down, reason=…` with no stop
        /// near it): after a panic, the panic's; `crashed` in a run whose events were seen (QEMU died
        /// with no SHUTDOWN), killed; otherwise nobody watched it.
        mutating func matchLibvirtLines() {
            for line in libvirtLines
            where !line.stopped && !stops.contains(where: { abs($0.time - line.time) <= StopReport.libvirtLineWindow })
            {
                let logged = "libvirt's log: shutting down, reason=\(line.reason)"
                let (stopClass, evidence): (StopClass, String) =
                    if let action = line.panic {
                        (.guestPanic, "GUEST_PANICKED action=\(action ?? "?"), then \(logged)")
                    } else if line.reason == "crashed", line.sawRun {
                        (.killed, "no SHUTDOWN, then \(logged)")
                    } else {
                        (.unknown, logged)
                    }
                stops.append(Stop(machineId: machineId, time: line.time, stopClass: stopClass, evidence: evidence))
                if stopClass == .killed { crashes.append(line.time) }
            }
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
        summary += StopClass.allCases.map { ($0.rawValue, .count(byClass[$0])) }
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
        if query.byMachine {
            let ids = byMachine.keys.sorted { data.name(of: $0) < data.name(of: $1) }
            tables.append(
                ReportTable(
                    name: "by_vm",
                    title: "Stops per VM",
                    columns: ["vm"] + StopClass.allCases.map(\.rawValue) + ["total"],
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
