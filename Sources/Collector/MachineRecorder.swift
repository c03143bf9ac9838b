import EventStore
import Logging
import QMP

/// Records one VM's monitor: attach, identify, open a session, stream its events to the writer,
/// close the session, and (unless `once`) attach again after a backoff.
struct MachineRecorder: Sendable {
    let endpoint: QMPEndpoint
    let configuration: CollectorConfiguration
    let database: EventDatabase
    let writer: EventWriter
    let logger: Logger

    /// Runs until cancelled (or, with `once`, until the first connection ends).
    ///
    /// - Returns: the last error if no session could be recorded, for the `once` summary.
    func run() async -> (any Error)? {
        var attempt = 0
        var generator = SystemRandomNumberGenerator()
        var lastError: (any Error)?
        while !Task.isCancelled {
            do {
                try await recordSession()
                lastError = nil
                attempt = 0
            } catch {
                if Task.isCancelled { return nil }
                lastError = error
                logger.warning(
                    "Recording failed",
                    metadata: ["qmp.endpoint": "\(endpoint)", "error": "\(error)"]
                )
            }
            if configuration.once { return lastError }
            let delay = configuration.reconnect.delay(forAttempt: attempt, using: &generator)
            attempt += 1
            logger.debug("Reconnecting", metadata: ["qmp.endpoint": "\(endpoint)", "delay": "\(delay)"])
            do {
                try await Task.sleep(for: delay)
            } catch {
                return nil
            }
        }
        return nil
    }

    /// One connection: from attach to EOF, error or cancellation.
    func recordSession() async throws {
        try await QMPClient.withConnection(to: endpoint, configuration: configuration.client) { connection in
            let startedAt = configuration.now()
            let name = try await optionalQuery(.queryName, on: connection)?["name"]?.stringValue
            let uuid = try await optionalQuery(.queryUUID, on: connection)?["UUID"]?.stringValue
            let status = try await optionalQuery(.queryStatus, on: connection)
            let identity = MachineIdentity(name: name, uuid: uuid, endpoint: endpoint.description)
            let greeting = connection.greeting
            let handle = try await database.beginSession(
                NewSession(
                    machine: identity,
                    endpoint: endpoint.description,
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
                        return Self.row(for: event, session: handle, seq: seq, received: received)
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

    static func row(for event: QMPEvent, session: SessionHandle, seq: Int64, received: Int64) -> NewEvent {
        let fields = event.runState
        return NewEvent(
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
