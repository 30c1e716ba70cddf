/* HTTP client calls with libcurl. The contract is skiff/http_client.h.
 *
 * Async calls run on curl's multi interface driven by libuv: curl tells us
 * which sockets to watch (socket_cb, one uv_poll_t per socket) and when to
 * wake it (timer_cb, one uv_timer_t); we hand events back with
 * curl_multi_socket_action and collect finished transfers with
 * curl_multi_info_read.
 *
 * Adding a transfer and cancelling one are deferred to a second timer (the
 * "kick"), so that sk_http_call_start and sk_http_call_cancel work from
 * anywhere -- including inside an on_data callback, where curl forbids
 * calls into the multi handle -- and a callback never runs inside them. */
#include "skiff/http_client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include "skiff/http.h"
#include "skiff/list.h"
#include "skiff/mem.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_MAX_RESPONSE_BYTES (16 * 1024 * 1024)

struct client;
struct call;

/* The expected server role travels to OpenSSL's verify callback as ex_data
 * of the connection's SSL_CTX. That context outlives the call when curl
 * keeps the connection, so the two point at each other weakly and each side
 * clears the other's pointer when it goes away. */
struct role_check {
    char want[16];
    struct call *call;
};

struct call {
    struct sk_http_call *pub;
    struct client *cl; /* NULL for a synchronous call */
    CURL *easy;
    struct curl_slist *headers;
    char *url;
    char errbuf[CURL_ERROR_SIZE];
    char role_msg[128]; /* set when the server's role did not match */
    char *expect_role;
    struct role_check *role;
    char *body; /* response */
    size_t len, cap;
    size_t max_bytes;
    bool added;
    bool canceled;
    bool stopped; /* on_data returned false */
    bool too_big;
    struct sk_list link; /* in cl->calls (async calls) */
};

struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct client *cl;
    struct sk_list link; /* in cl->socks */
};

struct client {
    struct sk_http_client *pub;
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;     /* curl's timeout */
    uv_timer_t kick;      /* deferred adds and cancels */
    struct sk_list calls; /* struct call, started and not finished */
    struct sk_list socks; /* struct sock, watched for curl */
    unsigned pending_closes;
    bool closing;
    bool handles_closing;
    void (*close_cb)(struct sk_http_client *c);
};

/* ---- Global state ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;
static int role_index = -1;

static void role_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                      long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    struct role_check *rc = ptr;
    if (!rc)
        return;
    if (rc->call)
        rc->call->role = NULL;
    free(rc);
}

static void global_init_once(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_ALL);
    role_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, role_free);
}

static bool global_init(struct sk_err *err)
{
    pthread_once(&global_once, global_init_once);
    if (global_rc != CURLE_OK || role_index < 0) {
        sk_err_set(err, SK_EINTERNAL, "libcurl initialisation failed: %s",
                   curl_easy_strerror(global_rc));
        return false;
    }
    return true;
}

/* ---- TLS role check ---- */

static int verify_cb(int preverify_ok, X509_STORE_CTX *x)
{
    if (!preverify_ok || X509_STORE_CTX_get_error_depth(x) != 0)
        return preverify_ok;
    SSL *ssl =
        X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct role_check *rc =
        ssl ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), role_index) : NULL;
    if (!rc)
        return preverify_ok;
    X509 *cert = X509_STORE_CTX_get_current_cert(x);
    X509_NAME *name = cert ? X509_get_subject_name(cert) : NULL;
    char got[64] = "";
    int i =
        name ? X509_NAME_get_index_by_NID(name, NID_organizationalUnitName, -1)
             : -1;
    if (i >= 0) {
        const ASN1_STRING *s =
            X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
        const unsigned char *d = ASN1_STRING_get0_data(s);
        int n = ASN1_STRING_length(s);
        /* An OU with an embedded NUL is no role at all. */
        if (n > 0 && (size_t)n < sizeof got && !memchr(d, 0, (size_t)n)) {
            memcpy(got, d, (size_t)n);
            got[n] = '\0';
        }
    }
    if (strcmp(got, rc->want) == 0)
        return 1;
    if (rc->call)
        snprintf(rc->call->role_msg, sizeof rc->call->role_msg,
                 "server role is %s, want %s", got[0] ? got : "(none)",
                 rc->want);
    X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

