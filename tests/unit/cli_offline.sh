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

# No manager answers (nothing listens on 127.0.0.1:1): one line naming the
# manager and the cause, with the whole time spent -- not the last try's
# transport error, not a retry per line.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/skiff-cli-offline.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -subj /CN=offline -days 1 2>/dev/null
jq -n --rawfile c "$tmp/cert.pem" --rawfile k "$tmp/key.pem" \
    '{ca_pem: $c, cert_pem: $c, key_pem: $k, managers: ["127.0.0.1:1"]}' >"$tmp/admin.json"
rc=0; out=$("$skiff" --config "$tmp/admin.json" --timeout 1s node ls 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "node ls with no manager listening exited $rc: $out"
[ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail "more than one line when no manager answers: $out"
case $out in
"skiff: no manager answered in "[01].[0-9]" s"*": 127.0.0.1:1 (connection refused)") ;;
*) fail "no manager answering is not said as one line naming the manager and the cause: $out" ;;
esac
echo "ok: no manager answering: $out"
