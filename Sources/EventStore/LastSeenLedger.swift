import Synchronization

/// What this process last wrote as each machine's `lastSeen`, so that a batch of events rewrites a
/// machine's row only once the VM's latest arrival has moved on by ``resolution``.
///
/// With a thousand VMs each sending a few events a second, rewriting the row of every machine in
/// every batch took about 150 `UPDATE`s per commit, 3,000 a second: 2 points of a core, an eighth of
/// the recorder's CPU (BENCHMARKS.md, section 2). A session's end writes `lastSeen` exactly, so the
/// value is late by at most ``resolution`` only while a VM is attached.
final class LastSeenLedger: Sendable {
    /// 10 s, in microseconds.
    static let resolution: Int64 = 10_000_000

    private let written = Mutex<[Int64: Int64]>([:])

    /// The machines of `latest` (machine id → latest arrival) whose `lastSeen` is due a rewrite,
    /// recorded as written. A transaction that then fails stops the recorder, so the ledger running
    /// ahead of the database costs at most one more ``resolution`` of lateness.
    func due(_ latest: [Int64: Int64]) -> [(machineId: Int64, received: Int64)] {
        written.withLock { written in
            latest.compactMap { machineId, received in
                if let last = written[machineId], received < last + Self.resolution { return nil }
                written[machineId] = received
                return (machineId, received)
            }
        }
    }
}
