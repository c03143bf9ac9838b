#!/usr/bin/env python3
"""Capture a real QEMU QMP transcript for fixtures/transcripts/.

Starts qemu-system-x86_64 (TCG, no display, paused), drives it over QMP with the given steps and
writes every line exchanged as JSON lines: {"out": <command sent>} or {"in": <message received>}.

    Scripts/capture-transcript.py NAME [--boot acpi|kbd|panic] [--qemu-arg=ARG]... STEP,STEP,...

A STEP is a QMP command name (sent without arguments), "sleep:SECONDS", or "signal:TERM".
Used once to record the fixtures; the tests replay the files, they never run this script.
"""
import argparse, json, os, signal, socket, subprocess, sys, tempfile, time

BOOT = {
    "acpi": bytes([0xBA, 0x04, 0x06, 0xB8, 0x00, 0x20, 0xEF, 0xF4, 0xEB, 0xFD]),
    "kbd": bytes([0xB0, 0xFE, 0xE6, 0x64, 0xF4, 0xEB, 0xFD]),
    "panic": bytes([0xBA, 0x05, 0x05, 0xB0, 0x01, 0xEE, 0xF4, 0xEB, 0xFD]),
}

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--boot", choices=BOOT)
    parser.add_argument("--qemu-arg", action="append", default=[])
    parser.add_argument("steps", help="comma-separated steps")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="capture-")
    sock = os.path.join(directory, "qmp.sock")
    command = ["qemu-system-x86_64", "-accel", "tcg", "-display", "none", "-nodefaults", "-m", "32", "-S",
               "-qmp", f"unix:{sock},server=on,wait=off"]
    if args.boot:
        image = os.path.join(directory, "boot.img")
        code = BOOT[args.boot]
        with open(image, "wb") as f:
            f.write(code + bytes(510 - len(code)) + b"\x55\xaa" + bytes(65536 - 512))
        command += ["-drive", f"file={image},format=raw,if=ide,index=0,media=disk"]
    command += args.qemu_arg
    qemu = subprocess.Popen(command)
    while not os.path.exists(sock):
        time.sleep(0.02)
    client = socket.socket(socket.AF_UNIX)
    client.connect(sock)
    client.settimeout(0.3)
    lines = []
    buffer = b""

    def drain(seconds):
        nonlocal buffer
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                chunk = client.recv(65536)
            except socket.timeout:
                continue
            except ConnectionError:
                return False
            if not chunk:
                return False
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    lines.append({"in": json.loads(line)})
        return True

    def send(name):
        message = {"execute": name, "id": len(lines)}
        lines.append({"out": message})
        try:
            client.sendall(json.dumps(message).encode() + b"\r\n")
        except ConnectionError:
            pass

    drain(0.5)
    send("qmp_capabilities")
    drain(0.3)
    for step in args.steps.split(","):
        if step.startswith("sleep:"):
            drain(float(step[6:]))
        elif step.startswith("signal:"):
            qemu.send_signal(getattr(signal, "SIG" + step[7:]))
            drain(1.0)
        else:
            send(step)
            drain(0.5)
    drain(1.0)
    qemu.kill()
    out = os.path.join(os.path.dirname(__file__), "..", "fixtures", "transcripts", args.name + ".jsonl")
    with open(out, "w") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
    print(f"{out}: {len(lines)} lines")

if __name__ == "__main__":
    main()
