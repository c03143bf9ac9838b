package import EventStore

/// One Prometheus metric family: its name, help, type and samples.
package struct MetricFamily: Sendable {
    package enum Kind: String, Sendable { case counter, gauge }

    package var name: String
    package var help: String
    package var kind: Kind
    package var samples: [(labels: [(String, String)], value: Int64)] = []
}

/// The fleet's whole-history figures as metric families: the same facts, and so the same numbers,
/// as `report shutdowns`, `resets`, `panics`, `watchdog` and `summary` over the whole history (from
/// the rollup where it answers), and each VM's state as `qmplog vms` shows it.
///
/// Label values are bounded: a VM's name, and names and reasons from QEMU's enums; anything that
/// is not spelled as those are (a peer's invention) is counted under `other`.
package enum FleetMetrics {
    /// - Parameter monitors: add `qmplog_vm_monitor_connected` (a recorder serving: its open
    ///   sessions are the monitors it is attached to now).
    package static func families(of database: EventDatabase, now: Int64, version: String, monitors: Bool = false)
        async throws -> [MetricFamily]
    {
        let data = try await ReportData(database: database, query: ReportQuery(now: now))
        let build = MetricFamily(
            name: "qmplog_build_info",
            help: "The qmplog serving these metrics.",
            kind: .gauge,
            samples: [([("version", version)], 1)]
        )
        return
            (try await historyFamilies(data)
            + (try await recentIncidents(of: database, now: now, name: data.name(of:)))
            + [try await eventFamily(data)] + (try await stateFamilies(data, monitors: monitors)) + [build])
            .map(merged)
    }

    /// The whole history's shutdowns, resets, panics and watchdog firings, from the rollup where it answers.
    private static func historyFamilies(_ data: ReportData) async throws -> [MetricFamily] {
        func vm(_ id: Int64) -> String { data.name(of: id) }
        var shutdowns = MetricFamily(
            name: "qmplog_vm_shutdowns_total",
            help:
                "Shutdowns by initiator (guest, host, host_requested_acpi, unknown) and QEMU's reason, as report shutdowns counts them.",
            kind: .counter
        )
        for (id, key, value) in sorted(try await ShutdownReport.facts(data)) where key.count == 2 {
            shutdowns.samples.append(([("vm", vm(id)), ("initiator", key[0]), ("reason", bounded(key[1]))], value))
        }

        var resets = MetricFamily(
            name: "qmplog_vm_resets_total",
            help: "Distinct resets by initiator (guest, host, watchdog, unknown), as report resets counts them.",
            kind: .counter
        )
        var resetTotals: [Int64: [String: Int64]] = [:]
        for (id, key, value) in sorted(try await ResetReport.facts(data)) where key.count == 3 && key[2] == "1" {
            resetTotals[id, default: [:]][key[0], default: 0] += value
        }
        resets.samples += samples(resetTotals, label: "initiator", vm: vm)

        var panics = MetricFamily(
            name: "qmplog_vm_guest_panics_total",
            help:
                "Guest panics by crash type, as report panics counts them (QEMU < 6.0's double GUEST_PANICKED is one).",
            kind: .counter
        )
        var panicTotals: [Int64: [String: Int64]] = [:]
        for (id, key, value) in sorted(try await PanicReport.factsAndSeries(data).0) where id != 0 && key.count == 4 {
            panicTotals[id, default: [:]][bounded(key[0].isEmpty ? "(none)" : key[0]), default: 0] += value
        }
        panics.samples += samples(panicTotals, label: "type", vm: vm)

        var watchdog = MetricFamily(
            name: "qmplog_vm_watchdog_events_total",
            help: "Watchdog firings by action.",
            kind: .counter
        )
        for (id, key, value) in sorted(try await WatchdogReport.facts(data)) where key.count == 1 {
            watchdog.samples.append(([("vm", vm(id)), ("action", bounded(key[0]))], value))
        }

        return [shutdowns, resets, panics, watchdog]
    }

    /// Events recorded per VM and name.
    private static func eventFamily(_ data: ReportData) async throws -> MetricFamily {
        var events = MetricFamily(
            name: "qmplog_events_total",
            help: "Events recorded, by event name.",
            kind: .counter
        )
        var eventFacts = FactTally()
        let cut = try await data.loadingRollup(.summary, into: &eventFacts).rollup?.cut
        try await data.countEventsPerMachineAndName(since: cut, into: &eventFacts)
        var eventTotals: [Int64: [String: Int64]] = [:]
        for (id, key, value) in sorted(eventFacts) where key.count == 1 {
            eventTotals[id, default: [:]][bounded(key[0], uppercase: true), default: 0] += value
        }
        events.samples += samples(eventTotals, label: "event", vm: data.name(of:))
        return events
    }

    /// Each VM's state now and its info; with `monitors`, whether this recorder is attached to it.
    private static func stateFamilies(_ data: ReportData, monitors: Bool) async throws -> [MetricFamily] {
        func vm(_ id: Int64) -> String { data.name(of: id) }
        var state = MetricFamily(
            name: "qmplog_vm_state",
            help: "1 for each VM's current run state (unknown when no recorder is attached to it), 0 for the others.",
            kind: .gauge
        )
        var info = MetricFamily(
            name: "qmplog_vm_info",
            help: "Each VM known to the database, with its UUID and the QEMU version of its latest session.",
            kind: .gauge
        )
        var connected = MetricFamily(
            name: "qmplog_vm_monitor_connected",
            help: "1 when this recorder is attached to the VM's monitor now, else 0.",
            kind: .gauge
        )
        var lost = MetricFamily(
            name: "qmplog_vm_monitor_lost",
            help:
                "1 when the VM's monitor connection failed while the VM was not shut down (it may run unwatched), else 0.",
            kind: .gauge
        )
        for overview in try await data.database.machineOverviews(
            stateEvents: StateReport.stateEvents,
            settling: StateReport.settlingEvents,
            countingEvents: false
        )
        where data.machineNames[overview.machine.id] != nil {
            connected.samples.append(([("vm", vm(overview.machine.id))], overview.attached ? 1 : 0))
            var current = StateReport.state(forStatus: overview.latestStatus)
            for name in overview.latestStateEvents { current = StateReport.state(after: name, from: current) }
            let now = overview.attached ? current.rawValue : "unknown"
            // EOF is QEMU's own end (a kill is a stop); an error is the connection's, QEMU may live on.
            let failed = overview.endReason?.hasPrefix("error") == true && current != .shutdown
            lost.samples.append(([("vm", vm(overview.machine.id))], !overview.attached && failed ? 1 : 0))
            for name in StateReport.State.allCases.map(\.rawValue) + ["unknown"] {
                state.samples.append(([("vm", vm(overview.machine.id)), ("state", name)], name == now ? 1 : 0))
            }
            info.samples.append(
                (
                    [
                        ("vm", vm(overview.machine.id)), ("uuid", overview.machine.uuid ?? ""),
                        ("qemu_version", overview.qemuVersion ?? ""),
                    ], 1
                )
            )
        }
        return [state, info] + (monitors ? [connected, lost] : [])
    }

    /// How far back the stop, pause and crash-loop figures look: their classification walks every
    /// event of its window, so a scrape reads a day of events, not the whole history.
    static let recentWindow: Int64 = 86_400_000_000

    /// The last day's stops by class, pauses by cause and crash loops, with when each last
    /// happened (for alerts that must not depend on a series existing before), and the cause of
    /// each pause under way.
    private static func recentIncidents(of database: EventDatabase, now: Int64, name vm: (Int64) -> String)
        async throws -> [MetricFamily]
    {
        let data = try await ReportData(database: database, query: ReportQuery(since: now - recentWindow, now: now))
        let (stopList, loopList) = try await StopReport.analyze(data)
        var stopCounts: [Int64: [String: Int64]] = [:]
        var stopTimes: [Int64: [String: Int64]] = [:]
        for stop in stopList {
            stopCounts[stop.machineId, default: [:]][stop.stopClass.rawValue, default: 0] += 1
            stopTimes[stop.machineId, default: [:]][stop.stopClass.rawValue] = max(
                stop.time,
                stopTimes[stop.machineId]?[stop.stopClass.rawValue] ?? .min
            )
        }
        var loopTimes: [Int64: [String: Int64]] = [:]
        for loop in loopList {
            loopTimes[loop.machineId, default: [:]]["loop"] = max(
                loop.until,
                loopTimes[loop.machineId]?["loop"] ?? .min
            )
        }
        var pauseCounts: [Int64: [String: Int64]] = [:]
        var pausedBy: [Int64: [String: Int64]] = [:]
        for episode in try await PauseReport.analyze(data, maximumLookback: IncidentDetector.lookback(data.query)) {
            if episode.start >= now - recentWindow {
                pauseCounts[episode.machineId, default: [:]][episode.cause.rawValue, default: 0] += 1
            }
            if episode.ongoing { pausedBy[episode.machineId, default: [:]][episode.cause.rawValue] = 1 }
        }
        func family(_ name: String, _ help: String, _ values: [Int64: [String: Int64]], label: String?, seconds: Bool)
            -> MetricFamily
        {
            var family = MetricFamily(name: name, help: help, kind: .gauge)
            for (id, byLabel) in values.sorted(by: { vm($0.key) < vm($1.key) }) {
                for (value, number) in byLabel.sorted(by: { $0.key < $1.key }) {
                    let labels = [("vm", vm(id))] + (label.map { [($0, value)] } ?? [])
                    family.samples.append((labels, seconds ? number / 1_000_000 : number))
                }
            }
            return family
        }
        return [
            family(
                "qmplog_vm_stops_last24h",
                "Stops (a QEMU that ended) in the last 24 hours by class, as report stops classifies them.",
                stopCounts,
                label: "class",
                seconds: false
            ),
            family(
                "qmplog_vm_last_stop_timestamp_seconds",
                "When the VM last stopped with each class, within the last 24 hours (Unix time).",
                stopTimes,
                label: "class",
                seconds: true
            ),
            family(
                "qmplog_vm_last_crash_loop_timestamp_seconds",
                "The latest crash of the VM's latest crash loop (panics, watchdog firings or kills in quick succession), within the last 24 hours.",
                loopTimes,
                label: nil,
                seconds: true
            ),
            family(
                "qmplog_vm_pauses_last24h",
                "Pause episodes that began in the last 24 hours, by cause, as report pauses finds them.",
                pauseCounts,
                label: "cause",
                seconds: false
            ),
            family(
                "qmplog_vm_paused_by",
                "1 for a VM paused now, labelled with the cause of its pause (io-error, watchdog, guest-panic, host-stop, suspend, unknown).",
                pausedBy,
                label: "cause",
                seconds: false
            ),
        ]
    }

    /// `family` with samples whose labels came out the same (two reasons a peer invented are both
    /// `other`) summed into one: Prometheus refuses a family with a label set twice.
    static func merged(_ family: MetricFamily) -> MetricFamily {
        var merged = family
        merged.samples = []
        var index: [[String]: Int] = [:]
        for sample in family.samples {
            let key = sample.labels.flatMap { [$0.0, $0.1] }
            if let at = index[key] {
                merged.samples[at].value += sample.value
            } else {
                index[key] = merged.samples.count
                merged.samples.append(sample)
            }
        }
        return merged
    }

    /// Per-VM totals as samples labelled `vm` and `label`, in name order.
    private static func samples(_ totals: [Int64: [String: Int64]], label: String, vm: (Int64) -> String)
        -> [(labels: [(String, String)], value: Int64)]
    {
        totals.sorted { vm($0.key) < vm($1.key) }.flatMap { id, values in
            values.sorted { $0.key < $1.key }.map { ([("vm", vm(id)), (label, $0.key)], $0.value) }
        }
    }

    /// A tally's values in a stable order: VM id, then key.
    private static func sorted(_ facts: FactTally) -> [(Int64, [String], Int64)] {
        facts.values.keys.sorted().flatMap { id in
            facts.sortedEntries(of: id).map { (id, $0.key, $0.value) }
        }
    }

    /// `value` when it is spelled as QEMU spells its enum values (or event names, `uppercase`),
    /// else `other`: a label must not carry whatever a peer sent.
    static func bounded(_ value: String, uppercase: Bool = false) -> String {
        if value == "(none)" { return value }
        let bytes = Array(value.utf8)
        func allowed(_ byte: UInt8) -> Bool {
            if (48...57).contains(byte) || byte == 95 { return true }
            return uppercase ? (65...90).contains(byte) : (97...122).contains(byte) || byte == 45
        }
        return !bytes.isEmpty && bytes.count <= 64 && bytes.allSatisfy(allowed) ? value : "other"
    }
}
