/* The leader's pure decisions: Raft membership, node liveness, events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "skiff/events.h"
#include "skiff/liveness.h"
#include "skiff/membership.h"
#include "skiff/mem.h"

static struct sk_store *store;
static uint64_t idx;

static int setup(void **state)
{
    store = sk_store_new();
    idx = 0;
    return 0;
}

static int teardown(void **state)
{
    sk_store_free(store);
    return 0;
}

static void commit(struct sk_txn *t)
{
    size_t len;
    char *cmd = sk_txn_encode(t, 1000, &len);
    struct sk_err err;
    if (sk_store_apply(store, ++idx, cmd, len, &err) != SK_OK)
        fail_msg("commit: %s", err.msg);
    free(cmd);
    sk_txn_free(t);
}

static struct sk_node *add_node(const char *name, int role, int state)
{
    struct sk_node *n = sk_object_new(SK_KIND_NODE);
    sk_id_new(n->meta.id);
    n->spec.name = sk_strdup(name);
    n->spec.role = role;
    n->status.state = state;
    if (role == SK_ROLE_MANAGER) {
        n->manager.raft_id = sk_raft_id_of(n->meta.id);
        n->manager.raft_addr = sk_printf("10.0.0.%s:7444", name + 1);
    }
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NODE, n);
    commit(t);
    return n;
}

static void update_node(struct sk_node *n)
{
    struct sk_txn *t = sk_txn_new();
    sk_txn_update(t, SK_KIND_NODE, n, 0);
    commit(t);
}

static void membership_decisions(void **state)
{
    struct sk_node *m1 = add_node("m1", SK_ROLE_MANAGER, SK_NODE_READY);
    struct sk_node *m2 = add_node("m2", SK_ROLE_MANAGER, SK_NODE_READY);
    struct sk_node *w1 = add_node("w1", SK_ROLE_WORKER, SK_NODE_READY);
    uint64_t id1 = m1->manager.raft_id, id2 = m2->manager.raft_id;

    /* Only m1 in the configuration: m2 is added as a spare. */
    struct sk_member servers[3] = {{id1, SK_MEMBER_VOTER, 100}};
    struct sk_member_action a =
        sk_membership_next(store, servers, 1, id1, 100, 8);
    assert_int_equal(a.type, SK_MEMBER_ADD);
    assert_int_equal(a.id, id2);
    assert_string_equal(a.addr, m2->manager.raft_addr);

    /* A spare starts receiving the log (standby); a standby far behind
     * waits; caught up, it is promoted. */
    servers[1] = (struct sk_member){id2, SK_MEMBER_SPARE, 0};
    a = sk_membership_next(store, servers, 2, id1, 100, 8);
    assert_int_equal(a.type, SK_MEMBER_REPLICATE);
    assert_int_equal(a.id, id2);
    servers[1] = (struct sk_member){id2, SK_MEMBER_STANDBY, 10};
    a = sk_membership_next(store, servers, 2, id1, 100, 8);
    assert_int_equal(a.type, SK_MEMBER_NOTHING);
    servers[1].match_index = 95;
    a = sk_membership_next(store, servers, 2, id1, 100, 8);
    assert_int_equal(a.type, SK_MEMBER_PROMOTE);
    assert_int_equal(a.id, id2);
    servers[1].role = SK_MEMBER_VOTER;
    a = sk_membership_next(store, servers, 2, id1, 100, 8);
    assert_int_equal(a.type, SK_MEMBER_NOTHING);

    /* m2 demoted: removed. */
    m2->spec.role = SK_ROLE_WORKER;
    update_node(m2);
    a = sk_membership_next(store, servers, 2, id1, 100, 8);
    assert_int_equal(a.type, SK_MEMBER_REMOVE);
    assert_int_equal(a.id, id2);
    assert_string_equal(a.why, "node was demoted");

    /* The leader itself demoted: transfer first. */
    m2->spec.role = SK_ROLE_MANAGER;
    update_node(m2);
    m1->spec.role = SK_ROLE_WORKER;
    update_node(m1);
    a = sk_membership_next(store, servers, 2, id1, 100, 8);
    assert_int_equal(a.type, SK_MEMBER_TRANSFER);
    assert_int_equal(a.id, id2);
    /* ... but the last voter never leaves: m2 joins first. */
    a = sk_membership_next(store, servers, 1, id1, 100, 8);
    assert_int_equal(a.type, SK_MEMBER_ADD);
    assert_int_equal(a.id, id2);

    /* A server whose node was removed from the store goes. */
    struct sk_txn *t = sk_txn_new();
    sk_txn_delete(t, SK_KIND_NODE, m1->meta.id, 0);
    commit(t);
    a = sk_membership_next(store, servers, 2, id2, 100, 8);
    assert_int_equal(a.type, SK_MEMBER_REMOVE);
    assert_int_equal(a.id, id1);
    assert_string_equal(a.why, "node was removed");
    sk_object_free(SK_KIND_NODE, m1);
    sk_object_free(SK_KIND_NODE, m2);
    sk_object_free(SK_KIND_NODE, w1);
}

