/* The manager runtime: listeners, routing and authorisation, forwarding of
 * writes to the leader, proposals, and the leader loops. The handlers are
 * in api.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "manager_internal.h"
#include "skiff/log.h"
#include "skiff/membership.h"
#include "skiff/orchestrator.h"
#include "skiff/scheduler.h"
#include "skiff/mem.h"

#define TICK_MS 100
#define FORWARD_TIMEOUT_MS 10000
#define EVENT_HISTORY 4096
#define CATCH_UP_SLACK 64

int64_t mgr_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- responding ---- */

static void call_free(struct call *c)
{
    json_decref(c->body);
    free(c);
}

void call_handoff(struct call *c)
{
    call_free(c);
}

void call_json(struct call *c, int status, json_t *body)
{
    sk_http_respond_json(c->req, status, body);
    call_free(c);
}

void call_error(struct call *c, const struct sk_err *err)
{
    sk_http_respond_error(c->req, err);
    call_free(c);
}

void call_errorf(struct call *c, enum sk_rc code, const char *fmt, ...)
{
    struct sk_err err;
    va_list ap;
    va_start(ap, fmt);
    sk_err_vset(&err, code, fmt, ap);
    va_end(ap);
    call_error(c, &err);
}

bool call_body(struct call *c)
{
    if (c->body)
        return true;
    json_error_t jerr;
    c->body = json_loadb(c->req->body ? c->req->body : "", c->req->body_len, 0,
                         &jerr);
    if (!c->body || !json_is_object(c->body)) {
        if (c->body)
            call_errorf(c, SK_EINVAL, "request body must be a JSON object");
        else
            call_errorf(c, SK_EINVAL, "request body is not JSON: %s (line %d)",
                        jerr.text, jerr.line);
        return false;
    }
    return true;
}

/* ---- proposals ---- */

struct proposal {
    struct sk_raft_propose req;
    struct sk_manager *m;
    propose_done done;
    void *ctx;
};

static void proposal_cb(struct sk_raft_propose *req, enum sk_rc rc,
                        const struct sk_err *err)
{
    struct proposal *p = req->data;
    p->done(p->m, p->ctx, rc, err);
    free(p);
}

bool mgr_propose(struct sk_manager *m, struct sk_txn *t, propose_done done,
                 void *ctx, struct sk_err *err)
{
    size_t len;
    char *cmd = sk_txn_encode(t, mgr_now_ms(), &len);
    sk_txn_free(t);
    struct proposal *p = sk_calloc(1, sizeof *p);
    p->m = m;
    p->done = done;
    p->ctx = ctx;
    p->req.data = p;
    enum sk_rc rc =
        sk_raft_propose(&m->raft, &p->req, cmd, len, proposal_cb, err);
    free(cmd);
    if (rc != SK_OK) {
        free(p);
        return false;
    }
    return true;
}

struct call_reply {
    struct call *c;
    json_t *reply;
};

static void call_propose_done(struct sk_manager *m, void *ctx, enum sk_rc rc,
                              const struct sk_err *err)
{
    struct call_reply *r = ctx;
    if (rc == SK_OK) {
        call_json(r->c, 200, r->reply ? r->reply : json_pack("{s:b}", "ok", 1));
    } else {
        json_decref(r->reply);
        call_error(r->c, err);
    }
    free(r);
}

void call_propose(struct call *c, struct sk_txn *t, json_t *reply)
{
    struct call_reply *r = sk_calloc(1, sizeof *r);
    r->c = c;
    r->reply = reply;
    struct sk_err err;
    if (!mgr_propose(c->m, t, call_propose_done, r, &err)) {
        json_decref(reply);
        free(r);
        call_error(c, &err);
    }
}

/* ---- helpers for handlers ---- */

struct find_raft {
    uint64_t id;
    const struct sk_node *node;
};

static bool find_by_raft(const void *obj, void *ctx)
{
    const struct sk_node *n = obj;
    struct find_raft *f = ctx;
    if (f->id && n->manager.raft_id == f->id) {
        f->node = n;
        return false;
    }
    return true;
}

const struct sk_node *mgr_leader_node(const struct sk_manager *m)
{
    struct find_raft f = {.id = sk_raft_leader(&m->raft, NULL)};
    if (!f.id)
        return NULL;
    sk_store_each(m->store, SK_KIND_NODE, find_by_raft, &f);
    return f.node;
}

static bool add_addr(const void *obj, void *ctx)
{
    const struct sk_node *n = obj;
    if (n->spec.role == SK_ROLE_MANAGER && n->manager.api_addr)
        json_array_append_new(ctx, json_string(n->manager.api_addr));
    return true;
}

json_t *mgr_manager_addrs(const struct sk_manager *m)
{
    json_t *arr = json_array();
    sk_store_each(m->store, SK_KIND_NODE, add_addr, arr);
    return arr;
}

json_t *mgr_node_json(const struct sk_manager *m, const struct sk_node *n)
{
    json_t *j = sk_schema_encode(&sk_node_schema, n, SK_VIEW_PUBLIC);
    if (n->spec.role == SK_ROLE_MANAGER || n->manager.raft_id) {
        uint64_t leader = sk_raft_leader(&m->raft, NULL);
        const char *status = "unreachable";
        if (leader && leader == n->manager.raft_id)
            status = "leader";
        else if (n->status.state == SK_NODE_READY)
            status = "reachable";
        json_object_set_new(j, "manager_status", json_string(status));
    }
    return j;
}

static void tick_cb(uv_timer_t *t);

void mgr_kick(struct sk_manager *m)
{
    if (m->tick_inited && !m->stopping)
        uv_timer_start(&m->tick, tick_cb, 0, TICK_MS);
}

