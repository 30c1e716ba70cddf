/* Helpers shared by the unit tests: running a loop until a condition holds
 * (with a deadline, never a bare sleep), closing a loop and proving nothing
 * leaked, and throwaway cluster CAs and certificates. */
#ifndef SKIFF_TEST_SUPPORT_H
#define SKIFF_TEST_SUPPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* Runs the loop until cond(ctx) is true or timeout_ms passes. Returns
 * whether cond became true. */
bool sk_test_run_until(uv_loop_t *loop, bool (*cond)(void *ctx), void *ctx,
                       unsigned timeout_ms);
/* Runs the loop for about ms milliseconds (to prove something does NOT
 * happen within a bound). */
void sk_test_run_for(uv_loop_t *loop, unsigned ms);
/* Runs the loop until it has no more work (at most 5 s), then asserts that
 * uv_loop_close() succeeds: a handle left open fails the test. */
void sk_test_loop_close(uv_loop_t *loop);

/* A throwaway cluster CA. */
struct sk_test_ca {
    char cluster_id[32];
    char *cert_pem;
    char *key_pem;
};

void sk_test_ca_new(struct sk_test_ca *ca, const char *cluster_id);
void sk_test_ca_free(struct sk_test_ca *ca);
/* A certificate signed by ca for node_id/role, valid from now - 1 h for
 * validity_ms (negative: already expired by that much). */
void sk_test_cert_new(const struct sk_test_ca *ca, const char *node_id,
                      const char *role, int64_t validity_ms, char **out_cert,
                      char **out_key);

int64_t sk_test_now_ms(void);

#endif
