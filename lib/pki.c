#include "skiff/pki.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "skiff/base32.h"
#include "skiff/mem.h"
#include "skiff/parse.h"

/* Certificates, keys and CSRs are about a kilobyte; anything near this cap
 * is not one of ours. Requests and certificates come from peers. */
#define PEM_MAX 65536
/* A node has a handful of addresses. */
#define SAN_MAX 32
/* Subject fields must fit struct sk_cert_info. */
#define NAME_MAX_LEN 63
#define HOUR_MS (3600LL * 1000)

#define NONCE_SIZE 12
#define TAG_SIZE 16

#define TOKEN_PREFIX "SKF1-"
#define TOKEN_PREFIX_LEN 5
#define DIGEST_CHARS 52
#define SECRET_CHARS 26

/* OpenSSL length parameters are ints: long inputs go through in chunks.
 * Multiples of 3 and 4 keep base64 chunks on group boundaries. */
#define CHUNK (3 * 4 * (1 << 18))

static const char *const roles[] = {"manager", "worker", "admin"};

/* ---- Helpers ---- */

/* OpenSSL constructors fail only when memory runs out, which skiff does not
 * survive (STYLE.md, "Errors"). */
static void *must(void *p)
{
    if (!p)
        sk_oom(0);
    return p;
}

/* A void function that needs randomness or a hash has nobody to report a
 * failure to; like sk_random_bytes, it aborts, since no caller could
 * recover without randomness. */
static _Noreturn void crypto_abort(const char *what)
{
    unsigned long e = ERR_peek_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    fprintf(stderr, "skiff: %s failed (%s)\n", what,
            reason ? reason : "no reason given");
    abort();
}

static void random_bytes(unsigned char *buf, size_t n)
{
    if (RAND_bytes(buf, (int)n) != 1)
        crypto_abort("RAND_bytes");
}

static void sha256(const void *data, size_t len,
                   unsigned char out[SK_DIGEST_SIZE])
{
    if (EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL) != 1)
        crypto_abort("SHA-256");
}

/* Fills err for a failed OpenSSL call: the message names what failed and
 * the oldest queued OpenSSL reason (the root cause) follows in brackets.
 * The queue is emptied so that no stale error reaches the next TLS call on
 * this thread. */
static enum sk_rc ossl_fail(struct sk_err *err, enum sk_rc code,
                            const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum sk_rc ossl_fail(struct sk_err *err, enum sk_rc code,
                            const char *fmt, ...)
{
    char what[SK_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    unsigned long e = ERR_peek_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    if (reason)
        return sk_err_set(err, code, "%s (%s)", what, reason);
    return sk_err_set(err, code, "%s", what);
}

/* Refuses to ask for a pass phrase: the default callback would prompt on
 * the terminal, and our keys are never encrypted. */
static int no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

static enum sk_rc pem_source(const char *pem, const char *what, BIO **out,
                             struct sk_err *err)
{
    if (!pem)
        return sk_err_set(err, SK_EINVAL, "%s: missing", what);
    size_t len = strnlen(pem, PEM_MAX + 1);
    if (len > PEM_MAX)
        return sk_err_set(err, SK_ETOOBIG, "%s: larger than %d bytes", what,
                          PEM_MAX);
    *out = must(BIO_new_mem_buf(pem, (int)len));
    return SK_OK;
}

/* The first PEM block of the right type in pem. */
static enum sk_rc read_cert(const char *pem, const char *what, X509 **out,
                            struct sk_err *err)
{
    BIO *b = NULL;
    enum sk_rc rc = pem_source(pem, what, &b, err);
    if (rc != SK_OK)
        return rc;
    X509 *x = PEM_read_bio_X509(b, NULL, no_passphrase_cb, NULL);
    BIO_free(b);
    if (!x)
        return ossl_fail(err, SK_EINVAL, "%s: not a PEM certificate", what);
    *out = x;
    return SK_OK;
}

static enum sk_rc read_key(const char *pem, const char *what, EVP_PKEY **out,
                           struct sk_err *err)
{
    BIO *b = NULL;
    enum sk_rc rc = pem_source(pem, what, &b, err);
    if (rc != SK_OK)
        return rc;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, no_passphrase_cb, NULL);
    BIO_free(b);
    if (!k)
        return ossl_fail(err, SK_EINVAL,
                         "%s: not an unencrypted PEM private key", what);
    *out = k;
    return SK_OK;
}

static enum sk_rc read_csr(const char *pem, X509_REQ **out, struct sk_err *err)
{
    BIO *b = NULL;
    enum sk_rc rc = pem_source(pem, "CSR", &b, err);
    if (rc != SK_OK)
        return rc;
    X509_REQ *r = PEM_read_bio_X509_REQ(b, NULL, no_passphrase_cb, NULL);
    BIO_free(b);
    if (!r)
        return ossl_fail(err, SK_EINVAL, "CSR: not a PEM certificate request");
    *out = r;
    return SK_OK;
}

static char *bio_text(BIO *b)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *s = sk_malloc((size_t)n + 1);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    return s;
}

