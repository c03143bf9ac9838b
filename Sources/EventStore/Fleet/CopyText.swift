import GRDBSQLite
import NIOCore

/// Rows in PostgreSQL's COPY text format, written straight from SQLite's column bytes.
///
/// Columns are separated by a tab, rows end with a newline, `\N` is NULL, and a backslash, tab,
/// newline or carriage return in a value is escaped. PostgreSQL's text cannot hold a NUL character,
/// nor its jsonb the escape `\u0000`: both become U+FFFD, the replacement character.
enum CopyText {
    private static let backslash = UInt8(ascii: "\\")
    private static let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]

    /// Appends the current row of `statement`: `prefix` (already COPY text, ending in a tab), then
    /// each of its `columnCount` columns; `jsonColumn`, if any, holds JSON text.
    static func appendRow(
        of statement: OpaquePointer,
        columnCount: Int32,
        prefix: String,
        jsonColumn: Int32?,
        to buffer: inout ByteBuffer
    ) {
        buffer.writeString(prefix)
        for column in 0..<columnCount {
            if column > 0 { buffer.writeInteger(UInt8(ascii: "\t")) }
            switch sqlite3_column_type(statement, column) {
            case SQLITE_NULL:
                buffer.writeStaticString("\\N")
            case SQLITE_INTEGER:
                buffer.writeString(String(sqlite3_column_int64(statement, column)))
            case SQLITE_FLOAT:
                buffer.writeString(String(sqlite3_column_double(statement, column)))
            default:
                let count = Int(sqlite3_column_bytes(statement, column))
                guard let text = sqlite3_column_text(statement, column) else { break }
                let bytes = UnsafeBufferPointer(start: text, count: count)
                appendEscaped(bytes, json: column == jsonColumn, to: &buffer)
            }
        }
        buffer.writeInteger(UInt8(ascii: "\n"))
    }

    /// Appends a value given as a Swift string (a host key, a URL part) escaped.
    static func appendEscaped(_ text: String, to buffer: inout ByteBuffer) {
        var text = text
        text.withUTF8 { appendEscaped($0, json: false, to: &buffer) }
    }

    /// Writes `bytes` escaped: runs of plain bytes at once, the few special ones one by one.
    static func appendEscaped(_ bytes: UnsafeBufferPointer<UInt8>, json: Bool, to buffer: inout ByteBuffer) {
        var runStart = 0
        var index = 0
        func flush() {
            if index > runStart {
                buffer.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[runStart..<index])))
            }
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case backslash:
                flush()
                if json, index + 1 < bytes.count {
                    // A JSON escape: two bytes, or `\u0000`, which jsonb refuses.
                    if isEscapedNul(bytes, at: index) {
                        buffer.writeStaticString("\\\\ufffd")
                        index += 6
                    } else {
                        buffer.writeStaticString("\\\\")
                        let next = bytes[index + 1]
                        if next == backslash {
                            buffer.writeStaticString("\\\\")
                        } else {
                            writeEscaped(next, to: &buffer)
                        }
                        index += 2
                    }
                } else {
                    buffer.writeStaticString("\\\\")
                    index += 1
                }
                runStart = index
                continue
            case 0x09, 0x0A, 0x0D, 0x00:
                flush()
                writeEscaped(byte, to: &buffer)
                runStart = index + 1
            default:
                break
            }
            index += 1
        }
        flush()
    }

    private static func writeEscaped(_ byte: UInt8, to buffer: inout ByteBuffer) {
        switch byte {
        case 0x09: buffer.writeStaticString("\\t")
        case 0x0A: buffer.writeStaticString("\\n")
        case 0x0D: buffer.writeStaticString("\\r")
        case 0x00: buffer.writeBytes(replacement)
        default: buffer.writeInteger(byte)
        }
    }

    private static func isEscapedNul(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Bool {
        guard index + 5 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") else { return false }
        return (2...5).allSatisfy { bytes[index + $0] == UInt8(ascii: "0") }
    }
}
