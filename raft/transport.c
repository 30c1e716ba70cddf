#include "skiff/raft_transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "skiff/id.h"
#include "skiff/list.h"
#include "skiff/mem.h"

#define MAGIC "SKRAFT1\n"
#define MAGIC_LEN 8
#define MAX_ADDR 128
#define PREAMBLE_MAX (MAGIC_LEN + 8 + 2 + MAX_ADDR)
#define PREAMBLE_TIMEOUT_MS 5000
#define CONNECT_TIMEOUT_MS 3000
/* Stop reading one side while the other has this much queued. */
#define HIGH_WATER (1u << 20)
#define LOW_WATER (256u << 10)

enum pump_state {
    P_CONNECTING, /* outgoing: TCP + TLS in progress */
    P_PREAMBLE,   /* incoming: waiting for the peer's preamble */
    P_PUMPING,
    P_CLOSING,
};

struct transport;

struct pump {
    struct transport *tr;
    enum pump_state state;
    struct sk_stream *stream;
    uv_pipe_t *raft_pipe; /* raft's end; raft owns it once handed over */
    bool raft_pipe_handed;
    uv_pipe_t ours; /* our end of the socketpair */
    bool ours_open;
    bool stream_reading;
    size_t pipe_queued; /* bytes written to `ours` not yet flushed */
    uint64_t started;   /* uv_now at creation, for the preamble timeout */

    uint64_t peer_id; /* outgoing: whom we dial; incoming: who dialled */
    bool incoming;

    /* Outgoing. */
    struct sk_connect_req creq;
    struct raft_uv_connect *raft_req;
    raft_uv_connect_cb raft_cb;
    char peer_addr[MAX_ADDR];

    /* Incoming preamble. */
    char pre[PREAMBLE_MAX];
    size_t pre_len;

    unsigned pending_closes;
    struct sk_list link; /* in tr->pumps */
};

struct transport {
    struct raft_uv_transport *t;
    struct sk_raft_transport_config cfg;
    char *listen_host;
    uint64_t id;
    char address[MAX_ADDR];
    raft_uv_accept_cb accept_cb;
    struct sk_listener listener;
    bool listening;
    uv_timer_t sweep;
    bool sweep_open;
    struct sk_list pumps; /* struct pump, every one not yet freed */
    bool closing;
    unsigned closes_pending;
    raft_uv_transport_close_cb close_cb;
    struct sk_raft_transport_stats stats;
};

