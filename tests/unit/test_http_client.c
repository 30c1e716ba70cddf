/* The libcurl client against skiff's own HTTP server on 127.0.0.1: plain
 * HTTP on one loop for the async calls, the server on a thread of its own
 * for the synchronous variant, and HTTPS with throwaway CAs. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "skiff/http.h"
#include "skiff/http_client.h"
#include "skiff/mem.h"
#include "skiff/stream.h"
#include "skiff/tls.h"
#include "support.h"

#define DEADLINE_MS 10000
#define MAX_CALLS 64

struct fx {
    uv_loop_t loop;
    struct sk_listener lis;
    struct sk_http_server srv;
    struct sk_http_client client;
    struct sk_tls_ctx *tls;
    int port;
    unsigned idle_ms; /* server idle timeout; 0: default */
    char base[64];    /* "http://127.0.0.1:PORT" */
    bool srv_closed, lis_closed, client_closed;

    struct sk_http_req *held;
    int aborts;
    int requests;

    struct sk_http_call calls[MAX_CALLS];
    int done[MAX_CALLS];
    bool in_cancel; /* a callback must not run inside cancel */
    int cb_inside_cancel;

    /* streaming */
    char streamed[256];
    size_t streamed_len;
    int chunks;
    bool stop_after_first;
};

/* ---- Server side ---- */

static void abort_cb(struct sk_http_req *req)
{
    struct fx *f = req->server->data;
    f->aborts++;
    if (f->held == req) {
        f->held = NULL;
        if (strcmp(req->path, "/stream") == 0)
            sk_http_stream_end(req);
        else
            sk_http_respond(req, 200, NULL, NULL, 0);
    }
}

static void handler(struct sk_http_req *req)
{
    struct fx *f = req->server->data;
    f->requests++;
    char q[32];
    if (strcmp(req->path, "/slow") == 0 || strcmp(req->path, "/stream") == 0) {
        f->held = req;
        req->abort_cb = abort_cb;
        if (strcmp(req->path, "/stream") == 0)
            sk_http_stream_begin(req, 200, "application/x-ndjson");
        return;
    }
    if (strcmp(req->path, "/error") == 0) {
        struct sk_err err;
        sk_err_set(&err, SK_ECONFLICT, "service \"web\": version 3 is stale");
        sk_http_respond_error(req, &err);
        return;
    }
    if (strcmp(req->path, "/plain502") == 0) {
        sk_http_respond(req, 502, "text/plain", "upstream", 8);
        return;
    }
    if (strcmp(req->path, "/big") == 0 ||
        strcmp(req->path, "/bigchunked") == 0) {
        size_t n =
            sk_http_query(req, "n", q, sizeof q) ? strtoul(q, NULL, 10) : 0;
        char *body = malloc(n + 1);
        memset(body, 'z', n);
        if (strcmp(req->path, "/big") == 0) {
            sk_http_respond(req, 200, "text/plain", body, n);
        } else {
            sk_http_stream_begin(req, 200, "text/plain");
            for (size_t off = 0; off < n; off += 100)
                sk_http_stream_write(req, body + off,
                                     n - off < 100 ? n - off : 100);
            sk_http_stream_end(req);
        }
        free(body);
        return;
    }
    json_t *j =
        json_pack("{s:s,s:s,s:s%,s:s?,s:s?,s:s?,s:b,s:s}", "method",
                  req->method, "path", req->path, "body", req->body,
                  req->body_len, "ct", sk_http_header(req, "content-type"), "x",
                  sk_http_header(req, "x-custom"), "q",
                  sk_http_query(req, "q", q, sizeof q) ? q : NULL, "auth",
                  req->peer->authenticated, "role", req->peer->role);
    sk_http_respond_json(req, 200, j);
}

static void accept_cb(struct sk_listener *l, struct sk_stream *s)
{
    struct fx *f = l->data;
    sk_http_server_adopt(&f->srv, s);
}

static void start_server(struct fx *f, uv_loop_t *loop, struct sk_tls_ctx *tls)
{
    /* The client opens many connections at once; the server's budget
     * for strangers is not what these tests are about. */
    struct sk_http_server_config cfg = {.handler = handler,
                                        .data = f,
                                        .idle_timeout_ms = f->idle_ms,
                                        .max_unauthenticated_per_source = 128};
    assert_int_equal(sk_http_server_init(&f->srv, loop, &cfg), 0);
    struct sk_listener_config lc = {.host = "127.0.0.1",
                                    .port = 0,
                                    .tls = tls,
                                    .accept_cb = accept_cb,
                                    .data = f};
    struct sk_err err;
    if (sk_listener_start(&f->lis, loop, &lc, &err) != 0)
        fail_msg("listener: %s", err.msg);
    f->port = sk_listener_port(&f->lis);
    snprintf(f->base, sizeof f->base, "%s://127.0.0.1:%d",
             tls ? "https" : "http", f->port);
}

