#!/usr/bin/env bash
# Join tokens and mutual TLS: a worker token makes a worker and never a
# manager; a wrong token, a token pinned to another cluster's CA, a client
# without certificate, another cluster's certificate and a worker's
# certificate on the control API are all refused with a message that says
# why -- and leave no trace in the cluster.
. "$(dirname "$0")/lib.sh"

init_cluster m1
join m2 manager
must 15 "2 voters" voters_are 2
cred_files "$ADMIN" "$TEST_DIR/admin"

# ---- a worker token makes a worker ----
join w1 worker
# Its first heartbeat may reach the follower before that has applied the
# join; the follower must not take it for a removed node (which backs the
# agent off for 10 s).
[ "$JOIN_MS" -lt 3000 ] || fail "w1 took $JOIN_MS ms from join to ready (limit 3000 ms)"
eq "$(jq -r .role "$(dir w1)/node.json")" worker "role in w1's node.json"
[ ! -e "$(dir w1)/raft" ] || fail "w1 (worker) has a raft dir"
jq -e 'has("data_key") | not' "$(dir w1)/node.json" >/dev/null || fail "w1 (worker) holds the data key"
cred_files "$(dir w1)/node.json" "$TEST_DIR/w1"
subject=$(openssl x509 -in "$TEST_DIR/w1-cert.pem" -noout -subject -nameopt sep_multiline)
contains "$subject" "OU=worker" "w1's certificate subject"
eq "$(node_field w1 .spec.role)" worker "w1's role in the store"
eq "$(node_field w1 .manager_status)" "" "w1's manager status"
eq "$(cluster_json | jq '.managers | length')" 2 "managers after w1 joined"
# Whatever w1 serves, it is not the manager API.
if healthy "$(api w1)" >/dev/null 2>&1; then fail "w1 (worker) serves the manager API"; fi
expect_fail "the CLI against w1" sk_at w1 node ls
ok "worker token: w1 joined as worker, ready after $JOIN_MS ms (node.json role worker, OU=worker, no raft dir, no data key, no manager API, not a manager)"

nodes_before=$(nodes_json | jq -c '[.[].id] | sort')
eq "$(jq length <<<"$nodes_before")" 3 "nodes before the refused attempts"
worker_token=$(sk join-token -q worker)
manager_token=$(sk join-token -q manager)

# A joiner that must be refused: skiffd exits non-zero with MESSAGE and
# writes no membership.
refused_join() { # NAME TOKEN MESSAGE WHAT
    assign "$1"
    expect_fail "$4" "$SKIFFD" --data-dir "$(dir "$1")" --docker-host "$TEST_DIR/no-dockerd.sock" \
        --advertise-addr "$(addr "$1")" \
        --join "$(api m1)" --token "$2" --hostname "$1"
    contains "$OUT" "$3" "$4"
    [ ! -e "$(dir "$1")/node.json" ] || fail "$4: $1 wrote a node.json"
}

# A CSR for the direct POSTs to /v1/join.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TEST_DIR/x.key" -subj /CN=intruder -out "$TEST_DIR/x.csr" 2>/dev/null
join_body() {
    jq -n --arg t "$1" --rawfile csr "$TEST_DIR/x.csr" --arg a "$(addr m1 | sed 's/\.[0-9]*$/.250/')" \
        '{token: $t, csr: $csr,
          description: {hostname: "intruder", addr: $a, data_addr: $a},
          api_addr: ($a + ":7443"), raft_addr: ($a + ":7444")}'
}
# post_join TOKEN STATUS MESSAGE WHAT: the manager answers STATUS with MESSAGE.
post_join() {
    local r
    r=$(https POST "https://$(api m1)/v1/join" - "$(join_body "$1")")
    eq "${r%% *}" "$2" "$4: HTTP status"
    contains "$r" "$3" "$4: message"
}

# ---- wrong tokens ----
wrong_secret=${worker_token%-*}-aaaaaaaaaaaaaaaaaaaaaaaaaa
msg="join token is not valid for this cluster: unknown secret (rotated or mistyped)"
refused_join x1 "$wrong_secret" "$msg" "wrong secret"
post_join "$wrong_secret" 401 "$msg" "POST /v1/join with a wrong secret"
wrong_mgr=${manager_token%-*}-abcdefghijklmnopqrstuvwxya
refused_join x2 "$wrong_mgr" "$msg" "wrong manager secret"
refused_join x3 "garbage" "join token must start with SKF1-" "malformed token"
post_join "garbage" 400 "join token must start with SKF1-" "POST /v1/join with a malformed token"
ok "wrong tokens refused: skiffd exits 1 with \"$msg\"; /v1/join answers 401 (400 for a malformed one)"
r=$(https POST "https://$(api m1)/v1/join" - \
    '{"token":"SKF1-x","csr":"x","description":{"hostname":"x","nano_cpus":"two"}}')
