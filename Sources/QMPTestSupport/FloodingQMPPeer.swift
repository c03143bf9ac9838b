import Foundation
import QMP
import Synchronization

/// A QMP monitor on plain POSIX sockets that answers the handshake and queries, then floods
/// fixed-size events until the client goes, and measures how much of the flood the client read.
///
/// The measure is a lower bound from the kernel: bytes written minus the bytes still queued in the
/// socket (`TIOCOUTQ`, which for a Unix socket counts what the reader has not taken yet, with some
/// overhead). A recorder that stops must keep at least ``eventsSurelyRead`` events.
public final class FloodingQMPPeer: Sendable {
    public let path: String
    private let state = Mutex(State())

    private struct State {
        var surelyReadBytes = 0
        var finished = false
    }

    /// The bytes of one flood event; event `n` (from 1) says `n` in its data.
    public static let eventLength = event(1).utf8.count

    public static func event(_ n: Int) -> String {
        let digits = String(n)
        let padded = String(repeating: "0", count: max(0, 9 - digits.count)) + digits
        return
            #"{"timestamp": {"seconds": 1795772653, "microseconds": 1}, "event": "STOP", "data": {"n": "\#(padded)"}}"#
            + "\r\n"
    }

    /// Listens at `path` and serves one client in a thread of its own.
    public init(path: String, name: String) throws {
        self.path = path
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw QEMUTestError("socket() failed") }
        let bound = withUnixSocketAddress(path) { bind(listener, $0, $1) }
        guard bound == 0, listen(listener, 1) == 0 else {
            close(listener)
            throw QEMUTestError("cannot listen at \(path): errno \(errno)")
        }
        let peer = self
        Thread.detachNewThread {
            defer { peer.state.withLock { $0.finished = true } }
            let client = accept(listener, nil, nil)
            close(listener)
            guard client >= 0 else { return }
            defer { close(client) }
            guard peer.handshake(on: client, name: name) else { return }
            peer.flood(on: client)
        }
    }

    /// A lower bound of the flood's events the client has read whole.
    public var eventsSurelyRead: Int { state.withLock { $0.surelyReadBytes } / Self.eventLength }

    /// Whether the client has gone and the flood ended.
    public var isFinished: Bool { state.withLock { $0.finished } }

    /// Sends the greeting and answers commands until `query-status`, the recorder's last query.
    private func handshake(on client: Int32, name: String) -> Bool {
        guard send(FakeQMPBehavior.greeting, on: client) else { return false }
        var buffer: [UInt8] = []
        var scanner = QMPFrameScanner(maximumMessageSize: 1 << 20)
        while true {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(client, &chunk, chunk.count)
            guard count > 0 else { return false }
            buffer += chunk[..<count]
            while case .message(let range) = (try? buffer.withUnsafeBytes { try scanner.scan($0) }) {
                let command = try? JSONValue(parsing: buffer[range])
                buffer.removeFirst(range.upperBound)
                let id = command?["id"]?.compactText ?? "null"
                let reply: String
                switch command?["execute"]?.stringValue {
                case "query-name": reply = #"{"return": {"name": "\#(name)"}, "id": \#(id)}"#
                case "query-status": reply = #"{"return": {"status": "running", "running": true}, "id": \#(id)}"#
                default: reply = #"{"return": {}, "id": \#(id)}"#
                }
                guard send(reply + "\r\n", on: client) else { return false }
                if command?["execute"]?.stringValue == "query-status" { return true }
            }
        }
    }

    /// Writes events in chunks until the client goes, sampling after each write what it surely read.
    private func flood(on client: Int32) {
        var n = 0
        var written = 0
        while true {
            let chunk = (1...64).map { Self.event(n + $0) }.joined()
            n += 64
            guard send(chunk, on: client) else { return }
            written += chunk.utf8.count
            var queued: Int32 = 0
            guard ioctl(client, UInt(TIOCOUTQ), &queued) == 0 else { return }
            // The queue is freed when the client closes: a sample taken after that would count it as
            // read. Poll for the hang-up after the sample; if it is there, the sample may be wrong.
            var poller = pollfd(fd: client, events: Int16(POLLOUT), revents: 0)
            _ = poll(&poller, 1, 0)
            guard poller.revents & Int16(POLLHUP | POLLERR) == 0 else { return }
            let surelyRead = written - Int(queued)
            state.withLock { $0.surelyReadBytes = max($0.surelyReadBytes, surelyRead) }
        }
    }

    private func send(_ text: String, on client: Int32) -> Bool {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let count = bytes.withUnsafeBytes { Glibc.send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { return false }
            bytes = bytes.dropFirst(count)
        }
        return true
    }
}
