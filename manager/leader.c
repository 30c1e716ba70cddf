/* The leader's loops: cluster initialisation, Raft membership, the
 * cleanup after --force-new-cluster, and the pipeline that writes what the
 * pure core decides (task reports, node liveness, orchestration,
 * placements), one proposal at a time. Run by the manager's tick, on the
 * leader only. */
#include <stdlib.h>
#include <string.h>

#include "manager_internal.h"
#include "skiff/log.h"
#include "skiff/membership.h"
#include "skiff/mem.h"
#include "skiff/orchestrator.h"
#include "skiff/scheduler.h"

#define CATCH_UP_SLACK 64

void leader_init(struct sk_manager *m)
{
    sk_liveness_init(&m->liveness);
    sk_map_init(&m->reports);
    m->lead.allocator = sk_allocator_new();
}

void leader_free(struct sk_manager *m)
{
    sk_liveness_free(&m->liveness);
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, &m->reports);
    while (sk_map_iter_next(&it, NULL, &v))
        sk_pending_report_free(v);
    sk_map_clear(&m->reports);
    free(m->lead.changes);
    sk_allocator_free(m->lead.allocator);
    m->lead.allocator = NULL;
}

/* What changed in the store, for the loops to look at again, the agents'
 * sessions to send, and /v1/events to show. */
void leader_store_watch(const struct sk_event *ev, void *ctx)
{
    struct sk_manager *m = ctx;
    sk_events_record(m->events, m->store, ev, mgr_now_ms());
    reads_check(m);
    if (ev->type == SK_EV_RESET || ev->kind == SK_KIND_TASK ||
        ev->kind == SK_KIND_SERVICE || ev->kind == SK_KIND_NODE ||
        ev->kind == SK_KIND_NETWORK)
        sessions_mark_networks(m);
    if (ev->type == SK_EV_RESET) {
        sessions_mark_node(m, NULL);
        m->lead.orch_dirty = m->lead.sched_dirty = m->lead.alloc_dirty = true;
    } else if (ev->kind == SK_KIND_TASK) {
        const struct sk_task *a = ev->old_obj, *b = ev->new_obj;
        if (a && *a->node_id)
            sessions_mark_node(m, a->node_id);
        if (b && *b->node_id)
            sessions_mark_node(m, b->node_id);
        m->lead.orch_dirty = m->lead.sched_dirty = m->lead.alloc_dirty = true;
    } else if (ev->kind == SK_KIND_SERVICE || ev->kind == SK_KIND_NODE ||
               ev->kind == SK_KIND_CLUSTER) {
        m->lead.orch_dirty = m->lead.sched_dirty = m->lead.alloc_dirty = true;
    } else if (ev->kind == SK_KIND_NETWORK) {
        m->lead.alloc_dirty = true;
    }
    mgr_kick(m);
}

/* ---- leader loops ---- */

static void init_done(struct sk_manager *m, void *ctx, enum sk_rc rc,
                      const struct sk_err *err)
{
    m->lead.init_inflight = false;
    if (rc == SK_OK || rc == SK_EEXIST) {
        SK_INFO("manager", "cluster %s initialised", m->cluster_id);
        free(m->init_command);
        m->init_command = NULL;
        if (m->cfg.init_done_cb)
            m->cfg.init_done_cb(m->cfg.ctx);
    } else {
        SK_WARN("manager", "initialising the cluster: %s (will retry)",
                err->msg);
    }
    mgr_kick(m);
}

static void propose_init(struct sk_manager *m)
{
    if (m->lead.init_inflight || !m->init_command)
        return;
    struct sk_err err;
    if (!mgr_propose_cmd(m, m->init_command, strlen(m->init_command), init_done,
                         NULL, &err)) {
        SK_WARN("manager", "initialising the cluster: %s", err.msg);
        return;
    }
    m->lead.init_inflight = true;
}

static void change_cb(struct sk_raft_change *req, enum sk_rc rc,
                      const char *msg)
{
    struct sk_manager *m = req->data;
    m->lead.change_inflight = false;
    if (rc == SK_OK)
        SK_INFO("raft", "membership change for %llu done",
                (unsigned long long)req->id);
    else
        SK_WARN("raft", "membership change for %llu: %s",
                (unsigned long long)req->id, msg);
    mgr_kick(m);
}

