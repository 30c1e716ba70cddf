#!/usr/bin/env bash
# Issue 14, item 5 (and 15.9): a join flood. About 1,000 join attempts per
# second with a wrong secret, for 10 s, from ten other addresses, at the
# leader's API. Agents' heartbeats must stay on time (no node goes down or
# unknown; a heartbeat probe with a worker's certificate keeps its round
# trip), and the leader's log must summarise the refusals instead of one
# line per attempt. Prints the bench line for issue 14.5.
. "$(dirname "$0")/lib.sh"
FLOOD=$SRC_DIR/tests/tools/flood.py
FLOOD_S=10
RATE=1000
MAX_LOG_LINES=60

init_cluster m1
join m2 manager
join m3 manager
join w1 worker
join w2 worker
must 20 "3 voters" voters_are 3
leader=$(leader_name)
[ "$leader" = m1 ] || fail "m1 should lead the cluster it made (leader: $leader)"
all_ready() { [ "$(nodes_json | jq '[.[] | select(.status.state != "ready")] | length')" = 0 ]; }
must 10 "every node ready" all_ready
cred_files "$(dir w1)/node.json" "$TEST_DIR/w1"
probe() { # SECONDS OUT
    python3 "$FLOOD" probe --target "$(api m1)" --ca "$TEST_DIR/w1-ca.pem" --cert "$TEST_DIR/w1-cert.pem" \
        --key "$TEST_DIR/w1-key.pem" --period 0.25 --duration "$1" >"$2"
}
probe 3 "$TEST_DIR/probe-before.json"
log "heartbeat probe before the flood: $(cat "$TEST_DIR/probe-before.json")"

token=$(sk join-token -q worker)
bad_token=${token%-*}-aaaaaaaaaaaaaaaaaaaaaaaaaa
log_before=$(wc -l <"$TEST_DIR/m1.log")
# Two processes (one is short of CPU for 1,000 TLS handshakes a second),
# five addresses each.
flood_pids=()
for i in 0 1; do
    python3 "$FLOOD" join --target "$(api m1)" --sources "$PREFIX.10$(( 5 * i ))-10$(( 5 * i + 4 ))" \
        --rate $(( RATE / 2 )) --conns 20 --token "$bad_token" --duration "$FLOOD_S" \
        --ready "$TEST_DIR/join.ready" >"$TEST_DIR/join$i.out" 2>&1 &
    flood_pids+=($!)
done
probe "$FLOOD_S" "$TEST_DIR/probe-during.json" &
probe_pid=$!
# The nodes, as the leader sees them, every 2 s of the flood.
not_ready=0
for _ in $(seq $(( FLOOD_S / 2 ))); do
    sleep 2
    n=$(SK_TIMEOUT=5s sk_at m1 --format json node ls | jq '[.[] | select(.status.state != "ready")] | length') ||
        fail "node ls on the leader during the flood"
    not_ready=$(( not_ready + n ))
done
for i in 0 1; do
    wait "${flood_pids[$i]}" || fail "the flood tool failed: $(cat "$TEST_DIR/join$i.out")"
done
wait "$probe_pid" || fail "the probe failed"
log_lines=$(( $(wc -l <"$TEST_DIR/m1.log") - log_before ))
# The two reports as one.
flood=$(jq -cs '{sent: (map(.sent) | add), seconds: (map(.seconds) | max),
    status: (map(.status | to_entries) | add | group_by(.key) | map({key: .[0].key, value: (map(.value) | add)}) | from_entries),
    connects: (map(.connects) | add), errors: (map(.errors) | add)}' "$TEST_DIR"/join[01].out)
during=$(cat "$TEST_DIR/probe-during.json")
log "join flood: $flood"
log "heartbeat probe during the flood: $during"

# ---- heartbeats on time ----
eq "$not_ready" 0 "nodes not ready in the samples taken during the flood"
all_ready || fail "a node is not ready after the flood: $(sk node ls)"
if sed -n "$(( log_before + 1 )),\$p" "$TEST_DIR/m1.log" | grep -E "is (down|unknown|disconnected)"; then
    fail "the leader marked a node down during the join flood"
fi
eq "$(jq .errors <<<"$during")" 0 "failed heartbeat probes during the flood"
max_ms=$(jq '.max_ms | floor' <<<"$during")
[ "$max_ms" -lt 1000 ] || fail "a heartbeat took $max_ms ms during the flood (limit: 1000 ms, a third of the 3 s down-time)"
sent=$(jq .sent <<<"$flood")
[ "$sent" -ge $(( RATE * FLOOD_S / 2 )) ] || fail "the flood sent only $sent attempts (wanted about $(( RATE * FLOOD_S )))"
ok "5 nodes stayed ready under $sent join attempts in ${FLOOD_S} s; heartbeat round trip p99 $(jq .p99_ms <<<"$during") ms, max $max_ms ms"

# ---- the log summarises ----
[ "$log_lines" -le "$MAX_LOG_LINES" ] ||
    fail "the leader logged $log_lines lines during the flood (limit $MAX_LOG_LINES): $(sed -n "$(( log_before + 1 )),\$p" "$TEST_DIR/m1.log" | cut -c 25- | sed 's/[0-9]\+/N/g' | sort | uniq -c | sort -rn | head -5)"
must 15 "a summary of the refused joins" grep -q "refused \(joins\|connections\): [0-9]* more in the last 10 s" "$TEST_DIR/m1.log"
ok "the leader logged $log_lines lines for $sent refused attempts: $(grep -o "refused [a-z]*: [0-9]* more in the last 10 s ([^)]*)" "$TEST_DIR/m1.log" | head -2 | tr '\n' ';')"

printf 'bench: heartbeat round trip under %s join attempts/s (%s sent in %s s, statuses %s): p50 %s ms, p99 %s ms, max %s ms; before the flood p50 %s ms, p99 %s ms; nodes not ready: %s; leader log +%s lines\n' \
    "$RATE" "$sent" "$(jq .seconds <<<"$flood")" "$(jq -c .status <<<"$flood")" \
    "$(jq .p50_ms <<<"$during")" "$(jq .p99_ms <<<"$during")" "$(jq .max_ms <<<"$during")" \
    "$(jq .p50_ms "$TEST_DIR/probe-before.json")" "$(jq .p99_ms "$TEST_DIR/probe-before.json")" \
    "$not_ready" "$log_lines"
