#!/usr/bin/env bash
# The CLI with nothing but its credentials file (no --host): --init wrote
# one manager into it; the first successful command learns all of them, so
# that losing that first manager does not lose the CLI.
. "$(dirname "$0")/lib.sh"

init_cluster m1
join m2 manager
join m3 manager
must 20 "3 voters" voters_are 3
plain() { SKIFF_CONFIG=$ADMIN "$SKIFF" --timeout 10s "$@"; }
eq "$(jq '.managers | length' "$ADMIN")" 1 "managers in the file written by --init"
plain node ls >/dev/null || fail "node ls with the credentials file only"
eq "$(jq '.managers | length' "$ADMIN")" 3 "managers in the file after one command"
ok "the CLI's credentials file learnt all 3 managers"

kill9 m1
t0=$(now_ms)
plain node ls >/dev/null || fail "node ls without m1"
log "node ls answered $(elapsed_ms "$t0") ms after m1 died"
ok "with the first manager dead, the CLI fails over using its file alone"

# No manager answers: m1 is dead (connection refused), m2 hangs (SIGSTOP:
# the kernel accepts the connection, no one answers). One line names every
# manager tried with its cause, and the whole time spent.
kill -STOP "$(pid m2)"
t0=$(now_ms)
rc=0
out=$("$SKIFF" --timeout 3s --host "$(api m1),$(api m2)" node ls 2>&1) || rc=$?
took=$(elapsed_ms "$t0")
kill -CONT "$(pid m2)"
[ "$rc" = 1 ] || fail "node ls with no manager answering exited $rc: $out"
eq "$(printf '%s\n' "$out" | wc -l)" 1 "lines printed when no manager answers"
contains "$out" "skiff: no manager answered in " "no manager answering"
contains "$out" "$(api m1) (connection refused)" "the dead manager"
contains "$out" "$(api m2) (connection timed out)" "the hung manager"
[[ $out =~ answered\ in\ (2\.[5-9]|3\.[0-4])\ s ]] || fail "the time said is not the time given (3 s): $out"
[ "$took" -lt 4500 ] || fail "node ls took $took ms with --timeout 3s"
ok "no manager answering: one line naming both with their causes, after $took ms: $out"
