import EventStore
import Logging
import Reports
import ServiceLifecycle

/// Keeps the report rollup fresh while `qmplog record` runs.
///
/// The rollup is rebuilt when it is missing or older than ``period`` and events arrived since it
/// was built. A failure is logged and retried at the next check: the rollup is derived data, and
/// reports fall back to reading the events, so it must never stop the recording.
struct RollupMaintenance: Service {
    let database: EventDatabase
    let logger: Logger
    /// How old the rollup may get, in microseconds.
    let period: Int64
    let now: @Sendable () -> Int64

    func run() async throws {
        // The first check 30 s after start (sooner for a short period); then one per period, at
        // least every 10 minutes.
        let check = Duration.microseconds(min(period, 600_000_000))
        let first = min(check, .seconds(30))
        await cancelWhenGracefulShutdown {
            var delay = first
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    return
                }
                delay = check
                do {
                    try await rebuildIfDue()
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning(
                        "Could not rebuild the report rollup; reports read the events meanwhile",
                        metadata: ["error": "\(error)"]
                    )
                }
            }
        }
    }

    private func rebuildIfDue() async throws {
        let header = try await database.rollupHeader()
        if let header, now() - header.builtAt < period { return }
        if let header, try await database.lastEventId() == header.lastEventId { return }
        let started = now()
        let rollup = try await RollupBuilder.rebuild(database, now: started)
        logger.info(
            "Rebuilt the report rollup",
            metadata: [
                "rollup.facts": "\(rollup.facts.count)", "rollup.cut": "\(Timestamp.rfc3339(microseconds: rollup.cut))",
                "rollup.seconds": "\(Double(now() - started) / 1_000_000)",
            ]
        )
    }
}
