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

    /// Events stored per transaction: what an import holds in memory, whatever the file's size.
    static let batchSize = 10_000

    /// Imports one file, reading it line by line and storing its events in batches.
    ///
    /// - Throws: ``ImportError`` naming the file when it cannot be read or holds nothing of its kind.
    public func importFile(_ path: String, as kind: Kind) async throws -> FileResult {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        let source = "\(kind.rawValue):\(absolute)"
        switch kind {
        case .libvirtLog: return try await importLibvirtLog(path, source: source)
        case .virsh: return try await importVirsh(path, source: source)
        }
    }

    /// A libvirt log names its VM in each run's command line: a first pass reads only those lines
    /// (the last name given is the VM's, as libvirt keeps a domain's log under its name), a second
    /// parses and stores the events.
    private func importLibvirtLog(_ path: String, source: String) async throws -> FileResult {
        var identity = LibvirtLogParser()
        let first = try HistoryLines(path: path)
        while let line = try first.next() {
            if line.hasPrefix("-name ") || line.hasPrefix("-uuid ") { identity.read(line) }
        }
        let machine = MachineIdentity(
            name: identity.name ?? Self.domainName(fromLogPath: path),
            uuid: identity.uuid,
            endpoint: source
        )
        var parser = LibvirtLogParser()
        var outcome = ImportOutcome()
        let lines = try HistoryLines(path: path)
        while let line = try lines.next() {
            parser.read(line)
            if parser.events.count >= Self.batchSize {
                outcome = outcome + (try await store(parser.events, of: machine, from: source))
                parser.events.removeAll(keepingCapacity: true)
            }
        }
        guard parser.eventCount > 0 else {
            throw ImportError("\(path): no libvirt log lines (starting up, shutting down, terminating on signal)")
        }
        outcome = outcome + (try await store(parser.events, of: machine, from: source))
        return FileResult(
            path: path,
            machines: [machine.displayName],
            outcome: outcome,
            unknownLines: parser.unknownLines
        )
    }

    private func importVirsh(_ path: String, source: String) async throws -> FileResult {
        var parser = VirshEventParser()
        var outcome = ImportOutcome()
        var machines: Set<String> = []
        func flush() async throws {
            for (domain, events) in parser.events.sorted(by: { $0.key < $1.key }) {
                let machine = MachineIdentity(name: domain, uuid: nil, endpoint: source)
                machines.insert(machine.displayName)
                outcome = outcome + (try await store(events, of: machine, from: source))
            }
            parser.events.removeAll(keepingCapacity: true)
        }
        let lines = try HistoryLines(path: path)
        var pending = 0
        while let line = try lines.next() {
            parser.read(line)
            if parser.eventCount - pending >= Self.batchSize {
                try await flush()
                pending = parser.eventCount
            }
        }
        parser.finish()
        guard parser.eventCount > 0 else {
            throw ImportError("\(path): no `virsh qemu-monitor-event` lines (event NAME … for domain 'DOM': …)")
        }
        try await flush()
        return FileResult(path: path, machines: machines.sorted(), outcome: outcome, unknownLines: parser.unknownLines)
    }

    private func store(_ events: [ImportedEvent], of machine: MachineIdentity, from source: String) async throws
        -> ImportOutcome
    {
        try await database.importHistory(
            ImportedHistory(machine: machine, source: source, events: events),
            importedAt: now()
        )
    }

    /// `web1` from `/var/log/libvirt/qemu/web1.log.2.gz`.
    static func domainName(fromLogPath path: String) -> String {
        var name = URL(fileURLWithPath: path).lastPathComponent
        if name.hasSuffix(".gz") { name.removeLast(3) }
        if let dot = name.range(of: ".log", options: .backwards) { name = String(name[..<dot.lowerBound]) }
        return name
    }

    /// The file's whole text, for tests (an import reads it line by line).
    static func read(_ path: String) throws -> String {
        let lines = try HistoryLines(path: path)
        var text = ""
        while let line = try lines.next() { text += line + "\n" }
        return text
    }
}

/// A history file that cannot be imported.
public struct ImportError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
