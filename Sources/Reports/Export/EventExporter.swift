public import EventStore

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
        let output = OutputBuffer(fileDescriptor: fileDescriptor)
        switch format {
        case .csv: try output.append(columns.joined(separator: ",") + "\r\n")
        case .json: try output.append("[")
        case .ndjson: break
        }
        // VM names from the same snapshot as the events (a join per row cost more than a lookup).
        var row: ExportRow?
        var count = 0
        try database.forEachStoredEvent(named: events, in: data.selection()) { names in
            row = ExportRow(names: names)
        } _: { event in
            switch format {
            case .csv: try row?.writeCSV(event, to: output)
            case .ndjson: try row?.writeJSON(event, prefix: "", suffix: "\n", to: output)
            case .json: try row?.writeJSON(event, prefix: count == 0 ? "\n" : ",\n", suffix: "", to: output)
            }
            count += 1
        }
        if format == .json { try output.append(count == 0 ? "]\n" : "\n]\n") }
        try output.flush()
        return count
    }
}

extension EventExporter {
    /// The matching events as NDJSON, a page at a time, in arrival order.
    ///
    /// Each page is its own short read, so that a client reading slowly holds no snapshot of the
    /// database (which would keep the recorder's WAL from being checkpointed) and no file.
    package struct NDJSONPages: Sendable {
        private let database: EventDatabase
        private let data: ReportData
        private let events: [String]
        /// The last id written: the next page starts after it.
        private var after: Int64 = 0

        /// - Parameter events: event names to include; empty for all.
        /// - Throws: ``ReportsError`` for an unknown VM.
        package init(from database: EventDatabase, query: ReportQuery, events: [String] = []) async throws {
            self.database = database
            self.data = try await ReportData(database: database, query: query)
            self.events = events
        }

        /// The next page, about `byteLimit` bytes (at least one event), or `nil` when no event is left.
        package mutating func next(byteLimit: Int = 1 << 20) throws -> [UInt8]? {
            let output = OutputBuffer(collecting: ())
            var row: ExportRow?
            var lastId: Int64?
            try database.forEachStoredEvent(
                named: events,
                in: data.selection(),
                after: after,
                isFull: { output.collectedCount >= byteLimit }
            ) { names in
                row = ExportRow(names: names)
            } _: { event in
                try row?.writeJSON(event, prefix: "", suffix: "\n", to: output)
                lastId = event.id
            }
            guard let lastId else { return nil }
            try output.flush()
            after = lastId
            return output.collected
        }
    }
}

/// Output bytes on their way to a file descriptor, written in 64 KiB chunks (or kept in memory,
/// for a page).
///
/// Rows are formatted straight into raw memory: a caller reserves room for its row with
/// ``reserve(_:)``, then stores bytes at ``cursor`` without further checks (the export's hot path;
/// appending to a `[UInt8]` spent a third of the time in uniqueness and bounds checks).
final class OutputBuffer {
    let fileDescriptor: Int32
    private var start: UnsafeMutablePointer<UInt8>
    private var capacity = 1 << 17
    /// Where the next byte goes; advance it by what was written.
    var cursor: UnsafeMutablePointer<UInt8>

    /// What was flushed, when collecting rather than writing.
    private(set) var collected: [UInt8] = []

    init(fileDescriptor: Int32) {
        self.fileDescriptor = fileDescriptor
        start = .allocate(capacity: capacity)
        cursor = start
    }

    /// A buffer that keeps its bytes in ``collected``.
    init(collecting: Void) {
        fileDescriptor = -1
        start = .allocate(capacity: capacity)
        cursor = start
    }

    /// Bytes collected and still buffered.
    var collectedCount: Int { collected.count + (cursor - start) }

    deinit { start.deallocate() }

    /// Makes room for `count` more bytes, flushing first when the buffer is half full. A row larger
    /// than the buffer (an event's data may be up to the recorder's 16 MiB message limit) grows it
    /// for the rest of the export.
    func reserve(_ count: Int) throws {
        if cursor - start >= capacity / 2 || cursor - start + count > capacity { try flush() }
        if count > capacity {
            start.deallocate()
            capacity = count
            start = .allocate(capacity: capacity)
            cursor = start
        }
    }

    func append(_ text: String) throws {
        var text = text
        try reserve(text.utf8.count)
        text.withUTF8 { bytes in
            guard let base = bytes.baseAddress else { return }
            cursor.update(from: base, count: bytes.count)
            cursor += bytes.count
        }
    }

    func flush() throws {
        if fileDescriptor < 0 {
            collected += UnsafeBufferPointer(start: start, count: cursor - start)
            cursor = start
            return
        }
        if let failure = writeAll(start, count: cursor - start, to: fileDescriptor) {
            throw ReportsError(code: .writeFailed, message: "cannot write the export: \(failure)")
        }
        cursor = start
    }
}
