import GRDB

extension EventDatabase {
    /// How close (microseconds) an imported event must be to the same event from elsewhere, or a
    /// signal to its SHUTDOWN, to be the same fact.
    public static let importMatchWindow: Int64 = 2_000_000

    /// Stores a VM's imported events in the session of their source, in one transaction.
    ///
    /// An event is left out when its key was imported before; a QMP event also when it falls inside
    /// a recorded session of the VM (the recorder saw that time first-hand), or when the same event
    /// name is stored for the VM by another source within ``importMatchWindow`` (a panic both in
    /// libvirt's log and in a virsh transcript). A signal line's sender is attached to the VM's `SHUTDOWN host-signal` within the
    /// window, whichever source that came from.
    public func importHistory(_ history: ImportedHistory, importedAt: Int64) async throws -> ImportOutcome {
        guard !history.events.isEmpty else { return ImportOutcome() }
        do {
            return try await writer.write { db in try Self.importHistory(history, importedAt: importedAt, in: db) }
        } catch {
            throw Self.classify(error, path: path ?? "in-memory database", opening: false)
        }
    }

    private static func importHistory(_ history: ImportedHistory, importedAt: Int64, in db: Database) throws
        -> ImportOutcome
    {
        var outcome = ImportOutcome()
        let times = history.events.map { $0.event.time ?? $0.event.received }
        let first = times.min() ?? importedAt
        let last = times.max() ?? importedAt
        let machineId = try upsertMachine(history.machine, seenAt: last, in: db)
        let sessionId = try importSession(machineId: machineId, source: history.source, from: first, to: last, in: db)
        var seq =
            try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM event WHERE sessionId = ?", arguments: [sessionId]) ?? 0
        let recorded = try [(Int64, Int64?)].fetchRecordedSpans(machineId: machineId, in: db)
        let insertEvent = try db.cachedStatement(sql: EventColumn.insertSQL)
        let row = EventRowBinder(prepared: insertEvent)
        for imported in history.events {
            let time = imported.event.time ?? imported.event.received
            let known = try db.cachedStatement(sql: "SELECT 1 FROM importedEvent WHERE machineId = ? AND importKey = ?")
            if try Bool.fetchOne(known, arguments: [machineId, imported.importKey]) != nil {
                outcome.alreadyImported += 1
                continue
            }
            let observed = recorded.contains { start, end in time >= start && time <= (end ?? Int64.max) }
            if imported.isQMPEvent,
                try observed
                    || sameEventNearby(imported.event.name, machineId: machineId, at: time, outside: sessionId, in: db)
            {
                outcome.alreadyKnown += 1
                continue
            }
            seq += 1
            var event = imported.event
            event.session = SessionHandle(sessionId: sessionId, machineId: machineId)
            event.seq = seq
            try row.insert(event, in: db)
            let eventId = db.lastInsertedRowID
            try db.cachedStatement(sql: "INSERT INTO importedEvent (machineId, importKey, eventId) VALUES (?, ?, ?)")
                .execute(arguments: [machineId, imported.importKey, eventId])
            outcome.added += 1
            if let sender = imported.sender,
                try attach(sender, evidence: eventId, machineId: machineId, at: time, in: db)
            {
                outcome.sendersAttached += 1
            }
            if event.name == "SHUTDOWN", event.reason == "host-signal",
                try attachSignal(toShutdown: eventId, machineId: machineId, at: time, in: db)
            {
                outcome.sendersAttached += 1
            }
        }
        return outcome
    }

