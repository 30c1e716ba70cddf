/* The HTTP server over real plain TCP streams on 127.0.0.1, driven by raw
 * TCP clients that send hand-written bytes, so that splits, pipelining and
 * malformed input are exactly what the test says. Responses are parsed on
 * the client side with http-parser in response mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <http_parser.h>
#include <jansson.h>

#include "skiff/http.h"
#include "skiff/stream.h"
#include "support.h"

#define MAX_CLIENTS 8
#define MAX_RESPONSES 16
#define DEADLINE_MS 5000

/* ---- Raw client ---- */

struct resp {
    int status;
    char headers[4096]; /* "name: value\n", names lower-cased */
    char *body;
    size_t len;
    bool complete;
};

struct rawc {
    uv_tcp_t tcp;
    uv_connect_t creq;
    bool used;
    bool connected;
    int connect_status;
    bool eof;
    bool closed;
    bool expect_head;
    http_parser parser;
    bool in_value;
    struct resp resp[MAX_RESPONSES];
    int n_resp;     /* responses begun */
    int n_complete; /* responses complete */
    bool parse_error;
};

struct fx {
    uv_loop_t loop;
    struct sk_listener lis;
    struct sk_http_server srv;
    int port;
    bool srv_closed;
    bool lis_closed;
    struct rawc clients[MAX_CLIENTS];

    /* handler side */
    int n_requests;
    struct sk_http_req *held; /* an unfinished request */
    int aborts;
    bool respond_in_abort;
    uv_timer_t timer;
    bool timer_used;
    bool timer_closed;

    /* Streams pass for authenticated (a plain stream has no certificate;
     * this is how the tests reach the budget of those that have one). */
    bool authenticated;
    int rejects;
    struct sk_err reject;
};

static struct resp *cur_resp(struct rawc *c)
{
    return &c->resp[c->n_resp - 1];
}

static int r_begin(http_parser *p)
{
    struct rawc *c = p->data;
    if (c->n_resp == MAX_RESPONSES)
        return -1;
    c->n_resp++;
    memset(cur_resp(c), 0, sizeof(struct resp));
    c->in_value = false;
    return 0;
}

static void hdr_append(struct resp *r, const char *at, size_t len, bool lower)
{
    size_t n = strlen(r->headers);
    for (size_t i = 0; i < len && n + 1 < sizeof r->headers; i++) {
        char ch = at[i];
        if (lower && ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        r->headers[n++] = ch;
    }
    r->headers[n] = '\0';
}

static int r_field(http_parser *p, const char *at, size_t len)
{
    struct rawc *c = p->data;
    if (c->in_value)
        hdr_append(cur_resp(c), "\n", 1, false);
    c->in_value = false;
    hdr_append(cur_resp(c), at, len, true);
    return 0;
}

static int r_value(http_parser *p, const char *at, size_t len)
{
    struct rawc *c = p->data;
    if (!c->in_value)
        hdr_append(cur_resp(c), ": ", 2, false);
    c->in_value = true;
    hdr_append(cur_resp(c), at, len, false);
    return 0;
}

static int r_headers_complete(http_parser *p)
{
    struct rawc *c = p->data;
    if (c->in_value)
        hdr_append(cur_resp(c), "\n", 1, false);
    c->in_value = false;
    cur_resp(c)->status = p->status_code;
    cur_resp(c)->body = calloc(1, 1);
    return c->expect_head && p->status_code >= 200 ? 1 : 0;
}

static int r_body(http_parser *p, const char *at, size_t len)
{
    struct resp *r = cur_resp(p->data);
    r->body = realloc(r->body, r->len + len + 1);
    memcpy(r->body + r->len, at, len);
    r->len += len;
    r->body[r->len] = '\0';
    return 0;
}

static int r_complete(http_parser *p)
{
    struct rawc *c = p->data;
    cur_resp(c)->complete = true;
    c->n_complete++;
    return 0;
}

static const http_parser_settings resp_settings = {
    .on_message_begin = r_begin,
    .on_header_field = r_field,
    .on_header_value = r_value,
    .on_headers_complete = r_headers_complete,
    .on_body = r_body,
    .on_message_complete = r_complete,
};

static void rawc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    static char storage[64 * 1024];
    (void)hint;
    *buf = uv_buf_init(storage, sizeof storage);
}

static void rawc_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct rawc *c = s->data;
    if (nread < 0) {
        c->eof = true;
        uv_read_stop(s);
        /* Lets a response that ends with the connection complete. */
        http_parser_execute(&c->parser, &resp_settings, NULL, 0);
        return;
    }
    if (nread == 0 || c->parse_error)
        return;
    size_t n = http_parser_execute(&c->parser, &resp_settings, buf->base,
                                   (size_t)nread);
    if (n != (size_t)nread || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)
        c->parse_error = true;
}

static void rawc_connected(uv_connect_t *req, int status)
{
    struct rawc *c = req->data;
    c->connected = true;
    c->connect_status = status;
    if (status == 0)
        uv_read_start((uv_stream_t *)&c->tcp, rawc_alloc, rawc_read);
}

static bool cond_connected(void *ctx)
{
    return ((struct rawc *)ctx)->connected;
}

static struct rawc *rawc_new(struct fx *f)
{
    struct rawc *c = NULL;
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (!f->clients[i].used) {
            c = &f->clients[i];
            break;
        }
    assert_non_null(c);
    memset(c, 0, sizeof *c);
    c->used = true;
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    uv_tcp_init(&f->loop, &c->tcp);
    c->tcp.data = c;
    c->creq.data = c;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", f->port, &sa);
    assert_int_equal(uv_tcp_connect(&c->creq, &c->tcp,
                                    (const struct sockaddr *)&sa,
                                    rawc_connected),
                     0);
    assert_true(sk_test_run_until(&f->loop, cond_connected, c, DEADLINE_MS));
    assert_int_equal(c->connect_status, 0);
    return c;
}

struct wreq {
    uv_write_t req;
    char data[];
};

static void rawc_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void rawc_send_n(struct rawc *c, const char *data, size_t len)
{
    struct wreq *w = malloc(sizeof *w + len);
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    assert_int_equal(
        uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, rawc_written), 0);
}

static void rawc_send(struct rawc *c, const char *s)
{
    rawc_send_n(c, s, strlen(s));
}

static void rawc_closed(uv_handle_t *h)
{
    ((struct rawc *)h->data)->closed = true;
}

static void rawc_close(struct rawc *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, rawc_closed);
}

struct wait_n {
    struct rawc *c;
    int n;
};

