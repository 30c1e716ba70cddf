#include "skiff/orchestrator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/constraint.h"
#include "skiff/map.h"
#include "skiff/mem.h"
#include "skiff/scheduler.h"

struct pass {
    const struct sk_store *s;
    struct sk_allocator *alloc;
    int64_t now;
    size_t max_ops;
    struct sk_txn *txn;
    size_t changes;
    int64_t wake_at;
    struct sk_map touched; /* task ids already in the txn */
    int64_t history;       /* cluster task history limit */
    /* Resources reserved on each node by the tasks meant to run there
     * (node id -> struct load; nodes with such tasks only), and the tasks
     * beyond a node's capacity (task id -> message saying why they go). */
    struct sk_map load;
    struct sk_map evicted;
};

/* Room for a message naming a node and a constraint as written. */
#define WHY_SIZE 768

static bool room(const struct pass *p)
{
    return p->changes < p->max_ops &&
           sk_txn_size(p->txn) < SK_TXN_MAX_BYTES / 2;
}

static void wake(struct pass *p, int64_t at)
{
    if (at > p->now && (!p->wake_at || at < p->wake_at))
        p->wake_at = at;
}

/* ---- resources: what the tasks meant to run on a node reserve ---- */

struct load {
    int64_t mem, cpu;
};

static struct load reservation(const struct sk_task_spec *spec)
{
    struct load l = {spec->reservations.memory_bytes,
                     spec->reservations.nano_cpus};
    return l;
}

/* Does `more` fit on node n beside what l holds? An unreported capacity
 * (0) limits nothing, as in the scheduler. */
static bool fits(const struct sk_node *n, const struct load *l,
                 const struct load *more)
{
    int64_t mem = n->description.memory_bytes, cpu = n->description.nano_cpus;
    return (mem <= 0 || l->mem + more->mem <= mem) &&
           (cpu <= 0 || l->cpu + more->cpu <= cpu);
}

/* Does a new task of the spec fit on node n beside what runs there? */
static bool room_on(const struct pass *p, const struct sk_node *n,
                    const struct sk_task_spec *spec)
{
    struct load r = reservation(spec), none = {0};
    if (!r.mem && !r.cpu)
        return true;
    const struct load *l = sk_map_get(&p->load, n->meta.id);
    return fits(n, l ? l : &none, &r);
}

/* A task created on node n now holds its reservation there. */
static void take_room(struct pass *p, const char *node_id,
                      const struct sk_task_spec *spec)
{
    struct load r = reservation(spec);
    if (!r.mem && !r.cpu)
        return;
    struct load *l = sk_map_get(&p->load, node_id);
    if (!l) {
        l = sk_calloc(1, sizeof *l);
        sk_map_put(&p->load, node_id, l);
    }
    l->mem += r.mem;
    l->cpu += r.cpu;
}

/* The tasks of one slot (replicated) or one node (global), newest
 * first. */
struct slot {
    int64_t number;
    char node_id[SK_ID_SIZE]; /* global services: the node */
    const struct sk_task **tasks;
    size_t n, cap;
};

/* ---- building changes ---- */

static struct sk_task *new_task(struct pass *p, const struct sk_service *svc,
                                const struct slot *s, const char *node_id,
                                int64_t attempts, int64_t window_start,
                                const char *why)
{
    struct sk_task *t = sk_object_new(SK_KIND_TASK);
    sk_id_new(t->meta.id);
    memcpy(t->service_id, svc->meta.id, SK_ID_SIZE);
    t->slot = s->number;
    t->generation = s->n ? s->tasks[0]->generation + 1 : 1;
    if (node_id)
        snprintf(t->node_id, sizeof t->node_id, "%s", node_id);
    t->spec_version = svc->spec_version;
    sk_schema_copy(&sk_task_spec_schema, &t->spec, &svc->spec.task);
    t->desired_state = SK_TASK_RUNNING;
    t->status.state = node_id ? SK_TASK_ASSIGNED : SK_TASK_PENDING;
    t->status.timestamp = p->now;
    t->status.message = sk_strdup(why);
    t->restart_attempts = attempts;
    t->restart_window_start = window_start ? window_start : p->now;
    struct sk_err err;
    if (t->spec.n_networks && sk_allocate_task(p->alloc, t, &err) != SK_OK) {
        /* Pending, saying why, never only in a log; a global service's
         * task keeps its node and is assigned once it has them. */
        t->status.state = SK_TASK_PENDING;
        free(t->status.message);
        t->status.message = sk_strdup(err.msg);
    }
    return t;
}

static void create(struct pass *p, struct sk_task *t)
{
    if (*t->node_id)
        take_room(p, t->node_id, &t->spec);
    sk_txn_create(p->txn, SK_KIND_TASK, t);
    sk_map_put(&p->touched, t->meta.id, (void *)1);
    p->changes++;
    sk_object_free(SK_KIND_TASK, t);
}

