#!/usr/bin/env bash
# The control plane on the lab (issue 3): a cluster of 3 managers and 2
# workers forms; a write is accepted soon after the leader's host is cut off;
# the healed manager catches up; bad tokens, foreign CAs, missing and worker
# certificates are refused with a clear message; demote and promote change
# the voters; after losing 2 of 3 managers, --force-new-cluster on the
# survivor brings the cluster back with its state, and later role changes of
# the survivor do not force again. All the while the data interfaces (eth1)
# carry nothing and the control interfaces (eth0) all of it. The lab is taken
# down also when a step fails.
. "$(dirname "$0")/lib.sh"

TMP=$(mktemp -d)
cleanup() {
    local rc=$?
    [ $rc = 0 ] || dump_skiffd_logs
    "$LAB" down >/dev/null 2>&1 || true
    rm -rf "$TMP"
    [ $rc = 0 ] || log "FAILED (lab taken down)"
}
trap cleanup EXIT

T0=$(now_ms)
MANAGERS="h1 h2 h3"
HOSTS="h1 h2 h3 h4 h5 h6"
# What eth1 may carry while only the control plane runs: with IPv6 off in the
# lab (lab up) an idle interface sends nothing, and 0 bytes were measured on
# every host; the bound leaves room for a few stray ARP frames (60 bytes).
DATA_BOUND=1024
# What eth0 must at least have sent on a host running skiffd for the whole
# test (measured: well over 100 KB on every host).
CONTROL_MIN=20000

sk() { "$LAB" skiff "$@"; }
api() { echo "$("$LAB" addr "$1"):7443"; }
# JSON through one manager (default: any manager in the admin credentials).
nodes_json() { sk ${1:+--host "$(api "$1")"} --timeout 3s --format json node ls; }
cluster_json() { sk ${1:+--host "$(api "$1")"} --timeout 3s --format json cluster info; }
node_field() { # NODE JQ-PATH [VIA]
    nodes_json "${3:-}" | jq -r --arg n "$1" ".[] | select(.spec.name == \$n) | $2"
}
count_nodes() { nodes_json "${1:-}" | jq length; }
voters() { cluster_json "${1:-}" | jq '[.managers[] | select(.raft_member == "voter")] | length'; }
test_voters() { [ "$(voters "${2:-}")" = "$1" ]; } # N [VIA]
leader_name() { cluster_json "${1:-}" | jq -r '.leader.name // empty'; }
all_ready() { # N [VIA]
    local nodes
    nodes=$(nodes_json "${2:-}") || return 1
    [ "$(jq length <<<"$nodes")" = "$1" ] &&
        [ "$(jq '[.[] | select(.status.state == "ready")] | length' <<<"$nodes")" = "$1" ]
}
# The role a host's skiffd saved in its data dir (it re-executes in it).
role_file_is() { [ "$(jq -r .role "/var/lib/skiff-lab/$1/skiff/node.json")" = "$2" ]; } # HOST ROLE
state_is() { # NODE STATE [VIA]
    [ "$(node_field "$1" .status.state "${3:-}")" = "$2" ]
}
eq() { # GOT WANT WHAT
    [ "$1" = "$2" ] || fail "$3: got \"$1\", want \"$2\""
}

# Interface counters before anything of skiff runs.
declare -A BASE=()
counters() { # prints "HOST eth0-rx eth0-tx eth1-rx eth1-tx" per host
    local h
    for h in $HOSTS; do
        echo "$h $(if_bytes "$h" eth0) $(if_bytes "$h" eth1)"
    done
}

"$LAB" down >/dev/null 2>&1 || true
"$LAB" up --hosts 6
while read -r h c_rx c_tx d_rx d_tx; do
    BASE[$h]="$c_rx $c_tx $d_rx $d_tx"
done < <(counters)

