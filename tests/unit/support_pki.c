#include "support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "skiff/pki.h"

int64_t sk_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sk_test_ca_new(struct sk_test_ca *ca, const char *cluster_id)
{
    struct sk_err err;
    snprintf(ca->cluster_id, sizeof ca->cluster_id, "%s", cluster_id);
    if (sk_pki_ca_new(cluster_id, &ca->cert_pem, &ca->key_pem, &err) != SK_OK)
        fail_msg("test CA: %s", err.msg);
}

void sk_test_ca_free(struct sk_test_ca *ca)
{
    free(ca->cert_pem);
    free(ca->key_pem);
    ca->cert_pem = ca->key_pem = NULL;
}

void sk_test_cert_new(const struct sk_test_ca *ca, const char *node_id,
                      const char *role, int64_t validity_ms, char **out_cert,
                      char **out_key)
{
    struct sk_err err;
    char *key = NULL, *csr = NULL;
    if (sk_pki_key_new(&key, &err) != SK_OK ||
        sk_pki_csr_new(key, node_id, &csr, &err) != SK_OK)
        fail_msg("test key/csr: %s", err.msg);
    static const char *const sans[] = {"127.0.0.1", NULL};
    int64_t now = sk_test_now_ms();
    struct sk_pki_sign_req req = {
        .ca_cert_pem = ca->cert_pem,
        .ca_key_pem = ca->key_pem,
        .csr_pem = csr,
        .node_id = node_id,
        .role = role,
        .cluster_id = ca->cluster_id,
        .ip_sans = sans,
        /* An expired certificate: issued long enough ago that it ran out
         * -validity_ms before now. */
        .now_ms = validity_ms > 0 ? now : now + validity_ms - 1800 * 1000,
        .validity_ms = validity_ms > 0 ? validity_ms : 1800 * 1000,
    };
    if (sk_pki_sign(&req, out_cert, &err) != SK_OK)
        fail_msg("test cert: %s", err.msg);
    free(csr);
    *out_key = key;
}
