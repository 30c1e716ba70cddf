#include "skiff/scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/constraint.h"
#include "skiff/map.h"
#include "skiff/mem.h"

#define MAX_PREFS 8

struct node_info {
    const struct sk_node *node;
    bool usable; /* ready and active: takes new tasks */
    int64_t cpu_free, mem_free;
    bool cpu_known, mem_known; /* capacity reported */
    unsigned tasks;            /* tasks occupying the node */
    unsigned *ports;           /* proto << 16 | port, host mode */
    size_t n_ports;
};

struct world {
    struct node_info *nodes;
    size_t n;
    struct sk_map index; /* node id -> struct node_info * */
};

bool sk_task_occupies_node(const struct sk_task *t)
{
    return *t->node_id && !sk_task_state_terminal(t->status.state) &&
           t->status.state >= SK_TASK_ASSIGNED;
}

static int by_id(const void *a, const void *b)
{
    const struct sk_node *x = *(const struct sk_node *const *)a;
    const struct sk_node *y = *(const struct sk_node *const *)b;
    return strcmp(x->meta.id, y->meta.id);
}

static void port_add(struct node_info *ni, unsigned p)
{
    ni->ports = sk_realloc(ni->ports, (ni->n_ports + 1) * sizeof *ni->ports);
    ni->ports[ni->n_ports++] = p;
}

static bool port_used(const struct node_info *ni, unsigned p)
{
    for (size_t i = 0; i < ni->n_ports; i++)
        if (ni->ports[i] == p)
            return true;
    return false;
}

static unsigned port_key(const struct sk_port *p)
{
    return (unsigned)p->protocol << 16 | (unsigned)p->published;
}

static void occupy(struct node_info *ni, const struct sk_task_spec *spec)
{
    ni->tasks++;
    ni->cpu_free -= spec->reservations.nano_cpus;
    ni->mem_free -= spec->reservations.memory_bytes;
}

static bool count_occupant(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    struct world *w = ctx;
    if (!sk_task_occupies_node(t))
        return true;
    struct node_info *ni = sk_map_get(&w->index, t->node_id);
    if (!ni)
        return true;
    occupy(ni, &t->spec);
    return true;
}

static void world_build(struct world *w, const struct sk_store *s)
{
    size_t n;
    const void **nodes = sk_store_list(s, SK_KIND_NODE, &n);
    qsort(nodes, n, sizeof *nodes, by_id);
    w->n = n;
    w->nodes = sk_calloc(n ? n : 1, sizeof *w->nodes);
    sk_map_init(&w->index);
    for (size_t i = 0; i < n; i++) {
        const struct sk_node *node = nodes[i];
        struct node_info *ni = &w->nodes[i];
        ni->node = node;
        sk_node_eligible(node, NULL, &ni->usable);
        ni->cpu_free = node->description.nano_cpus;
        ni->mem_free = node->description.memory_bytes;
        ni->cpu_known = node->description.nano_cpus > 0;
        ni->mem_known = node->description.memory_bytes > 0;
        sk_map_put(&w->index, node->meta.id, ni);
    }
    free(nodes);
    sk_store_each(s, SK_KIND_TASK, count_occupant, w);
}

static void world_free(struct world *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->nodes[i].ports);
    free(w->nodes);
    sk_map_clear(&w->index);
}

/* ---- per service ---- */

struct group {
    const struct sk_service *svc;
    struct sk_task **pending; /* borrowed pointers into the store */
    size_t n_pending, cap;
};

struct plan {
    const struct sk_store *s;
    struct sk_allocator *alloc;
    struct world w;
    struct sk_map groups; /* service id -> struct group */
    struct sk_sched_decision *out;
    size_t n_out, max;
};

