import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Listens on a Unix socket for QEMU to connect out to (`-chardev socket,…,reconnect=5 -mon
/// chardev=…,mode=control`), and speaks read-only QMP on each connection.
///
/// This is how to record a VM whose main monitor belongs to a manager (libvirt, Proxmox): a second
/// monitor costs nothing, QEMU sends every event to every monitor, and QEMU reconnects by itself
/// when qmplog restarts.
public enum QMPListener {
    /// Binds `path` (mode 0600, replacing a stale socket file) and handles each accepted connection
    /// in its own task until cancelled.
    ///
    /// - Parameters:
    ///   - admit: awaited for each accepted connection before it is negotiated, so that a caller can
    ///     bound how many negotiate at once (a fleet of QEMUs reconnecting together); what it
    ///     returns goes to `handler`. When it throws (cancellation), the connection is closed.
    ///   - handler: called with each negotiated connection (or why negotiation failed) and what
    ///     `admit` returned; the connection closes when it returns.
    /// - Throws: ``QMPError`` `.connectFailed` naming `path` when it cannot be bound.
    public static func listen<Admission: Sendable>(
        at path: String,
        configuration: QMPClientConfiguration = QMPClientConfiguration(),
        onListening: @Sendable () -> Void = {},
        admit: @escaping @Sendable () async throws -> Admission,
        handler: @escaping @Sendable (Result<QMPConnection, any Error>, Admission) async -> Void
    ) async throws {
        let server: NIOAsyncChannel<QMPClient.QMPChannel, Never>
        // The socket is created with the umask's mode: make it 0600 from the start.
        let previousMask = umask(0o177)
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try QMPClient.makeMessageChannel(channel, configuration: configuration)
                    }
                }
            umask(previousMask)
        } catch {
            umask(previousMask)
            throw QMPError(
                code: .connectFailed,
                message: "cannot listen on unix:\(path): \(QMPClient.describeConnectError(error))",
                cause: error
            )
        }
        onListening()
        let endpoint = QMPEndpoint.unixSocket(path: path)
        try await server.executeThenClose { inbound in
            try await withThrowingDiscardingTaskGroup { group in
                for try await child in inbound {
                    group.addTask {
                        let admission: Admission
                        do {
                            admission = try await admit()
                        } catch {
                            try? await child.messages.channel.close()
                            return
                        }
                        let peer = await peerDescription(child.messages.channel)
                        do {
                            try await QMPClient.run(child, endpoint: endpoint, peer: peer, configuration: configuration)
                            {
                                connection in
                                await handler(.success(connection), admission)
                            }
                        } catch {
                            await handler(.failure(error), admission)
                        }
                    }
                }
            }
        }
    }

    /// `pid 1234 uid 64055` from SO_PEERCRED, or `nil` where unavailable.
    static func peerDescription(_ channel: any Channel) async -> String? {
        #if os(Linux)
            guard let provider = channel as? any SocketOptionProvider else { return nil }
            let credentials: PeerCredentials? = try? await provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_SOCKET),
                name: SocketOptionName(PeerCredentials.option)
            ).get()
            return credentials.map { "pid \($0.pid) uid \($0.uid)" }
        #else
            return nil
        #endif
    }
}

/// Linux's `struct ucred` (which Glibc's module map does not export without _GNU_SOURCE).
struct PeerCredentials: Sendable {
    /// SO_PEERCRED on Linux.
    static let option: Int32 = 17
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}
