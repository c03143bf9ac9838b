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
    /// The replica's path for `url`: `$XDG_CACHE_HOME/qmplog/fleet-HASH.sqlite` (else
    /// `~/.cache/qmplog/`), HASH naming the server, port, database and user.
    public static func path(for url: FleetURL, environment: [String: String] = ProcessInfo.processInfo.environment)
        -> String
    {
        let cache =
            environment["XDG_CACHE_HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.cache")
        // FNV-1a: stable across runs and builds (Swift's Hasher is seeded per process).
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in url.description.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return "\(cache)/qmplog/fleet-\(String(hash, radix: 16)).sqlite"
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
            let path = path(for: url, environment: environment)
            let directory = (path as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(
                atPath: directory,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
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
