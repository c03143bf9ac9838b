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
        (["record", "--greeting-timeout", "0", "/run/vm.qmp"], "--greeting-timeout must be positive"),
    ])
    func rejectsBadRecordArgumentsWithAUsefulMessage(_ arguments: [String], message: String) {
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