static void reconcile_membership(struct sk_manager *m)
{
    if (m->lead.change_inflight)
        return;
    const struct raft_configuration *conf = sk_raft_configuration(&m->raft);
    struct sk_member servers[16];
    size_t n = 0;
    for (unsigned i = 0; i < conf->n && n < 16; i++) {
        servers[n].id = conf->servers[i].id;
        servers[n].role = conf->servers[i].role;
        servers[n].match_index =
            conf->servers[i].id == m->raft.raft.id
                ? sk_raft_last_index(&m->raft)
                : sk_raft_match_index(&m->raft, conf->servers[i].id);
        n++;
    }
    struct sk_member_action a =
        sk_membership_next(m->store, servers, n, m->raft.raft.id,
                           sk_raft_last_index(&m->raft), CATCH_UP_SLACK);
    enum sk_raft_change_type type;
    switch (a.type) {
    case SK_MEMBER_NOTHING:
        return;
    case SK_MEMBER_ADD:
        type = SK_RAFT_ADD_SPARE;
        break;
    case SK_MEMBER_REPLICATE:
        type = SK_RAFT_MAKE_STANDBY;
        break;
    case SK_MEMBER_PROMOTE:
        type = SK_RAFT_MAKE_VOTER;
        break;
    case SK_MEMBER_REMOVE:
        type = SK_RAFT_REMOVE;
        break;
    case SK_MEMBER_TRANSFER:
        type = SK_RAFT_TRANSFER;
        break;
    default:
        return;
    }
    SK_INFO("raft", "membership: %s %llu (%s)",
            type == SK_RAFT_ADD_SPARE      ? "add"
            : type == SK_RAFT_MAKE_STANDBY ? "replicate to"
            : type == SK_RAFT_MAKE_VOTER   ? "make voter"
            : type == SK_RAFT_REMOVE       ? "remove"
                                           : "transfer leadership to",
            (unsigned long long)a.id, a.why);
    m->lead.change.data = m;
    struct sk_err err;
    if (sk_raft_change(&m->raft, &m->lead.change, type, a.id, a.addr, change_cb,
                       &err) != SK_OK) {
        SK_WARN("raft", "membership change: %s", err.msg);
        return;
    }
    m->lead.change_inflight = true;
}

/* ---- the leader's pipeline: one proposal at a time ---- */

/* Each producer returns a transaction to commit, or NULL. */
typedef struct sk_txn *(*producer)(struct sk_manager *m);

static struct sk_txn *produce_liveness(struct sk_manager *m)
{
    const struct sk_cluster *cl = sk_store_cluster(m->store);
    int64_t period = cl->spec.heartbeat_period_ms;
    uint64_t now = uv_now(m->loop);
    if (now - m->lead.last_liveness_ms < (uint64_t)(period / 4 + 1))
        return NULL;
    m->lead.last_liveness_ms = now;
    struct sk_node_change *changes;
    size_t n = sk_liveness_check(&m->liveness, m->store, mgr_now_ms(), period,
                                 &changes);
    if (n == 0) {
        free(changes);
        return NULL;
    }
    struct sk_txn *t = sk_liveness_txn(m->store, changes, n, mgr_now_ms());
    if (!t) {
        free(changes);
        return NULL;
    }
    m->lead.changes = changes; /* logged on commit */
    m->lead.n_changes = n;
    return t;
}

/* Logs the node state changes of the loop's proposal if it committed, and
 * forgets them. */
static void log_loop_changes(struct sk_manager *m, bool committed)
{
    for (size_t i = 0; committed && i < m->lead.n_changes; i++) {
        const struct sk_node_change *ch = &m->lead.changes[i];
        const struct sk_node *n =
            sk_store_get(m->store, SK_KIND_NODE, ch->node_id);
        if (n) /* not proposed if the node was gone */
            SK_INFO("liveness", "node %s is %s: %s", n->spec.name,
                    sk_node_state_names[ch->state], ch->message);
    }
    free(m->lead.changes);
    m->lead.changes = NULL;
    m->lead.n_changes = 0;
}

/* Agents' reports become status changes, batched into one entry. */
static struct sk_txn *produce_reports(struct sk_manager *m)
{
    if (sk_map_count(&m->reports) == 0)
        return NULL;
    return sk_reports_txn(m->store, &m->reports, mgr_now_ms());
}

static struct sk_txn *produce_orchestration(struct sk_manager *m)
{
    int64_t now = mgr_now_ms();
    if (!m->lead.orch_dirty &&
        !(m->lead.orch_wake_ms && now >= m->lead.orch_wake_ms))
        return NULL;
    m->lead.orch_dirty = false;
    struct sk_orchestration o;
    sk_orchestrate(m->store, m->lead.allocator, now, SK_TXN_MAX_OPS / 2, &o);
    m->lead.orch_wake_ms = o.wake_at_ms;
    if (o.txn)
        m->lead.orch_dirty = true; /* look again once this is committed */
    return o.txn;
}

static struct sk_txn *produce_placements(struct sk_manager *m)
{
    if (!m->lead.sched_dirty)
        return NULL;
    struct sk_placements p;
    sk_schedule_txn(m->store, m->lead.allocator, mgr_now_ms(), SK_TXN_MAX_OPS,
                    &p);
    /* More may wait beyond this batch: look again once it is committed. */
    m->lead.sched_dirty = p.txn != NULL;
    if (p.placed)
        SK_DEBUG("scheduler", "placing %zu tasks", p.placed);
    return p.txn;
}

/* VIPs, the nodes' own addresses, and another try for the tasks that
 * wait for theirs (the orchestrator gives new tasks theirs). */
