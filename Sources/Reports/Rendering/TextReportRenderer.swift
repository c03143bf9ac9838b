/// Renders a report as aligned text for a terminal. Text from VMs, peers and the command line is
/// escaped (``TerminalText``).
enum TextReportRenderer {
    static func render(_ result: ReportResult, width: Int? = 80) -> String {
        var lines: [String] = []
        let since = result.query.since.map { Timestamp.rfc3339(microseconds: $0) } ?? "beginning"
        let until = result.query.until.map { Timestamp.rfc3339(microseconds: $0) } ?? "now"
        let command = result.report == "timeline" ? "timeline" : "report \(result.report)"
        lines.append("qmplog \(command) — \(since) to \(until)")
        if !result.query.machines.isEmpty {
            lines.append("VMs: \(result.query.machines.map(TerminalText.escaping).joined(separator: ", "))")
        }
        if !result.summary.isEmpty {
            lines.append("")
            let width = result.summary.map { label($0.key).count }.max() ?? 0
            for (key, value) in result.summary {
                let name = label(key)
                lines.append(name + ":" + String(repeating: " ", count: width - name.count + 1) + text(value))
            }
        }
        for table in result.tables {
            lines.append("")
            lines.append(table.title)
            if table.rows.isEmpty {
                lines.append("  (none)")
                continue
            }
            lines += table.name == "timeline" ? timeline(table) : aligned(table, width: width)
        }
        if !result.caveats.isEmpty {
            lines.append("")
            lines.append("Notes:")
            lines += result.caveats.flatMap { wrap("- " + TerminalText.escaping($0), width: 78, indent: "  ") }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A timeline reads as a log: one line per entry, the time to the millisecond, the time since
    /// the entry before, and what happened (whatever its length).
    static func timeline(_ table: ReportTable) -> [String] {
        table.rows.map { row in
            guard row.count == 4, case .time(let time) = row[0] else { return row.map(text).joined(separator: "  ") }
            let stamp = Timestamp.rfc3339(microseconds: time)
            let clock = String(stamp.prefix(23).map { $0 == "T" ? " " : $0 })
            let after: String
            if case .duration(let gap) = row[1] {
                after = "+" + (gap < 60_000_000 ? "\(Double(gap / 1000) / 1000)s" : formatDuration(gap))
            } else {
                after = ""
            }
            func padded(_ text: String, _ width: Int) -> String {
                text + String(repeating: " ", count: max(1, width - text.count))
            }
            return "  \(clock)  \(padded(after, 12))\(padded(text(row[2]), 8))\(text(row[3]))"
        }
    }

    /// The table as aligned columns, one line per row, fitted to `width` by cutting the widest
    /// text columns (never numbers, times or durations) down to their header; a table that cannot
    /// fit even so prints one block of `column: value` lines per row.
    static func aligned(_ table: ReportTable, width: Int? = 80) -> [String] {
        let header = table.columns
        let cells = table.rows.map { $0.map(text) }
        var widths = header.map(\.count)
        for row in cells {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        let numeric = table.columns.indices.map { index in
            table.rows.allSatisfy { row in
                switch row[index] {
                case .integer, .number, .duration, .null: true
                default: false
                }
            }
        }
        let cuttable = table.columns.indices.map { index in
            table.rows.contains { row in
                if case .text = row[index] { true } else { false }
            }
        }
        func total(_ widths: [Int]) -> Int { widths.reduce(2, { $0 + $1 + 2 }) - 2 }
        if let width, total(widths) > width {
            // The narrowest a cut column gets: its header, and room for a few characters and `…`.
            let minimum = widths.indices.map { cuttable[$0] ? min(widths[$0], max(header[$0].count, 6)) : widths[$0] }
            while total(widths) > width,
                let widest = widths.indices.filter({ cuttable[$0] && widths[$0] > minimum[$0] })
                    .max(by: { widths[$0] < widths[$1] })
            {
                widths[widest] -= 1
            }
            if total(widths) > width {
                let labelWidth = header.map(\.count).max() ?? 0
                return cells.enumerated().flatMap { index, row -> [String] in
                    let block = zip(header, row).map { name, cell in
                        "  " + name + ":" + String(repeating: " ", count: labelWidth - name.count + 1) + cell
                    }
                    return index == 0 ? block : [""] + block
                }
            }
        }
        func line(_ row: [String]) -> String {
            let padded = row.enumerated().map { index, cell in
                let fitted = cell.count > widths[index] ? String(cell.prefix(widths[index] - 1)) + "…" : cell
                let pad = String(repeating: " ", count: widths[index] - fitted.count)
                return numeric[index] ? pad + fitted : fitted + pad
            }
            return "  " + padded.joined(separator: "  ").trimmingTrailingSpaces()
        }
        return [line(header), line(widths.map { String(repeating: "-", count: $0) })] + cells.map(line)
    }

    static func text(_ value: ReportValue) -> String {
        switch value {
        case .text(let text): TerminalText.escaping(text)
        case .integer(let value): String(value)
        case .number(let value): formatNumber(value)
        case .bool(let value): value ? "yes" : "no"
        case .time(let value): String(Timestamp.rfc3339(microseconds: value).prefix(19)).replacingT()
        case .duration(let value): formatDuration(value)
        case .null: "-"
        }
    }

    /// Splits `text` into lines of at most `width` characters at spaces; continuation lines get `indent`.
    static func wrap(_ text: String, width: Int, indent: String) -> [String] {
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            if !current.isEmpty, current.count + 1 + word.count > width {
                lines.append(current)
                current = indent + word
            } else {
                current += (current.isEmpty ? "" : " ") + word
            }
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }

    static let labels = [
        "vms": "VMs", "vms_affected": "VMs affected", "guest_host_ratio": "Guest:host ratio",
        "host_requested_acpi": "Host-requested (ACPI)", "vms_in_crash_loops": "VMs in crash loops",
        "host_acpi": "Host ACPI", "host_qmp_quit": "Host QMP quit", "guest_reset_no_reboot": "Guest reset (-no-reboot)",
        "io_error": "I/O error",
    ]

    static func label(_ key: String) -> String {
        if let label = labels[key] { return label }
        let words = key.split(separator: "_").joined(separator: " ")
        return words.prefix(1).uppercased() + words.dropFirst()
    }

    static func formatNumber(_ value: Double) -> String {
        let rounded = (value * 100).rounded() / 100
        if rounded == rounded.rounded() { return String(Int64(rounded)) }
        return String(rounded)
    }

    /// `3d 04:05:06`, `04:05:06`, or `0:00:05`.
    static func formatDuration(_ microseconds: Int64) -> String {
        let total = microseconds / 1_000_000
        let days = total / 86_400
        let hours = total / 3600 % 24
        let minutes = total / 60 % 60
        let seconds = total % 60
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let clock = "\(hours):\(two(minutes)):\(two(seconds))"
        return days > 0 ? "\(days)d \(two(hours)):\(two(minutes)):\(two(seconds))" : clock
    }
}

extension String {
    fileprivate func trimmingTrailingSpaces() -> String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }

    fileprivate func replacingT() -> String {
        String(map { $0 == "T" ? " " : $0 })
    }
}

extension ReportValue {
    /// The value as a table shows it to a person (times to the second, durations as `1d 02:03:04`).
    package var displayText: String { TextReportRenderer.text(self) }
}