static void fx_start_idle(struct fx *f, struct sk_tls_ctx *tls,
                          unsigned idle_ms)
{
    memset(f, 0, sizeof *f);
    f->idle_ms = idle_ms;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->tls = tls;
    start_server(f, &f->loop, tls);
    struct sk_err err;
    assert_int_equal(sk_http_client_init(&f->client, &f->loop, &err), 0);
}

static void fx_start_tls(struct fx *f, struct sk_tls_ctx *tls)
{
    fx_start_idle(f, tls, 0);
}

static void fx_start(struct fx *f)
{
    fx_start_tls(f, NULL);
}

static void srv_closed_cb(struct sk_http_server *srv)
{
    ((struct fx *)srv->data)->srv_closed = true;
}

static void lis_closed_cb(struct sk_listener *l)
{
    ((struct fx *)l->data)->lis_closed = true;
}

static struct fx *client_fx;

static void client_closed_cb(struct sk_http_client *c)
{
    (void)c;
    client_fx->client_closed = true;
}

static bool cond_all_closed(void *ctx)
{
    struct fx *f = ctx;
    return f->srv_closed && f->lis_closed && f->client_closed;
}

static void fx_stop(struct fx *f)
{
    client_fx = f;
    sk_http_client_close(&f->client, client_closed_cb);
    if (f->held) {
        struct sk_http_req *r = f->held;
        f->held = NULL;
        if (strcmp(r->path, "/stream") == 0)
            sk_http_stream_end(r);
        else
            sk_http_respond(r, 200, NULL, NULL, 0);
    }
    sk_http_server_close(&f->srv, srv_closed_cb);
    sk_listener_close(&f->lis, lis_closed_cb);
    assert_true(sk_test_run_until(&f->loop, cond_all_closed, f, DEADLINE_MS));
    for (int i = 0; i < MAX_CALLS; i++)
        sk_http_call_reset(&f->calls[i]);
    sk_tls_ctx_unref(f->tls);
    sk_test_loop_close(&f->loop);
}

/* ---- Client side ---- */

static void call_cb(struct sk_http_call *call)
{
    struct fx *f = call->data;
    int i = (int)(call - f->calls);
    f->done[i]++;
    if (f->in_cancel)
        f->cb_inside_cancel++;
}

static struct sk_http_call *call_prep(struct fx *f, int i, const char *path)
{
    struct sk_http_call *c = &f->calls[i];
    static char urls[MAX_CALLS][128];
    memset(c, 0, sizeof *c);
    snprintf(urls[i], sizeof urls[i], "%s%s", f->base, path);
    c->url = urls[i];
    c->cb = call_cb;
    c->data = f;
    return c;
}

struct wait_done {
    struct fx *f;
    int i;
};

static bool cond_done(void *ctx)
{
    struct wait_done *w = ctx;
    return w->f->done[w->i] > 0;
}

static void wait_done(struct fx *f, int i)
{
    struct wait_done w = {f, i};
    assert_true(sk_test_run_until(&f->loop, cond_done, &w, DEADLINE_MS));
    assert_int_equal(f->done[i], 1);
}

static json_t *body_json(const struct sk_http_call *c)
{
    assert_non_null(c->resp_body);
    json_t *j = json_loadb(c->resp_body, c->resp_len, 0, NULL);
    assert_non_null(j);
    return j;
}

