/// How a report is printed.
public enum ReportFormat: String, Sendable, CaseIterable {
    /// Aligned columns for people, fitting an 80-column terminal where the data allows.
    case table
    /// One JSON object (see docs/reports.md for the shape).
    case json
    /// RFC 4180 CSV of the report's primary table, with a header row.
    case csv

    /// Renders `result` in this format, ending with a newline.
    ///
    /// - Parameter width: the terminal's columns a table must fit (long text cells are cut with
    ///   `…`); `nil` for every cell in full (`--wide`). JSON and CSV are never cut.
    public func render(_ result: ReportResult, width: Int? = 80) -> String {
        switch self {
        case .table: TextReportRenderer.render(result, width: width)
        case .json: JSONReportRenderer.render(result)
        case .csv: CSVReportRenderer.render(result)
        }
    }
}
