#!/usr/bin/env bash
# The data plane: skiff's overlay against Docker Swarm mode's and against the
# data interface itself, on the same lab (5 hosts), in one run.
#
#   tests/bench/net-bench.sh            (RUNS=5 by default, ~4 minutes)
#
# skiff and Swarm mode run side by side on the same lab (5 hosts, the same
# dockerds), and each round measures the limit, skiff and Swarm in turn, so
# that whatever else the machine does falls on all three alike. Figures,
# each the median of RUNS rounds, between a client container on h1 and a
# server container on h2:
#   throughput    TCP, iperf3 for 3 s (Debian's iperf3, run in the
#                 containers' network namespaces: the lab image has none)
#   connection    one short HTTP connection to busybox httpd (connect, GET,
#                 reply, close), the median of 300 in a row
#                 (tests/bench/net_probe.py connect)
#   scale->DNS    `service scale web=6` (one task, on a host other than h1,
#                 before) -> all six addresses answered for tasks.web by the
#                 client's resolver (polled every 20 ms)
# for skiff (VIP mode, the default), Swarm mode and the limit: the hosts'
# own data addresses (eth1, 10.78.0.x) without overlay, a process in h1's
# namespace against one in h2's (throughput and connections; busybox httpd
# with host networking as the server).
#
# Swarm runs its overlay in dnsrr mode: its VIPs need IPVS, which this
# kernel lacks (see DESIGN.md); tasks.NAME and the tasks' addresses are the
# same in both modes. Both overlays share UDP 4789 on the data addresses,
# told apart by their VNIs: skiff's network gets one Swarm does not use.
#
# A benchmark, not a test: run by hand, as root, on an otherwise idle
# machine; it prints figures and ratios and leaves the lab down.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
LAB=$SRC/deploy/lab/lab
PROBE=$SRC/tests/bench/net_probe.py
RUNS=${RUNS:-5}
IMG=skiff-test/busybox:latest
declare -A R # figure -> space-separated samples

log() { printf '[net-bench] %s\n' "$*" >&2; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
wait_until() { # SECONDS CMD...
    local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s%N)" -lt "$deadline" ] || { log "timed out: $*"; return 1; }
        sleep 0.1
    done
}
record() { R[$1]="${R[$1]:-} $2"; log "$1: $2"; }
check() { [ "$(eval "$1")" "$2" "$3" ]; }
median() {
    printf '%s\n' $1 | sort -n | awk 'NF { v[++n] = $1 }
        END { if (n == 0) print "-"; else if (n % 2) print v[(n + 1) / 2];
              else print (v[n / 2] + v[n / 2 + 1]) / 2 }'
}
cleanup() { "$LAB" down >/dev/null 2>&1 || true; }
trap cleanup EXIT
command -v iperf3 >/dev/null || { log "needs iperf3 (apt-get install iperf3)"; exit 1; }

dk() { "$LAB" docker "$@"; }
sk() { "$LAB" skiff "$@"; }
# A tiny page and a web server, for the connection figure.
WEB='mkdir -p /tmp/w && echo ok >/tmp/w/index.html && exec httpd -f -p 8080 -h /tmp/w'

# in_ns HOST NETNS CMD...: CMD inside HOST, in the network namespace NETNS
# ("" for the host's own).
in_ns() {
    local host=$1 ns=$2; shift 2
    if [ -n "$ns" ]; then
        "$LAB" exec "$host" nsenter --net="$ns" "$@"
    else
        "$LAB" exec "$host" "$@"
    fi
}
sandbox() { dk "$1" inspect -f '{{.NetworkSettings.SandboxKey}}' "$2"; }

# measure NAME CLIENT_HOST CLIENT_NS SERVER_HOST SERVER_NS SERVER_IP HTTP_PORT:
# one sample of each figure.
measure() {
    local name=$1 ch=$2 cns=$3 sh=$4 sns=$5 ip=$6 port=$7 bps us
    in_ns "$sh" "$sns" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
    local spid=$!
    sleep 0.5
    bps=$(in_ns "$ch" "$cns" iperf3 -c "$ip" -p 5201 -t 3 -J |
        /usr/bin/python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]))')
    wait "$spid" || true
    record "$name throughput Mbit/s" $((bps / 1000000))
    us=$(in_ns "$ch" "$cns" /usr/bin/python3 "$PROBE" connect "$ip" "$port" 300 | awk '{print $1}')
    record "$name connection us" "$us"
}