static const char *jstr(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

static void assert_contains(const char *s, const char *part)
{
    if (!strstr(s, part))
        fail_msg("\"%s\" lacks \"%s\"", s, part);
}

static void test_get_and_post_json(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f);
    struct sk_http_call *c = call_prep(&f, 0, "/echo?q=one");
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    assert_int_equal(f.done[0], 0);
    wait_done(&f, 0);
    assert_int_equal(c->err.code, SK_OK);
    assert_int_equal(c->status, 200);
    assert_null(c->impl);
    json_t *j = body_json(c);
    assert_string_equal(jstr(j, "method"), "GET");
    assert_string_equal(jstr(j, "q"), "one");
    assert_int_equal(c->resp_body[c->resp_len], '\0');
    json_decref(j);
    struct sk_err err;
    assert_int_equal(sk_http_call_api_error(c, &err), SK_OK);

    static const char *const hdrs[] = {"X-Custom: custom value", NULL};
    c = call_prep(&f, 1, "/echo");
    c->body = "{\"replicas\":3}";
    c->body_len = strlen(c->body);
    c->headers = hdrs;
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 1);
    assert_int_equal(c->status, 200);
    j = body_json(c);
    assert_string_equal(jstr(j, "method"), "POST");
    assert_string_equal(jstr(j, "body"), "{\"replicas\":3}");
    assert_string_equal(jstr(j, "ct"), "application/json");
    assert_string_equal(jstr(j, "x"), "custom value");
    json_decref(j);

    c = call_prep(&f, 2, "/echo");
    c->method = "PUT";
    c->body = "abc";
    c->body_len = 3;
    c->content_type = "text/plain";
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 2);
    j = body_json(c);
    assert_string_equal(jstr(j, "method"), "PUT");
    assert_string_equal(jstr(j, "ct"), "text/plain");
    assert_string_equal(jstr(j, "body"), "abc");
    json_decref(j);

    c = call_prep(&f, 3, "/echo");
    c->method = "DELETE";
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 3);
    j = body_json(c);
    assert_string_equal(jstr(j, "method"), "DELETE");
    json_decref(j);

    /* Reuse after reset. */
    sk_http_call_reset(c);
    assert_null(c->resp_body);
    assert_int_equal(c->status, 0);
    fx_stop(&f);
}

static void test_status_and_api_error(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f);
    struct sk_http_call *c = call_prep(&f, 0, "/error");
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 0);
    assert_int_equal(c->err.code, SK_OK); /* a response arrived */
    assert_int_equal(c->status, 409);
    struct sk_err err;
    assert_int_equal(sk_http_call_api_error(c, &err), SK_ECONFLICT);
    assert_int_equal(err.code, SK_ECONFLICT);
    assert_string_equal(err.msg, "service \"web\": version 3 is stale");

    c = call_prep(&f, 1, "/plain502");
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 1);
    assert_int_equal(c->status, 502);
    assert_string_equal(c->resp_body, "upstream");
    assert_int_equal(sk_http_call_api_error(c, &err), SK_EUNAVAIL);
    assert_contains(err.msg, "502 Bad Gateway");
    assert_contains(err.msg, f.base);
    fx_stop(&f);
}

static bool on_data(struct sk_http_call *call, const char *buf, size_t len)
{
    struct fx *f = call->data;
    f->chunks++;
    if (f->streamed_len + len < sizeof f->streamed) {
        memcpy(f->streamed + f->streamed_len, buf, len);
        f->streamed_len += len;
        f->streamed[f->streamed_len] = '\0';
    }
    return !f->stop_after_first;
}

struct has_text {
    struct fx *f;
    const char *text;
};

static bool cond_streamed(void *ctx)
{
    struct has_text *h = ctx;
    return strstr(h->f->streamed, h->text) != NULL;
}

static bool cond_held(void *ctx)
{
    return ((struct fx *)ctx)->held != NULL;
}

static void test_streaming_on_data(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f);
    struct sk_http_call *c = call_prep(&f, 0, "/stream");
    c->on_data = on_data;
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    assert_true(sk_test_run_until(&f.loop, cond_held, &f, DEADLINE_MS));
    struct sk_http_req *req = f.held;
    const char *lines[] = {"{\"event\":1}\n", "{\"event\":2}\n",
                           "{\"event\":3}\n"};
    for (int i = 0; i < 3; i++) {
        assert_true(sk_http_stream_write(req, lines[i], strlen(lines[i])));
        struct has_text h = {&f, lines[i]};
        assert_true(sk_test_run_until(&f.loop, cond_streamed, &h, DEADLINE_MS));
        assert_int_equal(f.done[0], 0);
    }
    assert_true(f.chunks >= 3);
    f.held = NULL;
    sk_http_stream_end(req);
    wait_done(&f, 0);
    assert_int_equal(c->err.code, SK_OK);
    assert_int_equal(c->status, 200);
    assert_null(c->resp_body);
    assert_string_equal(f.streamed,
                        "{\"event\":1}\n{\"event\":2}\n{\"event\":3}\n");

    /* An error status is buffered, not streamed, so it can be decoded. */
    f.streamed[0] = '\0';
    f.streamed_len = 0;
    c = call_prep(&f, 1, "/error");
    c->on_data = on_data;
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 1);
    assert_int_equal(c->status, 409);
    assert_int_equal(f.streamed_len, 0);
    struct sk_err err;
    assert_int_equal(sk_http_call_api_error(c, &err), SK_ECONFLICT);
    fx_stop(&f);
}

