/// Limits and timeouts of one QMP connection.
public struct QMPClientConfiguration: Sendable {
    /// The largest message accepted; a longer one ends the connection with `.messageTooLarge`.
    public var maximumMessageSize: Int
    /// How long to wait for the greeting after connecting. A monitor held by another client
    /// accepts the connection but stays silent, so this is how "busy" is detected.
    public var greetingTimeout: Duration
    /// How long to wait for the reply to one command.
    public var replyTimeout: Duration
    /// Events after the greeting wait for a sink (``QMPConnection/deliverEvents(to:)``) instead of
    /// coming from ``QMPConnection/nextEvents()``, which then only reports the connection's end.
    public var deliversEventsToSink: Bool

    public init(
        maximumMessageSize: Int = 16 << 20,
        greetingTimeout: Duration = .seconds(5),
        replyTimeout: Duration = .seconds(10),
        deliversEventsToSink: Bool = false
    ) {
        self.deliversEventsToSink = deliversEventsToSink
        self.maximumMessageSize = maximumMessageSize
        self.greetingTimeout = greetingTimeout
        self.replyTimeout = replyTimeout
    }
}
