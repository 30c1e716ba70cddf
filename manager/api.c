/* The control API's handlers. Each gets a call (request, caller, path
 * parameters) and ends it exactly once through call_json / call_error /
 * call_propose. Reads use the local store; the router has already sent
 * writes to the leader. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager_internal.h"
#include "skiff/ca.h"
#include "skiff/log.h"
#include "skiff/mem.h"
#include "skiff/wire.h"
#include "skiff_config.h"

/* ---- small JSON helpers ---- */

static const char *str_field(const json_t *o, const char *name)
{
    return json_string_value(json_object_get(o, name));
}

static const struct sk_cluster *need_cluster(struct call *c)
{
    const struct sk_cluster *cl = sk_store_cluster(c->m->store);
    if (!cl)
        call_errorf(c, SK_EUNAVAIL, "the cluster is not initialised yet");
    return cl;
}

/* ---- public ---- */

void api_health(struct call *c)
{
    struct sk_manager *m = c->m;
    call_json(c, 200,
              json_pack("{s:s, s:s, s:b, s:s, s:I}", "status", "ok",
                        "raft_state", sk_raft_state_name(&m->raft), "leader",
                        sk_raft_is_leader(&m->raft), "cluster_id",
                        m->cluster_id, "applied_index",
                        (json_int_t)sk_raft_applied_index(&m->raft)));
}

void api_ca(struct call *c)
{
    const struct sk_cluster *cl = sk_store_cluster(c->m->store);
    /* A manager that has no log yet still knows its CA from its data dir. */
    call_json(c, 200,
              json_pack("{s:s, s:s}", "ca_cert_pem",
                        cl ? cl->ca_cert_pem : c->m->ca_pem, "cluster_id",
                        c->m->cluster_id));
}

struct join_ctx {
    struct call *c;
    struct sk_join_grant grant;
};

static void join_done(struct sk_manager *m, void *ctx, enum sk_rc rc,
                      const struct sk_err *err)
{
    struct join_ctx *j = ctx;
    if (rc != SK_OK) {
        call_error(j->c, err);
    } else {
        const struct sk_node *n = j->grant.node;
        const struct sk_cluster *cl = sk_store_cluster(m->store);
        json_t *reply = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:o, s:I}", "node_id", n->meta.id,
            "role", sk_node_role_names[n->spec.role], "cert_pem",
            j->grant.cert_pem, "ca_cert_pem", cl->ca_cert_pem, "cluster_id",
            cl->meta.id, "managers", mgr_manager_addrs(m),
            "heartbeat_period_ms", (json_int_t)cl->spec.heartbeat_period_ms);
        if (n->spec.role == SK_ROLE_MANAGER) {
            char *key = sk_base64_encode(m->data_key, SK_DATA_KEY_SIZE);
            json_object_set_new(reply, "data_key", json_string(key));
            memset(key, 0, strlen(key));
            free(key);
        }
        SK_INFO("api", "node %s (%s) joined as %s", n->spec.name, n->meta.id,
                sk_node_role_names[n->spec.role]);
        call_json(j->c, 200, reply);
    }
    sk_join_grant_free(&j->grant);
    free(j);
}

/* The one unauthenticated write: decoded strictly, so a stranger's
 * malformed body is refused with the field it got wrong. */
/* Refused joins are logged a few at a time: a flood of bad tokens must not
 * flood the log. */
static struct sk_log_limit join_refusals =
    SK_LOG_LIMIT(SK_LOG_INFO, "api", "refused joins");

void api_join(struct call *c)
{
    struct sk_manager *m = c->m;
    struct sk_join_body req;
    struct sk_err err;
    if (sk_wire_decode(&sk_join_body_schema, c->req->body, c->req->body_len,
                       &req, &err) != SK_OK) {
        sk_log_limited(&join_refusals, err.code, "join refused from %s: %s",
                       c->req->peer->addr, err.msg);
        call_error(c, &err);
        return;
    }
    struct join_ctx *j = sk_calloc(1, sizeof *j);
    j->c = c;
    enum sk_rc rc =
        sk_ca_admit(m->store, m->data_key, &req, mgr_now_ms(), &j->grant, &err);
    sk_schema_free(&sk_join_body_schema, &req);
    if (rc != SK_OK) {
        sk_log_limited(&join_refusals, err.code, "join refused from %s: %s",
                       c->req->peer->addr, err.msg);
        free(j);
        call_error(c, &err);
        return;
    }
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NODE, j->grant.node);
    if (!mgr_propose(m, t, join_done, j, &err)) {
        sk_join_grant_free(&j->grant);
        free(j);
        call_error(c, &err);
    }
}

