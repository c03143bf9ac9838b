import GRDB
import GRDBSQLite

/// The reads reports are computed from, named by what they return. Every statement binds its
/// values; none is built from input.
extension EventDatabase {
    /// The earliest effective event time (one seek in the time index), or `nil` without events.
    public func firstEventTime() async throws -> Int64? {
        try await writer.read { db in
            try Int64.fetchOne(db, sql: "SELECT MIN(\(EventSQL.effectiveTime)) FROM event")
        }
    }

    /// Calls `body` with the events of these names in `selection`, a batch at a time, in arrival
    /// order (so each session's events come in `seq` order), streaming from the statement so memory
    /// stays flat however many match. Batches, not single events: a call per row across the module
    /// boundary cost the scans up to a tenth of their time (BENCHMARKS.md section 4).
    ///
    /// Runs synchronously on a reader: reports are one-shot command-line work. Rows are read with
    /// `sqlite3_column_*`: GRDB's `Row` cost more than SQLite's own work per row (measured).
    public func forEachEvent(
        named names: [String],
        in selection: EventSelection,
        _ body: ([EventFacts]) throws -> Void
    ) throws {
        // Over the whole history of every VM a scan in rowid order beats an index: the index would
        // find half the table and then sort it by id (measured 1.1 s against 1.9 s for 2 M events).
        let unbounded = selection.from == nil && selection.machineIds == nil
        let list = EventSelectList([
            .column(.machineId), .column(.sessionId), .column(.name), .effectiveTime, .column(.guest),
            .column(.reason), .column(.action), .column(.panicType), .column(.panicReason), .column(.panicArg1),
        ])
        let (machineId, sessionId, name, time) = (
            list.position(.machineId), list.position(.sessionId), list.position(.name), list.position(.effectiveTime)
        )
        let (guest, reason, action) = (list.position(.guest), list.position(.reason), list.position(.action))
        let (panicType, panicReason, panicArg1) = (
            list.position(.panicType), list.position(.panicReason), list.position(.panicArg1)
        )
        var sql = """
            SELECT \(list.sql)
            FROM event\(unbounded ? " NOT INDEXED" : "") WHERE name IN (\(EventSQL.placeholders(names.count)))
            """
        var arguments = StatementArguments(names)
        EventSQL.append(selection, to: &sql, arguments: &arguments)
        sql += " ORDER BY id"
        let finalSQL = sql
        let finalArguments = arguments
        try writer.read { db in
            var batch: [EventFacts] = []
            batch.reserveCapacity(Self.eventBatch)
            try db.forEachRawRow(sql: finalSQL, arguments: finalArguments) { handle in
                func integer(_ column: Int32) -> Int64? {
                    sqlite3_column_type(handle, column) == SQLITE_NULL ? nil : sqlite3_column_int64(handle, column)
                }
                func text(_ column: Int32) -> String? {
                    guard let pointer = sqlite3_column_text(handle, column) else { return nil }
                    let bytes = UnsafeBufferPointer(start: pointer, count: Int(sqlite3_column_bytes(handle, column)))
                    return String(decoding: bytes, as: UTF8.self)
                }
                batch.append(
                    EventFacts(
                        machineId: sqlite3_column_int64(handle, machineId),
                        sessionId: sqlite3_column_int64(handle, sessionId),
                        name: text(name) ?? "",
                        time: sqlite3_column_int64(handle, time),
                        guest: integer(guest).map { $0 != 0 },
                        reason: text(reason),
                        action: text(action),
                        panicType: text(panicType),
                        panicReason: text(panicReason),
                        panicArg1: text(panicArg1)
                    )
                )
                if batch.count == Self.eventBatch {
                    try body(batch)
                    batch.removeAll(keepingCapacity: true)
                }
            }
            if !batch.isEmpty { try body(batch) }
        }
    }

    /// Events handed over at once by ``forEachEvent(named:in:_:)``.
    static let eventBatch = 512

