public import Foundation
import NIOSSL
import PostgresNIO

/// Where the fleet's PostgreSQL is: `postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME[?OPTIONS]`,
/// the URL form libpq and psql take.
///
/// The password comes from the URL, else `PGPASSWORD`, else the password file (`PGPASSFILE` or
/// `~/.pgpass`, libpq's format). `?host=/DIR` reaches the server's Unix socket in DIR;
/// `?sslmode=disable|prefer|require|verify-full` as libpq (default `prefer`: TLS when the server
/// offers it, certificate not checked; `verify-full` checks it against the system's roots).
public struct FleetURL: Sendable, CustomStringConvertible {
    public enum TLSMode: String, Sendable { case disable, prefer, require, verifyFull = "verify-full" }

    public var user: String
    public var password: String?
    /// The URL itself carries the password: readable by every local user in the command line
    /// (`/proc/PID/cmdline`) when given as an argument.
    public var passwordInURL: Bool
    /// A host name or address, or `nil` with ``socketDirectory``.
    public var host: String?
    public var socketDirectory: String?
    public var port: Int
    public var database: String
    public var tlsMode: TLSMode

    /// Parses `text`; `environment` supplies PGPASSWORD, PGPASSFILE, PGUSER and HOME.
    ///
    /// - Throws: ``FleetError`` `.badURL` saying what is wrong with it.
    public init(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        func bad(_ why: String) -> FleetError {
            FleetError(code: .badURL, message: "\(Self.redacted(text)) is not a PostgreSQL URL: \(why)")
        }
        guard let components = URLComponents(string: text) else { throw bad("it does not parse as a URL") }
        guard let scheme = components.scheme, ["postgresql", "postgres"].contains(scheme) else {
            throw bad("it must start with postgresql://")
        }
        let options = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") },
            uniquingKeysWith: { $1 }
        )
        for name in options.keys where !["host", "port", "sslmode", "user", "password", "dbname"].contains(name) {
            throw bad("unknown option \(name) (known: host, port, sslmode, user, password, dbname)")
        }
        let host = components.percentEncodedHost.flatMap { $0.removingPercentEncoding }.flatMap {
            $0.isEmpty ? nil : $0
        }
        let optionHost = options["host"].flatMap { $0.isEmpty ? nil : $0 }
        if let optionHost, optionHost.hasPrefix("/") {
            socketDirectory = optionHost
            self.host = nil
        } else {
            socketDirectory = nil
            self.host = optionHost ?? host ?? "localhost"
        }
        if let portText = options["port"] {
            guard let port = Int(portText), (1...65535).contains(port) else {
                throw bad("port \(portText) is not a port")
            }
            self.port = port
        } else {
            guard (components.port ?? 5432) > 0 && (components.port ?? 5432) <= 65535 else { throw bad("bad port") }
            self.port = components.port ?? 5432
        }
        // Percent-decoded once, as libpq does (URLComponents' `user` is decoded already).
        let userInURL = components.percentEncodedUser?.removingPercentEncoding
        guard let user = options["user"] ?? userInURL ?? environment["PGUSER"] ?? environment["USER"], !user.isEmpty
        else { throw bad("it names no user (postgresql://USER@HOST/DBNAME)") }
        self.user = user
        let encodedPath = components.percentEncodedPath
        let path = encodedPath.hasPrefix("/") ? String(encodedPath.dropFirst()) : encodedPath
        let database = options["dbname"] ?? path.removingPercentEncoding ?? path
        self.database = database.isEmpty ? user : database
        let mode = options["sslmode"] ?? "prefer"
        guard let tlsMode = TLSMode(rawValue: mode) else {
            throw bad("sslmode \(mode) is not one of disable, prefer, require, verify-full")
        }
        self.tlsMode = tlsMode
        passwordInURL = options["password"] != nil || components.percentEncodedPassword != nil
        password =
            options["password"] ?? components.percentEncodedPassword?.removingPercentEncoding
            ?? environment["PGPASSWORD"]
            ?? Self.passwordFromFile(
                environment: environment,
                host: self.host ?? "localhost",
                port: self.port,
                database: self.database,
                user: user
            )
    }

    /// The URL without its password: what messages and logs name.
    public var description: String {
        let place = host.map { $0.contains(":") ? "[\($0)]" : $0 } ?? ""
        let socket = socketDirectory.map { "?host=\($0)" } ?? ""
        return "postgresql://\(user)@\(place):\(port)/\(database)\(socket)"
    }

    /// `text` with any password in it replaced by `***`, for an error about a URL that did not parse.
    static func redacted(_ text: String) -> String {
        guard var components = URLComponents(string: text) else { return "the URL given" }
        if components.password != nil { components.password = "***" }
        components.queryItems = components.queryItems?.map {
            $0.name == "password" ? URLQueryItem(name: "password", value: "***") : $0
        }
        return components.string ?? "the URL given"
    }

    /// libpq's password file: `host:port:database:user:password` lines, `*` matching anything,
    /// `\` escaping `:` and `\`; the first matching line wins. Ignored unless private (as libpq does).
    static func passwordFromFile(
        environment: [String: String],
        host: String,
        port: Int,
        database: String,
        user: String
    ) -> String? {
        guard let path = environment["PGPASSFILE"] ?? environment["HOME"].map({ $0 + "/.pgpass" }),
            let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let permissions = attributes[.posixPermissions] as? Int, permissions & 0o077 == 0,
            let text = try? String(contentsOfFile: path, encoding: .utf8)
        else { return nil }
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            var fields: [String] = [""]
            var escaped = false
            for character in line {
                if escaped {
                    fields[fields.count - 1].append(character)
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == ":" && fields.count < 5 {
                    fields.append("")
                } else {
                    fields[fields.count - 1].append(character)
                }
            }
            guard fields.count == 5 else { continue }
            let wanted = [host, String(port), database, user]
            if zip(fields.prefix(4), wanted).allSatisfy({ $0 == "*" || $0 == $1 }) { return fields[4] }
        }
        return nil
    }

    /// postgres-nio's configuration for this URL.
    func configuration() throws -> PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        if let socketDirectory {
            configuration = .init(
                unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)",
                username: user,
                password: password,
                database: database
            )
        } else {
            let tls: PostgresConnection.Configuration.TLS
            switch tlsMode {
            case .disable:
                tls = .disable
            case .prefer, .require, .verifyFull:
                var client = TLSConfiguration.makeClientConfiguration()
                if tlsMode != .verifyFull { client.certificateVerification = .none }
                let context = try NIOSSLContext(configuration: client)
                tls = tlsMode == .prefer ? .prefer(context) : .require(context)
            }
            configuration = .init(
                host: host ?? "localhost",
                port: port,
                username: user,
                password: password,
                database: database,
                tls: tls
            )
        }
        configuration.options.connectTimeout = .seconds(10)
        return configuration
    }
}
