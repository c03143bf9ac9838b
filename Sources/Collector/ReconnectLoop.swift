import Health
import Logging

extension SessionRecorder {
    /// Runs `attempt` until the task is cancelled, waiting ``ReconnectPolicy``'s delay after each end;
    /// with `once`, runs it once. An attempt calls `connected` once it is through, which starts the
    /// backoff over.
    ///
    /// - Parameters:
    ///   - metadata: names the target in the logs (`qmp.endpoint`, `libvirt.uri`).
    ///   - isFinished: asked after each attempt; `true` stops retrying (a watched socket removed).
    /// - Returns: the last error if the last attempt failed, for the `once` summary.
    func retrying(
        _ metadata: Logger.Metadata,
        isFinished: () -> Bool = { false },
        _ attempt: (_ connected: () -> Void) async throws -> Void
    ) async -> (any Error)? {
        var failures = 0
        var generator = SystemRandomNumberGenerator()
        var lastError: (any Error)?
        // In a backoff since the last attempt ended, until the next one connects (`/metrics`).
        var waiting = false
        let health = configuration.health
        defer { if waiting { health.monitor(from: .retrying, to: nil) } }
        while !Task.isCancelled {
            do {
                try await attempt {
                    failures = 0
                    if waiting { health.monitor(from: .retrying, to: nil) }
                    waiting = false
                }
                lastError = nil
            } catch {
                if Task.isCancelled { return nil }
                lastError = error
                logger.warning("Recording failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            }
            if configuration.once || Task.isCancelled { return lastError }
            if isFinished() { return nil }
            let delay = configuration.reconnect.delay(forAttempt: failures, using: &generator)
            failures += 1
            if !waiting { health.monitor(from: nil, to: .retrying) }
            waiting = true
            logger.debug("Reconnecting", metadata: metadata.merging(["delay": "\(delay)"]) { $1 })
            do {
                try await Task.sleep(for: delay)
            } catch {
                return nil
            }
        }
        return nil
    }
}
