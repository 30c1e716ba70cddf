# The chaos tests' cluster and fault helpers on the lab (deploy/lab/lab:
# every host a network namespace with its own address, real TCP between
# them) instead of loopback: the same functions as tests/chaos/lib.sh, which
# it overrides. Source it first thing. It uses the global lab, so run it
# only under the lab lock:
#
#   flock /tmp/skiff-lab.lock env CHAOS_ENV=lab tests/chaos/run.sh
#
# Managers are h1..hN (control addresses 10.77.0.11..). The clients run in
# the root namespace (10.77.0.1 on the control bridge) and are never cut
# off. A partition between two hosts drops, inside each host's namespace,
# what comes from and goes to the other's control address (iptables INPUT
# and OUTPUT, tagged with a comment naming this run); `lab cut` would also
# cut the host off from the clients, and cannot split 2/3 with the 2 still
# talking to each other. Each round starts a fresh cluster on the hosts
# (their skiffd killed, data dir removed, `lab cluster --workers 0`). At
# exit: rules removed, paused daemons continued, and `lab down` unless
# CHAOS_KEEP_LAB=1.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# No cgroups here: the lab's hosts have addresses of their own.
[ -z "$CG_DIR" ] || rmdir "$CG_DIR"
CG_DIR=
LAB=$SRC_DIR/deploy/lab/lab
[ "$(id -u)" = 0 ] || { echo "the lab needs root" >&2; exit 1; }
ADMIN=/run/skiff-lab/admin.json
export SKIFF_CONFIG=$ADMIN
export SKIFF_BUILD_DIR=$BUILD_DIR
PARTITIONS=1
WHERE="the lab (h1.., 10.77.0.11..)"

addr() { echo "10.77.0.$(( 10 + ${1#h} ))"; }
api() { echo "$(addr "$1"):7443"; }
pid() { cat "/run/skiff-lab/$1/skiffd.pid" 2>/dev/null || echo 0; }
node_log() { echo "/var/lib/skiff-lab/$1/skiffd.log"; }
kill9() { "$LAB" stop "$1" --kill >/dev/null; }
start() { "$LAB" start "$1" >/dev/null; }

in_host() { local h=$1; shift; "$LAB" exec "$h" "$@"; }
drop_from() { # A B: inside A, nothing from or to B's address
    in_host "$1" iptables -w -I INPUT -s "$(addr "$2")" -m comment --comment "$TAG" -j DROP
    in_host "$1" iptables -w -I OUTPUT -d "$(addr "$2")" -m comment --comment "$TAG" -j DROP
}
heal_partitions() {
    local h rule
    for h in "${MANAGERS[@]}"; do
        in_host "$h" iptables -w -S 2>/dev/null | { grep -F -- "$TAG" || true; } |
            while read -r rule; do
                eval "in_host $h iptables -w ${rule/#-A/-D}" || true
            done
    done
}

fresh_cluster() {
    local i
    if [ -n "$("$LAB" hosts 2>/dev/null)" ]; then
        for i in $(seq 1 9); do
            [ -e "/run/skiff-lab/h$i" ] || continue
            "$LAB" stop "h$i" --kill >/dev/null 2>&1 || true
            rm -rf "/var/lib/skiff-lab/h$i/skiff"
        done
        # A host beyond the cluster's would hold it back: start from scratch.
        [ "$("$LAB" hosts | wc -w)" = "$1" ] || "$LAB" down >/dev/null
    fi
    "$LAB" cluster --managers "$1" --workers 0 >&2
    MANAGERS=()
    for i in $(seq 1 "$1"); do MANAGERS+=("h$i"); done
    PAUSED=()
}

chaos_cleanup() {
    local rc=$?
    trap - EXIT
    set +e
    local n
    for n in "${MANAGERS[@]}"; do kill -CONT "$(pid "$n")" 2>/dev/null; done
    heal_partitions
    { kill_ours; wait; } 2>/dev/null
    if [ "${CHAOS_KEEP_LAB:-0}" = 1 ]; then
        log "the lab is left up (CHAOS_KEEP_LAB=1)"
    else
        "$LAB" down >/dev/null 2>&1
    fi
    (exit $rc)
    cleanup
}
trap chaos_cleanup EXIT
