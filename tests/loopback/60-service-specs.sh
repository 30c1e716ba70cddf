#!/usr/bin/env bash
# What `skiff service create|update|scale` flags write into a service's
# spec, as the manager stores it; the messages for bad flags; and the
# cluster policy on the API (the default forbids privileged containers).
# No container runs: the agent has no dockerd.
. "$(dirname "$0")/lib.sh"

init_cluster m1
IMG=busybox:1
# spec_is SERVICE 'JQ-EXPR' VALUE: a value of the stored spec (jq -c).
spec_is() {
    local got
    got=$(sk service inspect "$1" | jq -c ".[0].spec | $2")
    [ "$got" = "$3" ] || fail "service $1: spec $2 is $got, want $3"
}

# --- create: every flag lands where the schema has it ----------------------
id=$(sk service create -q --name full --replicas 3 \
    --constraint node.labels.zone==eu --constraint node.role!=manager \
    --placement-pref spread=node.labels.rack --replicas-max-per-node 2 \
    -e A=1 --env B=2=3 --label team=web --container-label c=d \
    -p 8080:80 -p 53:53/udp --publish mode=host,published=9000,target=90,protocol=udp \
    --reserve-cpu 0.5 --reserve-memory 64M --limit-cpu 2 --limit-memory 1G \
    --restart-condition on-failure --restart-delay 1s --restart-max-attempts 2 \
    --restart-window 1m -u app:app -w /srv --entrypoint /bin/sh --init \
    --read-only --cap-add NET_ADMIN --cap-drop ALL --stop-grace-period 3s \
    --stop-signal SIGINT --hostname box --update-parallelism 2 --update-delay 2s \
    --update-order start-first --update-failure-action rollback \
    --update-monitor 10s --health-cmd true --health-interval 2s \
    --health-timeout 1s --health-retries 5 \
    "$IMG" sleep 100)
eq "$(sk service inspect full | jq -r '.[0].id')" "$id" "create -q prints the ID"
spec_is full '[.name, .mode, .replicas, .labels]' '["full","replicated",3,{"team":"web"}]'
spec_is full .task.placement '{"constraints":["node.labels.zone==eu","node.role!=manager"],"preferences":["spread=node.labels.rack"],"max_replicas":2}'
spec_is full .task.container.env '["A=1","B=2=3"]'
spec_is full '.task.container | [.image, .command, .entrypoint, .user, .workdir, .hostname, .labels]' \
    '["busybox:1",["sleep","100"],["/bin/sh"],"app:app","/srv","box",{"c":"d"}]'
spec_is full '.task.container | [.init, .read_only, .cap_add, .cap_drop, .stop_grace_ms, .stop_signal]' \
    '[true,true,["NET_ADMIN"],["ALL"],3000,"SIGINT"]'
spec_is full .task.container.healthcheck '{"test":["CMD-SHELL","true"],"interval_ms":2000,"timeout_ms":1000,"retries":5,"start_period_ms":0}'
spec_is full .endpoint.ports '[{"protocol":"tcp","target":80,"published":8080,"mode":"host"},{"protocol":"udp","target":53,"published":53,"mode":"host"},{"protocol":"udp","target":90,"published":9000,"mode":"host"}]'
spec_is full '.task | [.reservations, .limits]' '[{"nano_cpus":500000000,"memory_bytes":67108864},{"nano_cpus":2000000000,"memory_bytes":1073741824}]'
spec_is full .task.restart '{"condition":"on-failure","delay_ms":1000,"max_attempts":2,"window_ms":60000}'
spec_is full .update '{"parallelism":2,"delay_ms":2000,"failure_action":"rollback","monitor_ms":10000,"max_failure_ratio":0,"order":"start-first"}'
ok "service create: every flag lands in the spec"

# Without flags: a made-up name and the schema's defaults.
nameless=$(sk service create "$IMG")
spec_is "$nameless" '.name | test("^svc-[a-z2-7]{8}$")' true
spec_is "$nameless" '[.replicas, .mode, .task.restart.delay_ms, .update.parallelism, .task.container.stop_grace_ms]' \
    '[1,"replicated",5000,1,10000]'
ok "service create without flags: a made-up svc- name and the defaults"

