/// The fields reports filter and group on, pulled out of an event's `data`.
///
/// Every value is open: an unknown `reason`, `action` or panic type is kept as the string QEMU
/// sent. A member of the wrong JSON type (`"guest": "yes"`) yields `nil` for that field only.
public struct QMPRunStateFields: Sendable, Hashable {
    /// SHUTDOWN/RESET `guest` (QEMU ≥ 2.10); `nil` when absent.
    public var guest: Bool?
    /// SHUTDOWN/RESET `reason` (ShutdownCause, QEMU ≥ 4.0), or another event's top-level `reason`.
    public var reason: String?
    /// WATCHDOG, GUEST_PANICKED, MEMORY_FAILURE, BLOCK_IO_ERROR … `action`.
    public var action: String?
    /// GUEST_PANICKED/GUEST_CRASHLOADED `info.type`: `hyper-v`, `s390`, `tdx`, `sev`, or newer.
    public var panicType: String?
    /// s390 crash `info.reason` (`disabled-wait`, `extint-loop`, …).
    public var panicReason: String?
    /// hyper-v `info.arg1` (the bugcheck code), as the exact decimal text QEMU sent.
    public var panicArg1: String?

    public init(
        guest: Bool? = nil,
        reason: String? = nil,
        action: String? = nil,
        panicType: String? = nil,
        panicReason: String? = nil,
        panicArg1: String? = nil
    ) {
        self.guest = guest
        self.reason = reason
        self.action = action
        self.panicType = panicType
        self.panicReason = panicReason
        self.panicArg1 = panicArg1
    }
}

extension QMPRunStateFields {
    /// Event names whose `data` may carry panic information in `info`.
    static let panicEvents: Set<String> = ["GUEST_PANICKED", "GUEST_CRASHLOADED"]

    /// The run-state fields of event `name` with `data` (a member of the wrong type reads as `nil`).
    public init(event name: String, data: JSONValue?) {
        guard let data else {
            self.init()
            return
        }
        self.init(
            guest: data["guest"]?.boolValue,
            reason: data["reason"]?.stringValue,
            action: data["action"]?.stringValue
        )
        if Self.panicEvents.contains(name), let info = data["info"] {
            panicType = info["type"]?.stringValue
            panicReason = info["reason"]?.stringValue
            if case .number(let literal) = info["arg1"] { panicArg1 = literal }
        }
    }
}
