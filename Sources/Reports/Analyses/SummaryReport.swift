import EventStore

/// The overview: VMs, events by name, sessions, and how much of the window was observed.
package enum SummaryReport {
    static func run(_ data: ReportData) async throws -> ReportResult {
        let query = data.query
        let sessions = try await data.sessions()
        let perName: [(key: String, count: Int64)]
        let perMachine: [Int64: (count: Int64, first: Int64, last: Int64)]
        var facts = FactTally()
        if let rollup = try await data.loadingRollup(.summary, into: &facts).rollup {
            // The rollup's counts per VM and name, the events after its cut, and each VM's first and
            // last event from the time index.
            try await data.countEventsPerMachineAndName(since: rollup.cut, into: &facts)
            perName = facts.tally { $0.first }.counts.map { (key: $0.key, count: Int64($0.value)) }
                .sorted { $0.count != $1.count ? $0.count > $1.count : $0.key < $1.key }
            let counts = facts.perMachine()
            perMachine = try await data.eventBounds().reduce(into: [:]) { spans, bound in
                spans[bound.key] = (Int64(counts[bound.key] ?? 0), bound.value.first, bound.value.last)
            }
        } else {
            perName = try await data.countEventsByName()
            perMachine = try await data.eventSpans()
        }
        let windowStart = query.since ?? sessions.map(\.startedAt).min() ?? query.end
        let windowLength = max(0, query.end - windowStart)
        var observed: [Int64: Int64] = [:]
        var sessionCount: [Int64: Int] = [:]
        var coveredUntil: [Int64: Int64] = [:]
        for session in sessions {
            sessionCount[session.machineId, default: 0] += 1
            let start = max(session.startedAt, windowStart, coveredUntil[session.machineId] ?? .min)
            let end = min(session.endedAt ?? query.now, query.end)
            if end > start { observed[session.machineId, default: 0] += end - start }
            coveredUntil[session.machineId] = max(coveredUntil[session.machineId] ?? .min, end)
        }
        let ids = data.machineNames.keys.sorted { data.name(of: $0) < data.name(of: $1) }
        let vmRows = ids.map { id -> [ReportValue] in
            let span = perMachine[id]
            return [
                .text(data.name(of: id)), .count(sessionCount[id] ?? 0), .integer(span?.count ?? 0),
                .duration(observed[id] ?? 0), .duration(windowLength - (observed[id] ?? 0)),
                span.map { .time($0.first) } ?? .null, span.map { .time($0.last) } ?? .null,
            ]
        }
        let total = perName.reduce(0) { $0 + $1.count }
        var tables = [
            ReportTable(
                name: "events_by_name",
                title: "Events by name",
                columns: ["event", "count"],
                rows: perName.map { [.text($0.key), .integer($0.count)] }
            ),
            ReportTable(
                name: "by_vm",
                title: "VMs",
                columns: ["vm", "sessions", "events", "observed", "not_observed", "first_event", "last_event"],
                rows: vmRows
            ),
        ]
        if let interval = query.interval {
            let buckets = try await data.countEventsPerBucket(interval)
            tables.insert(
                ReportTable(
                    name: "series",
                    title: "Events per \(interval.rawValue)",
                    columns: ["bucket", "events"],
                    rows: buckets.map { [.time($0.bucket), .integer($0.count)] }
                ),
                at: 0
            )
        }
        let firstEvent = perMachine.values.map(\.first).min()
        let lastEvent = perMachine.values.map(\.last).max()
        let observedTotal = observed.values.reduce(0, +)
        let crashLoops = try await StopReport.crashLoops(data)
        var caveats = [
            "observed: time qmplog was attached to a VM (its sessions); not_observed: the rest of the window. "
                + "observed_fraction: observed time over window × VMs. Events in not-observed time are lost: "
                + "QEMU does not replay them.",
            "Event times are QEMU's host clock; where QEMU sent -1/-1 the receive time is used.",
        ]
        // Event times are each host's clock: one off PostgreSQL's is off the other hosts'.
        let tolerance: Int64 = 1_000_000
        if let skew = try await data.database.shippingState()?.clockOffset, abs(skew) > tolerance {
            caveats.append(
                "This host's clock was \(Self.signedSeconds(-skew)) s off the fleet's PostgreSQL at the last qmplog "
                    + "ship: its event times are off other hosts' by as much."
            )
        }
        for host in try await data.database.skewedHosts(tolerance: tolerance) {
            caveats.append(
                "Host \(host.name)'s clock was \(Self.signedSeconds(-host.clockOffset)) s off PostgreSQL's at its last "
                    + "ship: its event times are off other hosts' by as much."
            )
        }
        return ReportResult(
            report: "summary",
            query: query,
            summary: [
                ("vms", .count(ids.count)), ("events", .integer(total)), ("sessions", .count(sessions.count)),
                ("first_event", firstEvent.map(ReportValue.time) ?? .null),
                ("last_event", lastEvent.map(ReportValue.time) ?? .null),
                ("window", .duration(windowLength)),
                // Of the window's VM-time (window × VMs), the share some recorder was attached.
                (
                    "observed_fraction",
                    windowLength == 0 || ids.isEmpty
                        ? .null : .number(Double(observedTotal) / (Double(windowLength) * Double(ids.count)))
                ),
                // VMs crash-looping (see report stops): the incident an operator must not miss.
                ("crash_loops", .count(crashLoops.count)),
                ("vms_in_crash_loops", .count(Set(crashLoops.map(\.machineId)).count)),
            ],
            tables: tables,
            caveats: caveats
        )
    }
}

extension SummaryReport {
    /// Microseconds as signed seconds with one decimal: `+5.0`, `-1.3`.
    package static func signedSeconds(_ microseconds: Int64) -> String {
        let seconds = (Double(microseconds) / 100_000).rounded() / 10
        return (seconds > 0 ? "+" : "") + String(seconds)
    }
}

extension ReportData {
    /// Adds the events from `since` on (`nil`: from the first) to `facts`, per VM and name
    /// (`[name]` → count).
    func countEventsPerMachineAndName(since: Int64?, into facts: inout FactTally) async throws {
        for row in try await database.countEventsPerMachineAndName(since: since, in: selection()) {
            facts.add(row.machineId, [row.name], row.count)
        }
    }

    /// Each selected VM's first and last event time over the whole history.
    func eventBounds() async throws -> [Int64: (first: Int64, last: Int64)] {
        try await database.eventBounds(machineIds: selectedIds)
    }

    /// Event counts grouped by event name, largest first.
    func countEventsByName() async throws -> [(key: String, count: Int64)] {
        try await database.countEventsByName(in: selection()).map { (key: $0.name, count: $0.count) }
    }

    /// Per machine: event count, first and last event time in the window.
    func eventSpans() async throws -> [Int64: (count: Int64, first: Int64, last: Int64)] {
        try await database.eventSpans(in: selection())
    }

    /// Event counts per time bucket, in time order.
    func countEventsPerBucket(_ interval: ReportInterval) async throws -> [(bucket: Int64, count: Int64)] {
        try await database.countEventsPerBucket(origin: interval.origin, length: interval.length, in: selection())
    }
}