eq "${r%% *}" 400 "POST /v1/join with a malformed body: HTTP status"
contains "$r" "description.nano_cpus: want an integer" "POST /v1/join with a malformed body: message"
ok "a malformed join body is refused with 400 naming the field"

# ---- a token for another cluster ----
# A throwaway second cluster, only for its token.
assign o1
run_daemon o1 --advertise-addr "$(addr o1)" --init --hostname o1 --admin-config "$(dir o1)/admin.json"
must 10 "o1 leads its own cluster" is_leader "$(api o1)"
other_token=$(SKIFF_CONFIG=$(dir o1)/admin.json "$SKIFF" --host "$(api o1)" join-token -q worker)
cred_files "$(dir o1)/admin.json" "$TEST_DIR/o1"
stop o1
other_digest=$(cut -d- -f2 <<<"$other_token")
[ "$other_digest" != "$(cut -d- -f2 <<<"$worker_token")" ] || fail "two clusters with one CA digest"
msg="the CA presented by $(api m1) does not match the join token: another cluster, or someone in between"
refused_join x4 "$other_token" "$msg" "another cluster's token"
# Our secret with the other digest: the joiner refuses before sending it...
mixed="SKF1-$other_digest-${worker_token##*-}"
refused_join x5 "$mixed" "$msg" "our secret pinned to another CA"
# ... and a joiner that skips the check is refused by the manager.
post_join "$mixed" 401 "join token is not valid for this cluster: it was made for another CA" \
    "POST /v1/join with another CA's digest"
ok "another cluster's CA digest refused: the joiner stops (\"does not match the join token\"), /v1/join answers 401 \"made for another CA\""

# ---- rotated token ----
sk join-token --rotate -q worker >/dev/null
refused_join x6 "$worker_token" "unknown secret (rotated or mistyped)" "rotated worker token"
ok "a rotated-out worker token is refused"

# ---- no client certificate, another cluster's certificate ----
for n in m1 m2; do
    r=$(https GET "https://$(api "$n")/v1/nodes" -)
    eq "${r%% *}" 401 "GET /v1/nodes on $n without a client certificate: HTTP status"
    contains "$r" '"code":"unauthenticated"' "no client certificate on $n"
    contains "$r" "a client certificate of this cluster is required" "no client certificate on $n"
    r=$(https POST "https://$(api "$n")/v1/nodes/w1/promote" - '{}')
    eq "${r%% *}" 401 "POST promote on $n without a client certificate: HTTP status"
done
r=$(https GET "https://$(api m1)/v1/nodes" "$TEST_DIR/o1")
eq "${r%% *}" 000 "another cluster's admin certificate: no HTTP answer"
contains "$r" "unknown ca" "another cluster's admin certificate"
grep -q "refused .*: certificate not signed by the cluster CA" "$TEST_DIR/m1.log" ||
    fail "m1 did not log the foreign certificate"
ok "no client certificate: 401 \"a client certificate of this cluster is required\" (leader and follower); another cluster's certificate: TLS alert unknown ca"

# ---- a worker's certificate on the control API ----
w1_id=$(node_field w1 .id)
msg="role worker may not use the control API (admin only)"
for n in m1 m2; do
    for call in "GET /v1/nodes" "GET /v1/cluster" "GET /v1/join-tokens" "POST /v1/nodes/$w1_id/promote" \
        "POST /v1/nodes/$w1_id/update" "DELETE /v1/nodes/$w1_id?force=1" "GET /metrics"; do
        r=$(https "${call%% *}" "https://$(api "$n")${call#* }" "$TEST_DIR/w1" \
            "$([ "${call%% *}" = POST ] && echo '{"spec":{"name":"w1","role":"manager"}}')")
        eq "${r%% *}" 403 "worker certificate, $call on $n: HTTP status"
        contains "$r" "$msg" "worker certificate, $call on $n"
    done
    # Claiming to be a forwarding manager does not help.
    r=$(https GET "https://$(api "$n")/v1/join-tokens" "$TEST_DIR/w1" "" "X-Skiff-Principal: admin")
    eq "${r%% *}" 403 "worker certificate with a forged X-Skiff-Principal on $n: HTTP status"
    contains "$r" "$msg" "worker certificate with a forged X-Skiff-Principal on $n"
done
ok "worker certificate on the control API: 403 \"$msg\" on leader and follower, also with a forged X-Skiff-Principal"

