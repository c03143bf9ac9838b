/// The fleet database's schema: named, append-only migrations, as the SQLite file's. Never edit a
/// shipped one: add the next.
///
/// Tables mirror the hosts' SQLite tables, keyed by the host and the host's own row id, so that a
/// batch sent twice cannot be stored twice. Unquoted names: PostgreSQL folds them to lower case.
/// `data` is jsonb. Times stay integer microseconds since the epoch, as on the hosts.
enum FleetMigrations {
    static let all: [(name: String, statements: [String])] = [
        (
            "v1-fleet",
            [
                """
                CREATE TABLE host (
                    key integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    id uuid NOT NULL UNIQUE,
                    name text NOT NULL,
                    firstShipped bigint NOT NULL,
                    lastShipped bigint,
                    clockOffset bigint
                )
                """,
                """
                CREATE TABLE shipCursor (
                    host integer PRIMARY KEY REFERENCES host(key),
                    lastEventId bigint NOT NULL DEFAULT 0,
                    lastSessionId bigint NOT NULL DEFAULT 0,
                    lastMachineId bigint NOT NULL DEFAULT 0
                )
                """,
                """
                CREATE TABLE machine (
                    host integer NOT NULL REFERENCES host(key),
                    id bigint NOT NULL,
                    identity text NOT NULL,
                    name text,
                    uuid text,
                    endpoint text NOT NULL,
                    firstSeen bigint NOT NULL,
                    lastSeen bigint NOT NULL,
                    PRIMARY KEY (host, id)
                )
                """,
                """
                CREATE TABLE session (
                    host integer NOT NULL REFERENCES host(key),
                    id bigint NOT NULL,
                    machineId bigint NOT NULL,
                    endpoint text NOT NULL,
                    peer text,
                    qemuVersion text NOT NULL,
                    qemuPackage text NOT NULL,
                    initialStatus text,
                    initialRunning boolean,
                    startedAt bigint NOT NULL,
                    endedAt bigint,
                    endReason text,
                    source text,
                    PRIMARY KEY (host, id)
                )
                """,
                "CREATE INDEX session_machine_start ON session (host, machineId, startedAt)",
                "CREATE INDEX session_open ON session (host) WHERE endedAt IS NULL",
                """
                CREATE TABLE event (
                    host integer NOT NULL REFERENCES host(key),
                    id bigint NOT NULL,
                    sessionId bigint NOT NULL,
                    machineId bigint NOT NULL,
                    seq bigint NOT NULL,
                    name text NOT NULL,
                    seconds bigint NOT NULL,
                    microseconds bigint NOT NULL,
                    time bigint,
                    received bigint NOT NULL,
                    guest boolean,
                    reason text,
                    action text,
                    panicType text,
                    panicReason text,
                    panicArg1 text,
                    data jsonb,
                    PRIMARY KEY (host, id)
                )
                """,
                "CREATE INDEX event_machine_at ON event (host, machineId, (COALESCE(time, received)))",
                "CREATE INDEX event_at ON event ((COALESCE(time, received)), name)",
                // One row per batch that carried events: PostgreSQL's clock beside the host's.
                """
                CREATE TABLE shipBatch (
                    host integer NOT NULL REFERENCES host(key),
                    receivedAt bigint NOT NULL,
                    clockOffset bigint NOT NULL,
                    events integer NOT NULL,
                    lastEventId bigint NOT NULL
                )
                """,
                "CREATE INDEX shipBatch_host ON shipBatch (host, receivedAt)",
            ]
        ),
        (
            // Who this fleet database is: made once, so that a reader's copy of a database that was
            // dropped and created again (the same URL, other contents) is told apart and not reused.
            "v2-fleet-identity",
            [
                "CREATE TABLE fleetIdentity (id uuid PRIMARY KEY, createdAt timestamptz NOT NULL DEFAULT now())",
                "INSERT INTO fleetIdentity (id) VALUES (gen_random_uuid())",
            ]
        ),
    ]
}
