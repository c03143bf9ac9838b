/// Renders a report as one JSON object with a stable shape (docs/reports.md):
///
/// ```json
/// {"report": "shutdowns", "since": null, "until": "…Z", "vms": [], "summary": {…},
///  "by_reason": [{"initiator": "guest", "reason": "guest-shutdown", "count": 3}], "caveats": ["…"]}
/// ```
///
/// Keys are snake_case, times RFC 3339 UTC strings, durations and ratios numbers.
enum JSONReportRenderer {
    static func render(_ result: ReportResult) -> String {
        var out = "{\n"
        out += "  \"report\": \(JSONText.string(result.report)),\n"
        out += "  \"since\": \(value(result.query.since.map(ReportValue.time) ?? .null)),\n"
        out += "  \"until\": \(value(.time(result.query.end))),\n"
        out += "  \"vms\": [\(result.query.machines.map(JSONText.string).joined(separator: ", "))],\n"
        out += "  \"summary\": {"
        out += result.summary.map { "\n    \(JSONText.string($0.key)): \(value($0.value))" }.joined(separator: ",")
        out += result.summary.isEmpty ? "},\n" : "\n  },\n"
        for table in result.tables {
            out += "  \(JSONText.string(table.name)): ["
            out += table.rows.map { row in
                let members = zip(table.columns, row).map { "\(JSONText.string($0)): \(value($1))" }
                return "\n    {" + members.joined(separator: ", ") + "}"
            }.joined(separator: ",")
            out += table.rows.isEmpty ? "],\n" : "\n  ],\n"
        }
        out += "  \"caveats\": ["
        out += result.caveats.map { "\n    " + JSONText.string($0) }.joined(separator: ",")
        out += result.caveats.isEmpty ? "]\n" : "\n  ]\n"
        out += "}\n"
        return out
    }

    static func value(_ value: ReportValue) -> String {
        switch value {
        case .text(let text): JSONText.string(text)
        case .integer(let value): String(value)
        case .number(let value): value.isFinite ? JSONText.number(value) : "null"
        case .bool(let value): value ? "true" : "false"
        case .time(let value): JSONText.string(Timestamp.rfc3339(microseconds: value))
        case .duration(let value): JSONText.number(Double(value) / 1_000_000)
        case .null: "null"
        }
    }
}

/// JSON text helpers shared by reports and export.
enum JSONText {
    /// A JSON string literal, escaping quotes, backslashes and control characters, C1 included
    /// (report JSON is often read on a terminal).
    static func string(_ text: String) -> String {
        var text = text
        return text.withUTF8 { bytes in
            ByteWriter.string(capacity: 6 * bytes.count + 3) { $0.jsonString(bytes, escapingC1: true) }
        }
    }

    /// A number with at most 6 decimals and no exponent for ordinary values.
    static func number(_ value: Double) -> String {
        let rounded = (value * 1_000_000).rounded() / 1_000_000
        if rounded == rounded.rounded(), abs(rounded) < 1e15 { return String(Int64(rounded)) }
        return String(rounded)
    }
}
