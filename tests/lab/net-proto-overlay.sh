#!/usr/bin/env bash
# The overlay on two lab hosts, made by the overlay's reconcile with the
# real netlink layer (tests/tools/overlay_apply) and Docker's bridge driver
# bound to its bridge: a container on h1 fetches from a busybox httpd on h2
# by address; the bytes cross eth1 (data), not eth0 (control); a second
# reconcile changes nothing; a remote task's entries removed break the
# path, put back restore it. Also checks the recipe's facts: the container
# MAC derived from its address, MTU 1450 inside, the gateway address on the
# bridge, the bridge left in place by `docker network rm`.
# Run under the lab lock: flock /tmp/skiff-lab.lock tests/lab/net-proto-overlay.sh
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/net-proto-lib.sh"

NET=abcdefghij0123456789klmnop
BR=skbabcdefghij
VX=skvabcdefghij
SUBNET=10.0.9.0/24
GW1=10.0.9.1
GW2=10.0.9.2
CLIENT_IP=10.0.9.10
SERVER_IP=10.0.9.20

cleanup() {
    local rc=$?
    "$LAB" down >/dev/null 2>&1 || true
    [ $rc = 0 ] || log "FAILED (lab taken down)"
}
trap cleanup EXIT

"$LAB" down >/dev/null 2>&1 || true
"$LAB" up --hosts 2

# 1. The devices, by the reconcile.
out=$(overlay_apply h1 "$(overlay_json h1 $NET 4097 $SUBNET $GW1 $SERVER_IP@h2)") ||
    fail "overlay_apply on h1: $out"
expect_changes 5 "$out" "h1: bridge, VXLAN device, gateway address, FDB and neighbour entry"
out=$(overlay_apply h2 "$(overlay_json h2 $NET 4097 $SUBNET $GW2 $CLIENT_IP@h1)") ||
    fail "overlay_apply on h2: $out"
expect_changes 5 "$out" "h2: the same"
grep -q "vxlan id 4097 local 10.78.0.11 .*dstport 4789 nolearning proxy" <<<"$("$LAB" exec h1 ip -d link show $VX)" ||
    fail "h1's VXLAN device: $("$LAB" exec h1 ip -d link show $VX)"
pass "VXLAN device: VNI 4097, local 10.78.0.11, port 4789, nolearning, proxy"
grep -q "mtu 1500 " <<<"$("$LAB" exec h1 ip link show eth1)" &&
    grep -q "mtu 1450 .*master $BR" <<<"$("$LAB" exec h1 ip link show $VX)" ||
    fail "h1's VXLAN device: MTU or master wrong"
pass "VXLAN device: MTU 1450 (eth1's 1500 - 50), enslaved to $BR"
grep -q "^02:42:0a:00:09:14 dst 10.78.0.12 self permanent" <<<"$("$LAB" exec h1 bridge fdb show dev $VX)" ||
    fail "h1's FDB: $("$LAB" exec h1 bridge fdb show dev $VX)"
grep -q "^$SERVER_IP lladdr 02:42:0a:00:09:14 PERMANENT" <<<"$("$LAB" exec h1 ip neigh show dev $VX)" ||
    fail "h1's neighbours: $("$LAB" exec h1 ip neigh show dev $VX)"
pass "h1: FDB entry and neighbour entry of the remote task"

# 2. Docker on our bridge.
docker_network h1 back $SUBNET $GW1 $BR || fail "docker network create on h1 (bridge exists, address set)"
docker_network h2 back $SUBNET $GW2 $BR || fail "docker network create on h2"
pass "dockerd takes the existing bridge with its gateway address already on it"
[ "$("$LAB" exec h1 ip -4 -o addr show dev $BR | awk '{print $4}')" = "$GW1/24" ] ||
    fail "h1's bridge addresses: $("$LAB" exec h1 ip -4 -o addr show dev $BR)"
pass "one gateway address on h1's bridge ($GW1/24)"

run_task h2 api back $SERVER_IP httpd -f -p 80 -h /var/www || fail "httpd container on h2"
run_task h1 client back $CLIENT_IP sleep 600 || fail "client container on h1"
in_task h2 api 'dd if=/dev/zero of=/var/www/big bs=1024 count=300 2>/dev/null' ||
    fail "cannot write the test file"

