/// A command qmplog may send: `qmp_capabilities` or a `query-*` command, nothing else.
///
/// QMP has no read-only mode: any client can `quit` a VM. qmplog is read-only by construction:
/// a command that is not on the allow-list cannot be created, and the client checks again before
/// writing to the socket.
///
/// ```swift
/// let status = try QMPCommand(name: "query-status")
/// _ = try QMPCommand(name: "quit")  // throws QMPError .commandNotAllowed
/// ```
public struct QMPCommand: Sendable, Hashable {
    public let name: String
    public let arguments: JSONValue?

    /// - Throws: ``QMPError`` `.commandNotAllowed` for anything but `qmp_capabilities` and `query-*`.
    public init(name: String, arguments: JSONValue? = nil) throws(QMPError) {
        try Self.checkAllowed(name)
        if let arguments, !arguments.isObject {
            throw QMPError(code: .invalidArguments, message: "arguments of '\(name)' must be a JSON object")
        }
        self.name = name
        self.arguments = arguments
    }

    private init(unchecked name: String) {
        self.name = name
        self.arguments = nil
    }

    /// Whether qmplog may send a command of this name.
    public static func isAllowed(_ name: String) -> Bool {
        name == "qmp_capabilities" || (name.hasPrefix("query-") && name.count > "query-".count)
    }

    static func checkAllowed(_ name: String) throws(QMPError) {
        guard isAllowed(name) else {
            throw QMPError(
                code: .commandNotAllowed,
                message: "refusing to send '\(name)': qmplog only sends qmp_capabilities and query-* commands"
            )
        }
    }

    /// Leaves capability negotiation mode, enabling no optional capability.
    public static let capabilities = QMPCommand(unchecked: "qmp_capabilities")
    public static let queryStatus = QMPCommand(unchecked: "query-status")
    public static let queryName = QMPCommand(unchecked: "query-name")
    public static let queryUUID = QMPCommand(unchecked: "query-uuid")
    public static let queryVersion = QMPCommand(unchecked: "query-version")

    /// The wire form `{"execute": NAME, "arguments": {…}, "id": ID}` followed by CRLF.
    ///
    /// - Throws: ``QMPError`` `.commandNotAllowed` if the name is not allowed (checked again here,
    ///   because this is the only path to the socket).
    public func wireText(id: Int) throws(QMPError) -> String {
        try Self.checkAllowed(name)
        var members: [(key: String, value: JSONValue)] = [("execute", .string(name))]
        if let arguments { members.append(("arguments", arguments)) }
        members.append(("id", .number(String(id))))
        return JSONValue.object(members).compactText + "\r\n"
    }
}
