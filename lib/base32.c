#include "skiff/base32.h"

#include <ctype.h>

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

size_t sk_base32_encoded_len(size_t n)
{
    return (n * 8 + 4) / 5;
}

void sk_base32_encode(const unsigned char *in, size_t n, char *out)
{
    unsigned buffer = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        buffer = (buffer << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = alphabet[(buffer >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[o++] = alphabet[(buffer << (5 - bits)) & 31];
    out[o] = '\0';
}

static int value_of(char c)
{
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= '2' && c <= '7')
        return c - '2' + 26;
    return -1;
}

bool sk_base32_decode(const char *in, size_t len, unsigned char *out,
                      size_t *out_n)
{
    unsigned buffer = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = value_of(in[i]);
        if (v < 0)
            return false;
        buffer = (buffer << 5) | (unsigned)v;
        bits += 5;
        if (bits >= 8) {
            out[o++] = (unsigned char)(buffer >> (bits - 8));
            bits -= 8;
        }
    }
    /* Canonical encodings only: leftover bits must be zero and fewer than
     * five, so each byte string has exactly one spelling. */
    if (bits >= 5 || (buffer & ((1u << bits) - 1)) != 0)
        return false;
    *out_n = o;
    return true;
}
