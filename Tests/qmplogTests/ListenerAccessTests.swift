import EventStore
import Foundation
import QMPTestSupport
import Testing

/// `record --listen` facing other users, a second recorder and a careless umask.
@Suite(.serialized)
struct ListenerAccessTests {
    /// A directory the user `nobody` owns, inside one it can reach.
    private func nobodysDirectory(in directory: TemporaryDirectory) throws -> String {
        chmod(directory.path, 0o755)
        let own = directory.file("nobody")
        try FileManager.default.createDirectory(atPath: own, withIntermediateDirectories: false)
        chown(own, 65534, 65534)
        return own
    }

    @Test(.enabled(if: getuid() == 0, "running the recorder as another user needs root"))
    func onlyAllowedUsersMayConnectAndOthersAreRefusedAndLogged() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let own = try nobodysDirectory(in: directory)
        for (allowed, expectSession) in [("64055", false), ("0", true)] {
            // Given a recorder running as nobody, listening for QEMU in group nogroup, allowing one uid
            let socket = own + "/listen-\(allowed).sock"
            let database = own + "/events-\(allowed).sqlite"
            let log = directory.file("record-\(allowed).log")
            let port = try ServeTests.Fleet.freePort()
            let recorder = try ChildProcess(
                "/usr/bin/setpriv",
                arguments: [
                    "--reuid=65534", "--regid=65534", "--clear-groups", QmplogBinaryTests.binary, "record",
                    "--db", database, "--listen", socket, "--listen-group", "nogroup", "--listen-allow-uid", allowed,
                    "--http", "127.0.0.1:\(port)",
                ],
                outputPath: log
            )
            defer { recorder.kill9() }
            try await QmplogBinaryTests.waitUntil { FileManager.default.fileExists(atPath: socket) }
            let attributes = try FileManager.default.attributesOfItem(atPath: socket)
            #expect(attributes[.posixPermissions] as? Int == 0o660)
            #expect(attributes[.groupOwnerAccountName] as? String == "nogroup")

            // When a QEMU running as root (uid 0) connects
            let qemu = try await FakeQMPServer.connectOut(
                to: socket,
                behavior: .qemu(name: "vm", events: [FakeQMPBehavior.event("STOP")], close: false)
            )
            if expectSession {
                // Then an allowed user is recorded
                try await QmplogBinaryTests.waitForSession(database: database)
            } else {
                // Then anyone else is refused, with who it was in the log
                try await QmplogBinaryTests.waitUntil {
                    ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("Connection refused")
                }
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                #expect(text.contains("uid 0") && text.contains("its user is not allowed"), "\(text)")
                // and counted where Prometheus sees it.
                let metrics = try await ServeTests.Fleet.get("http://127.0.0.1:\(port)/metrics").body
                #expect(metrics.contains("\nqmplog_recorder_connections_refused_total 1\n"), "\(metrics)")
            }
            await qemu.close()
            recorder.send(signal: SIGTERM)
            #expect(try await recorder.waitForExit() == 0)
            let sessions = try await EventDatabase.openForReading(path: database).allSessions()
            #expect(sessions.isEmpty != expectSession, "allowed \(allowed): \(sessions)")
        }
    }

    @Test func aLiveListenerIsNeverReplacedAndAStaleSocketIs() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let socket = directory.file("listen.sock")
        let first = try ChildProcess(
            QmplogBinaryTests.binary,
            arguments: ["record", "--db", directory.file("a.sqlite"), "--listen", socket],
            outputPath: directory.file("a.log")
        )
        defer { first.kill9() }
        try await QmplogBinaryTests.waitUntil { FileManager.default.fileExists(atPath: socket) }

        // A second recorder on the same path fails, and the first keeps its socket
        let (code, output) = try await QmplogBinaryTests.run(
            ["record", "--db", directory.file("b.sqlite"), "--listen", socket],
            in: directory
        )
        #expect(code != 0)
        #expect(output.contains("another process is listening on it"), "\(output)")
        let qemu = try await FakeQMPServer.connectOut(to: socket, behavior: .qemu(name: "vm", close: false))
        try await QmplogBinaryTests.waitForSession(database: directory.file("a.sqlite"))
        await qemu.close()

        // Once the first is killed, its socket is stale and a new recorder takes the path
        first.kill9()
        let third = try ChildProcess(
            QmplogBinaryTests.binary,
            arguments: ["record", "--db", directory.file("c.sqlite"), "--listen", socket],
            outputPath: directory.file("c.log")
        )
        defer { third.kill9() }
        // (QEMU's reconnect=N retries until the new listener is there.)
        var again: FakeQMPServer.OutboundConnection?
        try await QmplogBinaryTests.waitUntil {
            again = try await FakeQMPServer.connectOut(to: socket, behavior: .qemu(name: "vm", close: false))
            return true
        }
        try await QmplogBinaryTests.waitForSession(database: directory.file("c.sqlite"))
        await again?.close()
    }

    @Test func everyListenSocketIsPrivateUnderAnOpenUmask() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // Given 24 listen paths and umask 000 (several sockets bound at once)
        let sockets = (1...24).map { directory.file("l\($0).sock") }
        let recorder = try ChildProcess(
            "/bin/sh",
            arguments: [
                "-c", "umask 000; exec \"$@\"", "sh", QmplogBinaryTests.binary, "record", "--db",
                directory.file("events.sqlite"),
            ] + sockets.flatMap { ["--listen", $0] },
            outputPath: directory.file("record.log")
        )
        defer { recorder.kill9() }
        try await QmplogBinaryTests.waitUntil { sockets.allSatisfy { FileManager.default.fileExists(atPath: $0) } }

        // Then every one of them is 0600, and nothing was left beside them
        for socket in sockets {
            #expect(try FileManager.default.attributesOfItem(atPath: socket)[.posixPermissions] as? Int == 0o600)
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter {
            $0.hasPrefix(".qmplog")
        }
        #expect(leftovers.isEmpty)
        recorder.send(signal: SIGTERM)
        #expect(try await recorder.waitForExit() == 0)
    }
}
