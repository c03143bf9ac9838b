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
    /// Why its latest session ended (`eof`, `recorder-stopped`, `error: …`); nil while open.
    package var endReason: String?
}

extension EventDatabase {
    /// Every VM by display name, with what `qmplog vms` shows; `stateEvents` are the event names
    /// that move a run state: the latest session's are returned in arrival order, from the last of
    /// `settling` (events that set the state whatever it was) on, or all of them when it has none —
    /// read backwards from the newest, so a session of millions of events costs a few rows.
    ///
    /// - Parameter countingEvents: count each VM's events (`events`; 0 when not), a scan of the
    ///   machine index: a caller with the rollup's counts passes `false`.
    public func machineOverviews(stateEvents: [String], settling: Set<String>, countingEvents: Bool = true)
        async throws -> [MachineOverview]
    {
        // The latest session qmplog watched: imported history says nothing of the state now.
        let recorded = knowsImports ? "s.machineId = m.id AND s.source IS NULL" : "s.machineId = m.id"
        return try await writer.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT m.id,
                           \(countingEvents ? "(SELECT COUNT(*) FROM event e WHERE e.machineId = m.id)" : "0") AS events,
                           (SELECT s.initialStatus FROM session s WHERE \(recorded)
                            ORDER BY s.startedAt DESC, s.id DESC LIMIT 1) AS status,
                           (SELECT s.endedAt IS NULL FROM session s WHERE \(recorded)
                            ORDER BY s.startedAt DESC, s.id DESC LIMIT 1) AS attached,
                           (SELECT s.id FROM session s WHERE \(recorded)
                            ORDER BY s.startedAt DESC, s.id DESC LIMIT 1) AS lastSession,
                           (SELECT s.qemuVersion FROM session s WHERE \(recorded)
                            ORDER BY s.startedAt DESC, s.id DESC LIMIT 1) AS qemuVersion,
                           (SELECT s.endReason FROM session s WHERE \(recorded)
                            ORDER BY s.startedAt DESC, s.id DESC LIMIT 1) AS endReason
                    FROM machine m ORDER BY COALESCE(m.name, m.uuid, m.endpoint)
                    """
            )
            let machines = Dictionary(uniqueKeysWithValues: try Machine.fetchAll(db).map { ($0.id, $0) })
            // Newest first through the machine's time index, until a settling event of the session.
            let latestEvents = try db.cachedStatement(
                sql: """
                    SELECT name FROM event WHERE machineId = ? AND sessionId = ?
                      AND name IN (\(EventSQL.placeholders(stateEvents.count)))
                    ORDER BY \(EventSQL.effectiveTime) DESC, id DESC
                    """
            )
            return try rows.compactMap { row -> MachineOverview? in
                guard let machine = machines[row["id"]] else { return nil }
                let lastSession: Int64? = row["lastSession"]
                var names: [String] = []
                if let lastSession {
                    let cursor = try String.fetchCursor(
                        latestEvents,
                        arguments: [machine.id, lastSession] + StatementArguments(stateEvents)
                    )
                    while let name = try cursor.next() {
                        names.append(name)
                        if settling.contains(name) { break }
                    }
                    names.reverse()
                }
                return MachineOverview(
                    machine: machine,
                    events: row["events"],
                    latestStatus: row["status"],
                    attached: row["attached"] ?? false,
                    latestStateEvents: names,
                    qemuVersion: row["qemuVersion"],
                    endReason: row["endReason"]
                )
            }
        }
    }
}
