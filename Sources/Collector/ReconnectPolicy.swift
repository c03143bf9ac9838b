/// When to try a VM's socket again: capped exponential backoff with jitter.
///
/// Attempt 0 waits about ``initialDelay``, each further attempt doubles it up to ``maximumDelay``.
/// Jitter spreads the retries of many VMs that went away together (a host reboot, a libvirt
/// restart) so they do not all reconnect in the same instant.
public struct ReconnectPolicy: Sendable, Hashable {
    public var initialDelay: Duration
    public var maximumDelay: Duration
    /// The fraction of each delay that is randomised, 0 to 1 (0.2: ±20 %).
    public var jitter: Double

    public init(
        initialDelay: Duration = .milliseconds(500),
        maximumDelay: Duration = .seconds(30),
        jitter: Double = 0.2
    ) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.jitter = min(max(jitter, 0), 1)
    }

    /// The delay before retry number `attempt` (0 for the first retry).
    public func delay(forAttempt attempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let base = Self.seconds(initialDelay) * Double(1 << min(attempt, 30))
        let capped = min(base, Self.seconds(maximumDelay))
        let factor = jitter == 0 ? 1 : Double.random(in: (1 - jitter)...(1 + jitter), using: &generator)
        return .microseconds(Int64(min(capped * factor, Self.seconds(maximumDelay)) * 1_000_000))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
