/* Fuzz target: the HTTP server's request parsing. The input is what a
 * client sends on one connection, delivered in two or three reads split at
 * positions derived from the input, through an in-memory transport that
 * implements the stream contract (skiff/stream.h). The handler answers every
 * request at once. Each input runs on a private loop that must close
 * cleanly, so a leaked handle or request aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/http.h"
#include "skiff/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- The in-memory transport ---- */

struct mem_stream {
    struct sk_stream pub;
    uv_idle_t closer; /* its close callback defers the stream's */
    bool reading;
    size_t written;
};

static void mem_read_start(struct sk_stream *s)
{
    ((struct mem_stream *)s)->reading = true;
}

static void mem_read_stop(struct sk_stream *s)
{
    ((struct mem_stream *)s)->reading = false;
}

/* Everything written is "sent" at once: the queue never grows. */
static int mem_write(struct sk_stream *s, const void *buf, size_t len)
{
    struct mem_stream *m = (struct mem_stream *)s;
    (void)buf;
    m->written += len;
    return 0;
}

static void mem_closed_cb(uv_handle_t *h)
{
    struct mem_stream *m = h->data;
    if (m->pub.close_cb)
        m->pub.close_cb(&m->pub);
    free(m);
}

static void mem_close(struct sk_stream *s)
{
    struct mem_stream *m = (struct mem_stream *)s;
    m->reading = false;
    uv_close((uv_handle_t *)&m->closer, mem_closed_cb);
}

static const struct sk_stream_vtable mem_vtable = {
    .read_start = mem_read_start,
    .read_stop = mem_read_stop,
    .write = mem_write,
    .close = mem_close,
};

static struct mem_stream *mem_stream_new(uv_loop_t *loop)
{
    struct mem_stream *m = calloc(1, sizeof *m);
    if (!m)
        abort();
    m->pub.vt = &mem_vtable;
    m->pub.loop = loop;
    snprintf(m->pub.peer.addr, sizeof m->pub.peer.addr, "fuzz");
    uv_idle_init(loop, &m->closer);
    m->closer.data = m;
    return m;
}

/* ---- Server side ---- */

struct run {
    int requests;
    bool closed;
};

static void handler(struct sk_http_req *req)
{
    struct run *r = req->server->data;
    r->requests++;
    if (!req->method || !req->path || req->path[0] != '/' || !req->query ||
        !req->body || req->body[req->body_len] != '\0' || !req->peer)
        abort();
    if (strlen(req->path) == 0)
        abort();
    for (size_t i = 0; i < req->n_headers; i++)
        for (const char *p = req->headers[i].name; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                abort();
    char q[32];
    (void)sk_http_query(req, "a", q, sizeof q);
    (void)sk_http_header(req, "Host");
    char body[48];
    int n = snprintf(body, sizeof body, "%zu\n", req->body_len);
    if (req->body_len % 3 == 1) {
        sk_http_stream_begin(req, 200, "text/plain");
        sk_http_stream_write(req, body, (size_t)n);
        sk_http_stream_end(req);
        return;
    }
    sk_http_respond(req, 200, "text/plain", body, (size_t)n);
}

static void server_closed_cb(struct sk_http_server *srv)
{
    ((struct run *)srv->data)->closed = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        abort();
    struct run run = {0};
    struct sk_http_server srv;
    struct sk_http_server_config cfg = {
        .handler = handler,
        .data = &run,
        .max_header_bytes = 512,
        .max_body_bytes = 256,
    };
    if (sk_http_server_init(&srv, &loop, &cfg) != 0)
        abort();
    struct mem_stream *m = mem_stream_new(&loop);
    sk_http_server_adopt(&srv, &m->pub);

    size_t a = size ? data[0] % (size + 1) : 0;
    size_t b = size ? data[size - 1] % (size + 1) : 0;
    if (a > b) {
        size_t t = a;
        a = b;
        b = t;
    }
    const size_t cuts[4] = {0, a, b, size};
    /* The stream may be closed and freed by the server between pieces; the
     * close callback tells. */
    for (int i = 0; i < 3; i++) {
        size_t len = cuts[i + 1] - cuts[i];
        if (len == 0)
            continue;
        if (sk_http_server_connections(&srv) == 0)
            break; /* closed or closing: no more reads */
        if (!m->reading)
            break;
        m->pub.read_cb(&m->pub, (ssize_t)len, (const char *)data + cuts[i]);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    /* Half the inputs end with the client hanging up. */
    if (size && (data[0] & 1) && sk_http_server_connections(&srv) > 0 &&
        m->reading)
        m->pub.read_cb(&m->pub, UV_EOF, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);

    sk_http_server_close(&srv, server_closed_cb);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (!run.closed || uv_loop_close(&loop) != 0)
        abort();
    return 0;
}
