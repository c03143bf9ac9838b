import EventStore
import Foundation
import HummingbirdBcrypt
import QMPTestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// contrib/prometheus and contrib/grafana as an operator uses them: promtool's own rule tests, and
/// Debian's real Prometheus scraping a recorder (`record --http`) and `serve`, evaluating the rules
/// and answering the dashboard's queries.
@Suite(.serialized)
struct PrometheusTests {
    static let contrib = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("contrib")
    static let promtool = "/usr/bin/promtool"
    static let prometheus = "/usr/bin/prometheus"

    /// Prometheus is required in CI (QMPLOG_REQUIRE_QEMU) and skipped elsewhere when not installed.
    static func installed(_ program: String) throws -> Bool {
        let found = FileManager.default.isExecutableFile(atPath: program)
        try #require(found || !QEMUProcess.isRequired, "\(program) is not installed (apt-get install prometheus)")
        return found
    }

    /// Debian's Prometheus with `configuration`, its data and log in `directory`, on a loopback port.
    static func startPrometheus(_ configuration: String, port: Int, in directory: TemporaryDirectory) throws
        -> ChildProcess
    {
        try configuration.write(toFile: directory.file("prometheus.yml"), atomically: true, encoding: .utf8)
        return try ChildProcess(
            prometheus,
            arguments: [
                "--config.file=\(directory.file("prometheus.yml"))", "--storage.tsdb.path=\(directory.file("tsdb"))",
                "--web.listen-address=127.0.0.1:\(port)",
            ],
            outputPath: directory.file("prometheus.out")
        )
    }

    /// `serve --http 0.0.0.0:PORT --allow-remote --web-config FILE`, once it says it serves https.
    static func serveRemotely(_ database: String, webConfig: String, in directory: TemporaryDirectory) async throws
        -> (ChildProcess, port: Int)
    {
        let port = try ServeTests.Fleet.freePort()
        let serve = try ChildProcess(
            QmplogBinaryTests.binary,
            arguments: [
                "serve", "--db", database, "--http", "0.0.0.0:\(port)", "--allow-remote", "--web-config", webConfig,
            ],
            outputPath: directory.file("serve.out")
        )
        do {
            try await RecordHooksTests.waitUntil {
                ((try? String(contentsOfFile: directory.file("serve.out"), encoding: .utf8)) ?? "")
                    .contains("https://0.0.0.0:\(port)/")
            }
        } catch {
            serve.kill9()
            throw error
        }
        return (serve, port)
    }

    /// Prometheus' `up` per job: "1" for a target it scrapes, "0" for one it cannot.
    static func up(prometheusPort: Int) async throws -> [String: String] {
        let body = try await ServeTests.Fleet.get("http://127.0.0.1:\(prometheusPort)/api/v1/query?query=up").body
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        let results = (json?["data"] as? [String: Any])?["result"] as? [[String: Any]] ?? []
        var up: [String: String] = [:]
        for result in results {
            guard let job = (result["metric"] as? [String: String])?["job"] else { continue }
            up[job] = (result["value"] as? [Any])?.last as? String
        }
        return up
    }

    @Test func theRulesAreValidAndPassTheirUnitTests() async throws {
        guard try Self.installed(Self.promtool) else { return }
        let directory = try TemporaryDirectory(prefix: "rules")
        defer { directory.remove() }
        let rules = Self.contrib.appendingPathComponent("prometheus")
        let check = try await ServeTests.run(
            Self.promtool,
            ["check", "rules", rules.appendingPathComponent("qmplog.rules.yml").path],
            in: directory
        )
        #expect(check.code == 0, "\(check.output)")
        let test = try await ServeTests.run(
            Self.promtool,
            ["test", "rules", rules.appendingPathComponent("qmplog.rules.test.yml").path],
            in: directory
        )
        #expect(test.code == 0 && test.output.contains("SUCCESS"), "\(test.output)")
    }

