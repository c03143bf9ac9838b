import EventStore

/// GUEST_PANICKED grouped by crash type, s390 reason, hyper-v bugcheck code, action, VM and day.
///
/// QEMU before 6.0 sends two GUEST_PANICKED per panic (action pause, then poweroff): consecutive
/// GUEST_PANICKED in one session with no RESUME or RESET between are one panic, with the last action.
enum PanicReport {
    struct Panic {
        var machineId: Int64
        var time: Int64
        var type: String
        var reason: String?
        var code: String?
        var action: String
    }

    /// Facts: `[type, s390 reason, hyper-v code, action]` per panic (empty parts where not
    /// applicable), `["repeat"]` per merged GUEST_PANICKED; for the default day series, the fleet's
    /// panics per day as `["day", bucket]` on VM 0 (per VM they would be as many rows as events).
    static func run(_ data: ReportData) async throws -> ReportResult {
        let (facts, series) = try await factsAndSeries(data)
        return result(facts, series: series, data: data)
    }

    /// The facts of `data`'s window, from the rollup where it can answer, and the panics per bucket.
    static func factsAndSeries(_ data: ReportData) async throws -> (FactTally, [Int64: Int]) {
        let interval = data.query.interval ?? .day
        var facts = FactTally()
        var series: [Int64: Int] = [:]
        // The rollup's day series is the fleet's: with --vm the scan (of a few VMs, by index) answers.
        let (scan, rollup) =
            data.selectedIds == nil ? try await data.loadingRollup(.panics, into: &facts) : (data, nil)
        var open: [Int64: Panic] = [:]
        for fact in rollup?.facts ?? [] where fact.machineId == 0 && fact.key.count == 2 && fact.key[0] == "day" {
            if let bucket = Int64(fact.key[1]) { series[bucket, default: 0] += Int(fact.value) }
        }
        for carried in rollup?.carried("panic") ?? [] where carried.key.count == 6 {
            let parts = Array(carried.key)
            if let session = Int64(parts[0]), let time = Int64(parts[5]) {
                open[session] = Panic(
                    machineId: carried.machineId,
                    time: time,
                    type: parts[1],
                    reason: parts[2] == "(none)" ? nil : parts[2],
                    code: parts[3] == "(none)" ? nil : parts[3],
                    action: parts[4]
                )
                // Counted in the rollup's series; counted again when it closes after the cut.
                series[interval.bucket(of: time), default: 0] -= 1
            }
        }
        try count(scan, into: &facts, open: open) { time in series[interval.bucket(of: time), default: 0] += 1 }
        return (facts, series.filter { $0.value != 0 })
    }

    /// The fleet's panics per day in `facts` (on VM 0) and a carried fact per panic still open at
    /// the cut in one of `openAtCut`'s sessions, for the rollup over `data`.
    static func rollupFacts(_ data: ReportData, openAtCut: Set<Int64>) throws -> FactTally {
        var facts = FactTally()
        var days: [Int64: Int64] = [:]
        let open = try count(data, into: &facts) { time in days[ReportInterval.day.bucket(of: time), default: 0] += 1 }
        for (bucket, panics) in days { facts.add(0, ["day", String(bucket)], panics) }
        for (session, panic) in open where openAtCut.contains(session) {
            facts.add(
                panic.machineId,
                [FactTally.carry, "panic", String(session)] + key(panic) + [String(panic.time)]
            )
        }
        return facts
    }

