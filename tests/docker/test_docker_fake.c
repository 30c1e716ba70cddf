/* The Docker Engine API client against a fake dockerd on a unix socket: the
 * replies a real daemon seldom or never gives on demand (error lines in a
 * pull, system-error and malformed log frames, streams cut short, replies
 * over the caps, bodies that are not JSON), frames and lines split at
 * awkward places, and the exact requests the client sends (escaping,
 * query parameters). Needs no dockerd; the real one is test_docker.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "../unit/support.h"
#include "skiff/docker.h"
#include "skiff/mem.h"

#define DEADLINE_MS 10000
#define MAX_SEGS 16
#define MAX_LINES 64

/* ---- The fake dockerd ---- */

struct seg {
    char *data;
    size_t len;
};

struct conn {
    uv_pipe_t pipe;
    uv_timer_t pace; /* writes a stream's segments one by one */
    struct fake *f;
    char *in;
    size_t in_len;
    struct seg segs[MAX_SEGS];
    int n_segs, next_seg;
    bool close_after; /* a close-delimited stream */
    int pending_closes;
    struct conn *prev, *next;
};

struct fake {
    uv_loop_t loop;
    uv_pipe_t server;
    char dir[64];
    char sock[96];
    struct conn *conns;
    int requests;
    char method[16];
    char target[2048];
    char *body;
    char ctype[128];
    bool server_closed;
    struct sk_docker *d;
    int closes;
};

static void conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->pending_closes > 0)
        return;
    for (int i = 0; i < c->n_segs; i++)
        free(c->segs[i].data);
    free(c->in);
    free(c);
}

static void conn_close(struct conn *c)
{
    if (c->pending_closes)
        return;
    struct fake *f = c->f;
    if (c->prev)
        c->prev->next = c->next;
    else
        f->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->pending_closes = 2;
    uv_close((uv_handle_t *)&c->pipe, conn_closed);
    uv_close((uv_handle_t *)&c->pace, conn_closed);
}

static void write_done(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

static void conn_write(struct conn *c, const char *p, size_t n)
{
    uv_write_t *w = sk_malloc(sizeof *w);
    char *copy = sk_malloc(n ? n : 1);
    memcpy(copy, p, n);
    w->data = copy;
    uv_buf_t b = uv_buf_init(copy, (unsigned)n);
    if (uv_write(w, (uv_stream_t *)&c->pipe, &b, 1, write_done) != 0) {
        free(copy);
        free(w);
    }
}

static void shut_done(uv_shutdown_t *s, int status)
{
    (void)status;
    struct conn *c = s->data;
    free(s);
    conn_close(c);
}

/* Ends a close-delimited reply once everything queued is written. */
static void conn_finish(struct conn *c)
{
    uv_shutdown_t *s = sk_malloc(sizeof *s);
    s->data = c;
    if (uv_shutdown(s, (uv_stream_t *)&c->pipe, shut_done) != 0) {
        free(s);
        conn_close(c);
    }
}

static void pace_cb(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (c->next_seg < c->n_segs) {
        struct seg *s = &c->segs[c->next_seg++];
        conn_write(c, s->data, s->len);
        uv_timer_start(&c->pace, pace_cb, 15, 0);
        return;
    }
    if (c->close_after)
        conn_finish(c);
}

static void seg_add(struct conn *c, const void *p, size_t n)
{
    assert_true(c->n_segs < MAX_SEGS);
    c->segs[c->n_segs].data = sk_malloc(n ? n : 1);
    memcpy(c->segs[c->n_segs].data, p, n);
    c->segs[c->n_segs].len = n;
    c->n_segs++;
}

static void seg_str(struct conn *c, const char *s)
{
    seg_add(c, s, strlen(s));
}

/* One frame of a multiplexed log stream. */
static void seg_frame(struct conn *c, int stream, const char *p, size_t n)
{
    unsigned char h[8] = {(unsigned char)stream,
                          0,
                          0,
                          0,
                          (unsigned char)(n >> 24),
                          (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8),
                          (unsigned char)n};
    char *buf = sk_malloc(8 + n);
    memcpy(buf, h, 8);
    memcpy(buf + 8, p, n);
    seg_add(c, buf, 8 + n);
    free(buf);
}

static void reply(struct conn *c, int status, const char *ctype,
                  const char *body, size_t len)
{
    char *head = sk_printf("HTTP/1.1 %d X\r\nContent-Type: %s\r\n"
                           "Content-Length: %zu\r\n\r\n",
                           status, ctype, len);
    conn_write(c, head, strlen(head));
    if (len)
        conn_write(c, body, len);
    free(head);
}

static void reply_json(struct conn *c, int status, const char *body)
{
    reply(c, status, "application/json", body, strlen(body));
}

/* A close-delimited 200 whose body is the segments added after this. */
static void stream_begin(struct conn *c)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: "
                               "application/json\r\nConnection: close\r\n\r\n";
    conn_write(c, head, sizeof head - 1);
    c->close_after = true;
}

