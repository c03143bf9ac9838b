import EventStore
import Foundation
import GRDB
import Testing

struct RollupStoreTests {
    @Test func factsRoundTripWhateverTheirKeysHold() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rollup-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = try EventDatabase.openForWriting(path: directory.appendingPathComponent("e.sqlite").path)
        let keys: [[String]] = [
            ["guest", "guest-shutdown"], ["", ""], ["a:b", "3:x"], ["unit\u{1F}separator"], ["Größe", "日本"],
        ]
        let facts = keys.enumerated().map { Rollup.Fact(report: "r", machineId: 1, key: $1, value: Int64($0 + 1)) }
        try await database.replaceRollup(
            Rollup(cut: 100, lastEventId: 0, powerdownWindow: 300, builtAt: 100, facts: facts)
        )

        let read = try #require(try await database.currentRollup(report: "r"))

        #expect(Set(read.facts) == Set(facts))
        #expect(read.cut == 100)
        #expect(try await database.currentRollup(report: "other")?.facts.isEmpty == true)
    }
}
