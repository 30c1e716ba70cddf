/* Which Raft membership change the leader should make next, so that the
 * voters are exactly the nodes whose desired role is manager.
 *
 * The store says who should be a manager (spec.role, with a Raft ID and
 * address); the Raft configuration says who is. One change at a time (Raft
 * allows no more), in this order:
 *   1. a server whose node is gone or was demoted leaves -- when it is the
 *      leader itself, it hands leadership over first; the last voter never
 *      leaves;
 *   2. a new manager joins as a spare (known, neither replicated nor
 *      voting);
 *   3. a spare becomes a standby: it receives the log, does not vote;
 *   4. a standby that has caught up (within `catch_up_slack` entries of
 *      the leader's log) becomes a voter, so a slow newcomer never holds
 *      the others' commits back.
 * Pure: the caller runs the change and asks again when it finished. */
#ifndef SKIFF_MEMBERSHIP_H
#define SKIFF_MEMBERSHIP_H

#include <stddef.h>
#include <stdint.h>

#include "skiff/store.h"

enum sk_member_role { SK_MEMBER_STANDBY, SK_MEMBER_VOTER, SK_MEMBER_SPARE };

struct sk_member {
    uint64_t id;
    int role;             /* enum sk_member_role (raft's numbering) */
    uint64_t match_index; /* replicated up to, as the leader knows */
};

enum sk_member_action_type {
    SK_MEMBER_NOTHING,
    SK_MEMBER_ADD,       /* raft_add as spare */
    SK_MEMBER_REPLICATE, /* raft_assign standby: start replicating */
    SK_MEMBER_PROMOTE,   /* raft_assign voter */
    SK_MEMBER_REMOVE,
    SK_MEMBER_TRANSFER, /* leadership to `id` first */
};

struct sk_member_action {
    enum sk_member_action_type type;
    uint64_t id;
    const char *addr; /* ADD: the Raft address (points into the store) */
    char why[128];
};

struct sk_member_action sk_membership_next(const struct sk_store *s,
                                           const struct sk_member *servers,
                                           size_t n, uint64_t self_id,
                                           uint64_t last_index,
                                           uint64_t catch_up_slack);

#endif
