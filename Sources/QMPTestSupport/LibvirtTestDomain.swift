import Foundation

/// A transient libvirt domain running a ``BootSector`` under TCG: 64 MiB, an IDE disk, no network,
/// an ISA pvpanic device. Destroyed (if still running) and its files removed by ``remove()``.
public final class LibvirtTestDomain: Sendable {
    /// Every test domain's name starts with this, so that leftovers can be found.
    public static let namePrefix = "qmplog-test-"

    public let daemon: LibvirtDaemon
    public let name: String
    public let uuid: String
    public let directory: TemporaryDirectory

    /// The domain's XML file.
    public var xmlPath: String { directory.file("domain.xml") }

    /// Writes the domain's XML and, unless `start` is false, starts it (`virsh create`).
    ///
    /// - Parameter extraXML: elements to add at the end of `<domain>` (a `<qemu:commandline>`).
    public init(daemon: LibvirtDaemon, bootSector: BootSector, extraXML: String = "", start: Bool = true) throws {
        self.daemon = daemon
        uuid = UUID().uuidString.lowercased()
        name = Self.namePrefix + uuid.prefix(8)
        directory = try TemporaryDirectory(prefix: "lvdom")
        // QEMU runs as libvirt-qemu: it must reach the directory and read the image.
        chmod(directory.path, 0o755)
        let image = directory.file("boot.img")
        try bootSector.diskImage.write(to: URL(fileURLWithPath: image))
        chmod(image, 0o644)
        try Self.xml(name: name, uuid: uuid, image: image, extraXML: extraXML)
            .write(toFile: xmlPath, atomically: true, encoding: .utf8)
        if start { try self.start() }
    }

    /// `virsh create` the domain from ``xmlPath``.
    public func start() throws {
        try daemon.virsh("create", xmlPath)
    }

    static func xml(name: String, uuid: String, image: String, extraXML: String) -> String {
        """
        <domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
          <name>\(name)</name>
          <uuid>\(uuid)</uuid>
          <memory unit='MiB'>64</memory>
          <vcpu>1</vcpu>
          <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
          <features><acpi/></features>
          <devices>
            <emulator>/usr/bin/qemu-system-x86_64</emulator>
            <disk type='file' device='disk'>
              <driver name='qemu' type='raw'/>
              <source file='\(image)'/>
              <target dev='hda' bus='ide'/>
            </disk>
            <panic model='isa'/>
          </devices>
        \(extraXML)
        </domain>
        """
    }

    /// `virsh COMMAND DOMAIN ARGUMENTS`.
    @discardableResult
    public func virsh(_ command: String, _ arguments: String...) throws -> String {
        try daemon.virsh(arguments: [command, name] + arguments)
    }

    /// The pid of the domain's QEMU, from libvirt's pid file.
    public var qemuProcessIdentifier: Int32? {
        (try? String(contentsOfFile: "/run/libvirt/qemu/\(name).pid", encoding: .utf8))
            .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Whether libvirt lists the domain as running.
    public var isActive: Bool {
        ((try? daemon.virsh("list", "--name")) ?? "").split(separator: "\n").contains { $0 == name }
    }

    public func remove() {
        if isActive { _ = try? daemon.virsh("destroy", name) }
        directory.remove()
    }
}
