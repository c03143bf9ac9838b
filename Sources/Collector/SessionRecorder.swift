import EventStore
import Health
import Logging
import QMP
import Synchronization

/// Records one negotiated connection: open a session, stream its events to the writer, identify
/// the VM, and close the session with why it ended.
struct SessionRecorder: Sendable {
    let configuration: CollectorConfiguration
    let database: EventDatabase
    let writer: EventWriter
    let logger: Logger
    /// Shared by every VM of the recorder.
    let attaches: AttachLimiter

    /// Returns at EOF; rethrows connection errors after recording them as the session's end.
    ///
    /// The session opens as soon as the handshake is done, under the endpoint's identity, and
    /// events go to the writer from the first one (bounded by its backlog): QEMU answers the
    /// identification queries behind the events it has queued, which in a storm may be millions.
    /// The answers then move the session to the VM's machine (``SessionIdentification``).
    /// On a graceful stop, reading stops first and everything read is committed.
    ///
    /// - Parameter permit: the attach's place (see ``AttachLimiter``), released once the session
    ///   row is written.
    func record(_ connection: QMPConnection, permit: AttachPermit? = nil) async throws {
        let startedAt = configuration.now()
        let handle = try await database.beginSession(
            NewSession(
                machine: MachineIdentity(name: nil, uuid: nil, endpoint: Self.fallbackName(of: connection)),
                endpoint: connection.endpoint.description,
                peer: connection.peer,
                qemuVersion: connection.greeting.version,
                qemuPackage: connection.greeting.package,
                initialStatus: nil,
                initialRunning: nil,
                startedAt: startedAt
            )
        )
        permit?.release()
        configuration.health.monitor(from: nil, to: .connected)
        defer { configuration.health.monitor(from: .connected, to: nil) }
        let sink = SessionEventSink(session: handle, writer: writer, now: configuration.now)
        var logger = self.logger
        logger[metadataKey: "qmp.endpoint"] = "\(connection.endpoint)"
        var failure: (any Error)?
        do {
            // Events go from the connection's event loop to the writer (held since the greeting until
            // now); this task identifies the VM, then waits for the connection to end.
            try await connection.deliverEvents(to: sink)
            // The queries run in a task that ends (see `inShortLivedTask`).
            logger = try await inShortLivedTask(with: connection) { [self, logger] in
                try await identify($0, session: handle, sink: sink, logger: logger)
            }
            try await connection.waitUntilClosed()
        } catch {
            failure = error
        }
        let reason = Task.isCancelled ? "recorder-stopped" : failure.map { "error: \($0)" } ?? "eof"
        // What was read is the VM's history: take it all before the session's end is queued.
        await connection.stopReading()
        let (count, identified) = sink.close()
        writer.end(
            SessionEnd(
                sessionId: handle.sessionId,
                endedAt: configuration.now(),
                reason: reason,
                discardsEmpty: !identified
            )
        )
        logger.info("Session ended", metadata: ["session.end": "\(reason)", "session.events": "\(count)"])
        if let failure { throw failure }
    }

    /// An unnamed VM without a UUID is known by its endpoint; one that connected to our listener is
    /// told apart by its process.
    private static func fallbackName(of connection: QMPConnection) -> String {
        connection.peer.map { "\(connection.endpoint) (\($0))" } ?? connection.endpoint.description
    }

    /// Asks the VM who it is and in what state, and files the session under its machine.
    ///
    /// - Returns: `logger` with the VM's name.
    private func identify(
        _ connection: QMPConnection,
        session: SessionHandle,
        sink: SessionEventSink,
        logger: Logger
    ) async throws -> Logger {
        let name = try await optionalQuery(.queryName, on: connection)?["name"]?.stringValue
        let uuid = try await optionalQuery(.queryUUID, on: connection)?["UUID"]?.stringValue
        let status = try await optionalQuery(.queryStatus, on: connection)
        let identity = MachineIdentity(name: name, uuid: uuid, endpoint: Self.fallbackName(of: connection))
        let machineId =
            identity.name == nil && identity.uuid == nil
            ? session.machineId : try await database.machineId(for: identity, seenAt: configuration.now())
        sink.identify(
            machineId: machineId,
            initialStatus: status?["status"]?.stringValue,
            initialRunning: status?["running"]?.boolValue
        )
        var logger = logger
        logger[metadataKey: "machine.name"] = "\(identity.displayName)"
        logger.info(
            "Session started",
            metadata: [
                "session.id": "\(session.sessionId)", "qemu.version": "\(connection.greeting.version)",
                "machine.status": "\(status?["status"]?.stringValue ?? "unknown")",
            ]
        )
        return logger
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
        var session: SessionHandle
        var seq: Int64 = 0
        var identified = false
        var closed = false
    }

    private let writer: EventWriter
    private let now: @Sendable () -> Int64
    private let state: Mutex<State>

    init(session: SessionHandle, writer: EventWriter, now: @escaping @Sendable () -> Int64) {
        self.writer = writer
        self.now = now
        self.state = Mutex(State(session: session))
    }

    func receive(_ events: [QMPEvent], resume: @escaping @Sendable () -> Void) -> Bool {
        let received = now()
        // Queued under the lock, so that an identification falls between two batches, never inside one.
        return state.withLock { state in
            // After the session's end is queued, late events would follow it: the session is over.
            guard !state.closed else { return true }
            let session = state.session
            let rows = events.map { event in
                state.seq += 1
                return NewEvent(event, session: session, seq: state.seq, received: received)
            }
            return writer.enqueue(rows, resume: resume)
        }
    }

    /// Files the session under `machineId`: queued after the events taken so far, and the events
    /// after it carry the new machine.
    func identify(machineId: Int64, initialStatus: String?, initialRunning: Bool?) {
        state.withLock { state in
            guard !state.closed else { return }
            let identification = SessionIdentification(
                session: state.session,
                machineId: machineId,
                initialStatus: initialStatus,
                initialRunning: initialRunning
            )
            writer.identify(identification)
            state.session = identification.identified
            state.identified = true
        }
    }

    /// Takes no more events.
    ///
    /// - Returns: how many it took, and whether the session was identified.
    func close() -> (events: Int64, identified: Bool) {
        state.withLock { state in
            state.closed = true
            return (state.seq, state.identified)
        }
    }
}
