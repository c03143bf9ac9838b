import Foundation
import GRDB
import Testing

@testable import EventStore

/// A recording database copies its WAL back on a connection of its own, not the writer's.
struct WALCheckpointerTests {
    @Test func theWALIsCheckpointedBesideTheWriterAndRestartsSmall() async throws {
        let path = NSTemporaryDirectory() + "qmplog-checkpoint-\(UUID().uuidString).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let database = try EventDatabase.openForWriting(path: path)
        let checkpointer = try #require(database.checkpointer)
        let handle = try await database.beginSession(
            NewSession(
                machine: MachineIdentity(name: "vm1", uuid: nil, endpoint: "unix:/run/vm1.qmp"),
                endpoint: "unix:/run/vm1.qmp",
                qemuVersion: "7.2.22",
                qemuPackage: "",
                initialStatus: "running",
                initialRunning: true,
                startedAt: 1
            )
        )
        let data = #"{"device": "\#(String(repeating: "d", count: 1_000))"}"#
        var seq: Int64 = 0
        func commitBatch() async throws {
            let events = (0..<1_000).map { _ in
                seq += 1
                return NewEvent(
                    session: handle,
                    seq: seq,
                    name: "BLOCK_IO_ERROR",
                    seconds: seq,
                    microseconds: 0,
                    received: seq,
                    data: data
                )
            }
            try await database.write(events: events)
        }
        // Given a report that holds a read transaction open, so that no checkpoint can copy pages
        // written after it began and the WAL has to grow
        let pool = try #require(database.writer as? DatabasePool)
        var report: DatabaseSnapshot? = try pool.makeSnapshot()
        _ = try await report?.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM event") }
        // When about 72 MB of events are committed in transactions of 1,000, past the 64 MB of WAL
        // that asks for a background checkpoint
        for _ in 0..<72 { try await commitBatch() }
        #expect(try fileSize(path + "-wal") > 64 << 20)
        // and the report ends
        report = nil
        try await commitBatch()
        // Then a checkpoint runs to the end on the checkpointer's connection and the main file
        // receives the pages, while the writer only committed
        let deadline = ContinuousClock.now + .seconds(30)
        while try fileSize(path) < 64 << 20, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try fileSize(path) >= 64 << 20)
        #expect(checkpointer.completedCheckpoints > 0)
        // And once it caught up, the next commit restarts the WAL, cut back to 64 MB
        while try fileSize(path + "-wal") > 64 << 20, ContinuousClock.now < deadline {
            try await commitBatch()
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try fileSize(path + "-wal") <= 64 << 20)
        // And nothing was lost
        let count = try await database.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM event") }
        #expect(count == Int(seq))
    }

    private func fileSize(_ path: String) throws -> Int {
        try (FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
    }
}
