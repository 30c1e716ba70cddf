/* Admission and signing: tokens (role, CA pinning, rotation), certificates
 * for joining, renewing and promoted nodes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <stdio.h>

#include "skiff/ca.h"
#include "skiff/mem.h"
#include "support.h"

static struct sk_store *store;
static unsigned char key[SK_DATA_KEY_SIZE];
static struct sk_cluster_init init;
static uint64_t idx;

static void commit(struct sk_txn *t)
{
    size_t len;
    char *cmd = sk_txn_encode(t, sk_test_now_ms(), &len);
    struct sk_err err;
    if (sk_store_apply(store, ++idx, cmd, len, &err) != SK_OK)
        fail_msg("commit: %s", err.msg);
    free(cmd);
    sk_txn_free(t);
}

static int setup(void **state)
{
    store = sk_store_new();
    idx = 0;
    sk_data_key_new(key);
    struct sk_err err;
    char id[SK_ID_SIZE];
    sk_id_new(id);
    if (sk_ca_init_cluster(id, NULL, key, &init, &err) != SK_OK)
        fail_msg("init: %s", err.msg);
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_CLUSTER, init.cluster);
    commit(t);
    return 0;
}

static int teardown(void **state)
{
    sk_cluster_init_free(&init);
    sk_store_free(store);
    return 0;
}

static char *csr_for(char **out_key)
{
    char *k, *csr;
    struct sk_err err;
    assert_int_equal(sk_pki_key_new(&k, &err), SK_OK);
    assert_int_equal(sk_pki_csr_new(k, "joiner", &csr, &err), SK_OK);
    *out_key = k;
    return csr;
}

/* A join request as the manager decodes it (borrowed strings). */
static struct sk_join_body request(const char *token, const char *csr,
                                   const char *name)
{
    return (struct sk_join_body){
        .token = (char *)token,
        .csr = (char *)csr,
        .description =
            {
                .hostname = (char *)name,
                .addr = "10.77.0.12",
                .data_addr = "10.78.0.12",
                .nano_cpus = 2000000000,
                .memory_bytes = 1 << 30,
            },
        .api_addr = "10.77.0.12:7443",
        .raft_addr = "10.77.0.12:7444",
    };
}

static void tokens_decide_the_role(void **state)
{
    const struct sk_cluster *c = sk_store_cluster(store);
    char *k, *csr = csr_for(&k);
    struct sk_err err;
    struct sk_join_grant g;
    struct sk_join_body req = request(init.worker_token, csr, "w1");
    assert_int_equal(sk_ca_admit(store, key, &req, sk_test_now_ms(), &g, &err),
                     SK_OK);
    assert_int_equal(g.node->spec.role, SK_ROLE_WORKER);
    assert_string_equal(g.node->spec.name, "w1");
    assert_int_equal(g.node->manager.raft_id, 0);
    assert_int_equal(sk_pki_verify(c->ca_cert_pem, g.cert_pem, sk_test_now_ms(),
                                   "worker", &err),
                     SK_OK);
    struct sk_cert_info info;
    assert_int_equal(sk_pki_cert_info(g.cert_pem, &info, &err), SK_OK);
    assert_string_equal(info.cn, g.node->meta.id);
    assert_string_equal(info.o, c->meta.id);
    /* The certificate lasts the cluster's cert_expiry (90 days). */
    int64_t life = info.not_after_ms - sk_test_now_ms();
    assert_true(life > 89LL * 24 * 3600 * 1000 &&
                life <= 90LL * 24 * 3600 * 1000);
    assert_true(sk_pki_key_matches(g.cert_pem, k));
    sk_join_grant_free(&g);

    req = request(init.manager_token, csr, "m2");
    assert_int_equal(sk_ca_admit(store, key, &req, sk_test_now_ms(), &g, &err),
                     SK_OK);
    assert_int_equal(g.node->spec.role, SK_ROLE_MANAGER);
    assert_int_equal(g.node->manager.raft_id, sk_raft_id_of(g.node->meta.id));
    assert_string_equal(g.node->manager.api_addr, "10.77.0.12:7443");
    assert_int_equal(sk_pki_verify(c->ca_cert_pem, g.cert_pem, sk_test_now_ms(),
                                   "manager", &err),
                     SK_OK);
    sk_join_grant_free(&g);
    free(csr);
    free(k);
}

