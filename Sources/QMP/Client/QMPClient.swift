import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Connects to QMP monitors, read-only.
///
/// ```swift
/// try await QMPClient.withConnection(to: .unixSocket(path: "/run/qemu/vm1.qmp")) { connection in
///     let status = try await connection.execute(.queryStatus)
///     while let events = try await connection.nextEvents() { … }
/// }
/// ```
public enum QMPClient {
    /// Connects, negotiates capabilities, runs `body`, and closes the connection when `body` returns.
    ///
    /// - Throws: ``QMPError`` `.connectFailed` naming the endpoint and the reason, `.busy` when no
    ///   greeting arrives in time, `.notQMP` when the peer does not speak QMP; anything `body` throws.
    public static func withConnection<Result: Sendable>(
        to endpoint: QMPEndpoint,
        configuration: QMPClientConfiguration = QMPClientConfiguration(),
        _ body: (QMPConnection) async throws -> Result
    ) async throws -> Result {
        let channel = try await inShortLivedTask {
            try await connect(to: endpoint, configuration: configuration, group: MultiThreadedEventLoopGroup.singleton)
        }
        return try await run(channel, endpoint: endpoint, peer: nil, configuration: configuration, body)
    }

    /// Negotiates on an established channel, runs `body`, and closes the channel.
    static func run<Result: Sendable>(
        _ channel: QMPChannel,
        endpoint: QMPEndpoint,
        peer: String?,
        configuration: QMPClientConfiguration,
        _ body: (QMPConnection) async throws -> Result
    ) async throws -> Result {
        try await channel.messages.executeThenClose { inbound, outbound in
            let connection = QMPConnection(
                endpoint: endpoint,
                peer: peer,
                channel: channel.messages.channel,
                batcher: channel.batcher,
                inbound: inbound.makeAsyncIterator(),
                outbound: outbound,
                configuration: configuration
            )
            try await inShortLivedTask(with: connection) { try await $0.negotiate() }
            return try await body(connection)
        }
    }

    /// Sets up the QMP pipeline (framing with the size cap, decoding, batching) on a new channel.
    static func makeMessageChannel(_ channel: any Channel, configuration: QMPClientConfiguration) throws -> QMPChannel {
        // QMP messages are mostly a few hundred bytes, and a connection keeps its receive buffers
        // for its whole life: start reads at 512 bytes instead of NIO's 2 KiB (a thousand quiet
        // VMs), growing to 64 KiB when a flood fills them.
        try channel.syncOptions?.setOption(
            ChannelOptions.recvAllocator,
            value: AdaptiveRecvByteBufferAllocator(minimum: 256, initial: 512, maximum: 65_536)
        )
        try channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(QMPFrameDecoder(maximumMessageSize: configuration.maximumMessageSize))
        )
        let batcher = QMPMessageBatcher(holdsEvents: configuration.deliversEventsToSink)
        try channel.pipeline.syncOperations.addHandler(batcher)
        return QMPChannel(
            messages: try MessageChannel(wrappingChannelSynchronously: channel),
            batcher: NIOLoopBound(batcher, eventLoop: channel.eventLoop)
        )
    }

    typealias MessageChannel = NIOAsyncChannel<[QMPMessage], ByteBuffer>

    /// A channel with the QMP pipeline: its async side, and the batcher a sink is installed on.
    struct QMPChannel: Sendable {
        let messages: MessageChannel
        let batcher: NIOLoopBound<QMPMessageBatcher>
    }

    static func connect(
        to endpoint: QMPEndpoint,
        configuration: QMPClientConfiguration,
        group: any EventLoopGroup
    ) async throws(QMPError) -> QMPChannel {
        if case .unixSocket(let path) = endpoint { try checkSocketPath(path) }
        let bootstrap = ClientBootstrap(group: group).connectTimeout(.seconds(10))
        let initializer: @Sendable (any Channel) -> EventLoopFuture<QMPChannel> = { channel in
            channel.eventLoop.makeCompletedFuture {
                try makeMessageChannel(channel, configuration: configuration)
            }
        }
        do {
            switch endpoint {
            case .unixSocket(let path):
                return try await bootstrap.connect(unixDomainSocketPath: path, channelInitializer: initializer)
            case .tcp(let host, let port):
                return try await bootstrap.connect(host: host, port: port, channelInitializer: initializer)
            }
        } catch {
            throw QMPError(
                code: .connectFailed,
                message: "cannot connect to \(endpoint): \(describeConnectError(error))",
                cause: error
            )
        }
    }

    /// Turns the common failures into sentences before NIO reports them as bare errno values.
    static func checkSocketPath(_ path: String) throws(QMPError) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let reason = errno == ENOENT ? "no such file" : String(cString: strerror(errno))
            throw QMPError(code: .connectFailed, message: "cannot connect to unix:\(path): \(reason)")
        }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw QMPError(code: .connectFailed, message: "cannot connect to unix:\(path): not a socket")
        }
    }

    static func describeConnectError(_ error: any Error) -> String {
        if let ioError = error as? IOError {
            switch ioError.errnoCode {
            case ECONNREFUSED: return "connection refused (no QEMU is listening on it; stale socket?)"
            case EACCES, EPERM: return "permission denied"
            case ENOENT: return "no such file"
            default: return String(cString: strerror(ioError.errnoCode))
            }
        }
        return "\(error)"
    }
}

