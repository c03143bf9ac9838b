import Reports
import Testing

/// Tables for people: one line per row fitted to the terminal, long text cut with `…`; every
/// cell in full with `--wide`; one block per row only where a row cannot fit at all.
struct TableFittingTests {
    static func table(rows: Int, columns: [String] = ["vm", "socket", "state", "events"]) -> ReportResult {
        ReportResult(
            report: "vms",
            query: ReportQuery(now: 0),
            summary: [],
            tables: [
                ReportTable(
                    name: "known_vms",
                    title: "Known VMs",
                    columns: columns,
                    rows: (0..<rows).map { index in
                        [
                            .text("vm\(index)"), .text("unix:/run/qemu-server/a-rather-long-directory/vm\(index).qmp"),
                            .text("shutdown (last seen)"), .integer(Int64(index)),
                        ]
                    }
                )
            ],
            caveats: []
        )
    }

    static func tableLines(_ text: String) -> [Substring] {
        text.split(separator: "\n").drop { !$0.hasPrefix("Known VMs") }.dropFirst().prefix { !$0.isEmpty }.map { $0 }
    }

    @Test(arguments: [80, 60, 120])
    func aThousandVMsAreAThousandLinesThatFitTheTerminal(width: Int) {
        let lines = Self.tableLines(ReportFormat.table.render(Self.table(rows: 1000), width: width))
        #expect(lines.count == 1002)  // header, rule, a line per VM
        #expect(lines.allSatisfy { $0.count <= width }, "\(lines.first { $0.count > width } ?? "")")
        // Numbers are never cut; long text is, with an ellipsis
        #expect(lines.last?.hasSuffix("999") == true)
        #expect(lines.dropFirst(2).allSatisfy { $0.contains("…") } == (width < 100))
    }

    @Test func wideShowsEveryCellInFull() {
        let lines = Self.tableLines(ReportFormat.table.render(Self.table(rows: 3), width: nil))
        #expect(lines.count == 5)
        #expect(lines.last?.contains("unix:/run/qemu-server/a-rather-long-directory/vm2.qmp") == true)
        #expect(lines.allSatisfy { !$0.contains("…") })
    }

    @Test func aRowThatCannotFitAtAllIsABlockOfLines() {
        // Twelve numeric columns with long names cannot be cut
        let columns = (0..<12).map { "a_long_column_name_\($0)" }
        let result = ReportResult(
            report: "stops",
            query: ReportQuery(now: 0),
            summary: [],
            tables: [
                ReportTable(
                    name: "by_vm",
                    title: "Known VMs",
                    columns: columns,
                    rows: [(0..<12).map { .integer(Int64($0)) }]
                )
            ],
            caveats: []
        )
        let lines = Self.tableLines(ReportFormat.table.render(result, width: 80))
        #expect(lines.count == 12)
        #expect(lines.first?.hasPrefix("  a_long_column_name_0:") == true)
    }
}
