#!/usr/bin/env bash
# The README's first command: install what qmplog needs, build it, and record a real QEMU whose
# guest powers itself off. Prints the recorded events at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v qemu-system-x86_64 >/dev/null || ! dpkg -s libsqlite3-dev >/dev/null 2>&1 || ! command -v sqlite3 >/dev/null; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends qemu-system-x86 libsqlite3-dev sqlite3
fi
swift build -c release --product qmplog
qmplog=.build/release/qmplog

work=$(mktemp -d /tmp/qmplog-quickstart-XXXXXX)
trap 'kill $qemu_pid 2>/dev/null || true; rm -rf "$work"' EXIT
db="$work/events.sqlite"

# A 512-byte guest: ACPI soft-off (write SLP_EN|S5 to PM1a_CNT at 0x604), then halt.
python3 -c "
import sys
code = bytes([0xBA, 0x04, 0x06, 0xB8, 0x00, 0x20, 0xEF, 0xF4, 0xEB, 0xFD])
open(sys.argv[1], 'wb').write(code + bytes(510 - len(code)) + b'\x55\xaa' + bytes(65536 - 512))
" "$work/boot.img"

# QEMU starts paused (-S) with two monitors: one for qmplog, one to start the VM.
qemu-system-x86_64 -accel tcg -display none -nodefaults -m 32 -S -name quickstart \
    -drive "file=$work/boot.img,format=raw,if=ide" \
    -qmp "unix:$work/vm.qmp,server=on,wait=off" -qmp "unix:$work/control.qmp,server=on,wait=off" &
qemu_pid=$!
while [ ! -S "$work/control.qmp" ]; do sleep 0.05; done

"$qmplog" record --once --db "$db" "$work/vm.qmp" &
record_pid=$!
until [ -f "$db" ] && [ "$(sqlite3 "$db" 'SELECT COUNT(*) FROM session' 2>/dev/null)" = "1" ]; do sleep 0.05; done

# Start the guest; it powers itself off, QEMU exits, and `record --once` exits with everything committed.
python3 -c "
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile('rw')
f.readline()
for command in ('qmp_capabilities', 'cont'):
    f.write(json.dumps({'execute': command}) + '\n'); f.flush()
    while '\"return\"' not in f.readline(): pass
" "$work/control.qmp"
wait $record_pid

echo
echo "Recorded events (database: $db):"
sqlite3 -header -column "$db" \
    "SELECT m.name AS vm, e.name AS event, CASE e.guest WHEN 1 THEN 'guest' WHEN 0 THEN 'host' ELSE '' END AS by,
            COALESCE(e.reason, '') AS reason, e.data
     FROM event e JOIN machine m ON m.id = e.machineId ORDER BY e.id"
