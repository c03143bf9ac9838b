import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The lines of a history file, read in chunks so that memory does not grow with the file: a
/// `.gz` file through `gzip -dc`, CRLF line ends taken as LF, a line longer than
/// ``maximumLineLength`` cut there (no record qmplog reads is that long).
final class HistoryLines {
    /// libvirt's longest lines are QEMU command lines of a few KiB.
    static let maximumLineLength = 1 << 20
    static let chunkSize = 1 << 16

    let path: String
    private let descriptor: Int32
    private let gzip: Process?
    private var chunk = [UInt8](repeating: 0, count: HistoryLines.chunkSize)
    private var chunkStart = 0
    private var chunkEnd = 0
    private var line: [UInt8] = []
    private var atEnd = false

    /// Opens `path` (decompressing a `.gz` one).
    ///
    /// - Throws: ``ImportError`` naming the file when it cannot be read.
    init(path: String) throws {
        self.path = path
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw ImportError("\(path): no such file, or not readable")
        }
        guard path.hasSuffix(".gz") else {
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw ImportError("\(path): cannot open: \(Self.lastError)") }
            gzip = nil
            return
        }
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gzip.arguments = ["-dc", "--", path]
        let output = Pipe()
        gzip.standardOutput = output
        gzip.standardError = FileHandle.nullDevice
        do {
            try gzip.run()
        } catch {
            throw ImportError("\(path): cannot run gzip to decompress it: \(error)")
        }
        // Our own copy of the pipe's reading end, so that closing it does not depend on Foundation.
        descriptor = dup(output.fileHandleForReading.fileDescriptor)
        try? output.fileHandleForReading.close()
        try? output.fileHandleForWriting.close()
        self.gzip = gzip
    }

    deinit {
        close(descriptor)
        if let gzip, gzip.isRunning {
            gzip.terminate()
            gzip.waitUntilExit()
        }
    }

    /// The next line without its line end, or `nil` at the end of the file.
    ///
    /// - Throws: ``ImportError`` when reading fails or a `.gz` file is not valid gzip.
    func next() throws -> Substring? {
        var discarding = false  // past the cap, until the line ends
        while true {
            if chunkStart < chunkEnd {
                let newline = chunk[chunkStart..<chunkEnd].firstIndex(of: UInt8(ascii: "\n"))
                let end = newline ?? chunkEnd
                if !discarding {
                    line += chunk[chunkStart..<min(end, chunkStart + Self.maximumLineLength - line.count)]
                    discarding = line.count >= Self.maximumLineLength
                }
                chunkStart = newline.map { $0 + 1 } ?? chunkEnd
                if newline != nil { return takeLine() }
                continue
            }
            if atEnd { return line.isEmpty ? nil : takeLine() }
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw ImportError("\(path): cannot read: \(Self.lastError)")
            }
            chunkStart = 0
            chunkEnd = count
            if count == 0 {
                atEnd = true
                if let gzip {
                    gzip.waitUntilExit()
                    guard gzip.terminationStatus == 0 else { throw ImportError("\(path): not a valid gzip file") }
                }
            }
        }
    }

    private func takeLine() -> Substring {
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        defer { line.removeAll(keepingCapacity: line.capacity <= Self.chunkSize) }
        return Substring(String(decoding: line, as: UTF8.self))
    }

    private static var lastError: String { String(cString: strerror(errno)) }
}
