import EventStore
import Foundation
import QMPTestSupport
import Reports
import Testing

/// `report pauses` on histories real QEMU cannot produce here: an I/O error pause, a VM found
/// paused, a pause still going, a window that starts in the middle of one.
struct PauseReportTests {
    typealias Fleet = StopReportTests
    static let t0 = Fleet.t0
    static let second = Fleet.second

    @Test func anIOErrorThatStopsTheVMIsAnIOErrorPause() async throws {
        try await withDatabase { database in
            try await Fleet.session(
                database,
                at: 0,
                until: 100,
                reason: "eof",
                detailed: [
                    (
                        "BLOCK_IO_ERROR", 10,
                        #"{"device":"","node-name":"disk0","operation":"write","action":"stop","nospace":true,"reason":"No space left on device"}"#
                    ),
                    ("STOP", 10, nil), ("RESUME", 40, nil),
                ]
            )
            let episodes = try await Self.episodes(database)
            #expect(episodes.map(\.cause) == ["io-error"])
            #expect(episodes.first?.start == Self.t0 + 10 * Self.second)
            #expect(episodes.first?.end == Self.t0 + 40 * Self.second)
        }
    }

    @Test func aVMFoundPausedIsPausedFromTheAttachAndAPauseStillGoingLastsUntilNow() async throws {
        try await withDatabase { database in
            // Given a VM already paused when qmplog attached, resumed, then stopped again and still stopped
            try await Fleet.session(
                database,
                at: 0,
                until: nil,
                status: "paused",
                reason: "",
                detailed: [("RESUME", 5, nil), ("STOP", 20, nil)]
            )
            let now = Self.t0 + 60 * Self.second
            let episodes = try await Self.episodes(database, now: now)
            #expect(episodes.map(\.cause) == ["unknown", "host-stop"])
            #expect(episodes[0].end == Self.t0 + 5 * Self.second)
            #expect(episodes[1].end == now && episodes[1].ongoing)
            // A window starting in the middle of the second pause counts its part inside
            let windowed = try await Self.episodes(database, since: Self.t0 + 30 * Self.second, now: now)
            #expect(windowed.map(\.cause) == ["host-stop"])
            #expect(windowed.first?.start == Self.t0 + 30 * Self.second)
        }
    }

    // MARK: - Helpers

    struct Episode {
        var start: Int64
        var end: Int64
        var cause: String
        var ongoing: Bool
    }

    private func withDatabase(_ body: (EventDatabase) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await body(try EventDatabase.openForWriting(path: directory.file("events.sqlite")))
    }

    static func episodes(_ database: EventDatabase, since: Int64? = nil, now: Int64 = t0 + 86_400 * second)
        async throws -> [Episode]
    {
        let result = try await ReportKind.pauses.run(on: database, query: ReportQuery(since: since, now: now))
        let table = try #require(result.tables.first { $0.name == "episodes" })
        return table.rows.compactMap { row in
            guard case .time(let start) = row[1], case .time(let end) = row[2], case .text(let cause) = row[3],
                case .text(let ongoing) = row[5]
            else { return nil }
            return Episode(start: start, end: end, cause: cause, ongoing: ongoing == "yes")
        }
    }
}
