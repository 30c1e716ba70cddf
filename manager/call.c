/* What every part of the manager runtime uses: responding to a call,
 * proposing through Raft, the cluster as the API shows it, and waking the
 * leader's loops. It calls nothing else in manager/. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "manager_internal.h"
#include "skiff/log.h"
#include "skiff/mem.h"

int64_t mgr_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct sk_cert_ident mgr_peer_cert(const struct sk_peer *peer)
{
    return (struct sk_cert_ident){.node_id = peer->node_id,
                                  .role = peer->role,
                                  .serial = peer->serial,
                                  .not_before_ms = peer->not_before_ms};
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

/* Every reply says how far this manager has applied the log, so a client
 * can ask any manager for at least that much next time (reads.c). */
static void stamp_index(struct call *c)
{
    char index[24];
    snprintf(index, sizeof index, "%llu",
             (unsigned long long)reads_applied(c->m));
    sk_http_add_header(c->req, "X-Skiff-Index", index);
}

void call_json(struct call *c, int status, json_t *body)
{
    stamp_index(c);
    sk_http_respond_json(c->req, status, body);
    call_free(c);
}

void call_raw(struct call *c, int status, const char *content_type,
              const char *body, size_t len)
{
    stamp_index(c);
    sk_http_respond(c->req, status, content_type, body, len);
    call_free(c);
}

void call_error(struct call *c, const struct sk_err *err)
{
    stamp_index(c);
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

bool mgr_propose_cmd(struct sk_manager *m, const char *cmd, size_t len,
                     propose_done done, void *ctx, struct sk_err *err)
{
    struct proposal *p = sk_calloc(1, sizeof *p);
    p->m = m;
    p->done = done;
    p->ctx = ctx;
    p->req.data = p;
    if (sk_raft_propose(&m->raft, &p->req, cmd, len, proposal_cb, err) !=
        SK_OK) {
        free(p);
        return false;
    }
    return true;
}

bool mgr_propose(struct sk_manager *m, struct sk_txn *t, propose_done done,
                 void *ctx, struct sk_err *err)
{
    size_t len;
    char *cmd = sk_txn_encode(t, mgr_now_ms(), &len);
    sk_txn_free(t);
    bool ok = mgr_propose_cmd(m, cmd, len, done, ctx, err);
    free(cmd);
    return ok;
}

struct call_reply {
    struct call *c;
    json_t *reply;
    char *committed; /* logged once the change commits, or NULL */
};

static void call_propose_done(struct sk_manager *m, void *ctx, enum sk_rc rc,
                              const struct sk_err *err)
{
    struct call_reply *r = ctx;
    if (rc == SK_OK) {
        if (r->committed)
            SK_INFO("api", "%s", r->committed);
        call_json(r->c, 200, r->reply ? r->reply : json_pack("{s:b}", "ok", 1));
    } else {
        json_decref(r->reply);
        call_error(r->c, err);
    }
    free(r->committed);
    free(r);
}

#ifdef SKIFF_TEST_FAULTS
/* Test builds only (-Dtest_faults=true): SKIFF_TEST_ACK_BEFORE_COMMIT=1
 * acknowledges a write as soon as the leader has appended it, before it
 * commits -- a deliberately broken manager that tests/chaos must catch. */
bool mgr_test_ack_before_commit(void)
{
    static int on = -1;
    if (on < 0) {
        const char *v = getenv("SKIFF_TEST_ACK_BEFORE_COMMIT");
        on = v && strcmp(v, "1") == 0;
    }
    return on;
}

static void forget_outcome(struct sk_manager *m, void *ctx, enum sk_rc rc,
                           const struct sk_err *err)
{
    free(ctx);
}
#endif

void call_propose_logged(struct call *c, struct sk_txn *t, json_t *reply,
                         char *committed)
{
#ifdef SKIFF_TEST_FAULTS
    if (mgr_test_ack_before_commit()) {
        struct sk_err err;
        if (!mgr_propose(c->m, t, forget_outcome, committed, &err)) {
            json_decref(reply);
            free(committed);
            call_error(c, &err);
            return;
        }
        call_json(c, 200, reply ? reply : json_pack("{s:b}", "ok", 1));
        return;
    }
#endif
    struct call_reply *r = sk_calloc(1, sizeof *r);
    r->c = c;
    r->reply = reply;
    r->committed = committed;
    struct sk_err err;
    if (!mgr_propose(c->m, t, call_propose_done, r, &err)) {
        json_decref(reply);
        free(committed);
        free(r);
        call_error(c, &err);
    }
}

void call_propose(struct call *c, struct sk_txn *t, json_t *reply)
{
    call_propose_logged(c, t, reply, NULL);
}

/* ---- what handlers ask about the cluster ---- */

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

const struct sk_node *call_lookup_node(struct call *c, const char *ref)
{
    struct sk_err err;
    const struct sk_node *n =
        sk_store_lookup(c->m->store, SK_KIND_NODE, ref, &err);
    if (!n)
        call_error(c, &err);
    return n;
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

void mgr_kick(struct sk_manager *m)
{
    if (m->kick_inited && !m->stopping)
        uv_async_send(&m->kick);
}
