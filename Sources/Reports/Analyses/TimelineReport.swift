public import EventStore

/// `qmplog timeline`: one VM's story in time order — sessions opened and closed, the gaps nobody
/// watched, every event on a line, and the stops and pauses of `report stops` and `report pauses`,
/// each with the time since the entry before.
public enum TimelineReport {
    /// Kinds of entries, in the order they sort at one instant.
    enum Kind: String {
        case gap, session, event, stop, pause
    }

    struct Entry {
        var time: Int64
        var kind: Kind
        var text: String
        /// Arrival order at one instant.
        var order: Int
    }

    /// - Throws: ``ReportsError`` unless `query` names exactly one VM.
    public static func run(on database: EventDatabase, query: ReportQuery) async throws -> ReportResult {
        guard query.machines.count == 1 else {
            throw ReportsError(code: .invalidQuery, message: "a timeline is one VM's: name it with --vm NAME")
        }
        let data = try await ReportData(database: database, query: query)
        var entries: [Entry] = []
        func add(_ time: Int64, _ kind: Kind, _ text: String) {
            entries.append(Entry(time: time, kind: kind, text: text, order: entries.count))
        }
        var previousEnd: Int64?
        for session in try await data.sessions() {
            if let previousEnd, session.startedAt > previousEnd {
                add(previousEnd, .gap, "not watched for \(duration(session.startedAt - previousEnd))")
            }
            let status = session.initialStatus.map { ", \($0)" } ?? ""
            let version = session.qemuVersion.isEmpty ? "" : ", QEMU \(session.qemuVersion)"
            add(session.startedAt, .session, "session \(session.id) opened (\(session.endpoint)\(version)\(status))")
            if let end = session.endedAt {
                add(end, .session, "session \(session.id) closed (\(session.endReason ?? "?"))")
                previousEnd = max(previousEnd ?? end, end)
            } else {
                previousEnd = nil
            }
        }
        var events = 0
        try data.database.forEachStoredEvent(named: [], in: data.selection(), start: { _ in }) { row in
            events += 1
            add(row.time ?? row.received, .event, line(for: row))
        }
        let (stops, loops) = try await StopReport.analyze(data)
        for stop in stops { add(stop.time, .stop, "stop: \(stop.stopClass.rawValue) — \(stop.evidence)") }
        for loop in loops {
            add(
                loop.from,
                .stop,
                "crash loop: \(loop.count) crashes until \(Timestamp.rfc3339(microseconds: loop.until))"
            )
        }
        let pauses = try await PauseReport.analyze(data)
        for pause in pauses {
            let ongoing = pause.ongoing ? ", still paused" : ""
            add(
                pause.start,
                .pause,
                "paused \(duration(pause.end - pause.start)) (\(pause.cause.rawValue)\(ongoing)) — \(pause.evidence)"
            )
        }
        entries.sort { ($0.time, $0.order) < ($1.time, $1.order) }
        var previous: Int64?
        let rows = entries.map { entry -> [ReportValue] in
            defer { previous = entry.time }
            return [
                .time(entry.time), previous.map { .duration(entry.time - $0) } ?? .null, .text(entry.kind.rawValue),
                .text(entry.text),
            ]
        }
        return ReportResult(
            report: "timeline",
            query: query,
            summary: [
                ("events", .count(events)), ("stops", .count(stops.count)), ("pauses", .count(pauses.count)),
                ("crash_loops", .count(loops.count)),
                ("gaps", .count(entries.filter { $0.kind == .gap }.count)),
            ],
            tables: [
                ReportTable(
                    name: "timeline",
                    title: "Timeline",
                    columns: ["time", "after", "kind", "what"],
                    rows: rows
                )
            ],
            caveats: [
                "Times are QEMU's (the receive time where it sent none); sessions are qmplog's clock. "
                    + "Nothing is known of a gap: QEMU does not replay events."
            ]
        )
    }

    /// An event in one readable line: its name and the fields reports use, else its data.
    static func line(for row: borrowing StoredEventRow) -> String {
        func text(_ buffer: UnsafeBufferPointer<UInt8>?) -> String? {
            buffer.map { String(decoding: $0, as: UTF8.self) }
        }
        var parts = [text(row.name) ?? "?"]
        if let guest = row.guest { parts.append("guest=\(guest)") }
        if let reason = text(row.reason) { parts.append("reason=\(reason)") }
        if let action = text(row.action) { parts.append("action=\(action)") }
        if let type = text(row.panicType) { parts.append("type=\(type)") }
        if let panicReason = text(row.panicReason) { parts.append("panic-reason=\(panicReason)") }
        if !covered.contains(parts[0]), let data = text(row.data) {
            parts.append(data.count > 160 ? String(data.prefix(159)) + "…" : data)
        }
        return parts.joined(separator: " ")
    }

    /// Events whose `data` the fields above tell in full (or nearly).
    static let covered: Set<String> = [
        "SHUTDOWN", "RESET", "STOP", "RESUME", "POWERDOWN", "WATCHDOG", "GUEST_PANICKED", "LIBVIRT_SHUTDOWN",
    ]

    static func duration(_ microseconds: Int64) -> String {
        microseconds < 60_000_000
            ? "\(Double(microseconds / 1000) / 1000) s" : TextReportRenderer.formatDuration(microseconds)
    }
}
