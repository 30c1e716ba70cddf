/* Mutual TLS streams: verification, identities, refusals with their
 * messages, bulk data, backpressure, certificate rotation and the
 * listener's handshake bookkeeping. Throwaway CAs, 127.0.0.1, port 0. */
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
#include "skiff/pki.h"
#include "skiff/stream.h"
#include "skiff/tls.h"
#include "support.h"

#define MAX_ACCEPTED 8
#define DAY_MS (24LL * 3600 * 1000)

/* ---- Certificates, made once for the whole group ---- */

struct cert {
    char *pem, *key;
};

static struct {
    struct sk_test_ca ca;       /* the cluster's */
    struct sk_test_ca other;    /* another cluster's */
    struct sk_test_ca impostor; /* same cluster ID, another key */
    struct cert m1;             /* manager m1 */
    struct cert m1_renewed;     /* manager m1-renewed */
    struct cert w9;             /* worker w9, acting as a server */
    struct cert w1;             /* worker w1, the usual client */
    struct cert expired;        /* worker, expired an hour ago */
    struct cert foreign;        /* worker signed by `other` */
    struct cert forged;         /* worker signed by `impostor` */
    struct cert foreign_server; /* manager signed by `other` */
} P;

static void cert_new(const struct sk_test_ca *ca, const char *node,
                     const char *role, int64_t validity_ms, struct cert *c)
{
    sk_test_cert_new(ca, node, role, validity_ms, &c->pem, &c->key);
}

static void cert_free(struct cert *c)
{
    free(c->pem);
    free(c->key);
}

static int group_setup(void **state)
{
    sk_test_ca_new(&P.ca, "cluster-a");
    sk_test_ca_new(&P.other, "cluster-b");
    sk_test_ca_new(&P.impostor, "cluster-a");
    cert_new(&P.ca, "m1", "manager", 30 * DAY_MS, &P.m1);
    cert_new(&P.ca, "m1-renewed", "manager", 60 * DAY_MS, &P.m1_renewed);
    cert_new(&P.ca, "w9", "worker", 30 * DAY_MS, &P.w9);
    cert_new(&P.ca, "w1", "worker", 10 * DAY_MS, &P.w1);
    cert_new(&P.ca, "w2", "worker", -3600 * 1000, &P.expired);
    cert_new(&P.other, "w3", "worker", 30 * DAY_MS, &P.foreign);
    cert_new(&P.impostor, "w4", "worker", 30 * DAY_MS, &P.forged);
    cert_new(&P.other, "m1", "manager", 30 * DAY_MS, &P.foreign_server);
    return 0;
}

static int group_teardown(void **state)
{
    cert_free(&P.m1);
    cert_free(&P.m1_renewed);
    cert_free(&P.w9);
    cert_free(&P.w1);
    cert_free(&P.expired);
    cert_free(&P.foreign);
    cert_free(&P.forged);
    cert_free(&P.foreign_server);
    sk_test_ca_free(&P.ca);
    sk_test_ca_free(&P.other);
    sk_test_ca_free(&P.impostor);
    return 0;
}

static struct sk_tls_ctx *server_ctx(const struct cert *c, bool require)
{
    struct sk_tls_config cfg = {
        .ca_pem = P.ca.cert_pem,
        .cert_pem = c->pem,
        .key_pem = c->key,
        .server = true,
        .require_peer_cert = require,
    };
    struct sk_err err;
    struct sk_tls_ctx *ctx = sk_tls_ctx_new(&cfg, &err);
    if (!ctx)
        fail_msg("server context: %s", err.msg);
    return ctx;
}

/* c == NULL: a client without a certificate. */
static struct sk_tls_ctx *client_ctx(const struct cert *c)
{
    struct sk_tls_config cfg = {
        .ca_pem = P.ca.cert_pem,
        .cert_pem = c ? c->pem : NULL,
        .key_pem = c ? c->key : NULL,
    };
    struct sk_err err;
    struct sk_tls_ctx *ctx = sk_tls_ctx_new(&cfg, &err);
    if (!ctx)
        fail_msg("client context: %s", err.msg);
    return ctx;
}

static int64_t not_after(const struct cert *c)
{
    struct sk_cert_info info;
    struct sk_err err;
    assert_int_equal(sk_pki_cert_info(c->pem, &info, &err), SK_OK);
    return info.not_after_ms;
}

/* ---- Connections ---- */

struct end {
    struct sk_stream *s;
    char *data;
    size_t len, cap;
    int reads;
    int ends;
    ssize_t end_code;
    int drains;
    int closes;
    bool echo;
    bool stop_on_read;
};

