import ArgumentParser
import EventStore
import Foundation
import Reports

extension QMPLogCommand {
    struct Rollup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Precompute totals for fast whole-history reports.",
            discussion: """
                A report without --since, --until and --interval reads per-VM totals counted up to \
                the start of the hour the rollup was built, plus the events after it, instead of \
                every event. `qmplog record` rebuilds the rollup every 6 hours; run this command \
                for a database recorded by an older qmplog, imported, or restored from a backup.

                The rollup is derived data: a report ignores it when it cannot stand for the events \
                (an event stamped before its cut arrived later, or another --powerdown-window), and \
                reports with a window or a series always read the events.
                """
        )

        @OptionGroup var store: StoreOptions

        func run() async throws {
            // The rollup is built from a database that exists: a mistyped --db must not create one.
            _ = try store.openForReading()
            for note in EventDatabase.tightenPermissions(path: store.resolvedPath()) {
                FileHandle.standardError.write(Data("warning: \(note)\n".utf8))
            }
            let database = try EventDatabase.openForWriting(path: store.resolvedPath())
            let started = FilterOptions.now()
            let rollup = try await RollupBuilder.rebuild(database, now: started)
            let seconds = Double(FilterOptions.now() - started) / 1_000_000
            try StandardOutput.write(
                "Rolled up \(rollup.facts.count) facts over the events before \(Timestamp.rfc3339(microseconds: rollup.cut)) "
                    + "in \((seconds * 100).rounded() / 100) s.\n"
            )
        }
    }
}