static bool touched(const struct pass *p, const struct sk_task *t)
{
    return sk_map_get(&p->touched, t->meta.id) != NULL;
}

/* Sets a task's desired state (once per pass per task). */
static void set_desired(struct pass *p, const struct sk_task *t, int desired,
                        const char *why)
{
    if (t->desired_state == desired || touched(p, t) || !room(p))
        return;
    struct sk_task *u = sk_object_dup(SK_KIND_TASK, t);
    u->desired_state = desired;
    if (why && !sk_task_state_terminal(u->status.state)) {
        free(u->status.message);
        u->status.message = sk_strdup(why);
    }
    sk_txn_update(p->txn, SK_KIND_TASK, u, t->meta.version);
    sk_map_put(&p->touched, t->meta.id, (void *)1);
    p->changes++;
    sk_object_free(SK_KIND_TASK, u);
}

static void delete_task(struct pass *p, const struct sk_task *t)
{
    if (touched(p, t) || !room(p))
        return;
    sk_txn_delete(p->txn, SK_KIND_TASK, t->meta.id, t->meta.version);
    sk_map_put(&p->touched, t->meta.id, (void *)1);
    p->changes++;
}

/* ---- facts about tasks and nodes ---- */

/* Is the task's node removed, or down (it hears nothing we say)? */
static bool node_lost(const struct pass *p, const struct sk_task *t)
{
    if (!*t->node_id)
        return false;
    const struct sk_node *n = sk_store_get(p->s, SK_KIND_NODE, t->node_id);
    return !n || n->status.state == SK_NODE_DOWN;
}

