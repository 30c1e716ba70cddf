#!/usr/bin/env bash
# The history checker under faults: rounds of concurrent clients
# (chaos_client) against a fresh cluster of 3 or 5 managers, on loopback or
# on the lab, while a nemesis injects faults, each round's history checked
# by chaos_check.
#
#   tests/chaos/run.sh                      (build first: ninja -C build)
#   flock /tmp/skiff-lab.lock env CHAOS_ENV=lab tests/chaos/run.sh
#
# The long run, by hand (about 50 s a round):
#
#   CHAOS_ROUNDS=100 CHAOS_MANAGERS=3 tests/chaos/run.sh
#   CHAOS_ROUNDS=100 CHAOS_MANAGERS=5 tests/chaos/run.sh
#
# Settings (environment):
#   CHAOS_ENV            loopback (default) or lab (tests/chaos/lab-lib.sh)
#   CHAOS_ROUNDS         rounds (default 1)
#   CHAOS_MANAGERS       3 or 5 (default 3)
#   CHAOS_ROUND_SECONDS  client time per round (default 40)
#   CHAOS_CLIENTS        concurrent clients (default 8)
#   CHAOS_REGISTERS      CAS registers (default 4)
#   CHAOS_FAULTS         comma-separated, of: kill (kill -9 the leader,
#                        restart it on its data dir a few seconds later),
#                        pause (SIGSTOP the leader or a random manager,
#                        SIGCONT later), isolate (partition the leader from
#                        every other manager), split (a random minority of
#                        the managers from the rest: 1/2 or 2/3)
#                        (default: all four)
#   CHAOS_SEED           seeds the nemesis and the clients (default: random)
#   CHAOS_OUT_DIR        where the history and logs of a failing round go
#                        (default: $SKIFF_BUILD_DIR/chaos-failures)
#   CHAOS_CLIENT_ARGS    more chaos_client flags
#   CHAOS_EXPECT_ANOMALY=1  invert the verdict: succeed only if some round
#                        finds an anomaly (for showing that broken builds
#                        are caught; tests/chaos/broken-ack.sh)
#   CHAOS_REQUIRE_LOG    skip (exit 77) unless the first manager's log says
#                        this (a fault switch it honours)
#   SKIFFD_ENV           "K=V ..." set in every skiffd's environment
#
# Each round prints
#   round N: ops=.., ok=.., fail=.., unknown=.., faults=[..], anomalies=0
# and the run ends with a summary line. On an anomaly (or a search that ran
# out of budget: "undecided") the round's history and the managers' logs are
# copied to CHAOS_OUT_DIR and the path printed; the run exits 1 (3 if only
# undecided), after finishing its rounds.
#
# Partitions need root, iptables and, on loopback, cgroup2 (see
# tests/chaos/lib.sh); without them isolate and split are skipped (said
# once). Every rule, cgroup, paused process and daemon is cleaned up at
# exit, also on failure.
if [ "${CHAOS_ENV:-loopback}" = lab ]; then
    . "$(dirname "$0")/lab-lib.sh"
else
    . "$(dirname "$0")/lib.sh"
fi

ROUNDS=${CHAOS_ROUNDS:-1}
N_MANAGERS=${CHAOS_MANAGERS:-3}
ROUND_SECS=${CHAOS_ROUND_SECONDS:-40}
CLIENTS=${CHAOS_CLIENTS:-8}
REGISTERS=${CHAOS_REGISTERS:-4}
FAULTS=${CHAOS_FAULTS:-kill,pause,isolate,split}
SEED=${CHAOS_SEED:-$(( $(date +%s%N) % 1000000000 ))}
OUT_DIR=${CHAOS_OUT_DIR:-$BUILD_DIR/chaos-failures}
EXPECT_ANOMALY=${CHAOS_EXPECT_ANOMALY:-0}
case $N_MANAGERS in 3|5) ;; *) echo "CHAOS_MANAGERS must be 3 or 5" >&2; exit 2;; esac
RANDOM=$SEED

# ---- the nemesis ----

FAULT_LIST=()
IFS=, read -r -a FAULT_KINDS <<<"$FAULTS"
if [ "$PARTITIONS" = 0 ]; then
    kinds=()
    for f in "${FAULT_KINDS[@]}"; do
        case $f in isolate|split) ;; *) kinds+=("$f");; esac
    done
    if [ "${#kinds[@]}" != "${#FAULT_KINDS[@]}" ]; then
        log "partitions skipped: they need root, iptables and a cgroup2 mount"
    fi
    FAULT_KINDS=("${kinds[@]}")
