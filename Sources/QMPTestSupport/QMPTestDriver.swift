import Foundation
public import QMP

/// A blocking QMP client for tests that need to drive a VM (`cont`, `stop`, `system_reset`, `quit`).
///
/// This is the test's hand on the VM, deliberately separate from qmplog's read-only client.
public final class QMPTestDriver {
    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private var scanner = QMPFrameScanner(maximumMessageSize: 1 << 20)

    /// Connects to `path` and negotiates capabilities.
    public init(path: String) throws {
        // QEMU creates the socket file at bind(), a moment before listen(): a connection in between is
        // refused, so retry briefly.
        var attempts = 0
        var descriptor: Int32
        while true {
            // A fresh socket per attempt: a socket whose connect failed is not reused.
            descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard descriptor >= 0 else { throw QEMUTestError("socket() failed") }
            let connected = withUnixSocketAddress(path) { connect(descriptor, $0, $1) }
            if connected == 0 { break }
            let code = errno
            close(descriptor)
            attempts += 1
            guard code == ECONNREFUSED || code == ENOENT, attempts < 250 else {
                throw QEMUTestError("cannot connect to \(path): errno \(code)")
            }
            usleep(20_000)
        }
        self.descriptor = descriptor
        var timeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = try readMessage()  // greeting
        _ = try execute("qmp_capabilities")
    }

    deinit { close(descriptor) }

    /// Sends any command and returns its reply object (events in between are skipped).
    @discardableResult
    public func execute(_ command: String, arguments: String? = nil) throws -> JSONValue {
        let argumentsPart = arguments.map { #", "arguments": \#($0)"# } ?? ""
        let text = #"{"execute": "\#(command)"\#(argumentsPart), "id": "test"}"# + "\r\n"
        _ = text.withCString { write(descriptor, $0, strlen($0)) }
        while true {
            let message = try readMessage()
            if message["return"] != nil || message["error"] != nil { return message }
        }
    }

    private func readMessage() throws -> JSONValue {
        while true {
            let found = try buffer.withUnsafeBytes { try scanner.scan($0) }
            switch found {
            case .message(let range):
                let message = try JSONValue(parsing: buffer[range])
                buffer.removeFirst(range.upperBound)
                return message
            case .needMoreData(let discardable):
                buffer.removeFirst(discardable)
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(descriptor, &chunk, chunk.count)
            guard count > 0 else { throw QEMUTestError("QMP connection closed or timed out (read \(count))") }
            buffer += chunk[..<count]
        }
    }
}
