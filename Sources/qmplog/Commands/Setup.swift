import ArgumentParser
import Foundation

extension QMPLogCommand {
    struct Setup: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print how to give a managed VM a second QMP monitor that connects to qmplog.",
            discussion: """
                libvirt and Proxmox own a VM's main QMP monitor. Instead of `record --libvirt`, a VM \
                can get a second monitor of its own that connects out to `qmplog record --listen`: \
                QEMU sends every event to every monitor. It changes the VM's QEMU command line, so \
                it takes effect when the VM is next started (not rebooted).
                """,
            subcommands: [Libvirt.self, Proxmox.self]
        )
    }
}

/// What both `setup` subcommands take.
struct SecondMonitorOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The socket `qmplog record --listen` listens on.", valueName: "path"))
    var socket = "/run/qmplog/qmp.sock"

    @Option(
        help: ArgumentHelp(
            "The QEMU version that will run the VM (default: the installed qemu-system-x86_64's): it decides between reconnect= and reconnect-ms=.",
            valueName: "major.minor"
        )
    )
    var qemuVersion: String?

    func validate() throws {
        do {
            try SecondMonitor.validate(socket: socket)
        } catch {
            throw ValidationError(error.description)
        }
        if let qemuVersion, SecondMonitor.parseVersion(qemuVersion) == nil {
            throw ValidationError("--qemu-version \(qemuVersion): give MAJOR.MINOR, such as 9.2.")
        }
    }

    func monitor() throws -> SecondMonitor {
        guard let version = qemuVersion.flatMap(SecondMonitor.parseVersion) ?? SecondMonitor.installedQEMUVersion()
        else {
            throw ValidationError(
                "qemu-system-x86_64 is not installed here: say which QEMU will run the VM with --qemu-version MAJOR.MINOR."
            )
        }
        return SecondMonitor(socket: socket, qemuVersion: version)
    }
}

/// `name` as one shell word.
private func shellWord(_ name: String) -> String {
    let plain = name.allSatisfy { $0.isLetter || $0.isNumber || "-_.:@+".contains($0) }
    return plain && !name.isEmpty ? name : "'" + name.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

extension QMPLogCommand.Setup {
    struct Libvirt: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the <qemu:commandline> to add to a libvirt domain's XML.",
            discussion: """
                The domain's QEMU runs as libvirt's QEMU user (Debian: libvirt-qemu, group kvm): \
                the recorder gives its socket that group and admits that user. libvirt marks a domain \
                with a custom QEMU command line as tainted (custom-argv) in its log; nothing else changes.

                Without changing any domain, `qmplog record --libvirt` records them all through \
                libvirt itself.
                """
        )

        @OptionGroup var options: SecondMonitorOptions

        @Option(help: ArgumentHelp("The user libvirt runs QEMU as.", valueName: "user"))
        var qemuUser = "libvirt-qemu"

        @Argument(help: ArgumentHelp("The libvirt domain.", valueName: "domain"))
        var domain: String

        func validate() throws {
            // Printed in `#` comments and shell lines: a line break would end the comment.
            for (label, value) in [("DOMAIN", domain), ("--qemu-user", qemuUser)] {
                guard !value.isEmpty else { throw ValidationError("\(label): give a name.") }
                if let control = value.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) {
                    throw ValidationError(
                        "\(label): a name with a control character (\(control.escaped(asASCII: true))) cannot be printed safely."
                    )
                }
            }
        }

        func run() throws {
            let monitor = try options.monitor()
            let group =
                getpwnam(qemuUser).flatMap { getgrgid($0.pointee.pw_gid) }.map { String(cString: $0.pointee.gr_name) }
                ?? "kvm"
            let directory = shellWord((options.socket as NSString).deletingLastPathComponent)
            let socket = shellWord(options.socket)
            let domain = shellWord(domain)
            try StandardOutput.write(
                """
                # A second QMP monitor for libvirt domain \(domain), connecting to qmplog.
                #
                # 1. Run the recorder (as root), listening where QEMU (user \(qemuUser)) can connect:
                #      install -d -m 0755 \(directory)
                #      qmplog record --listen \(socket) --listen-group \(shellWord(group)) --listen-allow-uid \(shellWord(qemuUser))
                #    With AppArmor (Debian, Ubuntu), also let QEMU use the socket:
                #      echo '\(options.socket) rw,' >> /etc/apparmor.d/local/abstractions/libvirt-qemu
                #
                # 2. virsh edit \(domain): give the root element the QEMU namespace,
                #      <domain type='…' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
                #    and add inside <domain>, after <devices>:

                \(monitor.libvirtXML)

                # 3. Restart the domain (virsh shutdown \(domain), then virsh start \(domain)): the monitor
                #    exists from the next start. libvirt then marks the domain tainted (custom-argv).
                #    QEMU reconnects to qmplog by itself whenever the recorder restarts.

                """
            )
        }
    }

    struct Proxmox: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the args: line to add to a Proxmox VM's configuration.",
            discussion: """
                Proxmox connects to its own monitor (/var/run/qemu-server/VMID.qmp) for each command: \
                never record that socket, or Proxmox fails while qmplog holds it. The second monitor \
                leaves it alone. Proxmox runs QEMU as root.
                """
        )

        @OptionGroup var options: SecondMonitorOptions

        @Argument(help: ArgumentHelp("The Proxmox VM id.", valueName: "vmid"))
        var vmid: Int

        func validate() throws {
            guard vmid >= 100, vmid <= 999_999_999 else {
                throw ValidationError("VMID \(vmid): Proxmox VM ids are 100 to 999999999.")
            }
        }

        func run() throws {
            let monitor = try options.monitor()
            let directory = shellWord((options.socket as NSString).deletingLastPathComponent)
            try StandardOutput.write(
                """
                # A second QMP monitor for Proxmox VM \(vmid), connecting to qmplog.
                #
                # 1. Run the recorder:
                #      install -d -m 0700 \(directory)
                #      qmplog record --listen \(shellWord(options.socket))
                #
                # 2. Add this line to /etc/pve/qemu-server/\(vmid).conf (if the VM already has an
                #    args: line, append the arguments to it instead):

                \(monitor.proxmoxArgs)

                # 3. Restart the VM (qm shutdown \(vmid) && qm start \(vmid)): the monitor exists from the
                #    next start. QEMU reconnects to qmplog by itself whenever the recorder restarts.

                """
            )
        }
    }
}
