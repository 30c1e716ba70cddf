#!/usr/bin/env bash
# CI's short round of the history checker under faults (deploy/check runs
# it): one round of 45 s on 3 loopback managers with every fault -- leader
# kill -9, pauses, the leader isolated, a 1/2 split -- about a minute in all.
# Needs root for the partitions (skipped without, said in the output).
#
# The long run is by hand (tests/chaos/run.sh says more):
#   CHAOS_ROUNDS=100 CHAOS_MANAGERS=3 tests/chaos/run.sh
#   CHAOS_ROUNDS=100 CHAOS_MANAGERS=5 tests/chaos/run.sh
export CHAOS_ROUNDS=${CHAOS_ROUNDS:-1}
export CHAOS_MANAGERS=${CHAOS_MANAGERS:-3}
export CHAOS_ROUND_SECONDS=${CHAOS_ROUND_SECONDS:-45}
exec "$(dirname "$0")/run.sh"
