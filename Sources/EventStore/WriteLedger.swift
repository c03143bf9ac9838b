import Synchronization

/// What this process's writes have already established, so that event batches need not do it again:
/// which sessions exist (with their machines), and what it last wrote as each machine's `lastSeen`.
///
/// With a thousand VMs each sending a few events a second, a commit holds events of ~150 VMs: a
/// lookup of each session and a rewrite of each machine row per commit took 3,000 statements a
/// second, 2 points of a core (BENCHMARKS.md, section 2).
final class WriteLedger: Sendable {
    /// A machine's `lastSeen` is rewritten by event batches once its latest arrival has moved on by
    /// this much (10 s, in microseconds); a session's end writes it exactly.
    static let lastSeenResolution: Int64 = 10_000_000

    private struct State {
        /// Sessions found to exist with their machine: rows are never deleted, and a session moves
        /// only when identified (``moved(_:to:)``), so it stays verified until its end is written.
        var sessions: Set<SessionHandle> = []
        var lastSeen: [Int64: Int64] = [:]
    }

    private let state = Mutex(State())

    /// The sessions of `sessions` not yet found to exist.
    func unverified(_ sessions: some Sequence<SessionHandle>) -> [SessionHandle] {
        state.withLock { state in sessions.filter { !state.sessions.contains($0) } }
    }

    func verified(_ sessions: [SessionHandle]) {
        state.withLock { $0.sessions.formUnion(sessions) }
    }

    /// A session identified after it was opened now belongs to another machine.
    func moved(_ session: SessionHandle, to identified: SessionHandle) {
        state.withLock { state in
            state.sessions.remove(session)
            state.sessions.insert(identified)
        }
    }

    /// Forgets ended sessions (their events are over).
    func ended(_ sessionIds: some Sequence<Int64>) {
        let ids = Set(sessionIds)
        state.withLock { $0.sessions = $0.sessions.filter { !ids.contains($0.sessionId) } }
    }

    /// The machines of `latest` (machine id → latest arrival) whose `lastSeen` is due a rewrite,
    /// recorded as written. A transaction that then fails stops the recorder, so the ledger running
    /// ahead of the database costs at most one more ``lastSeenResolution`` of lateness.
    func lastSeenDue(_ latest: [Int64: Int64]) -> [(machineId: Int64, received: Int64)] {
        state.withLock { state in
            latest.compactMap { machineId, received in
                if let last = state.lastSeen[machineId], received < last + Self.lastSeenResolution { return nil }
                state.lastSeen[machineId] = received
                return (machineId, received)
            }
        }
    }
}
