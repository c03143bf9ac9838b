import EventStore

/// Every episode in which a VM that had run stopped running while its QEMU was alive, by cause,
/// with its duration.
///
/// An episode starts at the STOP (or SUSPEND) and its cause is what came just before it: a
/// BLOCK_IO_ERROR with action `stop` (`io-error`), a WATCHDOG with action `pause` (`watchdog`), a
/// GUEST_PANICKED with action `pause` (`guest-panic`), else a host command (`host-stop`: `stop`,
/// `virsh suspend`). SUSPEND and SUSPEND_DISK are `suspend`. It ends at RESUME or WAKEUP, or when
/// QEMU goes away; one still going ends now (`ongoing`). A VM already not running when qmplog
/// attached starts an episode then, by its `query-status` (`paused` with no known cause: `unknown`).
///
/// Not pauses: a QEMU started with `-S` (`prelaunch`, every libvirt start) has not run yet, and
/// a VM shut down but held (SHUTDOWN then STOP: `-no-shutdown`, or libvirt until it signals QEMU)
/// is shut down. `report states` shows both, as `prelaunch` and `shutdown` time.
enum PauseReport {
    enum Cause: String, CaseIterable {
        case ioError = "io-error"
        case watchdog
        case guestPanic = "guest-panic"
        case hostStop = "host-stop"
        case suspend
        case unknown
    }

    struct Episode {
        var machineId: Int64
        var start: Int64
        var end: Int64
        var cause: Cause
        var evidence: String
        /// Still paused at the end of the window's observation (an open session).
        var ongoing: Bool
        /// Already not running when qmplog attached: it began before anyone watched.
        var foundOnAttach = false
    }

    static let eventNames = [
        "STOP", "RESUME", "WAKEUP", "SUSPEND", "SUSPEND_DISK", "SHUTDOWN", "RESET", "BLOCK_IO_ERROR", "WATCHDOG",
        "GUEST_PANICKED",
    ]

    static func run(_ data: ReportData) async throws -> ReportResult {
        result(try await analyze(data), data: data)
    }

    /// The episodes overlapping `data`'s window, clipped to it, in start order.
    ///
    /// - Parameter maximumLookback: read at most this far before the window, for a caller that wants
    ///   only the episodes starting in it (an episode's cause comes just before its STOP).
    static func analyze(_ data: ReportData, maximumLookback: Int64? = nil) async throws -> [Episode] {
        let query = data.query
        let sessions = try await data.sessions()
        // An episode under way at the window's start began in a session that overlaps the window:
        // read from the earliest of those, to find its cause.
        let earliest = sessions.map(\.startedAt).min()
        let lookback = query.since.map { since in
            min(max(0, since - min(earliest ?? since, since)), maximumLookback ?? .max)
        }
        var timelines: [Int64: [Item]] = [:]
        var order: Int32 = 0
        try data.forEachEvent(named: eventNames, lookback: lookback) { event in
            order &+= 1
            guard let item = Item(event, order: order) else { return }
            // A STOP after a STOP, a RESUME after a RESUME, of one session: nothing changes.
            if let last = timelines[event.machineId]?.last, last.kind == item.kind, last.session == item.session,
                item.kind == .stop || item.kind == .resume, last.time <= item.time
            {
                return
            }
            timelines[event.machineId, default: []].append(item)
        }
        for (index, session) in sessions.enumerated() {
            timelines[session.machineId, default: []].append(Item(bound: .start, at: session.startedAt, index: index))
            if let end = session.endedAt {
                timelines[session.machineId, default: []].append(Item(bound: .end, at: end, index: index))
            }
        }
        var episodes: [Episode] = []
        for (machineId, var items) in timelines {
            timelines[machineId] = nil
            items.sortInTimeOrder()
            var walk = Walk(machineId: machineId, now: query.now)
            for item in items {
                switch item.kind {
                case .start: walk.start(sessions[Int(item.order)])
                case .end: walk.end(sessions[Int(item.order)], at: item.time)
                default: walk.apply(item)
                }
            }
            walk.finish()
            episodes += walk.episodes
        }
        // Clipped to the window; an episode overlapping it counts with the part inside.
        let windowStart = query.since ?? Int64.min
        let windowEnd = query.end
        return episodes.compactMap { episode in
            var clipped = episode
            clipped.start = max(episode.start, windowStart)
            clipped.end = min(episode.end, windowEnd)
            return clipped.end > clipped.start || (clipped.end == clipped.start && query.contains(episode.start))
                ? clipped : nil
        }
        .sorted { ($0.start, $0.machineId) < ($1.start, $1.machineId) }
    }