# ---- a cluster of 3 managers and 2 workers -------------------------------
t0=$(now_ms)
"$LAB" cluster --managers 3 --workers 2
log "lab cluster --managers 3 --workers 2: ready after $(elapsed_ms "$t0") ms"
nodes=$(nodes_json)
eq "$(jq length <<<"$nodes")" 5 "nodes"
eq "$(jq '[.[] | select(.spec.role == "manager")] | length' <<<"$nodes")" 3 "managers"
eq "$(jq '[.[] | select(.manager_status == "leader")] | length' <<<"$nodes")" 1 "leaders"
eq "$(jq '[.[] | select(.status.state == "ready")] | length' <<<"$nodes")" 5 "ready nodes"
eq "$(jq -r '[.[] | select(.spec.role == "manager") | .spec.name] | sort | join(" ")' <<<"$nodes")" "$MANAGERS" "the managers"
eq "$(voters)" 3 "voters"
# The table for people says the same.
table=$(sk node ls)
eq "$(grep -c ' Ready ' <<<"$table")" 5 "Ready rows in node ls"
eq "$(grep -c ' Leader ' <<<"$table")" 1 "Leader rows in node ls"
pass "node ls: 5 nodes, 3 managers (3 voters), exactly one leader, all ready"

# ---- the leader's host is cut off ----------------------------------------
leader=$(leader_name)
[ -n "$leader" ] || fail "no leader in cluster info"
other=""
for m in $MANAGERS; do [ "$m" = "$leader" ] || { other=$m; break; }; done
"$LAB" cut "$leader"
t0=$(now_ms)
# One CLI call waits for the new leader by itself; a refused call is retried.
until sk --host "$(api "$other")" --timeout 5s node update --label-add cut=yes h4 >/dev/null 2>"$TMP/err"; do
    [ "$(elapsed_ms "$t0")" -lt 5000 ] || fail "no write accepted through $other within 5 s of cutting $leader: $(cat "$TMP/err")"
    sleep 0.05
done
cut_ms=$(elapsed_ms "$t0")
[ "$cut_ms" -lt 5000 ] || fail "the write through $other took $cut_ms ms (limit 5000)"
new_leader=$(leader_name "$other")
[ -n "$new_leader" ] && [ "$new_leader" != "$leader" ] || fail "leader after the cut: \"$new_leader\""
log "leader $leader cut off: write through $other accepted after $cut_ms ms (new leader $new_leader)"
pass "leader host cut off: a write is accepted within 5 s ($cut_ms ms)"

# Let the cluster call the cut host down before healing it, so that heal has
# to bring it back.
wait_for 20 state_is "$leader" down "$other" || fail "$leader not marked down 20 s after its cut"
log "$leader marked down $(elapsed_ms "$t0") ms after the cut"
"$LAB" heal "$leader"
t0=$(now_ms)
wait_for 30 all_ready 5 "$other" || fail "not 5 ready nodes 30 s after healing $leader: $(sk --host "$(api "$other")" node ls)"
label_seen() { [ "$(node_field h4 .spec.labels.cut "$leader")" = yes ]; }
wait_for 30 label_seen || fail "$leader does not show the label written while it was cut off"
heal_ms=$(elapsed_ms "$t0")
agree() { # A B: both managers name the same leader
    local a
    a=$(leader_name "$1")
    [ -n "$a" ] && [ "$a" = "$(leader_name "$2")" ]
}
wait_for 10 agree "$leader" "$other" || fail "$leader and $other disagree on the leader after heal"
log "heal of $leader: 5 ready, its own API shows the label after $heal_ms ms"
pass "heal: 5 nodes ready again; $leader caught up (label cut=yes through its own API)"

# ---- refusals -------------------------------------------------------------
n0=$(count_nodes)
wtoken=$(sk join-token -q worker)
mtoken=$(sk join-token -q manager)
[[ $wtoken == SKF1-* && $mtoken == SKF1-* && $wtoken != "$mtoken" ]] || fail "join tokens: \"$wtoken\" \"$mtoken\""
# expect_refused WHAT TEXT CMD...: CMD fails and says TEXT.
expect_refused() {
    local what=$1 text=$2 out; shift 2
    if out=$("$@" 2>&1); then fail "$what: accepted ($out)"; fi
    grep -qF -- "$text" <<<"$out" || fail "$what: refused, but the message lacks \"$text\": $out"
    log "$what: $(tr '\n' ' ' <<<"$out" | sed 's/  */ /g' | cut -c1-200)"
    pass "$what is refused: \"$text\""
}

