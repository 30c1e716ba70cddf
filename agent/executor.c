#include "executor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "skiff/log.h"
#include "skiff/map.h"
#include "skiff/mem.h"
#include "skiff/objects.h"

#define LABEL_TASK "skiff.task.id"
#define EVENTS_RETRY_MS 1000
#define PULL_TIMEOUT_NOTE "no registry reachable?"
/* How long a task waits for its networks to be ready here (Swarm's
 * bound too), and how often it looks again meanwhile. */
#define NET_WAIT_MS 30000
#define NET_TICK_MS 1000

struct etask {
    struct executor *e;
    struct sk_assignment a; /* the latest from the leader */
    int state;              /* what we observed and reported */
    char *container_id;
    bool busy;               /* a dockerd call in flight */
    bool gone;               /* no longer assigned: remove, then forget */
    bool stopping;           /* we asked dockerd to stop it */
    bool removed;            /* its container is removed */
    bool create_retried;     /* a name conflict was cleared once */
    bool pulled;             /* the image was pulled once for it */
    uint64_t net_wait_since; /* uv_now when it began waiting; 0: not */
    size_t connect_next;     /* the next of its networks to connect */
    int64_t exit_code;
    char *message, *err;
};

struct executor {
    uv_loop_t *loop;
    struct sk_docker *docker;
    struct dataplane *dp; /* NULL: tasks with networks are rejected */
    uint64_t net_wait_ms;
    uv_timer_t net_tick; /* runs while a task waits for its networks */
    char *node_id, *node_name;
    struct sk_map tasks; /* task id -> struct etask */
    bool adopted;        /* the first full set was reconciled */
    bool adopting;
    bool want_adopt; /* a full set arrived: reconcile with dockerd */
    struct sk_docker_events *events;
    uv_timer_t retry;
    executor_report_cb report;
    void *ctx;
    unsigned inflight; /* dockerd calls whose callbacks are pending */
    unsigned failures; /* dockerd unreachable in a row (log the first) */
    bool closing;
    void (*close_cb)(void *);
    void *close_ctx;
};

static void step(struct etask *t);
static void maybe_closed(struct executor *e);
static void dp_note(struct etask *t);

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- reporting ---- */

static void send_report(const struct etask *t)
{
    /* Borrowed strings: the receiver copies what it keeps. */
    struct sk_task_report r = {
        .state = t->state,
        .health = SK_HEALTH_NONE,
        .timestamp = wall_ms(),
        .exit_code = t->exit_code,
        .message = t->message,
        .err = t->err,
        .container_id = t->container_id,
    };
    memcpy(r.id, t->a.task.meta.id, SK_ID_SIZE);
    t->e->report(t->e->ctx, &r);
}

/* The task lifecycle as the executor drives it: a row per state, the
 * states it may move to. Besides the straight line (accepted -> preparing
 * -> starting -> running -> complete/failed/shutdown):
 * - a task not yet running may be stopped (shutdown) at any point;
 * - a running container found at adoption makes its task running from any
 *   earlier state (an agent restarted before it reported);
 * - preparing or starting may end rejected (no image, a bad spec, a
 *   container in the way), and starting may end complete or failed (the
 *   container exited before its start was confirmed);
 * - preparing may be reported again (waiting for its networks), and
 *   starting (its container was created anew).
 * Nothing leaves a finished state. */
#define TO(s) (1u << (s))
static const unsigned transitions[SK_TASK_STATE_COUNT] = {
    [SK_TASK_NEW] =
        TO(SK_TASK_ACCEPTED) | TO(SK_TASK_RUNNING) | TO(SK_TASK_SHUTDOWN),
    [SK_TASK_PENDING] =
        TO(SK_TASK_ACCEPTED) | TO(SK_TASK_RUNNING) | TO(SK_TASK_SHUTDOWN),
    [SK_TASK_ASSIGNED] =
        TO(SK_TASK_ACCEPTED) | TO(SK_TASK_RUNNING) | TO(SK_TASK_SHUTDOWN),
    [SK_TASK_ACCEPTED] =
        TO(SK_TASK_PREPARING) | TO(SK_TASK_RUNNING) | TO(SK_TASK_SHUTDOWN),
    [SK_TASK_PREPARING] = TO(SK_TASK_PREPARING) | TO(SK_TASK_STARTING) |
                          TO(SK_TASK_RUNNING) | TO(SK_TASK_SHUTDOWN) |
                          TO(SK_TASK_REJECTED),
    [SK_TASK_STARTING] = TO(SK_TASK_STARTING) | TO(SK_TASK_RUNNING) |
                         TO(SK_TASK_COMPLETE) | TO(SK_TASK_FAILED) |
                         TO(SK_TASK_SHUTDOWN) | TO(SK_TASK_REJECTED),
    [SK_TASK_RUNNING] =
        TO(SK_TASK_COMPLETE) | TO(SK_TASK_FAILED) | TO(SK_TASK_SHUTDOWN),
};
#undef TO

bool executor_transition_ok(int from, int to)
{
    if (from < 0 || from >= SK_TASK_STATE_COUNT || to < 0 ||
        to >= SK_TASK_STATE_COUNT)
        return false;
    return (transitions[from] >> to) & 1u;
}

