public import ArgumentParser
import EventStore
import Foundation
import Reports

extension ReportInterval: ExpressibleByArgument {}
extension ReportFormat: ExpressibleByArgument {}
extension ReportKind: ExpressibleByArgument {}
extension EventExporter.Format: ExpressibleByArgument {}

/// `--vm`, `--since`, `--until`: which events a report or export covers.
struct FilterOptions: ParsableArguments {
    @Option(
        name: .customLong("vm"),
        help: ArgumentHelp("Only this VM (name, UUID or socket); repeatable.", valueName: "name")
    )
    var machines: [String] = []

    @Option(
        help: ArgumentHelp(
            "Start of the window: RFC 3339 (2026-11-27T09:00:00Z, 2026-11-27) or a span before now (90s, 30m, 24h, 7d, 2w).",
            valueName: "time"
        )
    )
    var since: String?

    @Option(
        help: ArgumentHelp(
            "End of the window (exclusive), in the same forms as --since. Default: now.",
            valueName: "time"
        )
    )
    var until: String?

    func validate() throws {
        let now = Self.now()
        for (name, value) in [("--since", since), ("--until", until)] {
            guard let value else { continue }
            do {
                _ = try ReportTimeParser.parse(value, now: now)
            } catch {
                throw ValidationError("\(name) \(error.message).")
            }
        }
    }

    /// The query these options describe, at `now` (after ``validate()``, every time parses).
    func query(now: Int64 = FilterOptions.now()) -> ReportQuery {
        ReportQuery(
            since: since.flatMap { try? ReportTimeParser.parse($0, now: now) },
            until: until.flatMap { try? ReportTimeParser.parse($0, now: now) },
            machines: machines,
            now: now
        )
    }

    /// The wall clock in microseconds since the epoch, read once per command.
    static func now() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1_000_000).rounded())
    }
}

extension StoreOptions {
    /// Resolves the path and opens the database read-only; a missing file is an error naming the path.
    func openForReading() throws -> EventDatabase {
        try EventDatabase.openForReading(path: resolvedPath())
    }
}
