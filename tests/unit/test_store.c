/* The object store: all-or-nothing commands, versions, conflicts, names,
 * watchers, task indices, lookups, snapshots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "skiff/mem.h"
#include "skiff/store.h"

static struct sk_store *store;
static uint64_t next_index;

static int setup(void **state)
{
    store = sk_store_new();
    next_index = 10;
    return 0;
}

static int teardown(void **state)
{
    sk_store_free(store);
    return 0;
}

/* Applies t at the next index; returns the result. */
static enum sk_rc commit(struct sk_txn *t, struct sk_err *err)
{
    size_t len;
    char *cmd = sk_txn_encode(t, 1000 + (int64_t)next_index, &len);
    enum sk_rc rc = sk_store_apply(store, next_index++, cmd, len, err);
    free(cmd);
    sk_txn_free(t);
    return rc;
}

static void commit_ok(struct sk_txn *t)
{
    struct sk_err err;
    if (commit(t, &err) != SK_OK)
        fail_msg("commit: %s", err.msg);
}

static struct sk_node *node_new(const char *name)
{
    struct sk_node *n = sk_object_new(SK_KIND_NODE);
    sk_id_new(n->meta.id);
    n->spec.name = sk_strdup(name);
    return n;
}

static struct sk_task *task_new(const char *service_id, const char *node_id,
                                int64_t slot)
{
    struct sk_task *t = sk_object_new(SK_KIND_TASK);
    sk_id_new(t->meta.id);
    snprintf(t->service_id, sizeof t->service_id, "%s", service_id);
    snprintf(t->node_id, sizeof t->node_id, "%s", node_id);
    t->slot = slot;
    t->spec.container.image = sk_strdup("img");
    return t;
}

static void create_update_delete(void **state)
{
    struct sk_node *n = node_new("h1");
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NODE, n);
    commit_ok(t);
    const struct sk_node *got = sk_store_get(store, SK_KIND_NODE, n->meta.id);
    assert_non_null(got);
    assert_int_equal(got->meta.version, 10);
    assert_int_equal(got->meta.created_at, 1010);
    assert_int_equal(got->meta.updated_at, 1010);
    assert_ptr_equal(sk_store_get_by_name(store, SK_KIND_NODE, "h1"), got);
    assert_int_equal(sk_store_index(store), 10);

    /* Update with the right version: version and updated_at move on,
     * created_at stays. */
    struct sk_node *u = sk_object_dup(SK_KIND_NODE, got);
    free(u->spec.name);
    u->spec.name = sk_strdup("h1-renamed");
    t = sk_txn_new();
    sk_txn_update(t, SK_KIND_NODE, u, 10);
    commit_ok(t);
    got = sk_store_get(store, SK_KIND_NODE, n->meta.id);
    assert_int_equal(got->meta.version, 11);
    assert_int_equal(got->meta.created_at, 1010);
    assert_int_equal(got->meta.updated_at, 1011);
    assert_null(sk_store_get_by_name(store, SK_KIND_NODE, "h1"));
    assert_ptr_equal(sk_store_get_by_name(store, SK_KIND_NODE, "h1-renamed"),
                     got);

    /* A stale version is a conflict that names the object and versions. */
    struct sk_err err;
    t = sk_txn_new();
    sk_txn_update(t, SK_KIND_NODE, u, 10);
    assert_int_equal(commit(&*t, &err), SK_ECONFLICT);
    assert_non_null(strstr(err.msg, "node \"h1-renamed\" was changed"));
    assert_non_null(strstr(err.msg, "version 11, expected 10"));

    t = sk_txn_new();
    sk_txn_delete(t, SK_KIND_NODE, n->meta.id, 11);
    commit_ok(t);
    assert_null(sk_store_get(store, SK_KIND_NODE, n->meta.id));
    assert_null(sk_store_get_by_name(store, SK_KIND_NODE, "h1-renamed"));
    assert_int_equal(sk_store_count(store, SK_KIND_NODE), 0);

    t = sk_txn_new();
    sk_txn_delete(t, SK_KIND_NODE, n->meta.id, 0);
    assert_int_equal(commit(t, &err), SK_ENOTFOUND);
    sk_object_free(SK_KIND_NODE, n);
    sk_object_free(SK_KIND_NODE, u);
}

