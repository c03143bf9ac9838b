import EventStore
import Foundation
import QMP

/// Reads the output of `virsh qemu-monitor-event --loop` into each domain's QMP events.
///
/// Its three forms: plain `event NAME at SECONDS.MICROSECONDS for domain 'DOM': DATA` (QEMU's
/// timestamp); `--timestamp`, where virsh's own clock comes first instead of `at …`
/// (`2026-12-02 09:25:34.581+0000: event NAME for domain 'DOM': DATA`: when virsh received it, up to
/// seconds after QEMU's time, which is lost; stored as the receive time, QEMU's as -1/-1); and
/// `--pretty`, where DATA spreads over the following lines. DATA is JSON, or `<null>` / `(null)` for none. virsh's own
/// lines (`events received: N`, `event loop timed out`) are skipped.
struct VirshEventParser {
    /// Events by domain name, in the order they appear.
    var events: [String: [ImportedEvent]] = [:]
    /// Line numbers (from 1) of lines that were not understood.
    var unknownLines: [Int] = []
    /// How often each key was seen: identical events within a millisecond stay apart.
    private var seen: [String: Int] = [:]

    init(text: String) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        var index = 0
        while index < lines.count {
            let line = lines[index]
            index += 1
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("events received:") || trimmed == "event loop timed out" {
                continue
            }
            guard var record = Self.header(line) else {
                unknownLines.append(index)
                continue
            }
            // --pretty: the JSON continues until its braces close.
            var depth = Self.depth(of: record.data)
            while depth > 0, index < lines.count {
                record.data += "\n" + lines[index]
                depth += Self.depth(of: Substring(lines[index]))
                index += 1
            }
            add(record, line: String(line))
        }
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

    private mutating func add(_ record: Header, line: String) {
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
        let time = record.received ?? max(0, event.seconds * 1_000_000 + event.microseconds)
        // The plain and --pretty forms of one event have the same key; the --timestamp form, with
        // another time, meets them through the import's match window instead.
        let base = "virsh:\(record.domain):\(record.name):\(time):\(data ?? "")"
        seen[base, default: 0] += 1
        let key = "\(base)#\(seen[base] ?? 1)"
        events[record.domain, default: []].append(
            ImportedEvent(
                event: NewEvent(event, session: LibvirtLogParser.unset, seq: 0, received: time),
                importKey: key,
                isQMPEvent: true
            )
        )
    }
}
