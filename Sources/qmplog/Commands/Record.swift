import ArgumentParser
import Collector
import EventStore
import Logging
import QMP
import ServiceLifecycle
import UnixSignals

extension QMPLogCommand {
    struct Record: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Attach to QMP monitors and store every event they emit.",
            discussion: """
                Each TARGET is a QMP monitor: a Unix socket path, unix:PATH, or tcp:HOST:PORT. \
                qmplog sends only qmp_capabilities and query-* commands: it never changes a VM.

                QEMU serves one client per monitor socket. Give qmplog a monitor of its own, e.g.
                  qemu-system-x86_64 … -qmp unix:/run/qemu/vm1.qmp,server=on,wait=off
                A VM may have several monitors; every one receives every event.

                Events are committed within a fraction of a second. SIGTERM or SIGINT stops \
                recording, commits everything received, closes each session and exits 0. \
                Without --once, a connection that ends is retried with backoff (0.5 s doubling \
                to 30 s).

                Example:
                  qmplog record --db /var/lib/qmplog/events.sqlite /run/qemu/vm1.qmp tcp:127.0.0.1:4444
                """
        )

        @OptionGroup var store: StoreOptions

        @Flag(help: "Record each target's current connection only, then exit 0 once all have ended and been committed.")
        var once = false

        @Option(help: "Seconds to wait for a monitor's greeting before calling it busy.")
        var greetingTimeout: Double = 5

        @Option(help: "Largest QMP message accepted, in bytes.")
        var maxMessageSize: Int = 16 << 20

        @OptionGroup var logging: LoggingOptions

        @Argument(help: ArgumentHelp("QMP monitors to record.", valueName: "target"))
        var targets: [String] = []

        func validate() throws {
            guard !targets.isEmpty else {
                throw ValidationError("Name at least one QMP monitor, e.g. qmplog record /run/qemu/vm1.qmp")
            }
            for target in targets {
                do {
                    _ = try QMPEndpoint(parsing: target)
                } catch {
                    throw ValidationError(error.message)
                }
            }
            guard greetingTimeout > 0 else { throw ValidationError("--greeting-timeout must be positive.") }
            guard maxMessageSize >= 1024 else { throw ValidationError("--max-message-size must be at least 1024.") }
        }

        func run() async throws {
            let logger = logging.bootstrap(label: "qmplog.record")
            let path = try store.prepareForWriting()
            let database = try EventDatabase.openForWriting(path: path)
            let endpoints = try targets.map { try QMPEndpoint(parsing: $0) }
            let configuration = CollectorConfiguration(
                targets: endpoints,
                once: once,
                client: QMPClientConfiguration(
                    maximumMessageSize: maxMessageSize,
                    greetingTimeout: .milliseconds(Int64(greetingTimeout * 1000))
                )
            )
            logger.info(
                "Recording",
                metadata: ["store.path": "\(path)", "qmp.targets": "\(endpoints.count)", "once": "\(once)"]
            )
            let service = CollectorService(configuration: configuration, database: database, logger: logger)
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger
                )
            )
            try await group.run()
        }
    }
}
