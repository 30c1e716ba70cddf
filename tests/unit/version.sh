#!/bin/sh
# Both binaries print their version and the linked libraries' versions.
set -eu
for bin in "$@"; do
    out=$("$bin" --version)
    for want in "raft     0.22." "libuv    1." "OpenSSL  OpenSSL 3." "jansson  2." "libcurl  7."; do
        echo "$out" | grep -qF "$want" || { echo "$bin --version lacks \"$want\":"; echo "$out"; exit 1; }
    done
    echo "$out" | grep -q "(linked)" || { echo "$bin: raft not linked"; exit 1; }
done
echo "ok: $*"
