/* The plain transport, the listener and outgoing connections, on
 * 127.0.0.1 with ephemeral ports. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "skiff/mem.h"
#include "skiff/stream.h"
#include "support.h"

#define MAX_ACCEPTED 8

/* One end of a connection, as the test sees it. */
struct end {
    struct sk_stream *s;
    char *data;
    size_t len, cap;
    int reads;
    int ends;         /* nread < 0 deliveries */
    ssize_t end_code; /* the last one */
    int drains;
    int closes;
    bool echo;         /* write back whatever arrives */
    bool stop_on_read; /* read_stop after each delivery */
};

struct fx {
    uv_loop_t loop;
    struct sk_listener l;
    int accepts, rejects, listener_closes;
    struct sk_err reject;
    struct end srv[MAX_ACCEPTED];
    struct end cli;
    struct sk_connect_req req;
    int connects;
    int connect_status;
};

static void end_read_cb(struct sk_stream *s, ssize_t nread, const char *buf)
{
    struct end *e = s->data;
    /* Nothing may follow the end. */
    assert_int_equal(e->ends, 0);
    if (nread < 0) {
        e->ends++;
        e->end_code = nread;
        return;
    }
    assert_true(nread > 0);
    if (e->len + (size_t)nread > e->cap) {
        e->cap = (e->len + (size_t)nread) * 2;
        e->data = sk_realloc(e->data, e->cap);
    }
    memcpy(e->data + e->len, buf, (size_t)nread);
    e->len += (size_t)nread;
    e->reads++;
    if (e->echo)
        assert_int_equal(sk_stream_write(s, buf, (size_t)nread), 0);
    if (e->stop_on_read)
        sk_stream_read_stop(s);
}

static void unexpected_read_cb(struct sk_stream *s, ssize_t nread,
                               const char *buf)
{
    fail_msg("replaced read callback called (%zd)", nread);
}

static void end_drain_cb(struct sk_stream *s)
{
    struct end *e = s->data;
    assert_int_equal(s->write_queued, 0);
    e->drains++;
}

static void end_close_cb(struct sk_stream *s)
{
    struct end *e = s->data;
    e->closes++;
    e->s = NULL; /* freed after this returns */
}

static bool end_gone(void *ctx)
{
    struct end *e = ctx;
    return e->s == NULL;
}

static bool end_ended(void *ctx)
{
    struct end *e = ctx;
    return e->ends > 0;
}

static void end_attach(struct end *e, struct sk_stream *s)
{
    e->s = s;
    s->data = e;
    s->drain_cb = end_drain_cb;
}

static void end_close(struct end *e)
{
    if (e->s && !e->s->closing)
        sk_stream_close(e->s, end_close_cb);
}

static void accept_cb(struct sk_listener *l, struct sk_stream *s)
{
    struct fx *f = l->data;
    assert_true(f->accepts < MAX_ACCEPTED);
    end_attach(&f->srv[f->accepts++], s);
}

static void reject_cb(struct sk_listener *l, const struct sk_err *err)
{
    struct fx *f = l->data;
    f->rejects++;
    sk_err_copy(&f->reject, err);
}

static void listener_close_cb(struct sk_listener *l)
{
    struct fx *f = l->data;
    f->listener_closes++;
}

static void connect_cb(struct sk_connect_req *req, struct sk_stream *s,
                       int status)
{
    struct fx *f = req->data;
    f->connects++;
    f->connect_status = status;
    if (s)
        end_attach(&f->cli, s);
    else
        assert_true(status < 0);
}

static void fx_init(struct fx *f)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
}

static void fx_listen(struct fx *f, unsigned max_unauthenticated)
{
    struct sk_listener_config cfg = {
        .host = "127.0.0.1",
        .port = 0,
        .max_unauthenticated = max_unauthenticated,
        .accept_cb = accept_cb,
        .reject_cb = reject_cb,
        .data = f,
    };
    struct sk_err err;
    assert_int_equal(sk_listener_start(&f->l, &f->loop, &cfg, &err), 0);
    assert_true(sk_listener_port(&f->l) > 0);
}

