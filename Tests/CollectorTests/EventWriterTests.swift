import EventStore
import QMPTestSupport
import Synchronization
import Testing

@testable import Collector

/// The writer's queue stops VM readers at its event count or at its data bytes, and lets them go
/// once what waits is committed.
struct EventWriterTests {
    @Test(arguments: [
        // Many small events fill the queue by count...
        (maximumPending: 3, maximumPendingBytes: 1 << 20, dataBytes: 20),
        // ...a few large ones by their data.
        (maximumPending: 1_000, maximumPendingBytes: 1_000, dataBytes: 600),
    ])
    func readersWaitWhenTheQueueIsFullAndResumeOnceItIsCommitted(
        maximumPending: Int,
        maximumPendingBytes: Int,
        dataBytes: Int
    ) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = try EventDatabase.openForWriting(path: directory.file("events.sqlite"))
        let session = try await database.beginSession(
            NewSession(
                machine: MachineIdentity(name: "vm1", uuid: nil, endpoint: "unix:/run/vm1.qmp"),
                endpoint: "unix:/run/vm1.qmp",
                qemuVersion: "7.2.22",
                qemuPackage: "Debian",
                initialStatus: "running",
                initialRunning: true,
                startedAt: 1_000_000
            )
        )
        let data = "{\"reason\": \"\(String(repeating: "x", count: dataBytes - 14))\"}"
        #expect(data.utf8.count == dataBytes)
        var seq: Int64 = 0
        func events(_ count: Int) -> [NewEvent] {
            (0..<count).map { _ in
                seq += 1
                return NewEvent(
                    session: session,
                    seq: seq,
                    name: "BLOCK_IO_ERROR",
                    seconds: 2,
                    microseconds: 0,
                    received: 2_000_000,
                    data: data
                )
            }
        }
        let writer = EventWriter(
            database: database,
            maximumPending: maximumPending,
            maximumPendingBytes: maximumPendingBytes
        )
        let resumed = Mutex(0)
        let resume: @Sendable () -> Void = { resumed.withLock { $0 += 1 } }

        // Given a queue with room for one more event
        let roomLeft = writer.enqueue(events(1), resume: resume)
        #expect(roomLeft)
        // When the events that fill it arrive, their reader is told to wait
        let readOn = writer.enqueue(events(2), resume: resume)
        #expect(!readOn)
        #expect(resumed.withLock { $0 } == 0)

        // Then once the writer has taken them, the waiting reader goes on and every event is stored
        writer.finish()
        try await writer.run()
        #expect(resumed.withLock { $0 } == 1)
        #expect(try await database.allEvents().count == 3)
    }
}
