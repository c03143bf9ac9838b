import Collector
import EventStore
import Foundation
import Logging
import QMPTestSupport
import Reports
import Testing

/// `qmplog ship`'s engine against a real PostgreSQL server of the test's own.
@Suite(.serialized, .enabled(if: ThrowawayPostgres.shouldRun, "PostgreSQL's server is not installed"))
struct ShipperTests {
    static let logger = Logger(label: "test.ship")

    /// Percent-escapes are decoded once, as libpq decodes them (`%2541` is `%41`, never `A`).
    @Test func aURLIsDecodedOnceAsLibpqDecodesIt() throws {
        let url = try FleetURL("postgresql://a%40b%3Ac:ab%2541cd%40%2F%3A@db.example:6543/fleet%2F1", environment: [:])
        #expect(url.user == "a@b:c")
        #expect(url.password == "ab%41cd@/:")
        #expect(url.database == "fleet/1")
        #expect(url.passwordInURL)
        let withoutPassword = try FleetURL("postgresql://qmplog@db.example/fleet", environment: ["PGPASSWORD": "x"])
        #expect(withoutPassword.password == "x" && !withoutPassword.passwordInURL)
    }

    @Test func shipsEveryRowOnceAndResumesWithWhatCameAfter() async throws {
        let server = try ThrowawayPostgres()
        defer { server.stop() }
        let host = try await SyntheticHost(name: "alpha", machines: 2, eventsPerMachine: 3, tricky: true)
        defer { host.remove() }
        let shipper = try host.shipper(to: server.url)

        let first = try await shipper.shipOnce()
        #expect(first.events == 6 + SyntheticHost.trickyEvents.count)
        #expect(first.sessions == 2 && first.machines == 2)
        try await expectFleet(server, equals: host)
        // The awkward text arrived as written: tab, newline, backslash; NUL as U+FFFD; JSON as jsonb.
        #expect(try server.psql(#"SELECT reason = E'tab\there\\' FROM event WHERE name = 'TRICKY' AND seq = 1"#) == "t")
        #expect(try server.psql("SELECT reason = E'line\\nbreak' FROM event WHERE name = 'TRICKY' AND seq = 2") == "t")
        #expect(
            try server.psql("SELECT reason = E'nul\\uFFFDinside' FROM event WHERE name = 'TRICKY' AND seq = 3") == "t"
        )
        #expect(try server.psql("SELECT data->>'text' FROM event WHERE name = 'TRICKY' AND seq = 3") == "a\u{FFFD}b")
        #expect(try server.psql("SELECT data->>'text' FROM event WHERE name = 'TRICKY' AND seq = 4") == #"\u0000"#)
        #expect(try server.psql("SELECT count(*) FROM session WHERE endedAt IS NULL") == "2")

        let again = try await shipper.shipOnce()
        #expect(again.events == 0 && again.sessions == 0 && again.machines == 0)