    /// Sessions of these VMs (`nil`: all) that overlap [`from`, `until`), in VM, start order: the
    /// time qmplog watched (imported history is no observation, see ``importHistory(_:importedAt:)``).
    public func sessions(overlappingFrom from: Int64?, until: Int64, machineIds: [Int64]?) async throws -> [Session] {
        var sql = "SELECT * FROM session WHERE startedAt < ? AND (endedAt IS NULL OR endedAt >= ?)"
        if knowsImports { sql += " AND source IS NULL" }
        var arguments: StatementArguments = [until, from ?? Int64.min]
        EventSQL.appendMachines(machineIds, to: &sql, arguments: &arguments, column: "machineId")
        sql += " ORDER BY machineId, startedAt, id"
        let finalSQL = sql
        let finalArguments = arguments
        return try await writer.read { db in try Session.fetchAll(db, sql: finalSQL, arguments: finalArguments) }
    }

    /// The sessions a count up to `cut` may continue after it: not ended by `cut` by the recorder's
    /// clock, or holding an event stamped at or after `cut` by QEMU's (the two clocks differ: a
    /// session opened after the cut can hold events QEMU stamped before it).
    package func sessionIds(continuingAfter cut: Int64) async throws -> Set<Int64> {
        try await writer.read { db in
            Set(
                try Int64.fetchAll(
                    db,
                    sql: """
                        SELECT id FROM session WHERE endedAt IS NULL OR endedAt > ?
                        UNION SELECT DISTINCT sessionId FROM event WHERE \(EventSQL.effectiveTime) >= ?
                        """,
                    arguments: [cut, cut]
                )
            )
        }
    }

    /// How many of these VMs' events have an effective time at or after `time` (through the time index).
    public func countEvents(stampedFrom time: Int64, machineIds: [Int64]?) async throws -> Int64 {
        var sql = "SELECT COUNT(*) FROM event WHERE \(EventSQL.effectiveTime) >= ?"
        var arguments: StatementArguments = [time]
        EventSQL.appendMachines(machineIds, to: &sql, arguments: &arguments, column: "machineId")
        let finalSQL = sql
        let finalArguments = arguments
        return try await writer.read { db in try Int64.fetchOne(db, sql: finalSQL, arguments: finalArguments) ?? 0 }
    }

    /// Event counts per VM and name in `selection`, from `since` on (`nil`: from the first event).
    /// From a time, a range of the (machine, time) index per VM; from the first event, one pass in
    /// rowid order (measured 2.1 s against 7.5 s over 2 M events).
    public func countEventsPerMachineAndName(
        since: Int64?,
        in selection: EventSelection
    ) async throws -> [(machineId: Int64, name: String, count: Int64)] {
        var sql: String
        var arguments = StatementArguments()
        if let since {
            sql = """
                SELECT machineId, name, COUNT(*) FROM event
                WHERE machineId IN (SELECT id FROM machine) AND \(EventSQL.effectiveTime) >= ?
                """
            arguments += [since]
        } else {
            sql = "SELECT machineId, name, COUNT(*) FROM event NOT INDEXED WHERE 1"
        }
        EventSQL.append(selection, to: &sql, arguments: &arguments)
        sql += " GROUP BY machineId, name"
        return try await rows(sql: sql, arguments: arguments) { (machineId: $0[0], name: $0[1], count: $0[2]) }
    }

    /// Each of these VMs' first and last event time over the whole history: two seeks in the
    /// (machine, time) index per VM. VMs without events are left out.
    public func eventBounds(machineIds: [Int64]?) async throws -> [Int64: (first: Int64, last: Int64)] {
        var sql = """
            SELECT id,
                   (SELECT MIN(\(EventSQL.effectiveTime)) FROM event WHERE machineId = machine.id),
                   (SELECT MAX(\(EventSQL.effectiveTime)) FROM event WHERE machineId = machine.id)
            FROM machine WHERE 1
            """
        var arguments = StatementArguments()
        EventSQL.appendMachines(machineIds, to: &sql, arguments: &arguments, column: "id")
        let rows = try await rows(sql: sql, arguments: arguments) { ($0[0] as Int64, $0[1] as Int64?, $0[2] as Int64?) }
        var bounds: [Int64: (first: Int64, last: Int64)] = [:]
        for row in rows {
            if let first = row.1, let last = row.2 { bounds[row.0] = (first, last) }
        }
        return bounds
    }