struct fx {
    uv_loop_t loop;
    struct sk_listener l;
    int accepts, rejects, listener_closes;
    int too_new; /* refusals because every handshake was too new */
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
    e->s = NULL;
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
    if (strstr(err->msg, "too new to judge"))
        f->too_new++;
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

static void fx_listen(struct fx *f, struct sk_tls_ctx *tls,
                      unsigned handshake_timeout_ms)
{
    struct sk_listener_config cfg = {
        .host = "127.0.0.1",
        .port = 0,
        .tls = tls,
        .handshake_timeout_ms = handshake_timeout_ms,
        .accept_cb = accept_cb,
        .reject_cb = reject_cb,
        .data = f,
    };
    struct sk_err err;
    if (sk_listener_start(&f->l, &f->loop, &cfg, &err) != 0)
        fail_msg("listen: %s", err.msg);
}

static void fx_connect(struct fx *f, struct sk_tls_ctx *tls, const char *role,
                       const char *node_id, unsigned timeout_ms)
{
    struct sk_connect_config cfg = {
        .host = "127.0.0.1",
        .port = sk_listener_port(&f->l),
        .tls = tls,
        .expect_role = role,
        .expect_node_id = node_id,
        .timeout_ms = timeout_ms,
    };
    f->req.data = f;
    assert_int_equal(sk_connect(&f->req, &f->loop, &cfg, connect_cb), 0);
}

static bool connected(void *ctx)
{
    struct fx *f = ctx;
    return f->connects == 1 && f->accepts == 1;
}

static bool connect_done(void *ctx)
{
    struct fx *f = ctx;
    return f->connects > 0;
}

static bool rejected(void *ctx)
{
    struct fx *f = ctx;
    return f->rejects > 0;
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

/* The server refused the client in the handshake. In TLS 1.3 the client
 * finishes its side first, so its connect may succeed; then its first read
 * reports the server's alert (or the closed socket). */
static void expect_client_refused(struct fx *f)
{
    assert_true(sk_test_run_until(&f->loop, connect_done, f, 5000));
    assert_int_equal(f->accepts, 0);
    if (f->connect_status == 0) {
        sk_stream_read_start(f->cli.s, end_read_cb);
        assert_true(sk_test_run_until(&f->loop, end_ended, &f->cli, 5000));
        assert_true(f->cli.end_code < 0);
        assert_int_equal(f->cli.len, 0);
    }
}

/* ---- Tests ---- */

static void mutual_auth(void **state)
{
    struct fx f;
    fx_init(&f);
    struct sk_tls_ctx *sctx = server_ctx(&P.m1, true);
    struct sk_tls_ctx *cctx = client_ctx(&P.w1);
    fx_listen(&f, sctx, 0);
    fx_connect(&f, cctx, "manager", "m1", 0);
    /* The listener and the connection hold their own references. */
    sk_tls_ctx_unref(sctx);
    sk_tls_ctx_unref(cctx);
    assert_true(sk_test_run_until(&f.loop, connected, &f, 5000));
    assert_int_equal(f.connect_status, 0);
    assert_int_equal(f.rejects, 0);

    const struct sk_peer *sp = &f.srv[0].s->peer; /* the client, seen */
    assert_true(sp->authenticated);
    assert_string_equal(sp->node_id, "w1");
    assert_string_equal(sp->role, "worker");
    assert_string_equal(sp->cluster_id, "cluster-a");
    assert_true(sp->not_after_ms == not_after(&P.w1));
    assert_memory_equal(sp->addr, "127.0.0.1:", 10);

    const struct sk_peer *cp = &f.cli.s->peer; /* the server, seen */
    assert_true(cp->authenticated);
    assert_string_equal(cp->node_id, "m1");
    assert_string_equal(cp->role, "manager");
    assert_string_equal(cp->cluster_id, "cluster-a");
    assert_true(cp->not_after_ms == not_after(&P.m1));
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", sk_listener_port(&f.l));
    assert_string_equal(cp->addr, want);

    /* The same identity as the certificate itself gives. */
    struct sk_peer fromcert;
    struct sk_err err;
    assert_int_equal(sk_tls_peer_from_pem(P.w1.pem, &fromcert, &err), SK_OK);
    assert_true(fromcert.authenticated);
    assert_string_equal(fromcert.node_id, sp->node_id);
    assert_string_equal(fromcert.role, sp->role);
    assert_string_equal(fromcert.cluster_id, sp->cluster_id);
    assert_true(fromcert.not_after_ms == sp->not_after_ms);

    /* Both ways, then an orderly end (close_notify) from the client. */
    f.srv[0].echo = true;
    sk_stream_read_start(f.srv[0].s, end_read_cb);
    /* A second read_start replaces the callback. */
    sk_stream_read_start(f.cli.s, unexpected_read_cb);
    sk_stream_read_start(f.cli.s, end_read_cb);
    assert_int_equal(sk_stream_write(f.cli.s, "ping", 4), 0);
    struct want_len w = {&f.cli, 4};
    assert_true(sk_test_run_until(&f.loop, got_len, &w, 5000));
    assert_memory_equal(f.cli.data, "ping", 4);
    sk_stream_close(f.cli.s, end_close_cb);
    assert_int_equal(f.cli.closes, 0);
    assert_true(sk_test_run_until(&f.loop, end_ended, &f.srv[0], 5000));
    assert_int_equal(f.srv[0].end_code, UV_EOF);
    sk_test_run_for(&f.loop, 30);
    assert_int_equal(f.srv[0].ends, 1);
    fx_done(&f);
}

static void no_client_cert_required(void **state)
{
    struct fx f;
    fx_init(&f);
    struct sk_tls_ctx *sctx = server_ctx(&P.m1, true);
    struct sk_tls_ctx *cctx = client_ctx(NULL);
    fx_listen(&f, sctx, 0);
    fx_connect(&f, cctx, "manager", NULL, 0);
    assert_true(sk_test_run_until(&f.loop, rejected, &f, 5000));
    assert_int_equal(f.reject.code, SK_EAUTH);
    assert_memory_equal(f.reject.msg, "127.0.0.1:", 10);
    assert_non_null(strstr(f.reject.msg, ": no client certificate"));
    expect_client_refused(&f);
    sk_tls_ctx_unref(sctx);
    sk_tls_ctx_unref(cctx);
    fx_done(&f);
}

static void no_client_cert_optional(void **state)
{
    struct fx f;
    fx_init(&f);
    struct sk_tls_ctx *sctx = server_ctx(&P.m1, false);
    struct sk_tls_ctx *cctx = client_ctx(NULL);
    fx_listen(&f, sctx, 0);
    fx_connect(&f, cctx, "manager", "m1", 0);
    assert_true(sk_test_run_until(&f.loop, connected, &f, 5000));
    assert_int_equal(f.connect_status, 0);
    const struct sk_peer *sp = &f.srv[0].s->peer;
    assert_false(sp->authenticated);
    assert_string_equal(sp->node_id, "");
    assert_string_equal(sp->role, "");
    assert_memory_equal(sp->addr, "127.0.0.1:", 10);
    assert_true(f.cli.s->peer.authenticated);

    f.srv[0].echo = true;
    sk_stream_read_start(f.srv[0].s, end_read_cb);
    sk_stream_read_start(f.cli.s, end_read_cb);
    assert_int_equal(sk_stream_write(f.cli.s, "join?", 5), 0);
    struct want_len w = {&f.cli, 5};
    assert_true(sk_test_run_until(&f.loop, got_len, &w, 5000));
    assert_int_equal(f.rejects, 0);
    sk_tls_ctx_unref(sctx);
    sk_tls_ctx_unref(cctx);
    fx_done(&f);
}

/* A client certificate the server refuses, with the message expected in
 * reject_cb. */
static void refused_client(const struct cert *c, bool require, const char *why)
{
    struct fx f;
    fx_init(&f);
    struct sk_tls_ctx *sctx = server_ctx(&P.m1, require);
    struct sk_tls_ctx *cctx = client_ctx(c);
    fx_listen(&f, sctx, 0);
    fx_connect(&f, cctx, NULL, NULL, 0);
    assert_true(sk_test_run_until(&f.loop, rejected, &f, 5000));
    assert_int_equal(f.reject.code, SK_EAUTH);
    assert_memory_equal(f.reject.msg, "127.0.0.1:", 10);
    char want[128];
    snprintf(want, sizeof want, ": %s", why);
    if (!strstr(f.reject.msg, want))
        fail_msg("reject message \"%s\" lacks \"%s\"", f.reject.msg, why);
    expect_client_refused(&f);
    sk_tls_ctx_unref(sctx);
    sk_tls_ctx_unref(cctx);
    fx_done(&f);
}

static void client_cert_other_ca(void **state)
{
    refused_client(&P.foreign, true,
                   "certificate not signed by the cluster CA");
    /* Refused also where a certificate is optional. */
    refused_client(&P.foreign, false,
                   "certificate not signed by the cluster CA");
    /* A CA with the cluster's name but another key. */
    refused_client(&P.forged, true, "certificate not signed by the cluster CA");
}

static void client_cert_expired(void **state)
{
    refused_client(&P.expired, true, "certificate expired");
    refused_client(&P.expired, false, "certificate expired");
}

/* The client refuses the server; the message is in req->err. */
static void refused_server(const struct cert *server, const char *role,
                           const char *node_id, const char *why)
{
    struct fx f;
    fx_init(&f);
    struct sk_tls_ctx *sctx = server_ctx(server, true);
    struct sk_tls_ctx *cctx = client_ctx(&P.w1);
    fx_listen(&f, sctx, 0);
    fx_connect(&f, cctx, role, node_id, 0);
    assert_true(sk_test_run_until(&f.loop, connect_done, &f, 5000));
    assert_true(f.connect_status < 0);
    assert_null(f.cli.s);
    assert_int_equal(f.req.err.code, SK_EAUTH);
    char want[160];
    snprintf(want, sizeof want, "127.0.0.1:%d: %s", sk_listener_port(&f.l),
             why);
    assert_string_equal(f.req.err.msg, want);
    /* The server may have finished its side; whatever it accepted ends. */
    sk_test_run_for(&f.loop, 50);
    for (int i = 0; i < f.accepts; i++) {
        sk_stream_read_start(f.srv[i].s, end_read_cb);
        assert_true(sk_test_run_until(&f.loop, end_ended, &f.srv[i], 5000));
    }
    assert_int_equal(f.connects, 1);
    sk_tls_ctx_unref(sctx);
    sk_tls_ctx_unref(cctx);
    fx_done(&f);
}

static void wrong_server_role(void **state)
{
    refused_server(&P.w9, "manager", NULL,
                   "server role is worker, want manager");
}

static void wrong_server_node(void **state)
{
    refused_server(&P.m1, "manager", "m2", "server is node m1, want m2");
}

static void server_cert_other_ca(void **state)
{
    struct fx f;
    fx_init(&f);
    /* The server trusts the cluster CA but presents another's cert. */
    struct sk_tls_ctx *sctx = server_ctx(&P.foreign_server, true);
    struct sk_tls_ctx *cctx = client_ctx(&P.w1);
    fx_listen(&f, sctx, 0);
    fx_connect(&f, cctx, "manager", "m1", 0);
    assert_true(sk_test_run_until(&f.loop, connect_done, &f, 5000));
    assert_true(f.connect_status < 0);
    assert_int_equal(f.req.err.code, SK_EAUTH);
    assert_non_null(
        strstr(f.req.err.msg, ": certificate not signed by the cluster CA"));
    /* The server hears the client's alert. */
    assert_true(sk_test_run_until(&f.loop, rejected, &f, 5000));
    assert_int_equal(f.accepts, 0);
    sk_tls_ctx_unref(sctx);
    sk_tls_ctx_unref(cctx);
    fx_done(&f);
}

static void connect_pair(struct fx *f, struct sk_tls_ctx *sctx)
{
    struct sk_tls_ctx *cctx = client_ctx(&P.w1);
    fx_listen(f, sctx, 0);
    fx_connect(f, cctx, "manager", NULL, 0);
    sk_tls_ctx_unref(cctx);
    assert_true(sk_test_run_until(&f->loop, connected, f, 5000));
    assert_int_equal(f->connect_status, 0);
}

static bool srv_drained(void *ctx)
{
    struct fx *f = ctx;
    return f->srv[0].s->write_queued == 0 && f->srv[0].drains > 0;
}

static void bulk_both_ways(void **state)
{
    struct fx f;
    fx_init(&f);
    struct sk_tls_ctx *sctx = server_ctx(&P.m1, true);
    connect_pair(&f, sctx);
    sk_tls_ctx_unref(sctx);

    /* Server to client: several MiB, in uneven writes. */
    const size_t total = 6u << 20;
    char *down = pattern(total, 11);
    size_t off = 0, piece = 77777;
    while (off < total) {
        size_t n = total - off < piece ? total - off : piece;
        assert_int_equal(sk_stream_write(f.srv[0].s, down + off, n), 0);
        off += n;
        piece = piece * 3 % 1500000 + 1;
    }
    assert_int_equal(f.srv[0].s->write_queued, total);
    sk_stream_read_start(f.cli.s, end_read_cb);
    struct want_len w = {&f.cli, total};
    assert_true(sk_test_run_until(&f.loop, got_len, &w, 30000));
    assert_int_equal(f.cli.len, total);
    assert_memory_equal(f.cli.data, down, total);
    assert_true(sk_test_run_until(&f.loop, srv_drained, &f, 5000));

    /* Client to server, one big write. */
    char *up = pattern(total, 12);
    assert_int_equal(sk_stream_write(f.cli.s, up, total), 0);
    sk_stream_read_start(f.srv[0].s, end_read_cb);
    struct want_len ws = {&f.srv[0], total};
    assert_true(sk_test_run_until(&f.loop, got_len, &ws, 30000));
    assert_int_equal(f.srv[0].len, total);
    assert_memory_equal(f.srv[0].data, up, total);
    free(down);
    free(up);
    assert_int_equal(f.cli.ends + f.srv[0].ends, 0);
    fx_done(&f);
}

/* read_stop holds back data OpenSSL already has (decrypted or not), and the
 * end behind it; read_start delivers both. */
static void read_stop_buffered(void **state)
{
    struct fx f;
    fx_init(&f);
    struct sk_tls_ctx *sctx = server_ctx(&P.m1, true);
    connect_pair(&f, sctx);
    sk_tls_ctx_unref(sctx);

    /* Small enough for the socket buffers, since nobody reads yet. */
    const size_t total = 100 * 1000;
    char *data = pattern(total, 5);
    assert_int_equal(sk_stream_write(f.srv[0].s, data, total), 0);
    assert_true(sk_test_run_until(&f.loop, srv_drained, &f, 5000));
    sk_stream_close(f.srv[0].s, end_close_cb);
    assert_true(sk_test_run_until(&f.loop, end_gone, &f.srv[0], 5000));
    /* Give everything time to arrive. */
    sk_test_run_for(&f.loop, 50);

    f.cli.stop_on_read = true;
    sk_stream_read_start(f.cli.s, end_read_cb);
    assert_int_equal(f.cli.reads, 0); /* never inside read_start */
    struct want_len w1 = {&f.cli, 1};
    assert_true(sk_test_run_until(&f.loop, got_len, &w1, 5000));
    assert_int_equal(f.cli.reads, 1);
    assert_true(f.cli.len <= 16384);
    sk_test_run_for(&f.loop, 100);
    assert_int_equal(f.cli.reads, 1);
    assert_int_equal(f.cli.ends, 0);

    /* One more record at a time. */
    sk_stream_read_start(f.cli.s, end_read_cb);
    struct want_len w2 = {&f.cli, f.cli.len + 1};
    assert_true(sk_test_run_until(&f.loop, got_len, &w2, 5000));
    assert_int_equal(f.cli.reads, 2);
    sk_test_run_for(&f.loop, 50);
    assert_int_equal(f.cli.reads, 2);

    f.cli.stop_on_read = false;
    sk_stream_read_start(f.cli.s, end_read_cb);
    assert_true(sk_test_run_until(&f.loop, end_ended, &f.cli, 5000));
    assert_int_equal(f.cli.len, total);
    assert_memory_equal(f.cli.data, data, total);
    assert_int_equal(f.cli.end_code, UV_EOF);
    free(data);
    fx_done(&f);
}

static bool accepted_2(void *ctx)
{
    struct fx *f = ctx;
    return f->accepts == 2 && f->connects == 1;
}

static bool accepts_2(void *ctx)
{
    struct fx *f = ctx;
    return f->accepts == 2;
}

static void rotation_new_connections_only(void **state)
{
    struct fx f;
    fx_init(&f);
    struct sk_tls_ctx *old = server_ctx(&P.m1, true);
    connect_pair(&f, old);
    assert_string_equal(f.cli.s->peer.node_id, "m1");
    struct end first = f.cli;
    first.s->data = &first;
    memset(&f.cli, 0, sizeof f.cli);

    /* Renewal: the listener takes the new context, the caller drops both
     * of its references; the old connection keeps the old one alive. */
    struct sk_tls_ctx *renewed = server_ctx(&P.m1_renewed, true);
    sk_listener_set_tls(&f.l, renewed);
    sk_tls_ctx_unref(renewed);
    sk_tls_ctx_unref(old);

    f.connects = 0;
    struct sk_tls_ctx *cctx = client_ctx(&P.w1);
    fx_connect(&f, cctx, "manager", "m1-renewed", 0);
    sk_tls_ctx_unref(cctx);
    assert_true(sk_test_run_until(&f.loop, accepted_2, &f, 5000));
    assert_int_equal(f.connect_status, 0);
    assert_string_equal(f.cli.s->peer.node_id, "m1-renewed");
    assert_true(f.cli.s->peer.not_after_ms == not_after(&P.m1_renewed));

    /* The old connection still works, both ways. */
    f.srv[0].echo = true;
    sk_stream_read_start(f.srv[0].s, end_read_cb);
    sk_stream_read_start(first.s, end_read_cb);
    assert_int_equal(sk_stream_write(first.s, "still here", 10), 0);
    struct want_len w = {&first, 10};
    assert_true(sk_test_run_until(&f.loop, got_len, &w, 5000));
    assert_memory_equal(first.data, "still here", 10);
    assert_string_equal(first.s->peer.node_id, "m1");

    sk_stream_close(first.s, end_close_cb);
    assert_true(sk_test_run_until(&f.loop, end_gone, &first, 5000));
    free(first.data);
    fx_done(&f);
}

/* A raw TCP client that connects and then says nothing. */
struct raw {
    uv_tcp_t tcp;
    uv_connect_t req;
    int connected;
    int ends;
    int closed;
    char buf[256];
};

static void raw_connect_cb(uv_connect_t *req, int status)
{
    struct raw *r = req->data;
    assert_int_equal(status, 0);
    r->connected++;
}

static void raw_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct raw *r = h->data;
    (void)hint;
    *buf = uv_buf_init(r->buf, sizeof r->buf);
}

static void raw_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct raw *r = h->data;
    (void)buf;
    if (nread < 0) {
        r->ends++;
        uv_read_stop(h);
    }
}

