/// RESET events: guest versus host by reason, watchdog attribution, and distinct resets.
///
/// - A RESET within 5 s after a WATCHDOG on the same VM is attributed to the **watchdog**.
/// - Firmware often answers one reset with more RESETs (SeaBIOS sends a guest-reset right after a
///   `system_reset`): RESETs within 1 s of the previous one on the same VM are one **distinct** reset,
///   attributed to the first.
enum ResetReport {
    static let watchdogWindow: Int64 = 5_000_000
    static let burstWindow: Int64 = 1_000_000

    static func run(_ data: ReportData) async throws -> ReportResult {
        let query = data.query
        var lastWatchdog: [Int64: Int64] = [:]
        var lastReset: [Int64: Int64] = [:]
        var byReason = Tally<[String]>()
        var distinctByReason = Tally<[String]>()
        var byInitiator = Tally<String>()
        var perMachine: [Int64: (events: Int, distinct: Int)] = [:]
        var perBucket: [Int64: (events: Int, distinct: Int)] = [:]
        var total = 0
        var distinct = 0
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
            let key = [initiator, event.reason ?? "(none)"]
            total += 1
            byReason.add(key)
            perMachine[event.machineId, default: (0, 0)].events += 1
            if let interval = query.interval { perBucket[interval.bucket(of: event.time), default: (0, 0)].events += 1 }
            if isNew {
                distinct += 1
                distinctByReason.add(key)
                byInitiator.add(initiator)
                perMachine[event.machineId, default: (0, 0)].distinct += 1
                if let interval = query.interval {
                    perBucket[interval.bucket(of: event.time), default: (0, 0)].distinct += 1
                }
            }
        }
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
            let ids = perMachine.keys.sorted { data.name(of: $0) < data.name(of: $1) }
            let rows = ids.map { id -> [ReportValue] in
                let counts = perMachine[id] ?? (0, 0)
                return [.text(data.name(of: id)), .count(counts.events), .count(counts.distinct)]
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
}
