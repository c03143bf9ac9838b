import Foundation

/// A PostgreSQL server of a test's own: `initdb` in a temporary directory, `pg_ctl` to start it on
/// 127.0.0.1 and a free port, removed by ``stop()``. As root (CI) the server runs as the `postgres`
/// user, which Debian's package creates (PostgreSQL refuses to run as root).
///
/// Local socket connections are trusted (the test's own `psql`); TCP asks for a password
/// (scram-sha-256), so that qmplog's URL, password and refusal paths are exercised for real.
public final class ThrowawayPostgres: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public let port: Int
    /// The role qmplog ships as, owner of database `fleet`.
    public let user = "qmplog"
    public let password = "ship-it-\(UInt32.random(in: 0...UInt32.max))"
    public let database = "fleet"
    private let binaries: String

    /// `postgresql://qmplog:PASSWORD@127.0.0.1:PORT/fleet?sslmode=disable`.
    public var url: String { "postgresql://\(user):\(password)@127.0.0.1:\(port)/\(database)?sslmode=disable" }
    /// The same without its password (given through PGPASSWORD or a password file).
    public var urlWithoutPassword: String { "postgresql://\(user)@127.0.0.1:\(port)/\(database)" }

    /// PostgreSQL tests run where Debian's server is installed, or when real systems are required
    /// (`QMPLOG_REQUIRE_QEMU=1`, as in CI), and then fail loudly if it is not.
    public static var shouldRun: Bool { serverBinaries() != nil || QEMUProcess.isRequired }

    private static func serverBinaries() -> String? {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return versions.compactMap(Int.init).sorted().reversed().map { "\(root)/\($0)/bin" }
            .first { FileManager.default.isExecutableFile(atPath: $0 + "/initdb") }
    }

    /// Creates and starts a server (`maxConnections` slots).
    public init(maxConnections: Int = 100) throws {
        guard let binaries = Self.serverBinaries() else {
            throw QEMUTestError("no PostgreSQL server: install Debian's postgresql package")
        }
        self.binaries = binaries
        directory = try TemporaryDirectory(prefix: "pg")
        port = try Self.freePort()
        if getuid() == 0 {
            _ = try Self.run("/bin/chown", ["postgres:postgres", directory.path])
        }
        chmod(directory.path, 0o700)
        try Self.run(
            binaries + "/initdb",
            [
                "-D", directory.file("data"), "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
                "--no-sync", "-E", "UTF8", "--locale=C",
            ],
            asPostgres: true
        )
        let settings = """
            listen_addresses = '127.0.0.1'
            port = \(port)
            unix_socket_directories = '\(directory.path)'
            max_connections = \(maxConnections)
            fsync = off
            synchronous_commit = off
            full_page_writes = off
            """
        let configuration = directory.file("data/postgresql.conf")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: configuration))
        handle.seekToEndOfFile()
        handle.write(Data(("\n" + settings + "\n").utf8))
        try handle.close()
        try start()
        do {
            try psql("CREATE ROLE \(user) LOGIN PASSWORD '\(password)'", database: "postgres")
            try psql("CREATE DATABASE \(database) OWNER \(user)", database: "postgres")
        } catch {
            stop()
            throw error
        }
    }

    public func start() throws {
        try Self.run(
            binaries + "/pg_ctl",
            [
                "-D", directory.file("data"), "-l", directory.file("server.log"), "-w", "-t", "60", "start",
            ],
            asPostgres: true
        )
    }

    /// Serves TLS with a self-signed certificate (which no client's trust store knows).
    public func enableTLS() throws {
        let data = directory.file("data")
        try Self.run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                "-keyout", data + "/server.key", "-out", data + "/server.crt",
            ],
            asPostgres: true
        )
        try Self.run("/bin/chmod", ["0600", data + "/server.key"], asPostgres: true)
        try psql("ALTER SYSTEM SET ssl = on", database: "postgres")
        try psql("SELECT pg_reload_conf()", database: "postgres")
    }

    /// Stops the server: `immediate` as a crash would (no checkpoint), else a fast clean stop.
    public func halt(immediate: Bool = false) throws {
        try Self.run(
            binaries + "/pg_ctl",
            [
                "-D", directory.file("data"), "-w", "-t", "60", "-m", immediate ? "immediate" : "fast", "stop",
            ],
            asPostgres: true
        )
    }

    /// Stops the server and removes its files.
    public func stop() {
        try? halt(immediate: true)
        directory.remove()
    }

    /// Runs `sql` through psql on the local socket as the superuser; rows unaligned, `|`-separated.
    @discardableResult
    public func psql(_ sql: String, database: String? = nil) throws -> String {
        try Self.run(
            binaries + "/psql",
            [
                "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", directory.path, "-p", String(port), "-U", "postgres",
                "-d", database ?? self.database, "-c", sql,
            ],
            asPostgres: true
        )
    }

    /// The server's log, for a failing test's message.
    public var log: String { (try? String(contentsOfFile: directory.file("server.log"), encoding: .utf8)) ?? "" }

    /// Runs `executable` to its end (as `postgres` when root) and returns its output; throws with
    /// the output when it fails. Through ``ChildProcess``: the server that `pg_ctl` leaves running
    /// must inherit none of the test process's descriptors.
    @discardableResult
    private static func run(_ executable: String, _ arguments: [String], asPostgres: Bool = false) throws -> String {
        let outputPath = NSTemporaryDirectory() + "qmplog-pg-\(UUID().uuidString).out"
        defer { unlink(outputPath) }
        let asUser = asPostgres && getuid() == 0
        let child = try ChildProcess(
            asUser ? "/usr/bin/setpriv" : executable,
            arguments: asUser
                ? ["--reuid=postgres", "--regid=postgres", "--clear-groups", executable] + arguments : arguments,
            outputPath: outputPath
        )
        let deadline = Date().addingTimeInterval(120)
        while child.isRunning {
            guard Date() < deadline else {
                child.kill9()
                throw QEMUTestError("\(executable) did not finish in 120 s")
            }
            usleep(10_000)
        }
        let text = ((try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard child.exitCode == 0 else {
            throw QEMUTestError("\(executable) \(arguments.joined(separator: " ")) failed: \(text)")
        }
        return text
    }

    private static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard bound else { throw QEMUTestError("cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
