#include "skiff/parse.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DURATION_MS (10LL * 365 * 24 * 3600 * 1000)
#define MAX_BYTES (1LL << 50)
#define MAX_NANO_CPUS (4096LL * 1000000000LL)

/* Reads a non-negative decimal number with an optional fraction. Returns the
 * number of characters used, or 0 if there is no number at s. */
static size_t read_decimal(const char *s, double *out)
{
    size_t i = 0, digits = 0;
    while (s[i] >= '0' && s[i] <= '9') {
        i++;
        digits++;
    }
    if (s[i] == '.') {
        i++;
        while (s[i] >= '0' && s[i] <= '9') {
            i++;
            digits++;
        }
    }
    if (digits == 0 || i > 32)
        return 0;
    char tmp[40];
    memcpy(tmp, s, i);
    tmp[i] = '\0';
    *out = strtod(tmp, NULL);
    return i;
}

bool sk_parse_duration_ms(const char *s, int64_t *out_ms, struct sk_err *err)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};

    if (!s || !*s)
        goto bad;
    if (strcmp(s, "0") == 0) {
        *out_ms = 0;
        return true;
    }
    double total = 0;
    const char *p = s;
    while (*p) {
        double v;
        size_t n = read_decimal(p, &v);
        if (n == 0)
            goto bad;
        p += n;
        int u = -1;
        /* "ms" before "m": longest unit first. */
        for (int k = 0; k < 4; k++) {
            size_t ul = strlen(units[k].unit);
            if (strncmp(p, units[k].unit, ul) == 0 && (k != 2 || p[1] != 's')) {
                u = k;
                p += ul;
                break;
            }
        }
        if (u < 0)
            goto bad;
        total += v * units[u].ms;
        if (total > (double)MAX_DURATION_MS)
            goto bad;
    }
    *out_ms = (int64_t)llround(total);
    return true;
bad:
    sk_err_set(err, SK_EINVAL,
               "invalid duration \"%s\": want a number with a unit, e.g. "
               "300ms, 5s, 1m30s, 2h (at most 10 years)",
               s ? s : "");
    return false;
}

bool sk_parse_bytes(const char *s, int64_t *out_bytes, struct sk_err *err)
{
    double v;
    size_t n = s ? read_decimal(s, &v) : 0;
    if (n == 0)
        goto bad;
    const char *u = s + n;
    double mult;
    switch (*u) {
    case '\0':
        mult = 1;
        break;
    case 'b':
    case 'B':
        mult = 1;
        u++;
        goto done_unit;
    case 'k':
    case 'K':
        mult = 1024.0;
        break;
    case 'm':
    case 'M':
        mult = 1024.0 * 1024;
        break;
    case 'g':
    case 'G':
        mult = 1024.0 * 1024 * 1024;
        break;
    case 't':
    case 'T':
        mult = 1024.0 * 1024 * 1024 * 1024;
        break;
    default:
        goto bad;
    }
    if (*u) {
        u++;
        /* Accept k, kb, kib (any case). */
        if (*u == 'i' || *u == 'I')
            u++;
        if (*u == 'b' || *u == 'B')
            u++;
    }
done_unit:
    if (*u)
        goto bad;
    double bytes = v * mult;
    if (bytes > (double)MAX_BYTES || bytes != floor(bytes))
        goto bad;
    *out_bytes = (int64_t)bytes;
    return true;
bad:
    sk_err_set(err, SK_EINVAL,
               "invalid size \"%s\": want bytes with an optional unit, e.g. "
               "512M, 1.5G, 64k (at most 1P)",
               s ? s : "");
    return false;
}

bool sk_parse_nano_cpus(const char *s, int64_t *out_nano, struct sk_err *err)
{
    double v;
    size_t n = s ? read_decimal(s, &v) : 0;
    if (n == 0 || s[n] != '\0' || v * 1e9 > (double)MAX_NANO_CPUS)
        goto bad;
    *out_nano = (int64_t)llround(v * 1e9);
    return true;
bad:
    sk_err_set(err, SK_EINVAL,
               "invalid CPU count \"%s\": want a number such as 0.5 or 2 (at "
               "most 4096)",
               s ? s : "");
    return false;
}

bool sk_parse_int(const char *s, int64_t min, int64_t max, int64_t *out,
                  struct sk_err *err)
{
    if (!s || !*s)
        goto bad;
    const char *p = s;
    if (*p == '-')
        p++;
    if (!*p)
        goto bad;
    for (const char *c = p; *c; c++)
        if (*c < '0' || *c > '9')
            goto bad;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno || v < min || v > max)
        goto bad;
    *out = v;
    return true;
bad:
    sk_err_set(err, SK_EINVAL,
               "invalid number \"%s\": want an integer from %lld to %lld",
               s ? s : "", (long long)min, (long long)max);
    return false;
}

void sk_format_duration_ms(int64_t ms, char *buf, unsigned long size)
{
    if (ms < 1000)
        snprintf(buf, size, "%lldms", (long long)ms);
    else if (ms < 60000)
        snprintf(buf, size,
                 "%g"
                 "s",
                 (double)ms / 1000.0);
    else if (ms < 3600000)
        snprintf(buf, size, "%lldm%llds", (long long)(ms / 60000),
                 (long long)((ms % 60000) / 1000));
    else
        snprintf(buf, size, "%lldh%lldm", (long long)(ms / 3600000),
                 (long long)((ms % 3600000) / 60000));
}

void sk_format_age(int64_t ms, char *buf, unsigned long size)
{
    int64_t s = ms / 1000, n;
    const char *unit;
    if (s < 120) {
        n = s;
        unit = "second";
    } else if (s < 7200) {
        n = s / 60;
        unit = "minute";
    } else if (s < 172800) {
        n = s / 3600;
        unit = "hour";
    } else {
        n = s / 86400;
        unit = "day";
    }
    snprintf(buf, size, "%lld %s%s", (long long)n, unit, n == 1 ? "" : "s");
}

int sk_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
