/* The manager's lifecycle: start (store, Raft, API listener, the tick that
 * drives the leader's loops), new credentials, and stop (a leader hands
 * over first), closing everything and freeing the manager once the last
 * handle has closed. Routing is in router.c, the leader's loops in
 * leader.c, the handlers in api*.c. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "manager_internal.h"
#include "skiff/log.h"
#include "skiff/mem.h"

#define TICK_MS 100
#define EVENT_HISTORY 4096
/* Requests without a client certificate (joins, health probes) per source
 * address: a token check costs CPU, and anyone can send them. */
#define API_STRANGER_RATE 20
#define API_STRANGER_BURST 40

/* Anyone can make these happen at will: logged through a limit
 * (skiff/log.h), one summary per window. */
static struct sk_log_limit api_refusals =
    SK_LOG_LIMIT(SK_LOG_INFO, "api", "refused connections");
static struct sk_log_limit raft_refusals =
    SK_LOG_LIMIT(SK_LOG_WARN, "raft", "refused Raft connections");

/* ---- raft hooks ---- */

/* A peer on Raft must hold a current manager's certificate: the node's
 * current one (a demotion or removal revokes the one before), with OU
 * manager, of a node that is a manager in the store. */
static bool raft_authorize(void *ctx, const struct sk_peer *peer, uint64_t id)
{
    (void)id; /* the transport checked it belongs to peer->node_id */
    struct sk_manager *m = ctx;
    /* Until this manager has the log, it cannot know the others: the CA
     * chain and the manager role (checked already) must do. */
    if (!sk_store_cluster(m->store))
        return true;
    struct sk_cert_ident cert = mgr_peer_cert(peer);
    struct sk_err err;
    if (sk_ca_cert_standing(m->store, &cert, mgr_now_ms(), &err) ==
        SK_CERT_MANAGER)
        return true;
    SK_INFO("raft", "refusing %s: %s", peer->addr, err.msg);
    return false;
}

/* Raft connections are authorised once, when they open: after a node
 * changed, those whose certificate no longer is a manager's are closed
 * (from the next turn of the loop, outside the FSM's apply). */
static void note_node_change(const struct sk_event *ev, void *ctx)
{
    struct sk_manager *m = ctx;
    if (ev->type == SK_EV_RESET || ev->kind == SK_KIND_NODE) {
        m->recheck_peers = true;
        mgr_kick(m);
    }
}

static void recheck_raft_peers(struct sk_manager *m)
{
    if (!m->recheck_peers || !m->raft_inited || m->stopping)
        return;
    m->recheck_peers = false;
    sk_raft_transport_recheck(&m->raft.transport);
}

static void raft_reject(void *ctx, const struct sk_err *err)
{
    struct sk_manager *m = ctx;
    m->refused++;
    sk_log_limited(&raft_refusals, err->code, "%s", err->msg);
}