/* The key text passes through a secure-memory BIO, which is wiped when
 * freed; the copy returned is the caller's to guard. */
static enum sk_rc write_key(EVP_PKEY *key, char **out, struct sk_err *err)
{
    BIO *b = must(BIO_new(BIO_s_secmem()));
    enum sk_rc rc = SK_OK;
    if (PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1)
        *out = bio_text(b);
    else
        rc = ossl_fail(err, SK_EINTERNAL, "key: cannot write PEM");
    BIO_free(b);
    return rc;
}

static enum sk_rc write_cert(X509 *x, char **out, struct sk_err *err)
{
    BIO *b = must(BIO_new(BIO_s_mem()));
    enum sk_rc rc = SK_OK;
    if (PEM_write_bio_X509(b, x) == 1)
        *out = bio_text(b);
    else
        rc = ossl_fail(err, SK_EINTERNAL, "certificate: cannot write PEM");
    BIO_free(b);
    return rc;
}

static enum sk_rc new_p256(EVP_PKEY **out, struct sk_err *err)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!k)
        return ossl_fail(err, SK_EINTERNAL,
                         "key generation (ECDSA P-256) failed");
    *out = k;
    return SK_OK;
}

static bool is_p256(EVP_PKEY *k)
{
    char group[64];
    size_t len;
    return EVP_PKEY_is_a(k, "EC") &&
           EVP_PKEY_get_group_name(k, group, sizeof group, &len) == 1 &&
           OBJ_txt2nid(group) == NID_X9_62_prime256v1;
}

/* Names in subjects: printable, short enough for struct sk_cert_info. */
static enum sk_rc check_name(const char *value, const char *what,
                             size_t max_len, struct sk_err *err)
{
    if (!value || !*value)
        return sk_err_set(err, SK_EINVAL, "%s is empty", what);
    size_t len = strnlen(value, max_len + 1);
    if (len > max_len)
        return sk_err_set(err, SK_EINVAL, "%s is longer than %zu bytes", what,
                          max_len);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
            return sk_err_set(err, SK_EINVAL,
                              "%s has a control character at byte %zu", what,
                              i + 1);
    return SK_OK;
}

/* ---- Building certificates ---- */

struct cert_plan {
    const char *cn, *ou, *o; /* ou may be NULL */
    int64_t not_before_ms, not_after_ms;
    bool ca;
    const char *const *ip_sans;
};

static enum sk_rc add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value,
                          struct sk_err *err)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    if (!ext)
        return ossl_fail(err, SK_EINTERNAL,
                         "certificate: cannot build extension %s",
                         OBJ_nid2sn(nid));
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (!ok)
        return ossl_fail(err, SK_EINTERNAL,
                         "certificate: cannot add extension %s",
                         OBJ_nid2sn(nid));
    return SK_OK;
}

/* The SAN is built from the parsed address bytes rather than from a
 * "IP:a,IP:b" config string, so no input can smuggle in another name. */
static enum sk_rc add_ip_sans(X509 *x, const char *const *ips,
                              struct sk_err *err)
{
    if (!ips || !ips[0])
        return SK_OK;
    GENERAL_NAMES *names = must(GENERAL_NAMES_new());
    enum sk_rc rc = SK_OK;
    for (size_t i = 0; ips[i]; i++) {
        if (i == SAN_MAX) {
            rc = sk_err_set(err, SK_ETOOBIG,
                            "more than %d IP addresses for the certificate",
                            SAN_MAX);
            goto done;
        }
        unsigned char addr[16];
        int len;
        if (inet_pton(AF_INET, ips[i], addr) == 1) {
            len = 4;
        } else if (inet_pton(AF_INET6, ips[i], addr) == 1) {
            len = 16;
        } else {
            rc = sk_err_set(err, SK_EINVAL,
                            "certificate IP address \"%.64s\" is not an IP "
                            "address",
                            ips[i]);
            goto done;
        }
        ASN1_OCTET_STRING *os = must(ASN1_OCTET_STRING_new());
        if (!ASN1_OCTET_STRING_set(os, addr, len))
            sk_oom((size_t)len);
        GENERAL_NAME *gn = must(GENERAL_NAME_new());
        GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
        if (!sk_GENERAL_NAME_push(names, gn)) {
            GENERAL_NAME_free(gn);
            sk_oom(0);
        }
    }
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0,
                          X509V3_ADD_DEFAULT) != 1)
        rc = ossl_fail(err, SK_EINTERNAL,
                       "certificate: cannot add subjectAltName");
done:
    GENERAL_NAMES_free(names);
    return rc;
}

static enum sk_rc set_time(ASN1_TIME *t, int64_t ms, const char *what,
                           struct sk_err *err)
{
    if (!ASN1_TIME_set(t, (time_t)(ms / 1000)))
        return ossl_fail(err, SK_EINVAL, "certificate: %s out of range", what);
    return SK_OK;
}

