import GRDB
import GRDBSQLite

/// Binds one event's 15 values straight onto the prepared INSERT and steps it.
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

    func insert(_ event: NewEvent, in db: Database) throws {
        sqlite3_reset(statement)
        sqlite3_bind_int64(statement, 1, event.session.sessionId)
        sqlite3_bind_int64(statement, 2, event.session.machineId)
        sqlite3_bind_int64(statement, 3, event.seq)
        bind(event.name, at: 4)
        sqlite3_bind_int64(statement, 5, event.seconds)
        sqlite3_bind_int64(statement, 6, event.microseconds)
        if let time = event.time { sqlite3_bind_int64(statement, 7, time) } else { sqlite3_bind_null(statement, 7) }
        sqlite3_bind_int64(statement, 8, event.received)
        if let guest = event.guest {
            sqlite3_bind_int64(statement, 9, guest ? 1 : 0)
        } else {
            sqlite3_bind_null(statement, 9)
        }
        bind(event.reason, at: 10)
        bind(event.action, at: 11)
        bind(event.panicType, at: 12)
        bind(event.panicReason, at: 13)
        bind(event.panicArg1, at: 14)
        bind(event.data, at: 15)
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
