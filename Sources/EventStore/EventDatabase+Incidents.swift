import Foundation
import GRDB

/// An incident found in the events (a stop, a pause, a panic, a watchdog firing, a crash loop),
/// to be stored once and told to the hooks that asked for its class.
package struct NewIncident: Sendable, Hashable {
    package var machineId: Int64
    /// `stop`, `pause`, `panic`, `watchdog` or `crashloop`.
    package var kind: String
    /// The stop class or pause cause; for the other kinds, the kind.
    package var incidentClass: String
    /// When it happened; a crash loop's first crash. With the kind and class, its identity.
    package var time: Int64
    /// A crash loop's latest crash; otherwise ``time``.
    package var lastTime: Int64
    /// A crash loop's crashes; otherwise 1.
    package var count: Int
    package var evidence: String
    /// The events, one of which at ``time`` is the incident's own (its raw form goes to the hook).
    package var eventNames: [String]

    package init(
        machineId: Int64,
        kind: String,
        incidentClass: String,
        time: Int64,
        lastTime: Int64? = nil,
        count: Int = 1,
        evidence: String,
        eventNames: [String] = []
    ) {
        self.machineId = machineId
        self.kind = kind
        self.incidentClass = incidentClass
        self.time = time
        self.lastTime = lastTime ?? time
        self.count = count
        self.evidence = evidence
        self.eventNames = eventNames
    }
}

/// A stored incident, as a hook is told it.
package struct StoredIncident: Sendable, Hashable {
    package var id: Int64
    package var machineId: Int64
    /// The VM's name, else its UUID, else its endpoint.
    package var vm: String
    package var uuid: String?
    package var kind: String
    package var incidentClass: String
    package var time: Int64
    package var lastTime: Int64
    package var count: Int
    package var evidence: String
    /// The incident's event as QMP sent it (`{"event": …, "data": …, "timestamp": …}`), if it has one.
    package var event: String?
}

/// A hook's run for one incident, not yet finished.
package struct PendingHookRun: Sendable, Hashable {
    package var incident: StoredIncident
    /// The hook, as ``EventDatabase/storeIncidents(_:hooks:crashLoopWindow:detectedAt:scannedUntil:)`` named it.
    package var hook: String
}

extension EventDatabase {
    /// Stores the incidents not stored before, each with a pending run of each of its hooks, and
    /// records that the events up to `scannedUntil` have been scanned — in one transaction, so that
    /// a crash leaves either all of it or none.
    ///
    /// A crash loop is the one already stored for its VM when it overlaps it (a later scan sees
    /// only the loop's recent crashes): that one is extended, not stored again.
    ///
    /// - Parameters:
    ///   - hooks: the hooks that want an incident (none: it is not stored).
    ///   - crashLoopWindow: how close crashes are to be one loop.
    /// - Returns: the runs to start, in incident order.
    package func storeIncidents(
        _ incidents: [NewIncident],
        hooks: @Sendable (NewIncident) -> [String],
        crashLoopWindow: Int64,
        detectedAt: Int64,
        scannedUntil: Int64
    ) async throws -> [PendingHookRun] {
        do {
            let ids = try await writer.write { db -> [Int64] in
                var ids: [Int64] = []
                for incident in incidents {
                    let wanted = hooks(incident)
                    guard !wanted.isEmpty else { continue }
                    if incident.kind == "crashloop",
                        try Self.extendCrashLoop(incident, window: crashLoopWindow, in: db)
                    {
                        continue
                    }
                    try db.execute(
                        sql: """
                            INSERT INTO incident (machineId, kind, class, time, lastTime, count, evidence, event, detectedAt)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                            ON CONFLICT (machineId, kind, class, time) DO NOTHING
                            """,
                        arguments: [
                            incident.machineId, incident.kind, incident.incidentClass, incident.time,
                            incident.lastTime, incident.count, incident.evidence,
                            try Self.eventJSON(incident, in: db), detectedAt,
                        ]
                    )
                    guard db.changesCount > 0 else { continue }
                    let id = db.lastInsertedRowID
                    for hook in Set(wanted).sorted() {
                        try db.execute(
                            sql: "INSERT INTO hookRun (incidentId, hook) VALUES (?, ?)",
                            arguments: [id, hook]
                        )
                    }
                    ids.append(id)
                }
                try db.execute(
                    sql: """
                        INSERT INTO incidentScan (id, scannedUntil) VALUES (1, ?)
                        ON CONFLICT (id) DO UPDATE SET scannedUntil = excluded.scannedUntil
                        """,
                    arguments: [scannedUntil]
                )
                return ids
            }
            return try await pendingHookRuns(incidentIds: ids, hooks: nil)
        } catch {
            throw Self.classify(error, path: path ?? "in-memory database", opening: false)
        }
    }

    /// Extends the stored crash loop `loop` overlaps, if there is one.
    private static func extendCrashLoop(_ loop: NewIncident, window: Int64, in db: Database) throws -> Bool {
        let existing = try Row.fetchOne(
            db,
            sql: """
                SELECT id, lastTime, count FROM incident
                WHERE machineId = ? AND kind = 'crashloop' AND time <= ? AND lastTime >= ?
                ORDER BY time DESC LIMIT 1
                """,
            arguments: [loop.machineId, loop.lastTime, loop.time - window]
        )
        guard let existing else { return false }
        let id: Int64 = existing[0]
        let lastTime: Int64 = existing[1]
        let count: Int = existing[2]
        if loop.lastTime > lastTime {
            // A later scan may see fewer of the loop's crashes than it has: the count only grows.
            try db.execute(
                sql: "UPDATE incident SET lastTime = ?, count = ? WHERE id = ?",
                arguments: [loop.lastTime, max(count, loop.count), id]
            )
        }
        return true
    }

