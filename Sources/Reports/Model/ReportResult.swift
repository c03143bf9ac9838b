/// One cell of a report.
public enum ReportValue: Sendable, Hashable {
    case text(String)
    case integer(Int64)
    case number(Double)
    case bool(Bool)
    /// An instant, microseconds since the epoch: RFC 3339 UTC in JSON and CSV.
    case time(Int64)
    /// A length of time in microseconds: seconds (a number) in JSON and CSV, `1d 02:03:04` in tables.
    case duration(Int64)
    case null
}

extension ReportValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }

    /// `.integer` for a count.
    public static func count(_ value: Int) -> ReportValue { .integer(Int64(value)) }

    /// `.text`, or `.null` when `nil`.
    public static func optional(_ value: String?) -> ReportValue { value.map(ReportValue.text) ?? .null }
}

/// A named table: the JSON key, a title for people, snake_case columns and rows.
public struct ReportTable: Sendable, Hashable {
    public var name: String
    public var title: String
    public var columns: [String]
    public var rows: [[ReportValue]]

    public init(name: String, title: String, columns: [String], rows: [[ReportValue]]) {
        self.name = name
        self.title = title
        self.columns = columns
        self.rows = rows
    }
}

/// What a report found: summary values, tables, and the caveats that qualify them.
///
/// The JSON form (``JSONReportRenderer``) is the stable contract documented in docs/reports.md.
public struct ReportResult: Sendable, Hashable {
    /// The report's name: `summary`, `shutdowns`, …
    public var report: String
    public var query: ReportQuery
    public var summary: [(key: String, value: ReportValue)]
    /// Tables in display order; the first is the one CSV prints (the series when `--interval` is given).
    public var tables: [ReportTable]
    /// What the numbers cannot tell, in sentences.
    public var caveats: [String]

    public init(
        report: String,
        query: ReportQuery,
        summary: [(key: String, value: ReportValue)],
        tables: [ReportTable],
        caveats: [String]
    ) {
        self.report = report
        self.query = query
        self.summary = summary
        self.tables = tables
        self.caveats = caveats
    }

    /// The table CSV prints: the series with `--interval`, else the first.
    public var primaryTable: ReportTable? {
        tables.first { $0.name == "series" } ?? tables.first
    }

    public static func == (lhs: ReportResult, rhs: ReportResult) -> Bool {
        lhs.report == rhs.report && lhs.query == rhs.query && lhs.tables == rhs.tables && lhs.caveats == rhs.caveats
            && lhs.summary.map(\.key) == rhs.summary.map(\.key) && lhs.summary.map(\.value) == rhs.summary.map(\.value)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(report)
        hasher.combine(tables)
    }
}
