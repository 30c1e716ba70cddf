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
#include "fake_dockerd.h"
#include "skiff/docker.h"
#include "skiff/mem.h"

#define DEADLINE_MS 10000
#define MAX_LINES 64

/* ---- The fake dockerd, scripted ---- */

struct fake {
    uv_loop_t loop;
    struct fake_dockerd dk;
    struct sk_docker *d;
    int closes;
};

static bool path_is(const char *target, const char *path)
{
    size_t n = strlen(path);
    return strncmp(target, path, n) == 0 &&
           (target[n] == '\0' || target[n] == '?');
}

static void route(struct fake_dockerd *dk, struct fake_conn *c, const char *t)
{
    if (path_is(t, "/version")) {
        fake_reply_json(c, 200, "{\"ApiVersion\":\"1.41\"}");
    } else if (path_is(t, "/info")) {
        fake_reply_json(c, 200, "{not json");
    } else if (path_is(t, "/containers/json")) {
        fake_reply_json(c, 200, "[]");
    } else if (path_is(t, "/containers/c304/start")) {
        fake_reply(c, 304, "text/plain", NULL, 0);
    } else if (path_is(t, "/containers/c400/start")) {
        fake_reply_json(c, 400, "{\"message\":\"bad parameter\"}");
    } else if (path_is(t, "/containers/c500/start")) {
        fake_reply(c, 500, "text/plain", "oops\nsecond line\n", 17);
    } else if (path_is(t, "/containers/c409/start")) {
        fake_reply(c, 409, "application/json", NULL, 0);
    } else if (path_is(t, "/containers/drop/json")) {
        fake_conn_drop(c);
    } else if (path_is(t, "/containers/hold/json")) {
        /* never answers */
    } else if (path_is(t, "/containers/big/json")) {
        size_t n = ((size_t)8 << 20) + 100;
        char *body = sk_malloc(n);
        memset(body, ' ', n);
        body[0] = '[';
        body[n - 1] = ']';
        fake_reply(c, 200, "application/json", body, n);
        free(body);
    } else if (path_is(t, "/images/create")) {
        fake_stream_begin(c);
        if (strstr(t, "fromImage=errline")) {
            fake_seg_str(c, "{\"status\":\"Pulling from errline\"}\r\n{\"sta");
            fake_seg_str(c, "tus\":\"Waiting\"}\r\n");
            fake_seg_str(c, "{\"errorDetail\":{\"message\":\"boom\"},"
                            "\"error\":\"boom: manifest unknown\"}\r\n");
        } else if (strstr(t, "fromImage=err404")) {
            fake_seg_str(c, "{\"errorDetail\":{\"code\":404,\"message\":\"x\"},"
                            "\"error\":\"not here\"}\r\n");
        } else {
            fake_seg_str(c, "{\"status\":\"Pulling\"}\r\n");
            fake_seg_str(c, "{\"status\":\"Downloaded newer image\"}");
        }
        fake_stream_go(c);
    } else if (path_is(t, "/events")) {
        fake_stream_begin(c);
        if (strstr(t, "huge")) {
            char *big = sk_malloc((size_t)1 << 20);
            memset(big, ' ', (size_t)1 << 20);
            fake_seg_str(c, "{\"Action\":\"a\"}\n{\"Action\":");
            fake_seg_add(c, big, (size_t)1 << 20);
            fake_seg_str(c, "\"b\"}\n");
            free(big);
        } else if (strstr(t, "garbage")) {
            fake_seg_str(c, "{\"Action\":\"a\"}\n{oops}\n{\"Action\":\"c\"}\n");
        } else if (strstr(t, "forever")) {
            fake_seg_str(c, "{\"Action\":\"a\"}\n");
            fake_stream_keep_open(c);
        } else {
            fake_seg_str(c, "{\"Action\":\"create\"}\n\n{\"Act");
            fake_seg_str(c, "ion\":\"start\"}");
            fake_seg_str(c, "\n{\"Action\":\"die\"}\n");
        }
        fake_stream_go(c);
    } else if (strncmp(t, "/containers/", 12) == 0 && strstr(t, "/json")) {
        bool tty = strncmp(t, "/containers/T", 13) == 0;
        fake_reply_json(c, 200,
                        tty ? "{\"Config\":{\"Tty\":true}}"
                            : "{\"Config\":{\"Tty\":false}}");
    } else if (path_is(t, "/containers/L1/logs")) {
        fake_stream_begin(c);
        /* Frames split inside their header and payload, lines across
         * frames, an empty frame, stdin echoed (stream 0). */
        unsigned char f1[] = {1, 0, 0, 0, 0, 0, 0, 3, 'a', '\n', 'b'};
        fake_seg_add(c, f1, 3);
        fake_seg_add(c, f1 + 3, 7);
        fake_seg_add(c, f1 + 10, 1);
        fake_seg_frame(c, 2, "e1\n", 3);
        fake_seg_frame(c, 1, "", 0);
        fake_seg_frame(c, 1, "c\n", 2);
        fake_seg_frame(c, 0, "in\n", 3);
        fake_seg_frame(c, 2, "e2", 2); /* no newline at the end */
        fake_stream_go(c);
    } else if (path_is(t, "/containers/L2/logs")) {
        fake_stream_begin(c);
        fake_seg_frame(c, 1, "ok\n", 3);
        fake_seg_frame(c, 3, "container gone\n", 15);
        fake_seg_frame(c, 1, "never\n", 6);
        fake_stream_go(c);
    } else if (path_is(t, "/containers/L3/logs")) {
        fake_stream_begin(c);
        fake_seg_frame(c, 1, "ok\n", 3);
        fake_seg_str(c, "plain text, no frames\n");
        fake_stream_go(c);
    } else if (path_is(t, "/containers/L4/logs")) {
        fake_stream_begin(c);
        unsigned char f[] = {1, 0, 0, 0, 0, 0, 0, 10, 'a', 'b', 'c'};
        fake_seg_add(c, f, sizeof f);
        fake_stream_go(c);
    } else if (path_is(t, "/containers/L5/logs")) {
        fake_stream_begin(c);
        size_t n = 200000;
        char *big = sk_malloc(n + 1);
        memset(big, 'y', n);
        big[n] = '\n';
        fake_seg_frame(c, 1, big, n + 1);
        free(big);
        fake_stream_go(c);
    } else if (path_is(t, "/containers/T1/logs")) {
        fake_stream_begin(c);
        fake_seg_str(c, "x\r\ny\r");
        fake_seg_str(c, "\nz");
        fake_stream_go(c);
    } else if (path_is(t, "/containers/L6/logs")) {
        fake_reply_json(c, 501,
                        "{\"message\":\"configured logging driver does "
                        "not support reading\"}");
    } else {
        /* Everything else: 201/204 with what was asked, for checks. */
        fake_reply(c, 204, "text/plain", NULL, 0);
    }
}

