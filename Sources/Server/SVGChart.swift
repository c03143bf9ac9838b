import Foundation

/// Charts as SVG, drawn on the server. Each bar carries its figure (`data-value`) and a tooltip.
enum SVGChart {
    static let palette = ["#2b7bb9", "#e8862a", "#3a9d5d", "#c9453a", "#8a63b8", "#8c6d31", "#999999"]
    static let width = 720.0

    /// One horizontal bar per row.
    static func bars(label: String, rows: [(label: String, values: [Double])], link: Bool = false) -> String {
        stackedBars(label: label, series: ["count"], rows: rows, link: link, legend: false)
    }

    /// One horizontal bar per row, its segments stacked in `series` order.
    static func stackedBars(
        label: String,
        series: [String],
        rows: [(label: String, values: [Double])],
        link: Bool = false,
        legend: Bool = true
    ) -> String {
        guard !rows.isEmpty else { return empty(label) }
        let labelWidth = 160.0
        let rowHeight = 18.0
        let maximum = max(rows.map { $0.values.reduce(0, +) }.max() ?? 0, 1)
        let scale = (width - labelWidth - 60) / maximum
        var parts: [String] = []
        for (index, row) in rows.enumerated() {
            let y = Double(index) * rowHeight + (legend ? 20 : 0)
            let name = HTMLText.escape(String(row.label.prefix(24)))
            parts.append("<text x=\"0\" y=\"\(y + 13)\">\(name)</text>")
            var x = labelWidth
            for (part, value) in row.values.enumerated() where value > 0 {
                let length = value * scale
                parts.append(
                    rect(
                        x: x,
                        y: y + 2,
                        width: length,
                        height: rowHeight - 4,
                        color: part,
                        series: series[part],
                        label: row.label,
                        value: value
                    )
                )
                x += length
            }
            parts.append("<text x=\"\(x + 4)\" y=\"\(y + 13)\">\(format(row.values.reduce(0, +)))</text>")
        }
        if legend { parts.append(self.legend(series)) }
        return svg(label: label, height: Double(rows.count) * rowHeight + (legend ? 24 : 4), parts)
    }

    /// One vertical column per row (a time bucket), its segments stacked in `series` order.
    static func stackedColumns(label: String, series: [String], columns: [(label: String, values: [Double])]) -> String
    {
        guard !columns.isEmpty else { return empty(label) }
        let height = 180.0
        let step = min(40, (width - 40) / Double(columns.count))
        let maximum = max(columns.map { $0.values.reduce(0, +) }.max() ?? 0, 1)
        var parts = ["<text x=\"0\" y=\"12\">max \(format(maximum))</text>"]
        for (index, column) in columns.enumerated() {
            let x = 40 + Double(index) * step
            var top = height + 20
            for (part, value) in column.values.enumerated() where value > 0 {
                let length = value / maximum * height
                top -= length
                parts.append(
                    rect(
                        x: x,
                        y: top,
                        width: step * 0.8,
                        height: length,
                        color: part,
                        series: series[part],
                        label: column.label,
                        value: value
                    )
                )
            }
        }
        if let first = columns.first, let last = columns.last {
            parts.append(
                "<text x=\"40\" y=\"\(height + 34)\">\(HTMLText.escape(String(first.label.prefix(10))))</text>"
            )
            parts.append(
                "<text x=\"\(width - 80)\" y=\"\(height + 34)\">\(HTMLText.escape(String(last.label.prefix(10))))</text>"
            )
        }
        parts.append(legend(series, y: height + 40))
        return svg(label: label, height: height + 60, parts)
    }

