#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "skiff/mem.h"
#include "skiff/pki.h"
#include "support.h"

#define DAY_MS (24LL * 3600 * 1000)
#define HOUR_MS (3600LL * 1000)

/* ---- Helpers ---- */

static char *new_key(void)
{
    struct sk_err err;
    char *key = NULL;
    assert_int_equal(sk_pki_key_new(&key, &err), SK_OK);
    return key;
}

static char *new_csr(const char *key, const char *cn)
{
    struct sk_err err;
    char *csr = NULL;
    assert_int_equal(sk_pki_csr_new(key, cn, &csr, &err), SK_OK);
    return csr;
}

/* Signs a certificate for a fresh key; the key is returned in *out_key if
 * that is not NULL. */
static enum sk_rc sign(const struct sk_test_ca *ca, const char *node_id,
                       const char *role, const char *const *sans,
                       int64_t now_ms, int64_t validity_ms, char **out_cert,
                       char **out_key, struct sk_err *err)
{
    char *key = new_key();
    char *csr = new_csr(key, "whatever-the-csr-says");
    struct sk_pki_sign_req req = {
        .ca_cert_pem = ca->cert_pem,
        .ca_key_pem = ca->key_pem,
        .csr_pem = csr,
        .node_id = node_id,
        .role = role,
        .cluster_id = ca->cluster_id,
        .ip_sans = sans,
        .now_ms = now_ms,
        .validity_ms = validity_ms,
    };
    enum sk_rc rc = sk_pki_sign(&req, out_cert, err);
    free(csr);
    if (out_key)
        *out_key = key;
    else
        free(key);
    return rc;
}

static X509 *parse_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(x);
    return x;
}

/* Replaces the body of a PEM block with base64 of der, in 64-column lines
 * as PEM wants them. */
static char *pem_rewrap(const char *label, const unsigned char *der, size_t len)
{
    char *b64 = sk_base64_encode(der, len);
    size_t n = strlen(b64);
    char *out = sk_malloc(n + n / 64 + 128);
    size_t o = (size_t)sprintf(out, "-----BEGIN %s-----\n", label);
    for (size_t i = 0; i < n; i += 64) {
        size_t line = n - i < 64 ? n - i : 64;
        memcpy(out + o, b64 + i, line);
        o += line;
        out[o++] = '\n';
    }
    sprintf(out + o, "-----END %s-----\n", label);
    free(b64);
    return out;
}

/* The DER inside the first PEM block of pem. */
static unsigned char *pem_der(const char *pem, size_t *out_len)
{
    const char *start = strstr(pem, "-----\n");
    assert_non_null(start);
    start += 6;
    const char *end = strstr(start, "-----END");
    assert_non_null(end);
    char *b64 = sk_malloc((size_t)(end - start) + 1);
    size_t n = 0;
    for (const char *c = start; c < end; c++)
        if (*c != '\n')
            b64[n++] = *c;
    b64[n] = '\0';
    unsigned char *der = NULL;
    assert_true(sk_base64_decode(b64, &der, out_len));
    free(b64);
    return der;
}

/* ---- Certificates ---- */

