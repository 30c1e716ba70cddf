/* The cluster's certificate authority and admission rules, as decisions
 * over the store: who may join, with which role, and what certificate they
 * get. Pure: the caller proposes the objects these functions build and
 * sends the certificates once the change is committed.
 *
 * The CA key lives in the cluster object sealed with the cluster data key
 * (skiff/pki.h), which only managers hold; join tokens are kept as hashes
 * (for the constant-time check) and sealed (so `join-token` can show them
 * again). */
#ifndef SKIFF_CA_H
#define SKIFF_CA_H

#include <stdint.h>

#include "skiff/err.h"
#include "skiff/objects.h"
#include "skiff/pki.h"
#include "skiff/store.h"
#include "skiff/wire.h"

/* What a brand-new cluster starts with. */
struct sk_cluster_init {
    struct sk_cluster *cluster; /* to create; heap, sk_object_free */
    char *ca_key_pem;           /* the CA key in clear, to sign the first
                                   certificates before the cluster object is
                                   committed */
    char *worker_token;
    char *manager_token;
};

/* Makes the CA, the tokens and the cluster object (spec may be NULL for
 * defaults; it is copied). */
enum sk_rc sk_ca_init_cluster(const char *cluster_id,
                              const struct sk_cluster_spec *spec,
                              const unsigned char data_key[SK_DATA_KEY_SIZE],
                              struct sk_cluster_init *out, struct sk_err *err);
void sk_cluster_init_free(struct sk_cluster_init *init);

/* Everything `skiffd --init` makes: the cluster (CA, tokens), this first
 * manager's node object, certificate and key, an admin client certificate
 * and key, and the first Raft command (create cluster + node). */
struct sk_bootstrap {
    struct sk_cluster_init init;
    struct sk_node *node;
    char *node_cert, *node_key;
    char *admin_cert, *admin_key;
    char *command; /* JSON text of the first change */
};

struct sk_bootstrap_request {
    struct sk_node_description description; /* borrowed */
    const char *api_addr;
    const char *raft_addr;
    const struct sk_cluster_spec *spec; /* NULL: defaults */
    int64_t admin_validity_ms;          /* 0: one year */
};

enum sk_rc sk_ca_bootstrap(const struct sk_bootstrap_request *req,
                           const unsigned char data_key[SK_DATA_KEY_SIZE],
                           int64_t now_ms, struct sk_bootstrap *out,
                           struct sk_err *err);
void sk_bootstrap_free(struct sk_bootstrap *b);

struct sk_join_grant {
    struct sk_node *node; /* the node object to create; heap */
    char *cert_pem;
};

/* Checks a node's join request (skiff/wire.h: the token, format, CA digest,
 * secret in constant time, which role; the description's host name, which
 * becomes the node's name, and its control- and data-plane IPv4 addresses;
 * a manager's API and Raft "ip:port"), then signs a certificate for a new
 * node. Errors:
 * SK_EINVAL (malformed request or token), SK_EAUTH ("join token is not
 * valid for this cluster: ..."), SK_EEXIST (the name is taken),
 * SK_EUNAVAIL (the cluster is not initialised yet). */
enum sk_rc sk_ca_admit(const struct sk_store *s,
                       const unsigned char data_key[SK_DATA_KEY_SIZE],
                       const struct sk_join_body *req, int64_t now_ms,
                       struct sk_join_grant *out, struct sk_err *err);
void sk_join_grant_free(struct sk_join_grant *g);

/* Signs a certificate for an existing node from its CSR, with the role the
 * node should have now (spec.role): renewal, promotion, demotion. */
enum sk_rc sk_ca_issue(const struct sk_store *s,
                       const unsigned char data_key[SK_DATA_KEY_SIZE],
                       const struct sk_node *node, const char *csr_pem,
                       int64_t now_ms, char **out_cert, struct sk_err *err);

/* Signs an admin client certificate (OU admin) valid validity_ms. */
enum sk_rc sk_ca_issue_admin(const char *ca_cert_pem, const char *ca_key_pem,
                             const char *cluster_id, const char *csr_pem,
                             int64_t now_ms, int64_t validity_ms,
                             char **out_cert, struct sk_err *err);

/* The join token for role (SK_ROLE_WORKER/MANAGER), unsealed. */
enum sk_rc sk_ca_token(const struct sk_cluster *c,
                       const unsigned char data_key[SK_DATA_KEY_SIZE], int role,
                       char **out_token, struct sk_err *err);
/* A copy of the cluster with a new token for role; the old one stops
 * working once the copy is committed. */
enum sk_rc sk_ca_rotate_token(const struct sk_cluster *c,
                              const unsigned char data_key[SK_DATA_KEY_SIZE],
                              int role, struct sk_cluster **out_cluster,
                              char **out_token, struct sk_err *err);

#endif