static bool cond_n_complete(void *ctx)
{
    struct wait_n *w = ctx;
    return w->c->n_complete >= w->n || w->c->parse_error;
}

/* Waits for the nth response (1-based) on c and returns it. */
static struct resp *rawc_wait(struct fx *f, struct rawc *c, int n)
{
    struct wait_n w = {c, n};
    assert_true(sk_test_run_until(&f->loop, cond_n_complete, &w, DEADLINE_MS));
    assert_false(c->parse_error);
    return &c->resp[n - 1];
}

static bool cond_eof(void *ctx)
{
    return ((struct rawc *)ctx)->eof;
}

static void rawc_wait_eof(struct fx *f, struct rawc *c)
{
    assert_true(sk_test_run_until(&f->loop, cond_eof, c, DEADLINE_MS));
}

/* Value of a response header, in a static buffer, or NULL. */
static const char *resp_header(const struct resp *r, const char *name)
{
    static char out[512];
    size_t n = strlen(name);
    for (const char *p = r->headers; *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > n + 1 && strncmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            size_t vlen = len - (size_t)(v - p);
            snprintf(out, sizeof out, "%.*s", (int)vlen, v);
            return out;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return NULL;
}

static json_t *resp_json(const struct resp *r)
{
    json_error_t je;
    json_t *j = json_loadb(r->body, r->len, JSON_ALLOW_NUL, &je);
    if (!j)
        fail_msg("response is not JSON (%s): %.*s", je.text, (int)r->len,
                 r->body);
    return j;
}

static void assert_error_body(const struct resp *r, const char *code,
                              const char *msg_part)
{
    json_t *j = resp_json(r);
    json_t *e = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    const char *msg = json_string_value(json_object_get(e, "message"));
    assert_non_null(msg);
    if (!strstr(msg, msg_part))
        fail_msg("error message \"%s\" lacks \"%s\"", msg, msg_part);
    json_decref(j);
}

/* ---- Server side ---- */

static void fx_abort_cb(struct sk_http_req *req)
{
    struct fx *f = req->server->data;
    f->aborts++;
    if (f->respond_in_abort && f->held == req) {
        f->held = NULL;
        sk_http_respond(req, 200, "text/plain", "late", 4);
    }
}

static void handler(struct sk_http_req *req)
{
    struct fx *f = req->server->data;
    f->n_requests++;
    assert_non_null(req->peer);
    assert_non_null(req->body);
    assert_int_equal(req->body[req->body_len], '\0');

    if (strcmp(req->path, "/async") == 0 || strcmp(req->path, "/hold") == 0) {
        assert_null(f->held);
        f->held = req;
        req->abort_cb = fx_abort_cb;
        return;
    }
    if (strcmp(req->path, "/stream") == 0) {
        assert_null(f->held);
        f->held = req;
        req->abort_cb = fx_abort_cb;
        sk_http_add_header(req, "X-Stream", "yes");
        sk_http_stream_begin(req, 200, "application/x-ndjson");
        return;
    }
    if (strcmp(req->path, "/error") == 0) {
        struct sk_err err;
        sk_err_set(&err, SK_ENOTFOUND, "service \"web\" not found");
        sk_http_respond_error(req, &err);
        return;
    }
    if (strcmp(req->path, "/empty") == 0) {
        sk_http_respond(req, 204, NULL, NULL, 0);
        return;
    }
    /* Everything else echoes the request as JSON. */
    json_t *hdrs = json_object();
    for (size_t i = 0; i < req->n_headers; i++)
        json_object_set_new(hdrs, req->headers[i].name,
                            json_string(req->headers[i].value));
    char q[64];
    json_t *qv =
        sk_http_query(req, "q", q, sizeof q) ? json_string(q) : json_null();
    const char *xt = sk_http_header(req, "X-TEST-header");
    json_t *j = json_pack("{s:s,s:s,s:s,s:s%,s:o,s:o,s:s?,s:i}", "method",
                          req->method, "path", req->path, "query", req->query,
                          "body", req->body, req->body_len, "headers", hdrs,
                          "q", qv, "xtest", xt, "n", f->n_requests);
    assert_non_null(j);
    sk_http_add_header(req, "X-Echo", "1");
    sk_http_respond_json(req, 200, j);
}

static void accept_cb(struct sk_listener *l, struct sk_stream *s)
{
    struct fx *f = l->data;
    if (f->authenticated) {
        s->peer.authenticated = true;
        snprintf(s->peer.role, sizeof s->peer.role, "admin");
    }
    sk_http_server_adopt(&f->srv, s);
}

static void srv_reject_cb(struct sk_http_server *srv, const struct sk_err *err)
{
    struct fx *f = srv->data;
    f->rejects++;
    sk_err_copy(&f->reject, err);
}

static void fx_start(struct fx *f, const struct sk_http_server_config *base)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    struct sk_http_server_config cfg = {0};
    if (base)
        cfg = *base;
    cfg.handler = handler;
    cfg.data = f;
    cfg.reject_cb = srv_reject_cb;
    assert_int_equal(sk_http_server_init(&f->srv, &f->loop, &cfg), 0);
    struct sk_listener_config lc = {
        .host = "127.0.0.1", .port = 0, .accept_cb = accept_cb, .data = f};
    struct sk_err err;
    assert_int_equal(sk_listener_start(&f->lis, &f->loop, &lc, &err), 0);
    f->port = sk_listener_port(&f->lis);
    assert_true(f->port > 0);
}

static void srv_closed_cb(struct sk_http_server *srv)
{
    struct fx *f = srv->data;
    f->srv_closed = true;
}

static void lis_closed_cb(struct sk_listener *l)
{
    struct fx *f = l->data;
    f->lis_closed = true;
}

static bool cond_all_closed(void *ctx)
{
    struct fx *f = ctx;
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (f->clients[i].used && !f->clients[i].closed)
            return false;
    return f->srv_closed && f->lis_closed &&
           (!f->timer_used || f->timer_closed);
}

static void timer_closed_cb(uv_handle_t *h)
{
    struct fx *f = h->data;
    f->timer_closed = true;
}

static void fx_stop(struct fx *f)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (f->clients[i].used)
            rawc_close(&f->clients[i]);
    if (f->held) {
        struct sk_http_req *r = f->held;
        f->held = NULL;
        sk_http_respond(r, 200, NULL, NULL, 0);
    }
    sk_http_server_close(&f->srv, srv_closed_cb);
    sk_listener_close(&f->lis, lis_closed_cb);
    if (f->timer_used && !uv_is_closing((uv_handle_t *)&f->timer))
        uv_close((uv_handle_t *)&f->timer, timer_closed_cb);
    assert_true(sk_test_run_until(&f->loop, cond_all_closed, f, DEADLINE_MS));
    for (int i = 0; i < MAX_CLIENTS; i++)
        for (int k = 0; k < f->clients[i].n_resp; k++)
            free(f->clients[i].resp[k].body);
    sk_test_loop_close(&f->loop);
}