/* ---- cluster ---- */

void api_cluster(struct call *c)
{
    struct sk_manager *m = c->m;
    const struct sk_cluster *cl = need_cluster(c);
    if (!cl)
        return;
    json_t *j = sk_schema_encode(&sk_cluster_schema, cl, SK_VIEW_PUBLIC);
    json_object_del(j, "ca_cert_pem");
    const struct sk_node *leader = mgr_leader_node(m);
    if (leader)
        json_object_set_new(
            j, "leader",
            json_pack("{s:s, s:s, s:s?}", "node_id", leader->meta.id, "name",
                      leader->spec.name, "api_addr", leader->manager.api_addr));
    json_object_set_new(
        j, "raft",
        json_pack("{s:s, s:I, s:I, s:I, s:I}", "state",
                  sk_raft_state_name(&m->raft), "term",
                  (json_int_t)sk_raft_term(&m->raft), "commit_index",
                  (json_int_t)sk_raft_commit_index(&m->raft), "applied_index",
                  (json_int_t)sk_raft_applied_index(&m->raft), "last_index",
                  (json_int_t)sk_raft_last_index(&m->raft)));

    /* Managers: what the store wants, with their place in the Raft
     * configuration as this (leading) manager sees it. */
    json_t *managers = json_array();
    const struct raft_configuration *conf = sk_raft_configuration(&m->raft);
    size_t n_nodes, ready = 0, down = 0;
    const void **nodes = sk_store_list(m->store, SK_KIND_NODE, &n_nodes);
    for (size_t i = 0; i < n_nodes; i++) {
        const struct sk_node *n = nodes[i];
        ready += n->status.state == SK_NODE_READY;
        down += n->status.state == SK_NODE_DOWN;
        if (n->spec.role != SK_ROLE_MANAGER && !n->manager.raft_id)
            continue;
        const char *member = "none";
        for (unsigned k = 0; k < conf->n; k++)
            if (conf->servers[k].id == n->manager.raft_id)
                member =
                    conf->servers[k].role == RAFT_VOTER ? "voter" : "spare";
        json_t *mj = mgr_node_json(m, n);
        json_t *row = json_pack(
            "{s:s, s:s, s:s?, s:s?, s:s, s:s, s:s}", "node_id", n->meta.id,
            "name", n->spec.name, "api_addr", n->manager.api_addr, "raft_addr",
            n->manager.raft_addr, "raft_member", member, "status",
            json_string_value(json_object_get(mj, "manager_status"))
                ? json_string_value(json_object_get(mj, "manager_status"))
                : "none",
            "desired_role", sk_node_role_names[n->spec.role]);
        json_decref(mj);
        json_array_append_new(managers, row);
    }
    free(nodes);
    json_object_set_new(j, "managers", managers);
    json_object_set_new(j, "nodes",
                        json_pack("{s:I, s:I, s:I}", "total",
                                  (json_int_t)n_nodes, "ready",
                                  (json_int_t)ready, "down", (json_int_t)down));
    call_json(c, 200, j);
}

/* The managers' API addresses, for clients to keep their list fresh. */
void api_managers(struct call *c)
{
    call_json(c, 200, mgr_manager_addrs(c->m));
}

void api_tokens(struct call *c)
{
    struct sk_manager *m = c->m;
    const struct sk_cluster *cl = need_cluster(c);
    if (!cl)
        return;
    char *w = NULL, *mt = NULL;
    struct sk_err err;
    if (sk_ca_token(cl, m->data_key, SK_ROLE_WORKER, &w, &err) != SK_OK ||
        sk_ca_token(cl, m->data_key, SK_ROLE_MANAGER, &mt, &err) != SK_OK) {
        free(w);
        call_error(c, &err);
        return;
    }
    call_json(c, 200, json_pack("{s:s, s:s}", "worker", w, "manager", mt));
    free(w);
    free(mt);
}

