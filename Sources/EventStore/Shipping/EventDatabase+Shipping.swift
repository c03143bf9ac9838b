package import Foundation
import GRDB
import GRDBSQLite
package import NIOCore

/// Where a ship stands in PostgreSQL: the last event, session and machine row ids of this host it
/// holds. Kept there, in the transaction that stores the rows.
package struct ShipCursor: Sendable, Equatable {
    package var lastEventId: Int64 = 0
    package var lastSessionId: Int64 = 0
    package var lastMachineId: Int64 = 0

    package init(lastEventId: Int64 = 0, lastSessionId: Int64 = 0, lastMachineId: Int64 = 0) {
        self.lastEventId = lastEventId
        self.lastSessionId = lastSessionId
        self.lastMachineId = lastMachineId
    }
}

/// A session PostgreSQL holds open: its machine and start as shipped.
package struct ShippedOpenSession: Sendable, Equatable {
    package var machineId: Int64
    package var startedAt: Int64

    package init(machineId: Int64, startedAt: Int64) {
        self.machineId = machineId
        self.startedAt = startedAt
    }
}

/// What one ship transaction sends: rows as COPY text, and what changed in sessions PostgreSQL
/// holds open.
package struct ShipBatch: Sendable {
    package var machines = ByteBuffer()
    package var machineCount = 0
    package var sessions = ByteBuffer()
    package var sessionCount = 0
    package var events = ByteBuffer()
    package var eventCount = 0
    /// Sessions identified since they were shipped: their events move to the VM's machine row.
    package var moved: [(session: Int64, from: Int64, to: Int64)] = []
    /// Open sessions this database no longer has (discarded without events).
    package var vanished: [Int64] = []
    /// The cursor once this batch is stored.
    package var cursor: ShipCursor
}

/// This database's shipping identity and what PostgreSQL last confirmed.
package struct ShippingState: Sendable, Equatable {
    package var hostId: UUID
    package var hostName: String
    package var target: String?
    package var shippedEventId: Int64
    package var shippedAt: Int64?
    /// PostgreSQL's clock minus this host's, in microseconds, at the last ship.
    package var clockOffset: Int64?
}

/// The columns shipped of each table, in the order of the SELECT that reads them and of the COPY
/// that writes them (PostgreSQL's tables add `host` first).
enum ShippedColumns {
    static let machine = ["id", "identity", "name", "uuid", "endpoint", "firstSeen", "lastSeen"]
    static let session = [
        "id", "machineId", "endpoint", "peer", "qemuVersion", "qemuPackage", "initialStatus", "initialRunning",
        "startedAt", "endedAt", "endReason", "source",
    ]
    static let event = EventColumn.allCases.map(\.rawValue)
}

extension EventDatabase {
    /// The identity this database ships under: made on the first call (a random UUID) and kept.
    package func shippingIdentity(hostName: String) async throws -> ShippingState {
        try await writer.write { db in
            if let state = try Self.shippingState(db) {
                if state.hostName != hostName {
                    try db.execute(sql: "UPDATE shipping SET hostName = ? WHERE id = 1", arguments: [hostName])
                }
                return ShippingState(
                    hostId: state.hostId,
                    hostName: hostName,
                    target: state.target,
                    shippedEventId: state.shippedEventId,
                    shippedAt: state.shippedAt,
                    clockOffset: state.clockOffset
                )
            }
            let id = UUID()
            try db.execute(
                sql: "INSERT INTO shipping (id, hostId, hostName) VALUES (1, ?, ?)",
                arguments: [id.uuidString.lowercased(), hostName]
            )
            return ShippingState(hostId: id, hostName: hostName, shippedEventId: 0)
        }
    }

    /// The shipping identity and progress, or `nil` when this database was never shipped.
    package func shippingState() async throws -> ShippingState? {
        try await writer.read { db in try Self.shippingState(db) }
    }

    private static func shippingState(_ db: Database) throws -> ShippingState? {
        guard try db.tableExists("shipping"),
            let row = try Row.fetchOne(
                db,
                sql:
                    "SELECT hostId, hostName, target, shippedEventId, shippedAt, clockOffset FROM shipping WHERE id = 1"
            ), let hostId = UUID(uuidString: row["hostId"])
        else { return nil }
        return ShippingState(
            hostId: hostId,
            hostName: row["hostName"],
            target: row["target"],
            shippedEventId: row["shippedEventId"],
            shippedAt: row["shippedAt"],
            clockOffset: row["clockOffset"]
        )
    }

    /// Notes what PostgreSQL confirmed (after its commit): `qmplog prune` keeps later events.
    package func noteShipped(target: String, through eventId: Int64, at time: Int64, clockOffset: Int64?) async throws {
        try await writer.write { db in
            try db.execute(
                sql: """
                    UPDATE shipping SET target = ?, shippedEventId = MAX(shippedEventId, ?), shippedAt = ?,
                        clockOffset = COALESCE(?, clockOffset)
                    WHERE id = 1
                    """,
                arguments: [target, eventId, time, clockOffset]
            )
        }
    }

