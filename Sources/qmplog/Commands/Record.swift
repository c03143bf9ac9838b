import ArgumentParser
import Collector
import EventStore
import Foundation
import Health
import Hooks
import Logging
import QMP
import Server
import ServiceLifecycle
import UnixSignals

extension QMPLogCommand {
    struct Record: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Attach to QMP monitors and store every event they emit.",
            discussion: Manual.discussion(
                """
                Each TARGET is a QMP monitor (a Unix socket path, unix:PATH or tcp:HOST:PORT); --watch, \
                --listen and --libvirt find VMs by themselves. qmplog sends only qmp_capabilities and \
                query-* commands: it never changes a VM. SIGTERM or SIGINT commits everything \
                received and exits 0.

                Examples:
                  qmplog record /run/qemu/vm1.qmp tcp:127.0.0.1:4444
                  qmplog record --watch /run/qemu-server --pattern '*.qmp'
                  qmplog record --listen /run/qmplog/qmp.sock
                  qmplog record --libvirt --on panic,crashloop --exec 'page-oncall virt'

                `man qmplog-record` explains each way of finding VMs, the hooks and their \
                environment, --http and --ship-to.
                """,
                manual: """
                    Each TARGET is a QMP monitor: a Unix socket path, unix:PATH, or tcp:HOST:PORT. \
                    qmplog sends only qmp_capabilities and query-* commands: it never changes a VM.

                    QEMU serves one client per monitor socket. Give qmplog a monitor of its own, e.g.
                      qemu-system-x86_64 … -qmp unix:/run/qemu/vm1.qmp,server=on,wait=off
                    A VM may have several monitors; every one receives every event.

                    Events are committed within a fraction of a second. SIGTERM or SIGINT stops \
                    recording, commits everything received, closes each session and exits 0. \
                    Without --once, a connection that ends is retried with backoff (0.5 s doubling \
                    up to --retry-max).

                    --watch DIR records every socket matching --pattern (default *.qmp) in DIR, including \
                    ones that appear later, and stops retrying a socket once it is deleted. --listen PATH \
                    lets QEMU connect to qmplog instead (QEMU reconnects by itself when qmplog restarts); \
                    use it when the VM's main monitor belongs to libvirt or Proxmox.

                    --libvirt [URI] records every domain of a libvirt daemon (default qemu:///system) \
                    through libvirt's own QMP event passthrough: no change to any domain. It needs a \
                    read-write libvirt connection (root, or a user libvirt's polkit rule admits) and \
                    libvirt's client library (Debian: libvirt0). Each domain run is a session, from its \
                    start to its stop; while libvirtd is unreachable nothing is seen (a gap), and the \
                    connection is retried with backoff. Do not also record a libvirt domain through a \
                    second monitor: every event would be stored twice.

                    --on CLASS --exec COMMAND runs COMMAND once for each incident of CLASS, about a \
                    second after it is committed: the stops and pauses of `report stops` and `report \
                    pauses` (--on killed, io-error, any-stop, stop:CLASS, pause:CAUSE, …), each panic \
                    (a QEMU < 6.0 double panic is one), each watchdog firing, and crash loops. COMMAND \
                    is split into words as a shell would (quotes) and run directly, never by a shell; \
                    the incident is in its environment only: QMPLOG_VM, QMPLOG_VM_UUID, QMPLOG_KIND, \
                    QMPLOG_CLASS, QMPLOG_TIME (RFC 3339), QMPLOG_TIME_US, QMPLOG_EVIDENCE, QMPLOG_EVENT \
                    (the QMP event as JSON, or null), QMPLOG_COUNT and QMPLOG_LAST_TIME (crash loops), \
                    QMPLOG_INCIDENT_ID, QMPLOG_DATABASE. Incidents are stored before their hooks run: a \
                    run cut short by a stop, a crash or kill -9 runs again after the restart (at least \
                    once). Hooks never hold recording: at most --hook-concurrency run, each stopped after \
                    --hook-timeout, and a run finding --hook-queue others waiting is dropped and logged.

                    --http ADDRESS:PORT serves what `qmplog serve` serves from inside the recorder, with \
                    qmplog_vm_monitor_connected for the monitors it is attached to now.

                    --ship-to postgresql://USER@HOST/DBNAME copies every committed event to the fleet's \
                    PostgreSQL about once a second (--ship-interval), as `qmplog ship` does: the SQLite \
                    file stays the buffer while PostgreSQL is down, and a failed round is logged and \
                    retried without touching recording.

                    Examples:
                      qmplog record /run/qemu/vm1.qmp /run/qemu/vm2.qmp tcp:127.0.0.1:4444
                      qmplog record --watch /run/qemu-server --pattern '*.qmp'
                      qmplog record --listen /run/qmplog/qmp.sock
                      qmplog record --libvirt
                      qmplog record --libvirt qemu+ssh://root@host2/system
                      qmplog record --libvirt --on panic,crashloop --exec 'page-oncall virt'
                    """
            )
        )

        @OptionGroup var store: StoreOptions

        @OptionGroup(title: "Where the VMs are") var sources: SourceOptions

        @Flag(help: "Record each target's current connection only, then exit 0 once all have ended and been committed.")
        var once = false

        @Option(
            help: ArgumentHelp(
                "Rebuild the totals behind fast whole-history reports this often, in seconds; 0: never.",
                valueName: "seconds"
            )
        )
        var rollupEvery: Int = 6 * 3600

        @OptionGroup(title: "Connections") var connection: ConnectionOptions

        @OptionGroup(title: "Hooks") var hooking: HookOptions

        @OptionGroup(title: "HTTP") var httpAddress: HTTPAddressOptions

        @OptionGroup(title: "Fleet") var fleet: RecordFleetOptions

        @OptionGroup(title: "Logging") var logging: LoggingOptions

        @Argument(help: ArgumentHelp("QMP monitors to record.", valueName: "target"))
        var targets: [String] = []

        /// `--libvirt` may stand alone: a URI follows it only when the next word has `://` (every
        /// libvirt URI does; socket paths and options do not). ArgumentParser has no optional values,
        /// so the default is put in before parsing.
        static func insertingDefaultLibvirtURI(_ arguments: [String]) -> [String] {
            var result: [String] = []
            for (index, argument) in arguments.enumerated() {
                result.append(argument)
                guard argument == "--libvirt" else { continue }
                let next = arguments.indices.contains(index + 1) ? arguments[index + 1] : nil
                if next.map({ !$0.contains("://") }) ?? true { result.append(defaultLibvirtURI) }
            }
            return result
        }

        static let defaultLibvirtURI = "qemu:///system"

        func validate() throws {
            guard
                !targets.isEmpty || !sources.listenPaths.isEmpty || !sources.watchDirectories.isEmpty
                    || !sources.libvirtURIs.isEmpty
            else {
                throw ValidationError(
                    "Name at least one QMP monitor (qmplog record /run/qemu/vm1.qmp), --listen PATH, --watch DIR or --libvirt."
                )
            }
            for uri in sources.libvirtURIs where !uri.contains("://") {
                throw ValidationError("--libvirt \(uri): not a libvirt URI (such as qemu:///system).")
            }
            if once, !sources.listenPaths.isEmpty || !sources.watchDirectories.isEmpty {
                throw ValidationError(
                    "--once applies to TARGETs and --libvirt only; --listen and --watch run until stopped."
                )
            }
            if httpAddress.http == nil, httpAddress.webConfig != nil || httpAddress.allowRemote {
                throw ValidationError("--web-config and --allow-remote apply to --http; give --http ADDRESS:PORT.")
            }
            if sources.listenGroup != nil || !sources.listenAllowUid.isEmpty, sources.listenPaths.isEmpty {
                throw ValidationError("--listen-group and --listen-allow-uid apply to --listen sockets; name one.")
            }
            _ = try listenAccess()
            for directory in sources.watchDirectories {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory),
                    isDirectory.boolValue
                else {
                    throw ValidationError("--watch \(directory): no such directory.")
                }
            }
            for target in targets {
                do {
                    _ = try QMPEndpoint(parsing: target)
                } catch {
                    throw ValidationError(error.message)
                }
            }
            if fleet.shipTo == nil, fleet.ship.hostName != nil {
                throw ValidationError("--host-name names this host in the fleet; it applies with --ship-to.")
            }
            if let shipTo = fleet.shipTo {
                _ = try ShipOptions.parse(shipTo)
                if once {
                    throw ValidationError(
                        "--ship-to ships while recording; with --once, run `qmplog ship --once` after."
                    )
                }
            }
            _ = try hooks()
            for name in hooking.hookEnvironment where name.isEmpty || name.contains("=") {
                throw ValidationError("--hook-env \(name): give a variable's name, such as HTTPS_PROXY.")
            }
            guard hooking.hookTimeout >= 1, hooking.hookTimeout <= 86_400 else {
                throw ValidationError("--hook-timeout must be 1 to 86400 seconds (a day).")
            }
            guard (1...256).contains(hooking.hookConcurrency), (1...1_000_000).contains(hooking.hookQueue) else {
                throw ValidationError("--hook-concurrency must be 1 to 256 and --hook-queue 1 to 1000000.")
            }
            // Bounded so that every conversion to microseconds and durations fits (NaN fails each test).
            guard (0...Self.maximumRollupEvery).contains(rollupEvery) else {
                throw ValidationError(
                    "--rollup-every must be 0 (never) to \(Self.maximumRollupEvery) seconds (a year)."
                )
            }
            guard connection.greetingTimeout > 0, connection.greetingTimeout <= 3600 else {
                throw ValidationError("--greeting-timeout must be more than 0 and at most 3600 seconds.")
            }
            guard connection.retryMax >= 0.5, connection.retryMax <= 86_400 else {
                throw ValidationError("--retry-max must be 0.5 to 86400 seconds (a day).")
            }
            guard (1024...(1 << 30)).contains(connection.maxMessageSize) else {
                throw ValidationError("--max-message-size must be 1024 bytes to 1 GiB.")
            }
        }

        static let maximumRollupEvery = 366 * 86_400

        /// Each --on with the --exec at its position.
        func hooks() throws -> [Hook] {
            guard hooking.hookClasses.count == hooking.hookCommands.count else {
                throw ValidationError(
                    "Give each --on CLASS its --exec COMMAND (\(hooking.hookClasses.count) --on, \(hooking.hookCommands.count) --exec)."
                )
            }
            return try zip(hooking.hookClasses, hooking.hookCommands).map { on, exec in
                do {
                    return try Hook(on: on, exec: exec)
                } catch {
                    throw ValidationError("\(error)")
                }
            }
        }

        /// --listen-group and --listen-allow-uid, resolved to ids.
        func listenAccess() throws -> QMPListenerAccess {
            var access = QMPListenerAccess()
            if let listenGroup = sources.listenGroup {
                if let gid = UInt32(listenGroup) {
                    access.group = gid
                } else if let entry = getgrnam(listenGroup) {
                    access.group = entry.pointee.gr_gid
                } else {
                    throw ValidationError("--listen-group \(listenGroup): no such group.")
                }
            }
            if !sources.listenAllowUid.isEmpty {
                access.allowedUIDs = Set(
                    try sources.listenAllowUid.map { user in
                        if let uid = UInt32(user) { return uid }
                        guard let entry = getpwnam(user) else {
                            throw ValidationError("--listen-allow-uid \(user): no such user.")
                        }
                        return entry.pointee.pw_uid
                    }
                )
            }
            return access
        }

        func run() async throws {
            let logger = logging.bootstrap(label: "qmplog.record")
            EventLoops.useOneThread()
            // A descriptor per monitor: the soft limit (1,024 under systemd) is raised to the hard one.
            let descriptors = HTTPConnectionLimits.raiseDescriptorLimit()
            logger.debug("Descriptor limit", metadata: ["descriptors": "\(descriptors)"])
            let path = try store.prepareForWriting()
            for note in EventDatabase.tightenPermissions(path: path) {
                logger.warning(
                    "Database file permissions",
                    metadata: ["store.path": "\(path)", "store.note": "\(note)"]
                )
            }
            let database = try EventDatabase.openForWriting(path: path)
            // Alone, every session still open was left by a recorder that is gone: end it, so that
            // reports do not take its VM as attached in its last state ever since.
            let lock = try RecorderLock(databasePath: path)
            if lock.isOnlyRecorder {
                let ended = try await database.endAbandonedSessions()
                if !ended.isEmpty {
                    logger.notice(
                        "Ended sessions a lost recorder left open, each at its last event",
                        metadata: [
                            "sessions": "\(ended.count)", "session.end": "\(EventDatabase.abandonedSessionReason)",
                        ]
                    )
                }
            }
            try lock.share()
            defer { withExtendedLifetime(lock) {} }
            let endpoints = try targets.map { try QMPEndpoint(parsing: $0) }
            var configuration = CollectorConfiguration(
                targets: endpoints,
                listenPaths: sources.listenPaths,
                listenAccess: try listenAccess(),
                libvirtURIs: sources.libvirtURIs,
                watchDirectories: sources.watchDirectories.map { WatchedDirectory(path: $0, pattern: sources.pattern) },
                once: once,
                client: QMPClientConfiguration(
                    maximumMessageSize: connection.maxMessageSize,
                    greetingTimeout: .milliseconds(Int64(connection.greetingTimeout * 1000))
                ),
                reconnect: ReconnectPolicy(maximumDelay: .milliseconds(Int64(connection.retryMax * 1000)))
            )
            // One clock for the sessions, the hooks, the server, the ship and the rollup.
            let clock: @Sendable () -> Int64 = FilterOptions.now
            configuration.now = clock
            logger.info(
                "Recording",
                metadata: [
                    "store.path": "\(path)", "qmp.targets": "\(endpoints.count)",
                    "qmp.listen": "\(sources.listenPaths)",
                    "libvirt.uris": "\(sources.libvirtURIs)",
                    "watch.paths": "\(sources.watchDirectories)", "once": "\(once)",
                ]
            )
            let hooks = try hooks()
            let health = RecorderHealth()
            configuration.health = health
            let commits = CommitCounter()
            if !hooks.isEmpty { configuration.onCommit = commits.increment }
            let service = CollectorService(configuration: configuration, database: database, logger: logger)
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
                .init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)
            ]
            if !hooks.isEmpty {
                let incidentHooks = IncidentHooks(
                    database: database,
                    hooks: hooks,
                    limits: IncidentHooks.Limits(
                        queue: hooking.hookQueue,
                        concurrency: hooking.hookConcurrency,
                        timeout: .milliseconds(Int64(hooking.hookTimeout * 1000))
                    ),
                    commits: commits,
                    logger: logger,
                    passedEnvironment: hooking.hookEnvironment,
                    drainsOnShutdown: once,
                    health: health,
                    now: clock
                )
                services.append(.init(service: incidentHooks, successTerminationBehavior: .ignore))
            }
            if httpAddress.http != nil {
                let server = WebServer(
                    database: database,
                    version: QMPLogCommand.configuration.version,
                    recorder: health,
                    now: clock
                )
                services.append(.init(service: try httpAddress.application(serving: server, logger: logger)))
            }
            if let shipTo = fleet.shipTo {
                let shipper = Shipper(
                    database: database,
                    configuration: try fleet.ship.configuration(to: shipTo, logger: logger, clock: clock),
                    logger: logger,
                    health: health
                )
                services.append(.init(service: shipper, successTerminationBehavior: .ignore))
            }
            if !once, rollupEvery > 0 {
                let maintenance = RollupMaintenance(
                    database: database,
                    logger: logger,
                    period: Int64(rollupEvery) * 1_000_000,
                    now: clock
                )
                services.append(.init(service: maintenance, successTerminationBehavior: .ignore))
            }
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: services,
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger
                )
            )
            try await group.run()
        }
    }
}