static bool same_strs(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

/* The first of the task's own constraints (as written) that node n no
 * longer satisfies, or NULL. A task is held to the spec it was made from,
 * so that an update adding a constraint replaces tasks at the update's
 * pace; while that spec's constraints are the service's (nearly always),
 * the form the store parsed once serves. One that does not parse is
 * skipped: it judges nothing. */
static const char *unmet_constraint(const struct pass *p,
                                    const struct sk_service *svc,
                                    const struct sk_task *t,
                                    const struct sk_node *n)
{
    const struct sk_placement *tp = &t->spec.placement;
    if (tp->n_constraints == 0)
        return NULL;
    const struct sk_placement_rules *r =
        svc ? sk_store_placement(p->s, svc->meta.id) : NULL;
    bool parsed = r && !r->bad_constraint &&
                  same_strs(tp->constraints, tp->n_constraints,
                            svc->spec.task.placement.constraints,
                            svc->spec.task.placement.n_constraints);
    for (size_t i = 0; i < tp->n_constraints; i++) {
        struct sk_constraint own;
        const struct sk_constraint *c = &own;
        if (parsed)
            c = &r->constraints[i];
        else if (sk_constraint_parse(tp->constraints[i], &own, NULL) != SK_OK)
            continue;
        if (!sk_constraint_match(c, n))
            return tp->constraints[i];
    }
    return NULL;
}

enum node_fate { NODE_OK, NODE_LOST, NODE_DRAINED, NODE_UNFIT };

/* Whether the task may stay on its node: lost (removed or down), drained,
 * unfit (a constraint of its own no longer holds there, or it is beyond
 * the node's capacity), or fine. Unless fine, why (WHY_SIZE bytes) says
 * why, naming the node. */
static enum node_fate fate_of(const struct pass *p,
                              const struct sk_service *svc,
                              const struct sk_task *t, char *why)
{
    if (!*t->node_id)
        return NODE_OK;
    const struct sk_node *n = sk_store_get(p->s, SK_KIND_NODE, t->node_id);
    if (!n) {
        snprintf(why, WHY_SIZE, "its node was removed");
        return NODE_LOST;
    }
    if (n->status.state == SK_NODE_DOWN) {
        snprintf(why, WHY_SIZE, "node %s is down", n->spec.name);
        return NODE_LOST;
    }
    if (n->spec.availability == SK_AVAIL_DRAIN) {
        snprintf(why, WHY_SIZE, "node %s is drained", n->spec.name);
        return NODE_DRAINED;
    }
    const char *unmet = unmet_constraint(p, svc, t, n);
    if (unmet) {
        snprintf(why, WHY_SIZE, "node %s no longer satisfies %s", n->spec.name,
                 unmet);
        return NODE_UNFIT;
    }
    const char *evicted = sk_map_get(&p->evicted, t->meta.id);
    if (evicted) {
        snprintf(why, WHY_SIZE, "%s", evicted);
        return NODE_UNFIT;
    }
    return NODE_OK;
}

/* Why a global service does not want node n (its placement rules r say
 * no), naming the node, in why (WHY_SIZE bytes). */
static void unwanted_why(const struct sk_service *svc,
                         const struct sk_placement_rules *r,
                         const struct sk_node *n, char *why)
{
    if (!n) {
        snprintf(why, WHY_SIZE, "its node was removed");
        return;
    }
    if (n->spec.availability == SK_AVAIL_DRAIN) {
        snprintf(why, WHY_SIZE, "node %s is drained", n->spec.name);
        return;
    }
    if (r && r->bad_constraint) {
        snprintf(why, WHY_SIZE, "the service has an invalid constraint");
        return;
    }
    for (size_t i = 0; r && i < r->n_constraints; i++)
        if (!sk_constraint_match(&r->constraints[i], n)) {
            snprintf(why, WHY_SIZE, "node %s no longer satisfies %s",
                     n->spec.name, svc->spec.task.placement.constraints[i]);
            return;
        }
    snprintf(why, WHY_SIZE, "node no longer eligible");
}

/* ---- resources: shedding what a node can no longer hold ---- */

/* Holds its node's resources, and is meant to: live, to run, reserving. */
static bool holds_reservation(const struct sk_task *t)
{
    return *t->node_id && t->desired_state == SK_TASK_RUNNING &&
           !sk_task_state_terminal(t->status.state) &&
           (t->spec.reservations.memory_bytes > 0 ||
            t->spec.reservations.nano_cpus > 0);
}

static bool add_load(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    struct pass *p = ctx;
    if (!holds_reservation(t))
        return true;
    struct load *l = sk_map_get(&p->load, t->node_id);
    if (!l) {
        l = sk_calloc(1, sizeof *l);
        sk_map_put(&p->load, t->node_id, l);
    }
    l->mem += t->spec.reservations.memory_bytes;
    l->cpu += t->spec.reservations.nano_cpus;
    return true;
}

struct node_tasks {
    const struct pass *p;
    const struct sk_node *node;
    const struct sk_task **tasks;
    size_t n, cap;
};

static bool collect_holder(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    struct node_tasks *nt = ctx;
    if (!holds_reservation(t))
        return true;
    /* Going anyway: it leaves room for the others. */
    const struct sk_service *svc =
        sk_store_get(nt->p->s, SK_KIND_SERVICE, t->service_id);
    if (!svc || unmet_constraint(nt->p, svc, t, nt->node))
        return true;
    if (nt->n == nt->cap) {
        nt->cap = nt->cap ? nt->cap * 2 : 8;
        nt->tasks = sk_realloc(nt->tasks, nt->cap * sizeof *nt->tasks);
    }
    nt->tasks[nt->n++] = t;
    return true;
}

/* Oldest first. */
static int by_creation(const void *a, const void *b)
{
    const struct sk_task *x = *(const struct sk_task *const *)a;
    const struct sk_task *y = *(const struct sk_task *const *)b;
    if (x->meta.created_at != y->meta.created_at)
        return x->meta.created_at < y->meta.created_at ? -1 : 1;
    return strcmp(x->meta.id, y->meta.id);
}

/* "node h1 has 512 MiB of memory, less than its tasks reserve (800 MiB)";
 * CPU likewise, or both. */
static char *overcommit_why(const struct sk_node *n, const struct load *l)
{
    int64_t mem = n->description.memory_bytes, cpu = n->description.nano_cpus;
    bool mem_short = mem > 0 && l->mem > mem,
         cpu_short = cpu > 0 && l->cpu > cpu;
    char has[96] = "", reserve[96] = "";
    if (mem_short) {
        snprintf(has, sizeof has, "%lld MiB of memory", (long long)(mem >> 20));
        snprintf(reserve, sizeof reserve, "%lld MiB",
                 (long long)(l->mem >> 20));
    }
    if (cpu_short) {
        size_t hl = strlen(has), rl = strlen(reserve);
        snprintf(has + hl, sizeof has - hl, "%s%.2f CPUs",
                 mem_short ? " and " : "", (double)cpu / 1e9);
        snprintf(reserve + rl, sizeof reserve - rl, "%s%.2f CPUs",
                 mem_short ? ", " : "", (double)l->cpu / 1e9);
    }
    return sk_printf("node %s has %s, less than its tasks reserve (%s)",
                     n->spec.name, has, reserve);
}

/* A node whose capacity dropped below what its tasks reserve (it reported
 * less, or reported it for the first time): its tasks, oldest first, keep
 * their place while they fit; the newer ones beyond the capacity go. */
static void shed_beyond_capacity(struct pass *p, const struct sk_node *n,
                                 struct load *l)
{
    struct node_tasks nt = {.p = p, .node = n};
    sk_store_each_task_of_node(p->s, n->meta.id, collect_holder, &nt);
    if (nt.n > 1)
        qsort(nt.tasks, nt.n, sizeof *nt.tasks, by_creation);
    struct load kept = {0};
    char *why = NULL;
    for (size_t i = 0; i < nt.n; i++) {
        struct load r = reservation(&nt.tasks[i]->spec);
        if (fits(n, &kept, &r)) {
            kept.mem += r.mem;
            kept.cpu += r.cpu;
            continue;
        }
        if (!why)
            why = overcommit_why(n, l);
        sk_map_put(&p->evicted, nt.tasks[i]->meta.id, sk_strdup(why));
    }
    free(why);
    free(nt.tasks);
    *l = kept;
}

/* Adds up the reservations on every node, then sheds what a node cannot
 * hold. A node that is down or drained loses its tasks anyway. */
static void check_capacity(struct pass *p)
{
    sk_store_each(p->s, SK_KIND_TASK, add_load, p);
    struct sk_map_iter it;
    const char *node_id;
    void *v;
    struct load none = {0};
    sk_map_iter_init(&it, &p->load);
    while (sk_map_iter_next(&it, &node_id, &v)) {
        const struct sk_node *n = sk_store_get(p->s, SK_KIND_NODE, node_id);
        if (n && n->status.state != SK_NODE_DOWN &&
            n->spec.availability != SK_AVAIL_DRAIN && !fits(n, v, &none))
            shed_beyond_capacity(p, n, v);
    }
}

static void free_values(struct sk_map *m)
{
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, m);
    while (sk_map_iter_next(&it, NULL, &v))
        free(v);
    sk_map_clear(m);
}

