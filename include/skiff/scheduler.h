/* The scheduler: which node runs each pending task.
 *
 * Pending tasks (state pending, desired running, no node) are placed in
 * groups per service. For each group it filters the nodes once --
 *   ready, availability active, the service's constraints --
 * then, per task, keeps the nodes that still have room --
 *   CPU and memory reservations within the node's capacity, the service's
 *   host-mode published ports free, at most max_replicas of the service,
 *   and on each of the task's networks an address of the node's own (it
 *   has one, is owed one, or one is free for it: skiff/allocator.h) --
 * and picks, in this order: the placement preferences (spread over the
 * values of a node label: the value with the fewest tasks of the service),
 * then the node with the fewest tasks of this service, then the fewest
 * tasks overall, then the lowest node ID (so plans are deterministic).
 * Placing a task updates the counts for the next one, so a batch spreads.
 *
 * A task that fits nowhere stays pending with a reason that counts every
 * filter that excluded a node, each node under the first filter it fails
 * (not ready, drained, paused, each constraint, memory, CPU, each host
 * port, max replicas, networks), the filter excluding the most nodes
 * first, e.g. "2 nodes excluded by node.role==worker; host port 8081/tcp
 * is in use on 2 nodes; 1 node drained", "insufficient memory on 3 nodes
 * (needs 512 MiB)"; one too long for its room ends in "; ...". A task
 * that still lacks an address on one of its networks is not placed (it
 * keeps the allocator's message).
 *
 * Pure: reads the store, returns decisions; the caller commits them (many
 * per Raft entry). */
#ifndef SKIFF_SCHEDULER_H
#define SKIFF_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "skiff/allocator.h"
#include "skiff/store.h"

struct sk_sched_decision {
    char task_id[SK_ID_SIZE];
    char node_id[SK_ID_SIZE]; /* "" when the task fits nowhere */
    char reason[256];         /* why not, when it fits nowhere */
};

/* Plans up to `max` pending tasks; *out is a heap array (free()) of the
 * decisions; returns their number. The allocator is synced from the store
 * first; the nodes' own addresses the plan needs are owed in it. */
size_t sk_schedule(const struct sk_store *s, struct sk_allocator *alloc,
                   size_t max, struct sk_sched_decision **out);

/* sk_schedule's decisions as one transaction: a placed task is assigned to
 * its node (state assigned, message "assigned", timestamp now_ms); one that
 * fits nowhere keeps pending with the reason as its message, left out if
 * that is already its message. Stops adding once the transaction is half
 * of SK_TXN_MAX_BYTES. */
struct sk_placements {
    struct sk_txn *txn; /* NULL when nothing changes */
    size_t placed;      /* tasks assigned to a node */
};
void sk_schedule_txn(const struct sk_store *s, struct sk_allocator *alloc,
                     int64_t now_ms, size_t max, struct sk_placements *out);

/* Is this task counted on its node (holds resources and ports)? */
bool sk_task_occupies_node(const struct sk_task *t);

#endif
