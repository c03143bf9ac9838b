import EventStore
import Foundation
import GRDB
import Testing

struct EventDatabaseTests {
    @Test func createsAPrivateWALDatabaseWithEveryMigration() async throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/events.sqlite"

        let database = try EventDatabase.openForWriting(path: path)

        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let journal = try await database.writer.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        #expect(journal == "wal")
        let migrations = try await database.writer.read {
            try String.fetchAll($0, sql: "SELECT identifier FROM grdb_migrations")
        }
        #expect(
            migrations == [
                "v1-events", "v2-effective-time-indexes", "v3-rollup", "v4-event-without-session-seq-index",
                "v5-event-time-name-index", "v6-rollup-rebuilt", "v7-imports", "v8-incidents", "v9-shipping",
                "v10-fleet-replica", "v11-import-keys-outlive-prune",
                "v12-session-last-event",
            ]
        )
    }

    @Test(arguments: [
        ("COALESCE(time, received) >= ? AND COALESCE(time, received) < ?", [0, 1]),
        // What reports send for a window without an end (see `ReportData.appendFilters`).
        ("likelihood(COALESCE(time, received) >= ?, 0.01)", [0]),
    ])
    func timeWindowsOnTheEffectiveTimeUseTheTimeIndex(window: String, bounds: [Int]) async throws {
        let database = try EventDatabase.inMemory()
        let plan = try await database.writer.read { db in
            try Row.fetchAll(
                db,
                sql:
                    "EXPLAIN QUERY PLAN SELECT * FROM event WHERE name IN ('SHUTDOWN', 'RESET') AND \(window) ORDER BY id",
                arguments: StatementArguments(bounds)
            ).map { $0["detail"] as String }
        }
        #expect(plan.contains { $0.contains("USING INDEX event_at") }, "\(plan)")
    }

    @Test func aSessionsEventsAreFoundThroughTheMachineIndex() async throws {
        let database = try EventDatabase.inMemory()
        let plan = try await database.writer.read { db in
            try Row.fetchAll(
                db,
                sql: "EXPLAIN QUERY PLAN SELECT name FROM event WHERE machineId = ? AND sessionId = ? ORDER BY seq",
                arguments: [1, 1]
            ).map { $0["detail"] as String }
        }
        #expect(plan.contains { $0.contains("USING INDEX event_machine_at") }, "\(plan)")
    }

    @Test func storesEventsWithTheirColumnsAndEndsSessions() async throws {
        // Given a session
        let database = try EventDatabase.inMemory()
        let handle = try await database.beginSession(makeSession(name: "vm1"))
        // When events and the session's end are written together
        let shutdown = NewEvent(
            session: handle,
            seq: 2,
            name: "SHUTDOWN",
            seconds: 10,
            microseconds: 5,
            received: 11_000_000,
            guest: true,
            reason: "guest-shutdown",
            data: #"{"guest": true, "reason": "guest-shutdown"}"#
        )
        let panic = NewEvent(
            session: handle,
            seq: 1,
            name: "GUEST_PANICKED",
            seconds: -1,
            microseconds: -1,
            received: 9_000_000,
            action: "pause",
            panicType: "hyper-v",
            panicArg1: "18446744073709551615"
        )
        try await database.write(
            events: [panic, shutdown],
            endings: [SessionEnd(sessionId: handle.sessionId, endedAt: 12_000_000, reason: "eof")]
        )
        // Then they read back in arrival order, with a NULL time for QEMU's -1/-1
        let events = try await database.allEvents()
        #expect(events.map(\.name) == ["GUEST_PANICKED", "SHUTDOWN"])
        #expect(events[0].time == nil)
        #expect(events[0].panicArg1 == "18446744073709551615")
        #expect(events[1].time == 10_000_005)
        #expect(events[1].guest == true)
        #expect(events[1].data == #"{"guest": true, "reason": "guest-shutdown"}"#)
        let session = try #require(try await database.allSessions().first)
        #expect(session.endedAt == 12_000_000)
        #expect(session.endReason == "eof")
        #expect(try await database.allMachines().first?.lastSeen == 12_000_000, "the session's end")
    }

    @Test func lastSeenFollowsEventsWithinTenSecondsAndIsExactAtTheEnd() async throws {
        let database = try EventDatabase.inMemory()
        let handle = try await database.beginSession(makeSession(name: "vm1"))  // started at 1 s
        func arrival(_ seq: Int64, at received: Int64) -> NewEvent {
            NewEvent(session: handle, seq: seq, name: "STOP", seconds: 1, microseconds: 0, received: received)
        }
        func lastSeen() async throws -> Int64? { try await database.allMachines().first?.lastSeen }
        #expect(try await lastSeen() == 1_000_000)
        try await database.write(events: [arrival(1, at: 2_000_000)])
        #expect(try await lastSeen() == 2_000_000, "the first batch of a machine writes it")
        try await database.write(events: [arrival(2, at: 3_000_000), arrival(3, at: 4_000_000)])
        #expect(try await lastSeen() == 2_000_000, "within 10 s of the value written: not rewritten")
        try await database.write(events: [arrival(4, at: 12_000_000)])
        #expect(try await lastSeen() == 12_000_000)
        try await database.write(
            events: [arrival(5, at: 13_000_000)],
            endings: [SessionEnd(sessionId: handle.sessionId, endedAt: 14_000_000, reason: "eof")]
        )
        #expect(try await lastSeen() == 14_000_000, "the end is the last contact")
        // A second end of the same session changes nothing.
        try await database.write(
            events: [],
            endings: [SessionEnd(sessionId: handle.sessionId, endedAt: 20_000_000, reason: "x")]
        )
        #expect(try await lastSeen() == 14_000_000)
    }

    @Test func abandonedSessionsEndAtTheirLastEventOrTheirStart() async throws {
        let database = try EventDatabase.inMemory()
        let busy = try await database.beginSession(makeSession(name: "vm1"))  // started at 1 s
        let quiet = try await database.beginSession(makeSession(name: "vm2"))
        let closed = try await database.beginSession(makeSession(name: "vm3"))
        try await database.write(
            events: [
                NewEvent(session: busy, seq: 1, name: "STOP", seconds: 1, microseconds: 0, received: 5_000_000),
                NewEvent(session: busy, seq: 2, name: "RESUME", seconds: 2, microseconds: 0, received: 7_000_000),
            ],
            endings: [SessionEnd(sessionId: closed.sessionId, endedAt: 3_000_000, reason: "eof")]
        )
        let ended = try await database.endAbandonedSessions()
        #expect(Set(ended.map(\.sessionId)) == [busy.sessionId, quiet.sessionId])
        let sessions = Dictionary(uniqueKeysWithValues: try await database.allSessions().map { ($0.id, $0) })
        #expect(sessions[busy.sessionId]?.endedAt == 7_000_000, "its last event")
        #expect(sessions[quiet.sessionId]?.endedAt == 1_000_000, "no event: its start")
        #expect(sessions[busy.sessionId]?.endReason == EventDatabase.abandonedSessionReason)
        #expect(sessions[closed.sessionId]?.endReason == "eof", "an ended session stays as it was")
        #expect(try await database.allMachines().first { $0.id == busy.machineId }?.lastSeen == 7_000_000)
        #expect(try await database.endAbandonedSessions().isEmpty)
    }

    /// QEMU's clock went back between runs: the abandoned session's events are stamped before the
    /// earlier session's. It ends at its last arrival, read from the session row (no walk of the VM's
    /// history), even when that event's own timestamp is not its latest.
    @Test func anAbandonedSessionEndsAtItsLastArrivalWhateverTheTimestamps() async throws {
        let database = try EventDatabase.inMemory()
        let first = try await database.beginSession(makeSession(name: "vm1"))
        try await database.write(
            events: [
                NewEvent(session: first, seq: 1, name: "STOP", seconds: 900, microseconds: 0, received: 2_000_000)
            ],
            endings: [SessionEnd(sessionId: first.sessionId, endedAt: 3_000_000, reason: "eof")]
        )
        let second = try await database.beginSession(makeSession(name: "vm1"))
        try await database.write(events: [
            NewEvent(session: second, seq: 1, name: "STOP", seconds: 50, microseconds: 0, received: 8_000_000),
            NewEvent(session: second, seq: 2, name: "RESUME", seconds: 10, microseconds: 0, received: 9_000_000),
        ])
        let ended = try await database.endAbandonedSessions()
        #expect(ended.map(\.sessionId) == [second.sessionId])
        #expect(ended.first?.endedAt == 9_000_000, "the last to arrive, though stamped earliest")
    }

    @Test func aBatchWithARowTheStoreRefusesLeavesNothingBehind() async throws {
        let database = try EventDatabase.inMemory()
        let handle = try await database.beginSession(makeSession(name: "vm1"))
        let event = NewEvent(session: handle, seq: 1, name: "STOP", seconds: 1, microseconds: 0, received: 1)
        try await database.write(events: [event])
        let second = NewEvent(session: handle, seq: 2, name: "RESUME", seconds: 2, microseconds: 0, received: 2)
        // A session that does not exist: the foreign key refuses the row, after `second` went in.
        let orphan = NewEvent(
            session: SessionHandle(sessionId: handle.sessionId + 1, machineId: handle.machineId),
            seq: 1,
            name: "STOP",
            seconds: 3,
            microseconds: 0,
            received: 3
        )
        await #expect(throws: EventStoreError.self) { try await database.write(events: [second, orphan]) }
        #expect(try await database.allEvents().map(\.seq) == [1], "the failed batch left nothing behind")
        // A session that exists, named with another machine's id: refused as well.
        let other = try await database.beginSession(makeSession(name: "vm2"))
        let crossed = NewEvent(
            session: SessionHandle(sessionId: other.sessionId, machineId: handle.machineId),
            seq: 1,
            name: "STOP",
            seconds: 4,
            microseconds: 0,
            received: 4
        )
        let error = await #expect(throws: EventStoreError.self) { try await database.write(events: [crossed]) }
        #expect(error?.code == .writeFailed)
        #expect(try await database.allEvents().map(\.seq) == [1])
        // The batch checks its references itself with SQLite's foreign keys off; they are back on after.
        let enforced = try await database.writer.read { try Bool.fetchOne($0, sql: "PRAGMA foreign_keys") }
        #expect(enforced == true)
        try await database.write(events: [second])
        #expect(try await database.writer.read { try Bool.fetchOne($0, sql: "PRAGMA foreign_keys") } == true)
    }

    @Test func identifiesMachinesByNameThenUUIDThenEndpoint() async throws {
        let database = try EventDatabase.inMemory()
        let first = try await database.beginSession(makeSession(name: "vm1", endpoint: "unix:/a"))
        let again = try await database.beginSession(makeSession(name: "vm1", endpoint: "unix:/b"))
        let unnamed = try await database.beginSession(
            makeSession(name: nil, uuid: "00000000-0000-0000-0000-000000000000", endpoint: "unix:/c")
        )
        #expect(first.machineId == again.machineId)
        #expect(first.sessionId != again.sessionId)
        let machines = try await database.allMachines()
        #expect(machines.map(\.identity) == ["name:vm1", "endpoint:unix:/c"])
        #expect(machines[0].endpoint == "unix:/b")
        #expect(machines[1].uuid == nil, "an all-zero UUID means unset")
        _ = unnamed
    }

    @Test func readersNeverCreateADatabase() throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/none.sqlite"
        let error = #expect(throws: EventStoreError.self) { try EventDatabase.openForReading(path: path) }
        #expect(error?.code == .notFound)
        #expect(error?.message == "no qmplog database at \(path)")
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func refusesADatabaseWrittenByANewerQmplog() throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/events.sqlite"
        let database = try EventDatabase.openForWriting(path: path)
        try database.writer.write { try $0.execute(sql: "INSERT INTO grdb_migrations VALUES ('v99-future')") }
        let error = #expect(throws: EventStoreError.self) { try EventDatabase.openForWriting(path: path) }
        #expect(error?.code == .schemaTooNew)
    }

    @Test func namesTheFileWhenItIsNotADatabase() throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/notes.txt"
        try String(repeating: "not sqlite\n", count: 200).write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: EventStoreError.self) { try EventDatabase.openForWriting(path: path) }
        #expect(error?.description.contains(path) == true)
    }

    @Test func namesTheFileWhenItsDirectoryIsNotWritable() throws {
        let error = #expect(throws: EventStoreError.self) {
            try EventDatabase.openForWriting(path: "/proc/qmplog-test/events.sqlite")
        }
        #expect(error?.description.contains("/proc/qmplog-test/events.sqlite") == true)
    }

    // MARK: - Helpers

    private func makeSession(name: String?, uuid: String? = nil, endpoint: String = "unix:/run/vm.qmp") -> NewSession {
        NewSession(
            machine: MachineIdentity(name: name, uuid: uuid, endpoint: endpoint),
            endpoint: endpoint,
            qemuVersion: "7.2.22",
            qemuPackage: "Debian",
            initialStatus: "running",
            initialRunning: true,
            startedAt: 1_000_000
        )
    }

    private func makeDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "qmplog-store-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
