import EventStore
import Foundation
import Hooks
import QMPTestSupport
import Testing

/// `qmplog record --on CLASS --exec COMMAND`, run as an operator runs it: the built binary, a real
/// database, fake peers for what QEMU cannot send here and a real QEMU for the rest.
@Suite(.serialized)
struct RecordHooksTests {
    // MARK: - Told once, with the incident in the environment

    @Test func eachIncidentRunsItsHooksOnceWithTheIncidentInTheEnvironment() async throws {
        let directory = try TemporaryDirectory(prefix: "hooks")
        defer { directory.remove() }
        let hook = try HookScript(in: directory)
        // A VM whose name is shell syntax, an old QEMU's double GUEST_PANICKED, then the panic's SHUTDOWN.
        let name = #"web1$(touch PWNED);`touch PWNED2` "x""#
        let now = Int64(Date().timeIntervalSince1970)
        let panicData =
            #"{"action": "poweroff", "info": {"type": "hyper-v", "arg1": 1, "arg2": 2, "arg3": 3, "arg4": 4, "arg5": 5}}"#
        let server = try await FakeQMPServer.start(
            at: directory.file("vm.qmp"),
            behavior: .qemu(
                name: name.replacingOccurrences(of: "\"", with: "\\\""),
                events: [
                    FakeQMPBehavior.event("GUEST_PANICKED", data: panicData, seconds: now, micro: 100),
                    FakeQMPBehavior.event("GUEST_PANICKED", data: panicData, seconds: now, micro: 300_000),
                    FakeQMPBehavior.event(
                        "SHUTDOWN",
                        data: #"{"guest": true, "reason": "guest-panic"}"#,
                        seconds: now,
                        micro: 400_000
                    ),
                ],
                close: false
            )
        )
        defer { Task { await server.stop() } }
        let database = directory.file("events.sqlite")
        let qmplog = try Self.record(
            [
                "--db", database, server.path,
                "--on", "panic", "--exec", hook.command("panic"),
                "--on", "any-stop", "--exec", hook.command("stop"),
                "--on", "killed,watchdog,io-error", "--exec", hook.command("never"),
            ],
            in: directory
        )
        defer { qmplog.kill9() }

        try await Self.waitUntil { hook.runs().count >= 2 }
        // Later commits rescan the same events: nothing runs twice.
        try await Task.sleep(for: .seconds(2))
        qmplog.send(signal: SIGTERM)
        #expect(try await qmplog.waitForExit() == 0, "\(Self.output(directory))")

        let runs = hook.runs().sorted { $0.label < $1.label }
        #expect(runs.map(\.label) == ["panic", "stop"], "\(runs)")
        let panic = try #require(runs.first)
        #expect(panic.environment["QMPLOG_VM"] == name)
        #expect(panic.environment["QMPLOG_KIND"] == "panic")
        #expect(panic.environment["QMPLOG_CLASS"] == "panic")
        #expect(panic.environment["QMPLOG_TIME_US"] == String(now * 1_000_000 + 100))
        #expect(panic.environment["QMPLOG_EVIDENCE"] == "GUEST_PANICKED action=poweroff type=hyper-v")
        let event = try #require(panic.environment["QMPLOG_EVENT"]?.data(using: .utf8))
        let json = try #require(try JSONSerialization.jsonObject(with: event) as? [String: Any])
        #expect(json["event"] as? String == "GUEST_PANICKED")
        #expect((json["data"] as? [String: Any])?["action"] as? String == "poweroff")
        #expect(panic.environment["QMPLOG_VM_UUID"] == nil, "QEMU's all-zero UUID names no VM")
        #expect(panic.environment["QMPLOG_DATABASE"] == database)
        let stop = try #require(runs.last)
        #expect(stop.environment["QMPLOG_KIND"] == "stop")
        #expect(stop.environment["QMPLOG_CLASS"] == "guest-panic")
        #expect(stop.environment["QMPLOG_TIME_US"] == String(now * 1_000_000 + 400_000))
        #expect(stop.environment["QMPLOG_EVENT"]?.contains(#""reason": "guest-panic""#) == true)
        // Nothing the VM sent was run: the name reached the hook as text only.
        #expect(!FileManager.default.fileExists(atPath: directory.file("PWNED")))
        #expect(!FileManager.default.fileExists(atPath: directory.file("PWNED2")))

        let history = try await EventDatabase.openForReading(path: database).incidentHistory()
        #expect(
            history.map { "\($0.incident.kind):\($0.incident.incidentClass)" } == ["panic:panic", "stop:guest-panic"]
        )
        #expect(history.flatMap(\.runs).map(\.outcome) == ["exit 0", "exit 0"])
    }

    // MARK: - At least once across kill -9

    @Test func aHookRunningWhenTheRecorderIsKilledRunsAgainAfterTheRestart() async throws {
        let directory = try TemporaryDirectory(prefix: "hooks")
        defer { directory.remove() }
        let hook = try HookScript(in: directory, sleepUnless: directory.file("fast"))
        let now = Int64(Date().timeIntervalSince1970)
        let server = try await FakeQMPServer.start(
            at: directory.file("vm.qmp"),
            behavior: .qemu(
                name: "db2",
                events: [FakeQMPBehavior.event("WATCHDOG", data: #"{"action": "pause"}"#, seconds: now)],
                close: false
            )
        )
        defer { Task { await server.stop() } }
        let database = directory.file("events.sqlite")
        let arguments = ["--db", database, server.path, "--on", "watchdog", "--exec", hook.command("watchdog")]
        let first = try Self.record(arguments, in: directory)
        defer { first.kill9() }
        try await Self.waitUntil { !hook.started().isEmpty }

        // When the recorder dies while the hook runs
        first.kill9()
        _ = try await first.waitForExit()
        for pid in hook.started().map(\.pid) { kill(-pid, SIGKILL) }
        try Data().write(to: URL(fileURLWithPath: directory.file("fast")))

        // Then the restarted recorder runs it again for the same incident, and only once more
        let second = try Self.record(arguments, in: directory)
        defer { second.kill9() }
        try await Self.waitUntil { hook.runs().count == 1 }
        try await Task.sleep(for: .seconds(2))
        second.send(signal: SIGTERM)
        #expect(try await second.waitForExit() == 0, "\(Self.output(directory))")
        let started = hook.started()
        #expect(started.count == 2)
        #expect(Set(started.map(\.incident)).count == 1, "both runs are of the one incident")
        #expect(hook.runs().map { $0.environment["QMPLOG_INCIDENT_ID"] } == [started.first?.incident])
        let history = try await EventDatabase.openForReading(path: database).incidentHistory()
        #expect(history.count == 1)
        #expect(history.first?.runs.map(\.outcome) == ["exit 0"])
    }

    // MARK: - Bounded: slow hooks and floods never hold recording

    @Test func aFloodOfIncidentsWithSlowHooksIsBoundedAndRecordingGoesOn() async throws {
        let directory = try TemporaryDirectory(prefix: "hooks")
        defer { directory.remove() }
        let now = Int64(Date().timeIntervalSince1970)
        var behavior = FakeQMPBehavior.qemu(name: "flood", close: false)
        let count = 300
        behavior.storm = (
            count,
            { n in FakeQMPBehavior.event("WATCHDOG", data: #"{"action": "none"}"#, seconds: now, micro: Int64(n)) }
        )
        let server = try await FakeQMPServer.start(at: directory.file("vm.qmp"), behavior: behavior)
        defer { Task { await server.stop() } }
        let database = directory.file("events.sqlite")
        let qmplog = try Self.record(
            [
                "--db", database, server.path, "--on", "watchdog", "--exec", "sleep 60",
                "--hook-concurrency", "2", "--hook-queue", "10",
            ],
            in: directory
        )
        defer { qmplog.kill9() }

        // Every event is committed and every incident stored while two 60 s hooks run.
        try await Self.waitUntil {
            let runs = try await EventDatabase.openForReading(path: database).incidentHistory().flatMap(\.runs)
            return runs.count == count && runs.filter { $0.outcome != nil }.count >= count - 13
        }
        #expect(try await EventDatabase.openForReading(path: database).allEvents().count == count)
        qmplog.send(signal: SIGTERM)
        #expect(try await qmplog.waitForExit() == 0, "\(Self.output(directory))")

        let runs = try await EventDatabase.openForReading(path: database).incidentHistory().flatMap(\.runs)
        let pending = runs.filter { $0.outcome == nil }
        let dropped = runs.filter { $0.outcome?.hasPrefix("dropped") == true }
        // Two running, ten queued and one taken for the next free place: the rest dropped, and the
        // unfinished ones wait for the next start.
        #expect((10...13).contains(pending.count), "\(pending.count) pending")
        #expect(dropped.count == count - pending.count)
        #expect(Self.output(directory).contains("Hook queue full"))
    }

    // MARK: - A hook is its own process group, its own queue, and gets no secret

    /// A hook that leaves `sleep 400` behind and ignores SIGTERM: its timeout ends the whole group;
    /// one still running when the recorder is stopped: the SIGTERM ends its whole group.
    @Test(arguments: [true, false])
    func aTimeoutOrAStopEndsTheHooksWholeProcessGroup(timingOut: Bool) async throws {
        let directory = try TemporaryDirectory(prefix: "hooks")
        defer { directory.remove() }
        let now = Int64(Date().timeIntervalSince1970)
        let server = try await FakeQMPServer.start(
            at: directory.file("vm.qmp"),
            behavior: .qemu(
                name: "db3",
                events: [FakeQMPBehavior.event("WATCHDOG", data: #"{"action": "none"}"#, seconds: now)],
                close: false
            )
        )
        defer { Task { await server.stop() } }
        let trap = timingOut ? "trap '' TERM; " : ""
        let leaver = "sh -c '\(trap)sleep 400 & echo $! > \(directory.file("left")); while :; do sleep 1; done'"
        let qmplog = try Self.record(
            [
                "--db", directory.file("events.sqlite"), server.path, "--hook-timeout", timingOut ? "1" : "120",
                "--on", "watchdog", "--exec", leaver,
            ],
            in: directory
        )
        defer { qmplog.kill9() }
        var left: Int32?
        try await Self.waitUntil {
            left = (try? String(contentsOfFile: directory.file("left"), encoding: .utf8)).flatMap {
                Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            return left != nil
        }
        let pid = try #require(left)
        func isAlive() -> Bool {
            // A zombie (its parent is gone and nobody reaped it yet) has ended.
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            return !stat.isEmpty && !stat.contains(") Z ")
        }
        defer { kill(pid, SIGKILL) }
        if !timingOut {
            #expect(isAlive())
            qmplog.send(signal: SIGTERM)
            #expect(try await qmplog.waitForExit() == 0, "\(Self.output(directory))")
        }
        try await Self.waitUntil { !isAlive() }
    }

    /// One hook that hangs cannot take the queue of another: each hook has its own.
    @Test func aSlowHookNeverCrowdsOutAnother() async throws {
        let directory = try TemporaryDirectory(prefix: "hooks")
        defer { directory.remove() }
        let hook = try HookScript(in: directory)
        let now = Int64(Date().timeIntervalSince1970)
        var behavior = FakeQMPBehavior.qemu(name: "flood", close: false)
        let count = 15
        behavior.storm = (
            count,
            { n in FakeQMPBehavior.event("WATCHDOG", data: #"{"action": "none"}"#, seconds: now, micro: Int64(n)) }
        )
        let server = try await FakeQMPServer.start(at: directory.file("vm.qmp"), behavior: behavior)
        defer { Task { await server.stop() } }
        let qmplog = try Self.record(
            [
                "--db", directory.file("events.sqlite"), server.path, "--hook-concurrency", "2", "--hook-queue", "20",
                "--on", "watchdog", "--exec", "sleep 60",
                "--on", "watchdog", "--exec", hook.command("working"),
            ],
            in: directory
        )
        defer { qmplog.kill9() }
        try await Self.waitUntil { hook.runs().count == count }
        qmplog.send(signal: SIGTERM)
        #expect(try await qmplog.waitForExit() == 0, "\(Self.output(directory))")
        #expect(!Self.output(directory).contains("Hook queue full"))
    }

    /// `record --once --on …`: the one-VM wrapper tells what it recorded before it exits, and its
    /// hooks see no secret of qmplog's environment unless `--hook-env` passes it.
    @Test func onceRunsTheHooksOfWhatItRecordedAndPassesNoSecrets() async throws {
        let directory = try TemporaryDirectory(prefix: "hooks")
        defer { directory.remove() }
        let hook = try HookScript(in: directory)
        let now = Int64(Date().timeIntervalSince1970)
        let server = try await FakeQMPServer.start(
            at: directory.file("vm.qmp"),
            behavior: .qemu(
                name: "once1",
                events: [
                    FakeQMPBehavior.event(
                        "SHUTDOWN",
                        data: #"{"guest": false, "reason": "host-signal"}"#,
                        seconds: now
                    )
                ]
            )
        )
        defer { Task { await server.stop() } }
        var environment = ProcessInfo.processInfo.environment
        environment["PGPASSWORD"] = "s3cret"
        environment["HTTPS_PROXY"] = "http://proxy.example:3128"
        let qmplog = try ChildProcess(
            QmplogBinaryTests.binary,
            arguments: [
                "record", "--once", "--db", directory.file("events.sqlite"), server.path,
                "--on", "any-stop", "--exec", hook.command("stop"), "--hook-env", "HTTPS_PROXY",
            ],
            environment: environment,
            outputPath: directory.file("qmplog.out")
        )
        defer { qmplog.kill9() }
        #expect(try await qmplog.waitForExit(timeout: .seconds(60)) == 0, "\(Self.output(directory))")
        let runs = hook.runs()
        #expect(runs.map(\.label) == ["stop"], "\(runs)")
        let run = try #require(runs.first)
        #expect(run.environment["QMPLOG_CLASS"] == "host-signal")
        #expect(run.environment["PGPASSWORD"] == nil)
        #expect(run.environment["HTTPS_PROXY"] == "http://proxy.example:3128")
        #expect(run.environment["PATH"] != nil)
    }

    // MARK: - Real QEMU

    @Test(.enabled(if: QEMUProcess.shouldRun))
    func aRealWatchdogCrashLoopIsOneIncidentAndAKillIsKilled() async throws {
        let directory = try TemporaryDirectory(prefix: "hooks")
        defer { directory.remove() }
        let hook = try HookScript(in: directory)
        let qemu = try QEMUProcess(
            bootSector: .ib700Watchdog,
            extraArguments: ["-device", "ib700", "-action", "watchdog=reset"]
        )
        defer { qemu.terminate() }
        let database = directory.file("events.sqlite")
        let qmplog = try Self.record(
            [
                "--db", database, qemu.recorderSocket,
                "--on", "crashloop", "--exec", hook.command("crashloop"),
                "--on", "watchdog", "--exec", hook.command("watchdog"),
                "--on", "killed", "--exec", hook.command("killed"),
            ],
            in: directory
        )
        defer { qmplog.kill9() }
        try await QmplogBinaryTests.waitForSession(database: database)

        // When the guest's watchdog resets it again and again, and then QEMU is killed
        try QMPTestDriver(path: qemu.controlSocket).execute("cont")
        try await Self.waitUntil(timeout: .seconds(60)) { hook.runs().filter { $0.label == "watchdog" }.count >= 4 }
        qemu.send(signal: SIGKILL)
        try await Self.waitUntil { hook.runs().contains { $0.label == "killed" } }
        try await Task.sleep(for: .seconds(2))
        qmplog.send(signal: SIGTERM)
        #expect(try await qmplog.waitForExit() == 0, "\(Self.output(directory))")

        // Then each firing is told, the loop once however many scans saw it grow, and the kill as killed
        let firings = try await EventDatabase.openForReading(path: database).allEvents().filter {
            $0.name == "WATCHDOG"
        }
        let runs = hook.runs()
        #expect(runs.filter { $0.label == "watchdog" }.count == firings.count)
        let loops = runs.filter { $0.label == "crashloop" }
        #expect(loops.count == 1, "\(loops)")
        #expect(Int(loops.first?.environment["QMPLOG_COUNT"] ?? "") ?? 0 >= 3)
        #expect(loops.first?.environment["QMPLOG_KIND"] == "crashloop")
        let killed = runs.filter { $0.label == "killed" }
        #expect(killed.count == 1)
        #expect(killed.first?.environment["QMPLOG_CLASS"] == "killed")
        #expect(killed.first?.environment["QMPLOG_EVENT"] == "null")
    }

    // MARK: - Command line

    @Test func hookOptionsAreCheckedBeforeRecording() async throws {
        let directory = try TemporaryDirectory(prefix: "hooks")
        defer { directory.remove() }
        let cases: [([String], String)] = [
            (["--on", "panic"], "Give each --on CLASS its --exec COMMAND (1 --on, 0 --exec)"),
            (["--on", "panics", "--exec", "true"], "--on panics: not an incident class"),
            (["--on", "unknown", "--exec", "true"], "--on unknown: not an incident class"),
            (["--on", "panic", "--exec", "'unterminated"], "unterminated quote"),
            (["--on", "panic", "--exec", "/nonexistent/hook"], "--exec /nonexistent/hook: no such file"),
            (["--on", "panic", "--exec", "no-such-command --flag"], "--exec no-such-command: no such command on PATH"),
            (["--on", "panic", "--exec", "/etc/passwd"], "--exec /etc/passwd: not an executable file"),
            (["--on", "panic", "--exec", "/tmp"], "--exec /tmp: not an executable file"),
            (["--on", "panic", "--exec", "true", "--hook-env", "A=B"], "--hook-env A=B: give a variable's name"),
        ]
        for (arguments, message) in cases {
            let (code, output) = try await QmplogBinaryTests.run(
                ["record", "--db", directory.file("e.sqlite"), "/run/x.qmp"] + arguments,
                in: directory
            )
            #expect(code == 64, "\(arguments)")
            #expect(output.contains(message), "\(arguments): \(output)")
        }
    }

    @Test func helpIsPrintedByTheBinary() async throws {
        let directory = try TemporaryDirectory(prefix: "help")
        defer { directory.remove() }
        for arguments in [["--help"], ["help", "record"], ["record", "--help"], ["report", "--help"]] {
            let (code, output) = try await QmplogBinaryTests.run(arguments, in: directory)
            #expect(code == 0, "\(arguments): \(output)")
            #expect(output.hasPrefix("OVERVIEW:"), "\(arguments): \(output)")
        }
    }

    // MARK: - Helpers

    static func record(_ arguments: [String], in directory: TemporaryDirectory) throws -> ChildProcess {
        try #require(FileManager.default.isExecutableFile(atPath: QmplogBinaryTests.binary))
        return try ChildProcess(
            QmplogBinaryTests.binary,
            arguments: ["record", "--log-level", "info"] + arguments,
            outputPath: directory.file("qmplog.out")
        )
    }

    static func output(_ directory: TemporaryDirectory) -> String {
        (try? String(contentsOfFile: directory.file("qmplog.out"), encoding: .utf8)) ?? ""
    }

    static func waitUntil(timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while !((try? await condition()) ?? false) {
            guard clock.now < deadline else { throw QEMUTestError("timed out") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// A hook an operator might write: records each run's QMPLOG_* environment in a file of its own.
struct HookScript {
    struct Run: CustomStringConvertible {
        var label: String
        var environment: [String: String]
        var description: String { "\(label) \(environment)" }
    }

    let directory: TemporaryDirectory
    let path: String

    /// - Parameter sleepUnless: the hook marks its start, then sleeps 30 s unless this file exists.
    init(in directory: TemporaryDirectory, sleepUnless: String? = nil) throws {
        self.directory = directory
        path = directory.file("hook.sh")
        try FileManager.default.createDirectory(atPath: directory.file("runs"), withIntermediateDirectories: true)
        let wait = sleepUnless.map { #"[ -e "\#($0)" ] || sleep 30"# } ?? ""
        let script = """
            #!/bin/sh
            out="\(directory.file("runs"))/$1-$QMPLOG_INCIDENT_ID-$$"
            echo "$QMPLOG_INCIDENT_ID $$" > "$out.started"
            \(wait)
            env -0 > "$out.tmp" && mv "$out.tmp" "$out.env"
            """
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
    }

    /// The command line for `--exec`: this script, told which hook it is.
    func command(_ label: String) -> String { "\(path) \(label)" }

    /// The runs that finished, each with its whole environment.
    func runs() -> [Run] {
        files(ending: ".env").compactMap { file in
            guard let data = FileManager.default.contents(atPath: directory.file("runs/\(file)")) else { return nil }
            var environment: [String: String] = [:]
            for entry in data.split(separator: 0) {
                let text = String(decoding: entry, as: UTF8.self)
                guard let equals = text.firstIndex(of: "=") else { continue }
                environment[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            return Run(label: String(file.prefix { $0 != "-" }), environment: environment)
        }
    }

    /// The runs that started: the incident id and the hook's pid.
    func started() -> [(incident: String, pid: Int32)] {
        files(ending: ".started").compactMap { file in
            let text = (try? String(contentsOfFile: directory.file("runs/\(file)"), encoding: .utf8)) ?? ""
            let words = text.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            guard words.count == 2, let pid = Int32(words[1]) else { return nil }
            return (words[0], pid)
        }
    }

    private func files(ending suffix: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.file("runs"))) ?? []).filter {
            $0.hasSuffix(suffix)
        }
        .sorted()
    }
}
