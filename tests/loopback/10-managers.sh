#!/usr/bin/env bash
# Three managers on loopback: they form one cluster with three voters and one
# leader; kill -9 of the leader gives a new leader and an accepted write in
# under 3 s; the killed manager, restarted, catches up; the leader stopped
# with SIGTERM hands leadership over first; all three stopped (SIGTERM) and
# started again keep the state.
. "$(dirname "$0")/lib.sh"

FAILOVER_LIMIT_MS=3000

init_cluster m1
join m2 manager
join m3 manager
must 20 "3 voters" voters_are 3

# Exactly one leader, and every manager agrees on who it is.
leaders=0
for n in m1 m2 m3; do
    if is_leader "$(api "$n")" >/dev/null; then leaders=$(( leaders + 1 )); fi
done
eq "$leaders" 1 "managers that say they lead"
leader=$(leader_name)
for n in m1 m2 m3; do
    eq "$(sk_at "$n" --format json cluster info | jq -r .leader.name)" "$leader" "leader seen by $n"
done
eq "$(cluster_json | jq '[.managers[] | select(.status == "leader")] | length')" 1 "managers listed as leader"
eq "$(node_count)" 3 "node count"
cluster_id=$(cluster_json | jq -r .id)
ok "3 managers form cluster $cluster_id: 3 voters, one leader ($leader)"

# ---- kill -9 of the leader ----
others=()
for n in m1 m2 m3; do [ "$n" = "$leader" ] || others+=("$n"); done
via=${others[0]}
t0=$(now_ms)
kill9 "$leader"
# One write attempt through a surviving manager; the CLI's own timeout is
# short so that a stuck attempt does not hide a quick recovery.
write_ok() { SK_TIMEOUT=2s sk_at "$via" node update --label-add failover=accepted "$via"; }
wait_for 10 write_ok || fail "no write accepted through $via within 10 s of killing the leader"
failover_ms=$(elapsed_ms "$t0")
new_leader=$(SK_HOSTS=$(api "$via") leader_name)
[ -n "$new_leader" ] && [ "$new_leader" != "$leader" ] ||
    fail "leader after the kill is \"$new_leader\" (was $leader)"
log "leader $leader killed; $new_leader leads; write through $via accepted after $failover_ms ms"
[ "$failover_ms" -lt "$FAILOVER_LIMIT_MS" ] ||
    fail "leader loss to accepted write took $failover_ms ms (limit $FAILOVER_LIMIT_MS ms)"
ok "kill -9 of leader $leader: new leader $new_leader, write accepted through $via in $failover_ms ms (< $FAILOVER_LIMIT_MS)"

# ---- the killed manager restarts and catches up ----
t0=$(now_ms)
start "$leader"
must 20 "$leader serves the label written while it was dead (through its own API)" \
    has_label "$via" failover accepted "$leader"
catchup_ms=$(elapsed_ms "$t0")
must 15 "$leader ready again" node_is "$leader" ready
must 15 "3 voters after the restart" voters_are 3
ok "restarted $leader caught up: label visible through its own API after $catchup_ms ms; 3 voters"

# A write through the restarted manager (a follower now) is forwarded and
# lands everywhere.
sk_at "$leader" node update --label-add written-via="$leader" "${others[1]}" >/dev/null ||
    fail "write through restarted $leader refused"
for n in m1 m2 m3; do
    must 10 "label written via $leader visible through $n" has_label "${others[1]}" written-via "$leader" "$n"
done
ok "write through the restarted $leader is forwarded and visible on all 3 managers"

# ---- SIGTERM of the leader: it hands leadership over first ----
leader=$(leader_name)
mapfile -t others < <(printf '%s\n' m1 m2 m3 | grep -vx "$leader")
t0=$(now_ms)
stop "$leader"
stop_ms=$(elapsed_ms "$t0")
grep -q "handing leadership over before stopping" "$TEST_DIR/$leader.log" ||
    fail "$leader did not hand leadership over when stopped"
