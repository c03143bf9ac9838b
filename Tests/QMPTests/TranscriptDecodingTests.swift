import QMP
import QMPTestSupport
import Testing

/// Every message real QEMU sent in the fixtures decodes, and the run-state columns come out right.
struct TranscriptDecodingTests {
    @Test(arguments: try Transcript.allNames())
    func everyRecordedMessageDecodes(_ name: String) throws {
        let transcript = try Transcript(named: name)
        try #require(!transcript.serverMessages.isEmpty)
        let messages = try transcript.serverMessages.map { try QMPMessage(frame: Array($0.utf8)) }
        guard case .greeting(let greeting) = messages.first else {
            Issue.record("\(name) does not start with a greeting")
            return
        }
        #expect(greeting.version == "7.2.22")
        #expect(messages.contains { if case .event = $0 { true } else { false } })
    }

    @Test func realEventsYieldTheirGuestReasonAndAction() throws {
        let fields = try ["guest-panic-pvpanic-poweroff", "host-system-reset"].flatMap { name in
            try Transcript(named: name).eventLines.map { line -> String in
                guard case .event(let event) = try QMPMessage(frame: Array(line.utf8)) else { return "?" }
                let runState = event.runState
                return [
                    event.name, runState.guest.map { "\($0)" } ?? "-", runState.reason ?? "-", runState.action ?? "-",
                ]
                .joined(separator: " ")
            }
        }
        #expect(fields.first == "RESUME - - -")
        #expect(fields.contains("GUEST_PANICKED - - poweroff"))
        #expect(fields.contains("SHUTDOWN true guest-panic -"))
        #expect(fields.contains("RESET false host-qmp-system-reset -"))
        #expect(fields.contains("RESET true guest-reset -"))
    }
}
