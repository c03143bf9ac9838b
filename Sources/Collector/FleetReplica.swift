public import EventStore
public import Foundation
public import Logging

/// The fleet's history as a database the reports read: a local replica of what the hosts shipped
/// to PostgreSQL (`report`, `export`, `vms` … `--db postgresql://…`), brought up to date from
/// PostgreSQL before each command.
///
/// The replica is a qmplog SQLite file in the cache directory, private to the user, kept between
/// commands: each refresh copies only what was shipped since, host by host, so the first command
/// over a large fleet pays for the copy and later ones only for what is new. Reports then run the
/// same code on it as on a host's own file, with its rollup.
public enum FleetReplica {
    /// The replica's path for `url`: `$XDG_CACHE_HOME/qmplog/fleet-HASH-FLEET-rFORMAT.sqlite` (else
    /// `~/.cache/qmplog/`), HASH naming the server, port, database and user, FLEET the fleet
    /// database's own id (a database dropped and created again is another fleet), FORMAT how the
    /// replica maps the fleet's VMs (a replica made by other rules is made anew).
    public static func path(
        for url: FleetURL,
        fleet: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String {
        "\(prefix(for: url, environment: environment))-\(fleet)-r\(format).sqlite"
    }

    /// 2: VMs meet across hosts only when name and UUID both match.
    static let format = 2

    /// What every replica of `url`, of any fleet id or format, starts with.
    static func prefix(for url: FleetURL, environment: [String: String]) -> String {
        let cache =
            environment["XDG_CACHE_HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.cache")
        // FNV-1a: stable across runs and builds (Swift's Hasher is seeded per process).
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in url.description.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return "\(cache)/qmplog/fleet-\(String(hash, radix: 16))"
    }

    /// Deletes the replicas of `url` other than `current`: those of a fleet database that is gone,
    /// or made by other rules.
    static func removeStale(of url: FleetURL, keeping current: String, environment: [String: String]) {
        let prefix = prefix(for: url, environment: environment)
        let directory = (prefix as NSString).deletingLastPathComponent
        let name = (prefix as NSString).lastPathComponent
        for file in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where file.hasPrefix(name) && !file.hasPrefix((current as NSString).lastPathComponent) {
            try? FileManager.default.removeItem(atPath: directory + "/" + file)
        }
    }

    /// Opens the replica of `url` (creating it, 0600 in a 0700 directory) and copies in what the
    /// hosts shipped since the last refresh.
    ///
    /// - Throws: ``FleetError`` (unreachable, refused, no schema) or ``EventStoreError``.
    public static func refresh(
        _ url: FleetURL,
        logger: Logger,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> EventDatabase {
        let fleet = try await FleetDatabase.connect(url, logger: logger)
        do {
            try await fleet.requireSchema()
            let path = path(for: url, fleet: try await fleet.fleetIdentity(), environment: environment)
            let directory = (path as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(
                atPath: directory,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
            removeStale(of: url, keeping: path, environment: environment)
            let replica = try EventDatabase.openForWriting(path: path)
            for host in try await fleet.hosts() {
                while true {
                    let cursor = try await replica.replicaCursor(host: host.key)
                    let rows = try await fleet.rows(
                        host: host.key,
                        sessionsAfter: cursor.lastSessionId,
                        sessionIds: cursor.openSessions,
                        eventsAfter: cursor.lastEventId,
                        limit: batch
                    )
                    let applied = try await replica.applyReplica(host: host, rows: rows, at: cursor)
                    if applied && rows.events.count < batch { break }
                }
            }
            await fleet.close()
            return replica
        } catch {
            await fleet.close()
            throw error
        }
    }

    static let batch = 100_000
}
