public import EventStore
import GRDB

/// `qmplog vms`: every VM the database knows, with its last known state.
public enum MachineListReport {
    /// - Parameter now: the present, for the result's window.
    public static func run(on database: EventDatabase, now: Int64) async throws -> ReportResult {
        let rows = try await database.writer.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT m.id, m.name, m.uuid, m.endpoint, m.firstSeen, m.lastSeen,
                           (SELECT COUNT(*) FROM event e WHERE e.machineId = m.id) AS events,
                           (SELECT s.initialStatus FROM session s WHERE s.machineId = m.id
                            ORDER BY s.startedAt DESC, s.id DESC LIMIT 1) AS status,
                           (SELECT s.endedAt IS NULL FROM session s WHERE s.machineId = m.id
                            ORDER BY s.startedAt DESC, s.id DESC LIMIT 1) AS attached,
                           (SELECT s.id FROM session s WHERE s.machineId = m.id
                            ORDER BY s.startedAt DESC, s.id DESC LIMIT 1) AS lastSession
                    FROM machine m ORDER BY COALESCE(m.name, m.uuid, m.endpoint)
                    """
            ).map { row -> [ReportValue] in
                let lastSession: Int64? = row["lastSession"]
                var state = StateReport.state(forStatus: row["status"])
                if let lastSession {
                    // The machine's index finds the session's events (they are few next to the table).
                    let names = try String.fetchAll(
                        db,
                        sql: """
                            SELECT name FROM event WHERE machineId = ? AND sessionId = ?
                              AND name IN ('STOP','RESUME','SUSPEND','SUSPEND_DISK','WAKEUP','SHUTDOWN','RESET') ORDER BY seq
                            """,
                        arguments: [row["id"], lastSession]
                    )
                    for name in names { state = StateReport.state(after: name, from: state) }
                }
                let attached: Bool = row["attached"] ?? false
                return [
                    .optional(row["name"]), .optional(row["uuid"]), .text(row["endpoint"]),
                    .time(row["firstSeen"]), .time(row["lastSeen"]),
                    .text(attached ? state.rawValue : "\(state.rawValue) (last seen)"),
                    .integer(row["events"]),
                ]
            }
        }
        return ReportResult(
            report: "vms",
            query: ReportQuery(now: now),
            summary: [("vms", .count(rows.count))],
            tables: [
                ReportTable(
                    // Not `vms`: every report's JSON has that key for the --vm filters.
                    name: "known_vms",
                    title: "Known VMs",
                    columns: ["vm", "uuid", "socket", "first_seen", "last_seen", "state", "events"],
                    rows: rows
                )
            ],
            caveats: ["state: as of the last event qmplog saw; '(last seen)' when no recorder is attached now."]
        )
    }
}
