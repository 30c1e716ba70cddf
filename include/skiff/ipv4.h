/* IPv4 addresses and subnets as users and the store write them. Addresses
 * are uint32_t in host byte order. Pure. */
#ifndef SKIFF_IPV4_H
#define SKIFF_IPV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "10.0.3.7" or "10.0.3.7/24" -> the address (the length, if any, in
 * *out_prefix when not NULL; 32 without one). */
bool sk_ipv4_parse(const char *s, uint32_t *out_addr, int *out_prefix);
/* "10.0.3.0/24" -> network address and prefix length; refuses host bits
 * set beyond the prefix ("10.0.3.1/24"). */
bool sk_cidr_parse(const char *cidr, uint32_t *out_addr, int *out_prefix);
/* "a.b.c.d" into buf (16 bytes are enough). */
void sk_ipv4_format(uint32_t addr, char *buf, size_t size);
/* "a.b.c.d/len" into buf (19 bytes are enough). */
void sk_ipv4_format_cidr(uint32_t addr, int prefix, char *buf, size_t size);
/* The netmask of a prefix length (0..32). */
uint32_t sk_ipv4_mask(int prefix);

#endif
