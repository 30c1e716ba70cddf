#include "skiff/ca.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/base32.h"
#include "skiff/mem.h"
#include "skiff/parse.h"

static char *digest_text(const unsigned char d[SK_DIGEST_SIZE])
{
    char *out = sk_malloc(sk_base32_encoded_len(SK_DIGEST_SIZE) + 1);
    sk_base32_encode(d, SK_DIGEST_SIZE, out);
    return out;
}

/* Makes a token for the CA digest; fills the hash and sealed fields. */
static char *new_token(const unsigned char digest[SK_DIGEST_SIZE],
                       const unsigned char key[SK_DATA_KEY_SIZE], char **hash,
                       char **sealed)
{
    struct sk_token t;
    char text[SK_TOKEN_MAX_LEN], hex[65];
    sk_token_new(digest, &t);
    sk_token_format(&t, text);
    sk_token_secret_hash(&t, hex);
    free(*hash);
    free(*sealed);
    *hash = sk_strdup(hex);
    *sealed = sk_seal(key, text, strlen(text));
    return sk_strdup(text);
}

enum sk_rc sk_ca_init_cluster(const char *cluster_id,
                              const struct sk_cluster_spec *spec,
                              const unsigned char data_key[SK_DATA_KEY_SIZE],
                              struct sk_cluster_init *out, struct sk_err *err)
{
    memset(out, 0, sizeof *out);
    char *cert = NULL, *key = NULL;
    enum sk_rc rc = sk_pki_ca_new(cluster_id, &cert, &key, err);
    if (rc != SK_OK)
        return rc;
    unsigned char digest[SK_DIGEST_SIZE];
    if ((rc = sk_pki_cert_digest(cert, digest, err)) != SK_OK) {
        free(cert);
        free(key);
        return rc;
    }
    struct sk_cluster *c = sk_object_new(SK_KIND_CLUSTER);
    snprintf(c->meta.id, sizeof c->meta.id, "%s", cluster_id);
    if (spec)
        sk_schema_copy(&sk_cluster_spec_schema, &c->spec, spec);
    else
        sk_schema_defaults(&sk_cluster_spec_schema, &c->spec);
    c->ca_cert_pem = cert;
    c->ca_digest = digest_text(digest);
    c->keys.ca_key_sealed = sk_seal(data_key, key, strlen(key));
    out->worker_token = new_token(digest, data_key, &c->keys.worker_token_hash,
                                  &c->keys.worker_token_sealed);
    out->manager_token =
        new_token(digest, data_key, &c->keys.manager_token_hash,
                  &c->keys.manager_token_sealed);
    out->cluster = c;
    out->ca_key_pem = key;
    return SK_OK;
}

void sk_cluster_init_free(struct sk_cluster_init *init)
{
    sk_object_free(SK_KIND_CLUSTER, init->cluster);
    if (init->ca_key_pem) {
        /* The CA key in clear does not linger in freed memory. */
        memset(init->ca_key_pem, 0, strlen(init->ca_key_pem));
        free(init->ca_key_pem);
    }
    free(init->worker_token);
    free(init->manager_token);
    memset(init, 0, sizeof *init);
}

static enum sk_rc ca_key(const struct sk_cluster *c,
                         const unsigned char key[SK_DATA_KEY_SIZE],
                         char **out_pem, struct sk_err *err)
{
    unsigned char *plain;
    size_t len;
    if (!c->keys.ca_key_sealed)
        return sk_err_set(err, SK_EINTERNAL, "cluster has no CA key");
    enum sk_rc rc = sk_unseal(key, c->keys.ca_key_sealed, &plain, &len, err);
    if (rc != SK_OK)
        return sk_err_wrap(err, "CA key");
    *out_pem = (char *)plain;
    return SK_OK;
}

static void wipe_free(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

static bool valid_ipv4(const char *s)
{
    struct in_addr a;
    return s && inet_pton(AF_INET, s, &a) == 1;
}

static bool valid_host_port(const char *s)
{
    if (!s)
        return false;
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) > 15)
        return false;
    char host[16];
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    return valid_ipv4(host) && *end == '\0' && port > 0 && port <= 65535;
}

