/// What a report covers: a time window, some VMs, and how to slice it.
///
/// Times are microseconds since the Unix epoch and always explicit: nothing below reads the clock.
public struct ReportQuery: Sendable, Hashable {
    /// Inclusive start; `nil` for the beginning of the record.
    public var since: Int64?
    /// Exclusive end; `nil` for ``now``.
    public var until: Int64?
    /// VM names (or UUIDs, or endpoints) to include; empty for all.
    public var machines: [String]
    /// Slice the report into time buckets (a `series` table).
    public var interval: ReportInterval?
    /// Add a per-VM table.
    public var byMachine: Bool
    /// How long after a POWERDOWN a guest SHUTDOWN counts as host-requested, in microseconds.
    public var powerdownWindow: Int64
    /// A crash loop (`report stops`): at least this many panics, watchdog firings or kills …
    public var crashLoopCount: Int
    /// … within this many microseconds.
    public var crashLoopWindow: Int64
    /// The present, for open sessions and the default end of the window.
    public var now: Int64

    public init(
        since: Int64? = nil,
        until: Int64? = nil,
        machines: [String] = [],
        interval: ReportInterval? = nil,
        byMachine: Bool = false,
        powerdownWindow: Int64 = 300_000_000,
        crashLoopCount: Int = 3,
        crashLoopWindow: Int64 = 600_000_000,
        now: Int64
    ) {
        self.since = since
        self.until = until
        self.machines = machines
        self.interval = interval
        self.byMachine = byMachine
        self.powerdownWindow = powerdownWindow
        self.crashLoopCount = crashLoopCount
        self.crashLoopWindow = crashLoopWindow
        self.now = now
    }

    /// The end of the window: ``until`` or ``now``.
    public var end: Int64 { until ?? now }

    /// Whether an event at `time` is in the window. Without ``until`` there is no upper bound, so
    /// events stamped by a host clock ahead of ours are still counted.
    func contains(_ time: Int64) -> Bool {
        (since.map { time >= $0 } ?? true) && (until.map { time < $0 } ?? true)
    }
}

/// The bucket size of a report's time series. Buckets start at UTC boundaries; weeks on Monday.
public enum ReportInterval: String, Sendable, Hashable, CaseIterable {
    case hour, day, week

    /// The start of the bucket holding `time`.
    public func bucket(of time: Int64) -> Int64 {
        Timestamp.floorDivide(time - origin, length).0 * length + origin
    }

    /// A bucket boundary: the epoch, or for weeks the first Monday after it (1970-01-05).
    public var origin: Int64 {
        self == .week ? 4 * 86_400_000_000 : 0
    }

    /// The length of one bucket in microseconds.
    public var length: Int64 {
        switch self {
        case .hour: 3_600_000_000
        case .day: 86_400_000_000
        case .week: 7 * 86_400_000_000
        }
    }
}

/// Parses the `--since`/`--until` forms: RFC 3339 (`2026-11-27T09:00:00Z`, `2026-11-27`) or a span
/// before `now` (`90s`, `30m`, `24h`, `7d`, `2w`).
public enum ReportTimeParser {
    /// - Returns: microseconds since the epoch.
    /// - Throws: ``ReportsError`` `.invalidQuery` saying what is wrong with `text` (it names no option:
    ///   the caller adds which).
    public static func parse(_ text: String, now: Int64) throws(ReportsError) -> Int64 {
        if let absolute = Timestamp.parseRFC3339(text) { return absolute }
        if let span = span(text) {
            let (length, overflow) = span.multipliedReportingOverflow(by: 1_000_000)
            let (time, underflow) = now.subtractingReportingOverflow(length)
            guard !overflow, !underflow, time >= Timestamp.earliest else {
                throw ReportsError(code: .invalidQuery, message: "'\(text)' reaches back before the year 1")
            }
            return time
        }
        let looksLikeADate = text.count >= 10 && text.utf8.prefix(4).allSatisfy { (48...57).contains($0) }
        throw ReportsError(
            code: .invalidQuery,
            message: looksLikeADate
                ? "'\(text)' is not a valid RFC 3339 time (a day the month has, hours 00-23, offsets up to ±23:59, years 0001-9999)"
                : "'\(text)' is neither an RFC 3339 time nor a span like 24h or 7d"
        )
    }

    /// The seconds `text` spans (`90s`, `7d`; `Int64.max` when that does not fit), or `nil` when it
    /// is no span.
    private static func span(_ text: String) -> Int64? {
        let digits = text.utf8.dropLast()
        guard let unit = text.last, !digits.isEmpty, digits.allSatisfy({ (48...57).contains($0) }) else { return nil }
        let amount = Int64(text.dropLast()) ?? .max
        let seconds: Int64
        switch unit {
        case "s": seconds = 1
        case "m": seconds = 60
        case "h": seconds = 3600
        case "d": seconds = 86_400
        case "w": seconds = 7 * 86_400
        default: return nil
        }
        let (span, overflow) = amount.multipliedReportingOverflow(by: seconds)
        return overflow ? Int64.max : span
    }
}
