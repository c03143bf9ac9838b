// What reading the many-VMs benchmark's sockets costs before any of qmplog's own work: one NIO
// event-loop thread, a channel per socket with qmplog's receive-buffer sizes, the two commands the
// trickle server waits for, and every byte that arrives discarded (no framing, no JSON, no SQLite).
// Exits when every socket has closed.
//
//     swift build -c release --package-path Benchmarks/NIOFloor
//     Benchmarks/NIOFloor/.build/release/nio-floor SOCKET...
import NIOCore
import NIOPosix

final class DiscardingHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        var commands = context.channel.allocator.buffer(capacity: 64)
        commands.writeString("{\"execute\": \"qmp_capabilities\"}\r\n{\"execute\": \"query-status\"}\r\n")
        context.writeAndFlush(NIOAny(commands), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let paths = CommandLine.arguments.dropFirst()
var closed: [EventLoopFuture<Void>] = []
for path in paths {
    let channel = try ClientBootstrap(group: group)
        .channelOption(
            ChannelOptions.recvAllocator,
            value: AdaptiveRecvByteBufferAllocator(minimum: 256, initial: 512, maximum: 65_536)
        )
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(DiscardingHandler())
            }
        }
        .connect(unixDomainSocketPath: path)
        .wait()
    closed.append(channel.closeFuture)
}
try EventLoopFuture.andAllComplete(closed, on: group.next()).wait()
