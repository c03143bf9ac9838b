public import QMP

/// What the recorder attaches to and how it behaves.
public struct CollectorConfiguration: Sendable {
    /// The monitors to record.
    public var targets: [QMPEndpoint]
    /// Record each target's current connection only: no reconnect; the service returns when all have ended.
    public var once: Bool
    public var client: QMPClientConfiguration
    public var reconnect: ReconnectPolicy
    /// Events received but not yet committed before VM readers wait for the writer. Bounds memory
    /// when the disk is slower than the VMs.
    public var maximumPendingEvents: Int
    /// The wall clock for `received` and session times, in microseconds since the Unix epoch.
    public var now: @Sendable () -> Int64

    public init(
        targets: [QMPEndpoint],
        once: Bool = false,
        client: QMPClientConfiguration = QMPClientConfiguration(),
        reconnect: ReconnectPolicy = ReconnectPolicy(),
        maximumPendingEvents: Int = 50_000,
        now: @escaping @Sendable () -> Int64 = CollectorConfiguration.systemNow
    ) {
        self.targets = targets
        self.once = once
        self.client = client
        self.reconnect = reconnect
        self.maximumPendingEvents = maximumPendingEvents
        self.now = now
    }

    /// The system wall clock in microseconds since the Unix epoch.
    @Sendable public static func systemNow() -> Int64 {
        WallClock.microseconds()
    }
}
