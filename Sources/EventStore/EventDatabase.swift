import CSQLiteTuning
import Foundation
public import GRDB

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The qmplog database: machines, sessions and events in one SQLite file.
///
/// Opening migrates the schema. The recorder opens a ``EventDatabase/openForWriting(path:)`` pool
/// (WAL, so reports read while it writes); reports open ``EventDatabase/openForReading(path:)``,
/// which never creates or changes the file.
///
/// ```swift
/// let database = try EventDatabase.openForWriting(path: "/var/lib/qmplog/events.sqlite")
/// let session = try await database.beginSession(…)
/// ```
public struct EventDatabase: Sendable {
    /// The underlying GRDB writer (a `DatabasePool` on a file, a `DatabaseQueue` in memory). Only
    /// EventStore runs statements on it (and tests in this package look through it).
    package let writer: any DatabaseWriter
    /// The file path, or `nil` in memory.
    public let path: String?
    /// Checkpoints the WAL beside the writer (a recording database only).
    private(set) var checkpointer: WALCheckpointer?
    /// Whether the schema knows imported history (v7): a reader of a file an older recorder still
    /// writes sees no `session.source` column, and no imported session either.
    let knowsImports: Bool
    /// What this process's writes established: verified sessions, `lastSeen` written (see ``WriteLedger``).
    let ledger = WriteLedger()

    /// Wraps `writer`, migrating it to the current schema.
    ///
    /// - Throws: ``EventStoreError`` `.schemaTooNew` when the file has migrations this build does not know.
    public init(writer: any DatabaseWriter, path: String? = nil) throws {
        self.writer = writer
        self.path = path
        self.knowsImports = true
        let label = path ?? "in-memory database"
        do {
            if try writer.read({ try Self.migrator.hasBeenSuperseded($0) }) {
                throw EventStoreError(
                    code: .schemaTooNew,
                    message: "\(label) was written by a newer qmplog; upgrade qmplog to use it"
                )
            }
            try Self.migrator.migrate(writer)
        } catch let error as EventStoreError {
            throw error
        } catch {
            throw EventStoreError(code: .cannotOpen, message: "cannot prepare \(label)", cause: error)
        }
    }

    /// An empty in-memory database, for query tests only (no WAL, no file modes, no crash safety).
    public static func inMemory() throws -> EventDatabase {
        try EventDatabase(writer: DatabaseQueue(configuration: configuration(readOnly: false)))
    }

    /// Opens or creates the database file at `path` for recording.
    ///
    /// A new file is created with mode 0600 (events may name VMs and carry guest data). WAL mode
    /// lets readers run beside the one writer; `synchronous=NORMAL` keeps every commit safe from a
    /// crash of qmplog itself, and at most the last commits can be lost if the machine loses power.
    ///
    /// - Throws: ``EventStoreError`` naming `path` and the reason.
    public static func openForWriting(path: String) throws -> EventDatabase {
        try createPrivateFile(path: path)
        let pool: DatabasePool
        var database: EventDatabase
        do {
            pool = try DatabasePool(path: path, configuration: configuration(readOnly: false))
            database = try EventDatabase(writer: pool, path: path)
            let checkpointer = try WALCheckpointer(path: path, configuration: configuration(readOnly: false))
            pool.writeWithoutTransaction { checkpointer.install(on: $0) }
            database.checkpointer = checkpointer
        } catch {
            throw classify(error, path: path, opening: true)
        }
        return database
    }

    /// Opens an existing database file for reports, read-only.
    ///
    /// A reader of a WAL database needs its -shm file, which SQLite creates when missing. Where it
    /// cannot (a read-only mount, a directory the reader cannot write), the file is opened as
    /// immutable instead: every committed event is in the main file then, unless a crashed
    /// recorder left a -wal behind, which an immutable reader does not see.
    ///
    /// - Throws: ``EventStoreError`` `.notFound` when there is no file at `path`.
    public static func openForReading(path: String) throws -> EventDatabase {
        guard access(path, F_OK) == 0 else {
            throw EventStoreError(code: .notFound, message: "no qmplog database at \(path)")
        }
        do {
            let pool = try DatabasePool(path: path, configuration: configuration(readOnly: true))
            return try EventDatabase(reader: pool, path: path)
        } catch let error as EventStoreError {
            throw error
        } catch let error as DatabaseError
            where [.SQLITE_CANTOPEN, .SQLITE_READONLY].contains(error.resultCode) && access(path, R_OK) == 0
        {
            do {
                let queue = try DatabaseQueue(path: immutableURI(path), configuration: configuration(readOnly: true))
                return try EventDatabase(reader: queue, path: path)
            } catch let error as EventStoreError {
                throw error
            } catch {
                throw classify(error, path: path, opening: true, readOnly: true)
            }
        } catch {
            throw classify(error, path: path, opening: true, readOnly: true)
        }
    }