static bool cond_held(void *ctx)
{
    return ((struct fx *)ctx)->held != NULL;
}

static bool cond_aborted(void *ctx)
{
    return ((struct fx *)ctx)->aborts > 0;
}

static bool cond_srv_closed(void *ctx)
{
    return ((struct fx *)ctx)->srv_closed;
}

static bool cond_aborted_twice(void *ctx)
{
    return ((struct fx *)ctx)->aborts >= 2;
}

static bool cond_no_connections(void *ctx)
{
    struct fx *f = ctx;
    return sk_http_server_connections(&f->srv) == 0;
}

/* ---- Tests ---- */

static void test_get_and_post(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct rawc *c = rawc_new(&f);

    rawc_send(c, "GET /echo?q=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    struct resp *r = rawc_wait(&f, c, 1);
    assert_int_equal(r->status, 200);
    assert_string_equal(resp_header(r, "content-type"), "application/json");
    assert_string_equal(resp_header(r, "server"), "skiff");
    assert_string_equal(resp_header(r, "x-echo"), "1");
    assert_non_null(resp_header(r, "content-length"));
    json_t *j = resp_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/echo");
    assert_string_equal(json_string_value(json_object_get(j, "query")), "q=1");
    assert_string_equal(json_string_value(json_object_get(j, "q")), "1");
    assert_string_equal(json_string_value(json_object_get(j, "body")), "");
    json_decref(j);

    rawc_send(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: "
                 "application/json\r\nContent-Length: 13\r\n\r\n"
                 "{\"a\":\"hello\"}");
    r = rawc_wait(&f, c, 2);
    assert_int_equal(r->status, 200);
    j = resp_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "method")),
                        "POST");
    assert_string_equal(json_string_value(json_object_get(j, "body")),
                        "{\"a\":\"hello\"}");
    json_decref(j);

    /* A body with a NUL in it arrives whole. */
    static const char put[] =
        "PUT /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\na\0b";
    rawc_send_n(c, put, sizeof put - 1);
    r = rawc_wait(&f, c, 3);
    j = resp_json(r);
    const char *b = json_string_value(json_object_get(j, "body"));
    assert_int_equal(json_string_length(json_object_get(j, "body")), 3);
    assert_memory_equal(b, "a\0b", 3);
    json_decref(j);

    rawc_send(c, "GET /error HTTP/1.1\r\n\r\n");
    r = rawc_wait(&f, c, 4);
    assert_int_equal(r->status, 404);
    assert_error_body(r, "not_found", "service \"web\" not found");

    rawc_send(c, "DELETE /empty HTTP/1.1\r\n\r\n");
    r = rawc_wait(&f, c, 5);
    assert_int_equal(r->status, 204);
    assert_int_equal(r->len, 0);

    c->expect_head = true;
    rawc_send(c, "HEAD /echo HTTP/1.1\r\n\r\n");
    r = rawc_wait(&f, c, 6);
    assert_int_equal(r->status, 200);
    assert_int_equal(r->len, 0);
    assert_non_null(resp_header(r, "content-length"));
    assert_false(c->eof);
    fx_stop(&f);
}

static void test_keep_alive_sequential(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct rawc *c = rawc_new(&f);
    for (int i = 1; i <= 5; i++) {
        char req[128];
        snprintf(req, sizeof req, "GET /echo?q=%d HTTP/1.1\r\nHost: x\r\n\r\n",
                 i);
        rawc_send(c, req);
        struct resp *r = rawc_wait(&f, c, i);
        assert_int_equal(r->status, 200);
        assert_null(resp_header(r, "connection"));
        json_t *j = resp_json(r);
        char want[8];
        snprintf(want, sizeof want, "%d", i);
        assert_string_equal(json_string_value(json_object_get(j, "q")), want);
        json_decref(j);
        assert_int_equal(sk_http_server_connections(&f.srv), 1);
    }
    assert_false(c->eof);
    assert_int_equal(f.n_requests, 5);
    fx_stop(&f);
}

static void respond_held_cb(uv_timer_t *t)
{
    struct fx *f = t->data;
    struct sk_http_req *req = f->held;
    f->held = NULL;
    sk_http_respond(req, 202, "text/plain", "later", 5);
}

static void fx_timer(struct fx *f, uv_timer_cb cb, uint64_t ms)
{
    if (!f->timer_used) {
        uv_timer_init(&f->loop, &f->timer);
        f->timer.data = f;
        f->timer_used = true;
    }
    uv_timer_start(&f->timer, cb, ms, 0);
}

static void test_pipelined_in_order(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct rawc *c = rawc_new(&f);
    /* The first request is answered later; the two behind it must wait and
     * come back in order. */
    rawc_send(c, "GET /async HTTP/1.1\r\n\r\n"
                 "GET /echo?q=a HTTP/1.1\r\n\r\n"
                 "POST /echo?q=b HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi");
    assert_true(sk_test_run_until(&f.loop, cond_held, &f, DEADLINE_MS));
    sk_test_run_for(&f.loop, 50);
    assert_int_equal(f.n_requests, 1); /* one at a time */
    assert_int_equal(c->n_resp, 0);
    fx_timer(&f, respond_held_cb, 10);
    struct resp *r = rawc_wait(&f, c, 3);
    assert_int_equal(c->resp[0].status, 202);
    assert_memory_equal(c->resp[0].body, "later", 5);
    json_t *j = resp_json(&c->resp[1]);
    assert_string_equal(json_string_value(json_object_get(j, "q")), "a");
    json_decref(j);
    j = resp_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "q")), "b");
    assert_string_equal(json_string_value(json_object_get(j, "body")), "hi");
    json_decref(j);
    assert_int_equal(f.n_requests, 3);
    fx_stop(&f);
}

