/* The router: which handler serves a request (the declarative routes[]),
 * who is calling and whether they may (authorise), and the calls a
 * follower forwards to the leader. The handlers are in api*.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager_internal.h"
#include "skiff/mem.h"

#define FORWARD_TIMEOUT_MS 10000

/* ---- authorisation and routing ---- */

/* AUTH_NODE: a node's own calls. AUTH_MANAGER: a current manager, on its
 * own connection (the agent API a manager serves). AUTH_ADMIN: the control
 * API, for an admin certificate or a call a manager forwarded for one. */
enum auth { AUTH_NONE, AUTH_NODE, AUTH_MANAGER, AUTH_ADMIN };

/* Where a call is served: LEADER, writes (a follower forwards them); READ,
 * reads of the store, served by any manager that has applied what the
 * caller has seen (X-Skiff-Min-Index), by the leader after a barrier with
 * ?consistent=1, and refused while no leader is known unless ?stale=1;
 * HERE, everything else (health, the CA, streams, the agent's calls). */
enum serve { HERE, LEADER, READ };

struct route {
    const char *method;
    const char *pattern; /* "*" segments capture a parameter */
    enum auth auth;
    enum serve serve;
    void (*fn)(struct call *c);
};

static const struct route routes[] = {
    {"GET", "/v1/health", AUTH_NONE, HERE, api_health},
    {"GET", "/v1/ca", AUTH_NONE, HERE, api_ca},
    {"POST", "/v1/join", AUTH_NONE, LEADER, api_join},
    {"GET", "/v1/cluster", AUTH_ADMIN, LEADER, api_cluster},
    {"GET", "/v1/managers", AUTH_ADMIN, READ, api_managers},
    {"GET", "/v1/join-tokens", AUTH_ADMIN, READ, api_tokens},
    {"POST", "/v1/join-tokens/rotate", AUTH_ADMIN, LEADER, api_tokens_rotate},
    {"GET", "/v1/nodes", AUTH_ADMIN, READ, api_nodes},
    {"GET", "/v1/nodes/*", AUTH_ADMIN, READ, api_node_get},
    {"POST", "/v1/nodes/*/update", AUTH_ADMIN, LEADER, api_node_update},
    {"POST", "/v1/nodes/*/promote", AUTH_ADMIN, LEADER, api_node_promote},
    {"POST", "/v1/nodes/*/demote", AUTH_ADMIN, LEADER, api_node_demote},
    {"DELETE", "/v1/nodes/*", AUTH_ADMIN, LEADER, api_node_remove},
    {"POST", "/v1/node/heartbeat", AUTH_NODE, LEADER, api_self_heartbeat},
    {"POST", "/v1/node/certificate", AUTH_NODE, LEADER, api_self_certificate},
    {"POST", "/v1/node/leave", AUTH_NODE, LEADER, api_self_leave},
    {"POST", "/v1/node/status", AUTH_NODE, LEADER, api_self_status},
    {"GET", "/v1/node/assignments", AUTH_NODE, HERE, api_self_assignments},
    {"GET", "/v1/services", AUTH_ADMIN, READ, api_services},
    {"POST", "/v1/services", AUTH_ADMIN, LEADER, api_service_create},
    {"GET", "/v1/services/*", AUTH_ADMIN, READ, api_service_get},
    {"POST", "/v1/services/*/update", AUTH_ADMIN, LEADER, api_service_update},
    {"POST", "/v1/services/*/rollback", AUTH_ADMIN, LEADER,
     api_service_rollback},
    {"DELETE", "/v1/services/*", AUTH_ADMIN, LEADER, api_service_remove},
    {"GET", "/v1/services/*/logs", AUTH_ADMIN, HERE, api_service_logs},
    {"GET", "/v1/tasks", AUTH_ADMIN, READ, api_tasks},
    {"GET", "/v1/networks", AUTH_ADMIN, READ, api_networks},
    {"POST", "/v1/networks", AUTH_ADMIN, LEADER, api_network_create},
    {"GET", "/v1/networks/*", AUTH_ADMIN, READ, api_network_get},
    {"DELETE", "/v1/networks/*", AUTH_ADMIN, LEADER, api_network_remove},
    {"GET", "/v1/agent/*", AUTH_MANAGER, HERE, api_agent},
    {"GET", "/v1/events", AUTH_ADMIN, HERE, api_events},
    {"GET", "/metrics", AUTH_ADMIN, HERE, api_metrics},
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

/* ?NAME or ?NAME=anything but 0. */
static bool query_flag(const struct sk_http_req *req, const char *name)
{
    char v[8];
    return sk_http_query(req, name, v, sizeof v) && strcmp(v, "0") != 0;
}

static bool parse_index(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s || strlen(s) > 19)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

static void refuse(struct call *c, const struct sk_err *err)
{
    c->m->refused++;
    call_error(c, err);
}

/* A call forwarded by another manager (it sent X-Skiff-Principal): made by
 * a current manager's code for the principal it names, who must be a
 * member in good standing here too. Responds and returns false if not. */
static bool accept_forwarded(struct call *c, enum sk_cert_standing forwarder,
                             const struct sk_err *why, const char *principal)
{
    struct sk_manager *m = c->m;
    struct sk_err err;
    if (forwarder != SK_CERT_MANAGER) {
        /* Refused, but the caller is not to blame: typically a manager
         * demoted a moment ago, still forwarding until it restarts as a
         * worker. 503: the caller tries another manager. */
        sk_err_set(&err, SK_EUNAVAIL,
                   "node %s forwarded this call but is not a current "
                   "manager (%s): retry with another manager",
                   c->req->peer->node_id, why->msg);
        refuse(c, &err);
        return false;
    }
    struct sk_forwarded f = {.principal = principal,
                             .method = c->req->method,
                             .path = c->req->path,
                             .query = c->req->query,
                             .body = c->req->body,
                             .body_len = c->req->body_len};
    struct sk_principal p;
    if (sk_ca_forward_verify(m->forward_key, &f,
                             sk_http_header(c->req, "x-skiff-forward"),
                             mgr_now_ms(), &err) != SK_OK ||
        sk_principal_parse(principal, &p, &err) != SK_OK) {
        err.code = SK_EPERM;
        sk_err_wrap(&err, "node %s", c->req->peer->node_id);
        refuse(c, &err);
        return false;
    }
    if (p.kind == SK_PRINCIPAL_NODE) {
        struct sk_cert_ident cert = sk_principal_cert(&p);
        enum sk_cert_standing st =
            sk_ca_cert_standing(m->store, &cert, mgr_now_ms(), &err);
        if (st == SK_CERT_NOT_MEMBER || st == SK_CERT_REVOKED) {
            refuse(c, &err);
            return false;
        }
    }
    c->who = p;
    c->forwarded = true;
    return true;
}

/* Fills c->who from the connection's certificate, or from the principal
 * a manager forwarded the call for; responds and returns false if it is
 * refused. *manager: the connection is a current manager's own call.
 * leader_decides: a node's call that goes on to the leader, whose store has
 * the last word on who is a member. */
static bool identify(struct call *c, bool leader_decides, bool *manager)
{
    struct sk_manager *m = c->m;
    const struct sk_peer *peer = c->req->peer;
    memset(&c->who, 0, sizeof c->who);
    c->forwarded = false;
    *manager = false;
    if (!peer->authenticated)
        return true;
    if (strcmp(peer->role, "admin") == 0) {
        c->who.kind = SK_PRINCIPAL_ADMIN;
        return true;
    }
    struct sk_cert_ident cert = mgr_peer_cert(peer);
    struct sk_err why;
    enum sk_cert_standing st =
        sk_ca_cert_standing(m->store, &cert, mgr_now_ms(), &why);
    /* Only a manager forwards; anyone else's header is ignored. */
    const char *fwd = sk_http_header(c->req, "x-skiff-principal");
    if (fwd && strcmp(peer->role, "manager") == 0)
        return accept_forwarded(c, st, &why, fwd);
    /* A fresh manager that has not received the log yet knows no one, and
     * a follower may not have applied a node's join yet (the node
     * heartbeats a few ms after it): the leader answers for them, from the
     * certificate the forwarded principal carries. */
    if (st == SK_CERT_NOT_MEMBER &&
        (leader_decides || !sk_store_cluster(m->store)))
        st = SK_CERT_NODE;
    if (st == SK_CERT_NOT_MEMBER || st == SK_CERT_REVOKED) {
        refuse(c, &why);
        return false;
    }
    c->who.kind = SK_PRINCIPAL_NODE;
    snprintf(c->who.node_id, sizeof c->who.node_id, "%s", peer->node_id);
    snprintf(c->who.role, sizeof c->who.role, "%s", peer->role);
    snprintf(c->who.serial, sizeof c->who.serial, "%s", peer->serial);
    c->who.not_before_ms = peer->not_before_ms;
    *manager = st == SK_CERT_MANAGER;
    return true;
}

/* Works out who is calling; responds and returns false if they may not. */
static bool authorise(struct call *c, enum auth need, bool to_leader)
{
    struct sk_manager *m = c->m;
    bool manager;
    if (!identify(c, to_leader && need == AUTH_NODE, &manager))
        return false;
    switch (need) {
    case AUTH_NONE:
        return true;
    case AUTH_NODE:
        if (c->who.kind == SK_PRINCIPAL_NODE)
            return true;
        m->refused++;
        call_errorf(
            c, c->who.kind == SK_PRINCIPAL_NONE ? SK_EAUTH : SK_EPERM, "%s",
            c->who.kind == SK_PRINCIPAL_NONE ? "a node certificate is required"
                                             : "only a node may call this");
        return false;
    case AUTH_MANAGER:
        if (manager)
            return true;
        m->refused++;
        call_errorf(c, c->who.kind == SK_PRINCIPAL_NONE ? SK_EAUTH : SK_EPERM,
                    "only a manager of this cluster may call this");
        return false;
    case AUTH_ADMIN:
        if (c->who.kind == SK_PRINCIPAL_ADMIN)
            return true;
        m->refused++;
        if (c->who.kind == SK_PRINCIPAL_NONE)
            call_errorf(c, SK_EAUTH,
                        "a client certificate of this cluster is required "
                        "(use the admin credentials from `skiffd --init`)");
        else
            call_errorf(c, SK_EPERM,
                        "role %s may not use the control API (admin only)",
                        c->who.role);
        return false;
    }
    return false;
}

/* ---- forwarding to the leader ---- */

struct forward {
    struct sk_http_call http;
    struct call *c;
    char *url;
    char principal[sizeof "X-Skiff-Principal: " + SK_PRINCIPAL_MAX];
    char tag[sizeof "X-Skiff-Forward: " + SK_FORWARD_TAG_MAX];
    const char *headers[3];
    uint64_t leader;     /* Raft ID of the manager it went to */
    bool leader_changed; /* cancelled: another one leads now */
    struct sk_list link; /* in m->forwards */
};

static void forward_cb(struct sk_http_call *h)
{
    struct forward *f = h->data;
    struct call *c = f->c;
    sk_list_remove(&f->link);
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
        /* Read your writes: answer once this manager has applied what the
         * leader did for the call, so that the caller's next read here sees
         * it. */
        uint64_t index = 0;
        if (!h->captured || !parse_index(h->captured, &index))
            index = 0;
        reads_reply_after(c, index, (int)h->status, h->resp_body, h->resp_len);
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
    if (c->forwarded) {
        /* Already forwarded once: the leader moved meanwhile. */
        call_errorf(c, SK_ENOTLEADER,
                    "this manager is no longer the leader; retry");
        return;
    }
    const struct sk_node *self =
        sk_store_get(m->store, SK_KIND_NODE, m->node_id);
    if (self && self->spec.role != SK_ROLE_MANAGER) {
        /* Demoted: the leader would refuse what it forwards. */
        call_errorf(c, SK_EUNAVAIL,
                    "node %s is no longer a manager (it restarts as a worker): "
                    "retry with another manager",
                    self->spec.name);
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
    /* For whom, and proof that manager code says so (skiff/ca.h). */
    char principal[SK_PRINCIPAL_MAX], tag[SK_FORWARD_TAG_MAX];
    sk_principal_format(&c->who, principal);
    struct sk_forwarded fw = {.principal = principal,
                              .method = c->req->method,
                              .path = c->req->path,
                              .query = c->req->query,
                              .body = c->req->body,
                              .body_len = c->req->body_len};
    sk_ca_forward_sign(m->forward_key, &fw, mgr_now_ms(), tag);
    snprintf(f->principal, sizeof f->principal, "X-Skiff-Principal: %s",
             principal);
    snprintf(f->tag, sizeof f->tag, "X-Skiff-Forward: %s", tag);
    f->headers[0] = f->principal;
    f->headers[1] = f->tag;
    f->headers[2] = NULL;
    f->http.method = c->req->method;
    f->http.url = f->url;
    f->http.body = c->req->body_len ? c->req->body : NULL;
    f->http.body_len = c->req->body_len;
    f->http.headers = f->headers;
    f->http.capture_header = "X-Skiff-Index";
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
    sk_list_insert_head(&m->forwards, &f->link);
}

/* A call forwarded to a leader that has since lost its office would wait
 * for its timeout -- all of it if that leader's host is cut off and the call
 * went out on a kept-alive connection -- while another manager leads.
 * Answer it now (503: the client retries and finds the new leader). */
void router_cancel_stale_forwards(struct sk_manager *m)
{
    uint64_t leader = sk_raft_leader(&m->raft, NULL);
    struct sk_list *it;
    sk_list_each(it, &m->forwards)
    {
        struct forward *f = sk_list_entry(it, struct forward, link);
        if (f->leader != leader && !f->leader_changed) {
            /* Its callback runs later, never inside the cancel. */
            f->leader_changed = true;
            sk_http_call_cancel(&f->http);
        }
    }
}

void router_handle(struct sk_http_req *req)
{
    struct sk_manager *m = req->server->data;
    struct call *c = sk_calloc(1, sizeof *c);
    c->m = m;
    c->req = req;
    m->requests++;
    const struct route *r = NULL;
    bool path_known = false, public_path = false;
    char allow[64] = "";
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!match(routes[i].pattern, req->path, c))
            continue;
        path_known = true;
        public_path |= routes[i].auth == AUTH_NONE;
        if (strcmp(routes[i].method, req->method) == 0) {
            r = &routes[i];
            break;
        }
        size_t at = strlen(allow);
        snprintf(allow + at, sizeof allow - at, "%s%s", at ? ", " : "",
                 routes[i].method);
    }
    /* Strangers learn nothing about the API -- which paths exist, which
     * methods they take -- beyond its public calls. */
    if (!req->peer->authenticated && !public_path &&
        (!r || r->auth != AUTH_NONE)) {
        m->refused++;
        call_errorf(c, SK_EAUTH,
                    "a client certificate of this cluster is required (use "
                    "the admin credentials from `skiffd --init`)");
        return;
    }
    if (!r) {
        if (path_known) {
            sk_http_add_header(req, "Allow", allow);
            call_errorf(c, SK_EMETHOD, "%s is not allowed on %s (allowed: %s)",
                        req->method, req->path, allow);
        } else {
            call_errorf(c, SK_ENOTFOUND, "no such endpoint: %s %s", req->method,
                        req->path);
        }
        return;
    }
    bool want_consistent = query_flag(req, "consistent");
    bool leader = sk_raft_is_leader(&m->raft);
    bool to_leader =
        (r->serve == LEADER || (r->serve == READ && want_consistent)) &&
        !leader;
    if (!authorise(c, r->auth, to_leader))
        return;
    if (to_leader) {
        forward(c);
        return;
    }
    if (r->serve != READ) {
        r->fn(c);
        return;
    }
    int64_t alone = mgr_leaderless_ms(m);
    if (alone > 0 && !query_flag(req, "stale")) {
        call_errorf(c, SK_EUNAVAIL,
                    "no leader: this manager has heard of none for %lld ms "
                    "(a majority of managers unreachable?); add ?stale=1 "
                    "(skiff --stale) to read what it has anyway",
                    (long long)alone);
        return;
    }
    uint64_t min_index = 0;
    const char *seen = sk_http_header(req, "x-skiff-min-index");
    if (seen && !parse_index(seen, &min_index)) {
        call_errorf(c, SK_EINVAL,
                    "X-Skiff-Min-Index must be a Raft index (digits), got "
                    "\"%.32s\"",
                    seen);
        return;
    }
    reads_serve(c, r->fn, min_index, want_consistent);
}