static enum sk_rc sign(const struct sk_cluster *c,
                       const unsigned char key[SK_DATA_KEY_SIZE],
                       const char *csr, const char *node_id, const char *role,
                       const char *addr, int64_t now_ms, char **out_cert,
                       struct sk_err *err)
{
    char *ca_pem = NULL;
    enum sk_rc rc = ca_key(c, key, &ca_pem, err);
    if (rc != SK_OK)
        return rc;
    const char *sans[] = {addr, NULL};
    struct sk_pki_sign_req req = {
        .ca_cert_pem = c->ca_cert_pem,
        .ca_key_pem = ca_pem,
        .csr_pem = csr,
        .node_id = node_id,
        .role = role,
        .cluster_id = c->meta.id,
        .ip_sans = addr ? sans : NULL,
        .now_ms = now_ms,
        .validity_ms = c->spec.cert_expiry_ms,
    };
    rc = sk_pki_sign(&req, out_cert, err);
    wipe_free(ca_pem);
    return rc;
}

/* A new node object as a joining (or the first) node describes itself. */
static struct sk_node *new_node(const struct sk_node_description *desc,
                                int role, const char *api_addr,
                                const char *raft_addr, const char *message,
                                int64_t now_ms)
{
    struct sk_node *n = sk_object_new(SK_KIND_NODE);
    sk_id_new(n->meta.id);
    n->spec.name = sk_strdup(desc->hostname);
    n->spec.role = role;
    n->spec.availability = SK_AVAIL_ACTIVE;
    sk_schema_copy(&sk_node_description_schema, &n->description, desc);
    n->status.state = SK_NODE_UNKNOWN;
    n->status.message = sk_strdup(message);
    n->status.state_changed_at = now_ms;
    if (role == SK_ROLE_MANAGER) {
        n->manager.raft_id = sk_raft_id_of(n->meta.id);
        n->manager.raft_addr = sk_strdup(raft_addr);
        n->manager.api_addr = sk_strdup(api_addr);
    }
    return n;
}

enum sk_rc sk_ca_admit(const struct sk_store *s,
                       const unsigned char data_key[SK_DATA_KEY_SIZE],
                       const struct sk_join_body *req, int64_t now_ms,
                       struct sk_join_grant *out, struct sk_err *err)
{
    const struct sk_cluster *c = sk_store_cluster(s);
    if (!c)
        return sk_err_set(err, SK_EUNAVAIL,
                          "the cluster is not initialised yet");
    if (!req->token || !*req->token)
        return sk_err_set(err, SK_EINVAL, "a join token is required");
    struct sk_token t;
    enum sk_rc rc = sk_token_parse(req->token, &t, err);
    if (rc != SK_OK)
        return rc;
    char *digest = digest_text(t.ca_digest);
    bool same_ca = c->ca_digest && strcmp(digest, c->ca_digest) == 0;
    free(digest);
    if (!same_ca)
        return sk_err_set(err, SK_EAUTH,
                          "join token is not valid for this cluster: it was "
                          "made for another CA");
    int role;
    if (sk_token_secret_matches(&t, c->keys.manager_token_hash))
        role = SK_ROLE_MANAGER;
    else if (sk_token_secret_matches(&t, c->keys.worker_token_hash))
        role = SK_ROLE_WORKER;
    else
        return sk_err_set(err, SK_EAUTH,
                          "join token is not valid for this cluster: unknown "
                          "secret (rotated or mistyped)");