# scale_dns NAME CLIENT_HOST CLIENT_NS QUERY SCALE-CMD... : one sample of
# scale -> six addresses for QUERY.
scale_dns() {
    local name=$1 ch=$2 cns=$3 q=$4 out t0 t
    shift 4
    out=$(mktemp)
    in_ns "$ch" "$cns" /usr/bin/python3 "$PROBE" resolve "$q" 6 30 >"$out" &
    local ppid=$!
    sleep 0.3
    t0=$(now_ms)
    "$@" 6 >/dev/null
    wait "$ppid" || true
    t=$(cat "$out")
    rm -f "$out"
    [ "$t" != timeout ] || { log "$name: $q never had 6 addresses"; return 1; }
    record "$name scale->DNS ms" $((t - t0))
}

# ---- one lab, both orchestrators -----------------------------------------
"$LAB" down >/dev/null 2>&1 || true
"$LAB" cluster --managers 3 --workers 2 >/dev/null
# Swarm takes VNIs 4096 (ingress) and 4097 (benchnet), which skiff would
# also take first: two networks of skiff that nothing uses (so no host has
# their devices) push skiff's to 4098.
sk network create pad0 >/dev/null
sk network create pad1 >/dev/null
sk network create bench >/dev/null
wait_until 10 sk --format json network inspect bench
log "skiff's network: VNI $(sk --format json network inspect bench | jq '.[0].vni')"
h1a=$("$LAB" addr h1)
dk h1 swarm init --advertise-addr "$h1a" --data-path-addr "$("$LAB" addr h1 --data)" >/dev/null
mt=$(dk h1 swarm join-token -q manager)
wt=$(dk h1 swarm join-token -q worker)
for h in h2 h3; do
    dk "$h" swarm join --token "$mt" --advertise-addr "$("$LAB" addr $h)" \
        --data-path-addr "$("$LAB" addr $h --data)" "$h1a:2377" >/dev/null
done
for h in h4 h5; do
    dk "$h" swarm join --token "$wt" --advertise-addr "$("$LAB" addr $h)" \
        --data-path-addr "$("$LAB" addr $h --data)" "$h1a:2377" >/dev/null
done
wait_until 60 check "dk h1 node ls --format '{{.Status}}' | grep -c Ready" = 5
dk h1 network create -d overlay --attachable --subnet 10.99.0.0/24 benchnet >/dev/null
log "Swarm's network: VNI $(dk h1 network inspect benchnet -f '{{index .Options "com.docker.network.driver.overlay.vxlanid_list"}}')"

# skiff: srv on h2, cli on h1, web (for the scale) anywhere but h1.
sk service create --name srv --network bench --constraint node.hostname==h2 \
    --init "$IMG" sh -c "$WEB" >/dev/null
sk service create --name cli --network bench --constraint node.hostname==h1 \
    --init "$IMG" sleep 100000 >/dev/null
sk service create --name web --network bench --constraint 'node.hostname!=h1' \
    --init "$IMG" sh -c "$WEB" >/dev/null
# Swarm: the same, nodes by ID (every lab dockerd has the machine's host
# name).
id_of() { dk "$1" info --format '{{.Swarm.NodeID}}'; }
swc() { dk h1 service create --detach --no-resolve-image --network benchnet \
    --endpoint-mode dnsrr --init "$@" >/dev/null; }
swc --name swsrv --constraint "node.id==$(id_of h2)" "$IMG" sh -c "$WEB"
swc --name swcli --constraint "node.id==$(id_of h1)" "$IMG" sleep 100000
swc --name swweb --constraint "node.id!=$(id_of h1)" "$IMG" sh -c "$WEB"
# The limit's server: busybox httpd with host networking on h2.
dk h2 run -d --name limitweb --network host --init "$IMG" \
    sh -c 'mkdir -p /tmp/w && echo ok >/tmp/w/index.html && exec httpd -f -p 18080 -h /tmp/w' >/dev/null

