import Reports
import Testing

@testable import Server

/// Links to a VM's page are built from its name, never from the text a table shows for it (which
/// escapes control characters: `\n` shown as two characters).
struct DashboardLinkTests {
    @Test func aVMWithALineBreakInItsNameLinksToItsOwnPage() {
        let name = "a\"b\\c\nd"
        let html = HTMLText.table(
            ReportTable(name: "by_vm", title: "VMs", columns: ["vm", "events"], rows: [[.text(name), .integer(1)]])
        )
        #expect(html.contains("href=\"/vm/a%22b%5Cc%0Ad\""), "\(html)")
    }
}
