/* Mutual TLS 1.3 streams over libuv TCP, with OpenSSL memory BIOs.
 *
 * OpenSSL never touches the socket: ciphertext read from the TCP handle is
 * written into `net_in`, and whatever OpenSSL produces in `net_out` is moved
 * into an owned buffer and queued with uv_write. So no OpenSSL call ever
 * blocks, and SSL_ERROR_WANT_READ simply means "wait for the next read".
 *
 * Backpressure: after the handshake the socket is read only while the user
 * reads. Plaintext OpenSSL has already decrypted or buffered stays there
 * while reading is stopped and is delivered (from an idle callback, never
 * inside sk_stream_read_start) once it resumes. */
#include "skiff/tls.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "skiff/mem.h"
#include "tls_internal.h"

/* Plaintext per SSL_write call: bounds the ciphertext buffered per write
 * request and keeps lengths within int. */
#define WRITE_CHUNK (1u << 20)

struct sk_tls_ctx {
    SSL_CTX *ssl_ctx;
    unsigned refs;
    bool server;
};

/* ---- Contexts ---- */

/* PEM passphrase callback: our keys are never encrypted, and OpenSSL's
 * default would prompt on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "unknown error";
}

static struct sk_tls_ctx *ctx_fail(struct sk_err *err, SSL_CTX *c,
                                   const char *what)
{
    sk_err_set(err, SK_EINVAL, "TLS: %s (%s)", what, ssl_reason());
    ERR_clear_error();
    SSL_CTX_free(c);
    return NULL;
}

/* Adds every certificate in pem to store; returns how many. */
static int load_ca(X509_STORE *store, const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (!bio)
        sk_oom(strlen(pem));
    int n = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL))) {
        if (X509_STORE_add_cert(store, x) == 1)
            n++;
        X509_free(x);
    }
    BIO_free(bio);
    return n;
}

/* Installs the leaf certificate (and any chain after it) and the key. */
static bool load_identity(SSL_CTX *c, const char *cert_pem, const char *key_pem,
                          const char **what)
{
    BIO *bio = BIO_new_mem_buf(cert_pem, -1);
    if (!bio)
        sk_oom(strlen(cert_pem));
    X509 *leaf = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
    bool ok = leaf && SSL_CTX_use_certificate(c, leaf) == 1;
    X509_free(leaf);
    X509 *x;
    while (ok && (x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL)))
        if (SSL_CTX_add0_chain_cert(c, x) != 1) {
            X509_free(x);
            ok = false;
        }
    BIO_free(bio);
    if (!ok) {
        *what = "the certificate does not parse";
        return false;
    }
    ERR_clear_error(); /* the end of the PEM stream */

    bio = BIO_new_mem_buf(key_pem, -1);
    if (!bio)
        sk_oom(strlen(key_pem));
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (!key) {
        *what = "the private key does not parse";
        return false;
    }
    /* SSL_CTX_use_PrivateKey already compares the key with the
     * certificate; check_private_key makes sure either way. */
    ok = SSL_CTX_use_PrivateKey(c, key) == 1 &&
         SSL_CTX_check_private_key(c) == 1;
    EVP_PKEY_free(key);
    if (!ok)
        *what = "the private key does not match the certificate";
    return ok;
}

struct sk_tls_ctx *sk_tls_ctx_new(const struct sk_tls_config *cfg,
                                  struct sk_err *err)
{
    if (!cfg->ca_pem) {
        sk_err_set(err, SK_EINVAL, "TLS: no cluster CA certificate");
        return NULL;
    }
    if (cfg->server && (!cfg->cert_pem || !cfg->key_pem)) {
        sk_err_set(err, SK_EINVAL, "TLS: a server needs a certificate and key");
        return NULL;
    }
    if (!cfg->cert_pem != !cfg->key_pem) {
        sk_err_set(err, SK_EINVAL,
                   "TLS: a certificate needs its key and a key its "
                   "certificate");
        return NULL;
    }

