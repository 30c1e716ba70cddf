/* The Raft state machine of a manager: canonical raft's `struct raft_fsm`
 * over the object store (skiff/store.h). The glue between the two lives
 * here, beside the store, so that raft/ knows nothing of the store and the
 * store (manager/core/) nothing of raft.
 *
 * apply() hands each committed command to sk_store_apply() at the entry's
 * Raft index (raft updates last_applied after apply, so the entry being
 * applied is raft_last_applied() + 1). A command the store rejects (a
 * version conflict, a taken name) is still a successfully applied entry --
 * every manager rejects it the same way -- so apply() never fails; the
 * rejection reaches the proposer through sk_store_fsm_result().
 *
 * snapshot() serialises the store; restore() replaces it. Both run on the
 * loop thread (libraft 0.22 takes snapshots synchronously). */
#ifndef SKIFF_STORE_FSM_H
#define SKIFF_STORE_FSM_H

#include <raft.h>
#include <stdint.h>

#include "skiff/err.h"
#include "skiff/store.h"

#define SK_FSM_REJECTS 64

struct sk_fsm_reject {
    uint64_t index;
    struct sk_err err;
};

struct sk_store_fsm {
    struct raft_fsm raft_fsm; /* give &fsm->raft_fsm to raft */
    struct sk_store *store;   /* not owned */
    struct raft *raft;        /* set with sk_store_fsm_bind */
    /* The most recent rejections, by index, for proposers to read in their
     * apply callbacks (which fire a little after apply). */
    struct sk_fsm_reject rejects[SK_FSM_REJECTS];
    unsigned next_reject;
    uint64_t applied;  /* entries applied (for metrics) */
    uint64_t rejected; /* of which rejected by the store */
    uint64_t restores; /* snapshots restored */
};

void sk_store_fsm_init(struct sk_store_fsm *fsm, struct sk_store *store);
/* Tells the FSM which raft instance drives it (after raft_init, before
 * anything is applied). */
void sk_store_fsm_bind(struct sk_store_fsm *fsm, struct raft *r);
/* The outcome of the command at `index`, given the `result` pointer the
 * apply callback received: SK_OK, or the store's error with its message in
 * err. `fsm` is the struct raft_fsm of a struct sk_store_fsm (so that it
 * fits sk_raft_node_config.fsm_result). */
enum sk_rc sk_store_fsm_result(struct raft_fsm *fsm, uint64_t index,
                               void *result, struct sk_err *err);

#endif
