import Foundation
import HTTPTypes
import Hummingbird

/// What every request passes before a route sees it: only GET and HEAD (405 with `Allow`
/// otherwise), and, unless remote clients are allowed, only a `Host` that names this machine's
/// loopback or the bound address (421 otherwise), so that a web page on a name rebound to
/// 127.0.0.1 (DNS rebinding) cannot read the dashboard through a visitor's browser.
struct HTTPGuard<Context: RequestContext>: RouterMiddleware {
    /// `nil`: any `Host` (`--allow-remote`).
    let allowedHosts: Set<String>?

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard request.method == .get || request.method == .head else {
            var headers = HTTPFields()
            headers[.allow] = "GET, HEAD"
            return WebServer.error(.methodNotAllowed, "\(request.method.rawValue) is not served: use GET", headers)
        }
        if let allowedHosts, let authority = request.head.authority,
            !allowedHosts.contains(Self.hostName(authority).lowercased())
        {
            return WebServer.error(
                .misdirectedRequest,
                "Host \(authority) is not this server's name: use 127.0.0.1, localhost or the --http address"
            )
        }
        return try await next(request, context)
    }

    /// `127.0.0.1` from `127.0.0.1:9750`, `::1` from `[::1]:9750`.
    static func hostName(_ authority: String) -> Substring {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            return authority[authority.index(after: authority.startIndex)..<close]
        }
        return authority.prefix { $0 != ":" }
    }

    /// The names a loopback server answers to: loopback's own, and the address it is bound to.
    static func loopbackHosts(bound host: String) -> Set<String> {
        ["localhost", "127.0.0.1", "::1", host.lowercased()]
    }
}
