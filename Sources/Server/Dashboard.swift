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
    /// The VMs drawn in each per-VM chart and its table: those with the most of what it shows. The
    /// others are a click away (their page, the report's full table, its JSON), so that the page
    /// does not grow with the fleet.
    static let topVMs = 10

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
        var perVM = query
        perVM.interval = nil
        var body = controls(action: "/", vms: vms)
        body += try await shutdownsSection(query)
        body += try await panicsSection(query)
        body += try await resetsSection(perVM)
        body += try await statesSection(perVM)
        body += try await observedSection(perVM)
        body += try await latestSection(vms)
        return HTMLText.page(title: "qmplog: the fleet", body: body)
    }

    private func shutdownsSection(_ query: ReportQuery) async throws -> String {
        let shutdowns = try await server.run(.shutdowns, query)
        return section("Shutdowns per day, by initiator", summary: shutdowns.summary) {
            let series = table(shutdowns, "series")
            let columns = ["guest", "host", "host_requested_acpi", "unknown"]
            return SVGChart.stackedColumns(
                label: "Shutdowns per day by initiator",
                series: columns,
                columns: rows(series, label: "bucket", values: columns)
            ) + HTMLText.table(series) + HTMLText.table(table(shutdowns, "by_reason"))
        }
    }

    private func panicsSection(_ query: ReportQuery) async throws -> String {
        let panics = try await server.run(.panics, query)
        return section("Panics", summary: panics.summary) {
            let byType = table(panics, "by_type")
            let byVM = table(panics, "by_vm")
            let (topVMs, hidden) = top(byVM, by: ["panics"])
            return SVGChart.bars(
                label: "Panics by crash type",
                rows: rows(byType, label: "panic_type", values: ["count"])
            )
                + HTMLText.table(byType)
                + SVGChart.bars(label: "Panics per VM", rows: rows(topVMs, label: "vm", values: ["panics"]), link: true)
                + HTMLText.table(topVMs) + elsewhere(hidden, of: byVM, .panics, most: "panics")
        }
    }

    private func resetsSection(_ perVM: ReportQuery) async throws -> String {
        let resets = try await server.run(.resets, perVM)
        let watchdog = try await server.run(.watchdog, perVM)
        return section("Resets and watchdog firings per VM", summary: []) {
            let resetRows = table(resets, "by_vm")
            let (topResets, hidden) = top(resetRows, by: ["distinct"])
            let watchdogRows = table(watchdog, "by_vm")
            let (topWatchdog, hiddenWatchdog) = top(watchdogRows, by: ["count"])
            return SVGChart.bars(
                label: "Distinct resets per VM",
                rows: rows(topResets, label: "vm", values: ["distinct"]),
                link: true
            )
                + HTMLText.table(topResets) + elsewhere(hidden, of: resetRows, .resets, most: "resets")
                + HTMLText.table(topWatchdog)
                + elsewhere(hiddenWatchdog, of: watchdogRows, .watchdog, most: "watchdog firings")
        }
    }

    /// The timeline of the VMs that spent the most time not running: their series only.
    private func statesSection(_ perVM: ReportQuery) async throws -> String {
        let states = try await server.run(.states, perVM)
        let columns = ["running", "paused", "suspended", "shutdown", "prelaunch", "unknown"]
        let (topStates, hidden) = top(table(states, "by_vm"), by: columns.filter { $0 != "running" })
        var seriesQuery = perVM
        seriesQuery.interval = try window().buckets
        seriesQuery.machines = rows(topStates, label: "vm", values: []).map(\.label)
        let series = seriesQuery.machines.isEmpty ? nil : try await server.run(.states, seriesQuery)
        return section("Run state per VM", summary: []) {
            // One lane per VM, bucket by bucket.
            var buckets: [String: [[Double]]] = [:]
            for row in series.map({ rows(table($0, "series"), label: "vm", values: columns) }) ?? [] {
                buckets[row.label, default: []].append(row.values)
            }
            let lanes = rows(topStates, label: "vm", values: []).map {
                (label: $0.label, buckets: buckets[$0.label] ?? [])
            }
            return SVGChart.stateTimeline(
                label: "Run state per VM and \(seriesQuery.interval?.rawValue ?? "")",
                series: columns,
                lanes: lanes
            ) + HTMLText.table(topStates)
                + elsewhere(hidden, of: table(states, "by_vm"), .states, most: "time not running")
        }
    }

    private func observedSection(_ perVM: ReportQuery) async throws -> String {
        let summary = try await server.run(.summary, perVM)
        return section("Observed and unobserved time", summary: summary.summary) {
            let byVM = table(summary, "by_vm")
            let columns = ["observed", "not_observed"]
            let (topVMs, hidden) = top(byVM, by: ["not_observed"])
            return SVGChart.stackedBars(
                label: "Time qmplog watched each VM",
                series: columns,
                rows: rows(topVMs, label: "vm", values: columns)
            ) + HTMLText.table(topVMs) + elsewhere(hidden, of: byVM, .summary, most: "time not observed")
        }
    }

    private func latestSection(_ vms: [String]) async throws -> String {
        let database = server.database
        let names = Dictionary(uniqueKeysWithValues: try await database.allMachines().map { ($0.id, $0.displayName) })
        let selected = vms.isEmpty ? nil : names.filter { vms.contains($0.value) }.map(\.key)
        let latest = try await database.latestEvents(limit: 20, machineIds: selected)
        return section("Latest events", summary: []) {
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

    /// The ``topVMs`` rows of `table` with the largest sum of `columns` (ties by name, as listed),
    /// and how many rows are left out.
    private func top(_ table: ReportTable, by columns: [String]) -> (table: ReportTable, hidden: Int) {
        guard table.rows.count > Self.topVMs else { return (table, 0) }
        let ranked = table.rows.enumerated().map { index, row in
            (row: row, index: index, total: columns.reduce(0) { $0 + number(value(row, table.columns, $1)) })
        }
        .sorted { ($0.total, -$0.index) > ($1.total, -$1.index) }
        var top = table
        top.rows = ranked.prefix(Self.topVMs).sorted { $0.index < $1.index }.map(\.row)
        top.title += " (the \(Self.topVMs) with the most)"
        return (top, table.rows.count - Self.topVMs)
    }

    /// Where the VMs a chart leaves out are: the report's full table and its JSON, same window.
    private func elsewhere(_ hidden: Int, of table: ReportTable, _ kind: ReportKind, most: String) -> String {
        guard hidden > 0 else { return "" }
        let window = (try? window().name) ?? "7d"
        var json = "/api/reports/\(kind.rawValue)?by=vm"
        if let since = (try? self.window())?.since { json += "&since=\(since)" }
        return
            "<p class=\"more\">The \(Self.topVMs) VMs with the most \(HTMLText.escape(most)) of \(table.rows.count) are shown; "
            + "\(hidden) more: <a href=\"/report/\(kind.rawValue)?window=\(window)\">the full table</a>, "
            + "<a href=\"\(HTMLText.escape(json))\">JSON</a>, or each VM's own page.</p>"
    }

    /// `/report/KIND`: every table of a report over the page's window, for the VMs the fleet page
    /// leaves out of its charts.
    func reportPage(_ name: String) async throws -> String {
        for parameter in parameters.parameters where !["window", "vm"].contains(parameter.name) {
            throw BadParameter(parameter.name, "unknown parameter; this page takes window, vm")
        }
        guard let kind = ReportKind(rawValue: name) else {
            throw BadParameter(
                "kind",
                "no report \(name); reports: \(ReportKind.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        var query = try query(machines: parameters.all("vm"))
        query.interval = nil
        let result = try await server.run(kind, query)
        var body = controls(action: "/report/\(kind.rawValue)", vms: parameters.all("vm"))
        body += section("report \(kind.rawValue)", summary: result.summary) {
            result.tables.map(HTMLText.table).joined()
        }
        return HTMLText.page(title: "qmplog: report \(kind.rawValue)", body: body)
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
