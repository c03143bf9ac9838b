package import EventStore
package import Health
package import Logging
import Reports
import ServiceLifecycle
import Synchronization

/// Tells hooks about incidents as the recorder commits them (`qmplog record --on CLASS --exec COMMAND`).
///
/// After each commit (at most once a second, and never more than a fifth of the time), the events
/// since the last scan are classified as `report stops` and `report pauses` classify them; each new
/// incident a hook wants is stored, with a pending run of each such hook, before any of them
/// starts. A run is marked finished when it ends. So a hook runs once per incident, and one that
/// was pending or running when qmplog stopped or was killed runs after the restart: at least once.
///
/// Recording never waits for a hook: scans read beside the writer, runs wait in a bounded queue
/// (a full queue drops the run, marked `dropped` and logged), at most ``Limits/concurrency`` run at
/// once, and each is stopped at ``Limits/timeout``.
package struct IncidentHooks: Service {
    package struct Limits: Sendable {
        package var queue: Int
        package var concurrency: Int
        package var timeout: Duration

        package init(queue: Int = 1_000, concurrency: Int = 4, timeout: Duration = .seconds(120)) {
            self.queue = queue
            self.concurrency = concurrency
            self.timeout = timeout
        }
    }

    /// How far behind the clock an incident may be committed and still be told (an event's QEMU
    /// timestamp is older than its commit).
    package static let settle: Int64 = 60_000_000
    /// A restart tells incidents missed while qmplog was down for at most this long before it.
    package static let catchUp: Int64 = 3_600_000_000

    let database: EventDatabase
    let hooks: [Hook]
    let limits: Limits
    let commits: CommitCounter
    let logger: Logger
    let now: @Sendable () -> Int64
    /// Variables of qmplog's environment hooks get beyond PATH, LANG, LC_ALL and TZ (`--hook-env`).
    let passedEnvironment: [String]
    /// `record --once`: at the recorder's end, tell what it committed and wait for those runs.
    let drainsOnShutdown: Bool
    /// Counts each hook's runs by outcome (`qmplog_hook_runs_total`).
    let health: RecorderHealth

    package init(
        database: EventDatabase,
        hooks: [Hook],
        limits: Limits = Limits(),
        commits: CommitCounter,
        logger: Logger,
        passedEnvironment: [String] = [],
        drainsOnShutdown: Bool = false,
        health: RecorderHealth = RecorderHealth(),
        now: @escaping @Sendable () -> Int64
    ) {
        self.health = health
        for (index, hook) in hooks.enumerated() {
            health.declareHook(position: index + 1, on: hook.classes.joined(separator: ","))
        }
        self.database = database
        self.hooks = hooks
        self.limits = limits
        self.commits = commits
        self.logger = logger
        self.passedEnvironment = passedEnvironment
        self.drainsOnShutdown = drainsOnShutdown
        self.now = now
    }

    package func run() async throws {
        // Each hook has its own queue and runs: a hook that fails or hangs delays only itself.
        var queues: [String: AsyncStream<PendingHookRun>] = [:]
        var inputs: [String: AsyncStream<PendingHookRun>.Continuation] = [:]
        for hook in hooks where queues[hook.key] == nil {
            let (queue, input) = AsyncStream.makeStream(
                of: PendingHookRun.self,
                bufferingPolicy: .bufferingOldest(max(1, limits.queue))
            )
            queues[hook.key] = queue
            inputs[hook.key] = input
        }
        let finalInputs = inputs
        let start = now()
        await withTaskGroup(of: Void.self) { group in
            for queue in queues.values {
                group.addTask {
                    // Draining, runs end with their queue; otherwise those not started stay pending.
                    if drainsOnShutdown {
                        await runHooks(from: queue)
                    } else {
                        await cancelWhenGracefulShutdown { await runHooks(from: queue) }
                    }
                }
            }
            await cancelWhenGracefulShutdown { await scan(into: finalInputs) }
            // `record --once`: what was committed before the recorder stopped is told before it exits.
            if drainsOnShutdown {
                let cursor = (try? await database.incidentScanCursor()) ?? start - Self.settle
                let time = now()
                _ = await scanOnce(from: cursor, until: time, now: time, into: finalInputs)
            }
            for input in finalInputs.values { input.finish() }
        }
    }

    /// Finds and stores incidents until cancelled, queueing their runs.
    private func scan(into queues: [String: AsyncStream<PendingHookRun>.Continuation]) async {
        var cursor: Int64
        do {
            for run in try await database.pendingHookRuns(for: hooks.map(\.key)) {
                await enqueue(run, into: queues)
            }
            let start = now()
            let stored = try await database.incidentScanCursor()
            // A first start tells what the last ``settle`` committed: QEMU stamped it before we started.
            cursor = max(stored ?? start - Self.settle, start - Self.catchUp)
            if let stored, stored < cursor {
                logger.warning(
                    "Incidents older than an hour before this start are not told",
                    metadata: ["hooks.skipped_from": "\(Timestamp.rfc3339(microseconds: stored))"]
                )
            }
        } catch {
            logger.error("Hooks cannot start", metadata: ["error": "\(error)"])
            return
        }
        let clock = ContinuousClock()
        var seen = -1
        while !Task.isCancelled {
            let mark = commits.value
            guard mark != seen else {
                try? await Task.sleep(for: .milliseconds(250))
                continue
            }
            let started = clock.now
            let time = now()
            if let scanned = await scanOnce(
                from: cursor,
                until: max(cursor, time - Self.settle),
                now: time,
                into: queues
            ) {
                seen = mark
                cursor = scanned
            }
            // A scan reads the last quarter hour of events: on a busy host, at most a fifth of the time.
            let elapsed = clock.now - started
            try? await Task.sleep(for: max(.seconds(1), elapsed * 4))
        }
    }

    /// Stores the incidents committed since `cursor` and queues their runs.
    ///
    /// - Returns: the new cursor, or `nil` when the scan failed (logged; the next one retries).
    private func scanOnce(
        from cursor: Int64,
        until scannedUntil: Int64,
        now time: Int64,
        into queues: [String: AsyncStream<PendingHookRun>.Continuation]
    ) async -> Int64? {
        do {
            let incidents = try await IncidentDetector.incidents(in: database, since: cursor, now: time)
            let hooks = self.hooks
            let runs = try await database.storeIncidents(
                incidents,
                hooks: { incident in hooks.filter { $0.wants(incident) }.map(\.key) },
                crashLoopWindow: ReportQuery(now: time).crashLoopWindow,
                detectedAt: time,
                scannedUntil: scannedUntil
            )
            for run in runs { await enqueue(run, into: queues) }
            return scannedUntil
        } catch {
            if !Task.isCancelled { logger.error("Incident scan failed; retrying", metadata: ["error": "\(error)"]) }
            return nil
        }
    }

    private func enqueue(_ run: PendingHookRun, into queues: [String: AsyncStream<PendingHookRun>.Continuation]) async {
        logger.info("Incident", metadata: metadata(run))
        guard let queue = queues[run.hook] else { return }
        if case .dropped = queue.yield(run) {
            logger.warning(
                "Hook queue full: run dropped",
                metadata: metadata(run).merging(["hooks.queue": "\(limits.queue)"]) { $1 }
            )
            count(run, .dropped)
            await finish(run, outcome: "dropped: \(limits.queue) runs of this hook were waiting")
        }
    }

    /// Starts one hook's queued runs, at most ``Limits/concurrency`` at once, until its queue ends
    /// or the service is cancelled (runs not started stay pending for the next start).
    private func runHooks(from queue: AsyncStream<PendingHookRun>) async {
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for await run in queue {
                if Task.isCancelled { break }
                if running >= limits.concurrency {
                    await group.next()
                    running -= 1
                }
                running += 1
                group.addTask { await execute(run) }
            }
        }
    }

    private func execute(_ run: PendingHookRun) async {
        guard let hook = hooks.first(where: { $0.key == run.hook }) else { return }
        let environment = HookProcess.environment(for: run, databasePath: database.path, passing: passedEnvironment)
        guard let outcome = await HookProcess.run(hook.command, environment: environment, timeout: limits.timeout)
        else { return }
        count(run, outcome == .exited(0) ? .ok : outcome.isTimeout ? .timeout : .failed)
        let level: Logger.Level = outcome == .exited(0) ? .info : .warning
        logger.log(level: level, "Hook ran", metadata: metadata(run).merging(["hook.outcome": "\(outcome)"]) { $1 })
        await finish(run, outcome: outcome.description)
    }

    private func finish(_ run: PendingHookRun, outcome: String) async {
        do {
            try await database.finishHookRun(incidentId: run.incident.id, hook: run.hook, at: now(), outcome: outcome)
        } catch {
            logger.error(
                "Cannot mark a hook's run finished: it runs again after a restart",
                metadata: metadata(run).merging(["error": "\(error)"]) { $1 }
            )
        }
    }

    private func count(_ run: PendingHookRun, _ outcome: RecorderHealth.HookOutcome) {
        guard let position = hooks.firstIndex(where: { $0.key == run.hook }) else { return }
        health.hookRun(position: position + 1, on: hooks[position].classes.joined(separator: ","), outcome: outcome)
    }

    private func metadata(_ run: PendingHookRun) -> Logger.Metadata {
        [
            "incident.id": "\(run.incident.id)", "vm": "\(run.incident.vm)", "incident.kind": "\(run.incident.kind)",
            "incident.class": "\(run.incident.incidentClass)",
            "incident.time": "\(Timestamp.rfc3339(microseconds: run.incident.time))", "hook": "\(run.hook)",
        ]
    }
}

/// Counts the recorder's commits, so that the hooks scan only after something new was committed.
package final class CommitCounter: Sendable {
    private let count = Atomic<Int>(0)

    package init() {}

    package var value: Int { count.load(ordering: .acquiring) }

    @Sendable package func increment() { count.add(1, ordering: .releasing) }
}
