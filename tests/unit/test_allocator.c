/* The allocator (skiff/allocator.h) over a real store: networks from the
 * default pool and from specs, bad subnets and gateways refused, task
 * addresses, VIPs and node addresses unique, freed with finished tasks and
 * not reused at once, exhaustion named, and a new allocator (a new leader)
 * rebuilt from the store alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "skiff/allocator.h"
#include "skiff/mem.h"
#include "skiff/txn.h"

static struct sk_store *store;
static uint64_t idx;
static struct sk_cluster_spec cluster;

static int setup(void **state)
{
    store = sk_store_new();
    idx = 0;
    memset(&cluster, 0, sizeof cluster);
    sk_schema_defaults(&sk_cluster_spec_schema, &cluster);
    return 0;
}

static int teardown(void **state)
{
    sk_schema_free(&sk_cluster_spec_schema, &cluster);
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

/* Allocates and stores a network; returns its ID (static buffer per call
 * site is the caller's). */
static enum sk_rc add_network(struct sk_allocator *a, const char *name,
                              const char *subnet, const char *gateway,
                              char *out_id, struct sk_err *err)
{
    struct sk_network *n = sk_object_new(SK_KIND_NETWORK);
    sk_id_new(n->meta.id);
    sk_schema_defaults(&sk_network_spec_schema, &n->spec);
    n->spec.name = sk_strdup(name);
    n->spec.subnet = subnet ? sk_strdup(subnet) : NULL;
    n->spec.gateway = gateway ? sk_strdup(gateway) : NULL;
    enum sk_rc rc = sk_allocate_network(a, &cluster, n, err);
    if (rc == SK_OK) {
        struct sk_txn *t = sk_txn_new();
        sk_txn_create(t, SK_KIND_NETWORK, n);
        commit(t);
        if (out_id)
            memcpy(out_id, n->meta.id, SK_ID_SIZE);
    }
    sk_object_free(SK_KIND_NETWORK, n);
    return rc;
}

static const struct sk_network *net(const char *id)
{
    return sk_store_get(store, SK_KIND_NETWORK, id);
}

static struct sk_task *task_on(const char *net_id)
{
    struct sk_task *t = sk_object_new(SK_KIND_TASK);
    sk_id_new(t->meta.id);
    t->status.state = SK_TASK_PENDING;
    t->spec.container.image = sk_strdup("bb");
    t->spec.networks = sk_calloc(1, sizeof *t->spec.networks);
    t->spec.n_networks = 1;
    t->spec.networks[0].target = sk_strdup("n");
    memcpy(t->spec.networks[0].id, net_id, SK_ID_SIZE);
    return t;
}

static void store_task(struct sk_task *t)
{
    struct sk_txn *tx = sk_txn_new();
    sk_txn_create(tx, SK_KIND_TASK, t);
    commit(tx);
}

static void networks_from_pool_and_spec(void **state)
{
    struct sk_allocator *a = sk_allocator_new();
    sk_allocator_sync(a, store);
    char n1[SK_ID_SIZE], n2[SK_ID_SIZE], n3[SK_ID_SIZE];
    struct sk_err err;
    assert_int_equal(add_network(a, "one", NULL, NULL, n1, &err), SK_OK);
    assert_string_equal(net(n1)->subnet, "10.0.0.0/24");
    assert_string_equal(net(n1)->gateway, "10.0.0.1");
    assert_int_equal(net(n1)->vni, SK_VNI_MIN);
    /* A spec subnet inside the pool: the pool skips it. */
    assert_int_equal(
        add_network(a, "two", "10.0.1.0/24", "10.0.1.254", n2, &err), SK_OK);
    assert_string_equal(net(n2)->gateway, "10.0.1.254");
    assert_int_equal(add_network(a, "three", NULL, NULL, n3, &err), SK_OK);
    assert_string_equal(net(n3)->subnet, "10.0.2.0/24");
    assert_int_equal(net(n3)->vni, SK_VNI_MIN + 2);

    /* A new allocator (a new leader) sees the same from the store. */
    struct sk_allocator *b = sk_allocator_new();
    sk_allocator_sync(b, store);
    char n4[SK_ID_SIZE];
    assert_int_equal(add_network(b, "four", NULL, NULL, n4, &err), SK_OK);
    assert_string_equal(net(n4)->subnet, "10.0.3.0/24");
    assert_int_equal(net(n4)->vni, SK_VNI_MIN + 3);
    sk_allocator_free(a);
    sk_allocator_free(b);
}

