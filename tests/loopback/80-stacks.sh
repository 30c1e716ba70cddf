#!/usr/bin/env bash
# Stacks from Compose files: `skiff stack deploy -c FILE -c FILE2 STACK`
# makes the stack's networks and services (named STACK_NAME, labelled,
# specs as the files say, interpolated and merged), a redeploy updates
# only the services whose spec changed, --prune removes those the files
# no longer name, `stack ls|services|ps` show them, `stack rm` removes all
# of it; bad files are refused with file:line and change nothing. No
# container runs (the agents have no dockerd): tasks stay pending or are
# never started, which is enough for what is checked here; running them,
# and names resolving across hosts, is for a lab test once the data plane
# is wired.
. "$(dirname "$0")/lib.sh"

for cmd in deploy ls services ps rm; do
    out=$("$SKIFF" --config /nonexistent stack $cmd --help 2>&1) ||
        fail "skiff stack $cmd --help without credentials: $out"
    [[ $out == "usage: skiff stack $cmd"* ]] || fail "skiff stack $cmd --help: $out"
done

init_cluster m1
join w1 worker
sk node update --label-add zone=eu w1 >/dev/null

D=$TEST_DIR/stack
mkdir -p "$D"
cat >"$D/compose.yml" <<'EOF'
version: "3.9"
services:
  web:
    image: busybox:${WEB_TAG:-1}
    command: httpd -f -p 8080
    ports:
      - "8080:8080"
    networks:
      front:
        aliases: [www]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://localhost:8080/"]
      interval: 5s
      timeout: 2s
      retries: 3
    deploy:
      replicas: 2
      placement:
        constraints: [node.labels.zone == eu]
  api:
    image: busybox:1
    command: ["sleep", "1000"]
    environment:
      - MODE=${MODE:?set MODE}
      - DB_HOST=db
    networks: [front, back]
    build: ./api
    deploy:
      update_config: {parallelism: 1, order: start-first}
  db:
    image: busybox:1
    command: sleep 1000
    networks: [back]
    stop_grace_period: 30s
    deploy:
      mode: global
      resources:
        reservations: {memory: 16M}
networks:
  front: {}
  back:
    internal: true
EOF
cat >"$D/override.yml" <<'EOF'
services:
  api:
    environment: [EXTRA=1]
    ports:
      - target: 9000
        published: 9000
        protocol: udp
        mode: host
    depends_on: [db]
  extra:
    image: busybox:1
    command: sleep 1000
EOF

svc_field() { sk service inspect "$1" | jq -r ".[0] | $2"; }
net_field() { sk network inspect "$1" | jq -r ".[0] | $2"; }
# services_state: every service's name, version and spec_version; the
# networks' names and IDs (what must not change on a refusal).
cluster_state() {
    sk service ls --format json | jq -c '[.[] | [.spec.name, .id, .version, .spec_version]] | sort'
    sk network ls --format json | jq -c '[.[] | [.spec.name, .id, .version]] | sort'
}

# --- deploy: names, labels, specs -----------------------------------------
out=$(MODE=prod sk stack deploy --detach -c "$D/compose.yml" -c "$D/override.yml" app 2>&1)
contains "$out" "$D/compose.yml:27: services.api.build: not supported by skiff, ignored" "the build key is a warning with file:line"
contains "$out" "$D/override.yml:9: services.api.depends_on: not supported by skiff" "depends_on in the override, with its file"
contains "$out" "Creating network app_front" "deploy output"
contains "$out" "Creating network app_back" "deploy output"
contains "$out" "Creating network app_default" "the default network for a service that names none"
contains "$out" "Creating service app_web" "deploy output"
eq "$(sk service ls --format json | jq -r '[.[].spec.name] | sort | join(",")')" \
    "app_api,app_db,app_extra,app_web" "the stack's services"
for s in web api db extra; do
    eq "$(svc_field "app_$s" '.spec.labels["skiff.stack.namespace"]')" app "app_$s's stack label"
    eq "$(svc_field "app_$s" '.spec.task.container.labels["skiff.stack.namespace"]')" app "app_$s's container label"
done
for n in front back default; do
    eq "$(net_field "app_$n" '.spec.labels["skiff.stack.namespace"]')" app "network app_$n's stack label"
done
eq "$(net_field app_back .spec.internal)" true "back is internal"
eq "$(svc_field app_web '.spec.task.container | [.image, (.command | join(" "))] | join(" ")')" \
    "busybox:1 httpd -f -p 8080" "web's image and command"
eq "$(svc_field app_web '.spec.task.container.healthcheck | [(.test | join(" ")), .interval_ms, .timeout_ms, .retries] | map(tostring) | join(" ")')" \
    "CMD wget -q -O- http://localhost:8080/ 5000 2000 3" "web's health check"