void api_tokens_rotate(struct call *c)
{
    struct sk_manager *m = c->m;
    if (!call_body(c))
        return;
    const struct sk_cluster *cl = need_cluster(c);
    if (!cl)
        return;
    const char *role = str_field(c->body, "role");
    int r = role ? sk_enum_index(sk_node_role_names, role) : -1;
    if (r < 0) {
        call_errorf(c, SK_EINVAL, "role must be worker or manager, not \"%s\"",
                    role ? role : "");
        return;
    }
    struct sk_cluster *copy;
    char *token;
    struct sk_err err;
    if (sk_ca_rotate_token(cl, m->data_key, r, &copy, &token, &err) != SK_OK) {
        call_error(c, &err);
        return;
    }
    struct sk_txn *t = sk_txn_new();
    sk_txn_update(t, SK_KIND_CLUSTER, copy, cl->meta.version);
    sk_object_free(SK_KIND_CLUSTER, copy);
    call_propose_logged(c, t,
                        json_pack("{s:s, s:s}", "role", role, "token", token),
                        sk_printf("%s join token rotated", role));
    free(token);
}

/* ---- a node's own calls ---- */

static const struct sk_node *self_node(struct call *c)
{
    const struct sk_node *n =
        sk_store_get(c->m->store, SK_KIND_NODE, c->who.node_id);
    if (!n)
        call_errorf(c, SK_EPERM, "node %s is not a member of this cluster",
                    c->who.node_id);
    return n;
}

static bool str_differs(const char *a, const char *b)
{
    return b && (!a || strcmp(a, b) != 0);
}

void api_self_heartbeat(struct call *c)
{
    struct sk_manager *m = c->m;
    /* What the node says about itself: an empty body says nothing. */
    struct sk_heartbeat hb = {0};
    struct sk_err err;
    if (c->req->body_len &&
        sk_wire_decode(&sk_heartbeat_schema, c->req->body, c->req->body_len,
                       &hb, &err) != SK_OK) {
        call_error(c, &err);
        return;
    }
    const struct sk_cluster *cl = need_cluster(c);
    const struct sk_node *n = cl ? self_node(c) : NULL;
    if (!n) {
        sk_schema_free(&sk_heartbeat_schema, &hb);
        return;
    }
    sk_liveness_heartbeat(&m->liveness, n->meta.id, mgr_now_ms());
    if (n->status.state != SK_NODE_READY)
        mgr_kick(m);

    json_t *reply =
        json_pack("{s:I, s:o, s:o}", "heartbeat_period_ms",
                  (json_int_t)cl->spec.heartbeat_period_ms, "node",
                  mgr_node_json(m, n), "managers", mgr_manager_addrs(m));
    const struct sk_node *leader = mgr_leader_node(m);
    if (leader && leader->manager.api_addr)
        json_object_set_new(reply, "leader",
                            json_string(leader->manager.api_addr));

    /* Record the description when it changed. */
    const struct sk_node_description *desc = &hb.description;
    bool changed =
        str_differs(n->description.engine_version, desc->engine_version) ||
        str_differs(n->description.skiff_version, desc->skiff_version) ||
        str_differs(n->description.addr, desc->addr) ||
        str_differs(n->description.data_addr, desc->data_addr) ||
        str_differs(n->description.agent_addr, desc->agent_addr) ||
        (desc->nano_cpus && desc->nano_cpus != n->description.nano_cpus) ||
        (desc->memory_bytes &&
         desc->memory_bytes != n->description.memory_bytes);
    if (changed) {
        struct sk_node *u = sk_object_dup(SK_KIND_NODE, n);
        sk_schema_free(&sk_node_description_schema, &u->description);
        sk_schema_copy(&sk_node_description_schema, &u->description, desc);
        if (!u->description.hostname && n->description.hostname)
            u->description.hostname = sk_strdup(n->description.hostname);
        struct sk_txn *t = sk_txn_new();
        sk_txn_update(t, SK_KIND_NODE, u, n->meta.version);
        sk_object_free(SK_KIND_NODE, u);
        sk_schema_free(&sk_heartbeat_schema, &hb);
        call_propose(c, t, reply);
        return;
    }
    sk_schema_free(&sk_heartbeat_schema, &hb);
    call_json(c, 200, reply);
}

