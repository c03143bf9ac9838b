#!/usr/bin/env python3
"""qmplog benchmarks: one command per scenario, medians of several runs, ratios from the same run.

    python3 Benchmarks/bench.py ingest  [--events 1000000] [--runs 5]
    python3 Benchmarks/bench.py reports [--events 10000000] [--runs 3]
    python3 Benchmarks/bench.py export  [--events 1000000] [--runs 3]
    python3 Benchmarks/bench.py many    [--vms 1000] [--seconds 30] [--skip-floor]
    python3 Benchmarks/bench.py durability [--events 3000000] [--restarts 5]
    python3 Benchmarks/bench.py restart [--events 10000000] [--runs 5]
    python3 Benchmarks/bench.py ship    [--events 1000000] [--runs 3]
    python3 Benchmarks/bench.py fleet   [--events 10000000] [--runs 3]

Needs a release build (`swift build -c release --static-swift-stdlib --product qmplog`), sqlite3, GNU time
(/usr/bin/time) and, for the Python comparison, `pip install qemu.qmp`. Results print as a table
and are saved as JSON under Benchmarks/results/.
"""
import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
QMPLOG = os.path.join(ROOT, ".build", "release", "qmplog")
FLOOR_PACKAGE = os.path.join(HERE, "NIOFloor")
sys.path.insert(0, HERE)
from flood_server import render_events  # noqa: E402


