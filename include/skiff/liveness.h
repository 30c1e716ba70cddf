/* Node liveness from heartbeats, on the leader.
 *
 * Agents send a heartbeat every heartbeat period (a cluster setting). The
 * leader remembers when it last heard from each node -- in memory only:
 * heartbeats never enter the Raft log -- and decides which nodes changed
 * state: a node heard from within 3 periods is ready; one silent for longer
 * is down. A leader that just took over has heard from nobody yet, so it
 * gives every node a grace of 5 periods from the moment it became leader
 * before calling anything down (agents need a moment to find it). A node
 * that joined under this leader and has not heartbeated yet counts as heard
 * of when it joined (the node's created time). A node whose skiffd stopped
 * on purpose (it said so: disconnected) gets 15 periods to come back -- a
 * restart or an upgrade does not move its tasks -- and is down after that,
 * so that its tasks run elsewhere.
 *
 * Pure: time is passed in; the caller proposes the state changes. */
#ifndef SKIFF_LIVENESS_H
#define SKIFF_LIVENESS_H

#include <stddef.h>
#include <stdint.h>

#include "skiff/map.h"
#include "skiff/store.h"

#define SK_DOWN_AFTER_PERIODS 3
#define SK_LEADER_GRACE_PERIODS 5
#define SK_LEFT_DOWN_AFTER_PERIODS 15

struct sk_liveness {
    struct sk_map last_seen; /* node id -> heap int64_t (ms) */
    int64_t leader_since;
};

struct sk_node_change {
    char node_id[SK_ID_SIZE];
    int state; /* enum sk_node_state */
    char message[96];
};

void sk_liveness_init(struct sk_liveness *d);
void sk_liveness_free(struct sk_liveness *d);
/* This manager became leader at now_ms: forget what an earlier term saw. */
void sk_liveness_reset(struct sk_liveness *d, int64_t now_ms);
void sk_liveness_heartbeat(struct sk_liveness *d, const char *node_id,
                           int64_t now_ms);
/* The node said goodbye (stopping on purpose). */
void sk_liveness_forget(struct sk_liveness *d, const char *node_id);
int64_t sk_liveness_last_seen(const struct sk_liveness *d, const char *node_id);
/* Compares what the store says with what was heard; fills up to max
 * changes (heap array in *out, free()); returns how many. */
size_t sk_liveness_check(const struct sk_liveness *d, const struct sk_store *s,
                         int64_t now_ms, int64_t period_ms,
                         struct sk_node_change **out);
/* The changes as one transaction on the nodes still in the store: state,
 * message, state_changed_at = now_ms. NULL when none applies. */
struct sk_txn *sk_liveness_txn(const struct sk_store *s,
                               const struct sk_node_change *changes, size_t n,
                               int64_t now_ms);

#endif