static struct sk_txn *produce_allocation(struct sk_manager *m)
{
    if (!m->lead.alloc_dirty)
        return NULL;
    struct sk_txn *t = sk_allocation_txn(m->store, m->lead.allocator,
                                         mgr_now_ms(), SK_TXN_MAX_OPS / 2);
    /* Look again once this is committed. */
    m->lead.alloc_dirty = t != NULL;
    return t;
}

static const producer producers[] = {
    produce_reports,    produce_liveness,   produce_orchestration,
    produce_allocation, produce_placements,
};
#define N_PRODUCERS (sizeof producers / sizeof producers[0])

static void pipeline_done(struct sk_manager *m, void *ctx, enum sk_rc rc,
                          const struct sk_err *err)
{
    m->lead.inflight = false;
    log_loop_changes(m, rc == SK_OK);
    if (rc != SK_OK) {
        /* Someone else changed the same objects (an API write): compute
         * again from the new state. */
        if (rc != SK_ECONFLICT)
            SK_WARN("manager", "leader loop change: %s", err->msg);
        m->lead.orch_dirty = m->lead.sched_dirty = m->lead.alloc_dirty = true;
    }
    mgr_kick(m);
}

static void run_pipeline(struct sk_manager *m)
{
    if (m->lead.inflight)
        return;
    for (size_t k = 0; k < N_PRODUCERS; k++) {
        size_t i = (m->lead.next_producer + k) % N_PRODUCERS;
        struct sk_txn *t = producers[i](m);
        if (!t)
            continue;
        m->lead.next_producer = (unsigned)((i + 1) % N_PRODUCERS);
        struct sk_err err;
        m->lead.inflight = true;
        if (!mgr_propose(m, t, pipeline_done, NULL, &err)) {
            m->lead.inflight = false;
            log_loop_changes(m, false);
            SK_DEBUG("manager", "leader loop: %s", err.msg);
        }
        return;
    }
}

static void forced_cleanup_done(struct sk_manager *m, void *ctx, enum sk_rc rc,
                                const struct sk_err *err)
{
    m->lead.forced_cleanup_inflight = false;
    if (rc == SK_OK)
        m->lead.forced_cleanup_done = true;
    else
        SK_WARN("manager", "--force-new-cluster cleanup: %s", err->msg);
}

struct demote_others {
    struct sk_txn *t;
    const char *self;
    size_t n;
};

static bool demote_other(const void *obj, void *ctx)
{
    const struct sk_node *n = obj;
    struct demote_others *d = ctx;
    if (n->spec.role != SK_ROLE_MANAGER || strcmp(n->meta.id, d->self) == 0)
        return true;
    struct sk_node *u = sk_object_dup(SK_KIND_NODE, n);
    u->spec.role = SK_ROLE_WORKER;
    free(u->status.message);
    u->status.message = sk_strdup(
        "left the managers with --force-new-cluster: promote it again");
    sk_txn_update(d->t, SK_KIND_NODE, u, n->meta.version);
    sk_object_free(SK_KIND_NODE, u);
    d->n++;
    return true;
}

/* After --force-new-cluster, the other managers' Raft state belongs to the
 * old configuration: they become workers (and wipe it), and the operator
 * promotes them again. */
static void forced_cleanup(struct sk_manager *m)
{
    if (m->lead.forced_cleanup_done || m->lead.forced_cleanup_inflight)
        return;
    struct demote_others d = {.t = sk_txn_new(), .self = m->node_id};
    sk_store_each(m->store, SK_KIND_NODE, demote_other, &d);
    if (d.n == 0) {
        sk_txn_free(d.t);
        m->lead.forced_cleanup_done = true;
        return;
    }
    SK_INFO("manager",
            "--force-new-cluster: %zu other managers become "
            "workers",
            d.n);
    struct sk_err err;
    m->lead.forced_cleanup_inflight = true;
    if (!mgr_propose(m, d.t, forced_cleanup_done, NULL, &err))
        m->lead.forced_cleanup_inflight = false;
}

void leader_tick(struct sk_manager *m)
{
    if (m->stopping)
        return;
    bool leader = sk_raft_is_leader(&m->raft);
    if (leader != m->lead.leading) {
        m->lead.leading = leader;
        if (leader) {
            m->lead.since = mgr_now_ms();
            sk_liveness_reset(&m->liveness, m->lead.since);
            m->lead.last_liveness_ms = uv_now(m->loop);
            m->lead.orch_dirty = m->lead.sched_dirty = m->lead.alloc_dirty =
                true;
            SK_INFO("manager", "this manager leads now");
        } else {
            /* Agents must find the new leader for their assignments. */
            sessions_end_all(m);
        }
    }
    if (!leader)
        return;
    const struct sk_cluster *cluster = sk_store_cluster(m->store);
    if (!cluster) {
        propose_init(m);
        return;
    }
    /* After --force-new-cluster, the old managers are made workers before
     * any membership change, so none is added back in between. */
    if (m->cfg.force_new_cluster && !m->lead.forced_cleanup_done)
        forced_cleanup(m);
    else
        reconcile_membership(m);
    run_pipeline(m);
    sessions_flush_all(m);
}