static void ca_new(void **state)
{
    struct sk_test_ca ca;
    int64_t before = sk_test_now_ms();
    sk_test_ca_new(&ca, "clu5ter");
    int64_t after = sk_test_now_ms();

    assert_non_null(strstr(ca.cert_pem, "-----BEGIN CERTIFICATE-----"));
    assert_non_null(strstr(ca.key_pem, "-----BEGIN PRIVATE KEY-----"));
    assert_true(sk_pki_key_matches(ca.cert_pem, ca.key_pem));

    struct sk_cert_info info;
    struct sk_err err;
    assert_int_equal(sk_pki_cert_info(ca.cert_pem, &info, &err), SK_OK);
    assert_string_equal(info.cn, "skiff-ca");
    assert_string_equal(info.o, "clu5ter");
    assert_string_equal(info.ou, "");
    /* Backdated an hour, valid 20 years; times have 1 s resolution. */
    assert_in_range(info.not_before_ms, before - HOUR_MS - 1000,
                    after - HOUR_MS);
    assert_in_range(info.not_after_ms, before + SK_PKI_CA_VALIDITY_MS - 1000,
                    after + SK_PKI_CA_VALIDITY_MS);

    X509 *x = parse_cert(ca.cert_pem);
    assert_int_equal(X509_check_ca(x), 1);
    assert_true(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
    assert_int_equal(X509_get_pathlen(x), 0);
    EVP_PKEY *pub = X509_get0_pubkey(x);
    assert_true(EVP_PKEY_is_a(pub, "EC"));
    char group[32];
    size_t glen;
    assert_int_equal(EVP_PKEY_get_group_name(pub, group, sizeof group, &glen),
                     1);
    assert_string_equal(group, "prime256v1");
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    X509_free(x);

    /* Nobody can present the CA itself as a node. */
    assert_int_equal(
        sk_pki_verify(ca.cert_pem, ca.cert_pem, sk_test_now_ms(), NULL, &err),
        SK_EAUTH);
    assert_string_equal(err.msg, "certificate is the CA's, not a node's");
    sk_test_ca_free(&ca);

    char *cert = (char *)"untouched", *key = (char *)"untouched";
    assert_int_equal(sk_pki_ca_new("", &cert, &key, &err), SK_EINVAL);
    assert_string_equal(err.msg, "cluster ID is empty");
    char long_id[80];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_int_equal(sk_pki_ca_new(long_id, &cert, &key, &err), SK_EINVAL);
    assert_string_equal(cert, "untouched");
    assert_string_equal(key, "untouched");
}

static void sign_and_read_back(void **state)
{
    struct sk_test_ca ca;
    sk_test_ca_new(&ca, "c1");
    struct sk_err err;
    static const char *const sans[] = {"127.0.0.1", "10.77.0.11", NULL};
    int64_t now = 1700000000123LL;
    char *cert = NULL, *key = NULL;
    assert_int_equal(
        sign(&ca, "node7", "worker", sans, now, DAY_MS, &cert, &key, &err),
        SK_OK);

    struct sk_cert_info info;
    assert_int_equal(sk_pki_cert_info(cert, &info, &err), SK_OK);
    /* The CSR asked for another CN; the signer decides. */
    assert_string_equal(info.cn, "node7");
    assert_string_equal(info.ou, "worker");
    assert_string_equal(info.o, "c1");
    assert_int_equal(info.not_before_ms, 1700000000000LL - HOUR_MS);
    assert_int_equal(info.not_after_ms, 1700000000000LL + DAY_MS);
    assert_in_range(strlen(info.serial), 1, 32);
    assert_int_equal(strspn(info.serial, "0123456789abcdef"),
                     strlen(info.serial));
    assert_true(sk_pki_key_matches(cert, key));

    X509 *x = parse_cert(cert);
    assert_int_equal(X509_check_ca(x), 0);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_extended_key_usage(x),
                     XKU_SSL_SERVER | XKU_SSL_CLIENT);
    assert_non_null(X509_get0_subject_key_id(x));
    X509 *cax = parse_cert(ca.cert_pem);
    assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x),
                                           X509_get0_subject_key_id(cax)),
                     0);
    X509_free(cax);
    GENERAL_NAMES *names =
        X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(names);
    assert_int_equal(sk_GENERAL_NAME_num(names), 2);
    static const unsigned char want[2][4] = {{127, 0, 0, 1}, {10, 77, 0, 11}};
    for (int i = 0; i < 2; i++) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        assert_int_equal(gn->type, GEN_IPADD);
        assert_int_equal(ASN1_STRING_length(gn->d.ip), 4);
        assert_memory_equal(ASN1_STRING_get0_data(gn->d.ip), want[i], 4);
    }
    GENERAL_NAMES_free(names);
    X509_free(x);

    /* Validity 0 is the default; serials differ. */
    char *cert2 = NULL;
    assert_int_equal(
        sign(&ca, "node8", "manager", NULL, now, 0, &cert2, NULL, &err), SK_OK);
    struct sk_cert_info info2;
    assert_int_equal(sk_pki_cert_info(cert2, &info2, &err), SK_OK);
    assert_int_equal(info2.not_after_ms,
                     1700000000000LL + SK_PKI_DEFAULT_VALIDITY_MS);
    assert_string_not_equal(info.serial, info2.serial);
    x = parse_cert(cert2);
    assert_null(X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL));
    X509_free(x);

    free(cert2);
    free(cert);
    free(key);
    sk_test_ca_free(&ca);
}

