public import EventStore

/// The reports `qmplog report` can run.
public enum ReportKind: String, Sendable, CaseIterable {
    /// VMs, events by name, sessions, observed and unobserved time.
    case summary
    /// SHUTDOWN by initiator (guest, host, host-requested ACPI, unknown) and reason; guest:host ratio.
    case shutdowns
    /// GUEST_PANICKED by crash type, s390 reason, hyper-v bugcheck code, action, VM and day.
    case panics
    /// RESET by initiator and reason, watchdog-attributed, events versus distinct resets.
    case resets
    /// WATCHDOG by action and VM.
    case watchdog
    /// Time per VM running, paused, suspended, shut down and unknown.
    case states
    /// Every end of a VM's run, classified (guest-poweroff, host-signal, killed, …), and crash loops.
    case stops
    /// Every episode in which a VM did not run while QEMU was alive, by cause, with its duration.
    case pauses

    /// Runs this report on `database` (opened read-only by the caller).
    ///
    /// - Throws: ``ReportsError`` for a query that cannot be answered; the store's errors.
    public func run(on database: EventDatabase, query: ReportQuery) async throws -> ReportResult {
        let data = try await ReportData(database: database, query: query)
        var result: ReportResult
        switch self {
        case .summary: result = try await SummaryReport.run(data)
        case .shutdowns: result = try await ShutdownReport.run(data)
        case .panics: result = try await PanicReport.run(data)
        case .resets: result = try await ResetReport.run(data)
        case .watchdog: result = try await WatchdogReport.run(data)
        case .states: result = try await StateReport.run(data)
        case .stops: result = try await StopReport.run(data)
        case .pauses: result = try await PauseReport.run(data)
        }
        // `until` shows when the report ran; without --until, later-stamped events still count.
        if query.until == nil {
            let later = try await data.countEventsStamped(from: query.now)
            if later > 0 {
                result.caveats.append(
                    "No --until was given, so events stamped after this report ran "
                        + "(\(Timestamp.rfc3339(microseconds: query.now))) are counted: \(later) of them. A host "
                        + "clock running ahead stamps events so; give --until to leave them out."
                )
            }
        }
        return result
    }
}
