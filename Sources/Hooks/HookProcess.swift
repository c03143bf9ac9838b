import EventStore
import Foundation
import Reports
import Subprocess
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Runs one hook's command for one incident.
enum HookProcess {
    /// Runs `command` with the incident as its whole environment (see ``environment(for:databasePath:passing:)``),
    /// its output on qmplog's standard error, no standard input and no other descriptor of
    /// qmplog's, in a process group of its own.
    ///
    /// On a timeout, and when qmplog stops, the whole group is told: SIGTERM, then after 2 s SIGKILL
    /// to whatever of it is left (`sleep 400 &` in a hook, a hook that ignores SIGTERM).
    ///
    /// - Returns: how it ended (`exit 0`, `signal 9`, `timed out after 60 s`, `could not start: …`),
    ///   or `nil` when qmplog is stopping: the run is cut short and stays pending.
    static func run(_ command: [String], environment: [String: String], timeout: Duration) async -> Outcome? {
        var options = PlatformOptions()
        options.processGroupID = 0
        options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: .seconds(2))]
        let executable: Executable =
            command[0].contains("/") ? .path(FilePath(command[0])) : .name(command[0])
        var variables: [Environment.Key: String] = [:]
        for (key, value) in environment {
            // An environment string ends at NUL: a VM's name holding one would be cut silently.
            variables[Environment.Key(stringLiteral: key)] = value.replacingNUL()
        }
        let finalVariables = variables
        let finalOptions = options
        let group = HookGroup()
        let outcome: Outcome?  // nil: cut short by qmplog's stop
        do {
            outcome = try await withThrowingTaskGroup(of: Outcome.self) { tasks in
                tasks.addTask {
                    let result = try await Subprocess.run(
                        executable,
                        arguments: Arguments(Array(command.dropFirst())),
                        environment: .custom(finalVariables),
                        platformOptions: finalOptions,
                        input: .none,
                        output: .currentStandardError,
                        error: .currentStandardError
                    ) { execution in
                        group.id.store(execution.processIdentifier.value, ordering: .releasing)
                    }
                    switch result.terminationStatus {
                    case .exited(let code): return .exited(code)
                    case .signaled(let signal): return .signaled(signal)
                    }
                }
                tasks.addTask {
                    try await Task.sleep(for: timeout)
                    return .timedOut(after: timeout)
                }
                let first = try await tasks.next()
                if Task.isCancelled || first?.isTimeout == true { group.signal(SIGTERM) }
                tasks.cancelAll()
                return Task.isCancelled ? nil : first
            }
        } catch {
            outcome = Task.isCancelled || error is CancellationError ? nil : .couldNotStart("\(error)")
        }
        // The run's own teardown gave the hook 2 s after SIGTERM; what is left of its group goes now.
        if outcome == nil || outcome?.isTimeout == true { group.signal(SIGKILL) }
        return outcome
    }

    /// How a hook's run ended; its description is what the database keeps.
    enum Outcome: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)
        case timedOut(after: Duration)
        case couldNotStart(String)

        var isTimeout: Bool { if case .timedOut = self { true } else { false } }

        var description: String {
            switch self {
            case .exited(let code): "exit \(code)"
            case .signaled(let signal): "signal \(signal)"
            case .timedOut(let timeout): "timed out after \(timeout.components.seconds) s"
            case .couldNotStart(let error): "could not start: \(error)"
            }
        }
    }

    /// Variables a hook gets from qmplog's environment; others only when `--hook-env` names them
    /// (qmplog's may hold secrets such as PGPASSWORD).
    static let passedVariables = ["PATH", "LANG", "LC_ALL", "TZ"]

    /// The hook's whole environment: ``passedVariables`` and `passing` from qmplog's, and the incident.
    static func environment(
        for run: PendingHookRun,
        databasePath: String?,
        passing: [String] = [],
        from inherited: [String: String] = ProcessInfo.processInfo.environment
    ) -> [String: String] {
        let incident = run.incident
        var environment: [String: String] = [:]
        for name in passedVariables + passing { environment[name] = inherited[name] }
        if environment["PATH"] == nil { environment["PATH"] = "/usr/local/bin:/usr/bin:/bin" }
        for (key, value) in [
            "QMPLOG_INCIDENT_ID": String(incident.id),
            "QMPLOG_VM": incident.vm,
            "QMPLOG_KIND": incident.kind,
            "QMPLOG_CLASS": incident.incidentClass,
            "QMPLOG_TIME": Timestamp.rfc3339(microseconds: incident.time),
            "QMPLOG_TIME_US": String(incident.time),
            "QMPLOG_EVIDENCE": incident.evidence,
            "QMPLOG_EVENT": incident.event ?? "null",
            "QMPLOG_COUNT": String(incident.count),
            "QMPLOG_HOOK": run.hook,
        ] {
            environment[key] = value
        }
        if let uuid = incident.uuid { environment["QMPLOG_VM_UUID"] = uuid }
        if incident.kind == "crashloop" {
            environment["QMPLOG_LAST_TIME"] = Timestamp.rfc3339(microseconds: incident.lastTime)
        }
        if let databasePath { environment["QMPLOG_DATABASE"] = databasePath }
        return environment
    }
}

/// The hook's process group: its pid, once it has started (0 before).
private final class HookGroup: Sendable {
    let id = Atomic<pid_t>(0)

    func signal(_ signal: Int32) {
        let group = id.load(ordering: .acquiring)
        if group > 0 { kill(-group, signal) }
    }
}