fi
[ "${#FAULT_KINDS[@]}" -gt 0 ] || { echo "no faults to inject" >&2; exit 2; }

# pick WORD...: one of the words at random, in PICKED (not in a $(...),
# whose subshell would not advance this shell's RANDOM).
PICKED=
pick() { local a=("$@"); PICKED=${a[RANDOM % ${#a[@]}]}; }
# hold MIN MAX: sleeps a random 0.1 s multiple between MIN and MAX seconds.
hold() { sleep "$(awk -v a="$1" -v b="$2" -v r=$RANDOM 'BEGIN { printf "%.1f", a + (b - a) * r / 32767 }')"; }

# nemesis_log WHAT: a line in the round's timeline, stamped with the
# monotonic clock the history uses (seconds since boot, as chaos_check
# prints them).
nemesis_log() {
    local up
    read -r up _ </proc/uptime
    echo "$up $*" >>"$NEMESIS_LOG"
}

# One fault: inject, hold, heal. Appends its description to FAULT_LIST.
fault() {
    local kind=$1 leader target n
    leader=$(current_leader)
    pick "${MANAGERS[@]}"
    nemesis_log "leader: ${leader:-none}"
    case $kind in
    kill)
        target=${leader:-$PICKED}
        FAULT_LIST+=("kill $target")
        nemesis_log "kill -9 $target"
        kill9 "$target"
        hold 1 4
        nemesis_log "restart $target"
        start "$target"
        ;;
    pause)
        if [ -n "$leader" ] && [ $((RANDOM % 2)) = 0 ]; then target=$leader
        else target=$PICKED; fi
        FAULT_LIST+=("pause $target")
        nemesis_log "SIGSTOP $target"
        kill -STOP "$(pid "$target")"
        PAUSED=("$target")
        hold 1 5
        nemesis_log "SIGCONT $target"
        kill -CONT "$(pid "$target")"
        PAUSED=()
        ;;
    isolate)
        target=${leader:-$PICKED}
        FAULT_LIST+=("isolate $target")
        nemesis_log "isolate $target"
        for n in "${MANAGERS[@]}"; do [ "$n" = "$target" ] || sever "$target" "$n"; done
        hold 2 6
        nemesis_log "heal"
        heal_partitions
        ;;
    split)
        local shuffled=() minority=() i
        shuffled=($(printf '%s\n' "${MANAGERS[@]}" | awk -v s=$RANDOM 'BEGIN { srand(s) } { print rand() "\t" $0 }' | sort | cut -f2))
        local k=$(( (N_MANAGERS - 1) / 2 ))
        minority=("${shuffled[@]:0:$k}")
        local majority=("${shuffled[@]:$k}")
        FAULT_LIST+=("split $(IFS=,; echo "${minority[*]}")|$(IFS=,; echo "${majority[*]}")")
        nemesis_log "${FAULT_LIST[-1]}"
        for i in "${minority[@]}"; do
            for n in "${majority[@]}"; do sever "$i" "$n"; done
        done
        hold 2 6
        nemesis_log "heal"
        heal_partitions
        ;;
    esac
}

# ---- rounds ----

