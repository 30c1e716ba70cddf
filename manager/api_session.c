/* The dispatcher's side of the agent session: a node's assignment stream
 * (its tasks, in full on connect, then as they change) and its task status
 * reports (batched into Raft by the leader's pipeline). Leader only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager_internal.h"
#include "skiff/log.h"
#include "skiff/mem.h"

#define SESSION_MAX_QUEUED (4u << 20)
#define PING_MS 1000
#define MAX_REPORTS 5000

/* ---- the assignment stream ---- */

static void session_end(struct session *s)
{
    if (s->ended)
        return;
    s->ended = true;
    sk_list_remove(&s->link);
    sk_map_clear(&s->sent);
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
    json_t *tasks;
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
    json_t *j = sk_schema_encode(&sk_task_schema, t, SK_VIEW_PUBLIC);
    const struct sk_service *svc =
        sk_store_get(c->store, SK_KIND_SERVICE, t->service_id);
    if (svc) {
        json_object_set_new(j, "service_name", json_string(svc->spec.name));
        /* Published ports are the service's; the agent binds them. */
        json_t *ep = sk_schema_encode(&sk_endpoint_spec_schema,
                                      &svc->spec.endpoint, SK_VIEW_PUBLIC);
        json_object_set(j, "ports", json_object_get(ep, "ports"));
        json_decref(ep);
    }
    json_array_append_new(c->tasks, j);
    return true;
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
    uint64_t now = uv_now(m->loop);
    if (!s->dirty) {
        if (now - m->last_ping_ms >= PING_MS) {
            static const char ping[] = "{\"type\":\"ping\"}\n";
            sk_http_stream_write(s->c->req, ping, sizeof ping - 1);
        }
        return;
    }
    bool full = sk_map_count(&s->sent) == 0;
    struct collect c = {.store = m->store, .s = s, .tasks = json_array()};
    sk_map_init(&c.seen);
    sk_store_each_task_of_node(m->store, s->node_id, collect_task, &c);
    json_t *removed = json_array();
    struct sk_map_iter it;
    const char *id;
    sk_map_iter_init(&it, &s->sent);
    while (sk_map_iter_next(&it, &id, NULL)) {
        if (!sk_map_get(&c.seen, id)) {
            json_array_append_new(removed, json_string(id));
            sk_map_del(&s->sent, id);
        }
    }
    sk_map_clear(&c.seen);
    s->dirty = false;
    if (!full && json_array_size(c.tasks) == 0 &&
        json_array_size(removed) == 0) {
        json_decref(c.tasks);
        json_decref(removed);
        return;
    }
    json_t *msg = json_pack("{s:s, s:b, s:o, s:o}", "type", "assignments",
                            "full", full, "tasks", c.tasks, "removed", removed);
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    size_t len = strlen(text);
    text = sk_realloc(text, len + 2);
    text[len++] = '\n';
    sk_http_stream_write(s->c->req, text, len);
    free(text);
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
    s->dirty = true;
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

static char *opt_str(const json_t *o, const char *name, size_t cap)
{
    const char *s = json_string_value(json_object_get(o, name));
    if (!s)
        return NULL;
    return sk_strndup(s, cap);
}

void api_self_status(struct call *c)
{
    struct sk_manager *m = c->m;
    if (!call_body(c))
        return;
    const json_t *tasks = json_object_get(c->body, "tasks");
    if (!json_is_array(tasks)) {
        call_errorf(c, SK_EINVAL, "body needs \"tasks\": [...]");
        return;
    }
    if (json_array_size(tasks) > MAX_REPORTS) {
        call_errorf(c, SK_ETOOBIG, "more than %d task reports at once",
                    MAX_REPORTS);
        return;
    }
    size_t accepted = 0, i;
    const json_t *r;
    json_array_foreach(tasks, i, r)
    {
        const char *id = json_string_value(json_object_get(r, "id"));
        const char *state = json_string_value(json_object_get(r, "state"));
        int st = state ? sk_enum_index(sk_task_state_names, state) : -1;
        if (!id || !sk_id_valid(id) || st < SK_TASK_ACCEPTED ||
            st == SK_TASK_REMOVE) {
            call_errorf(c, SK_EINVAL,
                        "tasks[%zu]: needs an id and a state an agent may "
                        "report",
                        i);
            return;
        }
        const struct sk_task *t = sk_store_get(m->store, SK_KIND_TASK, id);
        if (!t || strcmp(t->node_id, c->who.node_id) != 0)
            continue; /* reaped, or not this node's: nothing to record */
        struct sk_pending_report *old = sk_map_get(&m->reports, id);
        if (old && old->state > st)
            continue;
        struct sk_pending_report *rep = sk_calloc(1, sizeof *rep);
        memcpy(rep->node_id, c->who.node_id, SK_ID_SIZE);
        rep->state = st;
        rep->timestamp = json_integer_value(json_object_get(r, "timestamp"));
        rep->exit_code = json_integer_value(json_object_get(r, "exit_code"));
        rep->healthy = json_is_true(json_object_get(r, "healthy"));
        rep->message = opt_str(r, "message", 512);
        rep->err = opt_str(r, "err", 512);
        rep->container_id = opt_str(r, "container_id", 128);
        sk_pending_report_free(sk_map_put(&m->reports, id, rep));
        accepted++;
    }
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
