public import EventStore

/// Builds the rollup: every report's facts over the history before the current hour.
///
/// A report over the whole history then reads these facts plus the events after the cut, instead
/// of every event (see ``ReportData/loadingRollup(_:into:)``). The facts are counted by the very
/// code that counts a scan, and what a count carries over the cut is saved with them (`["carry",
/// …]` facts: SHUTDOWNs not yet followed by RESUME or RESET, panics a repeat may still change,
/// each open session's state); the POWERDOWN, WATCHDOG and burst windows are short enough for the
/// scan after the cut to look back over. So both paths give the same report (`RollupTests`).
public enum RollupBuilder {
    /// Counts the facts and replaces the stored rollup, in one write transaction.
    ///
    /// - Parameters:
    ///   - now: the present; the cut is the start of its UTC hour, so events in flight (stamped in
    ///     the last moments) fall after it.
    /// - Returns: the rollup stored.
    @discardableResult
    public static func rebuild(_ database: EventDatabase, now: Int64) async throws -> Rollup {
        // Read before any count: an event counted below with a larger id was stamped before the cut
        // and arrived during the build, which marks the rollup stale (safe, never double-counted).
        let lastEventId = try await database.lastEventId()
        let cut = ReportInterval.hour.bucket(of: now)
        let query = ReportQuery(until: cut, now: cut)
        let data = try await ReportData(database: database, query: query)
        // Context is carried over the cut for every session that may go on after it, whatever its
        // start: the recorder stamps sessions, QEMU its events, and the clocks differ.
        let openAtCut = try await database.sessionIds(continuingAfter: cut)
        var facts: [Rollup.Fact] = []
        for kind in ReportKind.allCases {
            var tally = FactTally()
            switch kind {
            case .summary: try await data.countEventsPerMachineAndName(since: nil, into: &tally)
            case .shutdowns:
                for (session, machineId) in try ShutdownReport.count(data, into: &tally)
                where openAtCut.contains(session) {
                    tally.add(machineId, [FactTally.carry, "pending", String(session)])
                }
            case .panics: tally = try PanicReport.rollupFacts(data, openAtCut: openAtCut)
            case .resets: try ResetReport.count(data, into: &tally)
            case .watchdog: try WatchdogReport.count(data, into: &tally)
            case .states: tally = try await StateReport.rollupFacts(data)
            case .stops: tally = try await StopReport.rollupFacts(data)
            case .pauses: continue  // always read from the events: episodes span the cut
            }
            facts += tally.facts(report: kind.rawValue)
        }
        let rollup = Rollup(
            cut: cut,
            lastEventId: lastEventId,
            powerdownWindow: query.powerdownWindow,
            builtAt: now,
            facts: facts
        )
        try await database.replaceRollup(rollup)
        return rollup
    }
}
