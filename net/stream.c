/* Stream dispatch, the plain transport, the listener and outgoing
 * connections. The TLS transport is in tls.c; the two meet in
 * tls_internal.h. */
#include "skiff/stream.h"

#include <stdarg.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/list.h"
#include "skiff/mem.h"
#include "skiff/tls.h"
#include "tls_internal.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_HANDSHAKE_TIMEOUT_MS 1000
#define DEFAULT_MAX_HANDSHAKES 64
#define DEFAULT_MAX_PER_SOURCE 8
#define DEFAULT_MAX_CONNECTIONS 1024
#define TRIM_PERIOD_MS 5000
#define TRIM_CHURN 256
#define LISTEN_BACKLOG 511

/* ---- Dispatch ---- */

void sk_stream_read_start(struct sk_stream *s, sk_stream_read_cb cb)
{
    if (s->closing)
        return;
    s->read_cb = cb;
    s->vt->read_start(s);
}

void sk_stream_read_stop(struct sk_stream *s)
{
    if (s->closing)
        return;
    s->vt->read_stop(s);
}

int sk_stream_write(struct sk_stream *s, const void *buf, size_t len)
{
    if (s->closing)
        return UV_ECANCELED;
    return s->vt->write(s, buf, len);
}

void sk_stream_close(struct sk_stream *s, sk_stream_close_cb cb)
{
    if (s->closing)
        return;
    s->closing = true;
    s->close_cb = cb;
    s->vt->close(s);
}

void sk_stream_set_release(struct sk_stream *s, void (*fn)(void *arg),
                           void *arg)
{
    struct sk_stream_base *b = (struct sk_stream_base *)s;
    b->release_fn = fn;
    b->release_arg = arg;
}

/* "ip:port" of a socket address; "?" if it cannot be had. */
static void format_addr(const struct sockaddr_storage *ss, char *out,
                        size_t size)
{
    char ip[64] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        uv_ip4_name(in, ip, sizeof ip);
        port = ntohs(in->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(in6, ip, sizeof ip);
        port = ntohs(in6->sin6_port);
    } else {
        snprintf(out, size, "?");
        return;
    }
    snprintf(out, size, "%s:%d", ip, port);
}

static void peer_addr(uv_tcp_t *tcp, char *out, size_t size)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(out, size, "?");
        return;
    }
    format_addr(&ss, out, size);
}

static void free_handle_cb(uv_handle_t *h)
{
    free(h);
}

/* ---- Plain transport ----
 *
 * libuv does the work; what is added is the copy of written data, the
 * write_queued accounting, and a single delivery of the end: an error seen
 * outside a read (a failed write) waits in pending_err and is delivered from
 * an idle callback, never from inside the call that noticed it. */

struct plain_wreq {
    uv_write_t req;
    size_t len;
    char data[];
};

struct plain_stream {
    struct sk_stream_base base;
    uv_stream_t *handle;
    uv_idle_t defer;
    bool reading; /* the user wants data */
    bool failed;  /* the end (EOF or error) was seen */
    bool ended;   /* ... and delivered: nothing more */
    int pending_err;
    int closes; /* handles still to be closed */
};

/* Every read lands here and is handed to the user's read callback at once
 * (valid only during the call, as skiff/stream.h says), so one buffer
 * serves all streams of the thread. */
static _Thread_local char read_buf[64 * 1024];

static void plain_deliver_end(struct plain_stream *ps)
{
    if (!ps->reading || ps->ended || !ps->pending_err || ps->base.pub.closing)
        return;
    int e = ps->pending_err;
    ps->pending_err = 0;
    ps->ended = true;
    ps->base.pub.read_cb(&ps->base.pub, e, NULL);
}

static void plain_defer_cb(uv_idle_t *idle)
{
    struct plain_stream *ps = idle->data;
    uv_idle_stop(idle);
    plain_deliver_end(ps);
}

/* The stream reached its end: remember why (first cause wins) and deliver
 * it to the read callback on the next loop iteration. */
static void plain_fail(struct plain_stream *ps, int status)
{
    if (ps->failed || ps->base.pub.closing)
        return;
    ps->failed = true;
    ps->pending_err = status;
    uv_read_stop(ps->handle);
    if (ps->reading)
        uv_idle_start(&ps->defer, plain_defer_cb);
}

