import EventStore
import Reports
import Testing

/// Windows at the edges of what can be asked: the year 1, the future, huge series.
struct ReportWindowLimitsTests {
    @Test func aWindowFromTheYearOneOverManyVMsIsAnswered() async throws {
        // Given 150 VMs with one session each
        let fleet = try await FixtureDatabase(
            (1...150).map { index in
                (
                    name: "vm\(index)",
                    sessions: [FixtureDatabase.SessionSpec(lines: [FixtureDatabase.event("STOP", at: 1_795_000_000)])]
                )
            }
        )
        defer { fleet.remove() }

        // When the summary covers everything since 0001-01-01 (window length × VMs overflows Int64)
        let result = try await fleet.run(.summary, FixtureDatabase.query(since: Timestamp.earliest))

        // Then it answers: 150 VMs, each observed 2 s of ~2,000 years
        #expect(result.value("vms") == .integer(150))
        guard case .number(let fraction) = result.value("observed_fraction") else {
            Issue.record("observed_fraction is \(String(describing: result.value("observed_fraction")))")
            return
        }
        #expect(fraction > 0 && fraction < 1e-9)
    }

    @Test func aSeriesLongerThanAMillionRowsIsRefusedBeforeAnyWork() async throws {
        let fleet = try await FixtureDatabase([
            (
                name: "vm",
                sessions: [FixtureDatabase.SessionSpec(lines: [FixtureDatabase.event("STOP", at: 1_795_000_000)])]
            )
        ])
        defer { fleet.remove() }

        let error = await #expect(throws: ReportsError.self) {
            try await fleet.run(.states, FixtureDatabase.query(since: Timestamp.earliest, interval: .hour))
        }
        #expect(error?.code == .invalidQuery)
        #expect(
            error?.message.contains("--interval hour over this window is 1775878") == true,
            "\(String(describing: error))"
        )
        // A day series over the same window fits (about 740,000 buckets).
        let daily = try await fleet.run(.states, FixtureDatabase.query(since: Timestamp.earliest, interval: .day))
        #expect((daily.table("series")?.rows.count ?? 0) > 700_000)
    }

    @Test func aSinceInTheFutureWithoutUntilIsAnEmptyWindowNotAnError() async throws {
        let fleet = try await FixtureDatabase([
            (
                name: "vm",
                sessions: [FixtureDatabase.SessionSpec(lines: [FixtureDatabase.event("STOP", at: 1_795_000_000)])]
            )
        ])
        defer { fleet.remove() }
        let now = FixtureDatabase.now
        let future = ReportQuery(since: now + 3_600_000_000, now: now)

        let result = try await fleet.run(.summary, future)

        #expect(result.value("events") == .integer(0))
        let backwards = ReportQuery(since: now + 3_600_000_000, until: now, now: now)
        await #expect(throws: ReportsError.self) { try await fleet.run(.summary, backwards) }
    }

    @Test(arguments: [
        ("0001-01-01", Timestamp.earliest),
        ("9999-12-31T23:59:59.999999Z", Timestamp.latest),
        ("2024-02-29", 1_709_164_800_000_000),
        ("2026-11-27T09:00:00+23:59", 1_795_683_660_000_000),
    ])
    func parsesTheEdgesOfRFC3339(text: String, microseconds: Int64) {
        #expect(Timestamp.parseRFC3339(text) == microseconds)
    }

    @Test(arguments: [
        "2026-02-29", "2026-04-31", "2026-11-27T09:00:00+24:00", "2026-11-27T09:00:00-01:60", "0000-12-31",
    ])
    func refusesTimesThatDoNotExist(text: String) {
        #expect(Timestamp.parseRFC3339(text) == nil)
    }
}

extension ReportWindowLimitsTests {
    @Test func eventsStampedAfterTheReportRanAreCountedAndSaidSoWithoutUntil() async throws {
        // Given an event stamped an hour after "now" (a host clock ahead), beside an ordinary one
        let now = FixtureDatabase.now
        let fleet = try await FixtureDatabase([
            (
                name: "ahead",
                sessions: [
                    FixtureDatabase.SessionSpec(lines: [
                        FixtureDatabase.event("STOP", at: now / 1_000_000 - 60),
                        FixtureDatabase.event("RESUME", at: now / 1_000_000 + 3600),
                    ])
                ]
            )
        ])
        defer { fleet.remove() }

        // When a report runs without --until, Then it counts the event and says so
        let open = try await fleet.run(.summary, ReportQuery(now: now))
        #expect(open.value("events") == .integer(2))
        #expect(open.caveats.contains { $0.contains("are counted: 1 of them") }, "\(open.caveats)")
        // With --until the event is outside the window and nothing needs saying
        let bounded = try await fleet.run(.summary, ReportQuery(until: now, now: now))
        #expect(bounded.value("events") == .integer(1))
        #expect(!bounded.caveats.contains { $0.contains("No --until") })
    }
}