static CURLcode ssl_ctx_cb(CURL *easy, void *ssl_ctx, void *parm)
{
    (void)easy;
    struct call *c = parm;
    if (!c->expect_role)
        return CURLE_OK;
    struct role_check *rc = sk_calloc(1, sizeof *rc);
    snprintf(rc->want, sizeof rc->want, "%s", c->expect_role);
    rc->call = c;
    if (!SSL_CTX_set_ex_data(ssl_ctx, role_index, rc)) {
        free(rc);
        return CURLE_SSL_CONNECT_ERROR;
    }
    if (c->role)
        c->role->call = NULL;
    c->role = rc;
    SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, verify_cb);
    return CURLE_OK;
}

/* ---- Bodies ---- */

/* Keeps the value of the response header the caller asked for. */
static size_t header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct call *c = userdata;
    size_t n = size * nitems;
    const char *name = c->pub->capture_header;
    size_t len = strlen(name);
    if (n > len + 1 && buf[len] == ':' && strncasecmp(buf, name, len) == 0) {
        const char *v = buf + len + 1, *end = buf + n;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v &&
               (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        free(c->pub->captured);
        c->pub->captured = sk_strndup(v, (size_t)(end - v));
    }
    return n;
}

static bool status_ok(long status)
{
    return status >= 200 && status < 300;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct call *c = userdata;
    size_t n = size * nmemb;
    if (c->canceled)
        return 0;
    if (n == 0)
        return 0;
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    /* Error bodies are buffered even for streaming calls, so the caller
     * can read the error with sk_http_call_api_error. */
    if (c->pub->on_data && status_ok(status)) {
        if (!c->pub->on_data(c->pub, ptr, n)) {
            c->stopped = true;
            return 0;
        }
        return c->canceled ? 0 : n;
    }
    if (n > c->max_bytes || c->len > c->max_bytes - n) {
        c->too_big = true;
        return 0;
    }
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n + 1)
            cap *= 2;
        c->body = sk_realloc(c->body, cap);
        c->cap = cap;
    }
    memcpy(c->body + c->len, ptr, n);
    c->len += n;
    c->body[c->len] = '\0';
    return n;
}

/* ---- Setting up and finishing a call ---- */

static void call_free(struct call *c)
{
    if (c->role)
        c->role->call = NULL;
    if (c->easy)
        curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->headers);
    free(c->url);
    free(c->expect_role);
    free(c->body);
    free(c);
}

static bool call_validate(struct sk_http_call *pub)
{
    if (!pub->url || !*pub->url)
        return sk_err_set(&pub->err, SK_EINVAL, "HTTP call without a URL"),
               false;
    CURLU *u = curl_url();
    if (!u)
        sk_oom(sizeof(void *));
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, pub->url, 0);
    char *scheme = NULL;
    if (uc == CURLUE_OK)
        uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    bool ok = uc == CURLUE_OK &&
              (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
    if (uc != CURLUE_OK)
        sk_err_set(&pub->err, SK_EINVAL, "%s: malformed URL (%s)", pub->url,
                   curl_url_strerror(uc));
    else if (!ok)
        sk_err_set(&pub->err, SK_EINVAL, "%s: not an http or https URL",
                   pub->url);
    curl_free(scheme);
    curl_url_cleanup(u);
    if (ok && pub->tls && !pub->insecure_fetch_ca && !pub->tls->ca_pem) {
        sk_err_set(&pub->err, SK_EINVAL, "%s: TLS without a CA certificate",
                   pub->url);
        ok = false;
    }
    if (ok && pub->tls && pub->tls->cert_pem && !pub->tls->key_pem) {
        sk_err_set(&pub->err, SK_EINVAL, "%s: client certificate without a key",
                   pub->url);
        ok = false;
    }
    return ok;
}

