#!/usr/bin/env bash
# The DNS responder (agent/dns.c, through tests/tools/dns_serve) behind
# Docker's embedded resolver, on the overlay of net-proto-overlay.sh: a
# container on h1 whose HostConfig.Dns is h1's gateway address of the
# network asks 127.0.0.11, which forwards names it does not know to our
# server. Shows that
#   - the forwarded query comes from the container's own address on the
#     network (our table knows only that address; a second container, not
#     in the table, is refused),
#   - NAME gives the VIP, tasks.NAME the task addresses, an alias works,
#     unknown names fail,
#   - Docker still answers container names itself,
#   - a change of the table is seen by the next query (well within 1 s).
# Run under the lab lock: flock /tmp/skiff-lab.lock tests/lab/net-proto-dns.sh
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/net-proto-lib.sh"

DNS_SERVE=$BUILD_DIR/tests/dns_serve
[ -x "$DNS_SERVE" ] || fail "$DNS_SERVE not found: build it first"

NET=abcdefghij0123456789klmnop
BR=skbabcdefghij
SUBNET=10.0.9.0/24
GW1=10.0.9.1
GW2=10.0.9.2
CLIENT_IP=10.0.9.10
STRANGER_IP=10.0.9.11
API1=10.0.9.20
API2=10.0.9.21
VIP=10.0.9.100

WORK=$(mktemp -d /tmp/skiff-net-dns.XXXXXX)
cleanup() {
    local rc=$?
    [ -f "$WORK/pid" ] && "$LAB" exec h1 kill -TERM "$(cat "$WORK/pid")" 2>/dev/null || true
    "$LAB" down >/dev/null 2>&1 || true
    rm -rf "$WORK"
    [ $rc = 0 ] || log "FAILED (lab taken down)"
}
trap cleanup EXIT

"$LAB" down >/dev/null 2>&1 || true
"$LAB" up --hosts 2

out=$(overlay_apply h1 "$(overlay_json h1 $NET 4097 $SUBNET $GW1 $API1@h2 $API2@h2)") || fail "$out"
out=$(overlay_apply h2 "$(overlay_json h2 $NET 4097 $SUBNET $GW2 $CLIENT_IP@h1 $STRANGER_IP@h1)") || fail "$out"
docker_network h1 back $SUBNET $GW1 $BR || fail "docker network on h1"
docker_network h2 back $SUBNET $GW2 $BR || fail "docker network on h2"
run_task h2 api-1 back $API1 httpd -f -p 80 -h /var/www || fail "api-1"
run_task h2 api-2 back $API2 httpd -f -p 80 -h /var/www || fail "api-2"
# The clients ask h1's gateway address (HostConfig.Dns).
"$LAB" docker h1 run -d --name client --network back --ip $CLIENT_IP --dns $GW1 \
    "$IMAGE" sleep 600 >/dev/null || fail "client"
"$LAB" docker h1 run -d --name stranger --network back --ip $STRANGER_IP --dns $GW1 \
    "$IMAGE" sleep 600 >/dev/null || fail "stranger"
grep -q "nameserver 127.0.0.11" <<<"$(in_task h1 client 'cat /etc/resolv.conf')" ||
    fail "client's resolv.conf does not point at Docker's embedded resolver"
pass "containers on a user-defined network ask 127.0.0.11"

write_config() { # VIP TASKS_JSON
    cat >"$WORK/dns.json" <<EOF
{"port": 53, "listen": ["$GW1"],
 "services": [{"network": "$NET", "name": "api", "aliases": ["backend"],
               "mode": "vip", "vip": "$1", "tasks": $2}],
 "endpoints": [{"addr": "$CLIENT_IP", "network": "$NET", "task": "client"}]}
EOF
}
write_config $VIP "[\"$API1\", \"$API2\"]"
"$LAB" exec h1 sh -c "echo \$\$ >$WORK/pid; exec $DNS_SERVE $WORK/dns.json" >"$WORK/log" 2>&1 &
wait_for 5 grep -q ready "$WORK/log" || fail "dns_serve did not start: $(cat "$WORK/log")"
pass "DNS responder listening on $GW1:53 in h1's namespace"

# addresses HOST CONTAINER NAME: the addresses nslookup prints for NAME.
addresses() {
    { in_task "$1" "$2" "nslookup $3 2>&1" || true; } | awk '/^Address: / {print $2}' | sort | tr '\n' ' '
}

got=$(addresses h1 client api)
[ "$got" = "$VIP " ] || fail "api -> '$got', want $VIP; nslookup: $(in_task h1 client 'nslookup api 2>&1')"
pass "api -> $VIP (the VIP), answered through 127.0.0.11 from the container's own address"
got=$(addresses h1 client tasks.api)
[ "$got" = "$API1 $API2 " ] || fail "tasks.api -> '$got'"
pass "tasks.api -> $API1 $API2"
got=$(addresses h1 client backend)
[ "$got" = "$VIP " ] || fail "backend (alias) -> '$got'"
pass "alias backend -> $VIP"
got=$(addresses h1 client nosuchservice)
[ -z "$got" ] || fail "an unknown name resolved: '$got'"
pass "unknown name: no address"
# The stranger is on the same Docker network, but our table does not know
# its address: refused. This is what shows the source of the forwarded query
# is the container's own address, not the resolver's or the gateway's.
got=$(addresses h1 stranger api)
[ -z "$got" ] || fail "stranger resolved api: '$got'"
pass "a container whose address the table does not know gets nothing"
got=$(addresses h1 stranger client)
[ "$got" = "$CLIENT_IP " ] || fail "Docker did not answer the container name 'client': '$got'"
pass "Docker's embedded resolver answers container names itself (client -> $CLIENT_IP)"
body=$(fetch h1 client "http://tasks.api/") || fail "wget by name"
[ "$body" = "hello from skiff-test/busybox" ] || fail "unexpected body: $body"
pass "wget http://tasks.api/ from h1 reaches a task on h2"

# A change is seen by the next query: api-2 gone, the VIP moved.
write_config 10.0.9.101 "[\"$API1\"]"
t0=$(now_ms)
"$LAB" exec h1 kill -HUP "$(cat "$WORK/pid")"
until [ "$(addresses h1 client tasks.api)" = "$API1 " ] &&
    [ "$(addresses h1 client api)" = "10.0.9.101 " ]; do
    [ "$(elapsed_ms "$t0")" -lt 3000 ] || fail "the change was not seen within 3 s"
    sleep 0.05
done
ms=$(elapsed_ms "$t0")
log "change seen after $ms ms (reload and two nslookups included)"
[ "$ms" -lt 1000 ] || fail "the change took $ms ms to be seen"
pass "a change is seen within 1 s"

"$LAB" exec h1 kill -TERM "$(cat "$WORK/pid")"
wait_for 5 grep -q "^queries" "$WORK/log" || fail "dns_serve did not stop"
log "dns_serve: $(grep '^queries' "$WORK/log")"
rm -f "$WORK/pid"
pass "all done"