static void expect_refused(struct sk_allocator *a, const char *subnet,
                           const char *gateway, const char *want)
{
    struct sk_err err;
    assert_int_equal(add_network(a, "bad", subnet, gateway, NULL, &err),
                     SK_EINVAL);
    if (!strstr(err.msg, want) || !strstr(err.msg, "network \"bad\""))
        fail_msg("subnet %s gateway %s: want \"%s\" in \"%s\"", subnet,
                 gateway ? gateway : "-", want, err.msg);
}

static void bad_subnets_and_gateways(void **state)
{
    struct sk_allocator *a = sk_allocator_new();
    sk_allocator_sync(a, store);
    char id[SK_ID_SIZE];
    struct sk_err err;
    assert_int_equal(add_network(a, "a", "10.9.0.0/16", NULL, id, &err), SK_OK);
    expect_refused(a, "10.9.3.0/24", NULL, "overlaps");
    expect_refused(a, "10.0.0.0/8", NULL, "prefix length");
    expect_refused(a, "10.8.0.1/24", NULL, "not an IPv4 subnet");
    expect_refused(a, "10.8.0.0", NULL, "not an IPv4 subnet");
    expect_refused(a, "banana", NULL, "not an IPv4 subnet");
    expect_refused(a, "10.8.0.0/24", "10.8.1.1", "not a host address");
    expect_refused(a, "10.8.0.0/24", "10.8.0.255", "not a host address");
    expect_refused(a, "10.8.0.0/24", "10.8.0.0", "not a host address");
    expect_refused(a, "10.8.0.0/24", "nope", "not an IPv4 address");
    /* Nothing was stored or held: the same subnet is still free. */
    assert_int_equal(add_network(a, "b", "10.8.0.0/24", NULL, id, &err), SK_OK);
    assert_int_equal(sk_store_count(store, SK_KIND_NETWORK), 2);
    sk_allocator_free(a);
}

static void pool_runs_out(void **state)
{
    free(cluster.default_addr_pool);
    cluster.default_addr_pool = sk_strdup("10.20.0.0/23");
    cluster.default_addr_pool_mask_len = 24;
    struct sk_allocator *a = sk_allocator_new();
    sk_allocator_sync(a, store);
    char id[SK_ID_SIZE];
    struct sk_err err;
    assert_int_equal(add_network(a, "p1", NULL, NULL, id, &err), SK_OK);
    assert_int_equal(add_network(a, "p2", NULL, NULL, id, &err), SK_OK);
    assert_int_equal(add_network(a, "p3", NULL, NULL, id, &err), SK_ENOSPC);
    assert_non_null(strstr(err.msg, "10.20.0.0/23"));
    sk_allocator_free(a);
}

static void addresses_unique_freed_late_and_exhaustion_named(void **state)
{
    struct sk_allocator *a = sk_allocator_new();
    sk_allocator_sync(a, store);
    char id[SK_ID_SIZE];
    struct sk_err err;
    /* A /29: 8 addresses, 6 hosts, one the gateway: 5 for the rest, and
     * tasks not yet on a node leave the last one for a node. */
    assert_int_equal(add_network(a, "back", "10.5.0.0/29", NULL, id, &err),
                     SK_OK);
    sk_allocator_sync(a, store);
    struct sk_task *t[5];
    for (int i = 0; i < 4; i++) {
        t[i] = task_on(id);
        assert_int_equal(sk_allocate_task(a, t[i], &err), SK_OK);
        assert_int_equal(t[i]->n_networks, 1);
        assert_int_equal(t[i]->networks[0].n_addresses, 1);
        char want[24];
        snprintf(want, sizeof want, "10.5.0.%d/29", i + 2);
        assert_string_equal(t[i]->networks[0].addresses[0], want);
        /* Allocating again keeps the address it has. */
        assert_int_equal(sk_allocate_task(a, t[i], &err), SK_OK);
        assert_string_equal(t[i]->networks[0].addresses[0], want);
        store_task(t[i]);
    }
    t[4] = task_on(id);
    assert_int_equal(sk_allocate_task(a, t[4], &err), SK_ENOSPC);
    assert_string_equal(err.msg,
                        "network \"back\": no free address in 10.5.0.0/29");
    assert_int_equal(t[4]->n_networks, 0);

    /* The second task finishes: its address is free, and it is the one
     * the next task gets (the only one); a new leader agrees. */
    t[1]->status.state = SK_TASK_FAILED;
    struct sk_txn *tx = sk_txn_new();
    sk_txn_update(tx, SK_KIND_TASK, t[1], 0);
    commit(tx);
    struct sk_allocator *b = sk_allocator_new();
    sk_allocator_sync(b, store);
    assert_int_equal(sk_allocate_task(b, t[4], &err), SK_OK);
    assert_string_equal(t[4]->networks[0].addresses[0], "10.5.0.3/29");
    sk_allocator_free(b);
    for (int i = 0; i < 5; i++)
        sk_object_free(SK_KIND_TASK, t[i]);
    sk_allocator_free(a);
}