static enum sk_rc random_serial(X509 *x, struct sk_err *err)
{
    BIGNUM *bn = must(BN_new());
    enum sk_rc rc = SK_OK;
    do {
        if (!BN_rand(bn, 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY)) {
            rc = ossl_fail(err, SK_EINTERNAL, "certificate: serial number");
            goto done;
        }
    } while (BN_is_zero(bn));
    if (!BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        rc = ossl_fail(err, SK_EINTERNAL, "certificate: serial number");
done:
    BN_free(bn);
    return rc;
}

static enum sk_rc set_subject(X509 *x, const struct cert_plan *p,
                              struct sk_err *err)
{
    X509_NAME *name = must(X509_NAME_new());
    const char *fields[][2] = {{"O", p->o}, {"OU", p->ou}, {"CN", p->cn}};
    enum sk_rc rc = SK_OK;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (!fields[i][1])
            continue;
        if (!X509_NAME_add_entry_by_txt(name, fields[i][0], MBSTRING_UTF8,
                                        (const unsigned char *)fields[i][1], -1,
                                        -1, 0)) {
            rc = ossl_fail(err, SK_EINVAL, "certificate: subject %s",
                           fields[i][0]);
            goto done;
        }
    }
    if (!X509_set_subject_name(x, name))
        rc = ossl_fail(err, SK_EINTERNAL, "certificate: subject");
done:
    X509_NAME_free(name);
    return rc;
}

/* Makes a certificate for pub as planned, signed by issuer_key; issuer is
 * NULL for a self-signed one. */
static enum sk_rc make_cert(const struct cert_plan *p, EVP_PKEY *pub,
                            X509 *issuer, EVP_PKEY *issuer_key, X509 **out,
                            struct sk_err *err)
{
    X509 *x = must(X509_new());
    enum sk_rc rc;
    if (!X509_set_version(x, X509_VERSION_3)) {
        rc = ossl_fail(err, SK_EINTERNAL, "certificate: version");
        goto fail;
    }
    if ((rc = random_serial(x, err)) || (rc = set_subject(x, p, err)))
        goto fail;
    if (!X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x))) {
        rc = ossl_fail(err, SK_EINTERNAL, "certificate: issuer");
        goto fail;
    }
    if ((rc = set_time(X509_getm_notBefore(x), p->not_before_ms,
                       "start of validity", err)) ||
        (rc = set_time(X509_getm_notAfter(x), p->not_after_ms,
                       "end of validity", err)))
        goto fail;
    if (!X509_set_pubkey(x, pub)) {
        rc = ossl_fail(err, SK_EINTERNAL, "certificate: public key");
        goto fail;
    }

    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    X509V3_set_ctx_nodb(&ctx);
    if (p->ca) {
        /* pathlen:0: the cluster CA signs nodes, never another CA. */
        if ((rc = add_ext(x, &ctx, NID_basic_constraints,
                          "critical,CA:TRUE,pathlen:0", err)) ||
            (rc = add_ext(x, &ctx, NID_key_usage,
                          "critical,keyCertSign,cRLSign", err)))
            goto fail;
    } else {
        if ((rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE",
                          err)) ||
            (rc = add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature",
                          err)) ||
            (rc = add_ext(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth",
                          err)) ||
            (rc = add_ip_sans(x, p->ip_sans, err)))
            goto fail;
    }
    /* The subject key ID goes first: for a self-signed certificate the
     * authority key ID is taken from it. */
    if ((rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash", err)) ||
        (rc = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always",
                      err)))
        goto fail;

    if (X509_sign(x, issuer_key, EVP_sha256()) <= 0) {
        rc = ossl_fail(err, SK_EINTERNAL, "certificate: signing failed");
        goto fail;
    }
    *out = x;
    return SK_OK;
fail:
    X509_free(x);
    return rc;
}

/* ---- Certificates ---- */

enum sk_rc sk_pki_key_new(char **out_key_pem, struct sk_err *err)
{
    ERR_clear_error();
    EVP_PKEY *key = NULL;
    enum sk_rc rc = new_p256(&key, err);
    if (rc != SK_OK)
        return rc;
    rc = write_key(key, out_key_pem, err);
    EVP_PKEY_free(key);
    return rc;
}

