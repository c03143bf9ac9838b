import EventStore
import Foundation
import QMPTestSupport
import Server
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `qmplog serve`, run as an operator runs it: the built binary on a free loopback port, over a
/// database `qmplog record` wrote from fake peers, read by HTTP, promtool and a headless Chromium.
@Suite(.serialized)
struct ServeTests {
    /// A recorded fleet and a server over it, shared by the tests (started once).
    final class Fleet: Sendable {
        let directory: TemporaryDirectory
        let database: String
        let base: String
        let server: ChildProcess
        /// The hostile VM's name: the pages must show it as text.
        static let hostile = "<script>alert(1)</script>"

        init() async throws {
            directory = try TemporaryDirectory(prefix: "serve")
            database = directory.file("events.sqlite")
            let now = Int64(Date().timeIntervalSince1970) - 3600
            func event(_ name: String, _ data: String? = nil, _ offset: Int64) -> String {
                FakeQMPBehavior.event(name, data: data, seconds: now + offset, micro: 0)
            }
            let web1 = try await FakeQMPServer.start(
                at: directory.file("web1.qmp"),
                behavior: .qemu(
                    name: "web1",
                    events: [
                        event("RESET", #"{"guest": true, "reason": "guest-reset"}"#, 1),
                        event("WATCHDOG", #"{"action": "reset"}"#, 4),
                        event("RESET", #"{"guest": false, "reason": "watchdog"}"#, 4),
                        event("POWERDOWN", nil, 10),
                        event("SHUTDOWN", #"{"guest": true, "reason": "guest-shutdown"}"#, 11),
                    ]
                )
            )
            let hostile = try await FakeQMPServer.start(
                at: directory.file("hostile.qmp"),
                behavior: .qemu(
                    name: Self.hostile,
                    events: [
                        event(
                            "GUEST_PANICKED",
                            #"{"action": "pause", "info": {"type": "hyper-v", "arg1": 30, "arg2": 0, "arg3": 0, "arg4": 0, "arg5": 0}}"#,
                            5
                        ),
                        event("SHUTDOWN", #"{"guest": false, "reason": "host-signal"}"#, 20),
                    ]
                )
            )
            let (code, output) = try await QmplogBinaryTests.run(
                ["record", "--once", "--db", database, web1.path, hostile.path],
                in: directory
            )
            await web1.stop()
            await hostile.stop()
            guard code == 0 else { throw QEMUTestError("record failed: \(output)") }
            let port = try Self.freePort()
            base = "http://127.0.0.1:\(port)"
            server = try ChildProcess(
                QmplogBinaryTests.binary,
                arguments: ["serve", "--db", database, "--http", "127.0.0.1:\(port)"],
                outputPath: directory.file("serve.out")
            )
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: .seconds(20))
            while (try? await Self.get(base + "/api/vms"))?.status != 200 {
                guard clock.now < deadline, server.isRunning else { throw QEMUTestError("serve did not start") }
                try await Task.sleep(for: .milliseconds(50))
            }
        }

        static func freePort() throws -> Int {
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(descriptor) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
                }
            }
            guard bound else { throw QEMUTestError("no free port") }
            return Int(UInt16(bigEndian: address.sin_port))
        }

        static func get(_ url: String) async throws -> (status: Int, headers: [String: String], body: String) {
            let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
            let http = response as! HTTPURLResponse
            var headers: [String: String] = [:]
            for (key, value) in http.allHeaderFields {
                headers[String(describing: key).lowercased()] = String(describing: value)
            }
            return (http.statusCode, headers, String(decoding: data, as: UTF8.self))
        }
    }

    /// Runs `body` with a fleet recorded and served for it alone, then stops the server.
    static func withFleet(_ body: (Fleet) async throws -> Void) async throws {
        let fleet = try await Fleet()
        defer {
            fleet.server.kill9()
            fleet.directory.remove()
        }
        try await body(fleet)
    }

    // MARK: - Routes

    @Test func everyRouteAnswersWithItsTypeAndASecurityPolicy() async throws {
        try await Self.withFleet { fleet in
            let routes =
                [
                    ("/", "text/html; charset=utf-8"), ("/vm/web1", "text/html; charset=utf-8"),
                    ("/metrics", "text/plain; version=0.0.4; charset=utf-8"), ("/api/vms", "application/json"),
                    ("/api/events", "application/x-ndjson"),
                ]
                + [
                    "summary", "shutdowns", "panics", "resets", "watchdog", "states", "stops", "pauses",
                ].map { ("/api/reports/\($0)", "application/json") }
            for (route, type) in routes {
                let response = try await Fleet.get(fleet.base + route)
                #expect(response.status == 200, "\(route): \(response.body)")
                #expect(response.headers["content-type"] == type, "\(route)")
                #expect(
                    response.headers["content-security-policy"]?.hasPrefix("default-src 'none'") == true,
                    "\(route)"
                )
            }
        }
    }