/* ---- authorisation and routing ---- */

enum auth { AUTH_NONE, AUTH_NODE, AUTH_ADMIN };

struct route {
    const char *method;
    const char *pattern; /* "*" segments capture a parameter */
    enum auth auth;
    bool forward; /* handled by the leader */
    void (*fn)(struct call *c);
};

static const struct route routes[] = {
    {"GET", "/v1/health", AUTH_NONE, false, api_health},
    {"GET", "/v1/ca", AUTH_NONE, false, api_ca},
    {"POST", "/v1/join", AUTH_NONE, true, api_join},
    {"GET", "/v1/cluster", AUTH_ADMIN, true, api_cluster},
    {"GET", "/v1/managers", AUTH_ADMIN, false, api_managers},
    {"GET", "/v1/join-tokens", AUTH_ADMIN, false, api_tokens},
    {"POST", "/v1/join-tokens/rotate", AUTH_ADMIN, true, api_tokens_rotate},
    {"GET", "/v1/nodes", AUTH_ADMIN, false, api_nodes},
    {"GET", "/v1/nodes/*", AUTH_ADMIN, false, api_node_get},
    {"POST", "/v1/nodes/*/update", AUTH_ADMIN, true, api_node_update},
    {"POST", "/v1/nodes/*/promote", AUTH_ADMIN, true, api_node_promote},
    {"POST", "/v1/nodes/*/demote", AUTH_ADMIN, true, api_node_demote},
    {"DELETE", "/v1/nodes/*", AUTH_ADMIN, true, api_node_remove},
    {"POST", "/v1/node/heartbeat", AUTH_NODE, true, api_self_heartbeat},
    {"POST", "/v1/node/certificate", AUTH_NODE, true, api_self_certificate},
    {"POST", "/v1/node/leave", AUTH_NODE, true, api_self_leave},
    {"POST", "/v1/node/status", AUTH_NODE, true, api_self_status},
    {"GET", "/v1/node/assignments", AUTH_NODE, false, api_self_assignments},
    {"GET", "/v1/services", AUTH_ADMIN, false, api_services},
    {"POST", "/v1/services", AUTH_ADMIN, true, api_service_create},
    {"GET", "/v1/services/*", AUTH_ADMIN, false, api_service_get},
    {"POST", "/v1/services/*/update", AUTH_ADMIN, true, api_service_update},
    {"POST", "/v1/services/*/rollback", AUTH_ADMIN, true, api_service_rollback},
    {"DELETE", "/v1/services/*", AUTH_ADMIN, true, api_service_remove},
    {"GET", "/v1/services/*/logs", AUTH_ADMIN, false, api_service_logs},
    {"GET", "/v1/tasks", AUTH_ADMIN, false, api_tasks},
    {"GET", "/v1/agent/*", AUTH_NONE, false, api_agent},
    {"GET", "/v1/events", AUTH_ADMIN, false, api_events},
    {"GET", "/metrics", AUTH_ADMIN, false, api_metrics},
};

/* Matches path against pattern; fills up to two parameters. */
static bool match(const char *pattern, const char *path, struct call *c)
{
    int np = 0;
    while (*pattern && *path) {
        if (*pattern == '*') {
            const char *end = strchr(path, '/');
            size_t len = end ? (size_t)(end - path) : strlen(path);
            if (len == 0 || len >= sizeof c->param[0] || np >= 2)
                return false;
            memcpy(c->param[np], path, len);
            c->param[np++][len] = '\0';
            path += len;
            pattern++;
            continue;
        }
        if (*pattern++ != *path++)
            return false;
    }
    return *pattern == '\0' && *path == '\0';
}

/* A known node's certificate: which node, and is it still in the
 * cluster? */
static bool known_node(const struct sk_manager *m, const struct sk_peer *p,
                       const struct sk_node **out)
{
    const struct sk_node *n = sk_store_get(m->store, SK_KIND_NODE, p->node_id);
    if (out)
        *out = n;
    return n != NULL;
}

/* Works out who is calling; responds and returns false if they may not.
 * leader_decides: the call goes on to the leader, whose store has the last
 * word on who is a member. */
static bool authorise(struct call *c, enum auth need, bool leader_decides)
{
    struct sk_manager *m = c->m;
    const struct sk_peer *peer = c->req->peer;
    const char *fwd = sk_http_header(c->req, "x-skiff-principal");
    c->who.kind = WHO_NONE;

    if (peer->authenticated) {
        snprintf(c->who.role, sizeof c->who.role, "%s", peer->role);
        const struct sk_node *n = NULL;
        /* A fresh manager that has not received the log yet knows no one,
         * and a follower may not have applied a node's join yet (the node
         * heartbeats a few ms after it): the leader answers for them. */
        bool defer = !sk_store_cluster(m->store) || leader_decides;
        if (strcmp(peer->role, "admin") == 0) {
            c->who.kind = WHO_ADMIN;
        } else if (!known_node(m, peer, &n) && !defer) {
            m->refused++;
            call_errorf(c, SK_EPERM,
                        "node %s is not a member of this cluster (removed?)",
                        peer->node_id);
            return false;
        }
        if (n || (defer && strcmp(peer->role, "admin") != 0)) {
            c->who.kind = WHO_NODE;
            snprintf(c->who.node_id, sizeof c->who.node_id, "%s",
                     peer->node_id);
        }
        /* A manager forwarding someone else's call speaks for them. */
        if (fwd && strcmp(peer->role, "manager") == 0) {
            if (strcmp(fwd, "admin") == 0) {
                c->who.kind = WHO_ADMIN;
            } else if (strncmp(fwd, "node ", 5) == 0) {
                c->who.kind = WHO_NODE;
                snprintf(c->who.node_id, sizeof c->who.node_id, "%s", fwd + 5);
            } else {
                c->who.kind = WHO_NONE;
            }
            snprintf(c->who.role, sizeof c->who.role, "forwarded");
        }
    }

    switch (need) {
    case AUTH_NONE:
        return true;
    case AUTH_NODE:
        if (c->who.kind == WHO_NODE)
            return true;
        m->refused++;
        call_errorf(c, c->who.kind == WHO_NONE ? SK_EAUTH : SK_EPERM, "%s",
                    c->who.kind == WHO_NONE ? "a node certificate is required"
                                            : "only a node may call this");
        return false;
    case AUTH_ADMIN:
        if (c->who.kind == WHO_ADMIN)
            return true;
        if (c->who.kind == WHO_NODE && !fwd &&
            strcmp(peer->role, "manager") == 0)
            return true; /* managers may read and forward */
        m->refused++;
        if (c->who.kind == WHO_NONE)
            call_errorf(c, SK_EAUTH,
                        "a client certificate of this cluster is required "
                        "(use the admin credentials from `skiffd --init`)");
        else
            call_errorf(c, SK_EPERM,
                        "role %s may not use the control API (admin only)",
                        peer->role);
        return false;
    }
    return false;
}

