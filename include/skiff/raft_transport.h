/* Canonical raft's transport over mutual TLS.
 *
 * Implements `struct raft_uv_transport` for raft_uv_init(). Raft sees plain
 * uv streams: each connection is one end of an AF_UNIX socketpair; the
 * other end is pumped, both ways, through a TLS stream (skiff/stream.h) to
 * the peer manager. Raft's connections are one-way (the connecting side
 * only sends), so a pump carries a few bytes back at most.
 *
 * Who may connect: the TLS listener requires a certificate from the cluster
 * CA; then the peer's role must be "manager" and its raft ID (which raft
 * sends in our preamble, inside the tunnel) must belong to its certificate's
 * node ID (sk_raft_id_of); then `authorize` decides (the node must be a
 * manager that was not removed). Outgoing connections check the same of the
 * server. A refusal is reported through `reject_cb` for logging.
 *
 * Preamble, client to server, inside TLS: "SKRAFT1\n", the raft ID (8 bytes,
 * little endian), the address length (2 bytes, little endian) and the
 * address ("10.77.0.12:7444").
 *
 * All on the loop thread. The transport object must stay valid until the
 * close callback raft passes to t->close has run. */
#ifndef SKIFF_RAFT_TRANSPORT_H
#define SKIFF_RAFT_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "skiff/err.h"
#include "skiff/id.h"
#include "skiff/stream.h"
#include "skiff/tls.h"

struct sk_raft_transport_config {
    uv_loop_t *loop;
    const char *listen_host;       /* bind address, e.g. "10.77.0.11" */
    int listen_port;               /* 7444 */
    struct sk_tls_ctx *server_tls; /* require_peer_cert = true */
    struct sk_tls_ctx *client_tls;
    /* May this peer (a verified manager certificate claiming raft ID id)
     * take part? NULL: any manager certificate of the cluster. */
    bool (*authorize)(void *ctx, const struct sk_peer *peer, uint64_t id);
    void *authorize_ctx;
    /* A connection was refused or failed; for logging. May be NULL. */
    void (*reject_cb)(void *ctx, const struct sk_err *err);
    void *reject_ctx;
};

/* Fills t (t->impl holds our state) for raft_uv_init. Copies cfg; the TLS
 * contexts are referenced. */
int sk_raft_transport_init(struct raft_uv_transport *t,
                           const struct sk_raft_transport_config *cfg,
                           struct sk_err *err);
/* Uses new TLS contexts for connections made from now on (renewal). */
void sk_raft_transport_set_tls(struct raft_uv_transport *t,
                               struct sk_tls_ctx *server_tls,
                               struct sk_tls_ctx *client_tls);
/* Frees what init allocated; call after raft closed the transport (its
 * close callback ran), or if raft_uv_init was never reached. */
void sk_raft_transport_release(struct raft_uv_transport *t);

/* Asks `authorize` again about every incoming connection open (a node's
 * role or certificate changed) and closes those it now refuses, reporting
 * each through reject_cb. Raft reconnects on its own where it still may. */
void sk_raft_transport_recheck(struct raft_uv_transport *t);

/* Is a connection from the manager with raft ID id open? A running peer
 * keeps one to us (raft's connections are one-way: it sends to us on its
 * own), so none means it stopped or is cut off. */
bool sk_raft_transport_hears_from(const struct raft_uv_transport *t,
                                  uint64_t id);

/* Counters for /metrics. */
struct sk_raft_transport_stats {
    uint64_t accepted, connected, refused, bytes_in, bytes_out;
    unsigned open;
};
void sk_raft_transport_stats(const struct raft_uv_transport *t,
                             struct sk_raft_transport_stats *out);

#endif
