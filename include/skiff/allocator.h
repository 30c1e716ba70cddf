/* The allocator: the overlay networks' resources, on the leader.
 *
 *   - a network gets a VNI (4096 .. 2^24-1, as Swarm) and, when its spec
 *     names no subnet, a subnet carved from the cluster's default address
 *     pool (cluster spec default_addr_pool, default 10.0.0.0/8 in /24s);
 *     its gateway is the spec's or the subnet's first host address. The
 *     gateway is on every node's bridge of the network (containers route
 *     through it; each node answers for it locally, never over VXLAN);
 *   - a node that runs tasks on a network gets an address of its own there
 *     (node.networks): the source of what the node itself sends into the
 *     overlay, and where its DNS responder listens;
 *   - a task gets one address on each network its spec names
 *     (task.networks);
 *   - a service in vip mode gets one virtual IP per network (service.vips).
 *
 * What is in use is read from the store (sk_allocator_sync), so a new
 * leader rebuilds everything from the store alone. Held: the network and
 * broadcast addresses, the gateway, node addresses, VIPs, and the
 * addresses of every task whose state is not terminal -- a task's address
 * is free once it has finished (its container no longer holds it). New
 * addresses are taken after the last one handed out on that network
 * (wrapping), so a freed address is not reused at once. What one pass
 * allocates is marked used at once, so one transaction never hands out an
 * address twice.
 *
 * Errors (SK_EINVAL for a bad spec, SK_ENOSPC when nothing is free) name
 * the network and the subnet: `network "back": no free address in
 * 10.0.3.0/24`. On error nothing was allocated.
 *
 * IPv4 only; a network's subnet is between /16 and /29. Pure. */
#ifndef SKIFF_ALLOCATOR_H
#define SKIFF_ALLOCATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "skiff/err.h"
#include "skiff/ipv4.h"
#include "skiff/objects.h"
#include "skiff/store.h"

#define SK_VNI_MIN 4096
#define SK_VNI_MAX 16777215

struct sk_allocator;

struct sk_allocator *sk_allocator_new(void);
void sk_allocator_free(struct sk_allocator *a);

/* Forgets what was in use and reads it from the store again (the
 * cursors of where to allocate next survive). */
void sk_allocator_sync(struct sk_allocator *a, const struct sk_store *s);

/* A new network (n->meta.id set): checks the spec's subnet (syntax, size,
 * no overlap with another network's) and gateway (inside the subnet, not
 * its network or broadcast address), then fills n->vni, n->subnet and
 * n->gateway. The pool comes from the cluster spec. */
enum sk_rc sk_allocate_network(struct sk_allocator *a,
                               const struct sk_cluster_spec *cluster,
                               struct sk_network *n, struct sk_err *err);

/* One address on each network of t->spec.networks (resolved IDs) that
 * t->networks lacks; attachments to networks the spec no longer names are
 * dropped. */
enum sk_rc sk_allocate_task(struct sk_allocator *a, struct sk_task *t,
                            struct sk_err *err);

/* A VIP on each network of the service's task spec (vip mode; dnsrr: no
 * VIPs); VIPs of networks it left are dropped. */
enum sk_rc sk_allocate_vips(struct sk_allocator *a, struct sk_service *svc,
                            struct sk_err *err);

/* The node's own address on network_id, if it has none yet. */
enum sk_rc sk_allocate_node_address(struct sk_allocator *a, struct sk_node *n,
                                    const char *network_id, struct sk_err *err);

#endif
