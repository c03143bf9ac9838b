/// GUEST_PANICKED grouped by crash type, s390 reason, hyper-v bugcheck code, action, VM and day.
///
/// QEMU before 6.0 sends two GUEST_PANICKED per panic (action pause, then poweroff): consecutive
/// GUEST_PANICKED in one session with no RESUME or RESET between are one panic, with the last action.
enum PanicReport {
    struct Panic {
        var machineId: Int64
        var time: Int64
        var type: String
        var reason: String?
        var code: String?
        var action: String
    }

    static func run(_ data: ReportData) async throws -> ReportResult {
        let query = data.query
        var panics: [Panic] = []
        var repeats = 0
        var openPanic: [Int64: Int] = [:]  // session → index in panics of a panic not yet followed by RESUME/RESET
        try data.forEachEvent(named: ["GUEST_PANICKED", "RESUME", "RESET"]) { event in
            guard event.name == "GUEST_PANICKED" else {
                openPanic.removeValue(forKey: event.sessionId)
                return
            }
            guard query.contains(event.time) else { return }
            if let index = openPanic[event.sessionId] {
                repeats += 1
                if let action = event.action { panics[index].action = action }
                if panics[index].type == "none", let type = event.panicType { panics[index].type = type }
                return
            }
            openPanic[event.sessionId] = panics.count
            panics.append(
                Panic(
                    machineId: event.machineId,
                    time: event.time,
                    type: event.panicType ?? "none",
                    reason: event.panicReason,
                    code: event.panicArg1.flatMap(UInt64.init).map(hex),
                    action: event.action ?? "(none)"
                )
            )
        }
        var byType = Tally<String>()
        var byReason = Tally<String>()
        var byCode = Tally<String>()
        var byAction = Tally<String>()
        var byMachine = Tally<Int64>()
        for panic in panics {
            byType.add(panic.type)
            byAction.add(panic.action)
            byMachine.add(panic.machineId)
            if panic.type == "s390" { byReason.add(panic.reason ?? "(none)") }
            if panic.type == "hyper-v" { byCode.add(panic.code ?? "(none)") }
        }
        let interval = query.interval ?? .day
        var byBucket: [Int64: Int] = [:]
        for panic in panics { byBucket[interval.bucket(of: panic.time), default: 0] += 1 }
        func table(_ name: String, _ title: String, _ column: String, _ tally: Tally<String>) -> ReportTable {
            ReportTable(
                name: name,
                title: title,
                columns: [column, "count"],
                rows: tally.sortedKeys.map { [.text($0), .count(tally[$0])] }
            )
        }
        let tables = [
            ReportTable(
                name: "series",
                title: "Panics per \(interval.rawValue)",
                columns: ["bucket", "panics"],
                rows: byBucket.keys.sorted().map { [.time($0), .count(byBucket[$0] ?? 0)] }
            ),
            table("by_type", "Panics by crash information type", "panic_type", byType),
            table("s390_by_reason", "s390 panics by crash reason", "reason", byReason),
            table("hyperv_by_code", "Hyper-V panics by bugcheck code (arg1)", "code", byCode),
            table("by_action", "Panics by action taken", "action", byAction),
            ReportTable(
                name: "by_vm",
                title: "Panics per VM",
                columns: ["vm", "panics"],
                rows: byMachine.sortedKeys.map { [.text(data.name(of: $0)), .count(byMachine[$0])] }
            ),
        ]
        return ReportResult(
            report: "panics",
            query: query,
            summary: [
                ("panics", .count(panics.count)), ("vms_affected", .count(byMachine.counts.count)),
                ("repeated_events_merged", .count(repeats)),
            ],
            tables: tables,
            caveats: [
                "panic_type none: QEMU sent no crash information (pvpanic, or a QEMU too old to report it).",
                "GUEST_PANICKED events repeated in one session without a RESUME or RESET between are one panic "
                    + "(QEMU before 6.0 sends pause, then poweroff, for each panic).",
                "Only panics that happened while qmplog was attached are counted.",
            ]
        )
    }

    /// `0x0000007E`: Windows bugcheck style, at least 8 hex digits.
    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }
}
