#!/usr/bin/env bash
# Membership: demote a manager (it keeps running as a worker) and promote it
# back; a demotion that would break quorum is refused; `node rm` of a ready
# node needs --force, a down node goes without; a removed node's certificate
# is refused from then on.
. "$(dirname "$0")/lib.sh"

init_cluster m1
join m2 manager
join m3 manager
join w1 worker
must 20 "3 voters" voters_are 3
leader=$(leader_name)
followers=()
for n in m1 m2 m3; do [ "$n" = "$leader" ] || followers+=("$n"); done
a=${followers[0]} b=${followers[1]}
ok "cluster of 3 managers (leader $leader) and worker w1"

# ---- demote and promote ----
pid_before=$(pid "$b")
t0=$(now_ms)
out=$(sk node demote "$b")
contains "$out" "node $b demoted" "demote output"
must 15 "2 voters after demoting $b" voters_are 2
must 15 "$b's node.json says worker" eval "[ \"\$(jq -r .role '$(dir "$b")/node.json')\" = worker ]"
must 15 "$b ready as a worker" eval "role_is $b worker && node_is $b ready"
demote_ms=$(elapsed_ms "$t0")
alive "$pid_before" || fail "$b's skiffd (pid $pid_before) is gone after the demotion"
eq "$(node_field "$b" .manager_status)" "" "$b's manager status after the demotion"
eq "$(cluster_json | jq -c '[.managers[].name] | sort')" "$(printf '%s\n' "$leader" "$a" | sort | jq -R . | jq -sc .)" \
    "managers after the demotion"
must 10 "$b's raft dir removed" eval "[ ! -e '$(dir "$b")/raft' ]"
must 10 "$b no longer serves the manager API" eval "! healthy $(api "$b")"
expect_fail "the CLI against demoted $b" sk_at "$b" node ls
# The CLI skips it when it is one of several hosts.
SK_HOSTS=$(api "$b"),$(api "$leader") node_is "$b" ready || fail "the CLI did not fail over from demoted $b"
ok "demote $b: 2 voters after $demote_ms ms; $b keeps running (pid $pid_before) as a ready worker, raft dir gone, no manager API"

t0=$(now_ms)
out=$(sk node promote "$b")
contains "$out" "node $b promoted" "promote output"
must 20 "3 voters after promoting $b" voters_are 3
must 15 "$b's node.json says manager" eval "[ \"\$(jq -r .role '$(dir "$b")/node.json')\" = manager ]"
must 15 "$b serves the manager API" healthy "$(api "$b")"
must 15 "$b ready as a manager" eval "role_is $b manager && node_is $b ready"
promote_ms=$(elapsed_ms "$t0")
eq "$(pid "$b")" "$pid_before" "$b's pid"
alive "$pid_before" || fail "$b's skiffd is gone after the promotion"
# Its own store is the cluster's: the label written now is served by it.
sk node update --label-add promoted=yes "$b" >/dev/null
must 10 "$b serves the new label through its own API" has_label "$b" promoted yes "$b"
ok "promote $b: 3 voters again after $promote_ms ms; $b serves the API and the current state"

# Promoting a manager, demoting a worker: nothing to do, said so.
contains "$(sk node promote "$a")" "node is already a manager" "promote of a manager"
contains "$(sk node demote w1)" "node is already a worker" "demote of a worker"

# ---- a demotion that would break quorum ----
# a hangs (SIGSTOP): the leader calls it down after 3 missed heartbeats.
kill -STOP "$(pid "$a")"
t0=$(now_ms)
must 10 "$a down while stopped" eval "SK_HOSTS=$(api "$leader") node_is $a down"
log "$a (SIGSTOP) called down after $(elapsed_ms "$t0") ms"
expect_fail "demoting $b while $a is down" env SKIFF_CONFIG="$ADMIN" "$SKIFF" --host "$(api "$leader")" node demote "$b"
contains "$OUT" "demoting \"$b\" would leave 1 of 2 managers reachable: no quorum" "refused demotion"
eq "$(SK_HOSTS=$(api "$leader") voters)" 3 "voters after the refused demotion"
eq "$(SK_HOSTS=$(api "$leader") node_field "$b" .spec.role)" manager "$b's role after the refused demotion"
kill -CONT "$(pid "$a")"
must 10 "$a ready again after SIGCONT" node_is "$a" ready
ok "demoting $b while $a is down (SIGSTOP) is refused: \"would leave 1 of 2 managers reachable: no quorum\"; 3 voters kept"

# ---- node rm ----
expect_fail "rm of ready w1 without --force" sk node rm w1
contains "$OUT" "node \"w1\" is ready: stop skiffd on it first, or use --force" "rm of a ready node"
expect_fail "rm of manager $a" sk node rm --force "$a"
contains "$OUT" "node \"$a\" is a manager: demote it first" "rm of a manager"
eq "$(node_count)" 4 "nodes after the refused removals"
ok "rm of a ready node without --force refused (\"is ready: ... use --force\"); rm of a manager refused (\"demote it first\")"

cred_files "$(dir w1)/node.json" "$TEST_DIR/w1"
w1_id=$(node_field w1 .id)
r=$(https POST "https://$(api "$leader")/v1/node/heartbeat" "$TEST_DIR/w1" '{}')
eq "${r%% *}" 200 "w1's own heartbeat before removal"
# Through a follower: the query (?force=1) must survive the forwarding.
SK_HOSTS=$(api "$a") sk node rm --force w1 >/dev/null || fail "rm --force of w1 through follower $a refused"
must 10 "w1 gone from node ls" eval '[ "$(node_count)" = 3 ]'
# Its agent is refused from now on (and does not re-register).
must 10 "w1's agent refused" grep -q "refused this node: node $w1_id is not a member" "$TEST_DIR/w1.log"
for n in "$leader" "$a" "$b"; do
    r=$(https POST "https://$(api "$n")/v1/node/heartbeat" "$TEST_DIR/w1" '{}')
    eq "${r%% *}" 403 "removed w1's heartbeat on $n: HTTP status"
    contains "$r" "node $w1_id is not a member of this cluster" "removed w1's heartbeat on $n"
    r=$(https POST "https://$(api "$n")/v1/node/certificate" "$TEST_DIR/w1" '{"csr":"x"}')
    eq "${r%% *}" 403 "removed w1's certificate request on $n: HTTP status"
done
eq "$(nodes_json | jq '[.[] | select(.spec.name == "w1")] | length')" 0 "w1 in node ls after its agent retried"
stop w1
ok "rm --force of ready w1: removed; its certificate is refused by every manager (403 \"not a member of this cluster\")"

# A node that stopped (SIGTERM: it says it leaves) goes without --force.
join w2 worker
stop w2
must 10 "w2 no longer ready" eval '! node_is w2 ready'
sk node rm w2 >/dev/null || fail "rm of stopped w2 refused"
eq "$(nodes_json | jq -c '[.[].spec.name] | sort')" '["m1","m2","m3"]' "nodes at the end"
ok "rm of a stopped node needs no --force; 3 managers left, $(voters) voters"
