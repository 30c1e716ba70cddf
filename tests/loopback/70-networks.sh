#!/usr/bin/env bash
# Overlay networks as cluster objects, stopping at the store: `skiff network
# create|ls|inspect|rm` (VNIs and subnets from the default pool or given),
# bad input refused with the cause and nothing changed, services on
# networks (VIPs, the tasks' and the nodes' own addresses, given by the
# leader's pipeline), an exhausted subnet leaving tasks pending with the
# reason, and `skiffd --init --default-addr-pool`. No container runs (the
# agents have no dockerd): tasks are assigned and stay so, which is enough,
# as addresses are given when tasks are created and nodes'
# when tasks are placed.
. "$(dirname "$0")/lib.sh"

IMG=busybox:1
init_cluster m1
join m2 manager

# net_field NET JQ-PATH: a field of the network as inspect shows it.
net_field() { sk network inspect "$1" | jq -r ".[0] | $2"; }
svc_field() { sk service inspect "$1" | jq -r ".[0] | $2"; }
# in_subnet ADDR[/LEN] CIDR: the address lies in the subnet.
in_subnet() {
    local ip=${1%/*} net=${2%/*} len=${2#*/} a b c d
    IFS=. read -r a b c d <<<"$ip"
    local x=$(( (a << 24) | (b << 16) | (c << 8) | d ))
    IFS=. read -r a b c d <<<"$net"
    local y=$(( (a << 24) | (b << 16) | (c << 8) | d ))
    local mask=$(( (0xffffffff << (32 - len)) & 0xffffffff ))
    [ $(( x & mask )) = $(( y & mask )) ]
}

# --- create, ls, inspect: the default pool's /24s, VNIs from 4096 ----------
back_id=$(sk network create back)
front_id=$(sk network create --driver overlay front)
eq "$(net_field back .id)" "$back_id" "network create prints the ID"
eq "$(net_field back '[.subnet, .gateway, .vni, .spec.driver] | join(" ")')" \
    "10.0.0.0/24 10.0.0.1 4096 overlay" "back from the default pool"
eq "$(net_field front '[.subnet, .gateway, .vni] | join(" ")')" \
    "10.0.1.0/24 10.0.1.1 4097" "front: the next /24, the next VNI"
db_id=$(sk network create --subnet 10.9.0.0/24 --gateway 10.9.0.254 \
    --label team=data --internal --attachable db)
eq "$(net_field db '[.subnet, .gateway, .spec.labels.team, .spec.internal, .spec.attachable] | join(" ")')" \
    "10.9.0.0/24 10.9.0.254 data true true" "db as given"
eq "$(net_field "${db_id:0:6}" .spec.name)" db "inspect by ID prefix"
ls_out=$(sk network ls)
contains "$ls_out" "NAME" "ls header"
[[ $ls_out =~ back\ +$back_id\ +overlay\ +10\.0\.0\.0/24\ +10\.0\.0\.1\ +4096\ +0 ]] ||
    fail "ls row of back: $ls_out"
eq "$(sk network ls -q | sort | tr '\n' ' ')" \
    "$(printf '%s\n' "$back_id" "$front_id" "$db_id" | sort | tr '\n' ' ')" "ls -q"
eq "$(sk network ls --format json | jq -r '[.[].spec.name] | join(",")')" \
    "back,db,front" "ls --format json, by name"
# Reads on any manager; a write through a follower reaches the leader.
# (A follower may not have applied the latest entries yet: poll.)
m2_sees() { [ "$(sk_at m2 network inspect "$1" | jq -r ".[0].$2")" = "$3" ]; }
must 5 "m2 sees back" m2_sees back subnet 10.0.0.0/24
scratch_id=$(sk_at m2 network create scratch)
must 5 "m2 sees scratch" m2_sees scratch id "$scratch_id"
eq "$(net_field scratch .subnet)" 10.0.2.0/24 "scratch: the next /24"
sk network rm scratch >/dev/null
expect_fail "inspect a removed network" sk network inspect scratch
contains "$OUT" 'no such network: "scratch"' "inspect of a removed network"
must 5 "creation logged once committed" grep -q "network back created ($back_id, 10.0.0.0/24, VNI 4096)" "$TEST_DIR/m1.log"
ok "network create/ls/inspect/rm: default pool 10.0.0.0/24, 10.0.1.0/24, ...; subnet, gateway, labels as given"