static void sign_rejects_bad_requests(void **state)
{
    struct sk_test_ca ca, other;
    sk_test_ca_new(&ca, "c1");
    sk_test_ca_new(&other, "c1");
    struct sk_err err;
    char *cert = (char *)"untouched";
    int64_t now = sk_test_now_ms();

    assert_int_equal(sign(&ca, "n1", "root", NULL, now, 0, &cert, NULL, &err),
                     SK_EINVAL);
    assert_string_equal(err.msg,
                        "role \"root\" is not manager, worker or admin");
    assert_int_equal(sign(&ca, "", "worker", NULL, now, 0, &cert, NULL, &err),
                     SK_EINVAL);
    assert_string_equal(err.msg, "node ID is empty");
    assert_int_equal(
        sign(&ca, "n1", "worker", NULL, now, -5, &cert, NULL, &err), SK_EINVAL);
    static const char *const bad_ip[] = {"127.0.0.1", "10.0.0", NULL};
    assert_int_equal(
        sign(&ca, "n1", "worker", bad_ip, now, 0, &cert, NULL, &err),
        SK_EINVAL);
    assert_string_equal(err.msg,
                        "certificate IP address \"10.0.0\" is not an IP "
                        "address");
    static const char *const smuggle[] = {"1.2.3.4,DNS:evil", NULL};
    assert_int_equal(
        sign(&ca, "n1", "worker", smuggle, now, 0, &cert, NULL, &err),
        SK_EINVAL);
    const char *many[40];
    for (int i = 0; i < 39; i++)
        many[i] = "10.0.0.1";
    many[39] = NULL;
    assert_int_equal(sign(&ca, "n1", "worker", many, now, 0, &cert, NULL, &err),
                     SK_ETOOBIG);
    assert_non_null(strstr(err.msg, "32"));

    /* The CA key of another CA with the same name. */
    struct sk_test_ca mixed = ca;
    mixed.key_pem = other.key_pem;
    assert_int_equal(
        sign(&mixed, "n1", "worker", NULL, now, 0, &cert, NULL, &err),
        SK_EINVAL);
    assert_string_equal(err.msg, "CA key does not match the CA certificate");
    mixed.key_pem = (char *)"garbage";
    assert_int_equal(
        sign(&mixed, "n1", "worker", NULL, now, 0, &cert, NULL, &err),
        SK_EINVAL);
    assert_non_null(strstr(err.msg, "CA key: not an unencrypted PEM"));
    mixed = ca;
    mixed.cert_pem = (char *)"garbage";
    assert_int_equal(
        sign(&mixed, "n1", "worker", NULL, now, 0, &cert, NULL, &err),
        SK_EINVAL);
    assert_non_null(strstr(err.msg, "CA certificate: not a PEM certificate"));

    assert_string_equal(cert, "untouched");
    sk_test_ca_free(&other);
    sk_test_ca_free(&ca);
}

static void sign_refuses_bad_csr(void **state)
{
    struct sk_test_ca ca;
    sk_test_ca_new(&ca, "c1");
    struct sk_err err;
    char *key = new_key();
    char *csr = new_csr(key, "n1");
    struct sk_pki_sign_req req = {
        .ca_cert_pem = ca.cert_pem,
        .ca_key_pem = ca.key_pem,
        .csr_pem = csr,
        .node_id = "n1",
        .role = "worker",
        .cluster_id = ca.cluster_id,
        .now_ms = sk_test_now_ms(),
    };
    char *cert = NULL;
    assert_int_equal(sk_pki_sign(&req, &cert, &err), SK_OK);
    free(cert);
    cert = (char *)"untouched";

    /* The last byte of the DER is the end of the ECDSA signature. */
    size_t len;
    unsigned char *der = pem_der(csr, &len);
    der[len - 1] ^= 0x01;
    char *broken = pem_rewrap("CERTIFICATE REQUEST", der, len);
    req.csr_pem = broken;
    assert_int_equal(sk_pki_sign(&req, &cert, &err), SK_EINVAL);
    assert_string_equal(err.msg, "CSR: signature does not verify");
    free(broken);
    free(der);

    req.csr_pem = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                  "-----END CERTIFICATE REQUEST-----\n";
    assert_int_equal(sk_pki_sign(&req, &cert, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "CSR: not a PEM certificate request"));
    req.csr_pem = NULL;
    assert_int_equal(sk_pki_sign(&req, &cert, &err), SK_EINVAL);
    assert_string_equal(err.msg, "CSR: missing");

    /* A well-signed request for a key of another kind. */
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    assert_non_null(p384);
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(
        PEM_write_bio_PrivateKey(b, p384, NULL, NULL, 0, NULL, NULL), 1);
    char *p384_pem = NULL;
    long n = BIO_get_mem_data(b, &p384_pem);
    p384_pem = sk_strndup(p384_pem, (size_t)n);
    BIO_free(b);
    EVP_PKEY_free(p384);
    char *p384_csr = new_csr(p384_pem, "n1");
    req.csr_pem = p384_csr;
    assert_int_equal(sk_pki_sign(&req, &cert, &err), SK_EINVAL);
    assert_string_equal(err.msg, "CSR: key is not ECDSA P-256");
    free(p384_csr);
    free(p384_pem);

    /* A huge request is refused before parsing. */
    char *huge = sk_malloc(70000);
    memset(huge, 'A', 69999);
    huge[69999] = '\0';
    req.csr_pem = huge;
    assert_int_equal(sk_pki_sign(&req, &cert, &err), SK_ETOOBIG);
    assert_string_equal(err.msg, "CSR: larger than 65536 bytes");
    free(huge);

    assert_string_equal(cert, "untouched");
    free(csr);
    free(key);
    sk_test_ca_free(&ca);
}