static void raw_closed_cb(uv_handle_t *h)
{
    struct raw *r = h->data;
    r->closed++;
}

static bool raw_connected(void *ctx)
{
    struct raw *r = ctx;
    return r->connected > 0;
}

static bool raw_ended(void *ctx)
{
    struct raw *r = ctx;
    return r->ends > 0;
}

static void raw_connect(uv_loop_t *loop, struct raw *r, int port)
{
    memset(r, 0, sizeof *r);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", port, &sa);
    uv_tcp_init(loop, &r->tcp);
    r->tcp.data = r;
    r->req.data = r;
    assert_int_equal(uv_tcp_connect(&r->req, &r->tcp, (struct sockaddr *)&sa,
                                    raw_connect_cb),
                     0);
    assert_true(sk_test_run_until(loop, raw_connected, r, 5000));
    assert_int_equal(
        uv_read_start((uv_stream_t *)&r->tcp, raw_alloc_cb, raw_read_cb), 0);
}

static bool listener_closed(void *ctx)
{
    struct fx *f = ctx;
    return f->listener_closes == 1;
}

static void listener_close_aborts_handshake(void **state)
{
    struct fx f;
    fx_init(&f);
    struct sk_tls_ctx *sctx = server_ctx(&P.m1, true);
    fx_listen(&f, sctx, 0);
    sk_tls_ctx_unref(sctx);
    struct raw r;
    raw_connect(&f.loop, &r, sk_listener_port(&f.l));
    /* The server waits for a ClientHello that never comes. */
    sk_test_run_for(&f.loop, 100);
    assert_int_equal(r.ends, 0);
    assert_int_equal(f.accepts + f.rejects, 0);

    sk_listener_close(&f.l, listener_close_cb);
    assert_int_equal(f.listener_closes, 0);
    sk_listener_close(&f.l, listener_close_cb); /* no-op */
    assert_true(sk_test_run_until(&f.loop, listener_closed, &f, 5000));
    assert_true(sk_test_run_until(&f.loop, raw_ended, &r, 5000));
    /* An abort is not a refusal. */
    assert_int_equal(f.rejects, 0);
    assert_int_equal(f.accepts, 0);
    assert_int_equal(f.listener_closes, 1);
    uv_close((uv_handle_t *)&r.tcp, raw_closed_cb);
    fx_done(&f);
    assert_int_equal(r.closed, 1);
}

