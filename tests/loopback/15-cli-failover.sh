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
