/* RFC 4648 base32, lower case, without padding: the alphabet of object IDs
 * and of the parts of a join token. */
#ifndef SKIFF_BASE32_H
#define SKIFF_BASE32_H

#include <stdbool.h>
#include <stddef.h>

/* Characters needed to encode n bytes (no terminator). */
size_t sk_base32_encoded_len(size_t n);
/* Writes sk_base32_encoded_len(n) characters and a NUL to out. */
void sk_base32_encode(const unsigned char *in, size_t n, char *out);
/* Decodes len characters (upper or lower case) into out, which must hold
 * len * 5 / 8 bytes. Fails on a character outside the alphabet or on
 * non-zero trailing bits; *out_n is written only on success. */
bool sk_base32_decode(const char *in, size_t len, unsigned char *out,
                      size_t *out_n);

#endif
