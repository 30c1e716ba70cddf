/* The Docker Engine API client. The contract is skiff/docker.h.
 *
 * Every operation is one `struct op`, linked into its client's list from
 * start to finish. An op either has an HTTP call in flight (whose callback
 * the HTTP client never runs inside sk_http_call_start or
 * sk_http_call_cancel), or it failed before its call could start and waits
 * for the client's `defer` timer; either way op_finish() is its one exit:
 * it unlinks and frees the op, then fires the user's callback once.
 *
 * The events stream and pull progress are newline-delimited JSON; logs come
 * in dockerd's multiplexed frames unless the container has a TTY, and the
 * logs endpoint says neither in a header, so a logs op first inspects the
 * container (Config.Tty) and then opens the stream. */
#include "skiff/docker.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "skiff/http.h"
#include "skiff/http_client.h"
#include "skiff/list.h"
#include "skiff/mem.h"

#define API_BASE "http://localhost/v1.41"
/* A buffered reply (inspect, list, an error body). */
#define REPLY_CAP ((size_t)8 << 20)
/* A log line; longer lines are delivered in pieces of this size. */
#define LOG_LINE_CAP ((size_t)64 << 10)
/* One event or pull progress message. */
#define JSON_LINE_CAP ((size_t)1 << 20)
/* The message of a system-error frame in a log stream. */
#define SYSERR_CAP ((size_t)4 << 10)
/* A request that is not a stream: dockerd answers these in well under a
 * second, but a busy daemon can take long; this only catches a hung one. */
#define CALL_TIMEOUT_MS 120000u
/* dockerd's default stop grace period, when the caller gives none. */
#define DEFAULT_STOP_S 10

enum op_kind { OP_PLAIN, OP_PULL, OP_EVENTS, OP_LOGS };

struct linebuf {
    char *buf;
    size_t len, cap;
};

struct op {
    struct sk_docker *d;
    struct sk_list link; /* in d->ops */
    enum op_kind kind;
    char *what; /* `start container "web.1"`, for messages */
    char *url;
    char *body;
    struct sk_http_call call;

    sk_docker_cb cb;
    sk_docker_event_cb on_event;
    sk_docker_line_cb on_line;
    sk_docker_end_cb on_end;
    void *ctx;

    bool deferred; /* no call: finishes from the defer timer with `err` */
    bool stopped;  /* _stop was called */
    /* An error the op found itself (before starting, or in the stream);
     * it wins over what the HTTP call reports. */
    struct sk_err err;

    struct linebuf jl; /* events, pull: the JSON line being read */
    json_t *last;      /* pull: the last progress message */

    /* logs */
    int phase; /* 0: inspecting the container, 1: streaming */
    char *logs_url;
    bool tty;
    struct linebuf lines[2]; /* stdout, stderr */
    unsigned char hdr[8];
    size_t hdr_len;
    size_t frame_left;
    int frame_stream;
    struct linebuf syserr;
};

struct sk_docker_events {
    struct op op;
};

struct sk_docker_logs {
    struct op op;
};

struct sk_docker {
    uv_loop_t *loop;
    char *socket;
    struct sk_http_client http;
    uv_timer_t defer;
    struct sk_list ops; /* struct op, in flight */
    bool closing;
    bool http_closed;
    bool defer_closing;
    void (*close_cb)(void *ctx);
    void *close_ctx;
};

/* ---- Small helpers ---- */

static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

/* Percent-encodes everything but RFC 3986's unreserved characters, '/'
 * included, so a name is always one path segment. */
static char *url_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = sk_malloc(n * 3 + 1);
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (is_unreserved(*p)) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

/* Names that cannot be a path segment of their own: curl would squash "."
 * and ".." and an empty one would address another endpoint. */
static bool bad_segment(const char *s)
{
    return !s || !*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0;
}

static void linebuf_append(struct linebuf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->buf = sk_realloc(b->buf, cap);
        b->cap = cap;
    }
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static enum sk_rc rc_of_status(long status)
{
    switch (status) {
    case 304:
        return SK_OK;
    case 400:
        return SK_EINVAL;
    case 404:
        return SK_ENOTFOUND;
    case 409:
        return SK_ECONFLICT;
    case 401:
    case 403:
        return SK_EPERM;
    case 503:
        return SK_EUNAVAIL;
    default:
        /* dockerd's 500s are failures of the daemon or the runtime
         * ("OCI runtime create failed: ..."), not of skiff. */
        return status >= 500 ? SK_EIO : SK_EPROTO;
    }
}

/* ---- Finishing ---- */

static void docker_maybe_shut(struct sk_docker *d);

