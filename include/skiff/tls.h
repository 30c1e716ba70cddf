/* Mutual TLS 1.3 over libuv TCP, with OpenSSL memory BIOs.
 *
 * A TLS context holds the cluster CA (the only trust anchor), this node's
 * certificate and key, and the verification policy. Streams made with it
 * (through sk_listener_start / sk_connect in skiff/stream.h) are ordinary
 * `struct sk_stream`s whose `peer` describes the verified certificate.
 *
 * Policy, every connection: TLS 1.3 only, no session tickets, the peer's
 * chain must verify against the cluster CA alone (no system roots), and the
 * peer's certificate must be within its validity period.
 *
 * - Server side, `require_peer_cert` true (Raft, port 7444): a client
 *   without a certificate is refused in the handshake.
 * - Server side, `require_peer_cert` false (the HTTPS API, port 7443): a
 *   client may connect without a certificate (a joining node); its stream
 *   has peer.authenticated == false and the HTTP layer decides what it may
 *   call. A client that presents a certificate that does not verify (other
 *   CA, expired) is still refused in the handshake.
 * - Client side: the server must present a certificate that verifies, and
 *   match the expected role/node ID given to sk_connect.
 *
 * Refusals carry distinct messages, so logs and users can tell them apart:
 *   "no client certificate", "certificate not signed by the cluster CA",
 *   "certificate expired", "certificate not yet valid",
 *   "server role is worker, want manager", "server is node X, want Y".
 *
 * Contexts are reference-counted; streams hold a reference, so a context can
 * be replaced (certificate renewal) while old connections live on. */
#ifndef SKIFF_TLS_H
#define SKIFF_TLS_H

#include <stdbool.h>
#include <stdint.h>

#include "skiff/err.h"
#include "skiff/stream.h"

struct sk_tls_ctx;

struct sk_tls_config {
    const char *ca_pem;     /* the cluster CA certificate (PEM) */
    const char *cert_pem;   /* this node's certificate (PEM); NULL for none */
    const char *key_pem;    /* its private key (PEM) */
    bool server;            /* accept side (true) or connect side */
    bool require_peer_cert; /* server side only, see above */
};

/* Builds a context; returns NULL and fills err if a PEM does not parse or
 * the key does not match the certificate. The caller holds one reference. */
struct sk_tls_ctx *sk_tls_ctx_new(const struct sk_tls_config *cfg,
                                  struct sk_err *err);
void sk_tls_ctx_ref(struct sk_tls_ctx *ctx);
/* Drops a reference; the last one frees the context. NULL is allowed. */
void sk_tls_ctx_unref(struct sk_tls_ctx *ctx);

/* Fills a peer description from a verified certificate (PEM), as the stream
 * does after a handshake. For tests and for the HTTP client side. */
int sk_tls_peer_from_pem(const char *cert_pem, struct sk_peer *out_peer,
                         struct sk_err *err);

#endif
