public import NIOCore

/// Splits a QMP byte stream into one `ByteBuffer` per JSON object, with a size cap.
///
/// Use it inside `ByteToMessageHandler`. Bytes left over at end of stream that are not whitespace
/// mean the peer stopped in the middle of a message: that is reported as an error.
public struct QMPFrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = ByteBuffer

    private var scanner: QMPFrameScanner

    /// - Parameter maximumMessageSize: the largest message accepted, in bytes (default 16 MiB).
    public init(maximumMessageSize: Int = 16 << 20) {
        scanner = QMPFrameScanner(maximumMessageSize: maximumMessageSize)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try nextFrame(in: &buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext,
        buffer: inout ByteBuffer,
        seenEOF: Bool
    ) throws -> DecodingState {
        while let frame = try nextFrame(in: &buffer) {
            context.fireChannelRead(Self.wrapInboundOut(frame))
        }
        if scanner.isInsideMessage || buffer.readableBytes > 0 {
            let pending = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: pending)
            throw QMPError(
                code: .malformedMessage,
                message: "connection ended in the middle of a message (\(pending) bytes unterminated)"
            )
        }
        return .needMoreData
    }

    /// The next complete message, or `nil` when more bytes are needed. Drops whitespace between messages.
    mutating func nextFrame(in buffer: inout ByteBuffer) throws -> ByteBuffer? {
        let result = try buffer.withUnsafeReadableBytes { bytes in try scanner.scan(bytes) }
        switch result {
        case .message(let range):
            buffer.moveReaderIndex(forwardBy: range.lowerBound)
            return buffer.readSlice(length: range.count)
        case .needMoreData(let discardable):
            buffer.moveReaderIndex(forwardBy: discardable)
            return nil
        }
    }
}