enum sk_rc sk_pki_ca_new(const char *cluster_id, char **out_cert_pem,
                         char **out_key_pem, struct sk_err *err)
{
    enum sk_rc rc = check_name(cluster_id, "cluster ID", NAME_MAX_LEN, err);
    if (rc != SK_OK)
        return rc;
    ERR_clear_error();
    EVP_PKEY *key = NULL;
    if ((rc = new_p256(&key, err)) != SK_OK)
        return sk_err_wrap(err, "cluster CA");

    /* Backdated like node certificates, so that a joining node whose clock
     * is a little behind does not see a CA from the future. */
    int64_t now = (int64_t)time(NULL) * 1000;
    struct cert_plan plan = {
        .cn = "skiff-ca",
        .o = cluster_id,
        .not_before_ms = now - HOUR_MS,
        .not_after_ms = now + SK_PKI_CA_VALIDITY_MS,
        .ca = true,
    };
    X509 *x = NULL;
    char *cert = NULL, *kpem = NULL;
    if ((rc = make_cert(&plan, key, NULL, key, &x, err)) ||
        (rc = write_cert(x, &cert, err)) || (rc = write_key(key, &kpem, err))) {
        free(cert);
        sk_err_wrap(err, "cluster CA");
    } else {
        *out_cert_pem = cert;
        *out_key_pem = kpem;
    }
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

enum sk_rc sk_pki_csr_new(const char *key_pem, const char *cn,
                          char **out_csr_pem, struct sk_err *err)
{
    enum sk_rc rc = check_name(cn, "CSR common name", NAME_MAX_LEN, err);
    if (rc != SK_OK)
        return rc;
    ERR_clear_error();
    EVP_PKEY *key = NULL;
    if ((rc = read_key(key_pem, "key", &key, err)) != SK_OK)
        return rc;
    X509_REQ *req = must(X509_REQ_new());
    BIO *b = NULL;
    if (!X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
        !X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
                                    MBSTRING_UTF8, (const unsigned char *)cn,
                                    -1, -1, 0) ||
        !X509_REQ_set_pubkey(req, key)) {
        rc = ossl_fail(err, SK_EINTERNAL, "CSR: cannot fill in");
        goto done;
    }
    if (X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
        rc = ossl_fail(err, SK_EINTERNAL, "CSR: signing failed");
        goto done;
    }
    b = must(BIO_new(BIO_s_mem()));
    if (PEM_write_bio_X509_REQ(b, req) != 1) {
        rc = ossl_fail(err, SK_EINTERNAL, "CSR: cannot write PEM");
        goto done;
    }
    *out_csr_pem = bio_text(b);
done:
    BIO_free(b);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return rc;
}

static bool known_role(const char *role)
{
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(role, roles[i]) == 0)
            return true;
    return false;
}

static enum sk_rc check_sign_req(const struct sk_pki_sign_req *req,
                                 struct sk_err *err)
{
    enum sk_rc rc;
    if (!req)
        return sk_err_set(err, SK_EINVAL, "no signing request");
    if ((rc = check_name(req->node_id, "node ID", NAME_MAX_LEN, err)) ||
        (rc = check_name(req->cluster_id, "cluster ID", NAME_MAX_LEN, err)) ||
        (rc = check_name(req->role, "role", 15, err)))
        return rc;
    if (!known_role(req->role))
        return sk_err_set(err, SK_EINVAL,
                          "role \"%s\" is not manager, worker or admin",
                          req->role);
    if (req->validity_ms < 0)
        return sk_err_set(err, SK_EINVAL,
                          "certificate validity is negative (%lld ms)",
                          (long long)req->validity_ms);
    int64_t validity =
        req->validity_ms ? req->validity_ms : SK_PKI_DEFAULT_VALIDITY_MS;
    if (req->now_ms < HOUR_MS || req->now_ms > INT64_MAX - validity)
        return sk_err_set(err, SK_EINVAL,
                          "certificate issue time %lld ms is out of range",
                          (long long)req->now_ms);
    return SK_OK;
}

/* Checks the request and returns its public key (owned by csr). */
static enum sk_rc csr_key(X509_REQ *csr, EVP_PKEY **out, struct sk_err *err)
{
    EVP_PKEY *pub = X509_REQ_get0_pubkey(csr);
    if (!pub)
        return ossl_fail(err, SK_EINVAL, "CSR: no usable public key");
    if (X509_REQ_verify(csr, pub) != 1)
        return sk_err_set(err, SK_EINVAL, "CSR: signature does not verify");
    if (!is_p256(pub))
        return sk_err_set(err, SK_EINVAL, "CSR: key is not ECDSA P-256");
    *out = pub;
    return SK_OK;
}

enum sk_rc sk_pki_sign(const struct sk_pki_sign_req *req, char **out_cert_pem,
                       struct sk_err *err)
{
    enum sk_rc rc = check_sign_req(req, err);
    if (rc != SK_OK)
        return rc;
    ERR_clear_error();
    X509 *ca = NULL, *cert = NULL;
    EVP_PKEY *ca_key = NULL, *pub = NULL;
    X509_REQ *csr = NULL;
    if ((rc = read_cert(req->ca_cert_pem, "CA certificate", &ca, err)) ||
        (rc = read_key(req->ca_key_pem, "CA key", &ca_key, err)))
        goto done;
    if (EVP_PKEY_eq(X509_get0_pubkey(ca), ca_key) != 1) {
        rc = sk_err_set(err, SK_EINVAL,
                        "CA key does not match the CA certificate");
        goto done;
    }
    /* Only the public key is taken from the request, and only once the
     * request proves possession of the private key. */
    if ((rc = read_csr(req->csr_pem, &csr, err)) ||
        (rc = csr_key(csr, &pub, err)))
        goto done;

