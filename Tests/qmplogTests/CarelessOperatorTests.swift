import EventStore
import Foundation
import QMPTestSupport
import Testing

/// What a careless operator types: output that cannot be written, an export onto the database, a
/// mistyped path.
@Suite(.serialized)
struct CarelessOperatorTests {
    /// A database with one recorded VM and event.
    private func recordedDatabase(in directory: TemporaryDirectory) async throws -> String {
        let server = try await FakeQMPServer.start(
            at: directory.file("vm.qmp"),
            behavior: .qemu(name: "vm", events: [FakeQMPBehavior.event("STOP")])
        )
        defer { Task { await server.stop() } }
        let database = directory.file("events.sqlite")
        let (code, output) = try await QmplogBinaryTests.run(
            ["record", "--once", "--db", database, server.path],
            in: directory
        )
        #expect(code == 0, "\(output)")
        return database
    }

    @Test func readersExitNonZeroWhenStandardOutputCannotBeWritten() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = try await recordedDatabase(in: directory)
        for command in ["report summary", "report states --format json", "vms", "export", "rollup"] {
            // Given standard output on a full device
            let log = directory.file("\(command.replacingOccurrences(of: " ", with: "-")).err")
            let shell = try ChildProcess(
                "/bin/sh",
                arguments: [
                    "-c", "exec \"$0\" \(command) --db \"$1\" > /dev/full", QmplogBinaryTests.binary, database,
                ],
                outputPath: log
            )
            // Then the command fails and says why
            let code = try await shell.waitForExit()
            let stderr = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            #expect(code != 0, "\(command): \(stderr)")
            #expect(stderr.contains("No space left on device"), "\(command): \(stderr)")
        }
    }

    @Test func exportRefusesTheDatabaseAndReplacesAnOldFileWithAPrivateOne() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = try await recordedDatabase(in: directory)
        symlink(database, directory.file("alias.sqlite"))

        // When the output names the database, by its path, a symlink, or its WAL
        for target in [database, directory.file("alias.sqlite"), database + "-wal"] where access(target, F_OK) == 0 {
            let (code, output) = try await QmplogBinaryTests.run(
                ["export", "--db", database, "-o", target],
                in: directory
            )
            #expect(code == 64, "\(target): \(output)")
            #expect(output.contains("is the database"), "\(output)")
        }
        // Then the database is intact
        #expect(try await EventDatabase.openForReading(path: database).allEvents().map(\.name) == ["STOP"])

        // And an existing world-readable output file is replaced by a 0600 one
        let old = directory.file("old.csv")
        _ = FileManager.default.createFile(
            atPath: old,
            contents: Data("old\n".utf8),
            attributes: [.posixPermissions: 0o644]
        )
        let (code, output) = try await QmplogBinaryTests.run(["export", "--db", database, "-o", old], in: directory)
        #expect(code == 0, "\(output)")
        #expect(try FileManager.default.attributesOfItem(atPath: old)[.posixPermissions] as? Int == 0o600)
        #expect(try String(contentsOfFile: old, encoding: .utf8).hasPrefix("id,vm,time"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter {
            $0.hasPrefix(".qmplog")
        }
        #expect(leftovers.isEmpty)
    }

    @Test func aMistypedOrEmptyDatabasePathIsAnError() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let typo = directory.file("typo.sqlite")

        let (code, output) = try await QmplogBinaryTests.run(["rollup", "--db", typo], in: directory)
        #expect(code == 1, "\(output)")
        #expect(output.contains("no qmplog database at \(typo)"))
        #expect(!FileManager.default.fileExists(atPath: typo), "rollup never creates a database")

        for command in [["rollup"], ["report", "summary"], ["vms"], ["export"], ["record", "/run/vm.qmp"]] {
            let (emptyCode, emptyOutput) = try await QmplogBinaryTests.run(command + ["--db", ""], in: directory)
            #expect(emptyCode == 64, "\(command): \(emptyOutput)")
            #expect(emptyOutput.contains("--db needs a file path"), "\(command): \(emptyOutput)")
        }
    }
}