    /// The rows after `cursor`, at most `eventLimit` events, read in one snapshot so that every
    /// event's session and machine travel with or before it.
    ///
    /// - Parameters:
    ///   - openSessions: the sessions PostgreSQL holds open: re-read, and sent again when they ended,
    ///     moved to their identified machine, or were discarded (a discarded session's id may come
    ///     back for a new session: then its start differs, and the new row replaces it).
    ///   - hostPrefix: the `host` column's COPY text and a tab, written before each row.
    package func shipBatch(
        after cursor: ShipCursor,
        openSessions: [Int64: ShippedOpenSession],
        hostPrefix: String,
        eventLimit: Int
    ) async throws -> ShipBatch {
        try await writer.read { db in
            var batch = ShipBatch(cursor: cursor)
            let eventSQL =
                "SELECT \(ShippedColumns.event.joined(separator: ", ")) FROM event WHERE id > ? ORDER BY id LIMIT ?"
            let dataColumn = Int32(ShippedColumns.event.firstIndex(of: EventColumn.data.rawValue) ?? -1)
            let eventCount = Int32(ShippedColumns.event.count)
            try db.forEachRawRow(sql: eventSQL, arguments: [cursor.lastEventId, eventLimit]) { statement in
                CopyText.appendRow(
                    of: statement,
                    columnCount: eventCount,
                    prefix: hostPrefix,
                    jsonColumn: dataColumn,
                    to: &batch.events
                )
                batch.eventCount += 1
                batch.cursor.lastEventId = sqlite3_column_int64(statement, 0)
            }

            // Sessions: every new one, and the open ones that changed.
            let sessionList = ShippedColumns.session.joined(separator: ", ")
            var sessionMachines: Set<Int64> = []
            func appendSession(_ statement: OpaquePointer) {
                CopyText.appendRow(
                    of: statement,
                    columnCount: Int32(ShippedColumns.session.count),
                    prefix: hostPrefix,
                    jsonColumn: nil,
                    to: &batch.sessions
                )
                batch.sessionCount += 1
                sessionMachines.insert(sqlite3_column_int64(statement, 1))
            }
            try db.forEachRawRow(
                sql: "SELECT \(sessionList) FROM session WHERE id > ? ORDER BY id",
                arguments: [cursor.lastSessionId]
            ) { statement in
                appendSession(statement)
                batch.cursor.lastSessionId = sqlite3_column_int64(statement, 0)
            }
            let endedAt = Int32(ShippedColumns.session.firstIndex(of: "endedAt") ?? -1)
            let startedAt = Int32(ShippedColumns.session.firstIndex(of: "startedAt") ?? -1)
            var seen: Set<Int64> = []
            let open = openSessions.keys.sorted()
            for start in stride(from: 0, to: open.count, by: 10_000) {
                let chunk = Array(open[start..<min(start + 10_000, open.count)])
                try db.forEachRawRow(
                    sql: "SELECT \(sessionList) FROM session WHERE id IN (\(EventSQL.placeholders(chunk.count)))",
                    arguments: StatementArguments(chunk)
                ) { statement in
                    let id = sqlite3_column_int64(statement, 0)
                    let machineId = sqlite3_column_int64(statement, 1)
                    seen.insert(id)
                    guard let shipped = openSessions[id] else { return }
                    let sameSession = shipped.startedAt == sqlite3_column_int64(statement, startedAt)
                    if sameSession && shipped.machineId != machineId {
                        batch.moved.append((id, shipped.machineId, machineId))
                    }
                    if !sameSession || shipped.machineId != machineId
                        || sqlite3_column_type(statement, endedAt) != SQLITE_NULL
                    {
                        appendSession(statement)
                    }
                }
            }
            batch.vanished = open.filter { !seen.contains($0) }

            // Machines: every new one, and those of the sessions sent (their lastSeen, name).
            let machineList = ShippedColumns.machine.joined(separator: ", ")
            var shippedMachines: Set<Int64> = []
            func appendMachine(_ statement: OpaquePointer) {
                let id = sqlite3_column_int64(statement, 0)
                guard shippedMachines.insert(id).inserted else { return }
                CopyText.appendRow(
                    of: statement,
                    columnCount: Int32(ShippedColumns.machine.count),
                    prefix: hostPrefix,
                    jsonColumn: nil,
                    to: &batch.machines
                )
                batch.machineCount += 1
            }
            try db.forEachRawRow(
                sql: "SELECT \(machineList) FROM machine WHERE id > ? ORDER BY id",
                arguments: [cursor.lastMachineId]
            ) { statement in
                appendMachine(statement)
                batch.cursor.lastMachineId = sqlite3_column_int64(statement, 0)
            }
            let referenced = sessionMachines.subtracting(shippedMachines).sorted()
            for start in stride(from: 0, to: referenced.count, by: 10_000) {
                let chunk = Array(referenced[start..<min(start + 10_000, referenced.count)])
                try db.forEachRawRow(
                    sql: "SELECT \(machineList) FROM machine WHERE id IN (\(EventSQL.placeholders(chunk.count)))",
                    arguments: StatementArguments(chunk)
                ) { appendMachine($0) }
            }
            return batch
        }
    }
}
