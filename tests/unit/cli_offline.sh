#!/bin/sh
# What the CLI does without a cluster: every command's --help works without
# credentials; a missing credentials file is named (exit 1); a bad flag is
# named with the usage (exit 2) -- all before any manager is asked.
set -eu
skiff=$1
nowhere=/nonexistent/skiff-admin.json
fail() { echo "FAIL: $*"; exit 1; }
for cmd in "cluster info" "join-token" "node ls" "node inspect" "node update" \
           "node promote" "node demote" "node rm" "service create" \
           "service ls" "service ps" "service inspect" "service scale" \
           "service update" "service rollback" "service rm" "service logs" "events"; do
    # shellcheck disable=SC2086 # the command's words split on purpose
    out=$("$skiff" --config "$nowhere" $cmd --help 2>&1) ||
        fail "skiff $cmd --help exited $? without credentials: $out"
    echo "$out" | grep -q "^usage: skiff $cmd" ||
        fail "skiff $cmd --help printed no usage: $out"
done
rc=0; out=$("$skiff" --config "$nowhere" node ls 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "node ls without credentials exited $rc"
echo "$out" | grep -qF "credentials: $nowhere" ||
    fail "the missing credentials file is not named: $out"
rc=0; out=$("$skiff" --config "$nowhere" service create --replicas x busybox 2>&1) || rc=$?
[ "$rc" = 2 ] || fail "a bad flag value exited $rc"
echo "$out" | grep -q "replicas" || fail "the bad flag is not named: $out"
echo "ok: $skiff without a cluster"
