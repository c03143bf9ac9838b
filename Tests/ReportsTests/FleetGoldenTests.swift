import Collector
import EventStore
import Foundation
import Logging
import QMPTestSupport
import Reports
import Testing

/// The golden reports again, from the fleet's PostgreSQL: the golden fleet shipped to a real server
/// and read back through `--db postgresql://`'s replica must print the same files, byte for byte.
@Suite(.serialized, .enabled(if: ThrowawayPostgres.shouldRun, "PostgreSQL's server is not installed"))
struct FleetGoldenTests {
    @Test func everyReportFromPostgreSQLMatchesTheGoldenFiles() async throws {
        let server = try ThrowawayPostgres()
        defer { server.stop() }
        let fleet = try await ReportGoldenTests.makeFleet()
        defer { fleet.remove() }
        let logger = Logger(label: "test.fleet")
        let url = try FleetURL(server.url)
        _ = try await Shipper(
            database: EventDatabase.openForWriting(path: fleet.directory.file("events.sqlite")),
            configuration: .init(url: url, hostName: "golden"),
            logger: logger
        ).shipOnce()
        let cache = fleet.directory.file("cache")
        let replica = try await FleetReplica.refresh(url, logger: logger, environment: ["XDG_CACHE_HOME": cache])

        for kind in ReportKind.allCases {
            let plain = try await kind.run(on: replica, query: FixtureDatabase.query(byMachine: true))
            for format in ReportFormat.allCases {
                try assertSnapshot(format.render(plain), named: "\(kind.rawValue).\(format.rawValue)")
            }
            let series = try await kind.run(on: replica, query: FixtureDatabase.query(interval: .day))
            try assertSnapshot(ReportFormat.csv.render(series), named: "\(kind.rawValue).day.csv")
        }
        let machines = try await MachineListReport.run(on: replica, now: FixtureDatabase.now)
        try assertSnapshot(ReportFormat.table.render(machines), named: "vms.table")
        let timeline = try await TimelineReport.run(on: replica, query: FixtureDatabase.query(machines: ["gamma"]))
        for format in ReportFormat.allCases {
            try assertSnapshot(format.render(timeline), named: "timeline.\(format.rawValue)")
        }

        // A refresh copies only what is new, and the file is private.
        let again = try await FleetReplica.refresh(url, logger: logger, environment: ["XDG_CACHE_HOME": cache])
        #expect(try await again.allEvents().count == (try await fleet.database.allEvents().count))
        let files = try Self.replicaFiles(in: cache)
        #expect(files.count == 1)
        for path in files {
            #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
        }
    }

    @Test func twoHostsMeetAndAMigratedVMIsOneVM() async throws {
        let server = try ThrowawayPostgres()
        defer { server.stop() }
        let logger = Logger(label: "test.fleet")
        let url = try FleetURL(server.url)
        // "web" runs on both hosts without a UUID: two VMs. "db" has one UUID and moved: one VM.
        var hosts: [SyntheticHost] = []
        let dbUUID = "6b9b9d2e-1c1f-4f43-9a4b-0d5f3c2e7a10"
        for name in ["rack1", "rack2"] {
            let start: Int64 = name == "rack1" ? 1_000_000 : 50_000_000
            hosts.append(
                try await Self.shippedHost(
                    name,
                    [
                        (vm: "web", uuid: nil, start: start, shutdowns: 1),
                        (vm: "db", uuid: dbUUID, start: start, shutdowns: 1),
                    ],
                    to: url,
                    logger: logger
                )
            )
        }
        defer { hosts.forEach { $0.remove() } }
        let cache = hosts[0].directory.file("cache")
        let replica = try await FleetReplica.refresh(url, logger: logger, environment: ["XDG_CACHE_HOME": cache])
        let names = try await replica.allMachines().map(\.displayName).sorted()
        #expect(names == ["db", "web@rack1", "web@rack2"])
        let db = try #require(try await replica.allMachines().first { $0.name == "db" })
        #expect(try await replica.allSessions().filter { $0.machineId == db.id }.count == 2)
        #expect(try await replica.replicaMachineNames(host: "rack2") == ["db", "web@rack2"])
        #expect(try await replica.replicaMachineNames(host: "rack9") == nil)
        let shutdowns = try await ReportKind.shutdowns.run(
            on: replica,
            query: ReportQuery(machines: ["web@rack1", "web@rack2"], byMachine: true, now: 100_000_000)
        )
        #expect(shutdowns.value("host") == .integer(2))
    }

