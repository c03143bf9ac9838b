import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Tells when entries are created, deleted or renamed in a directory, through Linux inotify.
///
/// ``waitForChange(upTo:)`` blocks a thread of NIO's thread pool in `poll(2)` (never a Swift
/// concurrency thread) and returns as soon as the kernel reports a change, or after the timeout so
/// the caller can notice cancellation.
final class DirectoryChangeMonitor: Sendable {
    private let descriptor: Int32

    /// `nil` where inotify is unavailable (not Linux, or the per-user watch limit is reached).
    init?(path: String) {
        #if os(Linux)
            let descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
            guard descriptor >= 0 else { return nil }
            let mask = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_ATTRIB | IN_DELETE_SELF)
            guard inotify_add_watch(descriptor, path, mask) >= 0 else {
                close(descriptor)
                return nil
            }
            self.descriptor = descriptor
        #else
            return nil
        #endif
    }

    deinit {
        close(descriptor)
    }

    /// Waits until something changed in the directory, or `timeout` passed.
    ///
    /// - Returns: whether a change was reported (all pending notifications are consumed).
    func waitForChange(upTo timeout: Duration) async -> Bool {
        let descriptor = self.descriptor
        let milliseconds = Int32(
            timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
        )
        let changed = try? await NIOThreadPool.singleton.runIfActive {
            var request = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&request, 1, milliseconds) > 0 else { return false }
            var buffer = [UInt8](repeating: 0, count: 4096)
            while read(descriptor, &buffer, buffer.count) > 0 {}
            return true
        }
        return changed ?? false
    }
}