/// One negotiated QMP connection. Use it only inside ``QMPClient/withConnection(to:configuration:_:)``.
///
/// Commands run one at a time; their replies are matched by `id`. Events that arrive while a
/// command waits for its reply are kept, in order, for ``nextEvents()``.
public final class QMPConnection {
    public let endpoint: QMPEndpoint
    /// Who connected, for accepted connections (`pid 1234 uid 64055`); `nil` for outgoing ones.
    public let peer: String?
    /// The greeting the server sent.
    public private(set) var greeting = QMPGreeting(major: 0, minor: 0, micro: 0, package: "", capabilities: [])

    private let channel: any Channel
    private let batcher: NIOLoopBound<QMPMessageBatcher>
    private var inbound: NIOAsyncChannelInboundStream<[QMPMessage]>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private let configuration: QMPClientConfiguration
    private var stateMachine = QMPClientStateMachine()
    private var pending: ArraySlice<QMPMessage> = []
    private var bufferedEvents: [QMPEvent] = []

    init(
        endpoint: QMPEndpoint,
        peer: String?,
        channel: any Channel,
        batcher: NIOLoopBound<QMPMessageBatcher>,
        inbound: NIOAsyncChannelInboundStream<[QMPMessage]>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        configuration: QMPClientConfiguration
    ) {
        self.endpoint = endpoint
        self.peer = peer
        self.channel = channel
        self.batcher = batcher
        self.inbound = inbound
        self.outbound = outbound
        self.configuration = configuration
    }

    func negotiate() async throws {
        let busy = QMPError(
            code: .busy,
            message: "\(endpoint) accepted the connection but sent no QMP greeting within "
                + "\(configuration.greetingTimeout): another client probably holds this monitor "
                + "(QEMU serves one at a time), or the peer is not QMP"
        )
        try await withDeadline(configuration.greetingTimeout, expiry: busy) {
            while true {
                guard let message = try await nextMessage() else {
                    throw QMPError(
                        code: .connectionClosed,
                        message: "\(endpoint) closed the connection before greeting"
                    )
                }
                switch try stateMachine.receive(message) {
                case .sendCapabilities(let greeting, let id):
                    self.greeting = greeting
                    try await write(.capabilities, id: id)
                case .ready:
                    return
                case .deliver(let event):
                    bufferedEvents.append(event)
                case .reply, .commandFailed, .ignore:
                    continue
                }
            }
        }
    }

    /// Sends a `query-*` command and waits for its reply.
    ///
    /// QEMU answers behind the events it has already queued, so a VM in an event storm answers late:
    /// the reply timeout counts only time in which nothing arrives (or in which reading is paused
    /// while a sink catches up).
    ///
    /// - Returns: the reply's `return` value.
    /// - Throws: ``QMPError`` `.commandFailed` with QEMU's class and desc when QEMU answers with an error;
    ///   `.connectionClosed` when the peer leaves first.
    public func execute(_ command: QMPCommand) async throws -> JSONValue {
        let id = try stateMachine.send(command)
        let timeout = QMPError(
            code: .replyTimeout,
            message: "\(endpoint) did not answer '\(command.name)': it sent nothing for \(configuration.replyTimeout)"
        )
        return try await withDeadline(configuration.replyTimeout, expiry: timeout, extendedByProgress: true) {
            try await write(command, id: id)
            while true {
                guard let message = try await nextMessage() else {
                    throw QMPError(
                        code: .connectionClosed,
                        message: "\(endpoint) closed the connection before answering '\(command.name)'"
                    )
                }
                switch try stateMachine.receive(message) {
                case .reply(let result):
                    return result
                case .commandFailed(let name, let errorClass, let desc):
                    throw QMPError.commandFailed(command: name, class: errorClass, desc: desc)
                case .deliver(let event):
                    bufferedEvents.append(event)
                case .sendCapabilities, .ready, .ignore:
                    continue
                }
            }
        }
    }