static void freed_addresses_are_not_reused_at_once(void **state)
{
    struct sk_allocator *a = sk_allocator_new();
    sk_allocator_sync(a, store);
    char id[SK_ID_SIZE];
    struct sk_err err;
    assert_int_equal(add_network(a, "back", "10.6.0.0/24", NULL, id, &err),
                     SK_OK);
    sk_allocator_sync(a, store);
    struct sk_task *t1 = task_on(id), *t2 = task_on(id);
    assert_int_equal(sk_allocate_task(a, t1, &err), SK_OK);
    assert_string_equal(t1->networks[0].addresses[0], "10.6.0.2/24");
    /* t1 never stored (gone): a sync frees .2, but the cursor moves on. */
    sk_allocator_sync(a, store);
    assert_int_equal(sk_allocate_task(a, t2, &err), SK_OK);
    assert_string_equal(t2->networks[0].addresses[0], "10.6.0.3/24");
    sk_object_free(SK_KIND_TASK, t1);
    sk_object_free(SK_KIND_TASK, t2);
    sk_allocator_free(a);
}

static void vips_and_node_addresses(void **state)
{
    struct sk_allocator *a = sk_allocator_new();
    sk_allocator_sync(a, store);
    char n1[SK_ID_SIZE], n2[SK_ID_SIZE];
    struct sk_err err;
    assert_int_equal(add_network(a, "front", NULL, NULL, n1, &err), SK_OK);
    assert_int_equal(add_network(a, "back", NULL, NULL, n2, &err), SK_OK);
    sk_allocator_sync(a, store);

    struct sk_service *s = sk_object_new(SK_KIND_SERVICE);
    sk_id_new(s->meta.id);
    sk_schema_defaults(&sk_service_spec_schema, &s->spec);
    s->spec.name = sk_strdup("api");
    s->spec.task.container.image = sk_strdup("bb");
    s->spec.task.networks = sk_calloc(2, sizeof *s->spec.task.networks);
    s->spec.task.n_networks = 2;
    s->spec.task.networks[0].target = sk_strdup("front");
    memcpy(s->spec.task.networks[0].id, n1, SK_ID_SIZE);
    s->spec.task.networks[1].target = sk_strdup("back");
    memcpy(s->spec.task.networks[1].id, n2, SK_ID_SIZE);
    assert_int_equal(sk_allocate_vips(a, s, &err), SK_OK);
    assert_int_equal(s->n_vips, 2);
    assert_string_equal(s->vips[0].addr, "10.0.0.2/24");
    assert_string_equal(s->vips[1].addr, "10.0.1.2/24");
    struct sk_txn *tx = sk_txn_new();
    sk_txn_create(tx, SK_KIND_SERVICE, s);
    commit(tx);

    /* Leaving a network drops its VIP; dnsrr has none. */
    s->spec.task.n_networks = 1;
    assert_int_equal(sk_allocate_vips(a, s, &err), SK_OK);
    assert_int_equal(s->n_vips, 1);
    assert_string_equal(s->vips[0].network_id, n1);
    s->spec.task.n_networks = 2;
    s->spec.endpoint.mode = SK_ENDPOINT_DNSRR;
    assert_int_equal(sk_allocate_vips(a, s, &err), SK_OK);
    assert_int_equal(s->n_vips, 0);

    /* A node's own address; a second call keeps it. A new leader does not
     * hand the stored VIP or node address to a task. */
    struct sk_node *node = sk_object_new(SK_KIND_NODE);
    sk_id_new(node->meta.id);
    node->spec.name = sk_strdup("h1");
    assert_int_equal(sk_allocate_node_address(a, node, n1, &err), SK_OK);
    assert_int_equal(sk_allocate_node_address(a, node, n1, &err), SK_OK);
    assert_int_equal(node->n_networks, 1);
    assert_string_equal(node->networks[0].addresses[0], "10.0.0.3/24");
    tx = sk_txn_new();
    sk_txn_create(tx, SK_KIND_NODE, node);
    commit(tx);
    struct sk_allocator *b = sk_allocator_new();
    sk_allocator_sync(b, store);
    struct sk_task *t = task_on(n1);
    assert_int_equal(sk_allocate_task(b, t, &err), SK_OK);
    assert_string_equal(t->networks[0].addresses[0], "10.0.0.4/24");
    /* An unknown network is named. */
    struct sk_task *u = task_on("zzzzzzzzzzzzzzzzzzzzzzzzzq");
    assert_int_equal(sk_allocate_task(b, u, &err), SK_ENOTFOUND);
    assert_int_equal(u->n_networks, 0);
    sk_object_free(SK_KIND_TASK, t);
    sk_object_free(SK_KIND_TASK, u);
    sk_object_free(SK_KIND_NODE, node);
    sk_object_free(SK_KIND_SERVICE, s);
    sk_allocator_free(a);
    sk_allocator_free(b);
}

