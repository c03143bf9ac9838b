import EventStore

/// SHUTDOWN events split by who initiated them, corrected for QEMU's quirks.
///
/// - A host `system_powerdown` reaches the VM as POWERDOWN, and the guest OS then shuts down with
///   `guest: true`. A guest SHUTDOWN within ``ReportQuery/powerdownWindow`` after a POWERDOWN on the
///   same VM counts as **host-requested (ACPI)**.
/// - QEMU may repeat SHUTDOWN (SIGTERM); a SHUTDOWN in the same session with no RESUME or RESET
///   since the previous one is the same shutdown.
/// - Without a `guest` member (QEMU < 2.10) the initiator is **unknown**.
enum ShutdownReport {
    enum Initiator: String, CaseIterable {
        case guest, host
        case hostACPI = "host_requested_acpi"
        case unknown
    }

    /// Facts: `[initiator, reason]` per shutdown, `["duplicate"]` per repeated SHUTDOWN.
    static func run(_ data: ReportData) async throws -> ReportResult {
        var series: [Int64: Tally<Initiator>] = [:]
        let facts = try await facts(data) { time, initiator in
            if let interval = data.query.interval { series[interval.bucket(of: time), default: Tally()].add(initiator) }
        }
        let senders = try await data.database.signalSenders(in: data.selection())
        return result(facts, series: series, senders: senders, data: data)
    }

    /// The facts of `data`'s window, from the rollup where it can answer; `each` sees every
    /// SHUTDOWN counted from the events.
    static func facts(
        _ data: ReportData,
        each: (_ time: Int64, _ initiator: Initiator) -> Void = { _, _ in }
    ) async throws -> FactTally {
        var facts = FactTally()
        let (scan, rollup) = try await data.loadingRollup(.shutdowns, into: &facts)
        var pending: [Int64: Int64] = [:]
        for carried in rollup?.carried("pending") ?? [] {
            if let session = Int64(carried.key[carried.key.startIndex]) { pending[session] = carried.machineId }
        }
        try count(scan, into: &facts, pending: pending, each: each)
        return facts
    }

    /// Classifies the SHUTDOWNs in `data`'s window into `facts`; `each` sees every counted one.
    ///
    /// - Parameter pending: sessions (→ VM) whose last SHUTDOWN before the window had no RESUME or
    ///   RESET after it, carried over a rollup's cut.
    /// - Returns: the sessions in that state at the end.
    @discardableResult
    static func count(
        _ data: ReportData,
        into facts: inout FactTally,
        pending: [Int64: Int64] = [:],
        each: (_ time: Int64, _ initiator: Initiator) -> Void = { _, _ in }
    ) throws -> [Int64: Int64] {
        let query = data.query
        var lastPowerdown: [Int64: Int64] = [:]
        var shutdownPending = pending  // sessions with a SHUTDOWN and no RESUME/RESET since → VM
        try data.forEachEvent(
            named: ["SHUTDOWN", "POWERDOWN", "RESUME", "RESET"],
            lookback: query.powerdownWindow
        ) { event in
            switch event.name {
            case "POWERDOWN":
                lastPowerdown[event.machineId] = event.time
            case "RESUME", "RESET":
                shutdownPending.removeValue(forKey: event.sessionId)
            default:  // SHUTDOWN
                guard shutdownPending.updateValue(event.machineId, forKey: event.sessionId) == nil else {
                    if query.contains(event.time) { facts.add(event.machineId, ["duplicate"]) }
                    return
                }
                let powerdown = lastPowerdown.removeValue(forKey: event.machineId)
                guard query.contains(event.time) else { return }
                let initiator: Initiator
                switch event.guest {
                case true?:
                    let requested =
                        powerdown.map { event.time - $0 <= query.powerdownWindow && event.time >= $0 } ?? false
                    initiator = requested ? .hostACPI : .guest
                case false?: initiator = .host
                case nil: initiator = .unknown
                }
                facts.add(event.machineId, [initiator.rawValue, event.reason ?? "(none)"])
                each(event.time, initiator)
            }
        }
        return shutdownPending
    }

    /// One count per initiator, then the total.
    static func counts(_ tally: Tally<Initiator>) -> [ReportValue] {
        let values: [ReportValue] = Initiator.allCases.map { .count(tally[$0]) }
        return values + [.count(tally.counts.values.reduce(0, +))]
    }

