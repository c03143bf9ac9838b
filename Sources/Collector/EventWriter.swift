import EventStore
import Health
import Synchronization

/// The one writer: collects events from every VM and commits them in group transactions.
///
/// While one transaction commits, new events pile up and go into the next one; a small batch also
/// waits 50 ms for more. So an event is committed within about 50 ms plus one transaction's time of
/// arriving, many quiet VMs share a transaction, and a flood is written in transactions of
/// thousands. When ``maximumPending`` events, or ``maximumPendingBytes`` of their data, wait, VM
/// readers wait too, which stops reading their sockets (TCP and Unix socket backpressure reach QEMU).
/// The byte bound matters when events are large (QMP messages may be up to 16 MiB): 10,000 of those
/// would be gigabytes, while the flood's 10,000 small events hold about a megabyte of data.
///
/// A lock-protected queue rather than an actor: connections hand over their events from their event
/// loops (see `SessionEventSink`) with a plain call, not a hop to another executor per read
/// (measured with 1,000 quiet VMs, where every event arrives in a read of its own).
final class EventWriter: Sendable {
    private struct State {
        var events: [NewEvent] = []
        /// The UTF-8 bytes of the queued events' `data`.
        var dataBytes = 0
        /// Each applied after the events queued before it (its index in `events`).
        var identifications: [(beforeEvent: Int, identification: SessionIdentification)] = []
        var endings: [SessionEnd] = []
        var finished = false
        var failed = false
        var writerWaiting: CheckedContinuation<Void, Never>?
        /// Connections that stopped reading while the queue was full, to resume once it is written.
        var readersWaiting: [@Sendable () -> Void] = []

        var isIdle: Bool { events.isEmpty && identifications.isEmpty && endings.isEmpty }

        /// Takes the writer's continuation, to resume outside the lock.
        mutating func takeWriter() -> CheckedContinuation<Void, Never>? {
            defer { writerWaiting = nil }
            return writerWaiting
        }
    }

    private let database: EventDatabase
    private let maximumPending: Int
    private let maximumPendingBytes: Int
    private let state = Mutex(State())

    /// A batch this large is committed at once.
    static let fullBatch = 1_000
    /// How long a small batch waits for company before it is committed.
    static let gatherDelay = Duration.milliseconds(50)

    private let onCommit: (@Sendable () -> Void)?
    private let health: RecorderHealth

    init(
        database: EventDatabase,
        maximumPending: Int,
        maximumPendingBytes: Int,
        onCommit: (@Sendable () -> Void)? = nil,
        health: RecorderHealth = RecorderHealth()
    ) {
        self.database = database
        self.maximumPending = max(1, maximumPending)
        self.maximumPendingBytes = max(1, maximumPendingBytes)
        self.onCommit = onCommit
        self.health = health
    }

    /// Queues events for the next commit, without waiting: called on a connection's event loop.
    ///
    /// - Returns: `false` when ``maximumPending`` events or ``maximumPendingBytes`` of data wait: the
    ///   connection stops reading (its socket buffer and then QEMU hold the backlog), and `resume` is
    ///   called once they are written.
    func enqueue(_ batch: [NewEvent], resume: @escaping @Sendable () -> Void) -> Bool {
        let (writer, full) = state.withLock { state -> (CheckedContinuation<Void, Never>?, Bool) in
            guard !state.failed else { return (nil, false) }
            state.events.append(contentsOf: batch)
            for event in batch { state.dataBytes += event.data?.utf8.count ?? 0 }
            let full = state.events.count >= maximumPending || state.dataBytes >= maximumPendingBytes
            if full { state.readersWaiting.append(resume) }
            return (state.takeWriter(), full)
        }
        writer?.resume()
        return !full
    }

    /// Queues a session's identification; it is applied after every event queued before it, and
    /// the events queued after it must carry its ``SessionIdentification/identified`` ids.
    func identify(_ identification: SessionIdentification) {
        let writer = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.failed else { return nil }
            state.identifications.append((state.events.count, identification))
            return state.takeWriter()
        }
        writer?.resume()
    }

    /// Queues a session end; it is committed after every event queued before it.
    func end(_ ending: SessionEnd) {
        let writer = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.failed else { return nil }
            state.endings.append(ending)
            return state.takeWriter()
        }
        writer?.resume()
    }

    /// No more input: ``run()`` returns once everything queued is committed.
    func finish() {
        state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.finished = true
            return state.takeWriter()
        }?.resume()
    }

    /// Commits until ``finish()`` and an empty queue.
    ///
    /// - Throws: the store's error when a commit fails; nothing later is accepted, so the caller stops.
    func run() async throws {
        while true {
            let (idle, finished, small) = state.withLock { state in
                (state.isIdle, state.finished, state.events.count < Self.fullBatch)
            }
            if idle {
                if finished { return }
                await withCheckedContinuation { continuation in
                    let ready = state.withLock { state in
                        guard state.isIdle, !state.finished else { return true }
                        state.writerWaiting = continuation
                        return false
                    }
                    if ready { continuation.resume() }
                }
                continue
            }
            if small, !finished {
                // A trickle from many VMs: gather what arrives in the next few milliseconds into the
                // same transaction (one WAL append instead of dozens), still well inside the 100 ms
                // durability window. A flood fills the batch and never waits here.
                try? await Task.sleep(for: Self.gatherDelay)
            }
            let (batch, identifications, batchEndings, readers) = state.withLock { state in
                defer {
                    state.events = []
                    state.dataBytes = 0
                    state.identifications = []
                    state.endings = []
                    state.readersWaiting = []
                }
                return (state.events, state.identifications, state.endings, state.readersWaiting)
            }
            for resume in readers { resume() }
            // What waited for this commit; set per commit, not per event, to cost the readers nothing.
            health.backlog(batch.count)
            do {
                let started = ContinuousClock.now
                try await database.write(events: batch, identifications: identifications, endings: batchEndings)
                health.committed(
                    events: batch.count,
                    in: ContinuousClock.now - started,
                    backlog: state.withLock { $0.events.count }
                )
                onCommit?()
            } catch {
                state.withLock { $0.failed = true }
                throw error
            }
        }
    }
}