static void plain_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void plain_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct plain_stream *ps = h->data;
    if (nread == 0 || ps->failed || ps->base.pub.closing)
        return;
    if (nread < 0) {
        plain_fail(ps, (int)nread);
        return;
    }
    ps->base.pub.read_cb(&ps->base.pub, nread, buf->base);
}

static void plain_read_start(struct sk_stream *s)
{
    struct plain_stream *ps = (struct plain_stream *)s;
    if (ps->ended)
        return;
    /* libuv reads exactly while the user reads and the end was not seen;
     * a second read_start only replaces the callback. */
    bool was_reading = ps->reading;
    ps->reading = true;
    if (ps->failed) {
        uv_idle_start(&ps->defer, plain_defer_cb);
        return;
    }
    if (was_reading)
        return;
    int rc = uv_read_start(ps->handle, plain_alloc_cb, plain_read_cb);
    if (rc < 0)
        plain_fail(ps, rc);
}

static void plain_read_stop(struct sk_stream *s)
{
    struct plain_stream *ps = (struct plain_stream *)s;
    ps->reading = false;
    uv_read_stop(ps->handle);
    uv_idle_stop(&ps->defer);
}

static void plain_write_cb(uv_write_t *req, int status)
{
    struct plain_wreq *w = (struct plain_wreq *)req;
    struct plain_stream *ps = req->data;
    size_t len = w->len;
    free(w);
    ps->base.pub.write_queued -= len;
    if (status < 0) {
        /* UV_ECANCELED: the handle is closing, nobody to tell. */
        if (status != UV_ECANCELED)
            plain_fail(ps, status);
        return;
    }
    if (ps->base.pub.write_queued == 0 && ps->base.pub.drain_cb &&
        !ps->failed && !ps->base.pub.closing)
        ps->base.pub.drain_cb(&ps->base.pub);
}

static int plain_write(struct sk_stream *s, const void *buf, size_t len)
{
    struct plain_stream *ps = (struct plain_stream *)s;
    if (ps->failed)
        return UV_ECANCELED;
    if (len == 0)
        return 0;
    struct plain_wreq *w = sk_malloc(sizeof *w + len);
    w->len = len;
    w->req.data = ps;
    memcpy(w->data, buf, len);
    /* uv_buf_t lengths are size_t on unix, so one request carries it all. */
    uv_buf_t b = uv_buf_init(w->data, 0);
    b.len = len;
    int rc = uv_write(&w->req, ps->handle, &b, 1, plain_write_cb);
    if (rc < 0) {
        free(w);
        plain_fail(ps, rc);
        return UV_ECANCELED;
    }
    ps->base.pub.write_queued += len;
    return 0;
}

static void plain_closed_cb(uv_handle_t *h)
{
    struct plain_stream *ps = h->data;
    if (--ps->closes > 0)
        return;
    sk_stream_base_closed(&ps->base);
    free(ps->handle);
    free(ps);
}

static void plain_close(struct sk_stream *s)
{
    struct plain_stream *ps = (struct plain_stream *)s;
    ps->reading = false;
    ps->closes = 2;
    uv_close((uv_handle_t *)ps->handle, plain_closed_cb);
    uv_close((uv_handle_t *)&ps->defer, plain_closed_cb);
}

static const struct sk_stream_vtable plain_vtable = {
    .read_start = plain_read_start,
    .read_stop = plain_read_stop,
    .write = plain_write,
    .close = plain_close,
};

struct sk_stream *sk_plain_stream_new(uv_loop_t *loop, uv_stream_t *handle)
{
    struct plain_stream *ps = sk_calloc(1, sizeof *ps);
    ps->base.pub.vt = &plain_vtable;
    ps->base.pub.loop = loop;
    ps->handle = handle;
    handle->data = ps;
    uv_idle_init(loop, &ps->defer);
    ps->defer.data = ps;
    if (handle->type == UV_TCP) {
        uv_tcp_t *tcp = (uv_tcp_t *)handle;
        uv_tcp_nodelay(tcp, 1);
        uv_tcp_keepalive(tcp, 1, SK_STREAM_KEEPALIVE_S);
        peer_addr(tcp, ps->base.pub.peer.addr, sizeof ps->base.pub.peer.addr);
    } else {
        snprintf(ps->base.pub.peer.addr, sizeof ps->base.pub.peer.addr, "unix");
    }
    return &ps->base.pub;
}