/* Every change of a task's state goes through here: checked against the
 * table, traced, reported. A refused one changes nothing. */
static void set_state(struct etask *t, int state, const char *msg,
                      const char *err)
{
    if (state == t->state && !msg)
        return;
    if (!executor_transition_ok(t->state, state)) {
        SK_WARN("executor", "task %s: refused to move from %s to %s (%s)",
                t->a.task.meta.id, sk_task_state_name(t->state),
                sk_task_state_name(state), msg ? msg : "no reason");
        return;
    }
    sk_trace("task", t->a.task.meta.id, sk_task_state_name(t->state),
             sk_task_state_name(state), msg);
    t->state = state;
    free(t->message);
    free(t->err);
    t->message = msg ? sk_strdup(msg) : NULL;
    t->err = err ? sk_strdup(err) : NULL;
    send_report(t);
    dp_note(t);
}

void executor_report_all(struct executor *e)
{
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, &e->tasks);
    while (sk_map_iter_next(&it, NULL, &v)) {
        struct etask *t = v;
        if (t->state >= SK_TASK_ACCEPTED)
            send_report(t);
    }
}

/* ---- tasks ---- */

static void etask_free(struct etask *t)
{
    sk_schema_free(&sk_assignment_schema, &t->a);
    free(t->container_id);
    free(t->message);
    free(t->err);
    free(t);
}

static void forget(struct etask *t)
{
    if (t->e->dp)
        dataplane_task_forget(t->e->dp, t->a.task.meta.id);
    sk_map_del(&t->e->tasks, t->a.task.meta.id);
    etask_free(t);
}

/* Tells the data plane the task's addresses and, while it runs, its
 * container (for its VIP rules and as a DNS asker); a finished task holds
 * no address any more. */
static void dp_note(struct etask *t)
{
    struct executor *e = t->e;
    if (!e->dp || t->a.task.n_networks == 0)
        return;
    if (sk_task_state_terminal(t->state) || t->gone) {
        dataplane_task_forget(e->dp, t->a.task.meta.id);
        return;
    }
    bool running = t->state == SK_TASK_RUNNING && t->container_id;
    dataplane_task(e->dp, t->a.task.meta.id, t->a.task.networks,
                   t->a.task.n_networks, running ? t->container_id : NULL);
}

/* Every dockerd call of a task goes through begin/end, so that at most one
 * is in flight per task and closing waits for them. */
static void begin(struct etask *t)
{
    t->busy = true;
    t->e->inflight++;
}

/* Returns false if the executor is closing (the task must not go on). */
static bool end(struct etask *t)
{
    struct executor *e = t->e;
    t->busy = false;
    e->inflight--;
    if (e->closing) {
        maybe_closed(e);
        return false;
    }
    return true;
}

/* The service's name; a task whose service is gone is on its way out and
 * named for what it is. */
static const char *service_name(const struct etask *t)
{
    return t->a.service_name ? t->a.service_name : "task";
}

static const char *task_name(const struct etask *t, char *buf, size_t size)
{
    if (t->a.task.slot > 0)
        snprintf(buf, size, "%s.%lld.%s", service_name(t),
                 (long long)t->a.task.slot, t->a.task.meta.id);
    else
        snprintf(buf, size, "%s.%.10s.%s", service_name(t), t->a.task.node_id,
                 t->a.task.meta.id);
    return buf;
}

static json_t *strs_json(char *const *s, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(s[i]));
    return a;
}