static void stream_go(struct conn *c)
{
    uv_timer_start(&c->pace, pace_cb, 15, 0);
}

static bool path_is(const char *target, const char *path)
{
    size_t n = strlen(path);
    return strncmp(target, path, n) == 0 &&
           (target[n] == '\0' || target[n] == '?');
}

static void route(struct conn *c, const char *t)
{
    if (path_is(t, "/version")) {
        reply_json(c, 200, "{\"ApiVersion\":\"1.41\"}");
    } else if (path_is(t, "/info")) {
        reply_json(c, 200, "{not json");
    } else if (path_is(t, "/containers/json")) {
        reply_json(c, 200, "[]");
    } else if (path_is(t, "/containers/c304/start")) {
        reply(c, 304, "text/plain", NULL, 0);
    } else if (path_is(t, "/containers/c400/start")) {
        reply_json(c, 400, "{\"message\":\"bad parameter\"}");
    } else if (path_is(t, "/containers/c500/start")) {
        reply(c, 500, "text/plain", "oops\nsecond line\n", 17);
    } else if (path_is(t, "/containers/c409/start")) {
        reply(c, 409, "application/json", NULL, 0);
    } else if (path_is(t, "/containers/drop/json")) {
        conn_close(c);
    } else if (path_is(t, "/containers/hold/json")) {
        /* never answers */
    } else if (path_is(t, "/containers/big/json")) {
        size_t n = ((size_t)8 << 20) + 100;
        char *body = sk_malloc(n);
        memset(body, ' ', n);
        body[0] = '[';
        body[n - 1] = ']';
        reply(c, 200, "application/json", body, n);
        free(body);
    } else if (path_is(t, "/images/create")) {
        stream_begin(c);
        if (strstr(t, "fromImage=errline")) {
            seg_str(c, "{\"status\":\"Pulling from errline\"}\r\n{\"sta");
            seg_str(c, "tus\":\"Waiting\"}\r\n");
            seg_str(c, "{\"errorDetail\":{\"message\":\"boom\"},"
                       "\"error\":\"boom: manifest unknown\"}\r\n");
        } else if (strstr(t, "fromImage=err404")) {
            seg_str(c, "{\"errorDetail\":{\"code\":404,\"message\":\"x\"},"
                       "\"error\":\"not here\"}\r\n");
        } else {
            seg_str(c, "{\"status\":\"Pulling\"}\r\n");
            seg_str(c, "{\"status\":\"Downloaded newer image\"}");
        }
        stream_go(c);
    } else if (path_is(t, "/events")) {
        stream_begin(c);
        if (strstr(t, "huge")) {
            char *big = sk_malloc((size_t)1 << 20);
            memset(big, ' ', (size_t)1 << 20);
            seg_str(c, "{\"Action\":\"a\"}\n{\"Action\":");
            seg_add(c, big, (size_t)1 << 20);
            seg_str(c, "\"b\"}\n");
            free(big);
        } else if (strstr(t, "garbage")) {
            seg_str(c, "{\"Action\":\"a\"}\n{oops}\n{\"Action\":\"c\"}\n");
        } else if (strstr(t, "forever")) {
            seg_str(c, "{\"Action\":\"a\"}\n");
            c->close_after = false;
        } else {
            seg_str(c, "{\"Action\":\"create\"}\n\n{\"Act");
            seg_str(c, "ion\":\"start\"}");
            seg_str(c, "\n{\"Action\":\"die\"}\n");
        }
        stream_go(c);
    } else if (strncmp(t, "/containers/", 12) == 0 && strstr(t, "/json")) {
        bool tty = strncmp(t, "/containers/T", 13) == 0;
        reply_json(c, 200,
                   tty ? "{\"Config\":{\"Tty\":true}}"
                       : "{\"Config\":{\"Tty\":false}}");
    } else if (path_is(t, "/containers/L1/logs")) {
        stream_begin(c);
        /* Frames split inside their header and payload, lines across
         * frames, an empty frame, stdin echoed (stream 0). */
        unsigned char f1[] = {1, 0, 0, 0, 0, 0, 0, 3, 'a', '\n', 'b'};
        seg_add(c, f1, 3);
        seg_add(c, f1 + 3, 7);
        seg_add(c, f1 + 10, 1);
        seg_frame(c, 2, "e1\n", 3);
        seg_frame(c, 1, "", 0);
        seg_frame(c, 1, "c\n", 2);
        seg_frame(c, 0, "in\n", 3);
        seg_frame(c, 2, "e2", 2); /* no newline at the end */
        stream_go(c);
    } else if (path_is(t, "/containers/L2/logs")) {
        stream_begin(c);
        seg_frame(c, 1, "ok\n", 3);
        seg_frame(c, 3, "container gone\n", 15);
        seg_frame(c, 1, "never\n", 6);
        stream_go(c);
    } else if (path_is(t, "/containers/L3/logs")) {
        stream_begin(c);
        seg_frame(c, 1, "ok\n", 3);
        seg_str(c, "plain text, no frames\n");
        stream_go(c);
    } else if (path_is(t, "/containers/L4/logs")) {
        stream_begin(c);
        unsigned char f[] = {1, 0, 0, 0, 0, 0, 0, 10, 'a', 'b', 'c'};
        seg_add(c, f, sizeof f);
        stream_go(c);
    } else if (path_is(t, "/containers/L5/logs")) {
        stream_begin(c);
        size_t n = 200000;
        char *big = sk_malloc(n + 1);
        memset(big, 'y', n);
        big[n] = '\n';
        seg_frame(c, 1, big, n + 1);
        free(big);
        stream_go(c);
    } else if (path_is(t, "/containers/T1/logs")) {
        stream_begin(c);
        seg_str(c, "x\r\ny\r");
        seg_str(c, "\nz");
        stream_go(c);
    } else if (path_is(t, "/containers/L6/logs")) {
        reply_json(c, 501,
                   "{\"message\":\"configured logging driver does "
                   "not support reading\"}");
    } else {
        /* Everything else: 201/204 with what was asked, for checks. */
        reply(c, 204, "text/plain", NULL, 0);
    }
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    struct fake *f = c->f;
    if (nread < 0) {
        free(buf->base);
        conn_close(c);
        return;
    }
    c->in = sk_realloc(c->in, c->in_len + (size_t)nread + 1);
    memcpy(c->in + c->in_len, buf->base, (size_t)nread);
    c->in_len += (size_t)nread;
    c->in[c->in_len] = '\0';
    free(buf->base);
    for (;;) {
        char *end = strstr(c->in, "\r\n\r\n");
        if (!end)
            return;
        size_t head = (size_t)(end - c->in) + 4;
        size_t body = 0;
        const char *cl = strcasestr(c->in, "\r\ncontent-length:");
        if (cl && cl < end)
            body = strtoul(cl + 17, NULL, 10);
        if (c->in_len < head + body)
            return;
        char target[2048];
        if (sscanf(c->in, "%15s %2047s", f->method, target) != 2)
            fail_msg("bad request line");
        const char *ct = strcasestr(c->in, "\r\ncontent-type: ");
        f->ctype[0] = '\0';
        if (ct && ct < end)
            sscanf(ct + 16, "%127[^\r]", f->ctype);
        free(f->body);
        f->body = sk_strndup(c->in + head, body);
        const char *t = target;
        assert_memory_equal(t, "/v1.41/", 7);
        t += 6;
        snprintf(f->target, sizeof f->target, "%s", t);
        f->requests++;
        memmove(c->in, c->in + head + body, c->in_len - head - body + 1);
        c->in_len -= head + body;
        route(c, t);
        if (c->pending_closes)
            return;
    }
}

