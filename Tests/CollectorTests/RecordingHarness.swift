import Collector
import EventStore
import Logging
import QMP
import QMPTestSupport

/// Runs a real ``CollectorService`` into a real database file while a test acts on the peers.
struct RecordingHarness {
    let directory: TemporaryDirectory
    let database: EventDatabase

    init() throws {
        directory = try TemporaryDirectory(prefix: "rec")
        database = try EventDatabase.openForWriting(path: directory.file("events.sqlite"))
    }

    func makeService(
        targets: [String],
        listen: [String] = [],
        libvirt: [String] = [],
        watch: [WatchedDirectory] = [],
        once: Bool = true,
        // Generous: beside a headless browser and other TCG boots, a 2-core machine can take
        // seconds to greet or answer; tests of a busy monitor pass their own.
        greetingTimeout: Duration = .seconds(30),
        maximumConcurrentAttaches: Int = 64,
        logger: Logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    ) -> CollectorService {
        CollectorService(
            configuration: CollectorConfiguration(
                targets: targets.map { .unixSocket(path: $0) },
                listenPaths: listen,
                libvirtURIs: libvirt,
                watchDirectories: watch,
                watchInterval: .milliseconds(100),
                once: once,
                client: QMPClientConfiguration(greetingTimeout: greetingTimeout, replyTimeout: .seconds(30)),
                reconnect: ReconnectPolicy(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(200)),
                maximumConcurrentAttaches: maximumConcurrentAttaches
            ),
            database: database,
            logger: logger
        )
    }

    /// Waits until `count` sessions have been recorded and identified (or have ended): the
    /// recorder has attached to the VMs and knows who they are.
    func waitForSessions(_ count: Int, timeout: Duration = .seconds(60)) async throws {
        try await waitUntil(timeout: timeout, "\(count) sessions") {
            try await database.allSessions().filter { $0.initialStatus != nil || $0.endedAt != nil }.count >= count
        }
    }

    func waitUntil(
        timeout: Duration = .seconds(20),
        _ what: String,
        _ condition: () async throws -> Bool
    ) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while try await !condition() {
            guard clock.now < deadline else { throw QEMUTestError("timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Starts a real QEMU paused (`-S`) running `bootSector`, records it until it exits, while
    /// `drive` acts on it through its control monitor.
    func recordQEMU(
        _ bootSector: BootSector?,
        _ extraArguments: [String] = [],
        _ drive: (QEMUProcess, QMPTestDriver) async throws -> Void
    ) async throws {
        let qemu = try QEMUProcess(bootSector: bootSector, extraArguments: extraArguments)
        defer { qemu.terminate() }
        let service = makeService(targets: [qemu.recorderSocket])
        async let recording: Void = service.run()
        try await waitForSessions(1)
        try await drive(qemu, try QMPTestDriver(path: qemu.controlSocket))
        try await qemu.waitForExit()
        try await recording
    }

    func remove() { directory.remove() }
}

/// An event row reduced to what the real-QEMU tests assert on.
struct EventSummary: Equatable, CustomStringConvertible {
    var name: String
    var guest: Bool?
    var reason: String?
    var action: String?

    init(_ name: String, guest: Bool? = nil, reason: String? = nil, action: String? = nil) {
        self.name = name
        self.guest = guest
        self.reason = reason
        self.action = action
    }

    init(_ event: RecordedEvent) {
        self.init(event.name, guest: event.guest, reason: event.reason, action: event.action)
    }

    var description: String {
        "\(name)(guest: \(guest.map(String.init) ?? "nil"), reason: \(reason ?? "nil"), action: \(action ?? "nil"))"
    }
}
