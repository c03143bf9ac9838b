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
    private let ownsDirectory: Bool
    /// The monitor the recorder attaches to.
    public let recorderSocket: String
    /// The monitor the test drives the VM through.
    public let controlSocket: String
    private let process: ChildProcess

    /// Starts QEMU paused (`-S`), so no event is lost before the recorder attaches.
    ///
    /// - Parameters:
    ///   - bootSector: a guest program to boot, or `nil` for no disk (the VM then idles in firmware).
    ///   - extraArguments: more QEMU arguments, such as `-no-reboot` or `-device pvpanic`.
    ///   - directory: where the sockets go; pass the same one to restart a VM on the same paths
    ///     (the caller then owns and removes it).
    public init(bootSector: BootSector? = nil, extraArguments: [String] = [], directory: TemporaryDirectory? = nil)
        throws
    {
        guard let binary = Self.binary else {
            throw QEMUTestError("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
        }
        ownsDirectory = directory == nil
        self.directory = try directory ?? TemporaryDirectory(prefix: "qemu")
        let directory = self.directory
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
        process = try ChildProcess(binary, arguments: arguments, outputPath: directory.file("qemu.log"))
        try waitForSockets()
    }

    private func waitForSockets() throws {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: recorderSocket),
                FileManager.default.fileExists(atPath: controlSocket)
            {
                return
            }
            guard isRunning else { throw QEMUTestError("QEMU exited at start: \(log)") }
            usleep(20_000)
        }
        throw QEMUTestError("QEMU did not create its monitor sockets within 20 s: \(log)")
    }

    /// Whether QEMU is still running.
    public var isRunning: Bool { process.isRunning }
    public var processIdentifier: Int32 { process.processIdentifier }

    /// Whatever QEMU printed.
    public var log: String { (try? String(contentsOfFile: directory.file("qemu.log"), encoding: .utf8)) ?? "" }

    /// Sends `signal` to QEMU.
    public func send(signal: Int32) {
        process.send(signal: signal)
    }

    /// Waits for QEMU to exit, without blocking a thread.
    public func waitForExit(timeout: Duration = .seconds(30)) async throws {
        try await process.waitForExit(timeout: timeout)
    }

    /// Kills QEMU if it is still running and removes its directory.
    public func terminate() {
        process.kill9()
        if ownsDirectory { directory.remove() }
    }

    deinit {
        terminate()
    }
}

public struct QEMUTestError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
