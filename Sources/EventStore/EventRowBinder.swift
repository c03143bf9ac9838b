import GRDB
import GRDBSQLite

/// Binds one event's values straight onto the prepared INSERT (``EventColumn/insertSQL``) and steps it.
///
/// The hot path of a flood: GRDB's `StatementArguments` boxes every value as a `DatabaseValue`
/// (measured: about a third of the recorder's CPU in the Swift runtime). Binding with
/// `sqlite3_bind_*` on the statement GRDB prepared and caches keeps the statement's lifetime in
/// GRDB's hands and skips the boxing. Used only inside a write transaction on the writer's queue.
struct EventRowBinder {
    /// GRDB's cached statement; only its `sqliteStatement` is used on the hot path (its `sql`
    /// property trims with Foundation on every call, so it is read for error messages only).
    let prepared: Statement
    private var statement: SQLiteStatement { prepared.sqliteStatement }

    /// SQLite copies bound text immediately (`SQLITE_TRANSIENT`).
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Each column's parameter, looked up once per batch.
    private let sessionId = EventColumn.sessionId.insertParameter
    private let machineId = EventColumn.machineId.insertParameter
    private let seq = EventColumn.seq.insertParameter
    private let name = EventColumn.name.insertParameter
    private let seconds = EventColumn.seconds.insertParameter
    private let microseconds = EventColumn.microseconds.insertParameter
    private let time = EventColumn.time.insertParameter
    private let received = EventColumn.received.insertParameter
    private let guest = EventColumn.guest.insertParameter
    private let reason = EventColumn.reason.insertParameter
    private let action = EventColumn.action.insertParameter
    private let panicType = EventColumn.panicType.insertParameter
    private let panicReason = EventColumn.panicReason.insertParameter
    private let panicArg1 = EventColumn.panicArg1.insertParameter
    private let data = EventColumn.data.insertParameter

    init(prepared: Statement) {
        self.prepared = prepared
    }

    func insert(_ event: NewEvent, in db: Database) throws {
        sqlite3_reset(statement)
        sqlite3_bind_int64(statement, sessionId, event.session.sessionId)
        sqlite3_bind_int64(statement, machineId, event.session.machineId)
        sqlite3_bind_int64(statement, seq, event.seq)
        bind(event.name, at: name)
        sqlite3_bind_int64(statement, seconds, event.seconds)
        sqlite3_bind_int64(statement, microseconds, event.microseconds)
        if let value = event.time {
            sqlite3_bind_int64(statement, time, value)
        } else {
            sqlite3_bind_null(statement, time)
        }
        sqlite3_bind_int64(statement, received, event.received)
        if let value = event.guest {
            sqlite3_bind_int64(statement, guest, value ? 1 : 0)
        } else {
            sqlite3_bind_null(statement, guest)
        }
        bind(event.reason, at: reason)
        bind(event.action, at: action)
        bind(event.panicType, at: panicType)
        bind(event.panicReason, at: panicReason)
        bind(event.panicArg1, at: panicArg1)
        bind(event.data, at: data)
        let code = sqlite3_step(statement)
        guard code == SQLITE_DONE else {
            let message = String(cString: sqlite3_errmsg(db.sqliteConnection))
            sqlite3_reset(statement)
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: prepared.sql)
        }
    }

    private func bind(_ text: String?, at index: Int32) {
        guard var text else {
            sqlite3_bind_null(statement, index)
            return
        }
        text.withUTF8 { bytes in
            guard let base = bytes.baseAddress, !bytes.isEmpty else {
                // A NULL pointer would bind SQL NULL; an empty string must stay an empty string.
                sqlite3_bind_text(statement, index, "", 0, Self.transient)
                return
            }
            base.withMemoryRebound(to: CChar.self, capacity: bytes.count) { chars in
                _ = sqlite3_bind_text(statement, index, chars, Int32(bytes.count), Self.transient)
            }
        }
    }
}