    @Test(arguments: [
        ("/api/reports/shutdowns?since=yesterday", "since"), ("/api/reports/shutdowns?until=soon", "until"),
        ("/api/reports/nope", "kind"), ("/api/reports/stops?vm=nobody", "vm"),
        ("/api/reports/states?interval=fortnight", "interval"), ("/api/reports/shutdowns?by=host", "by"),
        ("/api/reports/shutdowns?colour=blue", "colour"), ("/api/events?since=2026-13-45", "since"),
        ("/?window=1y", "window"), ("/vm/nobody", "vm"),
    ])
    func aBadParameterIs400WithAJSONErrorNamingIt(_ route: String, parameter: String) async throws {
        try await Self.withFleet { fleet in
            let response = try await Fleet.get(fleet.base + route)
            #expect(response.status == 400, "\(route)")
            let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: [String: String]]
            #expect(object?["error"]?["parameter"] == parameter, "\(route): \(response.body)")
            #expect(object?["error"]?["message"]?.isEmpty == false)
        }
    }

    @Test func manyClientsAtOnceAreAllAnswered() async throws {
        try await Self.withFleet { fleet in
            // Ten at once, queued one at a time (OneAtATime). The starvation that queue prevents was
            // found over 10 M events (BENCHMARKS.md section 7); at this size it does not show.
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<10 {
                    let route = index % 2 == 0 ? "/metrics" : "/api/reports/states?interval=hour&by=vm"
                    group.addTask { try await Fleet.get(fleet.base + route).status }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses == Array(repeating: 200, count: 10))
        }
    }

    // MARK: - The same answers as the command line

    @Test(arguments: ["summary", "shutdowns", "panics", "resets", "watchdog", "states", "stops", "pauses"])
    func apiReportsAreExactlyTheCommandLinesJSON(_ kind: String) async throws {
        try await Self.withFleet { fleet in
            let until = "2099-01-01T00:00:00Z"
            for (query, options) in [
                ("until=\(until)", ["--until", until]),
                ("until=\(until)&vm=web1&interval=hour", ["--until", until, "--vm", "web1", "--interval", "hour"]),
                ("since=2000-01-01&until=\(until)&by=vm", ["--since", "2000-01-01", "--until", until, "--by", "vm"]),
            ] {
                let api = try await Fleet.get(fleet.base + "/api/reports/\(kind)?\(query)")
                let (code, cli) = try await QmplogBinaryTests.run(
                    ["report", kind, "--db", fleet.database, "--format", "json"] + options,
                    in: fleet.directory
                )
                #expect(code == 0)
                #expect(api.body == cli, "\(kind)?\(query)")
            }
        }
    }