static bool cond_aborted(void *ctx)
{
    return ((struct fx *)ctx)->aborts > 0;
}

static void test_on_data_false_stops(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f);
    f.stop_after_first = true;
    struct sk_http_call *c = call_prep(&f, 0, "/stream");
    c->on_data = on_data;
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    assert_true(sk_test_run_until(&f.loop, cond_held, &f, DEADLINE_MS));
    assert_true(sk_http_stream_write(f.held, "first\n", 6));
    wait_done(&f, 0);
    assert_int_equal(c->err.code, SK_ECANCELED);
    assert_contains(c->err.msg, f.base);
    assert_int_equal(c->status, 0);
    assert_int_equal(f.chunks, 1);
    /* The server notices the client went away. */
    assert_true(sk_test_run_until(&f.loop, cond_aborted, &f, DEADLINE_MS));
    sk_test_run_for(&f.loop, 20);
    assert_int_equal(f.done[0], 1);
    fx_stop(&f);
}

static void test_cancel(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f);
    struct sk_http_call *c = call_prep(&f, 0, "/slow");
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    assert_true(sk_test_run_until(&f.loop, cond_held, &f, DEADLINE_MS));
    f.in_cancel = true;
    sk_http_call_cancel(c);
    sk_http_call_cancel(c); /* twice is fine */
    f.in_cancel = false;
    assert_int_equal(f.done[0], 0);
    wait_done(&f, 0);
    assert_int_equal(c->err.code, SK_ECANCELED);
    assert_contains(c->err.msg, "canceled");
    assert_true(sk_test_run_until(&f.loop, cond_aborted, &f, DEADLINE_MS));
    sk_http_call_cancel(c); /* after the callback: no-op */
    sk_test_run_for(&f.loop, 20);
    assert_int_equal(f.done[0], 1);

    /* Cancelled before it got going. */
    c = call_prep(&f, 1, "/echo");
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    f.in_cancel = true;
    sk_http_call_cancel(c);
    f.in_cancel = false;
    wait_done(&f, 1);
    assert_int_equal(c->err.code, SK_ECANCELED);
    assert_int_equal(f.cb_inside_cancel, 0);
    fx_stop(&f);
}

static void test_timeout(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f);
    struct sk_http_call *c = call_prep(&f, 0, "/slow");
    c->timeout_ms = 200;
    uint64_t start = uv_now(&f.loop);
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 0);
    assert_true(uv_now(&f.loop) - start >= 150);
    assert_int_equal(c->err.code, SK_ETIMEDOUT);
    assert_int_equal(c->status, 0);
    assert_contains(c->err.msg, c->url);
    assert_contains(c->err.msg, "timed out");
    struct sk_err err;
    assert_int_equal(sk_http_call_api_error(c, &err), SK_ETIMEDOUT);
    fx_stop(&f);
}

static void lis_closed_only(struct sk_listener *l)
{
    *(bool *)l->data = true;
}

static void ignore_accept(struct sk_listener *l, struct sk_stream *s)
{
    (void)l;
    sk_stream_close(s, NULL);
}

static bool cond_flag(void *ctx)
{
    return *(bool *)ctx;
}

static void test_connection_refused(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f);
    /* A port that was just free. */
    struct sk_listener tmp;
    bool closed = false;
    struct sk_listener_config lc = {
        .host = "127.0.0.1", .accept_cb = ignore_accept, .data = &closed};
    struct sk_err err;
    assert_int_equal(sk_listener_start(&tmp, &f.loop, &lc, &err), 0);
    int port = sk_listener_port(&tmp);
    sk_listener_close(&tmp, lis_closed_only);
    assert_true(sk_test_run_until(&f.loop, cond_flag, &closed, DEADLINE_MS));

    struct sk_http_call *c = call_prep(&f, 0, "");
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/nodes", port);
    c->url = url;
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 0);
    assert_int_equal(c->err.code, SK_EUNAVAIL);
    assert_int_equal(c->status, 0);
    assert_null(c->resp_body);
    assert_contains(c->err.msg, url);
    assert_contains(c->err.msg, "onnect");
    fx_stop(&f);
}

