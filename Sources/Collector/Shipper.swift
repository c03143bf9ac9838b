public import EventStore
package import Health
package import Logging
public import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Copies a host's SQLite history to the fleet's PostgreSQL (`qmplog ship`, `record --ship-to`).
///
/// The SQLite file stays the source of truth and the buffer: each round connects, ships batches
/// until PostgreSQL holds everything committed, and disconnects, so that many hosts share a
/// server's few connection slots. Every batch is one PostgreSQL transaction that also moves the
/// host's cursor there; a ship killed or cut off at any moment resumes at the last commit.
public struct Shipper: Service, Sendable {
    public struct Configuration: Sendable {
        public var url: FleetURL
        /// The name this host's machines carry in the fleet (default: the system's host name).
        public var hostName: String
        /// Events per transaction.
        public var batchSize: Int
        /// The pause between rounds when caught up.
        public var interval: Duration
        /// Retries after a failed round: capped exponential backoff with jitter.
        public var retry: ReconnectPolicy
        /// How long one batch may take before its connection is given up and the round retried.
        public var batchTimeout: Duration = .seconds(60)
        /// This host's clock, microseconds since the epoch (tests give one that is off).
        public var clock: @Sendable () -> Int64 = { WallClock.microseconds() }

        public init(
            url: FleetURL,
            hostName: String = Shipper.systemHostName(),
            batchSize: Int = 50_000,
            interval: Duration = .seconds(1),
            retry: ReconnectPolicy = ReconnectPolicy(initialDelay: .seconds(1), maximumDelay: .seconds(30))
        ) {
            self.url = url
            self.hostName = hostName
            self.batchSize = batchSize
            self.interval = interval
            self.retry = retry
        }
    }

    /// What a round stored.
    public struct Totals: Sendable, Equatable {
        public var machines = 0
        public var sessions = 0
        public var events = 0
        public var batches = 0
        /// PostgreSQL's clock minus this host's, in microseconds, at the round's last batch.
        public var clockOffset: Int64?
        /// The last event PostgreSQL holds from this host.
        package var through: Int64 = 0
    }

    /// A clock more than this far off PostgreSQL's is reported (microseconds).
    public static let clockTolerance: Int64 = 1_000_000

    let database: EventDatabase
    public let configuration: Configuration
    let logger: Logger
    /// Its last success, lag and failures (`/metrics` of `record --http`).
    let health: RecorderHealth

    package init(
        database: EventDatabase,
        configuration: Configuration,
        logger: Logger,
        health: RecorderHealth = RecorderHealth()
    ) {
        self.database = database
        self.configuration = configuration
        self.logger = logger
        self.health = health
    }

    /// Ships everything committed so far, then returns.
    ///
    /// - Throws: ``FleetError`` (unreachable, refused, full, newer schema) or ``EventStoreError``.
    public func shipOnce() async throws -> Totals {
        let identity = try await database.shippingIdentity(hostName: configuration.hostName)
        let fleet = try await FleetDatabase.connect(
            configuration.url,
            logger: logger,
            timeout: configuration.batchTimeout
        )
        do {
            let totals = try await ship(identity: identity, fleet: fleet)
            await fleet.close()
            return totals
        } catch {
            await fleet.close()
            throw error
        }
    }

    /// Ships, retrying what may pass later (a server down, restarting or full) for up to
    /// `patience`; a refused password or a newer schema fails at once.
    public func shipOnce(retryingFor patience: Duration) async throws -> Totals {
        let clock = ContinuousClock()
        let deadline = clock.now + patience
        var generator = SystemRandomNumberGenerator()
        var attempt = 0
        while true {
            do {
                return try await shipOnce()
            } catch let error as FleetError where error.isTransient && clock.now < deadline {
                let delay = configuration.retry.delay(forAttempt: attempt, using: &generator)
                logger.info("ship failed, retrying", metadata: ["error": "\(error)", "in": "\(delay)"])
                attempt += 1
                try await Task.sleep(for: min(delay, deadline - clock.now))
            }
        }
    }

    /// Ships round after round until shut down (a batch in flight is rolled back, and shipped by
    /// the next run); a failed round is logged and retried.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown { try await shipRounds() }
    }

    private func shipRounds() async throws {
        // Behind since shipping started, not since the epoch, until the first round succeeds.
        health.shipped(at: configuration.clock())
        var generator = SystemRandomNumberGenerator()
        var failures = 0
        var skewReported = false
        while !Task.isCancelled {
            let pause: Duration
            do {
                let totals = try await shipOnce()
                health.shipped(at: configuration.clock(), pending: try await database.lastEventId() - totals.through)
                if failures > 0 { logger.notice("shipping again", metadata: ["to": "\(configuration.url)"]) }
                failures = 0
                if totals.events > 0 {
                    logger.debug("shipped", metadata: ["events": "\(totals.events)", "batches": "\(totals.batches)"])
                }
                let skewed = totals.clockOffset.map { abs($0) > Self.clockTolerance } ?? false
                if skewed && !skewReported, let offset = totals.clockOffset {
                    logger.warning(
                        "this host's clock is off PostgreSQL's",
                        metadata: ["by_us": "\(-offset)", "host": "\(configuration.hostName)"]
                    )
                }
                skewReported = skewed
                pause = configuration.interval
            } catch is CancellationError {
                return
            } catch {
                let level: Logger.Level = failures == 0 ? .error : .warning
                logger.log(level: level, "cannot ship", metadata: ["error": "\(error)"])
                health.shipFailed()
                pause = configuration.retry.delay(forAttempt: failures, using: &generator)
                failures += 1
            }
            try? await Task.sleep(for: pause)
        }
    }

    private func ship(identity: ShippingState, fleet: FleetDatabase) async throws -> Totals {
        try await fleet.migrate()
        let host = try await fleet.registerHost(
            id: identity.hostId,
            name: identity.hostName,
            at: configuration.clock()
        )
        var totals = Totals()
        let limit = configuration.batchSize
        while true {
            let started = ContinuousClock.now
            let outcome = try await fleet.shipNext(host: host, clock: configuration.clock) { cursor, open in
                try await database.shipBatch(
                    after: cursor,
                    openSessions: open,
                    hostPrefix: "\(host)\t",
                    eventLimit: limit
                )
            }
            logger.debug(
                "batch stored",
                metadata: [
                    "events": "\(outcome.events)", "through": "\(outcome.cursor.lastEventId)",
                    "took": "\(ContinuousClock.now - started)",
                ]
            )
            totals.machines += outcome.machines
            totals.sessions += outcome.sessions
            totals.events += outcome.events
            totals.batches += 1
            totals.clockOffset = outcome.clockOffset
            totals.through = outcome.cursor.lastEventId
            try await database.noteShipped(
                target: configuration.url.description,
                through: outcome.cursor.lastEventId,
                at: configuration.clock(),
                clockOffset: outcome.clockOffset
            )
            if outcome.events < limit { return totals }
        }
    }

    /// This machine's host name.
    public static func systemHostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
