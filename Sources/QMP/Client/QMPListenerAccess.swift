#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Who may connect to a listening socket: its file's group and mode, and which peer users are
/// accepted (checked with SO_PEERCRED on each connection).
///
/// By default the socket is 0600 and only the recorder's user (and root) can reach it. A QEMU run
/// by libvirt (`libvirt-qemu`) or by another user needs a group it shares with the socket, and
/// naming its user keeps every other member of that group from connecting and forging events.
public struct QMPListenerAccess: Sendable, Hashable {
    /// The socket's group; the socket is then 0660.
    public var group: UInt32?
    /// Peer users accepted besides the recorder's own; `nil` accepts whoever can open the socket.
    public var allowedUIDs: Set<UInt32>?

    public init(group: UInt32? = nil, allowedUIDs: Set<UInt32>? = nil) {
        self.group = group
        self.allowedUIDs = allowedUIDs
    }

    /// The socket file's mode.
    var mode: mode_t { group == nil ? 0o600 : 0o660 }

    /// Whether a peer running as `uid` may connect.
    func admits(uid: UInt32) -> Bool {
        guard let allowedUIDs else { return true }
        return uid == geteuid() || allowedUIDs.contains(uid)
    }
}
