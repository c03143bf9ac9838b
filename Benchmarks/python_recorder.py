"""What a Python user writes: qemu.qmp's QMPClient, events into SQLite, commit every 1,000 events
or 100 ms. Stops after the FLOOD_END event (the benchmark's end marker) or when asked.

    python3 python_recorder.py DB SOCKET [SOCKET...]
"""
import asyncio
import json
import sqlite3
import sys
import time

from qemu.qmp import QMPClient

SCHEMA = """
CREATE TABLE IF NOT EXISTS event (
    id INTEGER PRIMARY KEY, vm TEXT NOT NULL, name TEXT NOT NULL, seconds INTEGER, microseconds INTEGER,
    guest INTEGER, reason TEXT, action TEXT, data TEXT)
"""


async def record(db, socket, state):
    client = QMPClient(socket)
    await client.connect(socket)
    async for event in client.events:
        data = event.get("data")
        timestamp = event.get("timestamp", {})
        state["rows"].append((socket, event["event"], timestamp.get("seconds"), timestamp.get("microseconds"),
                              data.get("guest") if data else None, data.get("reason") if data else None,
                              data.get("action") if data else None, json.dumps(data) if data is not None else None))
        if len(state["rows"]) >= 1000 or time.monotonic() - state["last"] >= 0.1:
            flush(db, state)
        if event["event"] == "FLOOD_END":
            break
    flush(db, state)
    try:
        await client.disconnect()
    except EOFError:
        pass  # the server closed first: every event before FLOOD_END was already received


def flush(db, state):
    if state["rows"]:
        db.executemany("INSERT INTO event (vm, name, seconds, microseconds, guest, reason, action, data) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", state["rows"])
        db.commit()
        state["rows"].clear()
    state["last"] = time.monotonic()


async def main():
    db = sqlite3.connect(sys.argv[1])
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(SCHEMA)
    state = {"rows": [], "last": time.monotonic()}
    await asyncio.gather(*(record(db, socket, state) for socket in sys.argv[2:]))


asyncio.run(main())
