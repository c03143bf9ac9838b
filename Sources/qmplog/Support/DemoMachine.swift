import Foundation

/// A throwaway QEMU for `qmplog demo`: TCG, no display, no network, a QMP socket in `directory`.
///
/// `@unchecked Sendable`: after `init`, only `Process.isRunning` and `processIdentifier` are read
/// (both safe from any thread) and signals are sent with `kill`.
final class DemoMachine: @unchecked Sendable {
    let name: String
    let socket: String
    private let process: Process

    /// The installed `qemu-system-x86_64`, or `nil`.
    static func findQEMU() -> String? {
        (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            .map { "\($0)/qemu-system-x86_64" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    init(qemu: String, name: String, directory: String, bootImage: String?) throws {
        self.name = name
        socket = directory + "/\(name).qmp"
        var arguments = [
            "-accel", "tcg", "-display", "none", "-nodefaults", "-m", "32", "-name", name,
            "-qmp", "unix:\(socket),server=on,wait=off",
        ]
        if let bootImage { arguments += ["-drive", "file=\(bootImage),format=raw,if=ide"] }
        process = Process()
        process.executableURL = URL(fileURLWithPath: qemu)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        // The child inherits this thread's signal mask; QEMU must see the SIGTERM the demo sends it.
        var empty = sigset_t()
        var previous = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try process.run()
    }

    var isRunning: Bool { process.isRunning }

    func waitForSocket() async throws {
        for _ in 0..<500 where !FileManager.default.fileExists(atPath: socket) {
            guard process.isRunning else { throw DemoError("QEMU (\(name)) exited at start") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func terminate() {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
    }

    func kill9() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// A guest that reboots itself once through the keyboard controller, then powers off through ACPI.
    ///
    /// It waits on the RTC's seconds register (2–3 s, then 0–1 s) so the recorder is attached first,
    /// and remembers across the reset which step it is at in CMOS byte 0x4F.
    static let selfRebootingGuest: [UInt8] = [
        0xB0, 0x4F, 0xE6, 0x70, 0xE4, 0x71,  // al = CMOS[0x4F]
        0x3C, 0x01, 0x74, 0x14,  // if al == 1: goto power_off
        0xB0, 0x4F, 0xE6, 0x70, 0xB0, 0x01, 0xE6, 0x71,  // CMOS[0x4F] = 1
        0xB1, 0x03, 0xE8, 0x1E, 0x00,  // wait 3 RTC ticks
        0xB0, 0xFE, 0xE6, 0x64,  // pulse reset through the keyboard controller
        0xF4, 0xEB, 0xFD,  // hlt forever
        0xB0, 0x4F, 0xE6, 0x70, 0x30, 0xC0, 0xE6, 0x71,  // power_off: CMOS[0x4F] = 0
        0xB1, 0x01, 0xE8, 0x0A, 0x00,  // wait 1 RTC tick
        0xBA, 0x04, 0x06, 0xB8, 0x00, 0x20, 0xEF,  // PM1a_CNT (0x604) = SLP_EN | S5
        0xF4, 0xEB, 0xFD,  // hlt forever
        0x30, 0xC0, 0xE6, 0x70, 0xE4, 0x71, 0x88, 0xC3,  // wait: bl = RTC seconds
        0x30, 0xC0, 0xE6, 0x70, 0xE4, 0x71, 0x38, 0xD8, 0x74, 0xF6,  // until it changes
        0xFE, 0xC9, 0x75, 0xEA, 0xC3,  // cl times; ret
    ]

    /// A 64 KiB raw disk whose boot sector is `code`.
    static func diskImage(_ code: [UInt8]) -> Data {
        Data(
            code + [UInt8](repeating: 0, count: 510 - code.count) + [0x55, 0xAA]
                + [UInt8](repeating: 0, count: 65536 - 512)
        )
    }
}

struct DemoError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
