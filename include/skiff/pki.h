/* The cluster PKI, join tokens, and sealing with the cluster data key.
 *
 * Certificates. `--init` makes the cluster root CA: an ECDSA P-256 key and a
 * self-signed certificate (CN "skiff-ca", O = cluster ID, 20 years). Every
 * node holds a certificate signed by it with CN = node ID, OU = role
 * ("manager", "worker" or "admin" for the CLI's client certificate), O =
 * cluster ID, the node's addresses as IP SANs, backdated one hour against
 * clock skew, valid `validity_ms` (default 90 days). The signer decides CN,
 * OU, O and SANs; whatever the CSR asks for is ignored -- only its public
 * key is used, after its self-signature is checked.
 *
 * Join tokens: `SKF1-<digest>-<secret>`, digest = base32 SHA-256 of the CA
 * certificate's DER (52 characters), secret = base32 of 16 random bytes
 * (26 characters). The joiner pins the CA by digest; the manager keeps only
 * SHA-256(secret) to compare against, in constant time.
 *
 * Sealing: AES-256-GCM with a 32-byte key and a random 12-byte nonce; the
 * sealed form is base64(nonce || ciphertext || tag). Used for values that
 * must not sit in the Raft log in clear (the CA key, the join tokens,
 * secrets).
 *
 * All functions are pure computations (no I/O); PEM strings returned are
 * heap-allocated with sk_malloc and freed by the caller. On failure they
 * return an error code, fill err, and leave out parameters untouched. */
#ifndef SKIFF_PKI_H
#define SKIFF_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skiff/err.h"

#define SK_PKI_DEFAULT_VALIDITY_MS (90LL * 24 * 3600 * 1000)
#define SK_PKI_CA_VALIDITY_MS (20LL * 365 * 24 * 3600 * 1000)
#define SK_DIGEST_SIZE 32
#define SK_DATA_KEY_SIZE 32

/* Makes a new ECDSA P-256 key, PEM (PKCS#8). */
enum sk_rc sk_pki_key_new(char **out_key_pem, struct sk_err *err);

/* Makes the cluster root CA: key and self-signed certificate. */
enum sk_rc sk_pki_ca_new(const char *cluster_id, char **out_cert_pem,
                         char **out_key_pem, struct sk_err *err);

/* A certificate signing request for key_pem (subject CN = cn, informative
 * only). */
enum sk_rc sk_pki_csr_new(const char *key_pem, const char *cn,
                          char **out_csr_pem, struct sk_err *err);

struct sk_pki_sign_req {
    const char *ca_cert_pem;
    const char *ca_key_pem;
    const char *csr_pem;
    const char *node_id;        /* CN */
    const char *role;           /* OU: manager, worker, admin */
    const char *cluster_id;     /* O */
    const char *const *ip_sans; /* NULL-terminated IPv4 strings, may be NULL */
    int64_t now_ms;             /* issue time (not_before = now - 1 h) */
    int64_t validity_ms;        /* 0: SK_PKI_DEFAULT_VALIDITY_MS */
};

/* Checks the CSR's signature and signs a certificate as described above. */
enum sk_rc sk_pki_sign(const struct sk_pki_sign_req *req, char **out_cert_pem,
                       struct sk_err *err);

struct sk_cert_info {
    char cn[64];
    char ou[16];
    char o[64];
    int64_t not_before_ms;
    int64_t not_after_ms;
    char serial[48]; /* hex */
};

/* Reads the subject and validity of a certificate (PEM, first one). */
enum sk_rc sk_pki_cert_info(const char *cert_pem, struct sk_cert_info *out,
                            struct sk_err *err);

/* Verifies cert_pem against ca_pem (the only trust anchor) at time now_ms,
 * and, if want_role is not NULL, that its OU is want_role. Errors (code
 * SK_EAUTH) say which check failed: "certificate not signed by the cluster
 * CA", "certificate expired", "certificate not yet valid", "role worker is
 * not manager". */
enum sk_rc sk_pki_verify(const char *ca_pem, const char *cert_pem,
                         int64_t now_ms, const char *want_role,
                         struct sk_err *err);

/* True if key_pem is the private key of cert_pem. */
bool sk_pki_key_matches(const char *cert_pem, const char *key_pem);

/* SHA-256 of the certificate's DER encoding. */
enum sk_rc sk_pki_cert_digest(const char *cert_pem,
                              unsigned char out[SK_DIGEST_SIZE],
                              struct sk_err *err);

/* ---- Join tokens ---- */

#define SK_TOKEN_SECRET_SIZE 16
#define SK_TOKEN_MAX_LEN 128

struct sk_token {
    unsigned char ca_digest[SK_DIGEST_SIZE];
    unsigned char secret[SK_TOKEN_SECRET_SIZE];
};

/* A new token for the CA with the given digest (random secret). */
void sk_token_new(const unsigned char ca_digest[SK_DIGEST_SIZE],
                  struct sk_token *out);
/* Writes "SKF1-...-..." (at most SK_TOKEN_MAX_LEN bytes with NUL). */
void sk_token_format(const struct sk_token *t, char out[SK_TOKEN_MAX_LEN]);
/* Parses a token; errors (SK_EINVAL) say what is wrong: "join token must
 * start with SKF1-", "join token has a malformed CA digest", ... */
enum sk_rc sk_token_parse(const char *s, struct sk_token *out,
                          struct sk_err *err);
/* SHA-256 of the secret, hex (64 characters + NUL): what the cluster keeps. */
void sk_token_secret_hash(const struct sk_token *t, char out_hex[65]);
/* Constant-time comparison of the token's secret with a stored hash. */
bool sk_token_secret_matches(const struct sk_token *t,
                             const char *stored_hash_hex);

/* ---- Digests and message authentication ---- */

/* SHA-256 of len bytes. */
void sk_sha256(const void *data, size_t len, unsigned char out[SK_DIGEST_SIZE]);
/* HMAC-SHA256 of len bytes under key. */
void sk_hmac_sha256(const unsigned char *key, size_t key_len, const void *data,
                    size_t len, unsigned char out[SK_DIGEST_SIZE]);
/* Compares n bytes in constant time. */
bool sk_mem_equal_ct(const void *a, const void *b, size_t n);

/* ---- Sealing with the data key ---- */

/* A new random data key. */
void sk_data_key_new(unsigned char out[SK_DATA_KEY_SIZE]);
/* Seals len bytes; returns the base64 text (heap). */
char *sk_seal(const unsigned char key[SK_DATA_KEY_SIZE], const void *plain,
              size_t len);
/* Opens a sealed text; on success *out_plain is heap memory of *out_len
 * bytes plus a NUL. Wrong key or tampering gives SK_EAUTH. */
enum sk_rc sk_unseal(const unsigned char key[SK_DATA_KEY_SIZE],
                     const char *sealed, unsigned char **out_plain,
                     size_t *out_len, struct sk_err *err);

/* base64 helpers (standard alphabet, padded), heap results. */
char *sk_base64_encode(const void *data, size_t len);
/* Returns false on malformed input; *out is heap (NUL-terminated). */
bool sk_base64_decode(const char *text, unsigned char **out, size_t *out_len);

#endif
