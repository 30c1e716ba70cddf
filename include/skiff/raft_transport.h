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
 * After the preamble, every byte a peer sends towards raft passes the
 * message check below first; a connection whose message breaks a limit is
 * cut (and reported) before raft sees the bytes that would make it allocate
 * or read too much.
 *
 * Admission: the listener gives TLS handshakes a budget of their own (32
 * at once, 8 per source address, 1 s; skiff/stream.h), so connections that
 * never present a certificate cannot keep a peer out; streams of verified
 * managers have their own 256 places. Our outgoing connections to peers
 * are not subject to any of it.
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
    /* A connection was refused or failed; for logging (strangers can
     * make these happen at will: log them rate-limited). May be NULL. */
    void (*reject_cb)(void *ctx, const struct sk_err *err);
    void *reject_ctx;
    /* Message limits (see below); 0: the defaults. */
    size_t max_entry_bytes;
    size_t max_snapshot_bytes;
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

/* ---- The message check ----
 *
 * libraft 0.22 trusts the lengths in the messages it receives
 * (src/uv_recv.c, src/uv_encoding.c): it allocates the header length a
 * message preamble claims, then the payload length the header claims,
 * before those bytes arrive, and decodes a header without checking that it
 * is as long as what it reads. The check parses the same framing as the
 * bytes stream by:
 *
 *   preamble  16 bytes: type (byte 0), version (byte 2), header length
 *             (u64, little endian)
 *   header    per type; AppendEntries: term, prev index, prev term,
 *             commit, entry count n, n entry headers (term u64, type u8,
 *             3 unused, length u32), 8 unused; InstallSnapshot: term, last
 *             index, last term, configuration index, configuration length,
 *             the configuration, snapshot length, 8 unused
 *   payload   AppendEntries: the entries' data; InstallSnapshot: the
 *             whole snapshot (libraft 0.22 sends it as one message)
 *
 * and refuses a message when:
 *   - its type is unknown, or its header is shorter than what libraft's
 *     decoder reads for it, or longer than SK_RAFT_MAX_HEADER_BYTES;
 *   - an entry is not a command, barrier or change, is longer than
 *     max_entry_bytes (a proposal's cap: 4 MiB, the store's
 *     SK_TXN_MAX_BYTES) or, except the last, not whole 8-byte words (the
 *     decoder assumes the padding libraft and skiff always add);
 *   - an AppendEntries carries more than SK_RAFT_MAX_BATCH_ENTRIES entries
 *     (libraft's in-flight limit, 32, which skiff does not change) worth
 *     of max_entry_bytes;
 *   - an InstallSnapshot's configuration does not decode within its
 *     length, or its snapshot is longer than max_snapshot_bytes (1 GiB by
 *     default. A snapshot is the store serialised: 9.3 MiB for 1,000 nodes
 *     and 10,000 tasks, 90 MiB with 100,000 tasks (tests/bench/sched_bench
 *     stores), so 1 GiB takes about a million tasks; a store beyond it
 *     could not be sent to a follower that needs a snapshot).
 *
 * Pure; for the transport, tests and the fuzzer. */
#define SK_RAFT_MAX_HEADER_BYTES (64u << 10)
#define SK_RAFT_MAX_BATCH_ENTRIES 32
#define SK_RAFT_DEFAULT_MAX_ENTRY_BYTES ((size_t)4 << 20)
#define SK_RAFT_DEFAULT_MAX_SNAPSHOT_BYTES ((size_t)1 << 30)

struct sk_raft_frame {
    size_t max_entry_bytes;
    size_t max_snapshot_bytes;
    int phase;
    unsigned char pre[16];
    size_t got; /* bytes of the current preamble or header so far */
    unsigned type, version;
    size_t header_len;
    unsigned char *header; /* while it arrives */
    uint64_t payload_left;
    uint64_t messages; /* complete so far */
};

/* Limits of 0 take the defaults. */
void sk_raft_frame_init(struct sk_raft_frame *f, size_t max_entry_bytes,
                        size_t max_snapshot_bytes);
/* Checks the next len bytes of the stream. SK_OK: they may go on to raft.
 * Otherwise (SK_ETOOBIG for a length over a limit, SK_EPROTO for anything
 * else) err names the message, its type and the limit, and the stream
 * must end: the check stays failed. */
enum sk_rc sk_raft_frame_check(struct sk_raft_frame *f, const void *buf,
                               size_t len, struct sk_err *err);
void sk_raft_frame_free(struct sk_raft_frame *f);

#endif
