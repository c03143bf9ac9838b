/// What a session learns once its VM has answered the identification queries.
///
/// A session opens as soon as the handshake is done, under the endpoint's identity, so that events
/// are stored from the first one even when QEMU answers its queries only behind a storm of them.
/// The answers then move the session, and its events so far, to the VM's own machine row, once.
public struct SessionIdentification: Sendable, Hashable {
    /// The session as opened: its events so far carry `session.machineId`.
    public var session: SessionHandle
    /// The machine it belongs to (see ``EventDatabase/machineId(for:seenAt:)``).
    public var machineId: Int64
    /// `query-status`'s `status` and `running`, kept as sent.
    public var initialStatus: String?
    public var initialRunning: Bool?

    public init(session: SessionHandle, machineId: Int64, initialStatus: String?, initialRunning: Bool?) {
        self.session = session
        self.machineId = machineId
        self.initialStatus = initialStatus
        self.initialRunning = initialRunning
    }

    /// The ids the session's later events carry.
    public var identified: SessionHandle { SessionHandle(sessionId: session.sessionId, machineId: machineId) }
}