    ERR_clear_error();
    SSL_CTX *c =
        SSL_CTX_new(cfg->server ? TLS_server_method() : TLS_client_method());
    if (!c) {
        sk_err_set(err, SK_EINTERNAL, "TLS: SSL_CTX_new: %s", ssl_reason());
        ERR_clear_error();
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) != 1)
        return ctx_fail(err, c, "cannot restrict to TLS 1.3");
    /* No session tickets (nothing to resume, and a ticket written after the
     * handshake is a write nobody asked for). */
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(c, 0);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    /* An idle connection holds no record buffers (about 34 KiB): a
     * thousand agents, or a flood of idle strangers, cost little. */
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);

    /* The cluster CA is the only trust anchor: a fresh store, never the
     * system's default paths. */
    X509_STORE *store = X509_STORE_new();
    if (!store)
        sk_oom(sizeof(void *));
    int n = load_ca(store, cfg->ca_pem);
    SSL_CTX_set_cert_store(c, store);
    if (n == 0)
        return ctx_fail(err, c, "the CA certificate does not parse");
    ERR_clear_error();

    const char *what = NULL;
    if (cfg->cert_pem && !load_identity(c, cfg->cert_pem, cfg->key_pem, &what))
        return ctx_fail(err, c, what);

    int mode = SSL_VERIFY_PEER;
    if (cfg->server && cfg->require_peer_cert)
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(c, mode, NULL);

    struct sk_tls_ctx *ctx = sk_calloc(1, sizeof *ctx);
    ctx->ssl_ctx = c;
    ctx->refs = 1;
    ctx->server = cfg->server;
    return ctx;
}

void sk_tls_ctx_ref(struct sk_tls_ctx *ctx)
{
    if (ctx)
        ctx->refs++;
}

void sk_tls_ctx_unref(struct sk_tls_ctx *ctx)
{
    if (!ctx || --ctx->refs > 0)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

bool sk_tls_ctx_is_server(const struct sk_tls_ctx *ctx)
{
    return ctx->server;
}

/* ---- Peer identity ---- */

/* Copies the single `nid` entry of a subject name into out. Absent: empty.
 * Repeated, too long or with an embedded NUL: refused, because a truncated
 * or ambiguous identity could pass for another one. */
static bool name_entry(X509_NAME *name, int nid, const char *label, char *out,
                       size_t size, char *why, size_t whysize)
{
    out[0] = '\0';
    int idx = X509_NAME_get_index_by_NID(name, nid, -1);
    if (idx < 0)
        return true;
    if (X509_NAME_get_index_by_NID(name, nid, idx) >= 0) {
        snprintf(why, whysize, "certificate has more than one %s", label);
        return false;
    }
    ASN1_STRING *data =
        X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, data);
    if (n < 0) {
        snprintf(why, whysize, "certificate %s does not decode", label);
        return false;
    }
    bool ok = (size_t)n < size && !memchr(utf8, '\0', (size_t)n);
    if (ok) {
        memcpy(out, utf8, (size_t)n);
        out[n] = '\0';
    } else {
        snprintf(why, whysize, "certificate %s is longer than %zu bytes", label,
                 size - 1);
    }
    OPENSSL_free(utf8);
    return ok;
}

/* The serial in lower-case hex, as sk_pki_cert_info writes it (the store
 * records it so; skiff/pki.h). */
static bool serial_hex(X509 *x, char *buf, size_t size)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    if (!bn)
        return false;
    char *hex = BN_bn2hex(bn);
    BN_free(bn);
    if (!hex)
        sk_oom(0);
    size_t len = strlen(hex);
    bool ok = len < size;
    for (size_t i = 0; ok && i <= len; i++)
        buf[i] = (char)tolower((unsigned char)hex[i]);
    OPENSSL_free(hex);
    return ok;
}

