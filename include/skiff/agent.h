/* The agent: every node's link to the managers.
 *
 * It sends a heartbeat to a manager every heartbeat period (the cluster's
 * setting, learned from the replies), preferring the leader (replies name
 * it) and moving on to the next manager in its list when one does not
 * answer -- so losing a manager, even the leader, never stops it. Replies
 * also carry the current managers (kept in the data dir by the daemon) and
 * this node's object: when its desired role differs from the role of the
 * node's certificate (promote/demote), the agent asks for a certificate of
 * the new role and hands it to the daemon, which switches roles. Before the
 * certificate runs out (at a random point between 50% and 80% of its life,
 * like Swarm) the agent renews it, without a restart.
 *
 * It also holds the node's assignment session: a stream from the leader
 * with the node's tasks (in full, then changes; a ping every second), which
 * it hands to the executor (agent/executor.h) to run on dockerd, and it
 * sends the tasks' states back, batched. The session's network view goes
 * to the node's data plane (agent/dataplane.h: overlay, Docker networks,
 * DNS, VIPs), which the executor asks before it starts a task on a
 * network. A silent stream is dropped after three heartbeat periods and
 * opened again, at the leader the heartbeat replies name. Losing the
 * managers never stops containers.
 *
 * All on the loop thread. Callbacks run from the loop, never inside the
 * agent's own functions. */
#ifndef SKIFF_AGENT_H
#define SKIFF_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "skiff/err.h"
#include "skiff/http.h"
#include "skiff/objects.h"
#include "skiff/pki.h"

struct sk_agent;
struct dataplane_seams; /* agent/dataplane.h */

struct sk_agent_config {
    uv_loop_t *loop;
    const char *node_id;
    int role; /* enum sk_node_role of the current certificate */
    const char *ca_pem;
    const char *cert_pem;
    const char *key_pem;
    char *const *managers; /* API "ip:port"s to try */
    size_t n_managers;
    /* What the node reports about itself in every heartbeat (copied). Its
     * agent_addr is where managers reach the agent's own API (logs). */
    struct sk_node_description description;
    /* Where this node's manager would listen, sent when it is promoted. */
    const char *api_addr;
    const char *raft_addr;
    /* The node's dockerd ("/var/run/docker.sock"). */
    const char *docker_socket;
    /* Tests: what the data plane uses in place of the kernel (netlink,
     * nftables, the DNS port); NULL for the real ones. */
    const struct dataplane_seams *dataplane_seams;
    /* The agent's own API (logs for managers): whether the agent listens
     * itself (a worker) or a manager on this node routes /v1/agent/ to
     * sk_agent_handle (serve_port 0). */
    const char *serve_host;
    int serve_port;
    /* A renewed certificate of the same role: use it from now on. */
    void (*credentials_cb)(void *ctx, const char *cert_pem,
                           const char *key_pem);
    /* A certificate of a new role (data_key is set for a manager). The
     * daemon saves it and restarts in the new role. */
    void (*role_cb)(void *ctx, int role, const char *cert_pem,
                    const char *key_pem, const unsigned char *data_key);
    /* The list of managers changed. */
    void (*managers_cb)(void *ctx, char *const *addrs, size_t n);
    void *ctx;
};

struct sk_agent *sk_agent_start(const struct sk_agent_config *cfg,
                                struct sk_err *err);
/* Stops; with `leave`, first tells the managers this node stops on purpose
 * (it shows as disconnected, not down). cb runs when all is closed. */
void sk_agent_stop(struct sk_agent *a, bool leave, void (*cb)(void *ctx),
                   void *ctx);

/* Serves a request under /v1/agent/ (the caller checked it comes from a
 * manager) and finishes it. */
void sk_agent_handle(struct sk_agent *a, struct sk_http_req *req);

/* For tests and status: the manager the agent talks to now, and when it
 * last got a heartbeat through (uv_now ms, 0 never). */
const char *sk_agent_manager(const struct sk_agent *a);
uint64_t sk_agent_last_ok(const struct sk_agent *a);

#endif
