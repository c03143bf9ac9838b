import NIOCore
import NIOEmbedded
import NIOTestUtils
import QMP
import Testing

struct QMPFramingTests {
    @Test(arguments: [
        (
            "CRLF-terminated", "{\"event\": \"STOP\"}\r\n{\"event\": \"RESUME\"}\r\n",
            ["{\"event\": \"STOP\"}", "{\"event\": \"RESUME\"}"]
        ),
        ("LF-terminated", "{\"a\": 1}\n{\"b\": 2}\n", ["{\"a\": 1}", "{\"b\": 2}"]),
        ("no separator", "{\"a\": 1}{\"b\": 2}", ["{\"a\": 1}", "{\"b\": 2}"]),
        (
            "pretty multi-line", "{\n    \"return\": {\n        \"status\": \"running\"\n    }\n}\n",
            ["{\n    \"return\": {\n        \"status\": \"running\"\n    }\n}"]
        ),
        (
            "braces and escaped quotes inside strings", #"{"desc": "a } b { \" } \\"}"# + "\r\n",
            [#"{"desc": "a } b { \" } \\"}"#]
        ),
        ("nested arrays", #"{"a": [[{"b": "]"}]]}"#, [#"{"a": [[{"b": "]"}]]}"#]),
    ])
    func splitsCompleteObjectsFedByteByByteAndAllAtOnce(_ name: String, input: String, expected: [String]) throws {
        // Given a stream, when it is fed in every chunking the verifier tries, then the same objects come out.
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(ByteBuffer(string: input), expected.map { ByteBuffer(string: $0) })],
            decoderFactory: { QMPFrameDecoder() }
        )
    }

    @Test func rejectsAMessageLargerThanTheCapWithoutWaitingForItsEnd() throws {
        var scanner = QMPFrameScanner(maximumMessageSize: 64)
        let bytes = Array(("{\"data\": \"" + String(repeating: "x", count: 100)).utf8)
        let error = #expect(throws: QMPError.self) { try bytes.withUnsafeBytes { try scanner.scan($0) } }
        #expect(error?.code == .messageTooLarge)
    }

    @Test func acceptsAMessageExactlyAtTheCap() throws {
        let message = #"{"a": "12345"}"#
        var scanner = QMPFrameScanner(maximumMessageSize: message.utf8.count)
        let found = try Array(message.utf8).withUnsafeBytes { try scanner.scan($0) }
        #expect(found == .message(0..<message.utf8.count))
    }

    @Test(arguments: ["[1, 2]", "\"string\"", "42", "garbage", "SSH-2.0-OpenSSH_9.2\r\n"])
    func rejectsInputThatIsNotAJSONObject(_ input: String) throws {
        var scanner = QMPFrameScanner(maximumMessageSize: 1024)
        let error = #expect(throws: QMPError.self) { try Array(input.utf8).withUnsafeBytes { try scanner.scan($0) } }
        #expect(error?.code == .notQMP)
    }

    @Test func reportsATruncatedMessageAtEndOfStream() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(QMPFrameDecoder()))
        try channel.writeInbound(ByteBuffer(string: "{\"event\": \"STOP\"}\r\n{\"event\": \"RES"))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "{\"event\": \"STOP\"}"))
        let error = #expect(throws: QMPError.self) { try channel.finish() }
        #expect(error?.code == .malformedMessage)
    }

    @Test func keepsItsPlaceAcrossPartialReads() throws {
        // Given a message arriving in pieces, when each piece is scanned, then no byte is scanned twice
        // and the message is found once complete.
        var scanner = QMPFrameScanner(maximumMessageSize: 1024)
        var buffer: [UInt8] = []
        var results: [QMPFrameScanner.Result] = []
        for piece in ["  {\"a\"", ": \"}\"", "}\r\n"] {
            buffer += Array(piece.utf8)
            let result = try buffer.withUnsafeBytes { try scanner.scan($0) }
            if case .needMoreData(let discardable) = result { buffer.removeFirst(discardable) }
            results.append(result)
        }
        #expect(results == [.needMoreData(discardable: 2), .needMoreData(discardable: 0), .message(0..<10)])
    }
}
