package import EventStore
import Foundation
import HTTPTypes
package import Hummingbird
package import Logging
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
    let inRecorder: Bool
    /// Every route's database work goes through it (see ``OneAtATime``).
    let reads = OneAtATime()

    package init(
        database: EventDatabase,
        version: String,
        inRecorder: Bool = false,
        now: @escaping @Sendable () -> Int64
    ) {
        self.database = database
        self.version = version
        self.inRecorder = inRecorder
        self.now = now
    }

    /// Every page restricts itself to what it carries: no scripts, no external fonts or styles.
    static let securityHeaders: HTTPFields = {
        var fields: HTTPFields = [
            .contentSecurityPolicy:
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
                + "frame-ancestors 'none'; base-uri 'none'"
        ]
        for (name, value) in [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer")] {
            if let name = HTTPField.Name(name) { fields[name] = value }
        }
        return fields
    }()

    package func router() -> Router<BasicRequestContext> {
        let router = Router()
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
            throw BadParameter("vm", error.message)
        } catch let error as ReportsError where error.code == .invalidQuery {
            throw BadParameter("since", error.message)
        }
    }

    private func metrics() async throws -> Response {
        let families = try await FleetMetrics.families(of: database, now: now(), version: version, monitors: inRecorder)
        var headers = Self.securityHeaders
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(
            status: .ok,
            headers: headers,
            body: .init(byteBuffer: ByteBuffer(string: PrometheusText.render(families)))
        )
    }

    /// The events as `qmplog export --format ndjson` writes them, exported into a private
    /// temporary file (unlinked at once) and streamed from it.
    private func events(query: ReportQuery, names: [String]) async throws -> Response {
        var template = Array((NSTemporaryDirectory() + "/qmplog-events-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress.map { mkstemp($0) } ?? -1
        }
        guard descriptor >= 0 else { throw HTTPError(.internalServerError, message: "cannot create a temporary file") }
        unlink(String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        do {
            _ = try await EventExporter.export(
                from: database,
                query: query,
                events: names,
                format: .ndjson,
                to: descriptor
            )
        } catch let error as ReportsError where error.code == .unknownMachine {
            close(descriptor)
            throw BadParameter("vm", error.message)
        } catch {
            close(descriptor)
            throw error
        }
        lseek(descriptor, 0, SEEK_SET)
        var headers = Self.securityHeaders
        headers[.contentType] = "application/x-ndjson"
        return Response(
            status: .ok,
            headers: headers,
            body: ResponseBody { output in
                defer { close(descriptor) }
                var chunk = [UInt8](repeating: 0, count: 1 << 16)
                while true {
                    let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                    guard count > 0 else { break }
                    try await output.write(ByteBuffer(bytes: chunk[0..<count]))
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
            let object = ["error": ["parameter": error.parameter, "message": error.message]]
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            var headers = Self.securityHeaders
            headers[.contentType] = "application/json"
            return Response(status: .badRequest, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }

    private func json(_ text: String) -> Response {
        var headers = Self.securityHeaders
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    private func html(_ text: String) -> Response {
        var headers = Self.securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// The application serving ``router()`` on `host:port`; `onRunning` gets the bound port.
    package func application(
        host: String,
        port: Int,
        logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "qmplog"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }
}
