/// Events of one VM read from a history file (`qmplog import`), to store beside recorded ones.
public struct ImportedHistory: Sendable, Hashable {
    public var machine: MachineIdentity
    /// Where they came from: `libvirt-log:/var/log/libvirt/qemu/web1.log`, `virsh:events.txt`.
    /// Each source is one session of the VM, kept apart from recorded sessions.
    public var source: String
    public var events: [ImportedEvent]

    public init(machine: MachineIdentity, source: String, events: [ImportedEvent]) {
        self.machine = machine
        self.source = source
        self.events = events
    }
}

/// One imported event: a row like a recorded one, and the key that makes importing it twice a no-op.
public struct ImportedEvent: Sendable, Hashable {
    /// The row; its session, sequence number and receive time are set when it is stored (`received`
    /// is the event's own time: nobody received it live).
    public var event: NewEvent
    /// Identical for the same fact read again (from the same file, a copy or a rotated one).
    public var importKey: String
    /// For a `QEMU_SIGNAL` line: who sent the signal, to attach to the SHUTDOWN it caused.
    public var sender: SignalSender?
    /// A QMP event (which a recorder attached at the time would have stored itself), rather than a
    /// fact only the file knows (libvirt's start and stop lines, a signal's sender).
    public var isQMPEvent: Bool

    public init(event: NewEvent, importKey: String, sender: SignalSender? = nil, isQMPEvent: Bool) {
        self.event = event
        self.importKey = importKey
        self.sender = sender
        self.isQMPEvent = isQMPEvent
    }
}

/// Who signalled QEMU: `terminating on signal 15 from pid 20447 (/usr/sbin/libvirtd)`.
public struct SignalSender: Sendable, Hashable {
    public var signal: Int64
    public var pid: Int64?
    /// The sending program, or `nil` when QEMU could not tell (`<unknown process>`).
    public var program: String?

    public init(signal: Int64, pid: Int64?, program: String?) {
        self.signal = signal
        self.pid = pid
        self.program = program
    }
}

/// What an import stored and what it left out.
public struct ImportOutcome: Sendable, Hashable {
    public var added = 0
    /// Already imported (same key).
    public var alreadyImported = 0
    /// Inside a recorded session of the VM, or within 2 s of the same event from another source.
    public var alreadyKnown = 0
    /// SHUTDOWNs that now carry their signal's sender.
    public var sendersAttached = 0

    public init() {}

    public static func + (lhs: ImportOutcome, rhs: ImportOutcome) -> ImportOutcome {
        var sum = lhs
        sum.added += rhs.added
        sum.alreadyImported += rhs.alreadyImported
        sum.alreadyKnown += rhs.alreadyKnown
        sum.sendersAttached += rhs.sendersAttached
        return sum
    }
}
