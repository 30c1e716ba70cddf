/* Object IDs: 128 random bits from the OS CSPRNG, base32 (26 characters). */
#ifndef SKIFF_ID_H
#define SKIFF_ID_H

#include <stdbool.h>
#include <stdint.h>

#define SK_ID_LEN 26
#define SK_ID_SIZE (SK_ID_LEN + 1)

/* Fills out with a new ID and its terminator. Aborts only if the OS has no
 * randomness to give, which no caller could recover from. */
void sk_id_new(char out[SK_ID_SIZE]);
/* True for a string that has the shape of an ID. */
bool sk_id_valid(const char *s);
/* The Raft ID of a manager node: the first 63 bits of its ID, never 0. */
uint64_t sk_raft_id_of(const char *node_id);
/* Fills buf with n random bytes from the OS CSPRNG (aborts as above). */
void sk_random_bytes(void *buf, unsigned long n);

#endif
