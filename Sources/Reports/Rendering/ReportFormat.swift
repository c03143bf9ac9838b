/// How a report is printed.
public enum ReportFormat: String, Sendable, CaseIterable {
    /// Aligned columns for people, fitting an 80-column terminal where the data allows.
    case table
    /// One JSON object (see docs/reports.md for the shape).
    case json
    /// RFC 4180 CSV of the report's primary table, with a header row.
    case csv

    /// Renders `result` in this format, ending with a newline.
    public func render(_ result: ReportResult) -> String {
        switch self {
        case .table: TextReportRenderer.render(result)
        case .json: JSONReportRenderer.render(result)
        case .csv: CSVReportRenderer.render(result)
        }
    }
}