    const struct sk_node_description *d = &req->description;
    if ((rc = sk_name_validate("node", d->hostname, err)) != SK_OK)
        return rc;
    if (!valid_ipv4(d->addr))
        return sk_err_set(err, SK_EINVAL,
                          "node \"%s\": advertise address \"%s\" is not an "
                          "IPv4 address",
                          d->hostname, d->addr ? d->addr : "");
    if (!valid_ipv4(d->data_addr))
        return sk_err_set(err, SK_EINVAL,
                          "node \"%s\": data path address \"%s\" is not an "
                          "IPv4 address",
                          d->hostname, d->data_addr ? d->data_addr : "");
    if (role == SK_ROLE_MANAGER &&
        (!valid_host_port(req->api_addr) || !valid_host_port(req->raft_addr)))
        return sk_err_set(err, SK_EINVAL,
                          "node \"%s\": a manager must give its API and Raft "
                          "addresses as IP:PORT",
                          d->hostname);
    if (!req->csr)
        return sk_err_set(err, SK_EINVAL, "node \"%s\": no CSR", d->hostname);
    const struct sk_node *holder =
        sk_store_get_by_name(s, SK_KIND_NODE, d->hostname);
    if (holder)
        return sk_err_set(
            err, SK_EEXIST,
            "a node named \"%s\" already exists (%s, %s): remove it first "
            "with `skiff node rm %s`",
            d->hostname, holder->meta.id,
            sk_node_state_names[holder->status.state], d->hostname);

    struct sk_node *n =
        new_node(d, role, req->api_addr, req->raft_addr, "joined", now_ms);
    char *cert = NULL;
    rc = sign(c, data_key, req->csr, n->meta.id, sk_node_role_names[role],
              d->addr, now_ms, &cert, err);
    if (rc != SK_OK) {
        sk_object_free(SK_KIND_NODE, n);
        return sk_err_wrap(err, "node \"%s\"", d->hostname);
    }
    if ((rc = sk_ca_record_cert(n, cert, NULL, now_ms, err)) != SK_OK) {
        sk_object_free(SK_KIND_NODE, n);
        free(cert);
        return rc;
    }
    out->node = n;
    out->cert_pem = cert;
    return SK_OK;
}

void sk_join_grant_free(struct sk_join_grant *g)
{
    sk_object_free(SK_KIND_NODE, g->node);
    free(g->cert_pem);
    memset(g, 0, sizeof *g);
}

enum sk_rc sk_ca_issue(const struct sk_store *s,
                       const unsigned char data_key[SK_DATA_KEY_SIZE],
                       const struct sk_node *node, const char *csr_pem,
                       int64_t now_ms, char **out_cert, struct sk_err *err)
{
    const struct sk_cluster *c = sk_store_cluster(s);
    if (!c)
        return sk_err_set(err, SK_EUNAVAIL,
                          "the cluster is not initialised yet");
    enum sk_rc rc = sign(c, data_key, csr_pem, node->meta.id,
                         sk_node_role_names[node->spec.role],
                         node->description.addr, now_ms, out_cert, err);
    if (rc != SK_OK)
        return sk_err_wrap(err, "node \"%s\"", node->spec.name);
    return SK_OK;
}

enum sk_rc sk_ca_issue_admin(const char *ca_cert_pem, const char *ca_key_pem,
                             const char *cluster_id, const char *csr_pem,
                             int64_t now_ms, int64_t validity_ms,
                             char **out_cert, struct sk_err *err)
{
    char id[SK_ID_SIZE + 8];
    char rnd[SK_ID_SIZE];
    sk_id_new(rnd);
    snprintf(id, sizeof id, "admin-%.8s", rnd);
    struct sk_pki_sign_req req = {
        .ca_cert_pem = ca_cert_pem,
        .ca_key_pem = ca_key_pem,
        .csr_pem = csr_pem,
        .node_id = id,
        .role = "admin",
        .cluster_id = cluster_id,
        .now_ms = now_ms,
        .validity_ms = validity_ms,
    };
    return sk_pki_sign(&req, out_cert, err);
}

enum sk_rc sk_ca_token(const struct sk_cluster *c,
                       const unsigned char data_key[SK_DATA_KEY_SIZE], int role,
                       char **out_token, struct sk_err *err)
{
    const char *sealed = role == SK_ROLE_MANAGER ? c->keys.manager_token_sealed
                                                 : c->keys.worker_token_sealed;
    if (!sealed)
        return sk_err_set(err, SK_EINTERNAL, "cluster has no %s token",
                          sk_node_role_names[role]);
    unsigned char *plain;
    size_t len;
    enum sk_rc rc = sk_unseal(data_key, sealed, &plain, &len, err);
    if (rc != SK_OK)
        return sk_err_wrap(err, "%s join token", sk_node_role_names[role]);
    *out_token = (char *)plain;
    return SK_OK;
}

