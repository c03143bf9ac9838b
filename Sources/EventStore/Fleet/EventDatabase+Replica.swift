import GRDB

/// Where a replica stands for one host.
package struct ReplicaCursor: Sendable, Equatable {
    package var lastEventId: Int64 = 0
    package var lastSessionId: Int64 = 0
    /// The host's ids of the sessions the replica holds open: read again until they end.
    package var openSessions: [Int64] = []
}

extension EventDatabase {
    /// How far `host` has been copied into this replica.
    package func replicaCursor(host: Int32) async throws -> ReplicaCursor {
        try await writer.read { db in
            var cursor = ReplicaCursor()
            if let row = try Row.fetchOne(
                db,
                sql: "SELECT lastEventId, lastSessionId FROM fleetHost WHERE key = ?",
                arguments: [host]
            ) {
                cursor.lastEventId = row["lastEventId"]
                cursor.lastSessionId = row["lastSessionId"]
            }
            cursor.openSessions = try Int64.fetchAll(
                db,
                sql: "SELECT remoteId FROM fleetSession WHERE host = ? AND open = 1",
                arguments: [host]
            )
            return cursor
        }
    }

    /// Copies `rows` of `host` in: machines by identity (a VM with the same name and UUID is one VM
    /// on every host: a migrated VM's sessions meet; others are the host's own), sessions added or brought up to
    /// date, events added with the replica's own ids. One transaction; the cursor moves with it.
    ///
    /// - Returns: `false`, storing nothing, when the replica is no longer at `cursor` (another
    ///   command refreshed it meanwhile): read again from where it is now.
    @discardableResult
    package func applyReplica(host: FleetHost, rows: FleetRows, at cursor: ReplicaCursor) async throws -> Bool {
        try await writer.write { db in
            let current = try Row.fetchOne(
                db,
                sql: "SELECT lastEventId, lastSessionId FROM fleetHost WHERE key = ?",
                arguments: [host.key]
            ).map { (lastEventId: $0["lastEventId"] as Int64, lastSessionId: $0["lastSessionId"] as Int64) }
            guard (current?.lastEventId ?? 0) == cursor.lastEventId,
                (current?.lastSessionId ?? 0) == cursor.lastSessionId
            else { return false }
            try db.execute(
                sql: """
                    INSERT INTO fleetHost (key, name, clockOffset) VALUES (?, ?, ?)
                    ON CONFLICT (key) DO UPDATE SET name = excluded.name, clockOffset = excluded.clockOffset
                    """,
                arguments: [host.key, host.name, host.clockOffset]
            )
            var machineIds: [Int64: Int64] = [:]
            let upsertMachine = try db.cachedStatement(
                sql: """
                    INSERT INTO machine (identity, name, uuid, endpoint, firstSeen, lastSeen) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (identity) DO UPDATE SET name = excluded.name, uuid = excluded.uuid,
                        endpoint = excluded.endpoint, firstSeen = MIN(firstSeen, excluded.firstSeen),
                        lastSeen = MAX(lastSeen, excluded.lastSeen)
                    RETURNING id
                    """
            )
            let mapMachine = try db.cachedStatement(
                sql: "INSERT OR REPLACE INTO fleetMachine (host, remoteId, machineId, name) VALUES (?, ?, ?, ?)"
            )
            for machine in rows.machines {
                let identity = Self.replicaIdentity(of: machine, host: host.name)
                guard
                    let id = try Int64.fetchOne(
                        upsertMachine,
                        arguments: [
                            identity, machine.name, machine.uuid, machine.endpoint, machine.firstSeen, machine.lastSeen,
                        ]
                    )
                else { continue }
                machineIds[machine.id] = id
                try mapMachine.execute(arguments: [host.key, machine.id, id, machine.name])
            }

            var sessionIds = Dictionary(
                uniqueKeysWithValues: try Row.fetchAll(
                    db,
                    sql: "SELECT remoteId, sessionId FROM fleetSession WHERE host = ? AND open = 1",
                    arguments: [host.key]
                ).map { (row: Row) -> (Int64, Int64) in (row["remoteId"], row["sessionId"]) }
            )
            var lastSessionId: Int64?
            for session in rows.sessions {
                guard let machineId = machineIds[session.machineId] else { continue }
                let values: StatementArguments = [
                    machineId, session.endpoint, session.peer, session.qemuVersion, session.qemuPackage,
                    session.initialStatus, session.initialRunning, session.startedAt, session.endedAt,
                    session.endReason,
                    session.source,
                ]
                if let local = sessionIds[session.id] {
                    let before = try Int64.fetchOne(
                        db,
                        sql: "SELECT machineId FROM session WHERE id = ?",
                        arguments: [local]
                    )
                    try db.execute(
                        sql: """
                            UPDATE session SET machineId = ?, endpoint = ?, peer = ?, qemuVersion = ?, qemuPackage = ?,
                                initialStatus = ?, initialRunning = ?, startedAt = ?, endedAt = ?, endReason = ?,
                                source = ?
                            WHERE id = ?
                            """,
                        arguments: values + [local]
                    )
                    if let before, before != machineId {
                        // Identified after its first events were copied: they move with it.
                        try db.execute(
                            sql: "UPDATE event SET machineId = ? WHERE machineId = ? AND sessionId = ?",
                            arguments: [machineId, before, local]
                        )
                    }
                } else {
                    try db.execute(
                        sql: """
                            INSERT INTO session (machineId, endpoint, peer, qemuVersion, qemuPackage, initialStatus,
                                initialRunning, startedAt, endedAt, endReason, source)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                            """,
                        arguments: values
                    )
                    sessionIds[session.id] = db.lastInsertedRowID
                }
                try db.execute(
                    sql: "INSERT OR REPLACE INTO fleetSession (host, remoteId, sessionId, open) VALUES (?, ?, ?, ?)",
                    arguments: [host.key, session.id, sessionIds[session.id], session.endedAt == nil]
                )
                lastSessionId = max(lastSessionId ?? 0, session.id)
            }

            let binder = EventRowBinder(prepared: try db.cachedStatement(sql: EventColumn.insertSQL))
            let findSession = try db.cachedStatement(
                sql: "SELECT sessionId FROM fleetSession WHERE host = ? AND remoteId = ?"
            )
            var lastEventId: Int64?
            for event in rows.events {
                guard let machineId = machineIds[event.machineId] else { continue }
                guard
                    let sessionId = try sessionIds[event.sessionId]
                        ?? Int64.fetchOne(findSession, arguments: [host.key, event.sessionId])
                else { continue }
                sessionIds[event.sessionId] = sessionId
                try binder.insert(
                    NewEvent(
                        session: SessionHandle(sessionId: sessionId, machineId: machineId),
                        seq: event.seq,
                        name: event.name,
                        seconds: event.seconds,
                        microseconds: event.microseconds,
                        received: event.received,
                        guest: event.guest,
                        reason: event.reason,
                        action: event.action,
                        panicType: event.panicType,
                        panicReason: event.panicReason,
                        panicArg1: event.panicArg1,
                        data: event.data
                    ),
                    in: db
                )
                lastEventId = event.id
            }
            try db.execute(
                sql: """
                    UPDATE fleetHost SET lastEventId = MAX(lastEventId, ?), lastSessionId = MAX(lastSessionId, ?)
                    WHERE key = ?
                    """,
                arguments: [lastEventId ?? 0, lastSessionId ?? 0, host.key]
            )
            try Self.disambiguateNames(db)
            return true
        }
    }

