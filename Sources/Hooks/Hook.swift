package import EventStore
import Foundation
import Reports

/// One `--on CLASSES --exec COMMAND` of `qmplog record`: which incidents it wants and what it runs.
package struct Hook: Sendable, Hashable {
    /// The classes as given (`panic,killed`).
    package let classes: [String]
    /// The program and its arguments, split like a shell splits words but with no expansion.
    package let command: [String]
    /// How runs of this hook are named in the database: the same hook given again after a restart
    /// finds its pending runs.
    package let key: String

    /// - Throws: ``HookError`` naming the class or the command at fault.
    package init(on: String, exec: String) throws(HookError) {
        let classes = on.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !classes.isEmpty else { throw HookError("--on needs a class (\(Self.classNames))") }
        for name in classes where Self.selector(name) == nil {
            throw HookError("--on \(name): not an incident class; use one of \(Self.classNames)")
        }
        let command = try CommandWords.split(exec)
        guard let program = command.first else { throw HookError("--exec needs a command") }
        try Self.checkExecutable(program)
        self.classes = classes
        self.command = command
        self.key = "--on \(classes.joined(separator: ",")) --exec \(exec)"
    }

    /// Refuses at start a program that could never run: missing, not executable, a directory, or a
    /// name found nowhere on PATH (else every incident would fail the same way).
    static func checkExecutable(
        _ program: String,
        path: String = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    ) throws(HookError) {
        func runnable(_ file: String) -> Bool {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) && !isDirectory.boolValue
                && access(file, X_OK) == 0
        }
        if program.contains("/") {
            guard FileManager.default.fileExists(atPath: program) else {
                throw HookError("--exec \(program): no such file")
            }
            guard runnable(program) else { throw HookError("--exec \(program): not an executable file") }
            return
        }
        guard path.split(separator: ":").contains(where: { runnable("\($0)/\(program)") }) else {
            throw HookError("--exec \(program): no such command on PATH (\(path))")
        }
    }

    /// Whether this hook runs for `incident`.
    package func wants(_ incident: NewIncident) -> Bool {
        classes.contains { name in
            guard let selector = Self.selector(name) else { return false }
            return selector.kind.map { $0 == incident.kind } ?? true
                && selector.incidentClass.map { $0 == incident.incidentClass } ?? true
        }
    }

    /// What a class name selects: a kind of incident, a class within it, or both (`nil`: any).
    private static func selector(_ name: String) -> (kind: String?, incidentClass: String?)? {
        switch name {
        case "any": return (nil, nil)
        case "any-stop": return ("stop", nil)
        case "any-pause": return ("pause", nil)
        case "panic", "watchdog", "crashloop": return (name, name)
        default: break
        }
        if name.hasPrefix("stop:"), IncidentDetector.stopClasses.contains(String(name.dropFirst(5))) {
            return ("stop", String(name.dropFirst(5)))
        }
        if name.hasPrefix("pause:"), IncidentDetector.pauseCauses.contains(String(name.dropFirst(6))) {
            return ("pause", String(name.dropFirst(6)))
        }
        // A bare stop class or pause cause, where the name says which.
        if IncidentDetector.stopClasses.contains(name), !IncidentDetector.pauseCauses.contains(name), name != "watchdog"
        {
            return ("stop", name)
        }
        if IncidentDetector.pauseCauses.contains(name), !IncidentDetector.stopClasses.contains(name), name != "watchdog"
        {
            return ("pause", name)
        }
        return nil
    }

    /// Every class `--on` takes, for help and errors.
    package static var classNames: String {
        let bare = ["any", "any-stop", "any-pause", "panic", "watchdog", "crashloop"]
        let stops = IncidentDetector.stopClasses.filter { !bare.contains($0) && selector($0) != nil }
        let pauses = IncidentDetector.pauseCauses.filter { !bare.contains($0) && selector($0) != nil }
        return (bare + stops + pauses).joined(separator: ", ") + ", stop:CLASS, pause:CAUSE"
    }
}

/// A hook that cannot be used as given.
package struct HookError: Error, CustomStringConvertible {
    package let description: String
    init(_ description: String) { self.description = description }
}