static void op_free(struct op *op)
{
    free(op->what);
    free(op->url);
    free(op->body);
    free(op->logs_url);
    free(op->jl.buf);
    free(op->lines[0].buf);
    free(op->lines[1].buf);
    free(op->syserr.buf);
    json_decref(op->last);
    sk_http_call_reset(&op->call);
    free(op);
}

/* The one exit of an operation: unlinks and frees it, then fires its
 * callback with err (copied first: it may live in the op) and reply
 * (owned; released after the callback). */
static void op_finish(struct op *op, const struct sk_err *err, json_t *reply)
{
    struct sk_docker *d = op->d;
    struct sk_err e;
    sk_err_copy(&e, err);
    if (e.code != SK_OK) {
        json_decref(reply);
        reply = NULL;
    }
    enum op_kind kind = op->kind;
    sk_docker_cb cb = op->cb;
    sk_docker_end_cb on_end = op->on_end;
    void *ctx = op->ctx;
    sk_list_remove(&op->link);
    op_free(op);
    if (kind == OP_EVENTS || kind == OP_LOGS) {
        if (on_end)
            on_end(ctx, e.code, &e);
    } else if (cb) {
        cb(ctx, e.code, &e, reply);
    }
    json_decref(reply);
    docker_maybe_shut(d);
}

static struct op *first_deferred(struct sk_docker *d)
{
    struct sk_list *it;
    sk_list_each(it, &d->ops)
    {
        struct op *op = sk_list_entry(it, struct op, link);
        if (op->deferred)
            return op;
    }
    return NULL;
}

static void defer_cb(uv_timer_t *t)
{
    struct sk_docker *d = t->data;
    /* A callback may start or stop other ops: look again after each. */
    struct op *op;
    while ((op = first_deferred(d)))
        op_finish(op, &op->err, NULL);
}

/* Fails an op that has no call in flight, from the loop rather than from
 * the function that started it. err must be set. */
static void op_defer(struct op *op)
{
    struct sk_docker *d = op->d;
    op->deferred = true;
    if (!d->defer_closing)
        uv_timer_start(&d->defer, defer_cb, 0, 0);
}

static void op_cancel_msg(struct op *op, struct sk_err *err)
{
    if (op->stopped)
        sk_err_set(err, SK_ECANCELED, "%s: stopped", op->what);
    else
        sk_err_set(err, SK_ECANCELED, "%s: docker client closed", op->what);
}

/* ---- Starting ---- */

static void call_done(struct sk_http_call *call);

static struct op *op_new(struct sk_docker *d, enum op_kind kind, size_t size,
                         char *what)
{
    struct op *op = sk_calloc(1, size);
    op->d = d;
    op->kind = kind;
    op->what = what;
    sk_list_insert_head(&d->ops, &op->link);
    return op;
}

/* Starts the op's HTTP call; on failure the op finishes later with the
 * reason. With `deferred_ok` false the caller is a loop callback and the op
 * may finish at once. */
static void op_call(struct op *op, const char *method, const char *url,
                    sk_http_data_cb on_data, unsigned timeout_ms,
                    bool deferred_ok)
{
    struct sk_docker *d = op->d;
    struct sk_http_call *c = &op->call;
    if (d->closing) {
        op_cancel_msg(op, &op->err);
    } else {
        memset(c, 0, sizeof *c);
        c->method = method;
        c->url = url;
        c->unix_socket = d->socket;
        if (op->body) {
            c->body = op->body;
            c->body_len = strlen(op->body);
        }
        c->timeout_ms = timeout_ms;
        c->max_response_bytes = REPLY_CAP;
        c->on_data = on_data;
        c->cb = call_done;
        c->data = op;
        if (sk_http_call_start(&d->http, c) == SK_OK)
            return;
        sk_err_set(&op->err,
                   c->err.code == SK_ECANCELED ? SK_ECANCELED : SK_EINVAL,
                   "%s: %s", op->what, c->err.msg);
    }
    if (deferred_ok)
        op_defer(op);
    else
        op_finish(op, &op->err, NULL);
}

static void op_start(struct op *op, const char *method, char *path,
                     sk_http_data_cb on_data, unsigned timeout_ms)
{
    op->url = sk_printf("%s%s", API_BASE, path);
    free(path);
    op_call(op, method, op->url, on_data, timeout_ms, true);
}

static struct op *plain_new(struct sk_docker *d, sk_docker_cb cb, void *ctx,
                            char *what)
{
    struct op *op = op_new(d, OP_PLAIN, sizeof(struct op), what);
    op->cb = cb;
    op->ctx = ctx;
    return op;
}

/* An op whose input was refused before any call: it still calls back
 * from the loop. */
