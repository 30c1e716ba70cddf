# Helpers for the multi-process tests: real skiffd daemons on loopback
# addresses, each with its own data dir under a per-test temporary dir and a
# throwaway cluster CA. Source it first thing; it sets strict mode.
#
# Every test gets a random 127.X.Y.0/24 of its own (nothing else listens
# there), so two tests -- or another engineer's cluster -- never share a port.
# Daemons are named (m1, m2, w1, ...); node N's address is 127.X.Y.N. The EXIT
# trap kills every process whose command line holds the test's temporary dir
# and removes that dir, also when the test fails or is interrupted; on failure
# it prints the tail of each daemon's log first.
#
#   SKIFF_BUILD_DIR   where skiffd and skiff are (default: <repo>/build)
#   SKIFF_KEEP_TMP=1  keep the temporary dir (logs, data dirs) for a post-mortem
set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${SKIFF_BUILD_DIR:-$SRC_DIR/build}
SKIFFD=$BUILD_DIR/cmd/skiffd
SKIFF=$BUILD_DIR/cmd/skiff
TEST_NAME=$(basename "$0" .sh)
T_START_MS=$(( $(date +%s%N) / 1000000 ))

log() { printf '[%s +%5dms] %s\n' "$TEST_NAME" $(( $(now_ms) - T_START_MS )) "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
ok() { printf 'ok: %s\n' "$*"; }

for tool in "$SKIFFD" "$SKIFF"; do
    [ -x "$tool" ] || { echo "$tool not built (ninja -C $BUILD_DIR)" >&2; exit 1; }
done
for tool in jq curl openssl; do
    command -v "$tool" >/dev/null || { echo "$TEST_NAME needs $tool" >&2; exit 1; }
done

# ---- time ----

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# elapsed_ms START_MS: milliseconds since START_MS.
elapsed_ms() { echo $(( $(now_ms) - $1 )); }

# wait_for SECONDS CMD...: polls CMD (every 50 ms) until it succeeds; returns
# 1 once SECONDS (may be fractional) have passed without success. CMD's
# output is discarded.
wait_for() {
    local ms
    ms=$(awk -v s="$1" 'BEGIN { printf "%d", s * 1000 }'); shift
    local deadline=$(( $(now_ms) + ms ))
    until "$@" >/dev/null 2>&1; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}
# must SECONDS WHAT CMD...: wait_for, or fail the test naming WHAT.
must() {
    local secs=$1 what=$2; shift 2
    wait_for "$secs" "$@" || fail "$what: not so after ${secs}s"
}

# ---- the test's own addresses and temporary dir ----

TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/skiff-loopback-$TEST_NAME.XXXXXX")
PREFIX=
for _ in $(seq 50); do
    cand="127.$(( 16 + RANDOM % 230 )).$(( RANDOM % 256 ))"
    if ! ss -Htan 2>/dev/null | awk '{ print $4; print $5 }' | grep -q "^${cand//./\\.}\\."; then
        PREFIX=$cand
        break
    fi
done
[ -n "$PREFIX" ] || { echo "no free 127.X.Y.0/24 found" >&2; exit 1; }

declare -A NODE_IDX=() NODE_PID=()
NEXT_IDX=1
ADMIN=$TEST_DIR/admin.json # written by init_cluster
export SKIFF_CONFIG=$ADMIN
unset SKIFF_HOST

# Kills what the test started: anything whose command line holds TEST_DIR.
kill_ours() {
    local p cmd
    for p in /proc/[0-9]*; do
        cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
        [[ $cmd == *"$TEST_DIR/"* ]] || continue
        [ "${p#/proc/}" != $$ ] || continue
        kill -9 "${p#/proc/}" 2>/dev/null || true
    done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    { kill_ours; wait; } 2>/dev/null
    if [ $rc != 0 ]; then
        for f in "$TEST_DIR"/*.log; do
            [ -f "$f" ] || continue
            echo "----- last lines of $(basename "$f")" >&2
            tail -n 25 "$f" >&2
        done
        log "FAILED (rc $rc); daemons killed"
    fi
    if [ "${SKIFF_KEEP_TMP:-0}" = 1 ]; then
        log "kept $TEST_DIR"
    else
        rm -rf "$TEST_DIR"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- daemons ----

# assign NAME: gives the node the next address of the test's /24 (once).
assign() {
    if [ -z "${NODE_IDX[$1]:-}" ]; then
        NODE_IDX[$1]=$NEXT_IDX
        NEXT_IDX=$(( NEXT_IDX + 1 ))
    fi
}
# addr, api, dir, pid NAME: the node's address, API endpoint, data dir, and
# the pid of its skiffd (a role change re-executes it under the same pid).
addr() { echo "$PREFIX.${NODE_IDX[$1]:?unknown node $1}"; }
api() { echo "$(addr "$1"):7443"; }
dir() { echo "$TEST_DIR/$1"; }
pid() { echo "${NODE_PID[$1]:?$1 not started}"; }

# alive PID: the process exists and is not a zombie.
alive() {
    local st
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ "$st" != Z ] && [ "$st" != X ]
}

# run_daemon NAME ARGS...: starts skiffd in the background, logging to
# TEST_DIR/NAME.log (appended across restarts). Its agent is pointed at a
# dockerd socket that does not exist: the tests never touch a real dockerd.
run_daemon() {
    local name=$1; shift
    assign "$name"
    if [ -n "${NODE_PID[$name]:-}" ] && alive "${NODE_PID[$name]}"; then
        fail "$name is already running"
    fi
    echo "=== $(date -u +%T.%N | cut -c1-12) skiffd $*" >>"$TEST_DIR/$name.log"
    "$SKIFFD" --data-dir "$(dir "$name")" --docker-host "$TEST_DIR/no-dockerd.sock" "$@" \
        >>"$TEST_DIR/$name.log" 2>&1 &
    NODE_PID[$name]=$!
}

healthy() { curl -sk --max-time 1 "https://$1/v1/health" | jq -e '.status == "ok"'; }
is_leader() { curl -sk --max-time 1 "https://$1/v1/health" | jq -e '.leader == true'; }

# init_cluster NAME [ARGS...]: the first manager, with --init; waits until it
# leads and writes the admin credentials to $ADMIN.
init_cluster() {
    local name=$1; shift
    assign "$name"
    run_daemon "$name" --advertise-addr "$(addr "$name")" --init --hostname "$name" \
        --admin-config "$ADMIN" "$@"
    MANAGERS=("$name")
    must 10 "$name leads the new cluster" is_leader "$(api "$name")"
    must 10 "$name is ready" node_is "$name" ready
}

# join NAME manager|worker [ARGS...]: joins through the first manager (or
# JOIN_VIA) with a fresh token and waits until the node is ready.
join() {
    local name=$1 role=$2; shift 2
    assign "$name"
    local token t0
    token=$(sk join-token -q "$role")
    t0=$(now_ms)
    # From the environment: a token on the command line shows in /proc.
    export SKIFF_JOIN_TOKEN=$token
    run_daemon "$name" --advertise-addr "$(addr "$name")" --join "${JOIN_VIA:-$(api m1)}" \
        --hostname "$name" "$@"
    unset SKIFF_JOIN_TOKEN
    [ "$role" != manager ] || MANAGERS+=("$name")
    must 15 "$name joined and is ready" node_is "$name" ready
    JOIN_MS=$(elapsed_ms "$t0")
    log "$name joined as $role; ready after $JOIN_MS ms"
}

# start NAME [ARGS...]: resumes a stopped daemon from its data dir.
start() {
    local name=$1; shift
    run_daemon "$name" "$@"
}

# wait_exit NAME SECONDS: waits for the daemon to exit and reaps it; its exit
# status goes to EXIT_RC. Returns 1 if it still runs after SECONDS. (Not in a
# $(...): only the test's own shell can reap its children.)
EXIT_RC=
wait_exit() {
    local p
    p=$(pid "$1")
    wait_for "$2" eval "! alive $p" || return 1
    EXIT_RC=0
    wait "$p" 2>/dev/null || EXIT_RC=$?
}

# kill9 NAME: SIGKILL, waits until it is gone.
kill9() {
    local p
    p=$(pid "$1")
    local gone=0
    # (bash reports "Killed" for the job on stderr when it reaps it.)
    { kill -9 "$p" || true; ! wait_exit "$1" 5 || gone=1; } 2>/dev/null
    [ $gone = 1 ] || fail "$1 (pid $p) survived SIGKILL"
}

# stop NAME: SIGTERM; fails unless it exits cleanly (status 0) within 10 s.
stop() {
    local p
    p=$(pid "$1")
    kill -TERM "$p"
    wait_exit "$1" 10 || fail "$1 (pid $p) still running 10 s after SIGTERM"
    [ "$EXIT_RC" = 0 ] || fail "$1 exited with status $EXIT_RC after SIGTERM"
}

# ---- the CLI ----

# sk ARGS...: skiff with the test's admin credentials, trying every manager
# started so far (or SK_HOSTS).
sk() { "$SKIFF" --timeout "${SK_TIMEOUT:-10s}" --host "${SK_HOSTS:-$(managers_csv)}" "$@"; }
# sk_at NAME ARGS...: skiff against NAME's API only.
sk_at() { local n=$1; shift; "$SKIFF" --timeout "${SK_TIMEOUT:-10s}" --host "$(api "$n")" "$@"; }

# The managers the test started (init_cluster and join ... manager add to
# it); the CLI fails over between them in this order.
MANAGERS=()
managers_csv() {
    local n out=
    for n in "${MANAGERS[@]}"; do out+=${out:+,}$(api "$n"); done
    echo "$out"
}

cluster_json() { sk --format json cluster info; }
nodes_json() { sk --format json node ls; }
leader_name() { cluster_json | jq -r '.leader.name // empty'; }
voters() { cluster_json | jq '[.managers[] | select(.raft_member == "voter")] | length'; }
node_count() { nodes_json | jq length; }
# node_field NAME JQ-PATH [VIA]: a field of a node (by hostname), read through
# VIA's API if given.
node_field() {
    local out
    if [ -n "${3:-}" ]; then
        out=$(sk_at "$3" node inspect "$1") || return 1
    else
        out=$(sk node inspect "$1") || return 1
    fi
    jq -r ".[0]$2 // empty" <<<"$out"
}
node_is() { [ "$(node_field "$1" .status.state)" = "$2" ]; }
role_is() { [ "$(node_field "$1" .spec.role)" = "$2" ]; }
voters_are() { [ "$(voters)" = "$1" ]; }
has_label() { [ "$(node_field "$1" ".spec.labels[\"$2\"]" "${4:-}")" = "$3" ]; }

# ---- assertions ----

# expect_fail WHAT CMD...: CMD must fail; its stderr+stdout go to $OUT.
OUT=
# shellcheck disable=SC2034 # OUT is for the tests
expect_fail() {
    local what=$1; shift
    if OUT=$("$@" 2>&1); then
        fail "$what: succeeded but should have failed (command: $*)"
    fi
}
# contains TEXT PATTERN WHAT
contains() {
    [[ $1 == *"$2"* ]] || fail "$3: expected \"$2\" in: $1"
}
eq() { [ "$1" = "$2" ] || fail "$3: expected \"$2\", got \"$1\""; }

# cred_files FILE.json PREFIX: writes PREFIX-ca.pem, -cert.pem, -key.pem from
# a node.json or admin.json.
cred_files() {
    jq -r .ca_pem "$1" >"$2-ca.pem"
    jq -r .cert_pem "$1" >"$2-cert.pem"
    jq -r .key_pem "$1" >"$2-key.pem"
}

# https METHOD URL CREDS-PREFIX|- [BODY [HEADER]]: curl with the cluster CA
# and (unless -) a client certificate (CREDS-PREFIX from cred_files); prints
# "STATUS BODY", or "000 CURL-ERROR" when no HTTP response came.
https() {
    local method=$1 url=$2 creds=$3 body=${4:-} header=${5:-}
    [ -f "$TEST_DIR/admin-ca.pem" ] || jq -r .ca_pem "$ADMIN" >"$TEST_DIR/admin-ca.pem"
    local args=(-sS --max-time 5 -X "$method" --cacert "$TEST_DIR/admin-ca.pem"
        -o "$TEST_DIR/curl.out" -w '%{http_code}')
    [ "$creds" = - ] || args+=(--cert "$creds-cert.pem" --key "$creds-key.pem")
    [ -z "$body" ] || args+=(-H 'Content-Type: application/json' --data "$body")
    [ -z "$header" ] || args+=(-H "$header")
    local code
    rm -f "$TEST_DIR/curl.out"
    if code=$(curl "${args[@]}" "$url" 2>"$TEST_DIR/curl.err"); then
        echo "$code $(cat "$TEST_DIR/curl.out" 2>/dev/null)"
    else
        echo "000 $(cat "$TEST_DIR/curl.err")"
    fi
}
