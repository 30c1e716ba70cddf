/* HTTP client calls with libcurl: asynchronously on a libuv loop (curl's
 * multi interface driven by uv_poll and a uv_timer), or synchronously for
 * the CLI and for a node joining before its loop runs.
 *
 * A call is a caller-allocated `struct sk_http_call`: fill in the request
 * fields, start it, and its callback runs exactly once -- with a response
 * (any HTTP status) or with a transport error -- also when cancelled. After
 * the callback, the response fields belong to the caller until
 * sk_http_call_reset() (or the caller frees them itself).
 *
 * TLS: with `tls` set, the server must present a certificate chain that
 * verifies against tls->ca_pem alone, and, if tls->expect_role is set, carry
 * that OU (checked in OpenSSL's verify callback). The client presents
 * tls->cert_pem/key_pem if given. With `insecure_fetch_ca` the server is not
 * verified at all -- only for a joiner fetching the CA, which it then pins
 * against its token's digest.
 *
 * Transport failures fill `err` with a message that names the URL and the
 * cause ("https://10.77.0.11:7443/v1/join: connection timed out after
 * 3000 ms", "...: TLS alert: unknown ca"). */
#ifndef SKIFF_HTTP_CLIENT_H
#define SKIFF_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "skiff/err.h"

struct sk_http_call;
typedef void (*sk_http_call_cb)(struct sk_http_call *call);
/* Streaming body: called with each piece as it arrives. Return false to
 * stop the transfer (the call then finishes with SK_ECANCELED). */
typedef bool (*sk_http_data_cb)(struct sk_http_call *call, const char *buf,
                                size_t len);

struct sk_tls_creds {
    const char *ca_pem;
    const char *cert_pem; /* may be NULL: no client certificate */
    const char *key_pem;
    const char *expect_role; /* required OU of the server, or NULL */
};

struct sk_http_call {
    /* Request; strings are copied at start. */
    const char *method;      /* NULL: GET, or POST when body is set */
    const char *url;         /* "https://10.77.0.11:7443/v1/nodes" */
    const char *unix_socket; /* connect here instead (dockerd) */
    const char *body;
    size_t body_len;
    const char *content_type;   /* NULL: application/json when body set */
    const char *const *headers; /* extra "Name: value" lines, NULL-ended */
    const struct sk_tls_creds *tls;
    bool insecure_fetch_ca;
    unsigned connect_timeout_ms; /* 0: 5000 */
    unsigned timeout_ms;         /* whole call; 0: none (streams) */
    size_t max_response_bytes;   /* buffered body cap; 0: 16 MiB */
    sk_http_data_cb on_data;     /* NULL: buffer the body */
    const char *capture_header;  /* a response header to keep, or NULL */
    sk_http_call_cb cb;
    void *data;

    /* Response. */
    long status;     /* HTTP status, 0 on transport error */
    char *resp_body; /* buffered body, NUL-terminated (NULL if streamed) */
    size_t resp_len;
    char *captured;    /* capture_header's value, if the response had it */
    struct sk_err err; /* code SK_OK when a response arrived */
    int os_errno;      /* a transport error's errno (ECONNREFUSED...), or 0 */

    void *impl; /* private */
};

/* The driver of async calls on one loop. */
struct sk_http_client {
    void *impl;
};

int sk_http_client_init(struct sk_http_client *c, uv_loop_t *loop,
                        struct sk_err *err);
/* Cancels every call in progress (their callbacks run with SK_ECANCELED),
 * then closes its handles; cb runs when all are closed. */
void sk_http_client_close(struct sk_http_client *c,
                          void (*cb)(struct sk_http_client *c));

/* Starts an async call. Returns 0, or an error (bad URL) without calling
 * back. */
int sk_http_call_start(struct sk_http_client *c, struct sk_http_call *call);
/* Aborts a call in progress; its callback runs with SK_ECANCELED (not inside
 * this function). No-op if the callback already ran. */
void sk_http_call_cancel(struct sk_http_call *call);

/* Runs a call to completion on the calling thread (no loop). Returns
 * err.code; call->cb is not used. */
enum sk_rc sk_http_call_sync(struct sk_http_call *call);

/* Frees the response fields and clears them, so the struct can be reused. */
void sk_http_call_reset(struct sk_http_call *call);

/* Convenience for JSON APIs: if the call got an HTTP error status whose
 * body is skiff's {"error":{"code","message"}}, fills err with that code and
 * message and returns it; for other non-2xx bodies uses the status line.
 * Returns SK_OK for 2xx. A transport error is returned as is. */
enum sk_rc sk_http_call_api_error(const struct sk_http_call *call,
                                  struct sk_err *err);

#endif
