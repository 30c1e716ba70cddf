#!/usr/bin/env bash
# Services on real Docker, end to end on the lab (issue 4): spread, scale,
# removal, global services, constraints and preferences (and nodes that stop
# satisfying them: issue 9), restart policy, host loss (service ls counts
# of a global service with a host down), manager loss, agent restarts, and
# bad input.
. "$(dirname "$0")/lib.sh"

cleanup() {
    local rc=$?
    if [ $rc != 0 ]; then
        for h in h1 h2 h3 h4 h5 h6; do
            log "--- last lines of $h's skiffd log"
            "$LAB" logs "$h" 2>/dev/null | tail -15 >&2 || true
        done
    fi
    "$LAB" down >/dev/null 2>&1 || true
    [ $rc = 0 ] || log "FAILED (lab taken down)"
}
trap cleanup EXIT

sk() { "$LAB" skiff "$@"; }
IMG=skiff-test/busybox:latest

# Containers of a service running on a host, as the host's own dockerd says.
on_host() { # HOST SERVICE
    "$LAB" docker "$1" ps -q --filter "label=skiff.service.name=$2" | wc -l
}
all_containers() { # HOST...: every skiff container, running or not
    local h n=0
    for h in "$@"; do
        n=$((n + $("$LAB" docker "$h" ps -aq --filter label=skiff.task.id | wc -l)))
    done
    echo $n
}
running() { # SERVICE: "R/D" from service ls
    sk service ls | awk -v s="$1" '$2 == s {print $4}'
}
converged() { [ "$(running "$1")" = "$2/$2" ]; }
spread_is() { # SERVICE COUNT HOST...: each host runs COUNT
    local svc=$1 want=$2 h; shift 2
    for h in "$@"; do [ "$(on_host "$h" "$svc")" = "$want" ] || return 1; done
}
total_on() { # SERVICE HOST...
    local svc=$1 h n=0; shift
    for h in "$@"; do n=$((n + $(on_host "$h" "$svc"))); done
    echo $n
}
ALL="h1 h2 h3 h4 h5"
# check 'SHELL-EXPR' OP VALUE: evaluates EXPR anew each time wait_for polls
# (a plain `test "$(...)"` would be expanded once, before polling).
check() { [ "$(eval "$1")" "$2" "$3" ]; }

"$LAB" down >/dev/null 2>&1 || true
"$LAB" up --hosts 6
"$LAB" cluster --managers 3 --workers 2

# --- spread, scale, remove ---------------------------------------------
t0=$(now_ms)
sk service create --name web --replicas 20 --init "$IMG" sleep 100000 >/dev/null
wait_for 60 converged web 20 || fail "web did not reach 20/20: $(running web)"
log "20 replicas running after $(( $(now_ms) - t0 )) ms"
wait_for 10 spread_is web 4 $ALL || fail "not 4 per host: $(for h in $ALL; do printf '%s=%s ' $h $(on_host $h web); done)"
pass "20 replicas spread 4 per host, seen in each host's dockerd"

sk service scale web=50 >/dev/null
wait_for 90 converged web 50 || fail "web did not reach 50/50: $(running web)"
wait_for 10 spread_is web 10 $ALL || fail "not 10 per host after scaling to 50"
pass "scaled to 50: 10 per host"
sk service scale web=5 >/dev/null
wait_for 60 converged web 5 || fail "web did not go back to 5/5"
wait_for 30 check 'total_on web $ALL' = 5 || fail "$(total_on web $ALL) containers run after scaling to 5"
pass "scaled back to 5"

sk service rm web >/dev/null
wait_for 60 check 'all_containers $ALL' = 0 || fail "containers left after service rm: $(all_containers $ALL)"
pass "service rm leaves no container anywhere"

# --- global services ---------------------------------------------------
sk service create --name agent --mode global --init "$IMG" sleep 100000 >/dev/null
wait_for 60 spread_is agent 1 $ALL || fail "global service not one per host"
"$LAB" join h6
wait_for 60 spread_is agent 1 h6 || fail "global service did not reach h6 after it joined"
pass "global service: one task per host, including h6 that joined later"
sk node update --availability drain h6 >/dev/null
wait_for 30 spread_is agent 0 h6 || fail "drained h6 still runs the global task"
wait_for 10 spread_is agent 1 $ALL || fail "global tasks moved on other hosts"
pass "global service leaves the drained host"
sk service rm agent >/dev/null