/* ---- forwarding to the leader ---- */

struct forward {
    struct sk_http_call http;
    struct call *c;
    char *url;
    char principal[128];
    const char *headers[2];
    uint64_t leader;              /* Raft ID of the manager it went to */
    bool leader_changed;          /* cancelled: another one leads now */
    struct forward *next, **prev; /* in m->forwards */
};

static void forward_cb(struct sk_http_call *h)
{
    struct forward *f = h->data;
    struct call *c = f->c;
    *f->prev = f->next;
    if (f->next)
        f->next->prev = f->prev;
    if (f->leader_changed) {
        call_errorf(c, SK_EUNAVAIL,
                    "the leader changed while the call was forwarded to it; "
                    "retry");
    } else if (h->err.code != SK_OK) {
        struct sk_err err;
        sk_err_copy(&err, &h->err);
        err.code = SK_EUNAVAIL;
        sk_err_wrap(&err, "leader unreachable");
        call_error(c, &err);
    } else {
        sk_http_respond(c->req, (int)h->status, "application/json",
                        h->resp_body ? h->resp_body : "", h->resp_len);
        call_free(c);
    }
    sk_http_call_reset(h);
    free(f->url);
    free(f);
}

/* Characters passed on unchanged into the leader's URL: unreserved ones,
 * plus `extra`. */
static bool safe_chars(const char *s, const char *extra)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || strchr("-_.~", *s) ||
              strchr(extra, *s)))
            return false;
    return true;
}

static void forward(struct call *c)
{
    struct sk_manager *m = c->m;
    if (c->req->peer->authenticated &&
        sk_http_header(c->req, "x-skiff-principal")) {
        /* Already forwarded once: the leader moved meanwhile. */
        call_errorf(c, SK_ENOTLEADER,
                    "this manager is no longer the leader; retry");
        return;
    }
    const struct sk_node *leader = mgr_leader_node(m);
    if (!leader || !leader->manager.api_addr) {
        call_errorf(c, SK_EUNAVAIL,
                    "no leader is known right now (election in progress, "
                    "or a majority of managers is unreachable)");
        return;
    }
    /* A query has parameters ("force=1", "consistent=1&x=%2F"). */
    if (!safe_chars(c->req->path, "/") || !safe_chars(c->req->query, "=&%+,")) {
        call_errorf(c, SK_EINVAL, "path cannot be forwarded");
        return;
    }
    struct forward *f = sk_calloc(1, sizeof *f);
    f->c = c;
    f->url = sk_printf("https://%s%s%s%s", leader->manager.api_addr,
                       c->req->path, *c->req->query ? "?" : "", c->req->query);
    if (c->who.kind == WHO_ADMIN)
        snprintf(f->principal, sizeof f->principal, "X-Skiff-Principal: admin");
    else if (c->who.kind == WHO_NODE)
        snprintf(f->principal, sizeof f->principal,
                 "X-Skiff-Principal: node %s", c->who.node_id);
    else
        snprintf(f->principal, sizeof f->principal,
                 "X-Skiff-Principal: anonymous");
    f->headers[0] = f->principal;
    f->headers[1] = NULL;
    f->http.method = c->req->method;
    f->http.url = f->url;
    f->http.body = c->req->body_len ? c->req->body : NULL;
    f->http.body_len = c->req->body_len;
    f->http.headers = f->headers;
    f->http.tls = &m->creds;
    f->http.connect_timeout_ms = 2000;
    f->http.timeout_ms = FORWARD_TIMEOUT_MS;
    f->http.cb = forward_cb;
    f->http.data = f;
    f->leader = leader->manager.raft_id;
    m->forwarded++;
    if (sk_http_call_start(&m->client, &f->http) != 0) {
        struct sk_err err = f->http.err;
        free(f->url);
        free(f);
        call_error(c, &err);
        return;
    }
    f->next = m->forwards;
    f->prev = &m->forwards;
    if (f->next)
        f->next->prev = &f->next;
    m->forwards = f;
}

/* A call forwarded to a leader that has since lost its office would wait
 * for its timeout -- all of it if that leader's host is cut off and the call
 * went out on a kept-alive connection -- while another manager leads.
 * Answer it now (503: the client retries and finds the new leader). */
static void cancel_stale_forwards(struct sk_manager *m)
{
    uint64_t leader = sk_raft_leader(&m->raft, NULL);
    for (struct forward *f = m->forwards; f; f = f->next)
        if (f->leader != leader && !f->leader_changed) {
            f->leader_changed = true;
            sk_http_call_cancel(&f->http);
        }
}

