# Helpers for the chaos tests: the loopback tests' helpers (tests/loopback/
# lib.sh: own 127.X.Y.0/24, own temporary dir, everything killed and removed
# at exit), plus partitions between managers and cluster helpers. Source it
# first thing.
#
# Partitions need root (iptables) and a cgroup2 mount: every skiffd runs in
# its own cgroup, and a partition drops the packets that one manager's
# processes send to another manager's address (`iptables -m cgroup
# --path`), in both directions -- on loopback every connection's source
# address is 127.0.0.1, so addresses alone cannot tell the managers apart.
# The clients (not in those cgroups) are never cut off: they reach every
# manager, as clients on both sides of a real partition would. PARTITIONS
# is 1 if they are possible. Every rule carries a comment naming the test
# run and is removed at exit, as are the cgroups; paused daemons are
# continued and every daemon killed, also on failure or interruption.
#
#   SKIFFD_ENV   "K=V ..." set in every skiffd's environment
. "$(dirname "${BASH_SOURCE[0]}")/../loopback/lib.sh"

WHERE="loopback $PREFIX.x"
CLIENT=$BUILD_DIR/tests/chaos/chaos_client
CHECK=$BUILD_DIR/tests/chaos/chaos_check
for tool in "$CLIENT" "$CHECK"; do
    [ -x "$tool" ] || { echo "$tool not built (ninja -C $BUILD_DIR)" >&2; exit 1; }
done

# ---- cgroups and iptables ----

TAG=skiff-chaos-$(basename "$TEST_DIR")
CG_MOUNT=$(findmnt -n -t cgroup2 -o TARGET 2>/dev/null | head -n 1 || true)
CG_REL=$TAG
CG_DIR=
PARTITIONS=0
if [ "$(id -u)" = 0 ] && [ -n "$CG_MOUNT" ] && command -v iptables >/dev/null &&
    mkdir "$CG_MOUNT/$CG_REL" 2>/dev/null; then
    CG_DIR=$CG_MOUNT/$CG_REL
    PARTITIONS=1
fi

# skiffd through a wrapper that enters the node's cgroup first (named after
# its data dir), so that even its first socket belongs there.
WRAPPER=$TEST_DIR/skiffd-in-cgroup
cat >"$WRAPPER" <<EOF
#!/bin/sh
prev=
for a in "\$@"; do [ "\$prev" = --data-dir ] && dir=\$a; prev=\$a; done
if [ -n "$CG_DIR" ]; then
    cg="$CG_DIR/\$(basename "\$dir")"
    mkdir -p "\$cg" && echo \$\$ >"\$cg/cgroup.procs" || exit 97
fi
[ -z "\${SKIFFD_ENV:-}" ] || export \$SKIFFD_ENV
exec "$SKIFFD" "\$@"
EOF
chmod +x "$WRAPPER"
SKIFFD=$WRAPPER

# drop_from A B: A's processes can no longer reach B's address.
drop_from() {
    iptables -w -I OUTPUT -m cgroup --path "$CG_REL/$1" -d "$(addr "$2")" \
        -m comment --comment "$TAG" -j DROP
}
# sever A B: no packets between managers A and B either way.
sever() { drop_from "$1" "$2"; drop_from "$2" "$1"; }
# heal_partitions: removes every rule this run added.
heal_partitions() {
    [ "$PARTITIONS" = 1 ] || return 0
    local rule
    iptables -w -S OUTPUT | { grep -F -- "$TAG" || true; } | while read -r rule; do
        eval "iptables -w ${rule/#-A/-D}" || true
    done
}

chaos_cleanup() {
    local rc=$?
    trap - EXIT
    set +e
    heal_partitions
    local n
    for n in "${!NODE_PID[@]}"; do kill -CONT "${NODE_PID[$n]}" 2>/dev/null; done
    { kill_ours; wait; } 2>/dev/null
    if [ -n "$CG_DIR" ]; then
        local d
        for d in "$CG_DIR"/*/; do
            [ -d "$d" ] && wait_for 5 rmdir "$d"
        done
        rmdir "$CG_DIR" 2>/dev/null || log "could not remove $CG_DIR"
    fi
    (exit $rc)
    cleanup
}
trap chaos_cleanup EXIT

# ---- the cluster ----

PAUSED=() # managers stopped with SIGSTOP: not asked who leads
is_paused() {
    local p
    for p in "${PAUSED[@]}"; do [ "$p" = "$1" ] && return 0; done
    return 1
}

# current_leader: the manager that says it leads (of those running and not
# paused), or nothing.
current_leader() {
    local n
    for n in "${MANAGERS[@]}"; do
        is_paused "$n" && continue
        alive "$(pid "$n")" || continue
        if is_leader "$(api "$n")" >/dev/null 2>&1; then
            echo "$n"
            return 0
        fi
    done
}
has_leader() { [ -n "$(current_leader)" ]; }
node_log() { echo "$TEST_DIR/$1.log"; }
all_healthy() {
    local n
    for n in "${MANAGERS[@]}"; do healthy "$(api "$n")" || return 1; done
}

# fresh_cluster N: kills every daemon, removes their data, and starts N
# managers m1..mN anew (same addresses), returning once all are voters.
fresh_cluster() {
    { kill_ours; wait; } 2>/dev/null || true
    local n
    for n in "${MANAGERS[@]}"; do rm -rf "$(dir "$n")"; done
    NODE_PID=()
    MANAGERS=()
    PAUSED=()
    init_cluster m1
    for n in $(seq 2 "$1"); do join "m$n" manager; done
    must 30 "$1 voters" voters_are "$1"
}

# heal_all: partitions healed, paused managers continued, dead ones
# restarted on their data dirs.
heal_all() {
    heal_partitions
    local n
    for n in "${MANAGERS[@]}"; do
        kill -CONT "$(pid "$n")" 2>/dev/null || true
        alive "$(pid "$n")" || start "$n"
    done
    PAUSED=()
}

# check_field NAME SUMMARY: a number from chaos_check's summary line.
check_field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$2"; }