    /// A VM is the same on two hosts only when its name and UUID both match (a migration keeps
    /// both; clones often share a UUID, and unrelated VMs a name); any other is its host's own.
    static func replicaIdentity(of machine: Machine, host: String) -> String {
        if let name = machine.name, let uuid = machine.uuid, !uuid.isEmpty,
            uuid != "00000000-0000-0000-0000-000000000000"
        {
            return "vm:\(uuid)/\(name)"  // the UUID first: QEMU's is hex and dashes, never a slash
        }
        return "\(host)/\(machine.identity)"
    }

    /// A name two of the fleet's VMs share is shown as NAME@HOST for each; a name one VM has stays.
    private static func disambiguateNames(_ db: Database) throws {
        try db.execute(
            sql: """
                UPDATE machine SET name = (
                    SELECT f.name || '@' || h.name FROM fleetMachine f JOIN fleetHost h ON h.key = f.host
                    WHERE f.machineId = machine.id ORDER BY h.key DESC LIMIT 1)
                WHERE id IN (
                    SELECT f.machineId FROM fleetMachine f
                    WHERE f.name IN (
                        SELECT name FROM fleetMachine WHERE name IS NOT NULL
                        GROUP BY name HAVING count(DISTINCT machineId) > 1))
                """
        )
    }

    /// Each host of this replica whose clock was off PostgreSQL's by more than `tolerance`
    /// microseconds at its last ship: its name and the offset (PostgreSQL minus host).
    package func skewedHosts(tolerance: Int64) async throws -> [(name: String, clockOffset: Int64)] {
        try await writer.read { db in
            guard try db.tableExists("fleetHost") else { return [] }
            return try Row.fetchAll(
                db,
                sql: "SELECT name, clockOffset FROM fleetHost WHERE abs(clockOffset) > ? ORDER BY name",
                arguments: [tolerance]
            ).map { ($0["name"], $0["clockOffset"]) }
        }
    }

    /// The names of the VMs `host` ran in this replica (as reports show them), for `--host`.
    package func replicaMachineNames(host name: String) async throws -> [String]? {
        try await writer.read { db in
            guard try db.tableExists("fleetHost"),
                try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM fleetHost WHERE name = ?)", arguments: [name])
                    == true
            else { return nil }
            return try String.fetchAll(
                db,
                sql: """
                    SELECT DISTINCT COALESCE(m.name, m.uuid, m.endpoint) FROM fleetMachine f
                    JOIN fleetHost h ON h.key = f.host JOIN machine m ON m.id = f.machineId
                    WHERE h.name = ? ORDER BY 1
                    """,
                arguments: [name]
            )
        }
    }
}