static void handshake_timeout(void **state)
{
    struct fx f;
    fx_init(&f);
    struct sk_tls_ctx *sctx = server_ctx(&P.m1, true);
    fx_listen(&f, sctx, 150);
    sk_tls_ctx_unref(sctx);
    struct raw r;
    raw_connect(&f.loop, &r, sk_listener_port(&f.l));
    assert_true(sk_test_run_until(&f.loop, rejected, &f, 5000));
    assert_int_equal(f.reject.code, SK_ETIMEDOUT);
    assert_memory_equal(f.reject.msg, "127.0.0.1:", 10);
    assert_non_null(
        strstr(f.reject.msg, ": TLS handshake timed out after 150 ms"));
    assert_true(sk_test_run_until(&f.loop, raw_ended, &r, 5000));
    sk_test_run_for(&f.loop, 200);
    assert_int_equal(f.rejects, 1);
    assert_int_equal(f.accepts, 0);
    uv_close((uv_handle_t *)&r.tcp, raw_closed_cb);
    fx_done(&f);
}

/* The client's timeout covers the handshake too; a cancel during the
 * handshake ends it. Either way, the callback runs once. */
static void client_handshake_timeout_and_cancel(void **state)
{
    struct fx f;
    fx_init(&f);
    fx_listen(&f, NULL, 0); /* plain: accepts, never answers a ClientHello */
    struct sk_tls_ctx *cctx = client_ctx(&P.w1);

    fx_connect(&f, cctx, NULL, NULL, 200);
    assert_true(sk_test_run_until(&f.loop, connect_done, &f, 5000));
    assert_int_equal(f.connect_status, UV_ETIMEDOUT);
    assert_int_equal(f.req.err.code, SK_ETIMEDOUT);
    assert_non_null(
        strstr(f.req.err.msg, ": TLS handshake timed out after 200 ms"));
    assert_int_equal(f.accepts, 1);
    sk_test_run_for(&f.loop, 50);
    assert_int_equal(f.connects, 1);

    f.connects = 0;
    fx_connect(&f, cctx, NULL, NULL, 0);
    assert_true(sk_test_run_until(&f.loop, accepts_2, &f, 5000));
    sk_test_run_for(&f.loop, 20);
    assert_int_equal(f.connects, 0);
    sk_connect_cancel(&f.req);
    assert_int_equal(f.connects, 0);
    assert_true(sk_test_run_until(&f.loop, connect_done, &f, 5000));
    assert_int_equal(f.connect_status, UV_ECANCELED);
    sk_connect_cancel(&f.req);
    sk_test_run_for(&f.loop, 50);
    assert_int_equal(f.connects, 1);
    assert_null(f.cli.s);
    sk_tls_ctx_unref(cctx);
    fx_done(&f);
}