eq "$(svc_field app_web '.spec.endpoint.ports | map("\(.published):\(.target)/\(.protocol)/\(.mode)") | join(",")')" \
    "8080:8080/tcp/host" "web's published port"
eq "$(svc_field app_web '[.spec.replicas, .spec.task.placement.constraints[0]] | map(tostring) | join(" ")')" \
    "2 node.labels.zone == eu" "web's replicas and constraint"
eq "$(svc_field app_web '.spec.task.networks | map("\(.target):\(.aliases | join("+"))") | join(",")')" \
    "app_front:web+www" "web on front, known as web and www"
eq "$(svc_field app_web '.spec.task.networks[0].id')" "$(net_field app_front .id)" "the network's ID resolved"
eq "$(svc_field app_api '.spec.task.container.env | join(",")')" "DB_HOST=db,EXTRA=1,MODE=prod" \
    "api's environment: interpolated, merged, sorted"
eq "$(svc_field app_api '.spec.task.networks | map(.target) | join(",")')" "app_front,app_back" "api's networks"
eq "$(svc_field app_api '.spec.endpoint.ports | map("\(.published)/\(.protocol)") | join(",")')" "9000/udp" \
    "api's port from the override (long form)"
eq "$(svc_field app_api '.spec.update.order')" start-first "api's update config"
eq "$(svc_field app_db '[.spec.mode, .spec.task.container.stop_grace_ms, .spec.task.reservations.memory_bytes] | map(tostring) | join(" ")')" \
    "global 30000 16777216" "db: global, grace period, reservation"
eq "$(svc_field app_extra '.spec.task.networks | map(.target) | join(",")')" app_default "extra on the default network"
ok "stack deploy: networks and services named app_*, labelled, specs as the two files say (interpolated, merged, warnings with file:line)"

# --- ls, services, ps --------------------------------------------------------
sk service create -q --name loner busybox:1 >/dev/null
ls_out=$(sk stack ls)
[[ $ls_out =~ app\ +4\ +3 ]] || fail "stack ls: $ls_out"
eq "$(sk stack ls --format json | jq -c '.')" '[{"name":"app","services":4,"networks":3}]' "stack ls --format json"
eq "$(sk stack services --format json app | jq -r '[.[].spec.name] | sort | join(",")')" \
    "app_api,app_db,app_extra,app_web" "stack services: the stack's only"
svc_out=$(sk stack services app)
contains "$svc_out" "app_web" "stack services table"
contains "$svc_out" "*:8080->8080/tcp" "stack services shows the ports"
eq "$(sk stack services -q app | sort | tr '\n' ' ')" \
    "$(for s in api db extra web; do svc_field "app_$s" .id; done | sort | tr '\n' ' ')" "stack services -q"
has_tasks() { [ "$(sk stack ps --format json app | jq '[.[] | select(.desired_state == "running")] | length')" -ge 5 ]; }
must 10 "the stack's tasks exist" has_tasks
ps_out=$(sk stack ps app)
contains "$ps_out" "app_web.1" "stack ps names the tasks"
contains "$ps_out" "app_api.1" "stack ps: every service"
[[ $ps_out != *loner* ]] || fail "stack ps shows another service's task: $ps_out"
eq "$(sk stack services nope 2>&1)" "Nothing found in stack: nope" "stack services of no stack"
ok "stack ls, services, ps: the stack's objects only"

# --- redeploy: only what changed is updated --------------------------------
before=$(sk service ls --format json | jq -c '[.[] | {(.spec.name): [.version, .spec_version]}] | add')
# (Without --detach: nothing to wait for.)
out=$(MODE=prod sk stack deploy -c "$D/compose.yml" -c "$D/override.yml" app 2>&1)
contains "$out" "Service app_web is up to date" "redeploy of the same files"
[[ $out != *Updating* && $out != *Creating* && $out != *"other settings"* ]] ||
    fail "the same files changed something: $out"
eq "$(sk service ls --format json | jq -c '[.[] | {(.spec.name): [.version, .spec_version]}] | add')" "$before" \
    "no service written by a redeploy of the same files"
out=$(WEB_TAG=2 MODE=prod sk stack deploy --detach -c "$D/compose.yml" -c "$D/override.yml" app 2>&1)
contains "$out" "Updating service app_web" "redeploy with web's image changed"
eq "$(grep -c Updating <<<"$out")" 1 "one service updated"
eq "$(svc_field app_web .spec.task.container.image)" busybox:2 "web's new image"
after=$(sk service ls --format json | jq -c '[.[] | {(.spec.name): [.version, .spec_version]}] | add')
for s in app_api app_db app_extra loner; do
    eq "$(jq -c ".$s" <<<"$after")" "$(jq -c ".$s" <<<"$before")" "$s untouched by web's update"
