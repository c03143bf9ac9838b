import EventStore

/// The one writer: collects events from every VM and commits them in group transactions.
///
/// While one transaction commits, new events pile up and go into the next one; a small batch also
/// waits 50 ms for more. So an event is committed within about 50 ms plus one transaction's time of
/// arriving, many quiet VMs share a transaction, and a flood is written in transactions of thousands. When ``maximumPending`` events wait, VM readers wait
/// too, which stops reading their sockets (TCP and Unix socket backpressure reach QEMU).
actor EventWriter {
    private let database: EventDatabase
    private let maximumPending: Int
    private var events: [NewEvent] = []
    private var endings: [SessionEnd] = []
    private var finished = false
    private var failed = false
    private var writerWaiting: CheckedContinuation<Void, Never>?
    private var producersWaiting: [CheckedContinuation<Void, Never>] = []

    /// A batch this large is committed at once.
    static let fullBatch = 1_000
    /// How long a small batch waits for company before it is committed.
    static let gatherDelay = Duration.milliseconds(50)

    init(database: EventDatabase, maximumPending: Int) {
        self.database = database
        self.maximumPending = max(1, maximumPending)
    }

    /// Queues events for the next commit; waits while too many are pending.
    func append(_ batch: [NewEvent]) async {
        guard !failed else { return }
        events.append(contentsOf: batch)
        wakeWriter()
        while events.count >= maximumPending, !failed {
            await withCheckedContinuation { producersWaiting.append($0) }
        }
    }

    /// Queues a session end; it is committed after every event queued before it.
    func end(_ ending: SessionEnd) {
        guard !failed else { return }
        endings.append(ending)
        wakeWriter()
    }

    /// No more input: ``run()`` returns once everything queued is committed.
    func finish() {
        finished = true
        wakeWriter()
    }

    /// Commits until ``finish()`` and an empty queue.
    ///
    /// - Throws: the store's error when a commit fails; nothing later is accepted, so the caller stops.
    func run() async throws {
        while true {
            if events.isEmpty, endings.isEmpty {
                if finished { return }
                await withCheckedContinuation { writerWaiting = $0 }
                continue
            }
            if events.count < Self.fullBatch, !finished {
                // A trickle from many VMs: gather what arrives in the next few milliseconds into the
                // same transaction (one WAL append instead of dozens), still well inside the 100 ms
                // durability window. A flood fills the batch and never waits here.
                try? await Task.sleep(for: Self.gatherDelay)
            }
            let batch = events
            let batchEndings = endings
            events = []
            endings = []
            resumeProducers()
            do {
                try await database.write(events: batch, endings: batchEndings)
            } catch {
                failed = true
                resumeProducers()
                throw error
            }
        }
    }

    private func wakeWriter() {
        writerWaiting?.resume()
        writerWaiting = nil
    }

    private func resumeProducers() {
        let waiting = producersWaiting
        producersWaiting = []
        for continuation in waiting { continuation.resume() }
    }
}