static struct sk_node_change *find(struct sk_node_change *c, size_t n,
                                   const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(c[i].node_id, id) == 0)
            return &c[i];
    return NULL;
}

/* A node that joins long after the leader took over is not called down
 * before its first heartbeat had the time to arrive. */
static void liveness_after_join(void **state)
{
    const int64_t P = 1000;
    struct sk_liveness d;
    sk_liveness_init(&d);
    sk_liveness_reset(&d, 1000 - 100 * P); /* grace long over */
    /* commit() stamps objects with time 1000: the join. */
    struct sk_node *n = add_node("n1", SK_ROLE_WORKER, SK_NODE_UNKNOWN);
    struct sk_node_change *ch;
    size_t k = sk_liveness_check(&d, store, 1000 + 1, P, &ch);
    assert_int_equal(k, 0);
    free(ch);
    k = sk_liveness_check(&d, store, 1000 + 3 * P, P, &ch);
    assert_int_equal(k, 0);
    free(ch);
    /* Silent for longer than 3 periods since its join: down. */
    k = sk_liveness_check(&d, store, 1000 + 3 * P + 1, P, &ch);
    assert_int_equal(k, 1);
    assert_int_equal(ch[0].state, SK_NODE_DOWN);
    assert_non_null(strstr(ch[0].message, "since it joined 3001 ms ago"));
    /* What the leader proposes for it. */
    commit(sk_liveness_txn(store, ch, k, 4242));
    const struct sk_node *cur = sk_store_get(store, SK_KIND_NODE, n->meta.id);
    assert_int_equal(cur->status.state, SK_NODE_DOWN);
    assert_string_equal(cur->status.message, ch[0].message);
    assert_int_equal(cur->status.state_changed_at, 4242);
    free(ch);
    /* Its first heartbeat in time: ready. */
    sk_liveness_heartbeat(&d, n->meta.id, 1000 + 500);
    k = sk_liveness_check(&d, store, 1000 + 600, P, &ch);
    assert_int_equal(k, 1);
    assert_int_equal(ch[0].state, SK_NODE_READY);
    free(ch);
    sk_liveness_free(&d);
    sk_object_free(SK_KIND_NODE, n);
}

