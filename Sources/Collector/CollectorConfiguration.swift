package import Health
public import QMP

/// What the recorder attaches to and how it behaves.
public struct CollectorConfiguration: Sendable {
    /// The monitors to dial and record.
    public var targets: [QMPEndpoint]
    /// Unix socket paths to listen on for QEMU to connect out to.
    public var listenPaths: [String]
    /// Who may connect to them (see ``QMPListenerAccess``).
    public var listenAccess: QMPListenerAccess
    /// libvirt daemons (`qemu:///system`) whose domains are recorded through libvirt's QMP passthrough.
    public var libvirtURIs: [String]
    /// Directories whose matching sockets are recorded as they appear.
    public var watchDirectories: [WatchedDirectory]
    /// How often watched directories are scanned.
    public var watchInterval: Duration
    /// Record each target's current connection only: no reconnect; the service returns when all have ended.
    /// (Listening and watching run until the service is stopped.)
    public var once: Bool
    public var client: QMPClientConfiguration
    public var reconnect: ReconnectPolicy
    /// Events received but not yet committed before VM readers wait for the writer. Bounds memory
    /// when the disk is slower than the VMs.
    public var maximumPendingEvents: Int
    /// The same bound on the UTF-8 bytes of those events' `data`, for when events are large.
    public var maximumPendingBytes: Int
    /// Monitors attaching at once — dialled, found in a watched directory or accepted on a listener
    /// (connect, handshake, session row; the identification queries follow outside the limit, since a
    /// VM in a storm answers them late); the others wait for a place. Bounds the memory of starting a large fleet (see ``AttachLimiter``).
    public var maximumConcurrentAttaches: Int
    /// The wall clock for `received` and session times, in microseconds since the Unix epoch.
    public var now: @Sendable () -> Int64
    /// Called after each commit of events and session ends, on the writer's task: it must return
    /// at once.
    public var onCommit: (@Sendable () -> Void)?
    /// Where the recorder counts its commits, monitors and refusals (`/metrics` of `record --http`).
    package var health = RecorderHealth()

    public init(
        targets: [QMPEndpoint],
        listenPaths: [String] = [],
        listenAccess: QMPListenerAccess = QMPListenerAccess(),
        libvirtURIs: [String] = [],
        watchDirectories: [WatchedDirectory] = [],
        watchInterval: Duration = .seconds(1),
        once: Bool = false,
        client: QMPClientConfiguration = QMPClientConfiguration(),
        reconnect: ReconnectPolicy = ReconnectPolicy(),
        maximumPendingEvents: Int = 10_000,
        maximumPendingBytes: Int = 8 << 20,
        maximumConcurrentAttaches: Int = 64,
        now: @escaping @Sendable () -> Int64 = CollectorConfiguration.systemNow
    ) {
        self.targets = targets
        self.listenPaths = listenPaths
        self.listenAccess = listenAccess
        self.libvirtURIs = libvirtURIs
        self.watchDirectories = watchDirectories
        self.watchInterval = watchInterval
        self.once = once
        // The recorder takes events in the pipeline (see SessionEventSink), not from the async stream.
        self.client = client
        self.client.deliversEventsToSink = true
        self.reconnect = reconnect
        self.maximumPendingEvents = maximumPendingEvents
        self.maximumPendingBytes = maximumPendingBytes
        self.maximumConcurrentAttaches = maximumConcurrentAttaches
        self.now = now
    }

    /// The system wall clock in microseconds since the Unix epoch.
    @Sendable public static func systemNow() -> Int64 {
        WallClock.microseconds()
    }
}