    /// Sends every event from now on to `sink`, on the event loop, starting with the events held
    /// since the greeting (with ``QMPClientConfiguration/deliversEventsToSink``; events already
    /// returned by ``nextEvents()`` or buffered for it are not repeated: take those first).
    public func deliverEvents(to sink: any QMPEventSink) async throws {
        let batcher = self.batcher
        try await channel.eventLoop.submit { batcher.value.install(sink) }.get()
    }

    /// Stops reading for good and hands the sink every event already read from the socket. Call it
    /// before ending a session early (a graceful stop): nothing read is lost, and what is left unread
    /// stays with the peer.
    public func stopReading() async {
        let batcher = self.batcher
        try? await channel.eventLoop.submit { batcher.value.stop() }.get()
    }

    /// Waits until the peer closes the connection, when events go to a sink.
    ///
    /// - Throws: ``QMPError`` for a malformed or oversized message; the connection is unusable after it.
    public func waitUntilClosed() async throws {
        while try await nextEvents() != nil {}
    }

    /// The next events, in arrival order, as many as one socket read brought; `nil` once the peer has
    /// closed the connection. With ``QMPClientConfiguration/deliversEventsToSink`` events go to the
    /// sink instead, and this returns `nil` at the end (or throws why the connection failed).
    ///
    /// - Throws: ``QMPError`` for a malformed or oversized message; the connection is unusable after it.
    public func nextEvents() async throws -> [QMPEvent]? {
        if !bufferedEvents.isEmpty {
            defer { bufferedEvents.removeAll() }
            return bufferedEvents
        }
        while true {
            if pending.isEmpty {
                guard let batch = try await inbound.next() else { return nil }
                pending = batch[...]
            }
            var events: [QMPEvent] = []
            events.reserveCapacity(pending.count)
            for message in pending {
                if case .deliver(let event) = try stateMachine.receive(message) { events.append(event) }
            }
            pending = []
            if !events.isEmpty { return events }
        }
    }

    private func nextMessage() async throws -> QMPMessage? {
        if pending.isEmpty {
            guard let batch = try await inbound.next() else { return nil }
            pending = batch[...]
        }
        return pending.popFirst()
    }

    private func write(_ command: QMPCommand, id: Int) async throws {
        let text = try command.wireText(id: id)
        try await outbound.write(ByteBuffer(string: text))
    }

    /// Runs `body`; if it is still running after `duration`, closes the channel and throws `expiry`.
    ///
    /// - Parameter extendedByProgress: count `duration` from the peer's last progress (see
    ///   `QMPMessageBatcher.lastProgress`) instead of from now.
    private func withDeadline<T>(
        _ duration: Duration,
        expiry: QMPError,
        extendedByProgress: Bool = false,
        _ body: () async throws -> T
    ) async throws -> T {
        let channel = self.channel
        let batcher = self.batcher
        let eventLoop = channel.eventLoop
        let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        let timeout = TimeAmount.nanoseconds(nanoseconds)
        let flag = ExpiryFlag()
        let timer = NIOLoopBoundBox.makeEmptyBox(valueType: Scheduled<Void>.self, eventLoop: eventLoop)
        @Sendable func arm(_ deadline: NIODeadline) {
            timer.value = eventLoop.scheduleTask(deadline: deadline) {
                guard !flag.isSettled else { return }
                let extended = batcher.value.lastProgress + timeout
                if extendedByProgress, extended > .now() { return arm(extended) }
                if flag.expire() { channel.close(promise: nil) }
            }
        }
        eventLoop.execute { arm(.now() + timeout) }
        defer { eventLoop.execute { timer.value?.cancel() } }
        do {
            let result = try await body()
            // The timer may have closed the channel as the body finished: then the wait failed.
            guard flag.finish() else { throw expiry }
            return result
        } catch {
            if !flag.finish() { throw expiry }
            throw error
        }
    }
}

/// Settles a deadline once: either the wait finished, or the timer expired it (and closes the
/// channel). Whichever comes second learns it lost.
private final class ExpiryFlag: Sendable {
    private enum State: UInt8 { case waiting, finished, expired }
    private let state = Atomic<UInt8>(State.waiting.rawValue)

    /// - Returns: whether the deadline expired now (not after the wait finished).
    func expire() -> Bool {
        state.compareExchange(
            expected: State.waiting.rawValue,
            desired: State.expired.rawValue,
            ordering: .sequentiallyConsistent
        ).exchanged
    }

    /// - Returns: whether the wait finished before the deadline expired.
    func finish() -> Bool {
        state.compareExchange(
            expected: State.waiting.rawValue,
            desired: State.finished.rawValue,
            ordering: .sequentiallyConsistent
        ).exchanged
            || state.load(ordering: .sequentiallyConsistent) == State.finished.rawValue
    }

    var isSettled: Bool { state.load(ordering: .sequentiallyConsistent) != State.waiting.rawValue }
}