static bool outdated(const struct sk_service *svc, const struct sk_task *t)
{
    /* A task of an older spec version that equals the current one -- after
     * a rollback, or an update back to it -- is not replaced for nothing. */
    return t->spec_version < svc->spec_version &&
           !sk_schema_equal(&sk_task_spec_schema, &t->spec, &svc->spec.task);
}

static bool failed_state(int state)
{
    return state == SK_TASK_FAILED || state == SK_TASK_REJECTED;
}

/* Decides whether a finished task restarts now; fills the attempts the new
 * task carries. Returns false if it never restarts; *later set if it will,
 * but only after the delay. */
static bool may_restart(struct pass *p, const struct sk_task *t,
                        const struct sk_restart_policy *rp, int64_t *attempts,
                        int64_t *window_start, bool *later)
{
    *later = false;
    int st = t->status.state;
    if (rp->condition == SK_RESTART_NONE)
        return false;
    /* A task stopped by someone else while it should run counts as a
     * failure. */
    bool failure =
        failed_state(st) || st == SK_TASK_SHUTDOWN || st == SK_TASK_ORPHANED;
    if (rp->condition == SK_RESTART_ON_FAILURE && !failure)
        return false;
    *attempts = t->restart_attempts;
    *window_start = t->restart_window_start;
    if (rp->window_ms > 0 && p->now - *window_start > rp->window_ms) {
        *attempts = 0;
        *window_start = p->now;
    }
    if (rp->max_attempts > 0 && *attempts >= rp->max_attempts)
        return false;
    int64_t due = t->status.timestamp + rp->delay_ms;
    if (p->now < due) {
        wake(p, due);
        *later = true;
    }
    (*attempts)++;
    return true;
}

/* ---- per slot ---- */

struct svc_tasks {
    struct slot *slots;
    size_t n, cap;
};

static struct slot *slot_for(struct svc_tasks *st, int64_t number,
                             const char *node_id)
{
    for (size_t i = 0; i < st->n; i++)
        if (st->slots[i].number == number &&
            (!node_id || strcmp(st->slots[i].node_id, node_id) == 0))
            return &st->slots[i];
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 16;
        st->slots = sk_realloc(st->slots, st->cap * sizeof *st->slots);
    }
    struct slot *s = &st->slots[st->n++];
    memset(s, 0, sizeof *s);
    s->number = number;
    if (node_id)
        snprintf(s->node_id, sizeof s->node_id, "%s", node_id);
    return s;
}

struct gather {
    struct svc_tasks *st;
    bool global;
};

static bool gather_task(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    struct gather *g = ctx;
    struct slot *s =
        slot_for(g->st, g->global ? 0 : t->slot, g->global ? t->node_id : NULL);
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4;
        s->tasks = sk_realloc(s->tasks, s->cap * sizeof *s->tasks);
    }
    s->tasks[s->n++] = t;
    return true;
}

/* Newest first. */
static int by_age(const void *a, const void *b)
{
    const struct sk_task *x = *(const struct sk_task *const *)a;
    const struct sk_task *y = *(const struct sk_task *const *)b;
    if (x->generation != y->generation)
        return x->generation > y->generation ? -1 : 1;
    if (x->meta.created_at != y->meta.created_at)
        return x->meta.created_at > y->meta.created_at ? -1 : 1;
    return strcmp(y->meta.id, x->meta.id);
}

static void free_tasks(struct svc_tasks *st)
{
    for (size_t i = 0; i < st->n; i++)
        free(st->slots[i].tasks);
    free(st->slots);
}

/* Keeps `history` finished tasks per slot besides the newest; deletes the
 * rest. */
