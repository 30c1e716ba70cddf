/* Private interface between net/stream.c (listener, connect, plain
 * transport) and net/tls.c (TLS transport). Not for use outside net/.
 * stream.c calls tls.c; tls.c uses only what is here.
 *
 * Everything runs on the loop thread of the loop the objects were made on. */
#ifndef SKIFF_NET_TLS_INTERNAL_H
#define SKIFF_NET_TLS_INTERNAL_H

#include <stdbool.h>
#include <uv.h>

#include "skiff/err.h"
#include "skiff/stream.h"
#include "skiff/tls.h"

/* TCP keepalive delay for every TCP stream, seconds. */
#define SK_STREAM_KEEPALIVE_S 30

/* Every transport's stream struct begins with this, so that stream.c can
 * learn when a stream it handed out is gone (the listener's connection cap)
 * whatever its transport. */
struct sk_stream_base {
    struct sk_stream pub;
    void (*release_fn)(void *arg); /* optional, see below */
    void *release_arg;
};

/* Sets a hook that runs once, after the user's close callback and just
 * before the stream is freed. */
void sk_stream_set_release(struct sk_stream *s, void (*fn)(void *arg),
                           void *arg);
/* Called by a transport from the close callback of its last handle, just
 * before freeing the stream: runs the user's close callback, then the
 * release hook. Inline here, so that tls.c calls nothing in stream.c (which
 * calls tls.c to make TLS streams). */
static inline void sk_stream_base_closed(struct sk_stream_base *b)
{
    if (b->pub.close_cb)
        b->pub.close_cb(&b->pub);
    if (b->release_fn)
        b->release_fn(b->release_arg);
}

/* Whether the context was made for the accept side. */
bool sk_tls_ctx_is_server(const struct sk_tls_ctx *ctx);

/* The end of a handshake. On success (status 0) the stream is open, not
 * reading, with `peer` filled; the callee owns it. On failure (status < 0, a
 * UV_* code) err says "ADDR: cause" (with the distinct messages listed in
 * skiff/tls.h); the stream must then be closed by its owner with
 * sk_stream_close() and nothing else. */
typedef void (*sk_tls_handshake_cb)(void *arg, struct sk_stream *s, int status,
                                    const struct sk_err *err);

/* Wraps a connected TCP handle (allocated with sk_malloc, initialised on
 * loop; ownership passes to the stream) as a TLS stream and starts the
 * handshake, as server or client according to ctx. `addr` is the remote
 * "ip:port", used in peer.addr and in error messages. The stream holds a
 * reference to ctx.
 *
 * cb runs exactly once, never inside this call -- unless the owner closes
 * the stream first with sk_stream_close(), which aborts the handshake and
 * suppresses cb. The handshake has no timeout of its own: the owner keeps
 * one and closes the stream when it fires. */
struct sk_stream *sk_tls_stream_start(uv_loop_t *loop, uv_tcp_t *tcp,
                                      struct sk_tls_ctx *ctx, const char *addr,
                                      sk_tls_handshake_cb cb, void *arg);

/* Whether any byte came from the peer yet (during a handshake: whether it
 * sent its first message at all). */
bool sk_tls_stream_heard(const struct sk_stream *s);

#endif