if grep -q "leadership handover:" "$TEST_DIR/$leader.log"; then
    fail "leadership handover of $leader failed: $(grep "leadership handover:" "$TEST_DIR/$leader.log" | tail -1)"
fi
SK_HOSTS="$(api "${others[0]}"),$(api "${others[1]}")"
write_via_others() { SK_HOSTS="$SK_HOSTS" sk node update --label-add handover=yes "${others[0]}"; }
wait_for 5 write_via_others || fail "no write accepted within 5 s of stopping leader $leader"
handover_ms=$(elapsed_ms "$t0")
new_leader=$(SK_HOSTS="$SK_HOSTS" leader_name)
[ -n "$new_leader" ] && [ "$new_leader" != "$leader" ] ||
    fail "leader after stopping $leader is \"$new_leader\""
ok "SIGTERM of leader $leader: handed over to $new_leader, exit 0 in $stop_ms ms, write accepted after $handover_ms ms"
start "$leader"
must 15 "$leader ready again after its stop" node_is "$leader" ready
must 15 "3 voters after $leader's restart" voters_are 3

# ---- full stop and start ----
sk node update --label-add zone=a m1 >/dev/null
sk node update --label-add zone=b m2 >/dev/null
sk node update --label-add zone=c m3 >/dev/null
must 10 "labels visible through every manager" eval \
    '[ "$(node_field m3 .spec.labels.zone m1)" = c ] && [ "$(node_field m1 .spec.labels.zone m3)" = a ]'
before=$(nodes_json | jq -c '[.[] | {id, name: .spec.name, role: .spec.role, labels: .spec.labels}] | sort_by(.name)')
# The leader goes last. The second manager to stop leaves the leader and
# itself, a bare quorum: its leave must still be recorded (its agent leaves
# before its own Raft stops), so the leader shows it disconnected, not down.
last=$(leader_name)
[ -n "$last" ] || fail "no leader before the full stop"
t0=$(now_ms)
followers=()
for n in m1 m2 m3; do [ "$n" = "$last" ] || followers+=("$n"); done
for n in "${followers[@]}"; do stop "$n"; done
eq "$(node_field "${followers[1]}" .status.state "$last")" disconnected \
    "${followers[1]} as $last sees it after its stop"
stop "$last"
log "all 3 managers stopped with SIGTERM (exit 0) in $(elapsed_ms "$t0") ms, leader $last last"
ok "${followers[1]}, stopped with a bare quorum left, is recorded as disconnected"

t0=$(now_ms)
for n in m1 m2 m3; do start "$n"; done
must 20 "a leader after the full restart" eval '[ -n "$(leader_name)" ]'
restart_ms=$(elapsed_ms "$t0")
must 20 "3 voters after the full restart" voters_are 3
must 20 "all 3 nodes ready after the full restart" eval \
    '[ "$(nodes_json | jq "[.[] | select(.status.state == \"ready\")] | length")" = 3 ]'
eq "$(cluster_json | jq -r .id)" "$cluster_id" "cluster ID after the full restart"
after=$(nodes_json | jq -c '[.[] | {id, name: .spec.name, role: .spec.role, labels: .spec.labels}] | sort_by(.name)')
eq "$after" "$before" "nodes (IDs, roles, labels) after the full restart"
for n in m1 m2 m3; do
    # Each manager serves the same state from its own store.
    eq "$(sk_at "$n" --format json node ls | jq -c '[.[] | {id, name: .spec.name, role: .spec.role, labels: .spec.labels}] | sort_by(.name)')" \
        "$before" "nodes as served by $n"
done
ok "all 3 stopped (SIGTERM) and started: leader after $restart_ms ms; cluster ID, 3 nodes, roles and labels intact on every manager"

# A write after the restart.
sk node update --label-add after-restart=yes m1 >/dev/null || fail "write after the full restart refused"
ok "write accepted after the full restart"
