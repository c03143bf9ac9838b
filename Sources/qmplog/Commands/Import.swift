import ArgumentParser
import Collector
import EventStore
import Foundation
import Reports

extension QMPLogCommand {
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import VM history written before qmplog recorded: libvirt's logs, virsh transcripts.",
            discussion: """
                libvirt-log FILE…: libvirt's per-domain logs (/var/log/libvirt/qemu/NAME.log, rotated \
                ones too, .gz included): each run's start and stop with libvirt's reason, who sent QEMU \
                a signal, and guest panics with their crash information. A signal's sender is attached \
                to the SHUTDOWN it caused (same VM, within 2 s), recorded or imported.

                virsh FILE…: the output of `virsh qemu-monitor-event --loop` (plain, --pretty or \
                --timestamp): the QMP events themselves.

                Imported events are kept apart from recorded ones: each file's are one session per VM \
                named for the file, which reports do not count as observed time; an event that falls \
                inside a recorded session of its VM is left out (the recorder saw it), and so is one \
                already imported, from this file or a copy. Importing the same file twice adds nothing.

                Examples:
                  qmplog import libvirt-log /var/log/libvirt/qemu/*.log*
                  virsh qemu-monitor-event --loop --timestamp > events.txt; qmplog import virsh events.txt
                """
        )

        @OptionGroup var store: StoreOptions

        @Argument(help: ArgumentHelp("What the files are: libvirt-log or virsh.", valueName: "kind"))
        var kind: String

        @Argument(help: ArgumentHelp("The files to import.", valueName: "file"))
        var files: [String] = []

        func validate() throws {
            guard HistoryImporter.Kind(rawValue: kind) != nil else {
                throw ValidationError("Unknown kind '\(kind)': use libvirt-log or virsh.")
            }
            guard !files.isEmpty else { throw ValidationError("Name at least one file to import.") }
        }

        func run() async throws {
            let kind = HistoryImporter.Kind(rawValue: kind) ?? .virsh
            let path = try store.prepareForWriting()
            let importer = HistoryImporter(database: try EventDatabase.openForWriting(path: path))
            var failures = 0
            for file in files {
                do {
                    let result = try await importer.importFile(file, as: kind)
                    let outcome = result.outcome
                    var line =
                        "\(file): \(result.machines.joined(separator: ", ")): \(outcome.added) added, "
                        + "\(outcome.alreadyImported) already imported, \(outcome.alreadyKnown) already known"
                    if outcome.sendersAttached > 0 { line += ", signal senders attached: \(outcome.sendersAttached)" }
                    if result.unknownLines > 0 { line += "; \(result.unknownLines) lines not understood" }
                    try StandardOutput.write(TerminalText.escaping(line) + "\n")
                } catch {
                    failures += 1
                    FileHandle.standardError.write(Data("error: \(TerminalText.escaping("\(error)"))\n".utf8))
                }
            }
            if failures > 0 { throw ExitCode(1) }
        }
    }
}
