public import GRDB

/// A stored event, as reports and exports read it.
public struct RecordedEvent: Codable, Sendable, Hashable, FetchableRecord, TableRecord {
    public static let databaseTableName = "event"

    public var id: Int64
    public var sessionId: Int64
    public var machineId: Int64
    public var seq: Int64
    public var name: String
    public var seconds: Int64
    public var microseconds: Int64
    /// QEMU's timestamp in microseconds since the epoch; `nil` when QEMU sent -1/-1.
    public var time: Int64?
    public var received: Int64
    public var guest: Bool?
    public var reason: String?
    public var action: String?
    public var panicType: String?
    public var panicReason: String?
    public var panicArg1: String?
    public var data: String?

    public enum Columns {
        public static let id = Column(CodingKeys.id)
        public static let sessionId = Column(CodingKeys.sessionId)
        public static let machineId = Column(CodingKeys.machineId)
        public static let seq = Column(CodingKeys.seq)
        public static let name = Column(CodingKeys.name)
        public static let time = Column(CodingKeys.time)
        public static let received = Column(CodingKeys.received)
        public static let guest = Column(CodingKeys.guest)
        public static let reason = Column(CodingKeys.reason)
        public static let action = Column(CodingKeys.action)
    }
}

/// A VM qmplog has seen.
public struct Machine: Codable, Sendable, Hashable, FetchableRecord, TableRecord {
    public static let databaseTableName = "machine"

    public var id: Int64
    public var identity: String
    public var name: String?
    public var uuid: String?
    public var endpoint: String
    public var firstSeen: Int64
    /// The last contact with the VM: its latest session's start or end or, while a recorder is
    /// attached, its latest event (written at most every 10 seconds per VM).
    public var lastSeen: Int64

    /// What people call this VM in reports and pages: its name, else its UUID, else its endpoint.
    public var displayName: String { name ?? uuid ?? endpoint }

    public enum Columns {
        public static let id = Column(CodingKeys.id)
        public static let name = Column(CodingKeys.name)
    }
}

/// One attach to a VM's monitor: what was known at the start and how it ended.
public struct Session: Codable, Sendable, Hashable, FetchableRecord, TableRecord {
    public static let databaseTableName = "session"

    public var id: Int64
    public var machineId: Int64
    public var endpoint: String
    public var peer: String?
    public var qemuVersion: String
    public var qemuPackage: String
    public var initialStatus: String?
    public var initialRunning: Bool?
    public var startedAt: Int64
    public var endedAt: Int64?
    public var endReason: String?
    /// Where an imported session's events came from (`libvirt-log:PATH`, `virsh:PATH`); `nil` for
    /// sessions qmplog recorded.
    public var source: String?

    public enum Columns {
        public static let id = Column(CodingKeys.id)
        public static let machineId = Column(CodingKeys.machineId)
        public static let startedAt = Column(CodingKeys.startedAt)
    }
}
