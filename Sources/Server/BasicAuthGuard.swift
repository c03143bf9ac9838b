import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdBcrypt
import Logging
import NIOPosix
import Synchronization

/// `basic_auth_users` of `--web-config`: every request names a user and its password, checked
/// against the bcrypt hash (401 with a `WWW-Authenticate` challenge otherwise, logged, nothing
/// served).
///
/// bcrypt is slow on purpose (about 60 ms at cost 10): hashes are checked one at a time on NIO's
/// thread pool, so that a client guessing passwords costs at most that one thread, never the
/// recorder's, and a credential that passed is remembered by its SHA-256, so that Prometheus'
/// scrape every 15 s costs one bcrypt per process, as exporter-toolkit does.
struct BasicAuthGuard<Context: RequestContext>: RouterMiddleware {
    let users: [String: String]
    let logger: Logger
    private let verified = VerifiedCredentials()
    private let checks = OneAtATime()

    init(users: [String: String], logger: Logger) {
        self.users = users
        self.logger = logger
    }

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let (user, password) = Self.credentials(request.headers[.authorization]) else {
            return challenge("no credentials")
        }
        guard let hash = users[user] else { return challenge("unknown user \(user)") }
        let key = Data(SHA256.hash(data: Data("\(user)\n\(password)\n\(hash)".utf8)))
        if !verified.contains(key) {
            let matches = try await checks.run {
                try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
            }
            guard matches else { return challenge("wrong password for user \(user)") }
            verified.insert(key)
        }
        return try await next(request, context)
    }

    /// User and password of an `Authorization: Basic …` header.
    static func credentials(_ header: String?) -> (String, String)? {
        guard let header, header.count < 4096 else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
            let decoded = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
            let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    private func challenge(_ why: String) -> Response {
        logger.warning("HTTP request refused", metadata: ["http.refused": "\(why)"])
        var headers = HTTPFields()
        headers[.wwwAuthenticate] = #"Basic realm="qmplog", charset="UTF-8""#
        return WebServer.error(.unauthorized, "authentication required", headers)
    }
}

/// The SHA-256 of each credential that passed bcrypt: at most one per user and password in use.
private final class VerifiedCredentials: Sendable {
    private let keys = Mutex<Set<Data>>([])

    func contains(_ key: Data) -> Bool { keys.withLock { $0.contains(key) } }
    func insert(_ key: Data) { keys.withLock { _ = $0.insert(key) } }
}