enum sk_rc sk_ca_rotate_token(const struct sk_cluster *c,
                              const unsigned char data_key[SK_DATA_KEY_SIZE],
                              int role, struct sk_cluster **out_cluster,
                              char **out_token, struct sk_err *err)
{
    unsigned char digest[SK_DIGEST_SIZE];
    enum sk_rc rc = sk_pki_cert_digest(c->ca_cert_pem, digest, err);
    if (rc != SK_OK)
        return rc;
    struct sk_cluster *copy = sk_object_dup(SK_KIND_CLUSTER, c);
    if (role == SK_ROLE_MANAGER)
        *out_token = new_token(digest, data_key, &copy->keys.manager_token_hash,
                               &copy->keys.manager_token_sealed);
    else
        *out_token = new_token(digest, data_key, &copy->keys.worker_token_hash,
                               &copy->keys.worker_token_sealed);
    *out_cluster = copy;
    return SK_OK;
}

static enum sk_rc key_and_csr(const char *cn, char **key, char **csr,
                              struct sk_err *err)
{
    enum sk_rc rc = sk_pki_key_new(key, err);
    if (rc == SK_OK)
        rc = sk_pki_csr_new(*key, cn, csr, err);
    if (rc != SK_OK) {
        wipe_free(*key);
        *key = NULL;
    }
    return rc;
}

enum sk_rc sk_ca_bootstrap(const struct sk_bootstrap_request *req,
                           const unsigned char data_key[SK_DATA_KEY_SIZE],
                           int64_t now_ms, struct sk_bootstrap *out,
                           struct sk_err *err)
{
    memset(out, 0, sizeof *out);
    enum sk_rc rc;
    const struct sk_node_description *d = &req->description;
    if ((rc = sk_name_validate("node", d->hostname, err)) != SK_OK)
        return rc;
    if (!valid_ipv4(d->addr) || !valid_ipv4(d->data_addr) ||
        !valid_host_port(req->api_addr) || !valid_host_port(req->raft_addr))
        return sk_err_set(err, SK_EINVAL,
                          "init: advertise and data path addresses must be "
                          "IPv4 addresses");
    char cluster_id[SK_ID_SIZE];
    sk_id_new(cluster_id);
    if ((rc = sk_ca_init_cluster(cluster_id, req->spec, data_key, &out->init,
                                 err)) != SK_OK)
        return rc;
    const struct sk_cluster *c = out->init.cluster;

    struct sk_node *n =
        new_node(d, SK_ROLE_MANAGER, req->api_addr, req->raft_addr,
                 "initialised the cluster", now_ms);
    out->node = n;

    char *csr = NULL;
    if ((rc = key_and_csr(n->meta.id, &out->node_key, &csr, err)) != SK_OK)
        goto fail;
    const char *sans[] = {d->addr, NULL};
    struct sk_pki_sign_req sr = {
        .ca_cert_pem = c->ca_cert_pem,
        .ca_key_pem = out->init.ca_key_pem,
        .csr_pem = csr,
        .node_id = n->meta.id,
        .role = "manager",
        .cluster_id = c->meta.id,
        .ip_sans = sans,
        .now_ms = now_ms,
        .validity_ms = c->spec.cert_expiry_ms,
    };
    rc = sk_pki_sign(&sr, &out->node_cert, err);
    free(csr);
    csr = NULL;
    if (rc != SK_OK)
        goto fail;
    if ((rc = sk_ca_record_cert(n, out->node_cert, NULL, now_ms, err)) != SK_OK)
        goto fail;

