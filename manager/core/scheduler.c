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

/* The filters, in the order a node is tried against them; a node that
 * takes no task is counted under the first it fails. */
enum filter {
    F_FITS,
    F_NOT_READY,
    F_DRAINED,
    F_PAUSED,
    F_CONSTRAINT, /* which one: counted apart */
    F_MEMORY,
    F_CPU,
    F_PORT, /* which port: counted apart */
    F_MAX_REPLICAS,
    F_NETWORK,
    F_COUNT
};

/* The per-task filters of candidate node i (it passed ready, active and
 * the constraints): room for the reservations, the host ports, at most
 * max_replicas, an address on each network. *which_port gets the index of
 * the port in use; net_err, if not NULL, the network's message. Inline:
 * the placement loop runs it for every node and task (a call cost 12% of
 * the scheduler's instructions in sched_bench). */
static inline enum filter
room_filter(const struct plan *p, const struct group *g,
            const struct svc_state *st, size_t i, const struct sk_task *task,
            size_t *which_port, struct sk_err *net_err)
{
    const struct node_info *ni = &p->w.nodes[i];
    const struct sk_task_spec *spec = &g->svc->spec.task;
    const struct sk_endpoint_spec *ep = &g->svc->spec.endpoint;
    if (ni->mem_known && spec->reservations.memory_bytes > ni->mem_free)
        return F_MEMORY;
    if (ni->cpu_known && spec->reservations.nano_cpus > ni->cpu_free)
        return F_CPU;
    for (size_t k = 0; k < ep->n_ports; k++)
        if (ep->ports[k].mode == SK_PORT_HOST &&
            port_used(ni, port_key(&ep->ports[k]))) {
            *which_port = k;
            return F_PORT;
        }
    if (spec->placement.max_replicas &&
        st->count[i] >= (unsigned)spec->placement.max_replicas)
        return F_MAX_REPLICAS;
    if (!networks_fit(p, ni->node, task, net_err))
        return F_NETWORK;
    return F_FITS;
}

/* The filter a node that is not a candidate fails: ready, availability,
 * then the constraints in order (*which gets the index). */
static enum filter node_filter(const struct sk_node *n,
                               const struct sk_placement_rules *rules,
                               size_t *which)
{
    if (n->status.state != SK_NODE_READY)
        return F_NOT_READY;
    if (n->spec.availability == SK_AVAIL_DRAIN)
        return F_DRAINED;
    if (n->spec.availability == SK_AVAIL_PAUSE)
        return F_PAUSED;
    for (size_t c = 0; c < rules->n_constraints; c++)
        if (!sk_constraint_match(&rules->constraints[c], n)) {
            *which = c;
            return F_CONSTRAINT;
        }
    return F_FITS;
}

struct reason_part {
    size_t nodes;
    enum filter f;
    size_t which; /* the constraint or port */
};

static int by_nodes(const void *a, const void *b)
{
    const struct reason_part *x = a, *y = b;
    if (x->nodes != y->nodes)
        return x->nodes > y->nodes ? -1 : 1;
    if (x->f != y->f)
        return x->f < y->f ? -1 : 1;
    return x->which < y->which ? -1 : x->which > y->which;
}

static const char *nodes_word(size_t n)
{
    return n == 1 ? "node" : "nodes";
}

/* Appends "; PART" (or PART first) if it fits whole; else marks the
 * reason cut, to end in "; ...". */
static void reason_add(char *reason, size_t size, bool *cut, const char *part)
{
    size_t len = strlen(reason);
    if (*cut || len + (len ? 2 : 0) + strlen(part) + 5 >= size) {
        *cut = true;
        return;
    }
    snprintf(reason + len, size - len, "%s%s", len ? "; " : "", part);
}

/* Why the task fits on no node: every filter that excluded a node, with
 * how many ("2 nodes excluded by node.role==worker; host port 8081/tcp is
 * in use on 2 nodes; 1 node drained"), the filter excluding the most
 * nodes first, ties in the order the filters are tried. */