# --- update: edits the stored spec, keeps the rest -------------------------
sk service update --image busybox:2 --args 'a  b' --env-add A=9 --env-add C=3 \
    --env-rm B --constraint-add node.labels.z==1 --constraint-rm node.role!=manager \
    --label-add tier=front --label-rm team --replicas 5 --publish 81:81 \
    --user 1000 --update-order stop-first --no-healthcheck --force full >/dev/null
spec_is full '.task.container | [.image, .command, .env, .user, .healthcheck]' \
    '["busybox:2",["a","b"],["A=9","C=3"],"1000",{"test":["NONE"],"interval_ms":30000,"timeout_ms":30000,"retries":3,"start_period_ms":0}]'
spec_is full '[.replicas, .labels, .task.placement.constraints, (.endpoint.ports | length), .update.order, .task.force_update]' \
    '[5,{"tier":"front"},["node.labels.zone==eu","node.labels.z==1"],4,"stop-first",1]'
spec_is full '[.task.restart.condition, .update.failure_action, .task.container.cap_drop]' '["on-failure","rollback",["ALL"]]'
sk service update --health-retries 7 full >/dev/null
spec_is full .task.container.healthcheck.test '["NONE"]'
spec_is full .task.container.healthcheck.retries 7
ok "service update: the flags given change the spec, the rest stays"

sk service scale full=4 >/dev/null
spec_is full .replicas 4
sk service create --name everywhere --mode global "$IMG" >/dev/null
expect_fail "scale a global service" sk service scale everywhere=3
contains "$OUT" 'service "everywhere" is global: it runs one task per node and cannot be scaled' "scale of a global service"
ok "service scale"

# --- bad flags: named, nothing changes ------------------------------------
before=$(sk service ls -q | wc -l)
bad() { # EXPECTED-MESSAGE ARGS...
    local want=$1; shift
    expect_fail "service $*" sk service "$@"
    contains "$OUT" "$want" "message for service $*"
}
bad 'constraint "node.labels.zone=eu": want KEY==VALUE or KEY!=VALUE' create --constraint node.labels.zone=eu "$IMG"
bad 'placement preference "x": want spread=node.labels.KEY' create --placement-pref x "$IMG"
bad '--publish "80:": want mode=host,published=P,target=T' create --publish 80: "$IMG"
bad '--publish "target=80,protocol=sctp": want' create -p target=80,protocol=sctp "$IMG"
bad 'port 80: a host-mode port needs a published port' create -p target=80 "$IMG"
bad 'published port 80 is given twice' create -p 80:80 -p 80:81 "$IMG"
bad 'env "NOEQ": want KEY=VALUE' create -e NOEQ "$IMG"
bad '--label "noeq": want KEY=VALUE' create --label noeq "$IMG"
bad '--container-label "=x": want KEY=VALUE' create --container-label =x "$IMG"
bad 'replicas cannot be set for a global service' create --mode global --replicas 3 "$IMG"
bad '--mode: want one of replicated, global, got "all"' create --mode all "$IMG"
bad '--update-order: want one of stop-first, start-first' create --update-order x "$IMG"
bad 'image "a b" contains a space' create 'a b'
bad '--env-add "NOEQ": want KEY=VALUE' update --env-add NOEQ full
bad '--constraint-rm "nope": the service has no such constraint' update --constraint-rm nope full
bad 'unknown key node.x' update --constraint-add node.x==1 full
eq "$(sk service ls -q | wc -l)" "$before" "services after bad input"
spec_is full .task.container.image '"busybox:2"'
ok "bad flags are refused with the flag or the field named; nothing changed"

# --- cluster policy, on the API: the default forbids privileged -----------
cred_files "$ADMIN" "$TEST_DIR/admin"
r=$(https POST "https://$(api m1)/v1/services" "$TEST_DIR/admin" \
    '{"spec":{"name":"priv","task":{"container":{"image":"bb","privileged":true}}}}')
contains "$r" '400 ' "status of a privileged service"
contains "$r" 'service \"priv\": privileged containers are forbidden (cluster policy forbid_privileged)' "privileged refused"
r=$(https POST "https://$(api m1)/v1/services" "$TEST_DIR/admin" \
    '{"spec":{"name":"unpriv","task":{"container":{"image":"bb"}}}}')
contains "$r" '200 ' "status of an unprivileged service"
ok "cluster policy: a privileged service is refused by default, naming the rule"
