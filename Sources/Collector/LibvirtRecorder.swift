import Dispatch
import EventStore
import Libvirt
import Logging
import QMP
import Synchronization

/// Records every domain of a libvirt daemon through libvirt's QMP passthrough: one session per
/// domain run, from its start (or from the attach, for domains already running) to its stop.
///
/// Whenever the connection to libvirtd ends, every open session ends with it (a gap: what happens
/// until the next connection is not seen), and the connection is tried again with the monitors'
/// backoff; the domains running then get new sessions.
struct LibvirtRecorder: Sendable {
    let uri: String
    let sessions: SessionRecorder

    private var configuration: CollectorConfiguration { sessions.configuration }
    private var logger: Logger { sessions.logger }
    /// Every session's endpoint: the daemon it was recorded through.
    var endpoint: String { "libvirt:\(uri)" }

    /// Runs until cancelled (or, with `once`, until the first connection ends).
    ///
    /// - Returns: the last error if the last attempt failed, for the `once` summary.
    func run() async -> (any Error)? {
        await sessions.retrying(["libvirt.uri": "\(uri)"]) { connected in
            try await recordConnection(connected: connected)
        }
    }

    /// Records one connection until it closes (throwing why) or the task is cancelled.
    private func recordConnection(connected: () -> Void) async throws {
        let queue = LibvirtNoticeQueue()
        let connection = try await Self.blocking { [uri] in
            try LibvirtConnection(uri: uri) { queue.put($0) }
        }
        connected()
        let version = await Self.blocking { connection.hypervisorVersion() }
        var domains = DomainSessions(recorder: self, connection: connection, qemuVersion: version)
        logger.info(
            "Connected to libvirt",
            metadata: ["libvirt.uri": "\(uri)", "qemu.version": "\(version ?? "unknown")"]
        )
        do {
            // Registered before listing: a domain starting meanwhile is both listed and notified. Its
            // events that came before the listing belong to the session it opens, which starts at
            // the first of them.
            let listed = try await Self.blocking { try connection.activeDomains() }
            var notices = queue.takeQueued()
            var firstEvent: [String: Int64] = [:]
            for case .monitorEvent(let domain, _, let seconds, let microseconds, _) in notices
            where seconds >= 0 && (0..<1_000_000).contains(microseconds) && firstEvent[domain.uuid] == nil {
                firstEvent[domain.uuid] = seconds * 1_000_000 + microseconds
            }
            for (domain, state) in listed {
                try await domains.open(domain, state: state, since: firstEvent[domain.uuid])
            }
            while true {
                if notices.isEmpty { notices = await queue.take() }
                if notices.isEmpty { break }  // cancelled
                defer { notices = [] }
                if let closed = try await domains.handle(notices) {
                    await domains.endAll(reason: "libvirt-lost: \(LibvirtNotice.closeReason(closed))")
                    await Self.blocking { connection.close() }
                    throw LibvirtError(
                        code: .connectionFailed,
                        message: "the connection to libvirt at \(uri) closed: \(LibvirtNotice.closeReason(closed))"
                    )
                }
            }
        } catch {
            await domains.endAll(reason: Task.isCancelled ? "recorder-stopped" : "error: \(error)")
            await Self.blocking { connection.close() }
            throw error
        }
        // A graceful stop: no more notices once the connection is closed; record what came before.
        queue.stopWaiting()
        await Self.blocking { connection.close() }
        _ = try? await domains.handle(queue.takeQueued())
        await domains.endAll(reason: "recorder-stopped")
    }

    /// Runs a call that blocks on libvirtd on a thread that may block, not on the task's executor.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
        }
    }

    static func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: body()) }
        }
    }
}

/// The open session of each running domain of one connection, by UUID.
private struct DomainSessions {
    struct Open {
        var handle: SessionHandle
        var sink: SessionEventSink
        var runID: UInt32?
        var logger: Logger
    }

    let recorder: LibvirtRecorder
    let connection: LibvirtConnection
    let qemuVersion: String?
    private var open: [String: Open] = [:]

    init(recorder: LibvirtRecorder, connection: LibvirtConnection, qemuVersion: String?) {
        self.recorder = recorder
        self.connection = connection
        self.qemuVersion = qemuVersion
    }

