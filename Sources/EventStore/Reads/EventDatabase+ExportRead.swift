import GRDB
import GRDBSQLite

/// One stored event as export writes it: numbers, and text as UTF-8 bytes in SQLite's memory.
///
/// The text is valid only inside the callback that receives the row (until SQLite's next step):
/// copying a million rows into Swift strings cost ten times the export's own work (BENCHMARKS.md).
public struct StoredEventRow {
    public var id: Int64 = 0
    public var machineId: Int64 = 0
    /// QEMU's timestamp in microseconds; `nil` where it sent none (or none that is an instant).
    public var time: Int64?
    public var seconds: Int64 = 0
    public var microseconds: Int64 = 0
    public var received: Int64 = 0
    public var name: UnsafeBufferPointer<UInt8>?
    public var guest: Bool?
    public var reason: UnsafeBufferPointer<UInt8>?
    public var action: UnsafeBufferPointer<UInt8>?
    public var panicType: UnsafeBufferPointer<UInt8>?
    public var panicReason: UnsafeBufferPointer<UInt8>?
    /// The event's `data` JSON text as stored.
    public var data: UnsafeBufferPointer<UInt8>?

    /// The total length of its text, to bound what an escaped copy can take.
    public var textLength: Int {
        (name?.count ?? 0) + (reason?.count ?? 0) + (action?.count ?? 0) + (panicType?.count ?? 0)
            + (panicReason?.count ?? 0) + (data?.count ?? 0)
    }
}

extension EventDatabase {
    /// Streams the events of these names (empty: all) in `selection`, in arrival order, from one
    /// snapshot: first every VM's display name (`start`), then each event (`body`).
    ///
    /// Runs synchronously on a reader, as ``forEachEvent(named:in:_:)`` does.
    ///
    /// - Parameters:
    ///   - after: only events whose id is greater (a page's start: the last id of the page before).
    ///   - isFull: asked after each event; `true` ends the read there (a page's end).
    /// - Returns: how many events `body` received.
    @discardableResult
    public func forEachStoredEvent(
        named names: [String],
        in selection: EventSelection,
        after: Int64 = 0,
        isFull: () -> Bool = { false },
        start: ([(id: Int64, name: String)]) throws -> Void,
        _ body: (borrowing StoredEventRow) throws -> Void
    ) throws -> Int {
        let list = EventSelectList(columns: [
            .id, .machineId, .time, .seconds, .microseconds, .received, .name, .guest, .reason, .action, .panicType,
            .panicReason, .data,
        ])
        let columns = ExportColumns(list)
        var sql = "SELECT \(list.sql) FROM event WHERE id > ?"
        var arguments: StatementArguments = [after]
        if !names.isEmpty {
            sql += " AND name IN (\(EventSQL.placeholders(names.count)))"
            arguments += StatementArguments(names)
        }
        EventSQL.append(selection, to: &sql, arguments: &arguments)
        sql += " ORDER BY id"
        let finalSQL = sql
        let finalArguments = arguments
        return try writer.read { db in
            let names = try Row.fetchAll(db, sql: "SELECT id, COALESCE(name, uuid, endpoint) FROM machine")
            try start(names.map { (id: $0[0], name: $0[1]) })
            var row = StoredEventRow()
            var count = 0
            try db.forEachRawRow(sql: finalSQL, arguments: finalArguments, until: isFull) { handle in
                func text(_ column: Int32) -> UnsafeBufferPointer<UInt8>? {
                    guard let pointer = sqlite3_column_text(handle, column) else { return nil }
                    return UnsafeBufferPointer(start: pointer, count: Int(sqlite3_column_bytes(handle, column)))
                }
                func integer(_ column: Int32) -> Int64? {
                    sqlite3_column_type(handle, column) == SQLITE_NULL ? nil : sqlite3_column_int64(handle, column)
                }
                row.id = sqlite3_column_int64(handle, columns.id)
                row.machineId = sqlite3_column_int64(handle, columns.machineId)
                row.time = integer(columns.time)
                row.seconds = sqlite3_column_int64(handle, columns.seconds)
                row.microseconds = sqlite3_column_int64(handle, columns.microseconds)
                row.received = sqlite3_column_int64(handle, columns.received)
                row.name = text(columns.name)
                row.guest = integer(columns.guest).map { $0 != 0 }
                row.reason = text(columns.reason)
                row.action = text(columns.action)
                row.panicType = text(columns.panicType)
                row.panicReason = text(columns.panicReason)
                row.data = text(columns.data)
                try body(row)
                count += 1
            }
            return count
        }
    }
}

/// Where each column of the export's SELECT list lands, looked up once per export.
private struct ExportColumns {
    let id, machineId, time, seconds, microseconds, received, name, guest: Int32
    let reason, action, panicType, panicReason, data: Int32

    init(_ list: EventSelectList) {
        (id, machineId, time) = (list.position(.id), list.position(.machineId), list.position(.time))
        (seconds, microseconds) = (list.position(.seconds), list.position(.microseconds))
        (received, name, guest) = (list.position(.received), list.position(.name), list.position(.guest))
        (reason, action, panicType) = (list.position(.reason), list.position(.action), list.position(.panicType))
        (panicReason, data) = (list.position(.panicReason), list.position(.data))
    }
}
