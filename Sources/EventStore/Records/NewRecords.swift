/// Who a VM is: its QMP name, else its UUID, else the endpoint it was reached at.
public struct MachineIdentity: Sendable, Hashable {
    /// `query-name`; `nil` when the VM is unnamed.
    public var name: String?
    /// `query-uuid`; `nil` when unset (QEMU reports all zeros).
    public var uuid: String?
    /// The endpoint text, such as `unix:/run/qemu/vm1.qmp`.
    public var endpoint: String

    /// A NUL in a name or UUID becomes U+FFFD: SQLite's C strings end at NUL, which would cut
    /// `a\0b` to `a` and merge it with a VM named `a`.
    public init(name: String?, uuid: String?, endpoint: String) {
        self.name = name.flatMap { $0.isEmpty ? nil : $0.replacingNUL() }
        self.uuid = uuid.flatMap {
            $0.isEmpty || $0 == "00000000-0000-0000-0000-000000000000" ? nil : $0.replacingNUL()
        }
        self.endpoint = endpoint
    }

    /// The stable key a machine row is found by: `name:…`, `uuid:…` or `endpoint:…`.
    public var key: String {
        if let name { return "name:\(name)" }
        if let uuid { return "uuid:\(uuid)" }
        return "endpoint:\(endpoint)"
    }

    /// What people call this VM in reports and logs.
    public var displayName: String { name ?? uuid ?? endpoint }
}

/// One attach to a VM's monitor, as it begins.
public struct NewSession: Sendable {
    public var machine: MachineIdentity
    public var endpoint: String
    /// The peer, where known (for example the QEMU process id of an accepted connection).
    public var peer: String?
    public var qemuVersion: String
    public var qemuPackage: String
    /// `query-status`'s `status` at attach (`running`, `paused`, `prelaunch`, …), kept as sent.
    public var initialStatus: String?
    public var initialRunning: Bool?
    /// Microseconds since the Unix epoch.
    public var startedAt: Int64

    public init(
        machine: MachineIdentity,
        endpoint: String,
        peer: String? = nil,
        qemuVersion: String,
        qemuPackage: String,
        initialStatus: String?,
        initialRunning: Bool?,
        startedAt: Int64
    ) {
        self.machine = machine
        self.endpoint = endpoint
        self.peer = peer
        self.qemuVersion = qemuVersion
        self.qemuPackage = qemuPackage
        self.initialStatus = initialStatus
        self.initialRunning = initialRunning
        self.startedAt = startedAt
    }
}

/// The rows a begun session belongs to.
public struct SessionHandle: Sendable, Hashable {
    public var sessionId: Int64
    public var machineId: Int64

    public init(sessionId: Int64, machineId: Int64) {
        self.sessionId = sessionId
        self.machineId = machineId
    }
}

/// One event to store, with the columns reports use already extracted.
public struct NewEvent: Sendable, Hashable {
    public var session: SessionHandle
    /// Arrival order within the session, from 1.
    public var seq: Int64
    public var name: String
    public var seconds: Int64
    public var microseconds: Int64
    /// When qmplog received it, microseconds since the Unix epoch.
    public var received: Int64
    public var guest: Bool?
    public var reason: String?
    public var action: String?
    public var panicType: String?
    public var panicReason: String?
    public var panicArg1: String?
    /// The event's `data` JSON text verbatim, or `nil` when QEMU sent none.
    public var data: String?

    public init(
        session: SessionHandle,
        seq: Int64,
        name: String,
        seconds: Int64,
        microseconds: Int64,
        received: Int64,
        guest: Bool? = nil,
        reason: String? = nil,
        action: String? = nil,
        panicType: String? = nil,
        panicReason: String? = nil,
        panicArg1: String? = nil,
        data: String? = nil
    ) {
        self.session = session
        self.seq = seq
        self.name = name
        self.seconds = seconds
        self.microseconds = microseconds
        self.received = received
        self.guest = guest
        self.reason = reason
        self.action = action
        self.panicType = panicType
        self.panicReason = panicReason
        self.panicArg1 = panicArg1
        self.data = data
    }

    /// QEMU's timestamp in microseconds, or `nil` when it is no instant: negative (QEMU's -1/-1),
    /// microseconds outside 0..<1,000,000, or after the year 9999. The peer chooses these numbers, so
    /// a `nil` time is stored like -1/-1 (reports use the receive time), with `seconds` and
    /// `microseconds` kept as sent.
    public var time: Int64? {
        guard (0...Self.latestSeconds).contains(seconds), (0..<1_000_000).contains(microseconds) else { return nil }
        return seconds * 1_000_000 + microseconds
    }

    /// 9999-12-31T23:59:59Z: the last second an RFC 3339 timestamp can show.
    static let latestSeconds: Int64 = 253_402_300_799
}

/// How and when a session ended.
public struct SessionEnd: Sendable, Hashable {
    public var sessionId: Int64
    public var endedAt: Int64
    /// Why: `eof` (QEMU closed the connection), `recorder-stopped`, `recorder-lost` (see
    /// ``EventDatabase/endAbandonedSessions()``), or an error's text.
    public var reason: String
    /// The session ended before its VM was identified: if it holds no event, it and the machine row
    /// it was opened under are deleted instead (an attach that failed, or that a stop cut short,
    /// leaves no trace; one that stored events keeps them under the endpoint's identity).
    public var discardsEmpty: Bool

    public init(sessionId: Int64, endedAt: Int64, reason: String, discardsEmpty: Bool = false) {
        self.sessionId = sessionId
        self.endedAt = endedAt
        self.reason = reason
        self.discardsEmpty = discardsEmpty
    }
}

extension String {
    /// Each NUL as U+FFFD, for what ends at NUL in C: SQLite's strings, a process's environment.
    package func replacingNUL() -> String {
        utf8.contains(0) ? String(unicodeScalars.map { $0 == "\0" ? "\u{FFFD}" : Character($0) }) : self
    }
}