/* ---- Admission: the handshake budget and the two stream budgets ---- */

/* raw_connect from another loopback source address. */
static void raw_connect_from(uv_loop_t *loop, struct raw *r, int port,
                             const char *source)
{
    memset(r, 0, sizeof *r);
    struct sockaddr_in sa, src;
    uv_ip4_addr("127.0.0.1", port, &sa);
    uv_ip4_addr(source, 0, &src);
    uv_tcp_init(loop, &r->tcp);
    r->tcp.data = r;
    r->req.data = r;
    assert_int_equal(uv_tcp_bind(&r->tcp, (struct sockaddr *)&src, 0), 0);
    assert_int_equal(uv_tcp_connect(&r->req, &r->tcp, (struct sockaddr *)&sa,
                                    raw_connect_cb),
                     0);
    assert_true(sk_test_run_until(loop, raw_connected, r, 5000));
    assert_int_equal(
        uv_read_start((uv_stream_t *)&r->tcp, raw_alloc_cb, raw_read_cb), 0);
}

static void fx_listen_budget(struct fx *f, struct sk_tls_ctx *tls,
                             const struct sk_listener_config *budget)
{
    struct sk_listener_config cfg = *budget;
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.tls = tls;
    cfg.accept_cb = accept_cb;
    cfg.reject_cb = reject_cb;
    cfg.data = f;
    struct sk_err err;
    if (sk_listener_start(&f->l, &f->loop, &cfg, &err) != 0)
        fail_msg("listen: %s", err.msg);
}

