import GRDB

/// The SQL text reads share, written once.
enum EventSQL {
    /// An event's effective time: QEMU's timestamp, else the receive time. The time indexes are built
    /// on this very text (migrations v2, v4 and v5): SQLite uses an expression index only for a query
    /// that spells the expression the same way.
    static let effectiveTime = "COALESCE(time, received)"

    /// `?,?,?` for `count` bound values (at least one, so `IN (?)` stays valid SQL).
    static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: max(count, 1)).joined(separator: ",")
    }

    /// Appends `selection`'s VMs (on `machineColumn`) and window (on the effective time) to a
    /// statement whose WHERE clause is open.
    static func append(
        _ selection: EventSelection,
        to sql: inout String,
        arguments: inout StatementArguments,
        machineColumn: String = "machineId"
    ) {
        appendMachines(selection.machineIds, to: &sql, arguments: &arguments, column: machineColumn)
        if let from = selection.from {
            // Without statistics SQLite cannot tell how much of the history a lower bound keeps, and
            // prefers reading the whole table in id order (no sort) to a range of the time index. A
            // window is nearly always a small part of the history: `likelihood` says so (BENCHMARKS.md
            // section 3).
            sql += " AND likelihood(\(effectiveTime) >= ?, 0.01)"
            arguments += [from]
        }
        if let until = selection.until {
            sql += " AND \(effectiveTime) < ?"
            arguments += [until]
        }
    }

    static func appendMachines(
        _ ids: [Int64]?,
        to sql: inout String,
        arguments: inout StatementArguments,
        column: String
    ) {
        guard let ids else { return }
        sql += " AND \(column) IN (\(placeholders(ids.count)))"
        arguments += StatementArguments(ids)
    }
}
