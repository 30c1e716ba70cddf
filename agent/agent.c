#include "skiff/agent.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataplane.h"
#include "executor.h"
#include "skiff/docker.h"
#include "skiff/http_client.h"
#include "skiff/map.h"
#include "skiff/tls.h"
#include "skiff/id.h"
#include "skiff/log.h"
#include "skiff/mem.h"
#include "skiff/objects.h"
#include "skiff/wire.h"

#define DEFAULT_PERIOD_MS 1000
#define RETRY_MS 200
#define REMOVED_RETRY_MS 10000
#define STATUS_BATCH 2000 /* reports per request (the leader takes 5000) */

struct sk_agent {
    uv_loop_t *loop;
    struct sk_agent_config cfg; /* strings below are our copies */
    char *node_id, *ca_pem, *cert_pem, *key_pem, *api_addr, *raft_addr;
    struct sk_node_description desc; /* our copy, sent in every heartbeat */
    char **managers;
    size_t n_managers, current;
    char *leader; /* API address of the leader, when a reply named it */
    int role;
    int64_t period_ms;

    struct sk_http_client http;
    struct sk_tls_creds creds;
    uv_timer_t timer;

    /* One heartbeat and one certificate request at a time. */
    struct sk_http_call beat;
    bool beat_inflight;
    char *beat_url, *beat_body;
    struct sk_http_call certreq;
    bool cert_inflight;
    char *cert_url, *cert_body, *cert_key;
    int cert_role_wanted;
    size_t failures_in_round;
    uint64_t last_ok;
    bool removed_logged;

    /* Renewal: when the current certificate should be replaced. */
    int64_t renew_at_ms;

    /* The assignment session with the leader. */
    struct sk_docker *docker;
    struct dataplane *dp; /* NULL without dockerd or netlink */
    struct executor *exec;
    struct sk_http_call stream;
    bool stream_inflight;
    char *stream_url, *stream_target;
    char *stream_buf;
    size_t stream_len;
    uint64_t stream_last_data;
    bool stream_got_full;
    uv_timer_t stream_timer;

    /* Task states waiting to be sent: task id -> struct sk_task_report,
     * the latest of each task; and a copy of those in flight. */
    struct sk_map reports;
    struct sk_http_call status;
    bool status_inflight;
    char *status_url, *status_body;
    struct sk_task_reports status_sent;
    uv_timer_t status_timer;

    /* The agent's own API, on workers. */
    struct sk_tls_ctx *serve_tls;
    struct sk_listener listener;
    bool listening;
    struct sk_http_server server;
    bool serving;
    unsigned closes_pending;

    bool stopping;
    struct sk_http_call leave;
    char *leave_url;
    void (*stop_cb)(void *);
    void *stop_ctx;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dup_or_null(const char *s)
{
    return s ? sk_strdup(s) : NULL;
}

/* Plans the renewal at a random point 50-80% into the certificate's life,
 * so that a fleet issued at once does not renew at once. The life counts
 * from now, when the agent got the certificate: certificates are backdated
 * an hour against clock skew, and counting from notBefore would renew a
 * short-lived one at once, and again at every heartbeat. */
static void plan_renewal(struct sk_agent *a)
{
    struct sk_cert_info info;
    if (sk_pki_cert_info(a->cert_pem, &info, NULL) != SK_OK) {
        a->renew_at_ms = 0;
        return;
    }
    unsigned char r;
    sk_random_bytes(&r, 1);
    int64_t now = wall_ms();
    int64_t start = info.not_before_ms > now ? info.not_before_ms : now;
    int64_t life = info.not_after_ms - start;
    int pct = 50 + (r % 31);
    a->renew_at_ms = start + life / 100 * pct;
}

static void timer_cb(uv_timer_t *t);

static void schedule_beat(struct sk_agent *a, uint64_t ms)
{
    if (!a->stopping)
        uv_timer_start(&a->timer, timer_cb, ms, 0);
}

static const char *target(const struct sk_agent *a)
{
    if (a->leader)
        return a->leader;
    if (a->n_managers == 0)
        return NULL;
    return a->managers[a->current % a->n_managers];
}

static void set_managers(struct sk_agent *a, const json_t *arr)
{
    size_t n = json_array_size(arr);
    if (n == 0)
        return;
    bool same = n == a->n_managers;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(a->managers[i],
                      json_string_value(json_array_get(arr, i))
                          ? json_string_value(json_array_get(arr, i))
                          : "") == 0;
    if (same)
        return;
    for (size_t i = 0; i < a->n_managers; i++)
        free(a->managers[i]);
    free(a->managers);
    a->managers = sk_calloc(n, sizeof *a->managers);
    a->n_managers = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (s)
            a->managers[a->n_managers++] = sk_strdup(s);
    }
    if (a->cfg.managers_cb)
        a->cfg.managers_cb(a->cfg.ctx, a->managers, a->n_managers);
}

