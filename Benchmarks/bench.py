#!/usr/bin/env python3
"""qmplog benchmarks: one command per scenario, medians of several runs, ratios from the same run.

    python3 Benchmarks/bench.py ingest  [--events 1000000] [--runs 5]
    python3 Benchmarks/bench.py reports [--events 10000000] [--runs 5]
    python3 Benchmarks/bench.py many    [--vms 1000] [--seconds 30]

Needs a release build (`swift build -c release`), sqlite3, GNU time (/usr/bin/time) and, for the
Python comparison, `pip install qemu.qmp`. Results print as a table and are saved as JSON under
Benchmarks/results/.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
QMPLOG = os.path.join(ROOT, ".build", "release", "qmplog")
sys.path.insert(0, HERE)
from flood_server import render_events  # noqa: E402


def timed(command, **kwargs):
    """Runs `command` under GNU time; returns (seconds, peak RSS in MiB, cpu seconds, stdout)."""
    result = subprocess.run(["/usr/bin/time", "-f", "%e %M %U %S"] + command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stderr[-2000:]}")
    elapsed, rss_kib, user, system = result.stderr.strip().splitlines()[-1].split()
    return float(elapsed), int(rss_kib) / 1024, float(user) + float(system), result.stdout


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


# qmplog's event table with its constraints and indexes, minus STRICT (sqlite3's .import writes
# empty CSV fields as '' text, which STRICT integer columns refuse).
CEILING_SCHEMA = """
CREATE TABLE event (
    id INTEGER PRIMARY KEY, sessionId INTEGER NOT NULL, machineId INTEGER NOT NULL, seq INTEGER NOT NULL,
    name TEXT NOT NULL, seconds INTEGER NOT NULL, microseconds INTEGER NOT NULL, time INTEGER,
    received INTEGER NOT NULL, guest INTEGER, reason TEXT, action TEXT, panicType TEXT, panicReason TEXT,
    panicArg1 TEXT, data TEXT, UNIQUE (sessionId, seq));
CREATE INDEX event_machine_time ON event(machineId, time);
CREATE INDEX event_name_time ON event(name, time);
CREATE INDEX event_time ON event(time);
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
            elapsed, rss, cpu, _ = timed([QMPLOG, "record", "--once", "--log-level", "error", "--db", db, sock])
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
    arguments = {k: v for k, v in vars(args).items() if k != "run"}
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
    p.set_defaults(run=ingest)
    args = parser.parse_args()
    if not os.access(QMPLOG, os.X_OK):
        sys.exit(f"build first: swift build -c release  ({QMPLOG} missing)")
    args.run(args)


if __name__ == "__main__":
    main()