struct cert_ctx {
    struct call *c;
    char *cert;
    int role;
};

static void cert_reply(struct sk_manager *m, struct cert_ctx *cc)
{
    const struct sk_cluster *cl = sk_store_cluster(m->store);
    json_t *reply =
        json_pack("{s:s, s:s, s:s, s:s, s:o}", "cert_pem", cc->cert, "role",
                  sk_node_role_names[cc->role], "ca_cert_pem", cl->ca_cert_pem,
                  "cluster_id", cl->meta.id, "managers", mgr_manager_addrs(m));
    if (cc->role == SK_ROLE_MANAGER) {
        char *key = sk_base64_encode(m->data_key, SK_DATA_KEY_SIZE);
        json_object_set_new(reply, "data_key", json_string(key));
        memset(key, 0, strlen(key));
        free(key);
    }
    call_json(cc->c, 200, reply);
    free(cc->cert);
    free(cc);
}

static void cert_done(struct sk_manager *m, void *ctx, enum sk_rc rc,
                      const struct sk_err *err)
{
    struct cert_ctx *cc = ctx;
    if (rc != SK_OK) {
        call_error(cc->c, err);
        free(cc->cert);
        free(cc);
        return;
    }
    const struct sk_node *n =
        sk_store_get(m->store, SK_KIND_NODE, cc->c->who.node_id);
    SK_INFO("api", "node %s: new %s certificate", n ? n->spec.name : "?",
            sk_node_role_names[cc->role]);
    cert_reply(m, cc);
}

void api_self_certificate(struct call *c)
{
    struct sk_manager *m = c->m;
    if (!call_body(c))
        return;
    const struct sk_node *n = self_node(c);
    if (!n)
        return;
    const char *csr = str_field(c->body, "csr");
    const char *api_addr = str_field(c->body, "api_addr");
    const char *raft_addr = str_field(c->body, "raft_addr");
    if (!csr) {
        call_errorf(c, SK_EINVAL, "body needs \"csr\"");
        return;
    }
    if (n->spec.role == SK_ROLE_MANAGER && !n->manager.raft_addr &&
        (!api_addr || !raft_addr)) {
        call_errorf(c, SK_EINVAL,
                    "node \"%s\" is becoming a manager: give api_addr and "
                    "raft_addr",
                    n->spec.name);
        return;
    }
    struct cert_ctx *cc = sk_calloc(1, sizeof *cc);
    cc->c = c;
    cc->role = n->spec.role;
    struct sk_err err;
    if (sk_ca_issue(m->store, m->data_key, n, csr, mgr_now_ms(), &cc->cert,
                    &err) != SK_OK) {
        free(cc);
        call_error(c, &err);
        return;
    }
    /* Record the new certificate (from now on the node's only one, but
     * for the renewal grace), the node's manager identity (promotion), or
     * clear it (demotion). */
    struct sk_node *u = sk_object_dup(SK_KIND_NODE, n);
    struct sk_cert_ident presented = sk_principal_cert(&c->who);
    if (sk_ca_record_cert(u, cc->cert, &presented, mgr_now_ms(), &err) !=
        SK_OK) {
        sk_object_free(SK_KIND_NODE, u);
        free(cc->cert);
        free(cc);
        call_error(c, &err);
        return;
    }
    if (n->spec.role == SK_ROLE_MANAGER) {
        if (api_addr && raft_addr) {
            u->manager.raft_id = sk_raft_id_of(n->meta.id);
            free(u->manager.raft_addr);
            free(u->manager.api_addr);
            u->manager.raft_addr = sk_strdup(raft_addr);
            u->manager.api_addr = sk_strdup(api_addr);
        }
    } else {
        sk_schema_free(&sk_node_manager_schema, &u->manager);
    }
    struct sk_txn *t = sk_txn_new();
    sk_txn_update(t, SK_KIND_NODE, u, n->meta.version);
    sk_object_free(SK_KIND_NODE, u);
    if (!mgr_propose(m, t, cert_done, cc, &err)) {
        free(cc->cert);
        free(cc);
        call_error(c, &err);
    }
}