    /// One lane per VM, one column per time bucket, each column's height split by the time in
    /// each state (`series`): a run-state timeline.
    static func stateTimeline(label: String, series: [String], lanes: [(label: String, buckets: [[Double]])]) -> String
    {
        guard let count = lanes.map(\.buckets.count).max(), count > 0 else { return empty(label) }
        let labelWidth = 160.0
        let laneHeight = 16.0
        let step = (width - labelWidth - 10) / Double(count)
        var parts: [String] = []
        for (index, lane) in lanes.enumerated() {
            let y = 20 + Double(index) * laneHeight
            parts.append("<text x=\"0\" y=\"\(y + 12)\">\(HTMLText.escape(String(lane.label.prefix(24))))</text>")
            for (column, durations) in lane.buckets.enumerated() {
                let total = durations.reduce(0, +)
                guard total > 0 else { continue }
                var top = y + 1
                for (part, value) in durations.enumerated() where value > 0 {
                    let height = value / total * (laneHeight - 2)
                    parts.append(
                        rect(
                            x: labelWidth + Double(column) * step,
                            y: top,
                            width: max(step - 1, 1),
                            height: height,
                            color: part,
                            series: series[part],
                            label: lane.label,
                            value: value
                        )
                    )
                    top += height
                }
            }
        }
        parts.append(legend(series))
        return svg(label: label, height: 24 + Double(lanes.count) * laneHeight, parts)
    }

    /// Marks on a time axis, one lane per kind: a VM's sessions, gaps, events, stops and pauses.
    static func marks(label: String, items: [(time: Int64, lane: String, text: String)]) -> String {
        guard let first = items.map(\.time).min(), let last = items.map(\.time).max() else { return empty(label) }
        var lanes: [String] = []
        for item in items where !lanes.contains(item.lane) { lanes.append(item.lane) }
        let labelWidth = 90.0
        let span = Double(max(last - first, 1))
        var parts: [String] = []
        for (index, lane) in lanes.enumerated() {
            parts.append("<text x=\"0\" y=\"\(Double(index) * 18 + 13)\">\(HTMLText.escape(lane))</text>")
        }
        for item in items {
            let lane = lanes.firstIndex(of: item.lane) ?? 0
            let x = labelWidth + Double(item.time - first) / span * (width - labelWidth - 10)
            parts.append(
                "<rect x=\"\(format(x))\" y=\"\(Double(lane) * 18 + 2)\" width=\"3\" height=\"14\" fill=\"\(palette[lane % palette.count])\" "
                    + "data-series=\"\(HTMLText.escape(item.lane))\"><title>\(HTMLText.escape(item.text))</title></rect>"
            )
        }
        return svg(label: label, height: Double(lanes.count) * 18 + 4, parts)
    }

    private static func rect(
        x: Double,
        y: Double,
        width: Double,
        height: Double,
        color: Int,
        series: String,
        label: String,
        value: Double
    ) -> String {
        "<rect x=\"\(format(x))\" y=\"\(format(y))\" width=\"\(format(width))\" height=\"\(format(height))\" "
            + "fill=\"\(palette[color % palette.count])\" data-series=\"\(HTMLText.escape(series))\" "
            + "data-label=\"\(HTMLText.escape(label))\" data-value=\"\(format(value))\">"
            + "<title>\(HTMLText.escape(label)) \(HTMLText.escape(series)): \(format(value))</title></rect>"
    }

    private static func legend(_ series: [String], y: Double = 0) -> String {
        series.enumerated().map { index, name in
            let x = Double(index) * 130
            return
                "<rect x=\"\(x)\" y=\"\(y + 2)\" width=\"10\" height=\"10\" fill=\"\(palette[index % palette.count])\"/>"
                + "<text x=\"\(x + 14)\" y=\"\(y + 11)\">\(HTMLText.escape(name))</text>"
        }.joined()
    }

    private static func svg(label: String, height: Double, _ parts: [String]) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"\(HTMLText.escape(label))\" "
            + "width=\"\(format(width))\" height=\"\(format(height))\" viewBox=\"0 0 \(format(width)) \(format(height))\">"
            + "<title>\(HTMLText.escape(label))</title>" + parts.joined() + "</svg>\n"
    }

    private static func empty(_ label: String) -> String {
        "<p class=\"empty\">\(HTMLText.escape(label)): nothing in this window.</p>\n"
    }

    /// A number without a trailing `.0`.
    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(format: "%.2f", value)
    }
}
