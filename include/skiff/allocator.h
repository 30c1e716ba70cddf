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
 * VIPs and node addresses come before task addresses, so that a small
 * subnet fills up with tasks that can run rather than with tasks that
 * cannot: an address is owed to every VIP a vip-mode service still lacks
 * and to every node that holds tasks with addresses on the network but
 * none of its own there yet (promised), and a task never takes an owed
 * address -- nor, while no node has or is owed an address on the network,
 * the last free one (so that at least one node can join and run the
 * tasks). Owed addresses are counted, not chosen: the VIP or node takes
 * whichever is free when its turn comes.
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
#include "skiff/txn.h"

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
 * dropped. A task already on a node (t->node_id: a global service's) also
 * needs room for that node's own address on each network where the node
 * has none and is owed none; it is then owed one. */
enum sk_rc sk_allocate_task(struct sk_allocator *a, struct sk_task *t,
                            struct sk_err *err);

/* Whether the task has an address on every network its spec names (true
 * for a task on no network). */
bool sk_task_has_addresses(const struct sk_task *t);

/* For the scheduler: may a task with an address on network_id go to this
 * node? Yes if the node has or is owed its own address there, or one is
 * free for it; if not, err (optional) says `network "back": no free
 * address in 10.0.3.0/29 for the node's own address`. */
bool sk_allocator_node_fits(const struct sk_allocator *a, const char *node_id,
                            const char *network_id, struct sk_err *err);
/* A task goes to the node: the node is owed its own address on network_id
 * (if it has none and is owed none), for the rest of this pass. */
void sk_allocator_node_promise(struct sk_allocator *a, const char *node_id,
                               const char *network_id);

/* A VIP on each network of the service's task spec (vip mode; dnsrr: no
 * VIPs); VIPs of networks it left are dropped. */
enum sk_rc sk_allocate_vips(struct sk_allocator *a, struct sk_service *svc,
                            struct sk_err *err);

/* The node's own address on network_id, if it has none yet. */
enum sk_rc sk_allocate_node_address(struct sk_allocator *a, struct sk_node *n,
                                    const char *network_id, struct sk_err *err);

/* The leader's allocation pass, after syncing a from the store, as one
 * transaction (NULL when nothing changes), of at most max_ops changes:
 *   - services: VIPs for vip-mode services that lack them on a network
 *     they name, none for the networks they left or in dnsrr mode;
 *   - nodes: their own address on every network they have a non-terminal
 *     task with an address on, and none on the others;
 *   - pending tasks without all their addresses (not those the
 *     orchestrator is about to replace: of a removed service or an older
 *     spec): another try; the allocator's error becomes the task's status
 *     message (a global service's task, already on its node, is assigned
 *     once it has them).
 * A service or node the pool cannot serve now is left as it is (its
 * tasks' messages name the full subnet). Pure. */
struct sk_txn *sk_allocation_txn(const struct sk_store *s,
                                 struct sk_allocator *a, int64_t now_ms,
                                 size_t max_ops);

#endif
