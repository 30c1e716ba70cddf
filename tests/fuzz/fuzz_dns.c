/* Fuzz target: the DNS responder's message path (agent/dns.c,
 * sk_dns_answer), bytes in -> reply bytes out, for an asker the table knows
 * and one it does not. Whatever the input, a reply must fit its buffer,
 * parse back with ldns as a response, and carry the query's ID. */
#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <stdint.h>
#include <stdlib.h>

#include "agent/dns.h"
#include "agent/dns_table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sk_dns_table *table(void)
{
    static struct sk_dns_table *t;
    if (t)
        return t;
    static struct in_addr tasks[3];
    tasks[0].s_addr = htonl(0x0a000105);
    tasks[1].s_addr = htonl(0x0a000106);
    tasks[2].s_addr = htonl(0x0a000107);
    static const char *const aliases[] = {"backend"};
    struct sk_dns_service svcs[] = {
        {.network = "A",
         .name = "api",
         .aliases = aliases,
         .n_aliases = 1,
         .mode = SK_DNS_VIP,
         .vip = {htonl(0x0a000164)},
         .tasks = tasks,
         .n_tasks = 3},
        {.network = "A",
         .name = "db",
         .mode = SK_DNS_DNSRR,
         .tasks = tasks,
         .n_tasks = 2},
    };
    struct sk_dns_endpoint ep = {
        .addr = {htonl(0x0a000114)}, .network = "A", .task = "client"};
    if (sk_dns_table_new(svcs, 2, &ep, 1, &t, NULL) != SK_OK)
        abort();
    return t;
}

static void check(struct in_addr asker, const uint8_t *data, size_t size)
{
    uint8_t out[SK_DNS_MAX_REPLY];
    size_t len = 0;
    if (!sk_dns_answer(table(), asker, data, size, (unsigned)size, out, &len))
        return;
    if (len > SK_DNS_MAX_REPLY)
        abort();
    ldns_pkt *q = NULL, *r = NULL;
    if (ldns_wire2pkt(&q, data, size) != LDNS_STATUS_OK)
        abort(); /* answered bytes that do not parse */
    if (ldns_wire2pkt(&r, out, len) != LDNS_STATUS_OK)
        abort();
    if (!ldns_pkt_qr(r) || ldns_pkt_id(r) != ldns_pkt_id(q) ||
        ldns_pkt_qdcount(r) > 1)
        abort();
    ldns_pkt_free(q);
    ldns_pkt_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    struct in_addr known = {htonl(0x0a000114)}, stranger = {htonl(0x0a000199)};
    check(known, data, size);
    check(stranger, data, size);
    return 0;
}