    /// Event counts by name in `selection`, largest first (then by name).
    ///
    /// Counted here rather than with `GROUP BY`: SQLite groups by sorting every row, and no index is
    /// in name order (schema v5), while the names come straight from the time index. QEMU has a
    /// few dozen event names, so a list searched by their bytes beats hashing a `String` per row.
    public func countEventsByName(in selection: EventSelection) async throws -> [(name: String, count: Int64)] {
        var sql = "SELECT name FROM event WHERE 1"
        var arguments = StatementArguments()
        EventSQL.append(selection, to: &sql, arguments: &arguments)
        let finalSQL = sql
        let finalArguments = arguments
        let counts = try await writer.read { db in
            var counts: [(name: [UInt8], count: Int64)] = []
            try db.forEachRawRow(sql: finalSQL, arguments: finalArguments) { handle in
                let name = UnsafeBufferPointer(
                    start: sqlite3_column_text(handle, 0),
                    count: Int(sqlite3_column_bytes(handle, 0))
                )
                if let index = counts.firstIndex(where: { $0.name.elementsEqual(name) }) {
                    counts[index].count += 1
                } else {
                    counts.append((Array(name), 1))
                }
            }
            return counts
        }
        return counts.map { (name: String(decoding: $0.name, as: UTF8.self), count: $0.count) }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.name < $1.name }
    }

    /// Per VM in `selection`: its event count, first and last event time.
    public func eventSpans(in selection: EventSelection) async throws -> [Int64: (
        count: Int64, first: Int64, last: Int64
    )] {
        var sql = """
            SELECT machineId, COUNT(*), MIN(\(EventSQL.effectiveTime)), MAX(\(EventSQL.effectiveTime))
            FROM event WHERE 1
            """
        var arguments = StatementArguments()
        EventSQL.append(selection, to: &sql, arguments: &arguments)
        sql += " GROUP BY machineId"
        let rows = try await rows(sql: sql, arguments: arguments) { row in
            (row[0] as Int64, row[1] as Int64, row[2] as Int64, row[3] as Int64)
        }
        var spans: [Int64: (count: Int64, first: Int64, last: Int64)] = [:]
        for row in rows { spans[row.0] = (row.1, row.2, row.3) }
        return spans
    }

    /// Event counts per bucket of `length` microseconds (starting at `origin` plus multiples) in
    /// `selection`, in time order, counted by SQLite.
    public func countEventsPerBucket(
        origin: Int64,
        length: Int64,
        in selection: EventSelection
    ) async throws -> [(bucket: Int64, count: Int64)] {
        var sql = "SELECT ((\(EventSQL.effectiveTime) - ?) / ?) * ? + ? AS bucket, COUNT(*) FROM event WHERE 1"
        var arguments: StatementArguments = [origin, length, length, origin]
        EventSQL.append(selection, to: &sql, arguments: &arguments)
        sql += " GROUP BY bucket ORDER BY bucket"
        return try await rows(sql: sql, arguments: arguments) { (bucket: $0[0], count: $0[1]) }
    }

    /// Runs `sql` on a reader and maps each row, inside the read.
    private func rows<T: Sendable>(
        sql: String,
        arguments: StatementArguments,
        _ transform: @escaping @Sendable (Row) throws -> T
    ) async throws -> [T] {
        try await writer.read { db in
            var results: [T] = []
            let cursor = try Row.fetchCursor(db, sql: sql, arguments: arguments)
            while let row = try cursor.next() { results.append(try transform(row)) }
            return results
        }
    }
}
