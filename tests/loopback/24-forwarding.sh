#!/usr/bin/env bash
# Who a call speaks for (issue 15, items 5 and 8): a manager's node
# certificate is not an admin's, on the leader as on a follower; only a
# manager's own forwarding code can say "this call is admin's" or "node X's"
# (X-Skiff-Principal with an HMAC under a key from the data key), so a
# forged header -- admin, or another node posting a task status -- is
# refused and the other node's task is untouched; writes and node calls
# forwarded by a follower still work; and a removed node cannot read its
# old tasks or post a status through a follower.
. "$(dirname "$0")/lib.sh"

init_cluster m1
join m2 manager
join w1 worker
join w2 worker
must 20 "2 voters" voters_are 2
leader=$(leader_name)
follower=m1
[ "$leader" != m1 ] || follower=m2
cred_files "$(dir "$follower")/node.json" "$TEST_DIR/mgr"
cred_files "$ADMIN" "$TEST_DIR/admin"
w2_id=$(node_field w2 .id)
ok "cluster: leader $leader, follower $follower (its certificate saved), workers w1 and w2"

# ---- a manager certificate is not admin ----
msg="role manager may not use the control API (admin only)"
for n in "$leader" "$follower"; do
    for call in "GET /v1/join-tokens" "POST /v1/join-tokens/rotate" "GET /v1/nodes" \
        "DELETE /v1/services/nosuch" "GET /v1/cluster" "POST /v1/nodes/$w2_id/promote" "GET /metrics"; do
        body=
        [ "${call%% *}" != POST ] || body='{"role":"manager"}'
        r=$(https "${call%% *}" "https://$(api "$n")${call#* }" "$TEST_DIR/mgr" "$body")
        eq "${r%% *}" 403 "$follower's manager certificate, $call on $n: HTTP status"
        contains "$r" "$msg" "$follower's manager certificate, $call on $n"
    done
done
r=$(https POST "https://$(api "$leader")/v1/node/heartbeat" "$TEST_DIR/mgr" '{}')
eq "${r%% *}" 200 "$follower's own heartbeat with its certificate"
ok "a manager's certificate on the control API: 403 \"$msg\" on leader and follower alike; its own node calls work"

# ---- a forged principal ----
sk service create -q --name victim --constraint node.hostname==w2 busybox:1 sleep 100 >/dev/null
task_json() { sk --format json service ps victim; }
assigned_to_w2() { [ "$(task_json | jq -r --arg n "$w2_id" '[.[] | select(.node_id == $n)] | length')" = 1 ]; }
must 10 "victim's task placed on w2" assigned_to_w2
task=$(task_json | jq -r '.[0].id')
before=$(task_json | jq -c '[.[] | {id, state: .status.state, version: .version}]')

# forged METHOD PATH BODY HEADER...: a call straight to the leader with the
# follower's manager certificate and the given headers.
forged() {
    local method=$1 path=$2 body=$3 args=() h code; shift 3
    for h in "$@"; do args+=(-H "$h"); done
    [ -z "$body" ] || args+=(-H 'Content-Type: application/json' --data "$body")
    code=$(curl -sS --max-time 5 -X "$method" --cacert "$TEST_DIR/admin-ca.pem" \
        --cert "$TEST_DIR/mgr-cert.pem" --key "$TEST_DIR/mgr-key.pem" \
        -o "$TEST_DIR/forged.out" -w '%{http_code}' "${args[@]}" \
        "https://$(api "$leader")$path" 2>&1) || true
    echo "$code $(cat "$TEST_DIR/forged.out" 2>/dev/null)"
}
w2_cert=$(jq -r .cert_pem "$(dir w2)/node.json")
w2_serial=$(openssl x509 -noout -serial <<<"$w2_cert" | cut -d= -f2 | tr A-F a-f)
w2_nb=$(( $(date -d "$(openssl x509 -noout -startdate <<<"$w2_cert" | cut -d= -f2)" +%s) * 1000 ))
status='{"tasks":[{"id":"'$task'","state":"failed","exit_code":1,"message":"forged"}]}'
fake_mac="X-Skiff-Forward: $(now_ms) $(printf '%064d' 0)"
r=$(forged GET /v1/join-tokens "" "X-Skiff-Principal: admin")
eq "${r%% *}" 403 "forged admin principal: HTTP status"
contains "$r" "no X-Skiff-Forward" "forged admin principal"
r=$(forged GET /v1/join-tokens "" "X-Skiff-Principal: admin" "$fake_mac")
eq "${r%% *}" 403 "forged admin principal with a made-up MAC: HTTP status"
contains "$r" "does not verify" "forged admin principal with a made-up MAC"
for p in "node $w2_id" "node $w2_id worker $w2_serial $w2_nb"; do
    r=$(forged POST /v1/node/status "$status" "X-Skiff-Principal: $p")
    eq "${r%% *}" 403 "status \"as $p\": HTTP status"
    r=$(forged POST /v1/node/status "$status" "X-Skiff-Principal: $p" "$fake_mac")
    eq "${r%% *}" 403 "status \"as $p\" with a made-up MAC: HTTP status"
    contains "$r" "does not verify" "status \"as $p\" with a made-up MAC"