static void bad_tokens_are_refused(void **state)
{
    char *k, *csr = csr_for(&k);
    struct sk_err err;
    struct sk_join_grant g;

    /* Right CA digest, made-up secret. */
    char forged[SK_TOKEN_MAX_LEN];
    snprintf(forged, sizeof forged, "%s", init.worker_token);
    size_t len = strlen(forged);
    forged[len - 1] = forged[len - 1] == 'a' ? 'e' : 'a';
    struct sk_join_body req = request(forged, csr, "x1");
    assert_int_equal(sk_ca_admit(store, key, &req, sk_test_now_ms(), &g, &err),
                     SK_EAUTH);
    assert_non_null(strstr(err.msg, "unknown secret"));

    /* A token of another cluster (another CA). */
    struct sk_cluster_init other;
    char id[SK_ID_SIZE];
    sk_id_new(id);
    assert_int_equal(sk_ca_init_cluster(id, NULL, key, &other, &err), SK_OK);
    req = request(other.manager_token, csr, "x1");
    assert_int_equal(sk_ca_admit(store, key, &req, sk_test_now_ms(), &g, &err),
                     SK_EAUTH);
    assert_non_null(strstr(err.msg, "made for another CA"));
    sk_cluster_init_free(&other);

    req = request("SKF1-nonsense", csr, "x1");
    assert_int_equal(sk_ca_admit(store, key, &req, sk_test_now_ms(), &g, &err),
                     SK_EINVAL);
    req = request("", csr, "x1");
    assert_int_equal(sk_ca_admit(store, key, &req, sk_test_now_ms(), &g, &err),
                     SK_EINVAL);

    /* Bad request fields. */
    req = request(init.worker_token, csr, "bad name");
    assert_int_equal(sk_ca_admit(store, key, &req, sk_test_now_ms(), &g, &err),
                     SK_EINVAL);
    req = request(init.worker_token, csr, "x1");
    req.description.addr = "10.77.0.300";
    assert_int_equal(sk_ca_admit(store, key, &req, sk_test_now_ms(), &g, &err),
                     SK_EINVAL);
    assert_non_null(strstr(err.msg, "not an IPv4 address"));
    req = request(init.manager_token, csr, "x1");
    req.raft_addr = "10.77.0.12";
    assert_int_equal(sk_ca_admit(store, key, &req, sk_test_now_ms(), &g, &err),
                     SK_EINVAL);
    req = request(init.worker_token, "not a csr", "x1");
    assert_int_not_equal(
        sk_ca_admit(store, key, &req, sk_test_now_ms(), &g, &err), SK_OK);

    /* A wrong data key cannot unseal the CA key. */
    unsigned char wrong[SK_DATA_KEY_SIZE];
    sk_data_key_new(wrong);
    req = request(init.worker_token, csr, "x1");
    assert_int_equal(
        sk_ca_admit(store, wrong, &req, sk_test_now_ms(), &g, &err), SK_EAUTH);
    free(csr);
    free(k);
}

static void names_must_be_free(void **state)
{
    char *k, *csr = csr_for(&k);
    struct sk_err err;
    struct sk_join_grant g;
    struct sk_join_body req = request(init.worker_token, csr, "h2");
    assert_int_equal(sk_ca_admit(store, key, &req, sk_test_now_ms(), &g, &err),
                     SK_OK);
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NODE, g.node);
    commit(t);
    sk_join_grant_free(&g);
    assert_int_equal(sk_ca_admit(store, key, &req, sk_test_now_ms(), &g, &err),
                     SK_EEXIST);
    assert_non_null(strstr(err.msg, "skiff node rm h2"));
    free(csr);
    free(k);
}

