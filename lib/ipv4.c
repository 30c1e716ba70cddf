#include "skiff/ipv4.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t sk_ipv4_mask(int prefix)
{
    return prefix <= 0 ? 0 : 0xffffffffu << (32 - prefix);
}

bool sk_ipv4_parse(const char *s, uint32_t *out_addr, int *out_prefix)
{
    char buf[INET_ADDRSTRLEN];
    const char *slash = s ? strchr(s, '/') : NULL;
    size_t len = slash ? (size_t)(slash - s) : (s ? strlen(s) : 0);
    if (!s || len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    struct in_addr in;
    if (inet_pton(AF_INET, buf, &in) != 1)
        return false;
    int prefix = 32;
    if (slash) {
        const char *p = slash + 1;
        if (!*p || strlen(p) > 2)
            return false;
        prefix = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return false;
            prefix = prefix * 10 + (*p - '0');
        }
        if (prefix > 32)
            return false;
    }
    *out_addr = ntohl(in.s_addr);
    if (out_prefix)
        *out_prefix = prefix;
    return true;
}

bool sk_cidr_parse(const char *cidr, uint32_t *out_addr, int *out_prefix)
{
    uint32_t addr;
    int prefix;
    if (!cidr || !strchr(cidr, '/') || !sk_ipv4_parse(cidr, &addr, &prefix))
        return false;
    if (addr & ~sk_ipv4_mask(prefix))
        return false;
    *out_addr = addr;
    *out_prefix = prefix;
    return true;
}

void sk_ipv4_format(uint32_t addr, char *buf, size_t size)
{
    snprintf(buf, size, "%u.%u.%u.%u", addr >> 24, (addr >> 16) & 0xff,
             (addr >> 8) & 0xff, addr & 0xff);
}

void sk_ipv4_format_cidr(uint32_t addr, int prefix, char *buf, size_t size)
{
    snprintf(buf, size, "%u.%u.%u.%u/%d", addr >> 24, (addr >> 16) & 0xff,
             (addr >> 8) & 0xff, addr & 0xff, prefix);
}