static bool collect_pending(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    struct plan *p = ctx;
    if (t->status.state != SK_TASK_PENDING ||
        t->desired_state != SK_TASK_RUNNING || *t->node_id ||
        !sk_task_has_addresses(t))
        return true;
    struct group *g = sk_map_get(&p->groups, t->service_id);
    if (!g) {
        const struct sk_service *svc =
            sk_store_get(p->s, SK_KIND_SERVICE, t->service_id);
        if (!svc)
            return true; /* being removed */
        g = sk_calloc(1, sizeof *g);
        g->svc = svc;
        sk_map_put(&p->groups, t->service_id, g);
    }
    if (g->n_pending == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 16;
        g->pending = sk_realloc(g->pending, g->cap * sizeof *g->pending);
    }
    g->pending[g->n_pending++] = (struct sk_task *)t;
    return true;
}

static int by_slot(const void *a, const void *b)
{
    const struct sk_task *x = *(const struct sk_task *const *)a;
    const struct sk_task *y = *(const struct sk_task *const *)b;
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return strcmp(x->meta.id, y->meta.id);
}

struct svc_state {
    unsigned *count; /* per node: tasks of this service on it */
    bool *candidate; /* per node: passes ready/active + constraints */
    size_t n_candidates;
    const char **pref_values[MAX_PREFS];  /* per level, per node: value */
    struct sk_map pref_counts[MAX_PREFS]; /* bucket key -> count */
    char **bucket_keys[MAX_PREFS];        /* per level, per node */
    size_t n_prefs;
};

struct svc_count_ctx {
    struct world *w;
    struct svc_state *st;
    const struct sk_endpoint_spec *ep;
};

static bool count_service_task(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    struct svc_count_ctx *c = ctx;
    if (!sk_task_occupies_node(t))
        return true;
    struct node_info *ni = sk_map_get(&c->w->index, t->node_id);
    if (!ni)
        return true;
    c->st->count[ni - c->w->nodes]++;
    return true;
}

/* Every host port published by any service is taken on the nodes its
 * tasks occupy. */
struct ports_ctx {
    struct world *w;
    const struct sk_store *s;
};

static bool mark_ports_of_task(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    struct ports_ctx *pc = ctx;
    if (!sk_task_occupies_node(t))
        return true;
    const struct sk_service *svc =
        sk_store_get(pc->s, SK_KIND_SERVICE, t->service_id);
    struct node_info *ni = sk_map_get(&pc->w->index, t->node_id);
    if (!svc || !ni)
        return true;
    const struct sk_endpoint_spec *ep = &svc->spec.endpoint;
    for (size_t k = 0; k < ep->n_ports; k++)
        if (ep->ports[k].mode == SK_PORT_HOST && ep->ports[k].published)
            port_add(ni, port_key(&ep->ports[k]));
    return true;
}

static void add_bucket(struct svc_state *st, size_t level, const char *key,
                       int delta)
{
    intptr_t cur = (intptr_t)sk_map_get(&st->pref_counts[level], key);
    sk_map_put(&st->pref_counts[level], key, (void *)(cur + delta));
}

static unsigned bucket_count(const struct svc_state *st, size_t level,
                             size_t node)
{
    return (unsigned)(intptr_t)sk_map_get(&st->pref_counts[level],
                                          st->bucket_keys[level][node]);
}

/* Can the node take the task's networks: does it have, or can it get,
 * its own address on each? */
static bool networks_fit(const struct plan *p, const struct sk_node *node,
                         const struct sk_task *task, struct sk_err *err)
{
    for (size_t k = 0; k < task->n_networks; k++)
        if (!sk_allocator_node_fits(p->alloc, node->meta.id,
                                    task->networks[k].network_id, err))
            return false;
    return true;
}

