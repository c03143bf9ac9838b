import GRDB

/// What `qmplog prune` deleted and kept.
package struct PruneOutcome: Sendable, Equatable {
    package var deleted = 0
    /// Events before the cut kept because PostgreSQL does not hold them yet.
    package var keptUnshipped = 0
}

extension EventDatabase {
    /// Deletes the events whose effective time is before `cut`, in short transactions so that a
    /// recorder writing beside it waits at most one chunk.
    ///
    /// When this database ships (``shippingState()``), only events PostgreSQL has confirmed go.
    /// The newest event always stays: SQLite would hand a deleted highest id to the next event, and
    /// the ship cursor, which counts ids, would skip it. Signal senders of deleted events go with
    /// them, import keys stay (a file imported again adds nothing); the rollup, which counted them, is dropped (rebuild it after).
    package func pruneEvents(before cut: Int64, chunk: Int = 10_000) async throws -> PruneOutcome {
        let shipped = try await shippingState()?.shippedEventId
        var outcome = PruneOutcome()
        while true {
            let deleted = try await writer.write { db -> Int in
                guard let newest = try Int64.fetchOne(db, sql: "SELECT max(id) FROM event") else { return 0 }
                var sql = "SELECT id FROM event WHERE \(EventSQL.effectiveTime) < ? AND id < ?"
                var arguments: StatementArguments = [cut, newest]
                if let shipped {
                    sql += " AND id <= ?"
                    arguments += [shipped]
                }
                sql += " LIMIT ?"
                arguments += [chunk]
                let ids = try Int64.fetchAll(db, sql: sql, arguments: arguments)
                guard !ids.isEmpty else { return 0 }
                let list = "(\(EventSQL.placeholders(ids.count)))"
                let idArguments = StatementArguments(ids)
                try db.execute(
                    sql: "DELETE FROM signalSender WHERE eventId IN \(list) OR evidenceEventId IN \(list)",
                    arguments: idArguments + idArguments
                )
                // The import key stays: importing the file again must add nothing.
                try db.execute(
                    sql: "UPDATE importedEvent SET eventId = NULL WHERE eventId IN \(list)",
                    arguments: idArguments
                )
                try db.execute(sql: "DELETE FROM event WHERE id IN \(list)", arguments: idArguments)
                try db.execute(sql: "DELETE FROM rollupFact; DELETE FROM rollup")
                return ids.count
            }
            outcome.deleted += deleted
            if deleted < chunk { break }
        }
        if let shipped {
            outcome.keptUnshipped = try await writer.read { db in
                try Int.fetchOne(
                    db,
                    sql: "SELECT count(*) FROM event WHERE \(EventSQL.effectiveTime) < ? AND id > ?",
                    arguments: [cut, shipped]
                ) ?? 0
            }
        }
        return outcome
    }
}
