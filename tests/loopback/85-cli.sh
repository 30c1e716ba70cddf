#!/usr/bin/env bash
# The CLI's listings as a docker user expects them: `service ps` with each
# slot's history and several services, --filter and --no-trunc; `node ps`;
# `skiff version` with every manager's version; the update state in
# `service ls` and `service inspect --pretty`; `skiff events` naming the
# objects (a task's service and node too, also once the service is gone),
# with docker's --filter and --format json. No container runs (no
# dockerd): tasks stay assigned, which is all these need.
. "$(dirname "$0")/lib.sh"

init_cluster m1
join w1 worker
version=$("$SKIFF" --version | awk 'NR == 1 { print $2 }')

# ---- version ----
out=$(sk version)
contains "$out" "Client:   skiff $version" "version: the client's"
echo "$out" | grep -qE "^m1 +$(api m1) +$version +Leader\$" || fail "version: m1's row: $out"
eq "$(sk version --format json | jq -c '[.client.version, [.managers[] | .name, .version, .status]]')" \
    "[\"$version\",[\"m1\",\"$version\",\"leader\"]]" "version --format json"
ok "version: the client's ($version) and m1's, from its node description"

# ---- service ps, node ps ----
sk service create --name web --replicas 2 busybox:1 sleep 100 >/dev/null
sk service create --name api busybox:1 sleep 100 >/dev/null
assigned() { [ "$(sk service ps --format json "$1" | jq '[.[] | select(.status.state == "assigned")] | length')" = "$2" ]; }
must 10 "web's 2 tasks assigned" assigned web 2
must 10 "api's task assigned" assigned api 1
out=$(sk service ps web api)
eq "$(echo "$out" | awk 'NR > 1 { print $2 }' | sort | tr '\n' ' ')" "api.1 web.1 web.2 " "service ps web api: the tasks"
# Drain w1: its web task is told to stop, a new one takes its slot on m1.
w1_task=$(sk service ps --format json web | jq -r '.[] | select(.node_name == "w1") | .name')
[ -n "$w1_task" ] || fail "no web task on w1: $(sk service ps web)"
sk node update --availability drain w1 >/dev/null
replaced() { [ "$(sk service ps --format json web | jq length)" = 3 ]; }
must 10 "$w1_task replaced on m1" replaced
out=$(sk service ps web)
log "service ps web after draining w1:"$'\n'"$out"
echo "$out" | grep -qE "^[a-z2-7]{12} +$w1_task +busybox:1 +m1 +Running " || fail "the new $w1_task: $out"
echo "$out" | grep -qE "^[a-z2-7]{12} +\\\\_ $w1_task +busybox:1 +w1 +Shutdown " || fail "the old $w1_task as its history: $out"
row=$(echo "$out" | grep -nE " $w1_task +busybox" | head -1 | cut -d: -f1)
echo "$out" | sed -n "$((row + 1))p" | grep -qF "\\_ $w1_task" || fail "the history is not right under its slot's task: $out"
out=$(sk service ps --filter desired-state=running web)
eq "$(echo "$out" | grep -c Shutdown || true)" 0 "--filter desired-state=running hides the history"
eq "$(echo "$out" | awk 'NR > 1' | wc -l)" 2 "--filter desired-state=running: the running tasks"
eq "$(sk service ps -q --filter desired-state=shutdown --filter node=w1 web | wc -l)" 1 "--filter desired-state=shutdown --filter node=w1"
eq "$(sk service ps -q --filter name=web.1 --filter name=web.2 web | wc -l)" 3 "two values of one key: either"
id=$(sk service ps -q --filter node=w1 web)
echo "$(sk service ps --no-trunc web)" | grep -q "^$id " || fail "--no-trunc: the whole ID $id"
echo "$(sk service ps web)" | grep -q "^${id:0:12} " || fail "the ID cut to 12: ${id:0:12}"
ok "service ps: several services; the slot's history under it (\\_ $w1_task); --filter desired-state|node|name; --no-trunc"

