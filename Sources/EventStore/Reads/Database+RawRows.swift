import GRDB
import GRDBSQLite

extension Database {
    /// Steps `sql` and calls `body` with SQLite's statement at each row, for `sqlite3_column_*`
    /// reads (valid until the next step). For the per-row hot paths, where GRDB's `Row` and Swift
    /// values per column cost more than SQLite's own work (measured: export and report scans).
    /// `until` is asked after each row; `true` stops there.
    func forEachRawRow(
        sql: String,
        arguments: StatementArguments,
        until isDone: () -> Bool = { false },
        _ body: (OpaquePointer) throws -> Void
    ) throws {
        let statement = try makeStatement(sql: sql)
        try statement.setArguments(arguments)
        let handle = statement.sqliteStatement
        while true {
            let code = sqlite3_step(handle)
            if code == SQLITE_DONE { return }
            guard code == SQLITE_ROW else {
                throw DatabaseError(
                    resultCode: ResultCode(rawValue: code),
                    message: String(cString: sqlite3_errmsg(sqliteConnection))
                )
            }
            try body(handle)
            if isDone() { return }
        }
    }
}
