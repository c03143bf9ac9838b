import GRDB

extension EventDatabase {
    /// Named, append-only migrations. Never edit a shipped one: add the next.
    ///
    /// Times are integer microseconds since the Unix epoch. An event keeps QEMU's timestamp as sent
    /// (`seconds`, `microseconds`, signed, possibly -1/-1) and `time`, the same instant in
    /// microseconds or NULL when QEMU sent a negative timestamp, next to `received`, our own clock.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-events") { db in
            try db.execute(
                sql: """
                    CREATE TABLE machine (
                        id INTEGER PRIMARY KEY,
                        identity TEXT NOT NULL UNIQUE,
                        name TEXT,
                        uuid TEXT,
                        endpoint TEXT NOT NULL,
                        firstSeen INTEGER NOT NULL,
                        lastSeen INTEGER NOT NULL
                    ) STRICT;

                    CREATE TABLE session (
                        id INTEGER PRIMARY KEY,
                        machineId INTEGER NOT NULL REFERENCES machine(id),
                        endpoint TEXT NOT NULL,
                        peer TEXT,
                        qemuVersion TEXT NOT NULL,
                        qemuPackage TEXT NOT NULL,
                        initialStatus TEXT,
                        initialRunning INTEGER CHECK (initialRunning IN (0, 1)),
                        startedAt INTEGER NOT NULL,
                        endedAt INTEGER,
                        endReason TEXT,
                        CHECK (endedAt IS NULL OR endedAt >= startedAt)
                    ) STRICT;
                    CREATE INDEX session_machine_start ON session(machineId, startedAt);

                    CREATE TABLE event (
                        id INTEGER PRIMARY KEY,
                        sessionId INTEGER NOT NULL REFERENCES session(id),
                        machineId INTEGER NOT NULL REFERENCES machine(id),
                        seq INTEGER NOT NULL,
                        name TEXT NOT NULL,
                        seconds INTEGER NOT NULL,
                        microseconds INTEGER NOT NULL,
                        time INTEGER,
                        received INTEGER NOT NULL,
                        guest INTEGER CHECK (guest IN (0, 1)),
                        reason TEXT,
                        action TEXT,
                        panicType TEXT,
                        panicReason TEXT,
                        panicArg1 TEXT,
                        data TEXT,
                        UNIQUE (sessionId, seq)
                    ) STRICT;
                    CREATE INDEX event_machine_time ON event(machineId, time);
                    CREATE INDEX event_name_time ON event(name, time);
                    CREATE INDEX event_time ON event(time);
                    """
            )
        }
        // Reports and exports filter on the event's effective time, COALESCE(time, received) (QEMU's
        // timestamp, or ours when QEMU sent -1/-1), which the v1 indexes on `time` cannot serve.
        // Two expression indexes replace the three v1 time indexes: --since/--until windows use them,
        // and every insert maintains one index fewer.
        migrator.registerMigration("v2-effective-time-indexes") { db in
            try db.execute(
                sql: """
                    CREATE INDEX event_name_at ON event(name, COALESCE(time, received));
                    CREATE INDEX event_machine_at ON event(machineId, COALESCE(time, received));
                    DROP INDEX event_machine_time;
                    DROP INDEX event_name_time;
                    DROP INDEX event_time;
                    """
            )
        }
        // Totals per VM that reports precompute over the history before a cut, so a report over the
        // whole history reads a few rows per VM plus the events after the cut (see `Rollup`).
        // Derived data: deleting both tables' rows only makes reports scan again.
        migrator.registerMigration("v3-rollup") { db in
            try db.execute(
                sql: """
                    CREATE TABLE rollup (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        cut INTEGER NOT NULL,
                        lastEventId INTEGER NOT NULL,
                        powerdownWindow INTEGER NOT NULL,
                        builtAt INTEGER NOT NULL
                    ) STRICT;

                    CREATE TABLE rollupFact (
                        report TEXT NOT NULL,
                        machineId INTEGER NOT NULL,
                        key TEXT NOT NULL,
                        value INTEGER NOT NULL,
                        PRIMARY KEY (report, machineId, key)
                    ) STRICT, WITHOUT ROWID;
                    """
            )
        }
        // The UNIQUE (sessionId, seq) index guarded against duplicates the one writer cannot produce
        // (it numbers each session's events itself), and every insert paid for it: with many VMs it
        // dirtied a page per session in every commit. SQLite drops a table constraint only by
        // rebuilding the table; rows keep their ids, so nothing that refers to them changes.
        migrator.registerMigration("v4-event-without-session-seq-index") { db in
            try db.execute(
                sql: """
                    CREATE TABLE event_v4 (
                        id INTEGER PRIMARY KEY,
                        sessionId INTEGER NOT NULL REFERENCES session(id),
                        machineId INTEGER NOT NULL REFERENCES machine(id),
                        seq INTEGER NOT NULL,
                        name TEXT NOT NULL,
                        seconds INTEGER NOT NULL,
                        microseconds INTEGER NOT NULL,
                        time INTEGER,
                        received INTEGER NOT NULL,
                        guest INTEGER CHECK (guest IN (0, 1)),
                        reason TEXT,
                        action TEXT,
                        panicType TEXT,
                        panicReason TEXT,
                        panicArg1 TEXT,
                        data TEXT
                    ) STRICT;
                    INSERT INTO event_v4 SELECT id, sessionId, machineId, seq, name, seconds, microseconds, time,
                        received, guest, reason, action, panicType, panicReason, panicArg1, data FROM event;
                    DROP TABLE event;
                    ALTER TABLE event_v4 RENAME TO event;
                    CREATE INDEX event_name_at ON event(name, COALESCE(time, received));
                    CREATE INDEX event_machine_at ON event(machineId, COALESCE(time, received));
                    """
            )
        }
        // The (name, time) index had a dozen insertion points, one per event name, each in the middle
        // of the tree, where a full leaf splits in two half-empty ones; it was half of a flood's insert
        // work (measured with the sqlite3 CLI, 1 M events: both v4 indexes 3.3-3.5 s of CPU, the
        // machine index alone 2.0-2.2 s). Time first, new events land at the tree's right edge. A
        // windowed per-name report reads the window's index entries and checks the name in the index
        // (no table lookup for the other names); whole-history reports never used it (rowid scans).
        migrator.registerMigration("v5-event-time-name-index") { db in
            try db.execute(
                sql: """
                    DROP INDEX event_name_at;
                    CREATE INDEX event_at ON event(COALESCE(time, received), name);
                    """
            )
        }
        // Rollups built before this carried a running session's state as 0, which the tally
        // dropped, and counted a held shutdown (SHUTDOWN, STOP) as paused: rebuild from the events.
        migrator.registerMigration("v6-rollup-rebuilt") { db in
            try db.execute(sql: "DELETE FROM rollupFact; DELETE FROM rollup")
        }
        // History imported from files (`qmplog import`): sessions with a source are not observation
        // (reports' coverage ignores them); each imported fact is keyed so that a file imported twice,
        // or rotated and imported again, adds nothing; a signal's sender is attached to its SHUTDOWN.
        migrator.registerMigration("v7-imports") { db in
            try db.execute(
                sql: """
                    ALTER TABLE session ADD COLUMN source TEXT;
                    CREATE TABLE importedEvent (
                        machineId INTEGER NOT NULL REFERENCES machine(id),
                        importKey TEXT NOT NULL,
                        eventId INTEGER NOT NULL REFERENCES event(id),
                        PRIMARY KEY (machineId, importKey)
                    ) STRICT, WITHOUT ROWID;
                    CREATE TABLE signalSender (
                        eventId INTEGER PRIMARY KEY REFERENCES event(id),
                        signal INTEGER NOT NULL,
                        pid INTEGER,
                        program TEXT,
                        evidenceEventId INTEGER NOT NULL REFERENCES event(id)
                    ) STRICT;
                    """
            )
        }
        // What `record --on CLASS --exec COMMAND` told, so that a hook runs once per incident and
        // one pending at a crash runs after the restart: each incident is stored before its hooks
        // run, each hook's run is marked when it ends, and the scan's progress survives a restart.
        migrator.registerMigration("v8-incidents") { db in
            try db.execute(
                sql: """
                    CREATE TABLE incident (
                        id INTEGER PRIMARY KEY,
                        machineId INTEGER NOT NULL REFERENCES machine(id),
                        kind TEXT NOT NULL,
                        class TEXT NOT NULL,
                        time INTEGER NOT NULL,
                        lastTime INTEGER NOT NULL,
                        count INTEGER NOT NULL,
                        evidence TEXT NOT NULL,
                        event TEXT,
                        detectedAt INTEGER NOT NULL,
                        UNIQUE (machineId, kind, class, time)
                    ) STRICT;
                    CREATE TABLE hookRun (
                        incidentId INTEGER NOT NULL REFERENCES incident(id),
                        hook TEXT NOT NULL,
                        finishedAt INTEGER,
                        outcome TEXT,
                        PRIMARY KEY (incidentId, hook)
                    ) STRICT, WITHOUT ROWID;
                    CREATE INDEX hookRunPending ON hookRun(hook) WHERE finishedAt IS NULL;
                    CREATE TABLE incidentScan (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        scannedUntil INTEGER NOT NULL
                    ) STRICT;
                    """
            )
        }
        // `qmplog ship`: the identity this database ships under to the fleet's PostgreSQL (made on
        // the first ship, kept with the events it names) and what PostgreSQL has confirmed, which
        // `qmplog prune` keeps until shipped. PostgreSQL holds the authoritative cursor.
        migrator.registerMigration("v9-shipping") { db in
            try db.execute(
                sql: """
                    CREATE TABLE shipping (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        hostId TEXT NOT NULL,
                        hostName TEXT NOT NULL,
                        target TEXT,
                        shippedEventId INTEGER NOT NULL DEFAULT 0,
                        shippedAt INTEGER,
                        clockOffset INTEGER
                    ) STRICT;
                    """
            )
        }
        // A fleet replica (`--db postgresql://…`): a local copy of what hosts shipped, which the
        // reports read like any database. Which host and host-side id each row came from, and how
        // far each host has been copied. Empty in a host's own database.
        migrator.registerMigration("v10-fleet-replica") { db in
            try db.execute(
                sql: """
                    CREATE TABLE fleetHost (
                        key INTEGER PRIMARY KEY,
                        name TEXT NOT NULL,
                        clockOffset INTEGER,
                        lastEventId INTEGER NOT NULL DEFAULT 0,
                        lastSessionId INTEGER NOT NULL DEFAULT 0
                    ) STRICT;
                    CREATE TABLE fleetMachine (
                        host INTEGER NOT NULL REFERENCES fleetHost(key),
                        remoteId INTEGER NOT NULL,
                        machineId INTEGER NOT NULL REFERENCES machine(id),
                        name TEXT,
                        PRIMARY KEY (host, remoteId)
                    ) STRICT, WITHOUT ROWID;
                    CREATE TABLE fleetSession (
                        host INTEGER NOT NULL REFERENCES fleetHost(key),
                        remoteId INTEGER NOT NULL,
                        sessionId INTEGER NOT NULL REFERENCES session(id),
                        open INTEGER NOT NULL CHECK (open IN (0, 1)),
                        PRIMARY KEY (host, remoteId)
                    ) STRICT, WITHOUT ROWID;
                    """
            )
        }
        // Import keys outlive the events `qmplog prune` deletes, so that importing a file again adds
        // nothing whatever was pruned: the event a key names may be gone (NULL).
        migrator.registerMigration("v11-import-keys-outlive-prune") { db in
            try db.execute(
                sql: """
                    CREATE TABLE importedEventNew (
                        machineId INTEGER NOT NULL REFERENCES machine(id),
                        importKey TEXT NOT NULL,
                        eventId INTEGER REFERENCES event(id) ON DELETE SET NULL,
                        PRIMARY KEY (machineId, importKey)
                    ) STRICT, WITHOUT ROWID;
                    INSERT INTO importedEventNew SELECT machineId, importKey, eventId FROM importedEvent;
                    DROP TABLE importedEvent;
                    ALTER TABLE importedEventNew RENAME TO importedEvent;
                    """
            )
        }
        // Each session's last event (its last arrival), kept by every commit: a recorder starting
        // after a crash ends the sessions left open at their last event without a walk through
        // their VM's history (NULL: sessions written before this migration).
        migrator.registerMigration("v12-session-last-event") { db in
            try db.execute(sql: "ALTER TABLE session ADD COLUMN lastEventId INTEGER")
        }
        return migrator
    }
}
