import Collector
import EventStore
import Foundation
import QMPTestSupport
import Reports
import Testing

/// `report pauses` on what a real QEMU under TCG did. Every VM here starts with `-S`: that is no
/// pause (it has not run yet), but `prelaunch` time in `report states`.
@Suite(.serialized, .enabled(if: QEMUProcess.shouldRun, "qemu-system-x86_64 is not installed"))
struct PauseReportRealQEMUTests {
    @Test func stopAndContIsAHostStopAsLongAsItLasted() async throws {
        let recorded = try await record(.idle) { _, driver in
            try driver.execute("cont")
            try driver.execute("stop")
            try await Task.sleep(for: .seconds(1))
            try driver.execute("cont")
            try driver.execute("quit")
        }
        let episodes = try recorded.episodes()
        try #require(episodes.count == 1, "\(episodes)")
        #expect(episodes[0].cause == "host-stop" && episodes[0].evidence.hasPrefix("STOP"))
        let stop = try recorded.time(of: "STOP")
        let resume = try #require(recorded.events.filter { $0.name == "RESUME" }.last?.time)
        #expect(episodes[0].start == stop && episodes[0].end == resume)
        #expect(episodes[0].duration >= 1_000_000 && episodes[0].duration < 10_000_000)
    }

    @Test func aPanicThatPausesIsAGuestPanicPauseUntilQEMUGoes() async throws {
        let recorded = try await record(.pvpanic, ["-device", "pvpanic", "-action", "panic=pause"]) { _, driver in
            try driver.execute("cont")
            try await Task.sleep(for: .seconds(2))
            try driver.execute("quit")
        }
        let episode = try #require(try recorded.episodes().last)
        #expect(episode.cause == "guest-panic")
        #expect(episode.start == (try recorded.time(of: "STOP")))
        #expect(episode.end == (try #require(recorded.sessions.first?.endedAt)))
        #expect(episode.evidence.hasSuffix("until QEMU went away"))
    }

    @Test func aWatchdogThatPausesIsAWatchdogPause() async throws {
        let recorded = try await record(.ib700Watchdog, ["-device", "ib700", "-action", "watchdog=pause"]) {
            _,
            driver in
            try driver.execute("cont")
            try await Task.sleep(for: .seconds(4))
            try driver.execute("quit")
        }
        #expect(recorded.events.map(\.name).contains("WATCHDOG"))
        let episode = try #require(try recorded.episodes().last)
        #expect(episode.cause == "watchdog")
        #expect(episode.start == (try recorded.time(of: "STOP")))
    }

    /// A guest held shut down by `-no-shutdown` is shut down, not paused: no episode.
    @Test func aShutdownHeldByNoShutdownIsNoPause() async throws {
        let recorded = try await record(.acpiPowerOff, ["-no-shutdown"]) { _, driver in
            try driver.execute("cont")
            try await Task.sleep(for: .seconds(1))
            try driver.execute("quit")
        }
        #expect(recorded.events.map(\.name).contains("STOP"))
        let episodes = try recorded.episodes()
        #expect(episodes.isEmpty, "\(episodes)")
    }

    @Test func anIOErrorWithRerrorStopIsAnIOErrorPause() async throws {
        // A second disk behind blkdebug, every read failing with EIO
        let files = try TemporaryDirectory(prefix: "blk")
        defer { files.remove() }
        try "[inject-error]\nevent = \"read_aio\"\nerrno = \"5\"\n".write(
            toFile: files.file("blkdebug.conf"),
            atomically: true,
            encoding: .utf8
        )
        try Data(count: 1 << 20).write(to: URL(fileURLWithPath: files.file("data.img")))
        let disk = "file=blkdebug:\(files.file("blkdebug.conf")):\(files.file("data.img")),format=raw,if=ide,index=2"
        let recorded = try await record(.secondaryDiskRead, ["-drive", disk + ",rerror=stop,werror=stop"]) {
            _,
            driver in
            try driver.execute("cont")
            try await Task.sleep(for: .seconds(1))
            try driver.execute("quit")
        }
        let episode = try #require(try recorded.episodes().last)
        #expect(episode.cause == "io-error")
        #expect(episode.start == (try recorded.time(of: "STOP")))
        #expect(
            episode.evidence.hasPrefix("BLOCK_IO_ERROR action=stop reason=Input/output error"),
            "\(episode.evidence)"
        )
        #expect(episode.end == (try #require(recorded.sessions.first?.endedAt)))
    }

    @Test func anS3SuspendLastsUntilWakeup() async throws {
        let recorded = try await record(.acpiSuspend) { _, driver in
            try driver.execute("cont")
            try await Task.sleep(for: .seconds(2))
            try driver.execute("system_wakeup")
            try await Task.sleep(for: .milliseconds(500))
            try driver.execute("quit")
        }
        let suspend = try #require(try recorded.episodes().first { $0.cause == "suspend" }, "\(recorded.events)")
        #expect(suspend.start == (try recorded.time(of: "SUSPEND")))
        #expect(suspend.end == (try recorded.time(of: "WAKEUP")))
    }

    // MARK: - Helpers

    struct Episode {
        var start: Int64
        var end: Int64
        var cause: String
        var duration: Int64
        var evidence: String
    }

    struct Recorded {
        var events: [RecordedEvent]
        var sessions: [Session]
        var pauses: ReportResult

        func time(of name: String) throws -> Int64 {
            try #require(events.first { $0.name == name }?.time, "no \(name) in \(events.map(\.name))")
        }

        func episodes() throws -> [Episode] {
            let table = try #require(pauses.tables.first { $0.name == "episodes" })
            return table.rows.compactMap { row in
                guard case .time(let start) = row[1], case .time(let end) = row[2], case .text(let cause) = row[3],
                    case .duration(let duration) = row[4], case .text(let evidence) = row[6]
                else { return nil }
                return Episode(start: start, end: end, cause: cause, duration: duration, evidence: evidence)
            }
        }
    }

    /// Starts QEMU paused running `bootSector`, records it until it exits, and runs `report pauses`.
    private func record(
        _ bootSector: BootSector,
        _ extraArguments: [String] = [],
        _ drive: (QEMUProcess, QMPTestDriver) async throws -> Void
    ) async throws -> Recorded {
        let harness = try RecordingHarness()
        defer { harness.remove() }
        try await harness.recordQEMU(bootSector, extraArguments, drive)
        let pauses = try await ReportKind.pauses.run(
            on: harness.database,
            query: ReportQuery(now: Int64(Date().timeIntervalSince1970 * 1_000_000))
        )
        return Recorded(
            events: try await harness.database.allEvents(),
            sessions: try await harness.database.allSessions(),
            pauses: pauses
        )
    }
}
