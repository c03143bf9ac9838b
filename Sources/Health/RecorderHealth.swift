import Prometheus

/// The recorder's own health, as `/metrics` of `record --http` shows it beside the VMs' figures:
/// what it stores and how fast, its monitors, its hooks and its ship. Counted in the process, so a
/// restart starts them from zero (Prometheus' `rate` and `increase` take that in their stride).
///
/// Labels are bounded: a monitor's state, and a hook's position and classes as configured.
package final class RecorderHealth: Sendable {
    private let registry = PrometheusCollectorRegistry()

    private let eventsStored: Counter
    private let commitDuration: DurationHistogram
    private let writerBacklog: Gauge
    private let monitors: [MonitorState: Gauge]
    private let connectionsRefused: Counter
    private let shipLastSuccess: Gauge
    private let shipPending: Gauge
    private let shipFailures: Counter

    /// Where a monitor of the recorder stands.
    package enum MonitorState: String, CaseIterable, Sendable {
        /// Attached: a session is recording.
        case connected
        /// The last attempt failed; the next one waits for its backoff.
        case retrying
    }

    package init() {
        eventsStored = registry.makeCounter(
            descriptor: Self.named(
                "qmplog_recorder_events_stored_total",
                "Events this recorder committed to its database since it started."
            )
        )
        commitDuration = registry.makeDurationHistogram(
            descriptor: Self.named(
                "qmplog_recorder_commit_duration_seconds",
                "How long each of the writer's transactions took to commit."
            ),
            buckets: [
                .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10),
            ]
        )
        writerBacklog = registry.makeGauge(
            descriptor: Self.named(
                "qmplog_recorder_writer_backlog_events",
                "Events received and waiting for the writer's next commit."
            )
        )
        var monitors: [MonitorState: Gauge] = [:]
        for state in MonitorState.allCases {
            monitors[state] = registry.makeGauge(
                descriptor: Self.named(
                    "qmplog_recorder_monitors",
                    "The recorder's monitors (dialled, watched, listened and libvirt) by state."
                ),
                labels: [("state", state.rawValue)]
            )
        }
        self.monitors = monitors
        connectionsRefused = registry.makeCounter(
            descriptor: Self.named(
                "qmplog_recorder_connections_refused_total",
                "Connections to --listen sockets refused: their user is not allowed (--listen-allow-uid)."
            )
        )
        shipLastSuccess = registry.makeGauge(
            descriptor: Self.named(
                "qmplog_ship_last_success_timestamp_seconds",
                "When the last ship round left the fleet's PostgreSQL holding everything committed before it (or shipping started)."
            )
        )
        shipPending = registry.makeGauge(
            descriptor: Self.named(
                "qmplog_ship_pending_events",
                "Events committed here and not yet in the fleet's PostgreSQL, as of the last ship round."
            )
        )
        shipFailures = registry.makeCounter(
            descriptor: Self.named(
                "qmplog_ship_failures_total",
                "Ship rounds that failed (and are retried after a backoff)."
            )
        )
    }

    /// The writer committed `events` in one transaction that took `duration`; `backlog` wait.
    package func committed(events: Int, in duration: Duration, backlog: Int) {
        commitDuration.record(duration)
        eventsStored.increment(by: Int64(events))
        writerBacklog.set(Int64(backlog))
    }

    /// Events waiting for the writer's next commit.
    package func backlog(_ events: Int) { writerBacklog.set(Int64(events)) }

    /// A `--listen` socket refused a connection.
    package func refusedConnection() { connectionsRefused.increment() }

    /// Shipping starts (the figure behind is counted from now) or a round left the fleet holding
    /// everything but `pending` events; `time` in microseconds since the epoch.
    package func shipped(at time: Int64, pending: Int64 = 0) {
        shipLastSuccess.set(Double(time) / 1_000_000)
        shipPending.set(max(0, pending))
    }

    /// A ship round failed.
    package func shipFailed() { shipFailures.increment() }

    /// One monitor moves from `old` (nil: new) to `new` (nil: gone).
    package func monitor(from old: MonitorState?, to new: MonitorState?) {
        guard old != new else { return }
        if let old { monitors[old]?.decrement() }
        if let new { monitors[new]?.increment() }
    }

    /// A hook's runs by outcome, and its runs dropped because its queue was full. `position` is the
    /// hook's place among the `--on` options (1 for the first), `on` its classes.
    package func hookRun(position: Int, on: String, outcome: HookOutcome) {
        hookRuns(position: position, on: on, outcome: outcome).increment()
    }

    /// Shows a hook's counters at 0 before its first run, so that `increase()` sees the first one.
    package func declareHook(position: Int, on: String) {
        for outcome in HookOutcome.allCases { _ = hookRuns(position: position, on: on, outcome: outcome) }
    }

    private func hookRuns(position: Int, on: String, outcome: HookOutcome) -> Counter {
        registry.makeCounter(
            descriptor: Self.named(
                "qmplog_hook_runs_total",
                "Hook runs by outcome: ok (exit 0), failed (another exit or a signal), timeout, dropped (queue full)."
            ),
            labels: [("hook", "\(position)"), ("on", on), ("outcome", outcome.rawValue)]
        )
    }

    package enum HookOutcome: String, CaseIterable, Sendable {
        case ok, failed, timeout, dropped
    }

    /// A metric's full name and its help (the registry's descriptor, which would join name parts).
    private static func named(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// The Prometheus text of every figure above.
    package func render() -> String { registry.emitToString() }
}
