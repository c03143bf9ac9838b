import EventStore

/// What the analyses read from the store, for one query: the VMs it selects and the windows of
/// their events and sessions. The reads themselves, and all their SQL, are EventStore's.
struct ReportData {
    let database: EventDatabase
    var query: ReportQuery
    /// Machine id → display name, for the selected machines (all when none are named).
    let machineNames: [Int64: String]
    /// The ids `--vm` selected, or `nil` for all.
    let selectedIds: [Int64]?
    /// The earliest effective event time when the query has a `--since` (one seek in the time
    /// index): a window that starts before it bounds nothing, and reads like the whole history.
    let firstEventTime: Int64?

    init(database: EventDatabase, query: ReportQuery) async throws {
        // Without --until the window has no upper bound (see ``ReportQuery/contains(_:)``), so a
        // --since after now is a question, not a mistake.
        if let since = query.since, let until = query.until, since >= until {
            throw ReportsError(code: .invalidQuery, message: "--since must be earlier than --until")
        }
        self.database = database
        self.query = query
        let machines = try await database.allMachines()
        var names: [Int64: String] = [:]
        var selected: [Int64] = []
        var unmatched = Set(query.machines)
        for machine in machines {
            let keys = [machine.name, machine.uuid, machine.endpoint, machine.identity].compactMap { $0 }
            if query.machines.isEmpty || keys.contains(where: query.machines.contains) {
                names[machine.id] = machine.displayName
                selected.append(machine.id)
                unmatched.subtract(keys)
            }
        }
        if !unmatched.isEmpty {
            // Printed on a terminal: names come from VMs and the command line.
            let known = machines.map { TerminalText.escaping($0.name ?? $0.endpoint) }.sorted()
            let wanted = unmatched.sorted().map(TerminalText.escaping)
            var error = ReportsError(
                code: .unknownMachine,
                message: "no VM named \(wanted.joined(separator: ", ")) in \(database.path ?? "the database")"
                    + (known.isEmpty ? " (it has no VMs yet)" : "; known VMs: \(known.joined(separator: ", "))")
            )
            error.unknownMachines = (unmatched.sorted(), machines.map { $0.name ?? $0.endpoint }.sorted())
            throw error
        }
        machineNames = names
        selectedIds = query.machines.isEmpty ? nil : selected
        firstEventTime = query.since == nil ? nil : try await database.firstEventTime()
    }

    /// Where the window's reads start: `lookback` before `--since`, or `nil` for no lower bound
    /// (no `--since`, `lookback` `nil`, or a start before the first event).
    func lowerBound(lookback: Int64?) -> Int64? {
        guard let since = query.since, let lookback else { return nil }
        let bound = since - lookback
        if let firstEventTime, bound <= firstEventTime { return nil }
        return bound
    }

    /// The selected VMs' events in the window, read from `lookback` before it (`nil`: from the
    /// first event).
    func selection(lookback: Int64? = 0) -> EventSelection {
        EventSelection(machineIds: selectedIds, from: lowerBound(lookback: lookback), until: query.until)
    }

    /// Calls `body` with each event of these names in arrival order (so each session's events come
    /// in `seq` order), from `lookback` before the window (`nil`: from the first event) to its end.
    /// Analyses keep their state per session or per VM.
    func forEachEvent(named names: [String], lookback: Int64? = 0, _ body: (EventFacts) throws -> Void) throws {
        try database.forEachEvent(named: names, in: selection(lookback: lookback)) { batch in
            for event in batch { try body(event) }
        }
    }

    /// Sessions of the selected machines that overlap the window, in start order.
    func sessions() async throws -> [Session] {
        try await database.sessions(overlappingFrom: query.since, until: query.end, machineIds: selectedIds)
    }

    /// How many of the selected VMs' events have an effective time at or after `time`.
    func countEventsStamped(from time: Int64) async throws -> Int64 {
        try await database.countEvents(stampedFrom: time, machineIds: selectedIds)
    }

    func name(of machineId: Int64) -> String { machineNames[machineId] ?? "#\(machineId)" }
}

/// Counts keyed by a tuple of strings, remembering first-seen order for stable output.
struct Tally<Key: Hashable> {
    private(set) var counts: [Key: Int] = [:]
    private(set) var order: [Key] = []

    mutating func add(_ key: Key, _ amount: Int = 1) {
        if counts[key] == nil { order.append(key) }
        counts[key, default: 0] += amount
    }

    subscript(key: Key) -> Int { counts[key] ?? 0 }

    /// Keys by descending count, then first-seen order.
    var sortedKeys: [Key] {
        order.enumerated().sorted { lhs, rhs in
            let (a, b) = (counts[lhs.element] ?? 0, counts[rhs.element] ?? 0)
            return a != b ? a > b : lhs.offset < rhs.offset
        }.map(\.element)
    }
}
