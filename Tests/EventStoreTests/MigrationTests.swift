import Foundation
import GRDB
import Testing

@testable import EventStore

/// Databases written by earlier versions open with every row intact.
struct MigrationTests {
    @Test func v4KeepsEveryEventAndDropsTheSessionSequenceIndex() async throws {
        let path = NSTemporaryDirectory() + "qmplog-migration-\(UUID().uuidString).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        // Given a database as v3 left it, with two sessions' events
        do {
            let queue = try DatabaseQueue(path: path)
            try EventDatabase.migrator.migrate(queue, upTo: "v3-rollup")
            try await queue.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO machine VALUES (1, 'name:vm1', 'vm1', NULL, 'unix:/a', 1, 2);
                        INSERT INTO session (id, machineId, endpoint, qemuVersion, qemuPackage, startedAt)
                            VALUES (1, 1, 'unix:/a', '7.2.22', '', 1), (2, 1, 'unix:/a', '7.2.22', '', 5);
                        INSERT INTO event VALUES
                            (7, 1, 1, 1, 'SHUTDOWN', 1, 2, 1000002, 1000003, 1, 'guest-shutdown', NULL, NULL, NULL,
                             NULL, '{"guest": true, "reason": "guest-shutdown"}'),
                            (9, 2, 1, 1, 'GUEST_PANICKED', -1, -1, NULL, 6000000, NULL, NULL, 'pause', 's390',
                             'disabled-wait', NULL, '{"action": "pause"}');
                        """
                )
            }
        }
        // When the current version opens it
        let database = try EventDatabase.openForWriting(path: path)
        // Then the rows are unchanged, ids included, and only the two time indexes remain
        let events = try await database.allEvents()
        #expect(events.map(\.id) == [7, 9])
        #expect(events.map(\.name) == ["SHUTDOWN", "GUEST_PANICKED"])
        #expect(events[0].reason == "guest-shutdown" && events[0].guest == true && events[0].time == 1_000_002)
        #expect(events[1].panicReason == "disabled-wait" && events[1].time == nil && events[1].received == 6_000_000)
        #expect(events[1].data == #"{"action": "pause"}"#)
        let indexes = try await database.writer.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM pragma_index_list('event') ORDER BY name")
        }
        #expect(indexes == ["event_at", "event_machine_at"])
        let integrity = try await database.writer.read { try String.fetchAll($0, sql: "PRAGMA foreign_key_check") }
        #expect(integrity.isEmpty)
    }
}
