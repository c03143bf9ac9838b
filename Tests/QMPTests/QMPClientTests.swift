import QMP
import QMPTestSupport
import Synchronization
import Testing

/// The client end to end over a real Unix socket against ``FakeQMPServer``.
struct QMPClientTests {
    @Test func negotiatesQueriesAndReceivesEventsInOrder() async throws {
        let events = [
            FakeQMPBehavior.event("STOP", micro: 1),
            FakeQMPBehavior.event("RESUME", micro: 2),
            FakeQMPBehavior.event("SHUTDOWN", data: #"{"guest": true, "reason": "guest-shutdown"}"#, micro: 3),
        ]
        let (received, status, server) = try await withServer(.qemu(events: events)) { path in
            try await QMPClient.withConnection(to: .unixSocket(path: path)) { connection in
                let status = try await connection.execute(.queryStatus)
                var received: [QMPEvent] = []
                while let batch = try await connection.nextEvents() { received += batch }
                return (received, status)
            }
        }
        #expect(status["status"]?.stringValue == "running")
        #expect(received.map(\.name) == ["STOP", "RESUME", "SHUTDOWN"])
        #expect(received.map(\.microseconds) == [1, 2, 3])
        #expect(received.last?.runState.guest == true)
        #expect(server == ["qmp_capabilities", "query-status"])
    }

    @Test func keepsEventsThatArriveBeforeAReplyAndMatchesTheReplyById() async throws {
        let behavior = FakeQMPBehavior(onConnect: [FakeQMPBehavior.greeting]) { command, id in
            guard command == "query-name" else { return ([#"{"return": {}, "id": \#(id)}"#], false) }
            return (
                [
                    #"{"return": {"name": "stale"}, "id": 12345}"#,
                    FakeQMPBehavior.event("RESUME"),
                    #"{"return": {"name": "vm7"}, "id": \#(id)}"#,
                ],
                true
            )
        }
        let (name, events, _) = try await withServer(behavior) { path in
            try await QMPClient.withConnection(to: .unixSocket(path: path)) { connection in
                let name = try await connection.execute(.queryName)["name"]?.stringValue
                var events: [QMPEvent] = []
                while let batch = try await connection.nextEvents() { events += batch }
                return (name, events)
            }
        }
        #expect(name == "vm7")
        #expect(events.map(\.name) == ["RESUME"])
    }

    @Test func deliversEventsToASinkInOrderAndStopsReadingUntilItResumes() async throws {
        let behavior = FakeQMPBehavior(onConnect: [FakeQMPBehavior.greeting]) { command, id in
            switch command {
            case "query-name": ([FakeQMPBehavior.event("RESUME"), #"{"return": {}, "id": \#(id)}"#], false)
            case "query-version": ([FakeQMPBehavior.event("STOP"), #"{"return": {}, "id": \#(id)}"#], false)
            case "query-status": ([#"{"return": {}, "id": \#(id)}"#, FakeQMPBehavior.event("RESET")], true)
            default: ([#"{"return": {}, "id": \#(id)}"#], false)
            }
        }
        let sink = CollectingSink()
        let (viaStream, commands) = try await withServer(behavior) { path in
            let configuration = QMPClientConfiguration(deliversEventsToSink: true)
            return try await QMPClient.withConnection(to: .unixSocket(path: path), configuration: configuration) {
                connection in
                _ = try await connection.execute(.queryName)
                // The RESUME that came with the reply waited for the sink; the sink refuses it (full
                // queue), so the socket is not read until the sink resumes 100 ms later: without
                // that the next replies never arrive (measured: query-version times out).
                try await connection.deliverEvents(to: sink)
                _ = try await connection.execute(.queryVersion)
                _ = try await connection.execute(.queryStatus)
                var viaStream: [QMPEvent] = []
                while let batch = try await connection.nextEvents() { viaStream += batch }
                return viaStream
            }
        }
        #expect(viaStream.isEmpty, "events go to the sink only")
        #expect(sink.names == ["RESUME", "STOP", "RESET"])
        #expect(sink.deliveries >= 2)
        #expect(commands == ["qmp_capabilities", "query-name", "query-version", "query-status"])
    }

    @Test func surfacesAnErrorReplyAsCommandFailedWithClassAndDesc() async throws {
        let behavior = FakeQMPBehavior(onConnect: [FakeQMPBehavior.greeting]) { command, id in
            guard command == "query-uuid" else { return ([#"{"return": {}, "id": \#(id)}"#], false) }
            return (
                [
                    #"{"error": {"class": "CommandNotFound", "desc": "The command query-uuid has not been found"}, "id": \#(id)}"#
                ], false
            )
        }
        let (error, _) = try await withServer(behavior) { path in
            try await QMPClient.withConnection(to: .unixSocket(path: path)) { connection in
                do {
                    _ = try await connection.execute(.queryUUID)
                    return QMPError?.none
                } catch let error as QMPError {
                    return error
                }
            }
        }
        #expect(error?.code == .commandFailed)
        #expect(error?.errorClass == "CommandNotFound")
        #expect(error?.errorDescription == "The command query-uuid has not been found")
    }

    @Test func reportsBusyWhenThePeerNeverGreets() async throws {
        let silent = FakeQMPBehavior(onConnect: []) { _, _ in ([], false) }
        let error = try await connectionError(
            silent,
            configuration: QMPClientConfiguration(greetingTimeout: .milliseconds(200))
        )
        #expect(error.code == .busy)
        #expect(error.message.contains("another client"))
    }

    @Test func aCommandQEMUNeverAnswersTimesOutAfterSilence() async throws {
        // Given a monitor that negotiates, then answers nothing
        let mute = FakeQMPBehavior(onConnect: [FakeQMPBehavior.greeting]) { command, id in
            command == "qmp_capabilities" ? ([#"{"return": {}, "id": \#(id)}"#], false) : ([], false)
        }
        let (error, _): (QMPError?, [String]) = try await withServer(mute) { path in
            do {
                try await QMPClient.withConnection(
                    to: .unixSocket(path: path),
                    configuration: QMPClientConfiguration(replyTimeout: .milliseconds(300))
                ) { connection in _ = try await connection.execute(.queryStatus) }
                return nil
            } catch let error as QMPError {
                return error
            }
        }
        // Then the query fails with a reply timeout naming the command
        #expect(error?.code == .replyTimeout)
        #expect(error?.message.contains("did not answer 'query-status'") == true, "\(String(describing: error))")
    }

    @Test func reportsAPeerThatIsNotQMP() async throws {
        let http = FakeQMPBehavior(onConnect: ["HTTP/1.1 400 Bad Request\r\n\r\n"]) { _, _ in ([], false) }
        #expect(try await connectionError(http).code == .notQMP)
        let json = FakeQMPBehavior(onConnect: [#"{"hello": "world"}"# + "\n"]) { _, _ in ([], false) }
        #expect(try await connectionError(json).code == .notQMP)
    }

    @Test func reportsADisconnectInTheMiddleOfAMessage() async throws {
        let behavior = FakeQMPBehavior(onConnect: [FakeQMPBehavior.greeting]) { command, id in
            guard command == "query-status" else { return ([#"{"return": {}, "id": \#(id)}"#], false) }
            return (
                [
                    #"{"return": {}, "id": \#(id)}"#, FakeQMPBehavior.event("STOP"),
                    #"{"timestamp": {"seconds": 1, "micro"#,
                ], true
            )
        }
        let (outcome, _) = try await withServer(behavior) { path in
            try await QMPClient.withConnection(to: .unixSocket(path: path)) { connection in
                _ = try await connection.execute(.queryStatus)
                var names: [String] = []
                do {
                    while let batch = try await connection.nextEvents() { names += batch.map(\.name) }
                    return (names, QMPError?.none)
                } catch let error as QMPError {
                    return (names, error)
                }
            }
        }
        #expect(outcome.0 == ["STOP"], "the complete event before the cut is delivered")
        #expect(outcome.1?.code == .malformedMessage)
    }

    @Test func namesTheSocketWhenItIsMissingOrNotASocket() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let missing = directory.file("missing.qmp")
        let error = await #expect(throws: QMPError.self) {
            try await QMPClient.withConnection(to: .unixSocket(path: missing)) { _ in () }
        }
        #expect(error?.code == .connectFailed)
        #expect(error?.message == "cannot connect to unix:\(missing): no such file")
        let error2 = await #expect(throws: QMPError.self) {
            try await QMPClient.withConnection(to: .unixSocket(path: directory.path)) { _ in () }
        }
        #expect(error2?.message == "cannot connect to unix:\(directory.path): not a socket")
    }

    // MARK: - Helpers

    private func withServer<T: Sendable>(
        _ behavior: FakeQMPBehavior,
        _ body: (String) async throws -> T
    ) async throws -> (T, [String]) {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = try await FakeQMPServer.start(at: directory.file("fake.qmp"), behavior: behavior)
        do {
            let result = try await body(server.path)
            await server.stop()
            return (result, server.receivedCommands)
        } catch {
            await server.stop()
            throw error
        }
    }

    private func withServer<A: Sendable, B: Sendable>(
        _ behavior: FakeQMPBehavior,
        _ body: (String) async throws -> (A, B)
    ) async throws -> (A, B, [String]) {
        let (result, commands): ((A, B), [String]) = try await withServer(behavior, body)
        return (result.0, result.1, commands)
    }

    private func connectionError(
        _ behavior: FakeQMPBehavior,
        configuration: QMPClientConfiguration = QMPClientConfiguration()
    ) async throws -> QMPError {
        let (error, _): (QMPError?, [String]) = try await withServer(behavior) { path in
            do {
                try await QMPClient.withConnection(to: .unixSocket(path: path), configuration: configuration) { _ in ()
                }
                return nil
            } catch let error as QMPError {
                return error
            }
        }
        return try #require(error)
    }
}

/// Collects events; refuses its first delivery and resumes reading 100 ms later.
private final class CollectingSink: QMPEventSink {
    private let state = Mutex<(names: [String], deliveries: Int)>(([], 0))

    var names: [String] { state.withLock { $0.names } }
    var deliveries: Int { state.withLock { $0.deliveries } }

    func receive(_ events: [QMPEvent], resume: @escaping @Sendable () -> Void) -> Bool {
        let first = state.withLock { state in
            state.names += events.map(\.name)
            state.deliveries += 1
            return state.deliveries == 1
        }
        guard first else { return true }
        Task {
            try? await Task.sleep(for: .milliseconds(100))
            resume()
        }
        return false
    }
}