static void handle(struct sk_http_req *req)
{
    struct sk_manager *m = req->server->data;
    struct call *c = sk_calloc(1, sizeof *c);
    c->m = m;
    c->req = req;
    m->requests++;
    const struct route *r = NULL;
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!match(routes[i].pattern, req->path, c))
            continue;
        path_known = true;
        if (strcmp(routes[i].method, req->method) == 0) {
            r = &routes[i];
            break;
        }
    }
    if (!r) {
        /* Strangers learn nothing about the API, not even its methods. */
        if (path_known && authorise(c, AUTH_ADMIN, false))
            call_errorf(c, SK_EINVAL, "%s is not allowed on %s", req->method,
                        req->path);
        else if (!path_known)
            call_errorf(c, SK_ENOTFOUND, "no such endpoint: %s %s", req->method,
                        req->path);
        return;
    }
    char consistent[8];
    bool want_consistent =
        sk_http_query(req, "consistent", consistent, sizeof consistent) &&
        strcmp(consistent, "0") != 0;
    bool to_leader =
        (r->forward || want_consistent) && !sk_raft_is_leader(&m->raft);
    if (!authorise(c, r->auth, to_leader))
        return;
    if (to_leader) {
        forward(c);
        return;
    }
    r->fn(c);
}

/* ---- raft hooks ---- */

static bool raft_authorize(void *ctx, const struct sk_peer *peer, uint64_t id)
{
    struct sk_manager *m = ctx;
    /* Until this manager has the log, it cannot know the others: the CA
     * chain and the manager role (checked already) must do. */
    if (!sk_store_cluster(m->store))
        return true;
    const struct sk_node *n =
        sk_store_get(m->store, SK_KIND_NODE, peer->node_id);
    return n && n->spec.role == SK_ROLE_MANAGER;
}

static void raft_reject(void *ctx, const struct sk_err *err)
{
    struct sk_manager *m = ctx;
    m->refused++;
    SK_WARN("raft", "%s", err->msg);
}

static void raft_state_cb(void *ctx)
{
    struct sk_manager *m = ctx;
    const char *addr;
    uint64_t leader = sk_raft_leader(&m->raft, &addr);
    SK_INFO("raft", "%s, term %llu, leader %s", sk_raft_state_name(&m->raft),
            (unsigned long long)sk_raft_term(&m->raft),
            leader ? addr : "unknown");
    cancel_stale_forwards(m);
    mgr_kick(m);
}

/* Nothing may run on over a failed Raft store (raft_node.h): end here, as a
 * crash would, and let systemd restart skiffd; it loads what is on disk and
 * catches up from the other managers. */
static void raft_storage_error(void *ctx, const struct sk_err *err)
{
    (void)ctx;
    SK_ERROR("raft", "%s: exiting", err->msg);
    _Exit(EXIT_FAILURE);
}

static void mark_node_sessions(struct sk_manager *m, const char *node_id)
{
    if (!node_id || !*node_id)
        return;
    for (struct session *s = m->sessions; s; s = s->next)
        if (strcmp(s->node_id, node_id) == 0)
            s->dirty = true;
}

static void store_watch(const struct sk_event *ev, void *ctx)
{
    struct sk_manager *m = ctx;
    sk_events_record(m->events, ev, mgr_now_ms());
    if (ev->type == SK_EV_RESET) {
        for (struct session *s = m->sessions; s; s = s->next)
            s->dirty = true;
        m->orch_dirty = m->sched_dirty = true;
    } else if (ev->kind == SK_KIND_TASK) {
        const struct sk_task *a = ev->old_obj, *b = ev->new_obj;
        mark_node_sessions(m, a ? a->node_id : NULL);
        mark_node_sessions(m, b ? b->node_id : NULL);
        m->orch_dirty = m->sched_dirty = true;
    } else if (ev->kind == SK_KIND_SERVICE || ev->kind == SK_KIND_NODE ||
               ev->kind == SK_KIND_CLUSTER) {
        m->orch_dirty = m->sched_dirty = true;
    }
    mgr_kick(m);
}

/* ---- leader loops ---- */

static void init_done(struct sk_manager *m, void *ctx, enum sk_rc rc,
                      const struct sk_err *err)
{
    m->init_inflight = false;
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
    if (m->init_inflight || !m->init_command)
        return;
    size_t len = strlen(m->init_command);
    struct proposal *p = sk_calloc(1, sizeof *p);
    p->m = m;
    p->done = init_done;
    p->req.data = p;
    struct sk_err err;
    if (sk_raft_propose(&m->raft, &p->req, m->init_command, len, proposal_cb,
                        &err) != SK_OK) {
        SK_WARN("manager", "initialising the cluster: %s", err.msg);
        free(p);
        return;
    }
    m->init_inflight = true;
}

static void change_cb(struct sk_raft_change *req, enum sk_rc rc,
                      const char *msg)
{
    struct sk_manager *m = req->data;
    m->change_inflight = false;
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
    if (m->change_inflight)
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
    m->change.data = m;
    struct sk_err err;
    if (sk_raft_change(&m->raft, &m->change, type, a.id, a.addr, change_cb,
                       &err) != SK_OK) {
        SK_WARN("raft", "membership change: %s", err.msg);
        return;
    }
    m->change_inflight = true;
}

/* ---- the leader's pipeline: one proposal at a time ---- */

/* Each producer returns a transaction to commit, or NULL. */
typedef struct sk_txn *(*producer)(struct sk_manager *m);