    /// Merges and classifies the GUEST_PANICKED events in `data`'s window into `facts`; `each` sees
    /// the time of every counted panic.
    ///
    /// - Parameter open: per session, a panic counted before the window (across a rollup's cut) that
    ///   a repeat may still change; it is taken out of `facts` and counted again when it closes.
    /// - Returns: the panics still open at the end (they are counted in `facts` too).
    @discardableResult
    static func count(
        _ data: ReportData,
        into facts: inout FactTally,
        open: [Int64: Panic] = [:],
        each: (Int64) -> Void = { _ in }
    ) throws -> [Int64: Panic] {
        let query = data.query
        var openPanic = open  // per session, a panic not yet followed by RESUME/RESET
        for panic in open.values { facts.add(panic.machineId, key(panic), -1) }
        func close(_ panic: Panic) {
            facts.add(panic.machineId, key(panic))
            each(panic.time)
        }
        try data.forEachEvent(named: ["GUEST_PANICKED", "RESUME", "RESET"]) { event in
            guard event.name == "GUEST_PANICKED" else {
                openPanic.removeValue(forKey: event.sessionId).map(close)
                return
            }
            guard query.contains(event.time) else { return }
            if var panic = openPanic[event.sessionId] {
                facts.add(event.machineId, ["repeat"])
                if let action = event.action { panic.action = action }
                if panic.type == "none", let type = event.panicType { panic.type = type }
                openPanic[event.sessionId] = panic
                return
            }
            openPanic[event.sessionId] = Panic(
                machineId: event.machineId,
                time: event.time,
                type: event.panicType ?? "none",
                reason: event.panicReason,
                code: event.panicArg1.flatMap(UInt64.init).map(hex),
                action: event.action ?? "(none)"
            )
        }
        for session in openPanic.keys.sorted() { openPanic[session].map(close) }
        return openPanic
    }

    /// A panic's fact: type, s390 reason, hyper-v code (empty where not applicable), action.
    static func key(_ panic: Panic) -> [String] {
        let reason = panic.type == "s390" ? panic.reason ?? "(none)" : ""
        let code = panic.type == "hyper-v" ? panic.code ?? "(none)" : ""
        return [panic.type, reason, code, panic.action]
    }

    static func result(_ facts: FactTally, series: [Int64: Int], data: ReportData) -> ReportResult {
        let query = data.query
        let panicKey = { (key: [String]) in key.count == 4 ? key : nil }
        let byType = facts.tally { panicKey($0)?[0] }
        let byReason = facts.tally { panicKey($0).flatMap { $0[0] == "s390" ? $0[1] : nil } }
        let byCode = facts.tally { panicKey($0).flatMap { $0[0] == "hyper-v" ? $0[2] : nil } }
        let byAction = facts.tally { panicKey($0)?[3] }
        let repeats = facts.tally { $0 == ["repeat"] ? true : nil }[true]
        let perMachine = facts.perMachine { $0.count == 4 }
        var byMachine = Tally<Int64>()
        for (machineId, count) in perMachine.sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }) {
            byMachine.add(machineId, count)
        }
        let panicCount = byType.counts.values.reduce(0, +)
        func table(_ name: String, _ title: String, _ column: String, _ tally: Tally<String>) -> ReportTable {
            ReportTable(
                name: name,
                title: title,
                columns: [column, "count"],
                rows: tally.sortedKeys.map { [.text($0), .count(tally[$0])] }
            )
        }
        // Always a series, per day unless --interval says otherwise (the JSON contract).
        let interval = query.interval ?? .day
        let tables = [
            ReportTable(
                name: "series",
                title: "Panics per \(interval.rawValue)",
                columns: ["bucket", "panics"],
                rows: series.keys.sorted().map { [.time($0), .count(series[$0] ?? 0)] }
            ),
            table("by_type", "Panics by crash information type", "panic_type", byType),
            table("s390_by_reason", "s390 panics by crash reason", "reason", byReason),
            table("hyperv_by_code", "Hyper-V panics by bugcheck code (arg1)", "code", byCode),
            table("by_action", "Panics by action taken", "action", byAction),
            ReportTable(
                name: "by_vm",
                title: "Panics per VM",
                columns: ["vm", "panics"],
                rows: byMachine.sortedKeys.map { [.text(data.name(of: $0)), .count(byMachine[$0])] }
            ),
        ]
        return ReportResult(
            report: "panics",
            query: query,
            summary: [
                ("panics", .count(panicCount)), ("vms_affected", .count(byMachine.counts.count)),
                ("repeated_events_merged", .count(repeats)),
            ],
            tables: tables,
            caveats: [
                "panic_type none: QEMU sent no crash information (pvpanic, or a QEMU too old to report it).",
                "GUEST_PANICKED events repeated in one session without a RESUME or RESET between are one panic "
                    + "(QEMU before 6.0 sends pause, then poweroff, for each panic).",
                "Only panics that happened while qmplog was attached are counted.",
            ]
        )
    }

    /// `0x0000007E`: Windows bugcheck style, at least 8 hex digits.
    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }
}