static void report(struct transport *tr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void report(struct transport *tr, const char *fmt, ...)
{
    tr->stats.refused++;
    if (!tr->cfg.reject_cb)
        return;
    struct sk_err err;
    va_list ap;
    va_start(ap, fmt);
    sk_err_vset(&err, SK_EAUTH, fmt, ap);
    va_end(ap);
    tr->cfg.reject_cb(tr->cfg.reject_ctx, &err);
}

/* ---- transport close bookkeeping ---- */

static void maybe_finish_close(struct transport *tr)
{
    if (!tr->closing || !sk_list_empty(&tr->pumps) || tr->closes_pending > 0 ||
        !tr->close_cb)
        return;
    raft_uv_transport_close_cb cb = tr->close_cb;
    tr->close_cb = NULL;
    cb(tr->t);
}

/* ---- pumps ---- */

static void pump_unlink_free(struct pump *p)
{
    struct transport *tr = p->tr;
    sk_list_remove(&p->link);
    if (tr->stats.open > 0 && p->state == P_CLOSING && p->raft_pipe_handed)
        tr->stats.open--;
    free(p);
    maybe_finish_close(tr);
}

static void pump_maybe_free(struct pump *p)
{
    if (p->pending_closes == 0)
        pump_unlink_free(p);
}

static void stream_closed_cb(struct sk_stream *s)
{
    struct pump *p = s->data;
    p->pending_closes--;
    pump_maybe_free(p);
}

static void ours_closed_cb(uv_handle_t *h)
{
    struct pump *p = h->data;
    p->pending_closes--;
    pump_maybe_free(p);
}

static void raft_pipe_closed_cb(uv_handle_t *h)
{
    struct pump *p = h->data;
    raft_free(h);
    p->pending_closes--;
    pump_maybe_free(p);
}

/* The one way a pump ends: closes whatever it holds, frees it when all
 * close callbacks ran. Safe to call more than once. */
static void pump_close(struct pump *p)
{
    if (p->state == P_CLOSING)
        return;
    p->state = P_CLOSING;
    p->pending_closes = 1; /* held until the end of this function */
    if (p->stream) {
        p->pending_closes++;
        p->stream->data = p;
        sk_stream_close(p->stream, stream_closed_cb);
        p->stream = NULL;
    }
    if (p->ours_open) {
        p->pending_closes++;
        uv_close((uv_handle_t *)&p->ours, ours_closed_cb);
        p->ours_open = false;
    }
    if (p->raft_pipe && !p->raft_pipe_handed) {
        p->pending_closes++;
        p->raft_pipe->data = p;
        uv_close((uv_handle_t *)p->raft_pipe, raft_pipe_closed_cb);
    }
    p->raft_pipe = NULL;
    p->pending_closes--;
    pump_maybe_free(p);
}

static struct pump *pump_new(struct transport *tr, enum pump_state state)
{
    struct pump *p = sk_calloc(1, sizeof *p);
    p->tr = tr;
    p->state = state;
    p->started = uv_now(tr->cfg.loop);
    sk_list_insert_head(&tr->pumps, &p->link);
    return p;
}

/* stream -> ours */

struct pipe_write {
    uv_write_t req;
    struct pump *p;
    size_t len;
    char data[];
};

static void stream_read_cb(struct sk_stream *s, ssize_t nread, const char *buf);

static void pipe_write_cb(uv_write_t *req, int status)
{
    struct pipe_write *w = (struct pipe_write *)req;
    struct pump *p = w->p;
    p->pipe_queued -= w->len;
    free(w);
    if (p->state != P_PUMPING)
        return;
    if (status < 0) {
        pump_close(p);
        return;
    }
    if (!p->stream_reading && p->pipe_queued < LOW_WATER) {
        p->stream_reading = true;
        sk_stream_read_start(p->stream, stream_read_cb);
    }
}

static void to_raft(struct pump *p, const char *buf, size_t len)
{
    struct pipe_write *w = sk_malloc(sizeof *w + len);
    w->p = p;
    w->len = len;
    memcpy(w->data, buf, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&p->ours, &b, 1, pipe_write_cb) < 0) {
        free(w);
        pump_close(p);
        return;
    }
    p->pipe_queued += len;
    p->tr->stats.bytes_in += len;
    if (p->pipe_queued > HIGH_WATER && p->stream_reading) {
        p->stream_reading = false;
        sk_stream_read_stop(p->stream);
    }
}

static void stream_read_cb(struct sk_stream *s, ssize_t nread, const char *buf)
{
    struct pump *p = s->data;
    if (nread < 0) {
        pump_close(p);
        return;
    }
    to_raft(p, buf, (size_t)nread);
}

/* ours -> stream */

static void start_ours_reading(struct pump *p);

static void stream_drain_cb(struct sk_stream *s)
{
    struct pump *p = s->data;
    if (p->state == P_PUMPING && p->ours_open)
        start_ours_reading(p);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = sk_malloc(suggested);
    buf->len = suggested;
}

static void ours_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct pump *p = h->data;
    if (nread < 0) {
        free(buf->base);
        pump_close(p);
        return;
    }
    if (nread > 0 && p->stream) {
        sk_stream_write(p->stream, buf->base, (size_t)nread);
        p->tr->stats.bytes_out += (uint64_t)nread;
        if (p->stream->write_queued > HIGH_WATER)
            uv_read_stop(h);
    }
    free(buf->base);
}

static void start_ours_reading(struct pump *p)
{
    /* Already reading is fine: libuv then reports UV_EALREADY. */
    uv_read_start((uv_stream_t *)&p->ours, alloc_cb, ours_read_cb);
}

/* Makes the socketpair: raft's end in p->raft_pipe, ours in p->ours. */
static int make_pair(struct pump *p)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        return -errno;
    uv_loop_t *loop = p->tr->cfg.loop;
    p->raft_pipe = raft_malloc(sizeof *p->raft_pipe);
    if (!p->raft_pipe)
        sk_oom(sizeof *p->raft_pipe);
    uv_pipe_init(loop, p->raft_pipe, 0);
    uv_pipe_init(loop, &p->ours, 0);
    p->ours.data = p;
    p->ours_open = true;
    int rv = uv_pipe_open(p->raft_pipe, fds[0]);
    if (rv == 0)
        rv = uv_pipe_open(&p->ours, fds[1]);
    if (rv != 0) {
        /* The handles own the fds only once opened; close what is not. */
        close(fds[0]);
        close(fds[1]);
        return rv;
    }
    return 0;
}

static void begin_pumping(struct pump *p)
{
    p->state = P_PUMPING;
    p->stream->data = p;
    p->stream->drain_cb = stream_drain_cb;
    p->stream_reading = true;
    sk_stream_read_start(p->stream, stream_read_cb);
    start_ours_reading(p);
}