static void blob_set(CURL *e, CURLoption opt, const char *pem)
{
    struct curl_blob b = {
        .data = (void *)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY};
    curl_easy_setopt(e, opt, &b);
}

/* Builds the easy handle; returns NULL (err filled) on bad input. */
static struct call *call_new(struct sk_http_call *pub, struct client *cl)
{
    sk_err_clear(&pub->err);
    pub->status = 0;
    pub->os_errno = 0;
    pub->resp_body = NULL;
    pub->resp_len = 0;
    pub->captured = NULL;
    if (!call_validate(pub))
        return NULL;
    CURL *e = curl_easy_init();
    if (!e) {
        sk_err_set(&pub->err, SK_EINTERNAL, "%s: curl_easy_init failed",
                   pub->url);
        return NULL;
    }
    struct call *c = sk_calloc(1, sizeof *c);
    c->pub = pub;
    c->cl = cl;
    sk_list_init(&c->link);
    c->easy = e;
    c->url = sk_strdup(pub->url);
    c->max_bytes = pub->max_response_bytes ? pub->max_response_bytes
                                           : DEFAULT_MAX_RESPONSE_BYTES;

    curl_easy_setopt(e, CURLOPT_URL, c->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    if (pub->capture_header) {
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    }
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(pub->connect_timeout_ms
                                ? pub->connect_timeout_ms
                                : DEFAULT_CONNECT_TIMEOUT_MS));
    if (pub->timeout_ms)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)pub->timeout_ms);
    if (!pub->on_data)
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
                         (curl_off_t)c->max_bytes);
    if (pub->unix_socket)
        curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, pub->unix_socket);

    const char *method = pub->method;
    if (pub->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)pub->body_len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, pub->body);
        if (method && strcmp(method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        char *ct = sk_printf("Content-Type: %s", pub->content_type
                                                     ? pub->content_type
                                                     : "application/json");
        c->headers = curl_slist_append(c->headers, ct);
        free(ct);
        /* Our server answers 100-continue, others may not: don't wait. */
        c->headers = curl_slist_append(c->headers, "Expect:");
    } else if (!method || strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    for (const char *const *h = pub->headers; h && *h; h++)
        c->headers = curl_slist_append(c->headers, *h);
    if (c->headers)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);

    if (pub->tls || pub->insecure_fetch_ca)
        curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
    if (pub->insecure_fetch_ca) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (pub->tls) {
        /* The cluster CA is the only trust anchor. */
        curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
        blob_set(e, CURLOPT_CAINFO_BLOB, pub->tls->ca_pem);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
        if (pub->tls->expect_role) {
            c->expect_role = sk_strdup(pub->tls->expect_role);
            curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
            curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, c);
        }
    }
    if (pub->tls && pub->tls->cert_pem) {
        blob_set(e, CURLOPT_SSLCERT_BLOB, pub->tls->cert_pem);
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
        blob_set(e, CURLOPT_SSLKEY_BLOB, pub->tls->key_pem);
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    }
    return c;
}

static enum sk_rc rc_of(CURLcode res)
{
    switch (res) {
    case CURLE_OPERATION_TIMEDOUT:
        return SK_ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        return SK_EUNAVAIL;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return SK_EAUTH;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return SK_EINVAL;
    case CURLE_FILESIZE_EXCEEDED:
        return SK_ETOOBIG;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_PARTIAL_FILE:
        return SK_EPROTO;
    case CURLE_ABORTED_BY_CALLBACK:
        return SK_ECANCELED;
    default:
        return SK_EIO;
    }
}

