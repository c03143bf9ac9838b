import ArgumentParser
import Logging

/// The levels `--log-level` accepts (swift-log's, by name).
enum LogLevel: String, CaseIterable, ExpressibleByArgument {
    case trace, debug, info, notice, warning, error, critical

    var level: Logger.Level { Logger.Level(rawValue: rawValue) ?? .info }
}

/// `--log-level`, and the stderr log handler every command uses.
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log detail on standard error.")
    var logLevel: LogLevel = .info

    /// Routes swift-log to standard error at the chosen level and returns the command's logger.
    func bootstrap(label: String) -> Logger {
        let level = logLevel.level
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
    }
}