static void rotation(void **state)
{
    struct sk_err err;
    char *shown = NULL;
    assert_int_equal(
        sk_ca_token(sk_store_cluster(store), key, SK_ROLE_WORKER, &shown, &err),
        SK_OK);
    assert_string_equal(shown, init.worker_token);
    free(shown);

    struct sk_cluster *rotated;
    char *fresh;
    assert_int_equal(sk_ca_rotate_token(sk_store_cluster(store), key,
                                        SK_ROLE_WORKER, &rotated, &fresh, &err),
                     SK_OK);
    assert_string_not_equal(fresh, init.worker_token);
    struct sk_txn *t = sk_txn_new();
    sk_txn_update(t, SK_KIND_CLUSTER, rotated, 0);
    commit(t);

    char *k, *csr = csr_for(&k);
    struct sk_join_grant g;
    struct sk_join_body req = request(init.worker_token, csr, "r1");
    assert_int_equal(sk_ca_admit(store, key, &req, sk_test_now_ms(), &g, &err),
                     SK_EAUTH);
    req = request(fresh, csr, "r1");
    assert_int_equal(sk_ca_admit(store, key, &req, sk_test_now_ms(), &g, &err),
                     SK_OK);
    sk_join_grant_free(&g);
    /* The manager token is untouched. */
    req = request(init.manager_token, csr, "r2");
    assert_int_equal(sk_ca_admit(store, key, &req, sk_test_now_ms(), &g, &err),
                     SK_OK);
    sk_join_grant_free(&g);
    assert_int_equal(
        sk_ca_token(sk_store_cluster(store), key, SK_ROLE_WORKER, &shown, &err),
        SK_OK);
    assert_string_equal(shown, fresh);
    free(shown);
    free(fresh);
    sk_object_free(SK_KIND_CLUSTER, rotated);
    free(csr);
    free(k);
}

static void renewal_follows_the_desired_role(void **state)
{
    char *k, *csr = csr_for(&k);
    struct sk_err err;
    struct sk_join_grant g;
    struct sk_join_body req = request(init.worker_token, csr, "p1");
    assert_int_equal(sk_ca_admit(store, key, &req, sk_test_now_ms(), &g, &err),
                     SK_OK);
    /* Promoted: the next certificate says manager. */
    g.node->spec.role = SK_ROLE_MANAGER;
    char *cert;
    assert_int_equal(
        sk_ca_issue(store, key, g.node, csr, sk_test_now_ms(), &cert, &err),
        SK_OK);
    assert_int_equal(sk_pki_verify(sk_store_cluster(store)->ca_cert_pem, cert,
                                   sk_test_now_ms(), "manager", &err),
                     SK_OK);
    free(cert);

    /* Admin certificates. */
    char *admin;
    assert_int_equal(sk_ca_issue_admin(init.cluster->ca_cert_pem,
                                       init.ca_key_pem, init.cluster->meta.id,
                                       csr, sk_test_now_ms(),
                                       365LL * 24 * 3600 * 1000, &admin, &err),
                     SK_OK);
    assert_int_equal(sk_pki_verify(init.cluster->ca_cert_pem, admin,
                                   sk_test_now_ms(), "admin", &err),
                     SK_OK);
    free(admin);
    sk_join_grant_free(&g);
    free(csr);
    free(k);
}

/* ---- whose certificate counts ---- */

/* A node joined with token, committed; its certificate in *out_cert. */
static struct sk_node *joined(const char *token, const char *name,
                              char **out_cert)
{
    char *k, *csr = csr_for(&k);
    struct sk_err err;
    struct sk_join_grant g;
    struct sk_join_body req = request(token, csr, name);
    assert_int_equal(sk_ca_admit(store, key, &req, sk_test_now_ms(), &g, &err),
                     SK_OK);
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NODE, g.node);
    commit(t);
    struct sk_node *n = sk_object_dup(SK_KIND_NODE, g.node);
    *out_cert = g.cert_pem;
    g.cert_pem = NULL;
    sk_join_grant_free(&g);
    free(csr);
    free(k);
    return n;
}

