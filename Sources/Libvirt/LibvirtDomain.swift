/// A domain as a callback or a listing names it: the identity qmplog records it under.
public struct LibvirtDomain: Sendable, Hashable {
    public var name: String
    public var uuid: String
    /// The run's id (libvirt numbers each start of a domain anew); `nil` when the domain is not running.
    public var id: UInt32?

    public init(name: String, uuid: String, id: UInt32?) {
        self.name = name
        self.uuid = uuid
        self.id = id
    }
}

/// libvirt's state of a running domain (`virDomainGetState`), as QEMU's run-state names.
public struct LibvirtDomainState: Sendable, Hashable {
    /// `virDomainState`.
    public var state: Int32
    /// The reason for `state` (for a paused domain, `virDomainPausedReason`).
    public var reason: Int32

    public init(state: Int32, reason: Int32) {
        self.state = state
        self.reason = reason
    }

    /// The `query-status` status QEMU would answer: what a session records as its initial state.
    public var qmpStatus: String {
        switch state {
        case 1, 2: "running"  // running, blocked on a resource
        case 3: Self.pausedStatus(reason: reason)
        case 4: "running"  // being shut down: the guest still runs
        case 5: "shutdown"  // shut off (a stopped domain has no session; kept for completeness)
        case 6: "guest-panicked"  // crashed
        case 7: "suspended"  // suspended by the guest's power management
        default: "unknown"
        }
    }

    /// Whether the domain's vCPUs run.
    public var isRunning: Bool { qmpStatus == "running" }

    private static func pausedStatus(reason: Int32) -> String {
        switch reason {
        case 2: "postmigrate"  // offline migration
        case 3, 4, 9: "paused"  // save, core dump, snapshot: libvirt pauses, QEMU says paused
        case 5: "io-error"
        case 6: "watchdog"
        case 8: "shutdown"  // paused during shutdown
        case 10: "guest-panicked"
        case 11: "prelaunch"  // being started
        case 12, 13: "postmigrate"  // post-copy migration
        default: "paused"  // user, unknown, from a snapshot
        }
    }
}

/// What a libvirt connection tells, in the order libvirtd sent it.
public enum LibvirtNotice: Sendable {
    /// A QMP event of a domain, passed through with QEMU's timestamp and its `data` JSON.
    case monitorEvent(LibvirtDomain, name: String, seconds: Int64, microseconds: Int64, data: String?)
    /// A domain started (`VIR_DOMAIN_EVENT_STARTED`, with its detail).
    case started(LibvirtDomain, detail: Int32)
    /// A domain stopped: its QEMU is gone (`VIR_DOMAIN_EVENT_STOPPED`, with its detail).
    case stopped(LibvirtDomain, detail: Int32)
    /// The connection closed (libvirtd stopped, restarted or stopped answering keepalives).
    case closed(reason: Int32)

    /// `VIR_DOMAIN_EVENT_STOPPED_*` in words, as a session's end.
    public static func stopDetail(_ detail: Int32) -> String {
        switch detail {
        case 0: "shutdown"
        case 1: "destroyed"
        case 2: "crashed"
        case 3: "migrated"
        case 4: "saved"
        case 5: "failed"
        case 6: "from-snapshot"
        default: "detail \(detail)"
        }
    }

    /// `VIR_CONNECT_CLOSE_REASON_*` in words.
    public static func closeReason(_ reason: Int32) -> String {
        switch reason {
        case 0: "error"
        case 1: "end of file"
        case 2: "keepalive timeout"
        case 3: "closed by qmplog"
        default: "reason \(reason)"
        }
    }
}
