#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The two timestamps of libvirt's per-domain log, and virsh's: libvirt's own lines
/// `2026-12-02 09:25:43.276+0000`, QEMU's (`-msg timestamp=on`) `2026-12-02T09:25:43.010261Z`.
enum HistoryTimestamp {
    /// Microseconds since the Unix epoch, or `nil` when `text` does not start with either form or
    /// names a time before 1970 (no instant a log of QEMU's can hold, stored times are never negative).
    ///
    /// - Returns: the time and how many characters it took.
    static func parse(_ text: Substring) -> (microseconds: Int64, length: Int)? {
        let bytes = Array(text.utf8.prefix(32))
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[range] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard bytes.count >= 20, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
            bytes[10] == UInt8(ascii: " ") || bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"),
            bytes[16] == UInt8(ascii: ":"), bytes[19] == UInt8(ascii: "."),
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            year >= 1970, (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var end = 20
        var fraction = 0
        var digits = 0
        while end < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[end]) {
            if digits < 6 {
                fraction = fraction * 10 + Int(bytes[end] - UInt8(ascii: "0"))
                digits += 1
            }
            end += 1
        }
        guard digits > 0 else { return nil }
        while digits < 6 {
            fraction *= 10
            digits += 1
        }
        // The zone: "Z", or "+0000" as libvirt writes it (always UTC).
        if end < bytes.count, bytes[end] == UInt8(ascii: "Z") {
            end += 1
        } else if end + 5 <= bytes.count, bytes[end] == UInt8(ascii: "+") || bytes[end] == UInt8(ascii: "-"),
            let offset = number(end + 1..<end + 5)
        {
            let sign = bytes[end] == UInt8(ascii: "-") ? -1 : 1
            end += 5
            let minutes = sign * (offset / 100 * 60 + offset % 100)
            return utc(year, month, day, hour, minute, second, fraction, offsetMinutes: minutes).map { ($0, end) }
        } else {
            return nil
        }
        return utc(year, month, day, hour, minute, second, fraction, offsetMinutes: 0).map { ($0, end) }
    }

    private static func utc(
        _ year: Int,
        _ month: Int,
        _ day: Int,
        _ hour: Int,
        _ minute: Int,
        _ second: Int,
        _ micro: Int,
        offsetMinutes: Int
    ) -> Int64? {
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = Int64(timegm(&parts)) - Int64(offsetMinutes) * 60
        return seconds < 0 ? nil : seconds * 1_000_000 + Int64(micro)
    }
}
