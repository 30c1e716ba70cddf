#!/usr/bin/env bash
# Issue 15, items 2 and 11: the Raft port under abuse. 300 idle TCP
# connections to each manager's Raft port (from ten other addresses, opened
# again 200 ms after the manager drops them) must not keep the managers
# apart: after kill -9 of the leader a write is accepted within 3 s. And a
# peer with a manager certificate that sends a libraft message claiming a
# 512 MiB header, or an entry of 4 GiB, is cut off without the allocation.
. "$(dirname "$0")/lib.sh"
FLOOD=$SRC_DIR/tests/tools/flood.py

init_cluster m1
join m2 manager
join m3 manager
must 20 "3 voters" voters_are 3

# ---- a claimed length the receiver must not allocate ----
cred_files "$(dir m2)/node.json" "$TEST_DIR/m2"
m2_id=$(jq -r .node_id "$(dir m2)/node.json")
leader=$(leader_name)
target=m1
[ "$target" != "$leader" ] || target=m3
target_pid=$(pid "$target")
vmsize() { awk '/^VmSize:/ { print $2 }' "/proc/$1/status"; }
raft_claim() { # WHAT FLOOD-ARGS...
    local what=$1; shift
    local before after out
    rm -f "$TEST_DIR/raft-claim"
    before=$(vmsize "$target_pid")
    python3 "$FLOOD" raft-header --target "$(addr "$target"):7444" --duration 3 \
        --ca "$TEST_DIR/m2-ca.pem" --cert "$TEST_DIR/m2-cert.pem" --key "$TEST_DIR/m2-key.pem" \
        --node-id "$m2_id" --addr "$(addr m2):7444" --ready "$TEST_DIR/raft-claim" "$@" \
        >"$TEST_DIR/raft-claim.out" &
    local fp=$!
    must 5 "$what: sent" test -s "$TEST_DIR/raft-claim"
    # The claim is in place now, if the receiver allocated it.
    after=$(vmsize "$target_pid")
    wait "$fp" || fail "$what: the tool failed"
    out=$(cat "$TEST_DIR/raft-claim.out")
    log "$what: $out; $target's VmSize $before -> $after kB"
    [ $(( after - before )) -lt 65536 ] ||
        fail "$what: $target's address space grew by $(( (after - before) / 1024 )) MiB"
    jq -e .closed <<<"$out" >/dev/null || fail "$what: $target kept the connection open ($out)"
    alive "$target_pid" || fail "$what: $target died"
}
raft_claim "a header of 512 MiB" --header-len $(( 512 << 20 ))
raft_claim "an entry of 4 GiB - 8" --entry-len $(( (4 << 30) - 8 ))
grep -q "exceeds" "$TEST_DIR/$target.log" || fail "$target logged no refusal of the oversized messages"
must 10 "3 voters after the oversized messages" voters_are 3
ok "a manager certificate claiming a 512 MiB header or a 4 GiB entry is cut off at once, $target's address space unchanged"

# ---- idle connections on every Raft port, then the leader dies ----
for n in m1 m2 m3; do
    python3 "$FLOOD" idle --target "$(addr "$n"):7444" --sources "$PREFIX.200-209" \
        --count 300 --reconnect-ms 200 --duration 30 --ready "$TEST_DIR/flood-$n.ready" \
        >"$TEST_DIR/flood-$n.out" 2>&1 &
done
for n in m1 m2 m3; do
    must 15 "the flood on $n's Raft port is up" test -s "$TEST_DIR/flood-$n.ready"
done
log "flood up: $(cat "$TEST_DIR"/flood-m1.ready)"
# Wait out a handshake deadline, so that the flood holds whatever it can.
sleep 2

leader=$(leader_name)
[ -n "$leader" ] || fail "no leader during the flood"
survivors=()
for n in m1 m2 m3; do [ "$n" = "$leader" ] || survivors+=("$n"); done
SK_HOSTS="$(api "${survivors[0]}"),$(api "${survivors[1]}")"
export SK_HOSTS
kill9 "$leader"
t0=$(now_ms)
write_ok() { SK_TIMEOUT=1s sk node update --label-add "flood=$(now_ms)" "${survivors[0]}"; }
must 3 "a write accepted within 3 s of the leader's death, during the flood" write_ok
write_ms=$(elapsed_ms "$t0")
ok "300 idle connections on each Raft port: leader $leader killed, write accepted after $write_ms ms"