    struct cert_plan plan = {
        .cn = req->node_id,
        .ou = req->role,
        .o = req->cluster_id,
        .not_before_ms = req->now_ms - HOUR_MS,
        .not_after_ms =
            req->now_ms +
            (req->validity_ms ? req->validity_ms : SK_PKI_DEFAULT_VALIDITY_MS),
        .ip_sans = req->ip_sans,
    };
    if ((rc = make_cert(&plan, pub, ca, ca_key, &cert, err)) == SK_OK)
        rc = write_cert(cert, out_cert_pem, err);
done:
    X509_free(cert);
    X509_REQ_free(csr);
    EVP_PKEY_free(ca_key);
    X509_free(ca);
    ERR_clear_error();
    return rc;
}

/* Copies the one entry for nid of a name into buf; "" if there is none.
 * Several entries would make a name ambiguous (which OU is the role?), so
 * they are refused, as are values that do not fit or hide a NUL. */
static enum sk_rc name_field(const X509_NAME *name, int nid, const char *what,
                             char *buf, size_t size, struct sk_err *err)
{
    int i = X509_NAME_get_index_by_NID(name, nid, -1);
    if (i < 0) {
        buf[0] = '\0';
        return SK_OK;
    }
    if (X509_NAME_get_index_by_NID(name, nid, i) >= 0)
        return sk_err_set(err, SK_EINVAL, "certificate has more than one %s",
                          what);
    const ASN1_STRING *v =
        X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, v);
    if (len < 0)
        return ossl_fail(err, SK_EINVAL, "certificate %s is not text", what);
    enum sk_rc rc = SK_OK;
    if ((size_t)len >= size)
        rc = sk_err_set(err, SK_EINVAL,
                        "certificate %s is longer than %zu bytes", what,
                        size - 1);
    else if (memchr(utf8, '\0', (size_t)len))
        rc = sk_err_set(err, SK_EINVAL, "certificate %s contains a NUL", what);
    else
        memcpy(buf, utf8, (size_t)len + 1);
    OPENSSL_free(utf8);
    return rc;
}

static enum sk_rc time_ms(const ASN1_TIME *t, const char *what, int64_t *out,
                          struct sk_err *err)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return ossl_fail(err, SK_EINVAL, "certificate %s is malformed", what);
    *out = (int64_t)timegm(&tm) * 1000;
    return SK_OK;
}

static enum sk_rc serial_hex(X509 *x, char *buf, size_t size,
                             struct sk_err *err)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    if (!bn)
        return ossl_fail(err, SK_EINVAL, "certificate serial is malformed");
    char *hex = BN_bn2hex(bn);
    BN_free(bn);
    if (!hex)
        sk_oom(0);
    enum sk_rc rc = SK_OK;
    size_t len = strlen(hex);
    if (len >= size) {
        rc = sk_err_set(err, SK_EINVAL,
                        "certificate serial is longer than %zu hex digits",
                        size - 1);
    } else {
        for (size_t i = 0; i <= len; i++)
            buf[i] =
                (char)((hex[i] >= 'A' && hex[i] <= 'F') ? hex[i] + 32 : hex[i]);
    }
    OPENSSL_free(hex);
    return rc;
}

enum sk_rc sk_pki_cert_info(const char *cert_pem, struct sk_cert_info *out,
                            struct sk_err *err)
{
    ERR_clear_error();
    X509 *x = NULL;
    enum sk_rc rc = read_cert(cert_pem, "certificate", &x, err);
    if (rc != SK_OK)
        return rc;
    struct sk_cert_info info;
    const X509_NAME *subject = X509_get_subject_name(x);
    if ((rc = name_field(subject, NID_commonName, "CN", info.cn, sizeof info.cn,
                         err)) == SK_OK &&
        (rc = name_field(subject, NID_organizationalUnitName, "OU", info.ou,
                         sizeof info.ou, err)) == SK_OK &&
        (rc = name_field(subject, NID_organizationName, "O", info.o,
                         sizeof info.o, err)) == SK_OK &&
        (rc = time_ms(X509_get0_notBefore(x), "start of validity",
                      &info.not_before_ms, err)) == SK_OK &&
        (rc = time_ms(X509_get0_notAfter(x), "end of validity",
                      &info.not_after_ms, err)) == SK_OK &&
        (rc = serial_hex(x, info.serial, sizeof info.serial, err)) == SK_OK)
        *out = info;
    X509_free(x);
    ERR_clear_error();
    return rc;
}