    /// `file:PATH?immutable=1`, with the characters a URI gives meaning to escaped.
    static func immutableURI(_ path: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "?#%")
        return "file:" + (path.addingPercentEncoding(withAllowedCharacters: allowed) ?? path) + "?immutable=1"
    }

    private init(reader pool: any DatabaseWriter, path: String) throws {
        self.writer = pool
        self.path = path
        let applied = try pool.read { try Self.migrator.appliedIdentifiers($0) }
        self.knowsImports = applied.contains("v7-imports")
        if try pool.read({ try Self.migrator.hasBeenSuperseded($0) }) {
            throw EventStoreError(code: .schemaTooNew, message: "\(path) was written by a newer qmplog")
        }
        guard applied.contains("v1-events") else {
            throw EventStoreError(code: .cannotOpen, message: "\(path) is not a qmplog database")
        }
    }

    /// SQLite's process-wide options, set once before the first connection opens: no mutex per
    /// call on a connection (GRDB serializes each connection on its own queue) and none per
    /// allocation for memory statistics nobody reads (BENCHMARKS.md section 1).
    /// When something else initialized SQLite first, the defaults stay; nothing depends on it.
    private static let processOptions: Int32 = qmplog_sqlite_configure()

    static func configuration(readOnly: Bool) -> Configuration {
        _ = processOptions
        var configuration = Configuration()
        configuration.readonly = readOnly
        configuration.foreignKeysEnabled = true
        // A report waiting on a checkpoint, or a second recorder, waits rather than failing at once.
        configuration.busyMode = .timeout(5)
        if !readOnly {
            configuration.prepareDatabase { db in
                // A checkpoint every 16 MB of WAL instead of 4 MB: fewer checkpoints during a flood.
                // A recording database replaces it with a WAL hook (see WALCheckpointer), which
                // checkpoints every 64 MB; a WAL that grew past that during a flood is cut back to
                // 64 MB when it restarts. SQLite's default page cache stays (BENCHMARKS.md section 1).
                try db.execute(
                    sql: """
                        PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 4000;
                        PRAGMA journal_size_limit = 67108864
                        """
                )
            }
        }
        return configuration
    }

    /// Creates `path` with mode 0600 unless it exists, so SQLite (which gives the -wal and -shm
    /// files the main file's mode) never creates a world-readable database.
    ///
    /// A symbolic link is followed only to a database that exists: through a dangling link the
    /// file would be created wherever it points, and an empty file it points to would silently
    /// become a database.
    static func createPrivateFile(path: String) throws {
        var link = stat()
        if lstat(path, &link) == 0, (link.st_mode & S_IFMT) == S_IFLNK {
            var target = stat()
            guard stat(path, &target) == 0 else {
                throw EventStoreError(
                    code: .cannotOpen,
                    message: "\(path) is a symbolic link to a missing file: refusing to create the database through it"
                )
            }
            guard target.st_size > 0 else {
                throw EventStoreError(
                    code: .cannotOpen,
                    message: "\(path) is a symbolic link to an empty file: refusing to make it a database"
                )
            }
        }
        let descriptor = open(path, O_RDWR | O_CREAT, 0o600)
        guard descriptor >= 0 else { throw EventStoreError.fromErrno("cannot open database \(path)") }
        close(descriptor)
    }

    /// Makes an existing database private and says what else is exposed, before a writer opens it.
    ///
    /// The database, its -wal and -shm files, when owned by this user and readable or writable by
    /// others, are set to 0600 (events may carry guest data; a writable file lets anyone forge
    /// history). A directory others may write to is only reported: they could replace the files.
    ///
    /// - Returns: one sentence per change made or risk found, for the caller to log.
    public static func tightenPermissions(path: String) -> [String] {
        var notes: [String] = []
        for file in [path, path + "-wal", path + "-shm"] {
            var info = stat()
            guard stat(file, &info) == 0, info.st_mode & 0o077 != 0 else { continue }
            let mode = String(info.st_mode & 0o777, radix: 8)
            if info.st_uid == geteuid(), chmod(file, 0o600) == 0 {
                notes.append("\(file) had mode \(mode); set to 600")
            } else {
                notes.append("\(file) has mode \(mode) and belongs to another user: others may read or change it")
            }
        }
        let directory = (path as NSString).deletingLastPathComponent
        var info = stat()
        if stat(directory.isEmpty ? "." : directory, &info) == 0, info.st_mode & 0o022 != 0 {
            let mode = String(info.st_mode & 0o777, radix: 8)
            notes.append(
                "directory \(directory.isEmpty ? "." : directory) (mode \(mode)) is writable by other users: "
                    + "they could replace the database; keep it in a directory only its owner can write"
            )
        }
        return notes
    }

    static func classify(_ error: any Error, path: String, opening: Bool, readOnly: Bool = false) -> EventStoreError {
        if let error = error as? EventStoreError { return error }
        if let databaseError = error as? DatabaseError {
            switch databaseError.resultCode {
            case .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_CANTOPEN:
                // A reader never writes: its failure to open is no "not writable".
                if readOnly {
                    return EventStoreError(code: .cannotOpen, message: "cannot read database \(path)", cause: error)
                }
                return EventStoreError(code: .notWritable, message: "database \(path) is not writable", cause: error)
            case .SQLITE_NOTADB, .SQLITE_CORRUPT:
                return EventStoreError(code: .cannotOpen, message: "\(path) is not a SQLite database", cause: error)
            case .SQLITE_FULL:
                return EventStoreError(code: .writeFailed, message: "disk full writing \(path)", cause: error)
            default: break
            }
        }
        let verb = opening ? "cannot open database" : "cannot write to database"
        return EventStoreError(code: opening ? .cannotOpen : .writeFailed, message: "\(verb) \(path)", cause: error)
    }
}
