import EventStore
import GRDB
import GRDBSQLite

/// An event as the analyses see it: the time they order and bucket by, and the extracted columns.
struct EventRow: Sendable {
    var machineId: Int64
    var sessionId: Int64
    var name: String
    /// QEMU's timestamp, or the receive time when QEMU sent -1/-1.
    var time: Int64
    var guest: Bool?
    var reason: String?
    var action: String?
    var panicType: String?
    var panicReason: String?
    var panicArg1: String?
}

/// Reads what the analyses need from the store, read-only, with bound parameters only.
struct ReportData {
    let database: EventDatabase
    var query: ReportQuery
    /// Machine id → display name, for the selected machines (all when none are named).
    let machineNames: [Int64: String]
    /// The ids `--vm` selected, or `nil` for all.
    let selectedIds: [Int64]?
    /// The earliest effective event time when the query has a `--since` (one seek in the time
    /// index): a window that starts before it bounds nothing, and reads like the whole history.
    let firstEventTime: Int64?

    init(database: EventDatabase, query: ReportQuery) async throws {
        // Without --until the window has no upper bound (see ``ReportQuery/contains(_:)``), so a
        // --since after now is a question, not a mistake.
        if let since = query.since, let until = query.until, since >= until {
            throw ReportsError(code: .invalidQuery, message: "--since must be earlier than --until")
        }
        self.database = database
        self.query = query
        let machines = try await database.writer.read { db in
            try Machine.order(Machine.Columns.id).fetchAll(db)
        }
        var names: [Int64: String] = [:]
        var selected: [Int64] = []
        var unmatched = Set(query.machines)
        for machine in machines {
            let keys = [machine.name, machine.uuid, machine.endpoint, machine.identity].compactMap { $0 }
            if query.machines.isEmpty || keys.contains(where: query.machines.contains) {
                names[machine.id] = machine.name ?? machine.uuid ?? machine.endpoint
                selected.append(machine.id)
                unmatched.subtract(keys)
            }
        }
        if !unmatched.isEmpty {
            // Printed on a terminal: names come from VMs and the command line.
            let known = machines.map { TerminalText.escaping($0.name ?? $0.endpoint) }.sorted()
            let wanted = unmatched.sorted().map(TerminalText.escaping)
            throw ReportsError(
                code: .unknownMachine,
                message: "no VM named \(wanted.joined(separator: ", ")) in \(database.path ?? "the database")"
                    + (known.isEmpty ? " (it has no VMs yet)" : "; known VMs: \(known.joined(separator: ", "))")
            )
        }
        machineNames = names
        selectedIds = query.machines.isEmpty ? nil : selected
        firstEventTime =
            query.since == nil
            ? nil
            : try await database.writer.read { db in
                try Int64.fetchOne(db, sql: "SELECT MIN(COALESCE(time, received)) FROM event")
            }
    }

    /// Where the window's reads start: `lookback` before `--since`, or `nil` for no lower bound
    /// (no `--since`, `lookback` `nil`, or a start before the first event).
    func lowerBound(lookback: Int64?) -> Int64? {
        guard let since = query.since, let lookback else { return nil }
        let bound = since - lookback
        if let firstEventTime, bound <= firstEventTime { return nil }
        return bound
    }

    /// Calls `body` with each event of these names in arrival order (so each session's events come
    /// in `seq` order), from `lookback` before the window (`nil`: from the first event) to its end,
    /// streaming from the statement so memory stays flat however many match. Analyses keep their
    /// state per session or per VM.
    ///
    /// Runs synchronously on the reader: reports are one-shot command-line work. Rows are read with
    /// `sqlite3_column_*`: GRDB's `Row` cost more than SQLite's own work per row (measured).
    func forEachEvent(named names: [String], lookback: Int64? = 0, _ body: (EventRow) throws -> Void) throws {
        let (sql, arguments) = eventQuery(named: names, lookback: lookback)
        try database.writer.read { db in
            try db.forEachRawRow(sql: sql, arguments: arguments) { handle in
                func integer(_ column: Int32) -> Int64? {
                    sqlite3_column_type(handle, column) == SQLITE_NULL ? nil : sqlite3_column_int64(handle, column)
                }
                func text(_ column: Int32) -> String? {
                    guard let pointer = sqlite3_column_text(handle, column) else { return nil }
                    let bytes = UnsafeBufferPointer(start: pointer, count: Int(sqlite3_column_bytes(handle, column)))
                    return String(decoding: bytes, as: UTF8.self)
                }
                try body(
                    EventRow(
                        machineId: sqlite3_column_int64(handle, 0),
                        sessionId: sqlite3_column_int64(handle, 1),
                        name: text(2) ?? "",
                        time: sqlite3_column_int64(handle, 3),
                        guest: integer(4).map { $0 != 0 },
                        reason: text(5),
                        action: text(6),
                        panicType: text(7),
                        panicReason: text(8),
                        panicArg1: text(9)
                    )
                )
            }
        }
    }

