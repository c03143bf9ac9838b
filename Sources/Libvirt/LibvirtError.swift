/// An error from libvirt: the library missing, a connection refused, a call that failed.
public struct LibvirtError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable { case libraryMissing, connectionFailed, callFailed }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// `libvirt.so.0` or `libvirt-qemu.so.0` could not be loaded, or lacks a function.
        public static let libraryMissing = Code(.libraryMissing)
        /// The connection could not be opened, or it was refused the event registrations.
        public static let connectionFailed = Code(.connectionFailed)
        /// A call on an open connection failed (listing domains, reading a state).
        public static let callFailed = Code(.callFailed)

        public var description: String {
            switch value {
            case .libraryMissing: "library missing"
            case .connectionFailed: "connection failed"
            case .callFailed: "call failed"
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
