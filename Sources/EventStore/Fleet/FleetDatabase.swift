package import Foundation
package import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// One connection to the fleet's PostgreSQL. Opened per ship round and closed after it, so that
/// many hosts share a server's few connection slots (`max_connections`).
package struct FleetDatabase: Sendable {
    package let url: FleetURL
    let connection: PostgresConnection
    let logger: Logger
    /// How long one transaction may take before the connection is given up.
    let timeout: Duration

    private static let connectionIds = Atomic<Int>(0)
    /// The key all qmplog processes migrate under, so that hosts shipping to a new server at once
    /// create its schema once.
    private static let migrationLock: Int64 = 0x716D_706C_6F67  // "qmplog"

    /// Connects to `url`.
    ///
    /// - Throws: ``FleetError`` naming the server and its reason (unreachable, refused, full).
    package static func connect(
        _ url: FleetURL,
        logger: Logger,
        timeout: Duration = .seconds(60)
    ) async throws -> FleetDatabase {
        let id = connectionIds.add(1, ordering: .relaxed).newValue
        do {
            let connection = try await PostgresConnection.connect(
                configuration: url.configuration(),
                id: id,
                logger: logger
            )
            return FleetDatabase(url: url, connection: connection, logger: logger, timeout: timeout)
        } catch {
            throw FleetError.classify(error, url: url, doing: "connect to")
        }
    }

    package func close() async {
        try? await connection.close()
    }

    /// Runs `query`, turning postgres-nio's errors into ``FleetError``s that say what was being done.
    @discardableResult
    func run(_ query: PostgresQuery, doing: String) async throws -> PostgresRowSequence {
        do {
            return try await connection.query(query, logger: logger)
        } catch {
            throw FleetError.classify(error, url: url, doing: doing)
        }
    }

    /// Creates or completes the qmplog schema, under an advisory lock.
    ///
    /// - Throws: ``FleetError`` `.schemaTooNew` when the database has migrations this build lacks.
    package func migrate() async throws {
        do {
            try await bounded { [connection, logger, url] in
                try await Self.migrate(connection, logger: logger, url: url)
            }
        } catch {
            throw FleetError.classify(error, url: url, doing: "prepare the qmplog schema in")
        }
    }

    private static func migrate(_ connection: PostgresConnection, logger: Logger, url: FleetURL) async throws {
        do {
            try await connection.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS qmplogMigration (
                        name text PRIMARY KEY,
                        appliedAt timestamptz NOT NULL DEFAULT now()
                    )
                    """,
                    logger: logger
                )
                let applied = try await Self.appliedMigrations(connection, logger: logger)
                try Self.checkKnown(applied, url: url)
                for migration in FleetMigrations.all where !applied.contains(migration.name) {
                    for statement in migration.statements {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query(
                        "INSERT INTO qmplogMigration (name) VALUES (\(migration.name))",
                        logger: logger
                    )
                }
            }
        } catch {
            throw FleetError.classify(error, url: url, doing: "prepare the qmplog schema in")
        }
    }

    /// Checks that the database holds a qmplog schema this build reads.
    ///
    /// - Throws: ``FleetError`` `.noSchema` or `.schemaTooNew`.
    package func requireSchema() async throws {
        let exists = try await run(
            "SELECT to_regclass('qmplogmigration') IS NOT NULL",
            doing: "read the schema of"
        ).collect().first?.decode(Bool.self)
        guard exists == true else {
            throw FleetError(
                code: .noSchema,
                message: "\(url) has no qmplog schema: ship a host's events to it first (qmplog ship --to URL)"
            )
        }
        let applied = try await Self.appliedMigrations(connection, logger: logger)
        try Self.checkKnown(applied, url: url)
        guard FleetMigrations.all.allSatisfy({ applied.contains($0.name) }) else {
            throw FleetError(
                code: .noSchema,
                message: "\(url) has an older qmplog schema: ship to it with this qmplog first to upgrade it"
            )
        }
    }

    private static func appliedMigrations(_ connection: PostgresConnection, logger: Logger) async throws -> Set<String>
    {
        var names: Set<String> = []
        for try await name in try await connection.query("SELECT name FROM qmplogMigration", logger: logger)
            .decode(String.self)
        {
            names.insert(name)
        }
        return names
    }

    private static func checkKnown(_ applied: Set<String>, url: FleetURL) throws {
        let known = Set(FleetMigrations.all.map(\.name))
        if let unknown = applied.subtracting(known).sorted().first {
            throw FleetError(
                code: .schemaTooNew,
                message: "\(url) was migrated by a newer qmplog (\(unknown)); upgrade qmplog to use it"
            )
        }
    }

    /// The fleet database's own id (migration `v2-fleet-identity`): another id at the same URL is
    /// another database.
    package func fleetIdentity() async throws -> String {
        let id = try await run("SELECT id::text FROM fleetIdentity", doing: "read the identity of")
            .collect().first?.decode(String.self)
        guard let id else { throw FleetError(code: .noSchema, message: "\(url) has no fleet identity row") }
        return id
    }

    /// Registers the host `id` (or renames it) and returns its key, with a cursor at the start.
    package func registerHost(id: UUID, name: String, at time: Int64) async throws -> Int32 {
        do {
            return try await bounded { [connection, logger] in
                try await Self.register(connection, logger: logger, id: id, name: name, at: time)
            }
        } catch {
            throw FleetError.classify(error, url: url, doing: "register host \(name) in")
        }
    }

    private static func register(
        _ connection: PostgresConnection,
        logger: Logger,
        id: UUID,
        name: String,
        at time: Int64
    ) async throws -> Int32 {
        do {
            return try await connection.withTransaction(logger: logger) { connection in
                let rows = try await connection.query(
                    """
                    INSERT INTO host (id, name, firstShipped) VALUES (\(id), \(name), \(time))
                    ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name RETURNING key
                    """,
                    logger: logger
                )
                var key: Int32?
                for try await value in rows.decode(Int32.self) { key = value }
                guard let key else { throw FleetError(code: .failed, message: "no key returned for host \(name)") }
                try await connection.query(
                    "INSERT INTO shipCursor (host) VALUES (\(key)) ON CONFLICT (host) DO NOTHING",
                    logger: logger
                )
                return key
            }
        }
    }

    /// What one ship transaction stored.
    package struct ShipOutcome: Sendable {
        package var machines: Int
        package var sessions: Int
        package var events: Int
        package var cursor: ShipCursor
        /// PostgreSQL's clock minus the host's, in microseconds (half the round trip's uncertainty).
        package var clockOffset: Int64
    }

    /// Stores the next batch of `host` in one transaction: locks its cursor (a second shipper of the
    /// same host waits), asks `read` for the rows after it, stores them and moves the cursor.
    /// A batch is all or nothing: killed or cut off at any moment, the next one starts where the
    /// last commit left.
    package func shipNext(
        host: Int32,
        clock: @escaping @Sendable () -> Int64,
        read: @escaping @Sendable (ShipCursor, [Int64: ShippedOpenSession]) async throws -> ShipBatch
    ) async throws -> ShipOutcome {
        do {
            return try await bounded {
                try await connection.withTransaction(logger: logger) { connection in
                    try await shipNext(connection, host: host, clock: clock, read: read)
                }
            }
        } catch {
            throw FleetError.classify(error, url: url, doing: "ship to")
        }
    }

    private func shipNext(
        _ connection: PostgresConnection,
        host: Int32,
        clock: @Sendable () -> Int64,
        read: @Sendable (ShipCursor, [Int64: ShippedOpenSession]) async throws -> ShipBatch
    ) async throws -> ShipOutcome {
        var cursor = ShipCursor()
        let cursorRows = try await connection.query(
            "SELECT lastEventId, lastSessionId, lastMachineId FROM shipCursor WHERE host = \(host) FOR UPDATE",
            logger: logger
        )
        for try await (event, session, machine) in cursorRows.decode((Int64, Int64, Int64).self) {
            cursor = ShipCursor(lastEventId: event, lastSessionId: session, lastMachineId: machine)
        }
        var open: [Int64: ShippedOpenSession] = [:]
        let openRows = try await connection.query(
            "SELECT id, machineId, startedAt FROM session WHERE host = \(host) AND endedAt IS NULL",
            logger: logger
        )
        for try await (id, machineId, startedAt) in openRows.decode((Int64, Int64, Int64).self) {
            open[id] = ShippedOpenSession(machineId: machineId, startedAt: startedAt)
        }
        let batch = try await read(cursor, open)

        // The clock check: PostgreSQL's time against the midpoint of the host's before and after.
        let sent = clock()
        var serverTime: Int64 = 0
        for try await value in try await connection.query(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
            logger: logger
        ).decode(Int64.self) {
            serverTime = value
        }
        let clockOffset = serverTime - (sent + clock()) / 2

        if batch.machineCount > 0 {
            try await copy(batch.machines, into: "machine", columns: ShippedColumns.machine, connection)
            try await connection.query(
                """
                INSERT INTO machine SELECT * FROM shipmachine ON CONFLICT (host, id) DO UPDATE SET
                    identity = EXCLUDED.identity, name = EXCLUDED.name, uuid = EXCLUDED.uuid,
                    endpoint = EXCLUDED.endpoint, firstSeen = LEAST(machine.firstSeen, EXCLUDED.firstSeen),
                    lastSeen = GREATEST(machine.lastSeen, EXCLUDED.lastSeen)
                """,
                logger: logger
            )
        }
        for move in batch.moved {
            try await connection.query(
                """
                UPDATE event SET machineId = \(move.to)
                WHERE host = \(host) AND machineId = \(move.from) AND sessionId = \(move.session)
                """,
                logger: logger
            )
        }
        if !batch.vanished.isEmpty {
            // Only a session without events is ever discarded; one with events here stays.
            try await connection.query(
                """
                DELETE FROM session s WHERE s.host = \(host) AND s.id = ANY(\(batch.vanished))
                    AND NOT EXISTS (SELECT 1 FROM event e
                        WHERE e.host = s.host AND e.machineId = s.machineId AND e.sessionId = s.id)
                """,
                logger: logger
            )
        }
        if batch.sessionCount > 0 {
            try await copy(batch.sessions, into: "session", columns: ShippedColumns.session, connection)
            let updates = ShippedColumns.session.dropFirst().map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
            try await connection.query(
                PostgresQuery(
                    unsafeSQL:
                        "INSERT INTO session SELECT * FROM shipsession ON CONFLICT (host, id) DO UPDATE SET \(updates)"
                ),
                logger: logger
            )
        }
        let abandoned = batch.moved.map(\.from)
        if !abandoned.isEmpty {
            try await connection.query(
                """
                DELETE FROM machine m WHERE m.host = \(host) AND m.id = ANY(\(abandoned))
                    AND NOT EXISTS (SELECT 1 FROM session s WHERE s.host = m.host AND s.machineId = m.id)
                """,
                logger: logger
            )
        }
        if batch.eventCount > 0 {
            // Straight into the table: the cursor, locked and moved in this transaction, keeps a
            // batch from being stored twice, and the primary key would refuse it if it were.
            try await connection.copyFrom(
                table: "event",
                columns: (["host"] + ShippedColumns.event).map { $0.lowercased() },
                logger: logger
            ) { writer in try await writer.write(batch.events) }
            try await connection.query(
                """
                INSERT INTO shipBatch (host, receivedAt, clockOffset, events, lastEventId)
                VALUES (\(host), \(serverTime), \(clockOffset), \(batch.eventCount), \(batch.cursor.lastEventId))
                """,
                logger: logger
            )
        }
        let next = batch.cursor
        try await connection.query(
            """
            UPDATE shipCursor SET lastEventId = \(next.lastEventId), lastSessionId = \(next.lastSessionId),
                lastMachineId = \(next.lastMachineId) WHERE host = \(host)
            """,
            logger: logger
        )
        try await connection.query(
            "UPDATE host SET lastShipped = \(serverTime), clockOffset = \(clockOffset) WHERE key = \(host)",
            logger: logger
        )
        return ShipOutcome(
            machines: batch.machineCount,
            sessions: batch.sessionCount,
            events: batch.eventCount,
            cursor: next,
            clockOffset: clockOffset
        )
    }

    /// Runs `operation`, giving up after ``timeout``: then the connection is closed and the
    /// operation abandoned. postgres-nio 1.33 never answers a query sent on a connection the server
    /// has just reset (seen with an immediate server stop between two statements of a batch).
    func bounded<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let outcome = Mutex<CheckedContinuation<T, any Error>?>(nil)
        let finish: @Sendable (Result<T, any Error>) -> Void = { result in
            outcome.withLock { continuation in
                continuation?.resume(with: result)
                continuation = nil
            }
        }
        let (url, timeout, connection) = (self.url, self.timeout, self.connection)
        let work = Mutex<Task<Void, Never>?>(nil)
        let watchdog = Mutex<Task<Void, Never>?>(nil)
        // The watchdog must end with the operation: left running, it would close the connection
        // under a later transaction.
        defer { watchdog.withLock { $0?.cancel() } }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                outcome.withLock { $0 = continuation }
                work.withLock {
                    $0 = Task {
                        do { finish(.success(try await operation())) } catch { finish(.failure(error)) }
                    }
                }
                watchdog.withLock {
                    $0 = Task {
                        guard (try? await Task.sleep(for: timeout)) != nil else { return }
                        finish(
                            .failure(
                                FleetError(
                                    code: .unreachable,
                                    message: "\(url) did not answer within \(timeout); giving up the connection"
                                )
                            )
                        )
                        try? await connection.close()
                    }
                }
            }
        } onCancel: {
            finish(.failure(CancellationError()))
            work.withLock { $0?.cancel() }
        }
    }

    /// COPY `rows` into a temporary table shaped like `table` (emptied at commit), for an upsert.
    private func copy(
        _ rows: ByteBuffer,
        into table: String,
        columns: [String],
        _ connection: PostgresConnection
    ) async throws {
        let temporary = "ship\(table)"
        try await connection.query(
            PostgresQuery(
                unsafeSQL: "CREATE TEMPORARY TABLE IF NOT EXISTS \(temporary) (LIKE \(table)) ON COMMIT DELETE ROWS"
            ),
            logger: logger
        )
        try await connection.copyFrom(
            table: temporary,
            columns: (["host"] + columns).map { $0.lowercased() },
            logger: logger
        ) { writer in try await writer.write(rows) }
    }
}