    @Test func apiVMsAndEventsAreTheCommandLinesOutput() async throws {
        try await Self.withFleet { fleet in
            let (_, vms) = try await QmplogBinaryTests.run(
                ["vms", "--db", fleet.database, "--format", "json"],
                in: fleet.directory
            )
            let api = try await Fleet.get(fleet.base + "/api/vms")
            // Both end their window at the moment they ran.
            func withoutNow(_ text: String) -> String {
                text.split(separator: "\n").filter { !$0.contains("\"until\":") }.joined(separator: "\n")
            }
            #expect(withoutNow(api.body) == withoutNow(vms))
            let (_, export) = try await QmplogBinaryTests.run(
                ["export", "--db", fleet.database, "--format", "ndjson", "--vm", "web1", "--event", "RESET"],
                in: fleet.directory
            )
            let events = try await Fleet.get(fleet.base + "/api/events?vm=web1&event=RESET")
            #expect(events.body == export)
            #expect(events.body.split(separator: "\n").count == 2)
        }
    }

    // MARK: - Metrics

    @Test func metricsEqualTheReportsFiguresAndPassPromtool() async throws {
        try await Self.withFleet { fleet in
            let metrics = try await Fleet.get(fleet.base + "/metrics").body
            func value(_ family: String, _ labels: [String: String]) -> Double? {
                for line in metrics.split(separator: "\n") where line.hasPrefix(family + "{") {
                    let matches = labels.allSatisfy { line.contains("\($0.key)=\"\($0.value)\"") }
                    if matches, let number = line.split(separator: " ").last.flatMap({ Double($0) }) { return number }
                }
                return nil
            }
            #expect(
                value(
                    "qmplog_vm_shutdowns_total",
                    ["vm": "web1", "initiator": "host_requested_acpi", "reason": "guest-shutdown"]
                ) == 1
            )
            #expect(value("qmplog_vm_shutdowns_total", ["initiator": "host", "reason": "host-signal"]) == 1)
            #expect(value("qmplog_vm_resets_total", ["vm": "web1", "initiator": "guest"]) == 1)
            #expect(value("qmplog_vm_resets_total", ["vm": "web1", "initiator": "watchdog"]) == 1)
            #expect(value("qmplog_vm_guest_panics_total", ["type": "hyper-v"]) == 1)
            #expect(value("qmplog_vm_watchdog_events_total", ["vm": "web1", "action": "reset"]) == 1)
            #expect(value("qmplog_events_total", ["vm": "web1", "event": "RESET"]) == 2)
            #expect(value("qmplog_vm_stops_last24h", ["vm": "web1", "class": "host-acpi"]) == 1)
            #expect(value("qmplog_vm_stops_last24h", ["vm": Fleet.hostile, "class": "host-signal"]) == 1)
            let stopped = try #require(value("qmplog_vm_last_stop_timestamp_seconds", ["vm": "web1"]))
            #expect(abs(stopped - Double(Int64(Date().timeIntervalSince1970) - 3600 + 11)) <= 60)
            #expect(!metrics.contains("qmplog_vm_pauses_last24h{"), "a panic with no STOP is no pause")
            #expect(!metrics.contains("qmplog_vm_last_crash_loop_timestamp_seconds{"), "no VM crash-looped")
            #expect(!metrics.contains("qmplog_recorder_"), "serve is no recorder")
            #expect(value("qmplog_vm_state", ["vm": "web1", "state": "unknown"]) == 1, "no recorder is attached")
            #expect(value("qmplog_vm_info", ["vm": "web1", "qemu_version": "7.2.22"]) == 1)
            #expect(metrics.contains("qmplog_build_info{version=\""))
            // The same figures as the report's summary.
            let (_, shutdowns) = try await QmplogBinaryTests.run(
                ["report", "shutdowns", "--db", fleet.database, "--format", "json"],
                in: fleet.directory
            )
            let summary = try #require(
                (try JSONSerialization.jsonObject(with: Data(shutdowns.utf8)) as? [String: Any])?["summary"]
                    as? [String: Any]
            )
            let total = metrics.split(separator: "\n").filter { $0.hasPrefix("qmplog_vm_shutdowns_total{") }
                .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
            #expect(total == (summary["shutdowns"] as? Double))

