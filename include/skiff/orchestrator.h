/* The orchestrators: from services to tasks.
 *
 * Each pass compares every service with its tasks and writes what must
 * change, in one transaction:
 *
 * Replicated services keep one live task per slot 1..replicas. The newest
 * task of a slot decides:
 *   - none yet: a new pending task (the scheduler places it);
 *   - on a node that is down, gone or drained, or that no longer fits it:
 *     the task is told to shut down and a replacement is created at once
 *     (no restart delay: the node, not the task, changed). A node no
 *     longer fits a task when one of the constraints of the task's own
 *     spec fails there (`node promote` under node.role==worker, a label
 *     removed: "node h1 no longer satisfies node.role==worker"), or when
 *     the node's reported capacity fell below what the tasks meant to run
 *     there reserve: oldest first, they keep their place while they fit,
 *     the newer ones go ("node h1 has 512 MiB of memory, less than its
 *     tasks reserve (800 MiB)"). A task that already ended is left to its
 *     restart policy. A paused node keeps its tasks;
 *   - finished (complete, failed, rejected, stopped): the restart policy
 *     decides -- condition any / on-failure (only non-zero exits and
 *     rejections) / none, at most max_attempts within the window, after
 *     the delay. A task that will not run again is told to shut down.
 *   - made from an older service spec: replaced, `update.parallelism` at a
 *     time (0: all), stop-first (the old task stops, then the new one is
 *     created) or start-first (the old one stops once the new one runs),
 *     waiting `update.delay` between batches.
 * Slots above replicas are shut down (scale down).
 *
 * Global services keep one task on every node that is ready, active,
 * matches the constraints and has room for the task's reservations; tasks
 * on drained or no longer matching nodes shut down, saying which (as
 * above), as does one beyond a shrunk node's capacity, and none is
 * started there again until it fits; a down node keeps its task (it
 * cannot move).
 *
 * A new task gets its addresses on the networks of its spec from the
 * allocator as it is created; when a network has none free, it is created
 * pending without them, the allocator's error as its message, and the
 * leader's allocation pass (sk_allocation_txn) tries again later.
 *
 * Tasks of removed services are told to remove themselves and are deleted
 * once stopped. Per slot (or node), finished tasks beyond the cluster's
 * task history limit are deleted.
 *
 * Pure: time is passed in; the caller commits the transaction. */
#ifndef SKIFF_ORCHESTRATOR_H
#define SKIFF_ORCHESTRATOR_H

#include <stddef.h>
#include <stdint.h>

#include "skiff/allocator.h"
#include "skiff/store.h"

struct sk_orchestration {
    struct sk_txn *txn; /* NULL when nothing needs to change */
    size_t changes;
    int64_t wake_at_ms; /* 0, or when a delay (restart, update) ends */
};

/* Plans at most max_ops changes (the rest waits for the next pass). The
 * allocator is synced from the store first. */
void sk_orchestrate(const struct sk_store *s, struct sk_allocator *alloc,
                    int64_t now_ms, size_t max_ops,
                    struct sk_orchestration *out);

/* What `service ls` shows for a service: its tasks that run, of those it
 * wants. Only tasks on ready nodes count as running (meant to run, and
 * running): a node that is down or cut off runs nothing we can vouch for.
 * A replicated service wants its replicas; a global one a task on every
 * ready node that may hold it (not drained, matching its constraints). */
struct sk_service_counts {
    int64_t running, desired;
};
void sk_service_counts(const struct sk_store *s, const struct sk_service *svc,
                       struct sk_service_counts *out);

#endif
