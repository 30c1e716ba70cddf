#!/usr/bin/env bash
# skiff against Docker Swarm mode and against the raw Docker API, side by
# side on the same lab (5 hosts: 3 managers + 2 workers), in one run.
#
#   tests/bench/compare-swarm.sh            (RUNS=5 by default)
#   RUNS=1 SIZES="20" tests/bench/compare-swarm.sh   (a quick look)
#   RUNS=0 tests/bench/compare-swarm.sh     (memory only)
#
# Figures, each the median of RUNS runs:
#   converge N    service created -> N/N replicas running (N in SIZES)
#   host loss     a worker cut off -> all 20 replicas running elsewhere
#   leader loss   the leader's host cut off -> a write accepted through
#                 another manager
#   rolling update  20 replicas, a new environment variable, the defaults
#                 of both (parallelism 1, monitor 5 s): update started ->
#                 update completed
#   memory        skiffd RSS, PSS and anonymous memory (idle, 100 tasks)
#                 against what Swarm adds to dockerd's RSS and anonymous
#                 memory (init, 100 tasks), each dockerd freshly started;
#                 and the floor: the RSS of an empty process that loads and
#                 initialises skiffd's libraries (build/tests/lib_floor)
# and the limit: the same containers started straight through each host's
# Docker API, all hosts in parallel, no orchestrator -- measured in turn with
# each orchestrator's runs, on the dockerds as they are then.
#
# A benchmark, not a test: run by hand (as root, on an otherwise idle
# machine); it prints figures and ratios and leaves the lab down.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
LAB=$SRC/deploy/lab/lab
RUNS=${RUNS:-5}
SIZES=${SIZES:-"20 100"}
IMG=skiff-test/busybox:latest
HOSTS="h1 h2 h3 h4 h5"
MANAGERS="h1 h2 h3"
declare -A R # figure -> space-separated samples
declare -A sw_init sw_100 # what Swarm adds, for the report

log() { printf '[bench] %s\n' "$*" >&2; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
wait_until() { # SECONDS CMD...: poll, fail loudly on the deadline
    local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s%N)" -lt "$deadline" ] || { log "timed out: $*"; return 1; }
        sleep 0.1
    done
}
record() { R[$1]="${R[$1]:-} $2"; log "$1: $2"; }
# check 'SHELL-EXPR' OP VALUE: EXPR is evaluated at every poll.
check() { [ "$(eval "$1")" "$2" "$3" ]; }
median() { # "SAMPLE..." -> the median, "-" if there is none
    printf '%s\n' $1 | sort -n | awk 'NF { v[++n] = $1 }
        END { if (n == 0) print "-"; else if (n % 2) print v[(n + 1) / 2];
              else print int((v[n / 2] + v[n / 2 + 1]) / 2) }'
}
cleanup() { "$LAB" down >/dev/null 2>&1 || true; }
trap cleanup EXIT