/* Fills the public response fields from the finished transfer. */
static void call_result(struct call *c, CURLcode res)
{
    struct sk_http_call *pub = c->pub;
    if (c->canceled) {
        sk_err_set(&pub->err, SK_ECANCELED, "%s: canceled", c->url);
    } else if (res == CURLE_OK) {
        sk_err_clear(&pub->err);
    } else if (c->stopped) {
        sk_err_set(&pub->err, SK_ECANCELED, "%s: stopped by the receiver",
                   c->url);
    } else if (c->too_big || res == CURLE_FILESIZE_EXCEEDED) {
        sk_err_set(&pub->err, SK_ETOOBIG, "%s: response body exceeds %zu bytes",
                   c->url, c->max_bytes);
    } else if (c->role_msg[0]) {
        sk_err_set(&pub->err, SK_EAUTH, "%s: %s", c->url, c->role_msg);
    } else {
        const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(res);
        char lower[CURL_ERROR_SIZE];
        snprintf(lower, sizeof lower, "%s", why);
        size_t n = strlen(lower);
        while (n > 0 && (lower[n - 1] == '\n' || lower[n - 1] == '\r'))
            lower[--n] = '\0';
        /* curl capitalises its sentences; ours continue after "URL: ". */
        if (isupper((unsigned char)lower[0]) &&
            !isupper((unsigned char)lower[1]))
            lower[0] = (char)tolower((unsigned char)lower[0]);
        sk_err_set(&pub->err, rc_of(res), "%s: %s", c->url, lower);
    }
    if (pub->err.code == SK_OK) {
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &pub->status);
        if (c->body || !pub->on_data || !status_ok(pub->status)) {
            if (!c->body)
                c->body = sk_calloc(1, 1);
            pub->resp_body = c->body;
            pub->resp_len = c->len;
            c->body = NULL;
        }
    } else {
        pub->status = 0;
        long os_errno = 0;
        if (res != CURLE_OK && curl_easy_getinfo(c->easy, CURLINFO_OS_ERRNO,
                                                 &os_errno) == CURLE_OK)
            pub->os_errno = (int)os_errno;
    }
}

/* ---- The loop driver ---- */

static void client_maybe_shut(struct client *cl);

/* The one exit of an async call: fires the callback exactly once. */
static void call_finish(struct call *c, CURLcode res)
{
    struct client *cl = c->cl;
    struct sk_http_call *pub = c->pub;
    if (c->added)
        curl_multi_remove_handle(cl->multi, c->easy);
    c->added = false;
    call_result(c, res);
    sk_list_remove(&c->link);
    call_free(c);
    pub->impl = NULL;
    if (pub->cb)
        pub->cb(pub);
    client_maybe_shut(cl);
}

static void check_completions(struct client *cl)
{
    CURLMsg *msg;
    int left;
    /* A callback may close the client, which releases the multi handle. */
    while (cl->multi && (msg = curl_multi_info_read(cl->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURLcode res = msg->data.result;
        struct call *c = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        call_finish(c, res);
    }
}

static void sock_close_cb(uv_handle_t *h)
{
    struct sock *sk = h->data;
    struct client *cl = sk->cl;
    free(sk);
    cl->pending_closes--;
    client_maybe_shut(cl);
}

static void sock_close(struct sock *sk)
{
    struct client *cl = sk->cl;
    sk_list_remove(&sk->link);
    /* Stopping takes the fd out of libuv's watcher table at once, so curl
     * may hand us a new socket with the same number before this closes. */
    uv_poll_stop(&sk->poll);
    cl->pending_closes++;
    uv_close((uv_handle_t *)&sk->poll, sock_close_cb);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    struct sock *sk = h->data;
    struct client *cl = sk->cl;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(cl->multi, sk->fd, flags, &running);
    check_completions(cl);
}

static int socket_cb(CURL *e, curl_socket_t fd, int what, void *userp,
                     void *socketp)
{
    (void)e;
    struct client *cl = userp;
    struct sock *sk = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sk) {
            /* During curl_multi_cleanup the multi is going away anyway. */
            if (!cl->handles_closing)
                curl_multi_assign(cl->multi, fd, NULL);
            sock_close(sk);
        }
        return 0;
    }
    if (!sk) {
        sk = sk_calloc(1, sizeof *sk);
        sk->fd = fd;
        sk->cl = cl;
        if (uv_poll_init_socket(cl->loop, &sk->poll, fd) != 0) {
            free(sk);
            return -1;
        }
        sk->poll.data = sk;
        sk_list_insert_head(&cl->socks, &sk->link);
        curl_multi_assign(cl->multi, fd, sk);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&sk->poll, events, poll_cb);
    return 0;
}

