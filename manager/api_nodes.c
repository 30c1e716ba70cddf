/* The control API's node handlers: list, inspect, update (availability,
 * labels), promote, demote and remove nodes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager_internal.h"
#include "skiff/log.h"
#include "skiff/mem.h"

static int by_name(const void *a, const void *b)
{
    const struct sk_node *x = *(const struct sk_node *const *)a;
    const struct sk_node *y = *(const struct sk_node *const *)b;
    return strcmp(x->spec.name ? x->spec.name : "",
                  y->spec.name ? y->spec.name : "");
}

void api_nodes(struct call *c)
{
    size_t n;
    const void **nodes = sk_store_list(c->m->store, SK_KIND_NODE, &n);
    qsort(nodes, n, sizeof *nodes, by_name);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, mgr_node_json(c->m, nodes[i]));
    free(nodes);
    call_json(c, 200, arr);
}

void api_node_get(struct call *c)
{
    const struct sk_node *n = call_lookup_node(c, c->param[0]);
    if (n)
        call_json(c, 200, mgr_node_json(c->m, n));
}

struct quorum_count {
    const char *skip;
    int managers, reachable;
};

static bool count_managers(const void *obj, void *ctx)
{
    const struct sk_node *n = obj;
    struct quorum_count *q = ctx;
    if (n->spec.role != SK_ROLE_MANAGER || strcmp(n->meta.id, q->skip) == 0)
        return true;
    q->managers++;
    q->reachable += n->status.state == SK_NODE_READY;
    return true;
}

/* Refuses a demotion or removal that would leave the managers without a
 * reachable majority. */
static bool demotion_safe(struct call *c, const struct sk_node *n)
{
    struct quorum_count q = {.skip = n->meta.id};
    sk_store_each(c->m->store, SK_KIND_NODE, count_managers, &q);
    if (q.managers == 0) {
        call_errorf(c, SK_EINVAL,
                    "node \"%s\" is the last manager: promote another node "
                    "first",
                    n->spec.name);
        return false;
    }
    if (q.reachable * 2 <= q.managers) {
        call_errorf(c, SK_EINVAL,
                    "demoting \"%s\" would leave %d of %d managers reachable: "
                    "no quorum",
                    n->spec.name, q.reachable, q.managers);
        return false;
    }
    return true;
}

/* The update of node n to spec (role changes included), or NULL when it is
 * refused -- then the call has been answered with why. */
/* Logged once the update commits. */
static char *node_update_log(const struct sk_node_spec *spec)
{
    return sk_printf("node %s updated (role %s, availability %s)", spec->name,
                     sk_node_role_names[spec->role],
                     sk_availability_names[spec->availability]);
}

static struct sk_txn *node_update_txn(struct call *c, const struct sk_node *n,
                                      const struct sk_node_spec *spec,
                                      uint64_t expect)
{
    struct sk_err err;
    if (sk_node_spec_validate(spec, &err) != SK_OK) {
        call_error(c, &err);
        return NULL;
    }
    if (n->spec.role == SK_ROLE_MANAGER && spec->role == SK_ROLE_WORKER &&
        !demotion_safe(c, n))
        return NULL;
    struct sk_node *u = sk_object_dup(SK_KIND_NODE, n);
    sk_schema_free(&sk_node_spec_schema, &u->spec);
    sk_schema_copy(&sk_node_spec_schema, &u->spec, spec);
    struct sk_txn *t = sk_txn_new();
    sk_txn_update(t, SK_KIND_NODE, u, expect);
    sk_object_free(SK_KIND_NODE, u);
    return t;
}

void api_node_update(struct call *c)
{
    if (!call_body(c))
        return;
    const struct sk_node *n = call_lookup_node(c, c->param[0]);
    if (!n)
        return;
    const json_t *jspec = json_object_get(c->body, "spec");
    const json_t *jver = json_object_get(c->body, "version");
    if (!jspec) {
        call_errorf(c, SK_EINVAL, "body needs \"spec\" (and \"version\")");
        return;
    }
    if (jver && (!json_is_integer(jver) || json_integer_value(jver) < 0)) {
        call_errorf(c, SK_EINVAL, "version must be a non-negative integer");
        return;
    }
    struct sk_node_spec spec;
    struct sk_err err;
    if (sk_schema_decode(&sk_node_spec_schema, jspec, &spec, "spec", &err) !=
        SK_OK) {
        call_error(c, &err);
        return;
    }
    struct sk_txn *t = node_update_txn(
        c, n, &spec, jver ? (uint64_t)json_integer_value(jver) : 0);
    if (t)
        call_propose_logged(c, t, NULL, node_update_log(&spec));
    sk_schema_free(&sk_node_spec_schema, &spec);
}

