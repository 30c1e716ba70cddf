/* An in-memory "kernel" behind the overlay's netlink ops (agent/netlink.h)
 * for unit tests: devices, addresses, FDB and neighbour entries in arrays,
 * checked as the kernel checks them (a device exists once; an entry needs
 * its device; a device takes what sits on it along when it goes). Every
 * change is written to `log` like an `ip` command; the change that brings
 * fail_countdown to 0 fails instead ("injected failure"). Pure. */
#ifndef SKIFF_TEST_FAKE_NETLINK_H
#define SKIFF_TEST_FAKE_NETLINK_H

#include <netinet/in.h>
#include <stddef.h>

#include "agent/netlink.h"

#define FAKE_KERNEL_CAP 64
#define FAKE_KERNEL_LOG_CAP 128

struct fake_kernel {
    struct sk_nl_link links[FAKE_KERNEL_CAP];
    size_t n_links;
    struct sk_nl_addr addrs[FAKE_KERNEL_CAP];
    size_t n_addrs;
    struct sk_nl_fdb fdbs[FAKE_KERNEL_CAP];
    size_t n_fdbs;
    struct sk_nl_neigh neighs[FAKE_KERNEL_CAP];
    size_t n_neighs;
    char log[FAKE_KERNEL_LOG_CAP][192];
    size_t n_log;
    int fail_countdown; /* > 0: the Nth change fails */
    int snapshots;
};

/* The ops; pass the struct fake_kernel as their impl. */
extern const struct sk_netlink_ops fake_kernel_ops;

struct sk_nl_link *fake_kernel_link(struct fake_kernel *f, const char *name);
/* "10.0.1.5" as an address (the test fails on anything else). */
struct in_addr fake_ip(const char *s);

#endif