static void liveness(void **state)
{
    struct sk_node *a = add_node("a1", SK_ROLE_WORKER, SK_NODE_UNKNOWN);
    struct sk_node *b = add_node("b1", SK_ROLE_WORKER, SK_NODE_READY);
    struct sk_node *c = add_node("c1", SK_ROLE_WORKER, SK_NODE_DISCONNECTED);
    struct sk_liveness d;
    sk_liveness_init(&d);
    const int64_t P = 1000, t0 = 50000;
    c->status.state_changed_at = t0; /* its skiffd stopped then */
    update_node(c);
    sk_liveness_reset(&d, t0);

    /* Fresh leader: nobody is called down during the grace. */
    struct sk_node_change *ch;
    size_t n = sk_liveness_check(&d, store, t0 + 4 * P, P, &ch);
    assert_int_equal(n, 0);
    free(ch);

    /* a heartbeats: ready. */
    sk_liveness_heartbeat(&d, a->meta.id, t0 + 100);
    n = sk_liveness_check(&d, store, t0 + 200, P, &ch);
    assert_int_equal(n, 1);
    assert_int_equal(ch[0].state, SK_NODE_READY);
    assert_string_equal(ch[0].node_id, a->meta.id);
    free(ch);

    /* After the grace: b (never heard) goes down; c stays disconnected;
     * a is still within 3 periods. */
    a->status.state = SK_NODE_READY;
    update_node(a);
    sk_liveness_heartbeat(&d, a->meta.id, t0 + 4 * P);
    n = sk_liveness_check(&d, store, t0 + 6 * P, P, &ch);
    assert_int_equal(n, 1);
    struct sk_node_change *x = find(ch, n, b->meta.id);
    assert_non_null(x);
    assert_int_equal(x->state, SK_NODE_DOWN);
    assert_non_null(strstr(x->message, "since this leader took over"));
    free(ch);

    /* a misses 3 periods: down, and the message says how long. */
    n = sk_liveness_check(&d, store, t0 + 4 * P + 3 * P + 1, P, &ch);
    x = find(ch, n, a->meta.id);
    assert_non_null(x);
    assert_int_equal(x->state, SK_NODE_DOWN);
    assert_non_null(strstr(x->message, "no heartbeat for 3001 ms"));
    free(ch);

    /* c, stopped on purpose, has 15 periods to come back... */
    n = sk_liveness_check(&d, store, t0 + 15 * P, P, &ch);
    assert_null(find(ch, n, c->meta.id));
    free(ch);
    /* ...then it is down, and its tasks can move. */
    n = sk_liveness_check(&d, store, t0 + 15 * P + 1, P, &ch);
    x = find(ch, n, c->meta.id);
    assert_non_null(x);
    assert_int_equal(x->state, SK_NODE_DOWN);
    assert_non_null(strstr(x->message, "skiffd stopped 15001 ms ago"));
    free(ch);

    /* c comes back. */
    sk_liveness_heartbeat(&d, c->meta.id, t0 + 16 * P);
    n = sk_liveness_check(&d, store, t0 + 16 * P, P, &ch);
    x = find(ch, n, c->meta.id);
    assert_non_null(x);
    assert_int_equal(x->state, SK_NODE_READY);
    free(ch);
    assert_int_equal(sk_liveness_last_seen(&d, c->meta.id), t0 + 16 * P);
    sk_liveness_forget(&d, c->meta.id);
    assert_int_equal(sk_liveness_last_seen(&d, c->meta.id), 0);

    sk_liveness_free(&d);
    sk_object_free(SK_KIND_NODE, a);
    sk_object_free(SK_KIND_NODE, b);
    sk_object_free(SK_KIND_NODE, c);
}

struct collected {
    char text[4096];
    int lines;
};

static void sink(void *ctx, const char *line, size_t len)
{
    struct collected *c = ctx;
    strncat(c->text, line, len);
    c->lines++;
}