static void test_bad_url(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f);
    struct sk_http_call *c = call_prep(&f, 0, "");
    c->url = "not a url";
    assert_int_equal(sk_http_call_start(&f.client, c), SK_EINVAL);
    assert_contains(c->err.msg, "not a url");
    c = call_prep(&f, 1, "");
    c->url = "ftp://127.0.0.1/x";
    assert_int_equal(sk_http_call_start(&f.client, c), SK_EINVAL);
    c = call_prep(&f, 2, "");
    c->url = NULL;
    assert_int_equal(sk_http_call_start(&f.client, c), SK_EINVAL);
    sk_test_run_for(&f.loop, 20);
    assert_int_equal(f.done[0] + f.done[1] + f.done[2], 0);
    fx_stop(&f);
}

static bool cond_all_done(void *ctx)
{
    struct fx *f = ctx;
    for (int i = 0; i < 50; i++)
        if (!f->done[i])
            return false;
    return true;
}

static void test_many_concurrent(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f);
    for (int i = 0; i < 50; i++) {
        char path[32];
        snprintf(path, sizeof path, "/echo?q=%d", i);
        struct sk_http_call *c = call_prep(&f, i, path);
        if (i % 2) {
            c->body = "{}";
            c->body_len = 2;
        }
        assert_int_equal(sk_http_call_start(&f.client, c), 0);
    }
    assert_true(sk_test_run_until(&f.loop, cond_all_done, &f, DEADLINE_MS));
    for (int i = 0; i < 50; i++) {
        assert_int_equal(f.done[i], 1);
        assert_int_equal(f.calls[i].err.code, SK_OK);
        assert_int_equal(f.calls[i].status, 200);
        json_t *j = body_json(&f.calls[i]);
        char want[8];
        snprintf(want, sizeof want, "%d", i);
        assert_string_equal(jstr(j, "q"), want);
        assert_string_equal(jstr(j, "method"), i % 2 ? "POST" : "GET");
        json_decref(j);
    }
    assert_int_equal(f.requests, 50);
    fx_stop(&f);
}

static bool cond_no_server_connections(void *ctx)
{
    return sk_http_server_connections(&((struct fx *)ctx)->srv) == 0;
}

static void chain_cb(struct sk_http_call *call)
{
    struct fx *f = call->data;
    int i = (int)(call - f->calls);
    f->done[i]++;
    if (i + 1 < 20) {
        struct sk_http_call *next = &f->calls[i + 1];
        assert_int_equal(sk_http_call_start(&f->client, next), 0);
    }
}

/* Connections closed under curl: by the server while idle in curl's cache
 * (curl then drops it and opens a new socket, usually with the same
 * number, while our poll handle for the old one may still be closing), and
 * one per call with "Connection: close", each next call started from the
 * previous one's callback. */
static void test_sockets_come_and_go(void **state)
{
    (void)state;
    struct fx f;
    fx_start_idle(&f, NULL, 100);
    for (int round = 0; round < 3; round++) {
        struct sk_http_call *c = call_prep(&f, round, "/echo");
        assert_int_equal(sk_http_call_start(&f.client, c), 0);
        wait_done(&f, round);
        assert_int_equal(c->err.code, SK_OK);
        assert_true(sk_test_run_until(&f.loop, cond_no_server_connections, &f,
                                      DEADLINE_MS));
    }
    fx_stop(&f);

    fx_start(&f);
    static const char *const close_hdr[] = {"Connection: close", NULL};
    for (int i = 0; i < 20; i++) {
        char path[32];
        snprintf(path, sizeof path, "/echo?q=%d", i);
        struct sk_http_call *c = call_prep(&f, i, path);
        c->headers = close_hdr;
        c->cb = chain_cb;
    }
    assert_int_equal(sk_http_call_start(&f.client, &f.calls[0]), 0);
    struct wait_done w = {&f, 19};
    assert_true(sk_test_run_until(&f.loop, cond_done, &w, DEADLINE_MS));
    for (int i = 0; i < 20; i++) {
        assert_int_equal(f.done[i], 1);
        assert_int_equal(f.calls[i].err.code, SK_OK);
        assert_int_equal(f.calls[i].status, 200);
    }
    fx_stop(&f);
}

static void test_max_response_bytes(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f);
    struct sk_http_call *c = call_prep(&f, 0, "/big?n=5000");
    c->max_response_bytes = 1000;
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 0);
    assert_int_equal(c->err.code, SK_ETOOBIG);
    assert_contains(c->err.msg, "exceeds 1000 bytes");
    assert_contains(c->err.msg, c->url);

    /* Without a Content-Length, counted as it arrives. */
    c = call_prep(&f, 1, "/bigchunked?n=5000");
    c->max_response_bytes = 1000;
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 1);
    assert_int_equal(c->err.code, SK_ETOOBIG);
    assert_contains(c->err.msg, "exceeds 1000 bytes");

    c = call_prep(&f, 2, "/bigchunked?n=1000");
    c->max_response_bytes = 1000;
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 2);
    assert_int_equal(c->err.code, SK_OK);
    assert_int_equal(c->resp_len, 1000);
    fx_stop(&f);
}

