import EventStore
import Reports
import Subprocess
import SystemPackage

/// Runs one hook's command for one incident.
enum HookProcess {
    /// Runs `command` with the incident in its environment, its output on qmplog's standard error,
    /// no standard input and no other descriptor of qmplog's, in a process group of its own.
    ///
    /// - Returns: how it ended (`exit 0`, `signal 9`, `timed out after 60 s`, `could not start: …`),
    ///   or `nil` when qmplog is stopping: the run is cut short and stays pending.
    static func run(_ command: [String], environment: [String: String], timeout: Duration) async -> String? {
        var options = PlatformOptions()
        options.processGroupID = 0
        options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: .seconds(2))]
        let executable: Executable =
            command[0].contains("/") ? .path(FilePath(command[0])) : .name(command[0])
        var overrides: [Environment.Key: String?] = [:]
        for (key, value) in environment {
            // An environment string ends at NUL: a VM's name holding one would be cut silently.
            overrides[Environment.Key(stringLiteral: key)] = value.replacingNUL()
        }
        let finalOverrides = overrides
        let finalOptions = options
        do {
            return try await withThrowingTaskGroup(of: String?.self) { group in
                group.addTask {
                    let result = try await Subprocess.run(
                        executable,
                        arguments: Arguments(Array(command.dropFirst())),
                        environment: .inherit.updating(finalOverrides),
                        platformOptions: finalOptions,
                        input: .none,
                        output: .currentStandardError,
                        error: .currentStandardError
                    )
                    switch result.terminationStatus {
                    case .exited(let code): return "exit \(code)"
                    case .signaled(let signal): return "signal \(signal)"
                    }
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return "timed out after \(timeout.components.seconds) s"
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                return Task.isCancelled ? nil : first
            }
        } catch {
            if Task.isCancelled || error is CancellationError { return nil }
            return "could not start: \(error)"
        }
    }

    /// The incident as the hook's environment.
    static func environment(for run: PendingHookRun, databasePath: String?) -> [String: String] {
        let incident = run.incident
        var environment = [
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
        ]
        if let uuid = incident.uuid { environment["QMPLOG_VM_UUID"] = uuid }
        if incident.kind == "crashloop" {
            environment["QMPLOG_LAST_TIME"] = Timestamp.rfc3339(microseconds: incident.lastTime)
        }
        if let databasePath { environment["QMPLOG_DATABASE"] = databasePath }
        return environment
    }
}

extension String {
    fileprivate func replacingNUL() -> String {
        contains("\0") ? String(unicodeScalars.map { $0 == "\0" ? "\u{FFFD}" : Character($0) }) : self
    }
}
