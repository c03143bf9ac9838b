import Foundation

// The import fuzz target (Scripts/fuzz.sh) compiles this file into one module with its dependencies.
#if canImport(EventStore)
    import EventStore
#endif
#if canImport(QMP)
    import QMP
#endif

/// Reads libvirt's per-domain QEMU log (`/var/log/libvirt/qemu/NAME.log`) into events.
///
/// The lines that tell a VM's story, each stored as an event named for what wrote it (none of
/// them is a QMP event, so reports of QMP events never count them twice):
/// - `… : starting up libvirt version: …, qemu version: …` → `LIBVIRT_START` (data: the versions)
/// - `… : shutting down, reason=destroyed` → `LIBVIRT_SHUTDOWN` (reason: libvirt's)
/// - `…Z qemu-system-x86_64: terminating on signal 15 from pid 20447 (/usr/sbin/libvirtd)` →
///   `QEMU_SIGNAL`, whose sender is attached to the SHUTDOWN it caused
/// - `… : panic hyper-v: arg1='0x3e', …` / `panic s390: core='0' … reason='disabled-wait'` →
///   `GUEST_PANICKED` with the crash information (libvirt writes it only for panics that carry some)
///
/// The VM is named by the `-name guest=NAME` argument of the command line libvirt logs, else by
/// the file's name; `-uuid` gives its UUID.
///
/// Lines are read one at a time (``read(_:)``); ``events`` holds those read since the caller last
/// took them, so that memory does not grow with the file.
struct LibvirtLogParser {
    var name: String?
    var uuid: String?
    /// Events read and not yet taken.
    var events: [ImportedEvent] = []
    /// Every event read.
    private(set) var eventCount = 0
    /// Lines that looked like a record (a timestamp) but were not understood.
    var unknownLines = 0
    /// How often each line was seen, so that identical lines stay apart. Identical lines share
    /// their timestamp: only the lines of the latest timestamp are kept.
    private var seen: [Substring: Int] = [:]
    private var seenTime: Int64 = .min

    init() {}