static void describe_failure(struct plan *p, const struct group *g,
                             const struct sk_task *task,
                             const struct sk_constraint *cons, size_t n_cons,
                             const struct svc_state *st, char *reason,
                             size_t size)
{
    struct world *w = &p->w;
    size_t usable = 0;
    for (size_t i = 0; i < w->n; i++)
        usable += w->nodes[i].usable;
    if (usable == 0) {
        snprintf(reason, size, "no node is ready and active: 0 of %zu nodes",
                 w->n);
        return;
    }
    if (st->n_candidates == 0) {
        /* Name the constraint that excludes the most usable nodes. */
        size_t worst = 0, worst_ok = (size_t)-1;
        for (size_t c = 0; c < n_cons; c++) {
            size_t ok = 0;
            for (size_t i = 0; i < w->n; i++)
                ok += w->nodes[i].usable &&
                      sk_constraint_match(&cons[c], w->nodes[i].node);
            if (ok < worst_ok) {
                worst_ok = ok;
                worst = c;
            }
        }
        if (worst_ok == 0 || n_cons == 1)
            snprintf(reason, size,
                     "no node satisfies constraint %s: %zu of %zu nodes",
                     g->svc->spec.task.placement.constraints[worst], worst_ok,
                     w->n);
        else
            snprintf(reason, size,
                     "no node satisfies all %zu constraints together "
                     "(%zu nodes are ready)",
                     n_cons, usable);
        return;
    }
    const struct sk_task_spec *spec = &g->svc->spec.task;
    size_t mem = 0, cpu = 0, port = 0, maxr = 0, net = 0;
    struct sk_err net_err = {0};
    for (size_t i = 0; i < w->n; i++) {
        if (!st->candidate[i])
            continue;
        const struct node_info *ni = &w->nodes[i];
        if (!networks_fit(p, ni->node, task, net ? NULL : &net_err))
            net++;
        if (ni->mem_known && spec->reservations.memory_bytes > ni->mem_free)
            mem++;
        if (ni->cpu_known && spec->reservations.nano_cpus > ni->cpu_free)
            cpu++;
        const struct sk_endpoint_spec *ep = &g->svc->spec.endpoint;
        for (size_t k = 0; k < ep->n_ports; k++)
            if (ep->ports[k].mode == SK_PORT_HOST &&
                port_used(ni, port_key(&ep->ports[k]))) {
                port++;
                break;
            }
        if (spec->placement.max_replicas &&
            st->count[i] >= (unsigned)spec->placement.max_replicas)
            maxr++;
    }
    if (mem) {
        snprintf(reason, size,
                 "insufficient memory on %zu nodes (needs %lld MiB)", mem,
                 (long long)(spec->reservations.memory_bytes >> 20));
    } else if (cpu) {
        snprintf(reason, size, "insufficient CPU on %zu nodes (needs %.2f)",
                 cpu, (double)spec->reservations.nano_cpus / 1e9);
    } else if (port) {
        const struct sk_endpoint_spec *ep = &g->svc->spec.endpoint;
        const struct sk_port *pp = NULL;
        for (size_t k = 0; k < ep->n_ports && !pp; k++)
            if (ep->ports[k].mode == SK_PORT_HOST)
                pp = &ep->ports[k];
        snprintf(reason, size, "host port %lld/%s is in use on %zu nodes",
                 pp ? (long long)pp->published : 0LL,
                 pp && pp->protocol == SK_PROTO_UDP ? "udp" : "tcp", port);
    } else if (maxr) {
        snprintf(reason, size,
                 "max %lld replicas per node reached on %zu nodes",
                 (long long)spec->placement.max_replicas, maxr);
    } else if (net) {
        snprintf(reason, size, "%.160s (%zu nodes have none)", net_err.msg,
                 net);
    } else {
        snprintf(reason, size, "no suitable node");
    }
}

