import Foundation

/// A child process started with an empty signal mask and default signal handlers.
///
/// Foundation's `Process` passes on the spawning thread's signal mask, and the threads of a test
/// runner block SIGTERM: a child started that way would never see the SIGTERM a test sends it.
public final class ChildProcess: @unchecked Sendable {
    public let processIdentifier: Int32
    private var status: Int32?
    private var sampledPeak = 0

    /// Starts `executable` with its output (stdout and stderr) appended to `outputPath`.
    public init(
        _ executable: String,
        arguments: [String],
        environment: [String: String]? = nil,
        outputPath: String
    ) throws {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of ours: SwiftNIO's sockets are not close-on-exec, and a child holding a
        // copy of a test's listening socket keeps it accepting after the test closed it.
        _ = Self.closeFrom?(&actions, 3)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw QEMUTestError("cannot start \(executable): \(String(cString: strerror(result)))")
        }
        processIdentifier = pid
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), which Swift's Glibc module
    /// does not export.
    private static let closeFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? =
        dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map {
            unsafeBitCast(
                $0,
                to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self
            )
        }

    /// Whether the process is still running (reaps it once it has exited).
    public var isRunning: Bool {
        if status != nil { return false }
        sampledPeak = max(sampledPeak, highWaterMark() ?? 0)
        var raw: Int32 = 0
        if waitpid(processIdentifier, &raw, WNOHANG) == processIdentifier { status = raw }
        return status == nil
    }

    /// The exit code once exited normally, `128 + signal` if killed by a signal, `nil` while running.
    public var exitCode: Int32? {
        guard !isRunning, let status else { return nil }
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }

    /// The peak resident set size in bytes seen while the process ran, sampled from
    /// `/proc/PID/status` (`VmHWM`) each time ``isRunning`` is asked (every 20 ms in ``waitForExit``).
    ///
    /// Not `wait4`'s `ru_maxrss`: `posix_spawn` starts the child sharing our memory (vfork), and
    /// Linux then counts this test process's own peak into the child's `ru_maxrss`.
    public var peakMemoryBytes: Int { sampledPeak }

    private func highWaterMark() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return nil }
        let kilobytes = line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
        return kilobytes.map { $0 * 1024 }
    }

    public func send(signal: Int32) {
        if isRunning { kill(processIdentifier, signal) }
    }

    /// Waits for the process to exit without blocking a thread, and returns its exit code.
    @discardableResult
    public func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while isRunning {
            guard clock.now < deadline else {
                throw QEMUTestError("process \(processIdentifier) still running after \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return exitCode ?? -1
    }

    /// Kills the process if it is still running and reaps it.
    public func kill9() {
        guard isRunning else { return }
        kill(processIdentifier, SIGKILL)
        var raw: Int32 = 0
        waitpid(processIdentifier, &raw, 0)
        status = raw
    }
}
