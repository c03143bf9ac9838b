#!/usr/bin/env bash
# Builds the libFuzzer target over what a QMP peer sends (Fuzz/QMPPeerFuzzer.swift) and runs it.
#
#   Scripts/fuzz.sh            # 60 s, as CI runs it
#   Scripts/fuzz.sh 3600       # an hour, by hand; more libFuzzer flags may follow the seconds
#
# The corpus starts from fixtures/transcripts (every line QEMU sent) and Fuzz/crashers; new inputs
# go to .build/fuzz/corpus. A crash leaves its input in .build/fuzz/ and fails the script: keep it
# in Fuzz/crashers/ (it is replayed by every run) and fix the code.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
out=.build/fuzz
mkdir -p "$out/corpus" "$out/seeds"
# Seeds: each message a real QEMU sent (the "in" lines of the transcripts), one file each, CRLF-ended.
python3 - "$out/seeds" fixtures/transcripts/*.jsonl <<'PY'
import json, sys
for n, line in enumerate(l for path in sys.argv[2:] for l in open(path)):
    message = json.loads(line)
    if "in" in message:
        open(f"{sys.argv[1]}/line-{n}", "w").write(json.dumps(message["in"]) + "\r\n")
PY
cp Fuzz/crashers/* "$out/seeds/" 2>/dev/null || true
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name QMPPeerFuzzer \
    Sources/QMP/Messages/*.swift Sources/QMP/Transport/QMPFrameScanner.swift Sources/QMP/QMPError.swift \
    Sources/QMP/QMPEndpoint.swift Sources/EventStore/Records/NewRecords.swift \
    Sources/Collector/NewEvent+QMPEvent.swift Fuzz/QMPPeerFuzzer.swift \
    -o "$out/qmp-peer-fuzzer"
# Known crashers first: each must pass now.
for crasher in Fuzz/crashers/*; do
    [ -e "$crasher" ] || continue
    "$out/qmp-peer-fuzzer" "$crasher"
done
# libFuzzer reports every new input on standard error: keep that in a log, and show its end.
if ! "$out/qmp-peer-fuzzer" -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb=256 -max_len=65536 \
    -artifact_prefix="$out/" -print_final_stats=1 "$@" "$out/corpus" "$out/seeds" 2> "$out/fuzz.log"; then
    tail -n 60 "$out/fuzz.log"
    echo "fuzz: a crash; its input is in $out/ (see above)" >&2
    exit 1
fi
grep -E '^(Done|stat::)' "$out/fuzz.log"
