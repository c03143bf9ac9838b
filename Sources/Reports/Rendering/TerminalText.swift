/// Text made safe for a terminal: the control characters a VM or a peer may send (ESC starting a
/// colour, cursor or title sequence, BEL, the C1 controls U+0080–U+009F such as CSI U+009B, line
/// breaks inside a table cell) are shown as visible escapes (`\e`, `\n`, `\u{9b}`) instead of
/// acting on the terminal. Everything else, including other non-ASCII text, stays as it is.
package enum TerminalText {
    package static func escaping(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == 0xC2 }) else { return text }
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x1B: escaped += "\\e"
            case 0x0A: escaped += "\\n"
            case 0x0D: escaped += "\\r"
            case 0x09: escaped += "\\t"
            case 0..<0x20, 0x7F...0x9F: escaped += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }
}
