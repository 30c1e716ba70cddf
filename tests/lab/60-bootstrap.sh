#!/usr/bin/env bash
# deploy/bootstrap on the lab (issue 13). Each lab host runs Debian's sshd on
# its control address, as a VM does (lab sshd), and bootstrap reaches it only
# that way: from nothing it brings up 3 managers and 2 workers (install=copy
# of this build; the lab has no systemd, so skiffd runs as a plain daemon);
# a second run reports no change, restarts no skiffd and rewrites no file;
# --dry-run with a 6th host in the inventory plans its join only and changes
# nothing; the run after joins that host only; a skiffd that stopped is
# started again by the next run, and nothing else. No join token is left on
# a host or shows in bootstrap's output or a skiffd log, and nothing is
# written outside the paths the inventory gives. The lab is taken down also
# when a step fails.
. "$(dirname "$0")/lib.sh"

BUILD=${SKIFF_BUILD_DIR:-$SRC_DIR/build}
BOOTSTRAP=$SRC_DIR/deploy/bootstrap
LAB_ROOT=/var/lib/skiff-lab
TMP=$(mktemp -d)
INV=$TMP/inventory
ADMIN=$TMP/admin.json
cleanup() {
    local rc=$?
    if [ $rc != 0 ]; then
        local f
        for f in "$TMP"/run*.out; do
            [ -f "$f" ] || continue
            log "--- $f"
            cat "$f" >&2
        done
        for f in "$LAB_ROOT"/h*/vm/run/skiffd.log; do
            [ -f "$f" ] || continue
            log "--- last lines of $f"
            tail -n 15 "$f" >&2 || true
        done
    fi
    "$LAB" down >/dev/null 2>&1 || true
    rm -rf "$TMP"
    [ $rc = 0 ] || log "FAILED (lab taken down)"
}
trap cleanup EXIT

eq() { [ "$1" = "$2" ] || fail "$3: got \"$1\", want \"$2\""; } # GOT WANT WHAT
sk() { "$BUILD/cmd/skiff" --config "$ADMIN" --timeout 5s "$@"; }
host_line() { # HOST ROLE
    echo "$1 role=$2 addr=$("$LAB" addr "$1") data=$("$LAB" addr "$1" --data)"
}
# Runs bootstrap, its output (both streams) into $TMP/NAME.out; fails the
# test unless it succeeds.
bootstrap() { # NAME ARGS...
    local name=$1 t0; shift
    t0=$(now_ms)
    "$BOOTSTRAP" "$@" >"$TMP/$name.out" 2>&1 || fail "deploy/bootstrap $* failed (output above)"
    log "deploy/bootstrap $*: $(elapsed_ms "$t0") ms"
}
# skiffd's pid in each HOST, as the host sees it: "h1=12 h2=15 ...".
skiffd_pids() {
    local h out=""
    for h in "$@"; do out+="$h=$("$LAB" exec "$h" pgrep -x skiffd | tr '\n' ',') "; done
    echo "$out"
}
# Modification times of every file bootstrap writes on HOSTs.
host_files() {
    local h
    for h in "$@"; do
        # Not skiffd's data dir and log: skiffd itself writes them.
        find "$LAB_ROOT/$h/vm" \( -path "$LAB_ROOT/$h/vm/skiff" -o -name skiffd.log \) -prune \
            -o -type f -printf '%p %T@\n'
    done | sort
}
# What exists of the default paths on this machine (the lab's hosts share
# its file system): bootstrap must not touch them.
outside() {
    local p
    for p in /usr/local/bin/skiffd /usr/local/bin/skiff /etc/default/skiffd /var/lib/skiff \
        /etc/systemd/system/skiffd.service /run/skiff /etc/skiff-join-token; do
        stat -c '%n %Y' "$p" 2>/dev/null || echo "$p absent"
    done
}
nodes_json() { sk --format json node ls; }
voters() { sk --format json cluster info | jq '[.managers[] | select(.raft_member == "voter")] | length'; }

# ---- a bad inventory is refused, naming its line ---------------------------
printf '# one host\nh1 role=manager addr=10.77.0.11 colour=red\n' >"$TMP/bad"
if "$BOOTSTRAP" --dry-run "$TMP/bad" >"$TMP/bad.out" 2>&1; then fail "an unknown key was accepted"; fi
grep -q "bad:2: unknown key \"colour\"" "$TMP/bad.out" || fail "the error names no line: $(cat "$TMP/bad.out")"
pass "an inventory with an unknown key is refused, naming file and line"

