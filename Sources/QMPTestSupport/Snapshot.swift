import Foundation
public import Testing

/// Compares `text` with `Snapshots/NAME` beside the calling test file; `RECORD_SNAPSHOTS=1`
/// re-records the file instead.
///
/// A missing snapshot is recorded and reported as an issue, so a new golden file is never taken
/// on trust silently.
public func assertSnapshot(
    _ text: String,
    named name: String,
    filePath: String = #filePath,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let path = URL(fileURLWithPath: filePath).deletingLastPathComponent()
        .appendingPathComponent("Snapshots/\(name)").path
    let record = ProcessInfo.processInfo.environment["RECORD_SNAPSHOTS"] == "1"
    guard !record, let expected = try? String(contentsOfFile: path, encoding: .utf8) else {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        if !record {
            Issue.record("recorded missing snapshot \(name); check it and commit it", sourceLocation: sourceLocation)
        }
        return
    }
    #expect(
        text == expected,
        "snapshot \(name) differs (RECORD_SNAPSHOTS=1 re-records)",
        sourceLocation: sourceLocation
    )
}
