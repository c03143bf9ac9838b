extension QMPEvent {
    /// Reads an event message without building a value tree: the recorder's hot path.
    ///
    /// The whole message is checked as strictly as ``QMPMessage/init(frame:)`` checks it, but only
    /// the envelope (`event`, `timestamp`) and the run-state members of `data` become values; `data`
    /// itself is kept as text. The first of duplicate members counts, as with ``JSONValue``.
    ///
    /// - Returns: `nil` when the message is not an event with a string name, or is not valid JSON:
    ///   the tree decoder then says what it is, or what is wrong with it.
    init?(scanning bytes: UnsafeBufferPointer<UInt8>) {
        var parser = JSONParser(bytes: bytes)
        do throws(JSONParser.Failure) {
            guard let event = try parser.scanEvent() else { return nil }
            self = event
        } catch {
            return nil
        }
    }
}

extension JSONParser {
    fileprivate mutating func scanEvent() throws(Failure) -> QMPEvent? {
        skipWhitespace()
        guard peek() == UInt8(ascii: "{") else { return nil }
        var name: String?
        var seenName = false
        var seenTimestamp = false
        var seconds: Int64 = -1
        var microseconds: Int64 = -1
        var dataRange: Range<Int>?
        var fields = DataFields()
        try forEachMember { member, parser throws(Failure) in
            if member == "event", !seenName {
                seenName = true
                if parser.peek() == UInt8(ascii: "\"") {
                    name = try parser.parseString()
                    return
                }
            } else if member == "timestamp", !seenTimestamp {
                seenTimestamp = true
                if parser.peek() == UInt8(ascii: "{") {
                    (seconds, microseconds) = try parser.scanTimestamp()
                    return
                }
            } else if member == "data", dataRange == nil {
                let start = parser.index
                if parser.peek() == UInt8(ascii: "{") {
                    fields = try parser.scanData()
                } else {
                    try parser.skipValue()
                }
                dataRange = start..<parser.index
                return
            }
            try parser.skipValue()
        }
        try expectEnd()
        guard let name else { return nil }
        return QMPEvent(
            name: name,
            seconds: seconds,
            microseconds: microseconds,
            dataText: dataRange.map { String(decoding: slice($0), as: UTF8.self) },
            runState: dataRange == nil ? QMPRunStateFields() : fields.runState(of: name)
        )
    }

    /// The run-state members of an event's `data`, read in one pass.
    private struct DataFields {
        var values = QMPRunStateFields()
        /// Members already met (bits of ``Member``): the first of duplicates counts.
        private var seen: UInt8 = 0

        mutating func isFirst(_ member: Member) -> Bool {
            defer { seen |= member.rawValue }
            return seen & member.rawValue == 0
        }

        /// The fields as stored for `event`: `info` means crash information only in panic events.
        func runState(of event: String) -> QMPRunStateFields {
            guard !QMPRunStateFields.panicEvents.contains(event) else { return values }
            var stored = values
            stored.panicType = nil
            stored.panicReason = nil
            stored.panicArg1 = nil
            return stored
        }
    }

    private enum Member: UInt8 {
        case guest = 1, reason = 2, action = 4, info = 8, type = 16, infoReason = 32, arg1 = 64
    }

    private mutating func scanData() throws(Failure) -> DataFields {
        var fields = DataFields()
        try forEachMember { member, parser throws(Failure) in
            if member == "guest", fields.isFirst(.guest) {
                if let flag = try parser.parseBoolIfPresent() {
                    fields.values.guest = flag
                    return
                }
            } else if member == "reason", fields.isFirst(.reason) {
                fields.values.reason = try parser.parseStringIfPresent()
                if fields.values.reason != nil { return }
            } else if member == "action", fields.isFirst(.action) {
                fields.values.action = try parser.parseStringIfPresent()
                if fields.values.action != nil { return }
            } else if member == "info", fields.isFirst(.info), parser.peek() == UInt8(ascii: "{") {
                try parser.forEachMember { member, parser throws(Failure) in
                    if member == "type", fields.isFirst(.type) {
                        fields.values.panicType = try parser.parseStringIfPresent()
                        if fields.values.panicType != nil { return }
                    } else if member == "reason", fields.isFirst(.infoReason) {
                        fields.values.panicReason = try parser.parseStringIfPresent()
                        if fields.values.panicReason != nil { return }
                    } else if member == "arg1", fields.isFirst(.arg1), parser.isAtNumber {
                        fields.values.panicArg1 = String(decoding: parser.slice(try parser.scanNumber()), as: UTF8.self)
                        return
                    }
                    try parser.skipValue()
                }
                return
            }
            try parser.skipValue()
        }
        return fields
    }

    private mutating func scanTimestamp() throws(Failure) -> (seconds: Int64, microseconds: Int64) {
        var seconds: Int64?
        var microseconds: Int64?
        var seen = (seconds: false, microseconds: false)
        try forEachMember { member, parser throws(Failure) in
            if member == "seconds", !seen.seconds {
                seen.seconds = true
                if parser.isAtNumber {
                    seconds = Self.int64(parser.slice(try parser.scanNumber()))
                    return
                }
            } else if member == "microseconds", !seen.microseconds {
                seen.microseconds = true
                if parser.isAtNumber {
                    microseconds = Self.int64(parser.slice(try parser.scanNumber()))
                    return
                }
            }
            try parser.skipValue()
        }
        return (seconds ?? -1, microseconds ?? -1)
    }

    /// A string value at the current position, consumed; `nil` (nothing consumed) for another kind.
    private mutating func parseStringIfPresent() throws(Failure) -> String? {
        peek() == UInt8(ascii: "\"") ? try parseString() : nil
    }

    private var isAtNumber: Bool {
        guard let byte = peek() else { return false }
        return byte == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    /// A checked number literal as `Int64`, or `nil` when it has a fraction or exponent or does not fit.
    private static func int64(_ literal: UnsafeBufferPointer<UInt8>) -> Int64? {
        var digits = literal[...]
        let negative = digits.first == UInt8(ascii: "-")
        if negative { digits = digits.dropFirst() }
        var value: Int64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let digit = Int64(byte - UInt8(ascii: "0"))
            let (shifted, overflowA) = value.multipliedReportingOverflow(by: 10)
            // Accumulate negatively so Int64.min fits.
            let (next, overflowB) = shifted.subtractingReportingOverflow(digit)
            guard !overflowA, !overflowB else { return nil }
            value = next
        }
        if negative { return value }
        let (positive, overflow) = Int64(0).subtractingReportingOverflow(value)
        return overflow ? nil : positive
    }
}
