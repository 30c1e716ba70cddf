#!/usr/bin/env bash
# The checker knows which reads claim to be linearizable. A manager cut off
# from the others keeps answering plain reads (without ?consistent=1) from
# its own, now stale, store: skiff allows that, and the checker must accept
# them as plain reads -- and must report an anomaly when the very same
# history claims those reads were linearizable.
#
# 3 managers; clients write through two of them and read through the third
# only, without consistent=1, for 8 s; that third one, a follower, is cut
# off from the other two as soon as the registers have reached it.
#
# Needs root, iptables and cgroup2 for the cut (tests/chaos/lib.sh); skips
# (exit 77) without.
. "$(dirname "$0")/lib.sh"

[ "$PARTITIONS" = 1 ] || { log "skipped: partitions need root, iptables and a cgroup2 mount"; exit 77; }

fresh_cluster 3
leader=$(current_leader)
[ -n "$leader" ] || fail "no leader"
stale= others=()
for n in "${MANAGERS[@]}"; do
    if [ "$n" != "$leader" ] && [ -z "$stale" ]; then stale=$n; else others+=("$n"); fi
done
HIST=$TEST_DIR/stale.jsonl
"$CLIENT" --config "$ADMIN" --hosts "$(api "${others[0]}"),$(api "${others[1]}")" \
    --read-host "$(api "$stale")" --plain-percent 100 --workload cas --registers 2 \
    --clients 4 --duration 8s --out "$HIST" 2>"$TEST_DIR/client.log" &
client=$!
# Once the registers have reached it, cut the follower off.
has_registers() { sk_at "$stale" service inspect chaos-r0 chaos-r1; }
must 10 "the registers replicated to $stale" has_registers
log "leader $leader; cutting $stale off from ${others[*]}"
for n in "${others[@]}"; do sever "$stale" "$n"; done
wait "$client" || fail "chaos_client: $(cat "$TEST_DIR/client.log")"
heal_partitions
must 30 "every manager healthy after healing" all_healthy

# The stale manager answered plain reads all along, and some of them were
# stale: a value older than one already acknowledged.
plain_ok=$(jq -s '[.[] | select(.op == "read_plain" and .type == "ok")] | length' "$HIST")
[ "$plain_ok" -gt 10 ] || fail "only $plain_ok plain reads answered by $stale"
writes_ok=$(jq -s '[.[] | select((.op == "write" or .op == "cas") and .type == "ok")] | length' "$HIST")
[ "$writes_ok" -gt 10 ] || fail "only $writes_ok writes acknowledged by ${others[*]}"
log "$plain_ok plain reads via $stale, $writes_ok writes acknowledged via ${others[*]}"

out=$("$CHECK" "$HIST") || fail "the honest history is reported as anomalous: $out"
contains "$(head -n 1 <<<"$out")" "anomalies=0 verdict=ok" "chaos_check of the honest history"
ok "plain reads from a cut-off manager: stale, allowed, accepted ($(head -n 1 <<<"$out"))"

sed 's/"op":"read_plain"/"op":"read"/g' "$HIST" >"$TEST_DIR/claimed.jsonl"
rc=0
out=$("$CHECK" "$TEST_DIR/claimed.jsonl") || rc=$?
eq "$rc" 1 "chaos_check exit status on the same reads claimed linearizable"
contains "$out" "not linearizable" "chaos_check of the reads claimed linearizable"
ok "the same reads claimed linearizable: anomaly found ($(head -n 1 <<<"$out"))"
log "$(sed -n '2,14p' <<<"$out")"