        try await host.addEvents(3, endingSessions: true)
        let third = try await shipper.shipOnce()
        #expect(third.events == 6)
        #expect(third.sessions == 2)  // the two that ended
        #expect(try server.psql("SELECT count(*) FROM session WHERE endedAt IS NULL") == "0")
        try await expectFleet(server, equals: host)
        let state = try await host.database.shippingState()
        #expect(state?.shippedEventId == Int64(try server.psql("SELECT max(id) FROM event")))
    }

    @Test func aSessionIdentifiedAfterShippingTakesItsEventsToTheVM() async throws {
        let server = try ThrowawayPostgres()
        defer { server.stop() }
        let directory = try TemporaryDirectory(prefix: "ship")
        defer { directory.remove() }
        let database = try EventDatabase.openForWriting(path: directory.file("events.sqlite"))
        // Opened under its endpoint, as the recorder does before the VM answers query-name.
        let endpoint = MachineIdentity(name: nil, uuid: nil, endpoint: "unix:/run/web.qmp")
        let handle = try await database.beginSession(SyntheticHost.session(endpoint, at: 1_000_000))
        try await database.write(events: [SyntheticHost.event("STOP", handle, seq: 1, at: 2_000_000)])
        let shipper = Shipper(
            database: database,
            configuration: .init(url: try FleetURL(server.url), hostName: "beta"),
            logger: Self.logger
        )
        _ = try await shipper.shipOnce()
        #expect(try server.psql("SELECT count(*) FROM machine WHERE name IS NULL") == "1")

        let named = try await database.machineId(
            for: MachineIdentity(name: "web", uuid: nil, endpoint: "unix:/run/web.qmp"),
            seenAt: 3_000_000
        )
        try await database.write(
            events: [
                SyntheticHost.event(
                    "RESUME",
                    SessionHandle(sessionId: handle.sessionId, machineId: named),
                    seq: 2,
                    at: 4_000_000
                )
            ],
            identifications: [
                (
                    0,
                    SessionIdentification(
                        session: handle,
                        machineId: named,
                        initialStatus: "paused",
                        initialRunning: false
                    )
                )
            ]
        )
        _ = try await shipper.shipOnce()
        #expect(
            try server.psql(
                "SELECT DISTINCT m.name FROM event e JOIN machine m ON m.host = e.host AND m.id = e.machineId"
            ) == "web"
        )
        #expect(try server.psql("SELECT count(*) FROM machine") == "1")
        #expect(try server.psql("SELECT initialStatus FROM session") == "paused")
    }

    @Test(.enabled(if: QEMUProcess.shouldRun, "qemu-system-x86_64 is not installed"))
    func threeHostsShippingAtOnceKeepTheirOwnRows() async throws {
        let server = try ThrowawayPostgres()
        defer { server.stop() }
        // One host recorded a real QEMU, one a fake peer, one has a long synthetic history.
        let real = try RecordingHarness()
        defer { real.remove() }
        try await real.recordQEMU(nil, ["-name", "realvm"]) { _, driver in
            _ = try driver.execute("cont")
            _ = try driver.execute("stop")
            _ = try driver.execute("cont")
            _ = try driver.execute("quit")
        }
        let fake = try RecordingHarness()
        defer { fake.remove() }
        let peer = try await FakeQMPServer.start(
            at: fake.directory.file("vm.qmp"),
            behavior: .qemu(
                name: "vm-0",
                events: [
                    FakeQMPBehavior.event("RESET", data: #"{"guest": true, "reason": "guest-reset"}"#),
                    FakeQMPBehavior.event("SHUTDOWN", data: #"{"guest": false, "reason": "host-qmp-quit"}"#),
                ]
            )
        )
        defer { Task { await peer.stop() } }
        try await fake.makeService(targets: [peer.path]).run()
        let synthetic = try await SyntheticHost(name: "h3", machines: 3, eventsPerMachine: 4_000)
        defer { synthetic.remove() }

        let databases = [("h1", real.database), ("h2", fake.database), ("h3", synthetic.database)]
        #expect(try await real.database.allEvents().count >= 3)
        #expect(try await fake.database.allEvents().count == 2)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (name, database) in databases {
                let configuration = Shipper.Configuration(
                    url: try FleetURL(server.url),
                    hostName: name,
                    batchSize: 1_000
                )
                group.addTask {
                    _ = try await Shipper(database: database, configuration: configuration, logger: Self.logger)
                        .shipOnce()
                }
            }
            try await group.waitForAll()
        }
        for (name, database) in databases { try await expectFleet(server, host: name, equals: database) }
        #expect(try server.psql("SELECT count(*) FROM host") == "3")
        #expect(
            try server.psql("SELECT string_agg(name, ',' ORDER BY name) FROM machine WHERE name LIKE '%vm%'")
                == "realvm,vm-0,vm-0,vm-1,vm-2"
        )
    }

    @Test func fiftyHostsShareAServerWithTwentyConnections() async throws {
        let server = try ThrowawayPostgres(maxConnections: 20)
        defer { server.stop() }
        var hosts: [SyntheticHost] = []
        for index in 0..<50 {
            hosts.append(try await SyntheticHost(name: "n\(index)", machines: 2, eventsPerMachine: 200))
        }
        defer { hosts.forEach { $0.remove() } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for host in hosts {
                group.addTask {
                    // Connected per round, and a full server is tried again: none is refused for good.
                    for _ in 0..<3 { _ = try await host.shipper(to: server.url).shipOnce(retryingFor: .seconds(120)) }
                }
            }
            try await group.waitForAll()
        }
        #expect(try server.psql("SELECT count(*) FROM host") == "50")
        #expect(try server.psql("SELECT count(*) FROM event") == "\(50 * 2 * 200)")
        #expect(
            try server.psql("SELECT count(*) FROM (SELECT host, id FROM event GROUP BY host, id HAVING count(*) > 1) d")
                == "0"
        )
    }

    @Test func aServerRestartInTheMiddleLosesAndDuplicatesNothing() async throws {
        let server = try ThrowawayPostgres()
        defer { server.stop() }
        let host = try await SyntheticHost(name: "gamma", machines: 10, eventsPerMachine: 6_000)
        defer { host.remove() }
        var configuration = Shipper.Configuration(url: try FleetURL(server.url), hostName: host.name, batchSize: 500)
        configuration.interval = .milliseconds(100)
        configuration.retry = ReconnectPolicy(initialDelay: .milliseconds(200), maximumDelay: .seconds(1))
        configuration.batchTimeout = .seconds(5)
        let shipper = Shipper(database: host.database, configuration: configuration, logger: Self.logger)
        let running = Task { try await shipper.run() }
        defer { running.cancel() }
        try await waitUntil { (Int(try server.psql("SELECT count(*) FROM event")) ?? 0) > 0 }
        try server.halt(immediate: true)
        try await Task.sleep(for: .milliseconds(500))
        try server.start()
        try await waitUntil { try server.psql("SELECT count(*) FROM event") == "60000" }
        // The batch the stop cut off was given up, not stored twice: the primary key would refuse it.
        running.cancel()
        try await expectFleet(server, equals: host)
    }

    @Test func aShipLongerThanTheBatchTimeoutGoesOn() async throws {
        let server = try ThrowawayPostgres()
        defer { server.stop() }
        let host = try await SyntheticHost(name: "long", machines: 10, eventsPerMachine: 3_000)
        defer { host.remove() }
        var configuration = Shipper.Configuration(url: try FleetURL(server.url), hostName: host.name, batchSize: 50)
        // Long enough for a connection on a loaded CI machine, short beside the whole ship.
        configuration.batchTimeout = .seconds(2)
        let started = ContinuousClock.now
        // 600 batches, each well under the timeout, the whole ship over it: no batch's watchdog outlives it.
        let totals = try await Shipper(database: host.database, configuration: configuration, logger: Self.logger)
            .shipOnce()
        #expect(ContinuousClock.now - started > .seconds(2), "too fast to tell")
        #expect(totals.events == 30_000 && totals.batches == 601)
        try await expectFleet(server, equals: host)
    }

    @Test func aHostClockOffPostgreSQLsIsMeasured() async throws {
        let server = try ThrowawayPostgres()
        defer { server.stop() }
        let host = try await SyntheticHost(name: "skewed", machines: 1, eventsPerMachine: 5)
        defer { host.remove() }
        var configuration = Shipper.Configuration(url: try FleetURL(server.url), hostName: host.name)
        configuration.clock = { Int64(Date().timeIntervalSince1970 * 1_000_000) + 5_000_000 }  // 5 s fast
        let totals = try await Shipper(database: host.database, configuration: configuration, logger: Self.logger)
            .shipOnce()
        let offset = try #require(totals.clockOffset)
        #expect(abs(offset + 5_000_000) < 500_000, "measured \(offset) µs")
        let stored = try #require(Int64(try server.psql("SELECT clockOffset FROM host")))
        #expect(abs(stored + 5_000_000) < 500_000)
        #expect(try await host.database.shippingState()?.clockOffset == offset)
        // `report summary` on the host says so.
        let summary = try await ReportKind.summary.run(on: host.database, query: ReportQuery(now: 20_000_000_000))
        #expect(
            summary.caveats.contains { $0.contains("clock was +5.0 s off the fleet's PostgreSQL") },
            "\(summary.caveats)"
        )

        // And a report over the fleet names the host.
        let replica = try await FleetReplica.refresh(
            try FleetURL(server.url),
            logger: Self.logger,
            environment: ["XDG_CACHE_HOME": host.directory.file("cache")]
        )
        let fleetSummary = try await ReportKind.summary.run(on: replica, query: ReportQuery(now: 20_000_000_000))
        #expect(
            fleetSummary.caveats.contains { $0.contains("Host skewed's clock was +5.0 s off") },
            "\(fleetSummary.caveats)"
        )

        let fair = try await host.shipper(to: server.url).shipOnce()
        #expect(abs(try #require(fair.clockOffset)) < Shipper.clockTolerance)
        let after = try await ReportKind.summary.run(on: host.database, query: ReportQuery(now: 20_000_000_000))
        #expect(!after.caveats.contains { $0.contains("clock was") })
    }

    @Test func refusalsAreClearAndLoseNothing() async throws {
        let server = try ThrowawayPostgres()
        defer { server.stop() }
        let host = try await SyntheticHost(name: "delta", machines: 1, eventsPerMachine: 10)
        defer { host.remove() }
        let before = try await host.database.allEvents().count

        let wrong = "postgresql://\(server.user):not-the-password@127.0.0.1:\(server.port)/\(server.database)"
        let refused = await #expect(throws: FleetError.self) { _ = try await host.shipper(to: wrong).shipOnce() }
        #expect(refused?.code == .authentication)
        #expect(refused?.message.contains("not-the-password") == false)
        #expect(refused?.message.contains("127.0.0.1:\(server.port)") == true)

        let nobody = "postgresql://qmplog@127.0.0.1:1/fleet"
        let unreachable = await #expect(throws: FleetError.self) { _ = try await host.shipper(to: nobody).shipOnce() }
        #expect(unreachable?.code == .unreachable)

        let bad = #expect(throws: FleetError.self) { _ = try FleetURL("mysql://x@y/z") }
        #expect(bad?.code == .badURL)
        let leaky = #expect(throws: FleetError.self) { _ = try FleetURL("postgresql://u:secret@h/d?colour=blue") }
        #expect(leaky?.message.contains("secret") == false)

        // A database nothing was shipped to has no schema for readers.
        let fleet = try await FleetDatabase.connect(try FleetURL(server.url), logger: Self.logger)
        let empty = await #expect(throws: FleetError.self) { try await fleet.requireSchema() }
        await fleet.close()
        #expect(empty?.code == .noSchema)

        #expect(try await host.database.allEvents().count == before)
        #expect(try await host.database.shippingState()?.shippedEventId ?? 0 == 0)
        // And once the server is right, everything goes.
        #expect(try await host.shipper(to: server.url).shipOnce().events == before)
    }

    @Test func pruneDeletesOnlyWhatPostgreSQLHoldsAndNeverTheNewest() async throws {
        let server = try ThrowawayPostgres()
        defer { server.stop() }
        let host = try await SyntheticHost(name: "prune", machines: 2, eventsPerMachine: 10)
        defer { host.remove() }
        _ = try await host.shipper(to: server.url).shipOnce()
        try await host.addEvents(5)  // 10 more, not shipped
        let events = try await host.database.allEvents()
        let shipped = try #require(try await host.database.shippingState()?.shippedEventId)

        let outcome = try await host.database.pruneEvents(before: .max, chunk: 7)
        #expect(outcome.deleted == Int(shipped))
        #expect(outcome.keptUnshipped == events.count - Int(shipped))
        let left = try await host.database.allEvents().map(\.id).sorted()
        #expect(left == events.map(\.id).filter { $0 > shipped }.sorted())
        #expect(try await host.database.rollupHeader() == nil)

        // Shipping goes on where it was, and PostgreSQL kept what the host pruned.
        #expect(try await host.shipper(to: server.url).shipOnce().events == events.count - Int(shipped))
        #expect(try server.psql("SELECT count(*) FROM event") == "\(events.count)")
        // With everything shipped, the newest still stays (its id must not be handed out again).
        _ = try await host.database.pruneEvents(before: .max)
        #expect(try await host.database.allEvents().map(\.id) == [events.map(\.id).max()])
    }

    @Test func theURLTakesItsPasswordFromTheEnvironmentOrThePasswordFile() throws {
        let directory = try TemporaryDirectory(prefix: "pgpass")
        defer { directory.remove() }
        let file = directory.file("pgpass")
        try "# fleet\nother:5432:*:*:no\ndb.example:5433:fleet:ship:from\\:file\n".write(
            toFile: file,
            atomically: true,
            encoding: .utf8
        )
        chmod(file, 0o600)
        let fromFile = try FleetURL("postgresql://ship@db.example:5433/fleet", environment: ["PGPASSFILE": file])
        #expect(fromFile.password == "from:file")
        #expect(fromFile.description == "postgresql://ship@db.example:5433/fleet")
        chmod(file, 0o644)  // libpq ignores a password file others can read
        #expect(
            try FleetURL("postgresql://ship@db.example:5433/fleet", environment: ["PGPASSFILE": file]).password == nil
        )
        let fromEnvironment = try FleetURL("postgresql://ship@h/fleet", environment: ["PGPASSWORD": "env"])
        #expect(fromEnvironment.password == "env")
        let socket = try FleetURL("postgresql://ship@/fleet?host=/run/postgresql&port=5444")
        #expect(socket.socketDirectory == "/run/postgresql" && socket.port == 5444)
    }

    /// PostgreSQL holds exactly the host's rows: every event once, with its columns.
    private func expectFleet(_ server: ThrowawayPostgres, equals host: SyntheticHost) async throws {
        try await expectFleet(server, host: host.name, equals: host.database)
    }

    private func expectFleet(_ server: ThrowawayPostgres, host name: String, equals database: EventDatabase)
        async throws
    {
        let key = try server.psql("SELECT key FROM host WHERE name = '\(name)'")
        let events = try await database.allEvents().sorted { $0.id < $1.id }
        let local = events.map { "\($0.id):\($0.sessionId):\($0.machineId):\($0.seq):\($0.name)" }.joined(
            separator: ","
        )
        let fleet = try server.psql(
            "SELECT string_agg(id || ':' || sessionId || ':' || machineId || ':' || seq || ':' || name, ',' ORDER BY id) "
                + "FROM event WHERE host = \(key)"
        )
        // Compared whole; only the first difference is shown.
        let difference = zip(fleet.split(separator: ","), local.split(separator: ",")).first { $0 != $1 }
        #expect(
            fleet == local,
            "host \(name): \(events.count) local events; first difference \(String(describing: difference))"
        )
        let sessions = try await database.allSessions()
        #expect(try server.psql("SELECT count(*) FROM session WHERE host = \(key)") == "\(sessions.count)")
        #expect(
            try server.psql("SELECT count(*) FROM session WHERE host = \(key) AND endedAt IS NULL")
                == "\(sessions.filter { $0.endedAt == nil }.count)"
        )
    }

    private func waitUntil(_ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            if (try? await condition()) == true { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("timed out")
    }
}

extension SyntheticHost {
    func shipper(to url: String, batchSize: Int = 50_000) throws -> Shipper {
        let configuration = Shipper.Configuration(url: try FleetURL(url), hostName: name, batchSize: batchSize)
        return Shipper(database: database, configuration: configuration, logger: ShipperTests.logger)
    }
}
