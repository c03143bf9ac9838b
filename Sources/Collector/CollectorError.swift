/// An error from the recorder as a whole (single VMs' failures are logged, not thrown).
public struct CollectorError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable { case targetsFailed }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// With `once`, some targets could not be recorded (listed in the message).
        public static let targetsFailed = Code(.targetsFailed)

        public var description: String {
            switch value {
            case .targetsFailed: "targets failed"
            }
        }
    }

    public var code: Code
    public var message: String
    public var file: String
    public var line: Int

    public init(code: Code, message: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.file = file
        self.line = line
    }

    public var description: String { message }
}