/* Fills one of the agent's calls to a manager (mutual TLS, a manager's
 * certificate expected). The strings stay owned by the caller. */
static void prepare_call(struct sk_agent *a, struct sk_http_call *call,
                         const char *method, const char *url, const char *body,
                         unsigned connect_ms, unsigned timeout_ms,
                         sk_http_call_cb cb)
{
    memset(call, 0, sizeof *call);
    call->method = method;
    call->url = url;
    call->body = body;
    call->body_len = body ? strlen(body) : 0;
    call->tls = &a->creds;
    call->connect_timeout_ms = connect_ms;
    call->timeout_ms = timeout_ms;
    call->cb = cb;
    call->data = a;
}

/* ---- certificates ---- */

static void cert_cb(struct sk_http_call *h)
{
    struct sk_agent *a = h->data;
    a->cert_inflight = false;
    struct sk_err err;
    json_t *reply = NULL;
    if (sk_http_call_api_error(h, &err) != SK_OK) {
        SK_WARN("agent", "certificate request: %s", err.msg);
        goto out;
    }
    reply = json_loads(h->resp_body ? h->resp_body : "", 0, NULL);
    const char *cert = json_string_value(json_object_get(reply, "cert_pem"));
    const char *role = json_string_value(json_object_get(reply, "role"));
    int r = role ? sk_enum_index(sk_node_role_names, role) : -1;
    if (!cert || r < 0 || !sk_pki_key_matches(cert, a->cert_key)) {
        SK_WARN("agent", "certificate request: malformed reply");
        goto out;
    }
    if (r != a->role) {
        unsigned char key[SK_DATA_KEY_SIZE], *dk = NULL;
        const char *dk64 =
            json_string_value(json_object_get(reply, "data_key"));
        if (r == SK_ROLE_MANAGER) {
            unsigned char *raw = NULL;
            size_t n = 0;
            if (!dk64 || !sk_base64_decode(dk64, &raw, &n) ||
                n != SK_DATA_KEY_SIZE) {
                free(raw);
                SK_WARN("agent", "promotion: the reply lacks the data key");
                goto out;
            }
            memcpy(key, raw, sizeof key);
            memset(raw, 0, n);
            free(raw);
            dk = key;
        }
        SK_INFO("agent", "this node is now a %s", role);
        if (a->cfg.role_cb)
            a->cfg.role_cb(a->cfg.ctx, r, cert, a->cert_key, dk);
        memset(key, 0, sizeof key);
    } else {
        free(a->cert_pem);
        free(a->key_pem);
        a->cert_pem = sk_strdup(cert);
        a->key_pem = sk_strdup(a->cert_key);
        a->creds.cert_pem = a->cert_pem;
        a->creds.key_pem = a->key_pem;
        plan_renewal(a);
        SK_INFO("agent", "certificate renewed");
        if (a->cfg.credentials_cb)
            a->cfg.credentials_cb(a->cfg.ctx, a->cert_pem, a->key_pem);
    }
out:
    json_decref(reply);
    sk_http_call_reset(h);
    free(a->cert_url);
    free(a->cert_body);
    if (a->cert_key)
        memset(a->cert_key, 0, strlen(a->cert_key));
    free(a->cert_key);
    a->cert_url = a->cert_body = a->cert_key = NULL;
}

