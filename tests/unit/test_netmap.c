/* A node's view of its overlay networks (skiff/netmap.h) from a store:
 * only its networks, the other nodes' addresses behind their data-path
 * addresses, the services with their VIPs and only the tasks that may take
 * traffic, sorted so that equal state encodes equally. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "skiff/mem.h"
#include "skiff/netmap.h"
#include "skiff/txn.h"

static struct sk_store *store;
static uint64_t idx;

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

static void put(enum sk_kind kind, void *obj)
{
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, kind, obj);
    commit(t);
    sk_object_free(kind, obj);
}

static void attach(struct sk_net_attachment **att, size_t *n, const char *net,
                   const char *addr)
{
    *att = sk_realloc(*att, (*n + 1) * sizeof **att);
    struct sk_net_attachment *a = &(*att)[(*n)++];
    memset(a, 0, sizeof *a);
    memcpy(a->network_id, net, SK_ID_SIZE);
    sk_strs_push(&a->addresses, &a->n_addresses, addr);
}

static char front[SK_ID_SIZE], back[SK_ID_SIZE], other[SK_ID_SIZE];
static char h1[SK_ID_SIZE], h2[SK_ID_SIZE], h3[SK_ID_SIZE];
static char api[SK_ID_SIZE];

static void network(char *id, const char *name, int64_t vni, const char *subnet,
                    const char *gw)
{
    struct sk_network *n = sk_object_new(SK_KIND_NETWORK);
    sk_id_new(n->meta.id);
    memcpy(id, n->meta.id, SK_ID_SIZE);
    sk_schema_defaults(&sk_network_spec_schema, &n->spec);
    n->spec.name = sk_strdup(name);
    n->vni = vni;
    n->subnet = sk_strdup(subnet);
    n->gateway = sk_strdup(gw);
    put(SK_KIND_NETWORK, n);
}

static void node(char *id, const char *name, const char *data, const char *net,
                 const char *addr)
{
    struct sk_node *n = sk_object_new(SK_KIND_NODE);
    sk_id_new(n->meta.id);
    memcpy(id, n->meta.id, SK_ID_SIZE);
    n->spec.name = sk_strdup(name);
    n->description.data_addr = sk_strdup(data);
    if (net)
        attach(&n->networks, &n->n_networks, net, addr);
    put(SK_KIND_NODE, n);
}

static void task(const char *svc, const char *node_id, int state, int desired,
                 bool healthy, const char *net, const char *addr)
{
    struct sk_task *t = sk_object_new(SK_KIND_TASK);
    sk_id_new(t->meta.id);
    memcpy(t->service_id, svc, SK_ID_SIZE);
    memcpy(t->node_id, node_id, SK_ID_SIZE);
    t->spec.container.image = sk_strdup("bb");
    t->status.state = state;
    t->status.healthy = healthy;
    t->desired_state = desired;
    attach(&t->networks, &t->n_networks, net, addr);
    put(SK_KIND_TASK, t);
}

static int setup(void **state)
{
    store = sk_store_new();
    idx = 0;
    network(front, "front", 4096, "10.0.0.0/24", "10.0.0.1");
    network(back, "back", 4097, "10.0.1.0/24", "10.0.1.1");
    network(other, "other", 4098, "10.0.2.0/24", "10.0.2.1");
    node(h1, "h1", "10.78.0.11", back, "10.0.1.250/24");
    node(h2, "h2", "10.78.0.12", back, "10.0.1.251/24");
    node(h3, "h3", "10.78.0.13", NULL, NULL);
    struct sk_service *s = sk_object_new(SK_KIND_SERVICE);
    sk_id_new(s->meta.id);
    memcpy(api, s->meta.id, SK_ID_SIZE);
    sk_schema_defaults(&sk_service_spec_schema, &s->spec);
    s->spec.name = sk_strdup("api");
    s->spec.task.container.image = sk_strdup("bb");
    s->spec.task.networks = sk_calloc(1, sizeof *s->spec.task.networks);
    s->spec.task.n_networks = 1;
    s->spec.task.networks[0].target = sk_strdup("back");
    memcpy(s->spec.task.networks[0].id, back, SK_ID_SIZE);
    sk_strs_push(&s->spec.task.networks[0].aliases,
                 &s->spec.task.networks[0].n_aliases, "db");
    s->vips = sk_calloc(1, sizeof *s->vips);
    s->n_vips = 1;
    memcpy(s->vips[0].network_id, back, SK_ID_SIZE);
    s->vips[0].addr = sk_strdup("10.0.1.2/24");
    put(SK_KIND_SERVICE, s);
    /* h1: one ready task on back. h2: a ready one, one stopping (desired
     * shutdown, still running), one unhealthy, one failed. h3: one on
     * other, which h1 does not see. */
    task(api, h1, SK_TASK_RUNNING, SK_TASK_RUNNING, true, back, "10.0.1.3/24");
    task(api, h2, SK_TASK_RUNNING, SK_TASK_RUNNING, true, back, "10.0.1.5/24");
    task(api, h2, SK_TASK_RUNNING, SK_TASK_SHUTDOWN, true, back, "10.0.1.4/24");
    task(api, h2, SK_TASK_RUNNING, SK_TASK_RUNNING, false, back, "10.0.1.6/24");
    task(api, h2, SK_TASK_FAILED, SK_TASK_SHUTDOWN, false, back, "10.0.1.7/24");
    task(api, h3, SK_TASK_RUNNING, SK_TASK_RUNNING, true, other, "10.0.2.3/24");
    return 0;
}