/* ---- Listener ----
 *
 * The listener's memory lives until the listening handle, the trim timer
 * and every handshake in progress are closed; each of those holds one
 * reference. Open connections are counted in two separate small structs
 * (with and without a verified certificate), because accepted streams may
 * outlive the listener.
 *
 * Admission, so that strangers can never keep a peer out: a handshake in
 * progress proves nothing yet, so handshakes have a budget of their own
 * (max_handshakes, max_per_source) and a short deadline; when the budget
 * is full the oldest handshake gives way to the new connection (a client
 * with a certificate finishes in milliseconds, an idle stranger does not),
 * while a source at its own limit is refused (a burst from one address
 * cannot push out everyone else). Streams that authenticated count against
 * max_connections, the others against max_unauthenticated, so neither can
 * take the other's places. */

struct conn_count {
    unsigned open;   /* accepted streams of this kind still open */
    unsigned closed; /* ... and closed since the last trim */
    unsigned refs;
};

static void conn_count_unref(struct conn_count *c)
{
    if (--c->refs == 0)
        free(c);
}

static void conn_released(void *arg)
{
    struct conn_count *c = arg;
    c->open--;
    c->closed++;
    conn_count_unref(c);
}

struct listener_impl;

/* A TLS handshake in progress on an accepted connection. */
struct pending {
    struct listener_impl *l;
    struct sk_list link; /* in l->pending, newest first */
    struct sk_stream *s;
    uv_timer_t timer;
    char ip[48]; /* the source address, for max_per_source */
    uint64_t accepted_ms;
    uint64_t accepted_iteration;
    int closes; /* the timer, plus the stream on failure */
    bool done;
};

struct listener_impl {
    struct sk_listener *pub;
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_timer_t trim; /* hands memory back after a flood */
    uv_check_t tick; /* counts loop iterations */
    uint64_t iteration;
    unsigned accepted_now;          /* in this iteration */
    unsigned accepts_per_iteration; /* TLS: a quarter of max_handshakes */
    bool accept_waiting;            /* libuv holds one for us */
    struct sk_tls_ctx *tls;
    char addr[64]; /* the bound "host:port" */
    int port;
    unsigned handshake_timeout_ms;
    unsigned max_handshakes;
    unsigned max_per_source;
    unsigned max_connections;
    unsigned max_unauthenticated;
    sk_listener_accept_cb accept_cb;
    sk_listener_reject_cb reject_cb;
    struct sk_list pending; /* struct pending: handshakes in progress */
    unsigned n_pending;
    unsigned churn; /* refused or failed connections since the last trim */
    struct conn_count *authenticated;
    struct conn_count *unauthenticated;
    unsigned refs;
    bool closing;
    sk_listener_close_cb close_cb;
};

static void listener_unref(struct listener_impl *li)
{
    if (--li->refs > 0)
        return;
    struct sk_listener *l = li->pub;
    sk_listener_close_cb cb = li->close_cb;
    conn_count_unref(li->authenticated);
    conn_count_unref(li->unauthenticated);
    sk_tls_ctx_unref(li->tls);
    free(li);
    if (l) {
        l->impl = NULL;
        if (cb)
            cb(l);
    }
}

