public import EventStore
import Foundation

/// A host's database written directly: VMs with one session each and events a second apart.
public struct SyntheticHost: Sendable {
    public let name: String
    public let directory: TemporaryDirectory
    public let database: EventDatabase
    public let handles: [SessionHandle]
    /// Added to every time written (microseconds): 0 puts the history just after the epoch.
    package let start: Int64

    /// Events whose text PostgreSQL's COPY and jsonb have to be careful with.
    public static let trickyEvents: [(reason: String, data: String)] = [
        ("tab\there\\", #"{"text":"plain"}"#),
        ("line\nbreak", #"{"text":"back\\slash"}"#),
        ("nul\u{0}inside", #"{"text":"a\u0000b"}"#),
        ("carriage\rreturn", #"{"text":"\\u0000"}"#),
    ]

    package init(name: String, machines: Int, eventsPerMachine: Int, tricky: Bool = false, start: Int64 = 0)
        async throws
    {
        self.name = name
        self.start = start
        directory = try TemporaryDirectory(prefix: "ship-\(name)")
        database = try EventDatabase.openForWriting(path: directory.file("events.sqlite"))
        var handles: [SessionHandle] = []
        for index in 0..<machines {
            let identity = MachineIdentity(name: "vm-\(index)", uuid: nil, endpoint: "unix:/run/vm-\(index).qmp")
            handles.append(try await database.beginSession(Self.session(identity, at: start + 1_000_000)))
        }
        self.handles = handles
        try await addEvents(eventsPerMachine)
        if tricky, let handle = handles.first {
            let events = Self.trickyEvents.enumerated().map { index, text in
                var event = Self.event("TRICKY", handle, seq: Int64(index + 1), at: 9_000_000_000)
                event.reason = text.reason
                event.data = text.data
                return event
            }
            try await database.write(events: events)
        }
    }

    /// Writes `count` more events per VM, in chunks; ends the sessions after them if asked.
    public func addEvents(_ count: Int, endingSessions: Bool = false) async throws {
        let names = ["STOP", "RESUME", "RESET", "SHUTDOWN"]
        let existing = try await database.allEvents().count
        var batch: [NewEvent] = []
        for round in 0..<count {
            for handle in handles {
                let at = start + Int64(existing + round) * 1_000_000 + 2_000_000
                batch.append(Self.event(names[round % names.count], handle, seq: Int64(existing + round + 100), at: at))
            }
            if batch.count >= 5_000 {
                try await database.write(events: batch)
                batch = []
            }
        }
        let endings =
            endingSessions
            ? handles.map { SessionEnd(sessionId: $0.sessionId, endedAt: 10_000_000_000, reason: "eof") } : []
        try await database.write(events: batch, endings: endings)
    }

    public func remove() { directory.remove() }

    public static func session(_ identity: MachineIdentity, at time: Int64) -> NewSession {
        NewSession(
            machine: identity,
            endpoint: identity.endpoint,
            qemuVersion: "9.2.0",
            qemuPackage: "test",
            initialStatus: "running",
            initialRunning: true,
            startedAt: time
        )
    }

    public static func event(_ name: String, _ handle: SessionHandle, seq: Int64, at time: Int64) -> NewEvent {
        NewEvent(
            session: handle,
            seq: seq,
            name: name,
            seconds: time / 1_000_000,
            microseconds: time % 1_000_000,
            received: time,
            guest: name == "SHUTDOWN" ? false : nil,
            reason: name == "SHUTDOWN" ? "host-qmp-quit" : nil
        )
    }
}