static void verify_ok(void **state)
{
    struct sk_test_ca ca;
    sk_test_ca_new(&ca, "c1");
    char *cert, *key;
    sk_test_cert_new(&ca, "n1", "manager", DAY_MS, &cert, &key);
    struct sk_err err;
    int64_t now = sk_test_now_ms();
    assert_int_equal(sk_pki_verify(ca.cert_pem, cert, now, NULL, &err), SK_OK);
    assert_int_equal(sk_pki_verify(ca.cert_pem, cert, now, "manager", &err),
                     SK_OK);
    /* Still valid just before the end, and just after the backdated
     * start. */
    assert_int_equal(
        sk_pki_verify(ca.cert_pem, cert, now + DAY_MS - 60000, "manager", &err),
        SK_OK);
    free(cert);
    free(key);
    sk_test_ca_free(&ca);
}

static void verify_rejects_other_ca(void **state)
{
    struct sk_test_ca ca, same_name, other;
    sk_test_ca_new(&ca, "c1");
    sk_test_ca_new(&same_name, "c1");
    sk_test_ca_new(&other, "c2");
    char *cert, *key;
    sk_test_cert_new(&ca, "n1", "worker", DAY_MS, &cert, &key);
    struct sk_err err;
    int64_t now = sk_test_now_ms();
    assert_int_equal(sk_pki_verify(same_name.cert_pem, cert, now, NULL, &err),
                     SK_EAUTH);
    assert_string_equal(err.msg, "certificate not signed by the cluster CA");
    assert_int_equal(sk_pki_verify(other.cert_pem, cert, now, NULL, &err),
                     SK_EAUTH);
    assert_string_equal(err.msg, "certificate not signed by the cluster CA");

    /* A certificate whose signature was tampered with. */
    size_t len;
    unsigned char *der = pem_der(cert, &len);
    der[len - 1] ^= 0x01;
    char *broken = pem_rewrap("CERTIFICATE", der, len);
    assert_int_equal(sk_pki_verify(ca.cert_pem, broken, now, NULL, &err),
                     SK_EAUTH);
    assert_string_equal(err.msg, "certificate not signed by the cluster CA");
    free(broken);
    free(der);

    assert_int_equal(sk_pki_verify(ca.cert_pem, "junk", now, NULL, &err),
                     SK_EINVAL);
    assert_non_null(strstr(err.msg, "certificate: not a PEM certificate"));
    assert_int_equal(sk_pki_verify("junk", cert, now, NULL, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "CA certificate: not a PEM certificate"));

    free(cert);
    free(key);
    sk_test_ca_free(&other);
    sk_test_ca_free(&same_name);
    sk_test_ca_free(&ca);
}

static void verify_rejects_expired(void **state)
{
    struct sk_test_ca ca;
    sk_test_ca_new(&ca, "c1");
    struct sk_err err;
    int64_t now = sk_test_now_ms();
    char *cert;
    /* Issued 100 days ago for 90 days. */
    assert_int_equal(sign(&ca, "n1", "worker", NULL, now - 100 * DAY_MS,
                          90 * DAY_MS, &cert, NULL, &err),
                     SK_OK);
    assert_int_equal(sk_pki_verify(ca.cert_pem, cert, now, NULL, &err),
                     SK_EAUTH);
    assert_string_equal(err.msg, "certificate expired");
    free(cert);

    /* A fresh one, checked at a time after it ran out. */
    assert_int_equal(
        sign(&ca, "n1", "worker", NULL, now, DAY_MS, &cert, NULL, &err), SK_OK);
    assert_int_equal(
        sk_pki_verify(ca.cert_pem, cert, now + DAY_MS + 1000, NULL, &err),
        SK_EAUTH);
    assert_string_equal(err.msg, "certificate expired");
    free(cert);

    /* The support helper's expired certificates are expired too. */
    char *key;
    sk_test_cert_new(&ca, "n1", "worker", -60000, &cert, &key);
    assert_int_equal(sk_pki_verify(ca.cert_pem, cert, now, NULL, &err),
                     SK_EAUTH);
    assert_string_equal(err.msg, "certificate expired");
    free(cert);
    free(key);
    sk_test_ca_free(&ca);
}

static void verify_rejects_not_yet_valid(void **state)
{
    struct sk_test_ca ca;
    sk_test_ca_new(&ca, "c1");
    struct sk_err err;
    int64_t now = sk_test_now_ms();
    char *cert;
    /* Issued for ten days from now. */
    assert_int_equal(sign(&ca, "n1", "worker", NULL, now + 10 * DAY_MS, 0,
                          &cert, NULL, &err),
                     SK_OK);
    assert_int_equal(sk_pki_verify(ca.cert_pem, cert, now, NULL, &err),
                     SK_EAUTH);
    assert_string_equal(err.msg, "certificate not yet valid");
    free(cert);

    /* Before the CA itself: the CA is named, not the node. */
    assert_int_equal(sign(&ca, "n1", "worker", NULL, now, 0, &cert, NULL, &err),
                     SK_OK);
    assert_int_equal(
        sk_pki_verify(ca.cert_pem, cert, now - 2 * HOUR_MS, NULL, &err),
        SK_EAUTH);
    assert_string_equal(err.msg, "cluster CA certificate not yet valid");
    free(cert);
    sk_test_ca_free(&ca);
}