# --- bad input: refused, named, nothing changed ---------------------------
before=$(sk network ls --format json | jq -c '[.[] | [.id, .version]]')
bad() { # EXPECTED-MESSAGE ARGS...
    local want=$1; shift
    expect_fail "network $*" sk network "$@"
    contains "$OUT" "$want" "message for network $*"
}
bad 'network "x": subnet "10.8.0.1/24" is not an IPv4 subnet like 10.0.9.0/24' create --subnet 10.8.0.1/24 x
bad 'network "x": subnet "banana" is not an IPv4 subnet' create --subnet banana x
bad 'network "x": subnet 10.9.0.128/25 overlaps network "db"'"'"'s (10.9.0.0/24)' create --subnet 10.9.0.128/25 x
bad 'network "x": subnet 10.0.0.0/8: the prefix length must be from /16 to /29' create --subnet 10.0.0.0/8 x
bad 'network "x": gateway 10.8.1.1 is not a host address of the subnet' create --subnet 10.8.0.0/24 --gateway 10.8.1.1 x
bad 'network "x": driver "bridge" is not supported' create --driver bridge x
bad 'network "x": a gateway needs a subnet' create --gateway 10.0.5.1 x
bad 'network "back" already exists' create back
bad 'network: invalid name "-x"' create -- -x
bad 'no such network: "nope"' rm nope
# The manager checks what the CLI checks, for other clients.
cred_files "$ADMIN" "$TEST_DIR/admin"
r=$(https POST "https://$(api m1)/v1/networks" "$TEST_DIR/admin" '{"spec":{"name":"x","driver":"macvlan"}}')
contains "$r" '400 ' "status of a macvlan network"
contains "$r" 'network \"x\": driver \"macvlan\" is not supported' "macvlan refused by the API"
r=$(https POST "https://$(api m1)/v1/networks" "$TEST_DIR/admin" '{"spec":{"name":"x","subnets":"10.1.0.0/24"}}')
contains "$r" 'spec: unknown field \"subnets\"' "the spec is decoded strictly"
r=$(https POST "https://$(api m1)/v1/networks" "$TEST_DIR/admin" '{"spec":{"name":"x","gateway":"10.1.0.1"}}')
contains "$r" 'network \"x\": a gateway needs a subnet' "gateway without subnet refused by the API"
eq "$(sk network ls --format json | jq -c '[.[] | [.id, .version]]')" "$before" "networks after bad input"
ok "bad networks refused with the cause (invalid, overlapping, too large, gateway outside, driver, name); nothing changed"

# --- services on networks: IDs resolved, VIPs, addresses ------------------
api_id=$(sk service create -q --name api --network back --network name=db,alias=database "$IMG" sleep 1000)
eq "$(svc_field api '.spec.task.networks | map([.target, .id, (.aliases | join("+"))] | join(":")) | join(" ")')" \
    "back:$back_id: db:$db_id:database" "the service's networks, resolved"
