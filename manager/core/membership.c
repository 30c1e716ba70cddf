#include "skiff/membership.h"

#include <stdio.h>
#include <string.h>

struct desired {
    const struct sk_member *servers;
    size_t n;
    const struct sk_node *missing; /* a desired manager not in the config */
};

static bool wants_voter(const struct sk_node *node)
{
    return node->spec.role == SK_ROLE_MANAGER && node->manager.raft_id != 0 &&
           node->manager.raft_addr && *node->manager.raft_addr;
}

static bool find_missing(const void *obj, void *ctx)
{
    const struct sk_node *node = obj;
    struct desired *d = ctx;
    if (!wants_voter(node))
        return true;
    for (size_t i = 0; i < d->n; i++)
        if (d->servers[i].id == node->manager.raft_id)
            return true;
    d->missing = node;
    return false;
}

struct find_by_raft {
    uint64_t id;
    const struct sk_node *node;
};

static bool by_raft_id(const void *obj, void *ctx)
{
    const struct sk_node *node = obj;
    struct find_by_raft *f = ctx;
    if (node->manager.raft_id == f->id) {
        f->node = node;
        return false;
    }
    return true;
}

struct sk_member_action sk_membership_next(const struct sk_store *s,
                                           const struct sk_member *servers,
                                           size_t n, uint64_t self_id,
                                           uint64_t last_index,
                                           uint64_t catch_up_slack)
{
    struct sk_member_action a = {.type = SK_MEMBER_NOTHING};
    size_t voters = 0;
    for (size_t i = 0; i < n; i++)
        voters += servers[i].role == SK_MEMBER_VOTER;

    /* 1. Servers that should not be there. */
    for (size_t i = 0; i < n; i++) {
        struct find_by_raft f = {.id = servers[i].id};
        sk_store_each(s, SK_KIND_NODE, by_raft_id, &f);
        if (f.node && wants_voter(f.node))
            continue;
        bool voter = servers[i].role == SK_MEMBER_VOTER;
        if (voter && voters <= 1)
            continue; /* never the last voter */
        if (servers[i].id == self_id) {
            /* Hand over to a caught-up voter before leaving. */
            uint64_t best = 0, best_match = 0;
            for (size_t j = 0; j < n; j++) {
                if (servers[j].id == self_id ||
                    servers[j].role != SK_MEMBER_VOTER)
                    continue;
                if (!best || servers[j].match_index > best_match) {
                    best = servers[j].id;
                    best_match = servers[j].match_index;
                }
            }
            if (!best)
                continue;
            a.type = SK_MEMBER_TRANSFER;
            a.id = best;
            snprintf(a.why, sizeof a.why,
                     "this leader is no longer a manager: hand over first");
            return a;
        }
        a.type = SK_MEMBER_REMOVE;
        a.id = servers[i].id;
        snprintf(a.why, sizeof a.why, "%s",
                 f.node ? "node was demoted" : "node was removed");
        return a;
    }

    /* 2. Managers that are not there yet. */
    struct desired d = {.servers = servers, .n = n};
    sk_store_each(s, SK_KIND_NODE, find_missing, &d);
    if (d.missing) {
        a.type = SK_MEMBER_ADD;
        a.id = d.missing->manager.raft_id;
        a.addr = d.missing->manager.raft_addr;
        snprintf(a.why, sizeof a.why, "node %s is a new manager",
                 d.missing->spec.name);
        return a;
    }

    /* 3. Spares start receiving the log. */
    for (size_t i = 0; i < n; i++) {
        if (servers[i].role == SK_MEMBER_SPARE) {
            a.type = SK_MEMBER_REPLICATE;
            a.id = servers[i].id;
            snprintf(a.why, sizeof a.why, "replicate the log to it");
            return a;
        }
    }

    /* 4. Standbys that caught up vote. */
    for (size_t i = 0; i < n; i++) {
        if (servers[i].role != SK_MEMBER_STANDBY)
            continue;
        if (servers[i].match_index + catch_up_slack >= last_index &&
            servers[i].match_index > 0) {
            a.type = SK_MEMBER_PROMOTE;
            a.id = servers[i].id;
            snprintf(a.why, sizeof a.why, "caught up to %llu of %llu",
                     (unsigned long long)servers[i].match_index,
                     (unsigned long long)last_index);
            return a;
        }
    }
    return a;
}
