import Foundation
import Reports

/// Prometheus' text exposition format (version 0.0.4) for metric families: `# HELP`, `# TYPE`,
/// then one line per sample, label values escaped (`\\`, `\"`, `\n`).
///
/// Written here rather than through swift-prometheus' registry, which copies a family's series on
/// each one added: a fleet's 20,000 series took 1.5 s a scrape, growing with the square of the
/// fleet (BENCHMARKS.md section 7).
enum PrometheusText {
    static func render(_ families: [MetricFamily]) -> String {
        var text = ""
        for family in families {
            text += "# HELP \(family.name) \(escapeHelp(family.help))\n# TYPE \(family.name) \(family.kind.rawValue)\n"
            for sample in family.samples {
                text += family.name
                if !sample.labels.isEmpty {
                    text +=
                        "{"
                        + sample.labels.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
                }
                text += " \(sample.value)\n"
            }
        }
        return text
    }

    static func escapeLabel(_ value: String) -> String {
        var escaped = ""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    static func escapeHelp(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }
}