mkdir -p "$OUT_DIR"
TOTAL_OPS=0 TOTAL_OK=0 TOTAL_FAIL=0 TOTAL_UNKNOWN=0 TOTAL_FAULTS=0
ANOMALOUS=0 UNDECIDED=0
log "$ROUNDS round(s), $N_MANAGERS managers on $WHERE, ${ROUND_SECS}s each, $CLIENTS clients, faults: ${FAULT_KINDS[*]}, seed $SEED"
for round in $(seq "$ROUNDS"); do
    fresh_cluster "$N_MANAGERS"
    if [ -n "${CHAOS_REQUIRE_LOG:-}" ] && ! grep -qF -- "$CHAOS_REQUIRE_LOG" "$(node_log "${MANAGERS[0]}")"; then
        log "skipped: skiffd does not say \"$CHAOS_REQUIRE_LOG\" in its log"
        exit 77
    fi
    HIST=$TEST_DIR/round-$round.jsonl
    NEMESIS_LOG=$TEST_DIR/nemesis-$round.log
    : >"$NEMESIS_LOG"
    FAULT_LIST=()
    # shellcheck disable=SC2086 # CHAOS_CLIENT_ARGS is a list of flags
    timeout $(( ROUND_SECS + 60 )) "$CLIENT" --config "$ADMIN" --hosts "$(managers_csv)" \
        --out "$HIST" --prefix "c$round" --clients "$CLIENTS" --registers "$REGISTERS" \
        --duration "${ROUND_SECS}s" --seed $(( SEED + round )) ${CHAOS_CLIENT_ARGS:-} \
        >"$TEST_DIR/client-$round.log" 2>&1 &
    client_pid=$!
    t_end=$(( $(now_ms) + ROUND_SECS * 1000 - 3000 ))
    hold 1 3
    while [ "$(now_ms)" -lt "$t_end" ] && alive "$client_pid"; do
        pick "${FAULT_KINDS[@]}"
        fault "$PICKED"
        heal_all
        hold 1 3
    done
    heal_all
    client_rc=0
    wait "$client_pid" || client_rc=$?
    [ "$client_rc" = 0 ] || fail "round $round: chaos_client exited $client_rc: $(tail -n 3 "$TEST_DIR/client-$round.log")"
    must 30 "round $round: every manager healthy after healing" all_healthy
    must 30 "round $round: a leader after healing" has_leader
    "$CLIENT" --config "$ADMIN" --hosts "$(managers_csv)" --out "$HIST" --prefix "c$round" \
        --final 30s >>"$TEST_DIR/client-$round.log" 2>&1 ||
        log "round $round: the final reads did not all succeed (the check says what is missing)"
    check_rc=0
    "$CHECK" "$HIST" >"$TEST_DIR/check-$round.txt" 2>&1 || check_rc=$?
    summary=$(head -n 1 "$TEST_DIR/check-$round.txt")
    ops=$(check_field ops "$summary") ok_n=$(check_field ok "$summary")
    fail_n=$(check_field fail "$summary") unknown=$(check_field unknown "$summary")
    anomalies=$(check_field anomalies "$summary")
    TOTAL_OPS=$(( TOTAL_OPS + ${ops:-0} )) TOTAL_OK=$(( TOTAL_OK + ${ok_n:-0} ))
    TOTAL_FAIL=$(( TOTAL_FAIL + ${fail_n:-0} )) TOTAL_UNKNOWN=$(( TOTAL_UNKNOWN + ${unknown:-0} ))
    TOTAL_FAULTS=$(( TOTAL_FAULTS + ${#FAULT_LIST[@]} ))
    faults=$(printf '%s, ' "${FAULT_LIST[@]}")
    echo "round $round: ops=${ops:-?}, ok=${ok_n:-?}, fail=${fail_n:-?}, unknown=${unknown:-?}, faults=[${faults%, }], anomalies=${anomalies:-?}"
    if [ "$check_rc" != 0 ]; then
        keep=$OUT_DIR/$(date -u +%Y%m%dT%H%M%SZ)-m$N_MANAGERS-round$round
        mkdir -p "$keep"
        cp "$HIST" "$TEST_DIR/check-$round.txt" "$TEST_DIR/client-$round.log" \
            "$NEMESIS_LOG" "$keep/"
        for n in "${MANAGERS[@]}"; do cp "$(node_log "$n")" "$keep/$n.log" 2>/dev/null || true; done
        case $check_rc in
        1) ANOMALOUS=$(( ANOMALOUS + 1 )); what=anomaly ;;
        3) UNDECIDED=$(( UNDECIDED + 1 )); what=undecided ;;
        *) fail "round $round: chaos_check exited $check_rc: $(cat "$TEST_DIR/check-$round.txt")" ;;
        esac
        echo "round $round: $what; history in $keep/$(basename "$HIST")"
        sed -n '2,40p' "$TEST_DIR/check-$round.txt"
    fi
    if [ "$EXPECT_ANOMALY" = 1 ] && [ "$ANOMALOUS" -gt 0 ]; then
        ROUNDS=$round
        break
    fi
done
echo "chaos: $ROUNDS rounds, $N_MANAGERS managers, seed $SEED: ops=$TOTAL_OPS, ok=$TOTAL_OK, fail=$TOTAL_FAIL, unknown=$TOTAL_UNKNOWN, faults=$TOTAL_FAULTS, rounds with anomalies=$ANOMALOUS, undecided=$UNDECIDED"
if [ "$EXPECT_ANOMALY" = 1 ]; then
    [ "$ANOMALOUS" -gt 0 ] || fail "expected the checker to find an anomaly; it found none"
    ok "the checker found anomalies in $ANOMALOUS of $ROUNDS rounds, as expected"
    exit 0
fi
[ "$ANOMALOUS" = 0 ] || exit 1
[ "$UNDECIDED" = 0 ] || exit 3
ok "no anomalies in $ROUNDS rounds"
