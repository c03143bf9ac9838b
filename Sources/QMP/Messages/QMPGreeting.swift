/// The greeting QEMU sends on every new connection: `{"QMP": {"version": …, "capabilities": […]}}`.
public struct QMPGreeting: Sendable, Hashable {
    public var major: Int
    public var minor: Int
    public var micro: Int
    /// The distribution's build string, such as `Debian 1:7.2+dfsg-7+deb12u18+b3`.
    public var package: String
    /// Capabilities the server offers (`oob`, …). The recorder enables none of them.
    public var capabilities: [String]

    public init(major: Int, minor: Int, micro: Int, package: String, capabilities: [String]) {
        self.major = major
        self.minor = minor
        self.micro = micro
        self.package = package
        self.capabilities = capabilities
    }

    /// `7.2.22`
    public var version: String { "\(major).\(minor).\(micro)" }

    init(qmpMember value: JSONValue) throws(QMPError) {
        let version = value["version"]
        let qemu = version?["qemu"]
        guard let major = qemu?["major"]?.int64Value, let minor = qemu?["minor"]?.int64Value,
            let micro = qemu?["micro"]?.int64Value
        else {
            throw QMPError(code: .notQMP, message: "greeting has no QEMU version: \(value.compactText)")
        }
        self.major = Int(major)
        self.minor = Int(minor)
        self.micro = Int(micro)
        self.package = version?["package"]?.stringValue ?? ""
        if case .array(let values) = value["capabilities"] {
            self.capabilities = values.compactMap(\.stringValue)
        } else {
            self.capabilities = []
        }
    }
}
