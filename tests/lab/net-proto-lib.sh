# Helpers for the data-plane prototype tests (tests/lab/net-proto-*.sh):
# an overlay network made by the overlay's reconcile (tests/tools/
# overlay_apply, the real netlink layer) inside lab hosts, and the Docker
# network bound to its bridge. Source it after lib.sh. Run the tests under
# the lab lock: flock /tmp/skiff-lab.lock tests/lab/net-proto-overlay.sh
BUILD_DIR=${SKIFF_BUILD_DIR:-$SRC_DIR/build}
OVERLAY_APPLY=$BUILD_DIR/tests/overlay_apply
[ -x "$OVERLAY_APPLY" ] || fail "$OVERLAY_APPLY not found: build it first (ninja -C $BUILD_DIR)"

IMAGE=skiff-test/busybox:latest

# host index -> data-path address
vtep_of() { echo "10.78.0.$((10 + ${1#h}))"; }

# overlay_json HOST NET_ID VNI SUBNET GATEWAY [REMOTE_IP@HOST...]: the
# desired state of one network on HOST, with the remote tasks given.
overlay_json() {
    local host=$1 id=$2 vni=$3 subnet=$4 gw=$5 remotes="" r
    shift 5
    for r in "$@"; do
        [ -z "$remotes" ] || remotes+=","
        remotes+="{\"ip\":\"${r%@*}\",\"vtep\":\"$(vtep_of "${r#*@}")\"}"
    done
    printf '{"local_vtep":"%s","networks":[{"id":"%s","vni":%s,"subnet":"%s","gateway":"%s","remotes":[%s]}]}\n' \
        "$(vtep_of "$host")" "$id" "$vni" "$subnet" "$gw" "$remotes"
}

# overlay_apply HOST JSON: runs the reconcile in HOST's namespace; prints
# its output (the changes and "changes N").
overlay_apply() {
    "$LAB" exec "$1" "$OVERLAY_APPLY" <<<"$2"
}

# expect_changes N OUTPUT MSG
expect_changes() {
    local n
    n=$(awk '$1 == "changes" {print $2}' <<<"$2")
    [ "$n" = "$1" ] || fail "$3: expected $1 changes, got ${n:-none}: $(tr '\n' ';' <<<"$2")"
    pass "$3 ($1 changes)"
}

# docker_network HOST NAME SUBNET GATEWAY BRIDGE: the recipe (see
# agent/overlay.h).
docker_network() {
    "$LAB" docker "$1" network create -d bridge --subnet "$3" --gateway "$4" \
        -o com.docker.network.bridge.name="$5" \
        -o com.docker.network.driver.mtu=1450 "$2" >/dev/null
}

# run_task HOST NAME NETWORK IP CMD...: a container with its address given.
run_task() {
    local host=$1 name=$2 net=$3 addr=$4
    shift 4
    "$LAB" docker "$host" run -d --name "$name" --hostname "$name" \
        --network "$net" --ip "$addr" "$IMAGE" "$@" >/dev/null
}

# in_task HOST NAME CMD: a shell command inside the container.
in_task() {
    "$LAB" docker "$1" exec "$2" sh -c "$3"
}

# fetch HOST NAME URL: the body, or failure after 5 s. Not `wget -T 5`: the
# test image's busybox wget dies of SIGSEGV with -T; `timeout` works.
fetch() {
    in_task "$1" "$2" "timeout 5 wget -qO- $3"
}
