import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// What one HTTP client may hold of the process that serves it, the recorder's above all: its
/// descriptors (a capped number of connections, ``HTTPConnectionTracker``) and its time (idle
/// connections closed, a response nobody reads abandoned).
package enum HTTPConnectionLimits {
    /// A connection that has sent no complete request for this long is closed (nginx's
    /// client_header_timeout and keepalive_timeout are 60 s and 75 s).
    static let idleTimeout: TimeAmount = .seconds(30)
    /// A connection that neither reads nor takes a byte of its response for this long is closed.
    static let stallTimeout: TimeAmount = .seconds(120)

    /// At most 64 connections, and at most a sixteenth of the descriptor limit: whatever clients
    /// do, monitors and the database keep the rest.
    package static func maximumConnections(descriptorLimit: Int) -> Int {
        max(4, min(64, descriptorLimit / 16))
    }

    /// The soft limit on open descriptors (`ulimit -n`).
    package static var descriptorLimit: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        return Int(clamping: limit.rlim_cur)
    }

    /// Raises the soft limit on open descriptors to the hard one, as a daemon holding a socket per
    /// VM should (systemd's soft default is 1,024; its hard one far more).
    ///
    /// - Returns: the limit now in force.
    @discardableResult
    package static func raiseDescriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        // At most 2^20, the kernel's default ceiling (fs.nr_open).
        let wanted = min(limit.rlim_max, 1 << 20)
        if limit.rlim_cur < wanted {
            var raised = limit
            raised.rlim_cur = wanted
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return Int(clamping: wanted) }
        }
        return Int(clamping: limit.rlim_cur)
    }
}

/// The HTTP connections open, and which of them wait for a request: past the cap, a new connection
/// closes the one idle the longest (as nginx drains its keep-alive connections when it runs out),
/// or itself when every other is busy. Accepting never stops, so a flood of idle connections can
/// neither take more descriptors than the cap nor keep `/metrics` out.
final class HTTPConnectionTracker: Sendable {
    private struct Connection {
        let channel: any Channel
        var busy = false
        var idleSince: UInt64
    }

    private struct State {
        var connections: [ObjectIdentifier: Connection] = [:]
        var clock: UInt64 = 0
        var closedAtCap = 0
    }

    let maximum: Int
    let logger: Logger
    private let state = Mutex(State())

    init(maximum: Int, logger: Logger) {
        self.maximum = maximum
        self.logger = logger
    }

    func opened(_ channel: any Channel) {
        let (victim, closedAtCap) = state.withLock { state -> ((any Channel)?, Int) in
            state.clock += 1
            state.connections[ObjectIdentifier(channel)] = Connection(channel: channel, idleSince: state.clock)
            guard state.connections.count > maximum else { return (nil, 0) }
            state.closedAtCap += 1
            let oldest = state.connections.filter { !$0.value.busy && $0.key != ObjectIdentifier(channel) }
                .min { $0.value.idleSince < $1.value.idleSince }
            let victim = oldest?.value.channel ?? channel
            state.connections[ObjectIdentifier(victim)] = nil
            return (victim, state.closedAtCap)
        }
        guard let victim else { return }
        victim.close(promise: nil)
        // The first time, then every thousandth: a flood is told, not logged line by line.
        if closedAtCap % 1000 == 1 {
            logger.warning(
                "HTTP connections at their cap: the longest idle one closed",
                metadata: [
                    "http.connections.maximum": "\(maximum)", "http.connections.closed_at_cap": "\(closedAtCap)",
                ]
            )
        }
    }

    func closed(_ channel: any Channel) {
        _ = state.withLock { $0.connections.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    func setBusy(_ channel: any Channel, _ busy: Bool) {
        state.withLock { state in
            state.clock += 1
            state.connections[ObjectIdentifier(channel)]?.busy = busy
            state.connections[ObjectIdentifier(channel)]?.idleSince = state.clock
        }
    }
}

/// Tells the tracker when its connection opens, starts a request, answers it, and closes.
final class TrackedConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let tracker: HTTPConnectionTracker

    init(tracker: HTTPConnectionTracker) { self.tracker = tracker }

    func handlerAdded(context: ChannelHandlerContext) { tracker.opened(context.channel) }

    func channelInactive(context: ChannelHandlerContext) {
        tracker.closed(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { tracker.setBusy(context.channel, true) }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { tracker.setBusy(context.channel, false) }
        context.write(data, promise: promise)
    }
}

/// Adds the security headers to every response head written on the connection: routes' answers,
/// Hummingbird's own 404 and 500, and the 400 for a request its parser refused.
final class SecurityHeadersHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .head(var head) = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        for field in WebServer.securityHeaders { head.headerFields[field.name] = field.value }
        context.write(wrapOutboundOut(.head(head)), promise: promise)
    }
}

/// Closes a connection on which nothing was read and no write completed for
/// ``HTTPConnectionLimits/stallTimeout`` (NIO's IdleStateHandler tells it).
final class StalledConnectionCloser: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .all {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
