#!/usr/bin/env bash
# A manager whose Raft directory stops being writable (chattr +i) logs the
# storage error and exits with status 1 at once -- it never goes on serving
# a store it cannot write; started again while the directory is read-only it
# fails the same way; once the directory is writable again it starts, catches
# up, and every acknowledged write is there, on every manager. Three times:
# a follower's directory alone (a full segment cannot be closed, which
# libraft 0.22.1 would drop silently, leaving its log unloadable), then the
# follower's directory and files (an append write fails, whose retry crashes
# libraft 0.22.1), then the leader's directory and files.
. "$(dirname "$0")/lib.sh"

# Whatever happens, the immutable flags go before the temporary dir does
# (lib.sh's cleanup then sees the test's exit status).
cleanup_chattr() {
    local rc=$?
    set +e
    chattr -R -i "$TEST_DIR" 2>/dev/null
    (exit "$rc")
    cleanup
}
trap cleanup_chattr EXIT

probe=$TEST_DIR/chattr-probe
touch "$probe"
chattr +i "$probe" 2>/dev/null ||
    fail "chattr +i is not supported under $TEST_DIR (ext4 does it; set TMPDIR)"
chattr -i "$probe"
rm -f "$probe"

# ---- writes, counted ----

ACKED=()
N=0
# write: creates service sN (no replicas: one Raft entry, no task); the
# acknowledged ones are remembered.
write() {
    N=$(( N + 1 ))
    if SK_TIMEOUT=5s sk service create --name "s$N" --replicas 0 busybox >/dev/null 2>&1; then
        ACKED+=("s$N")
    fi
}
PAD=$(head -c 4000 /dev/zero | tr '\0' x)
# pad I: some 256 KiB into the Raft log (64 labels of 4 KB on node m1), so
# that the 8 MiB open segment fills after about 30 of them.
pad() {
    local args=() k
    for k in $(seq 0 63); do args+=(--label-add "pad$k=$1$PAD"); done
    SK_TIMEOUT=5s sk node update "${args[@]}" m1 >/dev/null 2>&1 || true
}
# all_acked_on NAME: NAME's own store holds every acknowledged service.
all_acked_on() {
    local have s
    have=$(sk_at "$1" --format json service ls | jq -r '.[].spec.name') || return 1
    for s in "${ACKED[@]}"; do
        grep -qx "$s" <<<"$have" || return 1
    done
}

# ---- one manager's disk fails ----

# fail_disk NAME HOW: makes NAME's Raft directory (HOW=dir) or directory and
# files (HOW=all) immutable, writes on (padding too) until NAME exits, and
# checks that it exited with status 1 naming the failed store, and that it
# serves nothing any more.
fail_disk() {
    local name=$1 how=$2 raft
    raft=$(dir "$name")/raft
    local before
    before=$(grep -c "Raft store in $raft failed" "$TEST_DIR/$name.log" || true)
    if [ "$how" = dir ]; then chattr +i "$raft"; else chattr -R +i "$raft"; fi
    local t0 deadline
    t0=$(now_ms)
    deadline=$(( t0 + 60000 ))
    while alive "$(pid "$name")"; do
        [ "$(now_ms)" -lt "$deadline" ] ||
            fail "$name still runs 60 s after its Raft directory became read-only ($how)"
        pad "$N"
        write
    done
    wait_exit "$name" 5 || fail "$name not reaped"
    eq "$EXIT_RC" 1 "$name's exit status after its disk failed ($how)"
    local line
    line=$(grep "Raft store in $raft failed" "$TEST_DIR/$name.log" | tail -1)
    [ "$(grep -c "Raft store in $raft failed" "$TEST_DIR/$name.log")" -gt "$before" ] ||
        fail "$name exited without logging the storage error"
    contains "$line" "error [raft]" "$name's log line"
    log "$name exited (status 1) $(elapsed_ms "$t0") ms after chattr +i ($how): ${line#* error }"
    SK_TIMEOUT=2s expect_fail "a read from $name after its disk failed" sk_at "$name" service ls
    # Its peers see it go: down, and unreachable as a manager.
    local via
    for via in "${MANAGERS[@]}"; do [ "$via" = "$name" ] || break; done
    must 15 "$name unreachable as seen through $via" eval \
        "[ \"\$(node_field $name .manager_status $via)\" = unreachable ]"
}

# recover NAME HOW: while the directory is still read-only, a start fails
# (status non-zero, the error logged); writable again, NAME starts, catches
# up, and holds every acknowledged write.
recover() {
    local name=$1 how=$2 raft
    raft=$(dir "$name")/raft
    start "$name"
    wait_exit "$name" 20 || fail "$name keeps running with a read-only Raft directory"
    [ "$EXIT_RC" != 0 ] || fail "$name exited 0 with a read-only Raft directory"
    local line
    line=$(awk '/^=== /{ run = "" } { run = run $0 "\n" } END { printf "%s", run }' "$TEST_DIR/$name.log" |
        grep -m1 "Raft store in $raft" || true)
    [ -n "$line" ] || fail "$name's failed start does not name $raft: $(tail -n 3 "$TEST_DIR/$name.log")"
    log "started with a read-only Raft directory, $name exits $EXIT_RC: $line"
    write
    if [ "$how" = dir ]; then chattr -i "$raft"; else chattr -R -i "$raft"; fi
    local t0
    t0=$(now_ms)
    start "$name"
    must 20 "$name serves again" healthy "$(api "$name")"
    must 20 "$name holds every acknowledged write (${#ACKED[@]})" all_acked_on "$name"
    must 20 "3 voters with $name back" voters_are 3
    grep -q "corrupt" "$TEST_DIR/$name.log" && fail "$name: $(grep -m1 corrupt "$TEST_DIR/$name.log")"
    write
    ok "$name's Raft directory read-only ($how): it exited with status 1 and the error, refused to start while read-only, and once writable caught up in $(elapsed_ms "$t0") ms with all ${#ACKED[@]} acknowledged writes"
}

init_cluster m1
join m2 manager
join m3 manager
must 20 "3 voters" voters_are 3
for _ in 1 2 3 4 5; do write; done
leader=$(leader_name)
follower=m3
[ "$leader" != m3 ] || follower=m2
eq "${#ACKED[@]}" 5 "writes acknowledged before any disk fails"
ok "3 managers, leader $leader; $follower's disk will fail"

fail_disk "$follower" dir
recover "$follower" dir

fail_disk "$follower" all
recover "$follower" all

leader=$(leader_name)
[ -n "$leader" ] || fail "no leader"
fail_disk "$leader" all
must 15 "a new leader" eval '[ -n "$(leader_name)" ] && [ "$(leader_name)" != "$leader" ]'
recover "$leader" all

for n in m1 m2 m3; do
    must 20 "$n holds every acknowledged write" all_acked_on "$n"
done
ok "$N writes attempted, ${#ACKED[@]} acknowledged; every one of them on all 3 managers"