static void verify_rejects_wrong_role(void **state)
{
    struct sk_test_ca ca;
    sk_test_ca_new(&ca, "c1");
    char *cert, *key;
    sk_test_cert_new(&ca, "n1", "worker", DAY_MS, &cert, &key);
    struct sk_err err;
    int64_t now = sk_test_now_ms();
    assert_int_equal(sk_pki_verify(ca.cert_pem, cert, now, "manager", &err),
                     SK_EAUTH);
    assert_string_equal(err.msg, "role worker is not manager");
    assert_int_equal(sk_pki_verify(ca.cert_pem, cert, now, "admin", &err),
                     SK_EAUTH);
    assert_string_equal(err.msg, "role worker is not admin");
    assert_int_equal(sk_pki_verify(ca.cert_pem, cert, now, "worker", &err),
                     SK_OK);
    free(cert);
    free(key);
    sk_test_ca_free(&ca);
}

static void key_matches(void **state)
{
    struct sk_test_ca ca;
    sk_test_ca_new(&ca, "c1");
    char *cert, *key, *cert2, *key2;
    sk_test_cert_new(&ca, "n1", "worker", DAY_MS, &cert, &key);
    sk_test_cert_new(&ca, "n2", "worker", DAY_MS, &cert2, &key2);
    assert_true(sk_pki_key_matches(cert, key));
    assert_true(sk_pki_key_matches(cert2, key2));
    assert_false(sk_pki_key_matches(cert, key2));
    assert_false(sk_pki_key_matches(cert2, key));
    assert_false(sk_pki_key_matches(cert, ca.key_pem));
    assert_false(sk_pki_key_matches(cert, "junk"));
    assert_false(sk_pki_key_matches("junk", key));
    assert_false(sk_pki_key_matches(NULL, NULL));
    free(cert);
    free(key);
    free(cert2);
    free(key2);
    sk_test_ca_free(&ca);
}

static void cert_digest(void **state)
{
    struct sk_test_ca ca, ca2;
    sk_test_ca_new(&ca, "c1");
    sk_test_ca_new(&ca2, "c1");
    struct sk_err err;
    unsigned char a[SK_DIGEST_SIZE], b[SK_DIGEST_SIZE], c[SK_DIGEST_SIZE];
    assert_int_equal(sk_pki_cert_digest(ca.cert_pem, a, &err), SK_OK);
    assert_int_equal(sk_pki_cert_digest(ca.cert_pem, b, &err), SK_OK);
    assert_memory_equal(a, b, SK_DIGEST_SIZE);
    assert_int_equal(sk_pki_cert_digest(ca2.cert_pem, c, &err), SK_OK);
    assert_memory_not_equal(a, c, SK_DIGEST_SIZE);

    /* It is the SHA-256 of the DER. */
    size_t len;
    unsigned char *der = pem_der(ca.cert_pem, &len);
    unsigned char md[SK_DIGEST_SIZE];
    assert_int_equal(EVP_Digest(der, len, md, NULL, EVP_sha256(), NULL), 1);
    assert_memory_equal(a, md, SK_DIGEST_SIZE);
    free(der);

    memset(c, 0xaa, sizeof c);
    assert_int_equal(sk_pki_cert_digest("nope", c, &err), SK_EINVAL);
    assert_int_equal(c[0], 0xaa);
    sk_test_ca_free(&ca2);
    sk_test_ca_free(&ca);
}

static void cert_info_rejects_junk(void **state)
{
    struct sk_cert_info info;
    memset(&info, 0x5a, sizeof info);
    struct sk_err err;
    assert_int_equal(sk_pki_cert_info("not a cert", &info, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "certificate: not a PEM certificate"));
    assert_int_equal(sk_pki_cert_info(NULL, &info, &err), SK_EINVAL);
    assert_string_equal(err.msg, "certificate: missing");
    assert_int_equal((unsigned char)info.cn[0], 0x5a);
}

/* ---- Join tokens ---- */