/* ---- outgoing ---- */

static void fire_connect(struct pump *p, uv_stream_t *stream, int status)
{
    struct raft_uv_connect *req = p->raft_req;
    raft_uv_connect_cb cb = p->raft_cb;
    p->raft_req = NULL;
    if (req && cb)
        cb(req, stream, status);
}

static void connected_cb(struct sk_connect_req *creq, struct sk_stream *s,
                         int status)
{
    struct pump *p = creq->data;
    struct transport *tr = p->tr;
    if (status < 0 || tr->closing) {
        if (s)
            sk_stream_close(s, NULL);
        p->state = P_CLOSING;
        fire_connect(p, NULL, tr->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
        pump_unlink_free(p);
        return;
    }
    p->stream = s;
    s->data = p;
    if (sk_raft_id_of(s->peer.node_id) != p->peer_id) {
        report(tr, "raft: %s presents node %s, not raft ID %llu", p->peer_addr,
               s->peer.node_id, (unsigned long long)p->peer_id);
        fire_connect(p, NULL, RAFT_NOCONNECTION);
        pump_close(p);
        return;
    }
    char pre[PREAMBLE_MAX];
    size_t alen = strlen(tr->address);
    memcpy(pre, MAGIC, MAGIC_LEN);
    for (int i = 0; i < 8; i++)
        pre[MAGIC_LEN + i] = (char)((tr->id >> (8 * i)) & 0xff);
    pre[MAGIC_LEN + 8] = (char)(alen & 0xff);
    pre[MAGIC_LEN + 9] = (char)(alen >> 8);
    memcpy(pre + MAGIC_LEN + 10, tr->address, alen);
    sk_stream_write(s, pre, MAGIC_LEN + 10 + alen);
    if (make_pair(p) != 0) {
        fire_connect(p, NULL, RAFT_NOCONNECTION);
        pump_close(p);
        return;
    }
    tr->stats.connected++;
    tr->stats.open++;
    p->raft_pipe_handed = true;
    uv_pipe_t *raft_end = p->raft_pipe;
    p->raft_pipe = NULL;
    begin_pumping(p);
    fire_connect(p, (uv_stream_t *)raft_end, 0);
}

static bool split_addr(const char *address, char *host, size_t hsize, int *port)
{
    const char *colon = strrchr(address, ':');
    if (!colon || (size_t)(colon - address) >= hsize)
        return false;
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    char *end;
    long v = strtol(colon + 1, &end, 10);
    if (*end || v <= 0 || v > 65535)
        return false;
    *port = (int)v;
    return true;
}

static int tr_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
                      raft_id id, const char *address, raft_uv_connect_cb cb)
{
    struct transport *tr = t->impl;
    char host[64];
    int port;
    if (tr->closing)
        return RAFT_CANCELED;
    if (!split_addr(address, host, sizeof host, &port)) {
        snprintf(t->errmsg, sizeof t->errmsg, "bad raft address \"%s\"",
                 address);
        return RAFT_INVALID;
    }
    struct pump *p = pump_new(tr, P_CONNECTING);
    p->raft_req = req;
    p->raft_cb = cb;
    p->peer_id = id;
    snprintf(p->peer_addr, sizeof p->peer_addr, "%s", address);
    p->creq.data = p;
    struct sk_connect_config cc = {
        .host = host,
        .port = port,
        .tls = tr->cfg.client_tls,
        .expect_role = "manager",
        .timeout_ms = CONNECT_TIMEOUT_MS,
    };
    if (sk_connect(&p->creq, tr->cfg.loop, &cc, connected_cb) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "connect to %.60s: %.160s",
                 address, p->creq.err.msg);
        p->state = P_CLOSING;
        pump_unlink_free(p);
        return RAFT_NOCONNECTION;
    }
    return 0;
}

/* ---- incoming ---- */

