import EventStore

/// Values per VM and key: what an analysis counts, whether from scanning events or from the rollup.
///
/// Both paths fill the same tally, and every table is built from it in sorted order, so a report
/// reads the same whichever path produced its facts.
struct FactTally {
    private(set) var values: [Int64: [[String]: Int64]] = [:]

    /// Adds `value` (which may be negative: a carried panic taken back) to the VM's `key`.
    mutating func add(_ machineId: Int64, _ key: [String], _ value: Int64 = 1) {
        let total = (values[machineId]?[key] ?? 0) + value
        values[machineId, default: [:]][key] = total == 0 ? nil : total
    }

    /// Adds the rollup's facts for the machines `data` selected (not the carried context).
    mutating func load(_ facts: [Rollup.Fact], for data: ReportData) {
        for fact in facts where data.machineNames[fact.machineId] != nil && fact.key.first != Self.carry {
            add(fact.machineId, fact.key, fact.value)
        }
    }

    /// The first key part of the context a count carries across a rollup's cut: a session's state,
    /// a SHUTDOWN not yet followed by RESUME or RESET, a panic that may still be repeated.
    static let carry = "carry"

    /// Every value as a rollup fact of `report`.
    func facts(report: String) -> [Rollup.Fact] {
        values.flatMap { machineId, keys in
            keys.map { Rollup.Fact(report: report, machineId: machineId, key: $0.key, value: $0.value) }
        }
    }

    /// `transform(key)` summed over the VMs, in a stable order (VM id, then key); `nil` skips a key.
    func tally<Key: Hashable>(_ transform: ([String]) -> Key?) -> Tally<Key> {
        var tally = Tally<Key>()
        for machineId in values.keys.sorted() {
            for (key, value) in sortedEntries(of: machineId) {
                if let mapped = transform(key) { tally.add(mapped, Int(value)) }
            }
        }
        return tally
    }

    /// Per VM, the sum of the values whose key `include` accepts.
    func perMachine(_ include: ([String]) -> Bool = { _ in true }) -> [Int64: Int] {
        var result: [Int64: Int] = [:]
        for (machineId, keys) in values {
            let total = keys.reduce(0) { $0 + (include($1.key) ? Int($1.value) : 0) }
            if total > 0 { result[machineId] = total }
        }
        return result
    }

    func sortedEntries(of machineId: Int64) -> [(key: [String], value: Int64)] {
        (values[machineId] ?? [:]).sorted { $0.key.lexicographicallyPrecedes($1.key) }
    }
}

extension Rollup {
    /// The carried context of `kind` (`["carry", kind, …]`): per fact its VM, the rest of its key
    /// and its value.
    func carried(_ kind: String) -> [(machineId: Int64, key: ArraySlice<String>, value: Int64)] {
        facts.compactMap { fact in
            guard fact.key.count > 2, fact.key[0] == FactTally.carry, fact.key[1] == kind else { return nil }
            return (fact.machineId, fact.key.dropFirst(2), fact.value)
        }
    }
}

extension ReportData {
    /// The rollup's facts for `report` when they can answer this query: the whole history (no
    /// window, no series), counted with the same POWERDOWN window, and no event stamped before the
    /// cut has arrived since the rollup was built. `nil` means: scan the events.
    func rollup(for report: String) async throws -> Rollup? {
        guard query.since == nil, query.until == nil, query.interval == nil,
            let rollup = try await database.currentRollup(report: report),
            rollup.powerdownWindow == query.powerdownWindow
        else { return nil }
        return rollup
    }

    /// Loads the rollup's facts for `report` into `facts` when the rollup can answer this query, and
    /// returns what is left to scan: the events after its cut, or all of them.
    func loadingRollup(_ report: ReportKind, into facts: inout FactTally) async throws -> (
        scan: ReportData, rollup: Rollup?
    ) {
        guard let rollup = try await rollup(for: report.rawValue) else { return (self, nil) }
        facts.load(rollup.facts, for: self)
        return (narrowed(since: rollup.cut), rollup)
    }

    /// This data with the window narrowed to [`since`, `until`): the events after a rollup's cut,
    /// or the history before it.
    func narrowed(since: Int64? = nil, until: Int64? = nil) -> ReportData {
        var copy = self
        if let since { copy.query.since = since }
        if let until { copy.query.until = until }
        return copy
    }
}
