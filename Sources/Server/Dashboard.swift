import EventStore
import Foundation
import Reports

/// The HTML pages: the fleet (`/`) and one VM (`/vm/NAME`), built from the reports' results.
///
/// Charts are SVG drawn here, each beside the table of the numbers it shows; no scripts, fonts or
/// anything from elsewhere, so a page works on an air-gapped host. Everything a VM or peer
/// controls is escaped.
struct Dashboard {
    let server: WebServer
    let parameters: HTTPQuery

    /// The time windows offered, as `window=` values and their `--since` spans.
    static let windows: [(name: String, since: String?, buckets: ReportInterval)] = [
        ("24h", "24h", .hour), ("7d", "7d", .day), ("30d", "30d", .day), ("all", nil, .week),
    ]
    /// The VMs drawn in the run-state timeline; the table below it has them all.
    static let timelineVMs = 50

    private func window() throws(BadParameter) -> (name: String, since: String?, buckets: ReportInterval) {
        let name = parameters.first("window") ?? "7d"
        guard let window = Self.windows.first(where: { $0.name == name }) else {
            throw BadParameter("window", "must be one of \(Self.windows.map(\.name).joined(separator: ", "))")
        }
        return window
    }

    private func query(machines: [String]) throws -> ReportQuery {
        let now = server.now()
        let since = try window().since.map { try ReportTimeParser.parse($0, now: now) }
        return ReportQuery(since: since, machines: machines, interval: .day, byMachine: true, now: now)
    }

    func fleetPage() async throws -> String {
        for parameter in parameters.parameters where !["window", "vm"].contains(parameter.name) {
            throw BadParameter(parameter.name, "unknown parameter; this page takes window, vm")
        }
        let vms = parameters.all("vm")
        let query = try query(machines: vms)
        let shutdowns = try await server.run(.shutdowns, query)
        let panics = try await server.run(.panics, query)
        var perVM = query
        perVM.interval = nil
        let resets = try await server.run(.resets, perVM)
        let watchdog = try await server.run(.watchdog, perVM)
        var stateQuery = perVM
        stateQuery.interval = try window().buckets
        let states = try await server.run(.states, stateQuery)
        let summary = try await server.run(.summary, perVM)
        let database = server.database
        let names = Dictionary(uniqueKeysWithValues: try await database.allMachines().map { ($0.id, $0.displayName) })
        let selected = vms.isEmpty ? nil : names.filter { vms.contains($0.value) }.map(\.key)
        let latest = try await database.latestEvents(limit: 20, machineIds: selected)

        var body = controls(action: "/", vms: vms)
        body += section("Shutdowns per day, by initiator", summary: shutdowns.summary) {
            let series = table(shutdowns, "series")
            let columns = ["guest", "host", "host_requested_acpi", "unknown"]
            return SVGChart.stackedColumns(
                label: "Shutdowns per day by initiator",
                series: columns,
                columns: rows(series, label: "bucket", values: columns)
            ) + HTMLText.table(series) + HTMLText.table(table(shutdowns, "by_reason"))
        }
        body += section("Panics", summary: panics.summary) {
            let byType = table(panics, "by_type")
            let byVM = table(panics, "by_vm")
            return SVGChart.bars(
                label: "Panics by crash type",
                rows: rows(byType, label: "panic_type", values: ["count"])
            )
                + HTMLText.table(byType)
                + SVGChart.bars(label: "Panics per VM", rows: rows(byVM, label: "vm", values: ["panics"]), link: true)
                + HTMLText.table(byVM)
        }
        body += section("Resets and watchdog firings per VM", summary: []) {
            let resetRows = table(resets, "by_vm")
            return SVGChart.bars(
                label: "Distinct resets per VM",
                rows: rows(resetRows, label: "vm", values: ["distinct"]),
                link: true
            )
                + HTMLText.table(resetRows) + HTMLText.table(table(watchdog, "by_vm"))
        }
        body += section("Run state per VM", summary: []) {
            let byVM = table(states, "by_vm")
            let series = table(states, "series")
            let columns = ["running", "paused", "suspended", "shutdown", "prelaunch", "unknown"]
            // The series is bucket by bucket, each with every VM: one lane per VM.
            var order: [String] = []
            var buckets: [String: [[Double]]] = [:]
            for row in rows(series, label: "vm", values: columns) {
                if buckets[row.label] == nil {
                    guard order.count < Self.timelineVMs else { continue }
                    order.append(row.label)
                }
                buckets[row.label, default: []].append(row.values)
            }
            let lanes = order.map { (label: $0, buckets: buckets[$0] ?? []) }
            return SVGChart.stateTimeline(
                label: "Run state per VM and \(stateQuery.interval?.rawValue ?? "")",
                series: columns,
                lanes: lanes
            ) + HTMLText.table(byVM)
        }
        body += section("Observed and unobserved time", summary: summary.summary) {
            let byVM = table(summary, "by_vm")
            let columns = ["observed", "not_observed"]
            return SVGChart.stackedBars(
                label: "Time qmplog watched each VM",
                series: columns,
                rows: rows(byVM, label: "vm", values: columns)
            ) + HTMLText.table(byVM)
        }
        body += section("Latest events", summary: []) {
            HTMLText.table(
                ReportTable(
                    name: "latest_events",
                    title: "The latest \(latest.count) events",
                    columns: ["time", "vm", "event", "guest", "reason", "action"],
                    rows: latest.map { event in
                        [
                            .time(event.time ?? event.received), .text(names[event.machineId] ?? "#\(event.machineId)"),
                            .text(event.name), event.guest.map(ReportValue.bool) ?? .null, .optional(event.reason),
                            .optional(event.action),
                        ]
                    }
                )
            )
        }
        return HTMLText.page(title: "qmplog: the fleet", body: body)
    }