            let promtool = "/usr/bin/promtool"
            try #require(
                FileManager.default.isExecutableFile(atPath: promtool) || !QEMUProcess.isRequired,
                "promtool is not installed (apt-get install prometheus)"
            )
            guard FileManager.default.isExecutableFile(atPath: promtool) else { return }
            let file = fleet.directory.file("metrics.txt")
            try metrics.write(toFile: file, atomically: true, encoding: .utf8)
            let check = try await Self.run(promtool, ["check", "metrics"], stdin: file, in: fleet.directory)
            #expect(check.code == 0, "\(check.output)")
        }
    }

    // MARK: - Pages

    @Test func pagesEscapeWhatVMsSendAndLinkEachVM() async throws {
        try await Self.withFleet { fleet in
            let page = try await Fleet.get(fleet.base + "/").body
            #expect(!page.contains(Fleet.hostile))
            #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            #expect(!page.contains("<script"))
            #expect(page.contains("<a href=\"/vm/web1\">web1</a>"))
            #expect(page.contains("<a href=\"/vm/%3Cscript%3Ealert%281%29%3C%2Fscript%3E\">"))
            let hostile = try await Fleet.get(fleet.base + "/vm/%3Cscript%3Ealert%281%29%3C%2Fscript%3E")
            #expect(hostile.status == 200)
            #expect(!hostile.body.contains("<script"))
            #expect(hostile.body.contains("stop: host-signal"))
        }
    }

    @Test func aHeadlessBrowserRendersTheChartsWithTheirFigures() async throws {
        try await Self.withFleet { fleet in
            let chromium = "/usr/bin/chromium"
            try #require(
                FileManager.default.isExecutableFile(atPath: chromium) || !QEMUProcess.isRequired,
                "chromium is not installed (apt-get install chromium)"
            )
            guard FileManager.default.isExecutableFile(atPath: chromium) else { return }
            let flags = [
                "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(fleet.directory.file("chromium"))",
            ]
            let dom = try await Self.run(
                chromium,
                flags + ["--dump-dom", fleet.base + "/?window=all"],
                in: fleet.directory
            )
            #expect(dom.code == 0)
            // The DOM the browser built: the shutdown chart's bars carry the report's figures.
            #expect(dom.output.contains(#"data-series="host_requested_acpi" data-label=""#))
            #expect(dom.output.contains(#"aria-label="Panics by crash type""#))
            #expect(dom.output.contains(#"data-label="hyper-v" data-value="1""#))
            #expect(dom.output.contains(#"<table id="latest_events">"#))
            // The run-state timeline: a lane per VM, a column per week, split by state.
            #expect(dom.output.contains(#"aria-label="Run state per VM and week""#))
            #expect(dom.output.contains(#"data-series="shutdown" data-label="web1""#))
            let vm = try await Self.run(
                chromium,
                flags + ["--dump-dom", fleet.base + "/vm/web1?window=all"],
                in: fleet.directory
            )
            #expect(vm.output.contains("host-acpi"))
            #expect(vm.output.contains(#"data-series="stop""#))
            let screenshot = fleet.directory.file("dashboard.png")
            let shot = try await Self.run(
                chromium,
                flags + ["--screenshot=\(screenshot)", "--window-size=1280,2000", fleet.base + "/?window=all"],
                in: fleet.directory
            )
            #expect(shot.code == 0)
            #expect(
                (try? Data(contentsOf: URL(fileURLWithPath: screenshot)).prefix(4)) == Data([0x89, 0x50, 0x4E, 0x47])
            )
        }
    }

    @Test func aRecorderServesItsLiveMonitorsAndStopsGracefully() async throws {
        let directory = try TemporaryDirectory(prefix: "serve")
        defer { directory.remove() }
        let vm = try await FakeQMPServer.start(
            at: directory.file("live.qmp"),
            behavior: .qemu(name: "live", close: false)
        )
        defer { Task { await vm.stop() } }
        let port = try Fleet.freePort()
        let database = directory.file("events.sqlite")
        let recorder = try ChildProcess(
            QmplogBinaryTests.binary,
            arguments: ["record", "--db", database, vm.path, "--http", "127.0.0.1:\(port)"],
            outputPath: directory.file("record.out")
        )
        defer { recorder.kill9() }
        try await QmplogBinaryTests.waitForSession(database: database)
        try await QmplogBinaryTests.waitUntil {
            try await Fleet.get("http://127.0.0.1:\(port)/metrics").body
                .contains(#"qmplog_vm_monitor_connected{vm="live"} 1"#)
        }
        recorder.send(signal: SIGTERM)
        #expect(try await recorder.waitForExit() == 0)
    }

    @Test func aRemoteAddressNeedsToBeAllowed() async throws {
        let directory = try TemporaryDirectory(prefix: "serve")
        defer { directory.remove() }
        let (code, output) = try await QmplogBinaryTests.run(
            ["serve", "--db", directory.file("e.sqlite"), "--http", "0.0.0.0:9750"],
            in: directory
        )
        #expect(code == 64)
        #expect(output.contains("add --allow-remote"))
    }

    // MARK: - A hostile local user

    @Test func everyResponseIsGuardedAndCarriesTheSecurityHeaders() async throws {
        try await Self.withFleet { fleet in
            let port = try #require(Int(fleet.base.split(separator: ":").last ?? ""))
            func request(_ head: String) throws -> (status: Int, head: String, body: String) {
                let text = try Self.rawHTTP(port: port, head + "\r\n\r\n")
                let parts = text.components(separatedBy: "\r\n\r\n")
                let status = Int(parts[0].split(separator: " ").dropFirst().first ?? "") ?? 0
                return (status, parts[0].lowercased(), parts.dropFirst().joined(separator: "\r\n\r\n"))
            }
            let host = "Host: 127.0.0.1:\(port)"
            let cases: [(String, Int)] = [
                ("GET /nonexistent HTTP/1.1\r\n\(host)", 404), ("GET /vm/ HTTP/1.1\r\n\(host)", 404),
                ("POST / HTTP/1.1\r\n\(host)\r\nContent-Length: 0", 405),
                ("OPTIONS /metrics HTTP/1.1\r\n\(host)", 405),
                // DNS rebinding: a page on another name reaching loopback
                ("GET /api/vms HTTP/1.1\r\nHost: evil.example", 421),
                ("GET /api/vms HTTP/1.1\r\nHost: 127.evil.example:\(port)", 421),
                ("GET /api/vms HTTP/1.1\r\nHost: localhost:\(port)", 200),
                ("GET /\(String(repeating: "a", count: 100_000)) HTTP/1.1\r\n\(host)", 400),
                ("HEAD / HTTP/1.1\r\n\(host)", 200), ("HEAD /metrics HTTP/1.1\r\n\(host)", 200),
            ]
            for (head, status) in cases {
                let response = try request(head + "\r\nConnection: close")
                let line = String(head.prefix(60))
                #expect(response.status == status, "\(line): \(response.head)")
                #expect(response.head.contains("content-security-policy: default-src 'none'"), "\(line)")
                #expect(response.head.contains("x-content-type-options: nosniff"), "\(line)")
                #expect(response.head.contains("x-frame-options: deny"), "\(line)")
                if head.hasPrefix("HEAD") { #expect(response.body.isEmpty, "\(line)") }
                if status == 405 { #expect(response.head.contains("allow: get, head"), "\(line)") }
            }
            // An unknown VM names a few known ones, never the database's path
            let unknown = try await Fleet.get(fleet.base + "/api/reports/stops?vm=nobody")
            #expect(unknown.status == 400 && !unknown.body.contains(fleet.database) && unknown.body.contains("web1"))
        }
    }

    /// 300 idle connections against a recorder whose descriptor limit is 128: it keeps its
    /// descriptors for monitors (a VM appearing in the watched directory is recorded) and /metrics
    /// answers.
    @Test func idleConnectionsNeitherBlindTheRecorderNorSilenceMetrics() async throws {
        let directory = try TemporaryDirectory(prefix: "serve")
        defer { directory.remove() }
        let watched = directory.file("vms")
        try FileManager.default.createDirectory(atPath: watched, withIntermediateDirectories: true)
        let port = try Fleet.freePort()
        let database = directory.file("events.sqlite")
        let recorder = try ChildProcess(
            "/bin/sh",
            arguments: [
                "-c", "ulimit -n 128 && exec \"$0\" \"$@\"", QmplogBinaryTests.binary, "record", "--db", database,
                "--watch", watched, "--http", "127.0.0.1:\(port)",
            ],
            outputPath: directory.file("record.out")
        )
        defer { recorder.kill9() }
        try await QmplogBinaryTests.waitUntil { try await Fleet.get("http://127.0.0.1:\(port)/metrics").status == 200 }
        // Given 300 connections that never send a byte
        var idle: [Int32] = []
        defer { idle.forEach { close($0) } }
        for _ in 0..<300 { idle.append(try Self.connect(port: port)) }
        // When a VM appears in the watched directory
        let vm = try await FakeQMPServer.start(at: watched + "/late.qmp", behavior: .qemu(name: "late", close: false))
        defer { Task { await vm.stop() } }
        // Then it is recorded, /metrics answers, and HTTP holds a few descriptors, not the limit
        try await QmplogBinaryTests.waitForSession(database: database)
        try await QmplogBinaryTests.waitUntil {
            try await Fleet.get("http://127.0.0.1:\(port)/metrics").body
                .contains(#"qmplog_vm_monitor_connected{vm="late"} 1"#)
        }
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(recorder.processIdentifier)/fd")
        #expect(descriptors.count < 64, "\(descriptors.count) descriptors open")
        let log = (try? String(contentsOfFile: directory.file("record.out"), encoding: .utf8)) ?? ""
        #expect(log.contains("HTTP connections at their cap"))
    }

    /// /api/events streams page by page: no temporary file (TMPDIR unusable), nothing deleted held open.
    @Test func eventsStreamWithoutATemporaryFile() async throws {
        try await Self.withFleet { fleet in
            let port = try Fleet.freePort()
            let server = try ChildProcess(
                QmplogBinaryTests.binary,
                arguments: ["serve", "--db", fleet.database, "--http", "127.0.0.1:\(port)"],
                environment: ["TMPDIR": "/nonexistent"],
                outputPath: fleet.directory.file("serve-tmp.out")
            )
            defer { server.kill9() }
            try await QmplogBinaryTests.waitUntil {
                try await Fleet.get("http://127.0.0.1:\(port)/api/events").status == 200
            }
            let events = try await Fleet.get("http://127.0.0.1:\(port)/api/events")
            #expect(events.body.split(separator: "\n").count >= 7)
            // A client that asks and never reads
            let stalled = try Self.connect(port: port)
            defer { close(stalled) }
            let request = "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n"
            _ = request.withCString { write(stalled, $0, strlen($0)) }
            try await QmplogBinaryTests.waitUntil {
                try await Fleet.get("http://127.0.0.1:\(port)/metrics").status == 200
            }
            let fd = "/proc/\(server.processIdentifier)/fd"
            let targets = try FileManager.default.contentsOfDirectory(atPath: fd).compactMap {
                try? FileManager.default.destinationOfSymbolicLink(atPath: fd + "/" + $0)
            }
            #expect(!targets.contains { $0.hasSuffix("(deleted)") }, "\(targets)")
        }
    }

    @Test(arguments: [
        ("127.0.0.1", true), ("127.1.2.3", true), ("::1", true), ("::ffff:127.0.0.1", true), ("localhost", true),
        ("0.0.0.0", false), ("::", false), ("192.0.2.1", false),
    ])
    func anAddressIsLoopbackOnlyWhenEveryAddressItNamesIs(host: String, loopback: Bool) throws {
        #expect(try ListenAddress.resolve(host).isLoopback == loopback)
    }

    @Test func numbersThatAreNoPlainAddressAreRefused() {
        #expect(throws: ListenAddressError.self) { try ListenAddress.resolve("0177.0.0.1") }
        #expect(throws: ListenAddressError.self) { try ListenAddress.resolve("2130706433") }
        #expect(ListenAddress(address: "::1", isLoopback: true).url(port: 9750) == "http://[::1]:9750/")
    }

    // MARK: - Helpers

    static func run(
        _ program: String,
        _ arguments: [String],
        stdin: String? = nil,
        in directory: TemporaryDirectory
    ) async throws -> (code: Int32, output: String) {
        let output = directory.file("run-\(UUID().uuidString).out")
        let process: ChildProcess
        if let stdin {
            process = try ChildProcess(
                "/bin/sh",
                arguments: ["-c", "exec \"$0\" \"$@\" < \"\(stdin)\"", program] + arguments,
                outputPath: output
            )
        } else {
            process = try ChildProcess(program, arguments: arguments, outputPath: output)
        }
        let code = try await process.waitForExit(timeout: .seconds(60))
        return (code, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    static func connect(port: Int) throws -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard descriptor >= 0, connected else {
            close(descriptor)
            throw QEMUTestError("cannot connect to port \(port)")
        }
        return descriptor
    }

    /// Sends `request` as it is (URLSession would not send a forged Host or a bare OPTIONS) and
    /// reads the answer until the server closes.
    static func rawHTTP(port: Int, _ request: String) throws -> String {
        let descriptor = try connect(port: port)
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array(request.utf8)
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }  // the server may close on a request it refuses
            sent += count
        }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            answer += chunk[0..<count]
        }
        return String(decoding: answer, as: UTF8.self)
    }
    /// A fleet page stays a page: over 1,000 VMs each per-VM chart draws the top 10, says how
    /// many it leaves out and where they are, and `/report/KIND` has them all.
    @Test func aThousandVMsMakeAPageOfBoundedSizeWithTheRestAClickAway() async throws {
        let dayAgo = (Int64(Date().timeIntervalSince1970) - 86_400) * 1_000_000
        let host = try await SyntheticHost(name: "thousand", machines: 1_000, eventsPerMachine: 4, start: dayAgo)
        defer { host.remove() }
        let port = try Fleet.freePort()
        let server = try ChildProcess(
            QmplogBinaryTests.binary,
            arguments: ["serve", "--db", host.directory.file("events.sqlite"), "--http", "127.0.0.1:\(port)"],
            outputPath: host.directory.file("serve.out")
        )
        defer { server.kill9() }
        let base = "http://127.0.0.1:\(port)"
        try await RecordHooksTests.waitUntil { (try? await Fleet.get(base + "/api/vms"))?.status == 200 }
        let page = try await Fleet.get(base + "/?window=all")
        #expect(page.status == 200)
        #expect(page.body.utf8.count <= 150_000, "\(page.body.utf8.count) bytes")
        #expect(page.body.contains("The 10 VMs with the most resets of 1000 are shown; 990 more"))
        #expect(page.body.contains(#"<a href="/report/resets?window=all">the full table</a>"#))
        #expect(page.body.contains(#"<a href="/api/reports/resets?by=vm">JSON</a>"#))
        let full = try await Fleet.get(base + "/report/resets?window=all")
        #expect(full.status == 200)
        for vm in ["vm-0", "vm-500", "vm-999"] { #expect(full.body.contains(">\(vm)<"), "\(vm)") }
        #expect(try await Fleet.get(base + "/report/nope").status == 400)
    }
}
