/* Private to agent/: services' virtual IPs, by DNAT in each client
 * container's own network namespace, with nftables (libnftables).
 *
 * A connection a container opens to a VIP is translated, on its first
 * packet, to the address of one of the service's running tasks, picked at
 * random (`numgen random`); conntrack in the container's namespace keeps
 * the rest of the connection on that task and translates the replies back.
 * The task sees the client's real address (no SNAT). A VIP without running
 * tasks rejects connections at once instead of letting them time out.
 *
 * All rules live in one table of the container's namespace, `ip skiff_vip`,
 * replaced whole in one nftables transaction (add, delete, define: atomic),
 * so a task that leaves is out of the choice for every new connection as
 * soon as the agent applies the new set; established connections keep
 * their task (their conntrack entry). Nothing is added to the host's own
 * rule set, and nothing is left behind: the table goes with the container's
 * namespace.
 *
 * The kernel here has no IPVS; Swarm does the same per-container
 * translation with IPVS in each container's namespace.
 *
 * sk_vip_render() is pure (text in, text out). Applying goes through
 * `struct sk_vip_ops` so the tests can fake it; the real ops enter the
 * namespace on a short-lived thread of their own, never on the caller's.
 * Synchronous, no callbacks; the agent calls it on its loop thread. */
#ifndef SKIFF_AGENT_VIP_H
#define SKIFF_AGENT_VIP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include "skiff/err.h"

#define SK_VIP_TABLE "skiff_vip"

/* A service's VIP on one network and its running tasks' addresses there.
 * Borrowed. */
struct sk_vip_service {
    struct in_addr vip;
    const struct in_addr *backends;
    size_t n_backends;
};

/* The nft script that makes a namespace's VIP rules exactly these (no
 * service: the table is removed). The caller frees it. Two VIPs that are
 * the same address: the first wins, the others are left out. */
char *sk_vip_render(const struct sk_vip_service *services, size_t n);

struct sk_vip_ops {
    /* Runs an nft script in the network namespace that `netns` names (a
     * path: Docker's NetworkSettings.SandboxKey, or /proc/PID/ns/net). */
    enum sk_rc (*apply)(void *impl, const char *netns, const char *script,
                        struct sk_err *err);
};

/* The real ops: a thread enters the namespace (setns), creates its
 * libnftables context there -- nft_ctx_new opens its netlink socket at
 * creation, in the namespace of the thread that calls it (libnftables
 * 1.0.6, checked) -- runs the script, and ends; the caller's thread never
 * changes namespace. impl is unused (NULL). */
const struct sk_vip_ops *sk_vip_nft_ops(void);

/* One container's VIP rules as last applied, so that an unchanged set is
 * not applied again. Zero-initialised; netns is borrowed. */
struct sk_vip_target {
    const char *netns;
    char *applied; /* the script last applied, NULL if none */
};

/* Renders the rules for `services` and applies them to t's namespace
 * unless they are what was applied last. *out_changed (may be NULL) tells
 * whether they were applied. On failure nothing is remembered, so the next
 * call applies again. */
enum sk_rc sk_vip_sync(const struct sk_vip_ops *ops, void *impl,
                       struct sk_vip_target *t,
                       const struct sk_vip_service *services, size_t n,
                       bool *out_changed, struct sk_err *err);
/* Forgets what was applied (the container is gone). */
void sk_vip_target_clear(struct sk_vip_target *t);

#endif
