import EventStore
import Testing

/// The incidents hooks are told: stored once, crash loops extended, runs pending until marked.
struct IncidentStoreTests {
    @Test func anIncidentIsStoredOnceWithItsEventAndItsHooksPendingUntilFinished() async throws {
        let database = try EventDatabase.inMemory()
        let handle = try await database.beginSession(
            NewSession(
                machine: MachineIdentity(name: "web1", uuid: nil, endpoint: "unix:/run/web1.qmp"),
                endpoint: "unix:/run/web1.qmp",
                qemuVersion: "7.2.22",
                qemuPackage: "",
                initialStatus: "running",
                initialRunning: true,
                startedAt: 1_000_000
            )
        )
        try await database.write(events: [
            NewEvent(
                session: handle,
                seq: 1,
                name: "GUEST_PANICKED",
                seconds: 5,
                microseconds: 7,
                received: 5_100_000,
                action: "pause",
                data: #"{"action": "pause"}"#
            )
        ])
        let panic = NewIncident(
            machineId: handle.machineId,
            kind: "panic",
            incidentClass: "panic",
            time: 5_000_007,
            evidence: "GUEST_PANICKED action=pause",
            eventNames: ["GUEST_PANICKED"]
        )
        let killed = NewIncident(
            machineId: handle.machineId,
            kind: "stop",
            incidentClass: "killed",
            time: 9_000_000,
            evidence: "no SHUTDOWN"
        )
        let hooks: @Sendable (NewIncident) -> [String] = { $0.kind == "panic" ? ["a", "b"] : [] }

        // When the same scan result is stored twice
        let first = try await database.storeIncidents(
            [panic, killed],
            hooks: hooks,
            crashLoopWindow: 600_000_000,
            detectedAt: 10_000_000,
            scannedUntil: 8_000_000
        )
        let second = try await database.storeIncidents(
            [panic, killed],
            hooks: hooks,
            crashLoopWindow: 600_000_000,
            detectedAt: 11_000_000,
            scannedUntil: 9_000_000
        )

        // Then only the wanted incident is stored, once, with its event and a run per hook
        #expect(first.map(\.hook) == ["a", "b"])
        #expect(second.isEmpty)
        #expect(try await database.incidentScanCursor() == 9_000_000)
        let incident = try #require(first.first?.incident)
        #expect(incident.vm == "web1")
        #expect(
            incident.event
                == #"{"event": "GUEST_PANICKED", "data": {"action": "pause"}, "timestamp": {"seconds": 5, "microseconds": 7}}"#
        )
        // And a run stays pending until it is marked, for the hooks still configured
        try await database.finishHookRun(incidentId: incident.id, hook: "a", at: 12_000_000, outcome: "exit 0")
        #expect(try await database.pendingHookRuns(for: ["a", "b"]).map(\.hook) == ["b"])
        #expect(try await database.pendingHookRuns(for: ["a"]).isEmpty)
        let history = try await database.incidentHistory()
        #expect(history.count == 1)
        #expect(history.first?.runs.map(\.outcome) == ["exit 0", nil])
    }

    @Test func aCrashLoopSeenAgainByALaterScanIsExtendedNotStoredAgain() async throws {
        let database = try EventDatabase.inMemory()
        let machineId = try await database.machineId(
            for: MachineIdentity(name: "loopy", uuid: nil, endpoint: "unix:/run/loopy.qmp"),
            seenAt: 0
        )
        let minute: Int64 = 60_000_000
        func loop(from: Int64, until: Int64, count: Int) -> NewIncident {
            NewIncident(
                machineId: machineId,
                kind: "crashloop",
                incidentClass: "crashloop",
                time: from,
                lastTime: until,
                count: count,
                evidence: "loop"
            )
        }
        func store(_ incident: NewIncident) async throws -> Int {
            try await database.storeIncidents(
                [incident],
                hooks: { _ in ["page"] },
                crashLoopWindow: 10 * minute,
                detectedAt: incident.lastTime,
                scannedUntil: incident.lastTime
            ).count
        }
        // A loop from minute 0 to 4; a later scan, reading from minute 3, sees it from 3 to 9;
        // a loop that starts more than a window after the last crash is a new one.
        #expect(try await store(loop(from: 0, until: 4 * minute, count: 3)) == 1)
        #expect(try await store(loop(from: 3 * minute, until: 9 * minute, count: 4)) == 0)
        #expect(try await store(loop(from: 20 * minute, until: 22 * minute, count: 3)) == 1)
        let loops = try await database.incidentHistory().map(\.incident)
        #expect(loops.map(\.time) == [0, 20 * minute])
        #expect(loops.map(\.lastTime) == [9 * minute, 22 * minute])
        #expect(loops.map(\.count) == [4, 3])
    }
}
