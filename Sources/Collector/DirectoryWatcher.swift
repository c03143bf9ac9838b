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

/// Watches a directory and runs a ``MachineRecorder`` for each matching socket that appears.
///
/// With inotify, a new socket is picked up as soon as QEMU creates it; the directory is also
/// rescanned every ``rescanInterval`` in case a notification was missed (or the directory was
/// recreated). Without inotify it is scanned every ``interval``. A recorder started here stops
/// retrying once its socket file is deleted; if the socket comes back, a new one starts.
struct DirectoryWatcher: Sendable {
    let directory: WatchedDirectory
    let sessions: SessionRecorder
    let interval: Duration
    var rescanInterval: Duration = .seconds(30)

    func run() async {
        let active = ActivePaths()
        let monitor = DirectoryChangeMonitor(path: directory.path)
        sessions.logger.info(
            "Watching directory",
            metadata: [
                "watch.path": "\(directory.path)", "watch.pattern": "\(directory.pattern)",
                "watch.mode": "\(monitor == nil ? "polling" : "inotify")",
            ]
        )
        let clock = ContinuousClock()
        await withDiscardingTaskGroup { group in
            var lastScan = clock.now
            var mustScan = true
            while !Task.isCancelled {
                if mustScan || clock.now - lastScan >= rescanInterval {
                    lastScan = clock.now
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
                }
                if let monitor {
                    // Wakes at once on a change; the timeout only bounds how late cancellation is seen.
                    mustScan = await monitor.waitForChange(upTo: .seconds(1))
                } else {
                    mustScan = true
                    do {
                        try await Task.sleep(for: interval)
                    } catch {
                        break
                    }
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