    static func result(
        _ facts: FactTally,
        series: [Int64: Tally<Initiator>],
        senders: [SignalSenderFact] = [],
        data: ReportData
    ) -> ReportResult {
        let query = data.query
        let initiatorOf = { (key: [String]) in key.count == 2 ? Initiator(rawValue: key[0]) : nil }
        let byInitiator = facts.tally(initiatorOf)
        let byReason = facts.tally { $0.count == 2 ? $0 : nil }
        let duplicates = facts.tally { $0 == ["duplicate"] ? true : nil }[true]
        let total = byInitiator.counts.values.reduce(0, +)
        let hostSide = byInitiator[.host] + byInitiator[.hostACPI]
        var summary: [(key: String, value: ReportValue)] = [("shutdowns", .count(total))]
        summary += Initiator.allCases.map { ($0.rawValue, .count(byInitiator[$0])) }
        summary.append(
            ("guest_host_ratio", hostSide == 0 ? .null : .number(Double(byInitiator[.guest]) / Double(hostSide)))
        )
        summary.append(("duplicates_ignored", .count(duplicates)))

        var tables = [
            ReportTable(
                name: "by_reason",
                title: "Shutdowns by initiator and reason",
                columns: ["initiator", "reason", "count"],
                rows: byReason.sortedKeys.map { [.text($0[0]), .text($0[1]), .count(byReason[$0])] }
            )
        ]
        let columns = Initiator.allCases.map(\.rawValue) + ["total"]
        if query.byMachine {
            var perMachine: [Int64: Tally<Initiator>] = [:]
            for (machineId, keys) in facts.values {
                for (key, value) in keys {
                    if let initiator = initiatorOf(key) {
                        perMachine[machineId, default: Tally()].add(initiator, Int(value))
                    }
                }
            }
            let ids = perMachine.keys.sorted { data.name(of: $0) < data.name(of: $1) }
            let rows = ids.map { id -> [ReportValue] in [.text(data.name(of: id))] + counts(perMachine[id] ?? Tally()) }
            tables.append(ReportTable(name: "by_vm", title: "Shutdowns per VM", columns: ["vm"] + columns, rows: rows))
        }
        if let interval = query.interval {
            let perBucket = series
            let rows = perBucket.keys.sorted().map { bucket -> [ReportValue] in
                [.time(bucket)] + counts(perBucket[bucket] ?? Tally())
            }
            tables.insert(
                ReportTable(
                    name: "series",
                    title: "Shutdowns per \(interval.rawValue)",
                    columns: ["bucket"] + columns,
                    rows: rows
                ),
                at: 0
            )
        }
        if !senders.isEmpty {
            // Known only from imported libvirt logs (qmplog import libvirt-log): who signalled QEMU.
            tables.append(
                ReportTable(
                    name: "signal_senders",
                    title: "Who signalled QEMU (from libvirt's logs)",
                    columns: ["vm", "time", "signal", "pid", "program"],
                    rows: senders.map { sender in
                        [
                            .text(data.name(of: sender.machineId)), .time(sender.time),
                            .text(Self.signalName(sender.signal)), sender.pid.map(ReportValue.integer) ?? .null,
                            .optional(sender.program),
                        ]
                    }
                )
            )
        }
        let window = query.powerdownWindow / 1_000_000
        return ReportResult(
            report: "shutdowns",
            query: query,
            summary: summary,
            tables: tables,
            caveats: [
                "A guest SHUTDOWN within \(window) s after a POWERDOWN on the same VM is counted as host-requested (ACPI): "
                    + "QEMU flags the guest's response to a host power-button press as guest-initiated.",
                "A SHUTDOWN repeated in one session without a RESUME or RESET between is one shutdown (QEMU repeats it on some signals).",
                "unknown: QEMU older than 2.10 sends no guest flag.",
                "Only shutdowns that happened while qmplog was attached, or that were imported from history "
                    + "(qmplog import), are counted; see 'report summary' for gaps.",
            ]
        )
    }

    /// `SIGTERM` for 15: the signals that end QEMU by name.
    static func signalName(_ signal: Int64) -> String {
        switch signal {
        case 1: "SIGHUP"
        case 2: "SIGINT"
        case 3: "SIGQUIT"
        case 9: "SIGKILL"
        case 15: "SIGTERM"
        default: "signal \(signal)"
        }
    }
}
