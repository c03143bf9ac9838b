/// The QMP client protocol as a pure state machine: greeting → `qmp_capabilities` → ready, then
/// one command at a time, each reply matched to its command by `id`.
///
/// It performs no I/O. Feed it every message that arrives and every command to send; act on the
/// ``Action`` it returns.
public struct QMPClientStateMachine: Sendable {
    public enum State: Sendable, Equatable {
        case awaitingGreeting
        case negotiating(id: Int)
        case ready
        case awaitingReply(id: Int, command: String)
    }

    public enum Action: Sendable, Equatable {
        /// The greeting arrived: send `qmp_capabilities` with this id.
        case sendCapabilities(QMPGreeting, id: Int)
        /// Capabilities negotiated; events flow from now on.
        case ready
        /// The reply to the command in flight.
        case reply(JSONValue)
        /// The command in flight failed with QEMU's error class and description.
        case commandFailed(command: String, errorClass: String, desc: String)
        /// An asynchronous event: deliver it (events may arrive before the reply they follow from).
        case deliver(QMPEvent)
        /// A reply matching no command in flight (for example one whose wait timed out): drop it.
        case ignore
    }

    public private(set) var state: State = .awaitingGreeting
    private var nextID = 1

    public init() {}

    /// Registers a command to send and returns its id.
    ///
    /// - Throws: ``QMPError`` `.notReady` if the handshake is not done or a command is in flight,
    ///   `.commandNotAllowed` for a command outside the allow-list.
    public mutating func send(_ command: QMPCommand) throws(QMPError) -> Int {
        try QMPCommand.checkAllowed(command.name)
        guard state == .ready else {
            throw QMPError(code: .notReady, message: "cannot send '\(command.name)' in state \(state)")
        }
        let id = takeID()
        state = .awaitingReply(id: id, command: command.name)
        return id
    }

    /// Processes one received message.
    ///
    /// - Throws: ``QMPError`` `.notQMP` when the first message is not a greeting, `.commandFailed`
    ///   when QEMU refuses `qmp_capabilities`.
    public mutating func receive(_ message: QMPMessage) throws(QMPError) -> Action {
        switch (state, message) {
        case (.awaitingGreeting, .greeting(let greeting)):
            let id = takeID()
            state = .negotiating(id: id)
            return .sendCapabilities(greeting, id: id)
        case (.awaitingGreeting, _):
            throw QMPError(code: .notQMP, message: "peer sent \(message.kind) before a QMP greeting")
        case (_, .event(let event)):
            return .deliver(event)
        case (_, .greeting):
            throw QMPError(code: .notQMP, message: "peer sent a second greeting on one connection")
        case (.negotiating(let id), .success(let replyID, _)) where Self.matches(replyID, id):
            state = .ready
            return .ready
        case (.negotiating(let id), .failure(let replyID, let errorClass, let desc))
        where replyID == nil || Self.matches(replyID, id):
            throw QMPError.commandFailed(command: "qmp_capabilities", class: errorClass, desc: desc)
        case (.awaitingReply(let id, _), .success(let replyID, let result)) where Self.matches(replyID, id):
            state = .ready
            return .reply(result)
        case (.awaitingReply(let id, let command), .failure(let replyID, let errorClass, let desc))
        where replyID == nil || Self.matches(replyID, id):
            // A parse error may come without an id; ours is the only command in flight.
            state = .ready
            return .commandFailed(command: command, errorClass: errorClass, desc: desc)
        default:
            return .ignore
        }
    }

    private mutating func takeID() -> Int {
        defer { nextID += 1 }
        return nextID
    }

    private static func matches(_ replyID: JSONValue?, _ id: Int) -> Bool {
        replyID?.int64Value == Int64(id)
    }
}

extension QMPMessage {
    /// A short name of the message's kind for error text.
    var kind: String {
        switch self {
        case .greeting: "a greeting"
        case .success: "a reply"
        case .failure: "an error reply"
        case .event(let event): "event \(event.name)"
        }
    }
}
