import NIOCore

/// Decodes each frame into a ``QMPMessage`` and passes them on as one array per socket read.
///
/// Handing a batch to the async consumer per read instead of one message at a time keeps the
/// per-message cost of crossing into Swift concurrency out of the hot path during floods.
final class QMPMessageBatcher: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = [QMPMessage]

    private var batch: [QMPMessage] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        do {
            let message = try frame.withUnsafeReadableBytes { bytes in try QMPMessage(frame: bytes) }
            batch.append(message)
        } catch {
            flush(context: context)
            context.fireErrorCaught(error)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
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
        guard !batch.isEmpty else { return }
        let messages = batch
        batch.removeAll(keepingCapacity: true)
        context.fireChannelRead(Self.wrapInboundOut(messages))
    }
}
