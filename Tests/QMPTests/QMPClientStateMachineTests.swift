import QMP
import Testing

struct QMPClientStateMachineTests {
    @Test func negotiatesCapabilitiesAfterTheGreeting() throws {
        var machine = QMPClientStateMachine()
        let greeting = QMPGreeting(major: 7, minor: 2, micro: 22, package: "", capabilities: ["oob"])
        #expect(try machine.receive(.greeting(greeting)) == .sendCapabilities(greeting, id: 1))
        #expect(try machine.receive(.success(id: .number("1"), result: .object([]))) == .ready)
        #expect(machine.state == .ready)
    }

    @Test func deliversEventsThatArriveBeforeTheReplyAndMatchesTheReplyById() throws {
        var machine = try makeReadyMachine()
        let id = try machine.send(.queryStatus)
        let stop = QMPEvent(name: "STOP", seconds: 1, microseconds: 0, data: nil, dataText: nil)
        #expect(try machine.receive(.event(stop)) == .deliver(stop))
        #expect(try machine.receive(.success(id: .number("999"), result: .null)) == .ignore)
        #expect(try machine.receive(.success(id: .number(String(id)), result: .bool(true))) == .reply(.bool(true)))
        #expect(machine.state == .ready)
    }

    @Test func turnsAnErrorReplyIntoData() throws {
        var machine = try makeReadyMachine()
        let id = try machine.send(.queryName)
        let action = try machine.receive(.failure(id: .number(String(id)), errorClass: "GenericError", desc: "nope"))
        #expect(action == .commandFailed(command: "query-name", errorClass: "GenericError", desc: "nope"))
    }

    @Test func rejectsAPeerWhoseFirstMessageIsNotAGreeting() {
        var machine = QMPClientStateMachine()
        let error = #expect(throws: QMPError.self) { try machine.receive(.success(id: nil, result: .null)) }
        #expect(error?.code == .notQMP)
    }

    @Test func refusesToSendBeforeTheHandshake() {
        var machine = QMPClientStateMachine()
        let error = #expect(throws: QMPError.self) { try machine.send(.queryStatus) }
        #expect(error?.code == .notReady, "\(String(describing: error))")
    }

    private func makeReadyMachine() throws -> QMPClientStateMachine {
        var machine = QMPClientStateMachine()
        _ = try machine.receive(.greeting(QMPGreeting(major: 7, minor: 2, micro: 0, package: "", capabilities: [])))
        _ = try machine.receive(.success(id: .number("1"), result: .object([])))
        return machine
    }
}

struct QMPCommandTests {
    @Test(arguments: [
        "quit", "stop", "cont", "system_reset", "system_powerdown", "device_del", "query-", "human-monitor-command",
    ])
    func refusesEveryCommandThatIsNotAQuery(_ name: String) {
        let error = #expect(throws: QMPError.self) { try QMPCommand(name: name) }
        #expect(error?.code == .commandNotAllowed)
    }

    @Test func refusesArgumentsThatAreNotAnObject() {
        let error = #expect(throws: QMPError.self) { try QMPCommand(name: "query-block", arguments: .string("flat")) }
        #expect(error?.code == .invalidArguments)
    }

    @Test func encodesAllowedCommandsWithTheirId() throws {
        let command = try QMPCommand(name: "query-block", arguments: .object([("flat", .bool(true))]))
        #expect(try command.wireText(id: 3) == #"{"execute":"query-block","arguments":{"flat":true},"id":3}"# + "\r\n")
        #expect(try QMPCommand.capabilities.wireText(id: 1) == #"{"execute":"qmp_capabilities","id":1}"# + "\r\n")
    }
}