struct counts_want {
    struct fx *f;
    unsigned handshakes, authenticated, unauthenticated;
};

static bool counts_are(void *ctx)
{
    struct counts_want *w = ctx;
    struct sk_listener_counts c;
    sk_listener_counts(&w->f->l, &c);
    return c.handshakes == w->handshakes &&
           c.authenticated == w->authenticated &&
           c.unauthenticated == w->unauthenticated;
}

static void expect_counts(struct fx *f, unsigned handshakes,
                          unsigned authenticated, unsigned unauthenticated)
{
    struct counts_want w = {f, handshakes, authenticated, unauthenticated};
    if (!sk_test_run_until(&f->loop, counts_are, &w, 5000)) {
        struct sk_listener_counts c;
        sk_listener_counts(&f->l, &c);
        fail_msg("counts: %u handshakes, %u authenticated, %u "
                 "unauthenticated; want %u, %u, %u",
                 c.handshakes, c.authenticated, c.unauthenticated, handshakes,
                 authenticated, unauthenticated);
    }
}

/* A full handshake budget drops its oldest handshake for a new one, so
 * idle connections cannot keep a client with a certificate out. */
static void handshake_budget_drops_oldest(void **state)
{
    struct fx f;
    fx_init(&f);
    struct sk_tls_ctx *sctx = server_ctx(&P.m1, true);
    struct sk_listener_config budget = {.max_handshakes = 2,
                                        .handshake_timeout_ms = 60000};
    fx_listen_budget(&f, sctx, &budget);
    sk_tls_ctx_unref(sctx);
    int port = sk_listener_port(&f.l);
    struct raw r[3];
    raw_connect(&f.loop, &r[0], port);
    raw_connect(&f.loop, &r[1], port);
    expect_counts(&f, 2, 0, 0);
    assert_int_equal(f.rejects, 0);
    sk_test_run_for(&f.loop, 20); /* they had their chance to speak */

    /* The third idle connection pushes out the first. */
    raw_connect(&f.loop, &r[2], port);
    assert_true(sk_test_run_until(&f.loop, raw_ended, &r[0], 5000));
    assert_int_equal(f.rejects, 1);
    assert_int_equal(f.reject.code, SK_EUNAVAIL);
    assert_memory_equal(f.reject.msg, "127.0.0.1:", 10);
    if (!strstr(f.reject.msg, ": TLS handshake dropped for a newer "
                              "connection after ") ||
        !strstr(f.reject.msg, " ms without a word (max 2 at once)"))
        fail_msg("%s", f.reject.msg);
    expect_counts(&f, 2, 0, 0);

    /* A client with a certificate gets in while the budget is full. */
    sk_test_run_for(&f.loop, 20);
    struct sk_tls_ctx *cctx = client_ctx(&P.w1);
    fx_connect(&f, cctx, "manager", "m1", 0);
    sk_tls_ctx_unref(cctx);
    assert_true(sk_test_run_until(&f.loop, connected, &f, 5000));
    assert_int_equal(f.connect_status, 0);
    assert_true(sk_test_run_until(&f.loop, raw_ended, &r[1], 5000));
    assert_int_equal(f.rejects, 2);
    assert_int_equal(r[2].ends, 0);
    expect_counts(&f, 1, 1, 0);
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)&r[i].tcp, raw_closed_cb);
    fx_done(&f);
}

static void raw_written_cb(uv_write_t *req, int status)
{
    (void)req;
    (void)status;
}

/* Sends the first 5 bytes of a ClientHello record: the server has heard
 * from the client and waits for the rest. */
static void raw_begin_hello(struct fx *f, struct raw *r)
{
    static char hello[] = {0x16, 0x03, 0x01, 0x00, 0x40};
    static uv_write_t w;
    uv_buf_t b = uv_buf_init(hello, sizeof hello);
    assert_int_equal(
        uv_write(&w, (uv_stream_t *)&r->tcp, &b, 1, raw_written_cb), 0);
    sk_test_run_for(&f->loop, 50);
}

/* A handshake that has begun is kept, though older, while a silent one
 * can make room; among those that have begun, the oldest goes. */
static void handshake_budget_keeps_talkers(void **state)
{
    struct fx f;
    fx_init(&f);
    struct sk_tls_ctx *sctx = server_ctx(&P.m1, true);
    struct sk_listener_config budget = {.max_handshakes = 2,
                                        .handshake_timeout_ms = 60000};
    fx_listen_budget(&f, sctx, &budget);
    sk_tls_ctx_unref(sctx);
    int port = sk_listener_port(&f.l);
    struct raw r[5];
    raw_connect(&f.loop, &r[0], port);
    raw_begin_hello(&f, &r[0]);
    raw_connect(&f.loop, &r[1], port);
    sk_test_run_for(&f.loop, 20);
    raw_connect(&f.loop, &r[2], port);
    assert_true(sk_test_run_until(&f.loop, raw_ended, &r[1], 5000));
    assert_int_equal(f.rejects, 1);
    if (!strstr(f.reject.msg, " without a word (max 2 at once)"))
        fail_msg("%s", f.reject.msg);
    sk_test_run_for(&f.loop, 50);
    assert_int_equal(r[0].ends + r[2].ends, 0);
    expect_counts(&f, 2, 0, 0);

    /* Both speak now: the older makes room for a newcomer. */
    raw_begin_hello(&f, &r[2]);
    raw_connect(&f.loop, &r[3], port);
    assert_true(sk_test_run_until(&f.loop, raw_ended, &r[0], 5000));
    assert_int_equal(f.rejects, 2);
    if (!strstr(f.reject.msg, " ms (max 2 at once)") ||
        strstr(f.reject.msg, "without a word"))
        fail_msg("%s", f.reject.msg);
    /* A silent one goes before a talker, though newer. */
    sk_test_run_for(&f.loop, 20);
    raw_connect(&f.loop, &r[4], port);
    assert_true(sk_test_run_until(&f.loop, raw_ended, &r[3], 5000));
    assert_int_equal(f.rejects, 3);
    assert_int_equal(r[2].ends + r[4].ends, 0);
    expect_counts(&f, 2, 0, 0);
    for (int i = 0; i < 5; i++)
        uv_close((uv_handle_t *)&r[i].tcp, raw_closed_cb);
    fx_done(&f);
}

