import Foundation
import Logging
import QMP

/// One JSON object per log line on standard error, for journald, Loki or ELK:
/// `{"time":"…Z","level":"info","label":"qmplog.record","message":"Session started","machine.name":"vm1",…}`.
struct JSONLogHandler: StandardErrorLogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("time", Self.timestamp()), ("level", event.level.rawValue), ("label", label),
            ("message", event.message.description),
        ]
        for (key, value) in metadata(of: event) { fields.append((key, value)) }
        let line = "{" + fields.map { "\(Self.quote($0)):\(Self.quote($1))" }.joined(separator: ",") + "}\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }

    static func quote(_ text: String) -> String {
        JSONValue.string(text).compactText
    }
}
