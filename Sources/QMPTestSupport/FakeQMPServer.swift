import Foundation
import NIOCore
import NIOPosix
import QMP
import Synchronization

/// What a fake QMP server sends, on connect and in answer to each command.
public struct FakeQMPBehavior: Sendable {
    /// Texts written as soon as a client connects (normally the greeting).
    public var onConnect: [String]
    /// The lines to send for a command (name, id text), and whether to close the connection afterwards.
    public var respond: @Sendable (_ command: String, _ id: String) -> (lines: [String], close: Bool)

    /// Raw bytes written after the `query-status` reply (for input a Swift string cannot hold,
    /// such as invalid UTF-8).
    public var trailingBytes: [UInt8] = []

    /// A storm sent right after the `qmp_capabilities` reply: `count` events, line `n` (from 1) made
    /// by `event`. Replies to commands that arrive meanwhile wait behind the rest of the storm, as
    /// QEMU's replies wait behind the events it has queued. Sent as fast as the client reads.
    public var storm: (count: Int, event: @Sendable (Int) -> String)?

    public init(
        onConnect: [String],
        respond: @escaping @Sendable (_ command: String, _ id: String) -> (lines: [String], close: Bool)
    ) {
        self.onConnect = onConnect
        self.respond = respond
    }

    /// QEMU 7.2's greeting, as Debian 12 sends it.
    public static let greeting =
        #"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}"#
        + "\r\n"

