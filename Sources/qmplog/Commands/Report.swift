import ArgumentParser
import EventStore
import Reports

extension QMPLogCommand {
    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Answer what happened to the VMs: shutdowns, panics, resets, watchdogs, states, stops, pauses.",
            discussion: """
                Reports:
                  summary    VMs, events by name, sessions, observed versus unobserved time
                  shutdowns  guest- vs host-initiated shutdowns, guest:host ratio, reasons
                  panics     panics by crash type, s390 reason, hyper-v code, action, VM, day
                  resets     guest versus host resets, watchdog-caused resets, distinct resets
                  watchdog   watchdog firings by action and VM
                  states     time each VM spent running, paused, suspended, shut down, in prelaunch
                             (started with -S, not yet run), unknown
                  stops      every end of a VM's run, classified (guest-poweroff, host-acpi,
                             host-signal, host-qmp-quit, guest-panic, watchdog,
                             guest-reset-no-reboot, killed, other, unknown), and crash loops
                  pauses     every time a VM that had run stopped while QEMU was alive, by cause
                             (io-error, watchdog, guest-panic, host-stop, suspend, unknown)

                Reports read the database without blocking a running recorder. Each report \
                ends with notes on what its numbers cannot tell (QEMU's quirks, unobserved time). \
                Without --since, --until and --interval a report covers the whole history from \
                totals the recorder precomputes (see qmplog rollup), in well under a second.
                --format json prints one object whose shape is documented in docs/reports.md; \
                --format csv prints the main table (the series with --interval).

                Examples:
                  qmplog report shutdowns --since 7d --by vm
                  qmplog report panics --vm web1 --format json
                  qmplog report states --since 2026-11-01 --interval day --format csv
                  qmplog report stops --vm web1 --since 24h
                """
        )

        @Argument(help: ArgumentHelp("The report to run.", valueName: "report"))
        var kind: ReportKind

        @OptionGroup var store: StoreOptions
        @OptionGroup var filter: FilterOptions

        @Option(help: "Add a time series with one row per bucket (for charts).")
        var interval: ReportInterval?

        @Option(
            name: .customLong("by"),
            help: ArgumentHelp("Add a per-VM table (shutdowns, resets): --by vm.", valueName: "vm")
        )
        var by: Grouping?

        /// What `--by` splits a report by: only VMs so far.
        enum Grouping: String, ExpressibleByArgument, CaseIterable {
            case vm
        }

        @Option(help: "Seconds after a POWERDOWN within which a guest SHUTDOWN counts as host-requested (shutdowns).")
        var powerdownWindow: Int = 300

        @Option(help: "A crash loop (stops) is at least this many panics, watchdog firings or kills …")
        var crashLoopCount: Int = 3

        @Option(help: "… within this many seconds.")
        var crashLoopWindow: Int = 600

        @Option(help: "Output format.")
        var format: ReportFormat = .table

        @OptionGroup var tableWidth: TableWidthOptions

        func validate() throws {
            guard (0...86_400).contains(powerdownWindow) else {
                throw ValidationError("--powerdown-window must be 0 to 86400 seconds (a day).")
            }
            guard (2...1000).contains(crashLoopCount) else {
                throw ValidationError("--crash-loop-count must be 2 to 1000.")
            }
            guard (1...2_592_000).contains(crashLoopWindow) else {
                throw ValidationError("--crash-loop-window must be 1 to 2592000 seconds (30 days).")
            }
        }

        func run() async throws {
            let database = try await store.openForReports()
            var query = try await filter.query(on: database)
            query.interval = interval
            query.byMachine = by == .vm
            query.powerdownWindow = Int64(powerdownWindow) * 1_000_000
            query.crashLoopCount = crashLoopCount
            query.crashLoopWindow = Int64(crashLoopWindow) * 1_000_000
            let result = try await kind.run(on: database, query: query)
            try StandardOutput.write(format.render(result, width: tableWidth.width))
        }
    }
}