static void preamble_read_cb(struct sk_stream *s, ssize_t nread,
                             const char *buf)
{
    struct pump *p = s->data;
    struct transport *tr = p->tr;
    if (nread < 0) {
        pump_close(p);
        return;
    }
    size_t take = (size_t)nread;
    if (take > PREAMBLE_MAX - p->pre_len)
        take = PREAMBLE_MAX - p->pre_len;
    memcpy(p->pre + p->pre_len, buf, take);
    p->pre_len += take;
    if (p->pre_len < MAGIC_LEN + 10)
        return;
    if (memcmp(p->pre, MAGIC, MAGIC_LEN) != 0) {
        report(tr, "raft: %s (%s) sent no raft preamble", s->peer.addr,
               s->peer.node_id);
        pump_close(p);
        return;
    }
    size_t alen = (size_t)(unsigned char)p->pre[MAGIC_LEN + 8] |
                  ((size_t)(unsigned char)p->pre[MAGIC_LEN + 9] << 8);
    if (alen == 0 || alen >= MAX_ADDR) {
        report(tr, "raft: %s sent a bad address length", s->peer.addr);
        pump_close(p);
        return;
    }
    size_t need = MAGIC_LEN + 10 + alen;
    if (p->pre_len < need)
        return;
    uint64_t id = 0;
    for (int i = 7; i >= 0; i--)
        id = (id << 8) | (unsigned char)p->pre[MAGIC_LEN + i];
    char addr[MAX_ADDR];
    memcpy(addr, p->pre + MAGIC_LEN + 10, alen);
    addr[alen] = '\0';

    if (sk_raft_id_of(s->peer.node_id) != id) {
        report(tr, "raft: %s is node %s but claims raft ID %llu", s->peer.addr,
               s->peer.node_id, (unsigned long long)id);
        pump_close(p);
        return;
    }
    if (tr->cfg.authorize &&
        !tr->cfg.authorize(tr->cfg.authorize_ctx, &s->peer, id)) {
        report(tr, "raft: node %s (%s) is not a manager of this cluster",
               s->peer.node_id, s->peer.addr);
        pump_close(p);
        return;
    }
    if (tr->closing || !tr->accept_cb || make_pair(p) != 0) {
        pump_close(p);
        return;
    }
    tr->stats.accepted++;
    tr->stats.open++;
    p->peer_id = id;
    p->incoming = true;
    p->raft_pipe_handed = true;
    uv_pipe_t *raft_end = p->raft_pipe;
    p->raft_pipe = NULL;
    /* Bytes that came right behind the preamble belong to raft. */
    size_t extra = (size_t)nread - (take - (p->pre_len - need));
    const char *rest = buf + ((size_t)nread - extra);
    begin_pumping(p);
    tr->accept_cb(tr->t, id, addr, (uv_stream_t *)raft_end);
    if (extra > 0 && p->state == P_PUMPING)
        to_raft(p, rest, extra);
}

static void listener_accept_cb(struct sk_listener *l, struct sk_stream *s)
{
    struct transport *tr = l->data;
    if (tr->closing) {
        sk_stream_close(s, NULL);
        return;
    }
    if (strcmp(s->peer.role, "manager") != 0) {
        report(tr, "raft: %s (node %s) has role %s, not manager", s->peer.addr,
               s->peer.node_id, s->peer.role);
        sk_stream_close(s, NULL);
        return;
    }
    struct pump *p = pump_new(tr, P_PREAMBLE);
    p->stream = s;
    s->data = p;
    sk_stream_read_start(s, preamble_read_cb);
}

static void listener_reject_cb(struct sk_listener *l, const struct sk_err *err)
{
    struct transport *tr = l->data;
    report(tr, "raft: %s", err->msg);
}

/* Drops incoming connections that never finish their preamble. */
static void sweep_cb(uv_timer_t *timer)
{
    struct transport *tr = timer->data;
    uint64_t now = uv_now(tr->cfg.loop);
    struct sk_list *it, *next;
    sk_list_each_safe(it, next, &tr->pumps)
    {
        struct pump *p = sk_list_entry(it, struct pump, link);
        if (p->state == P_PREAMBLE && now - p->started > PREAMBLE_TIMEOUT_MS) {
            report(tr, "raft: %s sent no preamble within %d ms",
                   p->stream ? p->stream->peer.addr : "?", PREAMBLE_TIMEOUT_MS);
            pump_close(p);
        }
    }
}

static int tr_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    struct transport *tr = t->impl;
    tr->id = id;
    snprintf(tr->address, sizeof tr->address, "%s", address);
    return 0;
}

static int tr_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct transport *tr = t->impl;
    tr->accept_cb = cb;
    struct sk_listener_config lc = {
        .host = tr->listen_host,
        .port = tr->cfg.listen_port,
        .tls = tr->cfg.server_tls,
        .max_connections = 256,
        .accept_cb = listener_accept_cb,
        .reject_cb = listener_reject_cb,
        .data = tr,
    };
    struct sk_err err;
    if (sk_listener_start(&tr->listener, tr->cfg.loop, &lc, &err) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "raft listener: %.200s", err.msg);
        return RAFT_IOERR;
    }
    tr->listening = true;
    uv_timer_init(tr->cfg.loop, &tr->sweep);
    tr->sweep.data = tr;
    tr->sweep_open = true;
    uv_timer_start(&tr->sweep, sweep_cb, 1000, 1000);
    return 0;
}

