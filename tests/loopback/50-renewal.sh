#!/usr/bin/env bash
# Certificates renew themselves before they expire, without a restart: a
# cluster made with --cert-expiry 1m (the shortest allowed) sees every node
# take a new certificate between 50% and 80% of its life (30-48 s), and the
# cluster keeps working on the new ones: heartbeats, Raft, API calls.
. "$(dirname "$0")/lib.sh"

serial_of() { # NAME: the serial of the node's current certificate
    jq -r .cert_pem "$(dir "$1")/node.json" | openssl x509 -noout -serial
}

init_cluster m1 --cert-expiry 1m
join m2 manager
join w1 worker
must 20 "2 voters" voters_are 2

declare -A before
for n in m1 m2 w1; do before[$n]=$(serial_of "$n"); done
pids_before="$(pid m1) $(pid m2) $(pid w1)"
renewed() { # NAME
    [ "$(serial_of "$1")" != "${before[$1]}" ]
}
t0=$(now_ms)
# Not early: before 50% of the minute nothing renews.
any_renewed() { renewed m1 || renewed m2 || renewed w1; }
wait_for 25 any_renewed && fail "a certificate was renewed after $(elapsed_ms "$t0") ms, before half its life"
for n in m1 m2 w1; do
    wait_for 40 renewed "$n" || fail "$n kept its certificate for $(elapsed_ms "$t0") ms (life: 1 min)"
done
log "all three renewed within $(elapsed_ms "$t0") ms of starting"
eq "$(pid m1) $(pid m2) $(pid w1)" "$pids_before" "daemon pids (no restart)"
for n in m1 m2 w1; do alive "$(pid "$n")" || fail "$n stopped"; done
ok "every node renewed its 1-minute certificate in flight, after half its life, with no restart"

# Once renewed, a certificate is not renewed again at once.
declare -A second
for n in m1 m2 w1; do second[$n]=$(serial_of "$n"); done
changed_again() { [ "$(serial_of m1)" != "${second[m1]}" ] || [ "$(serial_of w1)" != "${second[w1]}" ]; }
wait_for 10 changed_again && fail "a new certificate was renewed again within 10 s"
ok "no renewal storm: the new certificates are kept"

# The new certificates work: each node stays ready past the old ones' end,
# and Raft and the API go on (a write replicated to both managers).
sleep_past=$(( $(now_ms) + 15000 ))
while [ "$(now_ms)" -lt "$sleep_past" ]; do
    for n in m1 m2 w1; do node_is "$n" ready || fail "$n not ready on its new certificate"; done
    wait_for 2 false || true
done
sk node update --label-add renewed=yes w1 >/dev/null
for n in m1 m2; do
    must 10 "label visible on $n" eval "[ \"\$(sk_at $n --format json node inspect w1 | jq -r '.[0].spec.labels.renewed')\" = yes ]"
done
expires=$(node_field w1 .status.cert_not_after)
[ "$expires" -gt "$(( $(date +%s) * 1000 ))" ] || fail "w1's recorded certificate expiry is in the past"
ok "past the old certificates' expiry, all nodes ready; Raft writes replicate; the new expiry is recorded"
