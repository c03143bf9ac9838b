public import EventStore
import Logging
public import QMP

/// Records one negotiated connection: identify the VM, open a session, stream its events to the
/// writer, and close the session with why it ended.
struct SessionRecorder: Sendable {
    let configuration: CollectorConfiguration
    let database: EventDatabase
    let writer: EventWriter
    let logger: Logger

    /// Returns at EOF; rethrows connection errors after recording them as the session's end.
    func record(_ connection: QMPConnection) async throws {
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
        var seq: Int64 = 0
        do {
            while let events = try await connection.nextEvents() {
                let received = configuration.now()
                let rows = events.map { event in
                    seq += 1
                    return NewEvent(event, session: handle, seq: seq, received: received)
                }
                await writer.append(rows)
            }
            let reason = Task.isCancelled ? "recorder-stopped" : "eof"
            await writer.end(SessionEnd(sessionId: handle.sessionId, endedAt: configuration.now(), reason: reason))
            logger.info("Session ended", metadata: ["session.end": "\(reason)", "session.events": "\(seq)"])
        } catch {
            let reason = Task.isCancelled ? "recorder-stopped" : "error: \(error)"
            await writer.end(SessionEnd(sessionId: handle.sessionId, endedAt: configuration.now(), reason: reason))
            throw error
        }
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