expect_refused "a join with a wrong secret" "join token is not valid for this cluster" \
    "$LAB" join h6 --token "${wtoken%-*}-aaaaaaaaaaaaaaaaaaaaaaaaaa"

# A token pinning another cluster's CA: a real CA made here, its digest
# computed as skiff does (base32 of SHA-256 of the DER). The same computation
# must give this cluster's own digest.
digest() { openssl x509 -outform der | openssl dgst -sha256 -binary | base32 | tr -d '=\n' | tr A-Z a-z; }
jq -r .ca_pem /run/skiff-lab/admin.json >"$TMP/ca.pem"
own=$(digest <"$TMP/ca.pem")
eq "$own" "$(cluster_json | jq -r .ca_digest)" "CA digest computed here"
[[ $wtoken == "SKF1-$own-"* ]] || fail "the worker token does not carry the CA digest $own"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=other-ca -keyout "$TMP/other.key" -out "$TMP/other.pem" 2>/dev/null
expect_refused "a join with another CA's digest" "does not match the join token" \
    "$LAB" join h6 --token "SKF1-$(digest <"$TMP/other.pem")-${wtoken##*-}"

# curl: prints the body, then the HTTP status on a line of its own.
call() { curl -sS --max-time 5 --cacert "$TMP/ca.pem" -w '\n%{http_code}' "$@"; }
refused_http() { # WHAT STATUS TEXT CURL-ARGS...
    local what=$1 status=$2 text=$3 out; shift 3
    out=$(call "$@") || fail "$what: curl failed: $out"
    eq "$(tail -n 1 <<<"$out")" "$status" "$what: HTTP status"
    head -n -1 <<<"$out" | jq -e --arg t "$text" '.error.message | contains($t)' >/dev/null ||
        fail "$what: the error lacks \"$text\": $out"
    log "$what: $(head -n -1 <<<"$out")"
    pass "$what is refused ($status): \"$text\""
}
eq "$(call "https://$(api h1)/v1/health" | tail -n 1)" 200 "GET /v1/health without a certificate"
refused_http "the control API without a client certificate" 401 \
    "a client certificate of this cluster is required" "https://$(api h1)/v1/nodes"
jq -r .cert_pem /var/lib/skiff-lab/h4/skiff/node.json >"$TMP/w.crt"
jq -r .key_pem /var/lib/skiff-lab/h4/skiff/node.json >"$TMP/w.key"
refused_http "the control API with a worker's certificate" 403 \
    "role worker may not use the control API" \
    --cert "$TMP/w.crt" --key "$TMP/w.key" "https://$(api h1)/v1/nodes"
refused_http "a worker promoting itself" 403 "role worker may not use the control API" \
    --cert "$TMP/w.crt" --key "$TMP/w.key" -X POST -d '{}' "https://$(api h1)/v1/nodes/h4/promote"
eq "$(count_nodes)" "$n0" "node count after the refusals"
eq "$(node_field h4 .spec.role)" worker "h4's role after the refusals"
pass "after the refusals the cluster still has $n0 nodes"

# The worker token makes a worker, whatever the joining host would like.
"$LAB" join h6
# Reads go to any manager; give the followers the moment to apply the join.
nodes_are() { [ "$(count_nodes)" = "$1" ]; }
wait_for 5 nodes_are $((n0 + 1)) || true
eq "$(node_field h6 .spec.role)" worker "h6's role"
eq "$(node_field h6 '.manager_status // "none"')" none "h6's manager status"
eq "$(jq -r .role /var/lib/skiff-lab/h6/skiff/node.json)" worker "role in h6's node.json"
jq -r .cert_pem /var/lib/skiff-lab/h6/skiff/node.json | openssl x509 -noout -subject |
    grep -q 'OU *= *worker' || fail "h6's certificate is not a worker's"