static void listener_closed_cb(struct sk_listener *l)
{
    struct transport *tr = l->data;
    tr->closes_pending--;
    maybe_finish_close(tr);
}

static void sweep_closed_cb(uv_handle_t *h)
{
    struct transport *tr = h->data;
    tr->closes_pending--;
    maybe_finish_close(tr);
}

static void tr_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct transport *tr = t->impl;
    tr->closing = true;
    tr->close_cb = cb;
    tr->closes_pending = 1; /* held until the end of this function */
    if (tr->listening) {
        tr->closes_pending++;
        tr->listening = false;
        sk_listener_close(&tr->listener, listener_closed_cb);
    }
    if (tr->sweep_open) {
        tr->closes_pending++;
        tr->sweep_open = false;
        uv_close((uv_handle_t *)&tr->sweep, sweep_closed_cb);
    }
    struct sk_list *it, *next;
    sk_list_each_safe(it, next, &tr->pumps)
    {
        struct pump *p = sk_list_entry(it, struct pump, link);
        if (p->state == P_CONNECTING)
            sk_connect_cancel(&p->creq); /* its callback frees it */
        else
            pump_close(p);
    }
    tr->closes_pending--;
    maybe_finish_close(tr);
}

int sk_raft_transport_init(struct raft_uv_transport *t,
                           const struct sk_raft_transport_config *cfg,
                           struct sk_err *err)
{
    if (!cfg->server_tls || !cfg->client_tls || !cfg->listen_host)
        return sk_err_set(err, SK_EINVAL,
                          "raft transport: TLS contexts and a listen address "
                          "are required");
    struct transport *tr = sk_calloc(1, sizeof *tr);
    tr->t = t;
    tr->cfg = *cfg;
    sk_list_init(&tr->pumps);
    tr->listen_host = sk_strdup(cfg->listen_host);
    sk_tls_ctx_ref(cfg->server_tls);
    sk_tls_ctx_ref(cfg->client_tls);
    memset(t, 0, sizeof *t);
    t->version = 1;
    t->impl = tr;
    t->init = tr_init;
    t->listen = tr_listen;
    t->connect = tr_connect;
    t->close = tr_close;
    return SK_OK;
}

void sk_raft_transport_set_tls(struct raft_uv_transport *t,
                               struct sk_tls_ctx *server_tls,
                               struct sk_tls_ctx *client_tls)
{
    struct transport *tr = t->impl;
    sk_tls_ctx_ref(server_tls);
    sk_tls_ctx_ref(client_tls);
    sk_tls_ctx_unref(tr->cfg.server_tls);
    sk_tls_ctx_unref(tr->cfg.client_tls);
    tr->cfg.server_tls = server_tls;
    tr->cfg.client_tls = client_tls;
    if (tr->listening)
        sk_listener_set_tls(&tr->listener, server_tls);
}

void sk_raft_transport_release(struct raft_uv_transport *t)
{
    struct transport *tr = t->impl;
    if (!tr)
        return;
    sk_tls_ctx_unref(tr->cfg.server_tls);
    sk_tls_ctx_unref(tr->cfg.client_tls);
    free(tr->listen_host);
    free(tr);
    t->impl = NULL;
}

void sk_raft_transport_stats(const struct raft_uv_transport *t,
                             struct sk_raft_transport_stats *out)
{
    const struct transport *tr = t->impl;
    *out = tr->stats;
}

bool sk_raft_transport_hears_from(const struct raft_uv_transport *t,
                                  uint64_t id)
{
    const struct transport *tr = t->impl;
    const struct sk_list *it;
    sk_list_each(it, &tr->pumps)
    {
        const struct pump *p = sk_list_entry(it, const struct pump, link);
        if (p->incoming && p->peer_id == id && p->state == P_PUMPING)
            return true;
    }
    return false;
}

void sk_raft_transport_recheck(struct raft_uv_transport *t)
{
    struct transport *tr = t->impl;
    if (!tr->cfg.authorize || tr->closing)
        return;
    struct sk_list *it, *next;
    sk_list_each_safe(it, next, &tr->pumps)
    {
        struct pump *p = sk_list_entry(it, struct pump, link);
        if (!p->incoming || p->state != P_PUMPING || !p->stream)
            continue;
        if (tr->cfg.authorize(tr->cfg.authorize_ctx, &p->stream->peer,
                              p->peer_id))
            continue;
        report(tr,
               "raft: node %s (%s) may no longer take part: connection "
               "closed",
               p->stream->peer.node_id, p->stream->peer.addr);
        pump_close(p);
    }
}
