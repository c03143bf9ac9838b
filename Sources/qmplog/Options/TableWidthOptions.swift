import ArgumentParser
import Foundation

/// `--wide`, and the width tables are fitted to otherwise.
struct TableWidthOptions: ParsableArguments {
    @Flag(help: "Print every table cell in full instead of cutting long text to the terminal's width.")
    var wide = false

    /// The columns a table fits: none with --wide; else $COLUMNS, the terminal's width, or 80 when
    /// the output is no terminal.
    var width: Int? {
        if wide { return nil }
        if let columns = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init), columns > 0 {
            return columns
        }
        var size = winsize()
        if isatty(STDOUT_FILENO) == 1, ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 {
            return Int(size.ws_col)
        }
        return 80
    }
}
