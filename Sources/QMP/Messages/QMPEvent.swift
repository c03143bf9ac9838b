/// An asynchronous event: `{"event": NAME, "data": {…}, "timestamp": {"seconds": S, "microseconds": U}}`.
///
/// The timestamp is QEMU's host wall clock: it may be `-1/-1` and may step backwards, so both parts
/// are signed and kept as sent. ``dataText`` is the `data` member exactly as it appeared on the wire;
/// ``runState`` holds the few fields of it that reports group on.
public struct QMPEvent: Sendable, Hashable {
    public var name: String
    public var seconds: Int64
    public var microseconds: Int64
    /// The `data` member's JSON text verbatim, or `nil` when QEMU sent none (STOP, RESUME, POWERDOWN, …).
    public var dataText: String?
    /// The run-state fields read from `data`; all `nil` when `data` is absent.
    public var runState: QMPRunStateFields

    public init(name: String, seconds: Int64, microseconds: Int64, dataText: String?, runState: QMPRunStateFields) {
        self.name = name
        self.seconds = seconds
        self.microseconds = microseconds
        self.dataText = dataText
        self.runState = runState
    }

    /// An event whose run-state fields are read from `data`.
    public init(name: String, seconds: Int64, microseconds: Int64, data: JSONValue?, dataText: String?) {
        self.init(
            name: name,
            seconds: seconds,
            microseconds: microseconds,
            dataText: dataText,
            runState: QMPRunStateFields(event: name, data: data)
        )
    }

    /// The `data` member as a value, parsed from ``dataText``.
    public var data: JSONValue? {
        guard let dataText else { return nil }
        return try? JSONValue(parsing: Array(dataText.utf8))
    }
}