/* Fills the identity fields of *out (not addr) from a certificate. */
static bool peer_from_x509(X509 *x, struct sk_peer *out, char *why,
                           size_t whysize)
{
    struct sk_peer p = *out;
    X509_NAME *subject = X509_get_subject_name(x);
    if (!name_entry(subject, NID_commonName, "CN", p.node_id, sizeof p.node_id,
                    why, whysize) ||
        !name_entry(subject, NID_organizationalUnitName, "OU", p.role,
                    sizeof p.role, why, whysize) ||
        !name_entry(subject, NID_organizationName, "O", p.cluster_id,
                    sizeof p.cluster_id, why, whysize))
        return false;
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1) {
        snprintf(why, whysize, "certificate expiry does not decode");
        return false;
    }
    p.not_after_ms = (int64_t)timegm(&tm) * 1000;
    if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) != 1) {
        snprintf(why, whysize, "certificate start of validity does not decode");
        return false;
    }
    p.not_before_ms = (int64_t)timegm(&tm) * 1000;
    if (!serial_hex(x, p.serial, sizeof p.serial)) {
        snprintf(why, whysize, "certificate serial is malformed or too long");
        return false;
    }
    p.authenticated = true;
    *out = p;
    return true;
}

int sk_tls_peer_from_pem(const char *cert_pem, struct sk_peer *out_peer,
                         struct sk_err *err)
{
    BIO *bio = BIO_new_mem_buf(cert_pem, -1);
    if (!bio)
        sk_oom(strlen(cert_pem));
    X509 *x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    ERR_clear_error();
    if (!x)
        return sk_err_set(err, SK_EINVAL, "certificate does not parse");
    struct sk_peer p;
    memset(&p, 0, sizeof p);
    char why[128];
    bool ok = peer_from_x509(x, &p, why, sizeof why);
    X509_free(x);
    if (!ok)
        return sk_err_set(err, SK_EINVAL, "%s", why);
    *out_peer = p;
    return SK_OK;
}

/* The distinct refusal messages of skiff/tls.h. */
static void describe_verify(long result, char *why, size_t size)
{
    switch (result) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        snprintf(why, size, "certificate expired");
        break;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        snprintf(why, size, "certificate not yet valid");
        break;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
        snprintf(why, size, "certificate not signed by the cluster CA");
        break;
    default:
        snprintf(why, size, "certificate rejected: %s",
                 X509_verify_cert_error_string(result));
        break;
    }
}

/* Why SSL_do_handshake failed; empties OpenSSL's error queue. */
static enum sk_rc describe_handshake_error(SSL *ssl, char *why, size_t size)
{
    long result = SSL_get_verify_result(ssl);
    bool no_cert = false;
    unsigned long first = 0, e;
    while ((e = ERR_get_error()) != 0) {
        if (!first)
            first = e;
        if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
            ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
            no_cert = true;
    }
    if (result != X509_V_OK) {
        describe_verify(result, why, size);
        return SK_EAUTH;
    }
    if (no_cert) {
        snprintf(why, size, "no client certificate");
        return SK_EAUTH;
    }
    const char *r = first ? ERR_reason_error_string(first) : NULL;
    snprintf(why, size, "TLS handshake failed: %s", r ? r : "unknown error");
    return SK_EPROTO;
}

/* ---- Streams ---- */

struct tls_wreq {
    uv_write_t req;
    size_t plain_len; /* the user's bytes this ciphertext carries */
    char data[];
};

enum tls_state {
    TLS_HANDSHAKE,
    TLS_OPEN,
    TLS_FAILED, /* the handshake failed; waiting for the owner's close */
};

struct tls_stream {
    struct sk_stream_base base;
    uv_tcp_t *tcp;
    uv_idle_t defer;
    SSL *ssl;
    BIO *net_in;  /* ciphertext from the socket, read by OpenSSL */
    BIO *net_out; /* ciphertext from OpenSSL, for the socket */
    struct sk_tls_ctx *ctx;
    enum tls_state state;
    bool reading;      /* the user wants data */
    bool sock_reading; /* uv_read_start is in effect */
    bool ended;        /* nread < 0 was delivered: nothing more */
    int end;           /* socket EOF or error, or a local failure; 0: none */
    bool heard;        /* a byte came from the peer */
    int closes;        /* handles still to be closed */
    sk_tls_handshake_cb hs_cb;
    void *hs_arg;
};

