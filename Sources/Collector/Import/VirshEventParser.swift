import Foundation

// The import fuzz target (Scripts/fuzz.sh) compiles this file into one module with its dependencies.
#if canImport(EventStore)
    import EventStore
#endif
#if canImport(QMP)
    import QMP
#endif

/// Reads the output of `virsh qemu-monitor-event --loop` into each domain's QMP events.
///
/// Its three forms: plain `event NAME at SECONDS.MICROSECONDS for domain 'DOM': DATA` (QEMU's
/// timestamp); `--timestamp`, where virsh's own clock comes first instead of `at …`
/// (`2026-12-02 09:25:34.581+0000: event NAME for domain 'DOM': DATA`: when virsh received it, up to
/// seconds after QEMU's time, which is lost; stored as the receive time, QEMU's as -1/-1); and
/// `--pretty`, where DATA spreads over the following lines. DATA is JSON, or `<null>` / `(null)` for none. virsh's own
/// lines (`events received: N`, `event loop timed out`) are skipped.
///
/// Lines are read one at a time (``read(_:)``, then ``finish()``); ``events`` holds those read since
/// the caller last took them, so that memory does not grow with the file.
struct VirshEventParser {
    /// Events by domain name, in the order they appear, read and not yet taken.
    var events: [String: [ImportedEvent]] = [:]
    /// Every event read.
    private(set) var eventCount = 0
    /// Lines that were not understood.
    private(set) var unknownLines = 0
    /// The first few of them (line numbers from 1), for messages.
    private(set) var firstUnknownLines: [Int] = []
    private var lineNumber = 0
    /// A `--pretty` event whose JSON has not closed yet, and how deep it is open.
    private var open: (record: Header, depth: Int)?
    /// How often each key was seen: identical events within a millisecond stay apart. Identical
    /// events share their time: only the keys of the latest time are kept.
    private var seen: [String: Int] = [:]
    private var seenTime: Int64 = .min
    /// A `--pretty` event's JSON longer than this is not one virsh printed.
    static let maximumDataLength = 1 << 20

    init() {}

    init(text: String) {
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            read(line)
        }
        finish()
    }

    mutating func read(_ line: Substring) {
        lineNumber += 1
        if var pending = open {
            // --pretty: the JSON continues until its braces close.
            pending.record.data += "\n" + line
            pending.depth += Self.depth(of: line)
            if pending.record.data.utf8.count > Self.maximumDataLength {
                open = nil
                notUnderstood()
            } else if pending.depth > 0 {
                open = pending
            } else {
                open = nil
                add(pending.record)
            }
            return
        }
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty || trimmed.hasPrefix("events received:") || trimmed == "event loop timed out" {
            return
        }
        guard let record = Self.header(line) else {
            notUnderstood()
            return
        }
        let depth = Self.depth(of: record.data)
        if depth > 0 { open = (record, depth) } else { add(record) }
    }

    /// Adds an event whose JSON never closed, as the file ended.
    mutating func finish() {
        if let pending = open { add(pending.record) }
        open = nil
    }

    private mutating func notUnderstood() {
        unknownLines += 1
        if firstUnknownLines.count < 10 { firstUnknownLines.append(lineNumber) }
    }

    private struct Header {
        var name: String
        var domain: String
        /// QEMU's timestamp; -1/-1 in the `--timestamp` form.
        var time: (seconds: Int64, microseconds: Int64)
        /// When virsh printed it (the `--timestamp` form), else QEMU's time.
        var received: Int64?
        var data: String
    }

    /// The parts of an event's first line.
    private static func header(_ line: Substring) -> Header? {
        var rest = line
        var stamped: Int64?
        if let (time, length) = HistoryTimestamp.parse(line) {
            stamped = time
            rest = rest.dropFirst(length)
            guard rest.hasPrefix(": ") else { return nil }
            rest = rest.dropFirst(2)
        }
        guard rest.hasPrefix("event ") else { return nil }
        rest = rest.dropFirst(6)
        let name = String(rest.prefix { $0 != " " })
        rest = rest.dropFirst(name.count)
        var time: (Int64, Int64)
        if rest.hasPrefix(" at ") {
            rest = rest.dropFirst(4)
            let number = rest.prefix { $0.isNumber || $0 == "." || $0 == "-" }
            rest = rest.dropFirst(number.count)
            let parts = number.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, let seconds = Int64(parts[0]), let micro = Int64(parts[1]) else { return nil }
            time = (seconds, micro)
        } else if stamped != nil {
            time = (-1, -1)
        } else {
            return nil
        }
        guard rest.hasPrefix(" for domain '"), !name.isEmpty else { return nil }
        rest = rest.dropFirst(" for domain '".count)
        guard let end = rest.range(of: "': ") else { return nil }
        return Header(
            name: name,
            domain: String(rest[..<end.lowerBound]),
            time: time,
            received: stamped,
            data: String(rest[end.upperBound...])
        )
    }

    /// How many more `{`/`[` than `}`/`]` a line opens, outside strings.
    private static func depth(of text: some StringProtocol) -> Int {
        var depth = 0
        var inString = false
        var escaped = false
        for character in text {
            if escaped {
                escaped = false
            } else if inString {
                if character == "\\" { escaped = true } else if character == "\"" { inString = false }
            } else if character == "\"" {
                inString = true
            } else if character == "{" || character == "[" {
                depth += 1
            } else if character == "}" || character == "]" {
                depth -= 1
            }
        }
        return depth
    }

    private mutating func add(_ record: Header) {
        let text = record.data.trimmingCharacters(in: .whitespacesAndNewlines)
        let value = text == "<null>" || text == "(null)" ? nil : try? JSONValue(parsing: Array(text.utf8))
        let data = value?.compactText
        let event = QMPEvent(
            name: record.name,
            seconds: record.time.seconds,
            microseconds: record.time.microseconds,
            data: value,
            dataText: data
        )
        var row = NewEvent(event, session: LibvirtLogParser.unset, seq: 0, received: 0)
        // QEMU's time when it is an instant; a number that is none (negative, past the year 9999)
        // is kept as written and, like QEMU's -1/-1, has no receive time either.
        let time = record.received ?? row.time ?? 0
        row.received = time
        // The plain and --pretty forms of one event have the same key; the --timestamp form, with
        // another time, meets them through the import's match window instead.
        let base = "virsh:\(record.domain):\(record.name):\(time):\(data ?? "")"
        if time != seenTime {
            seen.removeAll(keepingCapacity: true)
            seenTime = time
        }
        seen[base, default: 0] += 1
        let key = "\(base)#\(seen[base] ?? 1)"
        events[record.domain, default: []].append(ImportedEvent(event: row, importKey: key, isQMPEvent: true))
        eventCount += 1
    }
}