    if ((rc = key_and_csr("admin", &out->admin_key, &csr, err)) != SK_OK)
        goto fail;
    rc = sk_ca_issue_admin(c->ca_cert_pem, out->init.ca_key_pem, c->meta.id,
                           csr, now_ms,
                           req->admin_validity_ms ? req->admin_validity_ms
                                                  : 365LL * 24 * 3600 * 1000,
                           &out->admin_cert, err);
    free(csr);
    if (rc != SK_OK)
        goto fail;

    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_CLUSTER, c);
    sk_txn_create(t, SK_KIND_NODE, n);
    size_t len;
    out->command = sk_txn_encode(t, now_ms, &len);
    sk_txn_free(t);
    return SK_OK;
fail:
    sk_bootstrap_free(out);
    return rc;
}

void sk_bootstrap_free(struct sk_bootstrap *b)
{
    sk_cluster_init_free(&b->init);
    sk_object_free(SK_KIND_NODE, b->node);
    free(b->node_cert);
    wipe_free(b->node_key);
    free(b->admin_cert);
    wipe_free(b->admin_key);
    if (b->command) {
        /* The command holds sealed keys only, but no need to keep it. */
        free(b->command);
    }
    memset(b, 0, sizeof *b);
}

/* ---- the current certificate ---- */

static void set_str(char **field, const char *value)
{
    free(*field);
    *field = value ? sk_strdup(value) : NULL;
}

enum sk_rc sk_ca_record_cert(struct sk_node *u, const char *cert_pem,
                             const struct sk_cert_ident *presented,
                             int64_t now_ms, struct sk_err *err)
{
    struct sk_cert_info info;
    enum sk_rc rc = sk_pki_cert_info(cert_pem, &info, err);
    if (rc != SK_OK)
        return sk_err_wrap(err, "node \"%s\": new certificate", u->spec.name);
    bool renewal = presented && presented->serial && presented->role &&
                   u->status.cert_serial &&
                   strcmp(presented->serial, u->status.cert_serial) == 0 &&
                   strcmp(presented->role, info.ou) == 0;
    if (renewal) {
        set_str(&u->status.prev_cert_serial, u->status.cert_serial);
        u->status.prev_cert_until = now_ms + SK_CERT_RENEWAL_GRACE_MS;
    } else {
        set_str(&u->status.prev_cert_serial, NULL);
        u->status.prev_cert_until = 0;
    }
    set_str(&u->status.cert_serial, info.serial);
    u->status.cert_not_before = info.not_before_ms;
    u->status.cert_not_after = info.not_after_ms;
    return SK_OK;
}

static bool is_node_role(const char *ou)
{
    return ou && (strcmp(ou, "worker") == 0 || strcmp(ou, "manager") == 0);
}

/* Is c the node's current certificate, as far as this store knows? */
static bool current_cert(const struct sk_node *n, const struct sk_cert_ident *c,
                         int64_t now_ms)
{
    const struct sk_node_status *st = &n->status;
    if (!st->cert_serial)
        return true; /* recorded before serials were: the role decides */
    if (!c->serial || !*c->serial)
        return false;
    if (strcmp(c->serial, st->cert_serial) == 0)
        return true;
    if (st->prev_cert_serial && strcmp(c->serial, st->prev_cert_serial) == 0 &&
        now_ms < st->prev_cert_until)
        return true;
    /* Issued after the recorded one: the Raft entry that records it is
     * committed (the CA hands a certificate out only then) but not applied
     * here yet. */
    return c->not_before_ms > st->cert_not_before;
}

