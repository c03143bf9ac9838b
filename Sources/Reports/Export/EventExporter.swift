public import EventStore
import GRDB

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Streams stored events as CSV, NDJSON or a JSON array, in constant memory.
///
/// One row per event, in arrival order, with these fields: `id, vm, time, seconds, microseconds,
/// received, event, guest, reason, action, panic_type, panic_reason, data`. `time` is QEMU's
/// timestamp in RFC 3339 UTC with microseconds (empty/null when QEMU sent -1/-1), `received` is
/// qmplog's; `data` is the event's JSON data, compacted.
public enum EventExporter {
    public enum Format: String, Sendable, CaseIterable {
        case csv, ndjson, json
    }

    public static let columns = [
        "id", "vm", "time", "seconds", "microseconds", "received", "event", "guest", "reason", "action",
        "panic_type", "panic_reason", "data",
    ]

    /// Writes the matching events to `fileDescriptor`.
    ///
    /// - Parameter events: event names to include; empty for all.
    /// - Returns: the number of events written.
    /// - Throws: ``ReportsError`` for an unknown VM; an error naming the output when a write fails.
    @discardableResult
    public static func export(
        from database: EventDatabase,
        query: ReportQuery,
        events: [String] = [],
        format: Format,
        to fileDescriptor: Int32
    ) async throws -> Int {
        let data = try await ReportData(database: database, query: query)
        var sql = """
            SELECT e.id, COALESCE(m.name, m.uuid, m.endpoint), e.time, e.seconds, e.microseconds, e.received,
                   e.name, e.guest, e.reason, e.action, e.panicType, e.panicReason, e.data
            FROM event e JOIN machine m ON m.id = e.machineId WHERE 1
            """
        var arguments = StatementArguments()
        if !events.isEmpty {
            sql += " AND e.name IN (\(Array(repeating: "?", count: events.count).joined(separator: ",")))"
            arguments += StatementArguments(events)
        }
        data.appendFilters(
            to: &sql,
            arguments: &arguments,
            timeExpression: "COALESCE(e.time, e.received)",
            machineColumn: "e.machineId"
        )
        sql += " ORDER BY e.id"
        let finalSQL = sql
        let finalArguments = arguments
        return try await database.writer.read { db in
            var output = OutputBuffer(fileDescriptor: fileDescriptor)
            switch format {
            case .csv: output.append(columns.joined(separator: ",") + "\r\n")
            case .json: output.append("[")
            case .ndjson: break
            }
            var count = 0
            let cursor = try Row.fetchCursor(db, sql: finalSQL, arguments: finalArguments)
            while let row = try cursor.next() {
                switch format {
                case .csv: output.append(csvLine(row))
                case .ndjson: output.append(jsonObject(row) + "\n")
                case .json: output.append((count == 0 ? "\n" : ",\n") + jsonObject(row))
                }
                count += 1
                try output.flushIfFull()
            }
            if format == .json { output.append(count == 0 ? "]\n" : "\n]\n") }
            try output.flush()
            return count
        }
    }

    static func csvLine(_ row: Row) -> String {
        let time: Int64? = row[2]
        let guest: Bool? = row[7]
        let data: String? = row[12]
        let fields: [String] = [
            String(row[0] as Int64), CSVText.field(row[1]), time.map { Timestamp.rfc3339(microseconds: $0) } ?? "",
            String(row[3] as Int64), String(row[4] as Int64), Timestamp.rfc3339(microseconds: row[5]),
            CSVText.field(row[6]), guest.map { $0 ? "true" : "false" } ?? "",
            (row[8] as String?).map(CSVText.field) ?? "", (row[9] as String?).map(CSVText.field) ?? "",
            (row[10] as String?).map(CSVText.field) ?? "", (row[11] as String?).map(CSVText.field) ?? "",
            data.map { CSVText.field(JSONText.compact($0)) } ?? "",
        ]
        return fields.joined(separator: ",") + "\r\n"
    }

    static func jsonObject(_ row: Row) -> String {
        func string(_ value: String?) -> String { value.map(JSONText.string) ?? "null" }
        let time: Int64? = row[2]
        let guest: Bool? = row[7]
        let data: String? = row[12]
        let values: [String] = [
            String(row[0] as Int64), JSONText.string(row[1]),
            time.map { JSONText.string(Timestamp.rfc3339(microseconds: $0)) } ?? "null",
            String(row[3] as Int64), String(row[4] as Int64), JSONText.string(Timestamp.rfc3339(microseconds: row[5])),
            JSONText.string(row[6]), guest.map { $0 ? "true" : "false" } ?? "null",
            string(row[8]), string(row[9]), string(row[10]), string(row[11]),
            data.map(JSONText.compact) ?? "null",
        ]
        return "{" + zip(columns, values).map { "\"\($0)\":\($1)" }.joined(separator: ",") + "}"
    }
}

/// Collects output and writes it to a file descriptor in 64 KiB chunks.
struct OutputBuffer {
    let fileDescriptor: Int32
    private var bytes: [UInt8] = []

    init(fileDescriptor: Int32) {
        self.fileDescriptor = fileDescriptor
        bytes.reserveCapacity(1 << 17)
    }

    mutating func append(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    mutating func flushIfFull() throws {
        if bytes.count >= 1 << 16 { try flush() }
    }

    mutating func flush() throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fileDescriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw ReportsError(
                    code: .invalidQuery,
                    message: "cannot write the export: \(String(cString: strerror(errno)))"
                )
            }
            offset += written
        }
        bytes.removeAll(keepingCapacity: true)
    }
}
