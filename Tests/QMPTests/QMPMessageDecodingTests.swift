import QMP
import Testing

struct QMPMessageDecodingTests {
    @Test func decodesQEMUsGreeting() throws {
        let message = try QMPMessage(frame: Array(Self.qemu72Greeting.utf8))
        guard case .greeting(let greeting) = message else {
            Issue.record("not a greeting: \(message)")
            return
        }
        #expect(greeting.version == "7.2.22")
        #expect(greeting.package == "Debian 1:7.2+dfsg-7+deb12u18+b3")
        #expect(greeting.capabilities == ["oob"])
    }

    @Test func decodesAnEventWithoutDataAndItsSignedTimestamp() throws {
        let message = try QMPMessage(
            frame: Array(#"{"timestamp": {"seconds": -1, "microseconds": -1}, "event": "STOP"}"#.utf8)
        )
        #expect(message == .event(QMPEvent(name: "STOP", seconds: -1, microseconds: -1, data: nil, dataText: nil)))
    }

    @Test func keepsTheDataTextVerbatimEvenWhenPretty() throws {
        let frame =
            "{\"event\": \"SHUTDOWN\", \"data\": {\n  \"guest\": true,\n  \"reason\": \"guest-shutdown\"\n}, "
            + "\"timestamp\": {\"seconds\": 1795772654, \"microseconds\": 702021}}"
        guard case .event(let event) = try QMPMessage(frame: Array(frame.utf8)) else {
            Issue.record("not an event")
            return
        }
        #expect(event.dataText == "{\n  \"guest\": true,\n  \"reason\": \"guest-shutdown\"\n}")
        #expect(event.runState == QMPRunStateFields(guest: true, reason: "guest-shutdown"))
        #expect(event.seconds == 1_795_772_654)
        #expect(event.microseconds == 702_021)
    }

    @Test(arguments: [
        (
            #"{"event": "GUEST_PANICKED", "data": {"action": "pause", "info": {"type": "hyper-v", "arg1": 18446744073709551615, "arg2": 0, "arg3": 0, "arg4": 0, "arg5": 0}}, "timestamp": {"seconds": 1, "microseconds": 2}}"#,
            QMPRunStateFields(action: "pause", panicType: "hyper-v", panicArg1: "18446744073709551615")
        ),
        (
            #"{"event": "GUEST_PANICKED", "data": {"action": "pause", "info": {"core": 0, "psw-addr": 18446744073709551615, "reason": "disabled-wait", "psw-mask": 562956395315200, "type": "s390"}}, "timestamp": {"seconds": 1, "microseconds": 2}}"#,
            QMPRunStateFields(action: "pause", panicType: "s390", panicReason: "disabled-wait")
        ),
        (
            #"{"event": "GUEST_PANICKED", "data": {"action": "run", "info": {"type": "confidential-future", "x": 1}}, "timestamp": {"seconds": 1, "microseconds": 2}}"#,
            QMPRunStateFields(action: "run", panicType: "confidential-future")
        ),
        (
            #"{"event": "WATCHDOG", "data": {"action": "inject-nmi"}, "timestamp": {"seconds": 1, "microseconds": 2}}"#,
            QMPRunStateFields(action: "inject-nmi")
        ),
        (
            #"{"event": "SHUTDOWN", "data": {"guest": "yes", "reason": "brand-new-cause"}, "timestamp": {"seconds": 1, "microseconds": 2}}"#,
            QMPRunStateFields(reason: "brand-new-cause")
        ),
        (
            #"{"event": "SHUTDOWN", "timestamp": {"seconds": 1, "microseconds": 2}}"#,
            QMPRunStateFields()
        ),
    ])
    func extractsRunStateFieldsKeepingUnknownValues(_ frame: String, expected: QMPRunStateFields) throws {
        guard case .event(let event) = try QMPMessage(frame: Array(frame.utf8)) else {
            Issue.record("not an event")
            return
        }
        #expect(event.runState == expected)
    }

    @Test func decodesRepliesAndErrorsWithTheirIds() throws {
        #expect(
            try QMPMessage(frame: Array(#"{"return": {}, "id": 7}"#.utf8))
                == .success(id: .number("7"), result: .object([]))
        )
        #expect(
            try QMPMessage(
                frame: Array(
                    #"{"id": "x", "error": {"class": "CommandNotFound", "desc": "The command foo has not been found"}}"#
                        .utf8
                )
            )
                == .failure(id: .string("x"), errorClass: "CommandNotFound", desc: "The command foo has not been found")
        )
        #expect(
            try QMPMessage(frame: Array(#"{"error": {"class": "GenericError", "desc": "JSON parse error"}}"#.utf8))
                == .failure(id: nil, errorClass: "GenericError", desc: "JSON parse error")
        )
    }

    @Test(arguments: [#"{"hello": "world"}"#, #"{"event": 42}"#, #"{"QMP": {"version": "seven"}}"#])
    func rejectsObjectsThatAreNotQMP(_ frame: String) {
        let error = #expect(throws: QMPError.self) { try QMPMessage(frame: Array(frame.utf8)) }
        #expect(error?.code == .notQMP)
    }

    static let qemu72Greeting =
        #"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}"#
}
