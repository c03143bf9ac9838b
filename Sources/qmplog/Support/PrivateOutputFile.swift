import ArgumentParser
import Foundation

/// A file written beside its final path, created 0600, and renamed onto the path when complete.
///
/// A path that exists and is no regular file (`/dev/stdout`, a FIFO, a device) is written in
/// place instead: renaming onto it would replace the device node.
final class PrivateOutputFile {
    let path: String
    /// `nil` when writing in place.
    let temporaryPath: String?
    let descriptor: Int32

    /// Creates the temporary file in `path`'s directory (a rename stays on one file system).
    ///
    /// - Throws: `ValidationError` naming the path when it cannot be created.
    init(replacing path: String) throws {
        self.path = path
        var info = stat()
        if stat(path, &info) == 0, (info.st_mode & S_IFMT) != S_IFREG {
            descriptor = open(path, O_WRONLY)
            guard descriptor >= 0 else {
                throw ValidationError("Cannot write \(path): \(String(cString: strerror(errno))).")
            }
            temporaryPath = nil
            return
        }
        let directory = (path as NSString).deletingLastPathComponent
        var template = Array(((directory.isEmpty ? "." : directory) + "/.qmplog-export-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress.map { mkstemp($0) } ?? -1
        }
        guard descriptor >= 0 else {
            throw ValidationError("Cannot write \(path): \(String(cString: strerror(errno))).")
        }
        // mkstemp creates 0600 already; say so for umasks and platforms that differ.
        fchmod(descriptor, 0o600)
        self.descriptor = descriptor
        self.temporaryPath = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Flushes the file to disk and renames it onto ``path``.
    func commit() throws {
        defer { close(descriptor) }
        guard let temporaryPath else { return }
        guard fsync(descriptor) == 0, rename(temporaryPath, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw OutputError(message: "cannot write \(path): \(reason)")
        }
    }

    /// Removes the temporary file after a failed export.
    func discard() {
        close(descriptor)
        if let temporaryPath { unlink(temporaryPath) }
    }
}