static void fx_connect_to(struct fx *f, int port)
{
    struct sk_connect_config cfg = {.host = "127.0.0.1", .port = port};
    f->req.data = f;
    assert_int_equal(sk_connect(&f->req, &f->loop, &cfg, connect_cb), 0);
}

static bool connected(void *ctx)
{
    struct fx *f = ctx;
    return f->connects == 1 && f->accepts == 1;
}

/* A listener and one connection to it. */
static void fx_pair(struct fx *f)
{
    fx_init(f);
    fx_listen(f, 0);
    fx_connect_to(f, sk_listener_port(&f->l));
    assert_true(sk_test_run_until(&f->loop, connected, f, 5000));
    assert_int_equal(f->connect_status, 0);
    assert_non_null(f->cli.s);
    assert_non_null(f->srv[0].s);
    assert_false(f->cli.s->peer.authenticated);
}

static bool all_closed(void *ctx)
{
    struct fx *f = ctx;
    if (f->cli.s)
        return false;
    for (int i = 0; i < f->accepts; i++)
        if (f->srv[i].s)
            return false;
    return f->listener_closes == 1;
}

/* Closes everything still open and the loop; proves nothing leaked. */
static void fx_done(struct fx *f)
{
    end_close(&f->cli);
    for (int i = 0; i < f->accepts; i++)
        end_close(&f->srv[i]);
    if (f->l.impl)
        sk_listener_close(&f->l, listener_close_cb);
    else
        f->listener_closes = 1;
    assert_true(sk_test_run_until(&f->loop, all_closed, f, 5000));
    sk_test_loop_close(&f->loop);
    free(f->cli.data);
    for (int i = 0; i < MAX_ACCEPTED; i++)
        free(f->srv[i].data);
}

static char *pattern(size_t len, uint32_t seed)
{
    char *p = sk_malloc(len);
    uint32_t x = seed | 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (char)x;
    }
    return p;
}

struct want_len {
    struct end *e;
    size_t len;
};

static bool got_len(void *ctx)
{
    struct want_len *w = ctx;
    return w->e->len >= w->len;
}

static bool cli_drained(void *ctx)
{
    struct fx *f = ctx;
    return f->cli.len >= 8u << 20 && f->cli.s->write_queued == 0 &&
           f->srv[0].s->write_queued == 0 && f->cli.drains > 0;
}

static void plain_echo_large(void **state)
{
    struct fx f;
    fx_pair(&f);
    assert_string_not_equal(f.cli.s->peer.addr, "");
    assert_non_null(strstr(f.srv[0].s->peer.addr, "127.0.0.1:"));
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", sk_listener_port(&f.l));
    assert_string_equal(f.cli.s->peer.addr, want);

    f.srv[0].echo = true;
    sk_stream_read_start(f.srv[0].s, end_read_cb);
    sk_stream_read_start(f.cli.s, end_read_cb);

    const size_t total = 8u << 20, piece = 1u << 20;
    char *data = pattern(total, 42);
    for (size_t off = 0; off < total; off += piece)
        assert_int_equal(sk_stream_write(f.cli.s, data + off, piece), 0);
    /* Copied and counted until the socket took it. */
    assert_int_equal(f.cli.s->write_queued, total);
    assert_int_equal(sk_stream_write(f.cli.s, "", 0), 0);

    assert_true(sk_test_run_until(&f.loop, cli_drained, &f, 20000));
    assert_int_equal(f.cli.len, total);
    assert_memory_equal(f.cli.data, data, total);
    assert_int_equal(f.srv[0].len, total);
    assert_true(f.srv[0].drains > 0);
    assert_int_equal(f.cli.ends, 0);
    free(data);
    fx_done(&f);
}

static bool srv_ended(void *ctx)
{
    struct fx *f = ctx;
    return f->srv[0].ends > 0;
}