static void all_or_nothing(void **state)
{
    struct sk_node *a = node_new("a"), *b = node_new("b");
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NODE, a);
    commit_ok(t);

    /* b is fine, but the update of a expects a wrong version: neither
     * happens. */
    struct sk_err err;
    t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NODE, b);
    sk_txn_update(t, SK_KIND_NODE, a, 999);
    assert_int_equal(commit(t, &err), SK_ECONFLICT);
    assert_null(sk_store_get(store, SK_KIND_NODE, b->meta.id));
    assert_int_equal(
        ((const struct sk_node *)sk_store_get(store, SK_KIND_NODE, a->meta.id))
            ->meta.version,
        10);
    /* The index still advanced: the entry was applied (as a rejection). */
    assert_int_equal(sk_store_index(store), 11);

    /* Same object twice in one change. */
    t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NODE, b);
    sk_txn_update(t, SK_KIND_NODE, b, 0);
    assert_int_equal(commit(t, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "appears twice"));

    /* Creating an existing ID. */
    t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NODE, a);
    assert_int_equal(commit(t, &err), SK_EEXIST);
    sk_object_free(SK_KIND_NODE, a);
    sk_object_free(SK_KIND_NODE, b);
}

static void names_are_unique(void **state)
{
    struct sk_node *a = node_new("x"), *b = node_new("y");
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NODE, a);
    sk_txn_create(t, SK_KIND_NODE, b);
    commit_ok(t);

    struct sk_err err;
    struct sk_node *c = node_new("x");
    t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NODE, c);
    assert_int_equal(commit(t, &err), SK_EEXIST);
    assert_non_null(strstr(err.msg, "node name \"x\" is already in use"));

    /* Two creates with one name in one change. */
    struct sk_node *d = node_new("z"), *e = node_new("z");
    t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NODE, d);
    sk_txn_create(t, SK_KIND_NODE, e);
    assert_int_equal(commit(t, &err), SK_EEXIST);

    /* Swapping two names in one change is fine. */
    free(a->spec.name);
    a->spec.name = sk_strdup("y");
    free(b->spec.name);
    b->spec.name = sk_strdup("x");
    t = sk_txn_new();
    sk_txn_update(t, SK_KIND_NODE, a, 0);
    sk_txn_update(t, SK_KIND_NODE, b, 0);
    commit_ok(t);
    const struct sk_node *x = sk_store_get_by_name(store, SK_KIND_NODE, "x");
    assert_string_equal(x->meta.id, b->meta.id);

    /* Deleting a holder frees its name in the same change. */
    t = sk_txn_new();
    sk_txn_delete(t, SK_KIND_NODE, b->meta.id, 0);
    sk_txn_create(t, SK_KIND_NODE, c);
    commit_ok(t);
    x = sk_store_get_by_name(store, SK_KIND_NODE, "x");
    assert_string_equal(x->meta.id, c->meta.id);

    /* Names are per kind: a service may be called like a node. */
    struct sk_service *svc = sk_object_new(SK_KIND_SERVICE);
    sk_id_new(svc->meta.id);
    svc->spec.name = sk_strdup("x");
    svc->spec.task.container.image = sk_strdup("img");
    t = sk_txn_new();
    sk_txn_create(t, SK_KIND_SERVICE, svc);
    commit_ok(t);
    sk_object_free(SK_KIND_SERVICE, svc);
    for (struct sk_node **p = (struct sk_node *[]){a, b, c, d, e, NULL}; *p;
         p++)
        sk_object_free(SK_KIND_NODE, *p);
}

struct seen {
    int creates, updates, deletes, resets;
    char last_old_name[32], last_new_name[32];
};