    @Test func aRealPrometheusFiresTheAlertsAndAnswersEveryDashboardQuery() async throws {
        guard try Self.installed(Self.prometheus) else { return }
        let directory = try TemporaryDirectory(prefix: "prometheus")
        defer { directory.remove() }
        let watched = directory.file("vms")
        try FileManager.default.createDirectory(atPath: watched, withIntermediateDirectories: true)
        let database = directory.file("events.sqlite")
        let now = Int64(Date().timeIntervalSince1970)
        let recorderPort = try ServeTests.Fleet.freePort()
        let recorder = try ChildProcess(
            QmplogBinaryTests.binary,
            arguments: ["record", "--db", database, "--watch", watched, "--http", "127.0.0.1:\(recorderPort)"],
            outputPath: directory.file("record.out")
        )
        defer { recorder.kill9() }
        var connected: [FakeQMPServer] = []
        defer { for server in connected { Task { await server.stop() } } }
        /// A VM at a new socket of the watched directory, sending `events` (seconds before now); once
        /// they are stored its QEMU goes (a kill), unless it `stays`.
        func vm(_ name: String, socket: String, _ events: [(String, String?, Int64)], stays: Bool = false)
            async throws
        {
            let stored = try await EventDatabase.openForReading(path: database).allEvents().count
            let server = try await FakeQMPServer.start(
                at: "\(watched)/\(socket).qmp",
                behavior: .qemu(
                    name: name,
                    events: events.map { FakeQMPBehavior.event($0.0, data: $0.1, seconds: now - $0.2, micro: 0) },
                    close: false
                )
            )
            try await RecordHooksTests.waitUntil(timeout: .seconds(60)) {
                try await EventDatabase.openForReading(path: database).allEvents().count == stored + events.count
            }
            if stays { connected.append(server) } else { await server.stop() }
        }
        /// Three panics a minute apart: a crash loop, and three pause episodes.
        func panics(at start: Int64) -> [(String, String?, Int64)] {
            let panic =
                #"{"action": "pause", "info": {"type": "hyper-v", "arg1": 1, "arg2": 0, "arg3": 0, "arg4": 0, "arg5": 0}}"#
            return [120, 60, 0].flatMap { offset -> [(String, String?, Int64)] in
                [
                    ("GUEST_PANICKED", panic, start + offset), ("STOP", nil, start + offset),
                    ("RESET", #"{"guest": false, "reason": "host-qmp-system-reset"}"#, start + offset - 1),
                    ("RESUME", nil, start + offset - 1),
                ]
            }
        }
        // History Prometheus meets: a crash loop 3 h ago, a panic, a guest's and a host's shutdown.
        try await RecordHooksTests.waitUntil {
            (try? await ServeTests.Fleet.get("http://127.0.0.1:\(recorderPort)/metrics"))?.status == 200
        }
        try await vm("looper", socket: "looper-1", panics(at: 3 * 3600))
        try await vm("panicky", socket: "panicky-1", [("GUEST_PANICKED", #"{"action": "poweroff"}"#, 3000)])
        try await vm(
            "clean",
            socket: "clean",
            [
                ("SHUTDOWN", #"{"guest": true, "reason": "guest-shutdown"}"#, 2000),
                ("RESET", #"{"guest": true, "reason": "guest-reset"}"#, 1900),
                ("SHUTDOWN", #"{"guest": false, "reason": "host-signal"}"#, 1000),
            ],
            stays: true
        )
        let servePort = try ServeTests.Fleet.freePort()
        let serve = try ChildProcess(
            QmplogBinaryTests.binary,
            arguments: ["serve", "--db", database, "--http", "127.0.0.1:\(servePort)"],
            outputPath: directory.file("serve.out")
        )
        defer { serve.kill9() }

        let prometheusPort = try ServeTests.Fleet.freePort()
        let configuration = """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            rule_files:
              - \(Self.contrib.appendingPathComponent("prometheus/qmplog.rules.yml").path)
            scrape_configs:
              - job_name: qmplog
                static_configs:
                  - targets: ["127.0.0.1:\(recorderPort)", "127.0.0.1:\(servePort)"]
            """
        let server = try Self.startPrometheus(configuration, port: prometheusPort, in: directory)
        defer { server.kill9() }
        let api = "http://127.0.0.1:\(prometheusPort)/api/v1"
        func query(_ expression: String) async throws -> [[String: Any]] {
            var components = URLComponents(string: "\(api)/query")!
            components.queryItems = [URLQueryItem(name: "query", value: expression)]
            let body = try await ServeTests.Fleet.get(components.url!.absoluteString).body
            let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
            guard json?["status"] as? String == "success" else { throw QEMUTestError("\(expression): \(body)") }
            return (json?["data"] as? [String: Any])?["result"] as? [[String: Any]] ?? []
        }
        let output = { [directory] in
            ["record.out", "serve.out", "prometheus.out"].map {
                "\($0):\n" + ((try? String(contentsOfFile: directory.file($0), encoding: .utf8)) ?? "")
            }.joined(separator: "\n")
        }

        // Both targets scraped, the history's loop seen by both, twice.
        try await RecordHooksTests.waitUntil(timeout: .seconds(90)) {
            try await query(#"count_over_time(qmplog_vm_last_crash_loop_timestamp_seconds{vm="looper"}[1m]) >= 2"#)
                .count == 2
        }
        #expect(
            try await query(#"ALERTS{alertname=~"QmplogCrashLoop|QmplogGuestPanic"}"#).isEmpty,
            "history is no news"
        )

        // Then the VM loops again (its latest crash 10 minutes ago) and another panics, while
        // Prometheus watches.
        try await vm("looper", socket: "looper-2", panics(at: 600))
        try await vm("panicky", socket: "panicky-2", [("GUEST_PANICKED", #"{"action": "poweroff"}"#, 600)])
        func firing() async throws -> Set<String> {
            let body = try await ServeTests.Fleet.get("\(api)/alerts").body
            let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
            let alerts = (json?["data"] as? [String: Any])?["alerts"] as? [[String: Any]] ?? []
            return Set(
                alerts.filter { $0["state"] as? String == "firing" }.compactMap {
                    let labels = $0["labels"] as? [String: String]
                    return labels.map { "\($0["alertname"] ?? "") \($0["vm"] ?? "") \($0["instance"] ?? "")" }
                }
            )
        }
        do {
            try await RecordHooksTests.waitUntil(timeout: .seconds(90)) {
                let alerts = try await firing()
                return [recorderPort, servePort].allSatisfy { port in
                    alerts.contains("QmplogCrashLoop looper 127.0.0.1:\(port)")
                        && alerts.contains("QmplogGuestPanic panicky 127.0.0.1:\(port)")
                }
            }
        } catch {
            Issue.record("alerts firing: \((try? await firing()) ?? [])\n\(output())")
            return
        }
        #expect(!(try await firing()).contains { $0.hasPrefix("QmplogGuestPanic clean") })

        // Every query of the dashboard, with its variables at "All", has data.
        let dashboard = try JSONSerialization.jsonObject(
            with: Data(contentsOf: Self.contrib.appendingPathComponent("grafana/qmplog.json"))
        )
        let panels = try #require((dashboard as? [String: Any])?["panels"] as? [[String: Any]])
        #expect(panels.count >= 10)
        for panel in panels {
            for target in panel["targets"] as? [[String: Any]] ?? [] {
                let expression = try #require(target["expr"] as? String)
                    .replacingOccurrences(of: "$__rate_interval", with: "5m")
                    .replacingOccurrences(of: "$host", with: ".*").replacingOccurrences(of: "$vm", with: ".*")
                #expect(try await !query(expression).isEmpty, "\(panel["title"] ?? ""): \(expression)")
            }
        }
    }
    /// `record --http`'s own figures: what it stored, its monitors and hooks, each moving
    /// as the recorder does, in a text promtool accepts.
    @Test func theRecordersOwnHealthFollowsWhatItDoes() async throws {
        let directory = try TemporaryDirectory(prefix: "health")
        defer { directory.remove() }
        let database = directory.file("events.sqlite")
        let now = Int64(Date().timeIntervalSince1970)
        let panic = [
            FakeQMPBehavior.event("GUEST_PANICKED", data: #"{"action": "pause"}"#, seconds: now, micro: 0),
            FakeQMPBehavior.event("STOP", seconds: now, micro: 1),
        ]
        let stays = try await FakeQMPServer.start(
            at: directory.file("stays.qmp"),
            behavior: .qemu(name: "stays", events: panic, close: false)
        )
        defer { Task { await stays.stop() } }
        let goes = try await FakeQMPServer.start(
            at: directory.file("goes.qmp"),
            behavior: .qemu(name: "goes", events: panic, close: false)
        )
        let port = try ServeTests.Fleet.freePort()
        let recorder = try RecordHooksTests.record(
            [
                "--db", database, stays.path, goes.path, "--http", "127.0.0.1:\(port)", "--on", "panic", "--exec",
                "/bin/true", "--on", "any-pause",
                "--exec", "/bin/false",
            ],
            in: directory
        )
        defer { recorder.kill9() }
        var metrics = ""
        func value(_ sample: String) async throws -> Double? {
            metrics = try await ServeTests.Fleet.get("http://127.0.0.1:\(port)/metrics").body
            let line = metrics.split(separator: "\n").first { $0.hasPrefix(sample + " ") }
            return line?.split(separator: " ").last.flatMap { Double($0) }
        }
        do {
            try await RecordHooksTests.waitUntil(timeout: .seconds(60)) {
                let stored = try await value("qmplog_recorder_events_stored_total")
                let connected = try await value(#"qmplog_recorder_monitors{state="connected"}"#)
                return stored == 4 && connected == 2
            }
        } catch {
            Issue.record("\(metrics)\n\(RecordHooksTests.output(directory))")
            return
        }
        #expect(try await value("qmplog_recorder_commit_duration_seconds_count") ?? 0 >= 1)
        #expect(try await value("qmplog_recorder_writer_backlog_events") == 0)

        // The hooks ran (a pause hook failing), and a monitor gone is retried.
        try await RecordHooksTests.waitUntil(timeout: .seconds(60)) {
            let ok = try await value(#"qmplog_hook_runs_total{hook="1",on="panic",outcome="ok"}"#)
            let failed = try await value(#"qmplog_hook_runs_total{hook="2",on="any-pause",outcome="failed"}"#)
            return ok == 2 && failed == 2
        }
        #expect(try await value(#"qmplog_hook_runs_total{hook="1",on="panic",outcome="timeout"}"#) == 0)
        await goes.stop()
        try await RecordHooksTests.waitUntil(timeout: .seconds(30)) {
            let retrying = try await value(#"qmplog_recorder_monitors{state="retrying"}"#)
            let connected = try await value(#"qmplog_recorder_monitors{state="connected"}"#)
            // The session's end is committed by the writer, after the monitor is counted gone.
            let attached = try await value(#"qmplog_vm_monitor_connected{vm="goes"}"#)
            return retrying == 1 && connected == 1 && attached == 0
        }
        #expect(try await value(#"qmplog_vm_monitor_lost{vm="goes"}"#) == 0, "EOF is QEMU's own end")

        guard try Self.installed(Self.promtool) else { return }
        let file = directory.file("metrics.txt")
        try metrics.write(toFile: file, atomically: true, encoding: .utf8)
        let check = try await ServeTests.run(Self.promtool, ["check", "metrics"], stdin: file, in: directory)
        #expect(check.code == 0, "\(check.output)")
    }
    /// Scraped across the network: TLS and basic auth from a `--web-config` in the exporters'
    /// format, checked by a real Prometheus (`scheme: https`, `basic_auth`); no credentials, wrong
    /// ones and plain HTTP get nothing.
    @Test func aRealPrometheusScrapesOverTLSWithBasicAuthAndOthersAreRefused() async throws {
        guard try Self.installed(Self.prometheus) else { return }
        let directory = try TemporaryDirectory(prefix: "webconfig")
        defer { directory.remove() }
        let openssl = try await ServeTests.run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                "-subj", "/CN=qmplog test", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout",
                directory.file("qmplog.key"), "-out", directory.file("qmplog.crt"),
            ],
            in: directory
        )
        try #require(openssl.code == 0, "\(openssl.output)")
        let config = """
            tls_server_config:
              cert_file: qmplog.crt
              key_file: qmplog.key
            basic_auth_users:
              prometheus: \(Bcrypt.hash("scrape secret", cost: 8))
            """
        try config.write(toFile: directory.file("web.yml"), atomically: true, encoding: .utf8)
        let database = directory.file("events.sqlite")
        _ = try EventDatabase.openForWriting(path: database)

        // Remote without a password is refused; with the file it starts.
        let (refused, message) = try await QmplogBinaryTests.run(
            ["serve", "--db", database, "--http", "0.0.0.0:9", "--allow-remote"],
            in: directory
        )
        #expect(refused != 0 && message.contains("--web-config"), "\(message)")
        let (serve, port) = try await Self.serveRemotely(database, webConfig: directory.file("web.yml"), in: directory)
        defer { serve.kill9() }

        let prometheusPort = try ServeTests.Fleet.freePort()
        func job(_ name: String, scheme: String, password: String?) -> String {
            """
              - job_name: \(name)
                scheme: \(scheme)
                tls_config:
                  ca_file: \(directory.file("qmplog.crt"))
            \(password.map { "    basic_auth:\n      username: prometheus\n      password: \($0)\n" } ?? "")\
                static_configs:
                  - targets: ["127.0.0.1:\(port)"]

            """
        }
        let prometheusConfig =
            "global:\n  scrape_interval: 1s\nscrape_configs:\n"
            + job("right", scheme: "https", password: "scrape secret")
            + job("wrong", scheme: "https", password: "guess") + job("none", scheme: "https", password: nil)
            + job("plain", scheme: "http", password: "scrape secret")
        let prometheus = try Self.startPrometheus(prometheusConfig, port: prometheusPort, in: directory)
        defer { prometheus.kill9() }
        func up() async throws -> [String: String] { try await Self.up(prometheusPort: prometheusPort) }
        do {
            try await RecordHooksTests.waitUntil(timeout: .seconds(60)) {
                try await up() == ["right": "1", "wrong": "0", "none": "0", "plain": "0"]
            }
        } catch {
            Issue.record("up: \((try? await up()) ?? [:])")
        }
        let log = (try? String(contentsOfFile: directory.file("serve.out"), encoding: .utf8)) ?? ""
        #expect(log.contains("wrong password for user prometheus") && log.contains("no credentials"), "\(log)")
        #expect(!log.contains("guess") && !log.contains("scrape secret"), "passwords are never logged")
    }
    /// Client certificates instead of a password: `client_auth_type: RequireAndVerifyClientCert`
    /// admits `--allow-remote`, and Prometheus with a certificate the client CA signed is served
    /// while one without a certificate, or with one signed by another CA, is not.
    @Test func aRealPrometheusWithAClientCertificateIsServedAndOthersAreNot() async throws {
        guard try Self.installed(Self.prometheus) else { return }
        let directory = try TemporaryDirectory(prefix: "clientcert")
        defer { directory.remove() }
        func openssl(_ arguments: [String]) async throws {
            let result = try await ServeTests.run("/usr/bin/openssl", arguments, in: directory)
            try #require(result.code == 0, "openssl \(arguments): \(result.output)")
        }
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"]
        try await openssl(
            ["req", "-x509"] + curve + ["-subj", "/CN=qmplog", "-addext", "subjectAltName=IP:127.0.0.1"]
                + ["-keyout", directory.file("server.key"), "-out", directory.file("server.crt")]
        )
        for authority in ["clients", "strangers"] {
            try await openssl(
                ["req", "-x509"] + curve + [
                    "-subj", "/CN=\(authority) CA", "-keyout", directory.file("\(authority).key"),
                ]
                    + ["-out", directory.file("\(authority).crt")]
            )
            try await openssl(
                ["req"] + curve.filter { $0 != "-days" && $0 != "2" } + ["-subj", "/CN=prometheus"]
                    + [
                        "-keyout", directory.file("\(authority)-client.key"), "-out",
                        directory.file("\(authority)-client.csr"),
                    ]
            )
            try await openssl([
                "x509", "-req", "-in", directory.file("\(authority)-client.csr"), "-CA",
                directory.file("\(authority).crt"),
                "-CAkey", directory.file("\(authority).key"), "-CAcreateserial", "-days", "2",
                "-out", directory.file("\(authority)-client.crt"),
            ])
        }
        let config = """
            tls_server_config:
              cert_file: server.crt
              key_file: server.key
              client_ca_file: clients.crt
              client_auth_type: RequireAndVerifyClientCert
            """
        try config.write(toFile: directory.file("web.yml"), atomically: true, encoding: .utf8)
        let database = directory.file("events.sqlite")
        _ = try EventDatabase.openForWriting(path: database)
        let (serve, port) = try await Self.serveRemotely(database, webConfig: directory.file("web.yml"), in: directory)
        defer { serve.kill9() }
        func job(_ name: String, client: String?) -> String {
            """
              - job_name: \(name)
                scheme: https
                tls_config:
                  ca_file: \(directory.file("server.crt"))
            \(client.map { "      cert_file: \(directory.file("\($0)-client.crt"))\n      key_file: \(directory.file("\($0)-client.key"))\n" } ?? "")\
                static_configs:
                  - targets: ["127.0.0.1:\(port)"]

            """
        }
        let prometheusPort = try ServeTests.Fleet.freePort()
        let prometheus = try Self.startPrometheus(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n" + job("signed", client: "clients")
                + job("stranger", client: "strangers") + job("anonymous", client: nil),
            port: prometheusPort,
            in: directory
        )
        defer { prometheus.kill9() }
        func up() async throws -> [String: String] { try await Self.up(prometheusPort: prometheusPort) }
        do {
            try await RecordHooksTests.waitUntil(timeout: .seconds(60)) {
                try await up() == ["signed": "1", "stranger": "0", "anonymous": "0"]
            }
        } catch {
            Issue.record("up: \((try? await up()) ?? [:])")
        }
    }

    /// A `--web-config` that cannot be what the operator meant stops qmplog at start, naming the file
    /// and the setting: a misspelt key must not leave a server open that looks closed.
    @Test(
        arguments: [
            ("basic_auth_user:\n  a: x\n", "basic_auth_user is not a setting qmplog knows"),
            ("basic_auth_users:\n  prometheus: secret\n", "basic_auth_users.prometheus: not a bcrypt hash"),
            ("tls_server_config:\n  cert_file: missing.crt\n", "needs both cert_file and key_file"),
            ("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n", "a.crt or"),
            ("tls_server_config:\n  cert_fle: a.crt\n", "tls_server_config.cert_fle is not a setting"),
            ("- a\n- b\n", "the file must be a mapping"),
        ]
    )
    func aBrokenWebConfigIsRefusedNamingTheSetting(text: String, message: String) async throws {
        let directory = try TemporaryDirectory(prefix: "webconfig")
        defer { directory.remove() }
        let path = directory.file("web.yml")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let database = directory.file("events.sqlite")
        _ = try EventDatabase.openForWriting(path: database)
        let (code, output) = try await QmplogBinaryTests.run(
            ["serve", "--db", database, "--web-config", path],
            in: directory
        )
        #expect(code != 0 && output.contains("--web-config \(path): ") && output.contains(message), "\(output)")
    }
}
