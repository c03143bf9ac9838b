import ArgumentParser
import Testing

@testable import qmplog

struct CommandParsingTests {
    @Test func aBareDatabaseFileNameIsInTheCurrentDirectory() throws {
        let options = try StoreOptions.parse(["--db", "events.sqlite"])
        #expect(try options.prepareForWriting() == "events.sqlite")
        #expect(throws: ValidationError.self) {
            try StoreOptions.parse(["--db", "no/such/dir/e.sqlite"]).prepareForWriting()
        }
    }

    @Test func parsesRecordWithEveryTargetForm() throws {
        let command = try QMPLogCommand.parseAsRoot([
            "record", "--db", "/tmp/x.sqlite", "--once", "/run/vm1.qmp", "unix:/run/vm2.qmp", "tcp:127.0.0.1:4444",
        ])
        let record = try #require(command as? QMPLogCommand.Record)
        #expect(record.once)
        #expect(record.store.db == "/tmp/x.sqlite")
        #expect(record.targets == ["/run/vm1.qmp", "unix:/run/vm2.qmp", "tcp:127.0.0.1:4444"])
        #expect(record.logging.logLevel == .info)
    }

    @Test(arguments: [
        (["record"], "Name at least one QMP monitor"),
        (["record", "tcp:host"], "'tcp:host' is not tcp:HOST:PORT"),
        (["record", "tcp:host:99999"], "'tcp:host:99999' is not tcp:HOST:PORT"),
        (["record", "unix:"], "'unix:' has an empty socket path"),
        (["record", "--greeting-timeout", "0", "/run/vm.qmp"], "--greeting-timeout must be more than 0"),
        // Numbers that would overflow a conversion to microseconds or a duration.
        (["record", "--greeting-timeout", "1e300", "/run/vm.qmp"], "--greeting-timeout must be more than 0"),
        (["record", "--greeting-timeout", "nan", "/run/vm.qmp"], "--greeting-timeout must be more than 0"),
        (["record", "--retry-max", "inf", "/run/vm.qmp"], "--retry-max must be 0.5 to 86400 seconds"),
        (["record", "--rollup-every", "9223372036854775807", "/run/vm.qmp"], "--rollup-every must be 0 (never) to"),
        (["record", "--max-message-size", "9223372036854775807", "/run/vm.qmp"], "--max-message-size must be"),
        (["report", "shutdowns", "--powerdown-window", "9223372036854775807"], "--powerdown-window must be 0 to"),
        (
            ["report", "summary", "--since", "99999999999999d"],
            "--since '99999999999999d' reaches back before the year 1"
        ),
        (["report", "summary", "--since", "9223372036854775807s"], "reaches back before the year 1"),
        (["report", "summary", "--since", "99999999999999999999999w"], "reaches back before the year 1"),
        // Dates that do not exist and offsets beyond ±23:59.
        (["report", "summary", "--since", "2026-02-31"], "--since '2026-02-31' is not a valid RFC 3339 time"),
        (["report", "summary", "--since", "2026-02-29"], "is not a valid RFC 3339 time"),
        (["report", "summary", "--until", "2026-11-27T09:00:00+99:99"], "--until '2026-11-27T09:00:00+99:99' is not"),
        (["report", "summary", "--since", "0000-01-01"], "is not a valid RFC 3339 time"),
        (["report", "summary", "--since", "0001-01-01T00:00:00+01:00"], "is not a valid RFC 3339 time"),
    ])
    func rejectsBadArgumentsWithAUsefulMessage(_ arguments: [String], message: String) {
        #expect {
            _ = try QMPLogCommand.parseAsRoot(arguments)
        } throws: { error in
            QMPLogCommand.message(for: error).contains(message)
        }
    }

    @Test func findsTheDatabaseByFlagThenEnvironmentThenXDGStateHome() {
        let environment = ["QMPLOG_DB": "/env/db.sqlite", "XDG_STATE_HOME": "/xdg", "HOME": "/home/op"]
        #expect(StoreOptions.resolve(explicit: "/flag.sqlite", environment: environment) == "/flag.sqlite")
        #expect(StoreOptions.resolve(explicit: nil, environment: environment) == "/env/db.sqlite")
        #expect(
            StoreOptions.resolve(explicit: nil, environment: ["XDG_STATE_HOME": "/xdg", "HOME": "/home/op"])
                == "/xdg/qmplog/events.sqlite"
        )
        #expect(
            StoreOptions.resolve(explicit: nil, environment: ["XDG_STATE_HOME": "relative", "HOME": "/home/op"])
                == "/home/op/.local/state/qmplog/events.sqlite",
            "XDG requires an absolute path; a relative one is ignored"
        )
    }
}
