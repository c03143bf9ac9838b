import EventStore
import Foundation
import GRDB
import QMP
import QMPTestSupport
import Testing

/// The recorder binary facing broken peers, kill -9 and a full disk.
@Suite(.serialized)
struct RecorderFaultTests {
    @Test func brokenPeersAreClosedWithSpecificErrorsWhileAGoodVMKeepsRecordingInBoundedMemory() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // Given a good VM and four broken peers
        let good = try await FakeQMPServer.start(
            at: directory.file("good.qmp"),
            behavior: .qemu(name: "good", events: [FakeQMPBehavior.event("STOP")], close: false)
        )
        let endless = try await FakeQMPServer.start(
            at: directory.file("endless.qmp"),
            behavior: .qemu(
                name: "endless",
                events: [
                    #"{"event": "BLOCK_IO_ERROR", "data": {"reason": ""# + String(repeating: "a", count: 48 << 20)
                ],
                close: false
            )
        )
        var utf8Behavior = FakeQMPBehavior.qemu(name: "utf8", events: [FakeQMPBehavior.event("STOP")], close: false)
        utf8Behavior.trailingBytes =
            Array(#"{"event": "STOP", "data": {"reason": ""#.utf8) + [0xC3, 0x28] + Array("\"}}\r\n".utf8)
        let invalidUTF8 = try await FakeQMPServer.start(at: directory.file("utf8.qmp"), behavior: utf8Behavior)
        let wrongTypes = try await FakeQMPServer.start(
            at: directory.file("types.qmp"),
            behavior: .qemu(
                name: "types",
                events: [FakeQMPBehavior.event("SHUTDOWN", data: #"{"guest": "yes", "reason": 42, "action": ["x"]}"#)],
                close: false
            )
        )
        let silent = try await FakeQMPServer.start(
            at: directory.file("silent.qmp"),
            behavior: FakeQMPBehavior(onConnect: []) { _, _ in ([], false) }
        )
        let servers = [good, endless, invalidUTF8, wrongTypes, silent]
        defer { Task { for server in servers { await server.stop() } } }
        let database = directory.file("events.sqlite")

        // When qmplog records them all for a while
        let qmplog = try ChildProcess(
            QmplogBinaryTests.binary,
            arguments: ["record", "--db", database, "--greeting-timeout", "1", "--log-format", "json"]
                + servers.map(\.path),
            outputPath: directory.file("log")
        )
        defer { qmplog.kill9() }
        // At least 4 s (the silent peer is retried), and until the two peers that send broken
        // messages have been cut off (a loaded machine reads 16 MiB slowly).
        let clock = ContinuousClock()
        let start = clock.now
        func brokenPeersEnded() async -> Bool {
            let ended = try? await EventDatabase.openForReading(path: database).writer.read { db in
                try Int.fetchOne(
                    db,
                    sql: "SELECT COUNT(DISTINCT machineId) FROM session WHERE endReason LIKE 'error:%'"
                )
            }
            return (ended ?? 0) >= 2
        }
        while qmplog.isRunning, clock.now < start.advanced(by: .seconds(30)) {
            if clock.now > start.advanced(by: .seconds(4)), await brokenPeersEnded() { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        qmplog.send(signal: SIGTERM)
        let code = try await qmplog.waitForExit()

        // Then it stopped cleanly, memory stayed bounded, and each peer's session says what was wrong
        let log = (try? String(contentsOfFile: directory.file("log"), encoding: .utf8)) ?? ""
        #expect(code == 0, "\(log)")
        #expect(
            qmplog.peakMemoryBytes < 96 << 20,
            "peak RSS \(qmplog.peakMemoryBytes >> 20) MiB with a 16 MiB message cap"
        )
        print("recorder peak RSS facing a 48 MiB unterminated message: \(qmplog.peakMemoryBytes >> 20) MiB")
        let store = try EventDatabase.openForReading(path: database)
        let machines = try await store.allMachines()
        let sessions = try await store.allSessions()
        func endReasons(_ name: String) -> [String] {
            let id = machines.first { $0.name == name }?.id
            return sessions.filter { $0.machineId == id }.compactMap(\.endReason)
        }
        #expect(
            endReasons("endless").first?.contains("exceeds the 16777216-byte limit") == true,
            "\(endReasons("endless"))"
        )
        #expect(endReasons("utf8").first?.contains("not valid UTF-8") == true, "\(endReasons("utf8"))")
        #expect(endReasons("good") == ["recorder-stopped"])
        let events = try await store.allEvents()
        let typesId = machines.first { $0.name == "types" }?.id
        let odd = try #require(events.first { $0.machineId == typesId })
        #expect(odd.name == "SHUTDOWN" && odd.guest == nil && odd.reason == nil && odd.action == nil)
        #expect(odd.data == #"{"guest": "yes", "reason": 42, "action": ["x"]}"#)
        #expect(events.contains { $0.name == "STOP" && $0.machineId == machines.first { $0.name == "good" }?.id })
        #expect(log.contains(#""level":"warning""#) && log.contains("silent.qmp") && log.contains("no QMP greeting"))
        #expect(silent.connectionCount >= 2, "a busy monitor is retried")
    }

    @Test func killMinus9AtAnyMomentLeavesAnIntactDatabaseWithAPrefixOfTheEvents() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let count = 100_000
        let flood = (1...count).map { FakeQMPBehavior.event($0 % 3 == 0 ? "RESET" : "STOP", micro: Int64($0)) }
        let server = try await FakeQMPServer.start(
            at: directory.file("flood.qmp"),
            behavior: .qemu(name: "flood", events: flood, close: false)
        )
        defer { Task { await server.stop() } }
        let database = directory.file("events.sqlite")
        var generator = SystemRandomNumberGenerator()
        var committed: [Int] = []

        for round in 1...20 {
            // Given a recorder taking in a flood, when it is killed at a random moment
            let qmplog = try ChildProcess(
                QmplogBinaryTests.binary,
                arguments: ["record", "--db", database, "--log-level", "error", server.path],
                outputPath: directory.file("log")
            )
            try await Task.sleep(for: .milliseconds(Int.random(in: 50...1200, using: &generator)))
            if round == 20 {
                // On a loaded machine start-up alone can outlast every random delay: the last kill
                // waits for a first commit, so the test also proves that events get committed.
                try await waitForFirstEvent(in: database)
            }
            qmplog.kill9()

            // Then the database is intact, and each session holds events 1…n in order, no gaps, no duplicates
            let store = try EventDatabase.openForWriting(path: database)
            let integrity = try await store.writer.read { try String.fetchAll($0, sql: "PRAGMA integrity_check") }
            #expect(integrity == ["ok"])
            let rows = try store.writer.read { db in
                try Row.fetchAll(db, sql: "SELECT sessionId, seq, microseconds FROM event ORDER BY sessionId, seq")
            }
            var perSession: [Int64: Int] = [:]
            for row in rows {
                let session: Int64 = row[0]
                let expected = (perSession[session] ?? 0) + 1
                #expect(row[1] as Int64 == Int64(expected) && row[2] as Int64 == Int64(expected))
                perSession[session] = expected
            }
            committed.append(rows.count)
        }
        #expect(committed.last ?? 0 > 0, "some events were committed: \(committed)")
        print("events committed after each kill -9: \(committed)")
    }

    @Test func sigtermDuringAFloodStoresEveryEventTheRecorderRead() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var stored: [Int] = []
        for round in 1...3 {
            // Given a recorder taking in an endless flood
            let database = directory.file("events-\(round).sqlite")
            let peer = try FloodingQMPPeer(path: directory.file("flood-\(round).qmp"), name: "flood")
            let qmplog = try ChildProcess(
                QmplogBinaryTests.binary,
                arguments: ["record", "--db", database, "--log-level", "error", peer.path],
                outputPath: directory.file("log")
            )
            defer { qmplog.kill9() }
            try await waitForFirstEvent(in: database)
            try await Task.sleep(for: .milliseconds(200 * round))

            // When it is stopped with SIGTERM
            qmplog.send(signal: SIGTERM)
            #expect(try await qmplog.waitForExit() == 0)

            // Then it stored events 1…n in order with n at least what it surely read off the socket
            let store = try EventDatabase.openForReading(path: database)
            let rows = try await store.writer.read { db in
                try String.fetchAll(db, sql: "SELECT json_extract(data, '$.n') FROM event ORDER BY id")
            }
            #expect(rows.enumerated().allSatisfy { Int($1) == $0 + 1 }, "a gap or a repeat")
            let surelyRead = peer.eventsSurelyRead
            #expect(rows.count >= surelyRead, "read at least \(surelyRead) events, stored \(rows.count)")
            #expect(try await store.allSessions().map(\.endReason) == ["recorder-stopped"])
            stored.append(rows.count)
        }
        print("events stored after SIGTERM during a flood: \(stored)")
    }