eq "$(svc_field api .spec.endpoint.mode)" vip "endpoint mode by default"
has_vips() { [ "$(svc_field "$1" '.vips | length')" = "$2" ]; }
must 10 "api has a VIP on back and on db" has_vips api 2
vip_back=$(svc_field api ".vips[] | select(.network_id == \"$back_id\") | .addr")
vip_db=$(svc_field api ".vips[] | select(.network_id == \"$db_id\") | .addr")
in_subnet "$vip_back" 10.0.0.0/24 || fail "VIP $vip_back not in back's subnet"
in_subnet "$vip_db" 10.9.0.0/24 || fail "VIP $vip_db not in db's subnet"
# task_addr SERVICE NET-ID: the address of the service's (live) tasks on
# the network, one per line.
task_addrs() {
    sk service ps --format json "$1" |
        jq -r ".[] | select(.desired_state == \"running\") | .networks[] | select(.network_id == \"$2\") | .addresses[]"
}
has_task_addr() { [ -n "$(task_addrs "$1" "$2")" ]; }
must 10 "api's task has its addresses" has_task_addr api "$db_id"
a_back=$(task_addrs api "$back_id")
a_db=$(task_addrs api "$db_id")
in_subnet "$a_back" 10.0.0.0/24 || fail "task address $a_back not in back"
in_subnet "$a_db" 10.9.0.0/24 || fail "task address $a_db not in db"
[ "${a_back%/*}" != "${vip_back%/*}" ] && [ "${a_back%/*}" != 10.0.0.1 ] || fail "task address $a_back taken twice"
ps_out=$(sk service ps api)
contains "$ps_out" "ADDRESSES" "service ps header"
contains "$ps_out" "${a_back%/*},${a_db%/*}" "service ps shows the task's addresses"
# The node the task is placed on gets its own address on both networks.
node_addr() { sk node inspect "$1" | jq -r ".[0].networks[]? | select(.network_id == \"$2\") | .addresses[0]"; }
has_node_addr() { [ -n "$(node_addr "$1" "$2")" ]; }
node=$(sk service ps --format json api | jq -r '.[0].node_name')
must 10 "$node has its own address on db" has_node_addr "$node" "$db_id"
n_back=$(node_addr "$node" "$back_id")
in_subnet "$n_back" 10.0.0.0/24 || fail "node address $n_back not in back"
[ "$(printf '%s\n' "$n_back" "$a_back" "$vip_back" 10.0.0.1 | sed 's|/.*||' | sort -u | wc -l)" = 4 ] ||
    fail "addresses on back not unique: node $n_back task $a_back VIP $vip_back"
eq "$(net_field back '.services | join(",")')" api "inspect back: its services"
[[ $(sk network ls) =~ back\ +$back_id\ +overlay\ +10\.0\.0\.0/24\ +10\.0\.0\.1\ +4096\ +1 ]] ||
    fail "ls: back's SERVICES count"
ok "service on networks: IDs resolved, aliases kept, a VIP per network, task and node addresses in the subnets, all distinct"

# dnsrr: no VIP; to vip: one comes.
sk service create -q --name rr --endpoint-mode dnsrr --network "$back_id" "$IMG" >/dev/null
must 10 "rr's task has its address" has_task_addr rr "$back_id"
eq "$(svc_field rr '[.spec.endpoint.mode, (.vips | length)] | join(" ")')" "dnsrr 0" "dnsrr: no VIP"
sk service update --endpoint-mode vip rr >/dev/null
must 10 "rr gets a VIP once in vip mode" has_vips rr 1
ok "--endpoint-mode dnsrr has no VIP; vip gives one"

# --- bad service input: refused, named, nothing changed --------------------
services_before=$(sk service ls --format json | jq -c '[.[] | [.id, .version]]')
sbad() { # EXPECTED-MESSAGE ARGS...
    local want=$1; shift
    expect_fail "service $*" sk service "$@"
    contains "$OUT" "$want" "message for service $*"
}
sbad 'service "x": network "nope" does not exist' create --name x --network nope "$IMG"
sbad 'service "x": network "back" is given twice' create --name x --network back --network back "$IMG"
sbad 'service "x": network "back" is given twice' create --name x --network back --network "$back_id" "$IMG"
sbad 'service "x": network "back" is given twice' create --name x --network "${back_id:0:8}" --network name=back,alias=b "$IMG"
sbad '--network "name=back,foo=1": want NAME or name=NAME[,alias=ALIAS]' create --name x --network name=back,foo=1 "$IMG"
sbad '--endpoint-mode: want one of vip, dnsrr' create --name x --endpoint-mode rr "$IMG"
sbad 'service "api": network "nope" does not exist' update --network-add nope api
sbad '--network-rm "front": the service is not on that network' update --network-rm front api
bad 'network "back" is in use by services api, rr' rm back
r=$(https POST "https://$(api m1)/v1/services" "$TEST_DIR/admin" '{"spec":{"name":"x","task":{"container":{"image":"bb"},"networks":[{"target":"nope"}]}}}')
contains "$r" '404 ' "status of a service on an unknown network"
eq "$(sk service ls --format json | jq -c '[.[] | [.id, .version]]')" "$services_before" "services after bad input"
eq "$(net_field back .id)" "$back_id" "back is still there"
ok "refused: unknown network, one network twice (by name, ID, prefix), bad --network, network rm in use (naming the services)"