mac=$("$LAB" docker h2 inspect -f '{{.NetworkSettings.Networks.back.MacAddress}}' api)
[ "$mac" = 02:42:0a:00:09:14 ] || fail "api's MAC is $mac, not derived from $SERVER_IP"
pass "container MAC derived from its address (02:42:0a:00:09:14)"
mtu=$(in_task h1 client 'cat /sys/class/net/eth0/mtu')
[ "$mtu" = 1450 ] || fail "client's eth0 MTU is $mtu"
pass "container MTU 1450 (com.docker.network.driver.mtu)"

# A second reconcile, after dockerd attached its veths: nothing to do.
out=$(overlay_apply h1 "$(overlay_json h1 $NET 4097 $SUBNET $GW1 $SERVER_IP@h2)") || fail "$out"
expect_changes 0 "$out" "h1: second reconcile with Docker's ports on the bridge"
out=$(overlay_apply h2 "$(overlay_json h2 $NET 4097 $SUBNET $GW2 $CLIENT_IP@h1)") || fail "$out"
expect_changes 0 "$out" "h2: second reconcile"

# 3. Across hosts, on the data interface only.
body=$(fetch h1 client "http://$SERVER_IP/") || fail "client on h1 cannot fetch from api on h2"
[ "$body" = "hello from skiff-test/busybox" ] || fail "unexpected body: $body"
pass "h1 container -> h2 container by address over the overlay"

read -r c_rx0 c_tx0 < <(if_bytes h1 eth0)
read -r d_rx0 d_tx0 < <(if_bytes h1 eth1)
in_task h1 client "timeout 10 wget -qO /dev/null http://$SERVER_IP/big" || fail "fetching 300 KiB"
read -r c_rx1 c_tx1 < <(if_bytes h1 eth0)
read -r d_rx1 d_tx1 < <(if_bytes h1 eth1)
d_rx=$((d_rx1 - d_rx0)) c_all=$((c_rx1 - c_rx0 + c_tx1 - c_tx0))
log "h1 eth1 (data): rx $d_rx bytes, tx $((d_tx1 - d_tx0)); eth0 (control): rx+tx $c_all bytes"
[ "$d_rx" -ge 307200 ] || fail "300 KiB did not arrive on eth1 (only $d_rx bytes)"
[ "$c_all" -lt 2048 ] || fail "$c_all bytes moved on eth0 (control) during the transfer"
pass "the transfer crossed eth1 only"
# MTU end to end: a full-size segment crossed without fragmentation.
in_task h1 client "ping -c 1 -W 2 -s 1422 $SERVER_IP >/dev/null" ||
    fail "a 1450-byte packet does not cross the overlay"
pass "a 1450-byte IP packet crosses the overlay"

# 4. The remote task's entries gone: no path. Put back: the path returns.
out=$(overlay_apply h1 "$(overlay_json h1 $NET 4097 $SUBNET $GW1)") || fail "$out"
expect_changes 2 "$out" "h1: remote task removed (one FDB and one neighbour delete)"
# The client's ARP cache and the bridge may still know the MAC: the frame
# reaches the VXLAN device, which has no destination for it and drops it.
if fetch h1 client "http://$SERVER_IP/" >/dev/null 2>&1; then
    fail "the path still works without the remote task's entries"
fi
pass "without the entries the path is broken"
out=$(overlay_apply h1 "$(overlay_json h1 $NET 4097 $SUBNET $GW1 $SERVER_IP@h2)") || fail "$out"
expect_changes 2 "$out" "h1: remote task back"
wait_for 5 fetch h1 client "http://$SERVER_IP/" || fail "the path did not come back"
pass "entries back: the path works again"

# 5. docker network rm leaves our bridge (and its address) alone.
"$LAB" docker h1 rm -f client >/dev/null
"$LAB" docker h1 network rm back >/dev/null || fail "docker network rm on h1"
"$LAB" exec h1 ip link show $BR >/dev/null 2>&1 || fail "docker network rm removed our bridge"
pass "docker network rm leaves the bridge"
out=$(overlay_apply h1 '{"local_vtep":"10.78.0.11","networks":[]}') || fail "$out"
expect_changes 2 "$out" "h1: network no longer wanted: VXLAN device and bridge removed"
if "$LAB" exec h1 ip link show $BR >/dev/null 2>&1; then fail "bridge still there"; fi
pass "all done"