static void request_certificate(struct sk_agent *a, int role)
{
    const char *to = target(a);
    if (a->cert_inflight || !to)
        return;
    struct sk_err err;
    char *key = NULL, *csr = NULL;
    if (sk_pki_key_new(&key, &err) != SK_OK ||
        sk_pki_csr_new(key, a->node_id, &csr, &err) != SK_OK) {
        free(key);
        SK_WARN("agent", "certificate request: %s", err.msg);
        return;
    }
    json_t *body = json_pack("{s:s}", "csr", csr);
    free(csr);
    if (role == SK_ROLE_MANAGER && a->api_addr && a->raft_addr) {
        json_object_set_new(body, "api_addr", json_string(a->api_addr));
        json_object_set_new(body, "raft_addr", json_string(a->raft_addr));
    }
    a->cert_body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    a->cert_key = key;
    a->cert_role_wanted = role;
    a->cert_url = sk_printf("https://%s/v1/node/certificate", to);
    prepare_call(a, &a->certreq, "POST", a->cert_url, a->cert_body, 2000, 10000,
                 cert_cb);
    if (sk_http_call_start(&a->http, &a->certreq) != 0) {
        free(a->cert_url);
        free(a->cert_body);
        free(a->cert_key);
        a->cert_url = a->cert_body = a->cert_key = NULL;
        return;
    }
    a->cert_inflight = true;
}

/* ---- the assignment session ---- */

static void stream_start(struct sk_agent *a);
static void stream_check(struct sk_agent *a);

/* Each line is decoded once, here; a bad one is skipped whole. */
static void stream_line(struct sk_agent *a, const char *line, size_t len)
{
    if (len == 0)
        return;
    struct sk_session_msg msg;
    struct sk_err err;
    if (sk_wire_decode(&sk_session_msg_schema, line, len, &msg, &err) !=
        SK_OK) {
        SK_WARN("agent", "assignments from %s: %s (skipped)", a->stream_target,
                err.msg);
        return;
    }
    if (msg.type == SK_SESSION_NETWORKS && a->dp)
        dataplane_set_view(a->dp, &msg);
    if (msg.type == SK_SESSION_ASSIGNMENTS && a->exec) {
        executor_assign(a->exec, &msg);
        if (msg.full && !a->stream_got_full) {
            /* A new session, maybe a new leader: tell it what runs. */
            a->stream_got_full = true;
            executor_report_all(a->exec);
        }
    }
    sk_schema_free(&sk_session_msg_schema, &msg);
}

static bool stream_data(struct sk_http_call *h, const char *buf, size_t len)
{
    struct sk_agent *a = h->data;
    a->stream_last_data = uv_now(a->loop);
    a->stream_buf = sk_realloc(a->stream_buf, a->stream_len + len + 1);
    memcpy(a->stream_buf + a->stream_len, buf, len);
    a->stream_len += len;
    size_t start = 0;
    for (size_t i = 0; i < a->stream_len; i++) {
        if (a->stream_buf[i] != '\n')
            continue;
        stream_line(a, a->stream_buf + start, i - start);
        start = i + 1;
    }
    memmove(a->stream_buf, a->stream_buf + start, a->stream_len - start);
    a->stream_len -= start;
    return !a->stopping;
}

static void stream_retry_cb(uv_timer_t *t)
{
    stream_start(t->data);
}

static void stream_done(struct sk_http_call *h)
{
    struct sk_agent *a = h->data;
    a->stream_inflight = false;
    struct sk_err err;
    if (sk_http_call_api_error(h, &err) != SK_OK && err.code != SK_ECANCELED)
        SK_DEBUG("agent", "assignments from %s: %s", a->stream_target, err.msg);
    sk_http_call_reset(h);
    free(a->stream_url);
    free(a->stream_target);
    a->stream_url = a->stream_target = NULL;
    a->stream_len = 0;
    if (!a->stopping)
        uv_timer_start(&a->stream_timer, stream_retry_cb, 300, 0);
}