    @Test func aVMInAStormWhenTheRecorderAttachesIsStoredFromItsFirstEventAndIdentifiedBehindIt() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // Given a VM that floods a million events right after the handshake and answers each query
        // only behind them (a guest retrying failed I/O, a crash loop)
        let count = 1_000_000
        let padding = String(repeating: "x", count: 100)
        var behavior = FakeQMPBehavior.qemu(name: "storm")
        behavior.storm = (
            count,
            { n in
                #"{"timestamp": {"seconds": 1795772653, "microseconds": \#(n % 1_000_000)}, "event": "BLOCK_IO_ERROR", "data": {"device": "ide0-hd0", "n": \#(n), "pad": "\#(padding)"}}"#
            }
        )
        let server = try await FakeQMPServer.start(at: directory.file("storm.qmp"), behavior: behavior)
        defer { Task { await server.stop() } }
        let database = directory.file("events.sqlite")

        // When qmplog records it once (niced: a minute of two busy cores would starve the tests
        // running beside this one)
        let qmplog = try ChildProcess(
            "/usr/bin/nice",
            arguments: [
                "-n", "19", QmplogBinaryTests.binary, "record", "--once", "--db", database, "--log-level", "warning",
                server.path,
            ],
            outputPath: directory.file("log")
        )
        defer { qmplog.kill9() }
        let code = try await qmplog.waitForExit(timeout: .seconds(600))