static void place_group(struct plan *p, struct group *g)
{
    struct world *w = &p->w;
    const struct sk_task_spec *spec = &g->svc->spec.task;
    const struct sk_endpoint_spec *ep = &g->svc->spec.endpoint;
    qsort(g->pending, g->n_pending, sizeof *g->pending, by_slot);

    const struct sk_placement_rules *rules =
        sk_store_placement(p->s, g->svc->meta.id);
    const struct sk_constraint *cons = rules->constraints;
    size_t n_cons = rules->n_constraints;
    bool bad = rules->bad_constraint;

    struct svc_state st = {0};
    st.count = sk_calloc(w->n ? w->n : 1, sizeof *st.count);
    st.candidate = sk_calloc(w->n ? w->n : 1, sizeof *st.candidate);
    struct svc_count_ctx cc = {.w = w, .st = &st, .ep = ep};
    sk_store_each_task_of_service(p->s, g->svc->meta.id, count_service_task,
                                  &cc);
    for (size_t i = 0; i < w->n && !bad; i++) {
        bool for_new;
        bool ok =
            sk_node_eligible(w->nodes[i].node, rules, &for_new) && for_new;
        st.candidate[i] = ok;
        st.n_candidates += ok;
    }

    /* Preference buckets: level k's key is the values of levels 0..k. */
    st.n_prefs = rules->n_spread < MAX_PREFS ? rules->n_spread : MAX_PREFS;
    for (size_t l = 0; l < st.n_prefs; l++) {
        const char *label = rules->spread[l];
        sk_map_init(&st.pref_counts[l]);
        st.bucket_keys[l] = sk_calloc(w->n ? w->n : 1, sizeof(char *));
        for (size_t i = 0; i < w->n; i++) {
            const struct sk_node *n = w->nodes[i].node;
            const char *v = sk_kv_get(n->spec.labels, n->spec.n_labels, label);
            st.bucket_keys[l][i] =
                sk_printf("%s\x1f%s", l ? st.bucket_keys[l - 1][i] : "",
                          v ? v : "\x1e(none)");
        }
        for (size_t i = 0; i < w->n; i++)
            if (st.count[i])
                add_bucket(&st, l, st.bucket_keys[l][i], (int)st.count[i]);
    }

    for (size_t t = 0; t < g->n_pending && p->n_out < p->max; t++) {
        const struct sk_task *task = g->pending[t];
        size_t best = (size_t)-1;
        for (size_t i = 0; i < w->n && !bad; i++) {
            if (!st.candidate[i])
                continue;
            const struct node_info *ni = &w->nodes[i];
            if (ni->mem_known && spec->reservations.memory_bytes > ni->mem_free)
                continue;
            if (ni->cpu_known && spec->reservations.nano_cpus > ni->cpu_free)
                continue;
            bool port_taken = false;
            for (size_t k = 0; k < ep->n_ports && !port_taken; k++)
                port_taken = ep->ports[k].mode == SK_PORT_HOST &&
                             port_used(ni, port_key(&ep->ports[k]));
            if (port_taken)
                continue;
            if (spec->placement.max_replicas &&
                st.count[i] >= (unsigned)spec->placement.max_replicas)
                continue;
            if (!networks_fit(p, ni->node, task, NULL))
                continue;
            if (best == (size_t)-1) {
                best = i;
                continue;
            }
            /* Lexicographic: preference buckets, service count, total. */
            int cmp = 0;
            for (size_t l = 0; l < st.n_prefs && !cmp; l++) {
                unsigned a = bucket_count(&st, l, i),
                         b = bucket_count(&st, l, best);
                cmp = a < b ? -1 : a > b;
            }
            if (!cmp)
                cmp = st.count[i] < st.count[best]   ? -1
                      : st.count[i] > st.count[best] ? 1
                                                     : 0;
            if (!cmp)
                cmp = ni->tasks < w->nodes[best].tasks   ? -1
                      : ni->tasks > w->nodes[best].tasks ? 1
                                                         : 0;
            if (cmp < 0)
                best = i;
        }
        struct sk_sched_decision *out = &p->out[p->n_out++];
        memset(out, 0, sizeof *out);
        memcpy(out->task_id, task->meta.id, SK_ID_SIZE);
        if (best == (size_t)-1) {
            if (bad)
                snprintf(out->reason, sizeof out->reason,
                         "the service has an invalid constraint");
            else
                describe_failure(p, g, task, cons, n_cons, &st, out->reason,
                                 sizeof out->reason);
            continue;
        }
        struct node_info *ni = &w->nodes[best];
        memcpy(out->node_id, ni->node->meta.id, SK_ID_SIZE);
        for (size_t k = 0; k < task->n_networks; k++)
            sk_allocator_node_promise(p->alloc, ni->node->meta.id,
                                      task->networks[k].network_id);
        occupy(ni, spec);
        st.count[best]++;
        for (size_t l = 0; l < st.n_prefs; l++)
            add_bucket(&st, l, st.bucket_keys[l][best], 1);
        for (size_t k = 0; k < ep->n_ports; k++)
            if (ep->ports[k].mode == SK_PORT_HOST && ep->ports[k].published)
                port_add(ni, port_key(&ep->ports[k]));
    }

    for (size_t l = 0; l < st.n_prefs; l++) {
        for (size_t i = 0; i < w->n; i++)
            free(st.bucket_keys[l][i]);
        free(st.bucket_keys[l]);
        sk_map_clear(&st.pref_counts[l]);
    }
    free(st.count);
    free(st.candidate);
}

