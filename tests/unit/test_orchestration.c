/* The scheduler and the orchestrators together, on a simulated cluster: a
 * store, a fake clock, and "agents" that move tasks along as told. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "skiff/allocator.h"
#include "skiff/constraint.h"
#include "skiff/ipv4.h"
#include "skiff/mem.h"
#include "skiff/orchestrator.h"
#include "skiff/reports.h"
#include "skiff/scheduler.h"
#include "skiff/store.h"

static struct sk_store *store;
static struct sk_allocator *alloc;
static uint64_t idx;
static int64_t now;

static int setup(void **state)
{
    store = sk_store_new();
    alloc = sk_allocator_new();
    idx = 0;
    now = 1000000;
    struct sk_cluster *c = sk_object_new(SK_KIND_CLUSTER);
    sk_id_new(c->meta.id);
    sk_schema_defaults(&sk_cluster_spec_schema, &c->spec);
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_CLUSTER, c);
    size_t len;
    char *cmd = sk_txn_encode(t, now, &len);
    assert_int_equal(sk_store_apply(store, ++idx, cmd, len, NULL), SK_OK);
    free(cmd);
    sk_txn_free(t);
    sk_object_free(SK_KIND_CLUSTER, c);
    return 0;
}

static int teardown(void **state)
{
    sk_store_free(store);
    sk_allocator_free(alloc);
    return 0;
}

static void commit(struct sk_txn *t)
{
    size_t len;
    char *cmd = sk_txn_encode(t, now, &len);
    struct sk_err err;
    if (sk_store_apply(store, ++idx, cmd, len, &err) != SK_OK)
        fail_msg("commit: %s", err.msg);
    free(cmd);
    sk_txn_free(t);
}

static const struct sk_node *add_node(const char *name, const char *zone,
                                      int64_t mem)
{
    struct sk_node *n = sk_object_new(SK_KIND_NODE);
    sk_id_new(n->meta.id);
    n->spec.name = sk_strdup(name);
    n->description.hostname = sk_strdup(name);
    n->status.state = SK_NODE_READY;
    n->description.nano_cpus = 2000000000;
    n->description.memory_bytes = mem;
    if (zone)
        sk_kv_set(&n->spec.labels, &n->spec.n_labels, "zone", zone);
    char id[SK_ID_SIZE];
    memcpy(id, n->meta.id, SK_ID_SIZE);
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NODE, n);
    commit(t);
    sk_object_free(SK_KIND_NODE, n);
    return sk_store_get(store, SK_KIND_NODE, id);
}

static void set_node(const char *name, int state, int availability)
{
    const struct sk_node *n = sk_store_get_by_name(store, SK_KIND_NODE, name);
    struct sk_node *u = sk_object_dup(SK_KIND_NODE, n);
    u->status.state = state;
    u->spec.availability = availability;
    struct sk_txn *t = sk_txn_new();
    sk_txn_update(t, SK_KIND_NODE, u, 0);
    commit(t);
    sk_object_free(SK_KIND_NODE, u);
}

static const struct sk_service *add_service(const char *name, int mode,
                                            int64_t replicas,
                                            void (*tweak)(struct sk_service *))
{
    struct sk_service *s = sk_object_new(SK_KIND_SERVICE);
    sk_id_new(s->meta.id);
    sk_schema_defaults(&sk_service_spec_schema, &s->spec);
    s->spec.name = sk_strdup(name);
    s->spec.mode = mode;
    s->spec.replicas = replicas;
    s->spec.task.container.image = sk_strdup("img");
    s->spec_version = 1;
    if (tweak)
        tweak(s);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_SERVICE, s);
    commit(t);
    sk_object_free(SK_KIND_SERVICE, s);
    return sk_store_get(store, SK_KIND_SERVICE, id);
}

/* One leader round: orchestrate, allocate, then schedule; returns changes
 * made. */
static size_t round_once(void)
{
    size_t changes = 0;
    struct sk_orchestration o;
    sk_orchestrate(store, alloc, now, 5000, &o);
    if (o.txn) {
        changes += o.changes;
        commit(o.txn);
    }
    struct sk_txn *a = sk_allocation_txn(store, alloc, now, 5000);
    if (a) {
        changes += sk_txn_count(a);
        commit(a);
    }
    struct sk_placements p;
    sk_schedule_txn(store, alloc, now, SK_TXN_MAX_OPS, &p);
    if (p.txn) {
        changes += sk_txn_count(p.txn);
        commit(p.txn);
    }
    return changes;
}

/* An image the agents cannot find: its tasks are rejected. */
static const char *missing_image;

/* The agents: assigned tasks start running; tasks told to stop stop. */
static bool agent_visit(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    struct sk_txn *txn = ctx;
    int to = -1;
    if (t->desired_state == SK_TASK_RUNNING &&
        t->status.state >= SK_TASK_ASSIGNED &&
        t->status.state < SK_TASK_RUNNING) {
        const struct sk_node *n = sk_store_get(store, SK_KIND_NODE, t->node_id);
        if (n && n->status.state == SK_NODE_READY)
            to = missing_image &&
                         strcmp(t->spec.container.image, missing_image) == 0
                     ? SK_TASK_REJECTED
                     : SK_TASK_RUNNING;
    } else if (t->desired_state > SK_TASK_RUNNING &&
               !sk_task_state_terminal(t->status.state) &&
               t->status.state >= SK_TASK_ASSIGNED) {
        const struct sk_node *n = sk_store_get(store, SK_KIND_NODE, t->node_id);
        if (n && n->status.state == SK_NODE_READY)
            to = SK_TASK_SHUTDOWN;
    }
    if (to < 0)
        return true;
    struct sk_task *u = sk_object_dup(SK_KIND_TASK, t);
    u->status.state = to;
    u->status.timestamp = now;
    if (to == SK_TASK_RUNNING)
        u->status.started_at = now;
    if (to == SK_TASK_REJECTED) {
        free(u->status.err);
        u->status.err = sk_printf("image \"%s\" not found", missing_image);
    }
    sk_txn_update(txn, SK_KIND_TASK, u, t->meta.version);
    sk_object_free(SK_KIND_TASK, u);
    return true;
}

static void agents(void)
{
    struct sk_txn *t = sk_txn_new();
    sk_store_each(store, SK_KIND_TASK, agent_visit, t);
    if (sk_txn_count(t))
        commit(t);
    else
        sk_txn_free(t);
}

/* Rounds until nothing changes (bounded). */
static void settle(void)
{
    for (int i = 0; i < 50; i++) {
        now += 10;
        size_t before = sk_store_index(store);
        round_once();
        agents();
        if (sk_store_index(store) == before)
            return;
    }
    fail_msg("the cluster did not settle in 50 rounds");
}

struct count {
    const char *service_id;
    const char *node_id;
    int state;   /* -1: any */
    int desired; /* -1: any */
    int n;
};

static bool count_visit(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    struct count *c = ctx;
    if (c->service_id && strcmp(t->service_id, c->service_id) != 0)
        return true;
    if (c->node_id && strcmp(t->node_id, c->node_id) != 0)
        return true;
    if (c->state >= 0 && t->status.state != c->state)
        return true;
    if (c->desired >= 0 && t->desired_state != c->desired)
        return true;
    c->n++;
    return true;
}

static int count(const char *svc, const char *node, int state, int desired)
{
    struct count c = {svc, node, state, desired, 0};
    sk_store_each(store, SK_KIND_TASK, count_visit, &c);
    return c.n;
}

static int running_on(const char *svc, const char *node_name)
{
    const struct sk_node *n =
        sk_store_get_by_name(store, SK_KIND_NODE, node_name);
    return count(svc, n->meta.id, SK_TASK_RUNNING, SK_TASK_RUNNING);
}

static const char *NODES[] = {"h1", "h2", "h3", "h4", "h5"};

static void five_nodes(void)
{
    for (int i = 0; i < 5; i++)
        add_node(NODES[i], NULL, 1LL << 30);
}

