public import EventStore
import Health
public import Logging
import QMP
public import ServiceLifecycle

/// The recorder as a service: one child task per VM and one writer, stopped gracefully on SIGTERM.
///
/// On graceful shutdown the VM tasks stop reading, their sessions are closed as
/// `recorder-stopped`, and ``run()`` returns once everything received is committed. A VM that
/// fails is logged and retried (or, with `once`, reported at the end); it never stops the others.
/// A database write that fails stops the service with that error.
///
/// ```swift
/// let service = CollectorService(configuration: configuration, database: database, logger: logger)
/// let group = ServiceGroup(configuration: .init(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
/// try await group.run()
/// ```
public struct CollectorService: Service, CustomStringConvertible {
    public let configuration: CollectorConfiguration
    public let database: EventDatabase
    public let logger: Logger

    public init(configuration: CollectorConfiguration, database: EventDatabase, logger: Logger) {
        self.configuration = configuration
        self.database = database
        self.logger = logger
    }

    public var description: String {
        "CollectorService(targets: \(configuration.targets.count), libvirt: \(configuration.libvirtURIs), listening: \(configuration.listenPaths.count), "
            + "watching: \(configuration.watchDirectories.count), store: \(database.path ?? "in memory"))"
    }

    /// - Throws: the store's error when a commit fails; with `once`, ``CollectorError`` `.targetsFailed`
    ///   after committing everything when some target could not be recorded.
    public func run() async throws {
        let writer = EventWriter(
            database: database,
            maximumPending: configuration.maximumPendingEvents,
            maximumPendingBytes: configuration.maximumPendingBytes,
            onCommit: configuration.onCommit,
            health: configuration.health
        )
        let failures = try await withThrowingTaskGroup(of: [String].self) { group in
            group.addTask {
                try await writer.run()
                return []
            }
            group.addTask {
                let failures = await cancelWhenGracefulShutdown { await recordAll(writer: writer) }
                writer.finish()
                return failures
            }
            var failures: [String] = []
            // The first child to throw (the writer) cancels the VM tasks.
            for try await childFailures in group { failures += childFailures }
            return failures
        }
        if !failures.isEmpty {
            throw CollectorError(
                code: .targetsFailed,
                message:
                    "\(failures.count) of \(configuration.targets.count + configuration.libvirtURIs.count) targets could not be recorded:\n"
                    + failures.joined(separator: "\n")
            )
        }
    }

    private func recordAll(writer: EventWriter) async -> [String] {
        let sessions = SessionRecorder(
            configuration: configuration,
            database: database,
            writer: writer,
            logger: logger,
            attaches: AttachLimiter(limit: configuration.maximumConcurrentAttaches)
        )
        return await withTaskGroup(of: String?.self) { group in
            for endpoint in configuration.targets {
                let recorder = MachineRecorder(endpoint: endpoint, sessions: sessions)
                group.addTask {
                    guard let error = await recorder.run() else { return nil }
                    return "  \(endpoint): \(error)"
                }
            }
            for uri in configuration.libvirtURIs {
                let recorder = LibvirtRecorder(uri: uri, sessions: sessions)
                group.addTask {
                    guard let error = await recorder.run() else { return nil }
                    return "  libvirt \(uri): \(error)"
                }
            }
            for path in configuration.listenPaths {
                group.addTask {
                    do {
                        try await listen(at: path, sessions: sessions)
                        return nil
                    } catch {
                        // A graceful stop cancels the accept loop: that is the normal end.
                        if Task.isCancelled || error is CancellationError { return nil }
                        logger.error("Listening failed", metadata: ["qmp.listen": "\(path)", "error": "\(error)"])
                        return "  listen \(path): \(error)"
                    }
                }
            }
            for directory in configuration.watchDirectories {
                let watcher = DirectoryWatcher(
                    directory: directory,
                    sessions: sessions,
                    interval: configuration.watchInterval
                )
                group.addTask {
                    await watcher.run()
                    return nil
                }
            }
            var failures: [String] = []
            for await failure in group {
                if let failure { failures.append(failure) }
            }
            return failures
        }
    }

    /// Accepts QEMU's connections on `path`; each is a session, recorded until it ends. Like a
    /// dialled VM, each waits for an attach place before its handshake (QEMUs told to reconnect all
    /// come back together when the recorder restarts).
    private func listen(at path: String, sessions: SessionRecorder) async throws {
        try await QMPListener.listen(
            at: path,
            configuration: configuration.client,
            access: configuration.listenAccess,
            onListening: { logger.info("Listening", metadata: ["qmp.listen": "\(path)"]) },
            onRefused: { [health = configuration.health] in
                health.refusedConnection()
                logger.warning("Connection refused", metadata: ["qmp.listen": "\(path)", "error": "\($0)"])
            },
            admit: { try await sessions.attaches.acquire() }
        ) { result, permit in
            defer { permit.release() }
            do {
                try await sessions.record(try result.get(), permit: permit)
            } catch {
                if !Task.isCancelled {
                    logger.warning("Connection failed", metadata: ["qmp.listen": "\(path)", "error": "\(error)"])
                }
            }
        }
    }
}
