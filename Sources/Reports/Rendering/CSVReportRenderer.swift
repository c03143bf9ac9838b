/// Renders a report's primary table as RFC 4180 CSV with a header row.
enum CSVReportRenderer {
    static func render(_ result: ReportResult) -> String {
        guard let table = result.primaryTable else { return "" }
        var out = table.columns.map { CSVText.field($0) }.joined(separator: ",") + "\r\n"
        for row in table.rows {
            out += row.map(cell).joined(separator: ",") + "\r\n"
        }
        return out
    }

    static func cell(_ value: ReportValue) -> String {
        switch value {
        case .text(let text): CSVText.field(text)
        case .integer(let value): String(value)
        case .number(let value): value.isFinite ? JSONText.number(value) : ""
        case .bool(let value): value ? "true" : "false"
        case .time(let value): Timestamp.rfc3339(microseconds: value)
        case .duration(let value): JSONText.number(Double(value) / 1_000_000)
        case .null: ""
        }
    }
}

/// RFC 4180 fields with a spreadsheet formula guard.
enum CSVText {
    /// Quotes a text field when it holds a comma, quote or line break. A field starting with
    /// `=`, `+`, `-` or `@` is prefixed with `'`, so spreadsheets show it instead of evaluating it
    /// (the OWASP advice against CSV injection). Numbers are written by the callers, unguarded.
    static func field(_ text: String) -> String {
        var text = text
        return text.withUTF8 { bytes in
            ByteWriter.string(capacity: 2 * bytes.count + 3) { $0.csvField(bytes) }
        }
    }
}