static void token_round_trip(void **state)
{
    unsigned char digest[SK_DIGEST_SIZE];
    for (int i = 0; i < SK_DIGEST_SIZE; i++)
        digest[i] = (unsigned char)(i * 37 + 1);
    struct sk_token t, t2, back;
    sk_token_new(digest, &t);
    sk_token_new(digest, &t2);
    assert_memory_equal(t.ca_digest, digest, SK_DIGEST_SIZE);
    assert_memory_not_equal(t.secret, t2.secret, SK_TOKEN_SECRET_SIZE);

    char text[SK_TOKEN_MAX_LEN];
    sk_token_format(&t, text);
    assert_int_equal(strlen(text), 5 + 52 + 1 + 26);
    assert_memory_equal(text, "SKF1-", 5);
    assert_int_equal(text[57], '-');
    assert_int_equal(strspn(text + 5, "abcdefghijklmnopqrstuvwxyz234567-"),
                     52 + 1 + 26);

    struct sk_err err;
    assert_int_equal(sk_token_parse(text, &back, &err), SK_OK);
    assert_memory_equal(&back, &t, sizeof t);

    /* Upper case (someone retyped it) is the same token. */
    char upper[SK_TOKEN_MAX_LEN];
    for (size_t i = 0; i <= strlen(text); i++)
        upper[i] =
            (char)(text[i] >= 'a' && text[i] <= 'z' ? text[i] - 32 : text[i]);
    memset(&back, 0, sizeof back);
    assert_int_equal(sk_token_parse(upper, &back, &err), SK_OK);
    assert_memory_equal(&back, &t, sizeof t);

    /* A known vector: all-zero digest and secret. */
    static const char zeros[] =
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    assert_int_equal(strlen(zeros), 52);
    struct sk_token zero;
    memset(&zero, 0, sizeof zero);
    sk_token_format(&zero, text);
    char want[SK_TOKEN_MAX_LEN];
    snprintf(want, sizeof want, "SKF1-%.52s-%.26s", zeros, zeros);
    assert_string_equal(text, want);
}

static void token_parse_rejects(void **state)
{
    struct sk_token t;
    memset(t.ca_digest, 0x11, sizeof t.ca_digest);
    memset(t.secret, 0x22, sizeof t.secret);
    char good[SK_TOKEN_MAX_LEN];
    sk_token_format(&t, good);
    const char *digest = good + 5;
    const char *secret = good + 58;
    char buf[161];

    struct {
        char text[300];
        const char *msg;
    } cases[] = {
        {"", "join token is empty"},
        {"", "join token must start with SKF1-"},
        {"", "join token must start with SKF1-"},
        {"", "join token must start with SKF1-"},
        {"", "join token must have 3 parts, SKF1-<CA digest>-<secret> "
             "(found 2)"},
        {"", "join token must have 3 parts, SKF1-<CA digest>-<secret> "
             "(found 4)"},
        {"", "join token has a malformed CA digest: 51 characters, want 52"},
        {"", "join token has a malformed CA digest: 53 characters, want 52"},
        {"", "join token has a malformed CA digest: character 10 is not "
             "base32"},
        {"", "join token has a malformed CA digest: not a canonical base32 "
             "encoding"},
        {"", "join token has a malformed secret: 25 characters, want 26"},
        {"", "join token has a malformed secret: 27 characters, want 26"},
        {"", "join token has a malformed secret: character 60 is not "
             "base32"},
        {"", "join token has a malformed secret: not a canonical base32 "
             "encoding"},
        {"", "join token has trailing characters after the secret (from "
             "character 85)"},
        {"", "join token has trailing characters after the secret (from "
             "character 85)"},
        {"", "join token is longer than 127 characters"},
    };
    int i = 1;
    snprintf(cases[i++].text, 300, "SKF2-%s", digest);
    snprintf(cases[i++].text, 300, "skf1-%s", digest); /* prefix is exact */
    snprintf(cases[i++].text, 300, " %s", good);
    snprintf(cases[i++].text, 300, "SKF1-%s", secret);
    snprintf(cases[i++].text, 300, "%s-%s", good, secret);
    snprintf(cases[i++].text, 300, "SKF1-%.51s-%s", digest, secret);
    snprintf(cases[i++].text, 300, "SKF1-%.52sa-%s", digest, secret);
    snprintf(cases[i].text, 300, "%s", good);
    cases[i++].text[9] = '1'; /* 1 is not in the base32 alphabet */
    /* The last digest character carries 4 unused bits, which must be 0. */
    snprintf(cases[i].text, 300, "%s", good);
    cases[i++].text[56] = 'b';
    snprintf(cases[i++].text, 300, "SKF1-%.52s-%.25s", digest, secret);
    snprintf(cases[i++].text, 300, "%sa", good);
    snprintf(cases[i].text, 300, "%s", good);
    cases[i++].text[59] = '=';
    snprintf(cases[i].text, 300, "%s", good);
    cases[i++].text[83] = 'b'; /* 2 unused bits */
    snprintf(cases[i++].text, 300, "%s\n", good);
    snprintf(cases[i++].text, 300, "%s !", good);
    memset(buf, 'a', 160);
    buf[160] = '\0';
    snprintf(cases[i++].text, 300, "%s%s", good, buf);
    assert_int_equal(i, sizeof cases / sizeof cases[0]);

    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct sk_token out;
        memset(&out, 0x77, sizeof out);
        struct sk_err err = {0};
        enum sk_rc rc = sk_token_parse(cases[c].text, &out, &err);
        if (rc != SK_EINVAL || strcmp(err.msg, cases[c].msg) != 0)
            fail_msg("case %zu \"%s\": rc %d, \"%s\", want \"%s\"", c,
                     cases[c].text, rc, err.msg, cases[c].msg);
        for (size_t b = 0; b < sizeof out; b++)
            assert_int_equal(((unsigned char *)&out)[b], 0x77);
    }
    struct sk_err err;
    assert_int_equal(sk_token_parse(NULL, &t, &err), SK_EINVAL);
    assert_string_equal(err.msg, "join token is empty");
    /* The control case passes. */
    assert_int_equal(sk_token_parse(good, &t, &err), SK_OK);
}

