import EventStore
import Foundation
import QMPTestSupport
import Testing

/// `qmplog ship` and `record --ship-to` as an operator runs them: the built binary, a real
/// database and a PostgreSQL server of the test's own.
@Suite(.serialized, .enabled(if: ThrowawayPostgres.shouldRun, "PostgreSQL's server is not installed"))
struct ShipCommandTests {
    @Test func shipKilledAtRandomMomentsStoresEveryEventOnceAfterTheNextRun() async throws {
        let server = try ThrowawayPostgres()
        defer { server.stop() }
        let host = try await SyntheticHost(name: "killed", machines: 20, eventsPerMachine: 5_000)
        defer { host.remove() }
        let database = host.directory.file("events.sqlite")
        let arguments = [
            "ship", "--db", database, "--to", server.urlWithoutPassword, "--once", "--host-name", "killed",
            "--ship-batch-size", "2000",
        ]
        let environment = ProcessInfo.processInfo.environment.merging(["PGPASSWORD": server.password]) { $1 }
        var shippedBeforeKill: [Int] = []
        for round in 0..<20 {
            let ship = try ChildProcess(
                QmplogBinaryTests.binary,
                arguments: arguments,
                environment: environment,
                outputPath: host.directory.file("ship-\(round).out")
            )
            try await Task.sleep(for: .milliseconds(Int.random(in: 50...700)))
            ship.kill9()
            _ = try await ship.waitForExit()
            // A kill before the first ship's migrations committed leaves no `event` table yet.
            let created = try server.psql("SELECT to_regclass('public.event') IS NOT NULL") == "t"
            shippedBeforeKill.append(created ? Int(try server.psql("SELECT count(*) FROM event")) ?? -1 : 0)
            // The recorder goes on meanwhile: new events after some kills.
            if round % 5 == 4 { try await host.addEvents(10) }
        }
        let final = try ChildProcess(
            QmplogBinaryTests.binary,
            arguments: arguments,
            environment: environment,
            outputPath: host.directory.file("ship-final.out")
        )
        let code = try await final.waitForExit(timeout: .seconds(300))
        let output = (try? String(contentsOfFile: host.directory.file("ship-final.out"), encoding: .utf8)) ?? ""
        #expect(code == 0, "\(output)")
        #expect(output.contains("Shipped "), "\(output)")

        // Some kills landed mid-ship (the count grew between kills), and PostgreSQL holds the union once.
        #expect(Set(shippedBeforeKill).count > 2, "\(shippedBeforeKill)")
        let events = try await host.database.allEvents()
        #expect(try server.psql("SELECT count(*) FROM event") == "\(events.count)")
        #expect(try server.psql("SELECT count(DISTINCT (host, id)) FROM event") == "\(events.count)")
        let localSum = events.reduce(Int64(0)) { $0 &+ $1.id &* 31 &+ $1.seq }
        #expect(try server.psql("SELECT sum(id * 31 + seq) FROM event") == "\(localSum)")
        #expect(try server.psql("SELECT count(*) FROM session") == "20")
    }

    @Test func recordShipsWhatItRecordsAndKeepsRecordingWhilePostgreSQLIsDown() async throws {
        let server = try ThrowawayPostgres()
        defer { server.stop() }
        let directory = try TemporaryDirectory(prefix: "record-ship")
        defer { directory.remove() }
        let now = Int64(Date().timeIntervalSince1970)
        let fake = try await FakeQMPServer.start(
            at: directory.file("vm.qmp"),
            behavior: .qemu(
                name: "web1",
                events: [
                    FakeQMPBehavior.event("STOP", seconds: now, micro: 1),
                    FakeQMPBehavior.event("RESUME", seconds: now, micro: 2),
                ],
                close: false
            )
        )
        defer { Task { await fake.stop() } }
        let database = directory.file("events.sqlite")
        try server.halt()  // down when the recorder starts
        let qmplog = try RecordHooksTests.record(
            ["--db", database, fake.path, "--ship-to", server.url, "--ship-interval", "0.2", "--host-name", "rack1"],
            in: directory
        )
        defer { qmplog.kill9() }
        try await RecordHooksTests.waitUntil(timeout: .seconds(60)) {
            try await EventDatabase.openForReading(path: database).allEvents().count == 2
        }
        try server.start()
        try await RecordHooksTests.waitUntil(timeout: .seconds(60)) {
            try server.psql("SELECT count(*) FROM event") == "2"
        }
        #expect(try server.psql("SELECT string_agg(name, ',' ORDER BY id) FROM event") == "STOP,RESUME")
        #expect(try server.psql("SELECT name FROM host") == "rack1")
        #expect(try server.psql("SELECT name FROM machine") == "web1")
        qmplog.send(signal: SIGTERM)
        #expect(try await qmplog.waitForExit() == 0, "\(RecordHooksTests.output(directory))")
        #expect(RecordHooksTests.output(directory).contains("cannot ship"))
        #expect(!RecordHooksTests.output(directory).contains(server.password))
    }