static bool cli_ended(void *ctx)
{
    struct fx *f = ctx;
    return f->cli.ends > 0;
}

static void eof_after_data(void **state)
{
    struct fx f;
    fx_pair(&f);
    /* A second read_start replaces the callback. */
    sk_stream_read_start(f.srv[0].s, unexpected_read_cb);
    sk_stream_read_start(f.srv[0].s, end_read_cb);
    assert_int_equal(sk_stream_write(f.cli.s, "hello", 5), 0);
    sk_stream_close(f.cli.s, end_close_cb);
    /* Never inside sk_stream_close. */
    assert_int_equal(f.cli.closes, 0);
    assert_true(sk_test_run_until(&f.loop, srv_ended, &f, 5000));
    assert_int_equal(f.srv[0].len, 5);
    assert_memory_equal(f.srv[0].data, "hello", 5);
    assert_int_equal(f.srv[0].end_code, UV_EOF);
    /* Once, then nothing more. */
    sk_test_run_for(&f.loop, 50);
    assert_int_equal(f.srv[0].ends, 1);
    assert_int_equal(f.cli.closes, 1);
    fx_done(&f);
}

static void close_from_server(void **state)
{
    struct fx f;
    fx_pair(&f);
    sk_stream_read_start(f.cli.s, end_read_cb);
    struct sk_stream *s = f.srv[0].s;
    sk_stream_close(s, end_close_cb);
    assert_int_equal(f.srv[0].closes, 0);
    /* A second close is a no-op; writes after close are refused. */
    sk_stream_close(s, NULL);
    assert_int_equal(sk_stream_write(s, "x", 1), UV_ECANCELED);
    assert_true(sk_test_run_until(&f.loop, cli_ended, &f, 5000));
    assert_int_equal(f.cli.end_code, UV_EOF);
    assert_int_equal(f.srv[0].closes, 1);
    /* After the end, writes are refused too. */
    assert_int_equal(sk_stream_write(f.cli.s, "x", 1), UV_ECANCELED);
    sk_test_run_for(&f.loop, 30);
    assert_int_equal(f.cli.ends, 1);
    fx_done(&f);
}

static bool srv_reads_1(void *ctx)
{
    struct fx *f = ctx;
    return f->srv[0].reads >= 1;
}

static void read_stop_pauses(void **state)
{
    struct fx f;
    fx_pair(&f);
    f.srv[0].stop_on_read = true;
    sk_stream_read_start(f.srv[0].s, end_read_cb);
    assert_int_equal(sk_stream_write(f.cli.s, "a", 1), 0);
    assert_true(sk_test_run_until(&f.loop, srv_reads_1, &f, 5000));
    assert_int_equal(f.srv[0].len, 1);

    /* Data and then the end arrive while reading is stopped: neither is
     * delivered until reading resumes. */
    assert_int_equal(sk_stream_write(f.cli.s, "bcd", 3), 0);
    sk_stream_close(f.cli.s, end_close_cb);
    sk_test_run_for(&f.loop, 100);
    assert_int_equal(f.srv[0].reads, 1);
    assert_int_equal(f.srv[0].ends, 0);

    f.srv[0].stop_on_read = false;
    sk_stream_read_start(f.srv[0].s, end_read_cb);
    assert_true(sk_test_run_until(&f.loop, srv_ended, &f, 5000));
    assert_int_equal(f.srv[0].len, 4);
    assert_memory_equal(f.srv[0].data, "abcd", 4);
    assert_int_equal(f.srv[0].end_code, UV_EOF);
    fx_done(&f);
}

static bool cli_queue_empty(void *ctx)
{
    struct fx *f = ctx;
    return f->cli.s->write_queued == 0;
}

/* A failed write surfaces once through the read callback, even when it
 * happened while reading was stopped. */