    /// Records `notices` in order.
    ///
    /// - Returns: the close reason when the connection closed.
    mutating func handle(_ notices: [LibvirtNotice]) async throws -> Int32? {
        // Consecutive events of one domain go to the writer together.
        var pending: [QMPEvent] = []
        var pendingDomain: String?
        for notice in notices {
            if case .monitorEvent(let domain, _, _, _, _) = notice, domain.uuid == pendingDomain {
            } else if let uuid = pendingDomain, let session = open[uuid] {
                await Self.deliver(pending, to: session.sink)
                pending = []
                pendingDomain = nil
            }
            switch notice {
            case .monitorEvent(let domain, let name, let seconds, let microseconds, let data):
                if pendingDomain == nil {
                    let stamped = seconds >= 0 && (0..<1_000_000).contains(microseconds)
                    try await session(
                        for: domain,
                        openedBy: name,
                        at: stamped ? seconds * 1_000_000 + microseconds : nil
                    )
                    pendingDomain = domain.uuid
                }
                let value = data.flatMap { try? JSONValue(parsing: Array($0.utf8)) }
                pending.append(
                    QMPEvent(name: name, seconds: seconds, microseconds: microseconds, data: value, dataText: data)
                )
            case .started(let domain, _):
                try await session(for: domain, openedBy: nil, at: nil)
            case .stopped(let domain, let detail):
                end(domain.uuid, reason: "domain-stopped: \(LibvirtNotice.stopDetail(detail))")
            case .closed(let reason):
                return reason
            }
        }
        if let uuid = pendingDomain, let session = open[uuid] {
            await Self.deliver(pending, to: session.sink)
        }
        return nil
    }

    /// Opens a session for a domain that is already running.
    ///
    /// - Parameter since: when the event that made the run known was stamped: the session starts
    ///   then if that is earlier than now (its notice may have waited behind others), so that the
    ///   run's events never precede its session.
    mutating func open(_ domain: LibvirtDomain, state: LibvirtDomainState?, since: Int64? = nil) async throws {
        let now = recorder.sessions.configuration.now()
        let handle = try await recorder.sessions.database.beginSession(
            NewSession(
                machine: MachineIdentity(name: domain.name, uuid: domain.uuid, endpoint: recorder.endpoint),
                endpoint: recorder.endpoint,
                peer: domain.id.map { "domain id \($0)" },
                qemuVersion: qemuVersion ?? "",
                qemuPackage: "",
                initialStatus: state?.qmpStatus,
                initialRunning: state?.isRunning,
                startedAt: min(now, since ?? now)
            )
        )
        var logger = recorder.sessions.logger
        logger[metadataKey: "libvirt.uri"] = "\(connection.uri)"
        logger[metadataKey: "machine.name"] = "\(domain.name)"
        logger.info(
            "Session started",
            metadata: ["session.id": "\(handle.sessionId)", "machine.status": "\(state?.qmpStatus ?? "unknown")"]
        )
        let sink = SessionEventSink(
            session: handle,
            writer: recorder.sessions.writer,
            now: recorder.sessions.configuration.now
        )
        open[domain.uuid] = Open(handle: handle, sink: sink, runID: domain.id, logger: logger)
    }

    /// Makes sure `domain`'s current run has a session, opening one if needed.
    ///
    /// - Parameter event: the QMP event that made the domain known, if one did. libvirt starts
    ///   QEMU paused and then resumes it, so a first RESUME means the run is starting (`prelaunch`).
    private mutating func session(for domain: LibvirtDomain, openedBy event: String?, at time: Int64?) async throws {
        if let current = open[domain.uuid] {
            if current.runID == domain.id || domain.id == nil { return }
            end(domain.uuid, reason: "domain-restarted")  // a stop libvirt did not tell
        }
        if event == "RESUME" {
            try await open(domain, state: LibvirtDomainState(state: 3, reason: 11), since: time)
        } else {
            let listed = try await LibvirtRecorder.blocking { [connection] in try connection.activeDomains() }
            try await open(domain, state: listed.first { $0.domain.uuid == domain.uuid }?.state, since: time)
        }
    }

    private mutating func end(_ uuid: String, reason: String) {
        guard let session = open.removeValue(forKey: uuid) else { return }
        let (count, _) = session.sink.close()
        recorder.sessions.writer.end(
            SessionEnd(
                sessionId: session.handle.sessionId,
                endedAt: recorder.sessions.configuration.now(),
                reason: reason
            )
        )
        session.logger.info("Session ended", metadata: ["session.end": "\(reason)", "session.events": "\(count)"])
    }

    /// Ends every open session (the connection is gone, or the recorder stops).
    mutating func endAll(reason: String) async {
        for uuid in Array(open.keys) { end(uuid, reason: reason) }
    }

    /// Hands events to the writer, waiting while its backlog is full (or until the recorder stops:
    /// a writer that failed never resumes its readers).
    private static func deliver(_ events: [QMPEvent], to sink: SessionEventSink) async {
        guard !events.isEmpty else { return }
        let waiter = ResumeOnce()
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                waiter.set(continuation)
                if sink.receive(events, resume: waiter.resume) { waiter.resume() }
            }
        } onCancel: {
            waiter.resume()
        }
    }
}

/// A continuation resumed by whichever comes first: the writer's resume, or cancellation.
private final class ResumeOnce: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Void, Never>?
        var resumed = false
    }

    private let state = Mutex(State())

    func set(_ continuation: CheckedContinuation<Void, Never>) {
        let resumeNow = state.withLock { state in
            state.continuation = continuation
            return state.resumed
        }
        if resumeNow { resume() }
    }

    @Sendable func resume() {
        state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.resumed = true
            defer { state.continuation = nil }
            return state.continuation
        }?.resume()
    }
}
