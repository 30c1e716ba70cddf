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
