/// An entry of one VM's timeline: an event, or a session's start or end.
protocol TimelineItem {
    var time: Int64 { get }
    /// 0 for a session's start, 1 for an event, 2 for a session's end: at one instant a session
    /// starts before its events and ends after them.
    var rank: UInt8 { get }
    /// Arrival order among events at one instant.
    var order: Int32 { get }
}

extension Array where Element: TimelineItem {
    /// Time order; ties keep the rank, then arrival order.
    mutating func sortInTimeOrder() {
        sort { ($0.time, $0.rank, $0.order) < ($1.time, $1.rank, $1.order) }
    }
}

extension RawRepresentable where RawValue == String {
    /// A class or cause (`guest-poweroff`) as a JSON key or column name (`guest_poweroff`); values
    /// keep the hyphen.
    var key: String { String(rawValue.map { $0 == "-" ? "_" : $0 }) }
}