enum sk_cert_standing sk_ca_cert_standing(const struct sk_store *s,
                                          const struct sk_cert_ident *c,
                                          int64_t now_ms, struct sk_err *err)
{
    struct sk_err scratch;
    if (!err)
        err = &scratch;
    const char *id = c->node_id ? c->node_id : "";
    if (!is_node_role(c->role)) {
        sk_err_set(err, SK_EPERM, "%s is not a node certificate (role %s)", id,
                   c->role ? c->role : "none");
        return SK_CERT_REVOKED;
    }
    const struct sk_node *n = sk_store_get(s, SK_KIND_NODE, id);
    if (!n) {
        sk_err_set(err, SK_EPERM,
                   "node %s is not a member of this cluster (removed?)", id);
        return SK_CERT_NOT_MEMBER;
    }
    if (!current_cert(n, c, now_ms)) {
        sk_err_set(err, SK_EPERM,
                   "node %s: certificate %s is revoked: the node holds a "
                   "newer one (its role changed, or it renewed it)",
                   id, c->serial ? c->serial : "");
        return SK_CERT_REVOKED;
    }
    if (strcmp(c->role, "manager") != 0) {
        sk_err_set(err, SK_EPERM, "node %s holds a %s certificate", id,
                   c->role);
        return SK_CERT_NODE;
    }
    if (n->spec.role != SK_ROLE_MANAGER) {
        sk_err_set(err, SK_EPERM,
                   "node %s is no longer a manager (its role is %s)", id,
                   sk_node_role_names[n->spec.role]);
        return SK_CERT_NODE;
    }
    sk_err_clear(err);
    return SK_CERT_MANAGER;
}

/* ---- forwarded calls ---- */

struct sk_cert_ident sk_principal_cert(const struct sk_principal *p)
{
    return (struct sk_cert_ident){.node_id = p->node_id,
                                  .role = p->role,
                                  .serial = p->serial,
                                  .not_before_ms = p->not_before_ms};
}

void sk_principal_format(const struct sk_principal *p,
                         char out[SK_PRINCIPAL_MAX])
{
    switch (p->kind) {
    case SK_PRINCIPAL_ADMIN:
        snprintf(out, SK_PRINCIPAL_MAX, "admin");
        return;
    case SK_PRINCIPAL_NODE:
        snprintf(out, SK_PRINCIPAL_MAX, "node %s %s %s %lld", p->node_id,
                 p->role, p->serial, (long long)p->not_before_ms);
        return;
    case SK_PRINCIPAL_NONE:
        break;
    }
    snprintf(out, SK_PRINCIPAL_MAX, "anonymous");
}

static bool word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

/* Copies the next word of *s (letters and digits only) into buf; false if
 * there is none, it does not fit, or it is not followed by the end or by
 * one space and another word. */
static bool next_word(const char **s, char *buf, size_t size)
{
    const char *p = *s;
    size_t n = 0;
    while (word_char(p[n]))
        n++;
    if (n == 0 || n >= size || (p[n] != ' ' && p[n] != '\0') ||
        (p[n] == ' ' && !word_char(p[n + 1])))
        return false;
    memcpy(buf, p, n);
    buf[n] = '\0';
    *s = p[n] == ' ' ? p + n + 1 : p + n;
    return true;
}

/* A time in ms as its one decimal spelling (no sign, no leading zero). */
static bool parse_time(const char *s, int64_t *out)
{
    return (s[0] != '0' || s[1] == '\0') &&
           sk_parse_int(s, 0, INT64_MAX, out, NULL);
}

enum sk_rc sk_principal_parse(const char *text, struct sk_principal *out,
                              struct sk_err *err)
{
    struct sk_principal p;
    memset(&p, 0, sizeof p);
    if (!text)
        text = "";
    if (strcmp(text, "anonymous") == 0) {
        p.kind = SK_PRINCIPAL_NONE;
    } else if (strcmp(text, "admin") == 0) {
        p.kind = SK_PRINCIPAL_ADMIN;
    } else {
        const char *s = text;
        char word[8], time[24];
        int64_t nb;
        if (!next_word(&s, word, sizeof word) || strcmp(word, "node") != 0 ||
            !next_word(&s, p.node_id, sizeof p.node_id) ||
            !next_word(&s, p.role, sizeof p.role) ||
            !next_word(&s, p.serial, sizeof p.serial) ||
            !next_word(&s, time, sizeof time) || *s != '\0' ||
            !parse_time(time, &nb))
            return sk_err_set(err, SK_EINVAL,
                              "forwarded principal: \"%.80s\" is not "
                              "anonymous, admin or node ID ROLE SERIAL TIME",
                              text);
        p.kind = SK_PRINCIPAL_NODE;
        p.not_before_ms = nb;
    }
    *out = p;
    return SK_OK;
}

