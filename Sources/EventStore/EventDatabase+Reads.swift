import GRDB

extension EventDatabase {
    /// Every stored event in arrival order (session, then sequence). For tests and small databases.
    public func allEvents() async throws -> [RecordedEvent] {
        try await writer.read { db in
            try RecordedEvent.order(RecordedEvent.Columns.sessionId, RecordedEvent.Columns.seq).fetchAll(db)
        }
    }

    /// Every session in start order.
    public func allSessions() async throws -> [Session] {
        try await writer.read { db in try Session.order(Session.Columns.startedAt, Session.Columns.id).fetchAll(db) }
    }

    /// Every machine by id.
    public func allMachines() async throws -> [Machine] {
        try await writer.read { db in try Machine.order(Machine.Columns.id).fetchAll(db) }
    }
}

extension EventDatabase {
    /// The latest `limit` events by arrival (newest first), of these machines (`nil`: all).
    package func latestEvents(limit: Int, machineIds: [Int64]?) async throws -> [RecordedEvent] {
        try await writer.read { db in
            var request = RecordedEvent.order(RecordedEvent.Columns.id.desc).limit(limit)
            if let machineIds { request = request.filter(machineIds.contains(RecordedEvent.Columns.machineId)) }
            return try request.fetchAll(db)
        }
    }
}