static struct sk_txn *produce_liveness(struct sk_manager *m)
{
    const struct sk_cluster *cl = sk_store_cluster(m->store);
    int64_t period = cl->spec.heartbeat_period_ms;
    uint64_t now = uv_now(m->loop);
    if (now - m->last_liveness_ms < (uint64_t)(period / 4 + 1))
        return NULL;
    m->last_liveness_ms = now;
    struct sk_node_change *changes;
    size_t n = sk_dispatcher_check(&m->dispatcher, m->store, mgr_now_ms(),
                                   period, &changes);
    if (n == 0) {
        free(changes);
        return NULL;
    }
    struct sk_txn *t = sk_txn_new();
    for (size_t i = 0; i < n; i++) {
        const struct sk_node *cur =
            sk_store_get(m->store, SK_KIND_NODE, changes[i].node_id);
        if (!cur)
            continue;
        struct sk_node *u = sk_object_dup(SK_KIND_NODE, cur);
        u->status.state = changes[i].state;
        free(u->status.message);
        u->status.message = sk_strdup(changes[i].message);
        u->status.state_changed_at = mgr_now_ms();
        sk_trace("node", u->meta.id, sk_node_state_names[cur->status.state],
                 sk_node_state_names[u->status.state], changes[i].message);
        sk_txn_update(t, SK_KIND_NODE, u, cur->meta.version);
        sk_object_free(SK_KIND_NODE, u);
    }
    m->loop_changes = changes; /* logged on commit */
    m->n_loop_changes = n;
    return t;
}

/* Logs the node state changes of the loop's proposal if it committed, and
 * forgets them. */
static void log_loop_changes(struct sk_manager *m, bool committed)
{
    for (size_t i = 0; committed && i < m->n_loop_changes; i++) {
        const struct sk_node_change *ch = &m->loop_changes[i];
        const struct sk_node *n =
            sk_store_get(m->store, SK_KIND_NODE, ch->node_id);
        if (n) /* not proposed if the node was gone */
            SK_INFO("dispatcher", "node %s is %s: %s", n->spec.name,
                    sk_node_state_names[ch->state], ch->message);
    }
    free(m->loop_changes);
    m->loop_changes = NULL;
    m->n_loop_changes = 0;
}

void task_report_free(struct task_report *r)
{
    if (!r)
        return;
    free(r->message);
    free(r->err);
    free(r->container_id);
    free(r);
}

static char *dup_or_keep(const char *fresh, const char *old)
{
    return sk_strdup(fresh ? fresh : old ? old : "");
}

/* Agents' reports become status changes, batched into one entry. */
static struct sk_txn *produce_reports(struct sk_manager *m)
{
    if (sk_map_count(&m->reports) == 0)
        return NULL;
    struct sk_txn *t = sk_txn_new();
    struct sk_map_iter it;
    const char *id;
    void *v;
    sk_map_iter_init(&it, &m->reports);
    while (sk_map_iter_next(&it, &id, &v)) {
        struct task_report *r = v;
        const struct sk_task *cur = sk_store_get(m->store, SK_KIND_TASK, id);
        bool apply = cur && strcmp(cur->node_id, r->node_id) == 0 &&
                     (r->state > cur->status.state ||
                      (r->state == cur->status.state &&
                       r->healthy != cur->status.healthy));
        if (apply && sk_txn_count(t) < SK_TXN_MAX_OPS &&
            sk_txn_size(t) < SK_TXN_MAX_BYTES / 2) {
            struct sk_task *u = sk_object_dup(SK_KIND_TASK, cur);
            sk_trace("task", id, sk_task_state_name(cur->status.state),
                     sk_task_state_name(r->state), r->message);
            u->status.state = r->state;
            u->status.timestamp = r->timestamp ? r->timestamp : mgr_now_ms();
            if (r->state == SK_TASK_RUNNING)
                u->status.started_at = u->status.timestamp;
            u->status.exit_code = r->exit_code;
            u->status.healthy = r->healthy;
            char *msg = dup_or_keep(r->message, NULL);
            free(u->status.message);
            u->status.message = msg;
            free(u->status.err);
            u->status.err = r->err ? sk_strdup(r->err) : NULL;
            char *cid = dup_or_keep(r->container_id, cur->status.container_id);
            free(u->status.container_id);
            u->status.container_id = *cid ? cid : (free(cid), NULL);
            sk_txn_update(t, SK_KIND_TASK, u, cur->meta.version);
            sk_object_free(SK_KIND_TASK, u);
        } else if (apply) {
            continue; /* next entry */
        }
        sk_map_del(&m->reports, id);
        task_report_free(r);
    }
    if (sk_txn_count(t) == 0) {
        sk_txn_free(t);
        return NULL;
    }
    return t;
}

static struct sk_txn *produce_orchestration(struct sk_manager *m)
{
    int64_t now = mgr_now_ms();
    if (!m->orch_dirty && !(m->orch_wake_ms && now >= m->orch_wake_ms))
        return NULL;
    m->orch_dirty = false;
    struct sk_orchestration o;
    sk_orchestrate(m->store, now, SK_TXN_MAX_OPS / 2, &o);
    m->orch_wake_ms = o.wake_at_ms;
    if (o.txn)
        m->orch_dirty = true; /* look again once this is committed */
    return o.txn;
}