static void write_failure_through_read(void **state)
{
    struct fx f;
    fx_pair(&f);
    /* The server goes away without reading: the client's writes fail. */
    sk_stream_close(f.srv[0].s, end_close_cb);
    const size_t total = 4u << 20;
    char *data = pattern(total, 7);
    int rc = 0;
    for (int round = 0; round < 50 && rc == 0; round++) {
        rc = sk_stream_write(f.cli.s, data, total);
        if (rc == 0)
            assert_true(sk_test_run_until(&f.loop, cli_queue_empty, &f, 10000));
    }
    free(data);
    assert_int_equal(rc, UV_ECANCELED);
    assert_int_equal(f.cli.s->write_queued, 0);
    assert_int_equal(f.cli.ends, 0);
    assert_int_equal(f.cli.drains, 0);

    sk_stream_read_start(f.cli.s, end_read_cb);
    /* Not inside read_start. */
    assert_int_equal(f.cli.ends, 0);
    assert_true(sk_test_run_until(&f.loop, cli_ended, &f, 5000));
    assert_true(f.cli.end_code < 0);
    assert_true(f.cli.end_code != UV_EOF);
    sk_test_run_for(&f.loop, 30);
    assert_int_equal(f.cli.ends, 1);
    fx_done(&f);
}

static bool connect_done(void *ctx)
{
    struct fx *f = ctx;
    return f->connects > 0;
}

static void connect_refused(void **state)
{
    struct fx f;
    fx_init(&f);
    /* A bound socket that does not listen: its port refuses connections
     * and cannot be taken by anyone else meanwhile. */
    uv_tcp_t bound;
    struct sockaddr_in sa;
    uv_tcp_init(&f.loop, &bound);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(uv_tcp_bind(&bound, (struct sockaddr *)&sa, 0), 0);
    int len = sizeof sa;
    uv_tcp_getsockname(&bound, (struct sockaddr *)&sa, &len);
    int port = ntohs(sa.sin_port);

    fx_connect_to(&f, port);
    assert_true(sk_test_run_until(&f.loop, connect_done, &f, 5000));
    assert_int_equal(f.connect_status, UV_ECONNREFUSED);
    assert_int_equal(f.req.err.code, SK_EUNAVAIL);
    char want[128];
    snprintf(want, sizeof want, "127.0.0.1:%d: connection refused", port);
    assert_string_equal(f.req.err.msg, want);
    assert_null(f.cli.s);
    /* A cancel after the callback is a no-op. */
    sk_connect_cancel(&f.req);
    sk_test_run_for(&f.loop, 20);
    assert_int_equal(f.connects, 1);

    uv_close((uv_handle_t *)&bound, NULL);
    fx_done(&f);
}

static void connect_cancel(void **state)
{
    struct fx f;
    fx_init(&f);
    fx_listen(&f, 0);
    fx_connect_to(&f, sk_listener_port(&f.l));
    sk_connect_cancel(&f.req);
    /* Not inside sk_connect_cancel, and only once. */
    assert_int_equal(f.connects, 0);
    sk_connect_cancel(&f.req);
    assert_true(sk_test_run_until(&f.loop, connect_done, &f, 5000));
    assert_int_equal(f.connect_status, UV_ECANCELED);
    assert_int_equal(f.req.err.code, SK_ECANCELED);
    assert_non_null(strstr(f.req.err.msg, "connect canceled"));
    sk_connect_cancel(&f.req);
    sk_test_run_for(&f.loop, 50);
    assert_int_equal(f.connects, 1);
    assert_null(f.cli.s);
    fx_done(&f);
}

#define N_HANGING 8

struct hanging {
    struct sk_connect_req req[N_HANGING];
    int calls[N_HANGING];
    int status[N_HANGING];
    struct sk_stream *s[N_HANGING];
    int done;
};

static void hanging_cb(struct sk_connect_req *req, struct sk_stream *s,
                       int status)
{
    struct hanging *h = req->data;
    int i = (int)(req - h->req);
    h->calls[i]++;
    h->status[i] = status;
    h->s[i] = s;
    h->done++;
}

static bool all_hanging_done(void *ctx)
{
    struct hanging *h = ctx;
    return h->done == N_HANGING;
}