void api_self_leave(struct call *c)
{
    struct sk_manager *m = c->m;
    const struct sk_node *n = self_node(c);
    if (!n)
        return;
    sk_liveness_forget(&m->liveness, n->meta.id);
    struct sk_node *u = sk_object_dup(SK_KIND_NODE, n);
    u->status.state = SK_NODE_DISCONNECTED;
    free(u->status.message);
    u->status.message = sk_strdup("skiffd stopped");
    u->status.state_changed_at = mgr_now_ms();
    struct sk_txn *t = sk_txn_new();
    sk_txn_update(t, SK_KIND_NODE, u, n->meta.version);
    sk_object_free(SK_KIND_NODE, u);
    call_propose(c, t, NULL);
}

/* ---- events ---- */

#define EVENTS_MAX_QUEUED (1u << 20)
/* Room for any query value: the server takes URLs up to 64 KiB. A value
 * that did not fit would read as absent -- no filter at all. */
#define EVENTS_MAX_FILTERS (64u << 10)

struct watch {
    struct call *c;
    unsigned id;
    bool ended;
    struct sk_events_filter *filter;
};

static void watch_end(struct watch *w)
{
    if (w->ended)
        return;
    w->ended = true;
    sk_events_unsubscribe(w->c->m->events, w->id);
    sk_events_filter_free(w->filter);
    sk_http_stream_end(w->c->req);
    json_decref(w->c->body);
    free(w->c);
    free(w);
}

static void watch_sink(void *ctx, const char *line, size_t len)
{
    struct watch *w = ctx;
    if (w->ended)
        return;
    if (sk_http_stream_queued(w->c->req) > EVENTS_MAX_QUEUED) {
        static const char slow[] =
            "{\"type\":\"error\",\"message\":\"client too slow: more than 1 "
            "MiB of events queued\"}\n";
        sk_http_stream_write(w->c->req, slow, sizeof slow - 1);
        /* Ending inside the sink is fine: the queue copies its list. */
        watch_end(w);
        return;
    }
    sk_http_stream_write(w->c->req, line, len);
}

static void watch_abort(struct sk_http_req *req)
{
    watch_end(req->data);
}

/* GET /v1/events[?since=INDEX][&filters=JSON]: filters as docker's API
 * takes them, {"type":["task"],"service":["web"]} (skiff/events.h). */
void api_events(struct call *c)
{
    char since_s[32] = "";
    uint64_t since = 0;
    if (sk_http_query(c->req, "since", since_s, sizeof since_s))
        since = strtoull(since_s, NULL, 10);
    char *text = sk_malloc(EVENTS_MAX_FILTERS);
    struct sk_events_filter *filter = NULL;
    struct sk_err err;
    enum sk_rc rc = SK_OK;
    if (sk_http_query(c->req, "filters", text, EVENTS_MAX_FILTERS))
        rc = sk_events_filter_parse(text, &filter, &err);
    free(text);
    if (rc != SK_OK) {
        call_error(c, &err);
        return;
    }
    struct watch *w = sk_calloc(1, sizeof *w);
    w->c = c;
    w->filter = filter;
    c->req->data = w;
    c->req->abort_cb = watch_abort;
    sk_http_stream_begin(c->req, 200, "application/x-ndjson");
    w->id = sk_events_subscribe(c->m->events, since, filter, watch_sink, w);
}

/* ---- metrics ---- */

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * 4096;
}