static enum sk_rc verify_error(X509_STORE_CTX *ctx, struct sk_err *err)
{
    int e = X509_STORE_CTX_get_error(ctx);
    bool leaf = X509_STORE_CTX_get_error_depth(ctx) == 0;
    switch (e) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return sk_err_set(err, SK_EAUTH, "%s",
                          leaf ? "certificate expired"
                               : "cluster CA certificate expired");
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return sk_err_set(err, SK_EAUTH, "%s",
                          leaf ? "certificate not yet valid"
                               : "cluster CA certificate not yet valid");
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_SUBJECT_ISSUER_MISMATCH:
    case X509_V_ERR_AKID_SKID_MISMATCH:
    case X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH:
    case X509_V_ERR_CERT_UNTRUSTED:
        return sk_err_set(err, SK_EAUTH,
                          "certificate not signed by the cluster CA");
    default:
        return sk_err_set(err, SK_EAUTH, "certificate does not verify (%s)",
                          X509_verify_cert_error_string(e));
    }
}

/* The checks after the chain: a node certificate, in the wanted role. */
static enum sk_rc check_leaf(X509 *cert, const char *want_role,
                             struct sk_err *err)
{
    /* The CA verifies against itself, but it is nobody's node
     * certificate. */
    if (X509_check_ca(cert) != 0)
        return sk_err_set(err, SK_EAUTH,
                          "certificate is the CA's, not a node's");
    if (!want_role)
        return SK_OK;
    char ou[sizeof((struct sk_cert_info *)0)->ou];
    if (name_field(X509_get_subject_name(cert), NID_organizationalUnitName,
                   "OU", ou, sizeof ou, err) != SK_OK) {
        if (err)
            err->code = SK_EAUTH;
        return SK_EAUTH;
    }
    if (strcmp(ou, want_role) != 0)
        return sk_err_set(err, SK_EAUTH, "role %s is not %s",
                          ou[0] ? ou : "(none)", want_role);
    return SK_OK;
}

enum sk_rc sk_pki_verify(const char *ca_pem, const char *cert_pem,
                         int64_t now_ms, const char *want_role,
                         struct sk_err *err)
{
    ERR_clear_error();
    X509 *ca = NULL, *cert = NULL;
    X509_STORE *store = NULL;
    X509_STORE_CTX *ctx = NULL;
    enum sk_rc rc;
    if ((rc = read_cert(ca_pem, "CA certificate", &ca, err)) ||
        (rc = read_cert(cert_pem, "certificate", &cert, err)))
        goto done;
    store = must(X509_STORE_new());
    ctx = must(X509_STORE_CTX_new());
    if (X509_STORE_add_cert(store, ca) != 1 ||
        X509_STORE_CTX_init(ctx, store, cert, NULL) != 1) {
        rc = ossl_fail(err, SK_EINTERNAL, "certificate: cannot set up check");
        goto done;
    }
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx),
                               (time_t)(now_ms / 1000));
    if (X509_verify_cert(ctx) != 1)
        rc = verify_error(ctx, err);
    else
        rc = check_leaf(cert, want_role, err);
done:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(cert);
    X509_free(ca);
    ERR_clear_error();
    return rc;
}

bool sk_pki_key_matches(const char *cert_pem, const char *key_pem)
{
    ERR_clear_error();
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    bool match = read_cert(cert_pem, "certificate", &x, NULL) == SK_OK &&
                 read_key(key_pem, "key", &k, NULL) == SK_OK &&
                 EVP_PKEY_eq(X509_get0_pubkey(x), k) == 1;
    EVP_PKEY_free(k);
    X509_free(x);
    ERR_clear_error();
    return match;
}

enum sk_rc sk_pki_cert_digest(const char *cert_pem,
                              unsigned char out[SK_DIGEST_SIZE],
                              struct sk_err *err)
{
    ERR_clear_error();
    X509 *x = NULL;
    enum sk_rc rc = read_cert(cert_pem, "certificate", &x, err);
    if (rc != SK_OK)
        return rc;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(x, EVP_sha256(), md, &len) != 1 || len != SK_DIGEST_SIZE)
        rc = ossl_fail(err, SK_EINTERNAL, "certificate: cannot hash");
    else
        memcpy(out, md, SK_DIGEST_SIZE);
    X509_free(x);
    return rc;
}

/* ---- Join tokens ---- */

void sk_token_new(const unsigned char ca_digest[SK_DIGEST_SIZE],
                  struct sk_token *out)
{
    memcpy(out->ca_digest, ca_digest, SK_DIGEST_SIZE);
    random_bytes(out->secret, SK_TOKEN_SECRET_SIZE);
}

void sk_token_format(const struct sk_token *t, char out[SK_TOKEN_MAX_LEN])
{
    char *p = out;
    memcpy(p, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
    p += TOKEN_PREFIX_LEN;
    sk_base32_encode(t->ca_digest, SK_DIGEST_SIZE, p);
    p += DIGEST_CHARS;
    *p++ = '-';
    sk_base32_encode(t->secret, SK_TOKEN_SECRET_SIZE, p);
}

static bool is_base32(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '2' && c <= '7');
}

/* Decodes one part of a token. Messages give positions, never characters:
 * the secret must not show up in a log, not even in part. */