static bool rejects_8(void *ctx)
{
    return ((struct fx *)ctx)->rejects == 8;
}

/* A burst larger than the budget, all at once: connections are taken a
 * few per loop iteration, so a silent one can always be judged and make
 * room; none is refused for coming too early. */
static void handshake_burst_paced(void **state)
{
    struct fx f;
    fx_init(&f);
    struct sk_tls_ctx *sctx = server_ctx(&P.m1, true);
    struct sk_listener_config budget = {.max_handshakes = 4,
                                        .max_per_source = 100,
                                        .handshake_timeout_ms = 60000};
    fx_listen_budget(&f, sctx, &budget);
    sk_tls_ctx_unref(sctx);
    struct raw r[12];
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", sk_listener_port(&f.l), &sa);
    for (int i = 0; i < 12; i++) {
        memset(&r[i], 0, sizeof r[i]);
        uv_tcp_init(&f.loop, &r[i].tcp);
        r[i].tcp.data = &r[i];
        r[i].req.data = &r[i];
        assert_int_equal(uv_tcp_connect(&r[i].req, &r[i].tcp,
                                        (struct sockaddr *)&sa, raw_connect_cb),
                         0);
    }
    assert_true(sk_test_run_until(&f.loop, rejects_8, &f, 5000));
    sk_test_run_for(&f.loop, 50);
    assert_int_equal(f.rejects, 8);
    assert_int_equal(f.too_new, 0);
    if (!strstr(f.reject.msg, " without a word (max 4 at once)"))
        fail_msg("%s", f.reject.msg);
    expect_counts(&f, 4, 0, 0);
    for (int i = 0; i < 12; i++)
        uv_close((uv_handle_t *)&r[i].tcp, raw_closed_cb);
    fx_done(&f);
}

/* One address at its own limit is refused at once, and does not touch the
 * handshakes of other addresses. */
static void handshake_budget_per_source(void **state)
{
    struct fx f;
    fx_init(&f);
    struct sk_tls_ctx *sctx = server_ctx(&P.m1, true);
    struct sk_listener_config budget = {.max_handshakes = 8,
                                        .max_per_source = 2,
                                        .handshake_timeout_ms = 60000};
    fx_listen_budget(&f, sctx, &budget);
    sk_tls_ctx_unref(sctx);
    int port = sk_listener_port(&f.l);
    struct raw a[3], b;
    raw_connect_from(&f.loop, &a[0], port, "127.0.0.5");
    raw_connect_from(&f.loop, &a[1], port, "127.0.0.5");
    raw_connect_from(&f.loop, &b, port, "127.0.0.6");
    expect_counts(&f, 3, 0, 0);

    raw_connect_from(&f.loop, &a[2], port, "127.0.0.5");
    assert_true(sk_test_run_until(&f.loop, raw_ended, &a[2], 5000));
    assert_int_equal(f.rejects, 1);
    assert_int_equal(f.reject.code, SK_EUNAVAIL);
    assert_memory_equal(f.reject.msg, "127.0.0.5:", 10);
    if (!strstr(f.reject.msg, ": too many TLS handshakes from 127.0.0.5 "
                              "(max 2)"))
        fail_msg("%s", f.reject.msg);
    assert_int_equal(a[0].ends + a[1].ends + b.ends, 0);
    expect_counts(&f, 3, 0, 0);
    uv_close((uv_handle_t *)&a[0].tcp, raw_closed_cb);
    uv_close((uv_handle_t *)&a[1].tcp, raw_closed_cb);
    uv_close((uv_handle_t *)&a[2].tcp, raw_closed_cb);
    uv_close((uv_handle_t *)&b.tcp, raw_closed_cb);
    fx_done(&f);
}

/* A handshake has 1 s unless the listener says otherwise. */
static void handshake_default_deadline(void **state)
{
    struct fx f;
    fx_init(&f);
    struct sk_tls_ctx *sctx = server_ctx(&P.m1, true);
    fx_listen(&f, sctx, 0);
    sk_tls_ctx_unref(sctx);
    struct raw r;
    int64_t t0 = sk_test_now_ms();
    raw_connect(&f.loop, &r, sk_listener_port(&f.l));
    assert_true(sk_test_run_until(&f.loop, rejected, &f, 5000));
    int64_t took = sk_test_now_ms() - t0;
    assert_non_null(
        strstr(f.reject.msg, ": TLS handshake timed out after 1000 ms"));
    assert_true(took >= 900 && took < 3000);
    uv_close((uv_handle_t *)&r.tcp, raw_closed_cb);
    fx_done(&f);
}

/* Extra clients for the budget tests. */
struct cl {
    struct sk_connect_req req;
    struct sk_stream *s;
    int done, status;
};

static void cl_cb(struct sk_connect_req *req, struct sk_stream *s, int status)
{
    struct cl *c = req->data;
    c->done++;
    c->status = status;
    c->s = s;
}

static bool cl_done(void *ctx)
{
    return ((struct cl *)ctx)->done > 0;
}

static void cl_connect(struct fx *f, struct cl *c, struct sk_tls_ctx *tls)
{
    memset(c, 0, sizeof *c);
    struct sk_connect_config cfg = {
        .host = "127.0.0.1", .port = sk_listener_port(&f->l), .tls = tls};
    c->req.data = c;
    assert_int_equal(sk_connect(&c->req, &f->loop, &cfg, cl_cb), 0);
    assert_true(sk_test_run_until(&f->loop, cl_done, c, 5000));
}

