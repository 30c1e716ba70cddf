/* Byte streams on libuv: one small interface, two transports.
 *
 * A `struct sk_stream` is a connected, bidirectional byte stream. Two
 * transports implement it as peers -- plain TCP or unix sockets, and mutual
 * TLS over TCP (skiff/tls.h) -- so that callers (the HTTP server, the Raft
 * transport) never ask which one they hold.
 *
 * Threading: everything runs on the loop thread of the loop the stream was
 * made on.
 *
 * Ownership: the transport allocates a stream and frees it after its close
 * callback has returned. The user owns `data`; the close callback is the
 * place to free it. A stream is closed exactly once, by its user, with
 * sk_stream_close(); that is also the only way to release it.
 *
 * Errors: after the read callback reports nread < 0 (UV_EOF for an orderly
 * end, another UV_* code for a failure, including a failed write), no more
 * data arrives and the user must close the stream. Writes never call back on
 * failure; they surface through the read callback, so a stream has one error
 * path. Writes made before a failure are simply dropped. */
#ifndef SKIFF_STREAM_H
#define SKIFF_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "skiff/err.h"

/* Who is at the other end, as its certificate says. For a plain stream, or a
 * TLS client that presented no certificate, `authenticated` is false and the
 * identity strings are empty. */
struct sk_peer {
    bool authenticated;   /* certificate verified against the cluster CA */
    char node_id[64];     /* certificate subject CN */
    char role[16];        /* certificate subject OU: manager, worker, admin */
    char cluster_id[64];  /* certificate subject O */
    int64_t not_after_ms; /* certificate expiry, ms since the epoch */
    char addr[64];        /* remote "ip:port", or "unix" */

    /* Which certificate: the store records the current one of each node
     * (skiff/ca.h), so that a replaced one can be refused. */
    int64_t not_before_ms; /* start of validity, ms since the epoch */
    char serial[48];       /* serial number, lower-case hex */
};

struct sk_stream;

/* nread > 0: buf holds nread bytes, valid only during the call.
 * nread < 0: UV_EOF or an error code; close the stream. */
typedef void (*sk_stream_read_cb)(struct sk_stream *s, ssize_t nread,
                                  const char *buf);
/* The write queue drained to zero bytes (for flow control of producers). */
typedef void (*sk_stream_drain_cb)(struct sk_stream *s);
typedef void (*sk_stream_close_cb)(struct sk_stream *s);

struct sk_stream_vtable {
    void (*read_start)(struct sk_stream *s);
    void (*read_stop)(struct sk_stream *s);
    int (*write)(struct sk_stream *s, const void *buf, size_t len);
    void (*close)(struct sk_stream *s);
};

struct sk_stream {
    const struct sk_stream_vtable *vt; /* the transport's; not for users */
    uv_loop_t *loop;
    void *data;                  /* the user's */
    sk_stream_read_cb read_cb;   /* set with sk_stream_read_start */
    sk_stream_drain_cb drain_cb; /* optional, set by the user */
    sk_stream_close_cb close_cb; /* set with sk_stream_close */
    struct sk_peer peer;
    size_t write_queued; /* bytes accepted by write, not yet sent */
    bool closing;        /* sk_stream_close was called */
};

/* Starts delivering data (and the end of it) to cb. May be called again to
 * resume after sk_stream_read_stop; cb replaces the previous one. */
void sk_stream_read_start(struct sk_stream *s, sk_stream_read_cb cb);
/* Stops delivering data until the next read_start (backpressure). */
void sk_stream_read_stop(struct sk_stream *s);
/* Queues len bytes for sending; the bytes are copied. Returns 0, or
 * UV_ECANCELED once the stream is closing or has failed. */
int sk_stream_write(struct sk_stream *s, const void *buf, size_t len);
/* Closes the stream: stops reading, drops unsent data, and calls cb (which
 * may be NULL) once every handle is closed; then frees the stream. Calling
 * it again is a no-op. cb never runs inside sk_stream_close itself. */
void sk_stream_close(struct sk_stream *s, sk_stream_close_cb cb);

/* Plain transport: wraps a connected TCP or pipe handle the caller
 * allocated with sk_malloc and initialised on `loop`. The stream takes
 * ownership of the handle (and frees it when closed). */
struct sk_stream *sk_plain_stream_new(uv_loop_t *loop, uv_stream_t *handle);

/* ---- Listening and connecting (plain or TLS) ---- */

struct sk_tls_ctx; /* skiff/tls.h */
struct sk_listener;

/* A new connection is ready: for TLS, the handshake is done and the peer's
 * certificate verified. The callee owns the stream. */
typedef void (*sk_listener_accept_cb)(struct sk_listener *l,
                                      struct sk_stream *s);
/* A connection was refused before reaching accept_cb (TLS handshake failed,
 * certificate rejected, a budget below was full, handshake timeout). err
 * names the remote address and the cause, e.g.
 * `10.77.0.14:51234: certificate expired`. Optional; for logging (anyone
 * can make these happen at will: log them rate-limited). */