static enum sk_rc token_part(const char *token, const char *part, size_t len,
                             size_t want_chars, unsigned char *out,
                             size_t want_bytes, const char *what, bool last,
                             struct sk_err *err)
{
    size_t i = 0;
    while (i < len && is_base32(part[i]))
        i++;
    if (i < len) {
        if (last && i == want_chars)
            return sk_err_set(err, SK_EINVAL,
                              "join token has trailing characters after the "
                              "secret (from character %zu)",
                              (size_t)(part - token) + i + 1);
        return sk_err_set(err, SK_EINVAL,
                          "join token has a malformed %s: character %zu is "
                          "not base32",
                          what, (size_t)(part - token) + i + 1);
    }
    if (len != want_chars)
        return sk_err_set(err, SK_EINVAL,
                          "join token has a malformed %s: %zu characters, "
                          "want %zu",
                          what, len, want_chars);
    unsigned char buf[SK_DIGEST_SIZE];
    size_t n = 0;
    if (!sk_base32_decode(part, len, buf, &n) || n != want_bytes)
        return sk_err_set(err, SK_EINVAL,
                          "join token has a malformed %s: not a canonical "
                          "base32 encoding",
                          what);
    memcpy(out, buf, want_bytes);
    OPENSSL_cleanse(buf, sizeof buf);
    return SK_OK;
}

enum sk_rc sk_token_parse(const char *s, struct sk_token *out,
                          struct sk_err *err)
{
    if (!s || !*s)
        return sk_err_set(err, SK_EINVAL, "join token is empty");
    size_t len = strnlen(s, SK_TOKEN_MAX_LEN);
    if (len >= SK_TOKEN_MAX_LEN)
        return sk_err_set(err, SK_EINVAL,
                          "join token is longer than %d characters",
                          SK_TOKEN_MAX_LEN - 1);
    if (strncmp(s, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0)
        return sk_err_set(err, SK_EINVAL, "join token must start with SKF1-");
    const char *digest = s + TOKEN_PREFIX_LEN;
    int parts = 2;
    for (const char *c = digest; *c; c++)
        parts += *c == '-';
    if (parts != 3)
        return sk_err_set(err, SK_EINVAL,
                          "join token must have 3 parts, "
                          "SKF1-<CA digest>-<secret> (found %d)",
                          parts);
    const char *secret = strchr(digest, '-') + 1;
    struct sk_token t;
    enum sk_rc rc;
    if ((rc = token_part(s, digest, (size_t)(secret - 1 - digest), DIGEST_CHARS,
                         t.ca_digest, SK_DIGEST_SIZE, "CA digest", false,
                         err)) == SK_OK &&
        (rc = token_part(s, secret, strlen(secret), SECRET_CHARS, t.secret,
                         SK_TOKEN_SECRET_SIZE, "secret", true, err)) == SK_OK)
        *out = t;
    OPENSSL_cleanse(&t, sizeof t);
    return rc;
}

void sk_token_secret_hash(const struct sk_token *t, char out_hex[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SK_DIGEST_SIZE];
    sha256(t->secret, SK_TOKEN_SECRET_SIZE, md);
    for (size_t i = 0; i < SK_DIGEST_SIZE; i++) {
        out_hex[2 * i] = hex[md[i] >> 4];
        out_hex[2 * i + 1] = hex[md[i] & 15];
    }
    out_hex[64] = '\0';
}

void sk_sha256(const void *data, size_t len, unsigned char out[SK_DIGEST_SIZE])
{
    sha256(data, len, out);
}

void sk_hmac_sha256(const unsigned char *key, size_t key_len, const void *data,
                    size_t len, unsigned char out[SK_DIGEST_SIZE])
{
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n) ||
        n != SK_DIGEST_SIZE)
        crypto_abort("HMAC-SHA256");
}

bool sk_mem_equal_ct(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

bool sk_token_secret_matches(const struct sk_token *t,
                             const char *stored_hash_hex)
{
    /* Decoding the stored hash is not constant time, which is fine: it is
     * ours, not the guess. The comparison with the guess is. */
    if (!stored_hash_hex || strnlen(stored_hash_hex, 65) != 64)
        return false;
    unsigned char stored[SK_DIGEST_SIZE], md[SK_DIGEST_SIZE];
    for (size_t i = 0; i < SK_DIGEST_SIZE; i++) {
        int hi = sk_hex_digit(stored_hash_hex[2 * i]);
        int lo = sk_hex_digit(stored_hash_hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        stored[i] = (unsigned char)(hi << 4 | lo);
    }
    sha256(t->secret, SK_TOKEN_SECRET_SIZE, md);
    return CRYPTO_memcmp(stored, md, SK_DIGEST_SIZE) == 0;
}

/* ---- Sealing ---- */

void sk_data_key_new(unsigned char out[SK_DATA_KEY_SIZE])
{
    random_bytes(out, SK_DATA_KEY_SIZE);
}

static bool cipher_update(EVP_CIPHER_CTX *c, unsigned char *out,
                          const unsigned char *in, size_t len)
{
    while (len > 0) {
        int n = len > CHUNK ? CHUNK : (int)len, done = 0;
        if (EVP_CipherUpdate(c, out, &done, in, n) != 1 || done != n)
            return false;
        out += n;
        in += n;
        len -= (size_t)n;
    }
    return true;
}

char *sk_seal(const unsigned char key[SK_DATA_KEY_SIZE], const void *plain,
              size_t len)
{
    if (len > SIZE_MAX / 2)
        sk_oom(len);
    size_t total = NONCE_SIZE + len + TAG_SIZE;
    unsigned char *buf = sk_malloc(total);
    unsigned char *nonce = buf, *body = buf + NONCE_SIZE, *tag = body + len;
    random_bytes(nonce, NONCE_SIZE);
    EVP_CIPHER_CTX *c = must(EVP_CIPHER_CTX_new());
    int n = 0;
    /* Any failure here is a broken library, not bad input: there is no
     * error to return. */
    if (EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) != 1 ||
        !cipher_update(c, body, plain, len) ||
        EVP_EncryptFinal_ex(c, tag, &n) != 1 || n != 0 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, TAG_SIZE, tag) != 1)
        crypto_abort("AES-256-GCM sealing");
    EVP_CIPHER_CTX_free(c);
    char *text = sk_base64_encode(buf, total);
    free(buf);
    return text;
}