static void listener_reject(struct listener_impl *li, enum sk_rc code,
                            const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void listener_reject(struct listener_impl *li, enum sk_rc code,
                            const char *fmt, ...)
{
    li->churn++;
    if (!li->reject_cb)
        return;
    struct sk_err err;
    va_list ap;
    va_start(ap, fmt);
    sk_err_vset(&err, code, fmt, ap);
    va_end(ap);
    li->reject_cb(li->pub, &err);
}

/* The address part of "ip:port" (IPv6 addresses have colons of their
 * own: the port is after the last one). */
static void addr_ip(const char *addr, char *out, size_t size)
{
    const char *colon = strrchr(addr, ':');
    size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
    if (n >= size)
        n = size - 1;
    memcpy(out, addr, n);
    out[n] = '\0';
}

static void pending_release(struct pending *p)
{
    if (--p->closes > 0)
        return;
    struct listener_impl *li = p->l;
    free(p);
    listener_unref(li);
}

static void pending_timer_closed_cb(uv_handle_t *h)
{
    pending_release(h->data);
}

static void pending_stream_closed_cb(struct sk_stream *s)
{
    pending_release(s->data);
}

/* Hands an accepted stream to the user, or refuses it when its kind has no
 * place left. Takes the stream. */
static void listener_admit(struct listener_impl *li, struct sk_stream *s)
{
    bool authenticated = s->peer.authenticated;
    struct conn_count *c =
        authenticated ? li->authenticated : li->unauthenticated;
    unsigned max =
        authenticated ? li->max_connections : li->max_unauthenticated;
    if (c->open >= max) {
        char addr[sizeof s->peer.addr];
        snprintf(addr, sizeof addr, "%s", s->peer.addr);
        sk_stream_close(s, NULL);
        if (authenticated)
            listener_reject(li, SK_EUNAVAIL,
                            "%s: too many connections (max %u)", addr, max);
        else
            listener_reject(li, SK_EUNAVAIL,
                            "%s: too many connections without a client "
                            "certificate (max %u)",
                            addr, max);
        return;
    }
    c->open++;
    c->refs++;
    sk_stream_set_release(s, conn_released, c);
    li->accept_cb(li->pub, s);
}

/* The one end of a handshake: success, failure, timeout, eviction or
 * abort. err (not for an abort) is reported. */
static void pending_finish(struct pending *p, int status,
                           const struct sk_err *err, bool aborted)
{
    if (p->done)
        return;
    p->done = true;
    struct listener_impl *li = p->l;
    sk_list_remove(&p->link);
    li->n_pending--;

    uv_timer_stop(&p->timer);
    p->closes = 1;
    uv_close((uv_handle_t *)&p->timer, pending_timer_closed_cb);

    struct sk_stream *s = p->s;
    p->s = NULL;
    if (status == 0) {
        listener_admit(li, s);
        return;
    }
    li->churn++;
    p->closes++;
    s->data = p;
    sk_stream_close(s, pending_stream_closed_cb);
    if (!aborted && li->reject_cb)
        li->reject_cb(li->pub, err);
}

static void pending_handshake_cb(void *arg, struct sk_stream *s, int status,
                                 const struct sk_err *err)
{
    (void)s;
    pending_finish(arg, status, err, false);
}

static void pending_timer_cb(uv_timer_t *t)
{
    struct pending *p = t->data;
    struct sk_err err;
    sk_err_set(&err, SK_ETIMEDOUT, "%s: TLS handshake timed out after %u ms",
               p->s->peer.addr, p->l->handshake_timeout_ms);
    pending_finish(p, UV_ETIMEDOUT, &err, false);
}

/* Handshakes in progress from ip. */
static unsigned pending_from(struct listener_impl *li, const char *ip)
{
    unsigned n = 0;
    struct sk_list *it;
    sk_list_each(it, &li->pending)
    {
        if (strcmp(sk_list_entry(it, struct pending, link)->ip, ip) == 0)
            n++;
    }
    return n;
}

static void listener_take(struct listener_impl *li);

/* Makes room for one more handshake, if one may go: the oldest that has
 * not said a word though it was polled for it (accepted two loop
 * iterations ago: a client sends its first message at once, an idle
 * connection never does), else the oldest that has (a client near by
 * finishes in a few ms, so it is the last to go). False when none may go:
 * every handshake is too new to judge. */
static bool pending_make_room(struct listener_impl *li)
{
    struct pending *silent = NULL, *talker = NULL;
    /* Oldest first. */
    for (struct sk_list *it = li->pending.prev; it != &li->pending && !silent;
         it = it->prev) {
        struct pending *p = sk_list_entry(it, struct pending, link);
        if (sk_tls_stream_heard(p->s)) {
            if (!talker)
                talker = p;
        } else if (li->iteration >= p->accepted_iteration + 2) {
            silent = p;
        }
    }
    struct pending *victim = silent ? silent : talker;
    if (!victim)
        return false;
    struct sk_err err;
    sk_err_set(&err, SK_EUNAVAIL,
               "%s: TLS handshake dropped for a newer connection after %llu "
               "ms%s (max %u at once)",
               victim->s->peer.addr,
               (unsigned long long)(uv_now(li->loop) - victim->accepted_ms),
               victim == silent ? " without a word" : "", li->max_handshakes);
    pending_finish(victim, UV_ECANCELED, &err, false);
    return true;
}

/* Once per loop iteration: counts them (a connection is judged silent
 * only after it had a chance to speak), and takes the connection that had
 * to wait. */
static void listener_tick_cb(uv_check_t *c)
{
    struct listener_impl *li = c->data;
    li->iteration++;
    li->accepted_now = 0;
    if (li->accept_waiting && !li->closing) {
        li->accept_waiting = false;
        listener_take(li);
    }
}

static void listener_connection_cb(uv_stream_t *server, int status)
{
    struct listener_impl *li = server->data;
    if (li->closing)
        return;
    if (status < 0) {
        listener_reject(li, SK_EIO, "%s: accept: %s", li->addr,
                        uv_strerror(status));
        return;
    }
    /* libuv accepts all it can in one go; a flood's burst would fill the
     * handshake budget with connections too new to judge. Past
     * accepts_per_iteration the rest wait in the kernel's queue (libuv
     * holds one and stops polling until it is taken): every connection
     * then gets its turn, in order. */
    if (li->tls && li->accepted_now >= li->accepts_per_iteration) {
        li->accept_waiting = true;
        return;
    }
    listener_take(li);
}

/* Takes the connection libuv has accepted and holds for us. */
static void listener_take(struct listener_impl *li)
{
    li->accepted_now++;
    uv_tcp_t *tcp = sk_malloc(sizeof *tcp);
    uv_tcp_init(li->loop, tcp);
    int rc = uv_accept((uv_stream_t *)&li->tcp, (uv_stream_t *)tcp);
    if (rc < 0) {
        uv_close((uv_handle_t *)tcp, free_handle_cb);
        listener_reject(li, SK_EIO, "%s: accept: %s", li->addr,
                        uv_strerror(rc));
        return;
    }

    if (!li->tls) {
        listener_admit(li, sk_plain_stream_new(li->loop, (uv_stream_t *)tcp));
        return;
    }

    char addr[64], ip[48];
    peer_addr(tcp, addr, sizeof addr);
    addr_ip(addr, ip, sizeof ip);
    if (pending_from(li, ip) >= li->max_per_source) {
        uv_close((uv_handle_t *)tcp, free_handle_cb);
        listener_reject(li, SK_EUNAVAIL,
                        "%s: too many TLS handshakes from %s (max %u)", addr,
                        ip, li->max_per_source);
        return;
    }
    if (li->n_pending >= li->max_handshakes && !pending_make_room(li)) {
        uv_close((uv_handle_t *)tcp, free_handle_cb);
        listener_reject(li, SK_EUNAVAIL,
                        "%s: too many TLS handshakes at once (max %u), all "
                        "too new to judge",
                        addr, li->max_handshakes);
        return;
    }

    struct pending *p = sk_calloc(1, sizeof *p);
    p->l = li;
    p->accepted_ms = uv_now(li->loop);
    p->accepted_iteration = li->iteration;
    snprintf(p->ip, sizeof p->ip, "%s", ip);
    li->refs++;
    uv_timer_init(li->loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, pending_timer_cb, li->handshake_timeout_ms, 0);
    sk_list_insert_head(&li->pending, &p->link);
    li->n_pending++;
    p->s = sk_tls_stream_start(li->loop, tcp, li->tls, addr,
                               pending_handshake_cb, p);
}

/* glibc keeps freed memory for reuse; after a flood of connections that
 * is tens of megabytes nobody needs any more. Give it back, at most once
 * per TRIM_PERIOD_MS and only after TRIM_CHURN connections came and went
 * without a certificate (a trim walks the heap: a few ms). */
static void listener_trim_cb(uv_timer_t *t)
{
    struct listener_impl *li = t->data;
    unsigned churn = li->churn + li->unauthenticated->closed;
    if (churn < TRIM_CHURN)
        return;
    li->churn = 0;
    li->unauthenticated->closed = 0;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static void listener_handle_closed_cb(uv_handle_t *h)
{
    listener_unref(h->data);
}

int sk_listener_start(struct sk_listener *l, uv_loop_t *loop,
                      const struct sk_listener_config *cfg, struct sk_err *err)
{
    const char *host = cfg->host ? cfg->host : "";
    struct sockaddr_in sa;
    if (cfg->port < 0 || cfg->port > 65535 ||
        uv_ip4_addr(host, cfg->port, &sa) != 0) {
        sk_err_set(err, SK_EINVAL, "%s:%d: not an IPv4 address and port", host,
                   cfg->port);
        return UV_EINVAL;
    }
    if (cfg->tls && !sk_tls_ctx_is_server(cfg->tls)) {
        sk_err_set(err, SK_EINVAL,
                   "%s:%d: the TLS context was not made for a server", host,
                   cfg->port);
        return UV_EINVAL;
    }
    if (!cfg->accept_cb) {
        sk_err_set(err, SK_EINVAL, "%s:%d: listener without accept_cb", host,
                   cfg->port);
        return UV_EINVAL;
    }

    struct listener_impl *li = sk_calloc(1, sizeof *li);
    li->loop = loop;
    sk_list_init(&li->pending);
    li->refs = 1; /* the listening handle */
    snprintf(li->addr, sizeof li->addr, "%s:%d", host, cfg->port);
    uv_tcp_init(loop, &li->tcp);
    li->tcp.data = li;
    li->authenticated = sk_calloc(1, sizeof *li->authenticated);
    li->authenticated->refs = 1;
    li->unauthenticated = sk_calloc(1, sizeof *li->unauthenticated);
    li->unauthenticated->refs = 1;

    int rc = uv_tcp_bind(&li->tcp, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&li->tcp, LISTEN_BACKLOG,
                       listener_connection_cb);
    if (rc < 0) {
        sk_err_set(err, SK_EIO, "%s: %s", li->addr, uv_strerror(rc));
        uv_close((uv_handle_t *)&li->tcp, listener_handle_closed_cb);
        return rc;
    }

    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&li->tcp, (struct sockaddr *)&ss, &len) == 0 &&
        ss.ss_family == AF_INET)
        li->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    snprintf(li->addr, sizeof li->addr, "%s:%d", host, li->port);

    li->pub = l;
    li->tls = cfg->tls;
    sk_tls_ctx_ref(li->tls);
#define OR_DEFAULT(v, d) ((v) ? (v) : (d))
    li->handshake_timeout_ms =
        OR_DEFAULT(cfg->handshake_timeout_ms, DEFAULT_HANDSHAKE_TIMEOUT_MS);
    li->max_handshakes =
        OR_DEFAULT(cfg->max_handshakes, DEFAULT_MAX_HANDSHAKES);
    li->max_per_source =
        OR_DEFAULT(cfg->max_per_source, DEFAULT_MAX_PER_SOURCE);
    li->max_connections =
        OR_DEFAULT(cfg->max_connections, DEFAULT_MAX_CONNECTIONS);
    li->max_unauthenticated =
        OR_DEFAULT(cfg->max_unauthenticated, DEFAULT_MAX_CONNECTIONS);
#undef OR_DEFAULT
    /* With at most a quarter of the budget arriving per iteration, and a
     * silent one judged after two, there is always one to make room. */
    li->accepts_per_iteration =
        li->max_handshakes / 4 ? li->max_handshakes / 4 : 1;
    li->accept_cb = cfg->accept_cb;
    li->reject_cb = cfg->reject_cb;
    uv_timer_init(loop, &li->trim);
    li->trim.data = li;
    li->refs++;
    uv_timer_start(&li->trim, listener_trim_cb, TRIM_PERIOD_MS, TRIM_PERIOD_MS);
    uv_check_init(loop, &li->tick);
    li->tick.data = li;
    li->refs++;
    uv_check_start(&li->tick, listener_tick_cb);
    uv_unref((uv_handle_t *)&li->tick);
    l->data = cfg->data;
    l->impl = li;
    return 0;
}

