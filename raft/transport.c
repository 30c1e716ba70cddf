#include "skiff/raft_transport.h"

#include <errno.h>
#include <stdarg.h>
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

    /* Incoming preamble, then the check of what goes to raft. */
    char pre[PREAMBLE_MAX];
    size_t pre_len;
    struct sk_raft_frame frame;

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
    sk_raft_frame_free(&p->frame);
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

/* Checks what a peer sends before raft sees it (see the header). */
static bool frame_ok(struct pump *p, const char *buf, size_t len)
{
    if (!p->incoming)
        return true;
    struct sk_err err;
    if (sk_raft_frame_check(&p->frame, buf, len, &err) == SK_OK)
        return true;
    report(p->tr, "raft: %s (node %s): %s; connection closed",
           p->stream ? p->stream->peer.addr : "?",
           p->stream ? p->stream->peer.node_id : "?", err.msg);
    pump_close(p);
    return false;
}

static void stream_read_cb(struct sk_stream *s, ssize_t nread, const char *buf)
{
    struct pump *p = s->data;
    if (nread < 0) {
        pump_close(p);
        return;
    }
    if (frame_ok(p, buf, (size_t)nread))
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
    sk_raft_frame_init(&p->frame, tr->cfg.max_entry_bytes,
                       tr->cfg.max_snapshot_bytes);
    p->raft_pipe_handed = true;
    uv_pipe_t *raft_end = p->raft_pipe;
    p->raft_pipe = NULL;
    /* Bytes that came right behind the preamble belong to raft. */
    size_t extra = (size_t)nread - (take - (p->pre_len - need));
    const char *rest = buf + ((size_t)nread - extra);
    begin_pumping(p);
    tr->accept_cb(tr->t, id, addr, (uv_stream_t *)raft_end);
    if (extra > 0 && p->state == P_PUMPING && frame_ok(p, rest, extra))
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

/* ---- the message check (raft_transport.h) ---- */

enum { F_PREAMBLE, F_HEADER, F_PAYLOAD, F_FAILED };

/* libraft's message types and entry types (raft.h). */
enum {
    M_APPEND_ENTRIES = 1,
    M_APPEND_ENTRIES_RESULT,
    M_REQUEST_VOTE,
    M_REQUEST_VOTE_RESULT,
    M_INSTALL_SNAPSHOT,
    M_TIMEOUT_NOW,
};

static const char *const message_names[] = {
    "?",           "AppendEntries",     "AppendEntriesResult",
    "RequestVote", "RequestVoteResult", "InstallSnapshot",
    "TimeoutNow",
};

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

void sk_raft_frame_init(struct sk_raft_frame *f, size_t max_entry_bytes,
                        size_t max_snapshot_bytes)
{
    memset(f, 0, sizeof *f);
    f->max_entry_bytes =
        max_entry_bytes ? max_entry_bytes : SK_RAFT_DEFAULT_MAX_ENTRY_BYTES;
    f->max_snapshot_bytes = max_snapshot_bytes
                                ? max_snapshot_bytes
                                : SK_RAFT_DEFAULT_MAX_SNAPSHOT_BYTES;
    f->phase = F_PREAMBLE;
}

void sk_raft_frame_free(struct sk_raft_frame *f)
{
    free(f->header);
    f->header = NULL;
}

static enum sk_rc frame_fail(struct sk_raft_frame *f, struct sk_err *err,
                             enum sk_rc code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum sk_rc frame_fail(struct sk_raft_frame *f, struct sk_err *err,
                             enum sk_rc code, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    sk_err_set(err, code, "message %llu (%s): %s",
               (unsigned long long)f->messages + 1,
               f->type < sizeof message_names / sizeof message_names[0]
                   ? message_names[f->type]
                   : "unknown type",
               why);
    sk_raft_frame_free(f);
    f->phase = F_FAILED;
    return code;
}

/* The fewest header bytes libraft's decoder reads for this message
 * (uvDecodeMessage), before the lengths inside the header add to it. */
static size_t header_min(unsigned type, unsigned version, size_t len)
{
    switch (type) {
    case M_APPEND_ENTRIES:
        return 40; /* + 16 per entry */
    case M_APPEND_ENTRIES_RESULT:
        /* Version 0 with more than 24 bytes reads as version 2. */
        if (version == 0 && len > 24)
            version = 2;
        return 24 + (version >= 1 ? 2 : 0) + (version >= 2 ? 2 : 0);
    case M_REQUEST_VOTE:
        return 40;
    case M_REQUEST_VOTE_RESULT:
        if (version == 0)
            version = len == 16 ? 1 : 2;
        return version >= 2 ? 22 : 16;
    case M_INSTALL_SNAPSHOT:
        return 48; /* + the configuration */
    default:       /* M_TIMEOUT_NOW */
        return 24;
    }
}

/* A raft configuration as configurationDecode reads it: format 1, a server
 * count, then per server its ID, a NUL-terminated address and a role byte,
 * all within len bytes. */
static bool configuration_ok(const unsigned char *p, size_t len)
{
    if (len < 9 || p[0] != 1)
        return false;
    uint64_t n = get64(p + 1);
    size_t at = 9;
    for (uint64_t i = 0; i < n; i++) {
        if (len - at < 8 + 1 + 1)
            return false;
        at += 8;
        const unsigned char *nul = memchr(p + at, 0, len - at);
        if (!nul)
            return false;
        at = (size_t)(nul - p) + 1;
        if (at >= len)
            return false;
        at++;
    }
    return true;
}

/* A complete header: checks it and sets the payload length. */
static enum sk_rc header_check(struct sk_raft_frame *f, struct sk_err *err)
{
    const unsigned char *h = f->header;
    size_t len = f->header_len;
    f->payload_left = 0;
    if (f->type == M_APPEND_ENTRIES) {
        uint64_t n = get64(h + 32);
        if (n > (len - 40) / 16)
            return frame_fail(f, err, SK_EPROTO,
                              "%llu entries do not fit a %zu-byte header",
                              (unsigned long long)n, len);
        uint64_t total = 0;
        for (uint64_t i = 0; i < n; i++) {
            const unsigned char *e = h + 40 + 16 * i;
            unsigned etype = e[8];
            uint32_t elen = get32(e + 12);
            if (etype < 1 || etype > 3)
                return frame_fail(f, err, SK_EPROTO,
                                  "entry %llu has unknown type %u",
                                  (unsigned long long)i, etype);
            if (elen > f->max_entry_bytes)
                return frame_fail(f, err, SK_ETOOBIG,
                                  "entry %llu of %lu bytes exceeds the "
                                  "%zu-byte limit",
                                  (unsigned long long)i, (unsigned long)elen,
                                  f->max_entry_bytes);
            if (i + 1 < n && elen % 8 != 0)
                return frame_fail(f, err, SK_EPROTO,
                                  "entry %llu of %lu bytes is not padded to "
                                  "8 bytes",
                                  (unsigned long long)i, (unsigned long)elen);
            total += elen;
        }
        uint64_t batch_max =
            (uint64_t)SK_RAFT_MAX_BATCH_ENTRIES * f->max_entry_bytes;
        if (total > batch_max)
            return frame_fail(f, err, SK_ETOOBIG,
                              "entries of %llu bytes exceed the %llu-byte "
                              "limit",
                              (unsigned long long)total,
                              (unsigned long long)batch_max);
        f->payload_left = total;
    } else if (f->type == M_INSTALL_SNAPSHOT) {
        uint64_t conf_len = get64(h + 32);
        if (conf_len == 0 || conf_len > len - 48)
            return frame_fail(f, err, SK_EPROTO,
                              "a configuration of %llu bytes does not fit "
                              "a %zu-byte header",
                              (unsigned long long)conf_len, len);
        if (!configuration_ok(h + 40, (size_t)conf_len))
            return frame_fail(f, err, SK_EPROTO,
                              "the configuration does not decode");
        uint64_t data_len = get64(h + 40 + conf_len);
        if (data_len > f->max_snapshot_bytes)
            return frame_fail(f, err, SK_ETOOBIG,
                              "a snapshot of %llu bytes exceeds the %zu-byte "
                              "limit",
                              (unsigned long long)data_len,
                              f->max_snapshot_bytes);
        f->payload_left = data_len;
    }
    return SK_OK;
}

static enum sk_rc preamble_check(struct sk_raft_frame *f, struct sk_err *err)
{
    f->type = f->pre[0];
    f->version = f->pre[2];
    uint64_t hlen = get64(f->pre + 8);
    if (f->type < M_APPEND_ENTRIES || f->type > M_TIMEOUT_NOW)
        return frame_fail(f, err, SK_EPROTO, "unknown message type %u",
                          f->type);
    if (hlen > SK_RAFT_MAX_HEADER_BYTES)
        return frame_fail(f, err, SK_ETOOBIG,
                          "a header of %llu bytes exceeds the %u-byte limit",
                          (unsigned long long)hlen, SK_RAFT_MAX_HEADER_BYTES);
    size_t min = header_min(f->type, f->version, (size_t)hlen);
    if (hlen < min)
        return frame_fail(f, err, SK_EPROTO,
                          "a header of %llu bytes is shorter than the %zu "
                          "its type needs",
                          (unsigned long long)hlen, min);
    f->header_len = (size_t)hlen;
    f->header = sk_malloc(f->header_len);
    return SK_OK;
}

enum sk_rc sk_raft_frame_check(struct sk_raft_frame *f, const void *buf,
                               size_t len, struct sk_err *err)
{
    const unsigned char *p = buf;
    while (len > 0) {
        size_t take;
        switch (f->phase) {
        case F_PREAMBLE:
            take = sizeof f->pre - f->got;
            take = take < len ? take : len;
            memcpy(f->pre + f->got, p, take);
            f->got += take;
            if (f->got == sizeof f->pre) {
                f->got = 0;
                if (preamble_check(f, err) != SK_OK)
                    return err->code;
                f->phase = F_HEADER;
            }
            break;
        case F_HEADER:
            take = f->header_len - f->got;
            take = take < len ? take : len;
            memcpy(f->header + f->got, p, take);
            f->got += take;
            if (f->got == f->header_len) {
                f->got = 0;
                if (header_check(f, err) != SK_OK)
                    return err->code;
                sk_raft_frame_free(f);
                f->phase = f->payload_left ? F_PAYLOAD : F_PREAMBLE;
                if (!f->payload_left)
                    f->messages++;
            }
            break;
        case F_PAYLOAD:
            take = f->payload_left < len ? (size_t)f->payload_left : len;
            f->payload_left -= take;
            if (f->payload_left == 0) {
                f->phase = F_PREAMBLE;
                f->messages++;
            }
            break;
        default:
            return sk_err_set(err, SK_EPROTO,
                              "the stream failed its check "
                              "before");
        }
        p += take;
        len -= take;
    }
    return SK_OK;
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
        /* Only managers get past the handshake (a certificate is
         * required), so strangers are only ever handshakes: a small budget
         * of their own that never takes a peer's place. */
        .max_handshakes = 32,
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
