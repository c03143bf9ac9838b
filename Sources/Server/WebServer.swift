package import EventStore
import Foundation
import HTTPTypes
package import Health
package import Hummingbird
import HummingbirdCore
import HummingbirdTLS
package import Logging
import NIOCore
import Reports

/// `qmplog serve`: the dashboard, Prometheus metrics and the reports over HTTP, read-only, from the
/// database a recorder writes.
///
/// Every answer is computed from the database when asked: the metrics' counters are the reports'
/// whole-history figures, so they never go down when qmplog restarts, and `/api/reports/KIND` is
/// the JSON `qmplog report KIND --format json` prints, from the same code.
package struct WebServer: Sendable {
    let database: EventDatabase
    let version: String
    let now: @Sendable () -> Int64
    /// Served from inside a recorder: its open sessions are its live monitors.
    var inRecorder: Bool { health != nil }
    /// The recorder's own figures, when served from inside one.
    let health: RecorderHealth?
    /// Every route's database work goes through it (see ``OneAtATime``).
    let reads = OneAtATime()

    package init(
        database: EventDatabase,
        version: String,
        recorder health: RecorderHealth? = nil,
        now: @escaping @Sendable () -> Int64
    ) {
        self.database = database
        self.version = version
        self.health = health
        self.now = now
    }

    /// Every response restricts itself to what it carries: no scripts, no external fonts or styles,
    /// never in a frame. ``SecurityHeadersHandler`` adds them to each response head.
    static let securityHeaders: HTTPFields = {
        var fields: HTTPFields = [
            .contentSecurityPolicy:
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
                + "frame-ancestors 'none'; base-uri 'none'"
        ]
        for (name, value) in [
            ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"), ("X-Frame-Options", "DENY"),
        ] {
            if let name = HTTPField.Name(name) { fields[name] = value }
        }
        return fields
    }()

    /// - Parameters:
    ///   - allowedHosts: the `Host` names requests may carry; `nil` for any (`--allow-remote`).
    ///   - users: `basic_auth_users` of `--web-config` (user → bcrypt hash); empty: no authentication.
    package func router(
        allowedHosts: Set<String>?,
        users: [String: String] = [:],
        logger: Logger = Logger(label: "qmplog.http")
    ) -> Router<BasicRequestContext> {
        let router = Router(options: .autoGenerateHeadEndpoints)
        router.add(middleware: HTTPGuard(allowedHosts: allowedHosts))
        if !users.isEmpty { router.add(middleware: BasicAuthGuard(users: users, logger: logger)) }
        router.get("/metrics") { _, _ in try await reads.run { try await metrics() } }
        router.get("/api/reports/:kind") { request, context in
            try await answer {
                let name = context.parameters.get("kind") ?? ""
                guard let kind = ReportKind(rawValue: name) else {
                    throw BadParameter(
                        "kind",
                        "no report \(name); reports: \(ReportKind.allCases.map(\.rawValue).joined(separator: ", "))"
                    )
                }
                let query = try HTTPQuery(request.uri.query).reportQuery(
                    now: now(),
                    allowed: ["since", "until", "vm", "interval", "by"]
                )
                let result = try await run(kind, query)
                return json(ReportFormat.json.render(result))
            }
        }
        router.get("/api/vms") { request, _ in
            try await answer {
                _ = try HTTPQuery(request.uri.query).reportQuery(now: now(), allowed: [])
                return json(ReportFormat.json.render(try await MachineListReport.run(on: database, now: now())))
            }
        }
        router.get("/api/events") { request, _ in
            try await answer {
                let parameters = HTTPQuery(request.uri.query)
                let query = try parameters.reportQuery(now: now(), allowed: ["since", "until", "vm", "event"])
                return try await events(query: query, names: parameters.all("event"))
            }
        }
        router.get("/") { request, _ in
            try await answer {
                let page = try await Dashboard(server: self, parameters: HTTPQuery(request.uri.query)).fleetPage()
                return html(page)
            }
        }
        router.get("/report/:kind") { request, context in
            try await answer {
                let page = try await Dashboard(server: self, parameters: HTTPQuery(request.uri.query))
                    .reportPage(context.parameters.get("kind") ?? "")
                return html(page)
            }
        }
        router.get("/vm/:name") { request, context in
            try await answer {
                let name = context.parameters.get("name")?.removingPercentEncoding ?? ""
                let page = try await Dashboard(server: self, parameters: HTTPQuery(request.uri.query)).machinePage(name)
                return html(page)
            }
        }
        return router
    }

    /// Runs a report, turning an unknown `vm` into a bad parameter.
    func run(_ kind: ReportKind, _ query: ReportQuery) async throws -> ReportResult {
        do {
            return try await kind.run(on: database, query: query)
        } catch let error as ReportsError where error.code == .unknownMachine {
            throw BadParameter(unknownMachine: error)
        } catch let error as ReportsError where error.code == .invalidQuery {
            throw BadParameter("since", error.message)
        }
    }

    private func metrics() async throws -> Response {
        let families = try await FleetMetrics.families(of: database, now: now(), version: version, monitors: inRecorder)
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: PrometheusText.render(families) + (health?.render() ?? "")))
        )
    }

    /// The events as `qmplog export --format ndjson` writes them, read a page at a time (each page
    /// its own short read, about 1 MiB) and written as the client takes them: a client that reads
    /// slowly or not at all holds no snapshot, no file and one page of memory, until
    /// ``HTTPConnectionLimits/stallTimeout`` closes its connection.
    private func events(query: ReportQuery, names: [String]) async throws -> Response {
        var pages: EventExporter.NDJSONPages
        do {
            pages = try await EventExporter.NDJSONPages(from: database, query: query, events: names)
        } catch let error as ReportsError where error.code == .unknownMachine {
            throw BadParameter(unknownMachine: error)
        }
        // The first page is read before answering, so that a failed read is still an error status.
        let first = try pages.next()
        let reads = self.reads
        return Response(
            status: .ok,
            headers: [.contentType: "application/x-ndjson"],
            body: ResponseBody { [pages] output in
                var pages = pages
                var page = first
                while let text = page {
                    try await output.write(ByteBuffer(bytes: text))
                    page = try await reads.run { try pages.next() }
                }
                try await output.finish(nil)
            }
        )
    }

    /// `body`'s response, or 400 with a JSON error naming the parameter at fault.
    private func answer(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await reads.run(body)
        } catch let error as BadParameter {
            return Self.error(.badRequest, error.message, parameter: error.parameter)
        }
    }

    /// A JSON error: `{"error": {"message": …}}`, with the parameter at fault when there is one.
    static func error(
        _ status: HTTPResponse.Status,
        _ message: String,
        parameter: String? = nil,
        _ extraHeaders: HTTPFields = [:]
    ) -> Response {
        var error = ["message": message]
        if let parameter { error["parameter"] = parameter }
        let data = (try? JSONSerialization.data(withJSONObject: ["error": error], options: [.sortedKeys])) ?? Data()
        var headers = extraHeaders
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    private func json(_ text: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }

    private func html(_ text: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "text/html; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }

    /// The application serving ``router(allowedHosts:)`` on `address:port`, its connections limited
    /// (``HTTPConnectionLimits``); `onRunning` gets the bound port.
    ///
    /// - Parameters:
    ///   - address: a numeric address (resolve names first: see ``ListenAddress``).
    ///   - allowRemote: whether requests may name any `Host` (otherwise loopback names and `address`).
    package func application(
        address: String,
        port: Int,
        allowRemote: Bool,
        webConfig: WebConfig = WebConfig(),
        logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let tracker = HTTPConnectionTracker(
            maximum: HTTPConnectionLimits.maximumConnections(descriptorLimit: HTTPConnectionLimits.descriptorLimit),
            logger: logger
        )
        let http: HTTPServerBuilder = .http1(
            configuration: .init(
                additionalChannelHandlers: [
                    TrackedConnectionHandler(tracker: tracker),
                    SecurityHeadersHandler(),
                    IdleStateHandler(allTimeout: HTTPConnectionLimits.stallTimeout),
                    StalledConnectionCloser(),
                ],
                idleTimeout: HTTPConnectionLimits.idleTimeout
            )
        )
        return Application(
            router: router(
                allowedHosts: allowRemote ? nil : HTTPGuard<BasicRequestContext>.loopbackHosts(bound: address),
                users: webConfig.users,
                logger: logger
            ),
            server: try webConfig.tls.map { try .tls(http, tlsConfiguration: $0) } ?? http,
            configuration: ApplicationConfiguration(
                address: .hostname(address, port: port),
                serverName: "qmplog"
            ),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }
}