void sk_listener_set_tls(struct sk_listener *l, struct sk_tls_ctx *tls)
{
    struct listener_impl *li = l->impl;
    if (!li || li->closing)
        return;
    sk_tls_ctx_ref(tls);
    sk_tls_ctx_unref(li->tls);
    li->tls = tls;
}

int sk_listener_port(const struct sk_listener *l)
{
    const struct listener_impl *li = l->impl;
    return li ? li->port : 0;
}

void sk_listener_counts(const struct sk_listener *l,
                        struct sk_listener_counts *out)
{
    const struct listener_impl *li = l->impl;
    memset(out, 0, sizeof *out);
    if (!li)
        return;
    out->handshakes = li->n_pending;
    out->authenticated = li->authenticated->open;
    out->unauthenticated = li->unauthenticated->open;
}

void sk_listener_close(struct sk_listener *l, sk_listener_close_cb cb)
{
    struct listener_impl *li = l->impl;
    if (!li || li->closing)
        return;
    li->closing = true;
    li->close_cb = cb;
    uv_close((uv_handle_t *)&li->tcp, listener_handle_closed_cb);
    uv_close((uv_handle_t *)&li->trim, listener_handle_closed_cb);
    uv_close((uv_handle_t *)&li->tick, listener_handle_closed_cb);
    struct pending *p;
    while ((p = sk_list_first(&li->pending, struct pending, link)))
        pending_finish(p, UV_ECANCELED, NULL, true);
}