static void spread_twenty_over_five(void **state)
{
    five_nodes();
    const struct sk_service *s =
        add_service("web", SK_MODE_REPLICATED, 20, NULL);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    settle();
    for (int i = 0; i < 5; i++)
        assert_int_equal(running_on(id, NODES[i]), 4);

    /* Scale to 50, then back to 5. */
    s = sk_store_get(store, SK_KIND_SERVICE, id);
    struct sk_service *u = sk_object_dup(SK_KIND_SERVICE, s);
    u->spec.replicas = 50;
    struct sk_txn *t = sk_txn_new();
    sk_txn_update(t, SK_KIND_SERVICE, u, 0);
    commit(t);
    settle();
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, SK_TASK_RUNNING), 50);
    for (int i = 0; i < 5; i++)
        assert_int_equal(running_on(id, NODES[i]), 10);
    u->spec.replicas = 5;
    t = sk_txn_new();
    sk_txn_update(t, SK_KIND_SERVICE, u, 0);
    commit(t);
    settle();
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, SK_TASK_RUNNING), 5);
    assert_int_equal(count(id, NULL, -1, SK_TASK_RUNNING), 5);
    sk_object_free(SK_KIND_SERVICE, u);

    /* Removing the service stops and deletes every task. */
    t = sk_txn_new();
    sk_txn_delete(t, SK_KIND_SERVICE, id, 0);
    commit(t);
    settle();
    assert_int_equal(count(id, NULL, -1, -1), 0);
}

static void constrain_zone(struct sk_service *s)
{
    sk_strs_push(&s->spec.task.placement.constraints,
                 &s->spec.task.placement.n_constraints, "node.labels.zone==eu");
}

static void impossible_constraint_stays_pending(void **state)
{
    five_nodes();
    const struct sk_service *s =
        add_service("eu", SK_MODE_REPLICATED, 3, constrain_zone);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    settle();
    assert_int_equal(count(id, NULL, SK_TASK_PENDING, SK_TASK_RUNNING), 3);
    struct sk_sched_decision *d;
    size_t n = sk_schedule(store, alloc, 100, &d);
    assert_int_equal(n, 3);
    assert_string_equal(d[0].reason,
                        "5 nodes excluded by node.labels.zone==eu");
    assert_string_equal(d[0].node_id, "");
    free(d);
    /* The reason is in the task, for `service ps`. */
    struct count c = {id, NULL, SK_TASK_PENDING, -1, 0};
    (void)c;

    /* Label two nodes: the tasks go there and nowhere else. */
    for (int i = 0; i < 2; i++) {
        const struct sk_node *node =
            sk_store_get_by_name(store, SK_KIND_NODE, NODES[i]);
        struct sk_node *u = sk_object_dup(SK_KIND_NODE, node);
        sk_kv_set(&u->spec.labels, &u->spec.n_labels, "zone", "eu");
        struct sk_txn *t = sk_txn_new();
        sk_txn_update(t, SK_KIND_NODE, u, 0);
        commit(t);
        sk_object_free(SK_KIND_NODE, u);
    }
    settle();
    assert_int_equal(running_on(id, "h1") + running_on(id, "h2"), 3);
    assert_true(running_on(id, "h1") >= 1 && running_on(id, "h2") >= 1);
}

/* The store parses a service's placement once, when the service is
 * written, and the scheduler and orchestrator use that parsed form: it
 * follows every change of the spec. */
static void placement_parsed_when_written(void **state)
{
    const struct sk_service *s =
        add_service("eu", SK_MODE_REPLICATED, 1, constrain_zone);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    const struct sk_placement_rules *r = sk_store_placement(store, id);
    assert_non_null(r);
    assert_int_equal(r->n_constraints, 1);
    assert_int_equal(r->constraints[0].key, SK_CKEY_LABEL);
    assert_string_equal(r->constraints[0].label, "zone");
    assert_string_equal(r->constraints[0].value, "eu");
    assert_false(r->bad_constraint);

    /* A changed spec is parsed again; one that does not parse makes no
     * node eligible. */
    struct sk_service *u = sk_object_dup(SK_KIND_SERVICE, s);
    free(u->spec.task.placement.constraints[0]);
    u->spec.task.placement.constraints[0] = sk_strdup("node.cpu==2");
    sk_strs_push(&u->spec.task.placement.preferences,
                 &u->spec.task.placement.n_preferences,
                 "spread=node.labels.rack");
    struct sk_txn *t = sk_txn_new();
    sk_txn_update(t, SK_KIND_SERVICE, u, 0);
    commit(t);
    sk_object_free(SK_KIND_SERVICE, u);
    r = sk_store_placement(store, id);
    assert_true(r->bad_constraint);
    assert_int_equal(r->n_spread, 1);
    assert_string_equal(r->spread[0], "rack");
    bool for_new;
    const struct sk_node *n = add_node("h1", "eu", 1LL << 30);
    assert_false(sk_node_eligible(n, r, &for_new));
    assert_true(sk_node_eligible(n, NULL, &for_new));
    assert_true(for_new);

    t = sk_txn_new();
    sk_txn_delete(t, SK_KIND_SERVICE, id, 0);
    commit(t);
    assert_null(sk_store_placement(store, id));
}

static void spread_pref(struct sk_service *s)
{
    sk_strs_push(&s->spec.task.placement.preferences,
                 &s->spec.task.placement.n_preferences,
                 "spread=node.labels.zone");
}

static void spread_preference_over_zones(void **state)
{
    add_node("a1", "a", 1LL << 30);
    add_node("b1", "b", 1LL << 30);
    add_node("b2", "b", 1LL << 30);
    add_node("b3", "b", 1LL << 30);
    const struct sk_service *s =
        add_service("z", SK_MODE_REPLICATED, 8, spread_pref);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    settle();
    /* Half in zone a (its one node), half spread over zone b. */
    assert_int_equal(running_on(id, "a1"), 4);
    assert_int_equal(
        running_on(id, "b1") + running_on(id, "b2") + running_on(id, "b3"), 4);
    assert_true(running_on(id, "b1") >= 1 && running_on(id, "b2") >= 1 &&
                running_on(id, "b3") >= 1);
}

static void reserve_400m(struct sk_service *s)
{
    s->spec.task.reservations.memory_bytes = 400LL << 20;
}

static void reservations_and_ports(void **state)
{
    five_nodes();
    const struct sk_service *s =
        add_service("mem", SK_MODE_REPLICATED, 12, reserve_400m);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    settle();
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, -1), 10);
    struct sk_sched_decision *d;
    size_t n = sk_schedule(store, alloc, 100, &d);
    assert_int_equal(n, 2);
    assert_string_equal(d[0].reason,
                        "insufficient memory on 5 nodes (needs 400 MiB)");
    free(d);
}

static void publish_8080(struct sk_service *s)
{
    struct sk_endpoint_spec *ep = &s->spec.endpoint;
    ep->ports = sk_calloc(1, sizeof *ep->ports);
    ep->n_ports = 1;
    ep->ports[0].target = 80;
    ep->ports[0].published = 8080;
    ep->ports[0].mode = SK_PORT_HOST;
}

static void host_ports_conflict(void **state)
{
    five_nodes();
    const struct sk_service *s =
        add_service("web", SK_MODE_REPLICATED, 6, publish_8080);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    settle();
    for (int i = 0; i < 5; i++)
        assert_int_equal(running_on(id, NODES[i]), 1);
    struct sk_sched_decision *d;
    size_t n = sk_schedule(store, alloc, 100, &d);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].reason, "host port 8080/tcp is in use on 5 nodes");
    free(d);
}

static void policy_on_failure_3(struct sk_service *s)
{
    s->spec.task.restart.condition = SK_RESTART_ON_FAILURE;
    s->spec.task.restart.delay_ms = 2000;
    s->spec.task.restart.max_attempts = 2;
}

