#!/bin/bash
# What the CLI does without a cluster: every command's --help works without
# credentials; a missing credentials file is named (exit 1); a bad flag or
# an unknown command is one line and where to read more (exit 2) -- all
# before any manager is asked; the bash completion script; no manager
# answering.
set -eu
skiff=$1
skiffd=${2:-}
nowhere=/nonexistent/skiff-admin.json
fail() { echo "FAIL: $*"; exit 1; }
for cmd in "cluster info" "join-token" "node ls" "node inspect" "node update" \
           "node promote" "node demote" "node rm" "service create" \
           "service ls" "service ps" "service inspect" "service scale" \
           "service update" "service rollback" "service rm" "service logs" "events" \
           "node ps" "network create" "network ls" "network inspect" "network rm" \
           "version" "completion"; do
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

# An unknown flag: the error and where to read more, as docker says it --
# not the 45 lines of usage.
rc=0; out=$("$skiff" --config "$nowhere" service create --replica 3 busybox 2>&1) || rc=$?
[ "$rc" = 2 ] || fail "an unknown flag exited $rc"
want="skiff: unknown flag --replica (did you mean --replicas?)
See 'skiff service create --help'."
[ "$out" = "$want" ] || fail "an unknown flag is not said in two lines: $out"
rc=0; out=$("$skiff" --bogus node ls 2>&1) || rc=$?
[ "$rc" = 2 ] && [ "$out" = "skiff: unknown flag --bogus
See 'skiff --help'." ] || fail "an unknown global flag (exit $rc): $out"
rc=0; out=$("$skiff" --config "$nowhere" servce ls 2>&1) || rc=$?
[ "$rc" = 2 ] && [ "$out" = "skiff: unknown command \"servce\"
See 'skiff --help'." ] || fail "an unknown command (exit $rc): $out"
rc=0; out=$("$skiff" --config "$nowhere" service frob 2>&1) || rc=$?
[ "$rc" = 2 ] && [ "$out" = "skiff: unknown command \"service frob\"
See 'skiff service --help'." ] || fail "an unknown subcommand (exit $rc): $out"
rc=0; out=$("$skiff" --config "$nowhere" service ps --filter color=red web 2>&1) || rc=$?
[ "$rc" = 2 ] || fail "an unknown filter exited $rc: $out"
echo "$out" | grep -q "unknown key color" || fail "the unknown filter is not named: $out"
out=$("$skiff" service --help) || fail "service --help exited $?"
for sub in create ls ps inspect scale update rollback rm logs; do
    echo "$out" | grep -q "^  $sub " || fail "service --help does not list $sub: $out"
done
if [ -n "$skiffd" ]; then
    rc=0; out=$("$skiffd" --data-dri /nonexistent 2>&1) || rc=$?
    [ "$rc" = 2 ] && [ "$out" = "skiffd: unknown flag --data-dri (did you mean --data-dir?)
See 'skiffd --help'." ] || fail "skiffd's unknown flag (exit $rc): $out"
fi
echo "ok: $skiff without a cluster: help, unknown flags and commands"

# The completion script: made from the CLI's own tables, complete for
# bash alone.
script=$("$skiff" completion bash) || fail "completion bash exited $?"
out=$(bash -c "source <(\"$skiff\" completion bash) && complete -p skiff") ||
    fail "the completion script does not load: $out"
[ "$out" = "complete -F _skiff skiff" ] || fail "complete -p skiff: $out"
completes() { # WORDS... -- EXPECTED
    local words=() want
    while [ "$1" != -- ]; do words+=("$1"); shift; done
    shift; want=$*
    got=$(bash -c "$script"'
        COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _skiff; echo "${COMPREPLY[*]}"' \
        skiff "${words[@]}")
    [ "$got" = "$want" ] || fail "completion of '${words[*]}': want '$want', got '$got'"
}
completes skiff serv -- service
completes skiff service cr -- create
completes skiff --host h1 node p -- ps promote
completes skiff service create --rep -- --replicas --replicas-max-per-node
completes skiff service create --mode '' -- replicated global
completes skiff service ls --format j -- json
completes skiff join-token '' -- worker manager
completes skiff --tim -- --timeout
completes skiff service ps --no -- --no-trunc
echo "ok: the completion script completes commands, subcommands, flags and their choices"

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
