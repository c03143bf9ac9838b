import ArgumentParser
import EventStore
import Foundation
import Reports

extension QMPLogCommand {
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stream the recorded events as CSV, NDJSON or JSON.",
            discussion: """
                One row per event, in arrival order, with the fields:
                  id, vm, time, seconds, microseconds, received, event, guest, reason, action,
                  panic_type, panic_reason, data
                time is QEMU's timestamp (RFC 3339 UTC, microseconds; empty when QEMU sent -1/-1), \
                received is when qmplog got it, guest is true/false/empty, data is the event's JSON \
                data, compacted.

                CSV follows RFC 4180 with a header row. A text cell starting with = + - or @ is \
                prefixed with ' so spreadsheets do not run it as a formula. Output streams in constant \
                memory whatever the database size.

                Examples:
                  qmplog export --format csv --since 24h -o events.csv
                  qmplog export --format ndjson --event SHUTDOWN --event RESET --vm web1
                """
        )

        @OptionGroup var store: StoreOptions
        @OptionGroup var filter: FilterOptions

        @Option(
            name: .customLong("event"),
            help: ArgumentHelp("Only events of this name; repeatable.", valueName: "name")
        )
        var events: [String] = []

        @Option(help: "Output format.")
        var format: EventExporter.Format = .csv

        @Option(
            name: .shortAndLong,
            help: ArgumentHelp("Write to this file (created 0600) instead of standard output.", valueName: "file")
        )
        var output: String?

        func run() async throws {
            let database = try await store.openForReports()
            if let output, !store.isFleet { try refuseDatabaseFiles(output, database: store.resolvedPath()) }
            // A new 0600 file renamed over the output once complete: an existing file gets the
            // promised mode, and a failed export leaves the old one as it was.
            let file = try output.map { try PrivateOutputFile(replacing: $0) }
            do {
                _ = try await EventExporter.export(
                    from: database,
                    query: filter.query(on: database),
                    events: events,
                    format: format,
                    to: file?.descriptor ?? STDOUT_FILENO
                )
                try file?.commit()
            } catch {
                file?.discard()
                throw error
            }
        }

        /// Refuses an output path that is the database or one of its -wal/-shm files (the export
        /// would truncate them), by identity of file, whatever the path's spelling.
        private func refuseDatabaseFiles(_ output: String, database: String) throws {
            var target = stat()
            guard stat(output, &target) == 0 else { return }
            for suffix in ["", "-wal", "-shm"] {
                var file = stat()
                if stat(database + suffix, &file) == 0, file.st_dev == target.st_dev, file.st_ino == target.st_ino {
                    throw ValidationError(
                        "-o \(output) is the database \(database + suffix): refusing to overwrite it."
                    )
                }
            }
        }
    }

    struct Vms: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "vms",
            abstract: "List the VMs in the database: name, UUID, socket, first and last seen, state, events."
        )

        @OptionGroup var store: StoreOptions

        @Option(help: "Output format.")
        var format: ReportFormat = .table

        @OptionGroup var tableWidth: TableWidthOptions

        func run() async throws {
            let database = try await store.openForReports()
            let result = try await MachineListReport.run(on: database, now: FilterOptions.now())
            try StandardOutput.write(format.render(result, width: tableWidth.width))
        }
    }
}