# --- constraints and preferences -----------------------------------------
sk service create --name eu --replicas 3 --constraint node.labels.zone==eu \
    --init "$IMG" sleep 100000 >/dev/null
# h6 was drained above.
pending_reason() { sk service ps eu | grep -q "5 nodes excluded by node.labels.zone==eu; 1 node drained"; }
wait_for 20 pending_reason || { sk service ps eu >&2; fail "no pending reason for the impossible constraint"; }
[ "$(total_on eu $ALL h6)" = 0 ] || fail "a task of eu runs although no node matches"
pass "impossible constraint: tasks pending with the reason"
sk node update --label-add zone=eu h4 >/dev/null
sk node update --label-add zone=eu h5 >/dev/null
wait_for 60 converged eu 3 || fail "eu did not run on the labelled nodes"
[ "$(total_on eu h4 h5)" = 3 ] || fail "eu runs outside the zone"
pass "constraint: tasks only on the matching nodes"

# A node that stops satisfying a constraint loses its tasks, which run where
# it still holds (issue 9): a label removed, a worker promoted.
# why_left SERVICE HOST: the messages of the tasks told to leave HOST.
why_left() {
    sk --format json service ps "$1" |
        jq -r --arg h "$2" '.[] | select(.node_name == $h and .desired_state != "running") | .status.message' | sort -u
}
[ "$(on_host h4 eu)" -gt 0 ] || fail "no task of eu on h4 to move"
t0=$(now_ms)
sk node update --label-rm zone h4 >/dev/null
left_h4() { [ "$(on_host h4 eu)" = 0 ] && [ "$(on_host h5 eu)" = 3 ] && converged eu 3; }
wait_for 30 left_h4 || fail "eu's tasks stayed on h4 after its label went: h4=$(on_host h4 eu) h5=$(on_host h5 eu)"
log "label removed: eu's tasks left h4 for h5 in $(elapsed_ms "$t0") ms"
why=$(why_left eu h4)
[ "$why" = "node h4 no longer satisfies node.labels.zone==eu" ] || fail "why eu's tasks left h4: \"$why\""
pass "label removed: the tasks on h4 moved to h5, saying why"
sk service rm eu >/dev/null

sk service create --name wk --replicas 2 --constraint node.role==worker \
    --init "$IMG" sleep 100000 >/dev/null
wait_for 60 converged wk 2 || fail "wk did not converge"
[ "$(on_host h4 wk)" = 1 ] && [ "$(on_host h5 wk)" = 1 ] ||
    fail "wk is not one per worker: h4=$(on_host h4 wk) h5=$(on_host h5 wk)"
t0=$(now_ms)
sk node promote h5 >/dev/null
left_h5() { [ "$(on_host h5 wk)" = 0 ] && [ "$(on_host h4 wk)" = 2 ] && converged wk 2; }
wait_for 30 left_h5 || fail "wk's task stayed on h5 after its promotion: h4=$(on_host h4 wk) h5=$(on_host h5 wk)"
log "promoted: wk's task left h5 for h4 in $(elapsed_ms "$t0") ms"
why=$(why_left wk h5)
[ "$why" = "node h5 no longer satisfies node.role==worker" ] || fail "why wk's task left h5: \"$why\""
pass "node promote: the workers-only task on h5 moved to the worker h4, saying why"
sk service rm wk >/dev/null
# h5 a worker again, for what follows (three managers, two workers).
voters() { sk --format json cluster info | jq '[.managers[] | select(.raft_member == "voter")] | length'; }
wait_for 30 check voters = 4 || fail "h5 did not become a voter: $(voters) voters"
sk node demote h5 >/dev/null
demoted() {
    [ "$(voters)" = 3 ] &&
        [ "$(sk --format json node ls | jq -r '.[] | select(.spec.name == "h5") | .spec.role')" = worker ]
}
wait_for 30 demoted || fail "h5 not demoted back: $(voters) voters"
wait_for 30 sh -c "$LAB skiff node ls | grep -q ' h5 .*Ready'" || fail "h5 not ready after its demotion"

sk node update --label-add rack=a h1 >/dev/null
for h in h2 h3 h4 h5; do sk node update --label-add rack=b "$h" >/dev/null; done
sk service create --name spread --replicas 8 --placement-pref spread=node.labels.rack \
    --constraint node.hostname!=h6 --init "$IMG" sleep 100000 >/dev/null
