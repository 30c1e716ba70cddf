/* The dispatcher's side of the agent session: a node's assignment stream
 * (its tasks, in full on connect, then as they change) and its task status
 * reports (batched into Raft by the leader's pipeline). Leader only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager_internal.h"
#include "skiff/log.h"
#include "skiff/mem.h"
#include "skiff/netmap.h"
#include "skiff/wire.h"

#define SESSION_MAX_QUEUED (4u << 20)
#define PING_MS 1000

/* ---- the assignment stream ---- */

static void session_end(struct session *s)
{
    if (s->ended)
        return;
    s->ended = true;
    sk_list_remove(&s->link);
    sk_map_clear(&s->sent);
    free(s->net_sent);
    sk_http_stream_end(s->c->req);
    call_handoff(s->c);
    free(s);
}

static void session_abort(struct sk_http_req *req)
{
    session_end(req->data);
}

struct collect {
    const struct sk_store *store;
    struct session *s;
    struct sk_assignment *tasks; /* borrowed from the store */
    size_t n_tasks, cap;
    struct sk_map seen;
};

static bool collect_task(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    struct collect *c = ctx;
    sk_map_put(&c->seen, t->meta.id, (void *)1);
    uintptr_t sent = (uintptr_t)sk_map_get(&c->s->sent, t->meta.id);
    if (sent == (uintptr_t)t->meta.version)
        return true;
    sk_map_put(&c->s->sent, t->meta.id, (void *)(uintptr_t)t->meta.version);
    if (c->n_tasks == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->tasks = sk_realloc(c->tasks, c->cap * sizeof *c->tasks);
    }
    /* A shallow copy, only encoded: the strings stay the store's. */
    struct sk_assignment *a = &c->tasks[c->n_tasks++];
    *a = (struct sk_assignment){.task = *t};
    const struct sk_service *svc =
        sk_store_get(c->store, SK_KIND_SERVICE, t->service_id);
    if (svc) {
        a->service_name = svc->spec.name;
        /* Published ports are the service's; the agent binds them. */
        a->ports = svc->spec.endpoint.ports;
        a->n_ports = svc->spec.endpoint.n_ports;
    }
    return true;
}

static void session_write(struct session *s, const struct sk_session_msg *msg)
{
    size_t len;
    char *text = sk_wire_encode(&sk_session_msg_schema, msg, true, &len);
    sk_http_stream_write(s->c->req, text, len);
    free(text);
}

/* The node's network view, when it differs from what was sent last (the
 * first time, always: the agent forgets networks it no longer needs). Sent
 * before the assignments that may need it. */
static void session_send_networks(struct session *s)
{
    s->net_dirty = false;
    struct sk_session_msg msg = {.type = SK_SESSION_NETWORKS};
    msg.n_networks = sk_net_map(s->m->store, s->node_id, &msg.networks);
    size_t len;
    char *text = sk_wire_encode(&sk_session_msg_schema, &msg, true, &len);
    sk_net_map_free(msg.networks, msg.n_networks);
    if (s->net_sent && strcmp(s->net_sent, text) == 0) {
        free(text);
        return;
    }
    sk_http_stream_write(s->c->req, text, len);
    free(s->net_sent);
    s->net_sent = text;
}

static void session_flush(struct session *s)
{
    struct sk_manager *m = s->m;
    if (s->ended)
        return;
    if (sk_http_stream_queued(s->c->req) > SESSION_MAX_QUEUED) {
        /* The agent does not read: it gets everything again when it
         * reconnects. */
        SK_WARN("dispatcher", "node %s reads its assignments too slowly",
                s->node_id);
        session_end(s);
        return;
    }
    if (s->net_dirty)
        session_send_networks(s);
    uint64_t now = uv_now(m->loop);
    if (!s->dirty) {
        if (now - m->last_ping_ms >= PING_MS) {
            static const struct sk_session_msg ping = {.type = SK_SESSION_PING};
            session_write(s, &ping);
        }
        return;
    }
    struct sk_session_msg msg = {.type = SK_SESSION_ASSIGNMENTS,
                                 .full = sk_map_count(&s->sent) == 0};
    struct collect c = {.store = m->store, .s = s};
    sk_map_init(&c.seen);
    sk_store_each_task_of_node(m->store, s->node_id, collect_task, &c);
    struct sk_map_iter it;
    const char *id;
    sk_map_iter_init(&it, &s->sent);
    while (sk_map_iter_next(&it, &id, NULL)) {
        if (!sk_map_get(&c.seen, id)) {
            sk_strs_push(&msg.removed, &msg.n_removed, id);
            sk_map_del(&s->sent, id);
        }
    }
    sk_map_clear(&c.seen);
    s->dirty = false;
    msg.tasks = c.tasks;
    msg.n_tasks = c.n_tasks;
    if (msg.full || msg.n_tasks || msg.n_removed)
        session_write(s, &msg);
    free(c.tasks);
    for (size_t i = 0; i < msg.n_removed; i++)
        free(msg.removed[i]);
    free(msg.removed);
}

