/* Fuzz target: what a manager accepts in a forwarded call (skiff/ca.h) --
 * the X-Skiff-Principal text and the X-Skiff-Forward tag. Input: the
 * principal, a newline, the tag, a newline, the body. Neither parser may
 * crash or leak on any bytes; a principal that parses formats back to the
 * very same text; a tag that verifies must be the one signing makes for
 * that call (so nothing but the MAC's own output is accepted); and what
 * is signed always verifies. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "skiff/ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char data_key[SK_DATA_KEY_SIZE] = {
    0x1f, 0x1e, 0x1d, 0x1c, 0x1b, 0x1a, 0x19, 0x18, 0x17, 0x16, 0x15,
    0x14, 0x13, 0x12, 0x11, 0x10, 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a,
    0x09, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00,
};

#define NOW_MS 1800000000000LL

/* The next line of [*p, end) as a NUL-terminated copy in buf. */
static void line(const char **p, const char *end, char *buf, size_t size)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = (size_t)((nl ? nl : end) - *p);
    if (n >= size)
        n = size - 1;
    memcpy(buf, *p, n);
    buf[n] = '\0';
    *p = nl ? nl + 1 : end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        size = 4096;
    const char *p = (const char *)data, *end = p + size;
    char principal[512], tag[512];
    line(&p, end, principal, sizeof principal);
    line(&p, end, tag, sizeof tag);

    struct sk_principal who;
    struct sk_err err;
    if (sk_principal_parse(principal, &who, &err) == SK_OK) {
        char back[SK_PRINCIPAL_MAX];
        sk_principal_format(&who, back);
        if (strcmp(back, principal) != 0)
            abort();
    }

    unsigned char key[SK_FORWARD_KEY_SIZE];
    sk_ca_forward_key(data_key, key);
    struct sk_forwarded f = {.principal = principal,
                             .method = "POST",
                             .path = "/v1/node/status",
                             .query = "",
                             .body = p,
                             .body_len = (size_t)(end - p)};
    char signed_tag[SK_FORWARD_TAG_MAX];
    if (sk_ca_forward_verify(key, &f, tag, NOW_MS, &err) == SK_OK) {
        /* Only the signer's own tag (up to the case of hex digits). */
        char *sp = strchr(tag, ' ');
        if (!sp)
            abort();
        sk_ca_forward_sign(key, &f, strtoll(tag, NULL, 10), signed_tag);
        if (strncmp(signed_tag, tag, (size_t)(sp - tag)) != 0 ||
            strcasecmp(strchr(signed_tag, ' '), sp) != 0)
            abort();
    }
    sk_ca_forward_sign(key, &f, NOW_MS, signed_tag);
    if (sk_ca_forward_verify(key, &f, signed_tag, NOW_MS, &err) != SK_OK)
        abort();
    return 0;
}
