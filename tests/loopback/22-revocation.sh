#!/usr/bin/env bash
# A role change or a removal revokes a node's old certificate on every
# manager at once (issue 15, item 1): a demoted manager's saved certificate
# (OU manager, still within its validity) is refused for every control,
# node and Raft call, and Raft connections it had open are closed; the
# demoted node goes on as a worker on its new certificate; promoted again,
# its first manager certificate stays revoked; a manager stopped, demoted
# and removed before it could fetch a new certificate is refused too.
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
b_id=$(node_field "$b" .id)
# (Not through jq: it reads integers as doubles, and a raft ID has 63 bits.)
b_raft=$(sk --format json node inspect "$b" | grep -o '"raft_id": *[0-9]*' | grep -o '[0-9]*$')
[ -n "$b_raft" ] || fail "$b has no raft_id in node inspect"
cred_files "$(dir "$b")/node.json" "$TEST_DIR/b0"
b0_serial=$(openssl x509 -in "$TEST_DIR/b0-cert.pem" -noout -serial | cut -d= -f2 | tr A-F a-f)
contains "$(openssl x509 -in "$TEST_DIR/b0-cert.pem" -noout -subject -nameopt sep_multiline)" \
    "OU=manager" "$b's saved certificate"
ok "cluster of 3 managers (leader $leader) and w1; $b's manager certificate saved (serial $b0_serial)"

# ---- Raft with a certificate ----
# raft_open NAME CREDS TO: a Raft connection to TO's port 7444 with CREDS
# speaking for node NAME (the transport's preamble, then silence), in the
# background; its pid in RAFT_PID.
raft_port() { echo "$(addr "$1"):7444"; }
preamble() { # RAFT-ID ADDRESS
    local id=$1 addr=$2 i
    printf 'SKRAFT1\n'
    for i in 0 1 2 3 4 5 6 7; do printf "\\x$(printf %02x $(( (id >> (8 * i)) & 255 )))"; done
    printf "\\x$(printf %02x $(( ${#addr} & 255 )))\\x$(printf %02x $(( ${#addr} >> 8 )))"
    printf '%s' "$addr"
}
RAFT_PID=
touch "$TEST_DIR/silence"
raft_open() { # CREDS TO
    openssl s_client -quiet -connect "$(raft_port "$2")" -CAfile "$TEST_DIR/admin-ca.pem" \
        -cert "$1-cert.pem" -key "$1-key.pem" \
        < <(preamble "$b_raft" "$(raft_port "$b")"; exec tail -f "$TEST_DIR/silence") >/dev/null 2>&1 &
    RAFT_PID=$!
}
# The manager TO logged that it refused b's certificate SERIAL on Raft
# (once more than COUNT times before).
raft_refusals() { grep -c "refusing .*node $b_id.*$2" "$TEST_DIR/$1.log" || true; }
raft_refused() { # TO WHY CREDS
    local before
    before=$(raft_refusals "$1" "$2")
    raft_open "$3" "$1"
    local p=$RAFT_PID
    must 5 "$1 closes a Raft connection with $3" eval "! alive $p"
    wait "$p" 2>/dev/null || true
    must 5 "$1 logs the refusal ($2)" eval "[ \$(raft_refusals $1 '$2') -gt $before ]"
}

https GET "https://$(api "$leader")/v1/health" - >/dev/null # writes admin-ca.pem
declare -A open_conn
for n in "$leader" "$a"; do
    raft_open "$TEST_DIR/b0" "$n"
    open_conn[$n]=$RAFT_PID
done
wait_for 2 false || true
for n in "$leader" "$a"; do
    alive "${open_conn[$n]}" || fail "$n closed a Raft connection with $b's current certificate"
done
ok "Raft: $b's current certificate opens connections to $leader and $a, which stay open"

# ---- demote: the old certificate is revoked everywhere ----
sk node demote "$b" >/dev/null
must 15 "$b's node.json says worker" eval "[ \"\$(jq -r .role '$(dir "$b")/node.json')\" = worker ]"
must 15 "$b ready as a worker" eval "role_is $b worker && node_is $b ready"
for n in "$leader" "$a"; do
    must 5 "$n closed the Raft connection $b's old certificate had open" eval "! alive ${open_conn[$n]}"
    wait "${open_conn[$n]}" 2>/dev/null || true
done
ok "demoted $b: the Raft connections its old certificate had open were closed by $leader and $a"

