/// Splits a hook's command into words as a POSIX shell would for quoting — `'…'` literal, `"…"`
/// with `\"` and `\\`, `\` outside quotes — and does nothing else: no variables, globs, pipes or
/// redirections. The incident reaches the program in its environment only, so nothing a VM sends
/// is ever read as a command.
enum CommandWords {
    static func split(_ text: String) throws(HookError) -> [String] {
        var words: [String] = []
        var word = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for character in text {
            if escaped {
                if quote == "\"", character != "\"", character != "\\" { word.append("\\") }
                word.append(character)
                escaped = false
                continue
            }
            switch (quote, character) {
            case (nil, " "), (nil, "\t"), (nil, "\n"):
                if inWord { words.append(word) }
                word = ""
                inWord = false
            case (nil, "'"), (nil, "\""):
                quote = character
                inWord = true
            case ("'", "'"), ("\"", "\""):
                quote = nil
            case (nil, "\\"), ("\"", "\\"):
                escaped = true
                inWord = true
            default:
                word.append(character)
                inWord = true
            }
        }
        guard quote == nil, !escaped else { throw HookError("--exec \(text): unterminated quote or escape") }
        if inWord { words.append(word) }
        return words
    }
}
