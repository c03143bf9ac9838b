import GRDB

extension EventDatabase {
    /// The `endReason` of a session that a recorder left open because it never got to close it
    /// (killed with SIGKILL, crashed, the machine lost power).
    public static let abandonedSessionReason = "recorder-lost"

    /// Ends every session left open, at its last event, the last to arrive (or its start when it
    /// has none), with
    /// ``abandonedSessionReason``; each VM's `lastSeen` follows.
    ///
    /// Only a recorder that knows no other recorder is writing to this database may call it (see
    /// ``RecorderLock``): an open session of a live recorder is not abandoned. Without it, reports
    /// would take a lost session as still attached — the VM in the state of its last event until
    /// now, hiding what later sessions recorded.
    ///
    /// - Returns: the sessions ended.
    /// - Throws: ``EventStoreError`` naming the database.
    public func endAbandonedSessions() async throws -> [SessionEnd] {
        do {
            return try await writer.write { db in
                let open = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT s.id, s.machineId, s.startedAt, e.received AS lastReceived
                        FROM session s LEFT JOIN event e ON e.id = s.lastEventId
                        WHERE s.endedAt IS NULL
                        """
                )
                // Sessions written before v12 have no lastEventId: the machine's index, newest first,
                // reaches their last events (a walk when QEMU's clock went back between runs).
                let lastArrival = try db.cachedStatement(
                    sql: """
                        SELECT received FROM event WHERE machineId = ? AND sessionId = ?
                        ORDER BY \(EventSQL.effectiveTime) DESC LIMIT 1
                        """
                )
                var endings: [SessionEnd] = []
                for row in open {
                    let sessionId: Int64 = row["id"]
                    let startedAt: Int64 = row["startedAt"]
                    let last: Int64? =
                        try row["lastReceived"]
                        ?? Int64.fetchOne(lastArrival, arguments: [row["machineId"], sessionId])
                    endings.append(
                        SessionEnd(
                            sessionId: sessionId,
                            endedAt: max(startedAt, last ?? startedAt),
                            reason: Self.abandonedSessionReason
                        )
                    )
                }
                try Self.apply(endings, ledger: ledger, in: db)
                return endings
            }
        } catch {
            throw Self.classify(error, path: path ?? "in-memory database", opening: false)
        }
    }
}
