/* Private to agent/: the names this node's DNS responder (agent/dns.h)
 * answers, and the pure resolution over them.
 *
 * Records are per network. On a network, a service answers to its name and
 * its aliases with its virtual IP (endpoint mode vip) or with the addresses
 * of its running tasks (dnsrr); `tasks.NAME` (and `tasks.ALIAS`) always
 * gives the running tasks' addresses. Names compare without regard to case
 * and with or without one trailing dot.
 *
 * The asker is known by its source address: the table lists the addresses
 * of this node's tasks, each with its network and its task. A task sees the
 * services of every network it is on -- first the network of the address
 * it asked from, then its others in the order given -- and nothing else.
 *
 * A table is plain data, built whole from the state the agent holds and
 * replaced whole when that changes (sk_dns_table_new copies everything it
 * is given). No I/O, no loop; any thread. */
#ifndef SKIFF_AGENT_DNS_TABLE_H
#define SKIFF_AGENT_DNS_TABLE_H

#include <netinet/in.h>
#include <stddef.h>

#include "skiff/err.h"

enum sk_dns_mode { SK_DNS_VIP, SK_DNS_DNSRR };

/* A service as seen on one network (a service on two networks is two
 * entries, each with its own VIP and task addresses). */
struct sk_dns_service {
    const char *network; /* the network's ID */
    const char *name;
    const char *const *aliases;
    size_t n_aliases;
    enum sk_dns_mode mode;
    struct in_addr vip;          /* mode SK_DNS_VIP */
    const struct in_addr *tasks; /* running tasks' addresses here */
    size_t n_tasks;
};

/* One address of a local task on one network. */
struct sk_dns_endpoint {
    struct in_addr addr;
    const char *network;
    const char *task; /* the task's ID: ties its addresses together */
};

struct sk_dns_table;

/* Copies services and endpoints into a new table. SK_EINVAL for a service
 * without a name or network, a name that is not a DNS name (labels of 1..63
 * letters, digits, '-' or '_', at most 253 characters), or an address
 * listed for two endpoints. */
enum sk_rc sk_dns_table_new(const struct sk_dns_service *services,
                            size_t n_services,
                            const struct sk_dns_endpoint *endpoints,
                            size_t n_endpoints, struct sk_dns_table **out,
                            struct sk_err *err);
void sk_dns_table_free(struct sk_dns_table *t);

enum sk_dns_lookup {
    SK_DNS_UNKNOWN_ASKER, /* the source is no local task's address */
    SK_DNS_NO_SUCH_NAME,
    SK_DNS_FOUND /* the name exists; it may have no address right now */
};

/* Resolves `name` for the task at `asker`. With SK_DNS_FOUND, *out_addrs
 * (borrowed from the table, valid until it is freed) holds *out_n
 * addresses, in the table's order. */
enum sk_dns_lookup sk_dns_resolve(const struct sk_dns_table *t,
                                  struct in_addr asker, const char *name,
                                  const struct in_addr **out_addrs,
                                  size_t *out_n);

#endif
