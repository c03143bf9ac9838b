/// An error from the QMP layer: what failed, where, and the underlying cause.
///
/// A QMP `{"error": {"class", "desc"}}` reply is data, not a transport failure: it surfaces as
/// code ``Code-swift.struct/commandFailed`` with ``errorClass`` and ``errorDescription`` kept verbatim.
public struct QMPError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added; switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case malformedMessage, messageTooLarge, notQMP, busy, connectionClosed
            case connectFailed, commandNotAllowed, commandFailed, unexpectedReply, notReady, invalidEndpoint
            case invalidArguments
            case peerRefused, replyTimeout
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The peer sent bytes that are not a well-formed JSON object.
        public static let malformedMessage = Code(.malformedMessage)
        /// One message grew past the configured size cap.
        public static let messageTooLarge = Code(.messageTooLarge)
        /// The peer speaks JSON but not QMP (no greeting, or a message of unknown shape).
        public static let notQMP = Code(.notQMP)
        /// The socket accepted us but sent no greeting in time: another client holds the monitor
        /// (QEMU serves one at a time), or the peer is not QMP.
        public static let busy = Code(.busy)
        /// The peer closed the connection.
        public static let connectionClosed = Code(.connectionClosed)
        /// The socket could not be reached.
        public static let connectFailed = Code(.connectFailed)
        /// The command would change the VM; qmplog only sends `qmp_capabilities` and `query-*`.
        public static let commandNotAllowed = Code(.commandNotAllowed)
        /// QEMU answered a command with `{"error": …}`.
        public static let commandFailed = Code(.commandFailed)
        /// A reply did not have the shape the command promises.
        public static let unexpectedReply = Code(.unexpectedReply)
        /// A command was asked for before the handshake finished or while another awaits its reply.
        package static let notReady = Code(.notReady)
        /// A target string could not be parsed as an endpoint.
        public static let invalidEndpoint = Code(.invalidEndpoint)
        /// A command's arguments are not a JSON object.
        public static let invalidArguments = Code(.invalidArguments)
        /// A listener closed a connection without a handshake: its user is not allowed, or it
        /// waited too long for an attach place.
        public static let peerRefused = Code(.peerRefused)
        /// A command got no reply while nothing arrived for the reply timeout.
        public static let replyTimeout = Code(.replyTimeout)

        public var description: String {
            switch value {
            case .malformedMessage: "malformed message"
            case .messageTooLarge: "message too large"
            case .notQMP: "not a QMP peer"
            case .busy: "busy"
            case .connectionClosed: "connection closed"
            case .connectFailed: "connect failed"
            case .commandNotAllowed: "command not allowed"
            case .commandFailed: "command failed"
            case .unexpectedReply: "unexpected reply"
            case .notReady: "not ready for a command"
            case .invalidEndpoint: "invalid endpoint"
            case .invalidArguments: "invalid arguments"
            case .peerRefused: "peer refused"
            case .replyTimeout: "reply timeout"
            }
        }
    }

    public var code: Code
    /// A sentence for a person: what failed and where.
    public var message: String
    /// For ``Code-swift.struct/commandFailed``: QEMU's error class (e.g. `GenericError`), kept as sent.
    public var errorClass: String?
    /// For ``Code-swift.struct/commandFailed``: QEMU's `desc`, kept as sent (never parsed).
    public var errorDescription: String?
    public var cause: (any Error & Sendable)?
    public var file: String
    public var line: Int

    public init(
        code: Code,
        message: String,
        cause: (any Error & Sendable)? = nil,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.cause = cause
        self.file = file
        self.line = line
    }

    /// QEMU's `{"error": {"class": …, "desc": …}}` reply to `command`.
    public static func commandFailed(
        command: String,
        class errorClass: String,
        desc: String,
        file: String = #fileID,
        line: Int = #line
    ) -> QMPError {
        var error = QMPError(
            code: .commandFailed,
            message: "QEMU rejected '\(command)': \(errorClass): \(desc)",
            file: file,
            line: line
        )
        error.errorClass = errorClass
        error.errorDescription = desc
        return error
    }

    static func malformed(_ failure: JSONParser.Failure) -> QMPError {
        QMPError(code: .malformedMessage, message: "invalid JSON at byte \(failure.offset): \(failure.reason)")
    }

    public var description: String {
        if let cause { return "\(message) (\(cause))" }
        return message
    }
}