    /// A well-behaved QEMU named `name`: answers the handshake and queries, then sends `events`
    /// (one line each) after the `query-status` reply, then closes if `close`.
    public static func qemu(name: String = "fake-vm", events: [String] = [], close: Bool = true) -> FakeQMPBehavior {
        FakeQMPBehavior(onConnect: [greeting]) { command, id in
            switch command {
            case "query-name": return ([#"{"return": {"name": "\#(name)"}, "id": \#(id)}"#], false)
            case "query-uuid":
                return ([#"{"return": {"UUID": "00000000-0000-0000-0000-000000000000"}, "id": \#(id)}"#], false)
            case "query-status":
                let reply = #"{"return": {"status": "running", "singlestep": false, "running": true}, "id": \#(id)}"#
                return ([reply] + events, close)
            default: return ([#"{"return": {}, "id": \#(id)}"#], false)
            }
        }
    }

    /// A peer that connects and never says anything.
    public static let silent = FakeQMPBehavior(onConnect: []) { _, _ in ([], false) }

    /// An event line with QEMU's envelope.
    public static func event(_ name: String, data: String? = nil, seconds: Int64 = 1_795_772_653, micro: Int64 = 1)
        -> String
    {
        let dataPart = data.map { #", "data": \#($0)"# } ?? ""
        return #"{"timestamp": {"seconds": \#(seconds), "microseconds": \#(micro)}, "event": "\#(name)"\#(dataPart)}"#
    }
}

/// A QMP server on a Unix socket that plays a ``FakeQMPBehavior`` and logs every command it receives.
///
/// For what real QEMU cannot produce here: floods, malformed input, other architectures' crash
/// information, peers that never greet.
public final class FakeQMPServer: Sendable {
    public let path: String
    private let channel: any Channel
    private let log: CommandLog

    /// Starts listening at `path`.
    public static func start(at path: String, behavior: FakeQMPBehavior) async throws -> FakeQMPServer {
        let log = CommandLog()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { play(behavior, log: log, on: $0) }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true)
            .get()
        return FakeQMPServer(path: path, channel: channel, log: log)
    }

    /// Connects to a listening recorder at `path`, as QEMU does with `-chardev socket,path=…`
    /// (without `server=on`), and plays `behavior` there.
    ///
    /// - Returns: the connection, for the test to close.
    public static func connectOut(to path: String, behavior: FakeQMPBehavior) async throws -> OutboundConnection {
        let log = CommandLog()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { play(behavior, log: log, on: $0) }
            .connect(unixDomainSocketPath: path)
            .get()
        return OutboundConnection(channel: channel)
    }

    /// Sets `channel` up to play `behavior`: QMP framing, then the fake's handler.
    private static func play(_ behavior: FakeQMPBehavior, log: CommandLog, on channel: any Channel)
        -> EventLoopFuture<Void>
    {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(QMPFrameDecoder()))
            try channel.pipeline.syncOperations.addHandler(FakeQMPHandler(behavior: behavior, log: log))
        }
    }

    /// A fake QEMU's connection to a listening recorder.
    public struct OutboundConnection: Sendable {
        fileprivate let channel: any Channel

        public func close() async { try? await channel.close() }
    }

    private init(path: String, channel: any Channel, log: CommandLog) {
        self.path = path
        self.channel = channel
        self.log = log
    }

    /// Every command name received so far, on every connection, in order.
    public var receivedCommands: [String] { log.commands.withLock { $0 } }

    /// Connections accepted so far.
    public var connectionCount: Int { log.connections.withLock { $0 } }

    /// Closes the listening socket and every open connection, and deletes the socket file:
    /// what a VM that quits looks like.
    public func stop() async {
        try? await channel.close()
        for child in log.children.withLock({ $0 }) { try? await child.close() }
        unlink(path)
    }
}

final class CommandLog: Sendable {
    let commands = Mutex<[String]>([])
    let connections = Mutex(0)
    let children = Mutex<[any Channel]>([])
}

final class FakeQMPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let behavior: FakeQMPBehavior
    private let log: CommandLog
    /// Storm events sent so far, and the replies waiting behind the rest (with whether to close after).
    private var stormSent = 0
    private var behindStorm: [(buffer: ByteBuffer, close: Bool)] = []
    /// A turn of the storm is scheduled.
    private var pumping = false

    init(behavior: FakeQMPBehavior, log: CommandLog) {
        self.behavior = behavior
        self.log = log
    }

    func channelActive(context: ChannelHandlerContext) {
        log.connections.withLock { $0 += 1 }
        log.children.withLock { $0.append(context.channel) }
        for text in behavior.onConnect {
            context.write(Self.wrapOutboundOut(ByteBuffer(string: text)), promise: nil)
        }
        context.flush()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        guard let command = try? JSONValue(parsing: frame.readableBytesView),
            let name = command["execute"]?.stringValue
        else { return }
        log.commands.withLock { $0.append(name) }
        let id = command["id"]?.compactText ?? "null"
        let (lines, close) = behavior.respond(name, id)
        var buffer = context.channel.allocator.buffer(capacity: lines.reduce(0) { $0 + $1.utf8.count + 2 })
        for line in lines {
            buffer.writeString(line.hasSuffix("\n") ? line : line + "\r\n")
        }
        if name == "query-status" { buffer.writeBytes(behavior.trailingBytes) }
        if let storm = behavior.storm, stormSent < storm.count, name != "qmp_capabilities" {
            behindStorm.append((buffer, close))
            return
        }
        send(buffer, close: close, context: context)
        if name == "qmp_capabilities", behavior.storm != nil { pumpStorm(context: context) }
    }

    private func send(_ buffer: ByteBuffer, close: Bool, context: ChannelHandlerContext) {
        // Close only once everything is on the wire: a close with writes pending would drop them.
        let written = context.writeAndFlush(Self.wrapOutboundOut(buffer))
        if close {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            written.whenComplete { _ in loopBound.value.close(promise: nil) }
        }
    }

    /// Writes storm events while the channel is writable, a chunk per turn of the event loop (the
    /// loop is shared with other tests' channels); the rest when it is writable again.
    private func pumpStorm(context: ChannelHandlerContext) {
        guard let storm = behavior.storm, !pumping else { return }
        guard stormSent < storm.count else { return sendBehindStorm(context: context) }
        guard context.channel.isWritable else { return }
        var buffer = context.channel.allocator.buffer(capacity: 64 << 10)
        let end = min(storm.count, stormSent + 256)
        for n in (stormSent + 1)...end { buffer.writeString(storm.event(n) + "\r\n") }
        stormSent = end
        context.writeAndFlush(Self.wrapOutboundOut(buffer), promise: nil)
        pumping = true
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            handler.value.pumping = false
            handler.value.pumpStorm(context: loopContext.value)
        }
    }

    private func sendBehindStorm(context: ChannelHandlerContext) {
        let waiting = behindStorm
        behindStorm = []
        for reply in waiting { send(reply.buffer, close: reply.close, context: context) }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { pumpStorm(context: context) }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
