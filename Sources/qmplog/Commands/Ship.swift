import ArgumentParser
import Collector
import EventStore
import Foundation
import Logging
import Reports
import ServiceLifecycle
import UnixSignals

extension QMPLogCommand {
    struct Ship: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy this host's events to the fleet's PostgreSQL.",
            discussion: """
                Copies machines, sessions and events from the SQLite database to PostgreSQL, where \
                every host's history meets (`qmplog record --ship-to URL` does the same from inside \
                the recorder). The SQLite file stays the source of truth: each batch is one \
                PostgreSQL transaction that also moves this host's cursor there, so a ship killed \
                at any moment, or a server restarting in the middle, resumes where the last batch \
                ended, and no event is stored twice. The first ship creates the schema and gives \
                this database a stable host id (kept in the file).

                The URL is postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME[?sslmode=...&host=/socket/dir]. \
                The password comes from the URL, else $PGPASSWORD, else ~/.pgpass ($PGPASSFILE). TLS \
                is used when the server offers it (sslmode=prefer); sslmode=require insists on it, \
                verify-full also checks the certificate, disable never uses it.

                Without --once it ships every --ship-interval seconds until SIGTERM or SIGINT, connecting for \
                each round only (many hosts share a server's connection slots); failures are \
                logged and retried. With --once it ships what is committed and exits, retrying a \
                server that is down or full for up to a minute. A host clock more than a second off \
                PostgreSQL's is reported.

                Examples:
                  qmplog ship --to postgresql://qmplog@fleet-db/qmplog --once
                  PGPASSWORD=secret qmplog ship --db /var/lib/qmplog/events.sqlite --to postgresql://qmplog@10.0.0.5/qmplog
                """
        )

        @OptionGroup var store: StoreOptions

        @Option(help: ArgumentHelp("The fleet's PostgreSQL: postgresql://USER@HOST[:PORT]/DBNAME.", valueName: "url"))
        var to: String?

        @OptionGroup var ship: ShipOptions

        @Flag(help: "Ship what is committed now, then exit.")
        var once = false

        @OptionGroup var logging: LoggingOptions

        func validate() throws {
            guard let to else { throw ValidationError("Missing --to URL (postgresql://USER@HOST/DBNAME).") }
            _ = try ShipOptions.parse(to)
        }

        func run() async throws {
            let logger = logging.bootstrap(label: "qmplog.ship")
            // Shipping writes its identity into the file, but never creates one: a mistyped --db must fail.
            _ = try store.openForReading()
            let database = try EventDatabase.openForWriting(path: store.resolvedPath())
            let configuration = try ship.configuration(to: to ?? "", logger: logger)
            let shipper = Shipper(database: database, configuration: configuration, logger: logger)
            if once {
                let totals = try await shipper.shipOnce(retryingFor: .seconds(60))
                var line =
                    "Shipped \(totals.events) events, \(totals.sessions) sessions and \(totals.machines) machines"
                line += " to \(configuration.url) in \(totals.batches) batches.\n"
                if let offset = totals.clockOffset, abs(offset) > Shipper.clockTolerance {
                    line += "warning: this host's clock is \(SummaryReport.signedSeconds(-offset)) s off PostgreSQL's; "
                    line += "its timestamps do not line up with other hosts'.\n"
                }
                try StandardOutput.write(line)
                return
            }
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [shipper],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger
                )
            )
            try await group.run()
        }
    }
}

/// `--host-name` and `--ship-interval`: how a host ships (`ship --to`, `record --ship-to`).
struct ShipOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The name this host's VMs carry in the fleet (default: the system's host name).",
            valueName: "name"
        )
    )
    var hostName: String?

    @Option(help: ArgumentHelp("Seconds between shipping rounds when caught up.", valueName: "seconds"))
    var shipInterval: Double = 1

    /// Events per PostgreSQL transaction (tests and benchmarks vary it).
    @Option(help: .hidden)
    var shipBatchSize: Int = 50_000

    func validate() throws {
        guard (1...1_000_000).contains(shipBatchSize) else {
            throw ValidationError("--ship-batch-size must be 1 to 1000000 events.")
        }
        guard shipInterval > 0, shipInterval <= 86_400 else {
            throw ValidationError("--ship-interval must be between 0 and 86400 seconds.")
        }
        if let hostName, hostName.isEmpty { throw ValidationError("--host-name needs a name.") }
    }

    static func parse(_ text: String) throws -> FleetURL {
        do { return try FleetURL(text) } catch let error as FleetError { throw ValidationError(error.message) }
    }

    /// The shipper's configuration; a password written in the URL is warned about.
    func configuration(
        to url: String,
        logger: Logger,
        clock: @escaping @Sendable () -> Int64 = FilterOptions.now
    ) throws -> Shipper.Configuration {
        let parsed = try Self.parse(url)
        if parsed.passwordInURL {
            logger.warning(
                """
                The URL carries a password, which every local user can read in this process's command line: \
                keep it in ~/.pgpass or the file PGPASSFILE names, or PGPASSWORD from a systemd EnvironmentFile=
                """,
                metadata: ["ship.to": "\(parsed)"]
            )
        }
        var configuration = Shipper.Configuration(
            url: parsed,
            hostName: hostName ?? Shipper.systemHostName(),
            batchSize: shipBatchSize,
            interval: .milliseconds(Int64(shipInterval * 1000))
        )
        configuration.clock = clock
        return configuration
    }
}
