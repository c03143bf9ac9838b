import Foundation
import Logging
import Reports

/// One line per log event on standard error, for people:
/// `2026-12-02T06:19:16.123Z info qmplog.record: Session started machine.name=vm1 session.id=3`.
///
/// Metadata carries what VMs and peers sent (names, error texts): control characters are escaped
/// (``TerminalText``) so that a VM named with an escape sequence cannot act on the terminal.
struct TextLogHandler: StandardErrorLogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    func log(event: LogEvent) {
        var line = "\(JSONLogHandler.timestamp()) \(event.level.rawValue) \(label): "
        line += TerminalText.escaping(event.message.description)
        for (key, value) in metadata(of: event) {
            line += " " + TerminalText.escaping(key) + "=" + TerminalText.escaping(value)
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