static void raft_state_cb(void *ctx)
{
    struct sk_manager *m = ctx;
    const char *addr;
    uint64_t leader = sk_raft_leader(&m->raft, &addr);
    SK_INFO("raft", "%s, term %llu, leader %s", sk_raft_state_name(&m->raft),
            (unsigned long long)sk_raft_term(&m->raft),
            leader ? addr : "unknown");
    router_cancel_stale_forwards(m);
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

/* ---- start and stop ---- */

/* The leader's loops run every TICK_MS, and at once when kicked
 * (mgr_kick). */
/* Notes when a leader was last known (for refusing reads without one). */
static void note_leader(struct sk_manager *m)
{
    if (sk_raft_leader(&m->raft, NULL))
        m->leader_seen_ms = uv_now(m->loop);
}

int64_t mgr_leaderless_ms(const struct sk_manager *m)
{
    if (sk_raft_leader(&m->raft, NULL))
        return 0;
    uint64_t limit =
        m->cfg.election_timeout_ms ? m->cfg.election_timeout_ms : 1000;
    uint64_t gone = uv_now(m->loop) - m->leader_seen_ms;
    return gone > limit ? (int64_t)gone : 0;
}

static void tick_cb(uv_timer_t *t)
{
    note_leader(t->data);
    reads_check(t->data);
    recheck_raft_peers(t->data);
    sk_log_flush_limited();
    leader_tick(t->data);
}

static void kick_cb(uv_async_t *a)
{
    recheck_raft_peers(a->data);
    leader_tick(a->data);
}

static void accept_cb(struct sk_listener *l, struct sk_stream *s)
{
    struct sk_manager *m = l->data;
    sk_http_server_adopt(&m->http, s);
}

static void reject_cb(struct sk_listener *l, const struct sk_err *err)
{
    struct sk_manager *m = l->data;
    m->refused++;
    sk_log_limited(&api_refusals, err->code, "refused %s", err->msg);
}

static void http_reject_cb(struct sk_http_server *srv, const struct sk_err *err)
{
    struct sk_manager *m = srv->data;
    m->refused++;
    sk_log_limited(&api_refusals, err->code, "refused %s", err->msg);
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
    if (m->store && m->peers_watch_id)
        sk_store_unwatch(m->store, m->peers_watch_id);
    sk_store_free(m->store);
    sk_events_free(m->events);
    leader_free(m);
    free(m->raft_dir);
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
    memset(m->forward_key, 0, sizeof m->forward_key);
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

static void handle_closed(uv_handle_t *h)
{
    closed_one(h->data);
}

/* Closes whatever is open, counting what must call back. */
static void close_all(struct sk_manager *m)
{
    m->stopping = true;
    sessions_end_all(m);
    reads_close(m);
    m->closes_pending = 1;
    if (m->tick_inited) {
        m->closes_pending++;
        uv_close((uv_handle_t *)&m->tick, handle_closed);
    }
    if (m->kick_inited) {
        m->closes_pending++;
        uv_close((uv_handle_t *)&m->kick, handle_closed);
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
#ifdef SKIFF_TEST_FAULTS
    if (mgr_test_ack_before_commit())
        SK_WARN("manager", "SKIFF_TEST_ACK_BEFORE_COMMIT=1: acknowledging "
                           "writes before they commit (a test build's "
                           "fault switch)");
#endif
    struct sk_manager *m = sk_calloc(1, sizeof *m);
    m->loop = cfg->loop;
    m->leader_seen_ms = uv_now(m->loop);
    m->cfg = *cfg;
    sk_list_init(&m->sessions);
    sk_list_init(&m->forwards);
    sk_list_init(&m->reads);
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
    sk_ca_forward_key(m->data_key, m->forward_key);
    m->creds = (struct sk_tls_creds){.ca_pem = m->ca_pem,
                                     .cert_pem = m->cert_pem,
                                     .key_pem = m->key_pem,
                                     .expect_role = "manager"};
    m->agent_creds = m->creds;
    m->agent_creds.expect_role = NULL;
    m->store = sk_store_new();
    m->events = sk_events_new(EVENT_HISTORY);
    leader_init(m);
    m->watch_id = sk_store_watch(m->store, leader_store_watch, m);
    m->peers_watch_id = sk_store_watch(m->store, note_node_change, m);

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
        .fsm = &m->fsm.raft_fsm,
        .fsm_result = sk_store_fsm_result,
        .authorize = raft_authorize,
        .authorize_ctx = m,
        .reject_cb = raft_reject,
        .reject_ctx = m,
        .state_cb = raft_state_cb,
        .state_ctx = m,
        .storage_error_cb = raft_storage_error,
        .election_timeout_ms = cfg->election_timeout_ms,
        .snapshot_threshold = cfg->snapshot_threshold,
        .max_entry_bytes = SK_TXN_MAX_BYTES,
    };
    sk_store_fsm_init(&m->fsm, m->store);
    if (sk_raft_node_init(&m->raft, &rc, err) != SK_OK)
        goto fail;
    sk_store_fsm_bind(&m->fsm, &m->raft.raft);
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
        .handler = router_handle,
        .data = m,
        .max_body_bytes = 8u << 20,
        .server_name = "skiff",
        .unauthenticated_rate = API_STRANGER_RATE,
        .unauthenticated_burst = API_STRANGER_BURST,
        .reject_cb = http_reject_cb,
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
        /* Joins, probes and every client's first moments: room for a
         * flood's worth of handshakes (a few KiB each) beside them. */
        .max_handshakes = 256,
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
    uv_async_init(m->loop, &m->kick, kick_cb);
    m->kick.data = m;
    m->kick_inited = true;
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