/* Every read lands here and is copied into the stream's BIO at once, so
 * one buffer serves all streams of the thread: a stream costs its SSL
 * state, not 64 KiB more (a flood of connections, a thousand agents). */
static _Thread_local char read_buf[64 * 1024];

static void tls_defer_cb(uv_idle_t *idle);

static void tls_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void sock_read_stop(struct tls_stream *t)
{
    if (!t->sock_reading)
        return;
    uv_read_stop((uv_stream_t *)t->tcp);
    t->sock_reading = false;
}

/* The stream reached its end; the first cause wins. */
static void set_end(struct tls_stream *t, int code)
{
    if (t->end == 0)
        t->end = code;
    sock_read_stop(t);
}

/* A failure noticed outside the normal flow (a write, a read start): handle
 * it from the idle callback, so nothing calls back inside the caller. */
static void fail_later(struct tls_stream *t, int code)
{
    if (t->base.pub.closing)
        return;
    set_end(t, code);
    uv_idle_start(&t->defer, tls_defer_cb);
}

static void tls_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf);

static void sock_read_start(struct tls_stream *t)
{
    if (t->sock_reading || t->end)
        return;
    int rc = uv_read_start((uv_stream_t *)t->tcp, tls_alloc_cb, tls_read_cb);
    if (rc < 0) {
        fail_later(t, rc);
        return;
    }
    t->sock_reading = true;
}

static void tls_write_cb(uv_write_t *req, int status)
{
    struct tls_wreq *w = (struct tls_wreq *)req;
    struct tls_stream *t = req->data;
    size_t plain = w->plain_len;
    free(w);
    struct sk_stream *s = &t->base.pub;
    s->write_queued -= plain;
    if (status < 0) {
        /* UV_ECANCELED: the handle is closing, nobody to tell. */
        if (status != UV_ECANCELED)
            fail_later(t, status);
        return;
    }
    if (plain && s->write_queued == 0 && s->drain_cb && !s->closing &&
        t->state == TLS_OPEN && !t->end)
        s->drain_cb(s);
}

/* Moves what OpenSSL wrote into net_out to the socket, as one write request
 * carrying plain_len bytes of the user's data. */
static int flush_out(struct tls_stream *t, size_t plain_len)
{
    size_t n = BIO_ctrl_pending(t->net_out);
    if (n == 0)
        return 0;
    struct tls_wreq *w = sk_malloc(sizeof *w + n);
    int got = BIO_read(t->net_out, w->data, (int)n);
    if (got <= 0) {
        free(w);
        return UV_EPROTO;
    }
    w->plain_len = plain_len;
    w->req.data = t;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)got);
    int rc = uv_write(&w->req, (uv_stream_t *)t->tcp, &b, 1, tls_write_cb);
    if (rc < 0) {
        free(w);
        return rc;
    }
    t->base.pub.write_queued += plain_len;
    return 0;
}

static void handshake_done(struct tls_stream *t, int status, enum sk_rc code,
                           const char *why)
{
    if (t->state != TLS_HANDSHAKE)
        return;
    sock_read_stop(t);
    uv_idle_stop(&t->defer);
    t->state = status == 0 ? TLS_OPEN : TLS_FAILED;
    struct sk_err err;
    sk_err_clear(&err);
    if (status < 0)
        sk_err_set(&err, code, "%s: %s", t->base.pub.peer.addr, why);
    t->hs_cb(t->hs_arg, &t->base.pub, status, &err);
}

/* After a successful handshake: who is at the other end. */
static bool check_peer(struct tls_stream *t, char *why, size_t size)
{
    struct sk_peer *p = &t->base.pub.peer;
    X509 *x = SSL_get0_peer_certificate(t->ssl);
    if (!x) {
        if (!t->ctx->server) {
            snprintf(why, size, "server presented no certificate");
            return false;
        }
        /* Allowed only when the context does not require one. */
        p->authenticated = false;
        return true;
    }
    long result = SSL_get_verify_result(t->ssl);
    if (result != X509_V_OK) {
        describe_verify(result, why, size);
        return false;
    }
    return peer_from_x509(x, p, why, size);
}