static void alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)h;
    buf->base = sk_malloc(size);
    buf->len = size;
}

static void accept_cb(uv_stream_t *server, int status)
{
    struct fake *f = server->data;
    if (status < 0)
        return;
    struct conn *c = sk_calloc(1, sizeof *c);
    c->f = f;
    uv_pipe_init(&f->loop, &c->pipe, 0);
    uv_timer_init(&f->loop, &c->pace);
    c->pipe.data = c;
    c->pace.data = c;
    c->next = f->conns;
    if (f->conns)
        f->conns->prev = c;
    f->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        conn_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

static void fake_start(struct fake *f)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    snprintf(f->dir, sizeof f->dir, "/tmp/skiff-fakedocker-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sock, sizeof f->sock, "%s/docker.sock", f->dir);
    uv_pipe_init(&f->loop, &f->server, 0);
    f->server.data = f;
    assert_int_equal(uv_pipe_bind(&f->server, f->sock), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->server, 16, accept_cb), 0);
    char *url = sk_printf("unix://%s", f->sock);
    struct sk_err err;
    f->d = sk_docker_new(&f->loop, url, &err);
    free(url);
    assert_non_null(f->d);
}

static void server_closed(uv_handle_t *h)
{
    ((struct fake *)h->data)->server_closed = true;
}