static void describe_failure(struct plan *p, const struct group *g,
                             const struct sk_task *task,
                             const struct sk_placement_rules *rules,
                             const struct svc_state *st, char *reason,
                             size_t size)
{
    struct world *w = &p->w;
    const struct sk_task_spec *spec = &g->svc->spec.task;
    const struct sk_endpoint_spec *ep = &g->svc->spec.endpoint;
    if (w->n == 0) {
        snprintf(reason, size, "the cluster has no node");
        return;
    }
    size_t n_cons = rules->n_constraints, n_ports = ep->n_ports;
    size_t counts[F_COUNT] = {0};
    size_t *per_cons = sk_calloc(n_cons + 1, sizeof *per_cons);
    size_t *per_port = sk_calloc(n_ports + 1, sizeof *per_port);
    struct sk_err net_err = {0};
    for (size_t i = 0; i < w->n; i++) {
        size_t which = 0;
        enum filter f = st->candidate[i]
                            ? room_filter(p, g, st, i, task, &which,
                                          counts[F_NETWORK] ? NULL : &net_err)
                            : node_filter(w->nodes[i].node, rules, &which);
        counts[f]++;
        if (f == F_CONSTRAINT)
            per_cons[which]++;
        else if (f == F_PORT)
            per_port[which]++;
    }

    size_t n_parts = 0;
    struct reason_part *parts =
        sk_calloc(F_COUNT + n_cons + n_ports, sizeof *parts);
    for (int f = F_NOT_READY; f < F_COUNT; f++) {
        if (f == F_CONSTRAINT || f == F_PORT || !counts[f])
            continue;
        parts[n_parts++] = (struct reason_part){counts[f], f, 0};
    }
    for (size_t c = 0; c < n_cons; c++)
        if (per_cons[c])
            parts[n_parts++] =
                (struct reason_part){per_cons[c], F_CONSTRAINT, c};
    for (size_t k = 0; k < n_ports; k++)
        if (per_port[k])
            parts[n_parts++] = (struct reason_part){per_port[k], F_PORT, k};
    qsort(parts, n_parts, sizeof *parts, by_nodes);

    reason[0] = '\0';
    bool cut = false;
    for (size_t i = 0; i < n_parts; i++) {
        char part[512];
        size_t n = parts[i].nodes;
        const char *word = nodes_word(n);
        const struct sk_port *pp = &ep->ports[parts[i].which];
        switch (parts[i].f) {
        case F_NOT_READY:
            snprintf(part, sizeof part, "%zu %s not ready", n, word);
            break;
        case F_DRAINED:
            snprintf(part, sizeof part, "%zu %s drained", n, word);
            break;
        case F_PAUSED:
            snprintf(part, sizeof part, "%zu %s paused", n, word);
            break;
        case F_CONSTRAINT:
            snprintf(part, sizeof part, "%zu %s excluded by %s", n, word,
                     spec->placement.constraints[parts[i].which]);
            break;
        case F_MEMORY:
            snprintf(part, sizeof part,
                     "insufficient memory on %zu %s (needs %lld MiB)", n, word,
                     (long long)(spec->reservations.memory_bytes >> 20));
            break;
        case F_CPU:
            snprintf(part, sizeof part,
                     "insufficient CPU on %zu %s (needs %.2f)", n, word,
                     (double)spec->reservations.nano_cpus / 1e9);
            break;
        case F_PORT:
            snprintf(part, sizeof part, "host port %lld/%s is in use on %zu %s",
                     (long long)pp->published,
                     pp->protocol == SK_PROTO_UDP ? "udp" : "tcp", n, word);
            break;
        case F_MAX_REPLICAS:
            snprintf(part, sizeof part,
                     "max %lld replicas per node reached on %zu %s",
                     (long long)spec->placement.max_replicas, n, word);
            break;
        case F_NETWORK:
            snprintf(part, sizeof part, "%.300s (%zu %s %s none)", net_err.msg,
                     n, word, n == 1 ? "has" : "have");
            break;
        case F_FITS:
        case F_COUNT:
            continue;
        }
        reason_add(reason, size, &cut, part);
    }
    if (cut) {
        size_t len = strlen(reason);
        snprintf(reason + len, size - len, "%s...", len ? "; " : "");
    }
    if (!reason[0])
        snprintf(reason, size, "no suitable node");
    free(parts);
    free(per_cons);
    free(per_port);
}

static void place_group(struct plan *p, struct group *g)
{
    struct world *w = &p->w;
    const struct sk_task_spec *spec = &g->svc->spec.task;
    const struct sk_endpoint_spec *ep = &g->svc->spec.endpoint;
    qsort(g->pending, g->n_pending, sizeof *g->pending, by_slot);

    const struct sk_placement_rules *rules =
        sk_store_placement(p->s, g->svc->meta.id);
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
            size_t port;
            if (room_filter(p, g, &st, i, task, &port, NULL) != F_FITS)
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
                describe_failure(p, g, task, rules, &st, out->reason,
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
