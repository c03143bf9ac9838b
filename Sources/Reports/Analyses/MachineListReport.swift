public import EventStore

/// `qmplog vms`: every VM the database knows, with its last known state.
public enum MachineListReport {
    /// - Parameter now: the present, for the result's window.
    public static func run(on database: EventDatabase, now: Int64) async throws -> ReportResult {
        // The event counts from the rollup and the events after its cut, as `report summary`
        // counts them, where it can answer: counting a fleet's millions of events takes seconds.
        let data = try await ReportData(database: database, query: ReportQuery(now: now))
        var facts = FactTally()
        var counts: [Int64: Int]?
        if let rollup = try await data.loadingRollup(.summary, into: &facts).rollup {
            try await data.countEventsPerMachineAndName(since: rollup.cut, into: &facts)
            counts = facts.perMachine()
        }
        let rows = try await database.machineOverviews(
            stateEvents: StateReport.stateEvents,
            settling: StateReport.settlingEvents,
            countingEvents: counts == nil
        ).map {
            vm -> [ReportValue] in
            var state = StateReport.state(forStatus: vm.latestStatus)
            for name in vm.latestStateEvents { state = StateReport.state(after: name, from: state) }
            return [
                .optional(vm.machine.name), .optional(vm.machine.uuid), .text(vm.machine.endpoint),
                .time(vm.machine.firstSeen), .time(vm.machine.lastSeen),
                .text(vm.attached ? state.rawValue : "\(state.rawValue) (last seen)"),
                .integer(counts.map { Int64($0[vm.machine.id] ?? 0) } ?? vm.events),
            ]
        }
        return ReportResult(
            report: "vms",
            query: ReportQuery(now: now),
            summary: [("vms", .count(rows.count))],
            tables: [
                ReportTable(
                    // Not `vms`: every report's JSON has that key for the --vm filters.
                    name: "known_vms",
                    title: "Known VMs",
                    columns: ["vm", "uuid", "socket", "first_seen", "last_seen", "state", "events"],
                    rows: rows
                )
            ],
            caveats: ["state: as of the last event qmplog saw; '(last seen)' when no recorder is attached now."]
        )
    }
}