/* Docker's create body for a task. */
static json_t *container_config(const struct etask *t)
{
    const struct sk_task_spec *ts = &t->a.task.spec;
    const struct sk_container_spec *c = &ts->container;
    json_t *cfg = json_object();
    json_object_set_new(cfg, "Image", json_string(c->image));
    if (c->n_command)
        json_object_set_new(cfg, "Cmd", strs_json(c->command, c->n_command));
    if (c->n_entrypoint)
        json_object_set_new(cfg, "Entrypoint",
                            strs_json(c->entrypoint, c->n_entrypoint));
    if (c->n_env)
        json_object_set_new(cfg, "Env", strs_json(c->env, c->n_env));
    if (c->workdir)
        json_object_set_new(cfg, "WorkingDir", json_string(c->workdir));
    if (c->user)
        json_object_set_new(cfg, "User", json_string(c->user));
    if (c->hostname)
        json_object_set_new(cfg, "Hostname", json_string(c->hostname));
    if (c->stop_signal)
        json_object_set_new(cfg, "StopSignal", json_string(c->stop_signal));
    json_object_set_new(cfg, "StopTimeout",
                        json_integer((c->stop_grace_ms + 999) / 1000));
    json_t *labels = json_object();
    for (size_t i = 0; i < c->n_labels; i++)
        json_object_set_new(labels, c->labels[i].key,
                            json_string(c->labels[i].value));
    char slot[32];
    snprintf(slot, sizeof slot, "%lld", (long long)t->a.task.slot);
    json_object_set_new(labels, "skiff.service.id",
                        json_string(t->a.task.service_id));
    json_object_set_new(labels, "skiff.service.name",
                        json_string(service_name(t)));
    json_object_set_new(labels, LABEL_TASK, json_string(t->a.task.meta.id));
    json_object_set_new(labels, "skiff.task.slot", json_string(slot));
    json_object_set_new(labels, "skiff.node.id", json_string(t->e->node_id));
    json_object_set_new(cfg, "Labels", labels);
    if (c->healthcheck) {
        const struct sk_healthcheck *h = c->healthcheck;
        json_object_set_new(
            cfg, "Healthcheck",
            json_pack("{s:o, s:I, s:I, s:I, s:I}", "Test",
                      strs_json(h->test, h->n_test), "Interval",
                      (json_int_t)h->interval_ms * 1000000, "Timeout",
                      (json_int_t)h->timeout_ms * 1000000, "Retries",
                      (json_int_t)h->retries, "StartPeriod",
                      (json_int_t)h->start_period_ms * 1000000));
    }
    /* Safe defaults: no privilege escalation, Docker's seccomp profile
     * (dockerd's default, not disabled), restarts are ours alone. */
    json_t *hc = json_pack(
        "{s:b, s:b, s:b, s:[s], s:{s:s}}", "Init", c->init, "ReadonlyRootfs",
        c->read_only, "Privileged", c->privileged, "SecurityOpt",
        "no-new-privileges:true", "RestartPolicy", "Name", "no");
    if (c->n_cap_add)
        json_object_set_new(hc, "CapAdd", strs_json(c->cap_add, c->n_cap_add));
    if (c->n_cap_drop)
        json_object_set_new(hc, "CapDrop",
                            strs_json(c->cap_drop, c->n_cap_drop));
    if (ts->limits.memory_bytes)
        json_object_set_new(hc, "Memory",
                            json_integer(ts->limits.memory_bytes));
    if (ts->limits.nano_cpus)
        json_object_set_new(hc, "NanoCpus", json_integer(ts->limits.nano_cpus));
    json_object_set_new(cfg, "HostConfig", hc);
    return cfg;
}

/* Host-mode published ports live in the service spec, which the agent gets
 * with the task. */
static void add_ports(json_t *cfg, const struct sk_port *ports, size_t n)
{
    if (n == 0)
        return;
    json_t *exposed = json_object(), *bindings = json_object();
    for (size_t i = 0; i < n; i++) {
        const struct sk_port *p = &ports[i];
        char key[32], host[16];
        snprintf(key, sizeof key, "%lld/%s", (long long)p->target,
                 p->protocol == SK_PROTO_UDP ? "udp" : "tcp");
        json_object_set_new(exposed, key, json_object());
        if (p->published && p->mode == SK_PORT_HOST) {
            snprintf(host, sizeof host, "%lld", (long long)p->published);
            json_object_set_new(bindings, key,
                                json_pack("[{s:s}]", "HostPort", host));
        }
    }
    json_object_set_new(cfg, "ExposedPorts", exposed);
    json_object_set_new(json_object_get(cfg, "HostConfig"), "PortBindings",
                        bindings);
}

/* ---- networks ---- */

/* The task's i-th network, in the order of its spec (the first is the one
 * the container is created on): its ID, the name the user gave, and the
 * task's address there without its prefix length (in buf). NULL past the
 * last. */
static const char *task_network(const struct etask *t, size_t i,
                                const char **out_target, char *buf, size_t size)
{
    const struct sk_task *task = &t->a.task;
    const char *id;
    const char *target;
    if (task->spec.n_networks) {
        if (i >= task->spec.n_networks)
            return NULL;
        id = task->spec.networks[i].id;
        target = task->spec.networks[i].target;
    } else {
        if (i >= task->n_networks)
            return NULL;
        id = task->networks[i].network_id;
        target = NULL;
    }
    *out_target = target && *target ? target : id;
    buf[0] = '\0';
    for (size_t k = 0; k < task->n_networks; k++) {
        const struct sk_net_attachment *a = &task->networks[k];
        if (strcmp(a->network_id, id) != 0 || a->n_addresses == 0)
            continue;
        snprintf(buf, size, "%.*s", (int)strcspn(a->addresses[0], "/"),
                 a->addresses[0]);
        break;
    }
    return id;
}

static size_t task_network_count(const struct etask *t)
{
    return t->a.task.spec.n_networks ? t->a.task.spec.n_networks
                                     : t->a.task.n_networks;
}

static void net_tick_cb(uv_timer_t *timer);

/* Whether every network of the task is ready here. If not, the task waits
 * (the executor looks again when the data plane says something changed,
 * and every second); after the bound it is rejected, naming the network,
 * the node and why. */
