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
    /// Binds `path` with `access`'s mode and group and handles each accepted connection in its own
    /// task until cancelled.
    ///
    /// The socket is bound in a private directory beside `path`, given its mode and group there, and
    /// renamed onto `path`: no moment with another mode, and the process umask is never touched
    /// (other listeners bind at the same time). A stale socket at `path` is replaced; a path where
    /// something accepts connections is refused.
    ///
    /// Nothing is read from a connection before it is admitted: a peer that `access` refuses is
    /// closed at once (and reported to `onRefused`); the others wait for `admit` at most
    /// `admissionTimeout`.
    ///
    /// - Parameters:
    ///   - admit: awaited for each accepted connection before it is negotiated, so that a caller can
    ///     bound how many negotiate at once (a fleet of QEMUs reconnecting together); what it
    ///     returns goes to `handler`. When it throws (cancellation), the connection is closed.
    ///   - onRefused: told about each connection closed without a handshake, and why.
    ///   - handler: called with each negotiated connection (or why negotiation failed) and what
    ///     `admit` returned; the connection closes when it returns.
    /// - Throws: ``QMPError`` `.connectFailed` naming `path` when it cannot be bound.
    public static func listen<Admission: Sendable>(
        at path: String,
        configuration: QMPClientConfiguration = QMPClientConfiguration(),
        access: QMPListenerAccess = QMPListenerAccess(),
        admissionTimeout: Duration = .seconds(30),
        onListening: @Sendable () -> Void = {},
        onRefused: @escaping @Sendable (QMPError) -> Void = { _ in },
        admit: @escaping @Sendable () async throws -> Admission,
        handler: @escaping @Sendable (Result<QMPConnection, any Error>, Admission) async -> Void
    ) async throws {
        let server = try await bind(path, access: access, configuration: configuration)
        onListening()
        let endpoint = QMPEndpoint.unixSocket(path: path)
        try await server.executeThenClose { inbound in
            try await withThrowingDiscardingTaskGroup { group in
                for try await channel in inbound {
                    group.addTask {
                        let credentials = await peerCredentials(channel)
                        let peer = credentials.map { "pid \($0.pid) uid \($0.uid)" }
                        // With an allow-list, a peer whose user cannot be told is refused too.
                        if access.allowedUIDs != nil, !(credentials.map { access.admits(uid: $0.uid) } ?? false) {
                            try? await channel.close()
                            onRefused(
                                QMPError(
                                    code: .peerRefused,
                                    message: "unix:\(path) refused a connection from \(peer ?? "an unknown peer"): "
                                        + "its user is not allowed (--listen-allow-uid)"
                                )
                            )
                            return
                        }
                        guard let admission = await admitted(within: admissionTimeout, admit) else {
                            try? await channel.close()
                            if !Task.isCancelled {
                                onRefused(
                                    QMPError(
                                        code: .peerRefused,
                                        message: "unix:\(path) closed a connection from \(peer ?? "an unknown peer") "
                                            + "that waited \(admissionTimeout) for an attach place"
                                    )
                                )
                            }
                            return
                        }
                        do {
                            // Wrapped only now, right before its handshake, so that a connection
                            // accepted while the listener stops is a plain channel that may be
                            // dropped (NIO traps on an async channel's writer dropped unfinished).
                            // Nothing was read yet: autoRead is still off.
                            let child = try await channel.eventLoop.submit {
                                try QMPClient.makeMessageChannel(channel, configuration: configuration)
                            }.get()
                            try await channel.setOption(ChannelOptions.autoRead, value: true).get()
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

    /// `admit()`'s result, or `nil` when it throws or is cancelled for taking longer than
    /// `timeout`. What `admit` returns is never dropped: a place granted as the timer fires is used.
    private static func admitted<Admission: Sendable>(
        within timeout: Duration,
        _ admit: @escaping @Sendable () async throws -> Admission
    ) async -> Admission? {
        let admitting = Task { try await admit() }
        let timer = Task {
            try await Task.sleep(for: timeout)
            admitting.cancel()
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            try? await admitting.value
        } onCancel: {
            admitting.cancel()
        }
    }

    private static func bind(
        _ path: String,
        access: QMPListenerAccess,
        configuration: QMPClientConfiguration
    ) async throws -> NIOAsyncChannel<any Channel, Never> {
        func failure(_ reason: String, cause: (any Error)? = nil) -> QMPError {
            QMPError(code: .connectFailed, message: "cannot listen on unix:\(path): \(reason)", cause: cause)
        }
        try refuseLiveListener(at: path, failure)
        // A private directory beside the path: the same file system, so the rename is atomic.
        let parent = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        var template = Array(
            ((parent.isEmpty ? (path.hasPrefix("/") ? "" : ".") : parent) + "/.qmplog-listen-XXXXXX").utf8CString
        )
        guard template.withUnsafeMutableBufferPointer({ $0.baseAddress.map { mkdtemp($0) } ?? nil }) != nil else {
            throw failure(String(cString: strerror(errno)))
        }
        let directory = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let staging = directory + "/socket"
        defer {
            unlink(staging)
            rmdir(directory)
        }
        let server: NIOAsyncChannel<any Channel, Never>
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(unixDomainSocketPath: staging) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        // Nothing is read before the connection is admitted (see `listen`).
                        try channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
                        return channel
                    }
                }
        } catch {
            throw failure(QMPClient.describeConnectError(error), cause: error)
        }
        do {
            if let group = access.group, chown(staging, uid_t.max, group) != 0 {
                throw failure("cannot give the socket group \(group): \(String(cString: strerror(errno)))")
            }
            guard chmod(staging, access.mode) == 0, rename(staging, path) == 0 else {
                throw failure(String(cString: strerror(errno)))
            }
        } catch {
            try? await server.channel.close()
            throw error
        }
        return server
    }

    /// Refuses `path` when something accepts connections there (another recorder's listener);
    /// a socket nobody listens on is stale and will be replaced.
    private static func refuseLiveListener(at path: String, _ failure: (String, (any Error)?) -> QMPError) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw failure("\(path) exists and is not a socket", nil)
        }
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard probe >= 0 else { return }
        defer { close(probe) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let fits = withUnsafeMutableBytes(of: &address.sun_path) { raw -> Bool in
            guard path.utf8.count < raw.count else { return false }
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
            return true
        }
        guard fits else { return }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if connected == 0 {
            throw failure("another process is listening on it (another qmplog recorder?)", nil)
        }
    }

    /// The peer's process, user and group from SO_PEERCRED, or `nil` where unavailable.
    static func peerCredentials(_ channel: any Channel) async -> PeerCredentials? {
        #if os(Linux)
            guard let provider = channel as? any SocketOptionProvider else { return nil }
            return try? await provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_SOCKET),
                name: SocketOptionName(PeerCredentials.option)
            ).get()
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
