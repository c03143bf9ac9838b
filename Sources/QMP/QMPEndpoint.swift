/// Where a QMP monitor listens: a Unix socket path or a TCP host and port.
///
/// Parsed from the strings users type: `/run/qemu/vm1.qmp`, `unix:/run/qemu/vm1.qmp`, `tcp:127.0.0.1:4444`,
/// `tcp:[::1]:4444`.
public enum QMPEndpoint: Sendable, Hashable, CustomStringConvertible {
    case unixSocket(path: String)
    case tcp(host: String, port: Int)

    /// - Throws: ``QMPError`` `.invalidEndpoint` naming the text and what is wrong with it.
    public init(parsing text: String) throws(QMPError) {
        if text.hasPrefix("tcp:") {
            let rest = text.dropFirst(4)
            guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]),
                (1...65535).contains(port)
            else {
                throw QMPError(code: .invalidEndpoint, message: "'\(text)' is not tcp:HOST:PORT with a port 1-65535")
            }
            var host = String(rest[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else {
                throw QMPError(code: .invalidEndpoint, message: "'\(text)' has no host")
            }
            self = .tcp(host: host, port: port)
        } else {
            let path = text.hasPrefix("unix:") ? String(text.dropFirst(5)) : text
            guard !path.isEmpty else {
                throw QMPError(code: .invalidEndpoint, message: "'\(text)' has an empty socket path")
            }
            self = .unixSocket(path: path)
        }
    }

    /// The canonical text form: `unix:/path` or `tcp:host:port`.
    public var description: String {
        switch self {
        case .unixSocket(let path): "unix:\(path)"
        case .tcp(let host, let port): host.contains(":") ? "tcp:[\(host)]:\(port)" : "tcp:\(host):\(port)"
        }
    }
}