static bool networks_ready(struct etask *t)
{
    struct executor *e = t->e;
    size_t n = task_network_count(t);
    char addr[64], why[SK_ERRMSG_SIZE + 256];
    for (size_t i = 0; i < n; i++) {
        const char *target;
        const char *id = task_network(t, i, &target, addr, sizeof addr);
        struct sk_err err = {0};
        struct dataplane_net dn;
        if (!addr[0]) {
            snprintf(why, sizeof why, "no address on network %s", target);
            set_state(t, SK_TASK_REJECTED, "rejected", why);
            return false;
        }
        if (!e->dp) {
            snprintf(why, sizeof why,
                     "network %s: node %s has no data plane (see its skiffd "
                     "log)",
                     target, e->node_name);
            set_state(t, SK_TASK_REJECTED, "rejected", why);
            return false;
        }
        if (dataplane_network(e->dp, id, &dn, &err) == SK_OK)
            continue;
        uint64_t now = uv_now(e->loop);
        if (!t->net_wait_since) {
            t->net_wait_since = now ? now : 1;
            snprintf(why, sizeof why, "waiting for network %s on this node",
                     target);
            set_state(t, SK_TASK_PREPARING, why, NULL);
        }
        if (now - t->net_wait_since >= e->net_wait_ms) {
            unsigned long long ms = (unsigned long long)e->net_wait_ms;
            snprintf(why, sizeof why,
                     "network %s not ready on node %s after %llu %s: %s",
                     target, e->node_name, ms % 1000 ? ms : ms / 1000,
                     ms % 1000 ? "ms" : "s", err.msg);
            set_state(t, SK_TASK_REJECTED, "rejected", why);
            return false;
        }
        if (!uv_is_active((uv_handle_t *)&e->net_tick))
            uv_timer_start(&e->net_tick, net_tick_cb, NET_TICK_MS, NET_TICK_MS);
        return false;
    }
    t->net_wait_since = 0;
    return true;
}

/* Puts the task on its first network in the create body: its address
 * given (Docker's IPAM never picks), the network's gateway as its DNS
 * server (the agent's responder). False if the network is not ready any
 * more. */
static bool add_first_network(struct etask *t, json_t *cfg)
{
    if (task_network_count(t) == 0)
        return true;
    char addr[64];
    const char *target;
    const char *id = task_network(t, 0, &target, addr, sizeof addr);
    struct dataplane_net dn;
    struct sk_err err = {0};
    if (!t->e->dp || dataplane_network(t->e->dp, id, &dn, &err) != SK_OK)
        return false;
    json_t *hc = json_object_get(cfg, "HostConfig");
    json_object_set_new(hc, "NetworkMode", json_string(dn.docker_name));
    json_object_set_new(hc, "Dns", json_pack("[s]", dn.gateway));
    json_object_set_new(cfg, "NetworkingConfig",
                        json_pack("{s:{s:{s:{s:s}}}}", "EndpointsConfig",
                                  dn.docker_name, "IPAMConfig", "IPv4Address",
                                  addr));
    return true;
}

static void connect_next(struct etask *t);

static void connect_done(void *ctx, enum sk_rc rc, const struct sk_err *err,
                         json_t *reply)
{
    struct etask *t = ctx;
    if (!end(t))
        return;
    if (rc != SK_OK) {
        set_state(t, SK_TASK_REJECTED, "rejected", err->msg);
        step(t);
        return;
    }
    t->connect_next++;
    connect_next(t);
}

/* Connects the created container to the task's other networks, one by
 * one (API 1.41 takes one network at create), then it is ready to start. */
static void connect_next(struct etask *t)
{
    char addr[64];
    const char *target;
    const char *id =
        task_network(t, t->connect_next, &target, addr, sizeof addr);
    if (!id || t->a.task.desired_state != SK_TASK_RUNNING) {
        set_state(t, SK_TASK_STARTING, "created", NULL);
        step(t);
        return;
    }
    struct dataplane_net dn;
    struct sk_err err = {0};
    if (!t->e->dp || dataplane_network(t->e->dp, id, &dn, &err) != SK_OK) {
        char why[SK_ERRMSG_SIZE + 128];
        snprintf(why, sizeof why, "network %s went away on node %s: %s", target,
                 t->e->node_name, err.msg);
        set_state(t, SK_TASK_REJECTED, "rejected", why);
        step(t);
        return;
    }
    json_t *ep = json_pack("{s:{s:s}}", "IPAMConfig", "IPv4Address", addr);
    begin(t);
    sk_docker_network_connect(t->e->docker, dn.docker_name, t->container_id, ep,
                              connect_done, t);
    json_decref(ep);
}

/* ---- the state machine ---- */

static void start_done(void *ctx, enum sk_rc rc, const struct sk_err *err,
                       json_t *reply)
{
    struct etask *t = ctx;
    if (!end(t))
        return;
    if (rc != SK_OK) {
        set_state(t, SK_TASK_FAILED, "failed", err->msg);
    } else if (t->state < SK_TASK_RUNNING) {
        set_state(t, SK_TASK_RUNNING, "started", NULL);
    }
    step(t);
}

static void create_done(void *ctx, enum sk_rc rc, const struct sk_err *err,
                        json_t *reply);

static void create_container(struct etask *t);
static void pull_done(void *ctx, enum sk_rc rc, const struct sk_err *err,
                      json_t *reply);

static void conflict_removed(void *ctx, enum sk_rc rc, const struct sk_err *err,
                             json_t *reply)
{
    struct etask *t = ctx;
    if (!end(t))
        return;
    if (rc != SK_OK && rc != SK_ENOTFOUND) {
        set_state(t, SK_TASK_REJECTED,
                  "a container with this task's name exists and could not "
                  "be removed",
                  err->msg);
        step(t);
        return;
    }
    create_container(t);
}