    @Test func pruneWithoutAShipTargetDeletesBeforeTheCutButTheNewest() async throws {
        let host = try await SyntheticHost(name: "local", machines: 2, eventsPerMachine: 10)
        defer { host.remove() }
        let database = host.directory.file("events.sqlite")
        // Events are stamped 2 s to 11 s after the epoch: the cut at 7 s keeps 7 s to 11 s.
        let (code, output) = try await QmplogBinaryTests.run(
            ["prune", "--db", database, "--before", "1970-01-01T00:00:07Z"],
            in: host.directory
        )
        #expect(code == 0, "\(output)")
        #expect(output.hasPrefix("Deleted 10 events before 1970-01-01T00:00:07"), "\(output)")
        let left = try await EventDatabase.openForReading(path: database).allEvents()
        #expect(left.count == 10 && left.allSatisfy { $0.received >= 7_000_000 })

        let (everything, _) = try await QmplogBinaryTests.run(
            ["prune", "--db", database, "--before", "2100-01-01"],
            in: host.directory
        )
        #expect(everything == 0)
        #expect(try await EventDatabase.openForReading(path: database).allEvents().map(\.id) == [left.map(\.id).max()])

        let (bad, badOutput) = try await QmplogBinaryTests.run(
            ["prune", "--db", database, "--before", "last tuesday"],
            in: host.directory
        )
        #expect(bad == 64 && badOutput.contains("--before"), "\(badOutput)")
    }