    /// The session holding `source`'s events for the machine, widened to cover `first...last`.
    private static func importSession(
        machineId: Int64,
        source: String,
        from first: Int64,
        to last: Int64,
        in db: Database
    )
        throws -> Int64
    {
        if let id = try Int64.fetchOne(
            db,
            sql: "SELECT id FROM session WHERE machineId = ? AND source = ?",
            arguments: [machineId, source]
        ) {
            try db.execute(
                sql: "UPDATE session SET startedAt = MIN(startedAt, ?), endedAt = MAX(endedAt, ?) WHERE id = ?",
                arguments: [first, last, id]
            )
            return id
        }
        try db.execute(
            sql: """
                INSERT INTO session (machineId, endpoint, qemuVersion, qemuPackage, startedAt, endedAt, endReason, source)
                VALUES (?, ?, '', '', ?, ?, 'imported', ?)
                """,
            arguments: [machineId, source, first, last, source]
        )
        return db.lastInsertedRowID
    }

    /// Whether an event `name` of the machine is stored within the match window of `time` by another
    /// source than `session` (within one source, repeats are real: SeaBIOS resets twice in 30 ms).
    private static func sameEventNearby(
        _ name: String,
        machineId: Int64,
        at time: Int64,
        outside session: Int64,
        in db: Database
    ) throws -> Bool {
        let nearby = try db.cachedStatement(
            sql: """
                SELECT 1 FROM event
                WHERE machineId = ? AND \(EventSQL.effectiveTime) BETWEEN ? AND ? AND name = ? AND sessionId != ?
                LIMIT 1
                """
        )
        return try Bool.fetchOne(
            nearby,
            arguments: [machineId, time - importMatchWindow, time + importMatchWindow, name, session]
        ) != nil
    }

    /// Attaches a signal's sender to the machine's nearest `SHUTDOWN host-signal` within the window.
    private static func attach(
        _ sender: SignalSender,
        evidence: Int64,
        machineId: Int64,
        at time: Int64,
        in db: Database
    ) throws -> Bool {
        guard
            let shutdown = try Int64.fetchOne(
                db,
                sql: """
                    SELECT id FROM event
                    WHERE machineId = ? AND \(EventSQL.effectiveTime) BETWEEN ? AND ?
                      AND name = 'SHUTDOWN' AND reason = 'host-signal'
                    ORDER BY ABS(\(EventSQL.effectiveTime) - ?) LIMIT 1
                    """,
                arguments: [machineId, time - importMatchWindow, time + importMatchWindow, time]
            )
        else { return false }
        try db.execute(
            sql: """
                INSERT OR IGNORE INTO signalSender (eventId, signal, pid, program, evidenceEventId)
                VALUES (?, ?, ?, ?, ?)
                """,
            arguments: [shutdown, sender.signal, sender.pid, sender.program, evidence]
        )
        return db.changesCount > 0
    }
}

extension EventDatabase {
    /// Attaches the nearest signal line already imported for the machine (within the window) to a
    /// `SHUTDOWN host-signal` just imported: the log may be imported before the transcript.
    fileprivate static func attachSignal(toShutdown shutdown: Int64, machineId: Int64, at time: Int64, in db: Database)
        throws -> Bool
    {
        try db.execute(
            sql: """
                INSERT OR IGNORE INTO signalSender (eventId, signal, pid, program, evidenceEventId)
                SELECT ?, json_extract(data, '$.signal'), json_extract(data, '$.pid'),
                       json_extract(data, '$.program'), id
                FROM event
                WHERE machineId = ? AND \(EventSQL.effectiveTime) BETWEEN ? AND ? AND name = 'QEMU_SIGNAL'
                ORDER BY ABS(\(EventSQL.effectiveTime) - ?) LIMIT 1
                """,
            arguments: [shutdown, machineId, time - importMatchWindow, time + importMatchWindow, time]
        )
        return db.changesCount > 0
    }
}

extension [(Int64, Int64?)] {
    /// The machine's recorded (not imported) sessions as (start, end) spans; an open one has no end.
    fileprivate static func fetchRecordedSpans(machineId: Int64, in db: Database) throws -> Self {
        try Row.fetchAll(
            db,
            sql: "SELECT startedAt, endedAt FROM session WHERE machineId = ? AND source IS NULL",
            arguments: [machineId]
        ).map { ($0[0], $0[1]) }
    }
}
