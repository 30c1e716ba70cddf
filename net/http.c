/* HTTP/1.1 server on skiff streams. The contract is skiff/http.h.
 *
 * One `struct conn` per adopted stream, one `struct req` per request. A
 * connection moves through explicit states:
 *
 *   IDLE      no byte of the next request yet; idle timer
 *   READING   a request is arriving and being parsed; request timer
 *   HANDLER   the request is with the handler; parsing is paused, further
 *             bytes are only buffered (bounded), reading goes on so that a
 *             client that goes away is noticed (abort_cb)
 *   DRAINING  the last response is written; wait until it is sent, then
 *             read and discard for a short while before closing, so the
 *             kernel does not answer unread bytes with a reset that would
 *             destroy the response before the client read it
 *   CLOSED    sk_stream_close was called; the struct lives on until the
 *             stream and the timer are closed and the handler finished the
 *             request it holds, if any
 *
 * The connection's one timer serves every state; it also resumes parsing
 * (after 0 ms) when a handler finished asynchronously, so that a handler is
 * never called from inside another request's sk_http_respond. */
#include "skiff/http.h"

#include <http_parser.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "skiff/list.h"
#include "skiff/mem.h"
#include "skiff/parse.h"

#define DEFAULT_MAX_HEADER_BYTES (16 * 1024)
#define DEFAULT_MAX_BODY_BYTES (1024 * 1024)
#define DEFAULT_REQUEST_TIMEOUT_MS 30000
#define DEFAULT_IDLE_TIMEOUT_MS 120000
#define DEFAULT_MAX_CONNECTIONS 1024
#define DEFAULT_MAX_UNAUTHENTICATED 128
#define DEFAULT_MAX_UNAUTHENTICATED_PER_SOURCE 8
#define DEFAULT_UNAUTHENTICATED_TIMEOUT_MS 10000
/* Sources whose request rate is remembered; the least recently seen one
 * makes room for a new one (which then starts with a full bucket). */
#define RATE_SOURCES 256
/* Bytes of pipelined requests buffered while a handler works. */
#define MAX_BUFFERED_INPUT (64 * 1024)
/* Lingering close: wait this long without input, at most LINGER_MAX_MS. */
#define LINGER_QUIET_MS 100
#define LINGER_MAX_MS 2000
/* After the client's end, a transport reports no drain any more: poll. */
#define EOF_DRAIN_POLL_MS 20
/* Request line and per-header framing counted against max_header_bytes
 * beyond the bytes of the URL, names and values themselves. */
#define REQUEST_LINE_OVERHEAD 14
#define HEADER_LINE_OVERHEAD 4

enum conn_state { C_IDLE, C_READING, C_HANDLER, C_DRAINING, C_CLOSED };
enum timer_kind { T_NONE, T_IDLE, T_REQUEST, T_RESUME, T_DRAIN, T_QUIET };
enum req_state { R_PARSING, R_HANDLER, R_STREAMING };

struct buf {
    char *p;
    size_t len, cap;
};

struct server;
struct conn;

struct hdr_off {
    size_t name, value;
};

struct req {
    struct sk_http_req pub;
    struct conn *conn;
    enum req_state state;
    struct buf url;
    struct buf hbuf; /* name\0value\0 ... */
    struct hdr_off *offs;
    size_t n_offs, cap_offs;
    bool in_value; /* the last header callback was for a value */
    bool headers_done;
    struct sk_http_header *headers;
    char *path;
    char *query;
    struct buf body;
    struct buf resp_headers; /* "Name: value\r\n" lines */
    bool keep_alive;
    bool http10;
    bool head;
    bool aborted;
};

struct conn {
    struct server *srv;
    struct sk_list link; /* in srv->conns */
    struct sk_stream *s;
    struct sk_peer peer;
    http_parser parser;
    uv_timer_t timer;
    enum timer_kind timer_kind;
    enum conn_state state;
    struct buf in;
    size_t in_off;
    struct req *req; /* being parsed, or with the handler */
    size_t header_bytes;
    bool unauthenticated; /* no verified client certificate */
    struct sk_list ulink; /* in srv->unauth, newest first, while counted */
    char ip[48];          /* the peer's address without the port */
    bool counted;         /* included in srv->n_open or srv->n_unauth */
    bool read_stopped;    /* backpressure on pipelined input */
    bool drained;
    bool peer_eof;
    uint64_t drain_deadline;
    uint64_t linger_deadline;
    unsigned pending_closes;
    /* An error found by a parser callback, answered after the parser
     * stopped. */
    int err_status;
    enum sk_rc err_code;
    char err_msg[160];
};

/* A token bucket of requests from one source address. */
struct rate_bucket {
    char ip[48]; /* "" when unused */
    double tokens;
    uint64_t at_ms; /* last refill */
};

struct server {
    struct sk_http_server *pub;
    uv_loop_t *loop;
    struct sk_http_server_config cfg;
    char *server_name;
    struct sk_list conns;  /* every conn not yet freed */
    unsigned n_open;       /* counted connections with a certificate */
    struct sk_list unauth; /* counted connections without one */
    unsigned n_unauth;
    struct rate_bucket *buckets; /* RATE_SOURCES, when rate-limited */
    uv_timer_t close_timer;      /* closed by sk_http_server_close */
    bool closing;
    bool close_timer_closed;
    sk_http_server_close_cb close_cb;
};

static const http_parser_settings parser_settings;

/* ---- Buffers ---- */