static void handshake_step(struct tls_stream *t)
{
    char why[256];
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
    if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ) {
        enum sk_rc code = describe_handshake_error(t->ssl, why, sizeof why);
        flush_out(t, 0); /* the alert, if OpenSSL wrote one */
        handshake_done(t, UV_EPROTO, code, why);
        return;
    }
    int rc = flush_out(t, 0);
    if (rc < 0)
        set_end(t, rc);
    if (t->end) {
        if (t->end == UV_EOF)
            snprintf(why, sizeof why,
                     "connection closed during the TLS handshake");
        else
            snprintf(why, sizeof why, "TLS handshake: %s", uv_strerror(t->end));
        handshake_done(t, t->end == UV_EOF ? UV_ECONNRESET : t->end, SK_EIO,
                       why);
        return;
    }
    if (e == SSL_ERROR_WANT_READ)
        return;
    if (!check_peer(t, why, sizeof why)) {
        handshake_done(t, UV_EPROTO, SK_EAUTH, why);
        return;
    }
    handshake_done(t, 0, SK_OK, NULL);
}

static void deliver_end(struct tls_stream *t, int code)
{
    t->ended = true;
    set_end(t, code);
    uv_idle_stop(&t->defer);
    t->base.pub.read_cb(&t->base.pub, code, NULL);
}

/* Hands decrypted data to the user while they read; then the end, if the
 * socket has one. */
static void deliver(struct tls_stream *t)
{
    struct sk_stream *s = &t->base.pub;
    char buf[16 * 1024];
    while (t->reading && !s->closing && !t->ended) {
        if (t->end && t->end != UV_EOF) {
            /* A broken socket or a failed write: what is still buffered
             * cannot be answered anyway. */
            deliver_end(t, t->end);
            break;
        }
        ERR_clear_error();
        int n = SSL_read(t->ssl, buf, sizeof buf);
        if (n > 0) {
            s->read_cb(s, n, buf);
            continue;
        }
        int e = SSL_get_error(t->ssl, n);
        if (e == SSL_ERROR_WANT_READ) {
            if (t->end)
                deliver_end(t, UV_EOF);
            break;
        }
        ERR_clear_error();
        deliver_end(t, e == SSL_ERROR_ZERO_RETURN ? UV_EOF : UV_EPROTO);
        break;
    }
    /* Reading can make OpenSSL answer (an alert, a key update). */
    if (!s->closing) {
        int rc = flush_out(t, 0);
        if (rc < 0)
            fail_later(t, rc);
    }
}

static void progress(struct tls_stream *t)
{
    if (t->base.pub.closing)
        return;
    if (t->state == TLS_HANDSHAKE)
        handshake_step(t);
    else if (t->state == TLS_OPEN)
        deliver(t);
}

static void tls_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct tls_stream *t = h->data;
    if (nread == 0)
        return;
    if (nread > 0)
        t->heard = true;
    if (nread < 0) {
        set_end(t, (int)nread);
    } else if (BIO_write(t->net_in, buf->base, (int)nread) != (int)nread) {
        sk_oom((size_t)nread); /* a memory BIO fails only to grow */
    }
    progress(t);
}

static void tls_defer_cb(uv_idle_t *idle)
{
    struct tls_stream *t = idle->data;
    uv_idle_stop(idle);
    progress(t);
}

static void tls_read_start(struct sk_stream *s)
{
    struct tls_stream *t = (struct tls_stream *)s;
    if (t->state != TLS_OPEN || t->ended)
        return;
    t->reading = true;
    sock_read_start(t);
    uv_idle_start(&t->defer, tls_defer_cb);
}

static void tls_read_stop(struct sk_stream *s)
{
    struct tls_stream *t = (struct tls_stream *)s;
    if (t->state != TLS_OPEN)
        return;
    t->reading = false;
    sock_read_stop(t);
    uv_idle_stop(&t->defer);
}

