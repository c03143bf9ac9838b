public import EventStore
import Logging
public import QMP
import Synchronization

/// Records one negotiated connection: identify the VM, open a session, stream its events to the
/// writer, and close the session with why it ended.
struct SessionRecorder: Sendable {
    let configuration: CollectorConfiguration
    let database: EventDatabase
    let writer: EventWriter
    let logger: Logger
    /// Shared by every VM of the recorder.
    let attaches: AttachLimiter

    /// Returns at EOF; rethrows connection errors after recording them as the session's end.
    ///
    /// - Parameter permit: the attach's place (see ``AttachLimiter``), released once the session
    ///   row is written.
    func record(_ connection: QMPConnection, permit: AttachPermit? = nil) async throws {
        // The queries and the session row run in a task that ends (see `inShortLivedTask`); this
        // task then only waits, for as long as the VM stays attached.
        let (handle, logger) = try await inShortLivedTask(with: connection) { try await begin($0) }
        permit?.release()
        // Events go from the connection's event loop to the writer (held since the greeting until
        // now); this task waits for the connection to end.
        let sink = SessionEventSink(session: handle, writer: writer, now: configuration.now)
        do {
            try await connection.deliverEvents(to: sink)
            while let events = try await connection.nextEvents() { _ = sink.receive(events, resume: {}) }
            let reason = Task.isCancelled ? "recorder-stopped" : "eof"
            let count = sink.close()
            writer.end(SessionEnd(sessionId: handle.sessionId, endedAt: configuration.now(), reason: reason))
            logger.info("Session ended", metadata: ["session.end": "\(reason)", "session.events": "\(count)"])
        } catch {
            let reason = Task.isCancelled ? "recorder-stopped" : "error: \(error)"
            sink.close()
            writer.end(SessionEnd(sessionId: handle.sessionId, endedAt: configuration.now(), reason: reason))
            throw error
        }
    }

    /// Identifies the VM, opens its session and logs it.
    ///
    /// - Returns: the session's ids, and a logger with the VM's metadata.
    private func begin(_ connection: QMPConnection) async throws -> (SessionHandle, Logger) {
        let endpoint = connection.endpoint
        let startedAt = configuration.now()
        let name = try await optionalQuery(.queryName, on: connection)?["name"]?.stringValue
        let uuid = try await optionalQuery(.queryUUID, on: connection)?["UUID"]?.stringValue
        let status = try await optionalQuery(.queryStatus, on: connection)
        // An unnamed VM that connected to our listener is told apart by its process.
        let fallback = connection.peer.map { "\(endpoint) (\($0))" } ?? endpoint.description
        let identity = MachineIdentity(name: name, uuid: uuid, endpoint: fallback)
        let greeting = connection.greeting
        let handle = try await database.beginSession(
            NewSession(
                machine: identity,
                endpoint: endpoint.description,
                peer: connection.peer,
                qemuVersion: greeting.version,
                qemuPackage: greeting.package,
                initialStatus: status?["status"]?.stringValue,
                initialRunning: status?["running"]?.boolValue,
                startedAt: startedAt
            )
        )
        var logger = self.logger
        logger[metadataKey: "machine.name"] = "\(identity.displayName)"
        logger[metadataKey: "qmp.endpoint"] = "\(endpoint)"
        logger.info(
            "Session started",
            metadata: [
                "session.id": "\(handle.sessionId)", "qemu.version": "\(greeting.version)",
                "machine.status": "\(status?["status"]?.stringValue ?? "unknown")",
            ]
        )
        return (handle, logger)
    }

    /// A query's result, or `nil` when QEMU answers it with an error (an older QEMU may lack it).
    private func optionalQuery(_ command: QMPCommand, on connection: QMPConnection) async throws -> JSONValue? {
        do {
            return try await connection.execute(command)
        } catch let error as QMPError where error.code == .commandFailed {
            logger.debug("Query failed", metadata: ["qmp.command": "\(command.name)", "error": "\(error)"])
            return nil
        }
    }
}

/// Numbers a session's events and queues them for the writer, on the connection's event loop.
final class SessionEventSink: QMPEventSink {
    private struct State {
        var seq: Int64 = 0
        var closed = false
    }

    private let session: SessionHandle
    private let writer: EventWriter
    private let now: @Sendable () -> Int64
    private let state = Mutex(State())

    init(session: SessionHandle, writer: EventWriter, now: @escaping @Sendable () -> Int64) {
        self.session = session
        self.writer = writer
        self.now = now
    }

    func receive(_ events: [QMPEvent], resume: @escaping @Sendable () -> Void) -> Bool {
        let received = now()
        let rows: [NewEvent]? = state.withLock { state in
            // After the session's end is queued, late events would follow it: the session is over.
            guard !state.closed else { return nil }
            return events.map { event in
                state.seq += 1
                return NewEvent(event, session: session, seq: state.seq, received: received)
            }
        }
        guard let rows else { return true }
        return writer.enqueue(rows, resume: resume)
    }

    /// Takes no more events; returns how many it took.
    @discardableResult
    func close() -> Int64 {
        state.withLock { state in
            state.closed = true
            return state.seq
        }
    }
}

extension NewEvent {
    /// The row for `event`, the `seq`-th of its session, with the run-state columns extracted and
    /// `data` kept verbatim.
    public init(_ event: QMPEvent, session: SessionHandle, seq: Int64, received: Int64) {
        let fields = event.runState
        self.init(
            session: session,
            seq: seq,
            name: event.name,
            seconds: event.seconds,
            microseconds: event.microseconds,
            received: received,
            guest: fields.guest,
            reason: fields.reason,
            action: fields.action,
            panicType: fields.panicType,
            panicReason: fields.panicReason,
            panicArg1: fields.panicArg1,
            data: event.dataText
        )
    }
}