/* Makes every running task of the service finish with state. */
static void finish_all(const char *svc, int state)
{
    size_t n;
    const void **tasks = sk_store_list(store, SK_KIND_TASK, &n);
    struct sk_txn *t = sk_txn_new();
    for (size_t i = 0; i < n; i++) {
        const struct sk_task *task = tasks[i];
        if (strcmp(task->service_id, svc) != 0 ||
            task->status.state != SK_TASK_RUNNING)
            continue;
        struct sk_task *u = sk_object_dup(SK_KIND_TASK, task);
        u->status.state = state;
        u->status.exit_code = state == SK_TASK_FAILED ? 1 : 0;
        u->status.timestamp = now;
        sk_txn_update(t, SK_KIND_TASK, u, 0);
        sk_object_free(SK_KIND_TASK, u);
    }
    free(tasks);
    commit(t);
}

static void restart_policy(void **state)
{
    five_nodes();
    const struct sk_service *s =
        add_service("job", SK_MODE_REPLICATED, 1, policy_on_failure_3);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    settle();
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, -1), 1);

    /* Fails: nothing before the delay, a new task after it. */
    finish_all(id, SK_TASK_FAILED);
    struct sk_orchestration o;
    sk_orchestrate(store, alloc, now, 100, &o);
    assert_null(o.txn);
    assert_int_equal(o.wake_at_ms, now + 2000);
    now += 2000;
    settle();
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, SK_TASK_RUNNING), 1);
    assert_int_equal(count(id, NULL, -1, -1), 2);

    /* Second failure: restarted again (attempt 2 of 2). Third: given up. */
    finish_all(id, SK_TASK_FAILED);
    now += 2000;
    settle();
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, -1), 1);
    finish_all(id, SK_TASK_FAILED);
    now += 10000;
    settle();
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, -1), 0);
    assert_int_equal(count(id, NULL, -1, SK_TASK_RUNNING), 0);
    assert_int_equal(count(id, NULL, SK_TASK_FAILED, -1), 3);

    /* on-failure does not restart a clean exit. */
    const struct sk_service *s2 =
        add_service("clean", SK_MODE_REPLICATED, 1, policy_on_failure_3);
    char id2[SK_ID_SIZE];
    memcpy(id2, s2->meta.id, SK_ID_SIZE);
    settle();
    finish_all(id2, SK_TASK_COMPLETE);
    now += 10000;
    settle();
    assert_int_equal(count(id2, NULL, -1, -1), 1);
    assert_int_equal(count(id2, NULL, SK_TASK_COMPLETE, -1), 1);
}

static void node_loss_moves_tasks(void **state)
{
    five_nodes();
    const struct sk_service *s =
        add_service("web", SK_MODE_REPLICATED, 10, NULL);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    settle();
    assert_int_equal(running_on(id, "h3"), 2);

    /* h3 goes down: its two tasks are replaced at once elsewhere. */
    set_node("h3", SK_NODE_DOWN, SK_AVAIL_ACTIVE);
    settle();
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, SK_TASK_RUNNING), 10);
    char h3[SK_ID_SIZE];
    memcpy(h3,
           ((const struct sk_node *)sk_store_get_by_name(store, SK_KIND_NODE,
                                                         "h3"))
               ->meta.id,
           SK_ID_SIZE);
    /* The old ones are told to stop (still "running" as far as we know). */
    assert_int_equal(count(id, h3, -1, SK_TASK_SHUTDOWN), 2);

    /* h3 comes back: its stale tasks stop; nothing is duplicated. */
    set_node("h3", SK_NODE_READY, SK_AVAIL_ACTIVE);
    settle();
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, -1), 10);
    assert_int_equal(count(id, h3, SK_TASK_SHUTDOWN, -1), 2);

    /* Drain h1: its tasks move. */
    set_node("h1", SK_NODE_READY, SK_AVAIL_DRAIN);
    settle();
    assert_int_equal(running_on(id, "h1"), 0);
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, SK_TASK_RUNNING), 10);
}

static void global_follows_nodes(void **state)
{
    five_nodes();
    const struct sk_service *s = add_service("agent", SK_MODE_GLOBAL, 0, NULL);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    settle();
    for (int i = 0; i < 5; i++)
        assert_int_equal(running_on(id, NODES[i]), 1);
    add_node("h6", NULL, 1LL << 30);
    settle();
    assert_int_equal(running_on(id, "h6"), 1);
    set_node("h2", SK_NODE_READY, SK_AVAIL_DRAIN);
    settle();
    assert_int_equal(running_on(id, "h2"), 0);
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, SK_TASK_RUNNING), 5);
    /* A down node keeps its task; nothing is created elsewhere. */
    set_node("h4", SK_NODE_DOWN, SK_AVAIL_ACTIVE);
    settle();
    const struct sk_node *h4 = sk_store_get_by_name(store, SK_KIND_NODE, "h4");
    assert_int_equal(count(id, h4->meta.id, -1, SK_TASK_RUNNING), 1);
    assert_int_equal(count(id, NULL, -1, SK_TASK_RUNNING), 5);
}

static void history_is_reaped(void **state)
{
    five_nodes();
    const struct sk_service *s =
        add_service("flaky", SK_MODE_REPLICATED, 1, NULL);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    settle();
    for (int i = 0; i < 10; i++) {
        finish_all(id, SK_TASK_FAILED);
        now += 5000;
        settle();
    }
    /* One live task plus the default 5 finished ones. */
    assert_int_equal(count(id, NULL, -1, -1), 6);
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, -1), 1);
}

/* Updates web (4 replicas of "img", running) to image, with the failure
 * action; returns the service's ID in id. */
static void update_to(const char *image, int failure_action, char *id)
{
    five_nodes();
    const struct sk_service *s =
        add_service("web", SK_MODE_REPLICATED, 4, NULL);
    memcpy(id, s->meta.id, SK_ID_SIZE);
    settle(); /* may have replaced s in the store: look it up again */
    struct sk_service *u = sk_object_dup(
        SK_KIND_SERVICE, sk_store_get(store, SK_KIND_SERVICE, id));
    u->previous_spec = sk_malloc(sizeof *u->previous_spec);
    sk_schema_copy(&sk_service_spec_schema, u->previous_spec, &u->spec);
    free(u->spec.task.container.image);
    u->spec.task.container.image = sk_strdup(image);
    u->spec.update.failure_action = failure_action;
    u->spec_version = 2;
    u->update_status.state = SK_UPDATE_UPDATING;
    u->update_status.started_at = now;
    struct sk_txn *t = sk_txn_new();
    sk_txn_update(t, SK_KIND_SERVICE, u, 0);
    commit(t);
    sk_object_free(SK_KIND_SERVICE, u);
}

static int running_with(const char *svc, const char *image)
{
    size_t n;
    const void **tasks = sk_store_list(store, SK_KIND_TASK, &n);
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        const struct sk_task *t = tasks[i];
        k += strcmp(t->service_id, svc) == 0 &&
             t->status.state == SK_TASK_RUNNING &&
             strcmp(t->spec.container.image, image) == 0;
    }
    free(tasks);
    return k;
}

/* n leader rounds, each followed by the agents' reports, 10 ms apart. */
static void rounds_10ms_apart(int n)
{
    for (int r = 0; r < n; r++) {
        now += 10;
        round_once();
        agents();
    }
}