static void watch_cb(const struct sk_event *ev, void *ctx)
{
    struct seen *s = ctx;
    switch (ev->type) {
    case SK_EV_CREATE:
        s->creates++;
        break;
    case SK_EV_UPDATE:
        s->updates++;
        break;
    case SK_EV_DELETE:
        s->deletes++;
        break;
    case SK_EV_RESET:
        s->resets++;
        return;
    }
    if (ev->kind == SK_KIND_NODE) {
        const struct sk_node *o = ev->old_obj, *n = ev->new_obj;
        snprintf(s->last_old_name, sizeof s->last_old_name, "%s",
                 o ? o->spec.name : "-");
        snprintf(s->last_new_name, sizeof s->last_new_name, "%s",
                 n ? n->spec.name : "-");
    }
}

static void watchers_see_changes(void **state)
{
    struct seen seen = {0};
    unsigned id = sk_store_watch(store, watch_cb, &seen);
    struct sk_node *n = node_new("w1");
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NODE, n);
    commit_ok(t);
    assert_int_equal(seen.creates, 1);
    assert_string_equal(seen.last_old_name, "-");
    assert_string_equal(seen.last_new_name, "w1");

    free(n->spec.name);
    n->spec.name = sk_strdup("w2");
    t = sk_txn_new();
    sk_txn_update(t, SK_KIND_NODE, n, 0);
    commit_ok(t);
    assert_int_equal(seen.updates, 1);
    assert_string_equal(seen.last_old_name, "w1");
    assert_string_equal(seen.last_new_name, "w2");

    /* A rejected change is not seen. */
    struct sk_err err;
    t = sk_txn_new();
    sk_txn_update(t, SK_KIND_NODE, n, 1);
    assert_int_equal(commit(t, &err), SK_ECONFLICT);
    assert_int_equal(seen.updates, 1);

    t = sk_txn_new();
    sk_txn_delete(t, SK_KIND_NODE, n->meta.id, 0);
    commit_ok(t);
    assert_int_equal(seen.deletes, 1);
    assert_string_equal(seen.last_old_name, "w2");

    sk_store_unwatch(store, id);
    t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NODE, n);
    commit_ok(t);
    assert_int_equal(seen.creates, 1);
    sk_object_free(SK_KIND_NODE, n);
}

static bool count_cb(const void *obj, void *ctx)
{
    (*(int *)ctx)++;
    return true;
}

static int tasks_on(const char *node_id)
{
    int n = 0;
    sk_store_each_task_of_node(store, node_id, count_cb, &n);
    return n;
}

static int tasks_of(const char *service_id)
{
    int n = 0;
    sk_store_each_task_of_service(store, service_id, count_cb, &n);
    return n;
}

static void task_indices(void **state)
{
    char svc1[SK_ID_SIZE], svc2[SK_ID_SIZE], n1[SK_ID_SIZE], n2[SK_ID_SIZE];
    sk_id_new(svc1);
    sk_id_new(svc2);
    sk_id_new(n1);
    sk_id_new(n2);
    struct sk_task *tasks[10];
    struct sk_txn *t = sk_txn_new();
    for (int i = 0; i < 10; i++) {
        tasks[i] = task_new(i < 6 ? svc1 : svc2, i % 2 ? n1 : n2, i + 1);
        sk_txn_create(t, SK_KIND_TASK, tasks[i]);
    }
    commit_ok(t);
    assert_int_equal(tasks_of(svc1), 6);
    assert_int_equal(tasks_of(svc2), 4);
    assert_int_equal(sk_store_count_tasks_of_service(store, svc1), 6);
    assert_int_equal(tasks_on(n1), 5);
    assert_int_equal(tasks_on(n2), 5);

    /* Move one task to another node, delete two. */
    memcpy(tasks[0]->node_id, n1, SK_ID_SIZE);
    t = sk_txn_new();
    sk_txn_update(t, SK_KIND_TASK, tasks[0], 0);
    sk_txn_delete(t, SK_KIND_TASK, tasks[1]->meta.id, 0);
    sk_txn_delete(t, SK_KIND_TASK, tasks[9]->meta.id, 0);
    commit_ok(t);
    assert_int_equal(tasks_on(n1), 4); /* +task 0, -tasks 1 and 9 */
    assert_int_equal(tasks_on(n2), 4); /* -task 0 */
    assert_int_equal(tasks_of(svc1), 5);
    assert_int_equal(tasks_of(svc2), 3);

    /* A task cannot change service. */
    struct sk_err err;
    memcpy(tasks[2]->service_id, svc2, SK_ID_SIZE);
    t = sk_txn_new();
    sk_txn_update(t, SK_KIND_TASK, tasks[2], 0);
    assert_int_equal(commit(t, &err), SK_EINVAL);

    /* Unassigned tasks are in no node's list. */
    struct sk_task *pending = task_new(svc1, "", 7);
    t = sk_txn_new();
    sk_txn_create(t, SK_KIND_TASK, pending);
    commit_ok(t);
    assert_int_equal(tasks_of(svc1), 6);
    assert_int_equal(tasks_on(n1) + tasks_on(n2), 8);
    sk_object_free(SK_KIND_TASK, pending);
    for (int i = 0; i < 10; i++)
        sk_object_free(SK_KIND_TASK, tasks[i]);
}

