#!/usr/bin/env bash
# Installs the Debian package Scripts/package.sh built on this machine (root) and checks it as an
# operator meets it: on PATH, manual pages, bash completion, the unit, a broken configuration,
# lintian, then removal and purge leaving what the README says. CI runs it (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(ls .build/deb/qmplog_*.deb | tail -1)
fail() { echo "check-package: $*" >&2; exit 1; }

# lintian: no errors; the warnings accepted are in debian/qmplog.lintian-overrides with their reason.
lintian --fail-on error "$deb" || fail "lintian reports errors on $deb"

dpkg -i "$deb"
[ "$(command -v qmplog)" = /usr/bin/qmplog ] || fail "qmplog is not /usr/bin/qmplog on PATH"
qmplog --version | grep -qx '0\.1\.0' || fail "qmplog --version: $(qmplog --version)"
getent passwd qmplog >/dev/null || fail "postinst made no qmplog user"
man -w qmplog >/dev/null || fail "man -w qmplog"
man -w qmplog-report >/dev/null || fail "man -w qmplog-report"
man -w qmplog-record >/dev/null || fail "man -w qmplog-record"
# The manual holds the prose --help leaves out.
MANWIDTH=200 man qmplog-record 2>/dev/null | grep -q 'QMPLOG_INCIDENT_ID' || fail "man qmplog-record lacks the hooks' environment"
[ -s /usr/share/zsh/vendor-completions/_qmplog ] && [ -s /usr/share/fish/vendor_completions.d/qmplog.fish ] \
    || fail "zsh or fish completion missing"

# A real interactive bash with bash-completion completes `qmplog rep` to `report`.
completion=$(HOME=/nonexistent bash -i -c '
    source /usr/share/bash-completion/bash_completion
    _completion_loader qmplog 2>/dev/null || true
    COMP_WORDS=(qmplog rep); COMP_CWORD=1; COMP_LINE="qmplog rep"; COMP_POINT=${#COMP_LINE}
    $(complete -p qmplog | sed -E "s/.*-F ([^ ]+).*/\1/") qmplog rep qmplog
    printf "%s\n" "${COMPREPLY[@]}"' 2>/dev/null)
echo "$completion" | grep -qx report || fail "bash completes 'qmplog rep' to: $completion"

unit=/lib/systemd/system/qmplog.service
[ -f "$unit" ] || unit=/usr/lib/systemd/system/qmplog.service
systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit"
grep -qx 'RestartPreventExitStatus=64' "$unit" || fail "the unit would restart a broken configuration in a loop"

# The unit's ExecStart as systemd runs it, with /etc/default/qmplog as its EnvironmentFile: an
# unconfigured or broken file fails with qmplog's own error and exit status 64 (not restarted).
run_unit() {
    (set -a; . /etc/default/qmplog; set +a; /usr/bin/qmplog record --log-format json $QMPLOG_ARGS) 2>&1
}
status=0; out=$(run_unit) || status=$?
[ "$status" = 64 ] && echo "$out" | grep -q 'Name at least one QMP monitor' || fail "unconfigured: $status $out"
cp /etc/default/qmplog /tmp/qmplog.default.orig
sed -i 's|^QMPLOG_ARGS=""|QMPLOG_ARGS="--wtach /run/qemu"|' /etc/default/qmplog
status=0; out=$(run_unit) || status=$?
[ "$status" = 64 ] && echo "$out" | grep -q "Unknown option '--wtach'" || fail "broken: $status $out"

# Removing keeps the configuration, the user and the history; purging keeps only the history.
install -d -o qmplog -g qmplog -m 0700 /var/lib/qmplog
echo history > /var/lib/qmplog/events.sqlite
dpkg -r qmplog
[ ! -e /usr/bin/qmplog ] || fail "dpkg -r left /usr/bin/qmplog"
grep -q -- '--wtach' /etc/default/qmplog || fail "dpkg -r did not keep the edited /etc/default/qmplog"
getent passwd qmplog >/dev/null || fail "dpkg -r removed the qmplog user"
dpkg -P qmplog
[ ! -e /etc/default/qmplog ] || fail "dpkg -P left /etc/default/qmplog"
! getent passwd qmplog >/dev/null || fail "dpkg -P left the qmplog user"
[ "$(cat /var/lib/qmplog/events.sqlite)" = history ] || fail "dpkg -P touched the recorded history"
rm -rf /var/lib/qmplog
echo "check-package: $deb installs, documents, completes, verifies, refuses a broken configuration and removes cleanly"
