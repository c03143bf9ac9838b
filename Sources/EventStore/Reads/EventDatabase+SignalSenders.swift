import GRDB

/// A `SHUTDOWN host-signal` whose sender an imported log named.
public struct SignalSenderFact: Sendable, Hashable {
    public var machineId: Int64
    /// The SHUTDOWN's effective time.
    public var time: Int64
    public var signal: Int64
    public var pid: Int64?
    public var program: String?
}

extension EventDatabase {
    /// The known senders of the SHUTDOWNs in `selection`, in time order (none before schema v7).
    public func signalSenders(in selection: EventSelection) async throws -> [SignalSenderFact] {
        guard knowsImports else { return [] }
        var sql = """
            SELECT e.machineId, \(EventSQL.effectiveTime), s.signal, s.pid, s.program
            FROM signalSender s JOIN event e ON e.id = s.eventId WHERE 1
            """
        var arguments = StatementArguments()
        EventSQL.append(selection, to: &sql, arguments: &arguments, machineColumn: "e.machineId")
        sql += " ORDER BY \(EventSQL.effectiveTime), e.id"
        let finalSQL = sql
        let finalArguments = arguments
        return try await writer.read { db in
            try Row.fetchAll(db, sql: finalSQL, arguments: finalArguments).map {
                SignalSenderFact(machineId: $0[0], time: $0[1], signal: $0[2], pid: $0[3], program: $0[4])
            }
        }
    }
}