static void test_pipelined_backpressure(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct rawc *c = rawc_new(&f);
    /* While the first request is with the handler, 200 KB of the next one
     * arrive: the server buffers a bounded amount, stops reading, and
     * resumes once the first is answered. */
    rawc_send(c, "GET /async HTTP/1.1\r\n\r\n");
    assert_true(sk_test_run_until(&f.loop, cond_held, &f, DEADLINE_MS));
    size_t n = 200 * 1024;
    char head[96];
    int hl =
        snprintf(head, sizeof head,
                 "POST /echo?q=big HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", n);
    char *req = malloc((size_t)hl + n);
    memcpy(req, head, (size_t)hl);
    memset(req + hl, 'b', n);
    rawc_send_n(c, req, (size_t)hl + n);
    free(req);
    sk_test_run_for(&f.loop, 100);
    assert_int_equal(f.n_requests, 1);
    fx_timer(&f, respond_held_cb, 0);
    struct resp *r = rawc_wait(&f, c, 2);
    assert_int_equal(c->resp[0].status, 202);
    assert_int_equal(r->status, 200);
    json_t *j = resp_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "q")), "big");
    assert_int_equal(json_string_length(json_object_get(j, "body")), n);
    json_decref(j);
    fx_stop(&f);
}

/* Sends s in pieces of `step` bytes, letting the loop run between them so
 * that the server sees separate reads. */
static void send_in_pieces(struct fx *f, struct rawc *c, const char *s,
                           size_t step)
{
    size_t len = strlen(s);
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        rawc_send_n(c, s + off, n);
        sk_test_run_for(&f->loop, 1);
    }
}

static void test_chunked_request_and_split_reads(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct rawc *c = rawc_new(&f);
    rawc_send(c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\n"
                 "Trailer-X: y\r\n\r\n");
    struct resp *r = rawc_wait(&f, c, 1);
    json_t *j = resp_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "body")),
                        "hello world");
    assert_null(json_object_get(json_object_get(j, "headers"), "trailer-x"));
    json_decref(j);

    /* Header names and values split across reads, byte by byte. */
    send_in_pieces(&f, c,
                   "POST /echo?q=split HTTP/1.1\r\nX-Test-Header: some "
                   "value  \r\nX-Long-Name-Header: v2\r\nContent-Length: "
                   "4\r\n\r\nbody",
                   1);
    r = rawc_wait(&f, c, 2);
    j = resp_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "xtest")),
                        "some value");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "headers"),
                                          "x-long-name-header")),
        "v2");
    assert_string_equal(json_string_value(json_object_get(j, "body")), "body");
    assert_string_equal(json_string_value(json_object_get(j, "q")), "split");
    json_decref(j);

    /* Chunked, in pieces of three bytes. */
    send_in_pieces(&f, c,
                   "PUT /echo HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"
                   "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                   3);
    r = rawc_wait(&f, c, 3);
    j = resp_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "body")), "abcde");
    json_decref(j);
    fx_stop(&f);
}

static void test_query_and_percent_decoding(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct rawc *c = rawc_new(&f);
    rawc_send(c, "GET /a%20b/c%2Fd?q=J%C3%B6rg+x&flag&empty=&q=second "
                 "HTTP/1.1\r\n\r\n");
    struct resp *r = rawc_wait(&f, c, 1);
    assert_int_equal(r->status, 200);
    json_t *j = resp_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "path")),
                        "/a b/c/d");
    assert_string_equal(json_string_value(json_object_get(j, "query")),
                        "q=J%C3%B6rg+x&flag&empty=&q=second");
    assert_string_equal(json_string_value(json_object_get(j, "q")),
                        "J\xc3\xb6rg x");
    json_decref(j);

    /* Absolute-form targets keep only the path. */
    rawc_send(c, "GET http://127.0.0.1:1/x%41y HTTP/1.1\r\n\r\n");
    r = rawc_wait(&f, c, 2);
    j = resp_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/xAy");
    assert_string_equal(json_string_value(json_object_get(j, "query")), "");
    assert_true(json_is_null(json_object_get(j, "q")));
    json_decref(j);
    fx_stop(&f);
}

/* sk_http_query directly, on a request the test builds itself. */
static void test_query_function(void **state)
{
    (void)state;
    struct sk_http_req req = {0};
    req.query = "a=1&flag&empty=&sp=x+y%21&nul=a%00b&bad=%zz&a=2&long=abcdef";
    char buf[8];
    assert_true(sk_http_query(&req, "a", buf, sizeof buf));
    assert_string_equal(buf, "1");
    assert_true(sk_http_query(&req, "flag", buf, sizeof buf));
    assert_string_equal(buf, "");
    assert_true(sk_http_query(&req, "empty", buf, sizeof buf));
    assert_string_equal(buf, "");
    assert_true(sk_http_query(&req, "sp", buf, sizeof buf));
    assert_string_equal(buf, "x y!");
    assert_false(sk_http_query(&req, "nul", buf, sizeof buf));
    assert_false(sk_http_query(&req, "bad", buf, sizeof buf));
    assert_false(sk_http_query(&req, "missing", buf, sizeof buf));
    assert_false(sk_http_query(&req, "long", buf, 6)); /* does not fit */
    assert_true(sk_http_query(&req, "long", buf, 7));
    assert_string_equal(buf, "abcdef");
    req.query = "";
    assert_false(sk_http_query(&req, "a", buf, sizeof buf));
    assert_string_equal(sk_http_status_text(404), "Not Found");
    assert_string_equal(sk_http_status_text(799), "Unknown");
}

static void test_bad_paths(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "GET /a%00b HTTP/1.1\r\n\r\n", /* decodes to a NUL */
        "GET /a%zzb HTTP/1.1\r\n\r\n", /* malformed escape */
        "GET /a%4 HTTP/1.1\r\n\r\n",   /* truncated escape */
        "OPTIONS * HTTP/1.1\r\n\r\n",  /* not absolute */
        "CONNECT 127.0.0.1:80 HTTP/1.1\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
    };
    static const int want[] = {400, 400, 400, 400, 405, 505};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fx f;
        fx_start(&f, NULL);
        struct rawc *c = rawc_new(&f);
        rawc_send(c, bad[i]);
        struct resp *r = rawc_wait(&f, c, 1);
        if (r->status != want[i])
            fail_msg("%s: status %d, want %d", bad[i], r->status, want[i]);
        assert_string_equal(resp_header(r, "connection"), "close");
        rawc_wait_eof(&f, c);
        assert_int_equal(f.n_requests, 0);
        fx_stop(&f);
    }
}