static void reap(struct pass *p, const struct slot *s)
{
    size_t kept = 0;
    for (size_t i = 1; i < s->n; i++) {
        const struct sk_task *t = s->tasks[i];
        if (t->desired_state == SK_TASK_RUNNING)
            continue;
        bool gone = sk_task_state_terminal(t->status.state) || node_lost(p, t);
        if (!gone)
            continue;
        if ((int64_t)kept < p->history) {
            kept++;
            continue;
        }
        delete_task(p, t);
    }
}

/* The update (or rollback) settings in force. */
static const struct sk_update_config *
update_config(const struct sk_service *svc)
{
    int st = svc->update_status.state;
    return st == SK_UPDATE_ROLLBACK_STARTED || st == SK_UPDATE_ROLLBACK_PAUSED
               ? &svc->spec.rollback
               : &svc->spec.update;
}

static bool update_running(const struct sk_service *svc)
{
    return svc->update_status.state == SK_UPDATE_UPDATING ||
           svc->update_status.state == SK_UPDATE_ROLLBACK_STARTED;
}

/* Made from the current spec during this update (a replacement, or a
 * restart of one). */
static bool made_by_update(const struct sk_service *svc,
                           const struct sk_task *t)
{
    return !outdated(svc, t) &&
           t->meta.created_at >= svc->update_status.started_at;
}

/* A task of the slot made by this update that failed (or was rejected)
 * before it ran, or within `monitor` of starting to run; or NULL. */
static const struct sk_task *failed_replacement(const struct sk_service *svc,
                                                const struct slot *s)
{
    int64_t monitor = update_config(svc)->monitor_ms;
    for (size_t k = 0; k < s->n && made_by_update(svc, s->tasks[k]); k++) {
        const struct sk_task *t = s->tasks[k];
        if (failed_state(t->status.state) &&
            (!t->status.started_at ||
             t->status.timestamp - t->status.started_at <= monitor))
            return t;
    }
    return NULL;
}

/* The update bookkeeping of a service: how many replacements are under
 * way, whether the next batch may start, and how many failed. */
struct update_state {
    size_t in_flight;
    bool may_start;
    size_t outdated;
    size_t slots, failed;
    const struct sk_task *first_failure;
};

static void update_state(struct pass *p, const struct sk_service *svc,
                         const struct svc_tasks *st, int64_t max_slot,
                         struct update_state *u)
{
    memset(u, 0, sizeof *u);
    int64_t last_running = 0;
    bool all_running = true;
    for (size_t i = 0; i < st->n; i++) {
        const struct slot *s = &st->slots[i];
        if (!s->n || (max_slot && s->number > max_slot))
            continue;
        const struct sk_task *newest = s->tasks[0];
        u->slots++;
        const struct sk_task *f =
            update_running(svc) ? failed_replacement(svc, s) : NULL;
        if (f && !u->failed++)
            u->first_failure = f;
        if (outdated(svc, newest)) {
            u->outdated++;
            /* Stopping (stop-first), or stopped and about to be replaced
             * in this pass. */
            if (newest->desired_state != SK_TASK_RUNNING)
                u->in_flight++;
            continue;
        }
        if (newest->desired_state != SK_TASK_RUNNING)
            continue;
        if (newest->status.state < SK_TASK_RUNNING) {
            /* Only replacements count: a task that never had an older
             * version in its slot is not an update in flight. */
            for (size_t k = 1; k < s->n; k++)
                if (outdated(svc, s->tasks[k])) {
                    u->in_flight++;
                    break;
                }
            all_running = false;
        } else if (newest->status.timestamp > last_running) {
            last_running = newest->status.timestamp;
        }
    }
    const struct sk_update_config *cfg = update_config(svc);
    int64_t par = cfg->parallelism;
    u->may_start = par == 0 || (int64_t)u->in_flight < par;
    /* A paused update replaces nothing more until the next update. */
    if (svc->update_status.state == SK_UPDATE_PAUSED ||
        svc->update_status.state == SK_UPDATE_ROLLBACK_PAUSED)
        u->may_start = false;
    if (u->may_start && cfg->delay_ms > 0 && last_running) {
        if (!all_running) {
            u->may_start = false;
        } else if (p->now < last_running + cfg->delay_ms) {
            u->may_start = false;
            wake(p, last_running + cfg->delay_ms);
        }
    }
}

/* One slot (replicated) or one node (global) of a service; `unwanted`
 * says why, when it is not wanted. */