static struct sk_node *node_named(const char *name)
{
    struct sk_node *n = sk_object_new(SK_KIND_NODE);
    sk_id_new(n->meta.id);
    n->spec.name = sk_strdup(name);
    return n;
}

/* VIPs and nodes' own addresses are owed before tasks take any: a /29
 * (5 free) with a vip-mode service and tasks on two nodes. */
static void vips_and_nodes_come_before_tasks(void **state)
{
    struct sk_allocator *a = sk_allocator_new();
    sk_allocator_sync(a, store);
    char id[SK_ID_SIZE];
    struct sk_err err;
    assert_int_equal(add_network(a, "back", "10.7.0.0/29", NULL, id, &err),
                     SK_OK);
    struct sk_service *s = sk_object_new(SK_KIND_SERVICE);
    sk_id_new(s->meta.id);
    sk_schema_defaults(&sk_service_spec_schema, &s->spec);
    s->spec.name = sk_strdup("api");
    s->spec.task.container.image = sk_strdup("bb");
    s->spec.task.networks = sk_calloc(1, sizeof *s->spec.task.networks);
    s->spec.task.n_networks = 1;
    s->spec.task.networks[0].target = sk_strdup("back");
    memcpy(s->spec.task.networks[0].id, id, SK_ID_SIZE);
    struct sk_txn *tx = sk_txn_new();
    sk_txn_create(tx, SK_KIND_SERVICE, s);
    commit(tx);
    struct sk_node *h1 = node_named("h1"), *h2 = node_named("h2");
    tx = sk_txn_new();
    sk_txn_create(tx, SK_KIND_NODE, h1);
    sk_txn_create(tx, SK_KIND_NODE, h2);
    commit(tx);

    /* Owed: the VIP (1); kept for a first node (1): 3 for tasks. */
    sk_allocator_sync(a, store);
    struct sk_task *t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = task_on(id);
        assert_int_equal(sk_allocate_task(a, t[i], &err),
                         i < 3 ? SK_OK : SK_ENOSPC);
    }
    assert_true(sk_allocator_node_fits(a, h1->meta.id, id, &err));
    /* Two tasks go to h1: h1 is owed its address, h2 cannot have one. */
    memcpy(t[0]->node_id, h1->meta.id, SK_ID_SIZE);
    memcpy(t[1]->node_id, h1->meta.id, SK_ID_SIZE);
    memcpy(t[2]->node_id, h1->meta.id, SK_ID_SIZE);
    for (int i = 0; i < 3; i++)
        store_task(t[i]);
    sk_allocator_sync(a, store);
    assert_true(sk_allocator_node_fits(a, h1->meta.id, id, &err));
    assert_false(sk_allocator_node_fits(a, h2->meta.id, id, &err));
    assert_string_equal(err.msg, "network \"back\": no free address in "
                                 "10.7.0.0/29 for the node's own address");
    /* The debts are paid in any order; then nothing is left. */
    assert_int_equal(sk_allocate_node_address(a, h1, id, &err), SK_OK);
    assert_int_equal(sk_allocate_vips(a, s, &err), SK_OK);
    assert_int_equal(s->n_vips, 1);
    assert_int_equal(sk_allocate_node_address(a, h2, id, &err), SK_ENOSPC);
    assert_string_equal(err.msg, "network \"back\": no free address in "
                                 "10.7.0.0/29 for node h2's own address");
    /* Unique, all five. */
    const char *got[5] = {t[0]->networks[0].addresses[0],
                          t[1]->networks[0].addresses[0],
                          t[2]->networks[0].addresses[0],
                          h1->networks[0].addresses[0], s->vips[0].addr};
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < i; j++)
            assert_string_not_equal(got[i], got[j]);

    /* A task on a node that must join needs room for the node too. */
    tx = sk_txn_new();
    sk_txn_update(tx, SK_KIND_SERVICE, s, 0);
    sk_txn_update(tx, SK_KIND_NODE, h1, 0);
    commit(tx);
    t[2]->status.state = SK_TASK_COMPLETE; /* one free address */
    tx = sk_txn_new();
    sk_txn_update(tx, SK_KIND_TASK, t[2], 0);
    commit(tx);
    sk_allocator_sync(a, store);
    memcpy(t[3]->node_id, h2->meta.id, SK_ID_SIZE);
    assert_int_equal(sk_allocate_task(a, t[3], &err), SK_ENOSPC);
    assert_true(sk_allocator_node_fits(a, h2->meta.id, id, &err));
    memcpy(t[3]->node_id, h1->meta.id, SK_ID_SIZE);
    assert_int_equal(sk_allocate_task(a, t[3], &err), SK_OK);
    for (int i = 0; i < 4; i++)
        sk_object_free(SK_KIND_TASK, t[i]);
    sk_object_free(SK_KIND_NODE, h1);
    sk_object_free(SK_KIND_NODE, h2);
    sk_object_free(SK_KIND_SERVICE, s);
    sk_allocator_free(a);
}