eq "$(voters)" 3 "voters after h6 joined"
eq "$(count_nodes)" $((n0 + 1)) "node count after h6 joined"
pass "a host joining with the worker token is a worker (role, certificate OU, not a voter)"

# ---- demote and promote ---------------------------------------------------
leader=$(leader_name)
victim=""
for m in $MANAGERS; do [ "$m" = "$leader" ] || { victim=$m; break; }; done
since=$(node_field "$victim" .status.state_changed_at)
sk node demote "$victim" >/dev/null
demoted() { [ "$(voters)" = 2 ] && [ "$(node_field "$victim" .spec.role)" = worker ]; }
wait_for 15 demoted || fail "$victim not demoted: $(voters) voters, role $(node_field "$victim" .spec.role)"
wait_for 10 state_is "$victim" ready || fail "$victim not ready after its demotion"
wait_for 10 role_file_is "$victim" worker || fail "$victim's node.json does not say worker"
pass "node demote $victim: voters 3 -> 2, it runs on as a ready worker"
sk node promote "$victim" >/dev/null
promoted() { [ "$(voters)" = 3 ] && [ "$(node_field "$victim" .manager_status)" = reachable ]; }
wait_for 20 promoted || fail "$victim not promoted: $(voters) voters, status $(node_field "$victim" .manager_status)"
eq "$(node_field "$victim" .status.state)" ready "$victim's state after its promotion"
eq "$(node_field "$victim" .status.state_changed_at)" "$since" "$victim's last state change (it must not have left ready)"
pass "node promote $victim: voters 2 -> 3; it stayed ready throughout"

# ---- losing 2 of 3 managers, then --force-new-cluster ---------------------
for h in $HOSTS; do sk node update --label-add "name=$h" "$h" >/dev/null; done
# Followers answer reads from what they have applied: wait until the one
# asked has the last write too.
snapshot() {
    before=$(nodes_json | jq -c '[.[] | {id, name: .spec.name, labels: .spec.labels}] | sort_by(.name)')
    [ "$(jq '[.[] | select(.labels.name == .name)] | length' <<<"$before")" = 6 ]
}
wait_for 10 snapshot || fail "the name labels did not show on every node: $before"
leader=$(leader_name)
survivor=""
dead=()
for m in $MANAGERS; do
    if [ "$m" != "$leader" ] && [ -z "$survivor" ]; then survivor=$m; else dead+=("$m"); fi
done
for m in "${dead[@]}"; do "$LAB" stop "$m" --kill; done
if out=$(sk --host "$(api "$survivor")" --timeout 3s node update --label-add lost=yes h5 2>&1); then
    fail "a write through $survivor was accepted without quorum: $out"
fi
log "write without quorum through $survivor refused: $out"
pass "kill -9 of ${dead[*]}: no write without quorum"
"$LAB" stop "$survivor"
t0=$(now_ms)
"$LAB" start "$survivor" --force-new-cluster
write_ok() { sk --host "$(api "$survivor")" --timeout 2s node update --label-add recovered=yes h5; }
wait_for 20 write_ok || fail "no write through $survivor 20 s after --force-new-cluster"
force_ms=$(elapsed_ms "$t0")
eq "$(leader_name "$survivor")" "$survivor" "leader after --force-new-cluster"
eq "$(voters "$survivor")" 1 "voters after --force-new-cluster"
after=$(nodes_json "$survivor" | jq -c '[.[] | {id, name: .spec.name, labels: (.spec.labels | del(.recovered))}] | sort_by(.name)')
eq "$after" "$before" "nodes and labels after --force-new-cluster"
eq "$(node_field h4 .spec.labels.cut "$survivor")" yes "the label written while the leader was cut off"
for m in "${dead[@]}"; do
    eq "$(node_field "$m" .spec.role "$survivor")" worker "$m's role after --force-new-cluster"