    @Test func reportsExportAndVmsReadTheFleetFromPostgreSQL() async throws {
        let server = try ThrowawayPostgres()
        defer { server.stop() }
        let host = try await SyntheticHost(name: "east", machines: 3, eventsPerMachine: 8)
        defer { host.remove() }
        try await host.addEvents(2, endingSessions: true)
        let database = host.directory.file("events.sqlite")
        let environment = ProcessInfo.processInfo.environment.merging([
            "PGPASSWORD": server.password, "XDG_CACHE_HOME": host.directory.file("cache"),
        ]) { $1 }
        func run(_ arguments: [String]) async throws -> (Int32, String) {
            let outputPath = host.directory.file("run-\(UUID().uuidString).out")
            let process = try ChildProcess(
                QmplogBinaryTests.binary,
                arguments: arguments,
                environment: environment,
                outputPath: outputPath
            )
            let code = try await process.waitForExit(timeout: .seconds(120))
            return (code, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
        }
        let fleet = server.urlWithoutPassword
        let (shipped, shipOutput) = try await run([
            "ship", "--db", database, "--to", fleet, "--once", "--host-name", "east",
        ])
        #expect(shipped == 0, "\(shipOutput)")

        // The same output from the host's file and from the fleet, for every read command.
        let until = ["--until", "1971-01-01"]  // a window that does not move with the clock
        for arguments in [
            ["report", "summary"] + until, ["report", "shutdowns", "--format", "json"] + until,
            ["report", "resets", "--by", "vm"] + until, ["report", "states", "--format", "csv"] + until,
            ["export", "--format", "csv"], ["vms"], ["timeline", "--vm", "vm-1"] + until,
        ] {
            let (localCode, local) = try await run(arguments + ["--db", database])
            let (fleetCode, fromFleet) = try await run(arguments + ["--db", fleet])
            #expect(localCode == 0 && fleetCode == 0, "\(arguments): \(fromFleet)")
            #expect(local == fromFleet, "\(arguments)\n\(local)\n---\n\(fromFleet)")
        }
        let (hostCode, onlyEast) = try await run(["vms", "--db", fleet, "--format", "csv"])
        #expect(hostCode == 0 && onlyEast.contains("vm-2"), "\(onlyEast)")
        let (filtered, filteredOutput) = try await run([
            "report", "summary", "--db", fleet, "--host", "east", "--format", "json",
        ])
        #expect(filtered == 0 && filteredOutput.contains("\"vms\": 3"), "\(filteredOutput)")
        let (unknown, unknownOutput) = try await run(["report", "summary", "--db", fleet, "--host", "west"])
        #expect(unknown == 64 && unknownOutput.contains("--host west"), "\(unknownOutput)")
        let (local, localOutput) = try await run(["report", "summary", "--db", database, "--host", "east"])
        #expect(local == 64 && localOutput.contains("fleet database"), "\(localOutput)")

        // A server without the schema, and a wrong password: clear errors, no password shown.
        try server.psql("CREATE DATABASE empty OWNER qmplog", database: "postgres")
        let empty = "postgresql://qmplog@127.0.0.1:\(server.port)/empty"
        let (noSchema, noSchemaOutput) = try await run(["report", "summary", "--db", empty])
        #expect(noSchema != 0 && noSchemaOutput.contains("no qmplog schema"), "\(noSchemaOutput)")
        let wrong = "postgresql://qmplog:wrong-secret@127.0.0.1:\(server.port)/fleet"
        let (refused, refusedOutput) = try await run(["vms", "--db", wrong])
        #expect(
            refused != 0 && refusedOutput.contains("password") && !refusedOutput.contains("wrong-secret"),
            "\(refusedOutput)"
        )
    }

    /// `sslmode=verify-full` against a certificate no root vouches for: refused at once, in words,
    /// not retried for a minute as if the server were down.
    @Test func aCertificateThatDoesNotVerifyIsRefusedAtOnce() async throws {
        let server = try ThrowawayPostgres()
        defer { server.stop() }
        try server.enableTLS()
        let host = try await SyntheticHost(name: "tls", machines: 1, eventsPerMachine: 2)
        defer { host.remove() }
        let output = host.directory.file("ship.out")
        let process = try ChildProcess(
            QmplogBinaryTests.binary,
            arguments: [
                "ship", "--once", "--db", host.directory.file("events.sqlite"), "--to",
                server.urlWithoutPassword + "?sslmode=verify-full",
            ],
            environment: ProcessInfo.processInfo.environment.merging(["PGPASSWORD": server.password]) { $1 },
            outputPath: output
        )
        let code = try await process.waitForExit(timeout: .seconds(120))
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(code != 0)
        #expect(text.contains("the server's certificate is not trusted"), "\(text)")
        #expect(!text.contains("retrying") && !text.contains(".swift") && !text.contains(".cc"), "\(text)")
    }

    @Test func shipRefusesClearlyAndKeepsTheLocalFile() async throws {
        let directory = try TemporaryDirectory(prefix: "ship-refused")
        defer { directory.remove() }
        let (missing, missingOutput) = try await QmplogBinaryTests.run(
            ["ship", "--db", directory.file("nope.sqlite"), "--to", "postgresql://u@127.0.0.1:1/x", "--once"],
            in: directory
        )
        #expect(missing != 0)
        #expect(missingOutput.contains("nope.sqlite"), "\(missingOutput)")
        #expect(!FileManager.default.fileExists(atPath: directory.file("nope.sqlite")))

        let (badURL, badOutput) = try await QmplogBinaryTests.run(
            ["ship", "--to", "http://u:hunter2@host/db", "--once"],
            in: directory
        )
        #expect(badURL == 64, "\(badOutput)")
        #expect(badOutput.contains("postgresql://") && !badOutput.contains("hunter2"), "\(badOutput)")
    }
}