static int group_order(const void *a, const void *b)
{
    const struct group *x = *(const struct group *const *)a;
    const struct group *y = *(const struct group *const *)b;
    return strcmp(x->svc->meta.id, y->svc->meta.id);
}

size_t sk_schedule(const struct sk_store *s, struct sk_allocator *alloc,
                   size_t max, struct sk_sched_decision **out)
{
    struct plan p = {.s = s, .alloc = alloc, .max = max};
    sk_map_init(&p.groups);
    sk_store_each(s, SK_KIND_TASK, collect_pending, &p);
    size_t n_groups = sk_map_count(&p.groups);
    if (n_groups == 0) {
        sk_map_clear(&p.groups);
        *out = NULL;
        return 0;
    }
    sk_allocator_sync(alloc, s);
    world_build(&p.w, s);
    struct ports_ctx pc = {.w = &p.w, .s = s};
    sk_store_each(s, SK_KIND_TASK, mark_ports_of_task, &pc);

    struct group **groups = sk_calloc(n_groups, sizeof *groups);
    struct sk_map_iter it;
    void *v;
    size_t k = 0;
    sk_map_iter_init(&it, &p.groups);
    while (sk_map_iter_next(&it, NULL, &v))
        groups[k++] = v;
    qsort(groups, n_groups, sizeof *groups, group_order);

    size_t total = 0;
    for (size_t i = 0; i < n_groups; i++)
        total += groups[i]->n_pending;
    p.out = sk_calloc(total < max ? total : max, sizeof *p.out);
    for (size_t i = 0; i < n_groups && p.n_out < max; i++)
        place_group(&p, groups[i]);
    for (size_t i = 0; i < n_groups; i++) {
        free(groups[i]->pending);
        free(groups[i]);
    }
    free(groups);
    sk_map_clear(&p.groups);
    world_free(&p.w);
    *out = p.out;
    return p.n_out;
}

void sk_schedule_txn(const struct sk_store *s, struct sk_allocator *alloc,
                     int64_t now_ms, size_t max, struct sk_placements *out)
{
    struct sk_sched_decision *d;
    size_t n = sk_schedule(s, alloc, max, &d);
    struct sk_txn *t = sk_txn_new();
    size_t placed = 0;
    for (size_t i = 0; i < n && sk_txn_size(t) < SK_TXN_MAX_BYTES / 2; i++) {
        const struct sk_task *task =
            sk_store_get(s, SK_KIND_TASK, d[i].task_id);
        if (!task)
            continue;
        if (!*d[i].node_id && task->status.message &&
            strcmp(task->status.message, d[i].reason) == 0)
            continue; /* still pending for the same reason */
        struct sk_task *u = sk_object_dup(SK_KIND_TASK, task);
        free(u->status.message);
        if (*d[i].node_id) {
            memcpy(u->node_id, d[i].node_id, SK_ID_SIZE);
            u->status.state = SK_TASK_ASSIGNED;
            u->status.message = sk_strdup("assigned");
            u->status.timestamp = now_ms;
            placed++;
        } else {
            u->status.message = sk_strdup(d[i].reason);
        }
        sk_txn_update(t, SK_KIND_TASK, u, task->meta.version);
        sk_object_free(SK_KIND_TASK, u);
    }
    free(d);
    out->placed = placed;
    if (sk_txn_count(t) == 0) {
        sk_txn_free(t);
        out->txn = NULL;
    } else {
        out->txn = t;
    }
}