done
eq "$(jq ".app_web[1]" <<<"$after")" "$(( $(jq ".app_web[1]" <<<"$before") + 1 ))" "web's spec_version bumped once"
# `service update --force` bumps force_update, which the files do not set: not a change.
sk service update --force app_db >/dev/null
out=$(WEB_TAG=2 MODE=prod sk stack deploy --detach -c "$D/compose.yml" -c "$D/override.yml" app 2>&1)
[[ $out != *Updating* ]] || fail "a forced update made the stack update again: $out"
ok "redeploy: unchanged services not written; one image changed, one service updated (spec_version +1)"

# --- prune -------------------------------------------------------------------
out=$(WEB_TAG=2 MODE=prod sk stack deploy --detach -c "$D/compose.yml" app 2>&1)
sk service inspect app_extra >/dev/null || fail "app_extra removed without --prune"
contains "$out" "Updating service app_api" "api loses the override's parts"
out=$(WEB_TAG=2 MODE=prod sk stack deploy --detach --prune -c "$D/compose.yml" app 2>&1)
contains "$out" "Removing service app_extra" "prune output"
expect_fail "app_extra after --prune" sk service inspect app_extra
sk service inspect loner >/dev/null || fail "--prune removed a service of no stack"
ok "--prune removes the stack's services the files no longer name, and nothing else"

# --- bad input: file:line, nothing changes --------------------------------
state=$(cluster_state)
bad() { # EXPECTED-MESSAGE FILE-CONTENT
    printf '%s\n' "$2" >"$D/bad.yml"
    expect_fail "deploy of: $2" env MODE=prod "$SKIFF" --timeout 10s --host "$(managers_csv)" \
        stack deploy --detach -c "$D/bad.yml" app
    contains "$OUT" "$1" "message for a bad file"
    eq "$(cluster_state)" "$state" "the cluster after a refused deploy"
}
bad "$D/bad.yml:4: YAML: did not find expected key" $'services:\n  web:\n    image: x\n   bad: [indent'
bad "$D/bad.yml:4: services.web: unknown key \"imgae\" (did you mean \"image\"?)" \
    $'services:\n  web:\n    image: x\n    imgae: y'
bad "$D/bad.yml:2: services.web: no image" $'services:\n  web:\n    command: sleep 1'
bad "$D/bad.yml:5: services.web.networks: network \"nope\" is not defined" \
    $'services:\n  web:\n    image: x\n    networks:\n      - nope'
bad "$D/bad.yml:4: services.web.secrets[0]: secret \"pw\" is not defined" \
    $'services:\n  web:\n    image: x\n    secrets: [pw]'
bad "$D/bad.yml:7: services.db.ports[0]: published port 8080/tcp is also published by service \"web\" ($D/bad.yml:4)" \
    $'services:\n  web:\n    image: x\n    ports: ["8080:80"]\n  db:\n    image: y\n    ports: ["8080:81"]'
bad "$D/bad.yml:3: services.web.image: required variable NOT_SET_HERE is not set: say which image" \
    $'services:\n  web:\n    image: ${NOT_SET_HERE:?say which image}'
# What the cluster cannot do yet is refused, not dropped.
echo s3cret >"$D/pw.txt"
bad "$D/bad.yml:6: secrets.pw: secrets are not supported by this cluster yet" \
    $'services:\n  web:\n    image: x\n    secrets: [pw]\nsecrets:\n  pw:\n    file: ./pw.txt'
bad "$D/bad.yml:4: services.web.volumes: volume mount on /data: volumes are not supported by this cluster yet" \
    $'services:\n  web:\n    image: x\n    volumes: [data:/data]\nvolumes:\n  data: {}'
bad "$D/bad.yml:2: services.web: service \"app_web\": privileged containers are forbidden (cluster policy forbid_privileged)" \
    $'services:\n  web:\n    image: x\n    privileged: true'
# What exists decides too: a mode that cannot change; a service or a
# network of the stack's name that is not the stack's.
bad "services.db: service \"app_db\" is global and cannot become replicated" \
    $'services:\n  db:\n    image: busybox:1'