static enum sk_rc apply(struct sk_txn *t, struct sk_err *err)
{
    size_t len;
    char *cmd = sk_txn_encode(t, 1000, &len);
    enum sk_rc rc = sk_store_apply(store, ++idx, cmd, len, err);
    free(cmd);
    sk_txn_free(t);
    return rc;
}

static struct sk_network *raw_network(const char *name, int64_t vni,
                                      const char *subnet)
{
    struct sk_network *n = sk_object_new(SK_KIND_NETWORK);
    sk_id_new(n->meta.id);
    sk_schema_defaults(&sk_network_spec_schema, &n->spec);
    n->spec.name = sk_strdup(name);
    n->vni = vni;
    n->subnet = sk_strdup(subnet);
    return n;
}

/* Two leaders' worth of proposals racing: the store keeps VNIs and
 * subnets unique whatever the proposers computed. */
static void store_refuses_clashing_networks(void **state)
{
    struct sk_network *a = raw_network("a", 5000, "10.1.0.0/24");
    struct sk_network *b = raw_network("b", 5000, "10.2.0.0/24");
    struct sk_network *c = raw_network("c", 5001, "10.1.0.128/25");
    struct sk_network *d = raw_network("d", 5002, "10.3.0.0/24");
    struct sk_err err;
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NETWORK, a);
    assert_int_equal(apply(t, &err), SK_OK);
    t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NETWORK, b);
    assert_int_equal(apply(t, &err), SK_ECONFLICT);
    assert_non_null(strstr(err.msg, "network \"a\""));
    t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NETWORK, c);
    assert_int_equal(apply(t, &err), SK_ECONFLICT);
    /* Within one command, and the whole command is refused. */
    struct sk_network *e = raw_network("e", 5002, "10.4.0.0/24");
    t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NETWORK, d);
    sk_txn_create(t, SK_KIND_NETWORK, e);
    assert_int_equal(apply(t, &err), SK_ECONFLICT);
    assert_int_equal(sk_store_count(store, SK_KIND_NETWORK), 1);
    /* Once a is deleted in the same command, c may take its subnet. */
    t = sk_txn_new();
    sk_txn_delete(t, SK_KIND_NETWORK, a->meta.id, 0);
    sk_txn_create(t, SK_KIND_NETWORK, c);
    assert_int_equal(apply(t, &err), SK_OK);
    /* An update of a network does not clash with itself. */
    t = sk_txn_new();
    sk_txn_update(t, SK_KIND_NETWORK, c, 0);
    assert_int_equal(apply(t, &err), SK_OK);
    sk_object_free(SK_KIND_NETWORK, a);
    sk_object_free(SK_KIND_NETWORK, b);
    sk_object_free(SK_KIND_NETWORK, c);
    sk_object_free(SK_KIND_NETWORK, d);
    sk_object_free(SK_KIND_NETWORK, e);
}