static void create_done(void *ctx, enum sk_rc rc, const struct sk_err *err,
                        json_t *reply)
{
    struct etask *t = ctx;
    if (!end(t))
        return;
    if (rc == SK_ECONFLICT && !t->create_retried) {
        /* Left over from an agent that died between create and report:
         * it is this task's, so remove it and create anew (once). */
        char name[256];
        t->create_retried = true;
        begin(t);
        sk_docker_remove(t->e->docker, task_name(t, name, sizeof name), true,
                         conflict_removed, t);
        return;
    }
    if (rc == SK_ENOTFOUND && !t->pulled) {
        /* No such image here: pull it, then create again. Trying the
         * create first spares the common case (the image is there) a
         * round trip to dockerd. */
        t->pulled = true;
        begin(t);
        sk_docker_image_pull(t->e->docker, t->a.task.spec.container.image,
                             pull_done, t);
        return;
    }
    if (rc != SK_OK) {
        set_state(t, SK_TASK_REJECTED, "rejected", err->msg);
        step(t);
        return;
    }
    const char *id = json_string_value(json_object_get(reply, "Id"));
    free(t->container_id);
    t->container_id = id ? sk_strdup(id) : NULL;
    t->connect_next = 1;
    connect_next(t);
}

static void create_container(struct etask *t)
{
    json_t *cfg = container_config(t);
    add_ports(cfg, t->a.ports, t->a.n_ports);
    if (!add_first_network(t, cfg)) {
        /* Its network went away meanwhile: wait for it again. */
        json_decref(cfg);
        networks_ready(t);
        return;
    }
    char name[256];
    begin(t);
    sk_docker_create(t->e->docker, task_name(t, name, sizeof name), cfg,
                     create_done, t);
    json_decref(cfg);
}

static void pull_done(void *ctx, enum sk_rc rc, const struct sk_err *err,
                      json_t *reply)
{
    struct etask *t = ctx;
    if (!end(t))
        return;
    if (t->a.task.desired_state != SK_TASK_RUNNING) {
        step(t);
        return;
    }
    if (rc != SK_OK) {
        /* The error names the image, the node and dockerd's reason: it is
         * what `service ps` shows. */
        char why[SK_ERRMSG_SIZE + 256];
        snprintf(why, sizeof why,
                 "image \"%s\" not found on node %s and could not be pulled: "
                 "%s",
                 t->a.task.spec.container.image, t->e->node_name, err->msg);
        set_state(t, SK_TASK_REJECTED, "rejected", why);
        step(t);
        return;
    }
    create_container(t);
}

static void stop_done(void *ctx, enum sk_rc rc, const struct sk_err *err,
                      json_t *reply)
{
    struct etask *t = ctx;
    if (!end(t))
        return;
    if (rc != SK_OK && rc != SK_ENOTFOUND)
        SK_WARN("executor", "stopping task %s: %s", t->a.task.meta.id,
                err->msg);
    /* The die event may come first or not at all (already exited). */
    if (!sk_task_state_terminal(t->state))
        set_state(t, SK_TASK_SHUTDOWN, "stopped", NULL);
    step(t);
}

static void remove_done(void *ctx, enum sk_rc rc, const struct sk_err *err,
                        json_t *reply)
{
    struct etask *t = ctx;
    if (!end(t))
        return;
    if (rc != SK_OK && rc != SK_ENOTFOUND)
        SK_WARN("executor", "removing the container of task %s: %s",
                t->a.task.meta.id, err->msg);
    t->removed = true;
    step(t);
}

static void step(struct etask *t)
{
    struct executor *e = t->e;
    if (t->busy || e->closing || !e->adopted)
        return;
    if (t->gone) {
        if (t->container_id && !t->removed) {
            begin(t);
            sk_docker_remove(e->docker, t->container_id, true, remove_done, t);
            return;
        }
        forget(t);
        return;
    }
    int desired = t->a.task.desired_state;
    if (desired == SK_TASK_RUNNING) {
        switch (t->state) {
        case SK_TASK_NEW:
        case SK_TASK_PENDING:
            /* On this node but not assigned yet: a global service's task
             * that waits for its network addresses. */
            if (t->a.task.status.state < SK_TASK_ASSIGNED)
                return;
            __attribute__((fallthrough));
        case SK_TASK_ASSIGNED:
            set_state(t, SK_TASK_ACCEPTED, "accepted", NULL);
            __attribute__((fallthrough));
        case SK_TASK_ACCEPTED:
            set_state(t, SK_TASK_PREPARING, "creating the container", NULL);
            __attribute__((fallthrough));
        case SK_TASK_PREPARING:
            /* Also after an interruption (an agent restart): carry on. */
            if (networks_ready(t))
                create_container(t);
            return;
        case SK_TASK_STARTING:
            if (!t->container_id) {
                create_container(t);
                return;
            }
            begin(t);
            sk_docker_start(e->docker, t->container_id, start_done, t);
            return;
        default:
            return; /* running, or finished for good */
        }
    }
    /* Told to stop (shutdown) or to go away (remove). */
    if (!sk_task_state_terminal(t->state)) {
        if (t->container_id && !t->stopping) {
            t->stopping = true;
            begin(t);
            int grace =
                (int)((t->a.task.spec.container.stop_grace_ms + 999) / 1000);
            sk_docker_stop(e->docker, t->container_id, grace, stop_done, t);
            return;
        }
        if (!t->container_id)
            set_state(t, SK_TASK_SHUTDOWN, "stopped before it ran", NULL);
        return;
    }
    if (desired == SK_TASK_REMOVE && t->container_id && !t->removed) {
        begin(t);
        sk_docker_remove(e->docker, t->container_id, true, remove_done, t);
    }
}

