#!/usr/bin/env bash
# The README's first command: install what qmplog needs on Debian, build it, and run
# `qmplog demo`, which records two real QEMU VMs (one guest-initiated power-off, one SIGTERM)
# and prints the reports.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v qemu-system-x86_64 >/dev/null || ! dpkg -s libsqlite3-dev >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends qemu-system-x86 libsqlite3-dev sqlite3
fi
# Swift's runtime and Foundation linked in: a binary that runs without a Swift toolchain, and
# takes less memory (BENCHMARKS.md).
swift build -c release --static-swift-stdlib --product qmplog
exec .build/release/qmplog demo "$@"
