import Foundation

/// A fresh directory under /tmp, removed by ``remove()``.
///
/// Kept short on purpose: a Unix socket path must fit in 108 bytes.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(prefix: String = "qmplog") throws {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: "/tmp/\(prefix)-XXXXXX"])
        }
        path = String(cString: created)
    }

    /// `path/name`
    public func file(_ name: String) -> String { path + "/" + name }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