static void stream_start(struct sk_agent *a)
{
    const char *to = target(a);
    if (a->stream_inflight || a->stopping || !to || !a->exec)
        return;
    a->stream_target = sk_strdup(to);
    a->stream_url = sk_printf("https://%s/v1/node/assignments", to);
    a->stream_got_full = false;
    a->stream_last_data = uv_now(a->loop);
    prepare_call(a, &a->stream, NULL, a->stream_url, NULL, 1000, 0,
                 stream_done);
    a->stream.on_data = stream_data;
    if (sk_http_call_start(&a->http, &a->stream) != 0) {
        free(a->stream_url);
        free(a->stream_target);
        a->stream_url = a->stream_target = NULL;
        uv_timer_start(&a->stream_timer, stream_retry_cb, 1000, 0);
        return;
    }
    a->stream_inflight = true;
}

/* After each heartbeat: the session must be open, to the leader, and
 * alive (the leader pings every second). */
static void stream_check(struct sk_agent *a)
{
    if (!a->stream_inflight) {
        if (!uv_is_active((uv_handle_t *)&a->stream_timer))
            stream_start(a);
        return;
    }
    uint64_t silent = uv_now(a->loop) - a->stream_last_data;
    uint64_t limit =
        (uint64_t)(a->period_ms * 3 > 3000 ? a->period_ms * 3 : 3000);
    bool moved = a->leader && a->stream_target &&
                 strcmp(a->leader, a->stream_target) != 0;
    if (silent > limit || moved) {
        SK_INFO("agent", "assignment session with %s: %s; reconnecting",
                a->stream_target,
                moved ? "the leader moved" : "silent for too long");
        sk_http_call_cancel(&a->stream);
    }
}

/* ---- task states to the leader ---- */

static void status_flush(struct sk_agent *a);

static void report_free(struct sk_task_report *r)
{
    if (!r)
        return;
    sk_schema_free(&sk_task_report_schema, r);
    free(r);
}

static void status_timer_cb(uv_timer_t *t)
{
    status_flush(t->data);
}

static void status_cb(struct sk_http_call *h)
{
    struct sk_agent *a = h->data;
    a->status_inflight = false;
    struct sk_err err;
    bool ok = sk_http_call_api_error(h, &err) == SK_OK;
    if (ok) {
        /* Sent: drop the reports included (newer ones stay queued). */
        for (size_t i = 0; i < a->status_sent.n_tasks; i++) {
            const struct sk_task_report *r = &a->status_sent.tasks[i];
            struct sk_task_report *cur = sk_map_get(&a->reports, r->id);
            if (cur && sk_schema_equal(&sk_task_report_schema, cur, r)) {
                sk_map_del(&a->reports, r->id);
                report_free(cur);
            }
        }
    } else if (!a->stopping) {
        SK_DEBUG("agent", "task states to %s: %s", target(a), err.msg);
    }
    sk_http_call_reset(h);
    free(a->status_url);
    free(a->status_body);
    a->status_url = a->status_body = NULL;
    sk_schema_free(&sk_task_reports_schema, &a->status_sent);
    if (!a->stopping && sk_map_count(&a->reports))
        uv_timer_start(&a->status_timer, status_timer_cb, ok ? 0 : 500, 0);
}

static void status_flush(struct sk_agent *a)
{
    const char *to = target(a);
    if (a->status_inflight || a->stopping || !to ||
        sk_map_count(&a->reports) == 0)
        return;
    /* A copy of what is sent, to tell on success which reports it
     * covered. */
    struct sk_task_reports *sent = &a->status_sent;
    size_t n = sk_map_count(&a->reports);
    n = n < STATUS_BATCH ? n : STATUS_BATCH;
    sent->tasks = sk_calloc(n, sizeof *sent->tasks);
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, &a->reports);
    while (sent->n_tasks < n && sk_map_iter_next(&it, NULL, &v))
        sk_schema_copy(&sk_task_report_schema, &sent->tasks[sent->n_tasks++],
                       v);
    a->status_body = sk_wire_encode(&sk_task_reports_schema, sent, false, NULL);
    a->status_url = sk_printf("https://%s/v1/node/status", to);
    prepare_call(a, &a->status, "POST", a->status_url, a->status_body, 1000,
                 5000, status_cb);
    if (sk_http_call_start(&a->http, &a->status) != 0) {
        free(a->status_url);
        free(a->status_body);
        a->status_url = a->status_body = NULL;
        sk_schema_free(&sk_task_reports_schema, sent);
        uv_timer_start(&a->status_timer, status_timer_cb, 500, 0);
        return;
    }
    a->status_inflight = true;
}

