/// The event table's columns: the one list the statements that insert and read events are built
/// from, so that no statement names or counts them by hand.
enum EventColumn: String, CaseIterable {
    case id, sessionId, machineId, seq, name, seconds, microseconds, time, received, guest, reason, action
    case panicType, panicReason, panicArg1, data

    /// The columns an insert sets, in its parameter order (SQLite assigns `id`).
    static let inserted = allCases.filter { $0 != .id }

    /// `INSERT INTO event (sessionId, …, data) VALUES (?, …, ?)`.
    static let insertSQL =
        "INSERT INTO event (\(inserted.map(\.rawValue).joined(separator: ", "))) "
        + "VALUES (\(EventSQL.placeholders(inserted.count)))"

    /// This column's 1-based parameter in ``insertSQL``.
    var insertParameter: Int32 { Int32((Self.inserted.firstIndex(of: self) ?? -1) + 1) }
}

/// A SELECT list over the event table — columns, and the effective time — and where each item
/// lands in a result row, so that readers ask for a column by name, not by position.
struct EventSelectList {
    enum Item: Hashable {
        case column(EventColumn)
        /// ``EventSQL/effectiveTime``.
        case effectiveTime
    }

    let items: [Item]

    init(_ items: [Item]) { self.items = items }

    init(columns: [EventColumn]) { self.items = columns.map(Item.column) }

    /// The list as SQL: `machineId, sessionId, COALESCE(time, received), …`.
    var sql: String {
        items.map { item in
            switch item {
            case .column(let column): column.rawValue
            case .effectiveTime: EventSQL.effectiveTime
            }
        }.joined(separator: ", ")
    }

    /// The 0-based result column of `item` (look it up once per statement, not per row).
    func position(_ item: Item) -> Int32 { Int32(items.firstIndex(of: item) ?? -1) }

    func position(_ column: EventColumn) -> Int32 { position(.column(column)) }
}
