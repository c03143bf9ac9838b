import GRDB

/// Report totals precomputed over the history before ``cut``, one set of facts per VM.
///
/// Reports over the whole history read these facts and scan only the events after the cut. The
/// rollup is derived data: the recorder rebuilds it from the events (``EventDatabase/replaceRollup(_:)``),
/// and a report ignores it when it cannot stand for the events (see ``isCurrent(in:)``).
public struct Rollup: Sendable, Equatable {
    /// Facts cover events whose effective time is before this instant (microseconds).
    public var cut: Int64
    /// The largest event id when the rollup was built: a later event stamped before ``cut``
    /// (a host clock behind, or an event in flight) makes the rollup stale.
    public var lastEventId: Int64
    /// The POWERDOWN→SHUTDOWN window the shutdown facts were counted with.
    public var powerdownWindow: Int64
    public var builtAt: Int64
    public var facts: [Fact]

    /// One counted value: `report`'s `key` on one VM (a count, a duration, or a state name's code).
    public struct Fact: Sendable, Hashable {
        public var report: String
        public var machineId: Int64
        /// The key's parts; stored as length-prefixed text (`3:abc0:`), so any character is safe in a part.
        public var key: [String]
        public var value: Int64

        public init(report: String, machineId: Int64, key: [String], value: Int64) {
            self.report = report
            self.machineId = machineId
            self.key = key
            self.value = value
        }
    }

    public init(cut: Int64, lastEventId: Int64, powerdownWindow: Int64, builtAt: Int64, facts: [Fact]) {
        self.cut = cut
        self.lastEventId = lastEventId
        self.powerdownWindow = powerdownWindow
        self.builtAt = builtAt
        self.facts = facts
    }

    /// `["abc", ""]` → `3:abc0:` (lengths in UTF-8 bytes).
    static func encode(_ key: [String]) -> String {
        key.map { "\($0.utf8.count):\($0)" }.joined()
    }

    /// The parts ``encode(_:)`` wrote; `nil` for text it did not write.
    static func decode(_ text: String) -> [String]? {
        var parts: [String] = []
        var rest = Substring(text).utf8[...]
        while !rest.isEmpty {
            guard let colon = rest.firstIndex(of: UInt8(ascii: ":")),
                let count = Int(Substring(rest[rest.startIndex..<colon])),
                let end = rest.index(colon, offsetBy: count + 1, limitedBy: rest.endIndex)
            else { return nil }
            parts.append(String(Substring(rest[rest.index(after: colon)..<end])))
            rest = rest[end...]
        }
        return parts
    }
}

extension EventDatabase {
    /// The rollup's header, or `nil` when none was built (or the database predates rollups).
    public func rollupHeader() async throws -> Rollup? {
        try await writer.read { db in try Self.rollupHeader(db) }
    }

    private static func rollupHeader(_ db: Database) throws -> Rollup? {
        guard try db.tableExists("rollup"),
            let row = try Row.fetchOne(
                db,
                sql: "SELECT cut, lastEventId, powerdownWindow, builtAt FROM rollup WHERE id = 1"
            )
        else { return nil }
        return Rollup(cut: row[0], lastEventId: row[1], powerdownWindow: row[2], builtAt: row[3], facts: [])
    }

    /// The rollup with its facts for `report`, if one was built and no event stamped before its
    /// cut arrived after it was built.
    public func currentRollup(report: String) async throws -> Rollup? {
        try await writer.read { db in
            guard var rollup = try Self.rollupHeader(db) else { return nil }
            // Late events: ids after the build (a rowid range, so only the newer events are read).
            let late = try Bool.fetchOne(
                db,
                sql: "SELECT EXISTS (SELECT 1 FROM event WHERE id > ? AND \(EventSQL.effectiveTime) < ?)",
                arguments: [rollup.lastEventId, rollup.cut]
            )
            guard late == false else { return nil }
            let cursor = try Row.fetchCursor(
                db,
                sql: "SELECT machineId, key, value FROM rollupFact WHERE report = ?",
                arguments: [report]
            )
            while let fact = try cursor.next() {
                guard let key = Rollup.decode(fact[1]) else { return nil }  // not ours: scan instead
                rollup.facts.append(Rollup.Fact(report: report, machineId: fact[0], key: key, value: fact[2]))
            }
            return rollup
        }
    }

    /// Replaces the stored rollup with `rollup`, in one transaction.
    public func replaceRollup(_ rollup: Rollup) async throws {
        do {
            try await writer.write { db in
                try db.execute(sql: "DELETE FROM rollupFact; DELETE FROM rollup")
                try db.execute(
                    sql: "INSERT INTO rollup (id, cut, lastEventId, powerdownWindow, builtAt) VALUES (1, ?, ?, ?, ?)",
                    arguments: [rollup.cut, rollup.lastEventId, rollup.powerdownWindow, rollup.builtAt]
                )
                let insert = try db.cachedStatement(
                    sql: "INSERT INTO rollupFact (report, machineId, key, value) VALUES (?, ?, ?, ?)"
                )
                for fact in rollup.facts {
                    try insert.execute(arguments: [
                        fact.report, fact.machineId, Rollup.encode(fact.key), fact.value,
                    ])
                }
            }
        } catch {
            throw Self.classify(error, path: path ?? "the database", opening: false)
        }
    }

    /// The largest event id, 0 for an empty database.
    public func lastEventId() async throws -> Int64 {
        try await writer.read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) FROM event") ?? 0 }
    }
}