static void events_ring(void **state)
{
    struct sk_events *e = sk_events_new(3);
    struct collected live = {0};
    unsigned id = sk_events_subscribe(e, 0, NULL, sink, &live);
    struct sk_node *n = sk_object_new(SK_KIND_NODE);
    sk_id_new(n->meta.id);
    n->spec.name = sk_strdup("h1");
    for (uint64_t i = 1; i <= 5; i++) {
        struct sk_event ev = {.type = i == 1 ? SK_EV_CREATE : SK_EV_UPDATE,
                              .kind = SK_KIND_NODE,
                              .new_obj = n,
                              .index = i};
        sk_events_record(e, NULL, &ev, 1000 + (int64_t)i);
    }
    assert_int_equal(live.lines, 5);
    assert_non_null(strstr(live.text, "\"action\":\"create\""));
    assert_non_null(strstr(live.text, "\"name\":\"h1\""));
    assert_non_null(strstr(live.text, "\"state\":\"unknown\""));
    sk_events_unsubscribe(e, id);
    assert_int_equal(sk_events_subscribers(e), 0);

    /* Resume from index 3: 4 and 5 are replayed. */
    struct collected resumed = {0};
    id = sk_events_subscribe(e, 3, NULL, sink, &resumed);
    assert_int_equal(resumed.lines, 2);
    assert_non_null(strstr(resumed.text, "\"index\":4"));
    assert_null(strstr(resumed.text, "\"index\":3"));
    sk_events_unsubscribe(e, id);

    /* From index 1: 2 is gone from the ring of 3: a gap line first. */
    struct collected gap = {0};
    id = sk_events_subscribe(e, 1, NULL, sink, &gap);
    assert_int_equal(gap.lines, 4);
    assert_non_null(strstr(gap.text, "\"type\":\"gap\""));
    sk_events_unsubscribe(e, id);

    /* Secret values never appear. */
    struct sk_secret *sec = sk_object_new(SK_KIND_SECRET);
    sk_id_new(sec->meta.id);
    sec->spec.name = sk_strdup("db");
    sec->spec.data = sk_strdup("SUPERSECRET");
    struct collected s = {0};
    id = sk_events_subscribe(e, 0, NULL, sink, &s);
    struct sk_event ev = {.type = SK_EV_CREATE,
                          .kind = SK_KIND_SECRET,
                          .new_obj = sec,
                          .index = 9};
    sk_events_record(e, NULL, &ev, 1);
    assert_int_equal(s.lines, 1);
    assert_null(strstr(s.text, "SUPERSECRET"));
    sk_events_unsubscribe(e, id);
    sk_object_free(SK_KIND_SECRET, sec);
    sk_object_free(SK_KIND_NODE, n);
    sk_events_free(e);
}

/* The store's events, recorded as the manager does: from a watcher, with
 * the store after the change for the names. */
static struct sk_events *watched;

static void record_cb(const struct sk_event *ev, void *ctx)
{
    sk_events_record(watched, store, ev, 1000);
}

static struct sk_service *add_service(const char *name)
{
    struct sk_service *s = sk_object_new(SK_KIND_SERVICE);
    sk_id_new(s->meta.id);
    s->spec.name = sk_strdup(name);
    s->spec.replicas = 1;
    s->spec.task.container.image = sk_strdup("img");
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_SERVICE, s);
    commit(t);
    return s;
}

static struct sk_task *add_task(const struct sk_service *s, int64_t slot,
                                const struct sk_node *n)
{
    struct sk_task *t = sk_object_new(SK_KIND_TASK);
    sk_id_new(t->meta.id);
    memcpy(t->service_id, s->meta.id, SK_ID_SIZE);
    memcpy(t->node_id, n->meta.id, SK_ID_SIZE);
    t->slot = slot;
    t->desired_state = SK_TASK_RUNNING;
    t->status.state = SK_TASK_RUNNING;
    sk_schema_copy(&sk_task_spec_schema, &t->spec, &s->spec.task);
    struct sk_txn *x = sk_txn_new();
    sk_txn_create(x, SK_KIND_TASK, t);
    commit(x);
    return t;
}

static void remove_object(enum sk_kind kind, const char *id)
{
    struct sk_txn *t = sk_txn_new();
    sk_txn_delete(t, kind, id, 0);
    commit(t);
}

/* The lines a subscriber with this filter gets of what was recorded. */
static int filtered(const char *filter_json, struct collected *c)
{
    struct sk_events_filter *f;
    struct sk_err err;
    if (sk_events_filter_parse(filter_json, &f, &err) != SK_OK)
        fail_msg("filter %s: %s", filter_json, err.msg);
    memset(c, 0, sizeof *c);
    unsigned id = sk_events_subscribe(watched, 1, f, sink, c);
    sk_events_unsubscribe(watched, id);
    sk_events_filter_free(f);
    return c->lines;
}

/* Events name what they are about: a task by its name, its service's
 * and its node's, also after the service and the node were removed;
 * filters by type, event, service and node, docker's way. */