static void buf_reserve(struct buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        sk_oom(SIZE_MAX);
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b->p = sk_realloc(b->p, cap);
    b->cap = cap;
}

static void buf_append(struct buf *b, const void *data, size_t len)
{
    buf_reserve(b, len);
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
}

static void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = sk_vprintf(fmt, ap);
    va_end(ap);
    buf_append(b, s, strlen(s));
    free(s);
}

static void buf_free(struct buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- Helpers ---- */

const char *sk_http_status_text(int status)
{
    if (status < 100 || status > 599)
        return "Unknown";
    const char *s = http_status_str((enum http_status)status);
    if (!s || s[0] == '<')
        return "Unknown";
    return s;
}

/* Percent-decodes src[0..len) into out (at least len + 1 bytes). Returns
 * the decoded length, or -1 on a malformed escape. */
static long percent_decode(const char *src, size_t len, char *out,
                           bool plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (len - i < 3)
                return -1;
            int hi = sk_hex_digit(src[i + 1]), lo = sk_hex_digit(src[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out[o++] = ' ';
        } else {
            out[o++] = c;
        }
    }
    out[o] = '\0';
    return (long)o;
}

static struct req *req_of(const struct sk_http_req *pub)
{
    return pub->impl;
}

static void req_free(struct req *r)
{
    if (!r)
        return;
    buf_free(&r->url);
    buf_free(&r->hbuf);
    buf_free(&r->body);
    buf_free(&r->resp_headers);
    free(r->offs);
    free(r->headers);
    free(r->path);
    free(r->query);
    free(r);
}

/* ---- Connection lifecycle ---- */

static void conn_read_cb(struct sk_stream *s, ssize_t nread, const char *buf);
static void conn_process(struct conn *c);

/* Strangers get shorter deadlines. */
static unsigned idle_ms(const struct conn *c)
{
    const struct sk_http_server_config *cfg = &c->srv->cfg;
    if (c->unauthenticated &&
        cfg->unauthenticated_timeout_ms < cfg->idle_timeout_ms)
        return cfg->unauthenticated_timeout_ms;
    return cfg->idle_timeout_ms;
}

static unsigned request_ms(const struct conn *c)
{
    const struct sk_http_server_config *cfg = &c->srv->cfg;
    if (c->unauthenticated &&
        cfg->unauthenticated_timeout_ms < cfg->request_timeout_ms)
        return cfg->unauthenticated_timeout_ms;
    return cfg->request_timeout_ms;
}

static void timer_set(struct conn *c, enum timer_kind kind, uint64_t ms);

static void server_maybe_done(struct server *sv)
{
    if (!sv->closing || !sk_list_empty(&sv->conns) || !sv->close_timer_closed)
        return;
    struct sk_http_server *pub = sv->pub;
    sk_http_server_close_cb cb = sv->close_cb;
    free(sv->server_name);
    free(sv->buckets);
    free(sv);
    pub->impl = NULL;
    if (cb)
        cb(pub);
}

static void conn_maybe_free(struct conn *c)
{
    if (c->state != C_CLOSED || c->pending_closes > 0 || c->req)
        return;
    struct server *sv = c->srv;
    sk_list_remove(&c->link);
    buf_free(&c->in);
    free(c);
    server_maybe_done(sv);
}

static void conn_handle_closed(struct conn *c)
{
    c->pending_closes--;
    conn_maybe_free(c);
}

static void conn_timer_close_cb(uv_handle_t *h)
{
    conn_handle_closed(h->data);
}

static void conn_stream_close_cb(struct sk_stream *s)
{
    struct conn *c = s->data;
    c->s = NULL;
    conn_handle_closed(c);
}

/* Closes the connection now. A request still with the handler learns it
 * through abort_cb and keeps the connection struct alive until finished. */
static void conn_close(struct conn *c)
{
    if (c->state == C_CLOSED)
        return;
    c->state = C_CLOSED;
    if (c->counted) {
        if (c->unauthenticated) {
            c->srv->n_unauth--;
            sk_list_remove(&c->ulink);
        } else {
            c->srv->n_open--;
        }
        c->counted = false;
    }
    uv_timer_stop(&c->timer);
    c->pending_closes = 2;
    uv_close((uv_handle_t *)&c->timer, conn_timer_close_cb);
    sk_stream_close(c->s, conn_stream_close_cb);
    buf_free(&c->in);
    c->in_off = 0;

    struct req *r = c->req;
    if (!r)
        return;
    if (r->state == R_PARSING) {
        req_free(r);
        c->req = NULL;
        return;
    }
    /* Both callbacks above run from the loop later, so the conn survives
     * whatever abort_cb does (including finishing the request). */
    r->aborted = true;
    if (r->pub.abort_cb)
        r->pub.abort_cb(&r->pub);
}

static void conn_write(struct conn *c, const void *data, size_t len)
{
    if (c->state == C_CLOSED || len == 0)
        return;
    /* A failed write surfaces through the read callback. */
    (void)sk_stream_write(c->s, data, len);
}

static void conn_enter_quiet(struct conn *c)
{
    c->drained = true;
    if (c->peer_eof) {
        conn_close(c);
        return;
    }
    uint64_t now = uv_now(c->s->loop);
    c->linger_deadline = now + LINGER_MAX_MS;
    timer_set(c, T_QUIET, LINGER_QUIET_MS);
}

/* The final response was written: close once it is sent. */
static void conn_enter_draining(struct conn *c)
{
    if (c->state == C_CLOSED)
        return;
    c->state = C_DRAINING;
    c->drained = false;
    c->in.len = 0;
    c->in_off = 0;
    if (c->read_stopped) {
        c->read_stopped = false;
        sk_stream_read_start(c->s, conn_read_cb);
    }
    if (c->s->write_queued == 0) {
        conn_enter_quiet(c);
        return;
    }
    c->drain_deadline = uv_now(c->s->loop) + c->srv->cfg.request_timeout_ms;
    timer_set(c, T_DRAIN, c->srv->cfg.request_timeout_ms);
}

/* Waits for the queue to empty after the client's end, until the drain
 * deadline. */
static void conn_drain_poll(struct conn *c)
{
    uint64_t now = uv_now(c->s->loop);
    if (c->s->write_queued == 0 || now >= c->drain_deadline) {
        conn_close(c);
        return;
    }
    uint64_t left = c->drain_deadline - now;
    timer_set(c, T_DRAIN, left < EOF_DRAIN_POLL_MS ? left : EOF_DRAIN_POLL_MS);
}

static void conn_drain_cb(struct sk_stream *s)
{
    struct conn *c = s->data;
    if (c->state == C_DRAINING && !c->drained)
        conn_enter_quiet(c);
}

/* Writes a complete response. The connection stays usable when
 * keep_alive is set. */
static void write_response(struct conn *c, int status, const char *ctype,
                           const struct buf *extra, const char *body,
                           size_t len, bool keep_alive, bool http10, bool head)
{
    if (c->state == C_CLOSED)
        return;
    bool no_body = status < 200 || status == 204 || status == 304;
    struct buf out = {0};
    buf_printf(&out, "HTTP/1.1 %d %s\r\nServer: %s\r\n", status,
               sk_http_status_text(status), c->srv->server_name);
    if (ctype && !no_body)
        buf_printf(&out, "Content-Type: %s\r\n", ctype);
    if (!no_body)
        buf_printf(&out, "Content-Length: %zu\r\n", len);
    if (!keep_alive)
        buf_printf(&out, "Connection: close\r\n");
    else if (http10)
        buf_printf(&out, "Connection: keep-alive\r\n");
    if (extra && extra->len)
        buf_append(&out, extra->p, extra->len);
    buf_append(&out, "\r\n", 2);
    if (!no_body && !head)
        buf_append(&out, body, len);
    conn_write(c, out.p, out.len);
    buf_free(&out);
}

static void write_error(struct conn *c, int status, enum sk_rc code,
                        const char *msg, bool keep_alive, bool http10,
                        bool head, const struct buf *extra)
{
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", sk_rc_name(code),
                          "message", msg);
    if (!j) {
        /* Not UTF-8 (a peer's bytes quoted in the message): keep ASCII. */
        char *ascii = sk_strdup(msg);
        for (char *q = ascii; *q; q++)
            if ((unsigned char)*q >= 0x80)
                *q = '?';
        j = json_pack("{s:{s:s,s:s}}", "error", "code", sk_rc_name(code),
                      "message", ascii);
        free(ascii);
    }
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        sk_oom(strlen(msg));
    write_response(c, status, "application/json", extra, text, strlen(text),
                   keep_alive, http10, head);
    free(text);
}

