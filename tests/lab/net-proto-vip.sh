#!/usr/bin/env bash
# Virtual IPs (agent/vip.c, through tests/tools/vip_apply) on the overlay of
# net-proto-overlay.sh: two httpd backends answering their own hostname, one
# on h1 and one on h2; a client container on h1 whose namespace gets the
# VIP's DNAT rules. 30 fetches through the VIP reach both backends; the
# backend sees the client's own address; with one backend taken out of the
# rules every fetch goes to the other; with none, a connection to the VIP
# is refused at once.
# Run under the lab lock: flock /tmp/skiff-lab.lock tests/lab/net-proto-vip.sh
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/net-proto-lib.sh"

VIP_APPLY=$BUILD_DIR/tests/vip_apply
[ -x "$VIP_APPLY" ] || fail "$VIP_APPLY not found: build it first"

NET=abcdefghij0123456789klmnop
BR=skbabcdefghij
SUBNET=10.0.9.0/24
GW1=10.0.9.1
GW2=10.0.9.2
CLIENT_IP=10.0.9.10
B1=10.0.9.21 # on h1
B2=10.0.9.22 # on h2
VIP=10.0.9.100

cleanup() {
    local rc=$?
    "$LAB" down >/dev/null 2>&1 || true
    [ $rc = 0 ] || log "FAILED (lab taken down)"
}
trap cleanup EXIT

"$LAB" down >/dev/null 2>&1 || true
"$LAB" up --hosts 2

out=$(overlay_apply h1 "$(overlay_json h1 $NET 4097 $SUBNET $GW1 $B2@h2)") || fail "$out"
out=$(overlay_apply h2 "$(overlay_json h2 $NET 4097 $SUBNET $GW2 $CLIENT_IP@h1 $B1@h1)") || fail "$out"
docker_network h1 back $SUBNET $GW1 $BR || fail "docker network on h1"
docker_network h2 back $SUBNET $GW2 $BR || fail "docker network on h2"
# -v: httpd logs each request with the peer's address.
serve_hostname='hostname >/var/www/index.html && exec httpd -f -v -p 80 -h /var/www'
run_task h1 backend-1 back $B1 sh -c "$serve_hostname" || fail "backend-1"
run_task h2 backend-2 back $B2 sh -c "$serve_hostname" || fail "backend-2"
run_task h1 client back $CLIENT_IP sleep 600 || fail "client"
wait_for 5 fetch h1 client "http://$B1/" || fail "backend-1 does not answer directly"
wait_for 5 fetch h1 client "http://$B2/" || fail "backend-2 does not answer directly"

netns=$("$LAB" docker h1 inspect -f '{{.NetworkSettings.SandboxKey}}' client)
pid=$("$LAB" docker h1 inspect -f '{{.State.Pid}}' client)
log "client's namespace: SandboxKey $netns, State.Pid $pid"
[ -e "$netns" ] || fail "SandboxKey $netns does not exist"

# count_backends N: fetches the VIP N times; prints "NAME COUNT" lines.
count_backends() {
    in_task h1 client "for i in \$(seq $1); do timeout 5 wget -qO- http://$VIP/ || echo FAILED; done" |
        sort | uniq -c | awk '{print $2, $1}'
}

# The VIP's rules, applied from h1 (as the agent would) to the client's
# namespace named by its SandboxKey.
"$LAB" exec h1 "$VIP_APPLY" "$netns" "$VIP=$B1,$B2" >/dev/null || fail "vip_apply"
in_task h1 client "ip route get $VIP" >/dev/null || fail "no route to the VIP"
counts=$(count_backends 30)
log "30 fetches through $VIP: $(tr '\n' ' ' <<<"$counts")"
grep -q "^backend-1 " <<<"$counts" && grep -q "^backend-2 " <<<"$counts" ||
    fail "not both backends reached: $counts"
! grep -q FAILED <<<"$counts" || fail "some fetches failed: $counts"
pass "30 connections through the VIP reach both backends (h1 and h2)"

# The backend on h2 saw the client's own address (no SNAT); httpd -v logs
# "[::ffff:10.0.9.10]:PORT: response:200".
peers=$("$LAB" docker h2 logs backend-2 2>&1)
grep -q "ffff:$CLIENT_IP\]" <<<"$peers" ||
    fail "backend-2's log does not show $CLIENT_IP: $(tail -3 <<<"$peers")"
pass "the backend sees the client's address $CLIENT_IP"

# Only backend-1 left: every connection goes there, at once.
"$LAB" exec h1 "$VIP_APPLY" "$netns" "$VIP=$B1" >/dev/null || fail "vip_apply"
counts=$(count_backends 30)
log "30 fetches with backend-2 out: $(tr '\n' ' ' <<<"$counts")"
[ "$counts" = "backend-1 30" ] || fail "expected all on backend-1: $counts"
pass "one backend taken out: all 30 go to the other"

# No backend: refused at once (not a timeout). The client's namespace
# also works through /proc/PID/ns/net.
"$LAB" exec h1 "$VIP_APPLY" "/proc/$pid/ns/net" "$VIP=" >/dev/null || fail "vip_apply"
msg=$(in_task h1 client "timeout 2 wget -qO- http://$VIP/ 2>&1; echo rc=\$?")
grep -q "Connection refused" <<<"$msg" || fail "no backend: expected a refusal within 2 s, got: $msg"
pass "no backend: the connection is refused at once"

# No service: the table is gone from the client's namespace.
"$LAB" exec h1 "$VIP_APPLY" "$netns" >/dev/null || fail "vip_apply (nothing)"
if "$LAB" exec h1 nsenter --net="$netns" nft list table ip skiff_vip >/dev/null 2>&1; then
    fail "the table is still in the client's namespace"
fi
pass "no service: the table is removed"
# Nothing was ever added to h1's own rule set.
if "$LAB" exec h1 nft list table ip skiff_vip >/dev/null 2>&1; then
    fail "a skiff_vip table in h1's own namespace"
fi
pass "h1's own rule set untouched"
pass "all done"
