import QMPTestSupport
import Testing

@testable import QMP

/// The recorder reads events without a value tree (``QMPEvent/init(scanning:)``); it must say
/// exactly what the tree decoder says, for real QEMU's events and for every odd shape.
struct QMPEventScanningTests {
    static let oddFrames = [
        #"{"event": "SHUTDOWN", "data": {"guest": "yes", "reason": "x"}, "timestamp": {"seconds": 1, "microseconds": 2}}"#,
        #"{"event": "SHUTDOWN", "data": {"guest": "yes", "guest": true}, "timestamp": {"seconds": 1, "microseconds": 2}}"#,
        #"{"event": "RESET", "data": {"guest": false, "reason": 5, "reason": "late"}, "event": "SECOND"}"#,
        #"{"ev\u0065nt": "STOP", "timestamp": {"seconds": 3, "microseconds": 4}}"#,
        #"{"event": "BLOCK_IO_ERROR", "data": {"device": "dr\u00efve", "reason": "No space \u2014 left", "action": "stop"}}"#,
        #"{"event": "NON_ASCII", "data": {"node": "ψ", "nested": [{"a": ["é", -0.5e-3, null]}]}}"#,
        #"{"event": "X", "data": 5, "timestamp": {"seconds": 1, "microseconds": 2}}"#,
        #"{"event": "X", "data": null}"#,
        #"{"event": "X", "data": [], "timestamp": []}"#,
        #"{"event": "X", "timestamp": {"seconds": 1.5, "microseconds": 1e3}}"#,
        #"{"event": "X", "timestamp": {"seconds": 9223372036854775808, "microseconds": -9223372036854775808}}"#,
        #"{"event": "X", "timestamp": {"seconds": -0, "microseconds": 12, "seconds": 99}}"#,
        #"{"event": "WATCHDOG", "data": {"action": "pause", "info": {"type": "hyper-v", "arg1": 7}}}"#,
        #"{"event": "GUEST_PANICKED", "data": {"action": "pause", "info": {"type": 1, "arg1": "7", "reason": "r"}}}"#,
        #"{"event": "GUEST_CRASHLOADED", "data": {"info": {"type": "s390", "type": "x", "arg1": -1}}}"#,
        #"{"event": "GUEST_PANICKED", "data": {"info": [], "info": {"type": "late"}}}"#,
        #"{"event": "GUEST_PANICKED", "data": {"reason": "top", "info": {"reason": "inner"}}}"#,
        " \r\n{ \"event\" : \"SPACED\" , \"data\" : { \"guest\" : true } }\r\n",
        #"{"event": "EMPTY", "data": {}}"#,
        #"{"data": {"guest": true}, "timestamp": {"seconds": 1, "microseconds": 2}, "event": "LAST"}"#,
        // Not events, or not valid: the scanner must decline, and the tree decoder says why.
        #"{"event": 42}"#,
        #"{"return": {}, "id": 7}"#,
        #"{"event": "X"} trailing"#,
        #"{"event": "X", "data": {"a": tru}}"#,
        #"{"event": "X", "data": {"a": "\x"}}"#,
        #"{"event": "X", "data": {"a": 01}}"#,
        #"{"event": "X", "data": {"a": "\ud800"}}"#,
        #"{"event": "X", "data": {"a": 1,}}"#,
        #"["event"]"#,
        String(repeating: "[", count: 200) + String(repeating: "]", count: 200),
        #"{"event": "X", "data": "#
            + String(repeating: #"{"a": "#, count: 130) + "1" + String(repeating: "}", count: 130) + "}",
    ]

    @Test(arguments: oddFrames)
    func saysWhatTheTreeDecoderSays(_ frame: String) {
        expectSameAsTree(Array(frame.utf8))
    }

    @Test func saysWhatTheTreeDecoderSaysForEveryRealEvent() throws {
        let lines = try Transcript.allNames().flatMap { try Transcript(named: $0).eventLines }
        try #require(lines.count > 20)
        for line in lines { expectSameAsTree(Array(line.utf8)) }
    }

    @Test func declinesInvalidUTF8AnywhereInTheMessage() {
        for bytes in [
            Array(#"{"event": "X", "data": {"s": ""#.utf8) + [0xC3, 0x28] + Array(#""}}"#.utf8),
            Array(#"{"event": "X", "other": ""#.utf8) + [0xFF] + Array(#""}"#.utf8),
            Array(#"{"#.utf8) + [0x22, 0xE2, 0x82, 0x22] + Array(#": 1, "event": "X"}"#.utf8),
        ] {
            #expect(bytes.withUnsafeBufferPointer { QMPEvent(scanning: $0) } == nil)
            #expect(throws: QMPError.self) { try QMPMessage(frame: bytes) }
        }
    }

    @Test func readsTheFieldsOfATypicalEvent() throws {
        let frame =
            #"{"timestamp": {"seconds": 1795772654, "microseconds": 702021}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}"#
        let event = try #require(Array(frame.utf8).withUnsafeBufferPointer { QMPEvent(scanning: $0) })
        #expect(event.name == "SHUTDOWN")
        #expect(event.seconds == 1_795_772_654 && event.microseconds == 702_021)
        #expect(event.dataText == #"{"guest": true, "reason": "guest-shutdown"}"#)
        #expect(event.runState == QMPRunStateFields(guest: true, reason: "guest-shutdown"))
    }

    private func expectSameAsTree(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        bytes.withUnsafeBufferPointer { buffer in
            let scanned = QMPEvent(scanning: buffer)
            let tree: QMPMessage?
            do { tree = try QMPMessage(treeFrame: buffer) } catch { tree = nil }
            if case .event(let event) = tree {
                #expect(scanned == event, sourceLocation: sourceLocation)
            } else {
                #expect(
                    scanned == nil,
                    "scanned \(String(describing: scanned)), tree says \(String(describing: tree))",
                    sourceLocation: sourceLocation
                )
            }
        }
    }
}