enum sk_rc sk_unseal(const unsigned char key[SK_DATA_KEY_SIZE],
                     const char *sealed, unsigned char **out_plain,
                     size_t *out_len, struct sk_err *err)
{
    unsigned char *raw;
    size_t n;
    if (!sealed || !sk_base64_decode(sealed, &raw, &n))
        return sk_err_set(err, SK_EINVAL, "sealed value is not base64");
    if (n < NONCE_SIZE + TAG_SIZE) {
        free(raw);
        return sk_err_set(err, SK_EINVAL,
                          "sealed value is too short (%zu bytes, at least %d)",
                          n, NONCE_SIZE + TAG_SIZE);
    }
    ERR_clear_error();
    size_t len = n - NONCE_SIZE - TAG_SIZE;
    unsigned char *nonce = raw, *body = raw + NONCE_SIZE, *tag = body + len;
    unsigned char *plain = sk_malloc(len + 1);
    EVP_CIPHER_CTX *c = must(EVP_CIPHER_CTX_new());
    enum sk_rc rc = SK_OK;
    int fin = 0;
    if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, TAG_SIZE, tag) != 1 ||
        !cipher_update(c, plain, body, len)) {
        rc = ossl_fail(err, SK_EINTERNAL, "unsealing: AES-256-GCM failed");
    } else if (EVP_DecryptFinal_ex(c, plain + len, &fin) != 1) {
        ERR_clear_error();
        rc = sk_err_set(err, SK_EAUTH,
                        "sealed value does not open with this key (wrong key "
                        "or tampered)");
    }
    EVP_CIPHER_CTX_free(c);
    free(raw);
    if (rc != SK_OK) {
        OPENSSL_cleanse(plain, len);
        free(plain);
        return rc;
    }
    plain[len] = '\0';
    *out_plain = plain;
    *out_len = len;
    return SK_OK;
}

/* ---- base64 ---- */

char *sk_base64_encode(const void *data, size_t len)
{
    size_t groups = len / 3 + (len % 3 != 0);
    if (groups > (SIZE_MAX - 1) / 4)
        sk_oom(len);
    unsigned char *out = sk_malloc(groups * 4 + 1);
    const unsigned char *in = data;
    size_t o = 0;
    out[0] = '\0';
    while (len > 0) {
        size_t n = len > CHUNK ? CHUNK : len;
        o += (size_t)EVP_EncodeBlock(out + o, in, (int)n);
        in += n;
        len -= n;
    }
    out[o] = '\0';
    return (char *)out;
}

static int base64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

bool sk_base64_decode(const char *text, unsigned char **out, size_t *out_len)
{
    if (!text)
        return false;
    /* EVP_DecodeBlock skips white space and counts padding as data, so the
     * text is checked here first: groups of four, the alphabet, padding
     * only at the end, and zero unused bits (one spelling per value). */
    size_t n = strlen(text);
    if (n % 4 != 0)
        return false;
    size_t pad = 0;
    if (n > 0 && text[n - 1] == '=')
        pad = text[n - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < n - pad; i++)
        if (base64_value(text[i]) < 0)
            return false;
    if ((pad == 1 && (base64_value(text[n - 2]) & 3)) ||
        (pad == 2 && (base64_value(text[n - 3]) & 15)))
        return false;

    unsigned char *buf = sk_malloc(n / 4 * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t chunk = n - i > CHUNK ? CHUNK : n - i;
        int got = EVP_DecodeBlock(buf + o, (const unsigned char *)text + i,
                                  (int)chunk);
        if (got < 0) {
            free(buf);
            ERR_clear_error();
            return false;
        }
        o += (size_t)got;
        i += chunk;
    }
    o -= pad;
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    return true;
}