static void client_closed(void *ctx)
{
    ((struct fake *)ctx)->closes++;
}

static bool client_gone(void *ctx)
{
    return ((struct fake *)ctx)->closes > 0;
}

static bool fake_all_closed(void *ctx)
{
    struct fake *f = ctx;
    return f->closes > 0 && f->server_closed;
}

static void fake_stop(struct fake *f)
{
    sk_docker_close(f->d, client_closed, f);
    assert_int_equal(f->closes, 0);
    uv_close((uv_handle_t *)&f->server, server_closed);
    while (f->conns)
        conn_close(f->conns);
    assert_true(sk_test_run_until(&f->loop, fake_all_closed, f, DEADLINE_MS));
    assert_int_equal(f->closes, 1);
    free(f->body);
    sk_test_loop_close(&f->loop);
    unlink(f->sock);
    rmdir(f->dir);
}

/* ---- Results ---- */

struct res {
    int calls;
    enum sk_rc rc;
    char msg[SK_ERRMSG_SIZE];
    json_t *reply;
};

static void res_cb(void *ctx, enum sk_rc rc, const struct sk_err *err,
                   json_t *reply)
{
    struct res *r = ctx;
    r->calls++;
    r->rc = rc;
    snprintf(r->msg, sizeof r->msg, "%s", err->msg);
    json_decref(r->reply);
    r->reply = json_incref(reply);
}

static bool res_done(void *ctx)
{
    return ((struct res *)ctx)->calls > 0;
}

static void res_clear(struct res *r)
{
    json_decref(r->reply);
    memset(r, 0, sizeof *r);
}

/* Waits for the op; it must call back once and not inside its start. */
static void expect(struct fake *f, struct res *r, enum sk_rc want,
                   const char *msg_part)
{
    assert_int_equal(r->calls, 0);
    if (!sk_test_run_until(&f->loop, res_done, r, DEADLINE_MS))
        fail_msg("no callback");
    sk_test_run_for(&f->loop, 5);
    assert_int_equal(r->calls, 1);
    if (r->rc != want)
        fail_msg("got %s (%s), want %s", sk_rc_name(r->rc), r->msg,
                 sk_rc_name(want));
    if (msg_part && !strstr(r->msg, msg_part))
        fail_msg("message \"%s\" lacks \"%s\"", r->msg, msg_part);
}