static void updates_one_at_a_time(void **state)
{
    char id[SK_ID_SIZE];
    update_to("img:v2", SK_FAILURE_PAUSE, id);

    /* Each round: at most one slot is being replaced. */
    for (int r = 0; r < 40; r++) {
        now += 10;
        round_once();
        int old_stopping = 0, new_starting = 0;
        size_t n;
        const void **tasks = sk_store_list(store, SK_KIND_TASK, &n);
        for (size_t i = 0; i < n; i++) {
            const struct sk_task *task = tasks[i];
            if (task->spec_version == 1 &&
                task->desired_state == SK_TASK_SHUTDOWN &&
                task->status.state == SK_TASK_RUNNING)
                old_stopping++;
            if (task->spec_version == 2 && task->status.state < SK_TASK_RUNNING)
                new_starting++;
        }
        free(tasks);
        assert_true(old_stopping + new_starting <= 1);
        agents();
    }
    settle();
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, SK_TASK_RUNNING), 4);
    /* Not complete before the last replacement has run for `monitor`. */
    const struct sk_service *svc = sk_store_get(store, SK_KIND_SERVICE, id);
    assert_int_equal(svc->update_status.state, SK_UPDATE_UPDATING);
    now += 5000;
    settle();
    size_t n;
    const void **tasks = sk_store_list(store, SK_KIND_TASK, &n);
    for (size_t i = 0; i < n; i++) {
        const struct sk_task *task = tasks[i];
        if (task->status.state == SK_TASK_RUNNING)
            assert_string_equal(task->spec.container.image, "img:v2");
    }
    free(tasks);
    const struct sk_service *done = sk_store_get(store, SK_KIND_SERVICE, id);
    assert_int_equal(done->update_status.state, SK_UPDATE_COMPLETED);
}

/* A replacement that cannot start pauses the update (the default failure
 * action): one slot is lost, the other three keep the old image. */
static void failed_update_pauses(void **state)
{
    char id[SK_ID_SIZE];
    missing_image = "img:missing";
    update_to("img:missing", SK_FAILURE_PAUSE, id);
    rounds_10ms_apart(40);
    const struct sk_service *s = sk_store_get(store, SK_KIND_SERVICE, id);
    assert_int_equal(s->update_status.state, SK_UPDATE_PAUSED);
    assert_non_null(strstr(s->update_status.message,
                           "update paused: 1 of 4 tasks failed; task web."));
    assert_non_null(strstr(s->update_status.message,
                           "failed: image \"img:missing\" not found"));
    assert_int_equal(running_with(id, "img"), 3);
    assert_int_equal(count(id, NULL, SK_TASK_REJECTED, -1), 1);
    /* Paused: nothing more is replaced, also later. */
    now += 60000;
    settle();
    assert_int_equal(running_with(id, "img"), 3);
    missing_image = NULL;
}

/* Replacements that start, then fail within `monitor` of starting, pause
 * the update too, though every slot was replaced by then; after `monitor`,
 * a failure no longer counts against the update. */
static void failure_while_monitored_pauses(void **state)
{
    char id[SK_ID_SIZE];
    update_to("img:v2", SK_FAILURE_PAUSE, id);
    rounds_10ms_apart(40);
    settle();
    assert_int_equal(running_with(id, "img:v2"), 4);
    now += 2000;
    finish_all(id, SK_TASK_FAILED);
    settle();
    const struct sk_service *s = sk_store_get(store, SK_KIND_SERVICE, id);
    assert_int_equal(s->update_status.state, SK_UPDATE_PAUSED);
    assert_non_null(
        strstr(s->update_status.message, "update paused: 4 of 4 tasks failed"));
}

static void failure_after_monitor_does_not_count(void **state)
{
    char id[SK_ID_SIZE];
    update_to("img:v2", SK_FAILURE_PAUSE, id);
    rounds_10ms_apart(40);
    now += 5000;
    settle();
    const struct sk_service *s = sk_store_get(store, SK_KIND_SERVICE, id);
    assert_int_equal(s->update_status.state, SK_UPDATE_COMPLETED);
    now += 1000;
    finish_all(id, SK_TASK_FAILED);
    settle();
    s = sk_store_get(store, SK_KIND_SERVICE, id);
    assert_int_equal(s->update_status.state, SK_UPDATE_COMPLETED);
}

/* With failure action rollback, the previous image comes back on every
 * slot, and the failed spec is kept as the previous one. */
static void failed_update_rolls_back(void **state)
{
    char id[SK_ID_SIZE];
    missing_image = "img:missing";
    update_to("img:missing", SK_FAILURE_ROLLBACK, id);
    rounds_10ms_apart(40);
    settle();
    now += 5000;
    settle();
    const struct sk_service *s = sk_store_get(store, SK_KIND_SERVICE, id);
    assert_int_equal(s->update_status.state, SK_UPDATE_ROLLBACK_COMPLETED);
    /* The cause stays with it: what an operator reads afterwards. */
    assert_non_null(strstr(s->update_status.message,
                           "rolled back: 1 of 4 tasks failed; task web."));
    assert_non_null(strstr(s->update_status.message,
                           "failed: image \"img:missing\" not found"));
    assert_string_equal(s->spec.task.container.image, "img");
    assert_string_equal(s->previous_spec->task.container.image, "img:missing");
    assert_int_equal(s->spec_version, 3);
    assert_int_equal(running_with(id, "img"), 4);
    /* The three tasks the update never reached were left alone. */
    size_t n;
    const void **tasks = sk_store_list(store, SK_KIND_TASK, &n);
    int untouched = 0;
    for (size_t i = 0; i < n; i++) {
        const struct sk_task *t = tasks[i];
        untouched += t->spec_version == 1 && t->status.state == SK_TASK_RUNNING;
    }
    free(tasks);
    assert_int_equal(untouched, 3);
    missing_image = NULL;
}

/* ---- overlay networks ---- */

static char net_back[SK_ID_SIZE], net_front[SK_ID_SIZE];

/* A network as the API creates it (VNI, subnet and gateway allocated). */
static void add_network(const char *name, const char *subnet, char *out_id)
{
    struct sk_network *n = sk_object_new(SK_KIND_NETWORK);
    sk_id_new(n->meta.id);
    sk_schema_defaults(&sk_network_spec_schema, &n->spec);
    n->spec.name = sk_strdup(name);
    n->spec.subnet = subnet ? sk_strdup(subnet) : NULL;
    struct sk_allocator *a = sk_allocator_new();
    sk_allocator_sync(a, store);
    struct sk_err err;
    if (sk_allocate_network(a, &sk_store_cluster(store)->spec, n, &err) !=
        SK_OK)
        fail_msg("network %s: %s", name, err.msg);
    sk_allocator_free(a);
    memcpy(out_id, n->meta.id, SK_ID_SIZE);
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NETWORK, n);
    commit(t);
    sk_object_free(SK_KIND_NETWORK, n);
}

static void set_networks(struct sk_task_spec *t, const char *id,
                         const char *name)
{
    for (size_t i = 0; i < t->n_networks; i++)
        sk_schema_free(&sk_network_ref_schema, &t->networks[i]);
    free(t->networks);
    t->networks = sk_calloc(1, sizeof *t->networks);
    t->n_networks = 1;
    t->networks[0].target = sk_strdup(name);
    memcpy(t->networks[0].id, id, SK_ID_SIZE);
}

static void on_back(struct sk_service *s)
{
    set_networks(&s->spec.task, net_back, "back");
}

static void on_back_dnsrr_once(struct sk_service *s)
{
    on_back(s);
    s->spec.endpoint.mode = SK_ENDPOINT_DNSRR;
    s->spec.task.restart.condition = SK_RESTART_NONE;
}

static void on_back_dnsrr(struct sk_service *s)
{
    on_back(s);
    s->spec.endpoint.mode = SK_ENDPOINT_DNSRR;
}

/* The address of a task (or node) on a network, or NULL. */
static const char *address_on(const struct sk_net_attachment *att, size_t n,
                              const char *network_id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(att[i].network_id, network_id) == 0 && att[i].n_addresses)
            return att[i].addresses[0];
    return NULL;
}

/* Every address held -- live tasks', VIPs, nodes' -- is in the subnet
 * and held once; returns how many are held. */
