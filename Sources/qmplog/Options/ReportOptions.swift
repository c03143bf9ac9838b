public import ArgumentParser
import Collector
import EventStore
import Foundation
import Logging
import Reports

extension ReportInterval: ExpressibleByArgument {}
extension ReportFormat: ExpressibleByArgument {}
extension ReportKind: ExpressibleByArgument {}
extension EventExporter.Format: ExpressibleByArgument {}

/// `--vm`, `--since`, `--until`: which events a report or export covers.
struct FilterOptions: ParsableArguments {
    @Option(
        name: .customLong("vm"),
        help: ArgumentHelp("Only this VM (name, UUID or socket); repeatable.", valueName: "name")
    )
    var machines: [String] = []

    @Option(
        help: ArgumentHelp(
            "Only the VMs of this host, in a fleet database (--db postgresql://…).",
            valueName: "name"
        )
    )
    var host: String?

    @Option(
        help: ArgumentHelp(
            "Start of the window: RFC 3339 (2026-11-27T09:00:00Z, 2026-11-27) or a span before now (90s, 30m, 24h, 7d, 2w).",
            valueName: "time"
        )
    )
    var since: String?

    @Option(
        help: ArgumentHelp(
            "End of the window (exclusive), in the same forms as --since. Default: now.",
            valueName: "time"
        )
    )
    var until: String?

    func validate() throws {
        let now = Self.now()
        for (name, value) in [("--since", since), ("--until", until)] {
            guard let value else { continue }
            do {
                _ = try ReportTimeParser.parse(value, now: now)
            } catch {
                throw ValidationError("\(name) \(error.message).")
            }
        }
    }

    /// The query these options describe, at `now` (after ``validate()``, every time parses).
    func query(now: Int64 = FilterOptions.now()) -> ReportQuery {
        ReportQuery(
            since: since.flatMap { try? ReportTimeParser.parse($0, now: now) },
            until: until.flatMap { try? ReportTimeParser.parse($0, now: now) },
            machines: machines,
            now: now
        )
    }

    /// The query at `now`, with `--host` turned into its VMs (`--vm` given too: those of its VMs).
    ///
    /// - Throws: `ValidationError` when `--host` names no host of `database`'s fleet.
    func query(on database: EventDatabase, now: Int64 = FilterOptions.now()) async throws -> ReportQuery {
        var query = query(now: now)
        guard let host else { return query }
        guard let names = try await database.replicaMachineNames(host: host) else {
            throw ValidationError(
                "--host \(host): no such host; --host applies to a fleet database (--db postgresql://…)."
            )
        }
        query.machines = machines.isEmpty ? names : machines.filter(names.contains)
        guard !query.machines.isEmpty else {
            throw ValidationError("--host \(host): none of its VMs is named by --vm.")
        }
        return query
    }

    /// The wall clock in microseconds since the epoch: the clock commands hand to what they run.
    @Sendable static func now() -> Int64 { WallClock.microseconds() }
}

extension StoreOptions {
    /// Resolves the path and opens the database read-only; a missing file is an error naming the path.
    func openForReading() throws -> EventDatabase {
        if isFleet {
            throw ValidationError(
                "--db \(db ?? ""): this command works on a host's SQLite file, not the fleet's PostgreSQL."
            )
        }
        return try EventDatabase.openForReading(path: resolvedPath())
    }

    /// Whether --db names the fleet's PostgreSQL rather than a file.
    var isFleet: Bool {
        let path = resolvedPath()
        return path.hasPrefix("postgresql://") || path.hasPrefix("postgres://")
    }

    /// The database a read command reads: the SQLite file, or for `postgresql://…` the fleet's
    /// replica brought up to date from PostgreSQL, its rollup rebuilt when missing or 6 hours old.
    func openForReports() async throws -> EventDatabase {
        guard isFleet else { return try openForReading() }
        let url: FleetURL
        do { url = try FleetURL(resolvedPath()) } catch let error as FleetError { throw ValidationError(error.message) }
        // postgres-nio logs through swift-log; none of it belongs in a report's output.
        let quiet = Logger(label: "qmplog.fleet") { _ in SwiftLogNoOpLogHandler() }
        let replica = try await FleetReplica.refresh(url, logger: quiet)
        let now = FilterOptions.now()
        if let header = try await replica.rollupHeader(), header.builtAt > now - 6 * 3_600_000_000 { return replica }
        _ = try await RollupBuilder.rebuild(replica, now: now)
        return replica
    }
}
