import Foundation
import QMP

/// A recorded QMP exchange from `fixtures/transcripts/NAME.jsonl` (see fixtures/README.md).
public struct Transcript: Sendable {
    public let name: String
    /// Every message QEMU sent, as compact JSON text, in order.
    public let serverMessages: [String]

    /// Loads `fixtures/transcripts/NAME.jsonl`.
    public init(named name: String) throws {
        self.name = name
        let text = try String(contentsOfFile: Fixtures.path("transcripts/\(name).jsonl"), encoding: .utf8)
        serverMessages = try text.split(separator: "\n").compactMap { line in
            try JSONValue(parsing: Array(line.utf8))["in"]?.compactText
        }
    }

    /// The event lines only, in order.
    public var eventLines: [String] {
        serverMessages.filter { $0.contains(#""event":"#) }
    }

    /// Every transcript in the fixtures folder, by name.
    public static func allNames() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: Fixtures.path("transcripts"))
            .filter { $0.hasSuffix(".jsonl") }
            .map { String($0.dropLast(".jsonl".count)) }
            .sorted()
    }
}

/// Finds the repository's `fixtures/` folder from this source file, without a resource bundle.
public enum Fixtures {
    public static func path(_ relative: String) -> String {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // QMPTestSupport
            .deletingLastPathComponent()  // Sources
            .deletingLastPathComponent()  // repository
            .appendingPathComponent("fixtures")
            .appendingPathComponent(relative)
            .path
    }
}

extension FakeQMPBehavior {
    /// A fake QEMU named `name` that sends a transcript's events after the queries, then closes.
    public static func replaying(_ transcript: Transcript, name: String = "fixture-vm") -> FakeQMPBehavior {
        .qemu(name: name, events: transcript.eventLines)
    }
}