static void on_report(void *ctx, const struct sk_task_report *r)
{
    struct sk_agent *a = ctx;
    struct sk_task_report *copy = sk_malloc(sizeof *copy);
    sk_schema_copy(&sk_task_report_schema, copy, r);
    report_free(sk_map_put(&a->reports, copy->id, copy));
    /* A short pause gathers the reports of a burst into one request. */
    if (!a->status_inflight && !uv_is_active((uv_handle_t *)&a->status_timer))
        uv_timer_start(&a->status_timer, status_timer_cb, 20, 0);
}

static void on_networks_changed(void *ctx)
{
    struct sk_agent *a = ctx;
    if (a->exec)
        executor_networks_changed(a->exec);
}

/* ---- the agent's own API ---- */

void sk_agent_handle(struct sk_agent *a, struct sk_http_req *req)
{
    if (a->exec && strcmp(req->method, "GET") == 0 &&
        strcmp(req->path, "/v1/agent/logs") == 0) {
        executor_serve_logs(a->exec, req);
        return;
    }
    struct sk_err err = {.code = SK_ENOTFOUND};
    snprintf(err.msg, sizeof err.msg, "no such agent endpoint: %s %.200s",
             req->method, req->path);
    sk_http_respond_error(req, &err);
}

static void serve_request(struct sk_http_req *req)
{
    struct sk_agent *a = req->server->data;
    const struct sk_peer *p = req->peer;
    if (!p->authenticated || strcmp(p->role, "manager") != 0) {
        struct sk_err err = {.code = SK_EPERM};
        snprintf(err.msg, sizeof err.msg,
                 "only managers may call this node's agent");
        sk_http_respond_error(req, &err);
        return;
    }
    if (strncmp(req->path, "/v1/agent/", 10) != 0) {
        struct sk_err err = {.code = SK_ENOTFOUND};
        snprintf(err.msg, sizeof err.msg,
                 "this node is a worker: it serves only /v1/agent/");
        sk_http_respond_error(req, &err);
        return;
    }
    sk_agent_handle(a, req);
}

static void serve_accept(struct sk_listener *l, struct sk_stream *s)
{
    struct sk_agent *a = l->data;
    sk_http_server_adopt(&a->server, s);
}

static enum sk_rc serve_start(struct sk_agent *a, struct sk_err *err)
{
    struct sk_tls_config tc = {.ca_pem = a->ca_pem,
                               .cert_pem = a->cert_pem,
                               .key_pem = a->key_pem,
                               .server = true,
                               .require_peer_cert = true};
    a->serve_tls = sk_tls_ctx_new(&tc, err);
    if (!a->serve_tls)
        return err->code;
    struct sk_http_server_config hc = {.handler = serve_request, .data = a};
    if (sk_http_server_init(&a->server, a->loop, &hc) != 0)
        return sk_err_set(err, SK_EINTERNAL, "agent API: HTTP server init");
    a->server.data = a;
    a->serving = true;
    struct sk_listener_config lc = {.host = a->cfg.serve_host,
                                    .port = a->cfg.serve_port,
                                    .tls = a->serve_tls,
                                    .accept_cb = serve_accept,
                                    .data = a};
    if (sk_listener_start(&a->listener, a->loop, &lc, err) != 0)
        return err->code;
    a->listening = true;
    return SK_OK;
}

/* ---- heartbeats ---- */