# --- network-add/-rm: the replacements get addresses on the new set -------
sk service update --update-order start-first --network-rm db --network-add name=front,alias=web api >/dev/null
eq "$(svc_field api '[.spec.task.networks[].target] | join(",")')" back,front "api's networks after the update"
new_task_on() { # SERVICE NET-ID: a task of the service's current spec has an address on the network
    local v
    v=$(svc_field "$1" .spec_version)
    sk service ps --format json "$1" |
        jq -e "[.[] | select(.spec_version == $v and .desired_state == \"running\") | .networks[] | select(.network_id == \"$2\")] | length > 0"
}
must 10 "a replacement has an address on front" new_task_on api "$front_id"
v=$(svc_field api .spec_version)
eq "$(sk service ps --format json api | jq "[.[] | select(.spec_version == $v) | .networks[] | select(.network_id == \"$db_id\")] | length")" \
    0 "no replacement on db"
vip_on() { svc_field "$1" "[.vips[].network_id] | sort | join(\",\")"; }
want=$(printf '%s\n' "$back_id" "$front_id" | sort | paste -sd,)
must 10 "api's VIPs follow its networks" eval '[ "$(vip_on api)" = "$want" ]'
eq "$(svc_field api ".vips[] | select(.network_id == \"$back_id\") | .addr")" "$vip_back" "the VIP on back is kept"
ok "service update --network-add/--network-rm: replacements on the new set, VIPs follow"

# --- exhaustion: a /29 holds 5; VIP and a node first, tasks wait ----------
sk network create --subnet 10.50.0.0/29 tiny >/dev/null
sk service create -q --name many --replicas 6 --network tiny "$IMG" >/dev/null
pending_reason() {
    sk service ps many | grep -c 'Pending .*network "tiny": no free address in 10.50.0.0/29'
}
waiting() { [ "$(pending_reason)" = 3 ]; }
must 10 "3 of many's tasks wait for an address" waiting
with_addr=$(sk service ps --format json many | jq '[.[] | select(.networks | length > 0)] | length')
eq "$with_addr" 3 "tasks of many with an address"
must 10 "many has its VIP" has_vips many 1
tiny_id=$(net_field tiny .id)
all_tiny=$( { task_addrs many "$tiny_id"; svc_field many '.vips[].addr'; sk node ls -q | while read -r n; do node_addr "$n" "$tiny_id"; done; } | sed 's|/.*||' | sort)
eq "$(wc -l <<<"$all_tiny")" 5 "addresses held on tiny"
eq "$(sort -u <<<"$all_tiny" | wc -l)" 5 "distinct addresses on tiny"
ok "exhausted /29: 3 tasks, the VIP and a node hold its 5 addresses; 3 tasks pending with the reason on service ps"

# --- skiffd --init --default-addr-pool -------------------------------------
kill9 m2
kill9 m1
run_daemon bad1 --advertise-addr "$PREFIX.9" --init --hostname bad1 --admin-config "$TEST_DIR/bad.json" \
    --default-addr-pool 10.100.0.0/24 --default-addr-pool-mask-length 20
wait_exit bad1 5 || fail "skiffd --init with a pool too small for its subnets kept running"
[ "$EXIT_RC" != 0 ] || fail "skiffd --init with a bad pool exited 0"
contains "$(cat "$TEST_DIR/bad1.log")" 'default address pool "10.100.0.0/24" must be an IPv4 subnet (like 10.0.0.0/8) that holds /20 subnets' "bad pool refused"
init_cluster p1 --default-addr-pool 10.100.0.0/16 --default-addr-pool-mask-length 26
sk network create a >/dev/null
sk network create b >/dev/null
eq "$(net_field a .subnet) $(net_field b .subnet)" "10.100.0.0/26 10.100.0.64/26" "subnets from the cluster's pool"
eq "$(sk cluster info --format json | jq -r '.spec | "\(.default_addr_pool) \(.default_addr_pool_mask_len)"')" \
    "10.100.0.0/16 26" "the pool in the cluster spec"
ok "skiffd --init --default-addr-pool 10.100.0.0/16 --default-addr-pool-mask-length 26: /26s from it; a bad pool refused"