    /// Clones share a UUID and are still other VMs: a host's two VMs with one UUID, and a third of
    /// another host, read from the fleet as each host reads them. Then the fleet database is dropped
    /// and made again: the reader starts over instead of showing the old VMs.
    @Test func clonesStayApartAndARecreatedFleetIsReadAfresh() async throws {
        let server = try ThrowawayPostgres()
        defer { server.stop() }
        let logger = Logger(label: "test.fleet")
        let url = try FleetURL(server.url)
        let uuid = "0f0e0d0c-0b0a-4908-8706-050403020100"
        func host(_ name: String, _ vms: [String]) async throws -> SyntheticHost {
            let spec = vms.enumerated().map { index, vm in
                (vm: vm, uuid: uuid as String?, start: Int64(index + 1) * 10_000_000, shutdowns: index + 1)
            }
            return try await Self.shippedHost(name, spec, to: url, logger: logger)
        }
        let first = try await host("h1", ["a1", "a2"])
        defer { first.remove() }
        let second = try await host("h2", ["b1"])
        defer { second.remove() }
        let cache = first.directory.file("cache")
        let replica = try await FleetReplica.refresh(url, logger: logger, environment: ["XDG_CACHE_HOME": cache])
        #expect(try await replica.allMachines().map(\.displayName).sorted() == ["a1", "a2", "b1"])
        for (host, name) in [(first, "h1"), (second, "h2")] {
            let machines = try #require(try await replica.replicaMachineNames(host: name))
            let query = ReportQuery(machines: machines, byMachine: true, now: 100_000_000)
            let fromFleet = ReportFormat.json.render(try await ReportKind.shutdowns.run(on: replica, query: query))
            let fromHost = ReportFormat.json.render(try await ReportKind.shutdowns.run(on: host.database, query: query))
            #expect(fromFleet == fromHost, "\(name)\n\(fromFleet)\n---\n\(fromHost)")
        }

        // When the fleet database is dropped, made again, and another host ships to it
        try server.psql("DROP DATABASE fleet WITH (FORCE)", database: "postgres")
        try server.psql("CREATE DATABASE fleet OWNER qmplog", database: "postgres")
        let third = try await host("h3", ["c1"])
        defer { third.remove() }
        let fresh = try await FleetReplica.refresh(url, logger: logger, environment: ["XDG_CACHE_HOME": cache])
        // Then the reader holds the new fleet only, and the old copy is gone
        #expect(try await fresh.allMachines().map(\.displayName) == ["c1"])
        #expect(try await fresh.allEvents().count == 1)
        #expect(try Self.replicaFiles(in: cache).count == 1)
    }

    /// A host whose VMs each had one session with `shutdowns` SHUTDOWNs a microsecond apart, shipped.
    static func shippedHost(
        _ name: String,
        _ vms: [(vm: String, uuid: String?, start: Int64, shutdowns: Int)],
        to url: FleetURL,
        logger: Logger
    ) async throws -> SyntheticHost {
        let host = try await SyntheticHost(name: name, machines: 0, eventsPerMachine: 0)
        for spec in vms {
            let identity = MachineIdentity(name: spec.vm, uuid: spec.uuid, endpoint: "unix:/run/\(spec.vm).qmp")
            let handle = try await host.database.beginSession(SyntheticHost.session(identity, at: spec.start))
            try await host.database.write(
                events: (1...Int64(spec.shutdowns)).map {
                    SyntheticHost.event(
                        "SHUTDOWN",
                        handle,
                        seq: $0,
                        at: spec.start + $0 * 1_000_000 / Int64(spec.shutdowns)
                    )
                },
                endings: [SessionEnd(sessionId: handle.sessionId, endedAt: spec.start + 2_000_000, reason: "eof")]
            )
        }
        _ = try await Shipper(database: host.database, configuration: .init(url: url, hostName: name), logger: logger)
            .shipOnce()
        return host
    }

    static func replicaFiles(in cache: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: cache + "/qmplog").filter { $0.hasSuffix(".sqlite") }
            .map { cache + "/qmplog/" + $0 }
    }
}
