/// Formats and parses the times reports print: RFC 3339 in UTC, microsecond precision.
///
/// Written with integer calendar arithmetic (Howard Hinnant's days-from-civil) rather than
/// Foundation's formatters, because an export formats two timestamps per row and must reach a
/// million rows a second.
public enum Timestamp {
    /// `2026-11-27T09:44:14.702021Z` for microseconds since the Unix epoch.
    public static func rfc3339(microseconds: Int64) -> String {
        String(unsafeUninitializedCapacity: maximumRFC3339Length) { buffer in
            guard let base = buffer.baseAddress else { return 0 }
            return write(rfc3339: microseconds, at: base)
        }
    }

    /// Room ``write(rfc3339:at:)`` may need: a 4-digit year takes 27 bytes, any Int64 fewer than 48.
    static let maximumRFC3339Length = 48

    /// Writes the ``rfc3339(microseconds:)`` text as UTF-8 at `pointer` and returns its length:
    /// the export's per-row path, with no `String` and no bounds checks (the caller reserves room).
    @inline(__always)
    static func write(rfc3339 microseconds: Int64, at pointer: UnsafeMutablePointer<UInt8>) -> Int {
        let (seconds, micro) = floorDivide(microseconds, 1_000_000)
        let (days, secondOfDay) = floorDivide(seconds, 86_400)
        let (year, month, day) = civil(fromDays: days)
        var p = pointer + write(decimal: year, width: 4, at: pointer)
        func two(_ value: Int64, after separator: UInt8) {
            p[0] = separator
            p[1] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value / 10)
            p[2] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value % 10)
            p += 3
        }
        two(month, after: UInt8(ascii: "-"))
        two(day, after: UInt8(ascii: "-"))
        two(secondOfDay / 3600, after: UInt8(ascii: "T"))
        two(secondOfDay / 60 % 60, after: UInt8(ascii: ":"))
        two(secondOfDay % 60, after: UInt8(ascii: ":"))
        p[0] = UInt8(ascii: ".")
        p += 1 + write(decimal: micro, width: 6, at: p + 1)
        p[0] = UInt8(ascii: "Z")
        return p + 1 - pointer
    }

    /// Writes `value` in decimal, zero-padded to at least `width` digits, at `pointer` and returns
    /// its length (at most 20 + width bytes).
    @inline(__always)
    static func write(decimal value: Int64, width: Int = 1, at pointer: UnsafeMutablePointer<UInt8>) -> Int {
        var p = pointer
        if value < 0 {
            p[0] = UInt8(ascii: "-")
            p += 1
        }
        var magnitude = value.magnitude
        var length = 1
        var scale: UInt64 = 10
        while length < 20, magnitude >= scale {
            length += 1
            scale = length == 20 ? .max : scale * 10
        }
        let padded = max(length, width)
        var index = padded - 1
        repeat {
            p[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10)
            magnitude /= 10
            index -= 1
        } while index >= 0
        return p + padded - pointer
    }

    /// The first and last instants RFC 3339 can write, 0001-01-01T00:00:00Z and
    /// 9999-12-31T23:59:59.999999Z: every time qmplog takes from the command line lies between them.
    public static let earliest: Int64 = -62_135_596_800_000_000
    public static let latest: Int64 = 253_402_300_799_999_999

    /// Parses `2026-11-27T09:44:14Z`, `2026-11-27T09:44:14.5+02:00` or `2026-11-27` (midnight UTC),
    /// strictly: a day the month has, an offset of at most 23:59, years 0001 to 9999.
    ///
    /// - Returns: microseconds since the Unix epoch, or `nil` if `text` is not such a time.
    public static func parseRFC3339(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int64? {
            guard range.upperBound <= bytes.count else { return nil }
            var value: Int64 = 0
            for byte in bytes[range] {
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            return value
        }
        guard bytes.count >= 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            year >= 1, (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day)
        else { return nil }
        let days = days(fromCivil: year, month, day)
        if bytes.count == 10 { return days * 86_400_000_000 }
        guard bytes.count >= 20, bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t") || bytes[10] == 32,
            bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            hour < 24, minute < 60, second < 61
        else { return nil }
        var index = 19
        var micro: Int64 = 0
        if bytes[index] == UInt8(ascii: ".") {
            index += 1
            var digits = 0
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                if digits < 6 { micro = micro * 10 + Int64(bytes[index] - 48) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 6) { micro *= 10 }
        }
        guard index < bytes.count else { return nil }
        var offset: Int64 = 0
        switch bytes[index] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            guard index + 1 == bytes.count else { return nil }
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard index + 6 == bytes.count, bytes[index + 3] == UInt8(ascii: ":"),
                let hours = number(index + 1..<index + 3), let minutes = number(index + 4..<index + 6),
                hours < 24, minutes < 60
            else { return nil }
            offset = (hours * 3600 + minutes * 60) * (bytes[index] == UInt8(ascii: "+") ? 1 : -1)
        default:
            return nil
        }
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset
        let time = seconds * 1_000_000 + micro
        // An offset can carry 0001-01-01 or 9999-12-31 past the range.
        return (earliest...latest).contains(time) ? time : nil
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    static func floorDivide(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let (quotient, remainder) = value.quotientAndRemainder(dividingBy: divisor)
        return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
    }

    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