typedef void (*sk_listener_reject_cb)(struct sk_listener *l,
                                      const struct sk_err *err);
typedef void (*sk_listener_close_cb)(struct sk_listener *l);

/* Admission. Until its TLS handshake is done a connection proves nothing,
 * so handshakes have a budget of their own and a short deadline:
 *
 * - at most max_handshakes at once. When full, a new connection takes the
 *   place of the oldest handshake that has not sent a byte though it was
 *   polled for it (a client sends its first message at once, an idle
 *   connection never does), or else of the oldest handshake that has begun
 *   (a client near by finishes in a few ms: it is the last to go); only if
 *   every handshake is too new to judge is the new connection refused.
 *   Connections are taken from the kernel's queue at most a quarter of the
 *   budget per loop iteration, so that a burst cannot fill the budget with
 *   the unjudged. So a flood of idle or stalled connections cannot keep
 *   out a client with a certificate.
 * - at most max_per_source at once from one IP address; more from that
 *   address are refused at once (a burst from one address cannot push out
 *   the handshakes of everyone else).
 * - handshake_timeout_ms to complete, from the accept.
 *
 * Accepted streams are counted in two separate budgets, so that strangers
 * never take a peer's place: streams with a verified client certificate
 * against max_connections, all others (plain TCP, or TLS without a client
 * certificate) against max_unauthenticated; a stream beyond its budget is
 * refused. The owner of unauthenticated streams should budget them more
 * tightly itself (the HTTP server does: skiff/http.h).
 *
 * After a flood (TRIM_CHURN refused or unauthenticated connections come
 * and gone), the listener hands freed memory back to the system
 * (malloc_trim), at most every few seconds. */
struct sk_listener_config {
    const char *host; /* IPv4 address to bind, e.g. "10.77.0.11" */
    int port;
    struct sk_tls_ctx *tls; /* NULL: plain TCP. Referenced, not stolen. */
    unsigned handshake_timeout_ms; /* 0: 1000 */
    unsigned max_handshakes;       /* TLS handshakes at once; 0: 64 */
    unsigned max_per_source;       /* ... from one IP address; 0: 8 */
    unsigned max_connections;      /* authenticated streams; 0: 1024 */
    unsigned max_unauthenticated;  /* other streams; 0: 1024 */
    sk_listener_accept_cb accept_cb;
    sk_listener_reject_cb reject_cb; /* may be NULL */
    void *data;
};

struct sk_listener {
    void *data;
    void *impl; /* private */
};

/* What is open right now (for /metrics and tests). */
struct sk_listener_counts {
    unsigned handshakes;    /* TLS handshakes in progress */
    unsigned authenticated; /* accepted streams still open, by kind */
    unsigned unauthenticated;
};

/* Binds and listens. On failure nothing is left open and err says which
 * address failed and why ("10.77.0.11:7443: address in use"). */
int sk_listener_start(struct sk_listener *l, uv_loop_t *loop,
                      const struct sk_listener_config *cfg, struct sk_err *err);
/* Swaps the TLS context used for connections accepted from now on
 * (certificate renewal); existing streams keep theirs. */
void sk_listener_set_tls(struct sk_listener *l, struct sk_tls_ctx *tls);
/* The port actually bound (useful with port 0 in tests). */
int sk_listener_port(const struct sk_listener *l);
void sk_listener_counts(const struct sk_listener *l,
                        struct sk_listener_counts *out);
/* Stops listening, aborts handshakes in progress (accepted streams are
 * untouched: their owners close them), then calls cb. */
void sk_listener_close(struct sk_listener *l, sk_listener_close_cb cb);

/* Outgoing connection. The request is caller-allocated and must stay valid
 * until cb has run. cb runs exactly once: with a stream (status 0) or with
 * NULL and an error in req->err (status < 0), also when cancelled. */
struct sk_connect_req;
typedef void (*sk_connect_cb)(struct sk_connect_req *req, struct sk_stream *s,
                              int status);

struct sk_connect_req {
    void *data;
    struct sk_err err;
    void *impl; /* private */
};

struct sk_connect_config {
    const char *host; /* IPv4 address */
    int port;
    struct sk_tls_ctx *tls;     /* NULL: plain TCP */
    const char *expect_role;    /* TLS: required OU of the server, or NULL */
    const char *expect_node_id; /* TLS: required CN of the server, or NULL */
    unsigned timeout_ms;        /* connect + handshake; 0: 10000 */
};

/* Starts connecting. Returns 0, or an error (bad address) without calling
 * cb. */
int sk_connect(struct sk_connect_req *req, uv_loop_t *loop,
               const struct sk_connect_config *cfg, sk_connect_cb cb);
/* Aborts a connection in progress; cb then runs with UV_ECANCELED. No-op if
 * cb already ran. */
void sk_connect_cancel(struct sk_connect_req *req);

#endif