static struct sk_txn *produce_placements(struct sk_manager *m)
{
    if (!m->sched_dirty)
        return NULL;
    m->sched_dirty = false;
    struct sk_sched_decision *d;
    size_t n = sk_schedule(m->store, SK_TXN_MAX_OPS, &d);
    struct sk_txn *t = sk_txn_new();
    size_t placed = 0;
    for (size_t i = 0; i < n && sk_txn_size(t) < SK_TXN_MAX_BYTES / 2; i++) {
        const struct sk_task *task =
            sk_store_get(m->store, SK_KIND_TASK, d[i].task_id);
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
            u->status.timestamp = mgr_now_ms();
            placed++;
        } else {
            u->status.message = sk_strdup(d[i].reason);
        }
        sk_txn_update(t, SK_KIND_TASK, u, task->meta.version);
        sk_object_free(SK_KIND_TASK, u);
    }
    free(d);
    if (n > 0)
        m->sched_dirty = true; /* more may wait beyond this batch */
    if (sk_txn_count(t) == 0) {
        sk_txn_free(t);
        m->sched_dirty = false;
        return NULL;
    }
    if (placed)
        SK_DEBUG("scheduler", "placing %zu tasks", placed);
    return t;
}

static const producer producers[] = {
    produce_reports,
    produce_liveness,
    produce_orchestration,
    produce_placements,
};
#define N_PRODUCERS (sizeof producers / sizeof producers[0])

static void pipeline_done(struct sk_manager *m, void *ctx, enum sk_rc rc,
                          const struct sk_err *err)
{
    m->loop_inflight = false;
    log_loop_changes(m, rc == SK_OK);
    if (rc != SK_OK) {
        /* Someone else changed the same objects (an API write): compute
         * again from the new state. */
        if (rc != SK_ECONFLICT)
            SK_WARN("manager", "leader loop change: %s", err->msg);
        m->orch_dirty = m->sched_dirty = true;
    }
    mgr_kick(m);
}

static void run_pipeline(struct sk_manager *m)
{
    if (m->loop_inflight)
        return;
    for (size_t k = 0; k < N_PRODUCERS; k++) {
        size_t i = (m->next_producer + k) % N_PRODUCERS;
        struct sk_txn *t = producers[i](m);
        if (!t)
            continue;
        m->next_producer = (unsigned)((i + 1) % N_PRODUCERS);
        struct sk_err err;
        m->loop_inflight = true;
        if (!mgr_propose(m, t, pipeline_done, NULL, &err)) {
            m->loop_inflight = false;
            log_loop_changes(m, false);
            SK_DEBUG("manager", "leader loop: %s", err.msg);
        }
        return;
    }
}

static void forced_cleanup_done(struct sk_manager *m, void *ctx, enum sk_rc rc,
                                const struct sk_err *err)
{
    m->forced_cleanup_inflight = false;
    if (rc == SK_OK)
        m->forced_cleanup_done = true;
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
    if (m->forced_cleanup_done || m->forced_cleanup_inflight)
        return;
    struct demote_others d = {.t = sk_txn_new(), .self = m->node_id};
    sk_store_each(m->store, SK_KIND_NODE, demote_other, &d);
    if (d.n == 0) {
        sk_txn_free(d.t);
        m->forced_cleanup_done = true;
        return;
    }
    SK_INFO("manager",
            "--force-new-cluster: %zu other managers become "
            "workers",
            d.n);
    struct sk_err err;
    m->forced_cleanup_inflight = true;
    if (!mgr_propose(m, d.t, forced_cleanup_done, NULL, &err))
        m->forced_cleanup_inflight = false;
}

