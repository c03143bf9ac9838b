import GRDB

extension EventDatabase {
    /// Records the start of a session, creating or refreshing the machine row.
    ///
    /// - Returns: the ids new events of this session must carry.
    /// - Throws: ``EventStoreError`` naming the database when the write fails.
    public func beginSession(_ session: NewSession) async throws -> SessionHandle {
        do {
            return try await writer.write { db in
                let machineId = try Self.upsertMachine(session.machine, seenAt: session.startedAt, in: db)
                try db.execute(
                    sql: """
                        INSERT INTO session (machineId, endpoint, peer, qemuVersion, qemuPackage,
                                             initialStatus, initialRunning, startedAt)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        machineId, session.endpoint, session.peer, session.qemuVersion, session.qemuPackage,
                        session.initialStatus, session.initialRunning, session.startedAt,
                    ]
                )
                return SessionHandle(sessionId: db.lastInsertedRowID, machineId: machineId)
            }
        } catch {
            throw Self.classify(error, path: path ?? "in-memory database", opening: false)
        }
    }

    /// The id of the machine row for `identity`, created or refreshed (name, UUID, endpoint, lastSeen).
    ///
    /// - Throws: ``EventStoreError`` naming the database when the write fails.
    public func machineId(for identity: MachineIdentity, seenAt: Int64) async throws -> Int64 {
        do {
            return try await writer.write { db in try Self.upsertMachine(identity, seenAt: seenAt, in: db) }
        } catch {
            throw Self.classify(error, path: path ?? "in-memory database", opening: false)
        }
    }

    static func upsertMachine(_ identity: MachineIdentity, seenAt: Int64, in db: Database) throws -> Int64 {
        try db.execute(
            sql: """
                INSERT INTO machine (identity, name, uuid, endpoint, firstSeen, lastSeen)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(identity) DO UPDATE SET
                    name = excluded.name,
                    uuid = COALESCE(excluded.uuid, machine.uuid),
                    endpoint = excluded.endpoint,
                    lastSeen = MAX(machine.lastSeen, excluded.lastSeen)
                """,
            arguments: [identity.key, identity.name, identity.uuid, identity.endpoint, seenAt, seenAt]
        )
        let machineId = try Int64.fetchOne(
            db,
            sql: "SELECT id FROM machine WHERE identity = ?",
            arguments: [identity.key]
        )
        guard let machineId else {
            throw EventStoreError(code: .writeFailed, message: "machine row vanished for \(identity.key)")
        }
        return machineId
    }

    /// Stores events, identifications and session ends in one transaction: all of them or, on
    /// failure, none.
    ///
    /// Events are inserted in the order given; each identification is applied after the events
    /// before its `beforeEvent` index (the events after it carry the identified machine); ends are
    /// applied last. Statements are
    /// prepared once per connection and reused, so a batch of thousands costs one commit. A
    /// machine's `lastSeen` follows its events within 10 seconds and is exact at its session's end.
    ///
    /// - Throws: ``EventStoreError`` naming the database (disk full, read-only, I/O error).
    public func write(
        events: [NewEvent],
        identifications: [(beforeEvent: Int, identification: SessionIdentification)] = [],
        endings: [SessionEnd] = []
    ) async throws {
        guard !events.isEmpty || !identifications.isEmpty || !endings.isEmpty else { return }
        do {
            try await writer.writeWithoutTransaction { db in
                // The batch checks its own references (`checkSessions`: each session once per process)
                // instead of two foreign-key lookups per row (8 % of a flood's time, measured). SQLite
                // changes `foreign_keys` only outside a transaction; every other write keeps it on.
                try db.execute(sql: "PRAGMA foreign_keys = OFF")
                do {
                    try db.inTransaction {
                        var start = events.startIndex
                        for (position, identification) in identifications {
                            try Self.insert(events[start..<position], ledger: ledger, in: db)
                            try Self.apply(identification, ledger: ledger, in: db)
                            start = position
                        }
                        try Self.insert(events[start...], ledger: ledger, in: db)
                        try Self.apply(endings, ledger: ledger, in: db)
                        return .commit
                    }
                } catch {
                    try? db.execute(sql: "PRAGMA foreign_keys = ON")
                    throw error
                }
                try db.execute(sql: "PRAGMA foreign_keys = ON")
            }
        } catch {
            throw Self.classify(error, path: path ?? "in-memory database", opening: false)
        }
    }

    static func insert(_ events: ArraySlice<NewEvent>, ledger: WriteLedger, in db: Database) throws {
        guard !events.isEmpty else { return }
        // The latest arrival per session: the sessions to check, and the machines' lastSeen.
        var latest: [SessionHandle: Int64] = [:]
        for event in events {
            latest[event.session] = max(latest[event.session] ?? .min, event.received)
        }
        try checkSessions(latest.keys, ledger: ledger, in: db)
        let insertEvent = try db.cachedStatement(sql: EventColumn.insertSQL)
        let row = EventRowBinder(prepared: insertEvent)
        var lastEvent: [Int64: Int64] = [:]
        for event in events {
            try row.insert(event, in: db)
            lastEvent[event.session.sessionId] = db.lastInsertedRowID
        }
        let markLast = try db.cachedStatement(sql: "UPDATE session SET lastEventId = ? WHERE id = ?")
        for (sessionId, eventId) in lastEvent {
            try markLast.execute(arguments: [eventId, sessionId])
        }
        let lastSeen = Dictionary(latest.map { ($0.key.machineId, $0.value) }, uniquingKeysWith: max)
        let touchMachine = try db.cachedStatement(sql: "UPDATE machine SET lastSeen = MAX(lastSeen, ?) WHERE id = ?")
        for (machineId, received) in ledger.lastSeenDue(lastSeen) {
            try touchMachine.execute(arguments: [received, machineId])
        }
    }

    /// Moves a session and its events so far to its identified machine, records its initial run
    /// state, and deletes the machine it was opened under if nothing else refers to it.
    static func apply(_ identification: SessionIdentification, ledger: WriteLedger, in db: Database) throws {
        let session = identification.session
        try db.execute(
            sql:
                "UPDATE session SET machineId = ?, initialStatus = ?, initialRunning = ? WHERE id = ? AND machineId = ?",
            arguments: [
                identification.machineId, identification.initialStatus, identification.initialRunning,
                session.sessionId, session.machineId,
            ]
        )
        guard identification.machineId != session.machineId else { return }
        // Through the (machine, time) index: the machine it was opened under has this session's events.
        try db.execute(
            sql: "UPDATE event SET machineId = ? WHERE machineId = ? AND sessionId = ?",
            arguments: [identification.machineId, session.machineId, session.sessionId]
        )
        try db.execute(
            sql: "DELETE FROM machine WHERE id = ? AND NOT EXISTS (SELECT 1 FROM session WHERE machineId = ?)",
            arguments: [session.machineId, session.machineId]
        )
        ledger.moved(session, to: identification.identified)
    }

    static func apply(_ endings: [SessionEnd], ledger: WriteLedger, in db: Database) throws {
        let endSession = try db.cachedStatement(
            sql: "UPDATE session SET endedAt = MAX(startedAt, ?), endReason = ? WHERE id = ? AND endedAt IS NULL"
        )
        // The end of a session is the last contact with its VM: after every event it had.
        let touchEndedMachine = try db.cachedStatement(
            sql:
                "UPDATE machine SET lastSeen = MAX(lastSeen, ?) WHERE id = (SELECT machineId FROM session WHERE id = ?)"
        )
        for ending in endings {
            if ending.discardsEmpty, try discardIfEmpty(ending.sessionId, in: db) { continue }
            try endSession.execute(arguments: [ending.endedAt, ending.reason, ending.sessionId])
            guard db.changesCount > 0 else { continue }
            try touchEndedMachine.execute(arguments: [ending.endedAt, ending.sessionId])
        }
        ledger.ended(endings.map(\.sessionId))
    }

    /// Deletes a session that holds no event, and the machine row it was opened under if no other
    /// session refers to it.
    ///
    /// - Returns: whether it was deleted.
    private static func discardIfEmpty(_ sessionId: Int64, in db: Database) throws -> Bool {
        guard
            let machineId = try Int64.fetchOne(
                db,
                sql: "SELECT machineId FROM session WHERE id = ?",
                arguments: [sessionId]
            )
        else { return false }
        // Through the (machine, time) index, as the session's events carry its machine.
        let hasEvents = try Bool.fetchOne(
            db,
            sql: "SELECT EXISTS (SELECT 1 FROM event WHERE machineId = ? AND sessionId = ?)",
            arguments: [machineId, sessionId]
        )
        guard hasEvents == false else { return false }
        try db.execute(sql: "DELETE FROM session WHERE id = ?", arguments: [sessionId])
        try db.execute(
            sql: "DELETE FROM machine WHERE id = ? AND NOT EXISTS (SELECT 1 FROM session WHERE machineId = ?)",
            arguments: [machineId, machineId]
        )
        return true
    }

    /// Refuses the batch unless every session it names exists and belongs to the machine the events
    /// carry: what the event table's foreign keys promise, checked once per session and process.
    private static func checkSessions(
        _ sessions: some Sequence<SessionHandle>,
        ledger: WriteLedger,
        in db: Database
    ) throws {
        let unverified = ledger.unverified(sessions)
        guard !unverified.isEmpty else { return }
        let owner = try db.cachedStatement(sql: "SELECT machineId FROM session WHERE id = ?")
        for session in unverified {
            let machineId = try Int64.fetchOne(owner, arguments: [session.sessionId])
            guard machineId == session.machineId else {
                // The error SQLite's foreign key would have raised, classified the same way.
                throw DatabaseError(
                    resultCode: .SQLITE_CONSTRAINT_FOREIGNKEY,
                    message: "events name session \(session.sessionId) of machine \(session.machineId), "
                        + "which the database does not have"
                )
            }
        }
        ledger.verified(unverified)
    }
}
