/// An error from a report: what was asked that cannot be answered, and why.
public struct ReportsError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable { case unknownMachine, invalidQuery, writeFailed }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// `--vm` named a VM the database has never seen.
        public static let unknownMachine = Code(.unknownMachine)
        /// The query cannot be answered as asked (for example `--since` after `--until`).
        public static let invalidQuery = Code(.invalidQuery)
        /// The answer could not be written (a full disk, a closed pipe).
        package static let writeFailed = Code(.writeFailed)

        public var description: String {
            switch value {
            case .unknownMachine: "unknown VM"
            case .invalidQuery: "invalid query"
            case .writeFailed: "write failed"
            }
        }
    }

    public var code: Code
    public var message: String
    /// For ``Code/unknownMachine``: the names asked for that no VM has, and every VM's name.
    package var unknownMachines: (wanted: [String], known: [String])?

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
