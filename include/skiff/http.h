/* HTTP/1.1 server on skiff streams (parsing with http-parser).
 *
 * The server takes connected streams (plain or TLS, from an sk_listener) and
 * turns their bytes into requests for one handler. It owns the streams it is
 * given and closes them on error, on timeout, on `Connection: close`, or
 * when the server is closed.
 *
 * Limits (each a config field, each named in the error the client gets):
 * request line + headers (431 past max_header_bytes), body (413 past
 * max_body_bytes), time to receive a whole request once its first byte
 * arrived (408), idle keep-alive time, open connections. Malformed requests
 * get 400 with the parser's reason and the connection is closed.
 *
 * Strangers -- connections whose stream has no verified client certificate
 * (a joining node, a health probe, anyone) -- are budgeted apart, so that
 * they can never take the place of a client with a certificate:
 *   - at most max_unauthenticated of them, and max_unauthenticated_per_source
 *     from one IP address; when either is full, the oldest idle stranger
 *     (else the oldest still sending its request) is closed to make room,
 *     and only when none can go the new one gets 503;
 *   - idle and request deadlines of unauthenticated_timeout_ms (when
 *     shorter than the general ones);
 *   - optionally a request rate per source address (a token bucket of
 *     unauthenticated_burst, refilled at unauthenticated_rate per second):
 *     past it, 429 with Retry-After (the connection stays: a new TLS
 *     handshake would cost more than the answer). Token checks and joins
 *     cost CPU; this keeps a flood of them from one address small.
 * Connections with a certificate count against max_connections (503 past
 * it).
 *
 * Requests on one connection are handled one at a time, in order (no
 * pipelining in parallel): the next is parsed only after the handler
 * finished the current one.
 *
 * The handler contract: the server calls `handler(req)` once per request.
 * The handler must finish the request exactly once, now or later from the
 * same loop, with ONE of:
 *   - sk_http_respond() / sk_http_respond_json() / sk_http_respond_error();
 *   - sk_http_stream_begin(), any number of sk_http_stream_write(), then
 *     sk_http_stream_end() -- a chunked response (events, logs, sessions).
 * It must finish even if the client went away meanwhile: then the calls
 * still succeed and simply send nothing. The server frees the request after
 * it is finished; do not touch it afterwards.
 * If the client goes away before the request is finished, the server calls
 * req->abort_cb (if the handler set one) once, so long-lived responses can
 * stop early and finish.
 *
 * All on the loop thread. */
#ifndef SKIFF_HTTP_H
#define SKIFF_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "skiff/err.h"
#include "skiff/stream.h"

struct sk_http_req;
struct sk_http_server;

typedef void (*sk_http_handler)(struct sk_http_req *req);
typedef void (*sk_http_abort_cb)(struct sk_http_req *req);
typedef void (*sk_http_server_close_cb)(struct sk_http_server *srv);

struct sk_http_header {
    char *name; /* lower-cased */
    char *value;
};

struct sk_http_req {
    struct sk_http_server *server;
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* percent-decoded path, without the query */
    const char *query;  /* raw query string without '?', or "" */
    const struct sk_http_header *headers;
    size_t n_headers;
    const char *body; /* NUL-terminated for convenience; may hold NULs */
    size_t body_len;
    const struct sk_peer *peer; /* the connection's peer, never NULL */
    void *data;                 /* the handler's */
    sk_http_abort_cb abort_cb;  /* set by the handler, optional */
    void *impl;                 /* private */
};

struct sk_http_server_config {
    sk_http_handler handler;
    void *data;                              /* available as srv->data */
    size_t max_header_bytes;                 /* 0: 16 KiB */
    size_t max_body_bytes;                   /* 0: 1 MiB */
    unsigned request_timeout_ms;             /* 0: 30000 */
    unsigned idle_timeout_ms;                /* 0: 120000 */
    unsigned max_connections;                /* with a certificate; 0: 1024 */
    unsigned max_unauthenticated;            /* 0: 128 */
    unsigned max_unauthenticated_per_source; /* 0: 8 */
    unsigned unauthenticated_timeout_ms;     /* 0: 10000 */
    unsigned unauthenticated_rate;  /* requests/s per source; 0: no limit */
    unsigned unauthenticated_burst; /* 0: 2 x rate */
    const char *server_name;        /* "Server:" header; NULL: "skiff" */
    /* The server refused or closed a connection or a request itself (a
     * budget, the rate): err names the address and the cause. Optional;
     * for logging (strangers can make these happen at will: log them
     * rate-limited). */
    void (*reject_cb)(struct sk_http_server *srv, const struct sk_err *err);
};

struct sk_http_server {
    void *data;
    void *impl; /* private */
};

int sk_http_server_init(struct sk_http_server *srv, uv_loop_t *loop,
                        const struct sk_http_server_config *cfg);
/* Hands a connected stream to the server, which owns it from now on. If the
 * server is at max_connections, it answers 503 and closes the stream. */
void sk_http_server_adopt(struct sk_http_server *srv, struct sk_stream *s);
/* Closes every connection (firing abort_cb of unfinished requests, which
 * must still be finished by their handlers), then calls cb once nothing is
 * left. */
void sk_http_server_close(struct sk_http_server *srv,
                          sk_http_server_close_cb cb);
/* Number of open connections, with and without certificates (for /metrics
 * and tests). */
unsigned sk_http_server_connections(const struct sk_http_server *srv);

/* ---- Reading a request ---- */

/* Value of header `name` (case-insensitive), or NULL. */
const char *sk_http_header(const struct sk_http_req *req, const char *name);
/* Copies the percent-decoded value of query parameter `name` into buf.
 * Returns false if absent or if it does not fit. A parameter given without
 * '=' ("?follow") yields "". */
bool sk_http_query(const struct sk_http_req *req, const char *name, char *buf,
                   size_t size);
/* True after the client went away. */
bool sk_http_req_aborted(const struct sk_http_req *req);

/* ---- Finishing a request ---- */

/* Adds a response header; call before respond/stream_begin. Copied. */
void sk_http_add_header(struct sk_http_req *req, const char *name,
                        const char *value);
void sk_http_respond(struct sk_http_req *req, int status,
                     const char *content_type, const char *body, size_t len);
/* Sends `body` as application/json; takes the caller's reference. */
void sk_http_respond_json(struct sk_http_req *req, int status, json_t *body);
/* {"error":{"code":"<sk_rc_name>","message":"<err->msg>"}} with the status
 * sk_rc_http_status(err->code). */
void sk_http_respond_error(struct sk_http_req *req, const struct sk_err *err);

void sk_http_stream_begin(struct sk_http_req *req, int status,
                          const char *content_type);
/* Sends one chunk (copied). Returns false once the client is gone. */
bool sk_http_stream_write(struct sk_http_req *req, const void *buf, size_t len);
/* Bytes queued and not yet sent, for producers that must not outrun a slow
 * client. */
size_t sk_http_stream_queued(const struct sk_http_req *req);
void sk_http_stream_end(struct sk_http_req *req);

/* The reason phrase for a status ("Not Found"). */
const char *sk_http_status_text(int status);

#endif
