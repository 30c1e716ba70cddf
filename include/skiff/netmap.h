/* A node's view of its overlay networks, as the leader sends it in the
 * node's session (skiff/wire.h, struct sk_net_info):
 *
 * every network on which the node runs a task that has not finished, with
 * its VNI, subnet, gateway and the node's own address there; the other
 * nodes that take part in it (their data-path address, and their tasks'
 * and their own addresses on it), so the agent can keep static FDB and
 * neighbour entries; and the services attached to it (name, aliases,
 * endpoint mode, VIP, and the addresses of the tasks that may take
 * traffic: running, healthy, and meant to keep running -- a task told to
 * stop leaves the answers before it is stopped).
 *
 * Deterministic: networks, peers, services and addresses are sorted, so
 * two views of the same state encode to the same text and the leader sends
 * a view only when it changed. A node without networked tasks costs one
 * pass over its own tasks. Pure. */
#ifndef SKIFF_NETMAP_H
#define SKIFF_NETMAP_H

#include <stddef.h>

#include "skiff/store.h"
#include "skiff/wire.h"

/* Fills *out (heap array, free with sk_net_map_free) with node_id's view;
 * returns the number of networks. */
size_t sk_net_map(const struct sk_store *s, const char *node_id,
                  struct sk_net_info **out);
void sk_net_map_free(struct sk_net_info *v, size_t n);

/* Does a task hold its addresses (it has not finished)? */
bool sk_task_holds_addresses(const struct sk_task *t);
/* May a task take traffic (DNS answers, VIP backends)? */
bool sk_task_ready(const struct sk_task *t);

#endif