    init(text: String) {
        for line in text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline) {
            read(line)
        }
    }

    mutating func read(_ line: Substring) {
        if line.hasPrefix("-name ") {
            name = Self.guestName(line.dropFirst(6))
            return
        }
        if line.hasPrefix("-uuid ") {
            uuid = String(line.dropFirst(6).prefix { $0 != " " && $0 != "\\" })
            return
        }
        guard let (time, length) = HistoryTimestamp.parse(line) else { return }
        var rest = line.dropFirst(length)
        if rest.hasPrefix(": ") { rest = rest.dropFirst(2) } else if rest.hasPrefix(" ") { rest = rest.dropFirst() }
        if time != seenTime {
            seen.removeAll(keepingCapacity: true)
            seenTime = time
        }
        seen[line, default: 0] += 1
        let key = "libvirt-log:\(line)#\(seen[line] ?? 1)"
        if rest.hasPrefix("starting up ") {
            let libvirt = Self.field("libvirt version: ", in: rest)
            let qemu = Self.field("qemu version: ", in: rest)
            add("LIBVIRT_START", time, key, data: Self.object(["libvirt": libvirt, "qemu": qemu]))
        } else if rest.hasPrefix("shutting down, reason=") {
            let reason = String(rest.dropFirst("shutting down, reason=".count).prefix { $0 != " " && $0 != "," })
            add("LIBVIRT_SHUTDOWN", time, key, reason: reason, data: Self.object(["reason": reason]))
        } else if let range = rest.range(of: "terminating on signal ") {
            readSignal(rest[range.upperBound...], time, key)
        } else if rest.hasPrefix("panic ") {
            readPanic(rest.dropFirst(6), time, key)
        } else {
            unknownLines += 1
        }
    }

    /// The VM's name in `guest=web,,prod,debug-threads=on \\` (QEMU's `,,` is a comma), possibly
    /// shell-quoted by libvirt (`'guest=web prod,debug-threads=on'`).
    static func guestName(_ argument: Substring) -> String {
        var value = argument
        if value.first == "'" {
            value = value.dropFirst().prefix { $0 != "'" }
        } else {
            value = value.prefix { $0 != " " && $0 != "\\" }
        }
        if value.hasPrefix("guest=") { value = value.dropFirst(6) }
        var name = ""
        var index = value.startIndex
        while index < value.endIndex, value[index] != "," || value[value.index(after: index)...].first == "," {
            name.append(value[index])
            index = value.index(index, offsetBy: value[index] == "," ? 2 : 1)
        }
        return name
    }

    /// `15 from pid 20447 (/usr/sbin/libvirtd)`, `15 from pid 1 (<unknown process>)`, or just `15`.
    private mutating func readSignal(_ text: Substring, _ time: Int64, _ key: String) {
        let signal = Int64(text.prefix { $0.isNumber }) ?? 0
        var pid: Int64?
        var program: String?
        if let from = text.range(of: " from pid ") {
            let after = text[from.upperBound...]
            pid = Int64(after.prefix { $0.isNumber })
            if let open = after.firstIndex(of: "("), let close = after.lastIndex(of: ")"), open < close {
                let inside = String(after[after.index(after: open)..<close])
                program = inside == "<unknown process>" ? nil : inside
            }
        }
        let data = JSONValue.object([
            (key: "signal", value: .number(String(signal))),
            (key: "pid", value: pid.map { .number(String($0)) } ?? .null),
            (key: "program", value: program.map { .string($0) } ?? .null),
        ])
        add(
            "QEMU_SIGNAL",
            time,
            key,
            reason: "signal \(signal)",
            data: data.compactText,
            sender: SignalSender(signal: signal, pid: pid, program: program)
        )
    }

    /// `hyper-v: arg1='0x3e', arg2='0x46d', …` or `s390: core='0' psw-mask='0x…' … reason='disabled-wait'`.
    private mutating func readPanic(_ text: Substring, _ time: Int64, _ key: String) {
        let type = String(text.prefix { $0 != ":" })
        var info: [(key: String, value: JSONValue)] = [(key: "type", value: .string(type))]
        var rest = text.drop { $0 != ":" }.dropFirst()
        while let equals = rest.firstIndex(of: "=") {
            let field = rest[..<equals].trimmingCharacters(in: [" ", ","])
            let afterEquals = rest[rest.index(after: equals)...]
            guard afterEquals.first == "'", let close = afterEquals.dropFirst().firstIndex(of: "'") else { break }
            let value = String(afterEquals[afterEquals.index(after: afterEquals.startIndex)..<close])
            // hyper-v's arguments and s390's core, psw-mask, psw-addr are numbers in QEMU's event.
            if let number = value.hasPrefix("0x") ? UInt64(value.dropFirst(2), radix: 16) : UInt64(value) {
                info.append((key: field, value: .number(String(number))))
            } else {
                info.append((key: field, value: .string(value)))
            }
            rest = afterEquals[afterEquals.index(after: close)...]
        }
        let data = JSONValue.object([(key: "info", value: .object(info))])
        let event = QMPEvent(
            name: "GUEST_PANICKED",
            seconds: time / 1_000_000,
            microseconds: time % 1_000_000,
            data: data,
            dataText: data.compactText
        )
        events.append(
            ImportedEvent(
                event: NewEvent(event, session: Self.unset, seq: 0, received: time),
                importKey: key,
                isQMPEvent: true
            )
        )
        eventCount += 1
    }

    private mutating func add(
        _ name: String,
        _ time: Int64,
        _ key: String,
        reason: String? = nil,
        data: String,
        sender: SignalSender? = nil
    ) {
        var event = NewEvent(
            session: Self.unset,
            seq: 0,
            name: name,
            seconds: time / 1_000_000,
            microseconds: time % 1_000_000,
            received: time,
            data: data
        )
        event.reason = reason
        events.append(ImportedEvent(event: event, importKey: key, sender: sender, isQMPEvent: false))
        eventCount += 1
    }

    /// Set when the events are stored.
    static let unset = SessionHandle(sessionId: 0, machineId: 0)

    /// The text after `label` up to the next comma.
    private static func field(_ label: String, in text: Substring) -> String? {
        guard let range = text.range(of: label) else { return nil }
        return String(text[range.upperBound...].prefix { $0 != "," })
    }

    private static func object(_ members: KeyValuePairs<String, String?>) -> String {
        JSONValue.object(members.map { (key: $0.key, value: $0.value.map(JSONValue.string) ?? .null) }).compactText
    }
}
