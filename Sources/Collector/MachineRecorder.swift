import Logging
import QMP

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Dials one VM's monitor and records it, attaching again after a backoff whenever the
/// connection ends (unless `once`).
struct MachineRecorder: Sendable {
    let endpoint: QMPEndpoint
    let sessions: SessionRecorder
    /// For discovered sockets: stop once the socket file is gone (the VM was removed).
    var stopWhenSocketRemoved = false

    private var configuration: CollectorConfiguration { sessions.configuration }
    private var logger: Logger { sessions.logger }

    /// Runs until cancelled (or, with `once`, until the first connection ends).
    ///
    /// - Returns: the last error if the last attempt failed, for the `once` summary.
    func run() async -> (any Error)? {
        await sessions.retrying(
            ["qmp.endpoint": "\(endpoint)"],
            isFinished: {
                guard stopWhenSocketRemoved, case .unixSocket(let path) = endpoint, access(path, F_OK) != 0 else {
                    return false
                }
                logger.info("Socket removed; no longer watching it", metadata: ["qmp.endpoint": "\(endpoint)"])
                return true
            }
        ) { connected in
            let permit = try await sessions.attaches.acquire()
            defer { permit.release() }
            try await QMPClient.withConnection(to: endpoint, configuration: configuration.client) { connection in
                connected()
                try await sessions.record(connection, permit: permit)
            }
        }
    }
}