static void tend_slot(struct pass *p, const struct sk_service *svc,
                      const struct slot *s, bool wanted, const char *unwanted,
                      bool can_create, struct update_state *u)
{
    const struct sk_task_spec *ts = &svc->spec.task;
    const char *node_for_new =
        svc->spec.mode == SK_MODE_GLOBAL ? s->node_id : NULL;
    if (s->n == 0) {
        if (wanted && can_create && room(p))
            create(p, new_task(p, svc, s, node_for_new, 0, 0, "created"));
        return;
    }
    const struct sk_task *newest = s->tasks[0];

    /* Older tasks that still should run: only start-first updates keep one
     * until its successor runs. */
    for (size_t i = 1; i < s->n; i++) {
        const struct sk_task *t = s->tasks[i];
        if (t->desired_state != SK_TASK_RUNNING)
            continue;
        bool keep = update_config(svc)->order == SK_ORDER_START_FIRST &&
                    newest->desired_state == SK_TASK_RUNNING &&
                    newest->status.state < SK_TASK_RUNNING &&
                    !sk_task_state_terminal(newest->status.state);
        if (!keep)
            set_desired(p, t, SK_TASK_SHUTDOWN, "replaced");
    }

    if (!wanted) {
        if (newest->desired_state == SK_TASK_RUNNING)
            set_desired(p, newest, SK_TASK_SHUTDOWN, unwanted);
        reap(p, s);
        return;
    }

    char why[WHY_SIZE];
    enum node_fate fate = fate_of(p, svc, newest, why);
    bool terminal = sk_task_state_terminal(newest->status.state);
    /* A task that has ended is not moved for a node that stopped fitting
     * it: its restart policy decides, and the scheduler places its
     * successor where it fits. */
    bool moves = fate == NODE_LOST || fate == NODE_DRAINED ||
                 (fate == NODE_UNFIT && !terminal);

    if (newest->desired_state == SK_TASK_RUNNING) {
        if (moves && svc->spec.mode == SK_MODE_REPLICATED) {
            set_desired(p, newest, SK_TASK_SHUTDOWN, why);
            if (room(p))
                create(p, new_task(p, svc, s, NULL, newest->restart_attempts,
                                   newest->restart_window_start, why));
        } else if (moves) {
            /* Global: it cannot move; the node gets a new one once it fits
             * again. */
            set_desired(p, newest, SK_TASK_SHUTDOWN, why);
        } else if (terminal) {
            int64_t attempts = 0, window = 0;
            bool later = false;
            bool again = outdated(svc, newest)
                             ? true
                             : may_restart(p, newest, &ts->restart, &attempts,
                                           &window, &later);
            if (!again) {
                set_desired(p, newest, SK_TASK_SHUTDOWN, NULL);
            } else if (!later && can_create && room(p)) {
                set_desired(p, newest, SK_TASK_SHUTDOWN, NULL);
                create(p, new_task(p, svc, s, node_for_new, attempts, window,
                                   "restarted"));
            }
        } else if (outdated(svc, newest) && u->may_start) {
            const struct sk_update_config *cfg = update_config(svc);
            u->in_flight++;
            if (cfg->parallelism && (int64_t)u->in_flight >= cfg->parallelism)
                u->may_start = false;
            if (cfg->order == SK_ORDER_START_FIRST) {
                if (room(p))
                    create(p,
                           new_task(p, svc, s, node_for_new, 0, 0, "updated"));
            } else {
                set_desired(p, newest, SK_TASK_SHUTDOWN, "updating");
            }
        }
    } else if (terminal && can_create) {
        /* Stopped on purpose (stop-first update, or scaled down earlier and
         * now wanted again), or given up: a new spec gives it a new try. */
        bool stopped = newest->status.state == SK_TASK_SHUTDOWN ||
                       newest->status.state == SK_TASK_ORPHANED;
        if ((stopped || outdated(svc, newest)) && room(p))
            create(p, new_task(p, svc, s, node_for_new, 0, 0,
                               outdated(svc, newest) ? "updated" : "created"));
    } else if (!terminal && fate == NODE_LOST &&
               svc->spec.mode == SK_MODE_REPLICATED && can_create) {
        /* Told to stop, but its node is gone: do not wait for it. */
        bool stopped_for_update = outdated(svc, newest);
        if (stopped_for_update && room(p))
            create(p, new_task(p, svc, s, NULL, 0, 0, "updated"));
    }
    reap(p, s);
}

/* The first network of the task spec that no longer exists (as the
 * user named it), or NULL: a rollback to it could not be stored. */
static const char *missing_network(const struct pass *p,
                                   const struct sk_task_spec *spec)
{
    for (size_t i = 0; i < spec->n_networks; i++)
        if (!sk_store_get(p->s, SK_KIND_NETWORK, spec->networks[i].id))
            return spec->networks[i].target;
    return NULL;
}

/* Too many replacements failed (more than max_failure_ratio of the
 * slots): the failure action. Pause stops replacing; rollback puts the
 * previous task spec back, replaced under the rollback settings; a failing
 * rollback pauses. Returns true if it changed the service. */
