/// One message from a QMP server, told apart by its key member.
///
/// Members may come in any order and unknown members are ignored, as the QMP specification asks.
public enum QMPMessage: Sendable, Hashable {
    case greeting(QMPGreeting)
    /// `{"return": …, "id": …}`
    case success(id: JSONValue?, result: JSONValue)
    /// `{"error": {"class": …, "desc": …}, "id": …}`; a parse error may come without `id`.
    case failure(id: JSONValue?, errorClass: String, desc: String)
    case event(QMPEvent)
}

extension QMPMessage {
    /// Decodes one complete message (as delimited by ``QMPFrameScanner``).
    ///
    /// - Throws: ``QMPError`` `.malformedMessage` for invalid JSON, `.notQMP` for an object of unknown shape.
    public init(frame bytes: UnsafeRawBufferPointer) throws(QMPError) {
        let buffer = bytes.assumingMemoryBound(to: UInt8.self)
        // Events are nearly every message: read them without a value tree. Anything else, or
        // anything wrong, goes through the tree, which also words the error.
        if let event = QMPEvent(scanning: buffer) {
            self = .event(event)
            return
        }
        try self.init(treeFrame: buffer)
    }

    /// Decodes one message through a ``JSONValue`` tree.
    init(treeFrame buffer: UnsafeBufferPointer<UInt8>) throws(QMPError) {
        var parser = JSONParser(bytes: buffer)
        let value: JSONValue
        do throws(JSONParser.Failure) {
            value = try parser.parseDocument()
        } catch {
            throw QMPError.malformed(error)
        }
        guard case .object = value else {
            throw QMPError(code: .notQMP, message: "message is not a JSON object")
        }
        if let eventName = value["event"] {
            guard let name = eventName.stringValue else {
                throw QMPError(code: .notQMP, message: "event name is not a string: \(value.compactText)")
            }
            let timestamp = value["timestamp"]
            let dataText = parser.topLevelRanges["data"].map {
                String(decoding: UnsafeBufferPointer(rebasing: buffer[$0]), as: UTF8.self)
            }
            self = .event(
                QMPEvent(
                    name: name,
                    seconds: timestamp?["seconds"]?.int64Value ?? -1,
                    microseconds: timestamp?["microseconds"]?.int64Value ?? -1,
                    data: value["data"],
                    dataText: dataText
                )
            )
        } else if let result = value["return"] {
            self = .success(id: value["id"], result: result)
        } else if let error = value["error"] {
            self = .failure(
                id: value["id"],
                errorClass: error["class"]?.stringValue ?? "",
                desc: error["desc"]?.stringValue ?? ""
            )
        } else if let qmp = value["QMP"] {
            self = .greeting(try QMPGreeting(qmpMember: qmp))
        } else {
            let preview = String(value.compactText.prefix(120))
            throw QMPError(code: .notQMP, message: "message is neither greeting, reply nor event: \(preview)")
        }
    }

    /// Decodes one complete message from bytes.
    public init(frame bytes: some Collection<UInt8>) throws(QMPError) {
        let array = Array(bytes)
        let result: Result<QMPMessage, QMPError> = array.withUnsafeBytes { raw in
            do throws(QMPError) {
                return .success(try QMPMessage(frame: raw))
            } catch {
                return .failure(error)
            }
        }
        self = try result.get()
    }
}