static int check_addresses_unique(const char *network_id)
{
    const struct sk_network *net =
        sk_store_get(store, SK_KIND_NETWORK, network_id);
    uint32_t base, ip;
    int prefix;
    assert_true(sk_cidr_parse(net->subnet, &base, &prefix));
    const char *held[512];
    int n_held = 0;
    size_t n;
    const void **all = sk_store_list(store, SK_KIND_TASK, &n);
    for (size_t i = 0; i < n; i++) {
        const struct sk_task *t = all[i];
        const char *a = address_on(t->networks, t->n_networks, network_id);
        if (a && !sk_task_state_terminal(t->status.state))
            held[n_held++] = a;
    }
    free(all);
    all = sk_store_list(store, SK_KIND_SERVICE, &n);
    for (size_t i = 0; i < n; i++) {
        const struct sk_service *svc = all[i];
        for (size_t k = 0; k < svc->n_vips; k++)
            if (strcmp(svc->vips[k].network_id, network_id) == 0)
                held[n_held++] = svc->vips[k].addr;
    }
    free(all);
    all = sk_store_list(store, SK_KIND_NODE, &n);
    for (size_t i = 0; i < n; i++) {
        const struct sk_node *node = all[i];
        const char *a =
            address_on(node->networks, node->n_networks, network_id);
        if (a)
            held[n_held++] = a;
    }
    free(all);
    for (int i = 0; i < n_held; i++) {
        assert_true(sk_ipv4_parse(held[i], &ip, NULL));
        assert_true(ip - base < (1u << (32 - prefix)));
        assert_string_not_equal(held[i], net->gateway);
        for (int j = 0; j < i; j++)
            if (strcmp(held[i], held[j]) == 0)
                fail_msg("address %s is held twice", held[i]);
    }
    return n_held;
}

struct net_tasks {
    const char *service_id, *network_id;
    int state; /* -1: any live one */
    int with_address, without;
    const char *message; /* of the last one without */
};

static bool visit_net_task(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    struct net_tasks *c = ctx;
    if (strcmp(t->service_id, c->service_id) != 0 ||
        t->desired_state != SK_TASK_RUNNING ||
        (c->state >= 0 && t->status.state != c->state))
        return true;
    if (address_on(t->networks, t->n_networks, c->network_id)) {
        c->with_address++;
    } else {
        c->without++;
        c->message = t->status.message;
    }
    return true;
}

static struct net_tasks net_tasks(const char *svc, const char *network_id,
                                  int state)
{
    struct net_tasks c = {svc, network_id, state, 0, 0, NULL};
    sk_store_each(store, SK_KIND_TASK, visit_net_task, &c);
    return c;
}

static const char *node_address(const char *name, const char *network_id)
{
    const struct sk_node *n = sk_store_get_by_name(store, SK_KIND_NODE, name);
    return address_on(n->networks, n->n_networks, network_id);
}

/* A /29 holds 5 addresses besides the gateway. Tasks that cannot have one
 * wait, pending with the allocator's reason, and get one once others
 * finish; a node's own address comes first, so every task with an address
 * can run, on the node that has one. */
static void exhausted_network_leaves_tasks_pending(void **state)
{
    add_node("h1", NULL, 1LL << 30);
    add_node("h2", NULL, 1LL << 30);
    add_network("back", "10.0.3.0/29", net_back);
    const struct sk_service *s =
        add_service("a", SK_MODE_REPLICATED, 4, on_back_dnsrr_once);
    char a[SK_ID_SIZE], b[SK_ID_SIZE];
    memcpy(a, s->meta.id, SK_ID_SIZE);
    settle();
    /* 4 tasks and the own address of one node; the other can have none,
     * so none go there. */
    struct net_tasks c = net_tasks(a, net_back, SK_TASK_RUNNING);
    assert_int_equal(c.with_address, 4);
    const char *full = running_on(a, "h1") ? "h1" : "h2";
    const char *other = running_on(a, "h1") ? "h2" : "h1";
    assert_int_equal(running_on(a, full), 4);
    assert_non_null(node_address(full, net_back));
    assert_null(node_address(other, net_back));
    assert_int_equal(check_addresses_unique(net_back), 5);

    s = add_service("b", SK_MODE_REPLICATED, 2, on_back_dnsrr);
    memcpy(b, s->meta.id, SK_ID_SIZE);
    settle();
    c = net_tasks(b, net_back, SK_TASK_PENDING);
    assert_int_equal(c.without, 2);
    assert_string_equal(c.message,
                        "network \"back\": no free address in 10.0.3.0/29");

    /* a's tasks finish: b's get their addresses and run. */
    finish_all(a, SK_TASK_COMPLETE);
    settle();
    c = net_tasks(b, net_back, SK_TASK_RUNNING);
    assert_int_equal(c.with_address, 2);
    assert_int_equal(c.without, 0);
    check_addresses_unique(net_back);
}

/* A new leader's allocator, built from the store alone, hands out no
 * address twice: scale up and restart tasks after the "failover". */
static void failover_gives_no_duplicate(void **state)
{
    five_nodes();
    add_network("back", NULL, net_back);
    const struct sk_service *s =
        add_service("web", SK_MODE_REPLICATED, 6, on_back);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    settle();
    s = sk_store_get(store, SK_KIND_SERVICE, id);
    assert_int_equal(s->n_vips, 1);
    assert_string_equal(s->vips[0].network_id, net_back);
    /* 6 tasks, the VIP, 5 nodes' own addresses. */
    assert_int_equal(check_addresses_unique(net_back), 12);

    sk_allocator_free(alloc);
    alloc = sk_allocator_new();
    finish_all(id, SK_TASK_FAILED);
    struct sk_service *u = sk_object_dup(SK_KIND_SERVICE, s);
    u->spec.replicas = 9;
    struct sk_txn *t = sk_txn_new();
    sk_txn_update(t, SK_KIND_SERVICE, u, 0);
    commit(t);
    sk_object_free(SK_KIND_SERVICE, u);
    now += 5000;
    settle();
    struct net_tasks c = net_tasks(id, net_back, SK_TASK_RUNNING);
    assert_int_equal(c.with_address, 9);
    assert_int_equal(check_addresses_unique(net_back), 15);
}

/* `service update --network-rm back --network-add front`: replacements
 * get addresses on front only, the VIP moves, and the nodes let their
 * addresses on back go once no task of theirs is on it. */
static void network_change_replaces_tasks(void **state)
{
    five_nodes();
    add_network("back", NULL, net_back);
    add_network("front", NULL, net_front);
    const struct sk_service *s =
        add_service("api", SK_MODE_REPLICATED, 3, on_back);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    settle();
    assert_int_equal(net_tasks(id, net_back, SK_TASK_RUNNING).with_address, 3);

    struct sk_service *u = sk_object_dup(
        SK_KIND_SERVICE, sk_store_get(store, SK_KIND_SERVICE, id));
    set_networks(&u->spec.task, net_front, "front");
    u->spec.update.parallelism = 0;
    u->spec_version++;
    u->update_status.state = SK_UPDATE_UPDATING;
    u->update_status.started_at = now;
    struct sk_txn *t = sk_txn_new();
    sk_txn_update(t, SK_KIND_SERVICE, u, 0);
    commit(t);
    sk_object_free(SK_KIND_SERVICE, u);
    settle();
    struct net_tasks c = net_tasks(id, net_front, SK_TASK_RUNNING);
    assert_int_equal(c.with_address, 3);
    assert_int_equal(c.without, 0);
    assert_int_equal(net_tasks(id, net_back, SK_TASK_RUNNING).with_address, 0);
    s = sk_store_get(store, SK_KIND_SERVICE, id);
    assert_int_equal(s->n_vips, 1);
    assert_string_equal(s->vips[0].network_id, net_front);
    for (int i = 0; i < 5; i++)
        assert_null(node_address(NODES[i], net_back));
    /* The nodes that run a replacement have an address on front. */
    int with_front = 0;
    for (int i = 0; i < 5; i++)
        with_front += node_address(NODES[i], net_front) != NULL;
    assert_int_equal(with_front, 3);
    assert_int_equal(check_addresses_unique(net_back), 0);
    assert_int_equal(check_addresses_unique(net_front), 7);

    /* dnsrr: the VIP goes. */
    u = sk_object_dup(SK_KIND_SERVICE, s);
    u->spec.endpoint.mode = SK_ENDPOINT_DNSRR;
    t = sk_txn_new();
    sk_txn_update(t, SK_KIND_SERVICE, u, 0);
    commit(t);
    sk_object_free(SK_KIND_SERVICE, u);
    settle();
    s = sk_store_get(store, SK_KIND_SERVICE, id);
    assert_int_equal(s->n_vips, 0);
}

