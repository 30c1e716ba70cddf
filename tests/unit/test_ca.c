/* Admission and signing: tokens (role, CA pinning, rotation), certificates
 * for joining, renewing and promoted nodes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