static void test_client_close_cancels(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f);
    struct sk_http_call *c = call_prep(&f, 0, "/slow");
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    assert_true(sk_test_run_until(&f.loop, cond_held, &f, DEADLINE_MS));
    client_fx = &f;
    sk_http_client_close(&f.client, client_closed_cb);
    assert_int_equal(f.done[0], 0);
    struct sk_http_call *late = call_prep(&f, 1, "/echo");
    assert_int_equal(sk_http_call_start(&f.client, late), SK_ECANCELED);
    wait_done(&f, 0);
    assert_int_equal(c->err.code, SK_ECANCELED);
    assert_true(
        sk_test_run_until(&f.loop, cond_flag, &f.client_closed, DEADLINE_MS));
    assert_int_equal(f.done[1], 0);
    fx_stop(&f);
}

/* ---- A server on a unix socket (the way dockerd is reached) ---- */

struct unix_srv {
    struct fx *f;
    uv_pipe_t pipe;
    bool closed;
    char path[108];
};

static void unix_connection_cb(uv_stream_t *server, int status)
{
    struct unix_srv *u = server->data;
    assert_int_equal(status, 0);
    uv_pipe_t *p = sk_malloc(sizeof *p);
    uv_pipe_init(server->loop, p, 0);
    assert_int_equal(uv_accept(server, (uv_stream_t *)p), 0);
    struct sk_stream *s = sk_plain_stream_new(server->loop, (uv_stream_t *)p);
    assert_string_equal(s->peer.addr, "unix");
    sk_http_server_adopt(&u->f->srv, s);
}

static void unix_closed_cb(uv_handle_t *h)
{
    ((struct unix_srv *)h->data)->closed = true;
}

static void test_unix_socket(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f);
    struct unix_srv u = {.f = &f};
    snprintf(u.path, sizeof u.path, "/tmp/skiff-http-test-%d.sock",
             (int)getpid());
    unlink(u.path);
    uv_pipe_init(&f.loop, &u.pipe, 0);
    u.pipe.data = &u;
    assert_int_equal(uv_pipe_bind(&u.pipe, u.path), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&u.pipe, 16, unix_connection_cb),
                     0);

    struct sk_http_call *c = call_prep(&f, 0, "");
    c->url = "http://localhost/v1.43/containers/json?q=unix";
    c->unix_socket = u.path;
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 0);
    if (c->err.code != SK_OK)
        fail_msg("unix call: %s", c->err.msg);
    assert_int_equal(c->status, 200);
    json_t *j = body_json(c);
    assert_string_equal(jstr(j, "path"), "/v1.43/containers/json");
    assert_string_equal(jstr(j, "q"), "unix");
    json_decref(j);

    uv_close((uv_handle_t *)&u.pipe, unix_closed_cb);
    assert_true(sk_test_run_until(&f.loop, cond_flag, &u.closed, DEADLINE_MS));
    unlink(u.path);

    /* Nobody listening there (the first connection, kept alive, would
     * still answer on the old path). */
    char none[128];
    snprintf(none, sizeof none, "%s.none", u.path);
    c = call_prep(&f, 1, "");
    c->url = "http://localhost/_ping";
    c->unix_socket = none;
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 1);
    assert_int_equal(c->err.code, SK_EUNAVAIL);
    fx_stop(&f);
}

/* ---- Synchronous calls, served from another thread ---- */

struct threaded {
    struct fx f;
    uv_async_t stop;
    pthread_t thread;
};

