/* Joining a cluster, as `skiffd --join HOST:PORT --token T` does before
 * its loop starts (synchronous).
 *
 * 1. Fetch the CA from the manager without trusting anyone, and pin it:
 *    its SHA-256 must equal the digest in the token, else stop (wrong
 *    cluster, or someone in between).
 * 2. Make a key and a CSR, and send the CSR with the token over TLS that
 *    now trusts only that CA (and only a manager's certificate).
 * 3. Receive the node ID, the role the token grants, the certificate, the
 *    managers -- and, for a manager, the cluster data key.
 * Unreachable managers and "no leader yet" are retried until `patience_ms`
 * runs out; a refusal (bad token, name taken) fails at once with the
 * manager's message. */
#ifndef SKIFF_JOIN_H
#define SKIFF_JOIN_H

#include <stdint.h>

#include "skiff/datadir.h"
#include "skiff/err.h"
#include "skiff/objects.h"

struct sk_join_config {
    const char *manager; /* "10.77.0.11:7443" */
    const char *token;
    /* What the node says about itself (borrowed); its host name becomes
     * the node's name and the CSR's common name. */
    struct sk_node_description description;
    const char *api_addr; /* used if the token makes a manager */
    const char *raft_addr;
    unsigned patience_ms; /* 0: 60 s */
};

/* On success fills the membership fields of *out (ID, cluster, role,
 * credentials, managers, data key); the caller sets the addresses and
 * saves it. */
enum sk_rc sk_join_cluster(const struct sk_join_config *cfg,
                           struct sk_local_node *out, struct sk_err *err);

#endif
