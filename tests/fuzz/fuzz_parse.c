/* Fuzz target: the parsers of user-typed values (durations, sizes, CPUs,
 * integers). Each must accept or reject any byte string without crashing,
 * and what it accepts must be in range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256)
        return 0;
    char s[257];
    memcpy(s, data, size);
    s[size] = '\0';

    struct sk_err err;
    int64_t v;
    if (sk_parse_duration_ms(s, &v, &err)) {
        if (v < 0 || v > 10LL * 365 * 24 * 3600 * 1000)
            abort();
        char back[64];
        sk_format_duration_ms(v, back, sizeof back);
    }
    if (sk_parse_bytes(s, &v, &err) && (v < 0 || v > (1LL << 50)))
        abort();
    if (sk_parse_nano_cpus(s, &v, &err) && (v < 0 || v > 4096000000000LL))
        abort();
    if (sk_parse_int(s, -100, 100, &v, &err) && (v < -100 || v > 100))
        abort();
    return 0;
}
