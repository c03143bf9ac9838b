import Foundation

/// The QEMU arguments that give a VM a second QMP monitor connecting out to `qmplog record --listen`:
/// `-chardev socket,id=qmplog,path=SOCKET,reconnect… -mon chardev=qmplog,mode=control`.
struct SecondMonitor: Equatable {
    var socket: String
    /// `(major, minor)` of the QEMU that will run the VM: `reconnect=` (seconds) until 9.1,
    /// `reconnect-ms=` from 9.2 (the old name was removed in 10.2).
    var qemuVersion: (major: Int, minor: Int)

    static func == (lhs: SecondMonitor, rhs: SecondMonitor) -> Bool {
        lhs.socket == rhs.socket && lhs.qemuVersion == rhs.qemuVersion
    }

    /// Checks that `socket` can be written as it is into a QEMU option, the domain XML, an AppArmor
    /// rule (where a comma ends the rule), a Proxmox `args:` line and the shell lines printed beside
    /// them: an absolute path of letters, digits and `/ . _ - + @ :`, no `.` or `..` component, not
    /// a directory.
    ///
    /// - Throws: a message naming what is wrong with it.
    static func validate(socket: String) throws(SetupError) {
        let shown = socket.unicodeScalars.map { $0.escaped(asASCII: true) }.joined()
        guard socket.hasPrefix("/") else { throw SetupError("--socket \(shown): give an absolute path") }
        guard socket.utf8.count < 108 else {
            throw SetupError("--socket \(shown): a Unix socket path must be shorter than 108 bytes")
        }
        let unsafe = socket.unicodeScalars.first {
            !(("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                || "/._-+@:".unicodeScalars.contains($0))
        }
        if let unsafe {
            throw SetupError(
                "--socket \(shown): the path may not contain '\(unsafe.escaped(asASCII: true))' "
                    + "(letters, digits and / . _ - + @ : only)"
            )
        }
        let components = socket.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard !components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw SetupError("--socket \(shown): give a plain path, without //, /./, /../ or a trailing /")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: socket, isDirectory: &isDirectory), isDirectory.boolValue {
            throw SetupError("--socket \(shown): that is a directory; name the socket inside it")
        }
    }

    /// The `-chardev` value (a comma in the path doubled, as QEMU's option syntax wants).
    var chardev: String {
        let path = socket.replacingOccurrences(of: ",", with: ",,")
        let reconnect = qemuVersion >= (9, 2) ? "reconnect-ms=5000" : "reconnect=5"
        return "socket,id=qmplog,path=\(path),\(reconnect)"
    }

    var monitor: String { "chardev=qmplog,mode=control" }

    var arguments: [String] { ["-chardev", chardev, "-mon", monitor] }

    /// The `<qemu:commandline>` element for a libvirt domain.
    var libvirtXML: String {
        """
        <qemu:commandline>
          <qemu:arg value='-chardev'/>
          <qemu:arg value='\(chardev)'/>
          <qemu:arg value='-mon'/>
          <qemu:arg value='\(monitor)'/>
        </qemu:commandline>
        """
    }

    /// The `args:` line of a Proxmox VM's configuration.
    var proxmoxArgs: String { "args: " + arguments.joined(separator: " ") }

    /// `major.minor` from `qemu-system-x86_64 --version` output or a version typed by the user.
    static func parseVersion(_ text: String) -> (major: Int, minor: Int)? {
        let versionText = text.range(of: "version ").map { String(text[$0.upperBound...]) } ?? text
        let parts = versionText.prefix { $0.isNumber || $0 == "." }.split(separator: ".")
        guard parts.count >= 2, let major = Int(parts[0]), let minor = Int(parts[1]) else { return nil }
        return (major, minor)
    }

    /// The version of the QEMU installed here, or `nil` when there is none.
    static func installedQEMUVersion() -> (major: Int, minor: Int)? {
        for directory in ["/usr/bin", "/usr/local/bin"] {
            let binary = directory + "/qemu-system-x86_64"
            guard FileManager.default.isExecutableFile(atPath: binary) else { continue }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["--version"]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { continue }
            let output = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return parseVersion(String(decoding: output, as: UTF8.self))
        }
        return nil
    }
}

struct SetupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
