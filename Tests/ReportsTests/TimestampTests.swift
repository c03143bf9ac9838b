import Reports
import Testing

struct TimestampTests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000000Z"),
        (1_795_000_000_123_456, "2026-11-18T11:06:40.123456Z"),
        (-1, "1969-12-31T23:59:59.999999Z"),
        (951_782_400_000_001, "2000-02-29T00:00:00.000001Z"),
        (253_402_300_800_000_000, "10000-01-01T00:00:00.000000Z"),
    ])
    func formatsRFC3339InUTC(microseconds: Int64, text: String) {
        #expect(Timestamp.rfc3339(microseconds: microseconds) == text)
        #expect(Timestamp.parseRFC3339(text) == microseconds || text.hasPrefix("10000"))
    }

    @Test func formatsTheExtremesWithoutOverflow() {
        #expect(Timestamp.rfc3339(microseconds: .max).hasSuffix(".775807Z"))
        #expect(Timestamp.rfc3339(microseconds: .min).hasPrefix("-"))
    }
}
