import Collector
import EventStore
import Foundation
import QMP
import QMPTestSupport
import Reports
import Testing

/// Builds report databases from QMP event lines: real QEMU transcripts from fixtures/, or lines
/// written in a test for what real QEMU cannot produce here.
///
/// Times are deterministic: a session starts 1 s before its first event and ends 1 s after its last;
/// `received` equals QEMU's timestamp (or the previous time when QEMU sent -1/-1).
struct FixtureDatabase {
    /// One attach to a VM: its event lines, shifted by `offset` microseconds.
    struct SessionSpec {
        var lines: [String]
        var offset: Int64 = 0
        var initialStatus = "prelaunch"
        var qemuVersion = "7.2.22"
        var open = false
        /// How far the recorder's clock (the session's times, `received`) is ahead of QEMU's.
        var recorderAhead: Int64 = 0
    }

    let directory: TemporaryDirectory
    let database: EventDatabase

    /// Writes `vms` (name → sessions, in order) into a new database file.
    init(_ vms: [(name: String, sessions: [SessionSpec])]) async throws {
        directory = try TemporaryDirectory(prefix: "reports")
        database = try EventDatabase.openForWriting(path: directory.file("events.sqlite"))
        for (name, sessions) in vms {
            for spec in sessions {
                let events = try spec.lines.map { line -> QMPEvent in
                    guard case .event(var event) = try QMPMessage(frame: Array(line.utf8)) else {
                        throw QEMUTestError("not an event: \(line)")
                    }
                    if event.seconds >= 0 { event.seconds += spec.offset / 1_000_000 }
                    return event
                }
                let times = events.compactMap { $0.seconds >= 0 ? $0.seconds * 1_000_000 + $0.microseconds : nil }
                let start = (times.min() ?? spec.offset) - 1_000_000 + spec.recorderAhead
                let handle = try await database.beginSession(
                    NewSession(
                        machine: MachineIdentity(name: name, uuid: nil, endpoint: "unix:/run/\(name).qmp"),
                        endpoint: "unix:/run/\(name).qmp",
                        qemuVersion: spec.qemuVersion,
                        qemuPackage: "fixture",
                        initialStatus: spec.initialStatus,
                        initialRunning: spec.initialStatus == "running",
                        startedAt: start
                    )
                )
                var received = start
                let rows = events.enumerated().map { index, event -> NewEvent in
                    if event.seconds >= 0 {
                        received = event.seconds * 1_000_000 + event.microseconds + spec.recorderAhead
                    }
                    return NewEvent(event, session: handle, seq: Int64(index + 1), received: received)
                }
                let end = (times.max().map { $0 + spec.recorderAhead } ?? start) + 1_000_000
                try await database.write(
                    events: rows,
                    endings: spec.open ? [] : [SessionEnd(sessionId: handle.sessionId, endedAt: end, reason: "eof")]
                )
            }
        }
    }

    func run(_ kind: ReportKind, _ query: ReportQuery = FixtureDatabase.query()) async throws -> ReportResult {
        try await kind.run(on: EventDatabase.openForReading(path: directory.file("events.sqlite")), query: query)
    }

    func remove() { directory.remove() }

    /// A fixed "now", three days after the fixtures were captured.
    static let now: Int64 = 1_796_032_000_000_000

    static func query(
        since: Int64? = nil,
        interval: ReportInterval? = nil,
        byMachine: Bool = false,
        machines: [String] = []
    ) -> ReportQuery {
        ReportQuery(since: since, until: now, machines: machines, interval: interval, byMachine: byMachine, now: now)
    }

    /// An event line at `seconds` (plus microseconds) with optional data.
    static func event(_ name: String, at seconds: Int64, _ micro: Int64 = 0, data: String? = nil) -> String {
        FakeQMPBehavior.event(name, data: data, seconds: seconds, micro: micro)
    }

    /// The event lines of a real QEMU transcript.
    static func transcript(_ name: String) throws -> [String] {
        try Transcript(named: name).eventLines
    }
}

extension ReportResult {
    /// The summary value for `key`.
    func value(_ key: String) -> ReportValue? { summary.first { $0.key == key }?.value }

    /// The table named `name`.
    func table(_ name: String) -> ReportTable? { tables.first { $0.name == name } }
}