/* What the store makes of cert at now_ms. */
static enum sk_cert_standing standing(const char *cert, int64_t now_ms)
{
    struct sk_cert_info info;
    struct sk_err err;
    assert_int_equal(sk_pki_cert_info(cert, &info, &err), SK_OK);
    struct sk_cert_ident id = {.node_id = info.cn,
                               .role = info.ou,
                               .serial = info.serial,
                               .not_before_ms = info.not_before_ms};
    return sk_ca_cert_standing(store, &id, now_ms, &err);
}

/* The node's next certificate, issued at now_ms (its role as in n), as
 * the leader records it for a node that called with `presented`. */
static char *reissue(struct sk_node *n, const char *presented, int64_t now_ms)
{
    char *k, *csr = csr_for(&k);
    char *cert;
    struct sk_err err;
    assert_int_equal(sk_ca_issue(store, key, n, csr, now_ms, &cert, &err),
                     SK_OK);
    struct sk_cert_info info;
    assert_int_equal(sk_pki_cert_info(presented, &info, &err), SK_OK);
    struct sk_cert_ident old = {.node_id = info.cn,
                                .role = info.ou,
                                .serial = info.serial,
                                .not_before_ms = info.not_before_ms};
    const struct sk_node *cur = sk_store_get(store, SK_KIND_NODE, n->meta.id);
    struct sk_node *u = sk_object_dup(SK_KIND_NODE, cur);
    sk_schema_free(&sk_node_spec_schema, &u->spec);
    sk_schema_copy(&sk_node_spec_schema, &u->spec, &n->spec);
    assert_int_equal(sk_ca_record_cert(u, cert, &old, now_ms, &err), SK_OK);
    struct sk_txn *t = sk_txn_new();
    sk_txn_update(t, SK_KIND_NODE, u, 0);
    commit(t);
    sk_object_free(SK_KIND_NODE, u);
    free(csr);
    free(k);
    return cert;
}

