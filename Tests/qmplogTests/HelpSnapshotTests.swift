import ArgumentParser
import QMPTestSupport
import Testing

@testable import qmplog

/// `--help` teaches: its text is reviewed like code, as golden files (`RECORD_SNAPSHOTS=1` re-records).
struct HelpSnapshotTests {
    @Test(arguments: [
        ("qmplog", QMPLogCommand.self as any ParsableCommand.Type),
        ("record", QMPLogCommand.Record.self), ("report", QMPLogCommand.Report.self),
        ("export", QMPLogCommand.Export.self), ("vms", QMPLogCommand.Vms.self), ("rollup", QMPLogCommand.Rollup.self),
        ("demo", QMPLogCommand.Demo.self), ("setup-libvirt", QMPLogCommand.Setup.Libvirt.self),
        ("setup-proxmox", QMPLogCommand.Setup.Proxmox.self), ("import", QMPLogCommand.Import.self),
        ("timeline", QMPLogCommand.Timeline.self), ("serve", QMPLogCommand.Serve.self),
        ("ship", QMPLogCommand.Ship.self), ("prune", QMPLogCommand.Prune.self),
    ])
    func helpMatchesItsGoldenFile(_ name: String, command: any ParsableCommand.Type) throws {
        let help = QMPLogCommand.helpMessage(for: command, columns: 80)
        try assertSnapshot(help + "\n", named: "help-\(name).txt")
    }
}