/* Answers a request the server itself refuses, and closes. */
static void conn_fail(struct conn *c, int status, enum sk_rc code,
                      const char *msg)
{
    if (c->state == C_CLOSED)
        return;
    if (c->req) {
        req_free(c->req);
        c->req = NULL;
    }
    write_error(c, status, code, msg, false, false, false, NULL);
    conn_enter_draining(c);
}

static void conn_timer_cb(uv_timer_t *t)
{
    struct conn *c = t->data;
    enum timer_kind kind = c->timer_kind;
    c->timer_kind = T_NONE;
    switch (kind) {
    case T_DRAIN:
        if (c->peer_eof)
            conn_drain_poll(c);
        else
            conn_close(c);
        break;
    case T_IDLE:
    case T_QUIET:
        conn_close(c);
        break;
    case T_REQUEST: {
        char msg[96];
        snprintf(msg, sizeof msg, "request not received within %u ms",
                 request_ms(c));
        conn_fail(c, 408, SK_ETIMEDOUT, msg);
        break;
    }
    case T_RESUME:
        conn_process(c);
        break;
    case T_NONE:
        break;
    }
}

static void timer_set(struct conn *c, enum timer_kind kind, uint64_t ms)
{
    c->timer_kind = kind;
    uv_timer_start(&c->timer, conn_timer_cb, ms, 0);
}

static void timer_clear(struct conn *c)
{
    c->timer_kind = T_NONE;
    uv_timer_stop(&c->timer);
}

static size_t conn_buffered(const struct conn *c)
{
    return c->in.len - c->in_off;
}