static void only_the_current_certificate_counts(void **state)
{
    int64_t now = sk_test_now_ms();
    char *w_cert, *m_cert;
    struct sk_node *w = joined(init.worker_token, "w1", &w_cert);
    struct sk_node *m = joined(init.manager_token, "m2", &m_cert);
    const struct sk_node *stored =
        sk_store_get(store, SK_KIND_NODE, w->meta.id);
    assert_non_null(stored->status.cert_serial);
    assert_true(stored->status.cert_not_before > 0);
    assert_int_equal(standing(w_cert, now), SK_CERT_NODE);
    assert_int_equal(standing(m_cert, now), SK_CERT_MANAGER);

    /* A certificate of another node, or of none. */
    struct sk_cert_ident stranger = {.node_id = "nosuchnode",
                                     .role = "worker",
                                     .serial = "01",
                                     .not_before_ms = now};
    struct sk_err err;
    assert_int_equal(sk_ca_cert_standing(store, &stranger, now, &err),
                     SK_CERT_NOT_MEMBER);
    assert_non_null(strstr(err.msg, "is not a member of this cluster"));
    struct sk_cert_ident admin = {.node_id = w->meta.id, .role = "admin"};
    assert_int_equal(sk_ca_cert_standing(store, &admin, now, &err),
                     SK_CERT_REVOKED);

    /* A renewal (same role): the old one works through the grace, the new
     * one at once. An hour on, so the new one is the later. */
    int64_t t1 = now + 3600 * 1000;
    char *w_cert2 = reissue(w, w_cert, t1);
    assert_int_equal(standing(w_cert2, t1), SK_CERT_NODE);
    assert_int_equal(standing(w_cert, t1), SK_CERT_NODE);
    assert_int_equal(standing(w_cert, t1 + SK_CERT_RENEWAL_GRACE_MS - 1),
                     SK_CERT_NODE);
    assert_int_equal(standing(w_cert, t1 + SK_CERT_RENEWAL_GRACE_MS),
                     SK_CERT_REVOKED);
    /* A second renewal: the first is gone for good. */
    int64_t t2 = t1 + 3600 * 1000;
    char *w_cert3 = reissue(w, w_cert2, t2);
    assert_int_equal(standing(w_cert, t2), SK_CERT_REVOKED);
    assert_int_equal(standing(w_cert2, t2), SK_CERT_NODE);
    assert_int_equal(standing(w_cert3, t2), SK_CERT_NODE);

    /* Demoted: the manager certificate is a node's only until the worker
     * one is issued; then it is revoked at once, no grace. */
    m->spec.role = SK_ROLE_WORKER;
    const struct sk_node *cur = sk_store_get(store, SK_KIND_NODE, m->meta.id);
    struct sk_node *u = sk_object_dup(SK_KIND_NODE, cur);
    u->spec.role = SK_ROLE_WORKER;
    struct sk_txn *t = sk_txn_new();
    sk_txn_update(t, SK_KIND_NODE, u, 0);
    commit(t);
    sk_object_free(SK_KIND_NODE, u);
    assert_int_equal(standing(m_cert, now), SK_CERT_NODE);
    char *m_worker = reissue(m, m_cert, t1);
    assert_int_equal(standing(m_cert, t1), SK_CERT_REVOKED);
    assert_int_equal(standing(m_worker, t1), SK_CERT_NODE);
    /* Promoted again: the old manager certificate stays revoked, and the
     * worker one gives no manager rights. */
    m->spec.role = SK_ROLE_MANAGER;
    cur = sk_store_get(store, SK_KIND_NODE, m->meta.id);
    u = sk_object_dup(SK_KIND_NODE, cur);
    u->spec.role = SK_ROLE_MANAGER;
    t = sk_txn_new();
    sk_txn_update(t, SK_KIND_NODE, u, 0);
    commit(t);
    sk_object_free(SK_KIND_NODE, u);
    assert_int_equal(standing(m_cert, t1), SK_CERT_REVOKED);
    assert_int_equal(standing(m_worker, t1), SK_CERT_NODE);
    char *m_manager = reissue(m, m_worker, t2);
    assert_int_equal(standing(m_manager, t2), SK_CERT_MANAGER);
    assert_int_equal(standing(m_worker, t2), SK_CERT_REVOKED);
    assert_int_equal(standing(m_cert, t2), SK_CERT_REVOKED);

    /* Removed: nothing of it counts. */
    t = sk_txn_new();
    sk_txn_delete(t, SK_KIND_NODE, w->meta.id, 0);
    commit(t);
    assert_int_equal(standing(w_cert3, t2), SK_CERT_NOT_MEMBER);

    free(w_cert);
    free(w_cert2);
    free(w_cert3);
    free(m_cert);
    free(m_worker);
    free(m_manager);
    sk_object_free(SK_KIND_NODE, w);
    sk_object_free(SK_KIND_NODE, m);
}