static bool on_update_failure(struct pass *p, const struct sk_service *svc,
                              const struct update_state *u)
{
    const struct sk_update_config *cfg = update_config(svc);
    if (!update_running(svc) || u->failed == 0 || !room(p) ||
        (double)u->failed / (double)u->slots <= cfg->max_failure_ratio ||
        cfg->failure_action == SK_FAILURE_CONTINUE)
        return false;
    const struct sk_task *f = u->first_failure;
    const struct sk_node *node = sk_store_get(p->s, SK_KIND_NODE, f->node_id);
    char what[160];
    if (svc->spec.mode == SK_MODE_GLOBAL)
        snprintf(what, sizeof what, "the task of %s on %s", svc->spec.name,
                 node ? node->spec.name : "a removed node");
    else
        snprintf(what, sizeof what, "task %s.%lld", svc->spec.name,
                 (long long)f->slot);
    const char *cause = f->status.err && *f->status.err
                            ? f->status.err
                            : sk_task_state_name(f->status.state);
    bool rolling_back = svc->update_status.state == SK_UPDATE_ROLLBACK_STARTED;
    struct sk_service *upd = sk_object_dup(SK_KIND_SERVICE, svc);
    const char *gone = upd->previous_spec
                           ? missing_network(p, &upd->previous_spec->task)
                           : NULL;
    if (!rolling_back && cfg->failure_action == SK_FAILURE_ROLLBACK &&
        upd->previous_spec && !gone) {
        sk_service_roll_back(
            upd, p->now,
            sk_printf("rolling back: %zu of %zu tasks failed; %s failed: %s",
                      u->failed, u->slots, what, cause));
    } else {
        bool wanted_rollback =
            !rolling_back && cfg->failure_action == SK_FAILURE_ROLLBACK && gone;
        free(upd->update_status.message);
        upd->update_status.state =
            rolling_back ? SK_UPDATE_ROLLBACK_PAUSED : SK_UPDATE_PAUSED;
        upd->update_status.message = sk_printf(
            "%s paused: %zu of %zu tasks failed; %s failed: %s%s%s%s",
            rolling_back ? "rollback" : "update", u->failed, u->slots, what,
            cause,
            wanted_rollback ? "; cannot roll back: the previous spec's "
                              "network \""
                            : "",
            wanted_rollback ? gone : "",
            wanted_rollback ? "\" no longer exists" : "");
    }
    sk_txn_update(p->txn, SK_KIND_SERVICE, upd, svc->meta.version);
    p->changes++;
    sk_object_free(SK_KIND_SERVICE, upd);
    return true;
}

static void tend_service(struct pass *p, const struct sk_service *svc)
{
    struct svc_tasks st = {0};
    bool global = svc->spec.mode == SK_MODE_GLOBAL;
    struct gather g = {.st = &st, .global = global};
    sk_store_each_task_of_service(p->s, svc->meta.id, gather_task, &g);
    for (size_t i = 0; i < st.n; i++)
        qsort(st.slots[i].tasks, st.slots[i].n, sizeof *st.slots[i].tasks,
              by_age);

    struct update_state u;
    if (!global) {
        int64_t replicas = svc->spec.replicas;
        update_state(p, svc, &st, replicas, &u);
        if (on_update_failure(p, svc, &u)) {
            free_tasks(&st); /* the next pass works from the new state */
            return;
        }
        for (int64_t n = 1; n <= replicas; n++)
            slot_for(&st, n, NULL);
        for (size_t i = 0; i < st.n && room(p); i++) {
            bool wanted =
                st.slots[i].number >= 1 && st.slots[i].number <= replicas;
            tend_slot(p, svc, &st.slots[i], wanted, "scaled down", true, &u);
        }
    } else {
        const struct sk_placement_rules *rules =
            sk_store_placement(p->s, svc->meta.id);
        size_t nn;
        const void **nodes = sk_store_list(p->s, SK_KIND_NODE, &nn);
        for (size_t i = 0; i < nn; i++)
            slot_for(&st, 0, ((const struct sk_node *)nodes[i])->meta.id);
        update_state(p, svc, &st, 0, &u);
        if (on_update_failure(p, svc, &u)) {
            free(nodes);
            free_tasks(&st);
            return;
        }
        for (size_t i = 0; i < st.n && room(p); i++) {
            struct slot *s = &st.slots[i];
            const struct sk_node *node =
                sk_store_get(p->s, SK_KIND_NODE, s->node_id);
            bool for_new = false;
            bool wanted = node && sk_node_eligible(node, rules, &for_new);
            if (node && node->status.state == SK_NODE_DOWN && wanted) {
                /* It keeps its task; nothing can be done meanwhile. */
                reap(p, s);
                continue;
            }
            char why[WHY_SIZE] = "";
            if (!wanted)
                unwanted_why(svc, rules, node, why);
            /* A new task only where its reservation fits. */
            bool can_create = for_new && room_on(p, node, &svc->spec.task);
            tend_slot(p, svc, s, wanted, why, can_create, &u);
        }
        free(nodes);
    }

    /* The update is done once no task of the old spec runs any more. */
    if (u.outdated == 0 && room(p) && update_running(svc)) {
        /* ...and every replacement runs, and has run for `monitor`: a
         * failure until then still counts. */
        int64_t monitor = update_config(svc)->monitor_ms;
        bool pending_new = false;
        for (size_t i = 0; i < st.n; i++) {
            const struct sk_task *t =
                st.slots[i].n ? st.slots[i].tasks[0] : NULL;
            if (!t || t->desired_state != SK_TASK_RUNNING)
                continue;
            if (t->status.state < SK_TASK_RUNNING) {
                pending_new = true;
            } else if (t->status.state == SK_TASK_RUNNING &&
                       made_by_update(svc, t) &&
                       p->now < t->status.started_at + monitor) {
                pending_new = true;
                wake(p, t->status.started_at + monitor);
            }
        }
        if (!pending_new) {
            struct sk_service *upd = sk_object_dup(SK_KIND_SERVICE, svc);
            upd->update_status.state =
                svc->update_status.state == SK_UPDATE_UPDATING
                    ? SK_UPDATE_COMPLETED
                    : SK_UPDATE_ROLLBACK_COMPLETED;
            upd->update_status.completed_at = p->now;
            free(upd->update_status.message);
            upd->update_status.message =
                sk_update_done_message(&svc->update_status);
            sk_txn_update(p->txn, SK_KIND_SERVICE, upd, svc->meta.version);
            p->changes++;
            sk_object_free(SK_KIND_SERVICE, upd);
        }
    }
    free_tasks(&st);
}

