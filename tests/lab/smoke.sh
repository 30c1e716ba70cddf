#!/usr/bin/env bash
# The lab's smoke test: up, reachability on both planes, a container on every
# host, cut and heal, down -- and then nothing of the lab is left. The lab is
# taken down also when a step fails.
. "$(dirname "$0")/lib.sh"

cleanup() {
    local rc=$?
    "$LAB" down >/dev/null 2>&1 || true
    [ $rc = 0 ] || log "FAILED (lab taken down)"
}
trap cleanup EXIT

# Each host reaches another on both planes (busybox ping, one packet, 1 s).
reach() { "$LAB" exec "$1" busybox ping -c 1 -W 1 "$2"; }

"$LAB" down >/dev/null 2>&1 || true
t0=$(now_ms)
"$LAB" up --hosts 3
log "lab up --hosts 3 took $(( $(now_ms) - t0 )) ms"

for h in h1 h2 h3; do
    [ "$("$LAB" exec "$h" cat /proc/sys/net/ipv4/conf/eth0/forwarding 2>/dev/null || echo x)" != x ] ||
        fail "$h has no eth0"
    # No default route: nothing in a lab host can reach outside the lab.
    if "$LAB" exec "$h" ip route show default | grep -q .; then
        fail "$h has a default route"
    fi
done
pass "no lab host has a default route"

for target in 2 3; do
    expect "h1 reaches h$target on the control plane" reach h1 "10.77.0.1$target"
    expect "h1 reaches h$target on the data plane" reach h1 "10.78.0.1$target"
done

for h in h1 h2 h3; do
    out=$("$LAB" docker "$h" run --rm --init skiff-test/busybox:latest sh -c 'echo hello-$(hostname | cut -c1-4)')
    [[ $out == hello-* ]] || fail "container on $h printed \"$out\""
    pass "a container runs on $h's dockerd"
done
# The image has what later tests use.
"$LAB" docker h1 run --rm skiff-test/busybox:latest sh -c 'for c in sh sleep httpd nc wget cat; do command -v $c >/dev/null || exit 1; done' ||
    fail "test image lacks a tool"
pass "test image has sh, sleep, httpd, nc, wget, cat"

# Each host has PID, mount (its own /proc and /sys), UTS and IPC namespaces:
# it sees its own processes and interfaces alone, a kill in one host cannot
# reach another's, and the pid files hold the pids the root namespace sees.
for h in h1 h2 h3; do
    n=$("$LAB" exec "$h" pgrep -x dockerd | wc -l)
    [ "$n" = 1 ] || fail "$h sees $n dockerd processes, not its own alone"
    [ "$("$LAB" exec "$h" hostname)" = "$h" ] || fail "$h's hostname is \"$("$LAB" exec "$h" hostname)\""
    ifaces=$("$LAB" exec "$h" ls /sys/class/net | sort | tr '\n' ' ')
    [ "$ifaces" = "docker0 eth0 eth1 lo " ] || fail "$h's /sys/class/net lists $ifaces"
    pid=$(cat "/run/skiff-lab/$h/docker.pid")
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] ||
        fail "/run/skiff-lab/$h/docker.pid holds $pid, which is not a dockerd in the root namespace"
done
pass "each host sees its own dockerd and interfaces alone and is named after itself"
h2_dockerd=$(cat /run/skiff-lab/h2/docker.pid)
expect_not "h3 cannot kill h2's dockerd (pid $h2_dockerd in the root namespace)" \
    "$LAB" exec h3 kill -9 "$h2_dockerd"
expect "h2's dockerd is still there" "$LAB" docker h2 version

"$LAB" cut h3
expect_not "h3 is cut off on the control plane" reach h1 10.77.0.13
expect_not "h3 is cut off on the data plane" reach h1 10.78.0.13
"$LAB" status | grep -q '^h3 .* cut ' || fail "status does not show h3 cut"
"$LAB" heal h3
wait_for 10 reach h1 10.77.0.13 || fail "h3 not back on the control plane 10 s after heal"
wait_for 10 reach h1 10.78.0.13 || fail "h3 not back on the data plane 10 s after heal"
pass "h3 is back after heal"

"$LAB" cut h2 --control
expect_not "control cut: h2 unreachable on the control plane" reach h1 10.77.0.12
expect "control cut: h2 still reachable on the data plane" reach h1 10.78.0.12
"$LAB" heal h2 --control
wait_for 10 reach h1 10.77.0.12 || fail "h2 control plane not back after heal"
"$LAB" cut h2 --data
expect_not "data cut: h2 unreachable on the data plane" reach h1 10.78.0.12
expect "data cut: h2 still reachable on the control plane" reach h1 10.77.0.12
"$LAB" heal h2 --data
wait_for 10 reach h1 10.78.0.12 || fail "h2 data plane not back after heal"
pass "single-plane cut and heal"

# Leave a container and a process of `lab exec` running on purpose: down
# must remove them too, with the hosts' inits.
"$LAB" docker h2 run -d --init skiff-test/busybox:latest sleep 600 >/dev/null
"$LAB" exec h1 sleep 3607 </dev/null >/dev/null 2>&1 &
wait_for 5 "$LAB" exec h1 pgrep -f -x 'sleep 3607' || fail "lab exec h1 sleep 3607 did not start"
inits=$(cat /run/skiff-lab/h*/init.pid)

"$LAB" down
"$LAB" down # twice is safe
left=""
[ -z "$(ip netns list | grep sklab-)" ] || left+=" netns"
ip link show sklab-ctl >/dev/null 2>&1 && left+=" bridge:sklab-ctl"
ip link show sklab-data >/dev/null 2>&1 && left+=" bridge:sklab-data"
ip -o link show | grep -q ' sk-h[0-9]*-[cd]' && left+=" veth"
iptables -S FORWARD | grep -q sklab && left+=" iptables"
pgrep -f -- '/var/lib/skiff-lab|/run/skiff-lab' >/dev/null && left+=" processes"
for pid in $inits; do
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = tini ]; then left+=" init:$pid"; fi
done
pgrep -f -x 'sleep 3607' >/dev/null && left+=" lab-exec-process"
grep -q skiff-lab /proc/mounts && left+=" mounts"
[ -e /var/lib/skiff-lab ] && left+=" state-dir"
[ -e /run/skiff-lab ] && left+=" run-dir"
ls -d /sys/fs/cgroup/*/sklab-h* >/dev/null 2>&1 && left+=" cgroups"
[ -z "$left" ] || fail "lab down left:$left"
pass "lab down leaves nothing behind"