static void conn_read_cb(struct sk_stream *s, ssize_t nread, const char *buf)
{
    struct conn *c = s->data;
    if (c->state == C_CLOSED)
        return;
    if (nread < 0) {
        /* An orderly end while the last response is still being sent:
         * let it go out; anything else means the client is gone. */
        if (nread == UV_EOF && c->state == C_DRAINING && !c->drained) {
            c->peer_eof = true;
            conn_drain_poll(c);
            return;
        }
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    switch (c->state) {
    case C_DRAINING:
        if (c->drained) {
            uint64_t now = uv_now(s->loop);
            if (now >= c->linger_deadline)
                conn_close(c);
            else
                timer_set(c, T_QUIET,
                          c->linger_deadline - now < LINGER_QUIET_MS
                              ? c->linger_deadline - now
                              : LINGER_QUIET_MS);
        }
        return;
    case C_HANDLER:
        buf_append(&c->in, buf, (size_t)nread);
        if (conn_buffered(c) > MAX_BUFFERED_INPUT && !c->read_stopped) {
            c->read_stopped = true;
            sk_stream_read_stop(s);
        }
        return;
    case C_IDLE:
    case C_READING:
        buf_append(&c->in, buf, (size_t)nread);
        conn_process(c);
        return;
    case C_CLOSED:
        return;
    }
}

static void req_finish(struct req *r, bool close_after);

/* ---- Strangers: budgets and request rates ---- */

static void server_reject(struct server *sv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void server_reject(struct server *sv, const char *fmt, ...)
{
    if (!sv->cfg.reject_cb)
        return;
    struct sk_err err;
    va_list ap;
    va_start(ap, fmt);
    sk_err_vset(&err, SK_EUNAVAIL, fmt, ap);
    va_end(ap);
    sv->cfg.reject_cb(sv->pub, &err);
}

/* Takes one request from ip's bucket; false when it is empty. */
static bool rate_take(struct server *sv, const char *ip)
{
    uint64_t now = uv_now(sv->loop);
    struct rate_bucket *b = NULL, *oldest = &sv->buckets[0];
    for (size_t i = 0; i < RATE_SOURCES && !b; i++) {
        struct rate_bucket *x = &sv->buckets[i];
        if (strcmp(x->ip, ip) == 0)
            b = x;
        else if (!x->ip[0] || (oldest->ip[0] && x->at_ms < oldest->at_ms))
            oldest = x;
    }
    double burst = sv->cfg.unauthenticated_burst;
    if (!b) {
        b = oldest;
        snprintf(b->ip, sizeof b->ip, "%s", ip);
        b->tokens = burst;
        b->at_ms = now;
    }
    b->tokens += (double)(now - b->at_ms) * sv->cfg.unauthenticated_rate / 1e3;
    if (b->tokens > burst)
        b->tokens = burst;
    b->at_ms = now;
    if (b->tokens < 1)
        return false;
    b->tokens -= 1;
    return true;
}

/* The oldest connection without a certificate that may be closed to
 * make room: an idle one, else (for the whole budget: slow senders from
 * many addresses) one still sending its request; never one whose request
 * is with the handler. For one address (ip given) only an idle one: its
 * requests in flight are its own business. */
static struct conn *unauth_victim(struct server *sv, const char *ip,
                                  unsigned *out_from_ip)
{
    struct conn *idle = NULL, *reading = NULL;
    unsigned n = 0;
    /* Newest first: the last match is the oldest. */
    struct sk_list *it;
    sk_list_each(it, &sv->unauth)
    {
        struct conn *c = sk_list_entry(it, struct conn, ulink);
        if (ip && strcmp(c->ip, ip) != 0)
            continue;
        n++;
        if (c->state == C_IDLE)
            idle = c;
        else if (c->state == C_READING)
            reading = c;
    }
    if (out_from_ip)
        *out_from_ip = n;
    return idle || ip ? idle : reading;
}

static void unauth_evict(struct server *sv, struct conn *victim,
                         const char *why)
{
    server_reject(sv,
                  "%s: %s connection without a client certificate closed "
                  "for a newer one (%s)",
                  victim->peer.addr, victim->state == C_IDLE ? "idle" : "slow",
                  why);
    conn_close(victim);
}

/* Finds a place for a new connection in its budget, closing an older
 * stranger's if need be. False: no place (the caller answers 503 with
 * msg). */
static bool admit(struct server *sv, struct conn *c, char *msg, size_t size)
{
    const struct sk_http_server_config *cfg = &sv->cfg;
    if (!c->unauthenticated) {
        if (sv->n_open >= cfg->max_connections) {
            snprintf(msg, size, "too many connections (max %u)",
                     cfg->max_connections);
            return false;
        }
        sv->n_open++;
        c->counted = true;
        return true;
    }
    char why[96];
    unsigned from_ip;
    struct conn *victim = unauth_victim(sv, c->ip, &from_ip);
    if (from_ip >= cfg->max_unauthenticated_per_source) {
        if (!victim) {
            snprintf(msg, size,
                     "too many connections without a client certificate "
                     "from %s (max %u)",
                     c->ip, cfg->max_unauthenticated_per_source);
            return false;
        }
        snprintf(why, sizeof why, "max %u from %s",
                 cfg->max_unauthenticated_per_source, c->ip);
        unauth_evict(sv, victim, why);
    }
    if (sv->n_unauth >= cfg->max_unauthenticated) {
        victim = unauth_victim(sv, NULL, NULL);
        if (!victim) {
            snprintf(msg, size,
                     "too many connections without a client certificate "
                     "(max %u)",
                     cfg->max_unauthenticated);
            return false;
        }
        snprintf(why, sizeof why, "max %u", cfg->max_unauthenticated);
        unauth_evict(sv, victim, why);
    }
    sv->n_unauth++;
    c->counted = true;
    sk_list_insert_head(&sv->unauth, &c->ulink);
    return true;
}

/* Hands the parsed request to the handler. */
static void conn_dispatch(struct conn *c)
{
    struct req *r = c->req;
    timer_clear(c);
    struct server *sv = c->srv;
    if (c->unauthenticated && sv->cfg.unauthenticated_rate &&
        !rate_take(sv, c->ip)) {
        char msg[128];
        snprintf(msg, sizeof msg,
                 "too many requests without a client certificate from %s "
                 "(limit %u/s)",
                 c->ip, sv->cfg.unauthenticated_rate);
        server_reject(sv, "%s: %s", c->peer.addr, msg);
        /* Answered like any request, and the connection stays: a new
         * TLS handshake would cost more than the answer. */
        c->state = C_HANDLER;
        r->state = R_HANDLER;
        sk_http_add_header(&r->pub, "Retry-After", "1");
        write_error(c, 429, SK_EUNAVAIL, msg, r->keep_alive, r->http10, r->head,
                    &r->resp_headers);
        req_finish(r, false);
        return;
    }
    c->state = C_HANDLER;
    r->state = R_HANDLER;
    buf_append(&r->body, "", 0); /* NUL-terminated even when empty */
    r->pub.body = r->body.p;
    r->pub.body_len = r->body.len;
    c->srv->cfg.handler(&r->pub);
}

static void conn_process(struct conn *c)
{
    while ((c->state == C_IDLE || c->state == C_READING) &&
           conn_buffered(c) > 0) {
        if (c->state == C_IDLE) {
            c->state = C_READING;
            timer_set(c, T_REQUEST, request_ms(c));
        }
        size_t avail = conn_buffered(c);
        size_t n = http_parser_execute(&c->parser, &parser_settings,
                                       c->in.p + c->in_off, avail);
        c->in_off += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            conn_dispatch(c);
            continue;
        }
        if (e != HPE_OK) {
            if (c->err_status) {
                conn_fail(c, c->err_status, c->err_code, c->err_msg);
            } else if (e == HPE_HEADER_OVERFLOW) {
                /* http-parser's own cap, below ours if ours is large. */
                size_t cap = c->srv->cfg.max_header_bytes;
                if (cap > HTTP_MAX_HEADER_SIZE)
                    cap = HTTP_MAX_HEADER_SIZE;
                char msg[96];
                snprintf(msg, sizeof msg, "request headers exceed %zu bytes",
                         cap);
                conn_fail(c, 431, SK_ETOOBIG, msg);
            } else {
                char msg[160];
                snprintf(msg, sizeof msg, "malformed request: %s",
                         http_errno_description(e));
                conn_fail(c, 400, SK_EPROTO, msg);
            }
            break;
        }
        /* Only an upgrade stops the parser early without an error; CONNECT
         * is refused in on_headers_complete and other upgrades end in
         * on_message_complete (answered as plain HTTP). */
        if (n < avail) {
            conn_fail(c, 400, SK_EPROTO, "malformed request");
            break;
        }
    }
    if (c->state == C_CLOSED || c->state == C_DRAINING)
        return;
    /* Keep the unparsed rest at the front of the buffer. */
    if (c->in_off > 0) {
        size_t rest = conn_buffered(c);
        memmove(c->in.p, c->in.p + c->in_off, rest);
        c->in.len = rest;
        c->in_off = 0;
        if (c->in.p)
            c->in.p[rest] = '\0';
    }
    if (c->state == C_IDLE) {
        if (c->in.cap > MAX_BUFFERED_INPUT)
            buf_free(&c->in);
        timer_set(c, T_IDLE, idle_ms(c));
    }
    if (c->state == C_HANDLER && conn_buffered(c) > MAX_BUFFERED_INPUT &&
        !c->read_stopped) {
        c->read_stopped = true;
        sk_stream_read_stop(c->s);
    }
}

/* The handler finished the request (the response is written). */
static void req_finish(struct req *r, bool close_after)
{
    struct conn *c = r->conn;
    bool keep_alive = r->keep_alive && !close_after;
    c->req = NULL;
    req_free(r);
    if (c->state == C_CLOSED) {
        conn_maybe_free(c);
        return;
    }
    if (!keep_alive) {
        conn_enter_draining(c);
        return;
    }
    c->state = C_IDLE;
    if (c->read_stopped) {
        c->read_stopped = false;
        sk_stream_read_start(c->s, conn_read_cb);
    }
    /* Parse what was pipelined, but from the loop: this may run inside
     * conn_dispatch (the handler answered at once), where conn_process's
     * own loop carries on, or inside a handler's later callback, which must
     * not find another handler running under it. */
    if (conn_buffered(c) > 0)
        timer_set(c, T_RESUME, 0);
    else
        timer_set(c, T_IDLE, idle_ms(c));
}

/* ---- Parser callbacks ---- */

static int parse_error(struct conn *c, int status, enum sk_rc code,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int parse_error(struct conn *c, int status, enum sk_rc code,
                       const char *fmt, ...)
{
    c->err_status = status;
    c->err_code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err_msg, sizeof c->err_msg, fmt, ap);
    va_end(ap);
    return -1;
}

static int count_header_bytes(struct conn *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > c->srv->cfg.max_header_bytes)
        return parse_error(c, 431, SK_ETOOBIG,
                           "request headers exceed %zu bytes",
                           c->srv->cfg.max_header_bytes);
    return 0;
}

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;
    req_free(c->req);
    struct req *r = sk_calloc(1, sizeof *r);
    r->conn = c;
    r->pub.server = c->srv->pub;
    r->pub.peer = &c->peer;
    r->pub.impl = r;
    c->req = r;
    c->header_bytes = 0;
    return count_header_bytes(c, REQUEST_LINE_OVERHEAD);
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (count_header_bytes(c, len))
        return -1;
    buf_append(&c->req->url, at, len);
    return 0;
}

