import Foundation
package import NIOSSL
import Yams

/// `--web-config FILE`: TLS and basic authentication for `--http`, in the web configuration format
/// every Prometheus exporter reads (exporter-toolkit's `--web.config.file`), so that one file and
/// one `htpasswd -nBC 10` hash serve node_exporter and qmplog alike:
///
/// ```yaml
/// tls_server_config:
///   cert_file: qmplog.crt        # relative to this file's directory
///   key_file: qmplog.key
///   client_ca_file: clients.pem  # with client_auth_type: RequireAndVerifyClientCert
///   min_version: TLS12           # or TLS13
/// basic_auth_users:
///   prometheus: $2y$10$…         # bcrypt
/// ```
///
/// A key qmplog does not know is an error, as it is for the exporters: a misspelt key must not
/// leave a server open that the operator believes closed.
package struct WebConfig: Sendable {
    /// The server's TLS settings, when `tls_server_config` is given.
    package var tls: TLSConfiguration?
    /// User name → bcrypt hash; empty: no authentication.
    package var users: [String: String]
    /// Clients must present a certificate signed by `client_ca_file`.
    package var requiresClientCertificates: Bool

    /// Whether a request must prove who sends it (a password or a client certificate).
    package var authenticates: Bool { !users.isEmpty || requiresClientCertificates }

    package init(tls: TLSConfiguration? = nil, users: [String: String] = [:], requiresClientCertificates: Bool = false)
    {
        self.tls = tls
        self.users = users
        self.requiresClientCertificates = requiresClientCertificates
    }

    /// Reads and checks the file at `path`; certificate and key files are read now, so that a
    /// broken file stops qmplog at start, not at the first scrape.
    package static func load(path: String) throws(WebConfigError) -> WebConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw WebConfigError(path, "cannot be read: \(error.localizedDescription)")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw WebConfigError(path, "is not YAML: \(error)")
        }
        guard let root else { return WebConfig() }
        let top = try mapping(root, "the file", path: path)
        try refuseUnknown(top, known: ["tls_server_config", "basic_auth_users"], in: "", path: path)
        var config = WebConfig()
        if let users = top["basic_auth_users"] {
            for (user, hash) in try mapping(users, "basic_auth_users", path: path) {
                guard let hash = hash.string, hash.hasPrefix("$2"), hash.count == 60 else {
                    throw WebConfigError(path, "basic_auth_users.\(user): not a bcrypt hash (htpasswd -nBC 10 \(user))")
                }
                config.users[user] = hash
            }
        }
        if let tls = top["tls_server_config"] {
            let settings = try mapping(tls, "tls_server_config", path: path)
            (config.tls, config.requiresClientCertificates) = try serverTLS(settings, directory: directory, path: path)
        }
        return config
    }

    /// `tls_server_config`: the certificate and key read now, the minimum version, client certificates.
    private static func serverTLS(_ settings: [String: Node], directory: URL, path: String)
        throws(WebConfigError) -> (TLSConfiguration, requiresClientCertificates: Bool)
    {
        var requiresClientCertificates = false
        try refuseUnknown(
            settings,
            known: ["cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version"],
            in: "tls_server_config.",
            path: path
        )
        func file(_ key: String) -> String? {
            settings[key]?.string.map {
                $0.hasPrefix("/") ? $0 : directory.appendingPathComponent($0).standardizedFileURL.path
            }
        }
        guard let certificate = file("cert_file"), let key = file("key_file") else {
            throw WebConfigError(path, "tls_server_config needs both cert_file and key_file")
        }
        var tlsConfiguration: TLSConfiguration
        do {
            tlsConfiguration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            )
        } catch {
            throw WebConfigError(path, "tls_server_config: \(certificate) or \(key): \(error)")
        }
        switch settings["min_version"]?.string {
        case nil, "TLS12": tlsConfiguration.minimumTLSVersion = .tlsv12
        case "TLS13": tlsConfiguration.minimumTLSVersion = .tlsv13
        case let other?: throw WebConfigError(path, "tls_server_config.min_version \(other): use TLS12 or TLS13")
        }
        switch settings["client_auth_type"]?.string {
        case nil, "NoClientCert":
            tlsConfiguration.certificateVerification = .none
        case "RequireAndVerifyClientCert":
            guard let authority = file("client_ca_file") else {
                throw WebConfigError(path, "client_auth_type RequireAndVerifyClientCert needs client_ca_file")
            }
            tlsConfiguration.certificateVerification = .noHostnameVerification
            tlsConfiguration.trustRoots = .file(authority)
            requiresClientCertificates = true
        case let other?:
            throw WebConfigError(
                path,
                "tls_server_config.client_auth_type \(other): use NoClientCert or RequireAndVerifyClientCert"
            )
        }
        return (tlsConfiguration, requiresClientCertificates)
    }

    private static func mapping(_ node: Node, _ name: String, path: String) throws(WebConfigError) -> [String: Node] {
        guard let mapping = node.mapping else { throw WebConfigError(path, "\(name) must be a mapping") }
        var result: [String: Node] = [:]
        for (key, value) in mapping {
            guard let key = key.string else { throw WebConfigError(path, "\(name) has a key that is no string") }
            result[key] = value
        }
        return result
    }

    private static func refuseUnknown(_ mapping: [String: Node], known: Set<String>, in prefix: String, path: String)
        throws(WebConfigError)
    {
        if let unknown = mapping.keys.sorted().first(where: { !known.contains($0) }) {
            throw WebConfigError(
                path,
                "\(prefix)\(unknown) is not a setting qmplog knows (\(known.sorted().joined(separator: ", ")))"
            )
        }
    }
}

/// A `--web-config` file that cannot be used, naming it and what is wrong.
package struct WebConfigError: Error, CustomStringConvertible {
    package let description: String

    init(_ path: String, _ problem: String) { description = "--web-config \(path): \(problem)" }
}