/* ---- Outgoing connections ----
 *
 * One struct per attempt owns the TCP handle (until a stream takes it), the
 * connect request and the timer. finish() records the result and closes
 * what the attempt owns; the user's callback runs from the last close
 * callback, so it never runs inside sk_connect or sk_connect_cancel and the
 * attempt's memory is freed right after it. */

struct connect_op {
    struct sk_connect_req *req;
    sk_connect_cb cb;
    uv_loop_t *loop;
    uv_tcp_t *tcp; /* owned until a stream takes it */
    uv_connect_t creq;
    uv_timer_t timer;
    struct sk_stream *hs; /* the TLS stream during its handshake */
    struct sk_tls_ctx *tls;
    char *expect_role;
    char *expect_node_id;
    char addr[64];
    unsigned timeout_ms;
    int closes;
    bool done;
    /* the result, handed to cb */
    struct sk_stream *result;
    int status;
    struct sk_err err;
};

static void connect_release(struct connect_op *op)
{
    if (--op->closes > 0)
        return;
    struct sk_connect_req *req = op->req;
    if (op->status == 0)
        sk_err_clear(&req->err);
    else
        sk_err_copy(&req->err, &op->err);
    sk_connect_cb cb = op->cb;
    struct sk_stream *s = op->result;
    int status = op->status;
    sk_tls_ctx_unref(op->tls);
    free(op->expect_role);
    free(op->expect_node_id);
    free(op);
    cb(req, s, status);
}

