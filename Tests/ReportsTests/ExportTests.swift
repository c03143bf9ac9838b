import EventStore
import Foundation
import QMP
import QMPTestSupport
import Reports
import Testing

struct ExportTests {
    @Test func ndjsonRoundTripsEveryStoredEvent() async throws {
        let fleet = try await ReportGoldenTests.makeFleet()
        defer { fleet.remove() }
        let database = try EventDatabase.openForReading(path: fleet.directory.file("events.sqlite"))

        let text = try await export(database, format: .ndjson)

        let objects = try text.split(separator: "\n").map { try JSONValue(parsing: Array($0.utf8)) }
        let stored = try await database.allEvents()
        let machines = try await database.allMachines()
        try #require(objects.count == stored.count)
        for (object, event) in zip(objects, stored.sorted { $0.id < $1.id }) {
            #expect(object["id"]?.int64Value == event.id)
            #expect(object["vm"]?.stringValue == machines.first { $0.id == event.machineId }?.name)
            #expect(object["event"]?.stringValue == event.name)
            #expect(object["seconds"]?.int64Value == event.seconds)
            #expect(object["microseconds"]?.int64Value == event.microseconds)
            #expect(object["guest"]?.boolValue == event.guest)
            #expect(object["reason"]?.stringValue == event.reason)
            #expect(object["action"]?.stringValue == event.action)
            #expect(object["panic_type"]?.stringValue == event.panicType)
            let data = event.data.map { try? JSONValue(parsing: Array($0.utf8)) } ?? nil
            #expect(object["data"] == (data ?? .null))
            if let time = event.time {
                #expect(object["time"]?.stringValue == Timestamp.rfc3339(microseconds: time))
            }
        }
        let keys = objects.first.map { value -> [String] in
            guard case .object(let members) = value else { return [] }
            return members.map(\.key)
        }
        #expect(keys == EventExporter.columns)
    }

    @Test func jsonIsOneArrayAndFiltersByEventAndVM() async throws {
        let fleet = try await ReportGoldenTests.makeFleet()
        defer { fleet.remove() }
        let database = try EventDatabase.openForReading(path: fleet.directory.file("events.sqlite"))

        let text = try await export(database, format: .json, events: ["SHUTDOWN"], machines: ["alpha"])

        guard case .array(let rows) = try JSONValue(parsing: Array(text.utf8)) else {
            Issue.record("not an array: \(text)")
            return
        }
        #expect(rows.map { $0["reason"]?.stringValue } == ["host-qmp-quit", "guest-shutdown", "host-signal"])
        #expect(rows.allSatisfy { $0["vm"]?.stringValue == "alpha" })
        #expect(rows.first?["data"]?.compactText == #"{"guest":false,"reason":"host-qmp-quit"}"#)
    }

    @Test func csvQuotesCommasQuotesAndNewlinesAndNeutralisesFormulas() async throws {
        let fixture = try await FixtureDatabase([
            (
                "=HYPERLINK(\"x\")",
                [
                    .init(lines: [
                        FixtureDatabase.event(
                            "BLOCK_IO_ERROR",
                            at: 1_795_000_000,
                            data: #"{"device": "a,b", "reason": "No \"space\"\nleft", "action": "-stop"}"#
                        ),
                        FixtureDatabase.event("STOP", at: -1, -1),
                    ])
                ]
            )
        ])
        defer { fixture.remove() }
        let database = try EventDatabase.openForReading(path: fixture.directory.file("events.sqlite"))

        let text = try await export(database, format: .csv)

        let lines = text.components(separatedBy: "\r\n")
        #expect(lines[0] == EventExporter.columns.joined(separator: ","))
        #expect(lines[1].hasPrefix(#"1,"'=HYPERLINK(""x"")",2026-11-18T"#))
        #expect(lines[1].contains(#",1795000000,0,"#))
        // The reason holds a real line break (quoted); data keeps JSON's \n escape; '-stop needs no quotes.
        let reasonToData =
            "\"No \"\"space\"\"\nleft\",'-stop,,,"
            + #""{""device"":""a,b"",""reason"":""No \""space\""\nleft"",""action"":""-stop""}""#
        #expect(lines[1].hasSuffix("BLOCK_IO_ERROR,," + reasonToData))
        #expect(
            lines[2].hasPrefix(#"2,"'=HYPERLINK(""x"")",,-1,-1,"#),
            "QEMU's -1/-1 leaves time empty, numbers unguarded"
        )
        #expect(lines.count == 4 && lines[3].isEmpty)
    }

    @Test func anEventLargerThanTheOutputBufferIsExportedWhole() async throws {
        let big = String(repeating: "x", count: 300_000)
        let fixture = try await FixtureDatabase([
            (
                "vm1",
                [
                    .init(lines: [
                        FixtureDatabase.event("BLOCK_IO_ERROR", at: 1_795_000_000, data: #"{"device": "\#(big)"}"#),
                        FixtureDatabase.event("STOP", at: 1_795_000_001),
                    ])
                ]
            )
        ])
        defer { fixture.remove() }
        let database = try EventDatabase.openForReading(path: fixture.directory.file("events.sqlite"))

        for format in [EventExporter.Format.csv, .ndjson] {
            let text = try await export(database, format: format)
            #expect(text.contains(big), "\(format)")
            #expect(text.hasSuffix(format == .csv ? "STOP,,,,,,\r\n" : #""data":null}"# + "\n"), "\(format)")
        }
    }

    @Test func aFullDiskIsAWriteFailureNamingTheCause() async throws {
        let fixture = try await FixtureDatabase([
            ("vm1", [.init(lines: [FixtureDatabase.event("STOP", at: 1_795_000_001)])])
        ])
        defer { fixture.remove() }
        let database = try EventDatabase.openForReading(path: fixture.directory.file("events.sqlite"))
        let descriptor = open("/dev/full", O_WRONLY)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        let error = await #expect(throws: ReportsError.self) {
            try await EventExporter.export(
                from: database,
                query: FixtureDatabase.query(),
                format: .ndjson,
                to: descriptor
            )
        }
        #expect(error?.code == .writeFailed && error?.message.contains("cannot write the export") == true)
    }

    private func export(
        _ database: EventDatabase,
        format: EventExporter.Format,
        events: [String] = [],
        machines: [String] = []
    ) async throws -> String {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("out")
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        try #require(descriptor >= 0)
        try await EventExporter.export(
            from: database,
            query: FixtureDatabase.query(machines: machines),
            events: events,
            format: format,
            to: descriptor
        )
        close(descriptor)
        return try String(contentsOfFile: path, encoding: .utf8)
    }
}
