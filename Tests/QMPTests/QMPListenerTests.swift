import Foundation
import QMP
import QMPTestSupport
import Synchronization
import Testing

/// The listener before a connection is admitted: nothing read, and no wait without end.
struct QMPListenerTests {
    @Test func aConnectionWaitingForAdmissionIsNotReadAndIsClosedAfterTheTimeout() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("listen.sock")
        let refusals = Mutex<[String]>([])
        let listening = Task {
            try await QMPListener.listen(
                at: path,
                admissionTimeout: .seconds(1),
                onRefused: { error in refusals.withLock { $0.append(error.message) } },
                // No place ever frees up.
                admit: { try await Task.sleep(for: .seconds(3600)) },
                handler: { _, _ in Issue.record("a connection that was never admitted was handled") }
            )
        }
        defer { listening.cancel() }
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: path) {
            try await Task.sleep(for: .milliseconds(10))
        }

        // Given a peer that connects and sends 64 KiB while it waits for a place
        let client = try Self.connect(to: path)
        defer { close(client) }
        let payload = [UInt8](repeating: UInt8(ascii: "x"), count: 64 << 10)
        #expect(
            payload.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == payload.count
        )
        try await Task.sleep(for: .milliseconds(300))

        // Then none of it has been read
        var queued: Int32 = 0
        #expect(ioctl(client, UInt(TIOCOUTQ), &queued) == 0)
        #expect(queued >= Int32(payload.count), "unread bytes: \(queued)")

        // And after the admission timeout the connection is closed, and said so
        // (Polled without blocking: a blocked thread of the test runner's pool would stall the timer.)
        var closed = false
        for _ in 0..<500 where !closed {
            var byte: UInt8 = 0
            let received = recv(client, &byte, 1, Int32(MSG_DONTWAIT))
            closed = received == 0 || (received < 0 && errno == ECONNRESET)
            if !closed { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(closed, "the waiting connection was not closed")
        for _ in 0..<100 where refusals.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(refusals.withLock { $0 }.contains { $0.contains("for an attach place") }, "\(refusals.withLock { $0 })")
    }

    static func connect(to path: String) throws -> Int32 {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let connected = withUnixSocketAddress(path) { Foundation.connect(descriptor, $0, $1) }
        guard connected == 0 else { throw QEMUTestError("cannot connect to \(path): errno \(errno)") }
        return descriptor
    }
}