sk service create -q --name other_web busybox:1 >/dev/null
state=$(cluster_state)
printf 'services:\n  web:\n    image: x\n' >"$D/other.yml"
expect_fail "deploy over a service of no stack" sk stack deploy --detach -c "$D/other.yml" other
contains "$OUT" 'service "other_web" exists and is not part of stack "other"' "a service of another owner"
sk network create other_default >/dev/null
state=$(cluster_state)
printf 'services:\n  api:\n    image: x\n' >"$D/other.yml"
expect_fail "deploy over a network of no stack" sk stack deploy --detach -c "$D/other.yml" other
contains "$OUT" 'network "other_default" exists and is not part of stack "other"' "a network of another owner"
eq "$(cluster_state)" "$state" "the cluster after a refused deploy"
printf 'services:\n  api:\n    image: x\n    networks: [ext]\nnetworks:\n  ext:\n    external: true\n' >"$D/other.yml"
expect_fail "an external network that does not exist" sk stack deploy --detach -c "$D/other.yml" other2
contains "$OUT" "$D/other.yml:6: networks.ext: network \"ext\" is external but does not exist" "external network missing"
eq "$(cluster_state)" "$state" "the cluster after a refused deploy"
# A file that does not parse is refused before any manager is asked.
printf 'services: [\n' >"$D/bad.yml"
expect_fail "a bad file without credentials" "$SKIFF" --config /nonexistent stack deploy -c "$D/bad.yml" app
contains "$OUT" "$D/bad.yml:2: YAML" "the file's error, not the credentials'"
ok "bad files (YAML, unknown key, no image, undefined network/secret, port clash, \${VAR:?}), secrets and volumes, the cluster's policy, a mode change, names taken by others: refused with file:line; nothing changed"

# --- an external network, and stdin ------------------------------------------
sk network create shared >/dev/null
printf 'services:\n  api:\n    image: busybox:1\n    networks: [ext]\nnetworks:\n  ext:\n    external: true\n    name: shared\n' |
    sk stack deploy --detach -q -c - ext >/dev/null
eq "$(svc_field ext_api '.spec.task.networks | map(.target) | join(",")')" shared "a service on an external network"
eq "$(sk network ls --format json | jq -r '[.[] | select(.spec.labels["skiff.stack.namespace"] == "ext")] | length')" 0 \
    "the external network is not the stack's"

# --- rm: everything the stack made, nothing else ----------------------------
# Here no task ever runs, so a task placed on a node never stops either (the
# agent cannot reach a dockerd to stop it): a stack whose tasks wait for a
# node (a constraint none meets) shows the whole removal; then the stacks
# above, whose networks hold such tasks.
cat >"$D/rmme.yml" <<'EOF'
services:
  a:
    image: busybox:1
    networks: [one, two]
    deploy:
      replicas: 2
      placement: {constraints: [node.labels.zone == nowhere]}
  b:
    image: busybox:1
    deploy:
      mode: global
      placement: {constraints: [node.labels.zone == nowhere]}
networks: {one: {}, two: {}}
EOF
sk stack deploy -d -q -c "$D/rmme.yml" rmme >/dev/null
eq "$(sk stack ls --format json | jq -c '.[] | select(.name == "rmme")')" '{"name":"rmme","services":2,"networks":3}' "rmme deployed"
out=$(sk stack rm rmme)
eq "$(sort <<<"$out" | tr '\n' ',')" \
    "Removing network rmme_default,Removing network rmme_one,Removing network rmme_two,Removing service rmme_a,Removing service rmme_b," \
    "stack rm output"
eq "$(grep -n . <<<"$out" | grep -m1 network | cut -d: -f1)" 3 "services removed before networks"
in_rmme() { jq '[.[] | select(.spec.labels["skiff.stack.namespace"] == "rmme")] | length'; }
eq "$(sk service ls --format json | in_rmme)" 0 "no service of rmme left"
eq "$(sk network ls --format json | in_rmme)" 0 "no network of rmme left"
eq "$(sk stack rm rmme 2>&1)" "Nothing found in stack: rmme" "stack rm of no stack"
ok "stack rm: the stack's services, then its networks; nothing of it left"

SK_TIMEOUT=1s expect_fail "stack rm while tasks still stop" sk stack rm app ext
contains "$OUT" "Removing service app_web" "stack rm removes the services"
contains "$OUT" "Removing service ext_api" "stack rm of the second stack too"
contains "$OUT" 'removing network app_back: network "app_back" is in use by' "a network whose tasks have not stopped"
contains "$OUT" 'run `skiff stack rm app` again once they have' "what to do about it"
eq "$(sk service ls --format json | jq -r '[.[].spec.name | select(startswith("app_") or startswith("ext_"))] | length')" 0 \
    "no service of the stacks left"
sk network inspect shared >/dev/null || fail "stack rm removed an external network"
sk service inspect loner >/dev/null || fail "stack rm removed a service of no stack"
ok "stack rm waits --timeout for a network's tasks to stop, then says to run it again; external objects and other services stay"
