/// Finds where one JSON object ends in a byte stream, without parsing it.
///
/// QEMU ends each message with CRLF, but a monitor opened with `pretty=on` spreads one message over
/// many lines, so lines are the wrong unit. The scanner tracks brace depth outside strings and
/// resumes where it stopped when more bytes arrive, so each byte is looked at once.
///
/// ```swift
/// var scanner = QMPFrameScanner(maximumMessageSize: 1 << 20)
/// let bytes = Array("  {\"event\": \"STOP\"}\r\n".utf8)
/// let found = try bytes.withUnsafeBytes { try scanner.scan($0) }  // .message(2..<19)
/// ```
public struct QMPFrameScanner: Sendable {
    public enum Result: Equatable, Sendable {
        /// The bytes in this range are one complete JSON object; continue scanning after it.
        case message(Range<Int>)
        /// No complete object yet. The first `discardable` bytes are whitespace between messages.
        case needMoreData(discardable: Int)
    }

    public let maximumMessageSize: Int
    /// Offset of the current object's `{`, or `nil` between messages.
    private var start: Int?
    /// Offset of the next byte to look at.
    private var position = 0
    private var depth = 0
    private var inString = false
    private var escaped = false

    public init(maximumMessageSize: Int) {
        self.maximumMessageSize = maximumMessageSize
    }

    /// Whether the scanner is inside a message that has not ended yet.
    public var isInsideMessage: Bool { start != nil }

    /// Scans `bytes`, which must begin with the same bytes as the previous call (plus any more that arrived).
    ///
    /// After a `.message(range)`, the caller drops `bytes[..<range.upperBound]` and the next call
    /// starts from the byte after the message.
    ///
    /// - Throws: ``QMPError`` `.messageTooLarge` past the cap, `.notQMP` for anything but an object.
    public mutating func scan(_ bytes: UnsafeRawBufferPointer) throws(QMPError) -> Result {
        while position < bytes.count {
            let byte = bytes[position]
            guard let messageStart = start else {
                switch byte {
                case 0x20, 0x09, 0x0A, 0x0D:
                    position += 1
                    continue
                case UInt8(ascii: "{"):
                    start = position
                    depth = 1
                    position += 1
                    continue
                default:
                    throw QMPError(
                        code: .notQMP,
                        message: "expected a JSON object, got byte 0x\(String(byte, radix: 16)) ('\(printable(byte))')"
                    )
                }
            }
            position += 1
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
            } else {
                switch byte {
                case UInt8(ascii: "\""): inString = true
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 {
                        let range = messageStart..<position
                        reset()
                        return .message(range)
                    }
                default: break
                }
            }
            if position - messageStart > maximumMessageSize {
                throw QMPError(
                    code: .messageTooLarge,
                    message: "message exceeds the \(maximumMessageSize)-byte limit without ending"
                )
            }
        }
        guard let messageStart = start else {
            let discardable = position
            position = 0
            return .needMoreData(discardable: discardable)
        }
        // Keep our place; the caller may drop leading whitespace only.
        if messageStart > 0 {
            position -= messageStart
            start = 0
            return .needMoreData(discardable: messageStart)
        }
        return .needMoreData(discardable: 0)
    }

    private mutating func reset() {
        start = nil
        position = 0
        depth = 0
        inString = false
        escaped = false
    }

    private func printable(_ byte: UInt8) -> String {
        (0x20..<0x7F).contains(byte) ? String(UnicodeScalar(byte)) : "?"
    }
}