static void timeout_cb(uv_timer_t *t)
{
    struct client *cl = t->data;
    int running;
    curl_multi_socket_action(cl->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_completions(cl);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    struct client *cl = userp;
    if (cl->handles_closing)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&cl->timer);
    else
        uv_timer_start(&cl->timer, timeout_cb, (uint64_t)timeout_ms, 0);
    return 0;
}

static void kick_cb(uv_timer_t *t)
{
    struct client *cl = t->data;
    /* A callback fired here may start, cancel or finish other calls, so
     * the walk starts over after each one. */
    bool again = true;
    while (again) {
        again = false;
        struct sk_list *it;
        sk_list_each(it, &cl->calls)
        {
            struct call *c = sk_list_entry(it, struct call, link);
            if (c->canceled) {
                call_finish(c, CURLE_ABORTED_BY_CALLBACK);
                again = true;
                break;
            }
            if (c->added)
                continue;
            CURLMcode mc = curl_multi_add_handle(cl->multi, c->easy);
            if (mc != CURLM_OK) {
                snprintf(c->errbuf, sizeof c->errbuf, "%s",
                         curl_multi_strerror(mc));
                call_finish(c, CURLE_FAILED_INIT);
                again = true;
                break;
            }
            c->added = true;
        }
    }
    client_maybe_shut(cl);
}

static void client_kick(struct client *cl)
{
    if (!cl->handles_closing)
        uv_timer_start(&cl->kick, kick_cb, 0, 0);
}

static void client_handle_closed(uv_handle_t *h)
{
    struct client *cl = h->data;
    cl->pending_closes--;
    client_maybe_shut(cl);
}

/* Once closing and no call is left: release curl, then the handles, then
 * report. */
static void client_maybe_shut(struct client *cl)
{
    if (!cl->closing || !sk_list_empty(&cl->calls))
        return;
    if (!cl->handles_closing) {
        cl->handles_closing = true;
        /* Closes cached connections; their sockets come back through
         * socket_cb as CURL_POLL_REMOVE. */
        curl_multi_cleanup(cl->multi);
        cl->multi = NULL;
        struct sock *sk;
        while ((sk = sk_list_first(&cl->socks, struct sock, link)))
            sock_close(sk);
        uv_timer_stop(&cl->timer);
        uv_timer_stop(&cl->kick);
        cl->pending_closes += 2;
        uv_close((uv_handle_t *)&cl->timer, client_handle_closed);
        uv_close((uv_handle_t *)&cl->kick, client_handle_closed);
        return;
    }
    if (cl->pending_closes > 0)
        return;
    struct sk_http_client *pub = cl->pub;
    void (*cb)(struct sk_http_client *) = cl->close_cb;
    free(cl);
    pub->impl = NULL;
    if (cb)
        cb(pub);
}