# ---- the node endpoints decode strictly ----
for n in m1 m2; do
    r=$(https POST "https://$(api "$n")/v1/node/status" "$TEST_DIR/w1" '{"tasks":[{"id":"x","state":"running"}]}')
    eq "${r%% *}" 400 "a task report with a bad id via $n: HTTP status"
    contains "$r" 'tasks[0].id: \"x\" is not an ID' "a task report with a bad id via $n"
    r=$(https POST "https://$(api "$n")/v1/node/status" "$TEST_DIR/w1" \
        '{"tasks":[{"id":"aaaaaaaaaaaaaaaaaaaaaaaaaa","state":"remove"}]}')
    eq "${r%% *}" 400 "a task report of state remove via $n: HTTP status"
    contains "$r" 'may not report state \"remove\"' "a task report of state remove via $n"
    r=$(https POST "https://$(api "$n")/v1/node/heartbeat" "$TEST_DIR/w1" '{"description":{"nano_cpus":"two"}}')
    eq "${r%% *}" 400 "a heartbeat with a bad description via $n: HTTP status"
    contains "$r" "description.nano_cpus: want an integer" "a heartbeat with a bad description via $n"
done
ok "task reports and heartbeats are decoded strictly: 400 naming the field (leader and follower)"

# ---- no trace ----
eq "$(nodes_json | jq -c '[.[].id] | sort')" "$nodes_before" "node IDs after the refused attempts"
eq "$(node_field w1 .spec.role)" worker "w1's role after its promote attempts"
eq "$(nodes_json | jq '[.[] | select(.spec.name | test("^(x[0-9]|intruder)$"))] | length')" 0 "intruders in node ls"
eq "$(voters)" 2 "voters after the refused attempts"
must 5 "w1 still ready" node_is w1 ready
ok "no trace: still the same 3 nodes (m1, m2, w1), 2 voters, w1 a worker and ready"

# ---- join tokens stay out of logs, command lines and world-readable files ----
worker_token=$(sk join-token -q worker)
manager_token=$(sk join-token -q manager)
printf '%s\n' "$worker_token" >"$TEST_DIR/w2.token"
chmod 600 "$TEST_DIR/w2.token"
assign w2
run_daemon w2 --advertise-addr "$(addr w2)" --join "$(api m1)" \
    --token-file "$TEST_DIR/w2.token" --hostname w2
must 15 "w2 joined with --token-file and is ready" node_is w2 ready
w1_pid=${NODE_PID[w1]}
if tr '\0' ' ' <"/proc/$w1_pid/cmdline" | grep -q SKF1; then
    fail "w1's command line shows its join token"
fi
# No token at all, not even the first ones --init made (rotated since).
if grep -lE -- "SKF1-[a-z2-7]{20,}" "$TEST_DIR"/*.log; then
    fail "a join token is in a daemon log (files above)"
fi
# The deprecated --token still works, and says why it is unwise.
assign x9
expect_fail "a join with a bad --token" "$SKIFFD" --data-dir "$(dir x9)" \
    --docker-host "$TEST_DIR/no-dockerd.sock" --advertise-addr "$(addr x9)" \
    --join "$(api m1)" --token "${worker_token%-*}-aaaaaaaaaaaaaaaaaaaaaaaaaa" --hostname x9
contains "$OUT" "--token is visible to every local user" "a join with --token"
# What skiffd writes is not world-readable.
bad=$(find "$(dir m1)" "$(dir w2)" -perm -o=r -type f | head -3)
[ -z "$bad" ] || fail "world-readable files in a data dir: $bad"
ok "join tokens: --token-file and \$SKIFF_JOIN_TOKEN work, no token in any log or command line, --token warns, no world-readable file in data dirs"

# ---- nothing is mapped before authentication; wrong methods say so ----
for path in /v1/nodes /v1/no-such-thing /v1/services/x/logs /metrics; do
    r=$(https GET "https://$(api m1)$path" -)
    eq "${r%% *}" 401 "GET $path without a certificate: HTTP status"
done
r=$(https GET "https://$(api m1)/v1/health" -)
eq "${r%% *}" 200 "GET /v1/health without a certificate: HTTP status"
cred_files "$ADMIN" "$TEST_DIR/admin"
r=$(https GET "https://$(api m1)/v1/no-such-thing" "$TEST_DIR/admin")
eq "${r%% *}" 404 "an unknown path with the admin certificate: HTTP status"
code=$(curl -sS --max-time 5 -X DELETE --cacert "$TEST_DIR/admin-ca.pem" --cert "$TEST_DIR/admin-cert.pem" \
    --key "$TEST_DIR/admin-key.pem" -D "$TEST_DIR/hdr" -o /dev/null -w '%{http_code}' \
    "https://$(api m1)/v1/nodes")
eq "$code" 405 "DELETE /v1/nodes: HTTP status"
grep -qi '^allow: GET' "$TEST_DIR/hdr" || fail "DELETE /v1/nodes: no Allow header: $(cat "$TEST_DIR/hdr")"
ok "no certificate: 401 on every path but the public ones, existing or not; a wrong method: 405 with Allow"
