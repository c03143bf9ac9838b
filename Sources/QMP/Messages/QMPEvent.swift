/// An asynchronous event: `{"event": NAME, "data": {…}, "timestamp": {"seconds": S, "microseconds": U}}`.
///
/// The timestamp is QEMU's host wall clock: it may be `-1/-1` and may step backwards, so both parts
/// are signed and kept as sent. ``dataText`` is the `data` member exactly as it appeared on the wire.
public struct QMPEvent: Sendable, Hashable {
    public var name: String
    public var seconds: Int64
    public var microseconds: Int64
    /// The `data` member, or `nil` when QEMU sent none (STOP, RESUME, POWERDOWN, …).
    public var data: JSONValue?
    /// The `data` member's JSON text verbatim, or `nil` when absent.
    public var dataText: String?

    public init(name: String, seconds: Int64, microseconds: Int64, data: JSONValue?, dataText: String?) {
        self.name = name
        self.seconds = seconds
        self.microseconds = microseconds
        self.data = data
        self.dataText = dataText
    }
}
