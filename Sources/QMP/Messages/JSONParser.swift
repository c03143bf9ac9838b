/// A strict RFC 8259 parser for one complete QMP message.
///
/// QMP messages are small objects that the framer has already delimited, so this parser works on
/// a contiguous byte buffer and returns both the value tree and, for the top-level object, where
/// each member's value sits in the input. The recorder uses those ranges to store an event's
/// `data` verbatim instead of re-encoding it.
///
/// Nesting is limited (``maximumDepth``) so hostile input cannot exhaust the stack.
struct JSONParser: ~Copyable {
    static let maximumDepth = 128

    struct Failure: Error, Equatable {
        var offset: Int
        var reason: String
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private(set) var index = 0
    private(set) var depth = 0
    /// Byte ranges of the top-level object's member values, by key.
    private(set) var topLevelRanges: [String: Range<Int>] = [:]

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// Parses the whole input as one JSON value followed only by whitespace.
    mutating func parseDocument() throws(Failure) -> JSONValue {
        skipWhitespace()
        let value = try parseValue()
        try expectEnd()
        return value
    }

    private mutating func parseValue() throws(Failure) -> JSONValue {
        guard index < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw fail("unexpected character")
        }
    }

    private mutating func parseObject() throws(Failure) -> JSONValue {
        let isTopLevel = depth == 0
        var members: [(key: String, value: JSONValue)] = []
        try forEachMember { name, parser throws(Failure) in
            let key = name.string
            let start = parser.index
            let value = try parser.parseValue()
            if isTopLevel, parser.topLevelRanges[key] == nil { parser.topLevelRanges[key] = start..<parser.index }
            members.append((key, value))
        }
        return .object(members)
    }

    private mutating func parseArray() throws(Failure) -> JSONValue {
        var values: [JSONValue] = []
        try forEachElement { parser throws(Failure) in values.append(try parser.parseValue()) }
        return .array(values)
    }