static void tick_cb(uv_timer_t *t)
{
    struct sk_manager *m = t->data;
    if (m->stopping)
        return;
    bool leader = sk_raft_is_leader(&m->raft);
    if (leader != m->leader) {
        m->leader = leader;
        if (leader) {
            m->leader_since = mgr_now_ms();
            sk_dispatcher_reset(&m->dispatcher, m->leader_since);
            m->last_liveness_ms = uv_now(m->loop);
            m->orch_dirty = m->sched_dirty = true;
            SK_INFO("manager", "this manager leads now");
        } else {
            /* Agents must find the new leader for their assignments. */
            while (m->sessions)
                session_end(m->sessions);
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
    if (m->cfg.force_new_cluster && !m->forced_cleanup_done)
        forced_cleanup(m);
    else
        reconcile_membership(m);
    run_pipeline(m);
    for (struct session *s = m->sessions, *next; s; s = next) {
        next = s->next;
        session_flush(s);
    }
    if (uv_now(m->loop) - m->last_ping_ms >= 1000)
        m->last_ping_ms = uv_now(m->loop);
}

/* ---- start and stop ---- */

static void accept_cb(struct sk_listener *l, struct sk_stream *s)
{
    struct sk_manager *m = l->data;
    sk_http_server_adopt(&m->http, s);
}

static void reject_cb(struct sk_listener *l, const struct sk_err *err)
{
    struct sk_manager *m = l->data;
    m->refused++;
    SK_INFO("api", "refused %s", err->msg);
}

static enum sk_rc make_tls(struct sk_manager *m, const char *cert,
                           const char *key, struct sk_err *err)
{
    struct sk_tls_config api = {.ca_pem = m->ca_pem,
                                .cert_pem = cert,
                                .key_pem = key,
                                .server = true,
                                .require_peer_cert = false};
    struct sk_tls_config rs = api;
    rs.require_peer_cert = true;
    struct sk_tls_config cl = api;
    cl.server = false;
    struct sk_tls_ctx *a = sk_tls_ctx_new(&api, err);
    struct sk_tls_ctx *r = a ? sk_tls_ctx_new(&rs, err) : NULL;
    struct sk_tls_ctx *c = r ? sk_tls_ctx_new(&cl, err) : NULL;
    if (!c) {
        sk_tls_ctx_unref(a);
        sk_tls_ctx_unref(r);
        return err->code;
    }
    sk_tls_ctx_unref(m->api_tls);
    sk_tls_ctx_unref(m->raft_server_tls);
    sk_tls_ctx_unref(m->client_tls);
    m->api_tls = a;
    m->raft_server_tls = r;
    m->client_tls = c;
    return SK_OK;
}

static void free_manager(struct sk_manager *m)
{
    sk_tls_ctx_unref(m->api_tls);
    sk_tls_ctx_unref(m->raft_server_tls);
    sk_tls_ctx_unref(m->client_tls);
    if (m->store && m->watch_id)
        sk_store_unwatch(m->store, m->watch_id);
    sk_store_free(m->store);
    sk_events_free(m->events);
    sk_dispatcher_free(&m->dispatcher);
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, &m->reports);
    while (sk_map_iter_next(&it, NULL, &v))
        task_report_free(v);
    sk_map_clear(&m->reports);
    free(m->raft_dir);
    free(m->loop_changes);
    free(m->node_id);
    free(m->cluster_id);
    free(m->listen_addr);
    free(m->api_addr);
    free(m->raft_addr);
    free(m->ca_pem);
    free(m->cert_pem);
    if (m->key_pem) {
        memset(m->key_pem, 0, strlen(m->key_pem));
        free(m->key_pem);
    }
    free(m->init_command);
    memset(m->data_key, 0, sizeof m->data_key);
    free(m);
}

static void closed_one(struct sk_manager *m)
{
    if (--m->closes_pending > 0)
        return;
    void (*cb)(void *) = m->stop_cb;
    void *ctx = m->stop_ctx;
    free_manager(m);
    if (cb)
        cb(ctx);
}

static void http_closed(struct sk_http_server *s)
{
    closed_one(s->data);
}

static void listener_closed(struct sk_listener *l)
{
    closed_one(l->data);
}

static void client_closed(struct sk_http_client *c)
{
    closed_one(
        (struct sk_manager *)((char *)c - offsetof(struct sk_manager, client)));
}

static void raft_closed(struct sk_raft_node *n)
{
    struct sk_manager *m =
        (struct sk_manager *)((char *)n - offsetof(struct sk_manager, raft));
    closed_one(m);
}

static void tick_closed(uv_handle_t *h)
{
    closed_one(h->data);
}

/* Closes whatever is open, counting what must call back. */
static void close_all(struct sk_manager *m)
{
    m->stopping = true;
    while (m->sessions)
        session_end(m->sessions);
    m->closes_pending = 1;
    if (m->tick_inited) {
        m->closes_pending++;
        uv_close((uv_handle_t *)&m->tick, tick_closed);
    }
    if (m->listening) {
        m->closes_pending++;
        sk_listener_close(&m->listener, listener_closed);
    }
    if (m->http_inited) {
        m->closes_pending++;
        sk_http_server_close(&m->http, http_closed);
    }
    if (m->client_inited) {
        m->closes_pending++;
        sk_http_client_close(&m->client, client_closed);
    }
    if (m->raft_inited) {
        m->closes_pending++;
        sk_raft_node_close(&m->raft, raft_closed);
    }
    closed_one(m);
}

struct sk_manager *sk_manager_start(const struct sk_manager_config *cfg,
                                    struct sk_err *err)
{
    struct sk_manager *m = sk_calloc(1, sizeof *m);
    m->loop = cfg->loop;
    m->cfg = *cfg;
    m->raft_dir = sk_strdup(cfg->raft_dir);
    m->node_id = sk_strdup(cfg->node_id);
    m->cluster_id = sk_strdup(cfg->cluster_id);
    m->listen_addr = sk_strdup(cfg->listen_addr);
    m->api_addr = sk_strdup(cfg->api_addr);
    m->raft_addr = sk_strdup(cfg->raft_addr);
    m->ca_pem = sk_strdup(cfg->ca_pem);
    m->cert_pem = sk_strdup(cfg->cert_pem);
    m->key_pem = sk_strdup(cfg->key_pem);
    m->init_command = cfg->init_command ? sk_strdup(cfg->init_command) : NULL;
    memcpy(m->data_key, cfg->data_key, sizeof m->data_key);
    m->creds = (struct sk_tls_creds){.ca_pem = m->ca_pem,
                                     .cert_pem = m->cert_pem,
                                     .key_pem = m->key_pem,
                                     .expect_role = "manager"};
    m->agent_creds = m->creds;
    m->agent_creds.expect_role = NULL;
    m->store = sk_store_new();
    m->events = sk_events_new(EVENT_HISTORY);
    sk_dispatcher_init(&m->dispatcher);
    sk_map_init(&m->reports);
    m->watch_id = sk_store_watch(m->store, store_watch, m);

    if (make_tls(m, m->cert_pem, m->key_pem, err) != SK_OK)
        goto fail;
    if (sk_http_client_init(&m->client, m->loop, err) != 0)
        goto fail;
    m->client_inited = true;

    struct sk_raft_node_config rc = {
        .loop = m->loop,
        .dir = m->raft_dir,
        .id = sk_raft_id_of(m->node_id),
        .address = m->raft_addr,
        .listen_host = m->listen_addr,
        .listen_port = cfg->raft_port,
        .server_tls = m->raft_server_tls,
        .client_tls = m->client_tls,
        .store = m->store,
        .authorize = raft_authorize,
        .authorize_ctx = m,
        .reject_cb = raft_reject,
        .reject_ctx = m,
        .state_cb = raft_state_cb,
        .state_ctx = m,
        .storage_error_cb = raft_storage_error,
        .election_timeout_ms = cfg->election_timeout_ms,
        .snapshot_threshold = cfg->snapshot_threshold,
    };
    if (sk_raft_node_init(&m->raft, &rc, err) != SK_OK)
        goto fail;
    m->raft_inited = true;
    if (cfg->bootstrap) {
        enum sk_rc b = sk_raft_node_bootstrap(&m->raft, err);
        if (b != SK_OK && b != SK_EEXIST)
            goto fail;
    }
    if (cfg->force_new_cluster && sk_raft_node_recover(&m->raft, err) != SK_OK)
        goto fail;
    if (sk_raft_node_start(&m->raft, err) != SK_OK)
        goto fail;

    struct sk_http_server_config hc = {
        .handler = handle,
        .data = m,
        .max_body_bytes = 8u << 20,
        .server_name = "skiff",
    };
    if (sk_http_server_init(&m->http, m->loop, &hc) != 0) {
        sk_err_set(err, SK_EINTERNAL, "HTTP server init failed");
        goto fail;
    }
    m->http.data = m;
    m->http_inited = true;
    struct sk_listener_config lc = {
        .host = m->listen_addr,
        .port = cfg->api_port,
        .tls = m->api_tls,
        .accept_cb = accept_cb,
        .reject_cb = reject_cb,
        .data = m,
    };
    if (sk_listener_start(&m->listener, m->loop, &lc, err) != 0)
        goto fail;
    m->listening = true;

    uv_timer_init(m->loop, &m->tick);
    m->tick.data = m;
    m->tick_inited = true;
    uv_timer_start(&m->tick, tick_cb, TICK_MS, TICK_MS);
    return m;
fail:
    close_all(m);
    return NULL;
}

enum sk_rc sk_manager_set_credentials(struct sk_manager *m,
                                      const char *cert_pem, const char *key_pem,
                                      struct sk_err *err)
{
    enum sk_rc rc = make_tls(m, cert_pem, key_pem, err);
    if (rc != SK_OK)
        return rc;
    free(m->cert_pem);
    free(m->key_pem);
    m->cert_pem = sk_strdup(cert_pem);
    m->key_pem = sk_strdup(key_pem);
    m->creds.cert_pem = m->cert_pem;
    m->creds.key_pem = m->key_pem;
    m->agent_creds.cert_pem = m->cert_pem;
    m->agent_creds.key_pem = m->key_pem;
    sk_listener_set_tls(&m->listener, m->api_tls);
    sk_raft_transport_set_tls(&m->raft.transport, m->raft_server_tls,
                              m->client_tls);
    return SK_OK;
}

bool sk_manager_is_leader(const struct sk_manager *m)
{
    return sk_raft_is_leader(&m->raft);
}

/* A leaving leader's handover. Two things hold it: libraft holds `change`
 * until transfer_cb (which raft_close also fires), and the bounding timer
 * until its close callback. It is freed when both have let go. */
struct handover {
    struct sk_raft_change change;
    struct sk_manager *m;
    uv_timer_t timer;
    bool transfer_pending, timer_closed, finishing;
};

static void handover_release(struct handover *ho)
{
    if (!ho->transfer_pending && ho->timer_closed)
        free(ho);
}

static void handover_timer_closed(uv_handle_t *h)
{
    struct handover *ho = h->data;
    struct sk_manager *m = ho->m;
    ho->timer_closed = true;
    handover_release(ho);
    close_all(m); /* may complete a pending transfer, which then frees ho */
}

/* The transfer completed or the time is up: stop the timer, then close. */
static void handover_finish(struct handover *ho)
{
    if (ho->finishing)
        return;
    ho->finishing = true;
    uv_close((uv_handle_t *)&ho->timer, handover_timer_closed);
}

static void handover_cb(struct sk_raft_change *req, enum sk_rc rc,
                        const char *msg)
{
    struct handover *ho = req->data;
    ho->transfer_pending = false;
    if (rc != SK_OK)
        SK_WARN("raft", "leadership handover: %s", msg);
    handover_finish(ho);
    handover_release(ho);
}

static void handover_timeout(uv_timer_t *t)
{
    handover_finish(t->data);
}

/* The other voters still connected to us: those that could take
 * leadership over. */
static unsigned connected_voters(const struct sk_manager *m)
{
    const struct raft_configuration *conf = sk_raft_configuration(&m->raft);
    uint64_t self = sk_raft_id_of(m->node_id);
    unsigned n = 0;
    for (unsigned i = 0; i < conf->n; i++)
        n += conf->servers[i].role == RAFT_VOTER &&
             conf->servers[i].id != self &&
             sk_raft_transport_hears_from(&m->raft.transport,
                                          conf->servers[i].id);
    return n;
}

void sk_manager_stop(struct sk_manager *m, bool handover, void (*cb)(void *),
                     void *ctx)
{
    m->stop_cb = cb;
    m->stop_ctx = ctx;
    if (handover && sk_raft_is_leader(&m->raft) && connected_voters(m) > 0) {
        /* A leaving leader hands over first, so the others need not wait
         * for an election timeout. Bounded: at most 2 s. Not when no other
         * voter is connected: nobody could take over, it would only wait. */
        struct handover *ho = sk_calloc(1, sizeof *ho);
        ho->m = m;
        ho->change.data = ho;
        uv_timer_init(m->loop, &ho->timer);
        ho->timer.data = ho;
        ho->transfer_pending = true;
        struct sk_err err;
        if (sk_raft_change(&m->raft, &ho->change, SK_RAFT_TRANSFER, 0, NULL,
                           handover_cb, &err) != SK_OK) {
            SK_WARN("raft", "leadership handover: %s", err.msg);
            ho->transfer_pending = false;
            handover_finish(ho); /* closes the timer, then everything */
            return;
        }
        SK_INFO("raft", "handing leadership over before stopping");
        if (!ho->finishing)
            uv_timer_start(&ho->timer, handover_timeout, 2000, 0);
        return;
    }
    close_all(m);
}
