#!/usr/bin/env bash
# A role change re-executes skiffd under the same pid, by the path it was
# started from: its process name (/proc/PID/comm) stays "skiffd" -- not
# "exe", as a re-exec through /proc/self/exe names it -- so `pgrep -x
# skiffd`, pidof and monitoring still find it. Started by an absolute path
# (m1), by a bare name found in $PATH (w1) and by a relative path (w2).
. "$(dirname "$0")/lib.sh"

# comm_is NAME: NAME's skiffd is named skiffd and runs the built binary.
comm_is_skiffd() {
    local p
    p=$(pid "$1")
    eq "$(cat "/proc/$p/comm")" skiffd "$1's process name (pid $p)"
    eq "$(readlink "/proc/$p/exe")" "$(readlink -f "$SKIFFD")" "$1's binary (pid $p)"
    pgrep -x skiffd | grep -qx "$p" || fail "pgrep -x skiffd does not list $1 (pid $p)"
}

init_cluster m1
SKIFFD=skiffd PATH="$BUILD_DIR/cmd:$PATH" join w1 worker
cd "$BUILD_DIR"
SKIFFD=./cmd/skiffd join w2 worker
cd /
for n in m1 w1 w2; do comm_is_skiffd "$n"; done
ok "m1 (absolute path), w1 (bare name in PATH), w2 (relative path) run as skiffd"

for n in w1 w2; do
    before=$(pid "$n")
    sk node promote "$n" >/dev/null
    must 20 "$n serves the manager API" healthy "$(api "$n")"
    must 15 "$n ready as a manager" eval "role_is $n manager && node_is $n ready"
    alive "$before" || fail "$n's skiffd (pid $before) is gone after the promotion"
    comm_is_skiffd "$n"
done
ok "promoted w1 and w2: re-executed under the same pids, still named skiffd"

before=$(pid w1)
sk node demote w1 >/dev/null
must 15 "w1 ready as a worker" eval "role_is w1 worker && node_is w1 ready"
must 10 "w1 no longer serves the manager API" eval "! healthy $(api w1)"
alive "$before" || fail "w1's skiffd (pid $before) is gone after the demotion"
comm_is_skiffd w1
ok "demoted w1: still named skiffd"