# ---- six hosts with sshd, nothing of skiff ----------------------------------
T0=$(now_ms)
"$LAB" down >/dev/null 2>&1 || true
"$LAB" up --hosts 6
"$LAB" sshd
OUTSIDE_BEFORE=$(outside)
cat >"$INV" <<EOF
# The lab as VMs: ssh as root with the lab's key; each host keeps what
# bootstrap installs under its own lab dir (the hosts share this machine's
# file system), and has its own dockerd.
ssh_key=$LAB_ROOT/ssh/id_ed25519
known_hosts=$TMP/known_hosts
admin=$ADMIN
install=copy
build_dir=$BUILD
prefix=$LAB_ROOT/%h/vm/usr
data_dir=$LAB_ROOT/%h/vm/skiff
etc=$LAB_ROOT/%h/vm/etc
run=$LAB_ROOT/%h/vm/run
docker=/run/skiff-lab/%h/docker.sock

$(host_line h1 manager)
$(host_line h2 manager)
$(host_line h3 manager)
$(host_line h4 worker)
$(host_line h5 worker)
EOF

bootstrap dry-run --dry-run "$INV"
grep -Eq "^  h1 .*make the cluster" "$TMP/dry-run.out" || fail "the plan does not make the cluster on h1"
for h in h2 h3; do
    grep -Eq "^  $h .*join as manager" "$TMP/dry-run.out" || fail "the plan does not join $h as manager"
done
for h in h4 h5; do
    grep -Eq "^  $h .*join as worker" "$TMP/dry-run.out" || fail "the plan does not join $h as worker"
done
for h in h1 h2 h3 h4 h5; do
    [ ! -e "$LAB_ROOT/$h/vm" ] || fail "--dry-run wrote on $h ($LAB_ROOT/$h/vm)"
done
if [ -e "$ADMIN" ] || [ -e "$TMP/known_hosts" ]; then fail "--dry-run wrote admin credentials or known_hosts here"; fi
pass "--dry-run: h1 makes the cluster, h2-h3 join as managers, h4-h5 as workers; nothing written"

# ---- from nothing: 3 managers + 2 workers -----------------------------------
bootstrap run1 "$INV"
nodes=$(nodes_json)
eq "$(jq length <<<"$nodes")" 5 "nodes after the first run"
eq "$(jq '[.[] | select(.status.state == "ready")] | length' <<<"$nodes")" 5 "ready nodes"
eq "$(jq -r '[.[] | select(.spec.role == "manager") | .spec.name] | sort | join(" ")' <<<"$nodes")" "h1 h2 h3" "managers"
eq "$(jq -r '[.[] | select(.spec.role == "worker") | .spec.name] | sort | join(" ")' <<<"$nodes")" "h4 h5" "workers"
eq "$(voters)" 3 "voters"
for h in h1 h2 h3 h4 h5; do
    eq "$(jq -r --arg h "$h" '.[] | select(.spec.name == $h) | "\(.description.addr) \(.description.data_addr)"' <<<"$nodes")" \
        "$("$LAB" addr "$h") $("$LAB" addr "$h" --data)" "$h's control and data addresses"
done
grep -Eq "^ID +HOSTNAME" "$TMP/run1.out" && grep -Eq "^[a-z0-9]+ +h5 +Ready" "$TMP/run1.out" ||
    fail "bootstrap did not end with node ls"
pass "first run: 5 ready nodes, h1-h3 managers (3 voters), h4-h5 workers, with their lab addresses; ends with node ls"

eq "$(stat -c %a "$ADMIN")" 600 "the admin credentials' mode"
eq "$(jq -r '.managers | sort | join(" ")' "$ADMIN")" \
    "$("$LAB" addr h1):7443 $("$LAB" addr h2):7443 $("$LAB" addr h3):7443" "managers in the admin credentials"
eq "$(wc -l <"$TMP/known_hosts")" 5 "host keys learnt"
for h in h1 h2 h3 h4 h5; do
    # skiffd runs in the host (its own PID namespace), as a plain daemon.
    "$LAB" exec "$h" pgrep -x skiffd >/dev/null || fail "no skiffd runs in $h"
    [ ! -e "$LAB_ROOT/$h/vm/etc/skiff-join-token" ] || fail "a token file is left on $h"
    flags=$(sed -n 's/^SKIFFD_ARGS=//p' "$LAB_ROOT/$h/vm/etc/default/skiffd")
    [[ $flags != *--join* && $flags != *--init* && $flags != *--token* ]] ||
        fail "$h's flags still hold first-start flags: $flags"
    [[ $flags == *"--advertise-addr $("$LAB" addr "$h") "* ]] || fail "$h's flags: $flags"