    mutating func parseString() throws(Failure) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes, so the bytes between the quotes are the string.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeBufferPointer(rebasing: bytes[start..<index])
                index += 1
                guard let string = String(validating: slice, as: UTF8.self) else {
                    throw fail("string is not valid UTF-8")
                }
                return string
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw fail("control character in a string") }
            index += 1
        }
        // Slow path: decode escapes into a scratch buffer of UTF-8 bytes.
        var utf8 = Array(bytes[start..<index])
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let string = String(validating: utf8, as: UTF8.self) else {
                    throw fail("string is not valid UTF-8")
                }
                return string
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { break }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): utf8.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): utf8.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "/"): utf8.append(UInt8(ascii: "/"))
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"): try appendUnicodeEscape(to: &utf8)
                default: throw fail("invalid escape in a string")
                }
            case 0..<0x20:
                throw fail("control character in a string")
            default:
                utf8.append(byte)
                index += 1
            }
        }
        throw fail("unterminated string")
    }

    private mutating func appendUnicodeEscape(to utf8: inout [UInt8]) throws(Failure) {
        var scalarValue = try parseHex4()
        if (0xD800..<0xDC00).contains(scalarValue) {
            // A high surrogate must be followed by an escaped low surrogate.
            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
            else { throw fail("unpaired surrogate in a string") }
            index += 2
            let low = try parseHex4()
            guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate in a string") }
            scalarValue = 0x10000 + ((scalarValue - 0xD800) << 10) + (low - 0xDC00)
        }
        guard let scalar = Unicode.Scalar(scalarValue) else { throw fail("invalid \\u escape") }
        utf8.append(contentsOf: String(scalar).utf8)
    }

    private mutating func parseHex4() throws(Failure) -> UInt32 {
        guard index + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw fail("invalid \\u escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    private mutating func parseNumber() throws(Failure) -> String {
        let range = try scanNumber()
        // Number literals are ASCII by construction.
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    /// Checks one number literal and returns where it sits in the input.
    mutating func scanNumber() throws(Failure) -> Range<Int> {
        let start = index
        if peek() == UInt8(ascii: "-") { index += 1 }
        guard let first = peek(), isDigit(first) else { throw fail("invalid number") }
        if first == UInt8(ascii: "0") {
            index += 1
        } else {
            skipDigits()
        }
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard let digit = peek(), isDigit(digit) else { throw fail("invalid number") }
            skipDigits()
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            guard let digit = peek(), isDigit(digit) else { throw fail("invalid number") }
            skipDigits()
        }
        return start..<index
    }

    // MARK: Checking without building

    /// A member name as it sits in the input: its bytes when it has no escapes and is ASCII (the
    /// case for every QMP name), the decoded string otherwise.
    struct MemberName {
        fileprivate var raw: UnsafeBufferPointer<UInt8>?
        fileprivate var decoded: String?

        var string: String {
            decoded ?? raw.map { String(decoding: $0, as: UTF8.self) } ?? ""
        }

        static func == (name: MemberName, literal: StaticString) -> Bool {
            let expected = UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
            if let raw = name.raw { return raw.elementsEqual(expected) }
            return name.decoded.map { $0.utf8.elementsEqual(expected) } ?? false
        }
    }

    /// Checks one value as strictly as ``parseDocument()`` does, without building it.
    mutating func skipValue() throws(Failure) {
        guard index < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): try forEachMember { _, parser throws(Failure) in try parser.skipValue() }
        case UInt8(ascii: "["): try forEachElement { parser throws(Failure) in try parser.skipValue() }
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "t"): try expectLiteral("true")
        case UInt8(ascii: "f"): try expectLiteral("false")
        case UInt8(ascii: "n"): try expectLiteral("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try scanNumber()
        default: throw fail("unexpected character")
        }
    }

    /// Walks the object at the current position: `body` gets each member's name with the parser
    /// at the member's value, and must consume that value.
    mutating func forEachMember(
        _ body: (MemberName, inout JSONParser) throws(Failure) -> Void
    ) throws(Failure) {
        guard peek() == UInt8(ascii: "{") else { throw fail("expected an object") }
        try enter()
        index += 1
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return
        }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw fail("expected a member name") }
            let name = try scanMemberName()
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw fail("expected ':' after a member name") }
            index += 1
            skipWhitespace()
            try body(name, &self)
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                depth -= 1
                return
            default: throw fail("expected ',' or '}' in an object")
            }
        }
    }

    /// `true` or `false` at the current position, consumed; `nil` (nothing consumed) for any other value.
    mutating func parseBoolIfPresent() throws(Failure) -> Bool? {
        switch peek() {
        case UInt8(ascii: "t"): try expectLiteral("true"); return true
        case UInt8(ascii: "f"): try expectLiteral("false"); return false
        default: return nil
        }
    }

    /// Only whitespace is left.
    mutating func expectEnd() throws(Failure) {
        skipWhitespace()
        guard index == bytes.count else { throw fail("unexpected data after the JSON value") }
    }

    /// The input bytes in `range`, for ranges this parser returned.
    func slice(_ range: Range<Int>) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: bytes[range])
    }

    /// Walks the array at the current position: `body` gets the parser at each element, and must
    /// consume it.
    private mutating func forEachElement(_ body: (inout JSONParser) throws(Failure) -> Void) throws(Failure) {
        try enter()
        index += 1  // [
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return
        }
        while true {
            skipWhitespace()
            try body(&self)
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                depth -= 1
                return
            default: throw fail("expected ',' or ']' in an array")
            }
        }
    }

    /// The plain ASCII string without escapes at the current position (consumed), or `nil` with
    /// nothing consumed when it needs ``parseString()``'s checks and decoding.
    private mutating func scanPlainASCIIString() -> UnsafeBufferPointer<UInt8>? {
        var end = index + 1
        while end < bytes.count {
            let byte = bytes[end]
            if byte == UInt8(ascii: "\"") {
                defer { index = end + 1 }
                return UnsafeBufferPointer(rebasing: bytes[(index + 1)..<end])
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x80 { return nil }
            end += 1
        }
        return nil
    }

    private mutating func skipString() throws(Failure) {
        if scanPlainASCIIString() == nil { _ = try parseString() }
    }

    private mutating func scanMemberName() throws(Failure) -> MemberName {
        if let raw = scanPlainASCIIString() { return MemberName(raw: raw) }
        return MemberName(decoded: try parseString())
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(Failure) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw fail("unexpected end of input") }
        let expected = UnsafeBufferPointer(start: literal.utf8Start, count: count)
        for offset in 0..<count where bytes[index + offset] != expected[offset] {
            throw fail("invalid literal")
        }
        index += count
    }

    mutating func enter() throws(Failure) {
        depth += 1
        guard depth <= Self.maximumDepth else { throw fail("nesting deeper than \(Self.maximumDepth) levels") }
    }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func skipDigits() {
        while let byte = peek(), isDigit(byte) { index += 1 }
    }

    func peek() -> UInt8? {
        index < bytes.count ? bytes[index] : nil
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    func fail(_ reason: String) -> Failure {
        Failure(offset: index, reason: reason)
    }
}

extension JSONValue {
    /// Parses one complete JSON document.
    ///
    /// - Throws: ``QMPError`` with code `.malformedMessage` naming the offset and what was wrong.
    public init(parsing bytes: some Collection<UInt8>) throws(QMPError) {
        let array = Array(bytes)
        let result: Result<JSONValue, JSONParser.Failure> = array.withUnsafeBufferPointer { buffer in
            var parser = JSONParser(bytes: buffer)
            do throws(JSONParser.Failure) {
                return .success(try parser.parseDocument())
            } catch {
                return .failure(error)
            }
        }
        switch result {
        case .success(let value): self = value
        case .failure(let failure): throw QMPError.malformed(failure)
        }
    }
}
