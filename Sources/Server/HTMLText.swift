import Foundation
import Reports

/// HTML text: escaping, report tables and the page around them.
enum HTMLText {
    /// `text` safe inside an element or a quoted attribute.
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default:
                // Control characters other than tab and newline show as U+FFFD: never raw in a page.
                if scalar.value < 0x20 && scalar != "\t" && scalar != "\n" || (0x7F...0x9F).contains(scalar.value) {
                    escaped += "\u{FFFD}"
                } else {
                    escaped.unicodeScalars.append(scalar)
                }
            }
        }
        return escaped
    }

    /// `text` as one URL path segment.
    static func pathComponent(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// `text` as a query-string value.
    static func queryValue(_ text: String) -> String { pathComponent(text) }

    /// A report table with its title as caption; a `vm` cell links to the VM's page.
    static func table(_ table: ReportTable) -> String {
        let link = table.columns.firstIndex(of: "vm")
        let head = table.columns.map { "<th>\(escape($0))</th>" }.joined()
        let body = table.rows.map { row in
            "<tr>"
                + row.enumerated().map { index, value in
                    let text = escape(value.displayText)
                    let numeric: Bool =
                        switch value {
                        case .integer, .number, .duration: true
                        default: false
                        }
                    // The link is built from the name itself, not its escaped display text.
                    let cell =
                        if index == link, case .text(let name) = value {
                            "<a href=\"/vm/\(pathComponent(name))\">\(text)</a>"
                        } else { text }
                    return numeric ? "<td class=\"n\">\(cell)</td>" : "<td>\(cell)</td>"
                }.joined() + "</tr>"
        }.joined(separator: "\n")
        return """
            <table id="\(escape(table.name))"><caption>\(escape(table.title))</caption>
            <thead><tr>\(head)</tr></thead><tbody>
            \(body)
            </tbody></table>

            """
    }

    static func page(title: String, body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title))</title>
        <style>
        body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
        h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.5em; border-bottom: 1px solid #ccc; }
        nav { margin-bottom: 1em; } nav form { display: inline; margin-left: 1em; }
        table { border-collapse: collapse; margin: .5em 0 1em; } caption { text-align: left; font-weight: 600; white-space: nowrap; }
        th, td { border: 1px solid #ddd; padding: 2px 6px; } td.n { text-align: right; }
        dl { display: grid; grid-template-columns: max-content auto; gap: 0 1em; } dd { margin: 0; }
        svg { display: block; margin: .5em 0; } svg text { font: 11px system-ui, sans-serif; }
        </style></head>
        <body><h1>\(escape(title))</h1>
        \(body)
        </body></html>

        """
    }
}
