import EventStore
import Foundation
import Testing

@testable import Reports

/// `/metrics`' families: bounded labels, and never one label set twice in a family.
struct FleetMetricsTests {
    /// Reasons and actions a peer invented are all `other`: one sample each, summed.
    @Test func inventedReasonsAreOneOtherSampleNotSeveral() async throws {
        let fixture = try await FixtureDatabase([
            (
                "odd",
                [
                    .init(lines: [
                        FixtureDatabase.event(
                            "SHUTDOWN",
                            at: 1_795_780_000,
                            data: #"{"guest": false, "reason": "Made Up"}"#
                        ),
                        FixtureDatabase.event("RESET", at: 1_795_780_001, data: #"{"guest": false, "reason": "x"}"#),
                        FixtureDatabase.event(
                            "SHUTDOWN",
                            at: 1_795_780_002,
                            data: #"{"guest": false, "reason": "Also!"}"#
                        ),
                        FixtureDatabase.event("WATCHDOG", at: 1_795_780_010, data: #"{"action": "Boom"}"#),
                        FixtureDatabase.event("WATCHDOG", at: 1_795_780_020, data: #"{"action": "BANG"}"#),
                        FixtureDatabase.event("odd event", at: 1_795_780_030),
                        FixtureDatabase.event("Odder", at: 1_795_780_031),
                    ])
                ]
            )
        ])
        defer { fixture.remove() }
        let families = try await FleetMetrics.families(of: fixture.database, now: FixtureDatabase.now, version: "t")
        for family in families {
            let labelSets = family.samples.map { $0.labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",") }
            #expect(Set(labelSets).count == labelSets.count, "\(family.name): \(labelSets)")
        }
        let shutdowns = try #require(families.first { $0.name == "qmplog_vm_shutdowns_total" })
        #expect(shutdowns.samples.map(\.value) == [2], "\(shutdowns.samples)")
        #expect(shutdowns.samples.first?.labels.last?.1 == "other")
        let watchdog = try #require(families.first { $0.name == "qmplog_vm_watchdog_events_total" })
        #expect(watchdog.samples.map(\.value) == [2] && watchdog.samples.first?.labels.last?.1 == "other")
    }
}