static void fake_start(struct fake *f)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    fake_dockerd_start(&f->dk, &f->loop, route, f);
    char *url = sk_printf("unix://%s", f->dk.sock);
    struct sk_err err;
    f->d = sk_docker_new(&f->loop, url, &err);
    free(url);
    assert_non_null(f->d);
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
    return f->closes > 0 && fake_dockerd_closed(&f->dk);
}

static void fake_stop(struct fake *f)
{
    sk_docker_close(f->d, client_closed, f);
    assert_int_equal(f->closes, 0);
    fake_dockerd_close(&f->dk);
    assert_true(sk_test_run_until(&f->loop, fake_all_closed, f, DEADLINE_MS));
    assert_int_equal(f->closes, 1);
    sk_test_loop_close(&f->loop);
    fake_dockerd_free(&f->dk);
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
    assert_string_equal(f.dk.method, "POST");
    assert_string_equal(f.dk.target, "/containers/create?name=a%20b%2Fc%3F%26");
    assert_string_equal(f.dk.body, "{\"Image\":\"bb\"}");
    assert_string_equal(f.dk.ctype, "application/json");
    res_clear(&r);

    sk_docker_stop(f.d, "web.1", 3, res_cb, &r);
    expect(&f, &r, SK_OK, NULL);
    assert_string_equal(f.dk.target, "/containers/web.1/stop?t=3");
    res_clear(&r);

    sk_docker_kill(f.d, "web.1", "SIGTERM", res_cb, &r);
    expect(&f, &r, SK_OK, NULL);
    assert_string_equal(f.dk.target, "/containers/web.1/kill?signal=SIGTERM");
    res_clear(&r);

    sk_docker_remove(f.d, "web.1", true, res_cb, &r);
    expect(&f, &r, SK_OK, NULL);
    assert_string_equal(f.dk.method, "DELETE");
    assert_string_equal(f.dk.target, "/containers/web.1?force=1&v=1");
    res_clear(&r);

    sk_docker_list(f.d, "skiff.task=a b", res_cb, &r);
    expect(&f, &r, SK_OK, NULL);
    assert_string_equal(f.dk.method, "GET");
    assert_string_equal(f.dk.target,
                        "/containers/json?all=1&filters=%7B%22label%22%3A%5B%"
                        "22skiff.task%3Da%20b%22%5D%7D");
    res_clear(&r);

    sk_docker_list(f.d, NULL, res_cb, &r);
    expect(&f, &r, SK_OK, NULL);
    assert_string_equal(f.dk.target, "/containers/json?all=1");
    res_clear(&r);

    sk_docker_image_inspect(f.d, "reg:5000/a/b:v1", res_cb, &r);
    expect(&f, &r, SK_OK, NULL);
    assert_string_equal(f.dk.target, "/images/reg%3A5000%2Fa%2Fb%3Av1/json");
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
        assert_string_equal(f.dk.target, want);
        free(want);
        /* The reply is the last progress message. */
        assert_string_equal(
            json_string_value(json_object_get(r.reply, "status")),
            "Downloaded newer image");
        res_clear(&r);
    }

    /* Networks. */
    json_t *nb =
        json_pack("{s:s, s:s}", "Name", "skiff-back", "Driver", "bridge");
    sk_docker_network_create(f.d, nb, res_cb, &r);
    json_decref(nb);
    expect(&f, &r, SK_OK, NULL);
    assert_string_equal(f.dk.method, "POST");
    assert_string_equal(f.dk.target, "/networks/create");
    assert_string_equal(f.dk.body,
                        "{\"Name\":\"skiff-back\",\"Driver\":\"bridge\"}");
    res_clear(&r);
    sk_docker_network_list(f.d, "skiff.network.id", res_cb, &r);
    expect(&f, &r, SK_OK, NULL);
    assert_string_equal(f.dk.method, "GET");
    assert_string_equal(f.dk.target, "/networks?filters=%7B%22label%22%3A%5B%"
                                     "22skiff.network.id%22%5D%7D");
    res_clear(&r);
    sk_docker_network_remove(f.d, "skiff-back", res_cb, &r);
    expect(&f, &r, SK_OK, NULL);
    assert_string_equal(f.dk.method, "DELETE");
    assert_string_equal(f.dk.target, "/networks/skiff-back");
    res_clear(&r);
    json_t *ep =
        json_pack("{s:{s:s}}", "IPAMConfig", "IPv4Address", "10.0.1.5");
    sk_docker_network_connect(f.d, "skiff-back", "c1", ep, res_cb, &r);
    json_decref(ep);
    expect(&f, &r, SK_OK, NULL);
    assert_string_equal(f.dk.method, "POST");
    assert_string_equal(f.dk.target, "/networks/skiff-back/connect");
    assert_string_equal(f.dk.body,
                        "{\"Container\":\"c1\",\"EndpointConfig\":{"
                        "\"IPAMConfig\":{\"IPv4Address\":\"10.0.1.5\"}}}");
    res_clear(&r);
    sk_docker_network_remove(f.d, "..", res_cb, &r);
    expect(&f, &r, SK_EINVAL, "remove network \"..\": invalid network");
    res_clear(&r);

    struct stream s = {0};
    json_t *filters = json_pack("{s:[s]}", "type", "container");
    sk_docker_events_start(f.d, filters, event_cb, end_cb, &s);
    json_decref(filters);
    expect_end(&f, &s, SK_EUNAVAIL, "ended the stream");
    assert_string_equal(
        f.dk.target,
        "/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D");
    stream_clear(&s);

    struct sk_docker_logs_opts o = {
        .follow = true, .timestamps = true, .tail = 5, .since_s = 100};
    sk_docker_logs_start(f.d, "L9", &o, line_cb, end_cb, &s);
    expect_end(&f, &s, SK_OK, NULL);
    assert_string_equal(f.dk.target, "/containers/L9/logs?stdout=1&stderr=1&"
                                     "follow=1&timestamps=1&tail=5&since=100");
    stream_clear(&s);
    sk_docker_logs_start(f.d, "L9", NULL, line_cb, end_cb, &s);
    expect_end(&f, &s, SK_OK, NULL);
    assert_string_equal(f.dk.target, "/containers/L9/logs?stdout=1&stderr=1&"
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
    assert_string_equal(f.dk.target, "/events");
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
    int before = f.dk.requests;
    sk_docker_logs_start(f.d, ".", NULL, line_cb, end_cb, &s);
    expect_end(&f, &s, SK_EINVAL, "invalid container");
    assert_int_equal(f.dk.requests, before);
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
    fake_dockerd_close(&f.dk);
    sk_test_run_until(&f.loop, fake_all_closed, &f, DEADLINE_MS);
    sk_test_loop_close(&f.loop);
    fake_dockerd_free(&f.dk);
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
