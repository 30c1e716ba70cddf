#!/usr/bin/env bash
# Raft write benchmark on loopback (run by hand, not in CI):
#
#   tests/bench/raft-bench.sh            (build first: ninja -C build)
#   BENCH_DURATION=10s tests/bench/raft-bench.sh
#
# Three managers on 127.X.Y.1-3 (the loopback tests' helpers: own temporary
# dir, everything killed and removed at exit). Prints:
#   - write throughput and p50/p99 commit latency (a node label update, POST
#     /v1/nodes/ID/update without version, acknowledged once committed and
#     applied), with 1 client and with 64 concurrent clients, through the
#     leader and through a follower (which forwards to the leader);
#   - leader loss to accepted write: kill -9 of the leader, then one write at
#     a time through a survivor until one is accepted; median of 3;
#   - each manager's RSS (VmRSS) idle and after the load.
. "$(dirname "$0")/../loopback/lib.sh"

LOAD=$BUILD_DIR/tests/raft_load
[ -x "$LOAD" ] || { echo "$LOAD not built (ninja -C $BUILD_DIR)" >&2; exit 1; }
DURATION=${BENCH_DURATION:-5s}
TRIALS=3

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$(pid "$1")/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
commit_index() { sk_at "$1" --format json cluster info | jq .raft.commit_index; }

log "3 managers on $PREFIX.1-3; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
init_cluster m1
join m2 manager
join m3 manager
must 20 "3 voters" voters_are 3
must 10 "3 ready nodes" eval '[ "$(nodes_json | jq "[.[] | select(.status.state == \"ready\")] | length")" = 3 ]'

# Idle: the cluster formed, heartbeats flowing; let it settle.
sleep 3
declare -A RSS_IDLE RSS_LOAD
for n in m1 m2 m3; do RSS_IDLE[$n]=$(rss_kb "$n"); done

leader=$(leader_name)
follower=
for n in m1 m2 m3; do [ "$n" = "$leader" ] || { follower=$n; break; }; done
log "leader $leader, follower $follower; each run: ${DURATION} after 500 ms of warmup"

rows=()
for via in leader follower; do
    target=$([ $via = leader ] && echo "$leader" || echo "$follower")
    for clients in 1 64; do
        before=$(commit_index "$leader")
        out=$("$LOAD" --config "$ADMIN" --host "$(api "$target")" --clients "$clients" \
            --duration "$DURATION") || fail "raft_load via $via with $clients clients: $out"
        after=$(commit_index "$leader")
        log "via $via ($target), $clients clients: $out"
        rows+=("$(jq -r --arg via "$via ($target)" --arg entries $(( after - before )) \
            '[$via, .clients, .ok, .errors, (.writes_per_s | floor), .p50_ms, .p90_ms, .p99_ms, .max_ms, $entries]
             | @tsv' <<<"$out")")
    done
done
for n in m1 m2 m3; do RSS_LOAD[$n]=$(rss_kb "$n"); done
roles=()
for n in m1 m2 m3; do
    roles+=("$n$([ "$n" = "$leader" ] && echo ' (leader)' || true)")
done

# ---- leader loss to accepted write ----
failovers=()
for trial in $(seq "$TRIALS"); do
    old=$(leader_name)
    survivor=
    for n in m1 m2 m3; do [ "$n" = "$old" ] || { survivor=$n; break; }; done
    t0=$(now_ms)
    kill9 "$old"
    probe=$("$LOAD" --config "$ADMIN" --host "$(api "$survivor")" --until-ok 10s --label failover) ||
        fail "no write accepted through $survivor within 10 s: $probe"
    ms=$(elapsed_ms "$t0")
    failovers+=("$ms")
    log "trial $trial: killed leader $old; write through $survivor accepted after $ms ms ($probe)"
    start "$old"
    must 20 "$old back as a voter" voters_are 3
    must 20 "$old serves its API" healthy "$(api "$old")"
    must 20 "$old caught up" eval "[ \"\$(commit_index $old)\" -ge \"\$(commit_index $survivor)\" ]"
    must 20 "all 3 ready" eval '[ "$(nodes_json | jq "[.[] | select(.status.state == \"ready\")] | length")" = 3 ]'
done
median=$(printf '%s\n' "${failovers[@]}" | sort -n | sed -n "$(( (TRIALS + 1) / 2 ))p")

# ---- report ----
{
    echo
    echo "Raft write benchmark: 3 managers on loopback, $(nproc) CPUs, $(uname -r)"
    echo "write = node label update (POST /v1/nodes/ID/update, no version), round-robin over 3 nodes;"
    echo "latency = request sent -> reply (committed and applied on the leader); ${DURATION} per run"
    echo
    printf '%-16s %7s %7s %6s %9s %8s %8s %8s %8s %8s\n' target clients writes errors writes/s \
        "p50 ms" "p90 ms" "p99 ms" "max ms" entries
    for r in "${rows[@]}"; do
        IFS=$'\t' read -r via c okn err tput p50 p90 p99 max entries <<<"$r"
        printf '%-16s %7s %7s %6s %9s %8.2f %8.2f %8.2f %8.2f %8s\n' "$via" "$c" "$okn" "$err" "$tput" \
            "$p50" "$p90" "$p99" "$max" "$entries"
    done
    echo "(entries: Raft commit index advance during the run, incl. heartbeats' status writes)"
    echo
    echo "leader loss (kill -9) -> write accepted through a survivor: ${failovers[*]} ms; median $median ms"
    echo
    printf '%-14s %12s %16s\n' manager "idle RSS" "RSS after load"
    i=0
    for n in m1 m2 m3; do
        printf '%-14s %8s MiB %12s MiB\n' "${roles[$i]}" "$(mib "${RSS_IDLE[$n]}")" "$(mib "${RSS_LOAD[$n]}")"
        i=$(( i + 1 ))
    done
}
