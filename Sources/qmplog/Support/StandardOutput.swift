import Foundation

/// Standard output that reports failure: `print` ignores a full disk or a closed pipe, and a
/// command that lost its output must not exit 0.
enum StandardOutput {
    /// Writes all of `text`.
    ///
    /// - Throws: ``OutputError`` naming why (for example, no space left on device).
    static func write(_ text: String) throws {
        var text = text
        try text.withUTF8 { bytes in try writeAll(bytes, to: STDOUT_FILENO, name: "standard output") }
    }

    /// Writes all of `bytes` to `descriptor`, retrying short and interrupted writes.
    static func writeAll(_ bytes: UnsafeBufferPointer<UInt8>, to descriptor: Int32, name: String) throws {
        var offset = 0
        while offset < bytes.count {
            let written = Foundation.write(descriptor, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw OutputError(message: "cannot write to \(name): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }
}

/// Output that could not be written.
struct OutputError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