    private func eventQuery(named names: [String], lookback: Int64?) -> (String, StatementArguments) {
        // Over the whole history of every VM a scan in rowid order beats an index: the index would
        // find half the table and then sort it by id (measured 1.1 s against 1.9 s for 2M events,
        // with v4's name index).
        let unbounded = lowerBound(lookback: lookback) == nil && selectedIds == nil
        var sql = """
            SELECT machineId, sessionId, name, COALESCE(time, received) AS t, guest, reason, action,
                   panicType, panicReason, panicArg1
            FROM event\(unbounded ? " NOT INDEXED" : "") WHERE name IN (\(placeholders(names.count)))
            """
        var arguments = StatementArguments(names)
        appendFilters(to: &sql, arguments: &arguments, timeExpression: "COALESCE(time, received)", lookback: lookback)
        sql += " ORDER BY id"
        return (sql, arguments)
    }

    /// Sessions of the selected machines that overlap the window, in start order.
    func sessions() async throws -> [Session] {
        var sql = "SELECT * FROM session WHERE startedAt < ? AND (endedAt IS NULL OR endedAt >= ?)"
        var arguments: StatementArguments = [query.end, query.since ?? Int64.min]
        if let selectedIds {
            sql += " AND machineId IN (\(placeholders(selectedIds.count)))"
            arguments += StatementArguments(selectedIds)
        }
        sql += " ORDER BY machineId, startedAt, id"
        let finalSQL = sql
        let finalArguments = arguments
        return try await database.writer.read { db in try Session.fetchAll(db, sql: finalSQL, arguments: finalArguments)
        }
    }

    /// Appends the `--vm` filter and the window (from `lookback` before `--since`; `nil`: no lower
    /// bound) on `timeExpression`.
    func appendFilters(
        to sql: inout String,
        arguments: inout StatementArguments,
        timeExpression: String,
        machineColumn: String = "machineId",
        lookback: Int64? = 0
    ) {
        appendMachineFilter(to: &sql, arguments: &arguments, machineColumn: machineColumn)
        if let bound = lowerBound(lookback: lookback) {
            // Without statistics SQLite cannot tell how much of the history a lower bound keeps, and
            // prefers reading the whole table in id order (no sort) to a range of the time index. A
            // window is nearly always a small part of the history: `likelihood` says so (measured,
            // 2 M events: a day's shutdowns 0.50 s scanning, 0.02 s through the index).
            sql += " AND likelihood(\(timeExpression) >= ?, 0.01)"
            arguments += [bound]
        }
        // Without --until nothing is cut at the end: a host clock ahead of ours must not hide events.
        if let until = query.until {
            sql += " AND \(timeExpression) < ?"
            arguments += [until]
        }
    }

    /// Appends the `--vm` filter alone, for queries that have no event time to bound.
    func appendMachineFilter(to sql: inout String, arguments: inout StatementArguments, machineColumn: String) {
        if let selectedIds {
            sql += " AND \(machineColumn) IN (\(placeholders(selectedIds.count)))"
            arguments += StatementArguments(selectedIds)
        }
    }

    /// How many of the selected VMs' events have an effective time at or after `time` (through the
    /// time index).
    func countEventsStamped(from time: Int64) async throws -> Int64 {
        var sql = "SELECT COUNT(*) FROM event WHERE COALESCE(time, received) >= ?"
        var arguments: StatementArguments = [time]
        appendMachineFilter(to: &sql, arguments: &arguments, machineColumn: "machineId")
        return try await rows(sql: sql, arguments: arguments) { $0[0] as Int64 }.first ?? 0
    }

    /// Runs `sql` on a reader and maps each row, inside the read.
    func rows<T: Sendable>(
        sql: String,
        arguments: StatementArguments,
        _ transform: @escaping @Sendable (Row) throws -> T
    ) async throws -> [T] {
        try await database.writer.read { db in
            var results: [T] = []
            let cursor = try Row.fetchCursor(db, sql: sql, arguments: arguments)
            while let row = try cursor.next() { results.append(try transform(row)) }
            return results
        }
    }

    func name(of machineId: Int64) -> String { machineNames[machineId] ?? "#\(machineId)" }

    /// `?,?,?` for `count` bound values (at least one, so `IN (?)` stays valid SQL).
    func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: max(count, 1)).joined(separator: ",")
    }
}

/// Counts keyed by a tuple of strings, remembering first-seen order for stable output.
struct Tally<Key: Hashable> {
    private(set) var counts: [Key: Int] = [:]
    private(set) var order: [Key] = []

    mutating func add(_ key: Key, _ amount: Int = 1) {
        if counts[key] == nil { order.append(key) }
        counts[key, default: 0] += amount
    }

    subscript(key: Key) -> Int { counts[key] ?? 0 }

    /// Keys by descending count, then first-seen order.
    var sortedKeys: [Key] {
        order.enumerated().sorted { lhs, rhs in
            let (a, b) = (counts[lhs.element] ?? 0, counts[rhs.element] ?? 0)
            return a != b ? a > b : lhs.offset < rhs.offset
        }.map(\.element)
    }
}