# every_call_refused CREDS WHAT MESSAGE MANAGERS...: the control calls and
# a node call with CREDS are refused with 403 by each of MANAGERS.
every_call_refused() {
    local creds=$1 what=$2 msg=$3 n call r; shift 3
    for n in "$@"; do
        for call in "GET /v1/join-tokens" "POST /v1/join-tokens/rotate" "GET /v1/nodes" \
            "DELETE /v1/services/nosuch" "GET /v1/cluster" "POST /v1/node/heartbeat" \
            "GET /v1/node/assignments" "POST /v1/node/status"; do
            case $call in
            *rotate) body='{"role":"manager"}' ;;
            *status) body='{"tasks":[]}' ;;
            POST*) body='{}' ;;
            *) body= ;;
            esac
            r=$(https "${call%% *}" "https://$(api "$n")${call#* }" "$creds" "$body")
            eq "${r%% *}" 403 "$what, $call on $n: HTTP status"
            contains "$r" "$msg" "$what, $call on $n"
        done
    done
}
revoked="node $b_id: certificate $b0_serial is revoked"
every_call_refused "$TEST_DIR/b0" "$b's certificate from before its demotion" "$revoked" "$leader" "$a"
raft_refused "$leader" "certificate $b0_serial is revoked" "$TEST_DIR/b0"
raft_refused "$a" "certificate $b0_serial is revoked" "$TEST_DIR/b0"
ok "$b's old manager certificate is refused by $leader and $a: control calls, node calls (403 \"$revoked\") and Raft"

# The demoted node itself works on its new certificate.
cred_files "$(dir "$b")/node.json" "$TEST_DIR/b1"
contains "$(openssl x509 -in "$TEST_DIR/b1-cert.pem" -noout -subject -nameopt sep_multiline)" \
    "OU=worker" "$b's new certificate"
for n in "$leader" "$a"; do
    r=$(https POST "https://$(api "$n")/v1/node/heartbeat" "$TEST_DIR/b1" '{}')
    eq "${r%% *}" 200 "$b's heartbeat with its new certificate on $n"
done
t_end=$(( $(now_ms) + 3000 ))
while [ "$(now_ms)" -lt "$t_end" ]; do
    node_is "$b" ready || fail "$b not ready as a worker on its new certificate"
    wait_for 0.5 false || true
done
ok "$b works on as a worker with its new certificate (heartbeats accepted by $leader and $a, ready)"

# ---- promoted again: the first manager certificate stays revoked ----
sk node promote "$b" >/dev/null
must 20 "3 voters after promoting $b again" voters_are 3
must 15 "$b ready as a manager" eval "role_is $b manager && node_is $b ready"
every_call_refused "$TEST_DIR/b0" "$b's first manager certificate, $b a manager again" "$revoked" \
    "$leader" "$a" "$b"
raft_refused "$leader" "certificate $b0_serial is revoked" "$TEST_DIR/b0"
r=$(https POST "https://$(api "$leader")/v1/node/heartbeat" "$TEST_DIR/b1" '{}')
eq "${r%% *}" 403 "$b's worker certificate after its promotion: HTTP status"
ok "promoted again, $b's first manager certificate and its worker certificate stay refused (API on all 3 managers, Raft)"

# ---- stopped, demoted and removed before it could fetch a new one ----
cred_files "$(dir "$b")/node.json" "$TEST_DIR/b2"
stop "$b"
sk node demote "$b" >/dev/null
must 15 "2 voters after demoting stopped $b" voters_are 2
r=$(https GET "https://$(api "$leader")/v1/join-tokens" "$TEST_DIR/b2")
eq "${r%% *}" 403 "$b's manager certificate after its demotion (not yet replaced), GET /v1/join-tokens"
for n in "$leader" "$a"; do raft_refused "$n" "no longer a manager" "$TEST_DIR/b2"; done
sk node rm "$b" >/dev/null
must 10 "$b gone" eval '[ "$(node_count)" = 3 ]'
every_call_refused "$TEST_DIR/b2" "removed $b's certificate" "node $b_id is not a member of this cluster" \
    "$leader" "$a"
for n in "$leader" "$a"; do raft_refused "$n" "is not a member of this cluster" "$TEST_DIR/b2"; done
ok "stopped, demoted, removed: $b's last manager certificate is refused for Raft once demoted, and for everything once removed"

# ---- the leader demoted: it hands over and goes on as a worker ----
# Until it restarts as a worker, the agents that talk to it (its own among
# them) must be sent elsewhere, not refused: they still need a manager to
# fetch their certificates and heartbeat.
join m4 manager
must 20 "3 voters with m4" voters_are 3
old_leader=$(leader_name)
t0=$(now_ms)
sk node demote "$old_leader" >/dev/null
must 15 "$old_leader's node.json says worker" \
    eval "[ \"\$(jq -r .role '$(dir "$old_leader")/node.json')\" = worker ]"
must 15 "$old_leader ready as a worker" eval "role_is $old_leader worker && node_is $old_leader ready"
new_leader=$(leader_name)
[ -n "$new_leader" ] && [ "$new_leader" != "$old_leader" ] || fail "no new leader after demoting $old_leader"
for n in w1 "$old_leader"; do
    grep -q "refused this node" "$TEST_DIR/$n.log" && fail "$n's agent was refused while $old_leader handed over"
    node_is "$n" ready || fail "$n not ready after $old_leader's demotion"
done
ok "leader $old_leader demoted: $new_leader leads, $old_leader is a ready worker after $(elapsed_ms "$t0") ms; no agent was refused meanwhile"
