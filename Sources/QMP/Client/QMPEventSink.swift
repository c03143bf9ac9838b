/// Takes a connection's events on its event loop, as soon as a socket read has been decoded.
///
/// For a recorder of many quiet VMs: handing each event to an async task costs a thread hop per
/// event, which dominates when every event arrives in a read of its own. A sink is called in the
/// channel's pipeline instead (see ``QMPConnection/deliverEvents(to:)``), so it must be quick and
/// must not block: append to a queue and return.
public protocol QMPEventSink: Sendable {
    /// The events of one socket read, in order, on the connection's event loop.
    ///
    /// - Parameter resume: call it, from any thread, to read again after returning `false`.
    /// - Returns: `false` to stop reading the socket (backpressure reaches QEMU) until `resume`.
    func receive(_ events: [QMPEvent], resume: @escaping @Sendable () -> Void) -> Bool
}