static void stream_closed_noop(struct sk_stream *s)
{
    (void)s;
}

static void never_accept_cb(uv_stream_t *server, int status)
{
    (void)server;
    (void)status;
}

static void connect_timeout(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    /* A listener that never accepts, with the smallest backlog: once its
     * queue is full the kernel drops further SYNs and connects hang. */
    uv_tcp_t srv;
    struct sockaddr_in sa;
    uv_tcp_init(&loop, &srv);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(uv_tcp_bind(&srv, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&srv, 1, never_accept_cb), 0);
    int len = sizeof sa;
    uv_tcp_getsockname(&srv, (struct sockaddr *)&sa, &len);

    struct hanging h;
    memset(&h, 0, sizeof h);
    struct sk_connect_config cfg = {
        .host = "127.0.0.1",
        .port = ntohs(sa.sin_port),
        .timeout_ms = 300,
    };
    for (int i = 0; i < N_HANGING; i++) {
        h.req[i].data = &h;
        assert_int_equal(sk_connect(&h.req[i], &loop, &cfg, hanging_cb), 0);
    }
    assert_true(sk_test_run_until(&loop, all_hanging_done, &h, 5000));
    sk_test_run_for(&loop, 400);
    int timeouts = 0;
    for (int i = 0; i < N_HANGING; i++) {
        assert_int_equal(h.calls[i], 1);
        if (h.status[i] == UV_ETIMEDOUT) {
            timeouts++;
            assert_null(h.s[i]);
            assert_int_equal(h.req[i].err.code, SK_ETIMEDOUT);
            assert_non_null(
                strstr(h.req[i].err.msg, "connect timed out after 300 ms"));
        } else {
            assert_int_equal(h.status[i], 0);
            sk_stream_close(h.s[i], stream_closed_noop);
        }
    }
    assert_true(timeouts > 0);
    uv_close((uv_handle_t *)&srv, NULL);
    sk_test_loop_close(&loop);
}

static void bad_addresses(void **state)
{
    struct fx f;
    fx_init(&f);
    struct sk_connect_config cfg = {.host = "not-an-ip", .port = 80};
    f.req.data = &f;
    assert_int_equal(sk_connect(&f.req, &f.loop, &cfg, connect_cb), UV_EINVAL);
    assert_int_equal(f.req.err.code, SK_EINVAL);
    assert_non_null(strstr(f.req.err.msg, "not-an-ip:80"));

    struct sk_listener_config lcfg = {
        .host = "300.1.1.1", .port = 1, .accept_cb = accept_cb};
    struct sk_listener l;
    struct sk_err err;
    assert_int_equal(sk_listener_start(&l, &f.loop, &lcfg, &err), UV_EINVAL);
    assert_non_null(strstr(err.msg, "300.1.1.1:1"));

    /* Address in use: named, and nothing left open. */
    fx_listen(&f, 0);
    int port = sk_listener_port(&f.l);
    lcfg.host = "127.0.0.1";
    lcfg.port = port;
    assert_true(sk_listener_start(&l, &f.loop, &lcfg, &err) < 0);
    char want[128];
    snprintf(want, sizeof want, "127.0.0.1:%d: address already in use", port);
    assert_string_equal(err.msg, want);
    sk_test_run_for(&f.loop, 10);
    assert_int_equal(f.connects, 0);
    fx_done(&f);
}

static bool two_events(void *ctx)
{
    struct fx *f = ctx;
    return f->rejects == 1 && f->connects == 2;
}

static bool accepted_2(void *ctx)
{
    struct fx *f = ctx;
    return f->accepts == 2;
}

