import ArgumentParser
import Reports

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
        subcommands: [
            Record.self, Report.self, Timeline.self, Export.self, Vms.self, Serve.self, Ship.self, Prune.self,
            Rollup.self, Import.self, Setup.self, Demo.self,
        ]
    )

    /// ArgumentParser's own `main`, except that a failure's text is escaped for the terminal: it can
    /// carry what a VM or peer sent (names, error replies, endpoints from the command line).
    static func main() async {
        var command: any ParsableCommand
        do {
            var arguments = Array(CommandLine.arguments.dropFirst())
            if arguments.first == "record" { arguments = Record.insertingDefaultLibvirtURI(arguments) }
            command = try parseAsRoot(arguments)
        } catch {
            exit(withError: error)
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as ExitCode {
            exit(withError: error)
        } catch let error as CleanExit {
            exit(withError: error)
        } catch let error as ValidationError {
            exit(withError: error)
        } catch  where exitCode(for: error) == .success {
            // ArgumentParser's own help command (`qmplog help record`, `--help` on a parent) asks
            // for its help screen by throwing.
            exit(withError: error)
        } catch {
            // Line by line: a newline is safe, and errors listing several failures use it.
            let lines = "\(error)".split(separator: "\n", omittingEmptySubsequences: false)
            exit(withError: EscapedError(text: lines.map { TerminalText.escaping(String($0)) }.joined(separator: "\n")))
        }
    }
}

/// An error whose text has been made safe to print.
private struct EscapedError: Error, CustomStringConvertible {
    let text: String
    var description: String { text }
}

/// A command's discussion in two lengths: what a person scans in `--help`, and the whole text for
/// its manual page (argument-parser's generate-manual reads `--experimental-dump-help`).
enum Manual {
    static func discussion(_ help: String, manual: String) -> String {
        CommandLine.arguments.contains("--experimental-dump-help") ? manual : help
    }
}
