import ArgumentParser
import EventStore
import Reports

extension QMPLogCommand {
    struct Timeline: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One VM's story in time order: sessions, gaps, every event, stops and pauses.",
            discussion: """
                Each line has the time (QEMU's, to the millisecond), the time since the line before, \
                and what happened: a session opened or closed (and why), a gap nobody watched, an \
                event with its guest flag, reason and action, a stop as `report stops` classifies it, \
                a pause as `report pauses` finds it, a crash loop. --format json gives the same as \
                data (docs/reports.md).

                Examples:
                  qmplog timeline --vm web1 --since 24h
                  qmplog timeline --vm db2 --since 2026-11-30 --until 2026-12-01 --format json
                """
        )

        @OptionGroup var store: StoreOptions
        @OptionGroup var filter: FilterOptions

        @Option(help: "Output format.")
        var format: ReportFormat = .table

        func validate() throws {
            guard filter.machines.count == 1 else {
                throw ValidationError("Name the VM: qmplog timeline --vm NAME (one VM).")
            }
        }

        func run() async throws {
            let database = try await store.openForReports()
            let result = try await TimelineReport.run(on: database, query: filter.query(on: database))
            try StandardOutput.write(format.render(result))
        }
    }
}