static void beat_cb(struct sk_http_call *h)
{
    struct sk_agent *a = h->data;
    a->beat_inflight = false;
    struct sk_err err;
    enum sk_rc rc = sk_http_call_api_error(h, &err);
    json_t *reply = NULL;
    uint64_t next = (uint64_t)a->period_ms;
    if (a->stopping)
        goto out;
    /* Only a manager's answer means this node is refused. A TLS failure --
     * typically "server role is worker": the address of a former manager,
     * demoted meanwhile -- says nothing about this node: try the next. */
    if ((rc == SK_EPERM || rc == SK_EAUTH) && h->err.code == SK_OK) {
        if (!a->removed_logged)
            SK_ERROR("agent", "%s refused this node: %s", target(a), err.msg);
        a->removed_logged = true;
        next = REMOVED_RETRY_MS;
        goto out;
    }
    if (rc != SK_OK) {
        /* Try the next manager; once every manager failed in a row, wait a
         * full period before the next round. */
        SK_DEBUG("agent", "heartbeat to %s: %s", target(a), err.msg);
        if (a->leader) {
            free(a->leader);
            a->leader = NULL;
        } else {
            a->current++;
        }
        a->failures_in_round++;
        next = a->failures_in_round >= a->n_managers ? next : RETRY_MS;
        if (a->failures_in_round >= a->n_managers)
            a->failures_in_round = 0;
        goto out;
    }
    a->failures_in_round = 0;
    a->removed_logged = false;
    a->last_ok = uv_now(a->loop);
    reply = json_loads(h->resp_body ? h->resp_body : "", 0, NULL);
    int64_t period =
        json_integer_value(json_object_get(reply, "heartbeat_period_ms"));
    if (period >= 100 && period <= 60000)
        a->period_ms = period;
    next = (uint64_t)a->period_ms;
    set_managers(a, json_object_get(reply, "managers"));
    const char *leader = json_string_value(json_object_get(reply, "leader"));
    if (leader && (!a->leader || strcmp(leader, a->leader) != 0)) {
        free(a->leader);
        a->leader = sk_strdup(leader);
    }
    stream_check(a);
    const json_t *node = json_object_get(reply, "node");
    const char *want = json_string_value(
        json_object_get(json_object_get(node, "spec"), "role"));
    int want_role = want ? sk_enum_index(sk_node_role_names, want) : -1;
    if (want_role >= 0 && want_role != a->role)
        request_certificate(a, want_role);
    else if (a->renew_at_ms && wall_ms() >= a->renew_at_ms)
        request_certificate(a, a->role);
out:
    json_decref(reply);
    sk_http_call_reset(h);
    free(a->beat_url);
    free(a->beat_body);
    a->beat_url = a->beat_body = NULL;
    schedule_beat(a, next);
}

static void send_heartbeat(struct sk_agent *a)
{
    const char *to = target(a);
    if (!to || a->beat_inflight) {
        schedule_beat(a, (uint64_t)a->period_ms);
        return;
    }
    struct sk_heartbeat hb = {.description = a->desc}; /* borrowed */
    a->beat_body = sk_wire_encode(&sk_heartbeat_schema, &hb, false, NULL);
    a->beat_url = sk_printf("https://%s/v1/node/heartbeat", to);
    /* A manager that lost its network must not hold the agent for long. */
    prepare_call(a, &a->beat, "POST", a->beat_url, a->beat_body, 1000,
                 (unsigned)(a->period_ms * 2 < 1000   ? 1000
                            : a->period_ms * 2 > 5000 ? 5000
                                                      : a->period_ms * 2),
                 beat_cb);
    if (sk_http_call_start(&a->http, &a->beat) != 0) {
        free(a->beat_url);
        free(a->beat_body);
        a->beat_url = a->beat_body = NULL;
        schedule_beat(a, (uint64_t)a->period_ms);
        return;
    }
    a->beat_inflight = true;
}

static void timer_cb(uv_timer_t *t)
{
    struct sk_agent *a = t->data;
    send_heartbeat(a);
    if (a->stream_inflight)
        stream_check(a);
}