    /// The raw form of `incident`'s event: the first of its ``NewIncident/eventNames`` at its time.
    private static func eventJSON(_ incident: NewIncident, in db: Database) throws -> String? {
        guard !incident.eventNames.isEmpty else { return nil }
        let names = incident.eventNames
        let row = try Row.fetchOne(
            db,
            sql: """
                SELECT name, seconds, microseconds, received, data FROM event
                WHERE machineId = ? AND \(EventSQL.effectiveTime) = ? AND name IN (\(EventSQL.placeholders(names.count)))
                ORDER BY id LIMIT 1
                """,
            arguments: [incident.machineId, incident.time] + StatementArguments(names)
        )
        guard let row else { return nil }
        let name: String = row[0]
        let seconds: Int64? = row[1]
        let microseconds: Int64? = row[2]
        let received: Int64 = row[3]
        let data: String? = row[4]
        let quotedName = String(decoding: try JSONEncoder().encode(name), as: UTF8.self)
        let stamp =
            seconds.map { "{\"seconds\": \($0), \"microseconds\": \(microseconds ?? 0)}" }
            ?? "{\"seconds\": \(received / 1_000_000), \"microseconds\": \(received % 1_000_000)}"
        return "{\"event\": \(quotedName), \"data\": \(data ?? "{}"), \"timestamp\": \(stamp)}"
    }

    /// Where the last incident scan ended (`nil`: never scanned).
    package func incidentScanCursor() async throws -> Int64? {
        try await writer.read { db in
            try Int64.fetchOne(db, sql: "SELECT scannedUntil FROM incidentScan WHERE id = 1")
        }
    }

    /// The runs of these hooks that have not finished (a crash or a stop came first), oldest first.
    package func pendingHookRuns(for hooks: [String]) async throws -> [PendingHookRun] {
        try await pendingHookRuns(incidentIds: nil, hooks: hooks)
    }

    private func pendingHookRuns(incidentIds: [Int64]?, hooks: [String]?) async throws -> [PendingHookRun] {
        var sql = """
            SELECT \(Self.incidentSelectList), r.hook
            FROM hookRun r JOIN incident i ON i.id = r.incidentId JOIN machine m ON m.id = i.machineId
            WHERE r.finishedAt IS NULL
            """
        var arguments = StatementArguments()
        if let incidentIds {
            guard !incidentIds.isEmpty else { return [] }
            sql += " AND i.id IN (\(EventSQL.placeholders(incidentIds.count)))"
            arguments += StatementArguments(incidentIds)
        }
        if let hooks {
            guard !hooks.isEmpty else { return [] }
            sql += " AND r.hook IN (\(EventSQL.placeholders(hooks.count)))"
            arguments += StatementArguments(hooks)
        }
        sql += " ORDER BY i.id, r.hook"
        let finalSQL = sql
        let finalArguments = arguments
        return try await writer.read { db in
            try Row.fetchAll(db, sql: finalSQL, arguments: finalArguments).map { row in
                PendingHookRun(incident: Self.storedIncident(row), hook: row[Self.incidentSelectCount])
            }
        }
    }

    /// Marks a hook's run finished, with how it ended (`exit 0`, `timed out`, `dropped: …`).
    package func finishHookRun(incidentId: Int64, hook: String, at time: Int64, outcome: String) async throws {
        do {
            try await writer.write { db in
                try db.execute(
                    sql: "UPDATE hookRun SET finishedAt = ?, outcome = ? WHERE incidentId = ? AND hook = ?",
                    arguments: [time, outcome, incidentId, hook]
                )
            }
        } catch {
            throw Self.classify(error, path: path ?? "in-memory database", opening: false)
        }
    }

    /// Every stored incident with its hooks' outcomes, oldest first (for tests and inspection).
    package func incidentHistory() async throws -> [(
        incident: StoredIncident, runs: [(hook: String, outcome: String?)]
    )] {
        try await writer.read { db in
            let incidents = try Row.fetchAll(
                db,
                sql: """
                    SELECT \(Self.incidentSelectList)
                    FROM incident i JOIN machine m ON m.id = i.machineId ORDER BY i.id
                    """
            )
            var runs: [Int64: [(String, String?)]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT incidentId, hook, outcome FROM hookRun ORDER BY hook") {
                runs[row[0], default: []].append((row[1], row[2]))
            }
            return incidents.map { row in
                let incident = Self.storedIncident(row)
                return (incident, (runs[incident.id] ?? []).map { (hook: $0.0, outcome: $0.1) })
            }
        }
    }

    /// An incident's columns (`i`) with its VM's name (`m`), as ``storedIncident(_:)`` reads them.
    private static let incidentSelectList = """
        i.id, i.machineId, COALESCE(m.name, m.uuid, m.endpoint), m.uuid, i.kind, i.class, i.time, i.lastTime,
        i.count, i.evidence, i.event
        """
    /// The number of columns in ``incidentSelectList``: the next one is the caller's.
    private static let incidentSelectCount = 11

    private static func storedIncident(_ row: Row) -> StoredIncident {
        StoredIncident(
            id: row[0],
            machineId: row[1],
            vm: row[2],
            uuid: row[3],
            kind: row[4],
            incidentClass: row[5],
            time: row[6],
            lastTime: row[7],
            count: row[8],
            evidence: row[9],
            event: row[10]
        )
    }
}
