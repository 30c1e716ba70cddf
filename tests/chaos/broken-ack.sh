#!/usr/bin/env bash
# A deliberately broken build is caught: skiffd acknowledging writes before
# they commit must make the checker report anomalies.
#
# The switch exists only in test builds: with `meson setup -Dtest_faults=true`
# skiffd honours SKIFF_TEST_ACK_BEFORE_COMMIT=1 (and says so in its log at
# start): the leader answers 200 to every API write as soon as it has
# appended the entry to its log (sk_raft_propose accepted it), before it
# commits, and drops the entry's later outcome. Acknowledged writes are then
# lost when the leader dies or is cut off before replicating them, a read
# right after an acknowledged write may miss it, and two CASes on the same
# version can both be acknowledged (the second is refused at apply, after
# its 200).
#
# Skips (exit 77) when skiffd does not honour the switch. Otherwise runs up
# to 3 rounds of tests/chaos/run.sh (20 s each, stopping at the first round
# with anomalies) and succeeds only if the checker found some.
export SKIFFD_ENV=SKIFF_TEST_ACK_BEFORE_COMMIT=1
export CHAOS_REQUIRE_LOG=SKIFF_TEST_ACK_BEFORE_COMMIT
export CHAOS_EXPECT_ANOMALY=1
export CHAOS_ROUNDS=${CHAOS_ROUNDS:-3}
export CHAOS_ROUND_SECONDS=${CHAOS_ROUND_SECONDS:-20}
export CHAOS_OUT_DIR=${CHAOS_OUT_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/skiff-broken-ack.XXXXXX")}
exec "$(dirname "$0")/run.sh"