static void test_header_lookup_case_insensitive(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct rawc *c = rawc_new(&f);
    rawc_send(c, "GET /echo HTTP/1.1\r\nX-TeSt-HeAdEr: Mixed Case\r\n"
                 "x-empty:\r\nACCEPT: */*\r\nx-blank:   \r\n\r\n");
    struct resp *r = rawc_wait(&f, c, 1);
    json_t *j = resp_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "xtest")),
                        "Mixed Case");
    json_t *h = json_object_get(j, "headers");
    assert_string_equal(json_string_value(json_object_get(h, "x-test-header")),
                        "Mixed Case");
    assert_string_equal(json_string_value(json_object_get(h, "accept")), "*/*");
    assert_string_equal(json_string_value(json_object_get(h, "x-empty")), "");
    assert_string_equal(json_string_value(json_object_get(h, "x-blank")), "");
    assert_int_equal(json_object_size(h), 4);
    json_decref(j);
    fx_stop(&f);
}

static void test_oversized_headers(void **state)
{
    (void)state;
    struct sk_http_server_config cfg = {.max_header_bytes = 1024};
    struct fx f;
    fx_start(&f, &cfg);
    struct rawc *c = rawc_new(&f);
    char req[4096];
    char big[2001];
    memset(big, 'a', 2000);
    big[2000] = '\0';
    snprintf(req, sizeof req, "GET /echo HTTP/1.1\r\nX-Big: %s\r\n\r\n", big);
    rawc_send(c, req);
    struct resp *r = rawc_wait(&f, c, 1);
    assert_int_equal(r->status, 431);
    assert_error_body(r, "too_large", "request headers exceed 1024 bytes");
    rawc_wait_eof(&f, c);

    /* Many small headers count too, and so does a long URL. */
    struct rawc *c2 = rawc_new(&f);
    rawc_send(c2, "GET /echo HTTP/1.1\r\n");
    for (int i = 0; i < 200; i++)
        rawc_send(c2, "A: b\r\n");
    rawc_send(c2, "\r\n");
    r = rawc_wait(&f, c2, 1);
    assert_int_equal(r->status, 431);
    rawc_wait_eof(&f, c2);

    struct rawc *c3 = rawc_new(&f);
    snprintf(req, sizeof req, "GET /%s HTTP/1.1\r\n\r\n", big);
    rawc_send(c3, req);
    r = rawc_wait(&f, c3, 1);
    assert_int_equal(r->status, 431);
    assert_int_equal(f.n_requests, 0);
    fx_stop(&f);
}

static void test_oversized_body(void **state)
{
    (void)state;
    struct sk_http_server_config cfg = {.max_body_bytes = 1000};
    struct fx f;
    fx_start(&f, &cfg);
    /* Declared too big: refused before the body is read. */
    struct rawc *c = rawc_new(&f);
    rawc_send(c, "POST /echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
    struct resp *r = rawc_wait(&f, c, 1);
    assert_int_equal(r->status, 413);
    assert_error_body(r, "too_large", "request body exceeds 1000 bytes");
    rawc_wait_eof(&f, c);

    /* Chunked, found too big while it arrives. */
    struct rawc *c2 = rawc_new(&f);
    rawc_send(c2, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    char chunk[700];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 2; i++) {
        rawc_send(c2, "2bc\r\n");
        rawc_send_n(c2, chunk, sizeof chunk);
        rawc_send(c2, "\r\n");
    }
    r = rawc_wait(&f, c2, 1);
    assert_int_equal(r->status, 413);
    assert_error_body(r, "too_large", "request body exceeds 1000 bytes");
    rawc_wait_eof(&f, c2);

    /* Exactly at the cap is fine. */
    struct rawc *c3 = rawc_new(&f);
    char req[1200];
    int n = snprintf(req, sizeof req,
                     "POST /echo HTTP/1.1\r\nContent-Length: 1000\r\n\r\n");
    memset(req + n, 'y', 1000);
    rawc_send_n(c3, req, (size_t)n + 1000);
    r = rawc_wait(&f, c3, 1);
    assert_int_equal(r->status, 200);
    assert_int_equal(f.n_requests, 1);
    fx_stop(&f);
}

static void test_expect_continue(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct rawc *c = rawc_new(&f);
    rawc_send(c, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\n"
                 "Content-Length: 3\r\n\r\n");
    struct resp *r = rawc_wait(&f, c, 1);
    assert_int_equal(r->status, 100);
    rawc_send(c, "abc");
    r = rawc_wait(&f, c, 2);
    assert_int_equal(r->status, 200);
    json_t *j = resp_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "body")), "abc");
    json_decref(j);
    fx_stop(&f);
}

static void test_malformed_request(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct rawc *c = rawc_new(&f);
    rawc_send(c, "THIS IS NOT HTTP\r\n\r\n");
    struct resp *r = rawc_wait(&f, c, 1);
    assert_int_equal(r->status, 400);
    assert_error_body(r, "protocol", "malformed request");
    assert_string_equal(resp_header(r, "connection"), "close");
    rawc_wait_eof(&f, c);

    /* Bad chunk size after a good start. */
    struct rawc *c2 = rawc_new(&f);
    rawc_send(c2, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "zz\r\n");
    r = rawc_wait(&f, c2, 1);
    assert_int_equal(r->status, 400);
    rawc_wait_eof(&f, c2);

    /* Content-Length and chunked together are refused. */
    struct rawc *c3 = rawc_new(&f);
    rawc_send(c3, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                  "Content-Length: 3\r\n\r\n");
    r = rawc_wait(&f, c3, 1);
    assert_int_equal(r->status, 400);
    rawc_wait_eof(&f, c3);
    assert_int_equal(f.n_requests, 0);
    assert_true(
        sk_test_run_until(&f.loop, cond_no_connections, &f, DEADLINE_MS));
    fx_stop(&f);
}

