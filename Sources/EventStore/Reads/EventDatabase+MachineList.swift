import GRDB

/// A VM as `qmplog vms` lists it: its row, its event count, and its latest session.
public struct MachineOverview: Sendable {
    public var machine: Machine
    public var events: Int64
    /// Its latest session's `query-status` at attach, whether that session is still open, and the
    /// names of that session's run-state events in arrival order.
    public var latestStatus: String?
    public var attached: Bool
    public var latestStateEvents: [String]
    /// The QEMU version its latest session reported.
    public var qemuVersion: String?
}

extension EventDatabase {
    /// Every VM by display name, with what `qmplog vms` shows; `stateEvents` are the event names
    /// that move a run state (the latest session's are returned, in arrival order).
    public func machineOverviews(stateEvents: [String]) async throws -> [MachineOverview] {
        // The latest session qmplog watched: imported history says nothing of the state now.
        let recorded = knowsImports ? "s.machineId = m.id AND s.source IS NULL" : "s.machineId = m.id"
        return try await writer.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT m.id,
                           (SELECT COUNT(*) FROM event e WHERE e.machineId = m.id) AS events,
                           (SELECT s.initialStatus FROM session s WHERE \(recorded)
                            ORDER BY s.startedAt DESC, s.id DESC LIMIT 1) AS status,
                           (SELECT s.endedAt IS NULL FROM session s WHERE \(recorded)
                            ORDER BY s.startedAt DESC, s.id DESC LIMIT 1) AS attached,
                           (SELECT s.id FROM session s WHERE \(recorded)
                            ORDER BY s.startedAt DESC, s.id DESC LIMIT 1) AS lastSession,
                           (SELECT s.qemuVersion FROM session s WHERE \(recorded)
                            ORDER BY s.startedAt DESC, s.id DESC LIMIT 1) AS qemuVersion
                    FROM machine m ORDER BY COALESCE(m.name, m.uuid, m.endpoint)
                    """
            )
            let machines = Dictionary(uniqueKeysWithValues: try Machine.fetchAll(db).map { ($0.id, $0) })
            // The machine's index finds the session's events (they are few next to the table).
            let latestEvents = try db.cachedStatement(
                sql: """
                    SELECT name FROM event WHERE machineId = ? AND sessionId = ?
                      AND name IN (\(EventSQL.placeholders(stateEvents.count))) ORDER BY seq
                    """
            )
            return try rows.compactMap { row -> MachineOverview? in
                guard let machine = machines[row["id"]] else { return nil }
                let lastSession: Int64? = row["lastSession"]
                let names =
                    try lastSession.map {
                        try String.fetchAll(
                            latestEvents,
                            arguments: [machine.id, $0] + StatementArguments(stateEvents)
                        )
                    } ?? []
                return MachineOverview(
                    machine: machine,
                    events: row["events"],
                    latestStatus: row["status"],
                    attached: row["attached"] ?? false,
                    latestStateEvents: names,
                    qemuVersion: row["qemuVersion"]
                )
            }
        }
    }
}