static void token_secret_hash(void **state)
{
    unsigned char digest[SK_DIGEST_SIZE] = {1, 2, 3};
    struct sk_token t, other;
    sk_token_new(digest, &t);
    sk_token_new(digest, &other);
    char hash[65];
    sk_token_secret_hash(&t, hash);
    assert_int_equal(strlen(hash), 64);
    assert_int_equal(strspn(hash, "0123456789abcdef"), 64);
    assert_true(sk_token_secret_matches(&t, hash));
    assert_false(sk_token_secret_matches(&other, hash));

    /* The hash is SHA-256 of the secret bytes. */
    struct sk_token zero;
    memset(&zero, 0, sizeof zero);
    sk_token_secret_hash(&zero, hash);
    assert_string_equal(
        hash,
        "374708fff7719dd5979ec875d56cd2286f6d3cf7ec317a3b25632aab28ec37bb");
    assert_true(sk_token_secret_matches(&zero, hash));

    char upper[65];
    for (int i = 0; i < 65; i++)
        upper[i] =
            (char)(hash[i] >= 'a' && hash[i] <= 'f' ? hash[i] - 32 : hash[i]);
    assert_true(sk_token_secret_matches(&zero, upper));

    /* A malformed stored hash never matches. */
    char bad[70];
    snprintf(bad, sizeof bad, "%.63s", hash);
    assert_false(sk_token_secret_matches(&zero, bad));
    snprintf(bad, sizeof bad, "%s0", hash);
    assert_false(sk_token_secret_matches(&zero, bad));
    snprintf(bad, sizeof bad, "%s", hash);
    bad[10] = 'g';
    assert_false(sk_token_secret_matches(&zero, bad));
    assert_false(sk_token_secret_matches(&zero, ""));
    assert_false(sk_token_secret_matches(&zero, NULL));
    /* One bit off. */
    snprintf(bad, sizeof bad, "%s", hash);
    bad[63] = bad[63] == 'b' ? 'a' : 'b';
    assert_false(sk_token_secret_matches(&zero, bad));
}

/* ---- Sealing ---- */

static void seal_round_trip(void **state)
{
    unsigned char key[SK_DATA_KEY_SIZE];
    sk_data_key_new(key);
    static const size_t lens[] = {0, 1, 15, 16, 17, 100, 5000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        unsigned char *plain = sk_malloc(lens[i] + 1);
        for (size_t j = 0; j < lens[i]; j++)
            plain[j] = (unsigned char)(j * 7 + i);
        char *sealed = sk_seal(key, plain, lens[i]);
        char *again = sk_seal(key, plain, lens[i]);
        /* A fresh nonce each time. */
        assert_string_not_equal(sealed, again);

        size_t raw_len;
        unsigned char *raw;
        assert_true(sk_base64_decode(sealed, &raw, &raw_len));
        assert_int_equal(raw_len, 12 + lens[i] + 16);
        if (lens[i] >= 16)
            assert_memory_not_equal(raw + 12, plain, 16);
        free(raw);

        unsigned char *back = NULL;
        size_t n = 12345;
        struct sk_err err;
        assert_int_equal(sk_unseal(key, sealed, &back, &n, &err), SK_OK);
        assert_int_equal(n, lens[i]);
        assert_memory_equal(back, plain, n);
        assert_int_equal(back[n], '\0');
        free(back);
        free(again);
        free(sealed);
        free(plain);
    }
}