static bool rejects_2(void *ctx)
{
    return ((struct fx *)ctx)->rejects == 2;
}

/* Streams with and without a client certificate have budgets of their
 * own: strangers cannot take a peer's place, nor the reverse. */
static void stream_budgets_apart(void **state)
{
    struct fx f;
    fx_init(&f);
    struct sk_tls_ctx *sctx = server_ctx(&P.m1, false);
    struct sk_listener_config budget = {.max_connections = 1,
                                        .max_unauthenticated = 1};
    fx_listen_budget(&f, sctx, &budget);
    sk_tls_ctx_unref(sctx);
    struct sk_tls_ctx *anon = client_ctx(NULL);
    struct sk_tls_ctx *w1 = client_ctx(&P.w1);
    struct cl c[4];

    cl_connect(&f, &c[0], anon);
    expect_counts(&f, 0, 0, 1);
    cl_connect(&f, &c[1], anon); /* the handshake succeeds, then: refused */
    assert_true(sk_test_run_until(&f.loop, rejected, &f, 5000));
    if (!strstr(f.reject.msg,
                ": too many connections without a client certificate (max "
                "1)"))
        fail_msg("%s", f.reject.msg);
    cl_connect(&f, &c[2], w1);
    expect_counts(&f, 0, 1, 1);
    assert_int_equal(f.rejects, 1);
    cl_connect(&f, &c[3], w1);
    assert_true(sk_test_run_until(&f.loop, rejects_2, &f, 5000));
    if (!strstr(f.reject.msg, ": too many connections (max 1)") ||
        strstr(f.reject.msg, "certificate"))
        fail_msg("%s", f.reject.msg);
    expect_counts(&f, 0, 1, 1);
    assert_int_equal(f.accepts, 2);
    assert_false(f.srv[0].s->peer.authenticated);
    assert_true(f.srv[1].s->peer.authenticated);

    /* A closed stream frees its place in its own budget. */
    end_close(&f.srv[0]);
    expect_counts(&f, 0, 1, 0);
    struct cl again;
    cl_connect(&f, &again, anon);
    expect_counts(&f, 0, 1, 1);
    assert_int_equal(f.accepts, 3);

    for (int i = 0; i < 4; i++)
        if (c[i].s)
            sk_stream_close(c[i].s, NULL);
    sk_stream_close(again.s, NULL);
    sk_tls_ctx_unref(anon);
    sk_tls_ctx_unref(w1);
    fx_done(&f);
}

static void contexts_and_pems(void **state)
{
    struct sk_err err;
    struct sk_tls_config cfg = {.ca_pem = "garbage", .server = false};
    assert_null(sk_tls_ctx_new(&cfg, &err));
    assert_int_equal(err.code, SK_EINVAL);
    assert_non_null(strstr(err.msg, "CA certificate"));

    cfg.ca_pem = P.ca.cert_pem;
    cfg.cert_pem = P.m1.pem;
    cfg.key_pem = P.w1.key;
    assert_null(sk_tls_ctx_new(&cfg, &err));
    if (!strstr(err.msg, "does not match"))
        fail_msg("%s", err.msg);

    cfg.cert_pem = NULL;
    cfg.key_pem = NULL;
    cfg.server = true;
    assert_null(sk_tls_ctx_new(&cfg, &err));

    cfg.cert_pem = "nope";
    cfg.key_pem = P.m1.key;
    assert_null(sk_tls_ctx_new(&cfg, &err));
    assert_non_null(strstr(err.msg, "certificate"));

    struct sk_peer peer;
    memset(&peer, 0x55, sizeof peer);
    assert_int_equal(sk_tls_peer_from_pem("nope", &peer, &err), SK_EINVAL);
    assert_int_equal(peer.node_id[0], 0x55); /* untouched */

    sk_tls_ctx_unref(NULL);

    /* A client context cannot listen, nor a server context connect. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sk_tls_ctx *cctx = client_ctx(&P.w1);
    struct sk_tls_ctx *sctx = server_ctx(&P.m1, true);
    struct sk_listener l;
    struct sk_listener_config lcfg = {
        .host = "127.0.0.1", .tls = cctx, .accept_cb = accept_cb};
    assert_int_equal(sk_listener_start(&l, &loop, &lcfg, &err), UV_EINVAL);
    struct sk_connect_req req;
    struct sk_connect_config ccfg = {
        .host = "127.0.0.1", .port = 1, .tls = sctx};
    assert_int_equal(sk_connect(&req, &loop, &ccfg, connect_cb), UV_EINVAL);
    sk_tls_ctx_unref(cctx);
    sk_tls_ctx_unref(sctx);
    sk_test_loop_close(&loop);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mutual_auth),
        cmocka_unit_test(no_client_cert_required),
        cmocka_unit_test(no_client_cert_optional),
        cmocka_unit_test(client_cert_other_ca),
        cmocka_unit_test(client_cert_expired),
        cmocka_unit_test(wrong_server_role),
        cmocka_unit_test(wrong_server_node),
        cmocka_unit_test(server_cert_other_ca),
        cmocka_unit_test(bulk_both_ways),
        cmocka_unit_test(read_stop_buffered),
        cmocka_unit_test(rotation_new_connections_only),
        cmocka_unit_test(listener_close_aborts_handshake),
        cmocka_unit_test(handshake_timeout),
        cmocka_unit_test(client_handshake_timeout_and_cancel),
        cmocka_unit_test(handshake_budget_drops_oldest),
        cmocka_unit_test(handshake_budget_keeps_talkers),
        cmocka_unit_test(handshake_burst_paced),
        cmocka_unit_test(handshake_budget_per_source),
        cmocka_unit_test(handshake_default_deadline),
        cmocka_unit_test(stream_budgets_apart),
        cmocka_unit_test(contexts_and_pems),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