wait_for 60 converged spread 8 || fail "spread did not converge"
[ "$(on_host h1 spread)" = 4 ] || fail "rack a (h1) runs $(on_host h1 spread) of 8, want 4"
pass "placement preference: half of the tasks on the single host of rack a"
sk service rm spread >/dev/null

# --- restart policy ------------------------------------------------------
sk service create --name crash --restart-condition on-failure --restart-delay 1s \
    --restart-max-attempts 2 "$IMG" sh -c 'exit 3' >/dev/null
count_failed() { sk service ps -a crash | grep -c "Failed" || true; }
wait_for 40 check 'count_failed' = 3 || fail "crash: $(count_failed) failed tasks, want 3 (first run + 2 restarts)"
# No fourth attempt: the policy allows 2 restarts. Watch for 3 s.
wait_for 3 check 'count_failed' = 4 && fail "a fourth attempt was made"
pass "restart policy: exit 3 restarted after the delay, at most 2 times"
sk service create --name clean --restart-condition on-failure "$IMG" sh -c 'exit 0' >/dev/null
wait_for 30 sh -c "$LAB skiff service ps -a clean | grep -q Complete" || fail "clean exit not seen"
wait_for 4 check 'sk service ps -a clean | grep -c Complete' -gt 1 && fail "on-failure restarted a clean exit"
pass "on-failure does not restart a clean exit"
sk service rm crash clean >/dev/null

# --- a missing image -----------------------------------------------------
sk service create --name ghost --restart-condition none skiff-test/missing:1 sleep 1 >/dev/null
rejected() { sk service ps -a ghost | grep -q 'Rejected.*image "skiff-test/missing:1" not found on node h[0-9] and could not be pulled'; }
wait_for 60 rejected || { sk service ps -a ghost >&2; fail "a task with a missing image was not rejected with a clear message"; }
pass "a missing image rejects the task, saying which image on which node"
sk service rm ghost >/dev/null

# --- an update that fails ------------------------------------------------
# The first replacement is rejected (missing image): the update pauses (the
# default failure action) with the cause, and the other replicas keep the
# old image. With failure action rollback, the old image comes back.
sk service create --name upd --replicas 4 --init "$IMG" sleep 100000 >/dev/null
wait_for 60 converged upd 4 || fail "upd did not converge"
update_state() { sk service inspect upd | jq -r '.[0].update_status.state'; }
sk service update --image skiff-test/missing:2 upd >/dev/null
wait_for 30 check update_state = paused || fail "the update did not pause: $(update_state)"
msg=$(sk service inspect upd | jq -r '.[0].update_status.message')
echo "$msg" | grep -q '^update paused: 1 of 4 tasks failed; task upd\.[1-4] failed: image "skiff-test/missing:2" not found' ||
    fail "pause message: $msg"
wait_for 5 check 'total_on upd h1 h2 h3 h4 h5 h6' != 3 && fail "a paused update went on replacing"
[ "$(sk service ps upd | grep -c "$IMG.*Running *Running")" = 3 ] || fail "the old image does not run on 3 replicas"
sk service ls | grep -qE ' upd +replicated +3/4 \(update paused\) ' || fail "service ls does not mark the pause: $(sk service ls)"
pretty=$(sk service inspect --pretty upd)
echo "$pretty" | grep -qx '  State:        paused' || fail "inspect --pretty: no paused state: $pretty"
echo "$pretty" | grep -q '^  Message:      update paused: 1 of 4 tasks failed; task upd\.[1-4] failed: image "skiff-test/missing:2" not found' ||
    fail "inspect --pretty: no pause message: $pretty"
pass "an update whose first replacement fails pauses, saying why (service ls, inspect --pretty); 3 of 4 replicas keep running"
# `service rollback` puts the old image back; then a failing update with
# failure action rollback rolls back by itself.
sk service rollback upd >/dev/null
wait_for 30 check update_state = rollback_completed || fail "service rollback did not complete: $(update_state)"
wait_for 30 converged upd 4 || fail "upd not 4/4 after service rollback: $(running upd)"
[ "$(sk service inspect upd | jq -r '.[0].spec.task.container.image')" = "$IMG" ] ||
    fail "service rollback did not restore the previous image"