void api_metrics(struct call *c)
{
    struct sk_manager *m = c->m;
    char *out = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&out, &size);
    if (!f) {
        call_errorf(c, SK_EINTERNAL, "metrics: out of memory");
        return;
    }
    bool leader = sk_raft_is_leader(&m->raft);
    fprintf(f,
            "# HELP skiff_raft_leader Whether this manager leads.\n"
            "# TYPE skiff_raft_leader gauge\nskiff_raft_leader %d\n",
            leader);
    fprintf(f, "# TYPE skiff_raft_term gauge\nskiff_raft_term %llu\n",
            (unsigned long long)sk_raft_term(&m->raft));
    fprintf(f,
            "# TYPE skiff_raft_commit_index gauge\nskiff_raft_commit_index "
            "%llu\n",
            (unsigned long long)sk_raft_commit_index(&m->raft));
    fprintf(f,
            "# TYPE skiff_raft_applied_index gauge\nskiff_raft_applied_index "
            "%llu\n",
            (unsigned long long)sk_raft_applied_index(&m->raft));
    const struct raft_configuration *conf = sk_raft_configuration(&m->raft);
    unsigned voters = 0;
    for (unsigned i = 0; i < conf->n; i++)
        voters += conf->servers[i].role == RAFT_VOTER;
    fprintf(f, "# TYPE skiff_raft_voters gauge\nskiff_raft_voters %u\n",
            voters);
    fprintf(f,
            "# TYPE skiff_fsm_applied_total counter\n"
            "skiff_fsm_applied_total %llu\n"
            "# TYPE skiff_fsm_rejected_total counter\n"
            "skiff_fsm_rejected_total %llu\n",
            (unsigned long long)m->fsm.applied,
            (unsigned long long)m->fsm.rejected);
    struct sk_raft_transport_stats ts;
    sk_raft_transport_stats(&m->raft.transport, &ts);
    fprintf(f,
            "# TYPE skiff_raft_transport_bytes_in_total counter\n"
            "skiff_raft_transport_bytes_in_total %llu\n"
            "# TYPE skiff_raft_transport_bytes_out_total counter\n"
            "skiff_raft_transport_bytes_out_total %llu\n"
            "# TYPE skiff_raft_transport_refused_total counter\n"
            "skiff_raft_transport_refused_total %llu\n",
            (unsigned long long)ts.bytes_in, (unsigned long long)ts.bytes_out,
            (unsigned long long)ts.refused);
    fprintf(f, "# TYPE skiff_store_objects gauge\n");
    for (int k = 0; k < SK_KIND_COUNT; k++)
        fprintf(f, "skiff_store_objects{kind=\"%s\"} %zu\n",
                sk_kind_name((enum sk_kind)k),
                sk_store_count(m->store, (enum sk_kind)k));
    size_t n_nodes;
    const void **nodes = sk_store_list(m->store, SK_KIND_NODE, &n_nodes);
    size_t by_state[4] = {0};
    for (size_t i = 0; i < n_nodes; i++) {
        int st = ((const struct sk_node *)nodes[i])->status.state;
        if (st >= 0 && st < 4)
            by_state[st]++;
    }
    free(nodes);
    fprintf(f, "# TYPE skiff_nodes gauge\n");
    for (int s = 0; s < 4; s++)
        fprintf(f, "skiff_nodes{state=\"%s\"} %zu\n", sk_node_state_names[s],
                by_state[s]);
    fprintf(f,
            "# TYPE skiff_api_requests_total counter\n"
            "skiff_api_requests_total %llu\n"
            "# TYPE skiff_api_forwarded_total counter\n"
            "skiff_api_forwarded_total %llu\n"
            "# TYPE skiff_api_refused_total counter\n"
            "skiff_api_refused_total %llu\n"
            "# TYPE skiff_api_connections gauge\nskiff_api_connections %u\n",
            (unsigned long long)m->requests, (unsigned long long)m->forwarded,
            (unsigned long long)m->refused,
            sk_http_server_connections(&m->http));
    fprintf(f,
            "# TYPE process_resident_memory_bytes gauge\n"
            "process_resident_memory_bytes %ld\n",
            rss_bytes());
    fprintf(f, "# TYPE skiff_info gauge\nskiff_info{version=\"%s\"} 1\n",
            SKIFF_VERSION);
    fclose(f);
    sk_http_respond(c->req, 200, "text/plain; version=0.0.4", out, size);
    free(out);
    json_decref(c->body);
    free(c);
}