static void connection_cap(void **state)
{
    struct fx f;
    fx_init(&f);
    fx_listen(&f, 1);
    int port = sk_listener_port(&f.l);
    fx_connect_to(&f, port);
    assert_true(sk_test_run_until(&f.loop, connected, &f, 5000));
    struct end first = f.cli;
    first.s->data = &first;
    memset(&f.cli, 0, sizeof f.cli);

    /* A second connection over the cap is refused (its TCP connect may
     * well have succeeded; then it ends at once). A plain stream has no
     * certificate: it counts against max_unauthenticated. */
    fx_connect_to(&f, port);
    assert_true(sk_test_run_until(&f.loop, two_events, &f, 5000));
    assert_int_equal(f.reject.code, SK_EUNAVAIL);
    assert_non_null(strstr(f.reject.msg,
                           "too many connections without a client "
                           "certificate (max 1)"));
    assert_memory_equal(f.reject.msg, "127.0.0.1:", 10);
    assert_int_equal(f.accepts, 1);
    if (f.cli.s) {
        sk_stream_read_start(f.cli.s, end_read_cb);
        assert_true(sk_test_run_until(&f.loop, end_ended, &f.cli, 5000));
        sk_stream_close(f.cli.s, end_close_cb);
        assert_true(sk_test_run_until(&f.loop, end_gone, &f.cli, 5000));
    }
    free(f.cli.data);
    memset(&f.cli, 0, sizeof f.cli);

    /* Once the first stream is closed, its slot is free again. */
    sk_stream_close(f.srv[0].s, end_close_cb);
    sk_stream_close(first.s, end_close_cb);
    assert_true(sk_test_run_until(&f.loop, end_gone, &first, 5000));
    assert_true(sk_test_run_until(&f.loop, end_gone, &f.srv[0], 5000));
    f.connects = 0;
    fx_connect_to(&f, port);
    assert_true(sk_test_run_until(&f.loop, accepted_2, &f, 5000));
    assert_int_equal(f.rejects, 1);
    fx_done(&f);
}

static void pipe_stream(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_os_sock_t fds[2];
    assert_int_equal(uv_socketpair(SOCK_STREAM, 0, fds, 0, 0), 0);
    struct end a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    uv_pipe_t *pa = sk_malloc(sizeof *pa), *pb = sk_malloc(sizeof *pb);
    uv_pipe_init(&loop, pa, 0);
    uv_pipe_init(&loop, pb, 0);
    assert_int_equal(uv_pipe_open(pa, fds[0]), 0);
    assert_int_equal(uv_pipe_open(pb, fds[1]), 0);
    end_attach(&a, sk_plain_stream_new(&loop, (uv_stream_t *)pa));
    end_attach(&b, sk_plain_stream_new(&loop, (uv_stream_t *)pb));
    assert_string_equal(a.s->peer.addr, "unix");
    assert_false(a.s->peer.authenticated);

    b.echo = true;
    sk_stream_read_start(b.s, end_read_cb);
    sk_stream_read_start(a.s, end_read_cb);
    const size_t total = 3u << 20;
    char *data = pattern(total, 3);
    assert_int_equal(sk_stream_write(a.s, data, total), 0);
    struct want_len w = {&a, total};
    assert_true(sk_test_run_until(&loop, got_len, &w, 10000));
    assert_memory_equal(a.data, data, total);
    free(data);

    sk_stream_close(a.s, end_close_cb);
    assert_true(sk_test_run_until(&loop, end_ended, &b, 5000));
    assert_int_equal(b.end_code, UV_EOF);
    sk_stream_close(b.s, end_close_cb);
    sk_test_loop_close(&loop);
    assert_int_equal(a.closes, 1);
    assert_int_equal(b.closes, 1);
    free(a.data);
    free(b.data);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_echo_large),
        cmocka_unit_test(eof_after_data),
        cmocka_unit_test(close_from_server),
        cmocka_unit_test(read_stop_pauses),
        cmocka_unit_test(write_failure_through_read),
        cmocka_unit_test(connect_refused),
        cmocka_unit_test(connect_cancel),
        cmocka_unit_test(connect_timeout),
        cmocka_unit_test(bad_addresses),
        cmocka_unit_test(connection_cap),
        cmocka_unit_test(pipe_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