struct stream {
    int n;
    int stream[MAX_LINES];
    char *text[MAX_LINES];
    size_t len[MAX_LINES];
    int ends;
    enum sk_rc rc;
    char msg[SK_ERRMSG_SIZE];
    struct sk_docker_events *events;
    int stop_after;
};

static void line_cb(void *ctx, int stream, const char *line, size_t len)
{
    struct stream *s = ctx;
    assert_true(s->n < MAX_LINES);
    s->stream[s->n] = stream;
    s->text[s->n] = sk_strndup(line, len);
    s->len[s->n] = len;
    s->n++;
}

static void event_cb(void *ctx, json_t *ev)
{
    struct stream *s = ctx;
    const char *a = json_string_value(json_object_get(ev, "Action"));
    line_cb(ctx, 0, a ? a : "?", a ? strlen(a) : 1);
    if (s->stop_after && s->n == s->stop_after)
        sk_docker_events_stop(s->events);
}

static void end_cb(void *ctx, enum sk_rc rc, const struct sk_err *err)
{
    struct stream *s = ctx;
    s->ends++;
    s->rc = rc;
    snprintf(s->msg, sizeof s->msg, "%s", err->msg);
}

static bool ended(void *ctx)
{
    return ((struct stream *)ctx)->ends > 0;
}

static void stream_clear(struct stream *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->text[i]);
    memset(s, 0, sizeof *s);
}

static void expect_end(struct fake *f, struct stream *s, enum sk_rc want,
                       const char *msg_part)
{
    assert_int_equal(s->ends, 0);
    if (!sk_test_run_until(&f->loop, ended, s, DEADLINE_MS))
        fail_msg("stream did not end");
    sk_test_run_for(&f->loop, 30);
    assert_int_equal(s->ends, 1);
    if (s->rc != want)
        fail_msg("ended with %s (%s), want %s", sk_rc_name(s->rc), s->msg,
                 sk_rc_name(want));
    if (msg_part && !strstr(s->msg, msg_part))
        fail_msg("message \"%s\" lacks \"%s\"", s->msg, msg_part);
}

/* "stream:text|..." with long lines as their length. */
static char *joined(const struct stream *s)
{
    char *out = sk_strdup("");
    for (int i = 0; i < s->n; i++) {
        char *t = s->len[i] > 32
                      ? sk_printf("%d:<%zu>", s->stream[i], s->len[i])
                      : sk_printf("%d:%s", s->stream[i], s->text[i]);
        char *j = sk_printf("%s%s%s", out, i ? "|" : "", t);
        free(t);
        free(out);
        out = j;
    }
    return out;
}

static void expect_lines(const struct stream *s, const char *want)
{
    char *got = joined(s);
    if (strcmp(got, want) != 0)
        fail_msg("lines \"%s\", want \"%s\"", got, want);
    free(got);
}

/* ---- Tests ---- */