static void stop_cb(uv_async_t *a)
{
    struct threaded *t = a->data;
    sk_http_server_close(&t->f.srv, NULL);
    sk_listener_close(&t->f.lis, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static void *serve(void *arg)
{
    struct threaded *t = arg;
    uv_run(&t->f.loop, UV_RUN_DEFAULT);
    return NULL;
}

static void threaded_start(struct threaded *t, struct sk_tls_ctx *tls)
{
    memset(t, 0, sizeof *t);
    assert_int_equal(uv_loop_init(&t->f.loop), 0);
    t->f.tls = tls;
    start_server(&t->f, &t->f.loop, tls);
    uv_async_init(&t->f.loop, &t->stop, stop_cb);
    t->stop.data = t;
    assert_int_equal(pthread_create(&t->thread, NULL, serve, t), 0);
}

static void threaded_stop(struct threaded *t)
{
    uv_async_send(&t->stop);
    pthread_join(t->thread, NULL);
    sk_tls_ctx_unref(t->f.tls);
    sk_test_loop_close(&t->f.loop);
}

static void test_sync(void **state)
{
    (void)state;
    struct threaded t;
    threaded_start(&t, NULL);

    struct sk_http_call c = {0};
    char url[96];
    snprintf(url, sizeof url, "%s/echo?q=sync", t.f.base);
    c.url = url;
    c.body = "{\"x\":1}";
    c.body_len = strlen(c.body);
    assert_int_equal(sk_http_call_sync(&c), SK_OK);
    assert_int_equal(c.status, 200);
    assert_null(c.impl);
    json_t *j = json_loadb(c.resp_body, c.resp_len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(jstr(j, "q"), "sync");
    assert_string_equal(jstr(j, "body"), "{\"x\":1}");
    json_decref(j);
    sk_http_call_reset(&c);

    struct sk_http_call e = {0};
    snprintf(url, sizeof url, "%s/error", t.f.base);
    e.url = url;
    assert_int_equal(sk_http_call_sync(&e), SK_OK);
    struct sk_err err;
    assert_int_equal(sk_http_call_api_error(&e, &err), SK_ECONFLICT);
    sk_http_call_reset(&e);

    struct sk_http_call b = {0};
    b.url = "::bad";
    assert_int_equal(sk_http_call_sync(&b), SK_EINVAL);

    threaded_stop(&t);

    /* Refused, once the server is gone. */
    struct sk_http_call r = {0};
    snprintf(url, sizeof url, "%s/echo", t.f.base);
    r.url = url;
    r.connect_timeout_ms = 2000;
    assert_int_equal(sk_http_call_sync(&r), SK_EUNAVAIL);
    assert_contains(r.err.msg, url);
}

/* ---- HTTPS ---- */

struct pki {
    struct sk_test_ca ca, other;
    char *server_cert, *server_key;
    char *worker_cert, *worker_key;
    char *client_cert, *client_key;
};

static void pki_new(struct pki *p)
{
    sk_test_ca_new(&p->ca, "cluster-a");
    sk_test_ca_new(&p->other, "cluster-b");
    int64_t day = 24LL * 3600 * 1000;
    sk_test_cert_new(&p->ca, "m1", "manager", day, &p->server_cert,
                     &p->server_key);
    sk_test_cert_new(&p->ca, "w1", "worker", day, &p->worker_cert,
                     &p->worker_key);
    sk_test_cert_new(&p->ca, "cli", "admin", day, &p->client_cert,
                     &p->client_key);
}

static void pki_free(struct pki *p)
{
    sk_test_ca_free(&p->ca);
    sk_test_ca_free(&p->other);
    free(p->server_cert);
    free(p->server_key);
    free(p->worker_cert);
    free(p->worker_key);
    free(p->client_cert);
    free(p->client_key);
}

static struct sk_tls_ctx *server_tls(const struct pki *p, const char *cert,
                                     const char *key)
{
    struct sk_tls_config cfg = {.ca_pem = p->ca.cert_pem,
                                .cert_pem = cert,
                                .key_pem = key,
                                .server = true,
                                .require_peer_cert = false};
    struct sk_err err;
    struct sk_tls_ctx *ctx = sk_tls_ctx_new(&cfg, &err);
    if (!ctx)
        fail_msg("tls ctx: %s", err.msg);
    return ctx;
}

static void test_https(void **state)
{
    (void)state;
    struct pki p;
    pki_new(&p);
    struct fx f;
    fx_start_tls(&f, server_tls(&p, p.server_cert, p.server_key));

    struct sk_tls_creds creds = {.ca_pem = p.ca.cert_pem,
                                 .cert_pem = p.client_cert,
                                 .key_pem = p.client_key,
                                 .expect_role = "manager"};
    struct sk_http_call *c = call_prep(&f, 0, "/echo");
    c->tls = &creds;
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 0);
    if (c->err.code != SK_OK)
        fail_msg("https call: %s", c->err.msg);
    assert_int_equal(c->status, 200);
    json_t *j = body_json(c);
    assert_true(json_is_true(json_object_get(j, "auth")));
    assert_string_equal(jstr(j, "role"), "admin");
    json_decref(j);

    /* Without a client certificate the server still answers (joiners). */
    struct sk_tls_creds anon = {.ca_pem = p.ca.cert_pem};
    c = call_prep(&f, 1, "/echo");
    c->tls = &anon;
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 1);
    assert_int_equal(c->err.code, SK_OK);
    j = body_json(c);
    assert_true(json_is_false(json_object_get(j, "auth")));
    json_decref(j);

    /* The wrong CA: the server is not trusted. */
    struct sk_tls_creds wrong = {.ca_pem = p.other.cert_pem};
    c = call_prep(&f, 2, "/echo");
    c->tls = &wrong;
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 2);
    assert_int_equal(c->err.code, SK_EAUTH);
    assert_contains(c->err.msg, c->url);
    assert_contains(c->err.msg, "certificate");

    /* A joiner fetching the CA does not verify at all. */
    c = call_prep(&f, 3, "/echo");
    c->insecure_fetch_ca = true;
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 3);
    assert_int_equal(c->err.code, SK_OK);
    assert_int_equal(c->status, 200);

    /* Plain HTTP to the TLS port fails cleanly. */
    c = call_prep(&f, 4, "");
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", f.port);
    c->url = url;
    c->timeout_ms = 3000;
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 4);
    assert_int_not_equal(c->err.code, SK_OK);
    assert_contains(c->err.msg, url);
    fx_stop(&f);
    pki_free(&p);
}

