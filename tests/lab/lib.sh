# Helpers for the end-to-end tests on the lab. Source it; it sets strict mode.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB=${LAB:-$SRC_DIR/deploy/lab/lab}
TEST_NAME=$(basename "$0" .sh)
FAILED=0

log() { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }
fail() { log "FAIL: $*"; FAILED=1; exit 1; }
pass() { log "ok: $*"; }

# wait_for SECONDS CMD...: poll CMD until it succeeds or the deadline passes.
wait_for() {
    local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s%N)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# Milliseconds since the epoch, for timing.
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Runs CMD and fails the test with MSG unless it succeeds.
expect() {
    local msg=$1; shift
    "$@" >/dev/null 2>&1 || fail "$msg (command: $*)"
    pass "$msg"
}
# Runs CMD and fails the test with MSG unless it fails.
expect_not() {
    local msg=$1; shift
    if "$@" >/dev/null 2>&1; then fail "$msg (command succeeded: $*)"; fi
    pass "$msg"
}

# Milliseconds since START_MS (from now_ms).
elapsed_ms() { echo $(( $(now_ms) - $1 )); }

# if_bytes HOST IFACE: "RX TX" byte counters of IFACE inside HOST, from its
# /proc/net/dev.
if_bytes() {
    "$LAB" exec "$1" cat /proc/net/dev | awk -v i="$2:" '$1 == i { print $2, $10 }'
}

# On failure, the tail of every skiffd log of the lab (call from the EXIT
# trap before `lab down` removes them).
dump_skiffd_logs() {
    local f
    for f in /var/lib/skiff-lab/h*/skiffd.log; do
        [ -f "$f" ] || continue
        log "--- last lines of $f"
        tail -n 15 "$f" >&2 || true
    done
}
