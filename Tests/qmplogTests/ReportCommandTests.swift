import EventStore
import Foundation
import QMPTestSupport
import Testing

/// `qmplog report`, `export`, `vms` and `demo` as an operator runs them.
@Suite(.serialized)
struct ReportCommandTests {
    @Test func aMissingDatabaseIsAnErrorNamingThePath() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let missing = directory.file("none.sqlite")
        for arguments in [
            ["report", "summary", "--db", missing], ["export", "--db", missing], ["vms", "--db", missing],
        ] {
            let (code, output) = try await QmplogBinaryTests.run(arguments, in: directory)
            #expect(code == 1, "\(arguments)")
            #expect(output.contains("no qmplog database at \(missing)"), "\(output)")
        }
        #expect(!FileManager.default.fileExists(atPath: missing), "readers never create the database")
    }

    @Test func anEmptyDatabaseGivesEmptyReportsAndExitsZero() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("events.sqlite")
        _ = try EventDatabase.openForWriting(path: path)
        let (code, output) = try await QmplogBinaryTests.run(
            ["report", "shutdowns", "--db", path, "--format", "json"],
            in: directory
        )
        #expect(code == 0)
        #expect(output.contains(#""shutdowns": 0"#))
        let (exportCode, csv) = try await QmplogBinaryTests.run(["export", "--db", path], in: directory)
        #expect(exportCode == 0)
        #expect(
            csv == "id,vm,time,seconds,microseconds,received,event,guest,reason,action,panic_type,panic_reason,data\r\n"
        )
    }

    @Test func badTimesAndUnknownVMsAreClearErrors() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("events.sqlite")
        _ = try EventDatabase.openForWriting(path: path)
        let (code, output) = try await QmplogBinaryTests.run(
            ["report", "panics", "--db", path, "--since", "yesterday"],
            in: directory
        )
        #expect(code == 64)
        #expect(output.contains("--since 'yesterday' is neither an RFC 3339 time nor a span like 24h or 7d"))
        let (vmCode, vmOutput) = try await QmplogBinaryTests.run(
            ["report", "states", "--db", path, "--vm", "web9"],
            in: directory
        )
        #expect(vmCode == 1)
        #expect(vmOutput.contains("no VM named web9"))
    }

    @Test(.enabled(if: QEMUProcess.shouldRun))
    func demoRecordsRealQEMUAndShowsAGuestInitiatedShutdown() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = directory.file("demo.sqlite")

        let (code, output) = try await QmplogBinaryTests.run(
            ["demo", "--db", database, "--log-level", "warning"],
            in: directory,
            timeout: .seconds(90)
        )

        #expect(code == 0, "\(output)")
        #expect(output.contains("qmplog report shutdowns"))
        #expect(output.contains("guest      guest-shutdown      1"), "\(output)")
        #expect(output.contains("host       host-signal         1"), "\(output)")
        let events = try await EventDatabase.openForReading(path: database).allEvents()
        #expect(events.contains { $0.name == "SHUTDOWN" && $0.guest == true && $0.reason == "guest-shutdown" })
        #expect(events.contains { $0.name == "RESET" && $0.guest == true && $0.reason == "guest-reset" })
        #expect(events.contains { $0.name == "SHUTDOWN" && $0.guest == false && $0.reason == "host-signal" })
        // The export of what the demo recorded is private to its owner.
        let file = directory.file("out.ndjson")
        let (exportCode, _) = try await QmplogBinaryTests.run(
            ["export", "--db", database, "--format", "ndjson", "-o", file],
            in: directory
        )
        #expect(exportCode == 0)
        #expect(try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").count == events.count)
        #expect(try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int == 0o600)

        // After `qmplog rollup` the same question gets the same answer (from the rollup's facts).
        let shutdowns = ["report", "shutdowns", "--db", database, "--format", "csv"]
        let (_, scanned) = try await QmplogBinaryTests.run(shutdowns, in: directory)
        let (rollupCode, rollupOutput) = try await QmplogBinaryTests.run(["rollup", "--db", database], in: directory)
        #expect(rollupCode == 0)
        #expect(rollupOutput.hasPrefix("Rolled up "), "\(rollupOutput)")
        #expect(try await EventDatabase.openForReading(path: database).currentRollup(report: "shutdowns") != nil)
        let (_, rolled) = try await QmplogBinaryTests.run(shutdowns, in: directory)
        #expect(rolled == scanned)
    }
}