    /// An event or session bound of one VM, kept small: only what the walk reads.
    struct Item: TimelineItem {
        enum Kind: UInt8 {
            case start
            /// What announces the next STOP's cause (`note` says what).
            case announces
            case shutdown, stop, suspend
            /// RESUME or WAKEUP.
            case resume
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
        /// Arrival order among events; the session's index for a bound.
        var order: Int32
        var session: Int64 = 0
        /// For `announces`: the cause and its evidence; for `suspend`: the event's name.
        var cause: Cause?
        var note: String?

        /// `nil` for an event that changes no pause (a BLOCK_IO_ERROR that does not stop, …).
        init?(_ event: EventFacts, order: Int32) {
            time = event.time
            self.order = order
            session = event.sessionId
            switch (event.name, event.action) {
            case ("BLOCK_IO_ERROR", "stop"):
                kind = .announces
                cause = .ioError
                note = "BLOCK_IO_ERROR action=stop reason=\(event.reason ?? "(none)")"
            case ("WATCHDOG", "pause"):
                kind = .announces
                cause = .watchdog
                note = "WATCHDOG action=pause"
            case ("GUEST_PANICKED", "pause"):
                kind = .announces
                cause = .guestPanic
                note = "GUEST_PANICKED action=pause\(event.panicType.map { " type=\($0)" } ?? "")"
            case ("SHUTDOWN", _): kind = .shutdown
            case ("STOP", _): kind = .stop
            case ("SUSPEND", _), ("SUSPEND_DISK", _):
                kind = .suspend
                note = event.name
            case ("RESUME", _), ("WAKEUP", _):
                kind = .resume
                note = event.name
            default: return nil
            }
        }

        init(bound kind: Kind, at time: Int64, index: Int) {
            self.time = time
            self.kind = kind
            order = Int32(clamping: index)
        }
    }

    /// One VM's timeline walked in time order.
    struct Walk {
        let machineId: Int64
        let now: Int64
        var episodes: [Episode] = []
        private var open: (start: Int64, cause: Cause, evidence: String, onAttach: Bool)?
        /// What the next STOP is for, when an event announced it.
        private var announced: (cause: Cause, evidence: String)?
        private var shutdown = false
        private var watching = false

        init(machineId: Int64, now: Int64) {
            self.machineId = machineId
            self.now = now
        }

        mutating func start(_ session: Session) {
            watching = true
            guard open == nil, let status = session.initialStatus else { return }
            shutdown = status == "shutdown"
            // Not yet run (-S), or shut down and held: no pause.
            guard !["running", "prelaunch", "shutdown"].contains(status) else { return }
            let cause: Cause =
                switch status {
                case "io-error": .ioError
                case "watchdog": .watchdog
                case "guest-panicked": .guestPanic
                case "suspended": .suspend
                default: .unknown
                }
            open = (session.startedAt, cause, "\(status) when qmplog attached", true)
        }

        mutating func apply(_ event: Item) {
            switch event.kind {
            case .announces:
                if let cause = event.cause { announced = (cause, event.note ?? "") }
            case .shutdown:
                shutdown = true
            case .stop:
                // After SHUTDOWN the STOP holds a VM shut down: no pause.
                guard open == nil, !shutdown else { return }
                let (cause, evidence) = announced ?? (.hostStop, "STOP")
                open = (event.time, cause, evidence, false)
                announced = nil
            case .suspend:
                if open == nil { open = (event.time, .suspend, event.note ?? "SUSPEND", false) }
            case .resume:
                close(at: event.time, how: event.note ?? "RESUME")
                shutdown = false
                announced = nil
            case .start, .end:
                break
            }
        }

        mutating func end(_ session: Session, at time: Int64) {
            let reason = session.endReason ?? "?"
            let qemuGone = reason == "eof" || reason.hasPrefix("domain-stopped")
            close(at: time, how: qemuGone ? "QEMU went away" : "qmplog stopped watching (\(reason))")
            watching = false
            shutdown = false
            announced = nil
        }

