import ArgumentParser
import Logging

/// The levels `--log-level` accepts (swift-log's, by name).
enum LogLevel: String, CaseIterable, ExpressibleByArgument {
    case trace, debug, info, notice, warning, error, critical

    var level: Logger.Level { Logger.Level(rawValue: rawValue) ?? .info }
}

/// How log lines look.
enum LogFormat: String, CaseIterable, ExpressibleByArgument {
    case text, json
}

/// `--log-level`, `--log-format`, and the stderr log handler every command uses.
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log detail on standard error.")
    var logLevel: LogLevel = .info

    @Option(help: "Log line format on standard error: text for people, json (one object a line) for log collectors.")
    var logFormat: LogFormat = .text

    /// Routes swift-log to standard error at the chosen level and returns the command's logger.
    func bootstrap(label: String) -> Logger {
        let level = logLevel.level
        let format = logFormat
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                return TextLogHandler(label: label, logLevel: level)
            case .json:
                return JSONLogHandler(label: label, logLevel: level)
            }
        }
        return Logger(label: label)
    }
}