static void lookups(void **state)
{
    struct sk_node *a = node_new("alpha"), *b = node_new("beta");
    /* Give them IDs with a shared prefix. */
    memcpy(a->meta.id, "abcd", 4);
    memcpy(b->meta.id, "abce", 4);
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NODE, a);
    sk_txn_create(t, SK_KIND_NODE, b);
    commit_ok(t);
    struct sk_err err;
    const struct sk_node *n =
        sk_store_lookup(store, SK_KIND_NODE, "beta", &err);
    assert_non_null(n);
    assert_string_equal(n->meta.id, b->meta.id);
    n = sk_store_lookup(store, SK_KIND_NODE, a->meta.id, &err);
    assert_non_null(n);
    n = sk_store_lookup(store, SK_KIND_NODE, "abcd", &err);
    assert_non_null(n);
    assert_string_equal(n->meta.id, a->meta.id);
    assert_null(sk_store_lookup(store, SK_KIND_NODE, "abc", &err));
    assert_int_equal(err.code, SK_ENOTFOUND); /* too short for a prefix */
    assert_null(sk_store_lookup(store, SK_KIND_NODE, "gamma", &err));
    assert_string_equal(err.msg, "no such node: \"gamma\"");
    /* Make the prefix ambiguous. */
    struct sk_node *c = node_new("gamma");
    memcpy(c->meta.id, "abcd", 4);
    t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NODE, c);
    commit_ok(t);
    assert_null(sk_store_lookup(store, SK_KIND_NODE, "abcd", &err));
    assert_non_null(strstr(err.msg, "ambiguous: 2 IDs"));

    size_t count;
    const void **all = sk_store_list(store, SK_KIND_NODE, &count);
    assert_int_equal(count, 3);
    free(all);
    sk_object_free(SK_KIND_NODE, a);
    sk_object_free(SK_KIND_NODE, b);
    sk_object_free(SK_KIND_NODE, c);
}