# (api.1 may have been on w1 too, and replaced as well.)
all_on_m1() { [ "$(sk service ps -q --filter desired-state=running --filter node=m1 web api | wc -l)" = 3 ]; }
must 10 "web's and api's tasks running on m1" all_on_m1
all=$(sk service ps -q web api | sort)
out=$(sk node ps w1)
eq "$(echo "$out" | awk 'NR > 1 { print $4 }' | sort -u)" w1 "node ps w1: tasks on w1 only"
eq "$(sk node ps -q m1 w1 | sort)" "$all" "node ps m1 w1: every task"
eq "$(sk node ps -q | sort)" "$all" "node ps: every node's tasks"
eq "$(sk node ps -q --filter desired-state=running | wc -l)" 3 "node ps --filter desired-state=running"
eq "$(sk node ps -q --filter desired-state=running w1 | wc -l)" 0 "node ps w1 --filter desired-state=running"
ok "node ps: a node's tasks, several nodes', every node's"

# ---- the update state where people look ----
sk service update --image busybox:2 web >/dev/null
must 10 "service ls marks web updating" eval "sk service ls | grep -qE '^[a-z2-7]+ +web +replicated +[0-9]+/2 \\(updating\\) +busybox:2'"
out=$(sk service inspect --pretty web)
contains "$out" "UpdateStatus:"$'\n'"  State:        updating" "inspect --pretty: the update state"
contains "$out" "  Message:      update in progress" "inspect --pretty: the update message"
contains "$out" "ContainerSpec:"$'\n'"  Image:        busybox:2" "inspect --pretty: the image"
sk service rollback web >/dev/null
must 10 "service ls marks web rolling back" eval "sk service ls | grep -qE ' web .*/2 \\(rolling back\\) +busybox:1'"
contains "$(sk service inspect --pretty web)" "  Message:      rollback requested" "inspect --pretty after rollback"
eq "$(sk service ls | grep ' api ' | grep -c '(')" 0 "service ls: nothing marked on api (never updated)"
ok "service ls and inspect --pretty show the update state with its message (updating, rolling back)"

# ---- events ----
# Replayed from the start, filtered by the manager, named.
# events ARGS...: `skiff events --since 1 ARGS` in the background into
# events.out; wait_events WHAT PATTERN: until PATTERN shows, then ends it.
EVENTS_PID=
events() {
    "$SKIFF" --host "$(api m1)" events --since 1 "$@" >"$TEST_DIR/events.out" 2>&1 &
    EVENTS_PID=$!
}
wait_events() {
    must 10 "events: $1" grep -q "$2" "$TEST_DIR/events.out"
    kill "$EVENTS_PID"
    wait "$EVENTS_PID" 2>/dev/null || true
}
events --filter type=task --filter service=api --format json
wait_events "api's task assigned" '"state":"assigned"'
jq -e -s 'all(.[]; .type == "task" and .service_name == "api" and .name == "api.1") and
          any(.[]; .state == "assigned" and (.node_name | test("^(m1|w1)$")))' \
    "$TEST_DIR/events.out" >/dev/null || fail "events --filter type=task --filter service=api: $(cat "$TEST_DIR/events.out")"
events --filter service=web --filter event=create
wait_events "web created" " service create "
grep -qE '^[0-9T:.-]+Z service create [a-z2-7]+ \(name=web, mode=replicated\)$' "$TEST_DIR/events.out" ||
    fail "events: the service's creation, named: $(cat "$TEST_DIR/events.out")"
grep -qE '^[0-9T:.-]+Z task create [a-z2-7]+ \(name=web\.1, service=web, ' "$TEST_DIR/events.out" ||
    fail "events: the task's creation, with its service: $(cat "$TEST_DIR/events.out")"
grep -q 'api\| update ' "$TEST_DIR/events.out" && fail "events: api's or update events passed the filter: $(cat "$TEST_DIR/events.out")"
# A removed service's tasks still name it.
sk service rm api >/dev/null
events --filter type=task --filter service=api --filter event=update --format json
wait_events "api's task told to go" '"desired_state":"remove"'
grep '"desired_state":"remove"' "$TEST_DIR/events.out" | jq -e 'select(.service_name == "api" and .name == "api.1")' >/dev/null ||
    fail "events: the removed service's task is not named: $(cat "$TEST_DIR/events.out")"
expect_fail "events --filter type=tasks" sk events --filter type=tasks
contains "$OUT" "filter type=tasks: no such type" "a filter of an unknown type"
expect_fail "events --filter colour=red" sk events --filter colour=red
contains "$OUT" "--filter \"colour=red\": want type=, service=, node= or event=VALUE" "a filter of an unknown key"
ok "events: named (a task's service and node, also once its service is removed), filtered by type, service, event; --format json"