static void unseal_rejects(void **state)
{
    unsigned char key[SK_DATA_KEY_SIZE], other[SK_DATA_KEY_SIZE];
    sk_data_key_new(key);
    sk_data_key_new(other);
    char *sealed = sk_seal(key, "the cluster CA key", 18);
    unsigned char *back = (unsigned char *)"untouched";
    size_t n = 777;
    struct sk_err err;

    assert_int_equal(sk_unseal(other, sealed, &back, &n, &err), SK_EAUTH);
    assert_string_equal(err.msg, "sealed value does not open with this key "
                                 "(wrong key or tampered)");

    /* A flipped bit anywhere (nonce, ciphertext, tag) is caught. */
    size_t raw_len;
    unsigned char *raw;
    assert_true(sk_base64_decode(sealed, &raw, &raw_len));
    static const size_t where[] = {0, 11, 12, 29, 30, 45};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        assert_true(where[i] < raw_len);
        raw[where[i]] ^= 0x04;
        char *tampered = sk_base64_encode(raw, raw_len);
        raw[where[i]] ^= 0x04;
        err.code = SK_OK;
        assert_int_equal(sk_unseal(key, tampered, &back, &n, &err), SK_EAUTH);
        assert_int_equal(err.code, SK_EAUTH);
        free(tampered);
    }
    /* Cut short by a byte. */
    char *cut = sk_base64_encode(raw, raw_len - 1);
    assert_int_equal(sk_unseal(key, cut, &back, &n, &err), SK_EAUTH);
    free(cut);
    free(raw);

    assert_int_equal(sk_unseal(key, "not base64!", &back, &n, &err), SK_EINVAL);
    assert_string_equal(err.msg, "sealed value is not base64");
    assert_int_equal(sk_unseal(key, "abc", &back, &n, &err), SK_EINVAL);
    assert_int_equal(sk_unseal(key, NULL, &back, &n, &err), SK_EINVAL);
    assert_int_equal(sk_unseal(key, "", &back, &n, &err), SK_EINVAL);
    assert_string_equal(err.msg,
                        "sealed value is too short (0 bytes, at least 28)");
    char *tiny = sk_base64_encode("0123456789abcdef0123456789a", 27);
    assert_int_equal(sk_unseal(key, tiny, &back, &n, &err), SK_EINVAL);
    free(tiny);

    assert_string_equal((char *)back, "untouched");
    assert_int_equal(n, 777);
    free(sealed);
}

/* ---- base64 ---- */

static void base64_vectors(void **state)
{
    static const char *const plain[] = {"",     "f",     "fo",    "foo",
                                        "foob", "fooba", "foobar"};
    static const char *const coded[] = {
        "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *e = sk_base64_encode(plain[i], strlen(plain[i]));
        assert_string_equal(e, coded[i]);
        free(e);
        unsigned char *d;
        size_t n;
        assert_true(sk_base64_decode(coded[i], &d, &n));
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(d, plain[i], n);
        assert_int_equal(d[n], '\0');
        free(d);
    }
    static const unsigned char high[] = {0xfb, 0xff, 0xbf};
    char *e = sk_base64_encode(high, 3);
    assert_string_equal(e, "+/+/");
    free(e);
}

static void base64_round_trip(void **state)
{
    unsigned char in[64];
    for (size_t len = 0; len <= sizeof in; len++) {
        for (size_t i = 0; i < len; i++)
            in[i] = (unsigned char)(rand() & 0xff);
        char *e = sk_base64_encode(in, len);
        assert_int_equal(strlen(e), (len + 2) / 3 * 4);
        unsigned char *d = NULL;
        size_t n = 999;
        assert_true(sk_base64_decode(e, &d, &n));
        assert_int_equal(n, len);
        assert_memory_equal(d, in, len);
        free(d);
        free(e);
    }
}

static void base64_rejects(void **state)
{
    static const char *const bad[] = {
        "Zg",       /* not a multiple of 4 */
        "Zg=",      /* ditto */
        "Z===",     /* too much padding */
        "Zg=a",     /* padding in the middle */
        "Zg==Zg==", /* ditto */
        "Zh==",     /* unused bits set: not the canonical spelling */
        "Zm9=",     /* ditto */
        "Zm9v\n",   /* white space */
        " Zm9v",    /* ditto */
        "Zm 9",     /* ditto */
        "Zm-_",     /* URL alphabet */
        "====",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char *d = (unsigned char *)"untouched";
        size_t n = 5;
        if (sk_base64_decode(bad[i], &d, &n))
            fail_msg("accepted \"%s\"", bad[i]);
        assert_string_equal((char *)d, "untouched");
        assert_int_equal(n, 5);
    }
    unsigned char *d;
    size_t n;
    assert_false(sk_base64_decode(NULL, &d, &n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ca_new),
        cmocka_unit_test(sign_and_read_back),
        cmocka_unit_test(sign_rejects_bad_requests),
        cmocka_unit_test(sign_refuses_bad_csr),
        cmocka_unit_test(verify_ok),
        cmocka_unit_test(verify_rejects_other_ca),
        cmocka_unit_test(verify_rejects_expired),
        cmocka_unit_test(verify_rejects_not_yet_valid),
        cmocka_unit_test(verify_rejects_wrong_role),
        cmocka_unit_test(key_matches),
        cmocka_unit_test(cert_digest),
        cmocka_unit_test(cert_info_rejects_junk),
        cmocka_unit_test(token_round_trip),
        cmocka_unit_test(token_parse_rejects),
        cmocka_unit_test(token_secret_hash),
        cmocka_unit_test(seal_round_trip),
        cmocka_unit_test(unseal_rejects),
        cmocka_unit_test(base64_vectors),
        cmocka_unit_test(base64_round_trip),
        cmocka_unit_test(base64_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