static void events_names_and_filters(void **state)
{
    watched = sk_events_new(64);
    idx = 1; /* replays (filtered) start after index 1 */
    unsigned wid = sk_store_watch(store, record_cb, NULL);
    struct sk_node *h1 = add_node("h1", SK_ROLE_WORKER, SK_NODE_READY);
    struct sk_service *web = add_service("web"), *api = add_service("api");
    struct sk_task *t3 = add_task(web, 3, h1);
    struct sk_task *a1 = add_task(api, 1, h1);
    struct collected c;

    assert_int_equal(filtered("{\"type\":[\"task\"]}", &c), 2);
    assert_non_null(strstr(c.text, "\"name\":\"web.3\""));
    assert_non_null(strstr(c.text, "\"service_name\":\"web\""));
    assert_non_null(strstr(c.text, "\"node_name\":\"h1\""));
    assert_non_null(strstr(c.text, "\"name\":\"api.1\""));

    /* Removed: the names stay with the events that follow. */
    remove_object(SK_KIND_SERVICE, web->meta.id);
    remove_object(SK_KIND_NODE, h1->meta.id);
    t3->status.state = SK_TASK_ORPHANED;
    struct sk_txn *x = sk_txn_new();
    sk_txn_update(x, SK_KIND_TASK, t3, 0);
    commit(x);
    remove_object(SK_KIND_TASK, t3->meta.id);
    assert_int_equal(
        filtered("{\"event\":[\"remove\"],\"type\":[\"task\"]}", &c), 1);
    assert_non_null(strstr(c.text, "\"name\":\"web.3\""));
    assert_non_null(strstr(c.text, "\"service_name\":\"web\""));
    assert_non_null(strstr(c.text, "\"node_name\":\"h1\""));
    assert_int_equal(
        filtered("{\"type\":[\"service\"],\"event\":[\"remove\"]}", &c), 1);
    assert_non_null(strstr(c.text, "\"name\":\"web\""));

    /* service=: the service's events and its tasks'; values of a key
     * or'ed, keys and'ed; by name or ID prefix. */
    assert_int_equal(filtered("{\"service\":[\"web\"]}", &c), 5);
    assert_int_equal(filtered("{\"service\":[\"web\",\"api\"]}", &c), 7);
    char f[128];
    snprintf(f, sizeof f, "{\"service\":[\"%.6s\"],\"type\":[\"task\"]}",
             api->meta.id);
    assert_int_equal(filtered(f, &c), 1);
    assert_non_null(strstr(c.text, "\"name\":\"api.1\""));
    /* node=: the node's events and the tasks on it. */
    assert_int_equal(filtered("{\"node\":[\"h1\"]}", &c), 2 + 4);
    assert_int_equal(filtered("{\"node\":[\"h1\"],\"type\":[\"node\"]}", &c),
                     2);
    assert_int_equal(filtered("{\"node\":[\"h9\"]}", &c), 0);

    /* Wrong filters are refused, naming what is wrong. */
    struct sk_events_filter *bad;
    struct sk_err err;
    assert_int_equal(sk_events_filter_parse("{\"colour\":[\"x\"]}", &bad, &err),
                     SK_EINVAL);
    assert_non_null(strstr(err.msg, "filter colour: no such key"));
    assert_int_equal(
        sk_events_filter_parse("{\"type\":[\"tasks\"]}", &bad, &err),
        SK_EINVAL);
    assert_non_null(strstr(err.msg, "type=tasks: no such type"));
    assert_int_equal(
        sk_events_filter_parse("{\"event\":\"create\"}", &bad, &err),
        SK_EINVAL);
    assert_int_equal(sk_events_filter_parse("type=task", &bad, &err),
                     SK_EINVAL);
    assert_int_equal(sk_events_filter_parse("", &bad, &err), SK_OK);
    assert_null(bad);

    sk_store_unwatch(store, wid);
    sk_events_free(watched);
    sk_object_free(SK_KIND_NODE, h1);
    sk_object_free(SK_KIND_SERVICE, web);
    sk_object_free(SK_KIND_SERVICE, api);
    sk_object_free(SK_KIND_TASK, t3);
    sk_object_free(SK_KIND_TASK, a1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(membership_decisions, setup, teardown),
        cmocka_unit_test_setup_teardown(liveness, setup, teardown),
        cmocka_unit_test_setup_teardown(liveness_after_join, setup, teardown),
        cmocka_unit_test_setup_teardown(events_ring, setup, teardown),
        cmocka_unit_test_setup_teardown(events_names_and_filters, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
