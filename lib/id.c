#include "skiff/id.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "skiff/base32.h"

void sk_random_bytes(void *buf, unsigned long n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "skiff: getrandom: %s\n", strerror(errno));
            abort();
        }
        p += got;
        n -= (unsigned long)got;
    }
}

void sk_id_new(char out[SK_ID_SIZE])
{
    unsigned char raw[16];
    sk_random_bytes(raw, sizeof raw);
    sk_base32_encode(raw, sizeof raw, out);
}

bool sk_id_valid(const char *s)
{
    if (!s || strlen(s) != SK_ID_LEN)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '2' && *c <= '7')))
            return false;
    unsigned char raw[17];
    size_t n;
    return sk_base32_decode(s, SK_ID_LEN, raw, &n) && n == 16;
}

uint64_t sk_raft_id_of(const char *node_id)
{
    unsigned char raw[17];
    size_t n = 0;
    uint64_t id = 0;
    if (node_id && sk_base32_decode(node_id, strlen(node_id), raw, &n) &&
        n >= 8) {
        for (int i = 7; i >= 0; i--)
            id = (id << 8) | raw[i];
    }
    /* 63 bits: the ID travels as a JSON integer, which is signed. */
    id &= INT64_MAX;
    return id ? id : 1;
}