struct sk_agent *sk_agent_start(const struct sk_agent_config *cfg,
                                struct sk_err *err)
{
    if (cfg->n_managers == 0) {
        sk_err_set(err, SK_EINVAL, "agent: no manager to talk to");
        return NULL;
    }
    struct sk_agent *a = sk_calloc(1, sizeof *a);
    a->loop = cfg->loop;
    a->cfg = *cfg;
    a->node_id = sk_strdup(cfg->node_id);
    a->ca_pem = sk_strdup(cfg->ca_pem);
    a->cert_pem = sk_strdup(cfg->cert_pem);
    a->key_pem = sk_strdup(cfg->key_pem);
    sk_schema_copy(&sk_node_description_schema, &a->desc, &cfg->description);
    /* Its strings are the caller's: only our copy is used from now on. */
    memset(&a->cfg.description, 0, sizeof a->cfg.description);
    a->api_addr = dup_or_null(cfg->api_addr);
    a->raft_addr = dup_or_null(cfg->raft_addr);
    a->role = cfg->role;
    a->period_ms = DEFAULT_PERIOD_MS;
    a->managers = sk_calloc(cfg->n_managers, sizeof *a->managers);
    for (size_t i = 0; i < cfg->n_managers; i++)
        a->managers[i] = sk_strdup(cfg->managers[i]);
    a->n_managers = cfg->n_managers;
    a->creds = (struct sk_tls_creds){.ca_pem = a->ca_pem,
                                     .cert_pem = a->cert_pem,
                                     .key_pem = a->key_pem,
                                     .expect_role = "manager"};
    if (sk_http_client_init(&a->http, a->loop, err) != 0) {
        free(a);
        return NULL;
    }
    plan_renewal(a);
    uv_timer_init(a->loop, &a->timer);
    a->timer.data = a;
    uv_timer_init(a->loop, &a->stream_timer);
    a->stream_timer.data = a;
    uv_timer_init(a->loop, &a->status_timer);
    a->status_timer.data = a;
    sk_map_init(&a->reports);
    if (cfg->docker_socket) {
        struct sk_err derr;
        a->docker = sk_docker_new(a->loop, cfg->docker_socket, &derr);
        if (a->docker) {
            struct dataplane_config dc = {
                .loop = a->loop,
                .docker = a->docker,
                .node_name = a->desc.hostname ? a->desc.hostname : a->node_id,
                .data_addr =
                    a->desc.data_addr ? a->desc.data_addr : a->desc.addr,
                .seams = cfg->dataplane_seams,
                .changed_cb = on_networks_changed,
                .ctx = a,
            };
            a->dp = dataplane_new(&dc, &derr);
            if (!a->dp)
                SK_ERROR("agent", "%s (tasks on networks cannot run here)",
                         derr.msg);
            a->exec = executor_new(a->loop, a->docker, a->dp, a->node_id,
                                   a->desc.hostname, on_report, a);
        } else {
            SK_ERROR("agent", "dockerd: %s (this node runs no tasks)",
                     derr.msg);
        }
    }
    if (cfg->serve_port) {
        struct sk_err serr;
        if (serve_start(a, &serr) != SK_OK)
            SK_ERROR("agent", "agent API on %s:%d: %s", cfg->serve_host,
                     cfg->serve_port, serr.msg);
    }
    schedule_beat(a, 0);
    return a;
}

static void free_agent(struct sk_agent *a)
{
    void (*cb)(void *) = a->stop_cb;
    void *ctx = a->stop_ctx;
    free(a->node_id);
    free(a->ca_pem);
    free(a->cert_pem);
    if (a->key_pem)
        memset(a->key_pem, 0, strlen(a->key_pem));
    free(a->key_pem);
    sk_schema_free(&sk_node_description_schema, &a->desc);
    free(a->api_addr);
    free(a->raft_addr);
    free(a->leader);
    for (size_t i = 0; i < a->n_managers; i++)
        free(a->managers[i]);
    free(a->managers);
    free(a->leave_url);
    free(a->stream_buf);
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, &a->reports);
    while (sk_map_iter_next(&it, NULL, &v))
        report_free(v);
    sk_map_clear(&a->reports);
    sk_schema_free(&sk_task_reports_schema, &a->status_sent);
    sk_tls_ctx_unref(a->serve_tls);
    free(a);
    if (cb)
        cb(ctx);
}

