#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Tells a recorder whether it is the only one recording into a database, and keeps telling later
/// recorders that it is alive.
///
/// A POSIX record lock on `DATABASE-recorder.lock` (created 0600 beside the database's real file,
/// symbolic links resolved): a recorder that finds no other holding it takes it exclusively — it is
/// alone, so every session still open was left by a recorder that is gone
/// (``EventDatabase/endAbandonedSessions()``) — and then ``share()``s it; the others take it shared.
/// The kernel drops it when the process ends, however it ends. (POSIX locks turn exclusive into
/// shared atomically, so no recorder starting in between can take itself for alone. They belong to
/// the process: one lock per process and database.)
public final class RecorderLock: Sendable {
    /// The lock file's path.
    public let path: String
    /// `true` when no other recorder held the lock: hold it exclusively until ``share()``.
    public let isOnlyRecorder: Bool
    private let descriptor: Int32

    /// How long a recorder waits for another one's start (its exclusive moment) before giving up.
    static let startTimeout = 30.0

    /// Takes the lock for the database at `databasePath`: exclusively when no other recorder
    /// holds it, else shared (waiting while another recorder is starting).
    ///
    /// - Throws: ``EventStoreError`` naming the lock file when it cannot be created or locked.
    public init(databasePath: String) throws {
        // Beside the database's real file, so that recorders reaching one database by different
        // paths (a symlinked file or directory) share one lock.
        let realPath = realpath(databasePath, nil).map { resolved in
            defer { free(resolved) }
            return String(cString: resolved)
        }
        path = (realPath ?? databasePath) + "-recorder.lock"
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw EventStoreError.fromErrno("cannot create the recorder lock \(path)") }
        if Self.lock(descriptor, F_WRLCK) {
            isOnlyRecorder = true
            return
        }
        isOnlyRecorder = false
        var waited = 0.0
        while !Self.lock(descriptor, F_RDLCK) {
            let busy = errno == EAGAIN || errno == EACCES || errno == EINTR
            guard busy, waited < Self.startTimeout else {
                let error =
                    busy
                    ? EventStoreError(
                        code: .cannotOpen,
                        message: "another recorder has held \(path) exclusively for \(Int(Self.startTimeout)) s"
                    ) : EventStoreError.fromErrno("cannot lock the recorder lock \(path)")
                close(descriptor)
                throw error
            }
            usleep(50_000)
            waited += 0.05
        }
    }

    /// Turns an exclusive lock shared, once the sessions a lost recorder left open are ended.
    public func share() throws {
        guard isOnlyRecorder else { return }
        guard Self.lock(descriptor, F_RDLCK) else {
            throw EventStoreError.fromErrno("cannot share the recorder lock \(path)")
        }
    }

    deinit {
        close(descriptor)
    }

    /// `fcntl(F_SETLK)` on the file's first byte; `false` with `errno` set when it is not granted.
    private static func lock(_ descriptor: Int32, _ type: Int32) -> Bool {
        var request = flock()
        request.l_type = Int16(type)
        request.l_whence = Int16(SEEK_SET)
        request.l_start = 0
        request.l_len = 1
        return fcntl(descriptor, F_SETLK, &request) == 0
    }
}