/* A global service's task is created on its node; without room for its
 * address and the node's own, it waits there, pending (the agents leave
 * it alone), and is assigned once room is made. */
static void global_tasks_wait_for_addresses(void **state)
{
    five_nodes();
    add_network("back", "10.0.3.0/29", net_back);
    const struct sk_service *s =
        add_service("agent", SK_MODE_GLOBAL, 0, on_back_dnsrr);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    settle();
    /* Each node needs two: its task's and its own. */
    struct net_tasks c = net_tasks(id, net_back, SK_TASK_RUNNING);
    assert_int_equal(c.with_address, 2);
    c = net_tasks(id, net_back, SK_TASK_PENDING);
    assert_int_equal(c.without, 3);
    assert_string_equal(c.message,
                        "network \"back\": no free address in 10.0.3.0/29");
    assert_int_equal(check_addresses_unique(net_back), 4);

    /* Drain a node that runs one: two addresses come free, one waiting
     * task takes them. */
    const char *drained = NULL;
    for (int i = 0; i < 5 && !drained; i++)
        if (running_on(id, NODES[i]))
            drained = NODES[i];
    set_node(drained, SK_NODE_READY, SK_AVAIL_DRAIN);
    settle();
    assert_null(node_address(drained, net_back));
    assert_int_equal(net_tasks(id, net_back, SK_TASK_RUNNING).with_address, 2);
    assert_int_equal(net_tasks(id, net_back, SK_TASK_PENDING).without, 2);
    assert_int_equal(check_addresses_unique(net_back), 4);
}

/* ---- nodes that stop satisfying what their tasks need ---- */

/* Applies edit to node `name` and commits it. */
static void edit_node(const char *name, void (*edit)(struct sk_node *))
{
    const struct sk_node *n = sk_store_get_by_name(store, SK_KIND_NODE, name);
    struct sk_node *u = sk_object_dup(SK_KIND_NODE, n);
    edit(u);
    struct sk_txn *t = sk_txn_new();
    sk_txn_update(t, SK_KIND_NODE, u, 0);
    commit(t);
    sk_object_free(SK_KIND_NODE, u);
}

static void promote(struct sk_node *n)
{
    n->spec.role = SK_ROLE_MANAGER;
}

static void label_eu(struct sk_node *n)
{
    sk_kv_set(&n->spec.labels, &n->spec.n_labels, "zone", "eu");
}

static void label_rm_zone(struct sk_node *n)
{
    sk_kv_del(&n->spec.labels, &n->spec.n_labels, "zone");
}

static void shrink_to_512m(struct sk_node *n)
{
    n->description.memory_bytes = 512LL << 20;
}

/* The message of the (one) task of svc on node `name` told to shut
 * down, or NULL. */
static const char *shutdown_message(const char *svc, const char *name)
{
    const struct sk_node *n = sk_store_get_by_name(store, SK_KIND_NODE, name);
    size_t k;
    const void **tasks = sk_store_list(store, SK_KIND_TASK, &k);
    const char *msg = NULL;
    for (size_t i = 0; i < k; i++) {
        const struct sk_task *t = tasks[i];
        if (strcmp(t->service_id, svc) == 0 &&
            strcmp(t->node_id, n->meta.id) == 0 &&
            t->desired_state == SK_TASK_SHUTDOWN)
            msg = t->status.message;
    }
    free(tasks);
    return msg;
}

static void workers_only_slow_restart(struct sk_service *s)
{
    sk_strs_push(&s->spec.task.placement.constraints,
                 &s->spec.task.placement.n_constraints, "node.role==worker");
    s->spec.task.restart.delay_ms = 60000;
}

/* `node promote h1` under a task of a workers-only service: the task is
 * told to stop, saying why, and its replacement runs on a worker at once
 * (no restart delay: the node, not the task, changed). */
static void promoted_node_loses_workers_only_tasks(void **state)
{
    five_nodes();
    const struct sk_service *s =
        add_service("w", SK_MODE_REPLICATED, 5, workers_only_slow_restart);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    settle();
    assert_int_equal(running_on(id, "h1"), 1);
    int64_t t0 = now;
    edit_node("h1", promote);
    settle();
    assert_true(now - t0 < 1000);
    assert_int_equal(running_on(id, "h1"), 0);
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, SK_TASK_RUNNING), 5);
    assert_string_equal(shutdown_message(id, "h1"),
                        "node h1 no longer satisfies node.role==worker");
    /* A pause keeps the tasks where they are. */
    int on_h2 = running_on(id, "h2");
    assert_true(on_h2 >= 1);
    set_node("h2", SK_NODE_READY, SK_AVAIL_PAUSE);
    settle();
    assert_int_equal(running_on(id, "h2"), on_h2);
    /* A drain moves them, saying so. */
    set_node("h2", SK_NODE_READY, SK_AVAIL_DRAIN);
    settle();
    assert_int_equal(running_on(id, "h2"), 0);
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, SK_TASK_RUNNING), 5);
    assert_string_equal(shutdown_message(id, "h2"), "node h2 is drained");
}

/* `node update --label-rm zone h4` under the tasks of a zone==eu service:
 * they move to the other node of the zone; with no node left in it, they
 * wait, pending, saying why. */
static void label_removed_moves_tasks(void **state)
{
    five_nodes();
    edit_node("h4", label_eu);
    edit_node("h5", label_eu);
    const struct sk_service *s =
        add_service("eu", SK_MODE_REPLICATED, 4, constrain_zone);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    settle();
    assert_int_equal(running_on(id, "h4"), 2);
    assert_int_equal(running_on(id, "h5"), 2);
    edit_node("h4", label_rm_zone);
    settle();
    assert_int_equal(running_on(id, "h4"), 0);
    assert_int_equal(running_on(id, "h5"), 4);
    assert_string_equal(shutdown_message(id, "h4"),
                        "node h4 no longer satisfies node.labels.zone==eu");
    edit_node("h5", label_rm_zone);
    settle();
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, -1), 0);
    assert_int_equal(count(id, NULL, SK_TASK_PENDING, SK_TASK_RUNNING), 4);
}

/* A global service leaves a node that no longer matches, naming the
 * constraint, and comes back when it matches again. */
static void global_leaves_unmatched_node(void **state)
{
    five_nodes();
    for (int i = 0; i < 5; i++)
        edit_node(NODES[i], label_eu);
    const struct sk_service *s =
        add_service("g", SK_MODE_GLOBAL, 0, constrain_zone);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    settle();
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, SK_TASK_RUNNING), 5);
    edit_node("h4", label_rm_zone);
    settle();
    assert_int_equal(running_on(id, "h4"), 0);
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, SK_TASK_RUNNING), 4);
    assert_string_equal(shutdown_message(id, "h4"),
                        "node h4 no longer satisfies node.labels.zone==eu");
    edit_node("h4", label_eu);
    settle();
    assert_int_equal(running_on(id, "h4"), 1);
}

/* A node whose capacity shrinks below what its tasks reserve: the newest
 * of them beyond its capacity stop, saying why, and run elsewhere. */
