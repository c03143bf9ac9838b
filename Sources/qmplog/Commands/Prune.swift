import ArgumentParser
import EventStore
import Foundation
import Reports

extension QMPLogCommand {
    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete local history before a time.",
            discussion: """
                Deletes the events stamped before --before from the SQLite database (sessions and \
                VMs stay: they are small, and reports' observed time needs them). When the \
                database ships to PostgreSQL (`qmplog ship`, `record --ship-to`), only events \
                PostgreSQL has confirmed are deleted; the rest stay until shipped, and the count \
                kept is printed. Safe beside a running recorder (short transactions). The rollup \
                is rebuilt after. SQLite reuses the freed pages; the file does not shrink.

                Examples:
                  qmplog prune --before 90d
                  qmplog prune --db /var/lib/qmplog/events.sqlite --before 2026-01-01
                """
        )

        @OptionGroup var store: StoreOptions

        @Option(
            help: ArgumentHelp(
                "Delete events before this time: RFC 3339 (2026-01-01, 2026-01-01T00:00:00Z) or a span before now (90d, 2w).",
                valueName: "time"
            )
        )
        var before: String

        func validate() throws {
            do {
                _ = try ReportTimeParser.parse(before, now: FilterOptions.now())
            } catch {
                throw ValidationError("--before \(error.message).")
            }
        }

        func run() async throws {
            let now = FilterOptions.now()
            let cut = try ReportTimeParser.parse(before, now: now)
            // Never creates a database: a mistyped --db must fail.
            _ = try store.openForReading()
            let database = try EventDatabase.openForWriting(path: store.resolvedPath())
            let outcome = try await database.pruneEvents(before: cut)
            var text = "Deleted \(outcome.deleted) events before \(Timestamp.rfc3339(microseconds: cut))"
            if let target = try await database.shippingState()?.target {
                text += "; kept \(outcome.keptUnshipped) not yet shipped to \(target)"
            }
            try StandardOutput.write(text + ".\n")
            if outcome.deleted > 0 { _ = try await RollupBuilder.rebuild(database, now: now) }
        }
    }
}
