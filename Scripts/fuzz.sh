#!/usr/bin/env bash
# Builds the libFuzzer targets over what a QMP peer sends (Fuzz/QMPPeerFuzzer.swift) and what
# `qmplog import` reads (Fuzz/HistoryImportFuzzer.swift), and runs each in turn.
#
#   Scripts/fuzz.sh            # 60 s each, as CI runs them
#   Scripts/fuzz.sh 3600       # an hour each, by hand; more libFuzzer flags may follow the seconds
#
# The corpora start from fixtures/transcripts (every line QEMU sent), fixtures/libvirt and
# Fuzz/crashers; new inputs go to .build/fuzz/. A crash leaves its input in .build/fuzz/ and fails
# the script: keep it in Fuzz/crashers/ as qmp-NAME or import-NAME (it is replayed by every run)
# and fix the code.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
out=.build/fuzz
mkdir -p "$out/corpus" "$out/seeds"
# QMP peer seeds: each message a real QEMU sent (the "in" lines of the transcripts), one file each, CRLF-ended.
python3 - "$out/seeds" fixtures/transcripts/*.jsonl <<'PY'
import json, sys
for n, line in enumerate(l for path in sys.argv[2:] for l in open(path)):
    message = json.loads(line)
    if "in" in message:
        open(f"{sys.argv[1]}/line-{n}", "w").write(json.dumps(message["in"]) + "\r\n")
PY
cp Fuzz/crashers/qmp-* "$out/seeds/" 2>/dev/null || true
# Import seeds: libvirt's logs (first byte even) and virsh transcripts (odd) from fixtures/libvirt.
mkdir -p "$out/import-corpus" "$out/import-seeds"
for log in fixtures/libvirt/*.log; do { printf 'L'; cat "$log"; } > "$out/import-seeds/$(basename "$log")"; done
for transcript in fixtures/libvirt/virsh-*.txt; do { printf 'V'; cat "$transcript"; } > "$out/import-seeds/$(basename "$transcript")"; done
cp Fuzz/crashers/import-* "$out/import-seeds/" 2>/dev/null || true

swiftc -sanitize=fuzzer,address -parse-as-library -O -package-name qmplog -module-name QMPPeerFuzzer \
    Sources/QMP/Messages/*.swift Sources/QMP/Transport/QMPFrameScanner.swift Sources/QMP/QMPError.swift \
    Sources/QMP/QMPEndpoint.swift Sources/EventStore/Records/NewRecords.swift \
    Sources/Collector/NewEvent+QMPEvent.swift Fuzz/QMPPeerFuzzer.swift \
    -o "$out/qmp-peer-fuzzer"
swiftc -sanitize=fuzzer,address -parse-as-library -O -package-name qmplog -module-name HistoryImportFuzzer \
    Sources/QMP/Messages/*.swift Sources/QMP/QMPError.swift Sources/EventStore/Records/NewRecords.swift \
    Sources/EventStore/Records/ImportedHistory.swift Sources/Collector/NewEvent+QMPEvent.swift \
    Sources/Collector/Import/HistoryTimestamp.swift Sources/Collector/Import/LibvirtLogParser.swift \
    Sources/Collector/Import/VirshEventParser.swift Fuzz/HistoryImportFuzzer.swift \
    -o "$out/history-import-fuzzer"

# run NAME CORPUS SEEDS CRASHERS: known crashers first (each must pass now), then `seconds` of fuzzing.
run() {
    local name="$1" fuzzer="$out/$1" corpus="$2" seeds="$3" prefix="$4"
    shift 4
    for crasher in Fuzz/crashers/"$prefix"*; do
        [ -e "$crasher" ] || continue
        "$fuzzer" "$crasher"
    done
    # libFuzzer reports every new input on standard error: keep that in a log, and show its end.
    if ! "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb=256 -max_len=65536 \
        -artifact_prefix="$out/$prefix" -print_final_stats=1 "$@" "$corpus" "$seeds" 2> "$out/$prefix""fuzz.log"; then
        tail -n 60 "$out/$prefix""fuzz.log"
        echo "fuzz: a crash in $fuzzer; its input is in $out/ (see above)" >&2
        exit 1
    fi
    echo "$name:"
    grep -E '^(Done|stat::)' "$out/$prefix""fuzz.log"
}
run qmp-peer-fuzzer "$out/corpus" "$out/seeds" qmp- "$@"
run history-import-fuzzer "$out/import-corpus" "$out/import-seeds" import- "$@"