extension CarelessOperatorTests {
    @Test(.enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
    func readersReadADatabaseOnAReadOnlyMount() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // Given a recorded database on a file system then remounted read-only (a backup, a snapshot)
        let mountPoint = directory.file("ro")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: false)
        func run(_ tool: String, _ arguments: [String]) async throws -> Int32 {
            try await ChildProcess(tool, arguments: arguments, outputPath: directory.file("mount.log")).waitForExit()
        }
        try #require(try await run("/bin/mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", mountPoint]) == 0)
        defer {
            _ = try? ChildProcess("/bin/umount", arguments: [mountPoint], outputPath: directory.file("umount.log"))
        }
        let recorded = try await recordedDatabase(in: directory)
        let database = mountPoint + "/events.sqlite"
        try FileManager.default.copyItem(atPath: recorded, toPath: database)
        try #require(try await run("/bin/mount", ["-o", "remount,ro", mountPoint]) == 0)

        // When people read it, Then every reader answers from it
        for command in [["report", "summary"], ["vms"], ["export"]] {
            let (code, output) = try await QmplogBinaryTests.run(command + ["--db", database], in: directory)
            #expect(code == 0, "\(command): \(output)")
            #expect(!output.contains("not writable"), "\(output)")
        }
        let (_, csv) = try await QmplogBinaryTests.run(["export", "--db", database], in: directory)
        #expect(csv.contains(",STOP,"), "\(csv)")
        // And a writer says what it cannot do
        let (code, output) = try await QmplogBinaryTests.run(["rollup", "--db", database], in: directory)
        #expect(code != 0)
        #expect(output.contains("is not writable") || output.contains("Read-only"), "\(output)")
    }
}

extension CarelessOperatorTests {
    @Test func theDatabasePathIsNotTrustedBlindly() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = try await FakeQMPServer.start(
            at: directory.file("vm.qmp"),
            behavior: .qemu(name: "vm", events: [FakeQMPBehavior.event("STOP")], close: false)
        )
        defer { Task { await server.stop() } }

        // A dangling symlink: nothing is created where it points
        let dangling = directory.file("dangling.sqlite")
        symlink(directory.file("elsewhere.sqlite"), dangling)
        let (code, output) = try await QmplogBinaryTests.run(
            ["record", "--once", "--db", dangling, server.path],
            in: directory
        )
        #expect(code != 0)
        #expect(output.contains("is a symbolic link to a missing file"), "\(output)")
        #expect(!FileManager.default.fileExists(atPath: directory.file("elsewhere.sqlite")))

        // A symlink to an empty file: it does not become a database
        let empty = directory.file("notes.txt")
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        let toEmpty = directory.file("to-empty.sqlite")
        symlink(empty, toEmpty)
        let (emptyCode, emptyOutput) = try await QmplogBinaryTests.run(
            ["record", "--once", "--db", toEmpty, server.path],
            in: directory
        )
        #expect(emptyCode != 0)
        #expect(emptyOutput.contains("is a symbolic link to an empty file"), "\(emptyOutput)")
        #expect(try FileManager.default.attributesOfItem(atPath: empty)[.size] as? Int == 0)

        // An existing world-readable database in a world-writable directory: made private, and said
        let shared = directory.file("shared")
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: false)
        chmod(shared, 0o777)
        let database = shared + "/events.sqlite"
        _ = try EventDatabase.openForWriting(path: database)
        chmod(database, 0o644)
        let recorder = try ChildProcess(
            QmplogBinaryTests.binary,
            arguments: ["record", "--db", database, server.path],
            outputPath: directory.file("record.log")
        )
        defer { recorder.kill9() }
        try await QmplogBinaryTests.waitForSession(database: database)
        recorder.send(signal: SIGTERM)
        _ = try await recorder.waitForExit()
        let log = (try? String(contentsOfFile: directory.file("record.log"), encoding: .utf8)) ?? ""
        #expect(try FileManager.default.attributesOfItem(atPath: database)[.posixPermissions] as? Int == 0o600)
        #expect(log.contains("had mode 644; set to 600"), "\(log)")
        #expect(log.contains("is writable by other users"), "\(log)")
    }
}

extension CarelessOperatorTests {
    @Test(.enabled(if: getuid() == 0, "making a device node needs root"))
    func exportToADeviceWritesToItAndNeverReplacesIt() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = try await recordedDatabase(in: directory)
        // Given a device node as the output (like /dev/null or /dev/stdout), here a copy of /dev/null
        let device = directory.file("null")
        #expect(mknod(device, S_IFCHR | 0o666, (1 << 8) | 3) == 0)

        let (code, output) = try await QmplogBinaryTests.run(["export", "--db", database, "-o", device], in: directory)

        // Then the export is written through it and it is still the device
        #expect(code == 0, "\(output)")
        var info = stat()
        #expect(stat(device, &info) == 0 && (info.st_mode & S_IFMT) == S_IFCHR)
    }
}