/* ---- assignments ---- */

/* Takes the assignment over (leaves *in zeroed). */
static struct etask *upsert(struct executor *e, struct sk_assignment *in)
{
    struct etask *t = sk_map_get(&e->tasks, in->task.meta.id);
    if (t) {
        sk_schema_free(&sk_assignment_schema, &t->a);
        t->a = *in;
        memset(in, 0, sizeof *in);
        t->gone = false;
        dp_note(t);
        return t;
    }
    t = sk_calloc(1, sizeof *t);
    t->e = e;
    t->a = *in;
    memset(in, 0, sizeof *in);
    const struct sk_task_status *st = &t->a.task.status;
    t->state = st->state;
    if (st->container_id)
        t->container_id = sk_strdup(st->container_id);
    t->exit_code = st->exit_code;
    sk_map_put(&e->tasks, t->a.task.meta.id, t);
    dp_note(t);
    return t;
}

static void retry_cb(uv_timer_t *timer);

static void adopt_list_done(void *ctx, enum sk_rc rc, const struct sk_err *err,
                            json_t *reply);

static void step_all(struct executor *e)
{
    size_t n = sk_map_count(&e->tasks), i = 0;
    struct etask **all = sk_calloc(n ? n : 1, sizeof *all);
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, &e->tasks);
    while (sk_map_iter_next(&it, NULL, &v))
        all[i++] = v;
    for (i = 0; i < n; i++)
        step(all[i]);
    free(all);
}

/* Tasks waiting for their networks look again; none waiting, the tick
 * stops. */
static void net_tick_cb(uv_timer_t *timer)
{
    struct executor *e = timer->data;
    bool waiting = false;
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, &e->tasks);
    while (sk_map_iter_next(&it, NULL, &v))
        if (((struct etask *)v)->net_wait_since)
            waiting = true;
    if (!waiting) {
        uv_timer_stop(timer);
        return;
    }
    step_all(e);
}

void executor_networks_changed(struct executor *e)
{
    if (!e->closing && e->adopted)
        step_all(e);
}

void executor_set_network_wait(struct executor *e, uint64_t ms)
{
    e->net_wait_ms = ms;
}

static void adopt(struct executor *e)
{
    if (e->adopting)
        return;
    e->adopting = true;
    e->inflight++;
    /* Only this node's containers: a dockerd shared by several nodes (a
     * test rig) must not see one node remove another's. */
    char label[64];
    snprintf(label, sizeof label, "skiff.node.id=%s", e->node_id);
    sk_docker_list(e->docker, label, adopt_list_done, e);
}

static void orphan_removed(void *ctx, enum sk_rc rc, const struct sk_err *err,
                           json_t *reply)
{
    struct executor *e = ctx;
    e->inflight--;
    if (rc != SK_OK && rc != SK_ENOTFOUND)
        SK_WARN("executor", "removing an unassigned container: %s", err->msg);
    maybe_closed(e);
}

static void adopt_list_done(void *ctx, enum sk_rc rc, const struct sk_err *err,
                            json_t *reply)
{
    struct executor *e = ctx;
    e->inflight--;
    e->adopting = false;
    if (e->closing) {
        maybe_closed(e);
        return;
    }
    if (rc != SK_OK) {
        if (e->failures++ == 0)
            SK_WARN("executor", "listing containers: %s (retrying)", err->msg);
        uv_timer_start(&e->retry, retry_cb, EVENTS_RETRY_MS, 0);
        return;
    }
    if (e->failures)
        SK_INFO("executor", "dockerd answers again");
    e->failures = 0;
    size_t i;
    const json_t *c;
    json_array_foreach(reply, i, c)
    {
        const char *id = json_string_value(json_object_get(c, "Id"));
        const char *task_id = json_string_value(
            json_object_get(json_object_get(c, "Labels"), LABEL_TASK));
        const char *state = json_string_value(json_object_get(c, "State"));
        if (!id || !task_id)
            continue;
        struct etask *t = sk_map_get(&e->tasks, task_id);
        if (!t) {
            SK_INFO("executor",
                    "removing container %.12s of unassigned "
                    "task %s",
                    id, task_id);
            e->inflight++;
            sk_docker_remove(e->docker, id, true, orphan_removed, e);
            continue;
        }
        free(t->container_id);
        t->container_id = sk_strdup(id);
        bool running = state && strcmp(state, "running") == 0;
        if (running && t->state < SK_TASK_RUNNING &&
            t->a.task.desired_state == SK_TASK_RUNNING) {
            set_state(t, SK_TASK_RUNNING, "adopted a running container", NULL);
        } else if (!running && !sk_task_state_terminal(t->state) &&
                   t->state >= SK_TASK_STARTING) {
            /* It exited while no agent watched. */
            const char *status =
                json_string_value(json_object_get(c, "Status"));
            int code = -1;
            if (status && sscanf(status, "Exited (%d)", &code) == 1)
                t->exit_code = code;
            if (t->a.task.desired_state != SK_TASK_RUNNING)
                set_state(t, SK_TASK_SHUTDOWN, "stopped", NULL);
            else if (code == 0)
                set_state(t, SK_TASK_COMPLETE, "exited 0", NULL);
            else if (state && strcmp(state, "created") == 0)
                ; /* created, never started: start it */
            else {
                char msg[64];
                snprintf(msg, sizeof msg, "exit code %d", code);
                set_state(t, SK_TASK_FAILED, msg, NULL);
            }
        }
    }
    /* Tasks the leader believes running whose container is gone. */
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, &e->tasks);
    while (sk_map_iter_next(&it, NULL, &v)) {
        struct etask *t = v;
        bool have = false;
        json_array_foreach(reply, i, c)
        {
            const char *tid = json_string_value(
                json_object_get(json_object_get(c, "Labels"), LABEL_TASK));
            if (tid && strcmp(tid, t->a.task.meta.id) == 0)
                have = true;
        }
        if (!have && t->container_id) {
            free(t->container_id);
            t->container_id = NULL;
            if (t->state == SK_TASK_RUNNING)
                set_state(t, SK_TASK_FAILED, "its container disappeared", NULL);
        }
    }
    e->adopted = true;
    SK_INFO("executor", "%zu tasks assigned, %zu containers found",
            sk_map_count(&e->tasks), json_array_size(reply));
    /* Adopted running containers get their VIP rules again. */
    sk_map_iter_init(&it, &e->tasks);
    while (sk_map_iter_next(&it, NULL, &v))
        dp_note(v);
    step_all(e);
}