void sk_ca_forward_key(const unsigned char data_key[SK_DATA_KEY_SIZE],
                       unsigned char out[SK_FORWARD_KEY_SIZE])
{
    static const char label[] = "skiff forward v1";
    sk_hmac_sha256(data_key, SK_DATA_KEY_SIZE, label, sizeof label - 1, out);
}

static void hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* The MAC of f made at time_ms. */
static void forward_mac(const unsigned char key[SK_FORWARD_KEY_SIZE],
                        const struct sk_forwarded *f, int64_t time_ms,
                        unsigned char out[SK_DIGEST_SIZE])
{
    unsigned char digest[SK_DIGEST_SIZE];
    char body_hex[2 * SK_DIGEST_SIZE + 1];
    sk_sha256(f->body ? f->body : "", f->body ? f->body_len : 0, digest);
    hex(digest, sizeof digest, body_hex);
    /* No field can hold a newline (header values, a parsed request line),
     * so the fields cannot run into each other. */
    char *msg =
        sk_printf("skiff forward v1\n%s\n%s\n%s\n%s\n%s\n%lld",
                  f->principal ? f->principal : "", f->method ? f->method : "",
                  f->path ? f->path : "", f->query ? f->query : "", body_hex,
                  (long long)time_ms);
    sk_hmac_sha256(key, SK_FORWARD_KEY_SIZE, msg, strlen(msg), out);
    free(msg);
}

void sk_ca_forward_sign(const unsigned char key[SK_FORWARD_KEY_SIZE],
                        const struct sk_forwarded *f, int64_t now_ms,
                        char out[SK_FORWARD_TAG_MAX])
{
    unsigned char mac[SK_DIGEST_SIZE];
    char mac_hex[2 * SK_DIGEST_SIZE + 1];
    forward_mac(key, f, now_ms, mac);
    hex(mac, sizeof mac, mac_hex);
    snprintf(out, SK_FORWARD_TAG_MAX, "%lld %s", (long long)now_ms, mac_hex);
}

enum sk_rc sk_ca_forward_verify(const unsigned char key[SK_FORWARD_KEY_SIZE],
                                const struct sk_forwarded *f, const char *tag,
                                int64_t now_ms, struct sk_err *err)
{
    if (!tag)
        return sk_err_set(err, SK_EAUTH, "forwarded call: no X-Skiff-Forward");
    const char *s = tag;
    char time[24], mac_hex[2 * SK_DIGEST_SIZE + 2];
    int64_t made;
    unsigned char got[SK_DIGEST_SIZE], want[SK_DIGEST_SIZE];
    bool ok = next_word(&s, time, sizeof time) &&
              next_word(&s, mac_hex, sizeof mac_hex) && *s == '\0' &&
              strlen(mac_hex) == 2 * SK_DIGEST_SIZE && parse_time(time, &made);
    for (size_t i = 0; ok && i < SK_DIGEST_SIZE; i++) {
        int hi = sk_hex_digit(mac_hex[2 * i]);
        int lo = sk_hex_digit(mac_hex[2 * i + 1]);
        ok = hi >= 0 && lo >= 0;
        got[i] = (unsigned char)(hi << 4 | lo);
    }
    if (!ok)
        return sk_err_set(err, SK_EAUTH,
                          "forwarded call: X-Skiff-Forward is malformed");
    forward_mac(key, f, made, want);
    if (!sk_mem_equal_ct(got, want, sizeof got))
        return sk_err_set(err, SK_EAUTH,
                          "forwarded call: X-Skiff-Forward does not verify "
                          "(not made by a manager of this cluster, or the "
                          "call was altered)");
    int64_t age = now_ms - made;
    if (age > SK_FORWARD_MAX_AGE_MS || age < -SK_FORWARD_MAX_AGE_MS)
        return sk_err_set(err, SK_EAUTH,
                          "forwarded call: made %lld s %s (limit %d s: the "
                          "managers' clocks differ, or it was replayed)",
                          (long long)((age < 0 ? -age : age) / 1000),
                          age < 0 ? "in the future" : "ago",
                          SK_FORWARD_MAX_AGE_MS / 1000);
    return SK_OK;
}