/* promote and demote change one field on the node as it is now. The node
 * also changes on its own (status, certificate, Raft membership), so a
 * version conflict is ours to solve: read it again and retry. */
#define ROLE_ATTEMPTS 8

struct role_change {
    struct call *c;
    int role;
    int attempts;
};

static void role_try(struct role_change *r);

static void role_done(struct sk_manager *m, void *ctx, enum sk_rc rc,
                      const struct sk_err *err)
{
    struct role_change *r = ctx;
    if (rc == SK_ECONFLICT && r->attempts < ROLE_ATTEMPTS) {
        role_try(r);
        return;
    }
    if (rc == SK_OK) {
        const struct sk_node *n =
            sk_store_lookup(m->store, SK_KIND_NODE, r->c->param[0], NULL);
        if (n) {
            char *log = node_update_log(&n->spec);
            SK_INFO("api", "%s", log);
            free(log);
        }
        call_json(r->c, 200, json_pack("{s:b}", "ok", 1));
    } else
        call_error(r->c, err);
    free(r);
}

static void role_try(struct role_change *r)
{
    struct call *c = r->c;
    r->attempts++;
    const struct sk_node *n = call_lookup_node(c, c->param[0]);
    if (!n) {
        free(r);
        return;
    }
    if (n->spec.role == r->role) {
        call_json(c, 200,
                  json_pack("{s:b, s:s}", "ok", 1, "message",
                            r->role == SK_ROLE_MANAGER
                                ? "node is already a manager"
                                : "node is already a worker"));
        free(r);
        return;
    }
    struct sk_node_spec spec;
    sk_schema_copy(&sk_node_spec_schema, &spec, &n->spec);
    spec.role = r->role;
    struct sk_txn *t = node_update_txn(c, n, &spec, n->meta.version);
    sk_schema_free(&sk_node_spec_schema, &spec);
    if (!t) {
        free(r);
        return;
    }
    struct sk_err err;
    if (!mgr_propose(c->m, t, role_done, r, &err)) {
        call_error(c, &err);
        free(r);
    }
}

static void set_role(struct call *c, int role)
{
    struct role_change *r = sk_calloc(1, sizeof *r);
    r->c = c;
    r->role = role;
    role_try(r);
}

void api_node_promote(struct call *c)
{
    set_role(c, SK_ROLE_MANAGER);
}

void api_node_demote(struct call *c)
{
    set_role(c, SK_ROLE_WORKER);
}

void api_node_remove(struct call *c)
{
    const struct sk_node *n = call_lookup_node(c, c->param[0]);
    if (!n)
        return;
    char force[8] = "";
    bool forced = sk_http_query(c->req, "force", force, sizeof force) &&
                  strcmp(force, "0") != 0 && strcmp(force, "false") != 0;
    if (n->spec.role == SK_ROLE_MANAGER || n->manager.raft_id) {
        if (n->spec.role == SK_ROLE_MANAGER) {
            call_errorf(c, SK_EINVAL,
                        "node \"%s\" is a manager: demote it first "
                        "(skiff node demote %s)",
                        n->spec.name, n->spec.name);
            return;
        }
    }
    if (n->status.state == SK_NODE_READY && !forced) {
        call_errorf(c, SK_EINVAL,
                    "node \"%s\" is ready: stop skiffd on it first, or use "
                    "--force",
                    n->spec.name);
        return;
    }
    struct sk_txn *t = sk_txn_new();
    sk_txn_delete(t, SK_KIND_NODE, n->meta.id, n->meta.version);
    call_propose_logged(c, t, NULL, sk_printf("node %s removed", n->spec.name));
}