sk_cid() { dk "$1" ps -q --filter "label=skiff.service.name=$2" | head -1; }
sw_cid() { dk "$1" ps -q --filter "label=com.docker.swarm.service.name=$2" | head -1; }
sk_one() { [ "$(sk service ls | awk '$2 == "web" {print $4}')" = 1/1 ]; }
sw_one() { [ "$(dk h1 service ls --filter name=swweb --format '{{.Replicas}}')" = 1/1 ]; }
wait_until 120 check 'sk_cid h2 srv' != ""
wait_until 120 check 'sk_cid h1 cli' != ""
wait_until 120 check 'sw_cid h2 swsrv' != ""
wait_until 120 check 'sw_cid h1 swcli' != ""
wait_until 120 sk_one
wait_until 120 sw_one
sk_ip=$(dk h2 inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(sk_cid h2 srv)")
sk_cns=$(sandbox h1 "$(sk_cid h1 cli)")
sk_sns=$(sandbox h2 "$(sk_cid h2 srv)")
sw_ip=$(dk h2 inspect -f '{{(index .NetworkSettings.Networks "benchnet").IPAddress}}' "$(sw_cid h2 swsrv)")
sw_cns=$(sandbox h1 "$(sw_cid h1 swcli)")
sw_sns=$(sandbox h2 "$(sw_cid h2 swsrv)")
limit_ip=$("$LAB" addr h2 --data)
log "servers on h2: skiff $sk_ip, Swarm $sw_ip, limit $limit_ip; clients on h1"
wait_until 30 in_ns h1 "$sk_cns" /usr/bin/python3 "$PROBE" connect "$sk_ip" 8080 1
wait_until 30 in_ns h1 "$sw_cns" /usr/bin/python3 "$PROBE" connect "$sw_ip" 8080 1
wait_until 30 in_ns h1 "" /usr/bin/python3 "$PROBE" connect "$limit_ip" 18080 1

sk_scale() { sk service scale "web=$1"; }
sw_scale() { dk h1 service scale --detach "swweb=$1"; }

# Rounds interleave the three, so that what else the machine does meanwhile
# falls on all of them alike.
for round in $(seq 1 "$RUNS"); do
    log "round $round of $RUNS"
    measure limit h1 "" h2 "" "$limit_ip" 18080
    measure skiff h1 "$sk_cns" h2 "$sk_sns" "$sk_ip" 8080
    measure swarm h1 "$sw_cns" h2 "$sw_sns" "$sw_ip" 8080
    scale_dns skiff h1 "$sk_cns" tasks.web sk_scale
    scale_dns swarm h1 "$sw_cns" tasks.swweb sw_scale
    sk_scale 1 >/dev/null
    sw_scale 1 >/dev/null
    wait_until 60 sk_one
    wait_until 60 sw_one
    sleep 2
done
for h in h5 h4 h3 h2 h1; do dk "$h" swarm leave --force >/dev/null 2>&1 || true; done

# ---- report -------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
echo
echo "net-bench: medians of $RUNS rounds, client on h1, server on h2 (Swarm in dnsrr mode: no IPVS here)"
printf '%-22s %10s %10s %10s %12s %12s\n' figure skiff swarm limit skiff/swarm skiff/limit
for f in "throughput Mbit/s" "connection us" "scale->DNS ms"; do
    s=$(median "${R[skiff $f]:-}") w=$(median "${R[swarm $f]:-}") l=$(median "${R[limit $f]:-}")
    printf '%-22s %10s %10s %10s %12s %12s\n' "$f" "$s" "$w" "$l" "$(ratio "$s" "$w")" "$(ratio "$s" "$l")"
done
echo "samples:"
for k in "${!R[@]}"; do echo "  $k:${R[$k]}"; done | sort
