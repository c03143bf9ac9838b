import EventStore

/// Formats a stored event as CSV or JSON, straight into the output.
///
/// Fields: id, vm (the machine's name), time, seconds, microseconds, received, event, guest,
/// reason, action, panic_type, panic_reason, data. Text is UTF-8 in SQLite's own memory (see
/// ``StoredEventRow``), escaped byte by byte. It owns its buffers, one copy only, freed with it.
struct ExportRow: ~Copyable {
    /// The data column compacted, for CSV (whose quoting depends on the compacted text).
    private var scratch = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 256)

    /// Every VM's display name, UTF-8, in one allocation; `names` points into it.
    private let nameBytes: UnsafeMutableBufferPointer<UInt8>
    private let names: [Int64: UnsafeBufferPointer<UInt8>]
    /// The last timestamp's text up to the whole second (`2026-11-27T09:44:14`), and its second:
    /// QEMU's time and qmplog's receive time of one event almost always share it.
    private let secondText = UnsafeMutablePointer<UInt8>.allocate(capacity: Timestamp.maximumRFC3339Length)
    private var secondLength = 0
    private var second = Int64.min

    init(names: [(id: Int64, name: String)]) {
        nameBytes = .allocate(capacity: max(1, names.reduce(0) { $0 + $1.name.utf8.count }))
        var offset = 0
        var index: [Int64: UnsafeBufferPointer<UInt8>] = [:]
        for (id, name) in names {
            let count = nameBytes[offset...].initialize(from: name.utf8).index - offset
            index[id] = UnsafeBufferPointer(rebasing: nameBytes[offset..<offset + count])
            offset += count
        }
        self.names = index
    }

    deinit {
        scratch.deallocate()
        nameBytes.deallocate()
        secondText.deallocate()
    }

    /// Writes ``Timestamp/rfc3339(microseconds:)``, reusing the text up to the second when the
    /// second is the previous timestamp's.
    private mutating func timestamp(_ microseconds: Int64, to w: inout ByteWriter) {
        let (seconds, fraction) = Timestamp.floorDivide(microseconds, 1_000_000)
        guard abs(seconds) < 1 << 40 else { return w.timestamp(microseconds) }
        if seconds != second {
            // The whole text of the second's first microsecond, less ".000000Z".
            secondLength = Timestamp.write(rfc3339: seconds * 1_000_000, at: secondText) - 8
            second = seconds
        }
        w.bytes(UnsafeBufferPointer(start: secondText, count: secondLength))
        w.byte(UInt8(ascii: "."))
        w.fraction(fraction)
        w.byte(UInt8(ascii: "Z"))
    }

    mutating func writeCSV(_ row: borrowing StoredEventRow, to output: OutputBuffer) throws {
        let vm = names[row.machineId]
        try output.reserve(3 * (row.textLength + (vm?.count ?? 0)) + 256)
        if let data = row.data, data.count > scratch.count {
            scratch.deallocate()
            scratch = .allocate(capacity: 2 * data.count)
        }
        var w = ByteWriter(output.cursor)
        w.decimal(row.id)
        w.byte(UInt8(ascii: ","))
        w.csvField(vm)
        w.byte(UInt8(ascii: ","))
        if let time = row.time { timestamp(time, to: &w) }
        w.byte(UInt8(ascii: ","))
        w.decimal(row.seconds)
        w.byte(UInt8(ascii: ","))
        w.decimal(row.microseconds)
        w.byte(UInt8(ascii: ","))
        timestamp(row.received, to: &w)
        w.byte(UInt8(ascii: ","))
        w.csvField(row.name)
        w.byte(UInt8(ascii: ","))
        if let guest = row.guest { w.ascii(guest ? "true" : "false") }
        w.byte(UInt8(ascii: ","))
        w.csvField(row.reason)
        w.byte(UInt8(ascii: ","))
        w.csvField(row.action)
        w.byte(UInt8(ascii: ","))
        w.csvField(row.panicType)
        w.byte(UInt8(ascii: ","))
        w.csvField(row.panicReason)
        w.byte(UInt8(ascii: ","))
        if let data = row.data, let base = scratch.baseAddress {
            var compact = ByteWriter(base)
            compact.compactJSON(data)
            w.csvField(UnsafeBufferPointer(start: base, count: compact.pointer - base))
        }
        w.ascii("\r\n")
        output.cursor = w.pointer
    }

    mutating func writeJSON(
        _ row: borrowing StoredEventRow,
        prefix: StaticString,
        suffix: StaticString,
        to output: OutputBuffer
    ) throws {
        let vm = names[row.machineId]
        try output.reserve(6 * (row.textLength + (vm?.count ?? 0)) + 512)
        var w = ByteWriter(output.cursor)
        w.ascii(prefix)
        w.ascii(#"{"id":"#)
        w.decimal(row.id)
        w.ascii(#","vm":"#)
        w.jsonString(vm)
        w.ascii(#","time":"#)
        if let time = row.time {
            w.byte(UInt8(ascii: "\""))
            timestamp(time, to: &w)
            w.byte(UInt8(ascii: "\""))
        } else {
            w.ascii("null")
        }
        w.ascii(#","seconds":"#)
        w.decimal(row.seconds)
        w.ascii(#","microseconds":"#)
        w.decimal(row.microseconds)
        w.ascii(#","received":""#)
        timestamp(row.received, to: &w)
        w.ascii(#"","event":"#)
        w.jsonString(row.name)
        w.ascii(#","guest":"#)
        if let guest = row.guest { w.ascii(guest ? "true" : "false") } else { w.ascii("null") }
        w.ascii(#","reason":"#)
        w.jsonString(row.reason)
        w.ascii(#","action":"#)
        w.jsonString(row.action)
        w.ascii(#","panic_type":"#)
        w.jsonString(row.panicType)
        w.ascii(#","panic_reason":"#)
        w.jsonString(row.panicReason)
        w.ascii(#","data":"#)
        if let data = row.data { w.compactJSON(data) } else { w.ascii("null") }
        w.byte(UInt8(ascii: "}"))
        w.ascii(suffix)
        output.cursor = w.pointer
    }
}

/// Stores bytes at a pointer with no bounds checks; whoever makes one has reserved the room.
///
/// The escapers here are the only copies of these rules: ``CSVText`` and ``JSONText`` call them
/// for the reports' renderers.
struct ByteWriter {
    private(set) var pointer: UnsafeMutablePointer<UInt8>

    init(_ pointer: UnsafeMutablePointer<UInt8>) { self.pointer = pointer }

    /// Runs `body` on a writer over fresh memory of `capacity` bytes and returns what it wrote.
    static func string(capacity: Int, _ body: (inout ByteWriter) -> Void) -> String {
        String(unsafeUninitializedCapacity: capacity) { buffer in
            guard let base = buffer.baseAddress else { return 0 }
            var writer = ByteWriter(base)
            body(&writer)
            return writer.pointer - base
        }
    }

    @inline(__always) mutating func byte(_ value: UInt8) {
        pointer.pointee = value
        pointer += 1
    }

    @inline(__always) mutating func ascii(_ text: StaticString) {
        pointer.update(from: text.utf8Start, count: text.utf8CodeUnitCount)
        pointer += text.utf8CodeUnitCount
    }

    @inline(__always) mutating func bytes(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let base = bytes.baseAddress else { return }
        pointer.update(from: base, count: bytes.count)
        pointer += bytes.count
    }

    @inline(__always) mutating func decimal(_ value: Int64) { pointer += Timestamp.write(decimal: value, at: pointer) }

    /// Six digits, for 0 ≤ `value` < 1,000,000.
    @inline(__always) mutating func fraction(_ value: Int64) {
        var rest = value
        for index in stride(from: 5, through: 0, by: -1) {
            pointer[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
        }
        pointer += 6
    }

    @inline(__always) mutating func timestamp(_ microseconds: Int64) {
        pointer += Timestamp.write(rfc3339: microseconds, at: pointer)
    }

    /// An RFC 4180 field: quoted when it holds a comma, quote or line break, and prefixed with `'`
    /// when it starts with `=`, `+`, `-`, `@`, tab or CR, so spreadsheets show it instead of
    /// evaluating it (OWASP's advice against CSV injection). Nothing for NULL. Takes at most
    /// 2 × count + 3 bytes.
    mutating func csvField(_ field: UnsafeBufferPointer<UInt8>?) {
        guard let field, let first = field.first else { return }
        let guarded =
            first == UInt8(ascii: "=") || first == UInt8(ascii: "+") || first == UInt8(ascii: "-")
            || first == UInt8(ascii: "@") || first == 0x09 || first == 0x0D
        let needsQuotes = field.contains {
            $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0A || $0 == 0x0D
        }
        if needsQuotes { byte(UInt8(ascii: "\"")) }
        if guarded { byte(UInt8(ascii: "'")) }
        guard needsQuotes else { return bytes(field) }
        for value in field {
            if value == UInt8(ascii: "\"") { byte(value) }
            byte(value)
        }
        byte(UInt8(ascii: "\""))
    }

    /// A JSON string literal, escaping quotes, backslashes and control characters; `null` for NULL.
    /// Takes at most 6 × count + 2 bytes.
    /// A JSON string literal of `text` (`null` for none). With `escapingC1`, the C1 controls
    /// U+0080–U+009F are escaped too (`\u0080`): JSON meant to be read on a terminal; export keeps
    /// them as data.
    mutating func jsonString(_ text: UnsafeBufferPointer<UInt8>?, escapingC1: Bool = false) {
        guard let text else { return ascii("null") }
        byte(UInt8(ascii: "\""))
        var index = text.startIndex
        while index < text.endIndex {
            let value = text[index]
            index += 1
            switch value {
            case 0xC2 where escapingC1 && index < text.endIndex && (0x80...0x9F).contains(text[index]):
                // U+0080–U+009F in UTF-8.
                ascii("\\u00")
                byte(Self.hexDigit(text[index] >> 4))
                byte(Self.hexDigit(text[index] & 0xF))
                index += 1
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                byte(UInt8(ascii: "\\"))
                byte(value)
            case 0x0A: ascii("\\n")
            case 0x0D: ascii("\\r")
            case 0x09: ascii("\\t")
            case 0..<0x20:
                ascii("\\u00")
                byte(Self.hexDigit(value >> 4))
                byte(Self.hexDigit(value & 0xF))
            default: byte(value)
            }
        }
        byte(UInt8(ascii: "\""))
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }

    /// JSON text with the whitespace outside strings removed (QEMU's `{"a": 1}` → `{"a":1}`).
    mutating func compactJSON(_ text: UnsafeBufferPointer<UInt8>) {
        var inString = false
        var escaped = false
        for value in text {
            if inString {
                if escaped {
                    escaped = false
                } else if value == UInt8(ascii: "\\") {
                    escaped = true
                } else if value == UInt8(ascii: "\"") {
                    inString = false
                }
            } else {
                switch value {
                case 0x20, 0x09, 0x0A, 0x0D: continue
                case UInt8(ascii: "\""): inString = true
                default: break
                }
            }
            byte(value)
        }
    }
}
