#!/usr/bin/env bash
# Isolation facts of the overlay recipe (net-proto-overlay.sh) on the lab:
#   - two skiff networks (two bridges, two Docker networks) on one host:
#     their containers cannot reach each other (Docker's
#     DOCKER-ISOLATION-STAGE-1/2 chains apply to our bridges too);
#   - a container on the default bridge (docker0) cannot reach an overlay
#     address;
#   - a container on an --internal network has no route out and reaches
#     nothing off its subnet, but still reaches remote tasks over the
#     overlay, and (a fact for the DNS responder) whether Docker's embedded
#     resolver forwards its queries;
#   - what every container can still reach: the host's own addresses.
# Run under the lab lock: flock /tmp/skiff-lab.lock tests/lab/net-proto-isolation.sh
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/net-proto-lib.sh"

DNS_SERVE=$BUILD_DIR/tests/dns_serve
[ -x "$DNS_SERVE" ] || fail "$DNS_SERVE not found: build it first"

NET_A=aaaaaaaaaa0123456789klmnop BR_A=skbaaaaaaaaaa
NET_B=bbbbbbbbbb0123456789klmnop BR_B=skbbbbbbbbbbb
NET_I=iiiiiiiiii0123456789klmnop BR_I=skbiiiiiiiiii

WORK=$(mktemp -d /tmp/skiff-net-iso.XXXXXX)
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

# Network A on h1 and h2, B on h1 only, the internal network I on h1 and h2.
both=$(printf '{"local_vtep":"%s","networks":[%s,%s,%s]}' "$(vtep_of h1)" \
    "{\"id\":\"$NET_A\",\"vni\":4101,\"subnet\":\"10.0.1.0/24\",\"gateway\":\"10.0.1.1\",\"remotes\":[{\"ip\":\"10.0.1.20\",\"vtep\":\"$(vtep_of h2)\"}]}" \
    "{\"id\":\"$NET_B\",\"vni\":4102,\"subnet\":\"10.0.2.0/24\",\"gateway\":\"10.0.2.1\",\"remotes\":[]}" \
    "{\"id\":\"$NET_I\",\"vni\":4103,\"subnet\":\"10.0.3.0/24\",\"gateway\":\"10.0.3.1\",\"remotes\":[{\"ip\":\"10.0.3.20\",\"vtep\":\"$(vtep_of h2)\"}]}")
out=$(overlay_apply h1 "$both") || fail "$out"
expect_changes 13 "$out" "h1: three networks"
h2=$(printf '{"local_vtep":"%s","networks":[%s,%s]}' "$(vtep_of h2)" \
    "{\"id\":\"$NET_A\",\"vni\":4101,\"subnet\":\"10.0.1.0/24\",\"gateway\":\"10.0.1.2\",\"remotes\":[{\"ip\":\"10.0.1.10\",\"vtep\":\"$(vtep_of h1)\"}]}" \
    "{\"id\":\"$NET_I\",\"vni\":4103,\"subnet\":\"10.0.3.0/24\",\"gateway\":\"10.0.3.2\",\"remotes\":[{\"ip\":\"10.0.3.10\",\"vtep\":\"$(vtep_of h1)\"}]}")
out=$(overlay_apply h2 "$h2") || fail "$out"

docker_network h1 net-a 10.0.1.0/24 10.0.1.1 $BR_A || fail "net-a on h1"
docker_network h1 net-b 10.0.2.0/24 10.0.2.1 $BR_B || fail "net-b on h1"
docker_network h2 net-a 10.0.1.0/24 10.0.1.2 $BR_A || fail "net-a on h2"
"$LAB" docker h1 network create -d bridge --internal --subnet 10.0.3.0/24 --gateway 10.0.3.1 \
    -o com.docker.network.bridge.name=$BR_I -o com.docker.network.driver.mtu=1450 net-i >/dev/null ||
    fail "docker accepts --internal on our bridge"
"$LAB" docker h2 network create -d bridge --internal --subnet 10.0.3.0/24 --gateway 10.0.3.2 \
    -o com.docker.network.bridge.name=$BR_I -o com.docker.network.driver.mtu=1450 net-i >/dev/null ||
    fail "net-i on h2"
pass "dockerd takes --internal with our bridge"

web='exec httpd -f -p 80 -h /var/www'
run_task h1 a1 net-a 10.0.1.10 sh -c "$web" || fail "a1"
run_task h2 a2 net-a 10.0.1.20 sh -c "$web" || fail "a2"
run_task h1 b1 net-b 10.0.2.10 sh -c "$web" || fail "b1"
"$LAB" docker h1 run -d --name i1 --network net-i --ip 10.0.3.10 --dns 10.0.3.1 "$IMAGE" \
    sh -c "$web" >/dev/null || fail "i1"
run_task h2 i2 net-i 10.0.3.20 sh -c "$web" || fail "i2"
"$LAB" docker h1 run -d --name d1 "$IMAGE" sh -c "$web" >/dev/null || fail "d1 (default bridge)"

reach() { fetch "$1" "$2" "http://$3/" >/dev/null 2>&1; }