static void shrunk_node_sheds_newest_tasks(void **state)
{
    add_node("h1", NULL, 1LL << 30);
    add_node("h2", NULL, 1LL << 30);
    add_node("h3", NULL, 1LL << 30);
    const struct sk_service *s =
        add_service("mem", SK_MODE_REPLICATED, 4, reserve_400m);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    settle();
    const char *full = NULL;
    for (int i = 0; i < 3; i++)
        if (running_on(id, NODES[i]) == 2)
            full = NODES[i];
    assert_non_null(full);
    /* The older task stays; the newer one moves. */
    const struct sk_node *fn = sk_store_get_by_name(store, SK_KIND_NODE, full);
    char full_id[SK_ID_SIZE];
    memcpy(full_id, fn->meta.id, SK_ID_SIZE);
    size_t k;
    const void **tasks = sk_store_list(store, SK_KIND_TASK, &k);
    const struct sk_task *older = NULL;
    for (size_t i = 0; i < k; i++) {
        const struct sk_task *t = tasks[i];
        if (strcmp(t->node_id, full_id) == 0 &&
            (!older || t->meta.created_at < older->meta.created_at ||
             (t->meta.created_at == older->meta.created_at &&
              strcmp(t->meta.id, older->meta.id) < 0)))
            older = t;
    }
    free(tasks);
    char older_id[SK_ID_SIZE];
    memcpy(older_id, older->meta.id, SK_ID_SIZE);
    edit_node(full, shrink_to_512m);
    settle();
    assert_int_equal(running_on(id, full), 1);
    const struct sk_task *kept = sk_store_get(store, SK_KIND_TASK, older_id);
    assert_int_equal(kept->status.state, SK_TASK_RUNNING);
    assert_int_equal(kept->desired_state, SK_TASK_RUNNING);
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, SK_TASK_RUNNING), 4);
    char want[160];
    snprintf(want, sizeof want,
             "node %s has 512 MiB of memory, less than its tasks reserve "
             "(800 MiB)",
             full);
    assert_string_equal(shutdown_message(id, full), want);
}

/* A global service whose reservation no longer fits a node stops there
 * once, and is not started again while it does not fit (no churn). */
static void global_reservation_beyond_shrunk_node(void **state)
{
    five_nodes();
    const struct sk_service *s =
        add_service("g", SK_MODE_GLOBAL, 0, reserve_400m);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    const struct sk_service *b =
        add_service("b", SK_MODE_GLOBAL, 0, reserve_400m);
    char bid[SK_ID_SIZE];
    memcpy(bid, b->meta.id, SK_ID_SIZE);
    settle();
    assert_int_equal(running_on(id, "h3") + running_on(bid, "h3"), 2);
    edit_node("h3", shrink_to_512m);
    settle();
    assert_int_equal(running_on(id, "h3") + running_on(bid, "h3"), 1);
    assert_int_equal(count(NULL, NULL, -1, -1), 10);
    now += 60000;
    settle();
    assert_int_equal(running_on(id, "h3") + running_on(bid, "h3"), 1);
    assert_int_equal(count(NULL, NULL, -1, -1), 10);
}

static void labels_eu_on_h1_h2_h3(void)
{
    for (int i = 0; i < 3; i++)
        edit_node(NODES[i], label_eu);
}

/* An update that adds a constraint replaces the tasks on the nodes that do
 * not match at the update's pace, not all at once: a task is held to its
 * own spec's constraints. */
static void added_constraint_replaces_at_update_pace(void **state)
{
    five_nodes();
    labels_eu_on_h1_h2_h3();
    const struct sk_service *s =
        add_service("web", SK_MODE_REPLICATED, 5, NULL);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    settle();
    struct sk_service *u = sk_object_dup(
        SK_KIND_SERVICE, sk_store_get(store, SK_KIND_SERVICE, id));
    constrain_zone(u);
    u->spec.update.parallelism = 1;
    u->spec_version = 2;
    u->update_status.state = SK_UPDATE_UPDATING;
    u->update_status.started_at = now;
    struct sk_txn *t = sk_txn_new();
    sk_txn_update(t, SK_KIND_SERVICE, u, 0);
    commit(t);
    sk_object_free(SK_KIND_SERVICE, u);
    now += 10;
    round_once();
    assert_true(count(id, NULL, -1, SK_TASK_SHUTDOWN) <= 1);
    settle();
    now += 5000;
    settle();
    assert_int_equal(running_on(id, "h4") + running_on(id, "h5"), 0);
    assert_int_equal(count(id, NULL, SK_TASK_RUNNING, SK_TASK_RUNNING), 5);
}

/* ---- why a task is pending ---- */

static void workers_on_8081(struct sk_service *s)
{
    publish_8080(s);
    s->spec.endpoint.ports[0].published = 8081;
    sk_strs_push(&s->spec.task.placement.constraints,
                 &s->spec.task.placement.n_constraints, "node.role==worker");
}

static void reserve_2g(struct sk_service *s)
{
    s->spec.task.reservations.memory_bytes = 2LL << 30;
}

/* The reason of the first pending decision of the scheduler. */
static void assert_reason(const char *want)
{
    struct sk_sched_decision *d;
    size_t n = sk_schedule(store, alloc, 100, &d);
    assert_true(n >= 1);
    assert_string_equal(d[0].node_id, "");
    assert_string_equal(d[0].reason, want);
    free(d);
}

/* The reason counts every filter that excluded a node, each node under
 * the first filter it fails, most nodes first, plurals right. */
static void pending_reason_counts_every_filter(void **state)
{
    five_nodes();
    edit_node("h1", promote);
    edit_node("h2", promote);
    set_node("h3", SK_NODE_READY, SK_AVAIL_DRAIN);
    const struct sk_service *a =
        add_service("a", SK_MODE_REPLICATED, 2, workers_on_8081);
    char aid[SK_ID_SIZE];
    memcpy(aid, a->meta.id, SK_ID_SIZE);
    settle();
    assert_int_equal(running_on(aid, "h4") + running_on(aid, "h5"), 2);
    add_service("b", SK_MODE_REPLICATED, 1, workers_on_8081);
    settle();
    assert_reason("2 nodes excluded by node.role==worker; host port 8081/tcp "
                  "is in use on 2 nodes; 1 node drained");
    /* The reason is in the task, for `service ps`. */
    const struct sk_service *b =
        sk_store_get_by_name(store, SK_KIND_SERVICE, "b");
    size_t k;
    const void **tasks = sk_store_list(store, SK_KIND_TASK, &k);
    for (size_t i = 0; i < k; i++) {
        const struct sk_task *t = tasks[i];
        if (strcmp(t->service_id, b->meta.id) == 0)
            assert_string_equal(t->status.message,
                                "2 nodes excluded by node.role==worker; host "
                                "port 8081/tcp is in use on 2 nodes; 1 node "
                                "drained");
    }
    free(tasks);
}

static void pending_reason_singular(void **state)
{
    add_node("h1", NULL, 1LL << 30);
    add_node("h2", NULL, 1LL << 30);
    set_node("h2", SK_NODE_DOWN, SK_AVAIL_ACTIVE);
    add_service("big", SK_MODE_REPLICATED, 1, reserve_2g);
    settle();
    assert_reason(
        "1 node not ready; insufficient memory on 1 node (needs 2048 MiB)");
    set_node("h2", SK_NODE_READY, SK_AVAIL_PAUSE);
    assert_reason(
        "1 node paused; insufficient memory on 1 node (needs 2048 MiB)");
}

static const char *LONG_KEYS[] = {
    "a-label-key-long-enough-to-fill-a-reason-quickly-1",
    "a-label-key-long-enough-to-fill-a-reason-quickly-2",
    "a-label-key-long-enough-to-fill-a-reason-quickly-3",
    "a-label-key-long-enough-to-fill-a-reason-quickly-4",
    "a-label-key-long-enough-to-fill-a-reason-quickly-5",
};

static void five_long_constraints(struct sk_service *s)
{
    for (int i = 0; i < 5; i++) {
        char *c = sk_printf("node.labels.%s!=x", LONG_KEYS[i]);
        sk_strs_push(&s->spec.task.placement.constraints,
                     &s->spec.task.placement.n_constraints, c);
        free(c);
    }
}