static void trim_value(struct req *r)
{
    while (r->hbuf.len > 0 && r->n_offs > 0 &&
           r->hbuf.len > r->offs[r->n_offs - 1].value &&
           (r->hbuf.p[r->hbuf.len - 1] == ' ' ||
            r->hbuf.p[r->hbuf.len - 1] == '\t'))
        r->hbuf.p[--r->hbuf.len] = '\0';
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct req *r = c->req;
    if (count_header_bytes(c, len))
        return -1;
    if (r->headers_done)
        return 0; /* trailers of a chunked body: counted, not kept */
    if (r->in_value || r->n_offs == 0) {
        if (count_header_bytes(c, HEADER_LINE_OVERHEAD))
            return -1;
        if (r->n_offs > 0) {
            trim_value(r);
            buf_append(&r->hbuf, "", 1); /* ends the previous value */
        }
        if (r->n_offs == r->cap_offs) {
            r->cap_offs = r->cap_offs ? r->cap_offs * 2 : 16;
            r->offs = sk_realloc(r->offs, r->cap_offs * sizeof *r->offs);
        }
        r->offs[r->n_offs].name = r->hbuf.len;
        r->offs[r->n_offs].value = SIZE_MAX;
        r->n_offs++;
        r->in_value = false;
    }
    size_t start = r->hbuf.len;
    buf_append(&r->hbuf, at, len);
    for (size_t i = start; i < r->hbuf.len; i++) {
        char ch = r->hbuf.p[i];
        if (ch >= 'A' && ch <= 'Z')
            r->hbuf.p[i] = (char)(ch - 'A' + 'a');
    }
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct req *r = c->req;
    if (count_header_bytes(c, len))
        return -1;
    if (r->headers_done || r->n_offs == 0)
        return 0;
    if (!r->in_value) {
        buf_append(&r->hbuf, "", 1); /* ends the name */
        r->offs[r->n_offs - 1].value = r->hbuf.len;
        r->in_value = true;
    }
    buf_append(&r->hbuf, at, len);
    return 0;
}