static void a_lagging_store_takes_newer_certificates(void **state)
{
    int64_t now = sk_test_now_ms();
    char *cert;
    struct sk_node *n = joined(init.manager_token, "m3", &cert);
    const struct sk_node *st = sk_store_get(store, SK_KIND_NODE, n->meta.id);
    struct sk_cert_ident later = {.node_id = n->meta.id,
                                  .role = "manager",
                                  .serial = "abcdef",
                                  .not_before_ms =
                                      st->status.cert_not_before + 1000};
    assert_int_equal(sk_ca_cert_standing(store, &later, now, NULL),
                     SK_CERT_MANAGER);
    struct sk_cert_ident same_time = later;
    same_time.not_before_ms = st->status.cert_not_before;
    assert_int_equal(sk_ca_cert_standing(store, &same_time, now, NULL),
                     SK_CERT_REVOKED);

    /* A node recorded before serials were: its role decides. */
    struct sk_node *u = sk_object_dup(SK_KIND_NODE, st);
    free(u->status.cert_serial);
    u->status.cert_serial = NULL;
    struct sk_txn *t = sk_txn_new();
    sk_txn_update(t, SK_KIND_NODE, u, 0);
    commit(t);
    sk_object_free(SK_KIND_NODE, u);
    assert_int_equal(sk_ca_cert_standing(store, &same_time, now, NULL),
                     SK_CERT_MANAGER);
    struct sk_cert_ident as_worker = same_time;
    as_worker.role = "worker";
    assert_int_equal(sk_ca_cert_standing(store, &as_worker, now, NULL),
                     SK_CERT_NODE);
    free(cert);
    sk_object_free(SK_KIND_NODE, n);
}

/* ---- forwarded calls ---- */

