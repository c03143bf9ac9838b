import EventStore

/// WATCHDOG firings by action and VM.
enum WatchdogReport {
    /// The facts of `data`'s window, from the rollup where it can answer; `each` sees every firing
    /// counted from the events.
    static func facts(_ data: ReportData, each: (_ time: Int64) -> Void = { _ in }) async throws -> FactTally {
        var facts = FactTally()
        let scan = try await data.loadingRollup(.watchdog, into: &facts).scan
        try count(scan, into: &facts, each: each)
        return facts
    }

    /// Facts: `[action]` per firing.
    static func run(_ data: ReportData) async throws -> ReportResult {
        let query = data.query
        var perBucket: [Int64: Int] = [:]
        let facts = try await facts(data) { time in
            if let interval = query.interval { perBucket[interval.bucket(of: time), default: 0] += 1 }
        }
        let byAction = facts.tally { $0.first }
        var byMachineAction = Tally<[String]>()
        for (machineId, keys) in facts.values.sorted(by: { data.name(of: $0.key) < data.name(of: $1.key) }) {
            for (key, value) in keys.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                byMachineAction.add([data.name(of: machineId), key[0]], Int(value))
            }
        }
        var tables = [
            ReportTable(
                name: "by_action",
                title: "Watchdog firings by action",
                columns: ["action", "count"],
                rows: byAction.sortedKeys.map { [.text($0), .count(byAction[$0])] }
            ),
            ReportTable(
                name: "by_vm",
                title: "Watchdog firings per VM and action",
                columns: ["vm", "action", "count"],
                rows: byMachineAction.sortedKeys.map { [.text($0[0]), .text($0[1]), .count(byMachineAction[$0])] }
            ),
        ]
        if let interval = query.interval {
            tables.insert(
                ReportTable(
                    name: "series",
                    title: "Watchdog firings per \(interval.rawValue)",
                    columns: ["bucket", "count"],
                    rows: perBucket.keys.sorted().map { [.time($0), .count(perBucket[$0] ?? 0)] }
                ),
                at: 0
            )
        }
        let total = byAction.counts.values.reduce(0, +)
        return ReportResult(
            report: "watchdog",
            query: query,
            summary: [
                ("firings", .count(total)), ("vms_affected", .count(Set(byMachineAction.order.map { $0[0] }).count)),
            ],
            tables: tables,
            caveats: [
                "Counts are lower bounds: QEMU sends at most one WATCHDOG event per second per VM and drops the rest.",
                "Only firings while qmplog was attached are counted.",
            ]
        )
    }

    static func count(_ data: ReportData, into facts: inout FactTally, each: (Int64) -> Void = { _ in }) throws {
        let query = data.query
        try data.forEachEvent(named: ["WATCHDOG"]) { event in
            guard query.contains(event.time) else { return }
            facts.add(event.machineId, [event.action ?? "(none)"])
            each(event.time)
        }
    }
}
