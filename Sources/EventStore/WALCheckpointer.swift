import GRDB
import GRDBSQLite
import Synchronization

/// Copies the write-ahead log back into the database file on a connection of its own, so the one
/// writer never stops to do it.
///
/// SQLite's automatic checkpoint runs on the committing connection, which then writes no event
/// while it copies pages and waits for two `fdatasync`s (BENCHMARKS.md section 1). Instead, a WAL
/// hook on the writer's connection asks this checkpointer, whose `PASSIVE` checkpoint runs beside
/// the writer's next commits, every 64 MB of WAL. Once the WAL reaches 256 MB (a long
/// flood), the writer checkpoints itself, as SQLite would have, so the WAL restarts and stays
/// bounded; a restarted WAL file is cut back to 64 MB (`journal_size_limit`).
final class WALCheckpointer: Sendable {
    /// A background checkpoint starts when the WAL holds this many pages (64 MB of 4 KiB pages):
    /// rarer checkpoints copy the pages many commits rewrite (index pages) fewer times.
    static let backgroundPages: Int32 = 16_000
    /// The writer checkpoints itself when the WAL holds this many pages (256 MB).
    ///
    /// The WAL restarts from its beginning when a transaction starts with every page copied back.
    /// While the writer commits back to back (a flood), the background checkpoint is always a
    /// commit behind, so the WAL keeps growing until the flood pauses; at this size the writer's
    /// own checkpoint lets the next transaction restart it; a lower bound stalls the writer more often.
    static let writerPages: Int32 = 64_000

    private let connection: DatabaseQueue
    private let running = Atomic<Bool>(false)
    private let completed = Atomic<Int>(0)

    /// Checkpoints that ran to the end on the checkpointer's connection.
    var completedCheckpoints: Int { completed.load(ordering: .acquiring) }

    /// Opens the checkpointer's own connection to the database file at `path`.
    init(path: String, configuration: Configuration) throws {
        connection = try DatabaseQueue(path: path, configuration: configuration)
    }

    /// Installs the WAL hook on the writer's connection (call on the writer's queue).
    ///
    /// The hook holds the checkpointer weakly: once the last ``EventDatabase`` holding it is gone,
    /// the writer checkpoints itself every ``backgroundPages``, as SQLite's own hook would.
    func install(on db: Database) {
        let context = Unmanaged.passRetained(WeakCheckpointer(self)).toOpaque()
        sqlite3_wal_hook(
            db.sqliteConnection,
            { context, connection, name, pages in
                guard let context else { return SQLITE_OK }
                let checkpointer = Unmanaged<WeakCheckpointer>.fromOpaque(context).takeUnretainedValue().checkpointer
                if pages >= WALCheckpointer.writerPages || checkpointer == nil {
                    if pages >= WALCheckpointer.backgroundPages {
                        sqlite3_wal_checkpoint_v2(connection, name, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
                    }
                } else if pages >= WALCheckpointer.backgroundPages {
                    checkpointer?.start()
                }
                return SQLITE_OK
            },
            context
        )
    }

    /// Starts a checkpoint on the checkpointer's connection unless one is running.
    private func start() {
        guard running.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { return }
        connection.asyncWriteWithoutTransaction { [self] db in
            // A failure (disk full, a reader's lock) leaves the pages safe in the WAL; the next
            // commit asks again, and at `writerPages` the writer checkpoints itself.
            if (try? db.checkpoint(.passive)) != nil {
                completed.add(1, ordering: .releasing)
            }
            running.store(false, ordering: .releasing)
        }
    }
}

/// The WAL hook's context: it may outlive the checkpointer (a test keeping only `writer`).
private final class WeakCheckpointer: Sendable {
    weak let checkpointer: WALCheckpointer?

    init(_ checkpointer: WALCheckpointer) {
        self.checkpointer = checkpointer
    }
}