done
for role in worker manager; do
    token=$(sk join-token -q "$role")
    [ -n "$token" ] || fail "no $role token"
    if grep -rqF -- "$token" "$TMP"/run1.out "$TMP"/dry-run.out "$LAB_ROOT"/h*/vm/run "$LAB_ROOT"/h*/vm/etc; then
        fail "the $role token shows in bootstrap's output, a skiffd log or a host's etc"
    fi
done
pass "admin credentials here (0600, all managers), host keys learnt; on each host skiffd runs with its resume flags, no token file, the tokens in no output or log"

# ---- again: no change --------------------------------------------------------
PIDS=$(skiffd_pids h1 h2 h3 h4 h5)
FILES=$(host_files h1 h2 h3 h4 h5)
bootstrap run2 "$INV"
for h in h1 h2 h3 h4 h5; do
    grep -q "^bootstrap: $h: no change$" "$TMP/run2.out" || fail "second run: $h changed"
done
grep -q "^bootstrap: no change" "$TMP/run2.out" || fail "second run: no \"no change\" summary"
eq "$(skiffd_pids h1 h2 h3 h4 h5)" "$PIDS" "skiffd pids after the second run"
eq "$(host_files h1 h2 h3 h4 h5)" "$FILES" "files on the hosts after the second run"
pass "second run: \"no change\" on every host, no skiffd restarted, no file rewritten"

# ---- a sixth host -------------------------------------------------------------
host_line h6 worker >>"$INV"
bootstrap dry-run6 --dry-run "$INV"
for h in h1 h2 h3 h4 h5; do
    grep -Eq "^  $h .*nothing to do$" "$TMP/dry-run6.out" || fail "with h6 added, the plan changes $h"
done
grep -Eq "^  h6 .*join as worker" "$TMP/dry-run6.out" || fail "the plan does not join h6"
[ ! -e "$LAB_ROOT/h6/vm" ] || fail "--dry-run wrote on h6"
pass "--dry-run with h6 added: h6 joins as a worker, nothing else; nothing written"

bootstrap run3 "$INV"
for h in h1 h2 h3 h4 h5; do
    grep -q "^bootstrap: $h: no change$" "$TMP/run3.out" || fail "third run: $h changed"
done
grep -q "^bootstrap: h6: .*joined as worker" "$TMP/run3.out" || fail "third run: h6 did not join"
eq "$(skiffd_pids h1 h2 h3 h4 h5)" "$PIDS" "skiffd pids of h1-h5 after h6 joined"
eq "$(host_files h1 h2 h3 h4 h5)" "$FILES" "files on h1-h5 after h6 joined"
nodes=$(nodes_json)
eq "$(jq '[.[] | select(.status.state == "ready")] | length' <<<"$nodes")" 6 "ready nodes with h6"
eq "$(jq -r '.[] | select(.spec.name == "h6") | .spec.role' <<<"$nodes")" worker "h6's role"
eq "$(voters)" 3 "voters with h6"
[ ! -e "$LAB_ROOT/h6/vm/etc/skiff-join-token" ] || fail "a token file is left on h6"
pass "h6 added to the inventory: only h6 joins (a worker), h1-h5 untouched"

# ---- a skiffd that stopped is started again, nothing else --------------------
pid=$(cat "$LAB_ROOT/h4/vm/run/skiffd.pid")
"$LAB" exec h4 kill "$pid"
wait_for 20 bash -c "! \"$LAB\" exec h4 pgrep -x skiffd" || fail "skiffd on h4 did not stop"
bootstrap run4 "$INV"
grep -q "^bootstrap: h4: started$" "$TMP/run4.out" || fail "fourth run: h4 not started"
for h in h1 h2 h3 h5 h6; do
    grep -q "^bootstrap: $h: no change$" "$TMP/run4.out" || fail "fourth run: $h changed"
done
nodes=$(nodes_json)
eq "$(jq '[.[] | select(.status.state == "ready")] | length' <<<"$nodes")" 6 "ready nodes after h4's restart"
pass "h4's skiffd stopped: the next run starts it again and changes nothing else"

eq "$(outside)" "$OUTSIDE_BEFORE" "the default paths on this machine"
pass "nothing written outside the inventory's paths"

log "all passed in $(elapsed_ms "$T0") ms"