done
wait_for 2 false || true
eq "$(task_json | jq -c '[.[] | {id, state: .status.state, version: .version}]')" "$before" \
    "victim's tasks after the forged status reports"
ok "forged X-Skiff-Principal (admin; node w2, also with w2's certificate serial) from a manager certificate: 403 (no or bad X-Skiff-Forward); w2's task untouched ($before)"

# ---- what a follower forwards still works ----
SK_HOSTS=$(api "$follower") sk service scale victim=2 >/dev/null || fail "scale through $follower refused"
must 10 "2 victim tasks" eval '[ "$(task_json | jq length)" = 2 ]'
SK_HOSTS=$(api "$follower") sk node update --label-add via=follower w1 >/dev/null ||
    fail "node update through $follower refused"
must 10 "w1's label written through $follower" has_label w1 via follower
cred_files "$(dir w2)/node.json" "$TEST_DIR/w2"
running='{"tasks":[{"id":"'$task'","state":"running","exit_code":0}]}'
r=$(https POST "https://$(api "$follower")/v1/node/status" "$TEST_DIR/w2" "$running")
eq "${r%% *}" 200 "w2's own status report through $follower: HTTP status"
contains "$r" '"accepted":1' "w2's own status report through $follower"
must 10 "w2's task running" eval "[ \"\$(task_json | jq -r --arg t $task '.[] | select(.id == \$t) | .status.state')\" = running ]"
r=$(https GET "https://$(api "$follower")/v1/cluster" "$TEST_DIR/admin")
eq "${r%% *}" 200 "admin's GET /v1/cluster (forwarded) through $follower"
ok "forwarded by $follower: service scale, node update, w2's own task status (accepted, task running)"

# ---- a removed node, through a follower ----
cred_files "$(dir w1)/node.json" "$TEST_DIR/w1"
w1_id=$(node_field w1 .id)
r=$(https POST "https://$(api "$follower")/v1/node/status" "$TEST_DIR/w1" '{"tasks":[]}')
eq "${r%% *}" 200 "w1's status report through $follower before its removal: HTTP status"
stop w1
sk node rm w1 >/dev/null
must 10 "w1 gone, seen by $follower" eval '[ "$(SK_HOSTS=$(api "$follower") node_count)" = 3 ]'
for n in "$follower" "$leader"; do
    r=$(https GET "https://$(api "$n")/v1/node/assignments?consistent=1" "$TEST_DIR/w1")
    eq "${r%% *}" 403 "removed w1's GET /v1/node/assignments?consistent=1 on $n: HTTP status"
    contains "$r" "node $w1_id is not a member of this cluster" "removed w1's assignments on $n"
    r=$(https POST "https://$(api "$n")/v1/node/status" "$TEST_DIR/w1" '{"tasks":[]}')
    eq "${r%% *}" 403 "removed w1's POST /v1/node/status on $n: HTTP status"
    contains "$r" "node $w1_id is not a member of this cluster" "removed w1's status on $n"
done
ok "removed w1: its assignments (consistent read) and status reports are refused through follower $follower and on $leader (403 \"not a member\")"