static void test_requests(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f);
    struct res r = {0};

    json_t *cfg = json_pack("{s:s}", "Image", "bb");
    sk_docker_create(f.d, "a b/c?&", cfg, res_cb, &r);
    json_decref(cfg);
    expect(&f, &r, SK_OK, NULL);
    assert_null(r.reply);
    assert_string_equal(f.method, "POST");
    assert_string_equal(f.target, "/containers/create?name=a%20b%2Fc%3F%26");
    assert_string_equal(f.body, "{\"Image\":\"bb\"}");
    assert_string_equal(f.ctype, "application/json");
    res_clear(&r);

    sk_docker_stop(f.d, "web.1", 3, res_cb, &r);
    expect(&f, &r, SK_OK, NULL);
    assert_string_equal(f.target, "/containers/web.1/stop?t=3");
    res_clear(&r);

    sk_docker_kill(f.d, "web.1", "SIGTERM", res_cb, &r);
    expect(&f, &r, SK_OK, NULL);
    assert_string_equal(f.target, "/containers/web.1/kill?signal=SIGTERM");
    res_clear(&r);

    sk_docker_remove(f.d, "web.1", true, res_cb, &r);
    expect(&f, &r, SK_OK, NULL);
    assert_string_equal(f.method, "DELETE");
    assert_string_equal(f.target, "/containers/web.1?force=1&v=1");
    res_clear(&r);

    sk_docker_list(f.d, "skiff.task=a b", res_cb, &r);
    expect(&f, &r, SK_OK, NULL);
    assert_string_equal(f.method, "GET");
    assert_string_equal(f.target,
                        "/containers/json?all=1&filters=%7B%22label%22%3A%5B%"
                        "22skiff.task%3Da%20b%22%5D%7D");
    res_clear(&r);

    sk_docker_list(f.d, NULL, res_cb, &r);
    expect(&f, &r, SK_OK, NULL);
    assert_string_equal(f.target, "/containers/json?all=1");
    res_clear(&r);

    sk_docker_image_inspect(f.d, "reg:5000/a/b:v1", res_cb, &r);
    expect(&f, &r, SK_OK, NULL);
    assert_string_equal(f.target, "/images/reg%3A5000%2Fa%2Fb%3Av1/json");
    res_clear(&r);

    /* Pull: the tag split off (not a registry's port), "latest" made
     * explicit, a digest passed as the tag. */
    const char *pulls[][2] = {
        {"reg:5000/a/b:v1", "fromImage=reg%3A5000%2Fa%2Fb&tag=v1"},
        {"reg:5000/a", "fromImage=reg%3A5000%2Fa&tag=latest"},
        {"busybox", "fromImage=busybox&tag=latest"},
        {"bb:1.36@sha256:abc", "fromImage=bb&tag=sha256%3Aabc"},
        {"reg:5000/bb@sha256:abc",
         "fromImage=reg%3A5000%2Fbb&tag=sha256%3Aabc"},
    };
    for (size_t i = 0; i < sizeof pulls / sizeof pulls[0]; i++) {
        sk_docker_image_pull(f.d, pulls[i][0], res_cb, &r);
        expect(&f, &r, SK_OK, NULL);
        char *want = sk_printf("/images/create?%s", pulls[i][1]);
        assert_string_equal(f.target, want);
        free(want);
        /* The reply is the last progress message. */
        assert_string_equal(
            json_string_value(json_object_get(r.reply, "status")),
            "Downloaded newer image");
        res_clear(&r);
    }

    struct stream s = {0};
    json_t *filters = json_pack("{s:[s]}", "type", "container");
    sk_docker_events_start(f.d, filters, event_cb, end_cb, &s);
    json_decref(filters);
    expect_end(&f, &s, SK_EUNAVAIL, "ended the stream");
    assert_string_equal(
        f.target, "/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D");
    stream_clear(&s);

    struct sk_docker_logs_opts o = {
        .follow = true, .timestamps = true, .tail = 5, .since_s = 100};
    sk_docker_logs_start(f.d, "L9", &o, line_cb, end_cb, &s);
    expect_end(&f, &s, SK_OK, NULL);
    assert_string_equal(f.target, "/containers/L9/logs?stdout=1&stderr=1&"
                                  "follow=1&timestamps=1&tail=5&since=100");
    stream_clear(&s);
    sk_docker_logs_start(f.d, "L9", NULL, line_cb, end_cb, &s);
    expect_end(&f, &s, SK_OK, NULL);
    assert_string_equal(f.target, "/containers/L9/logs?stdout=1&stderr=1&"
                                  "follow=0&timestamps=0&tail=all");
    stream_clear(&s);
    fake_stop(&f);
}

