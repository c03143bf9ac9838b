import Logging
import PostgresNIO

/// A host as the fleet's PostgreSQL knows it.
package struct FleetHost: Sendable, Equatable {
    package var key: Int32
    package var name: String
    /// PostgreSQL's clock minus the host's at its last ship, microseconds.
    package var clockOffset: Int64?
}

/// What a replica reads of one host: its machines, the sessions after a cursor (and those asked
/// for again), its events after a cursor. Ids are the host's own.
package struct FleetRows: Sendable {
    package var machines: [Machine] = []
    package var sessions: [Session] = []
    package var events: [RecordedEvent] = []
}

extension FleetDatabase {
    /// Every host that shipped, by key.
    package func hosts() async throws -> [FleetHost] {
        var hosts: [FleetHost] = []
        let rows = try await run("SELECT key, name, clockOffset FROM host ORDER BY key", doing: "read the hosts of")
        do {
            for try await (key, name, offset) in rows.decode((Int32, String, Int64?).self) {
                hosts.append(FleetHost(key: key, name: name, clockOffset: offset))
            }
        } catch {
            throw FleetError.classify(error, url: url, doing: "read the hosts of")
        }
        return hosts
    }

    /// `host`'s machines, its sessions after `sessionCursor` or named in `sessionIds`, and at most
    /// `limit` of its events after `eventCursor`, in id order; read in one snapshot.
    package func rows(
        host: Int32,
        sessionsAfter sessionCursor: Int64,
        sessionIds: [Int64],
        eventsAfter eventCursor: Int64,
        limit: Int
    ) async throws -> FleetRows {
        do {
            return try await bounded { [connection, logger] in
                try await Self.rows(
                    connection,
                    logger: logger,
                    host: host,
                    sessionsAfter: sessionCursor,
                    sessionIds: sessionIds,
                    eventsAfter: eventCursor,
                    limit: limit
                )
            }
        } catch {
            throw FleetError.classify(error, url: url, doing: "read the fleet from")
        }
    }

    private static func rows(
        _ connection: PostgresConnection,
        logger: Logger,
        host: Int32,
        sessionsAfter sessionCursor: Int64,
        sessionIds: [Int64],
        eventsAfter eventCursor: Int64,
        limit: Int
    ) async throws -> FleetRows {
        try await connection.withTransaction(logger: logger) { connection in
            try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
            var rows = FleetRows()
            let machineList = ShippedColumns.machine.joined(separator: ", ")
            for try await row in try await connection.query(
                PostgresQuery(
                    unsafeSQL: "SELECT \(machineList) FROM machine WHERE host = $1 ORDER BY id",
                    binds: try binds(host)
                ),
                logger: logger
            ) {
                let cells = row.makeRandomAccess()
                rows.machines.append(
                    Machine(
                        id: try cells[0].decode(Int64.self),
                        identity: try cells[1].decode(String.self),
                        name: try cells[2].decode(String?.self),
                        uuid: try cells[3].decode(String?.self),
                        endpoint: try cells[4].decode(String.self),
                        firstSeen: try cells[5].decode(Int64.self),
                        lastSeen: try cells[6].decode(Int64.self)
                    )
                )
            }
            let sessionList = ShippedColumns.session.joined(separator: ", ")
            for try await row in try await connection.query(
                PostgresQuery(
                    unsafeSQL:
                        "SELECT \(sessionList) FROM session WHERE host = $1 AND (id > $2 OR id = ANY($3)) ORDER BY id",
                    binds: try binds(host, sessionCursor, sessionIds)
                ),
                logger: logger
            ) {
                let cells = row.makeRandomAccess()
                rows.sessions.append(
                    Session(
                        id: try cells[0].decode(Int64.self),
                        machineId: try cells[1].decode(Int64.self),
                        endpoint: try cells[2].decode(String.self),
                        peer: try cells[3].decode(String?.self),
                        qemuVersion: try cells[4].decode(String.self),
                        qemuPackage: try cells[5].decode(String.self),
                        initialStatus: try cells[6].decode(String?.self),
                        initialRunning: try cells[7].decode(Bool?.self),
                        startedAt: try cells[8].decode(Int64.self),
                        endedAt: try cells[9].decode(Int64?.self),
                        endReason: try cells[10].decode(String?.self),
                        source: try cells[11].decode(String?.self)
                    )
                )
            }
            // jsonb comes back as text in PostgreSQL's own spelling (keys reordered, spaces normalized).
            let eventList = ShippedColumns.event.map { $0 == "data" ? "data::text" : $0 }.joined(separator: ", ")
            for try await row in try await connection.query(
                PostgresQuery(
                    unsafeSQL: "SELECT \(eventList) FROM event WHERE host = $1 AND id > $2 ORDER BY id LIMIT $3",
                    binds: try binds(host, eventCursor, Int64(limit))
                ),
                logger: logger
            ) {
                let cells = row.makeRandomAccess()
                rows.events.append(
                    RecordedEvent(
                        id: try cells[0].decode(Int64.self),
                        sessionId: try cells[1].decode(Int64.self),
                        machineId: try cells[2].decode(Int64.self),
                        seq: try cells[3].decode(Int64.self),
                        name: try cells[4].decode(String.self),
                        seconds: try cells[5].decode(Int64.self),
                        microseconds: try cells[6].decode(Int64.self),
                        time: try cells[7].decode(Int64?.self),
                        received: try cells[8].decode(Int64.self),
                        guest: try cells[9].decode(Bool?.self),
                        reason: try cells[10].decode(String?.self),
                        action: try cells[11].decode(String?.self),
                        panicType: try cells[12].decode(String?.self),
                        panicReason: try cells[13].decode(String?.self),
                        panicArg1: try cells[14].decode(String?.self),
                        data: try cells[15].decode(String?.self)
                    )
                )
            }
            return rows
        }
    }

    private static func binds(_ values: any PostgresEncodable...) throws -> PostgresBindings {
        var bindings = PostgresBindings()
        for value in values { try bindings.append(value) }
        return bindings
    }
}
