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
        let path = FleetReplica.path(for: url, environment: ["XDG_CACHE_HOME": cache])
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
    }

    @Test func twoHostsMeetAndAMigratedVMIsOneVM() async throws {
        let server = try ThrowawayPostgres()
        defer { server.stop() }
        let logger = Logger(label: "test.fleet")
        let url = try FleetURL(server.url)
        // "web" runs on both hosts without a UUID: two VMs. "db" has one UUID and moved: one VM.
        var hosts: [SyntheticHost] = []
        for name in ["rack1", "rack2"] {
            let host = try await SyntheticHost(name: name, machines: 0, eventsPerMachine: 0)
            for (vm, uuid) in [("web", nil), ("db", "6b9b9d2e-1c1f-4f43-9a4b-0d5f3c2e7a10")] as [(String, String?)] {
                let identity = MachineIdentity(name: vm, uuid: uuid, endpoint: "unix:/run/\(vm).qmp")
                let start: Int64 = name == "rack1" ? 1_000_000 : 50_000_000
                let handle = try await host.database.beginSession(SyntheticHost.session(identity, at: start))
                try await host.database.write(
                    events: [SyntheticHost.event("SHUTDOWN", handle, seq: 1, at: start + 1_000_000)],
                    endings: [SessionEnd(sessionId: handle.sessionId, endedAt: start + 2_000_000, reason: "eof")]
                )
            }
            _ = try await Shipper(
                database: host.database,
                configuration: .init(url: url, hostName: name),
                logger: logger
            )
            .shipOnce()
            hosts.append(host)
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
}