void executor_assign(struct executor *e, struct sk_session_msg *msg)
{
    if (e->closing)
        return;
    struct sk_map seen;
    sk_map_init(&seen);
    for (size_t i = 0; i < msg->n_tasks; i++) {
        struct etask *t = upsert(e, &msg->tasks[i]);
        sk_map_put(&seen, t->a.task.meta.id, t);
    }
    if (msg->full) {
        struct sk_map_iter it;
        const char *id;
        void *v;
        sk_map_iter_init(&it, &e->tasks);
        while (sk_map_iter_next(&it, &id, &v))
            if (!sk_map_get(&seen, id))
                ((struct etask *)v)->gone = true;
    }
    for (size_t i = 0; i < msg->n_removed; i++) {
        struct etask *t = sk_map_get(&e->tasks, msg->removed[i]);
        if (t)
            t->gone = true;
    }
    sk_map_clear(&seen);
    if (!e->adopted) {
        if (msg->full) {
            e->want_adopt = true;
            adopt(e);
        }
        return;
    }
    step_all(e);
}

size_t executor_tasks(const struct executor *e)
{
    return sk_map_count(&e->tasks);
}

/* ---- dockerd's events ---- */

static struct etask *by_container(struct executor *e, const char *id)
{
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, &e->tasks);
    while (sk_map_iter_next(&it, NULL, &v)) {
        struct etask *t = v;
        if (t->container_id && strcmp(t->container_id, id) == 0)
            return t;
    }
    return NULL;
}

static void on_event(void *ctx, json_t *ev)
{
    struct executor *e = ctx;
    const char *action = json_string_value(json_object_get(ev, "Action"));
    const json_t *actor = json_object_get(ev, "Actor");
    const char *id = json_string_value(json_object_get(actor, "ID"));
    const json_t *attrs = json_object_get(actor, "Attributes");
    if (!action || !id)
        return;
    const char *task_id = json_string_value(json_object_get(attrs, LABEL_TASK));
    struct etask *t = task_id ? sk_map_get(&e->tasks, task_id) : NULL;
    if (!t)
        t = by_container(e, id);
    if (!t)
        return;
    if (strcmp(action, "oom") == 0) {
        free(t->err);
        t->err = sk_strdup("out of memory (the container hit its limit)");
        return;
    }
    if (strcmp(action, "die") != 0)
        return;
    const char *code = json_string_value(json_object_get(attrs, "exitCode"));
    t->exit_code = code ? atoll(code) : -1;
    if (sk_task_state_terminal(t->state))
        return;
    if (t->stopping || t->a.task.desired_state != SK_TASK_RUNNING) {
        set_state(t, SK_TASK_SHUTDOWN, "stopped", NULL);
    } else if (t->exit_code == 0) {
        set_state(t, SK_TASK_COMPLETE, "exited 0", NULL);
    } else {
        char msg[64];
        snprintf(msg, sizeof msg, "exit code %lld", (long long)t->exit_code);
        char *oom = t->err ? sk_strdup(t->err) : NULL;
        set_state(t, SK_TASK_FAILED, msg, oom ? oom : msg);
        free(oom);
    }
    step(t);
}

static void watch_events(struct executor *e);

static void retry_cb(uv_timer_t *timer)
{
    struct executor *e = timer->data;
    if (!e->events) {
        watch_events(e);
        /* Exits missed while the stream was down: look at every
         * container again. */
        e->adopted = false;
    }
    if (!e->adopted && e->want_adopt)
        adopt(e);
}

