"""QMP flood servers for the benchmarks: pre-rendered events, CRLF line ends, realistic mix.

A server speaks just enough QMP for a recorder: greeting, replies to qmp_capabilities and query-*,
then streams its events (starting after `start_after`, the last command the recorder sends before
listening) and closes. The stream is rendered once up front so the server is not the bottleneck.
"""
import asyncio
import json
import os

GREETING = (b'{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, '
            b'"package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}\r\n')

# (event, data) templates in the proportions a busy fleet might show.
MIX = [
    ("STOP", None),
    ("RESUME", None),
    ("SHUTDOWN", {"guest": True, "reason": "guest-shutdown"}),
    ("SHUTDOWN", {"guest": False, "reason": "host-qmp-quit"}),
    ("RESET", {"guest": True, "reason": "guest-reset"}),
    ("RESET", {"guest": False, "reason": "host-qmp-system-reset"}),
    ("WATCHDOG", {"action": "reset"}),
    ("GUEST_PANICKED", {"action": "pause", "info": {"type": "hyper-v", "arg1": 18446744073709551615,
                                                    "arg2": 0, "arg3": 0, "arg4": 0, "arg5": 0}}),
    ("GUEST_PANICKED", {"action": "pause", "info": {"core": 0, "psw-mask": 562956395315200,
                                                    "psw-addr": 1234, "reason": "disabled-wait", "type": "s390"}}),
    ("GUEST_PANICKED", {"action": "poweroff"}),
    ("BLOCK_IO_ERROR", {"device": "drive-virtio-disk0", "node-name": "#block123", "operation": "write",
                        "action": "stop", "nospace": True, "reason": "No space left on device"}),
    ("POWERDOWN", None),
]


def render_events(count, start_seconds=1795000000, end_marker=True):
    """`count` event lines (bytes) cycling through MIX, plus a FLOOD_END marker if asked."""
    parts = []
    for i in range(count):
        name, data = MIX[i % len(MIX)]
        seconds, micro = start_seconds + i // 1000, (i % 1000) * 1000
        line = '{"timestamp": {"seconds": %d, "microseconds": %d}, "event": "%s"' % (seconds, micro, name)
        if data is not None:
            line += ', "data": ' + json.dumps(data)
        parts.append(line + "}\r\n")
    if end_marker:
        parts.append('{"timestamp": {"seconds": %d, "microseconds": 0}, "event": "FLOOD_END"}\r\n'
                     % (start_seconds + count // 1000 + 1))
    return "".join(parts).encode()


def reply(command, name):
    execute = command.get("execute")
    result = {}
    if execute == "query-name":
        result = {"name": name}
    elif execute == "query-uuid":
        result = {"UUID": "00000000-0000-0000-0000-000000000000"}
    elif execute == "query-status":
        result = {"status": "running", "singlestep": False, "running": True}
    message = {"return": result}
    if "id" in command:
        message["id"] = command["id"]
    return (json.dumps(message) + "\r\n").encode()


async def serve_connection(reader, writer, name, stream, start_after, close_after=True):
    writer.write(GREETING)
    await writer.drain()
    decoder = json.JSONDecoder()
    buffer = ""
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            return
        buffer += chunk.decode()
        started = False
        # Clients need not end commands with a newline (qemu.qmp does not): split on whole objects.
        while True:
            buffer = buffer.lstrip()
            if not buffer:
                break
            try:
                command, end = decoder.raw_decode(buffer)
            except json.JSONDecodeError:
                break
            buffer = buffer[end:]
            writer.write(reply(command, name))
            if command.get("execute") in start_after:
                started = True
        await writer.drain()
        if started:
            break
    view = memoryview(stream)
    for offset in range(0, len(view), 1 << 20):
        writer.write(view[offset:offset + (1 << 20)])
        await writer.drain()
    if close_after:
        writer.close()
        await writer.wait_closed()


async def start_flood(path, stream, start_after, name="flood"):
    if os.path.exists(path):
        os.unlink(path)
    return await asyncio.start_unix_server(
        lambda r, w: serve_connection(r, w, name, stream, start_after), path=path, limit=1 << 20)


async def serve_trickle(reader, writer, name, rate, seconds, start_after):
    """Handshake, then `rate` events a second for `seconds`, then the end marker and close."""
    await serve_connection(reader, writer, name, b"", start_after, close_after=False)
    line = render_events(len(MIX), end_marker=False).split(b"\r\n")
    for i in range(int(rate * seconds)):
        writer.write(line[i % len(MIX)] + b"\r\n")
        await writer.drain()
        await asyncio.sleep(1 / rate)
    writer.write(b'{"timestamp": {"seconds": 1795000000, "microseconds": 0}, "event": "FLOOD_END"}\r\n')
    await writer.drain()
    writer.close()


def main():
    import argparse
    parser = argparse.ArgumentParser(description="Serve a QMP event flood on Unix sockets.")
    parser.add_argument("--path", action="append", default=[], help="socket path (repeatable)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--start-after", default="query-status",
                        help="comma-separated commands after which the stream starts")
    parser.add_argument("--trickle", type=float, help="instead of a flood: this many events a second per socket")
    parser.add_argument("--seconds", type=float, default=30, help="with --trickle: for this long")
    parser.add_argument("--directory", help="with --trickle: serve VMS sockets vmN.qmp in this directory")
    parser.add_argument("--vms", type=int, default=1000)
    args = parser.parse_args()

    async def run():
        if args.trickle:
            import resource
            resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
            servers = []
            for i in range(args.vms):
                path = os.path.join(args.directory, f"vm{i}.qmp")
                servers.append(await asyncio.start_unix_server(
                    lambda r, w, n=f"vm{i}": serve_trickle(r, w, n, args.trickle, args.seconds,
                                                            set(args.start_after.split(","))), path=path))
        else:
            stream = render_events(args.events)
            servers = [await start_flood(path, stream, set(args.start_after.split(","))) for path in args.path]
        await asyncio.gather(*(server.serve_forever() for server in servers))

    asyncio.run(run())


if __name__ == "__main__":
    main()