/* A service names only networks that exist, and a network in use by a
 * service cannot go -- also when the two race in one command. */
static void store_keeps_network_references(void **state)
{
    struct sk_network *n = raw_network("back", 5000, "10.1.0.0/24");
    struct sk_err err;
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NETWORK, n);
    assert_int_equal(apply(t, &err), SK_OK);
    struct sk_service *s = sk_object_new(SK_KIND_SERVICE);
    sk_id_new(s->meta.id);
    sk_schema_defaults(&sk_service_spec_schema, &s->spec);
    s->spec.name = sk_strdup("api");
    s->spec.task.container.image = sk_strdup("bb");
    s->spec.task.networks = sk_calloc(1, sizeof *s->spec.task.networks);
    s->spec.task.n_networks = 1;
    s->spec.task.networks[0].target = sk_strdup("nope");
    sk_id_new(s->spec.task.networks[0].id);
    t = sk_txn_new();
    sk_txn_create(t, SK_KIND_SERVICE, s);
    assert_int_equal(apply(t, &err), SK_ENOTFOUND);
    assert_string_equal(err.msg,
                        "service \"api\": network \"nope\" does not exist");
    /* Deleted in the same command: refused too. */
    memcpy(s->spec.task.networks[0].id, n->meta.id, SK_ID_SIZE);
    t = sk_txn_new();
    sk_txn_delete(t, SK_KIND_NETWORK, n->meta.id, 0);
    sk_txn_create(t, SK_KIND_SERVICE, s);
    assert_int_equal(apply(t, &err), SK_ECONFLICT);
    t = sk_txn_new();
    sk_txn_create(t, SK_KIND_SERVICE, s);
    sk_txn_delete(t, SK_KIND_NETWORK, n->meta.id, 0);
    assert_int_equal(apply(t, &err), SK_ENOTFOUND);
    t = sk_txn_new();
    sk_txn_create(t, SK_KIND_SERVICE, s);
    assert_int_equal(apply(t, &err), SK_OK);
    t = sk_txn_new();
    sk_txn_delete(t, SK_KIND_NETWORK, n->meta.id, 0);
    assert_int_equal(apply(t, &err), SK_ECONFLICT);
    assert_string_equal(err.msg,
                        "network \"back\" is in use by service \"api\"");
    /* The service leaves it (or goes) in the same command: it may go. */
    s->spec.task.n_networks = 0;
    t = sk_txn_new();
    sk_txn_update(t, SK_KIND_SERVICE, s, 0);
    sk_txn_delete(t, SK_KIND_NETWORK, n->meta.id, 0);
    assert_int_equal(apply(t, &err), SK_OK);
    s->spec.task.n_networks = 1;
    sk_object_free(SK_KIND_SERVICE, s);
    sk_object_free(SK_KIND_NETWORK, n);
}

static void ipv4_helpers(void **state)
{
    uint32_t a;
    int p;
    assert_true(sk_cidr_parse("10.0.3.0/24", &a, &p));
    assert_int_equal(a, 0x0a000300);
    assert_int_equal(p, 24);
    assert_false(sk_cidr_parse("10.0.3.1/24", &a, &p));
    assert_false(sk_cidr_parse("10.0.3.0/33", &a, &p));
    assert_false(sk_cidr_parse("10.0.3.0/", &a, &p));
    assert_false(sk_cidr_parse("10.0.3.0/2x", &a, &p));
    assert_false(sk_cidr_parse("10.0.3/24", &a, &p));
    assert_true(sk_ipv4_parse("10.0.3.7/24", &a, &p));
    assert_int_equal(a, 0x0a000307);
    assert_int_equal(p, 24);
    char buf[24];
    sk_ipv4_format_cidr(0x0a000307, 24, buf, sizeof buf);
    assert_string_equal(buf, "10.0.3.7/24");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(networks_from_pool_and_spec, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(bad_subnets_and_gateways, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(pool_runs_out, setup, teardown),
        cmocka_unit_test_setup_teardown(
            addresses_unique_freed_late_and_exhaustion_named, setup, teardown),
        cmocka_unit_test_setup_teardown(freed_addresses_are_not_reused_at_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(vips_and_node_addresses, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(vips_and_nodes_come_before_tasks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(store_refuses_clashing_networks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(store_keeps_network_references, setup,
                                        teardown),
        cmocka_unit_test(ipv4_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