static int teardown(void **state)
{
    sk_store_free(store);
    return 0;
}

static void view_of_h1(void **state)
{
    struct sk_net_info *v;
    size_t n = sk_net_map(store, h1, &v);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].id, back);
    assert_string_equal(v[0].name, "back");
    assert_int_equal(v[0].vni, 4097);
    assert_string_equal(v[0].subnet, "10.0.1.0/24");
    assert_string_equal(v[0].gateway, "10.0.1.1");
    assert_string_equal(v[0].node_addr, "10.0.1.250");
    /* h2 is the one peer: its own address and its three unfinished
     * tasks' (the failed one holds nothing), sorted. */
    assert_int_equal(v[0].n_peers, 1);
    assert_string_equal(v[0].peers[0].node_id, h2);
    assert_string_equal(v[0].peers[0].vtep, "10.78.0.12");
    const char *want[] = {"10.0.1.251", "10.0.1.4", "10.0.1.5", "10.0.1.6"};
    assert_int_equal(v[0].peers[0].n_addrs, 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(v[0].peers[0].addrs[i], want[i]);
    /* The service: its VIP, alias, and only the tasks that take traffic. */
    assert_int_equal(v[0].n_services, 1);
    const struct sk_net_service *s = &v[0].services[0];
    assert_string_equal(s->name, "api");
    assert_string_equal(s->vip, "10.0.1.2");
    assert_int_equal(s->n_aliases, 1);
    assert_string_equal(s->aliases[0], "db");
    assert_int_equal(s->n_ready, 2);
    assert_string_equal(s->ready[0], "10.0.1.3");
    assert_string_equal(s->ready[1], "10.0.1.5");

    /* The same state encodes the same way. */
    struct sk_session_msg m = {
        .type = SK_SESSION_NETWORKS, .networks = v, .n_networks = n};
    char *a = sk_wire_encode(&sk_session_msg_schema, &m, true, NULL);
    struct sk_net_info *w;
    size_t n2 = sk_net_map(store, h1, &w);
    m.networks = w;
    m.n_networks = n2;
    char *b = sk_wire_encode(&sk_session_msg_schema, &m, true, NULL);
    assert_string_equal(a, b);
    /* And it decodes as the agent will. */
    struct sk_session_msg back_msg;
    struct sk_err err;
    assert_int_equal(
        sk_wire_decode(&sk_session_msg_schema, a, strlen(a), &back_msg, &err),
        SK_OK);
    assert_int_equal(back_msg.n_networks, 1);
    sk_schema_free(&sk_session_msg_schema, &back_msg);
    free(a);
    free(b);
    sk_net_map_free(v, n);
    sk_net_map_free(w, n2);
}

static void a_node_without_networked_tasks_sees_nothing(void **state)
{
    char h4[SK_ID_SIZE];
    node(h4, "h4", "10.78.0.14", NULL, NULL);
    struct sk_net_info *v;
    assert_int_equal(sk_net_map(store, h4, &v), 0);
    sk_net_map_free(v, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(view_of_h1, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_node_without_networked_tasks_sees_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