/* Tasks whose service is gone: stop and remove them, then forget them. */
static bool tend_orphan(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    struct pass *p = ctx;
    if (!room(p))
        return false;
    if (sk_store_get(p->s, SK_KIND_SERVICE, t->service_id))
        return true;
    bool node_gone =
        *t->node_id && !sk_store_get(p->s, SK_KIND_NODE, t->node_id);
    if (!*t->node_id || node_gone ||
        (t->desired_state == SK_TASK_REMOVE &&
         sk_task_state_terminal(t->status.state)))
        delete_task(p, t);
    else
        set_desired(p, t, SK_TASK_REMOVE, "service removed");
    return true;
}

static int service_order(const void *a, const void *b)
{
    const struct sk_service *x = *(const struct sk_service *const *)a;
    const struct sk_service *y = *(const struct sk_service *const *)b;
    return strcmp(x->meta.id, y->meta.id);
}

void sk_orchestrate(const struct sk_store *s, struct sk_allocator *alloc,
                    int64_t now_ms, size_t max_ops,
                    struct sk_orchestration *out)
{
    struct pass p = {.s = s,
                     .alloc = alloc,
                     .now = now_ms,
                     .max_ops = max_ops,
                     .txn = sk_txn_new()};
    sk_allocator_sync(alloc, s);
    sk_map_init(&p.touched);
    sk_map_init(&p.load);
    sk_map_init(&p.evicted);
    check_capacity(&p);
    const struct sk_cluster *c = sk_store_cluster(s);
    p.history = c ? c->spec.task_history_limit : SK_DEFAULT_TASK_HISTORY;

    size_t n;
    const void **services = sk_store_list(s, SK_KIND_SERVICE, &n);
    qsort(services, n, sizeof *services, service_order);
    for (size_t i = 0; i < n && room(&p); i++)
        tend_service(&p, services[i]);
    free(services);
    sk_store_each(s, SK_KIND_TASK, tend_orphan, &p);
    sk_map_clear(&p.touched);
    free_values(&p.load);
    free_values(&p.evicted);

    out->changes = p.changes;
    out->wake_at_ms = p.wake_at;
    if (p.changes == 0) {
        sk_txn_free(p.txn);
        out->txn = NULL;
    } else {
        out->txn = p.txn;
    }
}

/* ---- what `service ls` counts ---- */

struct count_ctx {
    const struct sk_store *s;
    struct sk_service_counts *c;
};

static bool count_running(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    struct count_ctx *cc = ctx;
    if (t->desired_state != SK_TASK_RUNNING ||
        t->status.state != SK_TASK_RUNNING)
        return true;
    const struct sk_node *n = sk_store_get(cc->s, SK_KIND_NODE, t->node_id);
    if (n && n->status.state == SK_NODE_READY)
        cc->c->running++;
    return true;
}

void sk_service_counts(const struct sk_store *s, const struct sk_service *svc,
                       struct sk_service_counts *out)
{
    struct sk_service_counts c = {0};
    struct count_ctx cc = {s, &c};
    sk_store_each_task_of_service(s, svc->meta.id, count_running, &cc);
    if (svc->spec.mode == SK_MODE_REPLICATED) {
        c.desired = svc->spec.replicas;
    } else {
        const struct sk_placement_rules *rules =
            sk_store_placement(s, svc->meta.id);
        size_t n;
        const void **nodes = sk_store_list(s, SK_KIND_NODE, &n);
        for (size_t i = 0; i < n; i++) {
            const struct sk_node *node = nodes[i];
            bool for_new;
            c.desired += node->status.state == SK_NODE_READY &&
                         sk_node_eligible(node, rules, &for_new);
        }
        free(nodes);
    }
    *out = c;
}
