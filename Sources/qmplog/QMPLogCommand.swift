import ArgumentParser

@main
struct QMPLogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qmplog",
        abstract: "Record what happens to QEMU VMs, and answer what happened.",
        discussion: """
            QEMU reports every change of a VM's life (SHUTDOWN, RESET, STOP, RESUME, WATCHDOG, \
            GUEST_PANICKED, …) as an event on its QMP monitor, and keeps none of them. `qmplog record` \
            attaches to monitors and stores every event in SQLite; the other commands read that database.

            Every command finds the database the same way: --db, else $QMPLOG_DB, else \
            $XDG_STATE_HOME/qmplog/events.sqlite (~/.local/state/qmplog/events.sqlite).
            """,
        version: "0.1.0",
        subcommands: [Record.self, Report.self, Export.self, Vms.self, Rollup.self, Demo.self]
    )
}
