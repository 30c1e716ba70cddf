/* Overlay networks: create (a VNI, a subnet and a gateway from the
 * allocator), list, inspect (with the services on each), remove (not while
 * a service names it or a task still holds an address on it).
 *
 * Only the network's own resources are allocated here: two creates racing
 * may compute the same VNI or subnet, and the store refuses the second
 * when it applies (409). Addresses inside a network -- tasks', VIPs,
 * nodes' -- are the leader's pipeline's alone (leader.c), never a
 * handler's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager_internal.h"
#include "skiff/allocator.h"
#include "skiff/mem.h"

/* ---- reading ---- */

struct users {
    const char *network_id;
    const char **names; /* services that name the network */
    size_t n;
    size_t live_tasks; /* non-terminal tasks with an address on it */
};

static bool add_user(const void *obj, void *ctx)
{
    const struct sk_service *s = obj;
    struct users *u = ctx;
    for (size_t i = 0; i < s->spec.task.n_networks; i++) {
        if (strcmp(s->spec.task.networks[i].id, u->network_id) == 0) {
            u->names = sk_realloc(u->names, (u->n + 1) * sizeof *u->names);
            u->names[u->n++] = s->spec.name;
            break;
        }
    }
    return true;
}

static bool count_live_task(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    struct users *u = ctx;
    if (sk_task_state_terminal(t->status.state))
        return true;
    for (size_t i = 0; i < t->n_networks; i++)
        if (strcmp(t->networks[i].network_id, u->network_id) == 0 &&
            t->networks[i].n_addresses) {
            u->live_tasks++;
            break;
        }
    return true;
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The services that name the network, by name. */
static void find_users(const struct sk_store *s, const char *network_id,
                       bool count_tasks, struct users *u)
{
    memset(u, 0, sizeof *u);
    u->network_id = network_id;
    sk_store_each(s, SK_KIND_SERVICE, add_user, u);
    if (u->n)
        qsort(u->names, u->n, sizeof *u->names, by_string);
    if (count_tasks)
        sk_store_each(s, SK_KIND_TASK, count_live_task, u);
}

static json_t *network_json(const struct sk_store *s,
                            const struct sk_network *n)
{
    json_t *j = sk_schema_encode(&sk_network_schema, n, SK_VIEW_PUBLIC);
    struct users u;
    find_users(s, n->meta.id, false, &u);
    json_t *names = json_array();
    for (size_t i = 0; i < u.n; i++)
        json_array_append_new(names, json_string(u.names[i]));
    json_object_set_new(j, "services", names);
    free(u.names);
    return j;
}

static int by_network_name(const void *a, const void *b)
{
    const struct sk_network *x = *(const struct sk_network *const *)a;
    const struct sk_network *y = *(const struct sk_network *const *)b;
    return strcmp(x->spec.name, y->spec.name);
}

void api_networks(struct call *c)
{
    size_t n;
    const void **all = sk_store_list(c->m->store, SK_KIND_NETWORK, &n);
    qsort(all, n, sizeof *all, by_network_name);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, network_json(c->m->store, all[i]));
    free(all);
    call_json(c, 200, arr);
}

static const struct sk_network *lookup_network(struct call *c)
{
    struct sk_err err;
    const struct sk_network *n =
        sk_store_lookup(c->m->store, SK_KIND_NETWORK, c->param[0], &err);
    if (!n)
        call_error(c, &err);
    return n;
}

void api_network_get(struct call *c)
{
    const struct sk_network *n = lookup_network(c);
    if (n)
        call_json(c, 200, network_json(c->m->store, n));
}

/* ---- writing ---- */

void api_network_create(struct call *c)
{
    struct sk_manager *m = c->m;
    if (!call_body(c))
        return;
    const json_t *j = json_object_get(c->body, "spec");
    if (!j) {
        call_errorf(c, SK_EINVAL, "body needs \"spec\"");
        return;
    }
    struct sk_network *n = sk_object_new(SK_KIND_NETWORK);
    struct sk_err err;
    if (sk_schema_decode(&sk_network_spec_schema, j, &n->spec, "spec", &err) !=
            SK_OK ||
        sk_network_spec_validate(&n->spec, &err) != SK_OK) {
        sk_object_free(SK_KIND_NETWORK, n);
        call_error(c, &err);
        return;
    }
    if (sk_store_get_by_name(m->store, SK_KIND_NETWORK, n->spec.name)) {
        call_errorf(c, SK_EEXIST, "network \"%s\" already exists",
                    n->spec.name);
        sk_object_free(SK_KIND_NETWORK, n);
        return;
    }
    const struct sk_cluster *cl = sk_store_cluster(m->store);
    if (!cl) {
        sk_object_free(SK_KIND_NETWORK, n);
        call_errorf(c, SK_EUNAVAIL, "the cluster is not initialised yet");
        return;
    }
    struct sk_allocator *a = sk_allocator_new();
    sk_allocator_sync(a, m->store);
    sk_id_new(n->meta.id);
    enum sk_rc rc = sk_allocate_network(a, &cl->spec, n, &err);
    sk_allocator_free(a);
    if (rc != SK_OK) {
        sk_object_free(SK_KIND_NETWORK, n);
        call_error(c, &err);
        return;
    }
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NETWORK, n);
    json_t *reply = json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", n->meta.id,
                              "name", n->spec.name, "subnet", n->subnet,
                              "gateway", n->gateway, "vni", (json_int_t)n->vni);
    char *log = sk_printf("network %s created (%s, %s, VNI %lld)", n->spec.name,
                          n->meta.id, n->subnet, (long long)n->vni);
    sk_object_free(SK_KIND_NETWORK, n);
    call_propose_logged(c, t, reply, log);
}

void api_network_remove(struct call *c)
{
    const struct sk_network *n = lookup_network(c);
    if (!n)
        return;
    struct users u;
    find_users(c->m->store, n->meta.id, true, &u);
    if (u.n) {
        char list[256] = "";
        for (size_t i = 0; i < u.n; i++) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "",
                     u.names[i]);
        }
        call_errorf(c, SK_ECONFLICT, "network \"%s\" is in use by service%s %s",
                    n->spec.name, u.n > 1 ? "s" : "", list);
    } else if (u.live_tasks) {
        call_errorf(c, SK_ECONFLICT,
                    "network \"%s\" is in use by %zu task%s still stopping; "
                    "retry once they have stopped",
                    n->spec.name, u.live_tasks, u.live_tasks > 1 ? "s" : "");
    } else {
        struct sk_txn *t = sk_txn_new();
        sk_txn_delete(t, SK_KIND_NETWORK, n->meta.id, n->meta.version);
        call_propose_logged(c, t, json_pack("{s:s}", "id", n->meta.id),
                            sk_printf("network %s removed", n->spec.name));
    }
    free(u.names);
}