pass "service rollback: the previous image is back"
sk service update --image skiff-test/missing:3 --update-failure-action rollback upd >/dev/null
wait_for 30 check update_state = rollback_completed || fail "no rollback: $(update_state)"
wait_for 30 converged upd 4 || fail "upd not 4/4 after the rollback: $(running upd)"
[ "$(sk service inspect upd | jq -r '.[0].spec.task.container.image')" = "$IMG" ] ||
    fail "the rollback did not restore the previous image"
[ "$(sk service ps upd | grep -c "$IMG.*Running *Running")" = 4 ] || fail "the old image does not run on 4 replicas after the rollback"
# The cause stays once the rollback is done, where people look.
sk service ls | grep -qE ' upd +replicated +4/4 \(rolled back\) ' || fail "service ls does not mark the rollback: $(sk service ls)"
pretty=$(sk service inspect --pretty upd)
echo "$pretty" | grep -q '^  Message:      rolled back: 1 of 4 tasks failed; task upd\.[1-4] failed: image "skiff-test/missing:3" not found' ||
    fail "inspect --pretty: the rollback's cause is lost: $pretty"
pass "failure action rollback: the previous image is back on every replica; the cause kept (service ls, inspect --pretty)"
sk service rm upd >/dev/null

# --- host loss -----------------------------------------------------------
sk service create --name hl --replicas 10 --init "$IMG" sleep 100000 >/dev/null
wait_for 60 converged hl 10 || fail "hl did not converge"
wait_for 20 check 'on_host h5 hl' -gt 0 || fail "no task of hl on h5: $(for h in $ALL h6; do printf '%s=%s ' $h $(on_host $h hl); done)"
# A global service beside it: service ls counts only what runs on ready
# nodes (issue 9); h6 is drained, so it wants h1..h5.
sk service create --name gl --mode global --init "$IMG" sleep 100000 >/dev/null
wait_for 60 converged gl 5 || fail "gl did not reach 5/5: $(running gl)"
old_on_h5=$(on_host h5 hl)
t0=$(now_ms)
"$LAB" cut h5
back_elsewhere() { [ "$(total_on hl h1 h2 h3 h4 h6)" = 10 ]; }
wait_for 60 back_elsewhere || fail "tasks of the cut host did not come back elsewhere"
log "host loss: all 10 replicas running on the others after $(( $(now_ms) - t0 )) ms"
wait_for 10 check 'running gl' = 4/4 || fail "global gl shows $(running gl) with h5 down, want 4/4"
pass "service ls: a global service counts only ready nodes (4/4 with h5 down)"
# h5's containers kept running, cut off.
[ "$(on_host h5 hl)" = "$old_on_h5" ] || fail "h5's containers died while it was cut off"
# Logs: the reachable nodes answer; the cut one is named, not waited on.
t0=$(now_ms)
if logs_err=$(timeout 30 "$LAB" skiff service logs hl 2>&1 >/dev/null); then
    fail "service logs succeeded although h5 is unreachable"
fi
echo "$logs_err" | grep -q "@h5: logs unavailable" || fail "service logs does not name h5: $logs_err"
[ $(( $(now_ms) - t0 )) -lt 15000 ] || fail "service logs took $(( $(now_ms) - t0 )) ms with h5 cut off"
pass "service logs names the unreachable node h5 and returns ($(( $(now_ms) - t0 )) ms)"
"$LAB" heal h5
wait_for 60 check 'on_host h5 hl' = 0 || fail "stale containers on h5 after heal: $(on_host h5 hl)"
[ "$(total_on hl $ALL h6)" = 10 ] || fail "after heal, $(total_on hl $ALL h6) containers run (want 10)"
pass "host loss: replaced elsewhere; after heal the stale containers were removed, none duplicated"
wait_for 30 converged gl 5 || fail "gl shows $(running gl) after h5 came back, want 5/5"
sk service rm gl >/dev/null
wait_for 30 check 'total_on gl $ALL h6' = 0 || fail "gl's containers left after service rm"