static void test_status_mapping(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f);
    struct res r = {0};
    sk_docker_start(f.d, "c304", res_cb, &r);
    expect(&f, &r, SK_OK, NULL);
    assert_null(r.reply);
    res_clear(&r);
    sk_docker_start(f.d, "c400", res_cb, &r);
    expect(&f, &r, SK_EINVAL,
           "start container \"c400\": dockerd 400: bad parameter");
    res_clear(&r);
    sk_docker_start(f.d, "c409", res_cb, &r);
    expect(&f, &r, SK_ECONFLICT, "start container \"c409\": dockerd 409: ");
    res_clear(&r);
    /* Not JSON: the body's start, on one line. */
    sk_docker_start(f.d, "c500", res_cb, &r);
    expect(&f, &r, SK_EIO, "dockerd 500: oops second line");
    res_clear(&r);
    sk_docker_version(f.d, res_cb, &r);
    expect(&f, &r, SK_OK, NULL);
    assert_string_equal(
        json_string_value(json_object_get(r.reply, "ApiVersion")), "1.41");
    res_clear(&r);
    sk_docker_info(f.d, res_cb, &r);
    expect(&f, &r, SK_EPROTO, "docker info: dockerd sent invalid JSON");
    res_clear(&r);
    sk_docker_inspect(f.d, "big", res_cb, &r);
    expect(&f, &r, SK_ETOOBIG, "8388608");
    res_clear(&r);
    sk_docker_inspect(f.d, "drop", res_cb, &r);
    expect(&f, &r, SK_EUNAVAIL, "inspect container \"drop\": dockerd at ");
    res_clear(&r);
    fake_stop(&f);
}

static void test_pull_errors(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f);
    struct res r = {0};
    sk_docker_image_pull(f.d, "errline", res_cb, &r);
    expect(&f, &r, SK_EUNAVAIL,
           "pull image \"errline\": boom: manifest unknown");
    res_clear(&r);
    sk_docker_image_pull(f.d, "err404:v2", res_cb, &r);
    expect(&f, &r, SK_ENOTFOUND, "pull image \"err404:v2\": not here");
    res_clear(&r);
    fake_stop(&f);
}

static void test_events_stream(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f);
    /* Lines split across reads, a blank line; the stream's end is dockerd
     * going away. */
    struct stream s = {0};
    sk_docker_events_start(f.d, NULL, event_cb, end_cb, &s);
    expect_end(&f, &s, SK_EUNAVAIL, "docker events stream: dockerd at ");
    expect_lines(&s, "0:create|0:start|0:die");
    assert_string_equal(f.target, "/events");
    stream_clear(&s);

    json_t *fl = json_pack("{s:[s]}", "x", "garbage");
    sk_docker_events_start(f.d, fl, event_cb, end_cb, &s);
    expect_end(&f, &s, SK_EPROTO, "invalid JSON");
    expect_lines(&s, "0:a");
    stream_clear(&s);
    json_decref(fl);

    fl = json_pack("{s:[s]}", "x", "huge");
    sk_docker_events_start(f.d, fl, event_cb, end_cb, &s);
    expect_end(&f, &s, SK_ETOOBIG, "1048576");
    expect_lines(&s, "0:a");
    stream_clear(&s);
    json_decref(fl);

    /* Stopped from inside its event callback, on a stream that never
     * ends by itself. */
    fl = json_pack("{s:[s]}", "x", "forever");
    s.stop_after = 1;
    s.events = sk_docker_events_start(f.d, fl, event_cb, end_cb, &s);
    expect_end(&f, &s, SK_ECANCELED, "stopped");
    expect_lines(&s, "0:a");
    stream_clear(&s);
    json_decref(fl);
    fake_stop(&f);
}

