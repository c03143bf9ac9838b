import Logging
import QMP
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A directory of QMP sockets to record: every entry matching ``pattern`` that is a socket, now or later.
public struct WatchedDirectory: Sendable, Hashable {
    public var path: String
    /// A shell glob matched against entry names (`fnmatch`), such as `*.qmp`.
    public var pattern: String

    public init(path: String, pattern: String = "*.qmp") {
        self.path = path
        self.pattern = pattern
    }

    /// The sockets in the directory whose names match, sorted.
    func matchingSockets() -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var sockets: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name != ".", name != "..", fnmatch(pattern, name, 0) == 0 else { continue }
            let full = path.hasSuffix("/") ? path + name : path + "/" + name
            var info = stat()
            if stat(full, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK { sockets.append(full) }
        }
        return sockets.sorted()
    }
}

/// Polls watched directories and runs a ``MachineRecorder`` for each socket that appears.
///
/// A recorder started here stops retrying once its socket file is deleted; if the socket comes
/// back, the next scan starts a new one. Scans are cheap (one `readdir` and a `stat` per entry).
struct DirectoryWatcher: Sendable {
    let directory: WatchedDirectory
    let sessions: SessionRecorder
    let interval: Duration

    func run() async {
        let active = ActivePaths()
        sessions.logger.info(
            "Watching directory",
            metadata: ["watch.path": "\(directory.path)", "watch.pattern": "\(directory.pattern)"]
        )
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                for path in directory.matchingSockets() where active.insert(path) {
                    let recorder = MachineRecorder(
                        endpoint: .unixSocket(path: path),
                        sessions: sessions,
                        stopWhenSocketRemoved: true
                    )
                    group.addTask {
                        _ = await recorder.run()
                        active.remove(path)
                    }
                }
                do {
                    try await Task.sleep(for: interval)
                } catch {
                    break
                }
            }
        }
    }
}

/// The socket paths that have a recorder running.
final class ActivePaths: Sendable {
    private let paths = Mutex<Set<String>>([])

    /// Adds `path`; `false` if it was already there.
    func insert(_ path: String) -> Bool { paths.withLock { $0.insert(path).inserted } }

    func remove(_ path: String) { _ = paths.withLock { $0.remove(path) } }
}