def timed(command, cpu_window=None, **kwargs):
    """Runs `command` under GNU time; returns (seconds, peak RSS in MiB, cpu seconds, stdout).

    Dirty pages of what ran before (the CSV, the previous contender's database) are written out
    first, so that no contender pays for another's writeback while it syncs its own files.
    With `cpu_window=(start, end)` (seconds after launch), the fourth item is instead the share of
    a core the command used between those two moments, read from /proc: the steady state, without
    start-up and shutdown."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    os.sync()
    process = subprocess.Popen(["/usr/bin/time", "-f", "%e %M %U %S"] + command, stderr=subprocess.PIPE, text=True,
                               **kwargs)
    window = None
    if cpu_window:
        launched = time.monotonic()
        samples = []
        for moment in cpu_window:
            time.sleep(max(0, launched + moment - time.monotonic()))
            samples.append((time.monotonic(), child_cpu_seconds(process.pid)))
        (t0, cpu0), (t1, cpu1) = samples
        window = (cpu1 - cpu0) / (t1 - t0) if cpu0 is not None and cpu1 is not None else None
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({process.returncode}): {stderr[-2000:]}")
    elapsed, rss_kib, user, system = stderr.strip().splitlines()[-1].split()
    return float(elapsed), int(rss_kib) / 1024, float(user) + float(system), window if cpu_window else stdout


def process_cpu_seconds(pid):
    """CPU seconds (user + system, all threads) of process `pid`."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_cpu_seconds(parent):
    """CPU seconds (user + system, all threads) of the one child of `parent` (GNU time's command)."""
    try:
        with open(f"/proc/{parent}/task/{parent}/children") as f:
            child = int(f.read().split()[0])
        with open(f"/proc/{child}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def count_rows(db, table="event"):
    return int(subprocess.check_output(["sqlite3", db, f"SELECT COUNT(*) FROM {table}"], text=True))


def start_flood(paths, events, start_after):
    command = [sys.executable, os.path.join(HERE, "flood_server.py"), "--events", str(events),
               "--start-after", start_after]
    for path in paths:
        command += ["--path", path]
    server = subprocess.Popen(command)
    deadline = time.time() + 120
    while not all(os.path.exists(p) for p in paths):
        if time.time() > deadline or server.poll() is not None:
            raise RuntimeError("flood server did not start")
        time.sleep(0.05)
    time.sleep(0.2)
    return server


# qmplog's event table (schema v5) with its indexes, minus STRICT (sqlite3's .import writes
# empty CSV fields as '' text, which STRICT integer columns refuse).
CEILING_SCHEMA = """
CREATE TABLE event (
    id INTEGER PRIMARY KEY, sessionId INTEGER NOT NULL, machineId INTEGER NOT NULL, seq INTEGER NOT NULL,
    name TEXT NOT NULL, seconds INTEGER NOT NULL, microseconds INTEGER NOT NULL, time INTEGER,
    received INTEGER NOT NULL, guest INTEGER, reason TEXT, action TEXT, panicType TEXT, panicReason TEXT,
    panicArg1 TEXT, data TEXT);
CREATE INDEX event_at ON event(COALESCE(time, received), name);
CREATE INDEX event_machine_at ON event(machineId, COALESCE(time, received));
"""


def write_csv(path, events):
    """The rows qmplog would store for the flood, as CSV for sqlite3's .import."""
    stream = render_events(events).decode().splitlines()
    with open(path, "w") as out:
        for seq, line in enumerate(stream, start=1):
            message = json.loads(line)
            data = message.get("data")
            info = (data or {}).get("info") or {}
            seconds = message["timestamp"]["seconds"]
            micro = message["timestamp"]["microseconds"]
            row = [seq, 1, 1, seq, message["event"], seconds, micro, seconds * 1000000 + micro, seconds * 1000000 + micro,
                   "" if data is None or "guest" not in data else int(data["guest"]),
                   (data or {}).get("reason", ""), (data or {}).get("action", ""), info.get("type", ""),
                   info.get("reason", "") if info.get("type") == "s390" else "", str(info.get("arg1", "")),
                   "" if data is None else json.dumps(data)]
            out.write(",".join('"' + str(v).replace('"', '""') + '"' if isinstance(v, str) and v else str(v)
                               for v in row) + "\n")


def ingest(args):
    schema = CEILING_SCHEMA
    work = tempfile.mkdtemp(prefix="bench-ingest-")
    csv_path = os.path.join(work, "events.csv")
    write_csv(csv_path, args.events)
    expected = args.events + 1  # the flood plus its FLOOD_END marker
    results = {"qmplog": [], "sqlite3 CLI import": [], "python qemu.qmp": []}
    for run in range(args.runs):
        # qmplog record --once
        sock, db = os.path.join(work, f"q{run}.qmp"), os.path.join(work, f"q{run}.sqlite")
        server = start_flood([sock], args.events, "query-status")
        try:
            elapsed, rss, cpu, _ = timed([args.qmplog, "record", "--once", "--log-level", "error", "--db", db, sock])
        finally:
            server.kill()
        assert count_rows(db) == expected, f"qmplog stored {count_rows(db)} of {expected}"
        results["qmplog"].append((elapsed, rss, cpu))
        # sqlite3 CLI: the same rows, one transaction, WAL, same schema and indexes
        db = os.path.join(work, f"s{run}.sqlite")
        script = f"PRAGMA journal_mode=WAL;\nPRAGMA synchronous=NORMAL;\n{schema}\nBEGIN;\n" \
                 f".import --csv {csv_path} event\nCOMMIT;\n"
        with open(os.path.join(work, "import.sql"), "w") as f:
            f.write(script)
        elapsed, rss, cpu, _ = timed(["sqlite3", db], stdin=open(os.path.join(work, "import.sql")))
        assert count_rows(db) == expected, f"sqlite3 imported {count_rows(db)} of {expected}"
        results["sqlite3 CLI import"].append((elapsed, rss, cpu))
        # the Python recorder
        if not args.skip_python:
            sock, db = os.path.join(work, f"p{run}.qmp"), os.path.join(work, f"p{run}.sqlite")
            server = start_flood([sock], args.events, "qmp_capabilities")
            try:
                elapsed, rss, cpu, _ = timed([sys.executable, os.path.join(HERE, "python_recorder.py"), db, sock])
            finally:
                server.kill()
            assert count_rows(db) == expected, f"python stored {count_rows(db)} of {expected}"
            results["python qemu.qmp"].append((elapsed, rss, cpu))
        print(f"run {run + 1}/{args.runs}: " + ", ".join(f"{k} {v[-1][0]:.2f}s" for k, v in results.items() if v),
              flush=True)
    shutil.rmtree(work)
    summary = summarize(results, args.events)
    base = summary["qmplog"]["seconds"]
    print(f"\nIngest of {args.events:,} events (+1 end marker), median of {args.runs} runs, release build")
    print(f"{'':22} {'seconds':>8} {'events/s':>12} {'peak RSS':>9} {'CPU s':>7} {'qmplog speed-up':>16}")
    for name, row in summary.items():
        print(f"{name:22} {row['seconds']:8.2f} {row['events_per_second']:12,.0f} {row['peak_rss_mib']:7.1f}Mi "
              f"{row['cpu_seconds']:7.2f} {row['seconds'] / base:15.2f}x")
    save("ingest", args, summary)


def make_report_database(path, events, vms):
    """A qmplog database of `events` events over `vms` VMs and the year before now, generated by
    SQLite itself, plus `raw`, the same events as raw JSON only (the obvious alternative). Each VM
    has one session and cycles through the event mix in its own sequence (k)."""
    subprocess.run([QMPLOG, "record", "--once", "--db", path, path + ".none"], capture_output=True)
    year = 365 * 86400 * 1000000
    start = (int(time.time()) // 3600 * 3600 - 366 * 86400) * 1000000
    # Generated without a journal (a WAL of several GB is slow), then switched to WAL like qmplog's.
    sql = f"""
    PRAGMA journal_mode=OFF;
    PRAGMA synchronous=OFF;
    PRAGMA cache_size=-262144;
    BEGIN;
    WITH RECURSIVE v(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM v WHERE x < {vms})
    INSERT INTO machine (id, identity, name, endpoint, firstSeen, lastSeen)
      SELECT x, 'name:vm' || x, 'vm' || x, 'unix:/run/qemu/vm' || x || '.qmp', {start}, {start + year} FROM v;
    INSERT INTO session (id, machineId, endpoint, qemuVersion, qemuPackage, initialStatus, initialRunning,
                         startedAt, endedAt, endReason)
      SELECT id, id, endpoint, '7.2.22', 'bench', 'running', 1, {start}, {start + year}, 'eof' FROM machine;
    WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < {events - 1})
    INSERT INTO event (sessionId, machineId, seq, name, seconds, microseconds, time, received, guest, reason,
                       action, panicType, panicReason, panicArg1, data)
      SELECT m, m, k + 1, name, t / 1000000, t % 1000000, t, t, guest, reason, action, ptype, preason, parg,
             data FROM (
        SELECT m, k, t,
          CASE k % 10 WHEN 0 THEN 'SHUTDOWN' WHEN 1 THEN 'RESUME' WHEN 2 THEN 'RESET' WHEN 3 THEN 'RESET'
               WHEN 4 THEN 'STOP' WHEN 5 THEN 'RESUME' WHEN 6 THEN 'WATCHDOG' WHEN 7 THEN 'GUEST_PANICKED'
               WHEN 8 THEN 'POWERDOWN' ELSE 'BLOCK_IO_ERROR' END AS name,
          CASE WHEN k % 10 IN (0, 2, 3) THEN (k / 10) % 2 END AS guest,
          CASE k % 10 WHEN 0 THEN CASE (k / 10) % 2 WHEN 1 THEN 'guest-shutdown' ELSE 'host-qmp-quit' END
               WHEN 2 THEN 'guest-reset' WHEN 3 THEN 'host-qmp-system-reset'
               WHEN 9 THEN 'No space left on device' END AS reason,
          CASE k % 10 WHEN 6 THEN 'reset' WHEN 7 THEN 'pause' WHEN 9 THEN 'stop' END AS action,
          CASE WHEN k % 10 = 7 THEN CASE (k / 10) % 3 WHEN 0 THEN 'hyper-v' WHEN 1 THEN 's390' END END AS ptype,
          CASE WHEN k % 10 = 7 AND (k / 10) % 3 = 1 THEN 'disabled-wait' END AS preason,
          CASE WHEN k % 10 = 7 AND (k / 10) % 3 = 0 THEN '209' END AS parg,
          CASE WHEN k % 10 IN (0, 2, 3) THEN '{{"guest": ' || CASE (k / 10) % 2 WHEN 1 THEN 'true' ELSE 'false' END
               || ', "reason": "x"}}' END AS data
        FROM (SELECT x % {vms} + 1 AS m, x / {vms} AS k, {start} + x * ({year} / {events}) AS t FROM c));
    CREATE TABLE raw (vm TEXT NOT NULL, json TEXT NOT NULL);
    INSERT INTO raw SELECT 'vm' || e.machineId,
        '{{"timestamp": {{"seconds": ' || e.seconds || ', "microseconds": ' || e.microseconds || '}}, "event": "'
        || e.name || '"' || COALESCE(', "data": ' || COALESCE(e.data,
            CASE WHEN e.action IS NOT NULL THEN '{{"action": "' || e.action || '"}}' END), '') || '}}' FROM event e;
    COMMIT;
    PRAGMA journal_mode=WAL;
    """
    subprocess.run(["sqlite3", path], input=sql, text=True, check=True, stdout=subprocess.DEVNULL)


REPORTS = ["summary", "shutdowns", "panics", "resets", "watchdog", "states", "stops", "pauses"]


def reports(args):
    """Each report over the whole history three ways: scanning the events (an explicit --since
    before the first event), from the rollup (`qmplog rollup`, then no window), and, where it can
    answer at all, sqlite3 with json_extract over raw JSON."""
    work = tempfile.mkdtemp(prefix="bench-reports-")
    db = os.path.join(work, "big.sqlite")
    started = time.time()
    make_report_database(db, args.events, args.vms)
    print(f"generated {count_rows(db):,} events in {time.time() - started:.0f} s", flush=True)
    raw_queries = {
        "summary": "SELECT json_extract(json, '$.event'), COUNT(*) FROM raw GROUP BY 1",
        "shutdowns": "SELECT json_extract(json, '$.data.guest') AS g, json_extract(json, '$.data.reason'), COUNT(*) "
                     "FROM raw WHERE json_extract(json, '$.event') = 'SHUTDOWN' GROUP BY 1, 2",
        "panics": "SELECT json_extract(json, '$.data.info.type'), json_extract(json, '$.data.action'), COUNT(*) "
                  "FROM raw WHERE json_extract(json, '$.event') = 'GUEST_PANICKED' GROUP BY 1, 2",
        "resets": "SELECT json_extract(json, '$.data.guest'), json_extract(json, '$.data.reason'), COUNT(*) "
                  "FROM raw WHERE json_extract(json, '$.event') = 'RESET' GROUP BY 1, 2",
    }
    summary = {kind: {} for kind in REPORTS}
    for kind in REPORTS:
        runs = [timed([QMPLOG, "report", kind, "--db", db, "--format", "json", "--since", "1970-01-01"],
                      stdout=subprocess.DEVNULL) for _ in range(args.runs)]
        summary[kind]["scan_seconds"] = statistics.median(r[0] for r in runs)
        summary[kind]["scan_peak_rss_mib"] = max(r[1] for r in runs)
        print(f"scan {kind}: {summary[kind]}", flush=True)
    elapsed, rss, cpu, output = timed([QMPLOG, "rollup", "--db", db])
    summary["rollup_build"] = {"seconds": elapsed, "peak_rss_mib": rss, "output": output.strip()}
    print(f"rollup: {summary['rollup_build']}", flush=True)
    for kind in REPORTS:
        runs = [timed([QMPLOG, "report", kind, "--db", db, "--format", "json"], stdout=subprocess.DEVNULL)
                for _ in range(args.runs)]
        summary[kind]["rollup_seconds"] = statistics.median(r[0] for r in runs)
        summary[kind]["rollup_peak_rss_mib"] = max(r[1] for r in runs)
        if kind in raw_queries:
            raw = [timed(["sqlite3", db, raw_queries[kind]], stdout=subprocess.DEVNULL) for _ in range(args.runs)]
            summary[kind]["raw_json_seconds"] = statistics.median(r[0] for r in raw)
        print(f"report {kind}: {summary[kind]}", flush=True)
    shutil.rmtree(work)
    print(f"\nReports over {args.events:,} events, {args.vms} VMs, one year; median of {args.runs} runs")
    print(f"rollup built in {summary['rollup_build']['seconds']:.1f} s")
    print(f"{'report':10} {'scan s':>8} {'rollup s':>9} {'raw JSON s':>11} {'vs raw':>7} {'peak RSS':>9}")
    for kind in REPORTS:
        row = summary[kind]
        raw = row.get("raw_json_seconds")
        print(f"{kind:10} {row['scan_seconds']:8.2f} {row['rollup_seconds']:9.3f} "
              f"{raw if raw is not None else float('nan'):11.2f} "
              f"{(raw / row['rollup_seconds']) if raw else float('nan'):6.1f}x {row['rollup_peak_rss_mib']:7.1f}Mi")
    save("reports", args, summary)


def export(args):
    """Every event of a generated database as CSV and NDJSON, against the sqlite3 CLI printing the
    same columns as CSV (no timestamp formatting, no JSON compaction)."""
    work = tempfile.mkdtemp(prefix="bench-export-")
    db = os.path.join(work, "export.sqlite")
    make_report_database(db, args.events, args.vms)
    out = os.path.join(work, "out")
    results = {}
    for name, command in [
        ("qmplog csv", [QMPLOG, "export", "--db", db, "--format", "csv", "-o", out]),
        ("qmplog ndjson", [QMPLOG, "export", "--db", db, "--format", "ndjson", "-o", out]),
        ("sqlite3 -csv", ["sqlite3", "-csv", db, "SELECT e.id, m.name, e.time, e.seconds, e.microseconds, e.received, "
                          "e.name, e.guest, e.reason, e.action, e.panicType, e.panicReason, e.data FROM event e "
                          "JOIN machine m ON m.id = e.machineId ORDER BY e.id"]),
    ]:
        runs = []
        for _ in range(args.runs):
            with open(out, "w") as sink:
                runs.append(timed(command, stdout=sink) if name.startswith("sqlite3") else timed(command))
            lines = int(subprocess.check_output(["wc", "-l", out], text=True).split()[0])
            assert lines >= args.events, f"{name} wrote {lines} lines"
        seconds = statistics.median(r[0] for r in runs)
        results[name] = {"seconds": seconds, "rows_per_second": args.events / seconds,
                         "peak_rss_mib": max(r[1] for r in runs), "all_seconds": [r[0] for r in runs]}
        print(f"{name}: {results[name]}", flush=True)
    shutil.rmtree(work)
    print(f"\nExport of {args.events:,} events to a file; median of {args.runs} runs")
    for name, row in results.items():
        print(f"{name:15} {row['seconds']:6.2f} s {row['rows_per_second']:12,.0f} rows/s {row['peak_rss_mib']:7.1f}Mi")
    save("export", args, results)


def many(args):
    """VMS sockets each sending 3 events/s for SECONDS: CPU share and memory of each recorder."""
    import resource
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    work = tempfile.mkdtemp(prefix="bench-many-")
    results = {}
    contenders = ["qmplog"] + (["qmplog serving"] if args.serve else []) + ([] if args.skip_python else ["python qemu.qmp"])
    if not args.skip_floor:
        # What SwiftNIO alone costs reading these sockets: qmplog's floor (Benchmarks/NIOFloor).
        subprocess.run(["swift", "build", "-c", "release", "--package-path", FLOOR_PACKAGE], check=True,
                       stdout=subprocess.DEVNULL)
        contenders.append("nio floor")
    for name in contenders:
        sockets = os.path.join(work, name.replace(" ", "-"))
        os.makedirs(sockets)
        start_after = "qmp_capabilities" if name == "python qemu.qmp" else "query-status"
        server = subprocess.Popen([sys.executable, os.path.join(HERE, "flood_server.py"), "--trickle", str(args.rate),
                                   "--seconds", str(args.seconds), "--directory", sockets, "--vms", str(args.vms),
                                   "--start-after", start_after])
        paths = [os.path.join(sockets, f"vm{i}.qmp") for i in range(args.vms)]
        while not all(os.path.exists(p) for p in paths):
            time.sleep(0.1)
        db = os.path.join(work, name.replace(" ", "-") + ".sqlite")
        wrk = None
        if name == "qmplog":
            command = [args.qmplog, "record", "--once", "--log-level", "error", "--db", db] + paths
        elif name == "qmplog serving":
            # The same recorder also serving, with wrk asking for /metrics at 10 connections from 10 s on.
            port = 9750 + os.getpid() % 200
            command = [args.qmplog, "record", "--once", "--log-level", "error", "--db", db,
                       "--http", f"127.0.0.1:{port}"] + paths
            wrk = subprocess.Popen(["sh", "-c", f"sleep 10; exec wrk -t 1 -c 10 -d {max(1, int(args.seconds) - 15)}s "
                                    f"--timeout 30s http://127.0.0.1:{port}/metrics"],
                                   stdout=subprocess.PIPE, text=True)
        elif name == "nio floor":
            command = [os.path.join(FLOOR_PACKAGE, ".build", "release", "nio-floor")] + paths
        else:
            command = [sys.executable, os.path.join(HERE, "python_recorder.py"), db] + paths
        try:
            # The steady state: from 10 s after launch (every VM attached) to 5 s before the end.
            elapsed, rss, cpu, steady = timed(command, cpu_window=(10, args.seconds - 5))
        finally:
            server.kill()
        served = None
        if wrk is not None:
            out = wrk.communicate()[0]
            rate = re.search(r"Requests/sec:\s+(\S+)", out)
            served = float(rate.group(1)) if rate else None
        stored = None if name == "nio floor" else count_rows(db)  # the floor stores nothing
        expected = args.vms * (int(args.rate * args.seconds) + 1)
        results[name] = {"seconds": elapsed, "cpu_seconds": cpu, "core_percent": 100 * cpu / elapsed,
                         "steady_core_percent": None if steady is None else 100 * steady,
                         "peak_rss_mib": rss, "events": stored, "expected": expected,
                         "metrics_requests_per_second": served}
        print(f"{name}: {results[name]}", flush=True)
    shutil.rmtree(work)
    print(f"\n{args.vms} VMs x {args.rate} events/s x {args.seconds} s")
    print(f"{'':18} {'% of a core':>12} {'steady state':>13} {'peak RSS':>9} {'events':>10}")
    for name, row in results.items():
        steady = "—" if row["steady_core_percent"] is None else f"{row['steady_core_percent']:.1f}%"
        events = "—" if row["events"] is None else f"{row['events']:,}"
        print(f"{name:18} {row['core_percent']:11.1f}% {steady:>13} {row['peak_rss_mib']:7.1f}Mi {events:>10}")
    save("many", args, results)


class CommitWatcher:
    """Polls a recording database as a report would, and notes when each event became visible.

    An event's read-to-commit time is taken as (the first poll that sees it) − its `received`, both
    on the wall clock: an upper bound, by at most one poll interval (about 2 ms)."""

    def __init__(self, db):
        import sqlite3
        while not os.path.exists(db):
            time.sleep(0.002)
        self.connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        self.latencies = []  # milliseconds, one per event
        try:  # only events committed from now on
            self.last_id = self.connection.execute("SELECT COALESCE(MAX(id), 0) FROM event").fetchone()[0]
        except sqlite3.OperationalError:  # a new database: no schema yet
            self.last_id = 0

    def poll(self):
        """Records the events committed since the last poll; returns how many."""
        import sqlite3
        try:
            rows = self.connection.execute("SELECT id, received FROM event WHERE id > ? ORDER BY id",
                                           (self.last_id,)).fetchall()
        except sqlite3.OperationalError:  # no schema yet, or a busy moment
            return 0
        now = time.time_ns() // 1000
        if rows:
            self.last_id = rows[-1][0]
        self.latencies += [(now - received) / 1000 for (_, received) in rows]
        return len(rows)


def percentiles(values):
    ordered = sorted(values)
    if not ordered:
        return {"events": 0}
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return {"events": len(ordered), "p50_ms": pick(0.5), "p99_ms": pick(0.99), "p999_ms": pick(0.999),
            "max_ms": ordered[-1]}


def durability(args):
    """Read-to-commit time of every event: during a long flood (the WAL grows and is checkpointed),
    and after restarts of a recorder killed with -9 in the middle of one (a large WAL left behind)."""
    work = tempfile.mkdtemp(prefix="bench-durability-")
    results = {}
    sock, db = os.path.join(work, "flood.qmp"), os.path.join(work, "flood.sqlite")
    server = start_flood([sock], args.events, "query-status")
    try:
        # 1. A long flood into a fresh database.
        recorder = subprocess.Popen([QMPLOG, "record", "--once", "--log-level", "error", "--db", db, sock])
        watcher = CommitWatcher(db)
        while recorder.poll() is None:
            watcher.poll()
            time.sleep(0.002)
        watcher.poll()
        results["flood"] = percentiles(watcher.latencies)
        results["flood"]["wal_mib_at_end"] = os.path.getsize(db + "-wal") / 2**20 if os.path.exists(db + "-wal") else 0
        print(f"flood: {results['flood']}", flush=True)
        # 2. Kill -9 in mid-flood, restart at once: time to the first commit, and read-to-commit after it.
        first_commits, after_restart, wal_left = [], [], []
        for restart in range(args.restarts):
            recorder = subprocess.Popen([QMPLOG, "record", "--log-level", "error", "--db", db, sock])
            watcher = CommitWatcher(db)
            before = watcher.last_id
            while watcher.last_id < before + args.kill_after and recorder.poll() is None:
                watcher.poll()
                time.sleep(0.002)
            recorder.kill()
            recorder.wait()
            wal_left.append(os.path.getsize(db + "-wal") / 2**20 if os.path.exists(db + "-wal") else 0)
            started = time.monotonic()
            recorder = subprocess.Popen([QMPLOG, "record", "--log-level", "error", "--db", db, sock])
            watcher = CommitWatcher(db)
            baseline = watcher.last_id
            while watcher.last_id <= baseline:
                watcher.poll()
                time.sleep(0.002)
            first_commits.append((time.monotonic() - started) * 1000)
            deadline = time.monotonic() + args.watch_seconds
            while time.monotonic() < deadline:
                watcher.poll()
                time.sleep(0.002)
            after_restart += watcher.latencies
            recorder.kill()
            recorder.wait()
            print(f"restart {restart + 1}/{args.restarts}: WAL left {wal_left[-1]:.0f} MiB, "
                  f"first commit {first_commits[-1]:.0f} ms after start", flush=True)
        results["restart"] = percentiles(after_restart)
        results["restart"].update({"first_commit_ms": first_commits, "wal_mib_left": wal_left})
    finally:
        server.kill()
    shutil.rmtree(work)
    print(f"\nRead-to-commit (ms): {args.events:,}-event flood; then {args.restarts} restarts after kill -9 "
          f"{args.kill_after:,} events into a flood, each watched {args.watch_seconds} s")
    for name in ("flood", "restart"):
        row = results[name]
        print(f"{name:8} p50 {row['p50_ms']:7.1f}  p99 {row['p99_ms']:7.1f}  p99.9 {row['p999_ms']:7.1f}  "
              f"max {row['max_ms']:7.1f}  ({row['events']:,} events)")
    print(f"first commit after restart (ms): {', '.join(f'{v:.0f}' for v in results['restart']['first_commit_ms'])}")
    save("durability", args, results)


def restart(args):
    """Start-up after a crash on a large database: `record` ends the sessions a killed recorder left
    open before it attaches to any VM. Each VM's last session is reopened with events stamped
    before its earlier history (QEMU's clock went back between runs), as after a kill -9."""
    work = tempfile.mkdtemp(prefix="bench-restart-")
    db = os.path.join(work, "restart.sqlite")
    print(f"generating {args.events:,} events over {args.vms} VMs ...", flush=True)
    make_report_database(db, args.events, args.vms)
    # A second, open session per VM whose events are stamped a year back: the newest arrivals,
    # the oldest timestamps. lastEventId as the recorder keeps it.
    sql = f"""
    BEGIN;
    INSERT INTO session (machineId, endpoint, qemuVersion, qemuPackage, initialStatus, initialRunning, startedAt)
      SELECT id, endpoint, '7.2.22', 'bench', 'running', 1, lastSeen FROM machine;
    INSERT INTO event (sessionId, machineId, seq, name, seconds, microseconds, time, received)
      SELECT s.id, s.machineId, k, 'RESET', 1000 + k, 0, (1000 + k) * 1000000, s.startedAt + k
      FROM session s, (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3) WHERE s.endedAt IS NULL;
    UPDATE session SET lastEventId = (SELECT max(id) FROM event WHERE sessionId = session.id) WHERE endedAt IS NULL;
    COMMIT;
    """
    if args.without_last_event:
        sql = sql.replace("UPDATE session SET lastEventId", "-- ")
    subprocess.run(["sqlite3", db], input=sql, text=True, check=True)
    times = []
    for run in range(args.runs):
        # Leave the sessions open again, as a killed recorder leaves them.
        subprocess.run(["sqlite3", db, "UPDATE session SET endedAt = NULL, endReason = NULL "
                        "WHERE id IN (SELECT max(id) FROM session GROUP BY machineId)"], check=True)
        started = time.monotonic()
        subprocess.run([QMPLOG, "record", "--once", "--log-level", "error", "--db", db,
                        os.path.join(work, "absent.qmp")], capture_output=True)
        times.append(time.monotonic() - started)
        print(f"run {run + 1}: {times[-1]:.3f} s", flush=True)
    ended = count_rows(db, "session WHERE endReason = 'recorder-lost'")
    shutil.rmtree(work)
    summary = {"events": args.events, "vms": args.vms, "seconds": times, "median_s": statistics.median(times),
               "sessions_ended": ended}
    print(f"\nrecord --once after a crash, {args.events:,} events, {args.vms} sessions left open: "
          f"median {summary['median_s']:.3f} s (start, end {ended} sessions, attach, exit)")
    save("restart", args, summary)


def serve(args):
    """`qmplog serve` over a generated year of events: wrk latency of `/metrics` and `/` (the
    default 7-day window) at 10 connections, with the rollup built as a recorder keeps it, and the
    server's CPU meanwhile."""
    work = tempfile.mkdtemp(prefix="bench-serve-")
    db = os.path.join(work, "big.sqlite")
    started = time.time()
    make_report_database(db, args.events, args.vms)
    print(f"generated {count_rows(db):,} events in {time.time() - started:.0f} s", flush=True)
    subprocess.run([args.qmplog, "rollup", "--db", db], check=True, capture_output=True)
    port = 9750 + os.getpid() % 200
    server = subprocess.Popen([args.qmplog, "serve", "--db", db, "--http", f"127.0.0.1:{port}", "--log-level", "error"])
    summary = {}
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/metrics", timeout=120).read()
                break
            except OSError:
                time.sleep(0.2)
        for route in ["/metrics", "/"]:
            first = time.time()
            body = urllib.request.urlopen(base + route, timeout=600).read()
            single = time.time() - first
            cpu_before = process_cpu_seconds(server.pid)
            out = subprocess.run(["wrk", "-t", "2", "-c", "10", "-d", f"{args.seconds}s", "--latency", "--timeout", "120s",
                                  base + route], capture_output=True, text=True, check=True).stdout
            cpu = process_cpu_seconds(server.pid) - cpu_before
            latency = {m.group(1): m.group(2) for m in re.finditer(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
            rate = re.search(r"Requests/sec:\s+(\S+)", out)
            summary[route] = {"bytes": len(body), "single_request_seconds": single, "p50": latency.get("50"),
                              "p99": latency.get("99"), "requests_per_second": float(rate.group(1)) if rate else None,
                              "server_cpu_seconds": cpu, "wrk_seconds": args.seconds}
            print(f"{route}: {summary[route]}", flush=True)
    finally:
        server.terminate()
        server.wait()
    shutil.rmtree(work)
    print(f"\nqmplog serve over {args.events:,} events, {args.vms} VMs; wrk -c 10 for {args.seconds} s per route")
    for route, row in summary.items():
        print(f"{route:9} {row['bytes']:>9,} B  first {row['single_request_seconds']:.2f} s  p50 {row['p50']}  "
              f"p99 {row['p99']}  {row['requests_per_second']} req/s")
    save("serve", args, summary)


class ThrowawayPostgres:
    """A PostgreSQL server of the benchmark's own (Debian's postgresql; as `postgres` when root),
    with the server's default durability: the ceiling and qmplog run against the same settings."""

    def __init__(self, directory):
        versions = sorted(int(v) for v in os.listdir("/usr/lib/postgresql") if v.isdigit())
        self.bin = f"/usr/lib/postgresql/{versions[-1]}/bin"
        self.dir = directory
        self.port = 55000 + os.getpid() % 5000
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        self.run("initdb", "-D", f"{directory}/data", "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C")
        with open(f"{directory}/data/postgresql.conf", "a") as f:
            f.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{directory}'\n")
        self.run("pg_ctl", "-D", f"{directory}/data", "-l", f"{directory}/log", "-w", "start")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/fleet?sslmode=disable"

    def run(self, tool, *arguments, **kwargs):
        prefix = ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups"] if os.geteuid() == 0 else []
        return subprocess.run(prefix + [f"{self.bin}/{tool}", *arguments], check=True, capture_output=True,
                              text=True, cwd="/tmp", **kwargs).stdout

    def psql(self, sql, database="fleet"):
        return self.run("psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.dir, "-p", str(self.port),
                        "-U", "postgres", "-d", database, "-c", sql).strip()

    def fresh_database(self):
        self.psql("DROP DATABASE IF EXISTS fleet", database="postgres")
        self.psql("CREATE DATABASE fleet", database="postgres")

    def stop(self):
        self.run("pg_ctl", "-D", f"{self.dir}/data", "-m", "fast", "-w", "stop")


EVENT_COLUMNS = ["id", "sessionId", "machineId", "seq", "name", "seconds", "microseconds", "time", "received",
                 "guest", "reason", "action", "panicType", "panicReason", "panicArg1", "data"]


def host_database_and_server(prefix, args):
    """A work directory holding the section 3 database of `args.events` events (without its raw
    JSON table) and a ThrowawayPostgres started in it: what `ship` and `fleet` measure against."""
    work = tempfile.mkdtemp(prefix=prefix)
    os.chmod(work, 0o755)
    db = os.path.join(work, "events.sqlite")
    started = time.time()
    make_report_database(db, args.events, args.vms)
    subprocess.run(["sqlite3", db, "DROP TABLE raw; VACUUM"], check=True)
    print(f"generated {args.events:,} events in {time.time() - started:.0f} s", flush=True)
    pgdir = os.path.join(work, "pg")
    os.mkdir(pgdir)
    return work, db, ThrowawayPostgres(pgdir)


def ship(args):
    """`qmplog ship --once` of a generated database into a new PostgreSQL database, against
    `psql \\copy` of the same event rows (prepared as a COPY file beforehand) into the same table."""
    work, db, server = host_database_and_server("qmplog-bench-ship-", args)
    empty = os.path.join(work, "empty.sqlite")
    subprocess.run([QMPLOG, "record", "--once", "--db", empty, empty + ".none"], capture_output=True)
    rows = os.path.join(work, "events.copy")
    # The ceiling's input: the event rows as COPY text (host key 1), written before the clock starts.
    select = "SELECT 1, " + ", ".join(EVENT_COLUMNS) + " FROM event ORDER BY id"
    with open(rows, "w") as f:
        subprocess.run(["sqlite3", "-separator", "\t", "-nullvalue", "\\N", db, select], stdout=f, check=True)
    os.chmod(rows, 0o644)
    results = {"qmplog ship": [], "psql copy": []}
    try:
        for run in range(args.runs):
            server.fresh_database()
            # The schema and host 1, from an empty database: then the same table takes the COPY.
            subprocess.run([QMPLOG, "ship", "--db", empty, "--to", server.url, "--once"], check=True,
                           capture_output=True)
            columns = ", ".join(["host"] + [c.lower() for c in EVENT_COLUMNS])
            started = time.monotonic()
            server.run("psql", "-X", "-q", "-h", server.dir, "-p", str(server.port), "-U", "postgres", "-d", "fleet",
                       "-c", f"\\copy event ({columns}) FROM '{rows}'")
            results["psql copy"].append((time.monotonic() - started, 0, 0))
            assert server.psql("SELECT count(*) FROM event") == str(args.events)

            server.fresh_database()
            seconds, peak, cpu, _ = timed([QMPLOG, "ship", "--db", db, "--to", server.url, "--once"])
            results["qmplog ship"].append((seconds, peak, cpu))
            assert server.psql("SELECT count(*) FROM event") == str(args.events)
            copy_seconds = results["psql copy"][-1][0]
            print(f"run {run + 1}: psql \\copy {copy_seconds:.2f} s, qmplog ship {seconds:.2f} s")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    summary = summarize(results, args.events - 1)
    ceiling = summary["psql copy"]["seconds"]
    for name, row in summary.items():
        print(f"{name:14} {row['seconds']:7.2f} s  {args.events / row['seconds']:>10,.0f} rows/s  "
              f"{ceiling / row['seconds']:.2f}x of psql \\copy  peak {row['peak_rss_mib']:.0f} MiB")
    save("ship", args, summary)


def fleet(args):
    """Reports over the fleet's PostgreSQL (`--db postgresql://`, through its local replica) against
    the same reports over the host's SQLite file, both with their rollup, after one ship."""
    work, db, server = host_database_and_server("qmplog-bench-fleet-", args)
    environment = dict(os.environ, XDG_CACHE_HOME=os.path.join(work, "cache"))
    summary = {}
    try:
        server.fresh_database()
        seconds, peak, cpu, _ = timed([QMPLOG, "ship", "--db", db, "--to", server.url, "--once"])
        summary["ship"] = {"seconds": seconds, "peak_rss_mib": peak, "cpu_seconds": cpu}
        print(f"ship: {summary['ship']}", flush=True)
        seconds, peak, cpu, _ = timed([QMPLOG, "rollup", "--db", db])
        summary["sqlite_rollup"] = {"seconds": seconds, "peak_rss_mib": peak}
        # The first fleet command copies every event into the replica and builds its rollup.
        seconds, peak, cpu, _ = timed([QMPLOG, "report", "summary", "--db", server.url, "--format", "json"],
                                      env=environment, stdout=subprocess.DEVNULL)
        summary["fleet_first_command"] = {"seconds": seconds, "peak_rss_mib": peak, "cpu_seconds": cpu}
        print(f"first fleet command: {summary['fleet_first_command']}", flush=True)
        for kind in REPORTS:
            local = [timed([QMPLOG, "report", kind, "--db", db, "--format", "json"], stdout=subprocess.DEVNULL)
                     for _ in range(args.runs)]
            remote = [timed([QMPLOG, "report", kind, "--db", server.url, "--format", "json"], env=environment,
                            stdout=subprocess.DEVNULL) for _ in range(args.runs)]
            summary[kind] = {"sqlite_seconds": statistics.median(r[0] for r in local),
                             "fleet_seconds": statistics.median(r[0] for r in remote),
                             "fleet_peak_rss_mib": max(r[1] for r in remote)}
            print(f"{kind}: {summary[kind]}", flush=True)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nReports over {args.events:,} events, {args.vms} VMs; median of {args.runs}")
    print(f"{'report':10} {'SQLite s':>9} {'fleet s':>8}")
    for kind in REPORTS:
        print(f"{kind:10} {summary[kind]['sqlite_seconds']:9.2f} {summary[kind]['fleet_seconds']:8.2f}")
    save("fleet", args, summary)


def summarize(results, events):
    summary = {}
    for name, runs in results.items():
        if not runs:
            continue
        seconds = statistics.median(r[0] for r in runs)
        summary[name] = {"seconds": seconds, "events_per_second": (events + 1) / seconds,
                         "peak_rss_mib": max(r[1] for r in runs), "cpu_seconds": statistics.median(r[2] for r in runs),
                         "all_seconds": [r[0] for r in runs]}
    return summary


def save(name, args, summary):
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(),
               "qmplog": subprocess.check_output([QMPLOG, "--version"], text=True).strip(),
               "sqlite3": subprocess.check_output(["sqlite3", "--version"], text=True).split()[0]}
    # Paths inside the checkout are recorded relative to it, so results name no machine's layout.
    arguments = {k: os.path.relpath(v, ROOT) if isinstance(v, str) and v.startswith(ROOT + os.sep) else v
                 for k, v in vars(args).items() if k != "run"}
    path = os.path.join(HERE, "results", f"{name}.json")
    with open(path, "w") as f:
        json.dump({"benchmark": name, "arguments": arguments, "machine": machine, "results": summary}, f, indent=2)
    print(f"saved {os.path.relpath(path, ROOT)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="benchmark", required=True)
    p = sub.add_parser("ingest", help="1M-event flood on one socket vs sqlite3 import vs Python recorder")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--skip-python", action="store_true")
    p.add_argument("--qmplog", default=QMPLOG, help="the qmplog binary to measure (default: the release build)")
    p.set_defaults(run=ingest)
    p = sub.add_parser("reports", help="reports over a generated year of events vs json_extract over raw JSON")
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--vms", type=int, default=1000)
    p.add_argument("--runs", type=int, default=3)
    p.set_defaults(run=reports)
    p = sub.add_parser("export", help="export every event of a generated database as CSV and NDJSON")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--vms", type=int, default=1000)
    p.add_argument("--runs", type=int, default=3)
    p.set_defaults(run=export)
    p = sub.add_parser("many", help="many VMs each sending a few events a second")
    p.add_argument("--vms", type=int, default=1000)
    p.add_argument("--rate", type=float, default=3)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--skip-python", action="store_true")
    p.add_argument("--skip-floor", action="store_true",
                   help="do not build and run Benchmarks/NIOFloor (SwiftNIO reading the sockets, nothing more)")
    p.add_argument("--qmplog", default=QMPLOG, help="the qmplog binary to measure (default: the release build)")
    p.add_argument("--serve", action="store_true", help="also measure the recorder serving /metrics to wrk (--http)")
    p.set_defaults(run=many)
    p = sub.add_parser("durability", help="read-to-commit time during a long flood and after kill -9 restarts")
    p.add_argument("--events", type=int, default=3_000_000)
    p.add_argument("--restarts", type=int, default=5)
    p.add_argument("--kill-after", type=int, default=700_000, help="events committed before each kill -9")
    p.add_argument("--watch-seconds", type=float, default=3, help="how long each restart is watched")
    p.set_defaults(run=durability)
    p = sub.add_parser("restart", help="record's start-up after a crash on a large database, clocks gone back")
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--vms", type=int, default=1000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--without-last-event", action="store_true",
                   help="sessions as written before schema v12 (no lastEventId): the walk through each VM's index")
    p.set_defaults(run=restart)
    p = sub.add_parser("serve", help="wrk latency of qmplog serve's /metrics and / over a generated year")
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--vms", type=int, default=1000)
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--qmplog", default=QMPLOG, help="the qmplog binary to measure (default: the release build)")
    p.set_defaults(run=serve)
    p = sub.add_parser("ship", help="qmplog ship of a generated database vs psql \\copy of the same rows")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--vms", type=int, default=1000)
    p.add_argument("--runs", type=int, default=3)
    p.set_defaults(run=ship)
    p = sub.add_parser("fleet", help="reports over --db postgresql:// vs over the SQLite file, after a ship")
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--vms", type=int, default=1000)
    p.add_argument("--runs", type=int, default=3)
    p.set_defaults(run=fleet)
    args = parser.parse_args()
    if not os.access(QMPLOG, os.X_OK):
        sys.exit(f"build first: swift build -c release --static-swift-stdlib --product qmplog  ({QMPLOG} missing)")
    args.run(args)


if __name__ == "__main__":
    main()
