import EventStore
import Foundation
import Reports

/// A request's query string read as a report's options: the same names and forms as the command
/// line (`since`, `until`, `vm`, `interval`, `by`), each refused with the parameter's name.
struct HTTPQuery {
    let parameters: [(name: String, value: String)]

    init(_ query: String?) {
        parameters = (query ?? "").split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text)
            }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    func all(_ name: String) -> [String] { parameters.filter { $0.name == name }.map(\.value).filter { !$0.isEmpty } }

    func first(_ name: String) -> String? { all(name).first }

    /// The report query these parameters describe.
    ///
    /// - Parameter allowed: the parameters the route takes; any other is an error.
    func reportQuery(now: Int64, allowed: Set<String>) throws(BadParameter) -> ReportQuery {
        for parameter in parameters where !allowed.contains(parameter.name) {
            throw BadParameter(
                parameter.name,
                "unknown parameter; this route takes \(allowed.sorted().joined(separator: ", "))"
            )
        }
        var query = ReportQuery(machines: all("vm"), now: now)
        for (name, assign) in [("since", \ReportQuery.since), ("until", \ReportQuery.until)]
            as [(String, WritableKeyPath<ReportQuery, Int64?>)]
        {
            guard let text = first(name) else { continue }
            do {
                query[keyPath: assign] = try ReportTimeParser.parse(text, now: now)
            } catch {
                throw BadParameter(name, error.message)
            }
        }
        if let text = first("interval") {
            guard let interval = ReportInterval(rawValue: text) else {
                throw BadParameter(
                    "interval",
                    "must be one of \(ReportInterval.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            query.interval = interval
        }
        if let by = first("by") {
            guard by == "vm" else { throw BadParameter("by", "takes 'vm'") }
            query.byMachine = true
        }
        if let since = query.since, let until = query.until, since >= until {
            throw BadParameter("since", "must be earlier than until")
        }
        return query
    }
}

/// A request parameter that cannot be used: answered 400 with a JSON error naming it.
struct BadParameter: Error {
    let parameter: String
    let message: String

    init(_ parameter: String, _ message: String) {
        self.parameter = parameter
        self.message = message
    }

    /// `vm` naming no VM: a few of the known names at most, and never the database's path (the
    /// terminal's message has both; a client over HTTP needs neither the whole fleet nor the path).
    init(unknownMachine error: ReportsError) {
        let (wanted, known) = error.unknownMachines ?? ([], [])
        var message = "no VM named \(wanted.joined(separator: ", "))"
        if !known.isEmpty {
            message += "; known VMs include \(known.prefix(5).joined(separator: ", "))"
            if known.count > 5 { message += " (\(known.count) in all: /api/vms lists them)" }
        }
        self.init("vm", message)
    }
}