static void connect_timer_closed_cb(uv_handle_t *h)
{
    connect_release(h->data);
}

static void connect_tcp_closed_cb(uv_handle_t *h)
{
    struct connect_op *op = h->data;
    free(h);
    connect_release(op);
}

static void connect_finish(struct connect_op *op, struct sk_stream *s,
                           int status, const struct sk_err *err)
{
    if (op->done)
        return;
    op->done = true;
    op->req->impl = NULL;
    op->result = s;
    op->status = status;
    if (err)
        sk_err_copy(&op->err, err);
    uv_timer_stop(&op->timer);
    op->closes = 1;
    uv_close((uv_handle_t *)&op->timer, connect_timer_closed_cb);
    if (op->tcp) {
        /* A pending connect request is cancelled by the close; its callback
         * sees op->done and returns. */
        op->closes++;
        uv_close((uv_handle_t *)op->tcp, connect_tcp_closed_cb);
        op->tcp = NULL;
    }
    if (op->hs) {
        sk_stream_close(op->hs, NULL);
        op->hs = NULL;
    }
}

static void connect_fail(struct connect_op *op, int status, enum sk_rc code,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void connect_fail(struct connect_op *op, int status, enum sk_rc code,
                         const char *fmt, ...)
{
    struct sk_err err;
    va_list ap;
    va_start(ap, fmt);
    sk_err_vset(&err, code, fmt, ap);
    va_end(ap);
    connect_finish(op, NULL, status, &err);
}

static void connect_handshake_cb(void *arg, struct sk_stream *s, int status,
                                 const struct sk_err *err)
{
    struct connect_op *op = arg;
    if (status < 0) {
        connect_finish(op, NULL, status, err);
        return;
    }
    struct sk_err e;
    if (op->expect_role && strcmp(s->peer.role, op->expect_role) != 0) {
        sk_err_set(&e, SK_EAUTH, "%s: server role is %s, want %s", op->addr,
                   s->peer.role[0] ? s->peer.role : "(none)", op->expect_role);
        connect_finish(op, NULL, UV_EPROTO, &e);
        return;
    }
    if (op->expect_node_id &&
        strcmp(s->peer.node_id, op->expect_node_id) != 0) {
        sk_err_set(&e, SK_EAUTH, "%s: server is node %s, want %s", op->addr,
                   s->peer.node_id[0] ? s->peer.node_id : "(none)",
                   op->expect_node_id);
        connect_finish(op, NULL, UV_EPROTO, &e);
        return;
    }
    op->hs = NULL;
    connect_finish(op, s, 0, NULL);
}

static void connect_cb(uv_connect_t *creq, int status)
{
    struct connect_op *op = creq->data;
    if (op->done)
        return;
    if (status < 0) {
        connect_fail(op, status, SK_EUNAVAIL, "%s: %s", op->addr,
                     uv_strerror(status));
        return;
    }
    uv_tcp_t *tcp = op->tcp;
    op->tcp = NULL;
    if (!op->tls) {
        struct sk_stream *s = sk_plain_stream_new(op->loop, (uv_stream_t *)tcp);
        snprintf(s->peer.addr, sizeof s->peer.addr, "%s", op->addr);
        connect_finish(op, s, 0, NULL);
        return;
    }
    op->hs = sk_tls_stream_start(op->loop, tcp, op->tls, op->addr,
                                 connect_handshake_cb, op);
}

static void connect_timer_cb(uv_timer_t *t)
{
    struct connect_op *op = t->data;
    connect_fail(op, UV_ETIMEDOUT, SK_ETIMEDOUT, "%s: %s timed out after %u ms",
                 op->addr, op->hs ? "TLS handshake" : "connect",
                 op->timeout_ms);
}

int sk_connect(struct sk_connect_req *req, uv_loop_t *loop,
               const struct sk_connect_config *cfg, sk_connect_cb cb)
{
    const char *host = cfg->host ? cfg->host : "";
    struct sockaddr_in sa;
    req->impl = NULL;
    sk_err_clear(&req->err);
    if (cfg->port <= 0 || cfg->port > 65535 ||
        uv_ip4_addr(host, cfg->port, &sa) != 0) {
        sk_err_set(&req->err, SK_EINVAL, "%s:%d: not an IPv4 address and port",
                   host, cfg->port);
        return UV_EINVAL;
    }
    if (cfg->tls && sk_tls_ctx_is_server(cfg->tls)) {
        sk_err_set(&req->err, SK_EINVAL,
                   "%s:%d: the TLS context was made for a server", host,
                   cfg->port);
        return UV_EINVAL;
    }

    struct connect_op *op = sk_calloc(1, sizeof *op);
    op->req = req;
    op->cb = cb;
    op->loop = loop;
    snprintf(op->addr, sizeof op->addr, "%s:%d", host, cfg->port);
    op->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    if (cfg->tls) {
        op->tls = cfg->tls;
        sk_tls_ctx_ref(op->tls);
        if (cfg->expect_role)
            op->expect_role = sk_strdup(cfg->expect_role);
        if (cfg->expect_node_id)
            op->expect_node_id = sk_strdup(cfg->expect_node_id);
    }
    op->tcp = sk_malloc(sizeof *op->tcp);
    uv_tcp_init(loop, op->tcp);
    op->tcp->data = op;
    uv_timer_init(loop, &op->timer);
    op->timer.data = op;
    op->creq.data = op;
    req->impl = op;

    uv_timer_start(&op->timer, connect_timer_cb, op->timeout_ms, 0);
    int rc = uv_tcp_connect(&op->creq, op->tcp, (const struct sockaddr *)&sa,
                            connect_cb);
    if (rc < 0)
        connect_fail(op, rc, SK_EUNAVAIL, "%s: %s", op->addr, uv_strerror(rc));
    return 0;
}

void sk_connect_cancel(struct sk_connect_req *req)
{
    struct connect_op *op = req->impl;
    if (!op)
        return;
    connect_fail(op, UV_ECANCELED, SK_ECANCELED, "%s: connect canceled",
                 op->addr);
}