static void http_closed(struct sk_http_client *c)
{
    struct sk_agent *a =
        (struct sk_agent *)((char *)c - offsetof(struct sk_agent, http));
    free_agent(a);
}

static void one_closed(struct sk_agent *a)
{
    if (--a->closes_pending > 0)
        return;
    /* Cancels calls in flight; their callbacks run before http_closed. */
    sk_http_client_close(&a->http, http_closed);
}

static void handle_closed(uv_handle_t *h)
{
    one_closed(h->data);
}

static void docker_closed(void *ctx)
{
    one_closed(ctx);
}

static void dp_closed(void *ctx)
{
    struct sk_agent *a = ctx;
    if (a->docker) {
        struct sk_docker *d = a->docker;
        a->docker = NULL;
        sk_docker_close(d, docker_closed, a);
        return;
    }
    one_closed(a);
}

static void exec_closed(void *ctx)
{
    struct sk_agent *a = ctx;
    a->exec = NULL;
    /* The data plane after the executor (which asks it), dockerd's client
     * after both (they call it). */
    if (a->dp) {
        struct dataplane *dp = a->dp;
        a->dp = NULL;
        dataplane_close(dp, dp_closed, a);
        return;
    }
    if (a->docker) {
        struct sk_docker *d = a->docker;
        a->docker = NULL;
        sk_docker_close(d, docker_closed, a);
        return;
    }
    one_closed(a);
}

static void server_closed(struct sk_http_server *s)
{
    one_closed(s->data);
}

static void listener_closed(struct sk_listener *l)
{
    one_closed(l->data);
}

static void finish_stop(struct sk_agent *a)
{
    a->closes_pending = 1;
    if (a->stream_inflight)
        sk_http_call_cancel(&a->stream);
    if (a->status_inflight)
        sk_http_call_cancel(&a->status);
    a->closes_pending += 3;
    uv_close((uv_handle_t *)&a->timer, handle_closed);
    uv_close((uv_handle_t *)&a->stream_timer, handle_closed);
    uv_close((uv_handle_t *)&a->status_timer, handle_closed);
    if (a->exec) {
        a->closes_pending++;
        executor_close(a->exec, exec_closed, a);
    } else if (a->docker) {
        a->closes_pending++;
        struct sk_docker *d = a->docker;
        a->docker = NULL;
        sk_docker_close(d, docker_closed, a);
    }
    if (a->listening) {
        a->closes_pending++;
        a->listening = false;
        sk_listener_close(&a->listener, listener_closed);
    }
    if (a->serving) {
        a->closes_pending++;
        a->serving = false;
        sk_http_server_close(&a->server, server_closed);
    }
    one_closed(a);
}

static void leave_cb(struct sk_http_call *h)
{
    struct sk_agent *a = h->data;
    if (h->err.code != SK_OK)
        SK_DEBUG("agent", "leave: %s", h->err.msg);
    sk_http_call_reset(h);
    finish_stop(a);
}

void sk_agent_stop(struct sk_agent *a, bool leave, void (*cb)(void *ctx),
                   void *ctx)
{
    a->stopping = true;
    a->stop_cb = cb;
    a->stop_ctx = ctx;
    uv_timer_stop(&a->timer);
    const char *to = target(a);
    if (leave && to) {
        a->leave_url = sk_printf("https://%s/v1/node/leave", to);
        prepare_call(a, &a->leave, "POST", a->leave_url, "{}", 1000, 2000,
                     leave_cb);
        if (sk_http_call_start(&a->http, &a->leave) == 0)
            return;
    }
    finish_stop(a);
}

const char *sk_agent_manager(const struct sk_agent *a)
{
    return target(a);
}

uint64_t sk_agent_last_ok(const struct sk_agent *a)
{
    return a->last_ok;
}
