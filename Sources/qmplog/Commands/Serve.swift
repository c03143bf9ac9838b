import ArgumentParser
import EventStore
import Hummingbird
import Logging
import Server
import ServiceLifecycle
import UnixSignals

extension QMPLogCommand {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the dashboard, Prometheus metrics and the reports over HTTP.",
            discussion: Manual.discussion(
                """
                Read-only, from the database a recorder writes: / (the fleet), /vm/NAME, /metrics \
                (Prometheus), /api/reports/KIND, /api/vms and /api/events. Loopback only unless \
                --allow-remote with a --web-config (TLS, basic auth) that requires a password or a \
                client certificate.

                Examples:
                  qmplog serve
                  qmplog serve --db /var/lib/qmplog/events.sqlite --http 127.0.0.1:9750
                  qmplog serve --http 0.0.0.0:9750 --allow-remote --web-config /etc/qmplog/web.yml

                `man qmplog-serve` describes each route, the metrics and the limits on clients.
                """,
                manual: """
                    Read-only, from the database a recorder writes (it never blocks the recorder):
                      /                      the fleet: shutdowns per day by initiator, panics, resets and \
                    watchdog firings per VM, run state and observed time per VM, the latest events \
                    (?window=24h|7d|30d|all, ?vm=NAME)
                      /vm/NAME               one VM: its timeline, stops, pauses, states, shutdowns, panics
                      /metrics               Prometheus text exposition (qmplog_vm_shutdowns_total, …): \
                    counters computed from the database, equal to the whole-history reports
                      /api/reports/KIND      what `qmplog report KIND --format json` prints \
                    (?since=, until=, vm=, interval=, by=vm)
                      /api/vms               what `qmplog vms --format json` prints
                      /api/events            the events as NDJSON, like `qmplog export` (?since=, until=, vm=, event=)
                    A bad parameter is answered 400 with a JSON error naming it. Pages carry no scripts \
                    and load nothing from elsewhere: they work on an air-gapped host.

                    The default address is loopback only; a name is resolved once and every address it \
                    gives must be loopback. Another address needs --allow-remote and a --web-config file \
                    (the format of Prometheus exporters: tls_server_config, basic_auth_users with bcrypt \
                    hashes) that requires a password or a client certificate, or \
                    --allow-remote-without-auth (logged as a warning). Without --allow-remote a request must name this machine \
                    (Host: localhost, 127.0.0.1, ::1 or the --http address; 421 otherwise), which stops \
                    DNS rebinding. At most 64 connections are served at once (fewer under a low \
                    `ulimit -n`); the rest wait. A connection idle for 30 s, or that takes no byte \
                    of its answer for 120 s, is closed. SIGTERM or SIGINT stops it gracefully. \
                    `qmplog record --http ADDRESS:PORT` serves the same from inside a recorder.

                    Examples:
                      qmplog serve
                      qmplog serve --db /var/lib/qmplog/events.sqlite --http 127.0.0.1:9750
                      qmplog serve --http 0.0.0.0:9750 --allow-remote --web-config /etc/qmplog/web.yml
                    """
            )
        )

        @OptionGroup var store: StoreOptions

        @OptionGroup var address: HTTPAddressOptions

        @OptionGroup var logging: LoggingOptions

        func run() async throws {
            let logger = logging.bootstrap(label: "qmplog.serve")
            HTTPConnectionLimits.raiseDescriptorLimit()
            let database = try store.openForReading()
            let application = try address.application(
                serving: WebServer(
                    database: database,
                    version: QMPLogCommand.configuration.version,
                    now: FilterOptions.now
                ),
                logger: logger
            )
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [application],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger
                )
            )
            try await group.run()
        }
    }
}

/// `--http ADDRESS:PORT` and `--allow-remote`, for `serve` and `record --http`.
struct HTTPAddressOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Serve the dashboard, metrics and reports on this address and port (serve: 127.0.0.1:9750 unless given).",
            valueName: "address:port"
        )
    )
    var http: String?

    @Option(
        help: ArgumentHelp(
            "TLS and basic authentication for --http, in the web configuration format of Prometheus exporters (tls_server_config, basic_auth_users with bcrypt hashes).",
            valueName: "file"
        )
    )
    var webConfig: String?

    @Flag(
        help:
            "Allow an --http address other than loopback; --web-config must then require a password or a client certificate."
    )
    var allowRemote = false

    @Flag(
        help:
            "Allow an --http address other than loopback with no authentication: anyone who reaches it reads every VM's history."
    )
    var allowRemoteWithoutAuth = false

    static let defaultAddress = "127.0.0.1:9750"

    func validate() throws {
        var config: WebConfig?
        if let webConfig {
            do {
                config = try WebConfig.load(path: webConfig)
            } catch {
                throw ValidationError(error.description)
            }
        }
        guard let http else { return }
        let (host, _) = try Self.split(http)
        let resolved = try Self.resolve(host, in: http)
        guard !resolved.isLoopback, !allowRemoteWithoutAuth else { return }
        guard allowRemote else {
            throw ValidationError(
                "--http \(http) is not a loopback address: add --allow-remote with a --web-config that requires a password (basic_auth_users) or a client certificate, or --allow-remote-without-auth to serve every VM's history to anyone who reaches it."
            )
        }
        if config?.authenticates != true {
            throw ValidationError(
                "--http \(http) --allow-remote: give --web-config FILE with basic_auth_users (bcrypt hashes, htpasswd -nBC 10 USER) or client certificates, or --allow-remote-without-auth to serve with no authentication."
            )
        }
    }

    private static func resolve(_ host: String, in http: String) throws -> ListenAddress {
        do {
            return try ListenAddress.resolve(host)
        } catch {
            throw ValidationError("--http \(http): \(error)")
        }
    }

    /// `address` split into host and port (`[::1]:9750` for IPv6).
    static func split(_ address: String) throws -> (String, Int) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
            (0...65535).contains(port)
        else {
            throw ValidationError("--http \(address): give ADDRESS:PORT, such as 127.0.0.1:9750.")
        }
        var host = String(address[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw ValidationError("--http \(address): the address is missing.") }
        return (host, port)
    }

    /// The HTTP service for `server` on --http (or the default), logging where it listens.
    func application(serving server: WebServer, logger: Logger) throws -> some Service {
        let http = http ?? Self.defaultAddress
        let (host, port) = try Self.split(http)
        let resolved = try Self.resolve(host, in: http)
        let config = try webConfig.map { try WebConfig.load(path: $0) } ?? WebConfig()
        if !resolved.isLoopback, !config.authenticates {
            logger.warning("Serving beyond loopback with no authentication", metadata: ["http.address": "\(http)"])
        }
        let scheme = config.tls == nil ? "http" : "https"
        return try server.application(
            address: resolved.address,
            port: port,
            allowRemote: allowRemote || allowRemoteWithoutAuth,
            webConfig: config,
            logger: logger
        ) { bound in
            logger.notice("Serving", metadata: ["http.address": "\(resolved.url(port: bound, scheme: scheme))"])
        }
    }
}