static void on_events_end(void *ctx, enum sk_rc rc, const struct sk_err *err)
{
    struct executor *e = ctx;
    e->events = NULL;
    e->inflight--;
    if (e->closing) {
        maybe_closed(e);
        return;
    }
    /* Said once per outage, not every second while dockerd is away. */
    if (e->failures++ == 0)
        SK_WARN("executor", "dockerd events stream ended: %s (reconnecting)",
                err && err->msg[0] ? err->msg : "end of stream");
    uv_timer_start(&e->retry, retry_cb, EVENTS_RETRY_MS, 0);
}

static void watch_events(struct executor *e)
{
    json_t *filters = json_pack("{s:[s], s:[s,s,s]}", "type", "container",
                                "event", "die", "oom", "start");
    e->events =
        sk_docker_events_start(e->docker, filters, on_event, on_events_end, e);
    json_decref(filters);
    if (e->events)
        e->inflight++;
}

/* ---- lifecycle ---- */

struct executor *executor_new(uv_loop_t *loop, struct sk_docker *docker,
                              struct dataplane *dp, const char *node_id,
                              const char *node_name, executor_report_cb report,
                              void *ctx)
{
    struct executor *e = sk_calloc(1, sizeof *e);
    e->loop = loop;
    e->docker = docker;
    e->dp = dp;
    e->net_wait_ms = NET_WAIT_MS;
    uv_timer_init(loop, &e->net_tick);
    e->net_tick.data = e;
    e->node_id = sk_strdup(node_id);
    e->node_name = sk_strdup(node_name ? node_name : node_id);
    e->report = report;
    e->ctx = ctx;
    sk_map_init(&e->tasks);
    uv_timer_init(loop, &e->retry);
    e->retry.data = e;
    watch_events(e);
    return e;
}

static void net_tick_closed(uv_handle_t *h)
{
    struct executor *e = h->data;
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, &e->tasks);
    while (sk_map_iter_next(&it, NULL, &v))
        etask_free(v);
    sk_map_clear(&e->tasks);
    void (*cb)(void *) = e->close_cb;
    void *ctx = e->close_ctx;
    free(e->node_id);
    free(e->node_name);
    free(e);
    if (cb)
        cb(ctx);
}

static void retry_closed(uv_handle_t *h)
{
    struct executor *e = h->data;
    uv_close((uv_handle_t *)&e->net_tick, net_tick_closed);
}

static void maybe_closed(struct executor *e)
{
    if (!e->closing || e->inflight > 0 ||
        uv_is_closing((uv_handle_t *)&e->retry))
        return;
    uv_close((uv_handle_t *)&e->retry, retry_closed);
}

void executor_close(struct executor *e, void (*cb)(void *ctx), void *ctx)
{
    e->closing = true;
    e->close_cb = cb;
    e->close_ctx = ctx;
    uv_timer_stop(&e->retry);
    uv_timer_stop(&e->net_tick);
    if (e->events)
        sk_docker_events_stop(e->events);
    maybe_closed(e);
}

/* ---- logs ---- */

struct log_req {
    struct sk_http_req *req;
    struct sk_docker_logs *logs;
    bool ended;
};

static void log_line(void *ctx, int stream, const char *line, size_t len)
{
    struct log_req *l = ctx;
    json_t *j = json_pack("{s:i, s:s%}", "s", stream, "l", line, len);
    if (!j)
        j = json_pack("{s:i, s:s}", "s", stream, "l", "(not UTF-8)");
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    size_t n = strlen(text);
    text = sk_realloc(text, n + 2);
    text[n++] = '\n';
    sk_http_stream_write(l->req, text, n);
    free(text);
}

static void log_end(void *ctx, enum sk_rc rc, const struct sk_err *err)
{
    struct log_req *l = ctx;
    if (rc != SK_OK && rc != SK_ECANCELED) {
        json_t *j = json_pack("{s:s}", "error", err->msg);
        char *text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        sk_http_stream_write(l->req, text, strlen(text));
        sk_http_stream_write(l->req, "\n", 1);
        free(text);
    }
    sk_http_stream_end(l->req);
    free(l);
}

static void log_abort(struct sk_http_req *req)
{
    struct log_req *l = req->data;
    if (l->logs)
        sk_docker_logs_stop(l->logs);
}

void executor_serve_logs(struct executor *e, struct sk_http_req *req)
{
    char container[80] = "", follow[8] = "", tail[16] = "";
    if (!sk_http_query(req, "container", container, sizeof container) ||
        !by_container(e, container)) {
        struct sk_err err = {.code = SK_ENOTFOUND};
        snprintf(err.msg, sizeof err.msg,
                 "no container %.64s of a task on this node", container);
        sk_http_respond_error(req, &err);
        return;
    }
    sk_http_query(req, "follow", follow, sizeof follow);
    struct sk_docker_logs_opts o = {
        .follow = *follow && strcmp(follow, "0") != 0,
        .tail = sk_http_query(req, "tail", tail, sizeof tail) && *tail
                    ? atoi(tail)
                    : -1,
    };
    struct log_req *l = sk_calloc(1, sizeof *l);
    l->req = req;
    req->data = l;
    req->abort_cb = log_abort;
    sk_http_stream_begin(req, 200, "application/x-ndjson");
    l->logs =
        sk_docker_logs_start(e->docker, container, &o, log_line, log_end, l);
}
