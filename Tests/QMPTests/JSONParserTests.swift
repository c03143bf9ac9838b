import QMP
import Testing

struct JSONParserTests {
    @Test func keepsUInt64PrecisionAndNumberText() throws {
        let value = try JSONValue(parsing: Array(#"{"arg1": 18446744073709551615, "neg": -1, "f": 0.5e3}"#.utf8))
        #expect(value["arg1"]?.uint64Value == UInt64.max)
        #expect(value["arg1"] == .number("18446744073709551615"))
        #expect(value["neg"]?.int64Value == -1)
        #expect(value["f"] == .number("0.5e3"))
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        let value = try JSONValue(parsing: Array(#"{"s": "a\"b\\c\/d\n\u00e9\ud83d\ude00"}"#.utf8))
        #expect(value["s"]?.stringValue == "a\"b\\c/d\né😀")
    }

    @Test func keepsMemberOrderAndRoundTripsCompactly() throws {
        let text = #"{"z":1,"a":[true,false,null],"m":{"k":"v\"q"}}"#
        let value = try JSONValue(parsing: Array(text.utf8))
        #expect(value.compactText == text)
    }

    @Test(arguments: [
        #"{"a": 1,}"#, #"{"a" 1}"#, #"{"a": tru}"#, #"{"a": 01}"#, #"{"a": "x"#, #"{"a": 1} x"#, #"{"a": -}"#,
        #"{"a": "\x"}"#, #"{"a": "\ud800"}"#, "{\"a\": \"tab\there\"}",
    ])
    func rejectsMalformedJSON(_ text: String) {
        let error = #expect(throws: QMPError.self) { try JSONValue(parsing: Array(text.utf8)) }
        #expect(error?.code == .malformedMessage)
    }

    @Test func rejectsInvalidUTF8InStrings() {
        let bytes: [UInt8] = Array(#"{"a": ""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)
        let error = #expect(throws: QMPError.self) { try JSONValue(parsing: bytes) }
        #expect(error?.message.contains("UTF-8") == true)
    }

    @Test func limitsNestingInsteadOfExhaustingTheStack() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let error = #expect(throws: QMPError.self) { try JSONValue(parsing: Array(#"{"a": \#(deep)}"#.utf8)) }
        #expect(error?.message.contains("nesting") == true)
    }
}
