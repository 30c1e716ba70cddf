#!/usr/bin/env bash
# Quorum loss: kill -9 two of three managers; the survivor cannot write.
# Restarted with --force-new-cluster it leads alone with the state it had; the
# other two come back as workers and can be promoted again.
. "$(dirname "$0")/lib.sh"

init_cluster m1
join m2 manager
join m3 manager
must 20 "3 voters" voters_are 3
for n in m1 m2 m3; do sk node update --label-add "name=$n-label" "$n" >/dev/null; done
must 10 "labels everywhere" eval '[ "$(node_field m3 .spec.labels.name m1)" = m3-label ] && [ "$(node_field m1 .spec.labels.name m3)" = m1-label ]'
cluster_id=$(cluster_json | jq -r .id)
state=$(nodes_json | jq -c '[.[] | {id, name: .spec.name, labels: .spec.labels}] | sort_by(.name)')
leader=$(leader_name)
# The survivor is a follower, so that the leader is among the dead.
dead=("$leader")
for n in m1 m2 m3; do
    [ "$n" = "$leader" ] && continue
    if [ -z "${survivor:-}" ]; then survivor=$n; else dead+=("$n"); fi
done
ok "cluster $cluster_id: 3 voters, leader $leader; labels on every node"

# ---- quorum loss ----
for n in "${dead[@]}"; do kill9 "$n"; done
expect_fail "a write on $survivor without quorum" env SKIFF_CONFIG="$ADMIN" "$SKIFF" --timeout 3s \
    --host "$(api "$survivor")" node update --label-add lost=yes "$survivor"
log "write without quorum refused: $OUT"
ok "kill -9 of ${dead[*]}: the write through $survivor is refused (no quorum)"

stop "$survivor"
t0=$(now_ms)
start "$survivor" --force-new-cluster
must 15 "$survivor leads alone" is_leader "$(api "$survivor")"
SK_HOSTS=$(api "$survivor")
export SK_HOSTS
write_ok() { SK_TIMEOUT=2s sk node update --label-add recovered=yes "$survivor"; }
must 10 "a write through $survivor" write_ok
force_ms=$(elapsed_ms "$t0")
eq "$(voters)" 1 "voters after --force-new-cluster"
eq "$(cluster_json | jq -r .leader.name)" "$survivor" "leader after --force-new-cluster"
eq "$(cluster_json | jq -r .id)" "$cluster_id" "cluster ID after --force-new-cluster"
eq "$(nodes_json | jq -c '[.[] | {id, name: .spec.name, labels: (.spec.labels | del(.recovered))}] | sort_by(.name)')" \
    "$state" "nodes and labels after --force-new-cluster"
for n in "${dead[@]}"; do
    eq "$(node_field "$n" .spec.role)" worker "$n's role after --force-new-cluster"
done
ok "$survivor restarted with --force-new-cluster: leads alone (1 voter), write accepted $force_ms ms after the start; cluster ID, nodes and labels kept; ${dead[*]} marked workers"

# ---- the other two come back as workers ----
t0=$(now_ms)
for n in "${dead[@]}"; do start "$n"; done
for n in "${dead[@]}"; do
    must 20 "$n back and ready" node_is "$n" ready
    must 15 "$n's node.json says worker" eval "[ \"\$(jq -r .role '$(dir "$n")/node.json')\" = worker ]"
    must 10 "$n's raft dir removed" eval "[ ! -e '$(dir "$n")/raft' ]"
    eq "$(nodes_json | jq -r --arg n "$n" '.[] | select(.spec.name == $n) | .spec.role')" worker "$n's role in node ls"
done
eq "$(voters)" 1 "voters with ${dead[*]} back"
eq "$(cluster_json | jq -r .leader.name)" "$survivor" "leader with ${dead[*]} back"
ok "${dead[*]} restarted: back as ready workers after $(elapsed_ms "$t0") ms (node ls role worker, raft dir gone); $survivor still leads alone"

# ---- and can be promoted again ----
t0=$(now_ms)
for n in "${dead[@]}"; do sk node promote "$n" >/dev/null; done
must 30 "3 voters after promoting ${dead[*]}" voters_are 3
for n in "${dead[@]}"; do
    must 15 "$n serves the manager API" healthy "$(api "$n")"
    must 15 "$n ready as manager" eval "role_is $n manager && node_is $n ready"
done
promote_ms=$(elapsed_ms "$t0")
unset SK_HOSTS
MANAGERS=(m1 m2 m3)
sk node update --label-add after=promote m1 >/dev/null || fail "write after the promotions refused"
for n in m1 m2 m3; do
    must 10 "state on $n" eval "[ \"\$(node_field m1 .spec.labels.after $n)\" = promote ] && [ \"\$(node_field $survivor .spec.labels.recovered $n)\" = yes ]"
done
eq "$(sk_at "${dead[0]}" --format json node ls | jq -c '[.[] | {id, name: .spec.name, labels: (.spec.labels | del(.recovered) | del(.after))}] | sort_by(.name)')" \
    "$state" "nodes and labels served by ${dead[0]}"
ok "${dead[*]} promoted again: 3 voters after $promote_ms ms; every manager serves the same state"