        // Then every event is stored in arrival order in one session of the identified VM, in the
        // memory an established session's backlog bound allows
        let log = (try? String(contentsOfFile: directory.file("log"), encoding: .utf8)) ?? ""
        #expect(code == 0, "\(log)")
        print("recorder peak RSS taking a storm while attaching: \(qmplog.peakMemoryBytes >> 20) MiB")
        #expect(qmplog.peakMemoryBytes < 96 << 20, "peak RSS \(qmplog.peakMemoryBytes >> 20) MiB")
        let store = try EventDatabase.openForReading(path: database)
        let (stored, outOfOrder) = try await store.writer.read { db in
            let stored = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM event") ?? 0
            // The seq-th event stored is the storm's n-th, and ids follow seq.
            let outOfOrder =
                try Int.fetchOne(
                    db,
                    sql: """
                        SELECT COUNT(*) FROM event
                        WHERE seq != json_extract(data, '$.n') OR id - seq != (SELECT MIN(id) - 1 FROM event)
                        """
                ) ?? -1
            return (stored, outOfOrder)
        }
        #expect(stored == count)
        #expect(outOfOrder == 0)
        let machines = try await store.allMachines()
        #expect(machines.map(\.name) == ["storm"], "the session moved to the VM's machine; no other is left")
        let sessions = try await store.allSessions()
        #expect(sessions.map(\.machineId) == machines.map(\.id))
        #expect(sessions.map(\.initialStatus) == ["running"])
        let events = try await store.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM event WHERE machineId = ?", arguments: [machines.first?.id])
        }
        #expect(events == count)
    }

    @Test func aRecorderStartingAloneEndsTheSessionsALostRecorderLeftOpenButNeverALiveOnes() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = directory.file("events.sqlite")
        func qemu(_ name: String, _ event: String, close: Bool) async throws -> FakeQMPServer {
            try await FakeQMPServer.start(
                at: directory.file("\(name).qmp"),
                behavior: .qemu(name: name, events: [FakeQMPBehavior.event(event)], close: close)
            )
        }
        let lostVM = try await qemu("lost", "STOP", close: false)
        let liveVM = try await qemu("live", "RESUME", close: false)
        let briefVM = try await qemu("brief", "STOP", close: true)
        defer { Task { for server in [lostVM, liveVM, briefVM] { await server.stop() } } }
        func recorder(_ arguments: [String], log: String, through path: String? = nil) throws -> ChildProcess {
            try ChildProcess(
                QmplogBinaryTests.binary,
                arguments: ["record", "--db", path ?? database, "--log-level", "error"] + arguments,
                outputPath: directory.file(log)
            )
        }
        func sessions() async throws -> [String: Session] {
            let store = try EventDatabase.openForReading(path: database)
            let names = Dictionary(uniqueKeysWithValues: try await store.allMachines().map { ($0.id, $0.name ?? "") })
            return Dictionary(try await store.allSessions().map { (names[$0.machineId] ?? "", $0) }) { $1 }
        }

        func eventCount() async -> Int {
            guard let store = try? EventDatabase.openForReading(path: database) else { return 0 }
            return (try? await store.allEvents().count) ?? 0
        }

        // Given a recorder killed with its session open
        let lost = try recorder([lostVM.path], log: "lost.log")
        for _ in 0..<600 where await eventCount() == 0 { try await Task.sleep(for: .milliseconds(50)) }
        lost.kill9()
        #expect(try await sessions()["lost"]?.endedAt == nil)

        // When a recorder starts alone, it ends that session at its last event
        let live = try recorder([liveVM.path], log: "live.log")
        defer { live.kill9() }
        for _ in 0..<600 where await eventCount() < 2 { try await Task.sleep(for: .milliseconds(50)) }
        let store = try EventDatabase.openForReading(path: database)
        let stop = try #require(try await store.allEvents().first { $0.name == "STOP" })
        let ended = try #require(try await sessions()["lost"])
        #expect(ended.endReason == EventDatabase.abandonedSessionReason)
        #expect(ended.endedAt == stop.received)
        #expect(try await sessions()["live"]?.endedAt == nil)

        // And a second recorder started beside a live one leaves the live one's session open, also
        // when it reaches the database through a symbolic link (the lock is beside the real file)
        let alias = directory.file("alias.sqlite")
        try FileManager.default.createSymbolicLink(atPath: alias, withDestinationPath: database)
        let brief = try recorder(["--once", briefVM.path], log: "brief.log", through: alias)
        #expect(try await brief.waitForExit() == 0)
        #expect(try await sessions()["brief"]?.endReason == "eof")
        #expect(try await sessions()["live"]?.endedAt == nil, "the live recorder's session is not abandoned")

        // Until that one stops and ends it itself
        live.send(signal: SIGTERM)
        #expect(try await live.waitForExit() == 0)
        #expect(try await sessions()["live"]?.endReason == "recorder-stopped")
        let lockMode = try FileManager.default.attributesOfItem(atPath: database + "-recorder.lock")[.posixPermissions]
        #expect(lockMode as? Int == 0o600)
    }

    /// Polls `database` until it holds an event (at most 30 s).
    private func waitForFirstEvent(in database: String) async throws {
        for _ in 0..<600 {
            // (The recorder may not have created the schema yet.)
            if FileManager.default.fileExists(atPath: database),
                let store = try? EventDatabase.openForReading(path: database)
            {
                let count = try? await store.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM event") }
                if (count ?? 0) > 0 { return }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    @Test(.enabled(if: getuid() == 0, "mounting a small tmpfs needs root"))
    func aFullDiskStopsTheRecorderWithTheReasonAndAnIntactDatabase() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let mountPoint = directory.file("small")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: false)
        let mount = try ChildProcess(
            "/bin/mount",
            arguments: ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint],
            outputPath: directory.file("mount.log")
        )
        try #require(try await mount.waitForExit() == 0, "mount failed")
        defer {
            _ = try? ChildProcess("/bin/umount", arguments: [mountPoint], outputPath: directory.file("umount.log"))
        }
        let flood = (1...60_000).map {
            FakeQMPBehavior.event("RESET", data: #"{"guest": true, "reason": "guest-reset"}"#, micro: Int64($0))
        }
        let server = try await FakeQMPServer.start(
            at: directory.file("flood.qmp"),
            behavior: .qemu(name: "flood", events: flood, close: false)
        )
        defer { Task { await server.stop() } }
        let database = mountPoint + "/events.sqlite"

        let qmplog = try ChildProcess(
            QmplogBinaryTests.binary,
            arguments: ["record", "--db", database, server.path],
            outputPath: directory.file("log")
        )
        let code = try await qmplog.waitForExit(timeout: .seconds(120))

        let log = (try? String(contentsOfFile: directory.file("log"), encoding: .utf8)) ?? ""
        #expect(code == 1)
        #expect(log.contains("disk full writing \(database)"), "\(log)")
        let store = try EventDatabase.openForReading(path: database)
        let integrity = try await store.writer.read { try String.fetchAll($0, sql: "PRAGMA integrity_check") }
        #expect(integrity == ["ok"])
        let events = try await store.allEvents()
        #expect(!events.isEmpty)
        #expect(events.enumerated().allSatisfy { $1.seq == Int64($0 + 1) })
        let umount = try ChildProcess("/bin/umount", arguments: [mountPoint], outputPath: directory.file("umount.log"))
        _ = try await umount.waitForExit()
    }
}