/* Splits the URL into the decoded path and the raw query. */
static int parse_target(struct conn *c, struct req *r)
{
    if (r->url.len == 0)
        return parse_error(c, 400, SK_EPROTO, "request has no target");
    if (r->url.len > UINT16_MAX)
        return parse_error(c, 414, SK_ETOOBIG,
                           "request target exceeds %u bytes", UINT16_MAX);
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(r->url.p, r->url.len, 0, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH)))
        return parse_error(c, 400, SK_EPROTO, "malformed request target");
    const char *path = r->url.p + u.field_data[UF_PATH].off;
    size_t path_len = u.field_data[UF_PATH].len;
    r->path = sk_malloc(path_len + 1);
    long n = percent_decode(path, path_len, r->path, false);
    if (n < 0)
        return parse_error(c, 400, SK_EPROTO,
                           "malformed percent-encoding in request path");
    if ((size_t)n != strlen(r->path))
        return parse_error(c, 400, SK_EPROTO, "request path contains NUL");
    if (r->path[0] != '/')
        return parse_error(c, 400, SK_EPROTO, "request path is not absolute");
    if (u.field_set & (1 << UF_QUERY))
        r->query = sk_strndup(r->url.p + u.field_data[UF_QUERY].off,
                              u.field_data[UF_QUERY].len);
    else
        r->query = sk_strdup("");
    r->pub.path = r->path;
    r->pub.query = r->query;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct conn *c = p->data;
    struct req *r = c->req;
    struct server *sv = c->srv;
    if (r->n_offs > 0) {
        if (r->in_value)
            trim_value(r);
        buf_append(&r->hbuf, "", 1);
        /* A name without a value callback: give it an empty one. */
        if (r->offs[r->n_offs - 1].value == SIZE_MAX) {
            r->offs[r->n_offs - 1].value = r->hbuf.len;
            buf_append(&r->hbuf, "", 1);
        }
    }
    r->headers_done = true;
    r->headers = sk_calloc(r->n_offs ? r->n_offs : 1, sizeof *r->headers);
    for (size_t i = 0; i < r->n_offs; i++) {
        r->headers[i].name = r->hbuf.p + r->offs[i].name;
        r->headers[i].value = r->hbuf.p + r->offs[i].value;
    }
    r->pub.headers = r->headers;
    r->pub.n_headers = r->n_offs;
    r->pub.method = http_method_str((enum http_method)p->method);
    r->http10 = p->http_major == 1 && p->http_minor == 0;
    r->head = p->method == HTTP_HEAD;
    r->keep_alive = http_should_keep_alive(p) != 0;

    if (p->http_major != 1)
        return parse_error(c, 505, SK_EPROTO, "HTTP/%u.%u is not supported",
                           p->http_major, p->http_minor);
    if (p->method == HTTP_CONNECT)
        return parse_error(c, 405, SK_EPROTO, "CONNECT is not supported");
    if (parse_target(c, r))
        return -1;
    if (p->content_length != ULLONG_MAX &&
        p->content_length > sv->cfg.max_body_bytes)
        return parse_error(c, 413, SK_ETOOBIG, "request body exceeds %zu bytes",
                           sv->cfg.max_body_bytes);
    /* Room for the declared body, but not more than a read's worth ahead
     * of the bytes actually arriving. */
    if (p->content_length != ULLONG_MAX && p->content_length > 0)
        buf_reserve(&r->body, p->content_length < MAX_BUFFERED_INPUT
                                  ? (size_t)p->content_length
                                  : MAX_BUFFERED_INPUT);
    const char *expect = sk_http_header(&r->pub, "expect");
    if (expect && !r->http10 && strcasecmp(expect, "100-continue") == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        conn_write(c, cont, sizeof cont - 1);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct req *r = c->req;
    size_t max = c->srv->cfg.max_body_bytes;
    if (len > max || r->body.len > max - len)
        return parse_error(c, 413, SK_ETOOBIG, "request body exceeds %zu bytes",
                           max);
    buf_append(&r->body, at, len);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    /* Stop here: the request goes to the handler, and the next one waits
     * until it is finished. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- Server ---- */

static void server_close_timer_cb(uv_handle_t *h)
{
    struct server *sv = h->data;
    sv->close_timer_closed = true;
    server_maybe_done(sv);
}

int sk_http_server_init(struct sk_http_server *srv, uv_loop_t *loop,
                        const struct sk_http_server_config *cfg)
{
    if (!cfg || !cfg->handler)
        return SK_EINVAL;
    struct server *sv = sk_calloc(1, sizeof *sv);
    sv->pub = srv;
    sv->loop = loop;
    sv->cfg = *cfg;
    sk_list_init(&sv->conns);
    sk_list_init(&sv->unauth);
    if (!sv->cfg.max_header_bytes)
        sv->cfg.max_header_bytes = DEFAULT_MAX_HEADER_BYTES;
    if (!sv->cfg.max_body_bytes)
        sv->cfg.max_body_bytes = DEFAULT_MAX_BODY_BYTES;
    if (!sv->cfg.request_timeout_ms)
        sv->cfg.request_timeout_ms = DEFAULT_REQUEST_TIMEOUT_MS;
    if (!sv->cfg.idle_timeout_ms)
        sv->cfg.idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
    if (!sv->cfg.max_connections)
        sv->cfg.max_connections = DEFAULT_MAX_CONNECTIONS;
    if (!sv->cfg.max_unauthenticated)
        sv->cfg.max_unauthenticated = DEFAULT_MAX_UNAUTHENTICATED;
    if (!sv->cfg.max_unauthenticated_per_source)
        sv->cfg.max_unauthenticated_per_source =
            DEFAULT_MAX_UNAUTHENTICATED_PER_SOURCE;
    if (!sv->cfg.unauthenticated_timeout_ms)
        sv->cfg.unauthenticated_timeout_ms = DEFAULT_UNAUTHENTICATED_TIMEOUT_MS;
    if (sv->cfg.unauthenticated_rate) {
        if (!sv->cfg.unauthenticated_burst)
            sv->cfg.unauthenticated_burst = 2 * sv->cfg.unauthenticated_rate;
        sv->buckets = sk_calloc(RATE_SOURCES, sizeof *sv->buckets);
    }
    sv->server_name = sk_strdup(cfg->server_name ? cfg->server_name : "skiff");
    for (char *q = sv->server_name; *q; q++)
        if (*q == '\r' || *q == '\n')
            *q = ' ';
    sv->cfg.server_name = sv->server_name;
    uv_timer_init(loop, &sv->close_timer);
    sv->close_timer.data = sv;
    srv->data = cfg->data;
    srv->impl = sv;
    return 0;
}

void sk_http_server_adopt(struct sk_http_server *srv, struct sk_stream *s)
{
    struct server *sv = srv->impl;
    if (!sv || sv->closing) {
        sk_stream_close(s, NULL);
        return;
    }
    struct conn *c = sk_calloc(1, sizeof *c);
    c->srv = sv;
    c->s = s;
    c->peer = s->peer;
    c->unauthenticated = !s->peer.authenticated;
    sk_list_init(&c->ulink);
    const char *colon = strrchr(s->peer.addr, ':');
    size_t iplen = colon ? (size_t)(colon - s->peer.addr) : 0;
    if (iplen >= sizeof c->ip)
        iplen = sizeof c->ip - 1;
    memcpy(c->ip, s->peer.addr, iplen);
    s->data = c;
    s->drain_cb = conn_drain_cb;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    sk_list_insert_head(&sv->conns, &c->link);
    sk_stream_read_start(s, conn_read_cb);

    char msg[160];
    if (!admit(sv, c, msg, sizeof msg)) {
        server_reject(sv, "%s: %s", c->peer.addr, msg);
        write_error(c, 503, SK_EUNAVAIL, msg, false, false, false, NULL);
        conn_enter_draining(c);
        return;
    }
    c->state = C_IDLE;
    timer_set(c, T_IDLE, idle_ms(c));
}

void sk_http_server_close(struct sk_http_server *srv,
                          sk_http_server_close_cb cb)
{
    struct server *sv = srv->impl;
    if (!sv || sv->closing)
        return;
    sv->closing = true;
    sv->close_cb = cb;
    /* conn_close frees nothing synchronously (its handles close later), so
     * walking the list is safe even if abort_cb finishes requests. */
    struct sk_list *it;
    sk_list_each(it, &sv->conns)
        conn_close(sk_list_entry(it, struct conn, link));
    uv_close((uv_handle_t *)&sv->close_timer, server_close_timer_cb);
}

unsigned sk_http_server_connections(const struct sk_http_server *srv)
{
    const struct server *sv = srv->impl;
    return sv ? sv->n_open + sv->n_unauth : 0;
}

/* ---- Reading a request ---- */

const char *sk_http_header(const struct sk_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

bool sk_http_query(const struct sk_http_req *req, const char *name, char *buf,
                   size_t size)
{
    const char *q = req->query;
    if (!q || !size)
        return false;
    size_t name_len = strlen(name);
    while (*q) {
        const char *end = strchr(q, '&');
        size_t len = end ? (size_t)(end - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        size_t key_len = eq ? (size_t)(eq - q) : len;
        /* Decoding never makes a string longer. */
        char *key = sk_malloc(key_len + 1);
        long kn = percent_decode(q, key_len, key, true);
        bool match = kn >= 0 && (size_t)kn == name_len &&
                     memcmp(key, name, name_len) == 0;
        free(key);
        if (match) {
            const char *v = eq ? eq + 1 : q + len;
            size_t vlen = eq ? len - key_len - 1 : 0;
            char *val = sk_malloc(vlen + 1);
            long vn = percent_decode(v, vlen, val, true);
            bool ok = vn >= 0 && (size_t)vn == strlen(val) && (size_t)vn < size;
            if (ok)
                memcpy(buf, val, (size_t)vn + 1);
            free(val);
            return ok;
        }
        if (!end)
            break;
        q = end + 1;
    }
    return false;
}

bool sk_http_req_aborted(const struct sk_http_req *req)
{
    return req_of(req)->aborted;
}

/* ---- Finishing a request ---- */

static bool header_token_ok(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return false;
    return true;
}

void sk_http_add_header(struct sk_http_req *req, const char *name,
                        const char *value)
{
    struct req *r = req_of(req);
    /* A header that would split the response is dropped. */
    if (r->state != R_HANDLER || !header_token_ok(name) ||
        !header_token_ok(value) || !*name || strchr(name, ':'))
        return;
    buf_printf(&r->resp_headers, "%s: %s\r\n", name, value);
}

void sk_http_respond(struct sk_http_req *req, int status,
                     const char *content_type, const char *body, size_t len)
{
    struct req *r = req_of(req);
    if (r->state == R_STREAMING) {
        sk_http_stream_end(req);
        return;
    }
    struct conn *c = r->conn;
    if (content_type && !header_token_ok(content_type))
        content_type = NULL;
    write_response(c, status, content_type, &r->resp_headers, body, len,
                   r->keep_alive, r->http10, r->head);
    req_finish(r, false);
}

void sk_http_respond_json(struct sk_http_req *req, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(body);
    if (!text) {
        struct sk_err err;
        sk_err_set(&err, SK_EINTERNAL, "response is not valid JSON");
        sk_http_respond_error(req, &err);
        return;
    }
    sk_http_respond(req, status, "application/json", text, strlen(text));
    free(text);
}

void sk_http_respond_error(struct sk_http_req *req, const struct sk_err *err)
{
    struct req *r = req_of(req);
    if (r->state == R_STREAMING) {
        sk_http_stream_end(req);
        return;
    }
    write_error(r->conn, sk_rc_http_status(err->code), err->code, err->msg,
                r->keep_alive, r->http10, r->head, &r->resp_headers);
    req_finish(r, false);
}

void sk_http_stream_begin(struct sk_http_req *req, int status,
                          const char *content_type)
{
    struct req *r = req_of(req);
    if (r->state != R_HANDLER)
        return;
    r->state = R_STREAMING;
    /* HTTP/1.0 has no chunked encoding: the body ends when the connection
     * does. */
    if (r->http10)
        r->keep_alive = false;
    struct buf out = {0};
    buf_printf(&out, "HTTP/1.1 %d %s\r\nServer: %s\r\n", status,
               sk_http_status_text(status), r->conn->srv->server_name);
    if (content_type && header_token_ok(content_type))
        buf_printf(&out, "Content-Type: %s\r\n", content_type);
    if (!r->http10)
        buf_printf(&out, "Transfer-Encoding: chunked\r\n");
    if (!r->keep_alive)
        buf_printf(&out, "Connection: close\r\n");
    if (r->resp_headers.len)
        buf_append(&out, r->resp_headers.p, r->resp_headers.len);
    buf_append(&out, "\r\n", 2);
    conn_write(r->conn, out.p, out.len);
    buf_free(&out);
}

bool sk_http_stream_write(struct sk_http_req *req, const void *buf, size_t len)
{
    struct req *r = req_of(req);
    if (r->conn->state == C_CLOSED || r->aborted)
        return false;
    if (r->state != R_STREAMING || len == 0 || r->head)
        return true;
    if (r->http10) {
        conn_write(r->conn, buf, len);
        return true;
    }
    char head[24];
    int n = snprintf(head, sizeof head, "%zx\r\n", len);
    struct buf out = {0};
    buf_reserve(&out, (size_t)n + len + 2);
    buf_append(&out, head, (size_t)n);
    buf_append(&out, buf, len);
    buf_append(&out, "\r\n", 2);
    conn_write(r->conn, out.p, out.len);
    buf_free(&out);
    return true;
}

size_t sk_http_stream_queued(const struct sk_http_req *req)
{
    const struct conn *c = req_of(req)->conn;
    if (c->state == C_CLOSED || !c->s)
        return 0;
    return c->s->write_queued;
}

void sk_http_stream_end(struct sk_http_req *req)
{
    struct req *r = req_of(req);
    if (r->state == R_HANDLER) {
        /* Ended without a begin: an empty successful response. */
        sk_http_respond(req, 200, NULL, NULL, 0);
        return;
    }
    if (!r->http10 && !r->head) {
        static const char last[] = "0\r\n\r\n";
        conn_write(r->conn, last, sizeof last - 1);
    }
    req_finish(r, r->http10);
}
