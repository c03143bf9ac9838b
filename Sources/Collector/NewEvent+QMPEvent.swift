// The fuzz target (Scripts/fuzz.sh) compiles this file into one module with the QMP sources and
// EventStore's records, so that it checks the very row the recorder stores.
#if canImport(EventStore)
    public import EventStore
#endif
#if canImport(QMP)
    public import QMP
#endif

extension NewEvent {
    /// The row for `event`, the `seq`-th of its session, with the run-state columns extracted and
    /// `data` kept verbatim.
    public init(_ event: QMPEvent, session: SessionHandle, seq: Int64, received: Int64) {
        let fields = event.runState
        self.init(
            session: session,
            seq: seq,
            name: event.name,
            seconds: event.seconds,
            microseconds: event.microseconds,
            received: received,
            guest: fields.guest,
            reason: fields.reason,
            action: fields.action,
            panicType: fields.panicType,
            panicReason: fields.panicReason,
            panicArg1: fields.panicArg1,
            data: event.dataText
        )
    }
}
