/* Task status reports from agents, on the leader: kept per task until the
 * leader's pipeline writes them, many per Raft entry.
 *
 * Pure: time is passed in; the caller proposes the transaction. */
#ifndef SKIFF_REPORTS_H
#define SKIFF_REPORTS_H

#include <stdbool.h>
#include <stdint.h>

#include "skiff/map.h"
#include "skiff/store.h"
#include "skiff/wire.h"

/* A task status reported by an agent, waiting to be written. */
struct sk_pending_report {
    char node_id[SK_ID_SIZE]; /* the node that reported it */
    struct sk_task_report report;
};
void sk_pending_report_free(struct sk_pending_report *r);

/* The pending reports (task id -> struct sk_pending_report *) as one
 * transaction of task status changes: a report applies to a task that is
 * still on the reporting node and that it moves forward; a task told to
 * stop that reports it stopped keeps, as its message, the reason it was
 * told (the orchestrator's), not the agent's. Reports written or
 * no longer applicable are removed from `pending` and freed; those beyond
 * the batch's size stay for the next call. NULL when nothing changes. */
struct sk_txn *sk_reports_txn(const struct sk_store *s, struct sk_map *pending,
                              int64_t now_ms);

#endif
