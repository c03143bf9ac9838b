import Foundation
import Reports

/// Standard output that reports failure: `print` ignores a full disk or a closed pipe, and a
/// command that lost its output must not exit 0.
enum StandardOutput {
    /// Writes all of `text`.
    ///
    /// - Throws: ``OutputError`` naming why (for example, no space left on device).
    static func write(_ text: String) throws {
        var text = text
        let failure = text.withUTF8 { bytes in
            bytes.baseAddress.flatMap { writeAll($0, count: bytes.count, to: STDOUT_FILENO) }
        }
        if let failure { throw OutputError(message: "cannot write to standard output: \(failure)") }
    }
}

/// Output that could not be written.
struct OutputError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