static void test_log_frames(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f);
    struct stream s = {0};
    sk_docker_logs_start(f.d, "L1", NULL, line_cb, end_cb, &s);
    expect_end(&f, &s, SK_OK, NULL);
    expect_lines(&s, "1:a|2:e1|1:bc|1:in|2:e2");
    stream_clear(&s);

    sk_docker_logs_start(f.d, "L2", NULL, line_cb, end_cb, &s);
    expect_end(&f, &s, SK_EIO,
               "logs of container \"L2\": dockerd: container gone");
    expect_lines(&s, "1:ok");
    stream_clear(&s);

    sk_docker_logs_start(f.d, "L3", NULL, line_cb, end_cb, &s);
    expect_end(&f, &s, SK_EPROTO, "bad frame header");
    expect_lines(&s, "1:ok");
    stream_clear(&s);

    sk_docker_logs_start(f.d, "L4", NULL, line_cb, end_cb, &s);
    expect_end(&f, &s, SK_EPROTO, "inside a frame");
    stream_clear(&s);

    /* 200000 bytes: pieces of 64 KiB. */
    sk_docker_logs_start(f.d, "L5", NULL, line_cb, end_cb, &s);
    expect_end(&f, &s, SK_OK, NULL);
    expect_lines(&s, "1:<65536>|1:<65536>|1:<65536>|1:<3392>");
    stream_clear(&s);

    /* A TTY: raw, all on stdout, "\r\n" ends a line. */
    sk_docker_logs_start(f.d, "T1", NULL, line_cb, end_cb, &s);
    expect_end(&f, &s, SK_OK, NULL);
    expect_lines(&s, "1:x|1:y|1:z");
    stream_clear(&s);

    sk_docker_logs_start(f.d, "L6", NULL, line_cb, end_cb, &s);
    expect_end(&f, &s, SK_EIO, "dockerd 501: configured logging driver");
    stream_clear(&s);

    /* Refused before any request, still from the loop. */
    int before = f.requests;
    sk_docker_logs_start(f.d, ".", NULL, line_cb, end_cb, &s);
    expect_end(&f, &s, SK_EINVAL, "invalid container");
    assert_int_equal(f.requests, before);
    stream_clear(&s);
    fake_stop(&f);
}

static void test_close_pending(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f);
    struct res r[3] = {{0}};
    struct stream s = {0}, ev = {0};
    sk_docker_inspect(f.d, "hold", res_cb, &r[0]);
    json_t *fl = json_pack("{s:[s]}", "x", "forever");
    sk_docker_events_start(f.d, fl, event_cb, end_cb, &ev);
    json_decref(fl);
    /* Let both reach the server: one waits for its reply, the other
     * streams. */
    sk_test_run_for(&f.loop, 200);
    assert_int_equal(r[0].calls, 0);
    assert_int_equal(ev.n, 1);
    /* One more that is refused (deferred), one that is stopped before its
     * start could run. */
    sk_docker_remove(f.d, "..", true, res_cb, &r[1]);
    struct sk_docker_logs *l =
        sk_docker_logs_start(f.d, "L1", NULL, line_cb, end_cb, &s);
    sk_docker_logs_stop(l);
    sk_docker_close(f.d, client_closed, &f);
    sk_docker_close(f.d, client_closed, &f); /* twice: ignored */
    assert_int_equal(r[0].calls + r[1].calls + ev.ends + s.ends, 0);
    assert_true(sk_test_run_until(&f.loop, client_gone, &f, DEADLINE_MS));
    sk_test_run_for(&f.loop, 20);
    assert_int_equal(f.closes, 1);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].rc, SK_ECANCELED);
        res_clear(&r[i]);
    }
    assert_int_equal(ev.ends, 1);
    assert_int_equal(ev.rc, SK_ECANCELED);
    assert_int_equal(s.ends, 1);
    assert_int_equal(s.rc, SK_ECANCELED);
    stream_clear(&s);
    stream_clear(&ev);
    uv_close((uv_handle_t *)&f.server, server_closed);
    while (f.conns)
        conn_close(f.conns);
    sk_test_run_until(&f.loop, fake_all_closed, &f, DEADLINE_MS);
    free(f.body);
    sk_test_loop_close(&f.loop);
    unlink(f.sock);
    rmdir(f.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_status_mapping),
        cmocka_unit_test(test_pull_errors),
        cmocka_unit_test(test_events_stream),
        cmocka_unit_test(test_log_frames),
        cmocka_unit_test(test_close_pending),
    };
    return cmocka_run_group_tests_name("docker_fake", tests, NULL, NULL);
}
