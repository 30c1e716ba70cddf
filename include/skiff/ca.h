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

/* ---- Who a node certificate speaks for ----
 *
 * Every manager decides from its own store, the same way: a node
 * certificate counts only while it is its node's current one (the serial
 * the CA recorded when it issued it), so demoting or removing a node
 * revokes its old certificate on every manager as soon as the change is
 * applied there, and its OU gives manager rights only while the node is a
 * manager in the store. */

/* A node certificate as presented: by a TLS peer, or by a manager that
 * forwards the call of one. */
struct sk_cert_ident {
    const char *node_id; /* CN */
    const char *role;    /* OU */
    const char *serial;  /* lower-case hex */
    int64_t not_before_ms;
};

/* Records cert_pem, just issued to node u (a copy of the stored node that
 * the caller proposes), as the node's current certificate: serial, start
 * and end of validity. `presented` is the certificate the node called
 * with: when it is the node's current one and has the role of the new one
 * (a renewal), it is kept as the previous certificate, honoured until
 * now_ms + SK_CERT_RENEWAL_GRACE_MS; after a role change it is not. */
#define SK_CERT_RENEWAL_GRACE_MS 60000
enum sk_rc sk_ca_record_cert(struct sk_node *u, const char *cert_pem,
                             const struct sk_cert_ident *presented,
                             int64_t now_ms, struct sk_err *err);

enum sk_cert_standing {
    SK_CERT_NOT_MEMBER, /* no such node: removed, or its join is not
                           applied here yet */
    SK_CERT_REVOKED,    /* the node holds a newer certificate, or this is
                           not a node certificate */
    SK_CERT_NODE,       /* current: the node's own calls */
    SK_CERT_MANAGER,    /* current, OU manager, and the node is a manager
                           in the store: Raft, forwarding, too */
};

/* What the store makes of a certificate at now_ms. Current is: the
 * recorded serial; the previous one during its renewal grace; or one
 * issued after the recorded one (a change this store has not applied
 * yet: only the CA, inside a Raft entry, issues certificates); or any,
 * for a node recorded before serials were. For the refusals and for
 * SK_CERT_NODE, err says why it is not (more): e.g. "node X is not a
 * member of this cluster (removed?)". err may be NULL. */
enum sk_cert_standing sk_ca_cert_standing(const struct sk_store *s,
                                          const struct sk_cert_ident *c,
                                          int64_t now_ms, struct sk_err *err);

/* ---- Calls a manager forwards to the leader ----
 *
 * A follower forwards a write (or a consistent read) to the leader on its
 * own connection, saying for whom in X-Skiff-Principal and proving that it
 * was made by manager code in X-Skiff-Forward: an HMAC-SHA256, under a key
 * derived from the cluster data key (which only managers hold), over the
 * principal, the method, the path and query, a digest of the body and the
 * time. The leader checks it, its age (SK_FORWARD_MAX_AGE_MS either way:
 * the managers' clocks must agree that well), and that the connection is a
 * current manager's (sk_ca_cert_standing). A certificate alone, manager or
 * not, never speaks for anyone else. */

#define SK_FORWARD_KEY_SIZE 32
#define SK_FORWARD_MAX_AGE_MS 30000
#define SK_PRINCIPAL_MAX 192
#define SK_FORWARD_TAG_MAX 96

enum sk_principal_kind {
    SK_PRINCIPAL_NONE, /* unauthenticated (a joining node) */
    SK_PRINCIPAL_NODE,
    SK_PRINCIPAL_ADMIN,
};

/* Who a call speaks for. For a node, its certificate as presented. */
struct sk_principal {
    enum sk_principal_kind kind;
    char node_id[64];
    char role[16]; /* the certificate's OU */
    char serial[48];
    int64_t not_before_ms;
};

/* The certificate a node principal presented (pointing into p). */
struct sk_cert_ident sk_principal_cert(const struct sk_principal *p);
/* "anonymous", "admin", or "node ID ROLE SERIAL NOT_BEFORE_MS". */
void sk_principal_format(const struct sk_principal *p,
                         char out[SK_PRINCIPAL_MAX]);
/* The inverse; SK_EINVAL ("forwarded principal: ...") on anything else. */
enum sk_rc sk_principal_parse(const char *text, struct sk_principal *out,
                              struct sk_err *err);

/* A forwarded call, as both ends see it. */
struct sk_forwarded {
    const char *principal; /* the X-Skiff-Principal value */
    const char *method;
    const char *path;  /* as the server parsed it, without the query */
    const char *query; /* raw, without '?'; "" for none */
    const char *body;
    size_t body_len;
};

void sk_ca_forward_key(const unsigned char data_key[SK_DATA_KEY_SIZE],
                       unsigned char out[SK_FORWARD_KEY_SIZE]);
/* The X-Skiff-Forward value for f at now_ms: "TIME_MS HEX-MAC". */
void sk_ca_forward_sign(const unsigned char key[SK_FORWARD_KEY_SIZE],
                        const struct sk_forwarded *f, int64_t now_ms,
                        char out[SK_FORWARD_TAG_MAX]);
/* Checks a tag (NULL: missing). SK_EAUTH with why: "forwarded call: no
 * X-Skiff-Forward", "...: it does not verify", "...: made 42 s ago (the
 * managers' clocks differ, or it was replayed)". */
enum sk_rc sk_ca_forward_verify(const unsigned char key[SK_FORWARD_KEY_SIZE],
                                const struct sk_forwarded *f, const char *tag,
                                int64_t now_ms, struct sk_err *err);

#endif
