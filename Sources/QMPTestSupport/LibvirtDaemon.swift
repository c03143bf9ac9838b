import Foundation

/// The host's libvirt daemon for real-libvirt tests: started by the first test that needs it
/// (virtlogd, then libvirtd, without systemd) and stopped when the test process exits. A daemon
/// already running is used as it is and left running.
///
/// Guests run as `libvirt-qemu`; ``LibvirtTestDomain`` puts their files where that user can read them.
public final class LibvirtDaemon: Sendable {
    public static let uri = "qemu:///system"
    static let libvirtd = "/usr/sbin/libvirtd"
    static let virtlogd = "/usr/sbin/virtlogd"
    static let virsh = "/usr/bin/virsh"

    /// Real-libvirt tests run where libvirt is installed and we are root, or when real systems are
    /// required (`QMPLOG_REQUIRE_QEMU=1`, as in CI), and then fail loudly if it is not.
    public static var shouldRun: Bool {
        (FileManager.default.isExecutableFile(atPath: libvirtd) && geteuid() == 0) || QEMUProcess.isRequired
    }

    /// Whether a libvirtd not started by these tests runs on the host (asked before any test runs):
    /// a test that would restart it is skipped then, since that daemon may be managing real VMs.
    public static let hostHasItsOwnDaemon = isRunning(pidFile: "/run/libvirtd.pid")

    /// The one daemon of this test process (the first call starts it: about 10 s).
    public static func shared() async throws -> LibvirtDaemon {
        try await onOwnThread { try started.get() }
    }

    /// Runs `body`, which waits for daemons, on a thread of its own: on Swift's cooperative pool
    /// (one thread per core, two here) a blocked thread stalls every other test's tasks.
    private static func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    private static let started = Result { try LibvirtDaemon() }
    private static let ownsDaemons = ManagedFlag()

    private init() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.libvirtd) else {
            throw QEMUTestError(
                "libvirtd is not installed (apt-get install libvirt-daemon-system libvirt-clients)"
            )
        }
        guard geteuid() == 0 else {
            throw QEMUTestError("real-libvirt tests start the system libvirtd: run them as root")
        }
        if (try? Self.run(Self.virsh, ["-c", Self.uri, "version"])) != nil { return }
        try Self.start()
        Self.ownsDaemons.set()
        atexit {
            if LibvirtDaemon.ownsDaemons.isSet { LibvirtDaemon.stopDaemons() }
        }
    }

    /// Starts the daemons and waits until libvirtd answers (the first start probes QEMU's
    /// capabilities, about 10 s).
    private static func start() throws {
        if !isRunning(pidFile: "/run/virtlogd.pid") { _ = try run(virtlogd, ["-d"]) }
        try startUnderReaper(libvirtd, ["-d"])
        let deadline = Date().addingTimeInterval(60)
        while (try? run(virsh, ["-c", uri, "version"])) == nil {
            guard Date() < deadline else { throw QEMUTestError("libvirtd did not answer within 60 s") }
            usleep(200_000)
        }
    }

    /// Starts a daemon under a Python process that adopts and reaps its orphans (a child
    /// subreaper): libvirt's QEMUs are orphans, and where PID 1 reaps none (some sandboxes' init),
    /// each would stay a zombie that libvirt waits 15 s to see go, per domain stopped.
    private static func startUnderReaper(_ program: String, _ arguments: [String]) throws {
        let reaper = """
            import ctypes, os, sys
            ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
            if os.fork() == 0:
                os.execv(sys.argv[1], sys.argv[1:])
            try:
                while True:
                    os.wait()
            except ChildProcessError:
                pass
            """
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("qmplog-libvirtd-reaper.log")
        _ = try ChildProcess("/usr/bin/python3", arguments: ["-c", reaper, program] + arguments, outputPath: log.path)
    }

    /// Stops libvirtd and starts it again, waiting until it answers: its domains keep running.
    public func restart() async throws {
        try await Self.onOwnThread {
            Self.stop(pidFile: "/run/libvirtd.pid")
            try Self.start()
        }
    }

    /// Stops libvirtd only (its domains keep running); ``restart()`` brings it back.
    public func stop() {
        Self.stop(pidFile: "/run/libvirtd.pid")
    }

    private static func stopDaemons() {
        // Domains left by a failed test would keep running: destroy them first.
        if let list = try? run(virsh, ["-c", uri, "list", "--name"]) {
            for name in list.split(separator: "\n") where name.hasPrefix(LibvirtTestDomain.namePrefix) {
                _ = try? run(virsh, ["-c", uri, "destroy", String(name)])
            }
        }
        stop(pidFile: "/run/libvirtd.pid")
        stop(pidFile: "/run/virtlogd.pid")
    }

    private static func isRunning(pidFile: String) -> Bool {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else { return false }
        return kill(pid, 0) == 0
    }

    private static func stop(pidFile: String) {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(20)
        while kill(pid, 0) == 0, Date() < deadline { usleep(50_000) }
    }

    /// `virsh -c qemu:///system ARGUMENTS`.
    ///
    /// - Returns: what it printed.
    /// - Throws: when it exits with an error, with its output.
    @discardableResult
    public func virsh(_ arguments: String...) throws -> String {
        try virsh(arguments: arguments)
    }

    @discardableResult
    public func virsh(arguments: [String]) throws -> String {
        try Self.run(Self.virsh, ["-c", Self.uri] + arguments)
    }

    /// Runs a program to completion.
    ///
    /// - Returns: its output (stdout and stderr).
    /// - Throws: when it exits with an error, with its output.
    @discardableResult
    public static func run(_ program: String, _ arguments: [String]) throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("qmplog-run-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        let child = try ChildProcess(program, arguments: arguments, outputPath: output.path)
        var status: Int32 = 0
        while waitpid(child.processIdentifier, &status, 0) < 0, errno == EINTR {}
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw QEMUTestError("\(program) \(arguments.joined(separator: " ")) failed (\(status)): \(text)")
        }
        return text
    }
}

/// A flag readable from an `atexit` handler.
private final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
