public import EventStore
import Foundation

/// Imports history written before qmplog recorded: libvirt's per-domain logs and virsh transcripts.
///
/// Each file's events go to one session per VM whose source names the file; reports never take
/// those sessions as observed time. Importing a file again, or a rotated copy, adds nothing.
public struct HistoryImporter: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        /// `/var/log/libvirt/qemu/NAME.log` (and rotated `NAME.log.1`, `NAME.log.2.gz`).
        case libvirtLog = "libvirt-log"
        /// The output of `virsh qemu-monitor-event --loop` (plain, `--pretty` or `--timestamp`).
        case virsh
    }

    /// What one file gave.
    public struct FileResult: Sendable {
        public var path: String
        public var machines: [String]
        public var outcome: ImportOutcome
        /// Lines that were not understood (line numbers for virsh transcripts; counted for logs).
        public var unknownLines: Int
    }

    public let database: EventDatabase
    public let now: @Sendable () -> Int64

    public init(database: EventDatabase, now: @escaping @Sendable () -> Int64 = CollectorConfiguration.systemNow) {
        self.database = database
        self.now = now
    }

    /// Imports one file.
    ///
    /// - Throws: ``ImportError`` naming the file when it cannot be read or holds nothing of its kind.
    public func importFile(_ path: String, as kind: Kind) async throws -> FileResult {
        let text = try Self.read(path)
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        let source = "\(kind.rawValue):\(absolute)"
        var histories: [ImportedHistory] = []
        var unknown = 0
        switch kind {
        case .libvirtLog:
            let parsed = LibvirtLogParser(text: text)
            unknown = parsed.unknownLines
            guard !parsed.events.isEmpty else {
                throw ImportError("\(path): no libvirt log lines (starting up, shutting down, terminating on signal)")
            }
            let name = parsed.name ?? Self.domainName(fromLogPath: path)
            histories.append(
                ImportedHistory(
                    machine: MachineIdentity(name: name, uuid: parsed.uuid, endpoint: source),
                    source: source,
                    events: parsed.events
                )
            )
        case .virsh:
            let parsed = VirshEventParser(text: text)
            unknown = parsed.unknownLines.count
            guard !parsed.events.isEmpty else {
                throw ImportError("\(path): no `virsh qemu-monitor-event` lines (event NAME … for domain 'DOM': …)")
            }
            for (domain, events) in parsed.events.sorted(by: { $0.key < $1.key }) {
                histories.append(
                    ImportedHistory(
                        machine: MachineIdentity(name: domain, uuid: nil, endpoint: source),
                        source: source,
                        events: events
                    )
                )
            }
        }
        var outcome = ImportOutcome()
        for history in histories {
            outcome = outcome + (try await database.importHistory(history, importedAt: now()))
        }
        return FileResult(
            path: path,
            machines: histories.map { $0.machine.displayName },
            outcome: outcome,
            unknownLines: unknown
        )
    }

    /// `web1` from `/var/log/libvirt/qemu/web1.log.2.gz`.
    static func domainName(fromLogPath path: String) -> String {
        var name = URL(fileURLWithPath: path).lastPathComponent
        if name.hasSuffix(".gz") { name.removeLast(3) }
        if let dot = name.range(of: ".log", options: .backwards) { name = String(name[..<dot.lowerBound]) }
        return name
    }

    /// The file's text; a `.gz` file is decompressed with gzip.
    static func read(_ path: String) throws -> String {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw ImportError("\(path): no such file, or not readable")
        }
        guard path.hasSuffix(".gz") else {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ImportError("\(path): cannot read")
            }
            return String(decoding: data, as: UTF8.self)
        }
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gzip.arguments = ["-dc", "--", path]
        let output = Pipe()
        gzip.standardOutput = output
        gzip.standardError = FileHandle.nullDevice
        do {
            try gzip.run()
        } catch {
            throw ImportError("\(path): cannot run gzip to decompress it: \(error)")
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        gzip.waitUntilExit()
        guard gzip.terminationStatus == 0 else { throw ImportError("\(path): not a valid gzip file") }
        return String(decoding: data, as: UTF8.self)
    }
}

/// A history file that cannot be imported.
public struct ImportError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
