#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An error from the event store: what failed, on which database file, and the SQLite cause.
public struct EventStoreError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added; switch with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable { case cannotOpen, notWritable, schemaTooNew, notFound, writeFailed }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The file could not be opened or created, or is not a qmplog database.
        public static let cannotOpen = Code(.cannotOpen)
        /// The file or its directory does not allow writing.
        public static let notWritable = Code(.notWritable)
        /// The database was written by a newer qmplog with migrations this one does not know.
        public static let schemaTooNew = Code(.schemaTooNew)
        /// The database file does not exist (readers never create one).
        public static let notFound = Code(.notFound)
        /// A write transaction failed (disk full, I/O error, …).
        public static let writeFailed = Code(.writeFailed)

        public var description: String {
            switch value {
            case .cannotOpen: "cannot open"
            case .notWritable: "not writable"
            case .schemaTooNew: "schema too new"
            case .notFound: "not found"
            case .writeFailed: "write failed"
            }
        }
    }

    public var code: Code
    public var message: String
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

    public var description: String {
        if let cause { return "\(message): \(cause)" }
        return message
    }
}

extension EventStoreError {
    /// The failure of a file operation that just set `errno`: ``Code/notWritable`` when permissions
    /// or a read-only file system refused it, else ``Code/cannotOpen``; `message` then the system's
    /// reason.
    static func fromErrno(_ message: String, file: String = #fileID, line: Int = #line) -> EventStoreError {
        let code = errno
        return EventStoreError(
            code: code == EACCES || code == EROFS || code == EPERM ? .notWritable : .cannotOpen,
            message: "\(message): \(String(cString: strerror(code)))",
            file: file,
            line: line
        )
    }
}