done
log "--force-new-cluster on $survivor: write accepted $force_ms ms after the start"
pass "--force-new-cluster on $survivor: it answers, writes are accepted, nodes and labels kept, ${dead[*]} marked workers"
for m in "${dead[@]}"; do "$LAB" start "$m"; done
for m in "${dead[@]}"; do
    wait_for 30 state_is "$m" ready "$survivor" || fail "$m not ready after its restart"
done
eq "$(voters "$survivor")" 1 "voters with ${dead[*]} back as workers"
pass "${dead[*]} came back as ready workers"

# Promote them again; then the survivor changes role twice. Each role change
# re-executes skiffd, and --force-new-cluster must not come along: promoted
# again with it, the survivor would recover its fresh, empty Raft state and
# lead a cluster of its own.
sk --host "$(api "$survivor")" node promote "${dead[@]}" >/dev/null
wait_for 20 test_voters 3 "$survivor" || fail "not 3 voters after promoting ${dead[*]} again"
sk --host "$(api "${dead[0]}")" node demote "$survivor" >/dev/null
wait_for 20 test_voters 2 "${dead[0]}" || fail "not 2 voters after demoting $survivor"
# Its skiffd has taken the new role (and re-executed) once node.json says so.
wait_for 10 role_file_is "$survivor" worker || fail "$survivor's node.json does not say worker"
sk --host "$(api "${dead[0]}")" node promote "$survivor" >/dev/null
wait_for 20 test_voters 3 "${dead[0]}" || fail "not 3 voters after promoting $survivor again"
wait_for 10 role_file_is "$survivor" manager || fail "$survivor's node.json does not say manager"
wait_for 10 state_is "$survivor" ready "${dead[0]}" || fail "$survivor not ready after its role changes"
pid=$(cat "/run/skiff-lab/$survivor/skiffd.pid")
kill -0 "$pid" || fail "$survivor's skiffd died: $("$LAB" logs "$survivor" | tail -5)"
if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- --force-new-cluster; then
    fail "$survivor's skiffd runs with --force-new-cluster after its role changes"
fi
one_leader() {
    local l m
    l=$(leader_name "${dead[0]}")
    [ -n "$l" ] || return 1
    for m in $MANAGERS; do [ "$(leader_name "$m")" = "$l" ] || return 1; done
}
wait_for 10 one_leader || fail "the managers disagree on the leader: $(for m in $MANAGERS; do printf '%s:%s ' "$m" "$(leader_name "$m")"; done)"
pass "promoted again: 3 voters; $survivor demoted and promoted runs on without --force-new-cluster, one leader for all"

# ---- the planes stayed apart ----------------------------------------------
bad=""
while read -r h c_rx c_tx d_rx d_tx; do
    read -r b_c_rx b_c_tx b_d_rx b_d_tx <<<"${BASE[$h]}"
    ctl_tx=$((c_tx - b_c_tx)) ctl_rx=$((c_rx - b_c_rx))
    data_tx=$((d_tx - b_d_tx)) data_rx=$((d_rx - b_d_rx))
    log "$h: eth0 (control) tx $ctl_tx rx $ctl_rx bytes; eth1 (data) tx $data_tx rx $data_rx bytes"
    [ $((data_tx + data_rx)) -le $DATA_BOUND ] || bad+=" $h:eth1=$((data_tx + data_rx))B"
    [ "$h" = h6 ] || [ "$ctl_tx" -ge $CONTROL_MIN ] || bad+=" $h:eth0-tx=${ctl_tx}B"
done < <(counters)
[ -z "$bad" ] || fail "planes mixed (eth1 bound $DATA_BOUND bytes, eth0 at least $CONTROL_MIN):$bad"
pass "the data interfaces carried at most $DATA_BOUND bytes each while the control plane worked on eth0"

log "all of it took $(elapsed_ms "$T0") ms (before lab down)"
