import ArgumentParser
import Collector
import EventStore
import Foundation
import Logging
import QMP
import Reports

extension QMPLogCommand {
    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "See qmplog work: record two throwaway QEMU VMs, then report on them.",
            discussion: """
                Starts two small VMs under QEMU's TCG emulator (no disk image, no network, a few MB \
                of memory each) with QMP sockets in a temporary directory, and records them:
                  demo-guest  a 76-byte guest that reboots, then powers itself off (guest)
                  demo-host   an idle VM that the demo stops with SIGTERM (host-initiated)
                It then prints `qmplog report summary` and `qmplog report shutdowns`. It takes about \
                five seconds and needs qemu-system-x86_64 (Debian: apt-get install qemu-system-x86).

                The events go to a temporary database, deleted afterwards, unless --db names one.
                """
        )

        @Option(help: ArgumentHelp("Keep the recorded events in this database file.", valueName: "file"))
        var db: String?

        @OptionGroup var logging: LoggingOptions

        func run() async throws {
            guard let qemu = DemoMachine.findQEMU() else {
                throw DemoError(
                    "qemu-system-x86_64 is not installed. On Debian or Ubuntu: sudo apt-get install qemu-system-x86"
                )
            }
            let logger = logging.bootstrap(label: "qmplog.demo")
            EventLoops.useOneThread()
            var template = Array("/tmp/qmplog-demo-XXXXXX".utf8CString)
            guard let created = mkdtemp(&template) else { throw DemoError("cannot create a temporary directory") }
            let directory = String(cString: created)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let path = db ?? directory + "/events.sqlite"
            let database = try EventDatabase.openForWriting(path: path)

            let image = directory + "/guest.img"
            try DemoMachine.diskImage(DemoMachine.selfRebootingGuest).write(to: URL(fileURLWithPath: image))
            print("Starting two VMs under QEMU (TCG) with QMP sockets in \(directory) …")
            let guestVM = try DemoMachine(qemu: qemu, name: "demo-guest", directory: directory, bootImage: image)
            let hostVM = try DemoMachine(qemu: qemu, name: "demo-host", directory: directory, bootImage: nil)
            defer {
                guestVM.kill9()
                hostVM.kill9()
            }
            try await guestVM.waitForSocket()
            try await hostVM.waitForSocket()

            print("Recording. demo-guest reboots itself and powers off; demo-host gets SIGTERM …")
            let service = CollectorService(
                configuration: CollectorConfiguration(
                    targets: [.unixSocket(path: guestVM.socket), .unixSocket(path: hostVM.socket)],
                    once: true
                ),
                database: database,
                logger: logger
            )
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await service.run() }
                group.addTask {
                    // Stop the host VM once the guest has powered off (or after 20 s), then give up after 40 s.
                    for _ in 0..<400 where guestVM.isRunning { try await Task.sleep(for: .milliseconds(50)) }
                    hostVM.terminate()
                    try await Task.sleep(for: .seconds(20))
                    guestVM.kill9()
                    hostVM.kill9()
                }
                try await group.next()
                group.cancelAll()
            }

            let reader = try EventDatabase.openForReading(path: path)
            let now = FilterOptions.now()
            for kind in [ReportKind.summary, .shutdowns] {
                print("")
                print(
                    ReportFormat.table.render(try await kind.run(on: reader, query: ReportQuery(now: now))),
                    terminator: ""
                )
            }
            print("")
            print(
                db == nil
                    ? "(The temporary database has been deleted; use --db FILE to keep it, then see it in a browser "
                        + "with: qmplog serve --db FILE, and open http://127.0.0.1:9750/)"
                    : "Events kept in \(path). See them in a browser: qmplog serve --db \(path), "
                        + "then open http://127.0.0.1:9750/"
            )
        }
    }
}