expect "a1 -> a2 (same network, across hosts)" reach h1 a1 10.0.1.20
expect_not "a1 -> b1 (two skiff networks on one host)" reach h1 a1 10.0.2.10
expect_not "b1 -> a1 (the other way)" reach h1 b1 10.0.1.10
grep -q -- "-i $BR_A ! -o $BR_A -j DOCKER-ISOLATION-STAGE-2" <<<"$("$LAB" exec h1 iptables -S DOCKER-ISOLATION-STAGE-1)" ||
    fail "no isolation rule for $BR_A"
grep -q -- "-o $BR_B -j DROP" <<<"$("$LAB" exec h1 iptables -S DOCKER-ISOLATION-STAGE-2)" ||
    fail "no isolation rule for $BR_B"
pass "Docker's DOCKER-ISOLATION-STAGE-1/2 rules name our bridges"
d1_ip=$("$LAB" docker h1 inspect -f '{{.NetworkSettings.IPAddress}}' d1)
expect_not "d1 (default bridge) -> a1 (overlay address on the same host)" reach h1 d1 10.0.1.10
expect_not "d1 (default bridge) -> a2 (overlay address on another host)" reach h1 d1 10.0.1.20
expect_not "a1 -> d1 ($d1_ip, default bridge)" reach h1 a1 "$d1_ip"

# What containers do reach: the host's own addresses (INPUT, not FORWARD),
# e.g. another network's gateway and the host's control address.
in_task h1 a1 "ping -c 1 -W 2 10.0.2.1 >/dev/null" &&
    log "fact: a1 reaches h1's address on network B (10.0.2.1): host addresses are not isolated" ||
    log "fact: a1 does not reach 10.0.2.1"
in_task h1 a1 "ping -c 1 -W 2 10.77.0.11 >/dev/null" &&
    log "fact: a1 reaches h1's control address 10.77.0.11" ||
    log "fact: a1 does not reach 10.77.0.11"
in_task h1 a1 "ping -c 1 -W 2 10.77.0.12 >/dev/null" &&
    log "fact: a1 reaches h2's control address 10.77.0.12 (routed, masqueraded by h1)" ||
    log "fact: a1 does not reach h2's control address 10.77.0.12"

# The internal network.
routes=$(in_task h1 i1 "ip route")
log "i1's routes: $(tr '\n' ';' <<<"$routes")"
grep -q "^default" <<<"$routes" &&
    log "fact: a container on an --internal network still has a default route (via its gateway)" ||
    log "fact: a container on an --internal network has no default route"
log "h1's rules for the internal bridge: $("$LAB" exec h1 iptables -S | grep -- "$BR_I" | tr '\n' ';')"
expect "i1 -> i2 (internal network, across hosts over the overlay)" reach h1 i1 10.0.3.20
expect_not "i1 -> a1 (another network on the same host)" reach h1 i1 10.0.1.10
expect_not "i1 -> 10.77.0.12 (off the subnet)" in_task h1 i1 "ping -c 1 -W 2 10.77.0.12"
expect_not "a1 -> i1 (into the internal network)" reach h1 a1 10.0.3.10
in_task h1 i1 "ping -c 1 -W 2 10.0.3.1 >/dev/null" &&
    log "fact: i1 reaches its gateway address 10.0.3.1 (the host)" ||
    log "fact: i1 does not reach its gateway address 10.0.3.1"
in_task h1 i1 "ping -c 1 -W 2 10.77.0.11 >/dev/null" &&
    log "fact: i1 (internal) reaches h1's control address 10.77.0.11: the host's own addresses are open to it" ||
    log "fact: i1 (internal) does not reach h1's control address 10.77.0.11"

# Does Docker's embedded resolver forward an internal network's queries to
# HostConfig.Dns? The responder answers "api" for i1's address.
cat >"$WORK/dns.json" <<EOF
{"port": 53, "listen": ["10.0.3.1"],
 "services": [{"network": "$NET_I", "name": "api", "mode": "vip", "vip": "10.0.3.100"}],
 "endpoints": [{"addr": "10.0.3.10", "network": "$NET_I", "task": "i1"}]}
EOF
"$LAB" exec h1 sh -c "echo \$\$ >$WORK/pid; exec $DNS_SERVE $WORK/dns.json" >"$WORK/log" 2>&1 &
wait_for 5 grep -q ready "$WORK/log" || fail "dns_serve did not start: $(cat "$WORK/log")"
ns=$(in_task h1 i1 "nslookup api 2>&1" || true)
if grep -q "Address: 10.0.3.100" <<<"$ns"; then
    log "fact: on an --internal network, 127.0.0.11 forwards to HostConfig.Dns (api -> 10.0.3.100)"
else
    log "fact: on an --internal network, 127.0.0.11 does NOT forward to HostConfig.Dns: $(tr '\n' ';' <<<"$ns")"
fi
direct=$(in_task h1 i1 "nslookup api 10.0.3.1 2>&1" || true)
grep -q "Address: 10.0.3.100" <<<"$direct" &&
    log "fact: asked directly (nslookup api 10.0.3.1), the responder answers an internal network's container" ||
    log "fact: asked directly, no answer: $(tr '\n' ';' <<<"$direct")"
"$LAB" exec h1 kill -TERM "$(cat "$WORK/pid")"
wait_for 5 grep -q "^queries" "$WORK/log" || true
log "dns_serve: $(grep '^queries' "$WORK/log" || echo '?')"
rm -f "$WORK/pid"
pass "all done"
