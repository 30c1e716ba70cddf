/* Fuzz target: the parsers of text that reaches us from users and peers in
 * lib/pki.c -- join tokens, sealed values and base64. Each must accept or
 * reject any byte string without crashing or leaking, and what it accepts
 * must round-trip: a token that parses formats back to the same token, and
 * the input it came from was that text up to case; base64 that decodes
 * encodes back to the very same text (one spelling per value). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "skiff/pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char key[SK_DATA_KEY_SIZE] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
    0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
    0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};

static void token(const char *s)
{
    struct sk_token t, back;
    struct sk_err err;
    if (sk_token_parse(s, &t, &err) != SK_OK)
        return;
    char text[SK_TOKEN_MAX_LEN];
    sk_token_format(&t, text);
    if (sk_token_parse(text, &back, &err) != SK_OK ||
        memcmp(&t, &back, sizeof t) != 0)
        abort();
    if (strncmp(s, "SKF1-", 5) != 0 || strcasecmp(s, text) != 0)
        abort();
    char hash[65];
    sk_token_secret_hash(&t, hash);
    if (!sk_token_secret_matches(&back, hash))
        abort();
}

static void unseal(const char *s)
{
    unsigned char *plain;
    size_t len;
    struct sk_err err;
    if (sk_unseal(key, s, &plain, &len, &err) == SK_OK)
        free(plain);
}

static void base64(const char *s)
{
    unsigned char *raw;
    size_t len;
    if (!sk_base64_decode(s, &raw, &len))
        return;
    char *again = sk_base64_encode(raw, len);
    if (strcmp(again, s) != 0)
        abort();
    free(again);
    free(raw);
}

/* Sealing arbitrary bytes always opens again. */
static void seal(const uint8_t *data, size_t size)
{
    char *sealed = sk_seal(key, data, size);
    unsigned char *plain;
    size_t len;
    struct sk_err err;
    if (sk_unseal(key, sealed, &plain, &len, &err) != SK_OK || len != size ||
        memcmp(plain, data, size) != 0 || plain[len] != '\0')
        abort();
    free(plain);
    free(sealed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256)
        size = 256;
    char s[257];
    memcpy(s, data, size);
    s[size] = '\0';

    token(s);
    unseal(s);
    base64(s);
    seal(data, size);
    return 0;
}