int sk_http_client_init(struct sk_http_client *c, uv_loop_t *loop,
                        struct sk_err *err)
{
    if (!global_init(err))
        return SK_EINTERNAL;
    struct client *cl = sk_calloc(1, sizeof *cl);
    cl->pub = c;
    cl->loop = loop;
    sk_list_init(&cl->calls);
    sk_list_init(&cl->socks);
    cl->multi = curl_multi_init();
    if (!cl->multi) {
        free(cl);
        return sk_err_set(err, SK_EINTERNAL, "curl_multi_init failed");
    }
    curl_multi_setopt(cl->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(cl->multi, CURLMOPT_SOCKETDATA, cl);
    curl_multi_setopt(cl->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(cl->multi, CURLMOPT_TIMERDATA, cl);
    uv_timer_init(loop, &cl->timer);
    cl->timer.data = cl;
    uv_timer_init(loop, &cl->kick);
    cl->kick.data = cl;
    c->impl = cl;
    return SK_OK;
}

void sk_http_client_close(struct sk_http_client *c,
                          void (*cb)(struct sk_http_client *c))
{
    struct client *cl = c->impl;
    if (!cl || cl->closing)
        return;
    cl->closing = true;
    cl->close_cb = cb;
    struct sk_list *it;
    sk_list_each(it, &cl->calls)
    {
        struct call *ca = sk_list_entry(it, struct call, link);
        ca->canceled = true;
    }
    client_kick(cl);
}

int sk_http_call_start(struct sk_http_client *c, struct sk_http_call *call)
{
    struct client *cl = c->impl;
    if (!cl || cl->closing)
        return sk_err_set(&call->err, SK_ECANCELED,
                          "%s: HTTP client is closing",
                          call->url ? call->url : "(no URL)");
    struct call *ca = call_new(call, cl);
    if (!ca)
        return call->err.code;
    sk_list_insert_head(&cl->calls, &ca->link);
    call->impl = ca;
    client_kick(cl);
    return SK_OK;
}

void sk_http_call_cancel(struct sk_http_call *call)
{
    struct call *c = call->impl;
    if (!c || !c->cl || c->canceled)
        return;
    c->canceled = true;
    client_kick(c->cl);
}

enum sk_rc sk_http_call_sync(struct sk_http_call *call)
{
    if (!global_init(&call->err))
        return call->err.code;
    struct call *c = call_new(call, NULL);
    if (!c)
        return call->err.code;
    call->impl = c;
    CURLcode res = curl_easy_perform(c->easy);
    call_result(c, res);
    call_free(c);
    call->impl = NULL;
    return call->err.code;
}

void sk_http_call_reset(struct sk_http_call *call)
{
    free(call->resp_body);
    call->resp_body = NULL;
    call->resp_len = 0;
    free(call->captured);
    call->captured = NULL;
    call->status = 0;
    call->os_errno = 0;
    sk_err_clear(&call->err);
}

static enum sk_rc rc_of_status(long status)
{
    switch (status) {
    case 400:
    case 422:
        return SK_EINVAL;
    case 401:
        return SK_EAUTH;
    case 403:
        return SK_EPERM;
    case 404:
    case 410:
        return SK_ENOTFOUND;
    case 408:
    case 504:
        return SK_ETIMEDOUT;
    case 409:
    case 412:
        return SK_ECONFLICT;
    case 413:
    case 414:
    case 431:
        return SK_ETOOBIG;
    case 503:
    case 502:
        return SK_EUNAVAIL;
    default:
        return status >= 500 ? SK_EINTERNAL : SK_EPROTO;
    }
}

enum sk_rc sk_http_call_api_error(const struct sk_http_call *call,
                                  struct sk_err *err)
{
    if (call->err.code != SK_OK) {
        if (err)
            sk_err_copy(err, &call->err);
        return call->err.code;
    }
    if (status_ok(call->status)) {
        if (err)
            sk_err_clear(err);
        return SK_OK;
    }
    if (call->resp_body && call->resp_len > 0) {
        json_t *j = json_loadb(call->resp_body, call->resp_len, 0, NULL);
        json_t *e = json_object_get(j, "error");
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        if (code && msg) {
            enum sk_rc rc = sk_rc_from_name(code);
            if (rc == SK_OK)
                rc = SK_EINTERNAL; /* an error status cannot mean OK */
            sk_err_set(err, rc, "%s", msg);
            json_decref(j);
            return rc;
        }
        json_decref(j);
    }
    return sk_err_set(err, rc_of_status(call->status), "%s: %ld %s",
                      call->url ? call->url : "(no URL)", call->status,
                      sk_http_status_text((int)call->status));
}