static int tls_write(struct sk_stream *s, const void *buf, size_t len)
{
    struct tls_stream *t = (struct tls_stream *)s;
    if (t->state != TLS_OPEN || t->end)
        return UV_ECANCELED;
    const char *p = buf;
    while (len > 0) {
        size_t chunk = len < WRITE_CHUNK ? len : WRITE_CHUNK;
        ERR_clear_error();
        /* With a memory BIO for output SSL_write takes all or fails. */
        int n = SSL_write(t->ssl, p, (int)chunk);
        if (n <= 0 || (size_t)n != chunk) {
            ERR_clear_error();
            fail_later(t, UV_EPROTO);
            return UV_ECANCELED;
        }
        int rc = flush_out(t, chunk);
        if (rc < 0) {
            fail_later(t, rc);
            return UV_ECANCELED;
        }
        p += chunk;
        len -= chunk;
    }
    return 0;
}

static void tls_closed_cb(uv_handle_t *h)
{
    struct tls_stream *t = h->data;
    if (--t->closes > 0)
        return;
    sk_stream_base_closed(&t->base);
    SSL_free(t->ssl); /* and both BIOs */
    sk_tls_ctx_unref(t->ctx);
    free(t->tcp);
    free(t);
}

static void tls_close(struct sk_stream *s)
{
    struct tls_stream *t = (struct tls_stream *)s;
    t->reading = false;
    if (t->state == TLS_OPEN && !t->end) {
        /* close_notify, if the socket takes it right now: uv_write tries
         * the socket at once, and the close below drops whatever is left.
         * A close never waits for the network. */
        ERR_clear_error();
        SSL_shutdown(t->ssl);
        ERR_clear_error();
        flush_out(t, 0);
    }
    t->closes = 2;
    uv_close((uv_handle_t *)t->tcp, tls_closed_cb);
    uv_close((uv_handle_t *)&t->defer, tls_closed_cb);
}

bool sk_tls_stream_heard(const struct sk_stream *s)
{
    return ((const struct tls_stream *)s)->heard;
}

static const struct sk_stream_vtable tls_vtable = {
    .read_start = tls_read_start,
    .read_stop = tls_read_stop,
    .write = tls_write,
    .close = tls_close,
};

struct sk_stream *sk_tls_stream_start(uv_loop_t *loop, uv_tcp_t *tcp,
                                      struct sk_tls_ctx *ctx, const char *addr,
                                      sk_tls_handshake_cb cb, void *arg)
{
    struct tls_stream *t = sk_calloc(1, sizeof *t);
    t->base.pub.vt = &tls_vtable;
    t->base.pub.loop = loop;
    snprintf(t->base.pub.peer.addr, sizeof t->base.pub.peer.addr, "%s", addr);
    t->tcp = tcp;
    tcp->data = t;
    uv_idle_init(loop, &t->defer);
    t->defer.data = t;
    t->ctx = ctx;
    sk_tls_ctx_ref(ctx);
    t->hs_cb = cb;
    t->hs_arg = arg;

    /* SSL_new and BIO_new fail only when memory runs out. */
    t->ssl = SSL_new(ctx->ssl_ctx);
    t->net_in = BIO_new(BIO_s_mem());
    t->net_out = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->net_in || !t->net_out)
        sk_oom(sizeof *t);
    SSL_set_bio(t->ssl, t->net_in, t->net_out);
    if (ctx->server)
        SSL_set_accept_state(t->ssl);
    else
        SSL_set_connect_state(t->ssl);

    uv_tcp_nodelay(tcp, 1);
    uv_tcp_keepalive(tcp, 1, SK_STREAM_KEEPALIVE_S);
    sock_read_start(t);
    /* The first step (a client's ClientHello) runs from the loop, so that
     * cb can never run inside this call. */
    uv_idle_start(&t->defer, tls_defer_cb);
    return &t->base.pub;
}