void sessions_flush_all(struct sk_manager *m)
{
    struct sk_list *it, *next;
    sk_list_each_safe(it, next, &m->sessions)
        session_flush(sk_list_entry(it, struct session, link));
    if (uv_now(m->loop) - m->last_ping_ms >= PING_MS)
        m->last_ping_ms = uv_now(m->loop);
}

void sessions_mark_node(struct sk_manager *m, const char *node_id)
{
    struct sk_list *it;
    sk_list_each(it, &m->sessions)
    {
        struct session *s = sk_list_entry(it, struct session, link);
        if (!node_id || strcmp(s->node_id, node_id) == 0)
            s->dirty = true;
    }
}

void sessions_mark_networks(struct sk_manager *m)
{
    struct sk_list *it;
    sk_list_each(it, &m->sessions)
    {
        sk_list_entry(it, struct session, link)->net_dirty = true;
    }
}

void sessions_end_all(struct sk_manager *m)
{
    struct session *s;
    while ((s = sk_list_first(&m->sessions, struct session, link)))
        session_end(s);
}

void api_self_assignments(struct call *c)
{
    struct sk_manager *m = c->m;
    if (!sk_raft_is_leader(&m->raft)) {
        const struct sk_node *l = mgr_leader_node(m);
        call_errorf(c, SK_ENOTLEADER, "assignments come from the leader%s%s",
                    l && l->manager.api_addr ? ", now at " : "",
                    l && l->manager.api_addr ? l->manager.api_addr : "");
        return;
    }
    struct session *s = sk_calloc(1, sizeof *s);
    s->m = m;
    s->c = c;
    snprintf(s->node_id, sizeof s->node_id, "%.26s", c->who.node_id);
    sk_map_init(&s->sent);
    s->dirty = s->net_dirty = true;
    sk_list_insert_head(&m->sessions, &s->link);
    c->req->data = s;
    c->req->abort_cb = session_abort;
    sk_http_stream_begin(c->req, 200, "application/x-ndjson");
    /* A node that opens its session is alive. */
    sk_liveness_heartbeat(&m->liveness, s->node_id, mgr_now_ms());
    session_flush(s);
    mgr_kick(m);
}

/* ---- status reports ---- */

/* Decoded once, checked whole: a bad report refuses the batch and records
 * nothing. */
void api_self_status(struct call *c)
{
    struct sk_manager *m = c->m;
    struct sk_task_reports in;
    struct sk_err err;
    if (sk_wire_decode(&sk_task_reports_schema, c->req->body, c->req->body_len,
                       &in, &err) != SK_OK) {
        call_error(c, &err);
        return;
    }
    for (size_t i = 0; i < in.n_tasks; i++) {
        if (sk_task_report_validate(&in.tasks[i], &err) != SK_OK) {
            sk_err_wrap(&err, "tasks[%zu]", i);
            sk_schema_free(&sk_task_reports_schema, &in);
            call_error(c, &err);
            return;
        }
    }
    size_t accepted = 0;
    for (size_t i = 0; i < in.n_tasks; i++) {
        struct sk_task_report *r = &in.tasks[i];
        const struct sk_task *t = sk_store_get(m->store, SK_KIND_TASK, r->id);
        if (!t || strcmp(t->node_id, c->who.node_id) != 0)
            continue; /* reaped, or not this node's: nothing to record */
        struct sk_pending_report *old = sk_map_get(&m->reports, r->id);
        if (old && old->report.state > r->state)
            continue;
        struct sk_pending_report *rep = sk_calloc(1, sizeof *rep);
        memcpy(rep->node_id, c->who.node_id, SK_ID_SIZE);
        rep->report = *r; /* taken over */
        memset(r, 0, sizeof *r);
        sk_pending_report_free(sk_map_put(&m->reports, rep->report.id, rep));
        accepted++;
    }
    sk_schema_free(&sk_task_reports_schema, &in);
    if (accepted)
        mgr_kick(m);
    call_json(
        c, 200,
        json_pack("{s:b, s:I}", "ok", 1, "accepted", (json_int_t)accepted));
}

/* ---- the node's agent ---- */

void api_agent(struct call *c)
{
    struct sk_manager *m = c->m;
    const struct sk_peer *p = c->req->peer;
    const struct sk_node *n = sk_store_get(m->store, SK_KIND_NODE, p->node_id);
    if (!p->authenticated || strcmp(p->role, "manager") != 0 || !n) {
        call_errorf(c, SK_EPERM, "only managers may call the agent");
        return;
    }
    if (!m->cfg.agent_handler) {
        call_errorf(c, SK_ENOTFOUND, "this node runs no agent");
        return;
    }
    struct sk_http_req *req = c->req;
    call_handoff(c);
    m->cfg.agent_handler(m->cfg.agent_ctx, req);
}