static bool refuse_segment(struct op *op, const char *kind, const char *s)
{
    if (!bad_segment(s))
        return false;
    sk_err_set(&op->err, SK_EINVAL, "%s: invalid %s \"%s\"", op->what, kind,
               s ? s : "(null)");
    op_defer(op);
    return true;
}

/* ---- Results ---- */

/* The message after the URL the HTTP client puts first. */
static const char *strip_url(const struct op *op, const char *msg)
{
    const char *url = op->call.url ? op->call.url : op->url;
    size_t n = url ? strlen(url) : 0;
    if (n && strncmp(msg, url, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
        return msg + n + 2;
    return msg;
}

static void transport_error(struct op *op, struct sk_err *err)
{
    const struct sk_err *ce = &op->call.err;
    enum sk_rc rc = ce->code;
    /* A cap is named as such; everything else is dockerd being out of
     * reach (refused, reset, timed out). */
    if (rc != SK_ETOOBIG && rc != SK_ECANCELED)
        rc = SK_EUNAVAIL;
    sk_err_set(err, rc, "%s: dockerd at %s: %s", op->what, op->d->socket,
               strip_url(op, ce->msg));
}

static void status_error(struct op *op, struct sk_err *err)
{
    const struct sk_http_call *c = &op->call;
    json_t *j = NULL;
    const char *msg = NULL;
    char text[256];
    if (c->resp_body && c->resp_len > 0) {
        j = json_loadb(c->resp_body, c->resp_len, 0, NULL);
        msg = json_string_value(json_object_get(j, "message"));
        if (!msg) {
            /* Not dockerd's JSON (a proxy?): the start of the body, on one
             * line. */
            size_t n = 0;
            for (size_t i = 0; i < c->resp_len && n + 1 < sizeof text; i++) {
                unsigned char ch = (unsigned char)c->resp_body[i];
                text[n++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
            }
            while (n > 0 && text[n - 1] == ' ')
                n--;
            text[n] = '\0';
            if (n > 0)
                msg = text;
        }
    }
    if (!msg)
        msg = sk_http_status_text((int)c->status);
    sk_err_set(err, rc_of_status(c->status), "%s: dockerd %ld: %s", op->what,
               c->status, msg);
    json_decref(j);
}

static void log_flush(struct op *op);
static bool pull_line(struct op *op, const char *p, size_t n);

/* Decides how a finished call ends its op: err is always set; *reply gets
 * the decoded body (owned) on success. May deliver the last log lines. */
static void op_result(struct op *op, struct sk_err *err, json_t **reply)
{
    struct sk_docker *d = op->d;
    struct sk_http_call *c = &op->call;
    bool streamed =
        op->kind != OP_PLAIN && !(op->kind == OP_LOGS && op->phase == 0);
    *reply = NULL;
    sk_err_clear(err);
    /* What is left of a stream that ended without a newline. */
    if (streamed && !op->stopped && !d->closing && op->err.code == SK_OK &&
        c->err.code == SK_OK && c->status >= 200 && c->status < 300) {
        if (op->kind == OP_LOGS)
            log_flush(op);
        else if (op->kind == OP_PULL && op->jl.len > 0)
            pull_line(op, op->jl.buf, op->jl.len);
    }

    if (op->stopped || d->closing) {
        op_cancel_msg(op, err);
    } else if (op->err.code != SK_OK) {
        sk_err_copy(err, &op->err);
    } else if (c->err.code != SK_OK) {
        transport_error(op, err);
    } else if (c->status < 200 || c->status >= 300) {
        if (c->status != 304)
            status_error(op, err);
    } else if (!streamed) {
        if (c->resp_body && c->resp_len > 0) {
            json_error_t je;
            *reply = json_loadb(c->resp_body, c->resp_len, 0, &je);
            if (!*reply)
                sk_err_set(err, SK_EPROTO, "%s: dockerd sent invalid JSON: %s",
                           op->what, je.text);
        }
    } else if (op->kind == OP_PULL) {
        *reply = op->last;
        op->last = NULL;
    } else if (op->kind == OP_EVENTS) {
        /* The stream has no end of its own: dockerd is going away. */
        sk_err_set(err, SK_EUNAVAIL, "%s: dockerd at %s ended the stream",
                   op->what, d->socket);
    } else if (op->hdr_len > 0 || op->frame_left > 0) {
        sk_err_set(err, SK_EPROTO,
                   "%s: dockerd ended the stream inside a frame", op->what);
    }
}

static void logs_open(struct op *op);

static void call_done(struct sk_http_call *call)
{
    struct op *op = call->data;
    struct sk_err err;
    json_t *reply;
    op_result(op, &err, &reply);
    if (op->kind == OP_LOGS && op->phase == 0 && err.code == SK_OK) {
        op->tty = json_is_true(
            json_object_get(json_object_get(reply, "Config"), "Tty"));
        json_decref(reply);
        sk_http_call_reset(call);
        logs_open(op);
        return;
    }
    op_finish(op, &err, reply);
}

/* ---- Client ---- */

struct sk_docker *sk_docker_new(uv_loop_t *loop, const char *socket,
                                struct sk_err *err)
{
    const char *path = socket ? socket : "";
    if (strncmp(path, "unix://", 7) == 0) {
        path += 7;
    } else if (strstr(path, "://")) {
        sk_err_set(err, SK_EINVAL,
                   "dockerd socket \"%s\": only unix:// sockets are supported",
                   path);
        return NULL;
    }
    if (!*path) {
        sk_err_set(err, SK_EINVAL, "dockerd socket: empty path");
        return NULL;
    }
    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        sk_err_set(err, SK_EINVAL,
                   "dockerd socket \"%s\": path longer than %zu bytes", path,
                   sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        return NULL;
    }
    struct sk_docker *d = sk_calloc(1, sizeof *d);
    if (sk_http_client_init(&d->http, loop, err) != SK_OK) {
        sk_err_wrap(err, "docker client");
        free(d);
        return NULL;
    }
    d->loop = loop;
    d->socket = sk_strdup(path);
    sk_list_init(&d->ops);
    uv_timer_init(loop, &d->defer);
    d->defer.data = d;
    return d;
}

static void defer_closed(uv_handle_t *h)
{
    struct sk_docker *d = h->data;
    /* Ops started after the last one finished (from a callback) were
     * failed with SK_ECANCELED and wait here. */
    struct op *op;
    while ((op = sk_list_first(&d->ops, struct op, link)))
        op_finish(op, &op->err, NULL);
    void (*cb)(void *) = d->close_cb;
    void *ctx = d->close_ctx;
    free(d->socket);
    free(d);
    if (cb)
        cb(ctx);
}

static void docker_maybe_shut(struct sk_docker *d)
{
    if (!d->closing || !d->http_closed || !sk_list_empty(&d->ops) ||
        d->defer_closing)
        return;
    d->defer_closing = true;
    uv_close((uv_handle_t *)&d->defer, defer_closed);
}

static void http_closed(struct sk_http_client *c)
{
    struct sk_docker *d =
        (struct sk_docker *)((char *)c - offsetof(struct sk_docker, http));
    d->http_closed = true;
    docker_maybe_shut(d);
}

void sk_docker_close(struct sk_docker *d, void (*cb)(void *ctx), void *ctx)
{
    if (!d || d->closing)
        return;
    d->closing = true;
    d->close_cb = cb;
    d->close_ctx = ctx;
    struct sk_list *it;
    sk_list_each(it, &d->ops)
    {
        struct op *op = sk_list_entry(it, struct op, link);
        if (op->deferred)
            op_cancel_msg(op, &op->err);
    }
    /* Cancels every call; each op finishes from its call's callback. */
    sk_http_client_close(&d->http, http_closed);
}

/* ---- Plain requests ---- */

void sk_docker_version(struct sk_docker *d, sk_docker_cb cb, void *ctx)
{
    struct op *op = plain_new(d, cb, ctx, sk_strdup("docker version"));
    op_start(op, "GET", sk_strdup("/version"), NULL, CALL_TIMEOUT_MS);
}

void sk_docker_info(struct sk_docker *d, sk_docker_cb cb, void *ctx)
{
    struct op *op = plain_new(d, cb, ctx, sk_strdup("docker info"));
    op_start(op, "GET", sk_strdup("/info"), NULL, CALL_TIMEOUT_MS);
}

void sk_docker_image_inspect(struct sk_docker *d, const char *image,
                             sk_docker_cb cb, void *ctx)
{
    struct op *op =
        plain_new(d, cb, ctx,
                  sk_printf("inspect image \"%s\"", image ? image : "(null)"));
    if (refuse_segment(op, "image name", image))
        return;
    char *e = url_escape(image);
    op_start(op, "GET", sk_printf("/images/%s/json", e), NULL, CALL_TIMEOUT_MS);
    free(e);
}

void sk_docker_create(struct sk_docker *d, const char *name,
                      const json_t *config, sk_docker_cb cb, void *ctx)
{
    struct op *op = plain_new(d, cb, ctx,
                              name ? sk_printf("create container \"%s\"", name)
                                   : sk_strdup("create container"));
    if (name && refuse_segment(op, "container name", name))
        return;
    op->body = config ? json_dumps(config, JSON_COMPACT) : sk_strdup("{}");
    if (!op->body) {
        sk_err_set(&op->err, SK_EINVAL,
                   "%s: the configuration cannot be encoded as JSON", op->what);
        op_defer(op);
        return;
    }
    char *path;
    if (name) {
        char *e = url_escape(name);
        path = sk_printf("/containers/create?name=%s", e);
        free(e);
    } else {
        path = sk_strdup("/containers/create");
    }
    op_start(op, "POST", path, NULL, CALL_TIMEOUT_MS);
}

/* POST|DELETE|GET /containers/{id}{suffix} */
static void container_op(struct sk_docker *d, const char *verb,
                         const char *method, const char *id, const char *suffix,
                         unsigned timeout_ms, sk_docker_cb cb, void *ctx)
{
    struct op *op = plain_new(
        d, cb, ctx, sk_printf("%s container \"%s\"", verb, id ? id : "(null)"));
    if (refuse_segment(op, "container", id))
        return;
    char *e = url_escape(id);
    op_start(op, method, sk_printf("/containers/%s%s", e, suffix), NULL,
             timeout_ms);
    free(e);
}

void sk_docker_start(struct sk_docker *d, const char *id, sk_docker_cb cb,
                     void *ctx)
{
    container_op(d, "start", "POST", id, "/start", CALL_TIMEOUT_MS, cb, ctx);
}

void sk_docker_stop(struct sk_docker *d, const char *id, int timeout_s,
                    sk_docker_cb cb, void *ctx)
{
    char suffix[32];
    if (timeout_s >= 0)
        snprintf(suffix, sizeof suffix, "/stop?t=%d", timeout_s);
    else
        snprintf(suffix, sizeof suffix, "/stop");
    /* dockerd answers only once the container is gone: allow the grace
     * period on top of the usual bound. */
    unsigned grace = (unsigned)(timeout_s >= 0 ? timeout_s : DEFAULT_STOP_S);
    unsigned timeout_ms = grace > 86400 ? 0 : CALL_TIMEOUT_MS + grace * 1000u;
    container_op(d, "stop", "POST", id, suffix, timeout_ms, cb, ctx);
}

void sk_docker_kill(struct sk_docker *d, const char *id, const char *signal,
                    sk_docker_cb cb, void *ctx)
{
    char *suffix;
    if (signal && *signal) {
        char *e = url_escape(signal);
        suffix = sk_printf("/kill?signal=%s", e);
        free(e);
    } else {
        suffix = sk_strdup("/kill");
    }
    container_op(d, "kill", "POST", id, suffix, CALL_TIMEOUT_MS, cb, ctx);
    free(suffix);
}

void sk_docker_remove(struct sk_docker *d, const char *id, bool force,
                      sk_docker_cb cb, void *ctx)
{
    container_op(d, "remove", "DELETE", id, force ? "?force=1&v=1" : "?v=1",
                 CALL_TIMEOUT_MS, cb, ctx);
}

void sk_docker_inspect(struct sk_docker *d, const char *id, sk_docker_cb cb,
                       void *ctx)
{
    container_op(d, "inspect", "GET", id, "/json", CALL_TIMEOUT_MS, cb, ctx);
}

/* "?filters=<escaped JSON>", or "" without filters. */
static char *filters_query(const json_t *filters)
{
    if (!filters)
        return sk_strdup("");
    char *js = json_dumps(filters, JSON_COMPACT);
    if (!js)
        return NULL;
    char *e = url_escape(js);
    char *q = sk_printf("filters=%s", e);
    free(e);
    free(js);
    return q;
}

void sk_docker_list(struct sk_docker *d, const char *label, sk_docker_cb cb,
                    void *ctx)
{
    struct op *op =
        plain_new(d, cb, ctx,
                  label ? sk_printf("list containers with label \"%s\"", label)
                        : sk_strdup("list containers"));
    json_t *f = NULL;
    char *q = NULL;
    if (label)
        f = json_pack("{s:[s]}", "label", label);
    if (f || !label)
        q = filters_query(f);
    json_decref(f);
    if (!q) {
        sk_err_set(&op->err, SK_EINVAL, "%s: label is not valid UTF-8",
                   op->what);
        op_defer(op);
        return;
    }
    op_start(op, "GET",
             sk_printf("/containers/json?all=1%s%s", *q ? "&" : "", q), NULL,
             CALL_TIMEOUT_MS);
    free(q);
}

/* ---- Networks ---- */

void sk_docker_network_create(struct sk_docker *d, const json_t *body,
                              sk_docker_cb cb, void *ctx)
{
    const char *name = json_string_value(json_object_get(body, "Name"));
    struct op *op = plain_new(
        d, cb, ctx,
        sk_printf("create network \"%s\"", name ? name : "(no name)"));
    op->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (!op->body) {
        sk_err_set(&op->err, SK_EINVAL,
                   "%s: the request cannot be encoded as JSON", op->what);
        op_defer(op);
        return;
    }
    op_start(op, "POST", sk_strdup("/networks/create"), NULL, CALL_TIMEOUT_MS);
}

void sk_docker_network_list(struct sk_docker *d, const char *label,
                            sk_docker_cb cb, void *ctx)
{
    struct op *op =
        plain_new(d, cb, ctx,
                  label ? sk_printf("list networks with label \"%s\"", label)
                        : sk_strdup("list networks"));
    json_t *f = label ? json_pack("{s:[s]}", "label", label) : NULL;
    char *q = (f || !label) ? filters_query(f) : NULL;
    json_decref(f);
    if (!q) {
        sk_err_set(&op->err, SK_EINVAL, "%s: label is not valid UTF-8",
                   op->what);
        op_defer(op);
        return;
    }
    op_start(op, "GET", sk_printf("/networks%s%s", *q ? "?" : "", q), NULL,
             CALL_TIMEOUT_MS);
    free(q);
}

void sk_docker_network_remove(struct sk_docker *d, const char *id,
                              sk_docker_cb cb, void *ctx)
{
    struct op *op = plain_new(
        d, cb, ctx, sk_printf("remove network \"%s\"", id ? id : "(null)"));
    if (refuse_segment(op, "network", id))
        return;
    char *e = url_escape(id);
    op_start(op, "DELETE", sk_printf("/networks/%s", e), NULL, CALL_TIMEOUT_MS);
    free(e);
}

void sk_docker_network_connect(struct sk_docker *d, const char *network,
                               const char *container, const json_t *endpoint,
                               sk_docker_cb cb, void *ctx)
{
    struct op *op =
        plain_new(d, cb, ctx,
                  sk_printf("connect container \"%s\" to network \"%s\"",
                            container ? container : "(null)",
                            network ? network : "(null)"));
    if (refuse_segment(op, "network", network) ||
        refuse_segment(op, "container", container))
        return;
    json_t *body = json_pack("{s:s}", "Container", container);
    if (endpoint)
        json_object_set_new(body, "EndpointConfig", json_deep_copy(endpoint));
    op->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!op->body) {
        sk_err_set(&op->err, SK_EINVAL,
                   "%s: the request cannot be encoded as JSON", op->what);
        op_defer(op);
        return;
    }
    char *e = url_escape(network);
    op_start(op, "POST", sk_printf("/networks/%s/connect", e), NULL,
             CALL_TIMEOUT_MS);
    free(e);
}

/* ---- JSON line streams: pull progress and events ---- */

typedef bool (*json_line_fn)(struct op *op, const char *line, size_t len);

/* Splits a stream into lines and hands each to fn; false stops the
 * transfer (op->err says why, unless the op was stopped). */
static bool json_lines(struct op *op, const char *p, size_t n, json_line_fn fn)
{
    while (n > 0) {
        if (op->stopped || op->d->closing)
            return false;
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (op->jl.len + take > JSON_LINE_CAP) {
            sk_err_set(&op->err, SK_ETOOBIG,
                       "%s: a message from dockerd exceeds %zu bytes", op->what,
                       JSON_LINE_CAP);
            return false;
        }
        bool ok = true;
        if (nl && op->jl.len == 0) {
            ok = fn(op, p, take);
        } else {
            linebuf_append(&op->jl, p, take);
            if (nl) {
                ok = fn(op, op->jl.buf, op->jl.len);
                op->jl.len = 0;
            }
        }
        if (!ok)
            return false;
        p += take + (nl ? 1 : 0);
        n -= take + (nl ? 1 : 0);
    }
    return !op->stopped && !op->d->closing;
}

static bool blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\r' && p[i] != '\t')
            return false;
    return true;
}

static json_t *json_line_parse(struct op *op, const char *p, size_t n)
{
    json_error_t je;
    json_t *j = json_loadb(p, n, 0, &je);
    if (!j)
        sk_err_set(&op->err, SK_EPROTO, "%s: dockerd sent invalid JSON: %s",
                   op->what, je.text);
    return j;
}

static bool pull_line(struct op *op, const char *p, size_t n)
{
    if (blank(p, n))
        return true;
    json_t *j = json_line_parse(op, p, n);
    if (!j)
        return false;
    const char *msg = json_string_value(json_object_get(j, "error"));
    if (msg) {
        json_t *code =
            json_object_get(json_object_get(j, "errorDetail"), "code");
        enum sk_rc rc = json_is_integer(code)
                            ? rc_of_status((long)json_integer_value(code))
                            : SK_EUNAVAIL;
        sk_err_set(&op->err, rc == SK_OK ? SK_EUNAVAIL : rc, "%s: %s", op->what,
                   msg);
        json_decref(j);
        return false;
    }
    json_decref(op->last);
    op->last = j;
    return true;
}

static bool pull_data(struct sk_http_call *call, const char *buf, size_t len)
{
    return json_lines(call->data, buf, len, pull_line);
}

void sk_docker_image_pull(struct sk_docker *d, const char *image,
                          sk_docker_cb cb, void *ctx)
{
    struct op *op =
        op_new(d, OP_PULL, sizeof(struct op),
               sk_printf("pull image \"%s\"", image ? image : "(null)"));
    op->cb = cb;
    op->ctx = ctx;
    if (refuse_segment(op, "image name", image))
        return;
    /* name[:tag] or name[:tag]@digest; without either dockerd would pull
     * every tag, so the default tag is explicit. A tag is after the last
     * '/' (a registry's host:port has a colon too); with a digest, dockerd
     * takes the digest as the tag and the name without a tag. */
    const char *at = strchr(image, '@');
    size_t name_len = at ? (size_t)(at - image) : strlen(image);
    const char *slash = memrchr(image, '/', name_len);
    const char *from = slash ? slash : image;
    const char *colon = memchr(from, ':', name_len - (size_t)(from - image));
    const char *tag = "latest";
    if (colon)
        tag = colon + 1;
    if (at)
        tag = at + 1;
    if (colon)
        name_len = (size_t)(colon - image);
    char *name = sk_strndup(image, name_len);
    char *en = url_escape(name);
    char *et = url_escape(tag);
    op_start(op, "POST",
             sk_printf("/images/create?fromImage=%s&tag=%s", en, et), pull_data,
             0);
    free(name);
    free(en);
    free(et);
}

static bool event_line(struct op *op, const char *p, size_t n)
{
    if (blank(p, n))
        return true;
    json_t *j = json_line_parse(op, p, n);
    if (!j)
        return false;
    if (op->on_event)
        op->on_event(op->ctx, j);
    json_decref(j);
    return true;
}

static bool events_data(struct sk_http_call *call, const char *buf, size_t len)
{
    return json_lines(call->data, buf, len, event_line);
}

struct sk_docker_events *sk_docker_events_start(struct sk_docker *d,
                                                const json_t *filters,
                                                sk_docker_event_cb on_event,
                                                sk_docker_end_cb on_end,
                                                void *ctx)
{
    struct sk_docker_events *e = (struct sk_docker_events *)op_new(
        d, OP_EVENTS, sizeof *e, sk_strdup("docker events stream"));
    struct op *op = &e->op;
    op->on_event = on_event;
    op->on_end = on_end;
    op->ctx = ctx;
    char *q = filters_query(filters);
    if (!q) {
        sk_err_set(&op->err, SK_EINVAL,
                   "%s: the filters cannot be encoded as JSON", op->what);
        op_defer(op);
        return e;
    }
    op_start(op, "GET", sk_printf("/events%s%s", *q ? "?" : "", q), events_data,
             0);
    free(q);
    return e;
}

static void op_stop(struct op *op)
{
    if (op->stopped)
        return;
    op->stopped = true;
    if (op->deferred)
        op_cancel_msg(op, &op->err);
    else
        sk_http_call_cancel(&op->call);
}

void sk_docker_events_stop(struct sk_docker_events *e)
{
    if (e)
        op_stop(&e->op);
}

/* ---- Logs ---- */

/* Delivers the line held for stream s (1 or 2). */
static void log_emit(struct op *op, int s)
{
    struct linebuf *b = &op->lines[s - 1];
    size_t len = b->len;
    /* A TTY ends its lines with "\r\n". */
    if (op->tty && len > 0 && b->buf[len - 1] == '\r')
        len--;
    b->buf[len] = '\0';
    b->len = 0;
    if (op->on_line)
        op->on_line(op->ctx, s, b->buf, len);
}

/* Adds bytes of stream s, delivering each complete line; a line longer
 * than LOG_LINE_CAP is delivered in pieces of that size. */
static bool log_feed(struct op *op, int s, const char *p, size_t n)
{
    struct linebuf *b = &op->lines[s - 1];
    if (!b->buf) {
        b->buf = sk_malloc(LOG_LINE_CAP + 1);
        b->cap = LOG_LINE_CAP + 1;
    }
    while (n > 0) {
        if (op->stopped || op->d->closing)
            return false;
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        size_t room = LOG_LINE_CAP - b->len;
        if (take > room) {
            memcpy(b->buf + b->len, p, room);
            b->len += room;
            p += room;
            n -= room;
            log_emit(op, s);
            continue;
        }
        memcpy(b->buf + b->len, p, take);
        b->len += take;
        p += take;
        n -= take;
        if (nl) {
            p++;
            n--;
            log_emit(op, s);
        }
    }
    return !op->stopped && !op->d->closing;
}

static void log_flush(struct op *op)
{
    for (int s = 1; s <= 2; s++)
        if (op->lines[s - 1].len > 0 && !op->stopped && !op->d->closing)
            log_emit(op, s);
}

static bool logs_data(struct sk_http_call *call, const char *p, size_t n)
{
    struct op *op = call->data;
    if (op->tty)
        return log_feed(op, 1, p, n);
    /* Frames: [stream, 0, 0, 0, size (big-endian u32)] then size bytes;
     * stream 0 is stdin echoed on stdout, 3 an error from dockerd. */
    while (n > 0) {
        if (op->stopped || op->d->closing)
            return false;
        if (op->frame_left == 0) {
            size_t k = sizeof op->hdr - op->hdr_len;
            if (k > n)
                k = n;
            memcpy(op->hdr + op->hdr_len, p, k);
            op->hdr_len += k;
            p += k;
            n -= k;
            if (op->hdr_len < sizeof op->hdr)
                break;
            op->hdr_len = 0;
            const unsigned char *h = op->hdr;
            if (h[0] > 3 || h[1] || h[2] || h[3]) {
                sk_err_set(&op->err, SK_EPROTO,
                           "%s: bad frame header from dockerd "
                           "(%02x %02x %02x %02x)",
                           op->what, h[0], h[1], h[2], h[3]);
                return false;
            }
            op->frame_stream = h[0];
            op->frame_left = (size_t)h[4] << 24 | (size_t)h[5] << 16 |
                             (size_t)h[6] << 8 | (size_t)h[7];
            op->syserr.len = 0;
        } else {
            size_t k = op->frame_left < n ? op->frame_left : n;
            if (op->frame_stream == 3) {
                size_t keep = SYSERR_CAP - op->syserr.len;
                linebuf_append(&op->syserr, p, k < keep ? k : keep);
            } else if (!log_feed(op, op->frame_stream == 2 ? 2 : 1, p, k)) {
                return false;
            }
            p += k;
            n -= k;
            op->frame_left -= k;
        }
        if (op->frame_stream == 3 && op->frame_left == 0 && op->hdr_len == 0) {
            size_t len = op->syserr.len;
            while (len > 0 && (op->syserr.buf[len - 1] == '\n' ||
                               op->syserr.buf[len - 1] == '\r'))
                len--;
            sk_err_set(&op->err, SK_EIO, "%s: dockerd: %.*s", op->what,
                       (int)len, op->syserr.buf ? op->syserr.buf : "");
            return false;
        }
    }
    return !op->stopped && !op->d->closing;
}

/* Phase 1: the container is known (and whether it has a TTY). */
static void logs_open(struct op *op)
{
    op->phase = 1;
    op_call(op, "GET", op->logs_url, logs_data, 0, false);
}

struct sk_docker_logs *sk_docker_logs_start(struct sk_docker *d, const char *id,
                                            const struct sk_docker_logs_opts *o,
                                            sk_docker_line_cb on_line,
                                            sk_docker_end_cb on_end, void *ctx)
{
    struct sk_docker_logs *l = (struct sk_docker_logs *)op_new(
        d, OP_LOGS, sizeof *l,
        sk_printf("logs of container \"%s\"", id ? id : "(null)"));
    struct op *op = &l->op;
    op->on_line = on_line;
    op->on_end = on_end;
    op->ctx = ctx;
    if (refuse_segment(op, "container", id))
        return l;
    struct sk_docker_logs_opts none = {.tail = -1};
    if (!o)
        o = &none;
    char tail[24] = "all";
    if (o->tail >= 0)
        snprintf(tail, sizeof tail, "%d", o->tail);
    char since[32] = "";
    if (o->since_s > 0)
        snprintf(since, sizeof since, "&since=%lld", (long long)o->since_s);
    char *e = url_escape(id);
    op->logs_url = sk_printf(
        "%s/containers/%s/logs?stdout=1&stderr=1&follow=%d&timestamps=%d"
        "&tail=%s%s",
        API_BASE, e, o->follow ? 1 : 0, o->timestamps ? 1 : 0, tail, since);
    op_start(op, "GET", sk_printf("/containers/%s/json", e), NULL,
             CALL_TIMEOUT_MS);
    free(e);
    return l;
}

void sk_docker_logs_stop(struct sk_docker_logs *l)
{
    if (l)
        op_stop(&l->op);
}
