/// Which events a read covers: some VMs, and a window on the effective time (QEMU's timestamp, or
/// the receive time where QEMU sent none).
public struct EventSelection: Sendable, Hashable {
    /// The VMs' machine ids; `nil` for every VM.
    public var machineIds: [Int64]?
    /// Inclusive lower bound, microseconds since the epoch; `nil` for none.
    public var from: Int64?
    /// Exclusive upper bound; `nil` for none (a host clock ahead of ours must not hide events).
    public var until: Int64?

    public init(machineIds: [Int64]? = nil, from: Int64? = nil, until: Int64? = nil) {
        self.machineIds = machineIds
        self.from = from
        self.until = until
    }
}

/// An event as analyses read it: its effective time and the columns reports filter and group on.
/// Only EventStore's reads make one.
public struct EventFacts: Sendable {
    public var machineId: Int64
    public var sessionId: Int64
    public var name: String
    /// QEMU's timestamp, or the receive time when QEMU sent none.
    public var time: Int64
    public var guest: Bool?
    public var reason: String?
    public var action: String?
    public var panicType: String?
    public var panicReason: String?
    public var panicArg1: String?
}
