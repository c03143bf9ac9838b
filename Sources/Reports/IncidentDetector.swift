package import EventStore

/// Finds the incidents a recorder's hooks are told: the stops and pause episodes of `report stops`
/// and `report pauses`, each panic and watchdog firing, and crash loops — classified exactly as
/// those reports classify them.
package enum IncidentDetector {
    /// The classes of stops (`report stops`) and the causes of pauses (`report pauses`).
    package static let stopClasses = StopReport.StopClass.allCases.map(\.rawValue)
    package static let pauseCauses = PauseReport.Cause.allCases.map(\.rawValue)

    /// How far before its start a scan reads: enough for a stop's POWERDOWN, a crash loop's earlier
    /// crashes and a pause's cause.
    package static func lookback(_ query: ReportQuery) -> Int64 { query.powerdownWindow + query.crashLoopWindow }

    /// The incidents that happened at or after `since` (a crash loop: that grew then), in time order.
    /// Pause episodes a VM was already in when qmplog attached are not incidents: nobody saw them begin.
    package static func incidents(in database: EventDatabase, since: Int64, now: Int64) async throws -> [NewIncident] {
        let query = ReportQuery(since: since, now: now)
        let data = try await ReportData(database: database, query: query)
        var incidents: [NewIncident] = []
        let (stops, loops) = try await StopReport.analyze(data)
        for stop in stops where stop.time >= since {
            incidents.append(
                NewIncident(
                    machineId: stop.machineId,
                    kind: "stop",
                    incidentClass: stop.stopClass.rawValue,
                    time: stop.time,
                    evidence: stop.evidence,
                    eventNames: stop.stopClass == .killed || stop.stopClass == .unknown ? [] : ["SHUTDOWN"]
                )
            )
        }
        for loop in loops where loop.until >= since {
            incidents.append(
                NewIncident(
                    machineId: loop.machineId,
                    kind: "crashloop",
                    incidentClass: "crashloop",
                    time: loop.from,
                    lastTime: loop.until,
                    count: loop.count,
                    evidence:
                        "\(loop.count) panics, watchdog firings or kills from \(Timestamp.rfc3339(microseconds: loop.from)) "
                        + "to \(Timestamp.rfc3339(microseconds: loop.until))"
                )
            )
        }
        for episode in try await PauseReport.analyze(data, maximumLookback: lookback(query))
        where episode.start > since && !episode.foundOnAttach {
            incidents.append(
                NewIncident(
                    machineId: episode.machineId,
                    kind: "pause",
                    incidentClass: episode.cause.rawValue,
                    time: episode.start,
                    evidence: episode.evidence,
                    eventNames: ["STOP", "SUSPEND", "SUSPEND_DISK"]
                )
            )
        }
        incidents += try firings(data, since: since)
        return incidents.sorted { ($0.time, $0.machineId, $0.kind) < ($1.time, $1.machineId, $1.kind) }
    }

    /// Each panic (QEMU < 6.0's second GUEST_PANICKED of one panic is not another) and each
    /// watchdog firing.
    private static func firings(_ data: ReportData, since: Int64) throws -> [NewIncident] {
        var lastPanic: [Int64: Int64] = [:]
        var incidents: [NewIncident] = []
        let selection = EventSelection(machineIds: nil, from: since - StopReport.panicRepeatWindow, until: nil)
        try data.database.forEachEvent(named: ["GUEST_PANICKED", "WATCHDOG"], in: selection) { batch in
            for event in batch {
                if event.name == "GUEST_PANICKED" {
                    defer { lastPanic[event.machineId] = event.time }
                    if let last = lastPanic[event.machineId], event.time - last <= StopReport.panicRepeatWindow,
                        event.time >= last
                    {
                        continue
                    }
                }
                guard event.time >= since else { continue }
                let panic = event.name == "GUEST_PANICKED"
                let details = [
                    event.action.map { "action=\($0)" }, event.panicType.map { "type=\($0)" },
                    event.panicReason.map { "reason=\($0)" },
                ]
                incidents.append(
                    NewIncident(
                        machineId: event.machineId,
                        kind: panic ? "panic" : "watchdog",
                        incidentClass: panic ? "panic" : "watchdog",
                        time: event.time,
                        evidence: ([event.name] + details.compactMap { $0 }).joined(separator: " "),
                        eventNames: [event.name]
                    )
                )
            }
        }
        return incidents
    }
}