static void snapshot_restore(void **state)
{
    struct sk_cluster *cl = sk_object_new(SK_KIND_CLUSTER);
    sk_id_new(cl->meta.id);
    sk_schema_defaults(&sk_cluster_spec_schema, &cl->spec);
    cl->keys.ca_key_sealed = sk_strdup("sealed");
    struct sk_node *n = node_new("h1");
    sk_kv_set(&n->spec.labels, &n->spec.n_labels, "zone", "eu");
    char svc[SK_ID_SIZE];
    sk_id_new(svc);
    struct sk_task *task = task_new(svc, n->meta.id, 1);
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_CLUSTER, cl);
    sk_txn_create(t, SK_KIND_NODE, n);
    sk_txn_create(t, SK_KIND_TASK, task);
    commit_ok(t);

    /* A second cluster object is refused. */
    struct sk_err err;
    struct sk_cluster *cl2 = sk_object_dup(SK_KIND_CLUSTER, cl);
    sk_id_new(cl2->meta.id);
    t = sk_txn_new();
    sk_txn_create(t, SK_KIND_CLUSTER, cl2);
    assert_int_equal(commit(t, &err), SK_EEXIST);

    size_t len;
    char *snap = sk_store_snapshot(store, &len);
    struct sk_store *other = sk_store_new();
    struct seen seen = {0};
    sk_store_watch(other, watch_cb, &seen);
    assert_int_equal(sk_store_restore(other, snap, len, &err), SK_OK);
    assert_int_equal(seen.resets, 1);
    assert_int_equal(sk_store_index(other), sk_store_index(store));
    for (int k = 0; k < SK_KIND_COUNT; k++)
        assert_int_equal(sk_store_count(other, (enum sk_kind)k),
                         sk_store_count(store, (enum sk_kind)k));
    const struct sk_node *a = sk_store_get(store, SK_KIND_NODE, n->meta.id);
    const struct sk_node *b = sk_store_get(other, SK_KIND_NODE, n->meta.id);
    assert_true(sk_schema_equal(&sk_node_schema, a, b));
    assert_ptr_equal(sk_store_get_by_name(other, SK_KIND_NODE, "h1"), b);
    /* Secrets survive in the full view. */
    assert_string_equal(sk_store_cluster(other)->keys.ca_key_sealed, "sealed");
    /* Indices were rebuilt. */
    int count = 0;
    sk_store_each_task_of_node(other, n->meta.id, count_cb, &count);
    assert_int_equal(count, 1);

    /* A broken snapshot leaves the store as it was. */
    assert_int_equal(sk_store_restore(other, "{\"index\":5}", 11, &err),
                     SK_EINVAL);
    assert_int_equal(sk_store_restore(other, snap, len / 2, &err), SK_EINVAL);
    assert_int_equal(sk_store_count(other, SK_KIND_NODE), 1);
    const char *bad = "{\"index\":5,\"objects\":{\"node\":[{\"id\":\"x\"}]}}";
    assert_int_equal(sk_store_restore(other, bad, strlen(bad), &err),
                     SK_EINVAL);
    assert_non_null(strstr(err.msg, "snapshot"));
    assert_int_equal(sk_store_count(other, SK_KIND_NODE), 1);

    free(snap);
    sk_store_free(other);
    sk_object_free(SK_KIND_CLUSTER, cl);
    sk_object_free(SK_KIND_CLUSTER, cl2);
    sk_object_free(SK_KIND_NODE, n);
    sk_object_free(SK_KIND_TASK, task);
}

static void malformed_commands(void **state)
{
    struct sk_err err;
    static const char *const bad[] = {
        "not json",
        "{}",
        "{\"time\":1}",
        "{\"time\":1,\"ops\":[{\"op\":\"upsert\",\"kind\":\"node\"}]}",
        "{\"time\":1,\"ops\":[{\"op\":\"create\",\"kind\":\"pod\"}]}",
        "{\"time\":1,\"ops\":[{\"op\":\"create\",\"kind\":\"node\"}]}",
        "{\"time\":1,\"ops\":[{\"op\":\"create\",\"kind\":\"node\","
        "\"object\":{\"spec\":{\"name\":\"a\"}}}]}",
        "{\"time\":1,\"ops\":[{\"op\":\"create\",\"kind\":\"node\","
        "\"object\":{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaa\",\"bogus\":1}}]}",
        "{\"time\":1,\"ops\":[{\"op\":\"delete\",\"kind\":\"node\"}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_not_equal(
            sk_store_apply(store, next_index++, bad[i], strlen(bad[i]), &err),
            SK_OK);
        assert_int_equal(sk_store_count(store, SK_KIND_NODE), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(create_update_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(names_are_unique, setup, teardown),
        cmocka_unit_test_setup_teardown(watchers_see_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(task_indices, setup, teardown),
        cmocka_unit_test_setup_teardown(lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(snapshot_restore, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_commands, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