# --- managers stopped ----------------------------------------------------
ids_before=$(for h in $ALL h6; do "$LAB" docker "$h" ps -q --filter label=skiff.task.id; done | sort)
for h in h1 h2 h3; do "$LAB" stop "$h"; done
ids_mid=$(for h in $ALL h6; do "$LAB" docker "$h" ps -q --filter label=skiff.task.id; done | sort)
[ "$ids_before" = "$ids_mid" ] || fail "containers changed while no manager ran"
for h in h1 h2 h3; do "$LAB" start "$h"; done
wait_for 60 converged hl 10 || fail "hl not 10/10 after the managers returned"
# Give the leader a moment to act if it wrongly would, then compare.
wait_for 5 check 'for h in $ALL h6; do "$LAB" docker "$h" ps -q --filter label=skiff.task.id; done | sort' != "$ids_before" && fail "containers were restarted after the managers returned"
pass "managers stopped: containers kept running; back: nothing restarted"

# --- agent kill -9 -------------------------------------------------------
ids_before=$("$LAB" docker h4 ps -q --filter label=skiff.task.id | sort)
"$LAB" stop h4 --kill
"$LAB" start h4
wait_for 30 sh -c "$LAB skiff node ls | grep -q ' h4 .*Ready'" || fail "h4 not ready after restart"
wait_for 5 check '"$LAB" docker h4 ps -q --filter label=skiff.task.id | sort' != "$ids_before" && fail "h4's containers changed after its agent restarted"
[ "$(total_on hl $ALL h6)" = 10 ] || fail "duplicates after the agent restart"
pass "kill -9 of an agent: it adopted its containers, nothing duplicated"

# --- a worker's skiffd stopped for good ----------------------------------
# A stopped skiffd says so (disconnected); a restart moves nothing (see the
# managers above), but a node that stays away is down after 15 heartbeat
# periods and its tasks run elsewhere; back, it removes its stale ones.
wait_for 20 check 'on_host h4 hl' -gt 0 || fail "no task of hl on h4"
t0=$(now_ms)
"$LAB" stop h4
wait_for 10 sh -c "$LAB skiff node ls | grep -q ' h4 .*Disconnected'" ||
    fail "h4 is not disconnected after its skiffd stopped: $(sk node ls | grep ' h4 ')"
back_without_h4() { [ "$(total_on hl h1 h2 h3 h5 h6)" = 10 ]; }
wait_for 60 back_without_h4 || fail "h4's tasks did not move while its skiffd stayed away"
log "skiffd stopped on h4: its tasks run elsewhere after $(( $(now_ms) - t0 )) ms"
wait_for 5 sh -c "$LAB skiff node ls | grep -q ' h4 .*Down'" || fail "h4 is not down: $(sk node ls | grep ' h4 ')"
"$LAB" start h4
wait_for 30 check 'on_host h4 hl' = 0 || fail "h4 kept $(on_host h4 hl) stale containers after its return"
[ "$(total_on hl $ALL h6)" = 10 ] || fail "$(total_on hl $ALL h6) containers of hl after h4's return (want 10)"
pass "a worker's skiffd stopped for good: its tasks moved; back, its stale containers were removed"
sk service rm hl >/dev/null

# --- bad input -----------------------------------------------------------
# Reads are served by any manager: wait until the removals above show.
wait_for 10 check 'sk service ls -q | wc -l' = 0 || fail "services left: $(sk service ls)"
before=0
bad() { # EXPECTED-MESSAGE ARGS...
    local want=$1 out; shift
    if out=$(sk service create "$@" 2>&1); then fail "accepted: $*"; fi
    echo "$out" | grep -qF -- "$want" || fail "message for [$*] is \"$out\", want \"$want\""
}
bad "unknown flag --replica (did you mean --replicas?)" --replica 3 "$IMG"
bad 'constraint "node.labels.zone=eu": want KEY==VALUE or KEY!=VALUE' --constraint node.labels.zone=eu "$IMG"
bad "--replicas: invalid number \"1000001\": want an integer from 0 to 100000" --replicas 1000001 "$IMG"
bad '--publish "80:"' --publish 80: "$IMG"
bad 'unknown key node.cpu' --constraint node.cpu==2 "$IMG"
[ "$(sk service ls -q | wc -l)" = "$before" ] || fail "bad input changed the cluster"
pass "bad input rejected with clear messages, nothing changed"
sk service create --name fresh --replicas 0 "$IMG" >/dev/null
if out=$(sk service rollback fresh 2>&1); then fail "rollback of a never-updated service accepted"; fi
echo "$out" | grep -qF 'service "fresh" has no previous spec to roll back to' || fail "rollback message: $out"
pass "rollback of a service never updated is refused, saying why"
sk service rm fresh >/dev/null
