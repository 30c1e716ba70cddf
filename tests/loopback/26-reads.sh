#!/usr/bin/env bash
# What a client reads: its own writes on any manager (every reply carries
# the applied Raft index, the CLI sends the highest it has seen); a
# linearizable read (--consistent) from any manager; no read without a
# leader unless asked for (--stale); and a leader cut off from the others
# logs no change that never committed.
. "$(dirname "$0")/lib.sh"

init_cluster m1
join m2 manager
join m3 manager
must 20 "3 voters" voters_are 3
cred_files "$ADMIN" "$TEST_DIR/admin"
leader=$(leader_name)
followers=()
for n in m1 m2 m3; do [ "$n" = "$leader" ] || followers+=("$n"); done

# ---- read your writes: write through one manager, read at once through
# another, 40 times; every read sees the write just acknowledged ----
misses=0
for i in $(seq 1 40); do
    w=${followers[$((i % 2))]}
    r=${followers[$(((i + 1) % 2))]}
    sk_at "$w" node update --label-add "ryw=$i" m3 >/dev/null
    got=$(sk_at "$r" --format json node inspect m3 | jq -r '.[0].spec.labels.ryw')
    [ "$got" = "$i" ] || misses=$((misses + 1))
done
eq "$misses" 0 "reads that missed the write just acknowledged (of 40, through two followers)"
# The index travels in the replies.
idx=$(curl -sk -D - -o /dev/null --cert "$TEST_DIR/admin-cert.pem" --key "$TEST_DIR/admin-key.pem" \
    "https://$(api "${followers[0]}")/v1/nodes" 2>/dev/null | tr -d '\r' |
    awk -F': ' 'tolower($1) == "x-skiff-index" {print $2}') || true
[ -n "$idx" ] && [ "$idx" -gt 0 ] || fail "no X-Skiff-Index in a reply: \"$idx\""
ok "read your writes: 40 of 40 label writes seen by the next read through the other follower; replies carry X-Skiff-Index ($idx)"

# A manager asked for an index it has not applied waits, then says so.
r=$(https GET "https://$(api "${followers[0]}")/v1/nodes" "$TEST_DIR/admin" "" "X-Skiff-Min-Index: 99999999")
eq "${r%% *}" 503 "a read for an index far ahead: HTTP status"
contains "$r" "this manager is behind" "a read for an index far ahead"
r=$(https GET "https://$(api "${followers[0]}")/v1/nodes" "$TEST_DIR/admin" "" "X-Skiff-Min-Index: ten")
eq "${r%% *}" 400 "a malformed X-Skiff-Min-Index: HTTP status"
ok "a manager behind the index asked for answers 503 after its bound; a malformed index is 400"

# ---- linearizable reads from a follower ----
for i in 1 2 3; do
    sk_at "${followers[0]}" node update --label-add "lin=$i" m2 >/dev/null
    eq "$(sk_at "${followers[1]}" --consistent --format json node inspect m2 | jq -r '.[0].spec.labels.lin')" \
        "$i" "a --consistent read through ${followers[1]}"
done
ok "--consistent reads through a follower see the last write"

# ---- no leader: reads refused unless --stale; nothing logged that did
# not commit ----
for n in "${followers[@]}"; do kill -STOP "$(pid "$n")"; done
resume() { for n in "${followers[@]}"; do kill -CONT "$(pid "$n")" 2>/dev/null || true; done; }
trap 'rc=$?; resume; (exit $rc); cleanup' EXIT
# The leader cannot commit: the create fails (or times out), and its log
# must not claim the service was created.
SK_TIMEOUT=3s sk_at "$leader" service create --name iso1 --replicas 0 busybox >/dev/null 2>&1 || true
if grep -q "service iso1 created" "$TEST_DIR/$leader.log"; then
    fail "the isolated leader logged a create that did not commit"
fi
no_leader() {
    local r
    r=$(https GET "https://$(api "$leader")/v1/nodes" "$TEST_DIR/admin" "")
    [ "${r%% *}" = 503 ] && [[ $r == *"no leader"* ]]
}
must 15 "$leader refuses reads with no leader" no_leader
out=$(SK_TIMEOUT=3s sk_at "$leader" --stale node ls) || fail "--stale read refused: $out"
contains "$out" "m3" "a --stale read with no leader"
if grep -q "service iso1 created" "$TEST_DIR/$leader.log"; then
    fail "the isolated leader logged a create that did not commit"
fi
resume
must 15 "reads served again once the others are back" eval 'sk_at "$leader" node ls >/dev/null'
ok "with no leader known: reads refused (503 \"no leader\"), --stale reads served; the cut-off leader logged no uncommitted create"
