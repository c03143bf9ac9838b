import NIOCore

/// Decodes each frame into a ``QMPMessage`` and passes them on as one array per socket read.
///
/// Handing a batch to the async consumer per read instead of one message at a time keeps the
/// per-message cost of crossing into Swift concurrency out of the hot path during floods.
///
/// When it holds events (``QMPClientConfiguration/deliversEventsToSink``), events after the greeting
/// do not go to the async consumer: they wait here until a ``QMPEventSink`` is installed, then go
/// to it straight from the event loop, per read.
///
/// ``stop()`` ends reading for good and hands the sink what was read: a recorder that stops keeps
/// every event it took off the socket.
final class QMPMessageBatcher: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = [QMPMessage]

    private var batch: [QMPMessage] = []
    private let holdsEvents: Bool
    private var seenGreeting = false
    private var held: [QMPEvent] = []
    /// The UTF-8 bytes of the held events' names and `data`.
    private var heldBytes = 0
    private var sink: (any QMPEventSink)?
    private var channel: (any Channel)?
    /// Reading stopped: the sink asked for it, or too many events wait for a sink.
    private var paused = false
    /// Reading stopped for good (``stop()``): a sink's resume no longer turns it on.
    private var stopped = false
    /// When the last socket read ended: a peer that sends anything is alive (see ``lastProgress``).
    private var lastRead = NIODeadline.now()

    /// Events, or bytes of events, held for a sink not yet installed beyond which the socket is no
    /// longer read.
    static let maximumHeld = 10_000
    static let maximumHeldBytes = 8 << 20

    init(holdsEvents: Bool = false) {
        self.holdsEvents = holdsEvents
    }

    func handlerAdded(context: ChannelHandlerContext) {
        channel = context.channel
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        channel = nil
    }

    /// Installs `sink` and hands it the events held so far, also after the channel closed. Call on
    /// the channel's event loop.
    func install(_ sink: any QMPEventSink) {
        self.sink = sink
        let wasPaused = paused
        deliverHeld()
        if wasPaused, !paused { setReading(true) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        do {
            let message = try frame.withUnsafeReadableBytes { bytes in try QMPMessage(frame: bytes) }
            switch message {
            case .event(let event) where holdsEvents && seenGreeting:
                held.append(event)
                heldBytes += event.name.utf8.count + (event.dataText?.utf8.count ?? 0)
                if sink == nil, held.count >= Self.maximumHeld || heldBytes >= Self.maximumHeldBytes, !paused {
                    setReading(false)
                }
            case .greeting:
                seenGreeting = true
                batch.append(message)
            default:
                batch.append(message)
            }
        } catch {
            flush(context: context)
            context.fireErrorCaught(error)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        lastRead = .now()
        flush(context: context)
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        flush(context: context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Deliver what decoded cleanly before the failure, then the failure.
        flush(context: context)
        context.fireErrorCaught(error)
    }

    private func flush(context: ChannelHandlerContext) {
        // Events first: the async side may be waiting for EOF to end the session.
        deliverHeld()
        guard !batch.isEmpty else { return }
        let messages = batch
        batch.removeAll(keepingCapacity: true)
        context.fireChannelRead(Self.wrapInboundOut(messages))
    }

    /// Stops reading the socket for good and hands the sink every event read so far. Call on the
    /// channel's event loop; no read follows.
    func stop() {
        stopped = true
        setReading(false)
        deliverHeld()
    }

    /// The latest moment the peer can be said to have been making progress: the end of its last
    /// read, or now while reading is paused on our side (the peer is not the one who is slow).
    var lastProgress: NIODeadline {
        paused && !stopped ? .now() : lastRead
    }

    private func deliverHeld() {
        guard let sink, !held.isEmpty else { return }
        let events = held
        held.removeAll(keepingCapacity: true)
        heldBytes = 0
        if !stopped { paused = false }
        guard !sink.receive(events, resume: resumer()) else { return }
        setReading(false)
    }

    /// A closure that turns reading back on, from any thread.
    private func resumer() -> @Sendable () -> Void {
        guard let eventLoop = channel?.eventLoop else { return {} }
        let batcher = NIOLoopBound(self, eventLoop: eventLoop)
        return { eventLoop.execute { batcher.value.setReading(true) } }
    }

    private func setReading(_ on: Bool) {
        if on, stopped { return }
        paused = !on
        channel?.setOption(ChannelOptions.autoRead, value: on).whenFailure { _ in }
    }
}
