#!/usr/bin/env bash
# The Docker Engine API client (agent/docker.c) against a lab host's real
# dockerd: brings up one host, runs tests/docker/test_docker on its socket,
# and takes the lab down again, also when a step fails. Builds nothing: the
# test binary comes from $SKIFF_BUILD_DIR (default ./build).
. "$(dirname "$0")/lib.sh"

BUILD_DIR=${SKIFF_BUILD_DIR:-$SRC_DIR/build}
TEST_BIN=$BUILD_DIR/tests/test_docker
HOST=h1
SOCK=${SKIFF_LAB_RUN:-/run/skiff-lab}/$HOST/docker.sock

[ -x "$TEST_BIN" ] || fail "$TEST_BIN not found: build it first (ninja -C $BUILD_DIR tests/test_docker)"

cleanup() {
    local rc=$?
    "$LAB" down >/dev/null 2>&1 || true
    [ $rc = 0 ] || log "FAILED (lab taken down)"
}
trap cleanup EXIT

"$LAB" down >/dev/null 2>&1 || true
t0=$(now_ms)
"$LAB" up --hosts 1
log "lab up --hosts 1 took $(( $(now_ms) - t0 )) ms"
[ -S "$SOCK" ] || fail "no dockerd socket at $SOCK"
"$LAB" docker "$HOST" image inspect skiff-test/busybox:latest >/dev/null ||
    fail "the test image is not loaded on $HOST"

t0=$(now_ms)
rc=0
SKIFF_TEST_DOCKER_SOCK=$SOCK "$TEST_BIN" || rc=$?
[ $rc = 0 ] || fail "test_docker exited with $rc"
pass "test_docker against $HOST's dockerd ($(( $(now_ms) - t0 )) ms)"

# The test removes every container it made.
left=$("$LAB" docker "$HOST" ps -aq --filter label=skifftest.run) ||
    fail "cannot list containers on $HOST"
[ -z "$left" ] || fail "containers left behind on $HOST: $(tr '\n' ' ' <<<"$left")"
pass "no test container left on $HOST"
