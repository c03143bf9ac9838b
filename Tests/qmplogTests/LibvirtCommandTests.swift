import ArgumentParser
import Foundation
import QMPTestSupport
import Testing

@testable import qmplog

/// `record --libvirt` from the command line.
struct LibvirtCommandTests {
    @Test(arguments: [
        (["record", "--libvirt"], ["qemu:///system"], [String]()),
        (["record", "--libvirt", "qemu+ssh://root@host2/system"], ["qemu+ssh://root@host2/system"], []),
        (["record", "--libvirt", "/run/qemu/vm1.qmp"], ["qemu:///system"], ["/run/qemu/vm1.qmp"]),
        (["record", "--libvirt", "--once"], ["qemu:///system"], []),
        (["record", "--libvirt", "--libvirt", "test:///default"], ["qemu:///system", "test:///default"], []),
    ])
    func libvirtTakesAnOptionalURI(arguments: [String], uris: [String], targets: [String]) throws {
        let parsed = try QMPLogCommand.parseAsRoot(QMPLogCommand.Record.insertingDefaultLibvirtURI(arguments))
        let record = try #require(parsed as? QMPLogCommand.Record)
        #expect(record.sources.libvirtURIs == uris)
        #expect(record.targets == targets)
    }

    @Test(.enabled(if: LibvirtDaemon.shouldRun, "libvirt is not installed, or not root"))
    func aUserWithoutReadWriteAccessIsToldWhatIsNeeded() async throws {
        _ = try await LibvirtDaemon.shared()
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        chmod(directory.path, 0o777)
        // Given a recorder running as nobody, whom libvirt grants no read-write connection
        let log = directory.file("record.log")
        let recorder = try ChildProcess(
            "/usr/bin/setpriv",
            arguments: [
                "--reuid=65534", "--regid=65534", "--clear-groups", QmplogBinaryTests.binary, "record",
                "--db", directory.file("events.sqlite"), "--libvirt", "--once",
            ],
            outputPath: log
        )
        defer { recorder.kill9() }
        // Then it fails, saying what access libvirt needs
        #expect(try await recorder.waitForExit() != 0)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.contains("could not open a read-write libvirt connection to qemu:///system"), "\(text)")
        #expect(text.contains("needs read-write access"), "\(text)")
        #expect(!text.contains("libvirt: "), "libvirt's own stderr printing is silenced: \(text)")
        // and the final error lists the failure on a line of its own
        #expect(text.contains("could not be recorded:\n  libvirt qemu:///system: "), "\(text)")
    }
}