/* A reason longer than its room ends in "; ..." after whole parts. */
static void pending_reason_cut_after_whole_parts(void **state)
{
    for (int i = 0; i < 5; i++) {
        const struct sk_node *n = add_node(NODES[i], NULL, 1LL << 30);
        struct sk_node *u = sk_object_dup(SK_KIND_NODE, n);
        sk_kv_set(&u->spec.labels, &u->spec.n_labels, LONG_KEYS[i], "x");
        struct sk_txn *t = sk_txn_new();
        sk_txn_update(t, SK_KIND_NODE, u, 0);
        commit(t);
        sk_object_free(SK_KIND_NODE, u);
    }
    add_service("picky", SK_MODE_REPLICATED, 1, five_long_constraints);
    settle();
    struct sk_sched_decision *d;
    size_t n = sk_schedule(store, alloc, 100, &d);
    assert_int_equal(n, 1);
    const char *r = d[0].reason;
    assert_true(strlen(r) < sizeof d[0].reason);
    assert_non_null(strstr(r, "1 node excluded by node.labels."
                              "a-label-key-long-enough-to-fill-a-reason-"
                              "quickly-1!=x; 1 node excluded by"));
    assert_string_equal(r + strlen(r) - 5, "; ...");
    free(d);
}

/* ---- what `service ls` counts ---- */

static void assert_counts(const char *svc, int64_t running, int64_t desired)
{
    struct sk_service_counts c;
    sk_service_counts(store, sk_store_get(store, SK_KIND_SERVICE, svc), &c);
    if (c.running != running || c.desired != desired)
        fail_msg("counts %lld/%lld, want %lld/%lld", (long long)c.running,
                 (long long)c.desired, (long long)running, (long long)desired);
}

/* Only tasks on ready nodes run as far as `service ls` says; a global
 * service wants the ready nodes that may hold its task. */
static void service_counts_on_ready_nodes(void **state)
{
    five_nodes();
    const struct sk_service *g = add_service("g", SK_MODE_GLOBAL, 0, NULL);
    char gid[SK_ID_SIZE];
    memcpy(gid, g->meta.id, SK_ID_SIZE);
    const struct sk_service *r = add_service("r", SK_MODE_REPLICATED, 10, NULL);
    char rid[SK_ID_SIZE];
    memcpy(rid, r->meta.id, SK_ID_SIZE);
    settle();
    assert_counts(gid, 5, 5);
    assert_counts(rid, 10, 10);

    /* h2 goes down: before the orchestrator acts, and after. */
    set_node("h2", SK_NODE_DOWN, SK_AVAIL_ACTIVE);
    assert_counts(gid, 4, 4);
    assert_counts(rid, 8, 10);
    settle();
    assert_counts(gid, 4, 4);
    assert_counts(rid, 10, 10);

    /* Paused keeps its task and counts; drained does not. */
    set_node("h3", SK_NODE_READY, SK_AVAIL_PAUSE);
    settle();
    assert_counts(gid, 4, 4);
    set_node("h3", SK_NODE_READY, SK_AVAIL_DRAIN);
    settle();
    assert_counts(gid, 3, 3);
    set_node("h2", SK_NODE_READY, SK_AVAIL_ACTIVE);
    settle();
    assert_counts(gid, 4, 4);

    /* A constraint: only the matching nodes are wanted. */
    edit_node("h4", label_eu);
    const struct sk_service *eu =
        add_service("eu", SK_MODE_GLOBAL, 0, constrain_zone);
    char eid[SK_ID_SIZE];
    memcpy(eid, eu->meta.id, SK_ID_SIZE);
    assert_counts(eid, 0, 1);
    settle();
    assert_counts(eid, 1, 1);
}

/* The agent's report that a task told to stop has stopped keeps the reason
 * it was told as the task's message; other reports bring their own. */
static void stop_report_keeps_the_reason(void **state)
{
    five_nodes();
    const struct sk_service *s =
        add_service("w", SK_MODE_REPLICATED, 5, workers_only_slow_restart);
    char id[SK_ID_SIZE];
    memcpy(id, s->meta.id, SK_ID_SIZE);
    settle();
    const struct sk_node *h1 = sk_store_get_by_name(store, SK_KIND_NODE, "h1");
    char h1_id[SK_ID_SIZE], h2_id[SK_ID_SIZE];
    memcpy(h1_id, h1->meta.id, SK_ID_SIZE);
    memcpy(h2_id,
           ((const struct sk_node *)sk_store_get_by_name(store, SK_KIND_NODE,
                                                         "h2"))
               ->meta.id,
           SK_ID_SIZE);
    edit_node("h1", promote);
    now += 10;
    round_once();
    char told[SK_ID_SIZE] = "", other[SK_ID_SIZE] = "";
    size_t k;
    const void **tasks = sk_store_list(store, SK_KIND_TASK, &k);
    for (size_t i = 0; i < k; i++) {
        const struct sk_task *t = tasks[i];
        if (strcmp(t->node_id, h1_id) == 0)
            memcpy(told, t->meta.id, SK_ID_SIZE);
        else if (strcmp(t->node_id, h2_id) == 0 &&
                 t->status.state == SK_TASK_RUNNING)
            memcpy(other, t->meta.id, SK_ID_SIZE);
    }
    free(tasks);
    assert_true(*told && *other);

    struct sk_map pending;
    sk_map_init(&pending);
    const char *ids[] = {told, other}, *nodes[] = {h1_id, h2_id};
    int states[] = {SK_TASK_SHUTDOWN, SK_TASK_FAILED};
    for (int i = 0; i < 2; i++) {
        struct sk_pending_report *r = sk_calloc(1, sizeof *r);
        memcpy(r->node_id, nodes[i], SK_ID_SIZE);
        memcpy(r->report.id, ids[i], SK_ID_SIZE);
        r->report.state = states[i];
        r->report.timestamp = now;
        r->report.message =
            sk_strdup(i == 0 ? "stopped" : "exited with code 1");
        sk_map_put(&pending, ids[i], r);
    }
    commit(sk_reports_txn(store, &pending, now));
    assert_int_equal(sk_map_count(&pending), 0);
    sk_map_clear(&pending);
    const struct sk_task *t = sk_store_get(store, SK_KIND_TASK, told);
    assert_int_equal(t->status.state, SK_TASK_SHUTDOWN);
    assert_string_equal(t->status.message,
                        "node h1 no longer satisfies node.role==worker");
    t = sk_store_get(store, SK_KIND_TASK, other);
    assert_int_equal(t->status.state, SK_TASK_FAILED);
    assert_string_equal(t->status.message, "exited with code 1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(spread_twenty_over_five, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(placement_parsed_when_written, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(impossible_constraint_stays_pending,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(spread_preference_over_zones, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(reservations_and_ports, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(host_ports_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(restart_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(node_loss_moves_tasks, setup, teardown),
        cmocka_unit_test_setup_teardown(global_follows_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(history_is_reaped, setup, teardown),
        cmocka_unit_test_setup_teardown(updates_one_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_update_pauses, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_update_rolls_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(failure_while_monitored_pauses, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(exhausted_network_leaves_tasks_pending,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(failover_gives_no_duplicate, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(network_change_replaces_tasks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(global_tasks_wait_for_addresses, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(failure_after_monitor_does_not_count,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(promoted_node_loses_workers_only_tasks,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(label_removed_moves_tasks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(global_leaves_unmatched_node, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(shrunk_node_sheds_newest_tasks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(global_reservation_beyond_shrunk_node,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            added_constraint_replaces_at_update_pace, setup, teardown),
        cmocka_unit_test_setup_teardown(pending_reason_counts_every_filter,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(pending_reason_singular, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(pending_reason_cut_after_whole_parts,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(service_counts_on_ready_nodes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(stop_report_keeps_the_reason, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
