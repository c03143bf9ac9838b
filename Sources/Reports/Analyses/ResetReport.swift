import EventStore

/// RESET events: guest versus host by reason, watchdog attribution, and distinct resets.
///
/// - A RESET within 5 s after a WATCHDOG on the same VM is attributed to the **watchdog**.
/// - Firmware often answers one reset with more RESETs (SeaBIOS sends a guest-reset right after a
///   `system_reset`): RESETs within 1 s of the previous one on the same VM are one **distinct** reset,
///   attributed to the first.
enum ResetReport {
    static let watchdogWindow: Int64 = 5_000_000
    static let burstWindow: Int64 = 1_000_000

    /// Facts: `[initiator, reason, "1"]` per distinct reset, `[initiator, reason, "0"]` per RESET
    /// in the burst of an earlier one.
    /// The facts of `data`'s window, from the rollup where it can answer; `each` sees every RESET
    /// counted from the events, and whether it is a distinct reset.
    static func facts(
        _ data: ReportData,
        each: (_ time: Int64, _ isNew: Bool) -> Void = { _, _ in }
    ) async throws -> FactTally {
        var facts = FactTally()
        let scan = try await data.loadingRollup(.resets, into: &facts).scan
        try count(scan, into: &facts, each: each)
        return facts
    }

    static func run(_ data: ReportData) async throws -> ReportResult {
        let query = data.query
        var perBucket: [Int64: (events: Int, distinct: Int)] = [:]
        let facts = try await facts(data) { time, isNew in
            guard let interval = query.interval else { return }
            perBucket[interval.bucket(of: time), default: (0, 0)].events += 1
            if isNew { perBucket[interval.bucket(of: time), default: (0, 0)].distinct += 1 }
        }
        let byReason = facts.tally { Array($0.prefix(2)) }
        let distinctByReason = facts.tally { $0.last == "1" ? Array($0.prefix(2)) : nil }
        let byInitiator = facts.tally { $0.last == "1" ? $0[0] : nil }
        let eventsPerMachine = facts.perMachine()
        let distinctPerMachine = facts.perMachine { $0.last == "1" }
        let total = byReason.counts.values.reduce(0, +)
        let distinct = byInitiator.counts.values.reduce(0, +)
        var tables = [
            ReportTable(
                name: "by_reason",
                title: "Resets by initiator and reason",
                columns: ["initiator", "reason", "events", "distinct"],
                rows: byReason.sortedKeys.map {
                    [.text($0[0]), .text($0[1]), .count(byReason[$0]), .count(distinctByReason[$0])]
                }
            )
        ]
        if query.byMachine {
            let ids = eventsPerMachine.keys.sorted { data.name(of: $0) < data.name(of: $1) }
            let rows = ids.map { id -> [ReportValue] in
                [.text(data.name(of: id)), .count(eventsPerMachine[id] ?? 0), .count(distinctPerMachine[id] ?? 0)]
            }
            tables.append(
                ReportTable(name: "by_vm", title: "Resets per VM", columns: ["vm", "events", "distinct"], rows: rows)
            )
        }
        if let interval = query.interval {
            let rows = perBucket.keys.sorted().map { bucket -> [ReportValue] in
                let counts = perBucket[bucket] ?? (0, 0)
                return [.time(bucket), .count(counts.events), .count(counts.distinct)]
            }
            tables.insert(
                ReportTable(
                    name: "series",
                    title: "Resets per \(interval.rawValue)",
                    columns: ["bucket", "events", "distinct"],
                    rows: rows
                ),
                at: 0
            )
        }
        var summary: [(key: String, value: ReportValue)] = [
            ("reset_events", .count(total)), ("distinct_resets", .count(distinct)),
        ]
        summary += ["guest", "host", "watchdog", "unknown"].map { ($0, .count(byInitiator[$0])) }
        return ReportResult(
            report: "resets",
            query: query,
            summary: summary,
            tables: tables,
            caveats: [
                "RESETs within 1 s of the previous RESET on the same VM are one distinct reset (firmware reboots send several); "
                    + "guest/host/watchdog/unknown in the summary count distinct resets.",
                "A RESET within 5 s after a WATCHDOG on the same VM is attributed to the watchdog.",
                "unknown: QEMU older than 2.10 sends no guest flag.",
            ]
        )
    }

    /// Classifies the RESETs in `data`'s window into `facts`; `each` sees every one, and whether it
    /// starts a distinct reset.
    static func count(
        _ data: ReportData,
        into facts: inout FactTally,
        each: (_ time: Int64, _ isNew: Bool) -> Void = { _, _ in }
    ) throws {
        let query = data.query
        var lastWatchdog: [Int64: Int64] = [:]
        var lastReset: [Int64: Int64] = [:]
        try data.forEachEvent(named: ["RESET", "WATCHDOG"], lookback: watchdogWindow) { event in
            if event.name == "WATCHDOG" {
                lastWatchdog[event.machineId] = event.time
                return
            }
            let previous = lastReset.updateValue(event.time, forKey: event.machineId)
            guard query.contains(event.time) else { return }
            let isNew = previous.map { event.time - $0 > burstWindow || event.time < $0 } ?? true
            let initiator: String
            if let watchdog = lastWatchdog[event.machineId], event.time >= watchdog,
                event.time - watchdog <= watchdogWindow
            {
                initiator = "watchdog"
            } else {
                initiator = event.guest.map { $0 ? "guest" : "host" } ?? "unknown"
            }
            facts.add(event.machineId, [initiator, event.reason ?? "(none)", isNew ? "1" : "0"])
            each(event.time, isNew)
        }
    }
}
