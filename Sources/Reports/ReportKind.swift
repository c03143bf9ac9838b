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

    /// Runs this report on `database` (opened read-only by the caller).
    ///
    /// - Throws: ``ReportsError`` for a query that cannot be answered; the store's errors.
    public func run(on database: EventDatabase, query: ReportQuery) async throws -> ReportResult {
        let data = try await ReportData(database: database, query: query)
        switch self {
        case .summary: return try await SummaryReport.run(data)
        case .shutdowns: return try await ShutdownReport.run(data)
        case .panics: return try await PanicReport.run(data)
        case .resets: return try await ResetReport.run(data)
        case .watchdog: return try await WatchdogReport.run(data)
        case .states: return try await StateReport.run(data)
        }
    }
}