dk() { "$LAB" docker "$@"; }
sk() { "$LAB" skiff "$@"; }
# For the convergence polls, the CLIs without the lab script around them:
# a poll's own CPU is taken from the dockerds on this 2-core machine.
dkq() { docker -H "unix:///run/skiff-lab/$1/docker.sock" "${@:2}"; }
skq() { SKIFF_CONFIG=/run/skiff-lab/admin.json "${SKIFF_BUILD_DIR:-$SRC/build}/cmd/skiff" "$@"; }
running_count() { # HOST...: running containers
    local h n=0
    for h in "$@"; do n=$((n + $(dk "$h" ps -q | wc -l))); done
    echo "$n"
}
rm_all_containers() {
    local h
    for h in $HOSTS; do
        local ids
        ids=$(dk "$h" ps -aq)
        [ -z "$ids" ] || dk "$h" rm -f $ids >/dev/null 2>&1 || true
    done
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
anon_kb() { awk '/^Anonymous:/ {print $2}' "/proc/$1/smaps_rollup"; }
rss_anon_kb() { awk '/^RssAnon/ {print $2}' "/proc/$1/status"; }
dockerd_pid() { cat "/run/skiff-lab/$1/docker.pid"; }
skiffd_pid() { cat "/run/skiff-lab/$1/skiffd.pid"; }

# ---- the limit: raw Docker API, all hosts in parallel --------------------
# Each container is one create and one start straight on the host's Docker
# API (curl on the unix socket: no docker CLI start-up per container), all
# containers of all hosts at once. This is what an orchestrator can at best
# approach on this machine.
api_run() { # HOST
    local sock="/run/skiff-lab/$1/docker.sock" id
    id=$(curl -s --unix-socket "$sock" -H 'Content-Type: application/json' \
        -d "{\"Image\":\"$IMG\",\"Cmd\":[\"sleep\",\"100000\"],\"HostConfig\":{\"Init\":true}}" \
        http://localhost/v1.41/containers/create | sed -n 's/.*"Id":"\([0-9a-f]*\)".*/\1/p')
    [ -n "$id" ] && curl -s --unix-socket "$sock" -X POST \
        "http://localhost/v1.41/containers/$id/start" >/dev/null
}

limit_converge() { # N
    local n=$1 per=$(( $1 / 5 )) h t0 pids=()
    t0=$(now_ms)
    for h in $HOSTS; do
        for i in $(seq 1 "$per"); do
            api_run "$h" &
            pids+=($!)
        done
    done
    wait "${pids[@]}"
    wait_until 120 check 'running_count $HOSTS' -ge "$n"
    echo $(( $(now_ms) - t0 ))
}

# ---- skiff ---------------------------------------------------------------
sk_converged() { [ "$(skq service ls | awk -v s="$1" '$2 == s {print $4}')" = "$2/$2" ]; }

skiff_converge() { # N
    local t0
    t0=$(now_ms)
    sk service create --name bench --replicas "$1" --init "$IMG" sleep 100000 >/dev/null
    wait_until 300 sk_converged bench "$1"
    echo $(( $(now_ms) - t0 ))
}

skiff_remove() {
    sk service rm bench >/dev/null
    wait_until 300 check 'running_count $HOSTS' = 0
}

skiff_host_loss() {
    sk service create --name bench --replicas 20 --init "$IMG" sleep 100000 >/dev/null
    wait_until 120 sk_converged bench 20
    local t0 ms
    "$LAB" cut h5
    t0=$(now_ms)
    wait_until 120 check 'running_count h1 h2 h3 h4' -ge 20
    ms=$(( $(now_ms) - t0 ))
    "$LAB" heal h5
    wait_until 120 check 'running_count h5' = 0
    skiff_remove
    echo "$ms"
}

sk_update_state() { skq service inspect bench | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["update_status"]["state"])'; }
skiff_rolling_update() {
    sk service create --name bench --replicas 20 --init "$IMG" sleep 100000 >/dev/null
    wait_until 120 sk_converged bench 20
    local t0 ms
    t0=$(now_ms)
    sk service update --env-add BENCH=2 bench >/dev/null
    wait_until 300 check sk_update_state = completed
    ms=$(( $(now_ms) - t0 ))
    skiff_remove
    echo "$ms"
}

skiff_leader() {
    sk cluster info --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"]["name"])'
}

skiff_leader_loss() {
    local leader other t0 ms n=0
    leader=$(skiff_leader)
    for other in $MANAGERS; do [ "$other" != "$leader" ] && break; done
    "$LAB" cut "$leader"
    t0=$(now_ms)
    until sk --host "$("$LAB" addr "$other"):7443" --timeout 1s node update \
            --label-add "bench=$n" h4 >/dev/null 2>&1; do
        n=$((n + 1))
        [ $(( $(now_ms) - t0 )) -lt 60000 ] || { log "no write after 60 s"; break; }
    done
    ms=$(( $(now_ms) - t0 ))
    "$LAB" heal "$leader"
    wait_until 60 sh -c "[ \$($LAB skiff node ls | grep -c Ready) = 5 ]"
    echo "$ms"
}

# ---- Swarm mode ------------------------------------------------------------
sw_init() {
    local h1a h1d
    h1a=$("$LAB" addr h1)
    h1d=$("$LAB" addr h1 --data)
    dk h1 swarm init --advertise-addr "$h1a" --data-path-addr "$h1d" >/dev/null
    local mt wt h
    mt=$(dk h1 swarm join-token -q manager)
    wt=$(dk h1 swarm join-token -q worker)
    for h in h2 h3; do
        dk "$h" swarm join --token "$mt" --advertise-addr "$("$LAB" addr $h)" \
            --data-path-addr "$("$LAB" addr $h --data)" "$h1a:2377" >/dev/null
    done
    for h in h4 h5; do
        dk "$h" swarm join --token "$wt" --advertise-addr "$("$LAB" addr $h)" \
            --data-path-addr "$("$LAB" addr $h --data)" "$h1a:2377" >/dev/null
    done
    wait_until 60 check 'sw_ready h1' = 5
}

sw_ready() { # MANAGER: nodes Ready as it sees them
    dk "$1" node ls --format '{{.Status}}' 2>/dev/null | grep -c Ready
}

sw_leave() {
    local h
    for h in h5 h4 h3 h2 h1; do dk "$h" swarm leave --force >/dev/null 2>&1 || true; done
}

# Every lab dockerd has the machine's host name, so Swarm nodes are told
# apart by their IDs, never by name.
sw_node_id() { dk "$1" info --format '{{.Swarm.NodeID}}'; }

sw_running() { # SERVICE [EXCLUDED-NODE-ID]: running tasks
    local ids
    ids=$(dk h1 service ps -q "$1" --filter desired-state=running 2>/dev/null)
    [ -n "$ids" ] || { echo 0; return; }
    dk h1 inspect --format '{{.NodeID}} {{.Status.State}}' $ids 2>/dev/null |
        awk -v x="${2:-}" '$2 == "running" && $1 != x' | wc -l
}

sw_manager() { # a reachable manager other than $1
    local h
    for h in $MANAGERS; do [ "$h" != "$1" ] && { echo "$h"; return; }; done
}

sw_converged() { [ "$(dkq h1 service ls --filter "name=$1" --format '{{.Replicas}}')" = "$2/$2" ]; }
sw_converge() { # N
    local t0
    t0=$(now_ms)
    dk h1 service create --detach --name bench --replicas "$1" --no-resolve-image \
        --init "$IMG" sleep 100000 >/dev/null
    wait_until 300 sw_converged bench "$1"
    echo $(( $(now_ms) - t0 ))
}

sw_remove() {
    dk h1 service rm bench >/dev/null
    wait_until 300 check 'running_count $HOSTS' = 0
}

sw_rolling_update() {
    dk h1 service create --detach --name bench --replicas 20 --no-resolve-image \
        --init "$IMG" sleep 100000 >/dev/null
    wait_until 120 sw_converged bench 20
    local t0 ms
    t0=$(now_ms)
    dk h1 service update --detach --env-add BENCH=2 bench >/dev/null
    wait_until 300 check "dkq h1 service inspect bench --format '{{.UpdateStatus.State}}'" = completed
    ms=$(( $(now_ms) - t0 ))
    sw_remove
    echo "$ms"
}

sw_host_loss() {
    dk h1 service create --detach --name bench --replicas 20 --no-resolve-image \
        --init "$IMG" sleep 100000 >/dev/null
    wait_until 120 check 'sw_running bench' = 20
    local node t0 ms
    node=$(sw_node_id h5)
    "$LAB" cut h5
    t0=$(now_ms)
    wait_until 180 check 'sw_running bench "$node"' -ge 20
    ms=$(( $(now_ms) - t0 ))
    "$LAB" heal h5
    wait_until 120 check 'sw_ready h1' = 5
    sw_remove
    echo "$ms"
}

sw_leader_loss() {
    local leader other t0 ms
    leader=$(for h in $MANAGERS; do
        dk "$h" node ls --format '{{.Self}} {{.ManagerStatus}}' 2>/dev/null |
            awk -v h="$h" '$1 == "true" && $2 == "Leader" {print h}'
    done)
    other=$(sw_manager "$leader")
    local target
    target=$(sw_node_id h4)
    "$LAB" cut "$leader"
    t0=$(now_ms)
    local n=0
    until timeout 3 docker -H "unix:///run/skiff-lab/$other/docker.sock" \
            node update --label-add "bench=$n" "$target" \
            >/dev/null 2>&1; do
        n=$((n + 1))
        [ $(( $(now_ms) - t0 )) -lt 90000 ] || { log "no Swarm write after 90 s"; break; }
    done
    ms=$(( $(now_ms) - t0 ))
    "$LAB" heal "$leader"
    wait_until 120 check 'sw_ready "$other"' = 5
    echo "$ms"
}

# ---- the run -------------------------------------------------------------
sum_dockerd_added() { # rss|anon: what the 5 dockerds grew by since take_base
    local h m=0 f=rss_kb
    [ "$1" = rss ] || f=rss_anon_kb
    for h in $HOSTS; do m=$(( m + $($f "$(dockerd_pid "$h")") - ${BASE[$1 $h]} )); done
    echo "$m"
}
take_base() {
    local h
    for h in $HOSTS; do
        BASE[rss $h]=$(rss_kb "$(dockerd_pid "$h")")
        BASE[anon $h]=$(rss_anon_kb "$(dockerd_pid "$h")")
    done
}
fresh_lab() { "$LAB" down >/dev/null 2>&1 || true; "$LAB" up --hosts 5; }
declare -A BASE

# Memory first, each on freshly started dockerds: Go keeps the heap it grew,
# so a dockerd that already ran containers would hide what Swarm adds.
fresh_lab
log "memory: 100 plain containers"
take_base
limit_converge 100 >/dev/null
sleep 5
record "plain dockerd added RSS at 100 containers (KiB, 5 hosts)" "$(sum_dockerd_added rss)"
record "plain dockerd added anon at 100 containers (KiB, 5 hosts)" "$(sum_dockerd_added anon)"
rm_all_containers
fresh_lab
log "memory: Swarm mode"
take_base
sw_init
sleep 10 # let the managers settle before reading memory
record "swarm dockerd added RSS at init (KiB, 5 hosts)" "$(sum_dockerd_added rss)"
record "swarm dockerd added anon at init (KiB, 5 hosts)" "$(sum_dockerd_added anon)"
sw_converge 100 >/dev/null
sleep 5
record "swarm dockerd added RSS at 100 tasks (KiB, 5 hosts)" "$(sum_dockerd_added rss)"
record "swarm dockerd added anon at 100 tasks (KiB, 5 hosts)" "$(sum_dockerd_added anon)"
sw_remove
sw_leave
fresh_lab

# Each orchestrator's runs alternate with runs of the limit on the same
# dockerds in the same state, so that drift (dockerds age as they run
# thousands of containers) does not favour either side.
limit_run() { # N LABEL
    record "$2 converge $1" "$(limit_converge "$1")"
    rm_all_containers
}

log "Swarm mode"
sw_init
for run in $(seq 1 "$RUNS"); do
    for n in $SIZES; do
        limit_run "$n" "limit (swarm phase)"
        record "swarm converge $n" "$(sw_converge "$n")"
        sw_remove
    done
    record "swarm host loss" "$(sw_host_loss)"
    record "swarm rolling update" "$(sw_rolling_update)"
    record "swarm leader loss" "$(sw_leader_loss)"
done
sw_leave
rm_all_containers

log "skiff"
"$LAB" cluster --managers 3 --workers 2
sleep 3
skiffd_memory() { # WHEN
    local h m=0 p=0 a=0
    for h in $HOSTS; do
        m=$(( m + $(rss_kb "$(skiffd_pid "$h")") ))
        p=$(( p + $(pss_kb "$(skiffd_pid "$h")") ))
        a=$(( a + $(anon_kb "$(skiffd_pid "$h")") ))
    done
    record "skiffd RSS $1 (KiB, 5 hosts)" "$m"
    record "skiffd PSS $1 (KiB, 5 hosts)" "$p"
    record "skiffd anon $1 (KiB, 5 hosts)" "$a"
}
skiffd_memory idle
skiff_converge 100 >/dev/null
sleep 5
skiffd_memory "at 100 tasks"
skiff_remove
for run in $(seq 1 "$RUNS"); do
    for n in $SIZES; do
        limit_run "$n" "limit (skiff phase)"
        record "skiff converge $n" "$(skiff_converge "$n")"
        skiff_remove
    done
    record "skiff host loss" "$(skiff_host_loss)"
    record "skiff rolling update" "$(skiff_rolling_update)"
    record "skiff leader loss" "$(skiff_leader_loss)"
done

# ---- report --------------------------------------------------------------
ratio() { # A B -> A/B with 2 decimals, "-" if unknown
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'
}
printf '\n%s, %d run(s) each, medians (ms)\n\n' "$(date -u +%FT%TZ)" "$RUNS"
# "limit" is the limit measured alongside skiff; Swarm's own limit (measured
# alongside Swarm) and Swarm's ratio to it follow in the last two columns.
printf '%-28s %10s %10s %10s %12s %12s %12s %12s\n' figure skiff swarm limit skiff/swarm skiff/limit "limit(sw)" swarm/limit
for n in $SIZES; do
    s=$(median "${R[skiff converge $n]:-}")
    w=$(median "${R[swarm converge $n]:-}")
    l=$(median "${R[limit (skiff phase) converge $n]:-}")
    lw=$(median "${R[limit (swarm phase) converge $n]:-}")
    printf '%-28s %10s %10s %10s %12s %12s %12s %12s\n' "converge $n replicas" "$s" "$w" "$l" "$(ratio "$s" "$w")" "$(ratio "$s" "$l")" "$lw" "$(ratio "$w" "$lw")"
done
s=$(median "${R[skiff host loss]:-}"); w=$(median "${R[swarm host loss]:-}")
printf '%-28s %10s %10s %10s %12s %12s\n' "worker cut -> all back" "$s" "$w" - "$(ratio "$s" "$w")" -
s=$(median "${R[skiff leader loss]:-}"); w=$(median "${R[swarm leader loss]:-}")
printf '%-28s %10s %10s %10s %12s %12s\n' "leader cut -> write" "$s" "$w" - "$(ratio "$s" "$w")" -
s=$(median "${R[skiff rolling update]:-}"); w=$(median "${R[swarm rolling update]:-}")
printf '%-28s %10s %10s %10s %12s %12s\n' "rolling update of 20" "$s" "$w" - "$(ratio "$s" "$w")" -
per_host() { # KiB summed over the 5 hosts -> MiB per host
    awk -v k="$1" 'BEGIN { if (k == "-" || k == "") print "-"; else printf "%.1f", k / 5 / 1024 }'
}
minus() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "-"; else print a - b }'; }
m() { median "${R[$1]:-}"; }
# What Swarm itself costs at 100 tasks: dockerd's growth less what the same
# 100 containers cost a dockerd without Swarm (skiffd's figures hold no
# container cost: that stays in dockerd).
for what in RSS anon; do
    sw_init[$what]=$(m "swarm dockerd added $what at init (KiB, 5 hosts)")
    sw_100[$what]=$(minus "$(m "swarm dockerd added $what at 100 tasks (KiB, 5 hosts)")" \
                          "$(m "plain dockerd added $what at 100 containers (KiB, 5 hosts)")")
done
printf '\nmemory, MiB per host (mean of the 5)\n'
printf '  %-46s %8s %14s\n' "" idle "at 100 tasks"
for what in RSS PSS anon; do
    printf '  %-46s %8s %14s\n' "skiffd $what" "$(per_host "$(m "skiffd $what idle (KiB, 5 hosts)")")" \
        "$(per_host "$(m "skiffd $what at 100 tasks (KiB, 5 hosts)")")"
done
for what in RSS anon; do
    printf '  %-46s %8s %14s\n' "what Swarm adds to dockerd ($what)" \
        "$(per_host "${sw_init[$what]}")" "$(per_host "${sw_100[$what]}")"
done
# The libraries' floor: an empty process that loads and initialises them.
floor=$("${SKIFF_BUILD_DIR:-$SRC/build}/tests/lib_floor" 2>/dev/null || echo "rss - file - anon -")
printf '  %-46s %8s\n' "empty process on skiffd's libraries (RSS)" \
    "$(awk '{ if ($2 == "-") print "-"; else printf "%.1f", $2 / 1024 }' <<<"$floor")"
for what in RSS anon; do
    printf '  skiffd/Swarm %-4s %s idle, %s at 100 tasks\n' "$what" \
        "$(ratio "$(m "skiffd $what idle (KiB, 5 hosts)")" "${sw_init[$what]}")" \
        "$(ratio "$(m "skiffd $what at 100 tasks (KiB, 5 hosts)")" "${sw_100[$what]}")"
done
printf '\nsamples:\n'
for k in "${!R[@]}"; do printf '  %-52s %s\n' "$k" "${R[$k]}"; done | sort
