/* Private to agent/: the thin layer between the overlay's reconcile logic
 * (agent/overlay.h) and the kernel's rtnetlink, through libnl-route-3.
 *
 * The reconcile logic never talks to the kernel itself: it reads a
 * snapshot of the devices and entries it owns and asks for one change at a
 * time through `struct sk_netlink_ops`. sk_netlink_open() gives the real
 * implementation; the unit tests give an in-memory "kernel" of their own.
 * Devices are named, not numbered, in this interface, so that a fake needs
 * no interface indexes and a log of operations reads like `ip` commands.
 *
 * Every call is synchronous: one netlink request and its acknowledgement on
 * the calling thread, which blocks for the kernel's answer (microseconds,
 * it is a local socket). There are no callbacks. The agent calls it on its
 * loop thread; nothing here is thread-safe, and a handle belongs to the
 * thread (and network namespace) that opened it.
 *
 * Only IPv4 is handled: skiff's overlay networks are IPv4. */
#ifndef SKIFF_AGENT_NETLINK_H
#define SKIFF_AGENT_NETLINK_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skiff/err.h"

enum sk_nl_kind { SK_NL_OTHER, SK_NL_BRIDGE, SK_NL_VXLAN };

/* What a VXLAN device carries besides its link attributes. */
struct sk_nl_vxlan {
    uint32_t vni;
    struct in_addr local; /* the VTEP's own address (source of the UDP) */
    uint16_t port;        /* UDP destination port, host order */
    bool learning;        /* learn remote MACs from received packets */
    bool proxy;           /* answer ARP from the neighbour table */
};

/* A device as observed, or as wanted by sk_netlink_ops.link_add/link_set. */
struct sk_nl_link {
    char name[IFNAMSIZ];
    enum sk_nl_kind kind;
    char master[IFNAMSIZ]; /* the bridge it is enslaved to; "" for none */
    unsigned mtu;
    bool up;
    /* Observed: the device's MAC (has_mac false if it has none). Wanted:
     * with has_mac, link_add and link_set give the device this MAC. */
    bool has_mac;
    uint8_t mac[6];
    struct sk_nl_vxlan vxlan; /* kind SK_NL_VXLAN only */
};

/* An IPv4 address on a device. */
struct sk_nl_addr {
    char dev[IFNAMSIZ];
    struct in_addr addr;
    uint8_t prefix;
};

/* A static forwarding entry of a VXLAN device: frames for `mac` go in a
 * UDP packet to the VTEP `dst` (`bridge fdb add MAC dev DEV dst DST self
 * permanent`). */
struct sk_nl_fdb {
    char dev[IFNAMSIZ];
    uint8_t mac[6];
    struct in_addr dst;
};

/* A neighbour (ARP) entry on a device: `ip` is at `mac` (`ip neigh add IP
 * lladdr MAC dev DEV nud permanent`). `permanent` is false for entries the
 * kernel made itself, which the overlay also treats as not its own. */
struct sk_nl_neigh {
    char dev[IFNAMSIZ];
    struct in_addr ip;
    uint8_t mac[6];
    bool permanent;
};

/* A snapshot of the devices whose names start with one of the prefixes
 * asked for, with their IPv4 addresses, the FDB entries with a destination
 * (VXLAN devices' own) and the IPv4 neighbour entries on them. Arrays are
 * owned by the snapshot: sk_nl_state_free() releases them. */
struct sk_nl_state {
    struct sk_nl_link *links;
    size_t n_links;
    struct sk_nl_addr *addrs;
    size_t n_addrs;
    struct sk_nl_fdb *fdbs;
    size_t n_fdbs;
    struct sk_nl_neigh *neighs;
    size_t n_neighs;
};

void sk_nl_state_free(struct sk_nl_state *s);

/* The operations the overlay needs. Each returns SK_OK or fills err with a
 * message naming the device and the kernel's reason. `impl` is the
 * implementation's own state. */
struct sk_netlink_ops {
    /* Fills out (zeroed by the caller) with the devices whose names start
     * with one of the n prefixes, and what sits on them. */
    enum sk_rc (*snapshot)(void *impl, const char *const *prefixes, size_t n,
                           struct sk_nl_state *out, struct sk_err *err);
    /* Creates a bridge or a VXLAN device with everything in `link` (name,
     * kind, mtu, master, up, the MAC if has_mac, the VXLAN attributes).
     * Fails if it exists. */
    enum sk_rc (*link_add)(void *impl, const struct sk_nl_link *link,
                           struct sk_err *err);
    /* Changes an existing device's master, mtu, up state and (with
     * has_mac) MAC to `link`'s (the kind and VXLAN attributes are ignored:
     * they cannot change). */
    enum sk_rc (*link_set)(void *impl, const struct sk_nl_link *link,
                           struct sk_err *err);
    enum sk_rc (*link_del)(void *impl, const char *name, struct sk_err *err);
    enum sk_rc (*addr_add)(void *impl, const struct sk_nl_addr *a,
                           struct sk_err *err);
    enum sk_rc (*addr_del)(void *impl, const struct sk_nl_addr *a,
                           struct sk_err *err);
    enum sk_rc (*fdb_add)(void *impl, const struct sk_nl_fdb *f,
                          struct sk_err *err);
    enum sk_rc (*fdb_del)(void *impl, const struct sk_nl_fdb *f,
                          struct sk_err *err);
    /* Adds (or replaces) a permanent entry. */
    enum sk_rc (*neigh_add)(void *impl, const struct sk_nl_neigh *n,
                            struct sk_err *err);
    enum sk_rc (*neigh_del)(void *impl, const struct sk_nl_neigh *n,
                            struct sk_err *err);
};

/* ---- the real implementation (libnl-route-3) ---- */

struct sk_netlink;

/* Opens an rtnetlink socket in the calling thread's network namespace. */
enum sk_rc sk_netlink_open(struct sk_netlink **out, struct sk_err *err);
void sk_netlink_close(struct sk_netlink *nl);
/* The operations over `nl`: pass `nl` as their impl. */
const struct sk_netlink_ops *sk_netlink_ops(void);

/* The MTU of the device that holds the IPv4 address `addr` (the data-path
 * interface, whose MTU less VXLAN's 50 bytes is the overlay's). */
enum sk_rc sk_netlink_mtu_of_addr(struct sk_netlink *nl, struct in_addr addr,
                                  unsigned *out_mtu, struct sk_err *err);

/* "02:42:0a:00:00:05" for a MAC, in a caller's buffer of 18 bytes. */
void sk_nl_mac_format(const uint8_t mac[6], char out[18]);
/* Parses "02:42:0a:00:00:05"; false if it is not a MAC. */
bool sk_nl_mac_parse(const char *s, uint8_t out[6]);

#endif