    func machinePage(_ name: String) async throws -> String {
        for parameter in parameters.parameters where parameter.name != "window" {
            throw BadParameter(parameter.name, "unknown parameter; this page takes window")
        }
        var query = try query(machines: [name])
        let timeline: ReportResult
        do {
            timeline = try await TimelineReport.run(on: server.database, query: query)
        } catch let error as ReportsError where error.code == .unknownMachine {
            throw BadParameter(unknownMachine: error)
        }
        query.interval = nil
        var body = controls(action: "/vm/" + HTMLText.pathComponent(name), vms: nil)
        for kind in [ReportKind.stops, .pauses, .states, .shutdowns, .panics] {
            let result = try await server.run(kind, query)
            body += section("\(kind.rawValue.capitalized)", summary: result.summary) {
                result.tables.map(HTMLText.table).joined()
            }
        }
        body += section("Timeline", summary: timeline.summary) {
            let table = table(timeline, "timeline")
            let items = table.rows.compactMap { row -> (time: Int64, lane: String, text: String)? in
                guard case .time(let time)? = value(row, table.columns, "time") else { return nil }
                return (
                    time, value(row, table.columns, "kind")?.displayText ?? "",
                    value(row, table.columns, "what")?.displayText ?? ""
                )
            }
            return SVGChart.marks(label: "\(name) in time: sessions, gaps, events, stops, pauses", items: items)
                + HTMLText.table(table)
        }
        return HTMLText.page(title: "qmplog: \(name)", body: body)
    }

    // MARK: - Pieces

    private func controls(action: String, vms: [String]?) -> String {
        let current = (try? window().name) ?? "7d"
        let vmQuery = (vms ?? []).map { "&vm=" + HTMLText.queryValue($0) }.joined()
        let links = Self.windows.map { window in
            window.name == current
                ? "<strong>\(window.name)</strong>"
                : "<a href=\"\(HTMLText.escape(action))?window=\(window.name)\(HTMLText.escape(vmQuery))\">\(window.name)</a>"
        }
        var html = "<nav>Window: \(links.joined(separator: " · "))"
        if let vms {
            html += """
                 <form method="get" action="/"><input type="hidden" name="window" value="\(current)">\
                <label>VM <input name="vm" value="\(HTMLText.escape(vms.first ?? ""))"></label> \
                <button type="submit">Filter</button></form>
                """
        } else {
            html += " · <a href=\"/?window=\(current)\">the fleet</a>"
        }
        return html + "</nav>\n"
    }

    private func section(_ title: String, summary: [(key: String, value: ReportValue)], _ content: () -> String)
        -> String
    {
        let facts = summary.map {
            "<dt>\(HTMLText.escape($0.key))</dt><dd>\(HTMLText.escape($0.value.displayText))</dd>"
        }
        return "<section><h2>\(HTMLText.escape(title))</h2>"
            + (facts.isEmpty ? "" : "<dl>\(facts.joined())</dl>") + content() + "</section>\n"
    }

    private func table(_ result: ReportResult, _ name: String) -> ReportTable {
        result.tables.first { $0.name == name } ?? ReportTable(name: name, title: name, columns: [], rows: [])
    }

    /// Each row's `label` and `values` columns as numbers (durations in seconds).
    private func rows(_ table: ReportTable, label: String, values: [String]) -> [(label: String, values: [Double])] {
        table.rows.map { row in
            let text = value(row, table.columns, label)?.displayText ?? ""
            return (text, values.map { number(value(row, table.columns, $0)) })
        }
    }

    private func value(_ row: [ReportValue], _ columns: [String], _ name: String) -> ReportValue? {
        columns.firstIndex(of: name).flatMap { row.indices.contains($0) ? row[$0] : nil }
    }

    private func number(_ value: ReportValue?) -> Double {
        switch value {
        case .integer(let value)?: Double(value)
        case .number(let value)?: value
        case .duration(let value)?: Double(value) / 1_000_000
        default: 0
        }
    }
}