        /// An episode still open in a session still open goes on now.
        mutating func finish() {
            guard let open, watching else { return }
            episodes.append(
                Episode(
                    machineId: machineId,
                    start: open.start,
                    end: max(now, open.start),
                    cause: open.cause,
                    evidence: open.evidence,
                    ongoing: true,
                    foundOnAttach: open.onAttach
                )
            )
            self.open = nil
        }

        private mutating func close(at time: Int64, how: String) {
            guard let open else { return }
            episodes.append(
                Episode(
                    machineId: machineId,
                    start: open.start,
                    end: time,
                    cause: open.cause,
                    evidence: "\(open.evidence); until \(how)",
                    ongoing: false,
                    foundOnAttach: open.onAttach
                )
            )
            self.open = nil
        }
    }

    static func result(_ episodes: [Episode], data: ReportData) -> ReportResult {
        let query = data.query
        var count = Tally<Cause>()
        var time: [Cause: Int64] = [:]
        var perMachine: [Int64: [Cause: Int64]] = [:]
        for episode in episodes {
            count.add(episode.cause)
            time[episode.cause, default: 0] += episode.end - episode.start
            perMachine[episode.machineId, default: [:]][episode.cause, default: 0] += episode.end - episode.start
        }
        var summary: [(key: String, value: ReportValue)] = [("episodes", .count(episodes.count))]
        summary.append(("paused", .duration(time.values.reduce(0, +))))
        summary += Cause.allCases.map { ($0.key, .count(count[$0])) }
        summary.append(("ongoing", .count(episodes.filter(\.ongoing).count)))
        summary.append(("vms_affected", .count(perMachine.count)))
        var tables = [
            ReportTable(
                name: "by_cause",
                title: "Pauses by cause",
                columns: ["cause", "episodes", "duration"],
                rows: count.sortedKeys.map { [.text($0.rawValue), .count(count[$0]), .duration(time[$0] ?? 0)] }
            ),
            ReportTable(
                name: "episodes",
                title: "Pauses",
                columns: ["vm", "start", "end", "cause", "duration", "ongoing", "evidence"],
                rows: episodes.map {
                    [
                        .text(data.name(of: $0.machineId)), .time($0.start), .time($0.end), .text($0.cause.rawValue),
                        .duration($0.end - $0.start), .text($0.ongoing ? "yes" : "no"), .text($0.evidence),
                    ]
                }
            ),
        ]
        if let interval = query.interval {
            var buckets: [Int64: [Cause: Int64]] = [:]
            for episode in episodes {
                buckets[interval.bucket(of: episode.start), default: [:]][episode.cause, default: 0] += 1
            }
            tables.insert(
                ReportTable(
                    name: "series",
                    title: "Pauses begun per \(interval.rawValue)",
                    columns: ["bucket"] + Cause.allCases.map(\.key),
                    rows: buckets.keys.sorted().map { bucket in
                        [.time(bucket)] + Cause.allCases.map { .integer(buckets[bucket]?[$0] ?? 0) }
                    }
                ),
                at: 0
            )
        }
        if query.byMachine {
            let ids = perMachine.keys.sorted { data.name(of: $0) < data.name(of: $1) }
            tables.append(
                ReportTable(
                    name: "by_vm",
                    title: "Paused time per VM",
                    columns: ["vm"] + Cause.allCases.map(\.key) + ["total"],
                    rows: ids.map { id in
                        let causes = perMachine[id] ?? [:]
                        return [.text(data.name(of: id))] + Cause.allCases.map { .duration(causes[$0] ?? 0) }
                            + [.duration(causes.values.reduce(0, +))]
                    }
                )
            )
        }
        return ReportResult(
            report: "pauses",
            query: query,
            summary: summary,
            tables: tables,
            caveats: [
                "A pause's cause is the event just before its STOP: BLOCK_IO_ERROR (stop), WATCHDOG (pause), "
                    + "GUEST_PANICKED (pause), a SHUTDOWN held by -no-shutdown or libvirt; otherwise a host command.",
                "Durations are clipped to the window; an ongoing pause counts until now. A pause qmplog did not "
                    + "watch the end of ends when its session did.",
            ]
        )
    }
}
