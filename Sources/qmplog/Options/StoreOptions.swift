import ArgumentParser
import Foundation

/// `--db` and the database path rule shared by every command.
struct StoreOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The SQLite database file.",
            discussion:
                "Default: $QMPLOG_DB, else $XDG_STATE_HOME/qmplog/events.sqlite (~/.local/state/qmplog/). "
                + "report, export, vms and timeline also read the fleet: postgresql://USER@HOST/DBNAME.",
            valueName: "file"
        )
    )
    var db: String?

    func validate() throws {
        if db == "" {
            throw ValidationError(
                "--db needs a file path; leave it out to use $QMPLOG_DB, else $XDG_STATE_HOME/qmplog/events.sqlite."
            )
        }
    }

    /// The path to use, following the rule: `--db`, `$QMPLOG_DB`, `$XDG_STATE_HOME/qmplog/events.sqlite`.
    func resolvedPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        Self.resolve(explicit: db, environment: environment)
    }

    static func resolve(explicit: String?, environment: [String: String]) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let fromEnvironment = environment["QMPLOG_DB"], !fromEnvironment.isEmpty { return fromEnvironment }
        let stateHome: String
        if let xdg = environment["XDG_STATE_HOME"], xdg.hasPrefix("/") {
            stateHome = xdg
        } else {
            let home = environment["HOME"] ?? NSHomeDirectory()
            stateHome = home + "/.local/state"
        }
        return stateHome + "/qmplog/events.sqlite"
    }

    /// Whether the path came from the default rule rather than the user.
    func isDefaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        (db ?? "").isEmpty && (environment["QMPLOG_DB"] ?? "").isEmpty
    }

    /// For writers: creates the default directory (0700) if needed, else requires the parent to exist.
    func prepareForWriting() throws -> String {
        let path = resolvedPath()
        // A bare file name (--db events.sqlite) lives in the current directory.
        let parent = (path as NSString).deletingLastPathComponent
        let directory = parent.isEmpty ? "." : parent
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw ValidationError("Cannot create the database \(path): \(directory) is not a directory.")
            }
            return path
        }
        guard isDefaultPath() else {
            throw ValidationError("Cannot create the database \(path): directory \(directory) does not exist.")
        }
        do {
            try FileManager.default.createDirectory(
                atPath: directory,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
        } catch {
            throw ValidationError(
                "Cannot create directory \(directory) for the database: \(error.localizedDescription)"
            )
        }
        return path
    }
}