static void principals_round_trip(void **state)
{
    char text[SK_PRINCIPAL_MAX];
    struct sk_principal p = {.kind = SK_PRINCIPAL_NODE,
                             .node_id = "abcdefghijklmnopqrstuvwxyz",
                             .role = "worker",
                             .serial = "0123456789abcdef",
                             .not_before_ms = 1700000000000};
    sk_principal_format(&p, text);
    assert_string_equal(text, "node abcdefghijklmnopqrstuvwxyz worker "
                              "0123456789abcdef 1700000000000");
    struct sk_principal q;
    struct sk_err err;
    assert_int_equal(sk_principal_parse(text, &q, &err), SK_OK);
    assert_int_equal(q.kind, SK_PRINCIPAL_NODE);
    assert_string_equal(q.node_id, p.node_id);
    assert_string_equal(q.role, p.role);
    assert_string_equal(q.serial, p.serial);
    assert_int_equal(q.not_before_ms, p.not_before_ms);
    assert_int_equal(sk_principal_parse("admin", &q, &err), SK_OK);
    assert_int_equal(q.kind, SK_PRINCIPAL_ADMIN);
    assert_int_equal(sk_principal_parse("anonymous", &q, &err), SK_OK);
    assert_int_equal(q.kind, SK_PRINCIPAL_NONE);

    static const char *const bad[] = {
        "",
        "Admin",
        "admin ",
        "node",
        "node abc",
        "node abc worker 01",
        "node abc worker 01 12 extra",
        "node abc worker 01 -12",
        "node abc worker 01 12x",
        "node abc worker 01 012",
        "node abc worker 01 12 ",
        "node abc  worker 01 12",
        "node a/b worker 01 12",
        "node abc worker 01 99999999999999999999999",
        ("node "
         "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl "
         "worker 01 12"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (sk_principal_parse(bad[i], &q, &err) == SK_OK)
            fail_msg("principal \"%s\" parsed", bad[i]);
        assert_int_equal(err.code, SK_EINVAL);
    }
}

static void forwarded_calls_carry_a_mac(void **state)
{
    unsigned char fk[SK_FORWARD_KEY_SIZE], other[SK_FORWARD_KEY_SIZE];
    sk_ca_forward_key(key, fk);
    unsigned char wrong[SK_DATA_KEY_SIZE];
    sk_data_key_new(wrong);
    sk_ca_forward_key(wrong, other);
    assert_memory_not_equal(fk, other, sizeof fk);

    int64_t now = sk_test_now_ms();
    static const char body[] = "{\"tasks\":[]}";
    struct sk_forwarded f = {.principal = "node abc worker 01 12",
                             .method = "POST",
                             .path = "/v1/node/status",
                             .query = "",
                             .body = body,
                             .body_len = sizeof body - 1};
    char tag[SK_FORWARD_TAG_MAX];
    sk_ca_forward_sign(fk, &f, now, tag);
    struct sk_err err;
    assert_int_equal(sk_ca_forward_verify(fk, &f, tag, now, &err), SK_OK);
    assert_int_equal(
        sk_ca_forward_verify(fk, &f, tag, now + SK_FORWARD_MAX_AGE_MS, &err),
        SK_OK);

    /* Another key, and every field altered, fail. */
    assert_int_equal(sk_ca_forward_verify(other, &f, tag, now, &err), SK_EAUTH);
    assert_non_null(strstr(err.msg, "does not verify"));
    struct sk_forwarded g = f;
    g.principal = "node xyz worker 01 12";
    assert_int_equal(sk_ca_forward_verify(fk, &g, tag, now, &err), SK_EAUTH);
    g = f;
    g.principal = "admin";
    assert_int_equal(sk_ca_forward_verify(fk, &g, tag, now, &err), SK_EAUTH);
    g = f;
    g.method = "GET";
    assert_int_equal(sk_ca_forward_verify(fk, &g, tag, now, &err), SK_EAUTH);
    g = f;
    g.path = "/v1/node/heartbeat";
    assert_int_equal(sk_ca_forward_verify(fk, &g, tag, now, &err), SK_EAUTH);
    g = f;
    g.query = "force=1";
    assert_int_equal(sk_ca_forward_verify(fk, &g, tag, now, &err), SK_EAUTH);
    g = f;
    g.body_len--;
    assert_int_equal(sk_ca_forward_verify(fk, &g, tag, now, &err), SK_EAUTH);
    g = f;
    g.body = NULL;
    g.body_len = 0;
    assert_int_equal(sk_ca_forward_verify(fk, &g, tag, now, &err), SK_EAUTH);

    /* Too old, or from the future. */
    assert_int_equal(sk_ca_forward_verify(
                         fk, &f, tag, now + SK_FORWARD_MAX_AGE_MS + 1000, &err),
                     SK_EAUTH);
    assert_non_null(strstr(err.msg, "31 s ago"));
    assert_int_equal(sk_ca_forward_verify(
                         fk, &f, tag, now - SK_FORWARD_MAX_AGE_MS - 1000, &err),
                     SK_EAUTH);
    assert_non_null(strstr(err.msg, "in the future"));

    /* A different time in the tag breaks the MAC. */
    char moved[SK_FORWARD_TAG_MAX];
    snprintf(moved, sizeof moved, "%lld%s", (long long)(now + 1),
             strchr(tag, ' '));
    assert_int_equal(sk_ca_forward_verify(fk, &f, moved, now, &err), SK_EAUTH);

    /* Missing and malformed tags. */
    assert_int_equal(sk_ca_forward_verify(fk, &f, NULL, now, &err), SK_EAUTH);
    assert_non_null(strstr(err.msg, "no X-Skiff-Forward"));
    static const char *const bad[] = {"",      "12",     "12 ",
                                      "x abc", "12 abc", "12 0000 00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(sk_ca_forward_verify(fk, &f, bad[i], now, &err),
                         SK_EAUTH);
        assert_non_null(strstr(err.msg, "malformed"));
    }
    char upper[SK_FORWARD_TAG_MAX];
    snprintf(upper, sizeof upper, "%s", tag);
    for (char *c = strchr(upper, ' '); *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 32);
    /* Hex digits in either case are the same MAC. */
    assert_int_equal(sk_ca_forward_verify(fk, &f, upper, now, &err), SK_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(tokens_decide_the_role, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(bad_tokens_are_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(names_must_be_free, setup, teardown),
        cmocka_unit_test_setup_teardown(rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(renewal_follows_the_desired_role, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(only_the_current_certificate_counts,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_lagging_store_takes_newer_certificates, setup, teardown),
        cmocka_unit_test(principals_round_trip),
        cmocka_unit_test_setup_teardown(forwarded_calls_carry_a_mac, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
