import NIOCore
import NIOSSL
import PostgresNIO

/// An error from the fleet's PostgreSQL: what failed, against which server (password left out).
public struct FleetError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable {
        private enum Value: Hashable, Sendable {
            case badURL, unreachable, authentication, untrusted, busy, noSchema, schemaTooNew, failed
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The URL does not parse, or names an option qmplog does not know.
        public static let badURL = Code(.badURL)
        /// No server answered, or it closed the connection (down, restarting, wrong host or port).
        public static let unreachable = Code(.unreachable)
        /// The server refused the user, password or database.
        public static let authentication = Code(.authentication)
        /// The server's TLS certificate does not verify (`sslmode=verify-full`): no retry will change that.
        public static let untrusted = Code(.untrusted)
        /// The server has no connection slot free (`max_connections`): try again later.
        public static let busy = Code(.busy)
        /// The database has no qmplog schema (nothing was ever shipped to it).
        public static let noSchema = Code(.noSchema)
        /// The database was migrated by a newer qmplog.
        public static let schemaTooNew = Code(.schemaTooNew)
        /// A statement failed.
        public static let failed = Code(.failed)
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// Whether trying again later may succeed (the server was down, restarting or full).
    public var isTransient: Bool { code == .unreachable || code == .busy }

    /// `error` from postgres-nio or NIO, said in words that name `url` and the server's own reason.
    /// postgres-nio's own description is a fixed "Database error" (it keeps server details out of
    /// logs); the server's message here names no data, only what the server refused.
    static func classify(_ error: any Error, url: FleetURL, doing: String) -> FleetError {
        if let error = error as? FleetError { return error }
        if let error = error as? PostgresTransactionError {
            if let cause = error.closureError ?? error.beginError ?? error.commitError {
                return classify(cause, url: url, doing: doing)
            }
        }
        guard let error = error as? PSQLError else {
            return FleetError(code: .unreachable, message: "cannot \(doing) \(url): \(error)")
        }
        if let info = error.serverInfo {
            let state = info[.sqlState] ?? ""
            let reason = info[.message] ?? "error \(state)"
            let code: Code =
                switch state {
                case "28P01", "28000", "3D000", "42501": .authentication
                case "53300", "53400": .busy
                case "57P01", "57P02", "57P03", "08006", "08001", "08004": .unreachable
                default: .failed
                }
            return FleetError(code: code, message: "cannot \(doing) \(url): the server says \(reason)")
        }
        if let untrusted = untrustedCertificate(error.underlying) {
            return FleetError(
                code: .untrusted,
                message: "cannot \(doing) \(url): the server's certificate is not trusted (\(untrusted))"
            )
        }
        switch error.code {
        case .connectionError, .serverClosedConnection, .uncleanShutdown, .clientClosedConnection:
            let cause = error.underlying.map { ": \($0)" } ?? ""
            return FleetError(code: .unreachable, message: "cannot \(doing) \(url): no connection\(cause)")
        case .sslUnsupported:
            return FleetError(
                code: .unreachable,
                message: "cannot \(doing) \(url): the server does not offer TLS, which sslmode asks for"
            )
        case .authMechanismRequiresPassword:
            return FleetError(
                code: .authentication,
                message: "cannot \(doing) \(url): the server asks for a password; give it in the URL, "
                    + "PGPASSWORD or ~/.pgpass"
            )
        default:
            return FleetError(code: .failed, message: "cannot \(doing) \(url): \(String(reflecting: error))")
        }
    }

    /// Why the TLS handshake refused the server's certificate, in words (BoringSSL's own text names
    /// its source files), or `nil` when `error` is no such refusal.
    private static func untrustedCertificate(_ error: (any Error)?) -> String? {
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            return "it does not name the host connected to"
        }
        guard case .handshakeFailed(let boring)? = error as? NIOSSLError else { return nil }
        let text = "\(boring)"
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            return "its chain does not lead to a root this system trusts; give the CA to the system's trust store"
        }
        return text.contains("certificate") ? "the TLS handshake refused it" : nil
    }
}