static void test_https_wrong_role(void **state)
{
    (void)state;
    struct pki p;
    pki_new(&p);
    struct fx f;
    fx_start_tls(&f, server_tls(&p, p.worker_cert, p.worker_key));
    struct sk_tls_creds creds = {.ca_pem = p.ca.cert_pem,
                                 .cert_pem = p.client_cert,
                                 .key_pem = p.client_key,
                                 .expect_role = "manager"};
    struct sk_http_call *c = call_prep(&f, 0, "/echo");
    c->tls = &creds;
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 0);
    assert_int_equal(c->err.code, SK_EAUTH);
    assert_contains(c->err.msg, c->url);
    assert_contains(c->err.msg, "server role is worker, want manager");
    assert_int_equal(f.requests, 0);

    /* The same server is fine for a caller that wants a worker. */
    creds.expect_role = "worker";
    c = call_prep(&f, 1, "/echo");
    c->tls = &creds;
    assert_int_equal(sk_http_call_start(&f.client, c), 0);
    wait_done(&f, 1);
    if (c->err.code != SK_OK)
        fail_msg("https call: %s", c->err.msg);
    fx_stop(&f);
    pki_free(&p);
}

static void test_sync_https(void **state)
{
    (void)state;
    struct pki p;
    pki_new(&p);
    struct threaded t;
    threaded_start(&t, server_tls(&p, p.worker_cert, p.worker_key));
    struct sk_tls_creds creds = {.ca_pem = p.ca.cert_pem,
                                 .cert_pem = p.client_cert,
                                 .key_pem = p.client_key,
                                 .expect_role = "manager"};
    char url[96];
    snprintf(url, sizeof url, "%s/echo", t.f.base);
    struct sk_http_call c = {0};
    c.url = url;
    c.tls = &creds;
    assert_int_equal(sk_http_call_sync(&c), SK_EAUTH);
    assert_contains(c.err.msg, url);
    assert_contains(c.err.msg, "server role is worker, want manager");

    creds.expect_role = "worker";
    struct sk_http_call ok = {0};
    ok.url = url;
    ok.tls = &creds;
    if (sk_http_call_sync(&ok) != SK_OK)
        fail_msg("sync https: %s", ok.err.msg);
    assert_int_equal(ok.status, 200);
    sk_http_call_reset(&ok);

    struct sk_tls_creds wrong = {.ca_pem = p.other.cert_pem};
    struct sk_http_call w = {0};
    w.url = url;
    w.tls = &wrong;
    assert_int_equal(sk_http_call_sync(&w), SK_EAUTH);
    threaded_stop(&t);
    pki_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_post_json),
        cmocka_unit_test(test_status_and_api_error),
        cmocka_unit_test(test_streaming_on_data),
        cmocka_unit_test(test_on_data_false_stops),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_bad_url),
        cmocka_unit_test(test_many_concurrent),
        cmocka_unit_test(test_sockets_come_and_go),
        cmocka_unit_test(test_max_response_bytes),
        cmocka_unit_test(test_client_close_cancels),
        cmocka_unit_test(test_unix_socket),
        cmocka_unit_test(test_sync),
        cmocka_unit_test(test_https),
        cmocka_unit_test(test_https_wrong_role),
        cmocka_unit_test(test_sync_https),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
