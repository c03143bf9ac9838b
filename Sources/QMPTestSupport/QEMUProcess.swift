import Foundation

/// A real `qemu-system-x86_64` under TCG with two QMP monitors: one for the recorder under test,
/// one for the test to drive the VM (QEMU serves one client per monitor).
public final class QEMUProcess: @unchecked Sendable {
    /// The installed QEMU binary, or `nil` when QEMU is not installed.
    public static let binary: String? = {
        let candidates = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
            .split(separator: ":").map { "\($0)/qemu-system-x86_64" }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// Whether real-QEMU tests must run: `QMPLOG_REQUIRE_QEMU=1` turns a missing QEMU into a failure.
    public static var isRequired: Bool { ProcessInfo.processInfo.environment["QMPLOG_REQUIRE_QEMU"] == "1" }

    /// Real-QEMU tests run when QEMU is installed, or when required (and then fail loudly if it is not).
    public static var shouldRun: Bool { binary != nil || isRequired }

    public let directory: TemporaryDirectory
    /// The monitor the recorder attaches to.
    public let recorderSocket: String
    /// The monitor the test drives the VM through.
    public let controlSocket: String
    /// QEMU's process id.
    public let processIdentifier: Int32
    private var exited = false

    /// Starts QEMU paused (`-S`), so no event is lost before the recorder attaches.
    ///
    /// - Parameters:
    ///   - bootSector: a guest program to boot, or `nil` for no disk (the VM then idles in firmware).
    ///   - extraArguments: more QEMU arguments, such as `-no-reboot` or `-device pvpanic`.
    public init(bootSector: BootSector? = nil, extraArguments: [String] = []) throws {
        guard let binary = Self.binary else {
            throw QEMUTestError("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
        }
        directory = try TemporaryDirectory(prefix: "qemu")
        recorderSocket = directory.file("rec.qmp")
        controlSocket = directory.file("ctl.qmp")
        var arguments = [
            "-accel", "tcg", "-display", "none", "-nodefaults", "-m", "32", "-S",
            "-qmp", "unix:\(recorderSocket),server=on,wait=off",
            "-qmp", "unix:\(controlSocket),server=on,wait=off",
        ]
        if let bootSector {
            let image = directory.file("boot.img")
            try bootSector.diskImage.write(to: URL(fileURLWithPath: image))
            arguments += ["-drive", "file=\(image),format=raw,if=ide,index=0,media=disk"]
        }
        arguments += extraArguments
        processIdentifier = try Self.spawn(binary, arguments: arguments, log: directory.file("qemu.log"))
        try waitForSockets()
    }

    private func waitForSockets() throws {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: recorderSocket), FileManager.default.fileExists(atPath: controlSocket) {
                return
            }
            guard isRunning else { throw QEMUTestError("QEMU exited at start: \(log)") }
            usleep(20_000)
        }
        throw QEMUTestError("QEMU did not create its monitor sockets within 20 s: \(log)")
    }

    /// Whether QEMU is still running (reaps it once it has exited).
    public var isRunning: Bool {
        if exited { return false }
        var status: Int32 = 0
        if waitpid(processIdentifier, &status, WNOHANG) == processIdentifier { exited = true }
        return !exited
    }

    /// Starts QEMU with an empty signal mask and default handlers.
    ///
    /// Foundation's `Process` passes on the spawning thread's signal mask, and the threads of a
    /// test runner block SIGTERM: QEMU would then never see the SIGTERM a test sends it.
    private static func spawn(_ binary: String, arguments: [String], log: String) throws -> pid_t {
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
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([binary] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, binary, &actions, &attributes, argv, environ)
        guard result == 0 else { throw QEMUTestError("cannot start \(binary): \(String(cString: strerror(result)))") }
        return pid
    }

    /// Whatever QEMU printed.
    public var log: String { (try? String(contentsOfFile: directory.file("qemu.log"), encoding: .utf8)) ?? "" }

    /// Sends `signal` to QEMU.
    public func send(signal: Int32) {
        kill(processIdentifier, signal)
    }

    /// Waits for QEMU to exit, without blocking a thread.
    public func waitForExit(timeout: Duration = .seconds(30)) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while isRunning {
            guard clock.now < deadline else { throw QEMUTestError("QEMU still running after \(timeout)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Kills QEMU if it is still running and removes its directory.
    public func terminate() {
        if isRunning {
            kill(processIdentifier, SIGKILL)
            var status: Int32 = 0
            waitpid(processIdentifier, &status, 0)
            exited = true
        }
        directory.remove()
    }

    deinit {
        terminate()
    }
}

public struct QEMUTestError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