static void test_connection_close_and_http10(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct rawc *c = rawc_new(&f);
    rawc_send(c, "GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n");
    struct resp *r = rawc_wait(&f, c, 1);
    assert_int_equal(r->status, 200);
    assert_string_equal(resp_header(r, "connection"), "close");
    rawc_wait_eof(&f, c);

    struct rawc *c2 = rawc_new(&f);
    rawc_send(c2, "GET /echo HTTP/1.0\r\n\r\n");
    r = rawc_wait(&f, c2, 1);
    assert_int_equal(r->status, 200);
    assert_string_equal(resp_header(r, "connection"), "close");
    rawc_wait_eof(&f, c2);

    /* HTTP/1.0 with keep-alive stays open. */
    struct rawc *c3 = rawc_new(&f);
    rawc_send(c3, "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    r = rawc_wait(&f, c3, 1);
    assert_string_equal(resp_header(r, "connection"), "keep-alive");
    rawc_send(c3, "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    rawc_wait(&f, c3, 2);
    assert_false(c3->eof);

    /* A stream to an HTTP/1.0 client ends with the connection. */
    struct rawc *c4 = rawc_new(&f);
    rawc_send(c4, "GET /stream HTTP/1.0\r\n\r\n");
    assert_true(sk_test_run_until(&f.loop, cond_held, &f, DEADLINE_MS));
    struct sk_http_req *req = f.held;
    f.held = NULL;
    assert_true(sk_http_stream_write(req, "one\n", 4));
    assert_true(sk_http_stream_write(req, "two\n", 4));
    sk_http_stream_end(req);
    rawc_wait_eof(&f, c4);
    assert_int_equal(c4->n_complete, 1);
    assert_null(resp_header(&c4->resp[0], "transfer-encoding"));
    assert_memory_equal(c4->resp[0].body, "one\ntwo\n", 8);
    fx_stop(&f);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

static void test_half_close_after_request(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct rawc *c = rawc_new(&f);
    rawc_send(c, "GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n");
    uv_shutdown_t *sr = malloc(sizeof *sr);
    assert_int_equal(uv_shutdown(sr, (uv_stream_t *)&c->tcp, shutdown_cb), 0);
    uint64_t start = uv_now(&f.loop);
    struct resp *r = rawc_wait(&f, c, 1);
    assert_int_equal(r->status, 200);
    rawc_wait_eof(&f, c);
    /* Promptly: neither the drain timeout nor the linger maximum. */
    assert_true(uv_now(&f.loop) - start < 1000);
    fx_stop(&f);
}

static void test_request_timeout(void **state)
{
    (void)state;
    struct sk_http_server_config cfg = {.request_timeout_ms = 200};
    struct fx f;
    fx_start(&f, &cfg);
    struct rawc *c = rawc_new(&f);
    rawc_send(c, "GET /echo HTTP/1.1\r\nHost: x\r\n");
    uint64_t start = uv_now(&f.loop);
    struct resp *r = rawc_wait(&f, c, 1);
    assert_true(uv_now(&f.loop) - start >= 150);
    assert_int_equal(r->status, 408);
    assert_error_body(r, "timeout", "request not received within 200 ms");
    rawc_wait_eof(&f, c);
    assert_int_equal(f.n_requests, 0);
    fx_stop(&f);
}

static void test_idle_timeout(void **state)
{
    (void)state;
    struct sk_http_server_config cfg = {.idle_timeout_ms = 200};
    struct fx f;
    fx_start(&f, &cfg);
    struct rawc *c = rawc_new(&f);
    rawc_wait_eof(&f, c);
    assert_int_equal(c->n_resp, 0);

    /* After a request, too. */
    struct rawc *c2 = rawc_new(&f);
    rawc_send(c2, "GET /echo HTTP/1.1\r\n\r\n");
    rawc_wait(&f, c2, 1);
    assert_int_equal(sk_http_server_connections(&f.srv), 1);
    rawc_wait_eof(&f, c2);
    assert_int_equal(c2->n_resp, 1);
    assert_true(
        sk_test_run_until(&f.loop, cond_no_connections, &f, DEADLINE_MS));
    fx_stop(&f);
}

static void test_max_connections(void **state)
{
    (void)state;
    struct sk_http_server_config cfg = {.max_connections = 2};
    struct fx f;
    fx_start(&f, &cfg);
    f.authenticated = true;
    struct rawc *a = rawc_new(&f);
    struct rawc *b = rawc_new(&f);
    rawc_send(a, "GET /echo HTTP/1.1\r\n\r\n");
    rawc_send(b, "GET /echo HTTP/1.1\r\n\r\n");
    rawc_wait(&f, a, 1);
    rawc_wait(&f, b, 1);
    assert_int_equal(sk_http_server_connections(&f.srv), 2);

    struct rawc *c = rawc_new(&f);
    struct resp *r = rawc_wait(&f, c, 1);
    assert_int_equal(r->status, 503);
    assert_error_body(r, "unavailable", "too many connections (max 2)");
    rawc_wait_eof(&f, c);
    assert_int_equal(sk_http_server_connections(&f.srv), 2);

    /* The others still work, and a freed slot can be taken again. */
    rawc_send(a, "GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n");
    rawc_wait(&f, a, 2);
    rawc_wait_eof(&f, a);
    assert_int_equal(sk_http_server_connections(&f.srv), 1);
    struct rawc *d = rawc_new(&f);
    rawc_send(d, "GET /echo HTTP/1.1\r\n\r\n");
    r = rawc_wait(&f, d, 1);
    assert_int_equal(r->status, 200);
    fx_stop(&f);
}

static bool cond_rejects(void *ctx)
{
    return ((struct fx *)ctx)->rejects > 0;
}

/* Strangers have a budget of their own: when it is full, the oldest idle
 * one makes room, then the oldest still sending; clients with a
 * certificate are not touched and not counted. */
static void test_strangers_budget(void **state)
{
    (void)state;
    struct sk_http_server_config cfg = {.max_unauthenticated = 2,
                                        .max_connections = 1};
    struct fx f;
    fx_start(&f, &cfg);
    f.authenticated = true;
    struct rawc *member = rawc_new(&f);
    rawc_send(member, "GET /echo HTTP/1.1\r\n\r\n");
    rawc_wait(&f, member, 1);
    f.authenticated = false;

    struct rawc *a = rawc_new(&f);
    struct rawc *b = rawc_new(&f);
    rawc_send(a, "GET /echo HTTP/1.1\r\n\r\n");
    rawc_send(b, "GET /echo HTTP/1.1\r\n\r\n");
    rawc_wait(&f, a, 1);
    rawc_wait(&f, b, 1);
    assert_int_equal(sk_http_server_connections(&f.srv), 3);
    assert_int_equal(f.rejects, 0);

    /* c pushes out a, the oldest idle one. */
    struct rawc *c = rawc_new(&f);
    rawc_wait_eof(&f, a);
    assert_int_equal(a->n_resp, 1);
    assert_int_equal(f.rejects, 1);
    assert_int_equal(f.reject.code, SK_EUNAVAIL);
    assert_memory_equal(f.reject.msg, "127.0.0.1:", 10);
    if (!strstr(f.reject.msg, ": idle connection without a client "
                              "certificate closed for a newer one (max 2)"))
        fail_msg("%s", f.reject.msg);
    rawc_send(c, "GET /echo HTTP/1.1\r\n\r\n");
    assert_int_equal(rawc_wait(&f, c, 1)->status, 200);

    /* b is half-way through a request, c idle: d pushes out c. */
    rawc_send(b, "GET /echo HTTP/1.1\r\n");
    sk_test_run_for(&f.loop, 20);
    struct rawc *d = rawc_new(&f);
    rawc_wait_eof(&f, c);
    assert_false(b->eof);
    rawc_send(b, "\r\n");
    assert_int_equal(rawc_wait(&f, b, 2)->status, 200);

    /* Both still sending: the older one goes. */
    rawc_send(b, "GET /echo HTTP/1.1\r\n");
    rawc_send(d, "GET /echo HTTP/1.1\r\n");
    sk_test_run_for(&f.loop, 20);
    struct rawc *e = rawc_new(&f);
    rawc_wait_eof(&f, b);
    if (!strstr(f.reject.msg, ": slow connection without a client "
                              "certificate closed for a newer one (max 2)"))
        fail_msg("%s", f.reject.msg);
    assert_false(d->eof);
    rawc_send(e, "GET /echo HTTP/1.1\r\n\r\n");
    assert_int_equal(rawc_wait(&f, e, 1)->status, 200);

    /* The member was never touched. */
    rawc_send(member, "GET /echo HTTP/1.1\r\n\r\n");
    assert_int_equal(rawc_wait(&f, member, 2)->status, 200);
    assert_false(member->eof);
    fx_stop(&f);
}

/* One address has its own smaller budget: its idle connections make room
 * for its new ones; when none is idle, the new one gets 503. */
static void test_strangers_per_source(void **state)
{
    (void)state;
    struct sk_http_server_config cfg = {.max_unauthenticated_per_source = 2};
    struct fx f;
    fx_start(&f, &cfg);
    struct rawc *a = rawc_new(&f);
    struct rawc *b = rawc_new(&f);
    sk_test_run_for(&f.loop, 20);
    struct rawc *c = rawc_new(&f);
    rawc_wait_eof(&f, a);
    if (!strstr(f.reject.msg, "closed for a newer one (max 2 from "
                              "127.0.0.1)"))
        fail_msg("%s", f.reject.msg);
    rawc_send(b, "GET /echo HTTP/1.1\r\n");
    rawc_send(c, "GET /echo HTTP/1.1\r\n");
    sk_test_run_for(&f.loop, 20);
    struct rawc *d = rawc_new(&f);
    struct resp *r = rawc_wait(&f, d, 1);
    assert_int_equal(r->status, 503);
    assert_error_body(r, "unavailable",
                      "too many connections without a client certificate "
                      "from 127.0.0.1 (max 2)");
    rawc_wait_eof(&f, d);
    assert_false(b->eof);
    assert_false(c->eof);
    fx_stop(&f);
}

/* Strangers get the short deadline, members the long one. */
static void test_strangers_deadline(void **state)
{
    (void)state;
    struct sk_http_server_config cfg = {.unauthenticated_timeout_ms = 200};
    struct fx f;
    fx_start(&f, &cfg);
    f.authenticated = true;
    struct rawc *member = rawc_new(&f);
    f.authenticated = false;
    struct rawc *idle = rawc_new(&f);
    struct rawc *slow = rawc_new(&f);
    rawc_send(slow, "GET /echo HTTP/1.1\r\n");
    uint64_t start = uv_now(&f.loop);
    rawc_wait_eof(&f, idle);
    struct resp *r = rawc_wait(&f, slow, 1);
    assert_int_equal(r->status, 408);
    assert_error_body(r, "timeout", "request not received within 200 ms");
    assert_true(uv_now(&f.loop) - start < 2000);
    sk_test_run_for(&f.loop, 200);
    assert_false(member->eof);
    fx_stop(&f);
}

/* Requests without a certificate from one address are rate-limited; the
 * connection stays open. */
static void test_strangers_rate(void **state)
{
    (void)state;
    struct sk_http_server_config cfg = {.unauthenticated_rate = 5,
                                        .unauthenticated_burst = 3};
    struct fx f;
    fx_start(&f, &cfg);
    struct rawc *a = rawc_new(&f);
    for (int i = 1; i <= 3; i++) {
        rawc_send(a, "GET /echo HTTP/1.1\r\n\r\n");
        assert_int_equal(rawc_wait(&f, a, i)->status, 200);
    }
    rawc_send(a, "GET /echo HTTP/1.1\r\n\r\n");
    struct resp *r = rawc_wait(&f, a, 4);
    assert_int_equal(r->status, 429);
    assert_error_body(r, "unavailable",
                      "too many requests without a client certificate from "
                      "127.0.0.1 (limit 5/s)");
    assert_string_equal(resp_header(r, "retry-after"), "1");
    assert_int_equal(f.n_requests, 3);
    assert_true(sk_test_run_until(&f.loop, cond_rejects, &f, DEADLINE_MS));
    if (!strstr(f.reject.msg, "too many requests"))
        fail_msg("%s", f.reject.msg);

    /* Members are not counted; after 200 ms there is a token again. */
    f.authenticated = true;
    struct rawc *member = rawc_new(&f);
    for (int i = 1; i <= 5; i++) {
        rawc_send(member, "GET /echo HTTP/1.1\r\n\r\n");
        assert_int_equal(rawc_wait(&f, member, i)->status, 200);
    }
    f.authenticated = false;
    sk_test_run_for(&f.loop, 250);
    rawc_send(a, "GET /echo HTTP/1.1\r\n\r\n");
    assert_int_equal(rawc_wait(&f, a, 5)->status, 200);
    rawc_send(a, "GET /echo HTTP/1.1\r\n\r\n");
    assert_int_equal(rawc_wait(&f, a, 6)->status, 429);
    assert_false(a->eof);
    fx_stop(&f);
}

static void test_async_handler(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct rawc *c = rawc_new(&f);
    rawc_send(c, "GET /async HTTP/1.1\r\n\r\n");
    assert_true(sk_test_run_until(&f.loop, cond_held, &f, DEADLINE_MS));
    fx_timer(&f, respond_held_cb, 50);
    struct resp *r = rawc_wait(&f, c, 1);
    assert_int_equal(r->status, 202);
    assert_memory_equal(r->body, "later", 5);
    assert_string_equal(resp_header(r, "content-type"), "text/plain");
    /* And the connection goes on. */
    rawc_send(c, "GET /echo HTTP/1.1\r\n\r\n");
    r = rawc_wait(&f, c, 2);
    assert_int_equal(r->status, 200);
    assert_int_equal(f.aborts, 0);
    fx_stop(&f);
}

struct body_has {
    struct rawc *c;
    const char *text;
};

static bool cond_body_has(void *ctx)
{
    struct body_has *b = ctx;
    return b->c->n_resp > 0 && b->c->resp[0].body &&
           strstr(b->c->resp[0].body, b->text);
}

static void test_streaming_response(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct rawc *c = rawc_new(&f);
    rawc_send(c, "GET /stream HTTP/1.1\r\n\r\n");
    assert_true(sk_test_run_until(&f.loop, cond_held, &f, DEADLINE_MS));
    struct sk_http_req *req = f.held;
    const char *lines[] = {"{\"n\":1}\n", "{\"n\":2}\n", "{\"n\":3}\n"};
    for (int i = 0; i < 3; i++) {
        assert_true(sk_http_stream_write(req, lines[i], strlen(lines[i])));
        struct body_has b = {c, lines[i]};
        /* Each chunk arrives before the stream ends. */
        assert_true(sk_test_run_until(&f.loop, cond_body_has, &b, DEADLINE_MS));
        assert_false(c->resp[0].complete);
    }
    assert_true(sk_http_stream_write(req, "", 0)); /* not an end marker */
    assert_int_equal(sk_http_stream_queued(req), 0);
    assert_false(sk_http_req_aborted(req));
    f.held = NULL;
    sk_http_stream_end(req);
    struct resp *r = rawc_wait(&f, c, 1);
    assert_int_equal(r->status, 200);
    assert_string_equal(resp_header(r, "transfer-encoding"), "chunked");
    assert_string_equal(resp_header(r, "content-type"), "application/x-ndjson");
    assert_string_equal(resp_header(r, "x-stream"), "yes");
    assert_string_equal(r->body, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
    /* Keep-alive after a stream. */
    rawc_send(c, "GET /echo HTTP/1.1\r\n\r\n");
    r = rawc_wait(&f, c, 2);
    assert_int_equal(r->status, 200);
    assert_int_equal(f.aborts, 0);
    fx_stop(&f);
}

static void test_disconnect_during_stream(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct rawc *c = rawc_new(&f);
    rawc_send(c, "GET /stream HTTP/1.1\r\n\r\n");
    assert_true(sk_test_run_until(&f.loop, cond_held, &f, DEADLINE_MS));
    struct sk_http_req *req = f.held;
    assert_true(sk_http_stream_write(req, "x\n", 2));
    rawc_close(c);
    assert_true(sk_test_run_until(&f.loop, cond_aborted, &f, DEADLINE_MS));
    assert_true(sk_http_req_aborted(req));
    assert_false(sk_http_stream_write(req, "y\n", 2));
    assert_int_equal(sk_http_stream_queued(req), 0);
    sk_test_run_for(&f.loop, 50);
    assert_int_equal(f.aborts, 1);
    assert_int_equal(sk_http_server_connections(&f.srv), 0);
    /* The handler still finishes it; this frees the request. */
    f.held = NULL;
    sk_http_stream_end(req);
    sk_test_run_for(&f.loop, 20);
    assert_int_equal(f.aborts, 1);

    /* Same with a plain async request answered with respond. */
    struct rawc *c2 = rawc_new(&f);
    rawc_send(c2, "GET /hold HTTP/1.1\r\n\r\n");
    assert_true(sk_test_run_until(&f.loop, cond_held, &f, DEADLINE_MS));
    req = f.held;
    rawc_close(c2);
    assert_true(
        sk_test_run_until(&f.loop, cond_aborted_twice, &f, DEADLINE_MS));
    f.held = NULL;
    sk_http_respond(req, 200, "text/plain", "gone", 4);
    assert_int_equal(f.aborts, 2);
    fx_stop(&f);
}

static void test_server_close_with_open_connections(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    struct rawc *idle = rawc_new(&f);
    struct rawc *partial = rawc_new(&f);
    struct rawc *busy = rawc_new(&f);
    rawc_send(idle, "GET /echo HTTP/1.1\r\n\r\n");
    rawc_wait(&f, idle, 1);
    rawc_send(partial, "POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
    rawc_send(busy, "GET /hold HTTP/1.1\r\n\r\n");
    assert_true(sk_test_run_until(&f.loop, cond_held, &f, DEADLINE_MS));
    sk_test_run_for(&f.loop, 20);
    assert_int_equal(sk_http_server_connections(&f.srv), 3);

    struct sk_http_req *req = f.held;
    sk_http_server_close(&f.srv, srv_closed_cb);
    /* abort_cb ran at once; the server waits for the handler. */
    assert_int_equal(f.aborts, 1);
    assert_int_equal(sk_http_server_connections(&f.srv), 0);
    rawc_wait_eof(&f, idle);
    rawc_wait_eof(&f, partial);
    rawc_wait_eof(&f, busy);
    sk_test_run_for(&f.loop, 30);
    assert_false(f.srv_closed);
    f.held = NULL;
    sk_http_respond(req, 200, NULL, "x", 1);
    assert_true(sk_test_run_until(&f.loop, cond_srv_closed, &f, DEADLINE_MS));
    fx_stop(&f); /* closing the server again is a no-op */
}

static void test_server_close_with_abort_finishing(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, NULL);
    f.respond_in_abort = true;
    struct rawc *busy = rawc_new(&f);
    rawc_send(busy, "GET /hold HTTP/1.1\r\n\r\n");
    assert_true(sk_test_run_until(&f.loop, cond_held, &f, DEADLINE_MS));
    fx_stop(&f); /* close -> abort_cb -> respond inside it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_post),
        cmocka_unit_test(test_keep_alive_sequential),
        cmocka_unit_test(test_pipelined_in_order),
        cmocka_unit_test(test_pipelined_backpressure),
        cmocka_unit_test(test_chunked_request_and_split_reads),
        cmocka_unit_test(test_query_and_percent_decoding),
        cmocka_unit_test(test_query_function),
        cmocka_unit_test(test_bad_paths),
        cmocka_unit_test(test_header_lookup_case_insensitive),
        cmocka_unit_test(test_oversized_headers),
        cmocka_unit_test(test_oversized_body),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_malformed_request),
        cmocka_unit_test(test_connection_close_and_http10),
        cmocka_unit_test(test_half_close_after_request),
        cmocka_unit_test(test_request_timeout),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_strangers_budget),
        cmocka_unit_test(test_strangers_per_source),
        cmocka_unit_test(test_strangers_deadline),
        cmocka_unit_test(test_strangers_rate),
        cmocka_unit_test(test_async_handler),
        cmocka_unit_test(test_streaming_response),
        cmocka_unit_test(test_disconnect_during_stream),
        cmocka_unit_test(test_server_close_with_open_connections),
        cmocka_unit_test(test_server_close_with_abort_finishing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
