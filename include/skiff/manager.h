/* The manager role of a skiffd: the replicated store under Raft, the HTTPS
 * control API, and the loops only the leader runs.
 *
 * A manager serves the REST API under /v1 on its API address (mutual TLS,
 * cluster CA). Reads are answered from the local store; writes go through
 * the leader: a follower forwards them (HTTP proxy, with its own manager
 * certificate, naming the original caller), so any manager will do for the
 * CLI. Leader loops -- cluster initialisation, Raft membership, node
 * liveness (and, later, orchestration and scheduling) -- run only on the
 * leader and write through Raft like any client; after a leader change the
 * new leader picks up from the store alone.
 *
 * Who may call what, from the peer's certificate:
 *   - anyone, even without a certificate: GET /v1/health, GET /v1/ca,
 *     POST /v1/join (the join token is the credential);
 *   - a node (worker or manager certificate of a node in the store): its
 *     own /v1/node/... endpoints (heartbeat, certificate, leave);
 *   - admin (admin certificate, or a manager forwarding an admin's call):
 *     everything else. A removed node's certificate is refused.
 *
 * A failure of the Raft store (an I/O error in its directory) is logged and
 * ends the process at once with status 1 (see raft_node.h): a manager never
 * serves from a store it can no longer write.
 *
 * All on the loop thread. */
#ifndef SKIFF_MANAGER_H
#define SKIFF_MANAGER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "skiff/err.h"
#include "skiff/http.h"
#include "skiff/pki.h"

struct sk_manager;

struct sk_manager_config {
    uv_loop_t *loop;
    const char *raft_dir; /* must exist */
    const char *node_id;
    const char *cluster_id;
    const char *listen_addr; /* IPv4 to bind both listeners */
    const char *api_addr;    /* advertised "ip:port" of the API */
    const char *raft_addr;   /* advertised "ip:port" of Raft */
    int api_port;
    int raft_port;
    const char *ca_pem;
    const char *cert_pem;
    const char *key_pem;
    unsigned char data_key[SK_DATA_KEY_SIZE];
    bool bootstrap;           /* first start of `--init`: one-voter cluster */
    bool force_new_cluster;   /* after quorum loss: become the only voter */
    const char *init_command; /* committed once this manager leads (init) */
    unsigned election_timeout_ms; /* 0: 1000 */
    unsigned snapshot_threshold;  /* 0: from the cluster spec, else 1024 */
    /* The init command is committed: the caller may forget it. */
    void (*init_done_cb)(void *ctx);
    void *ctx;
    /* Requests under /v1/agent/ (from other managers, e.g. for logs) go to
     * the node's agent; it finishes them. NULL: 404. */
    void (*agent_handler)(void *agent_ctx, struct sk_http_req *req);
    void *agent_ctx;
};

/* Starts Raft, the API listener and the loops. On failure nothing is left
 * running and err says what failed (e.g. "10.77.0.11:7443: address in
 * use"). */
struct sk_manager *sk_manager_start(const struct sk_manager_config *cfg,
                                    struct sk_err *err);
/* New node certificate and key for connections made from now on. */
enum sk_rc sk_manager_set_credentials(struct sk_manager *m,
                                      const char *cert_pem, const char *key_pem,
                                      struct sk_err *err);
/* Stops: hands leadership to another voter if this manager leads and
 * `handover` is set, then closes everything; cb runs after the last handle
 * closed, then the manager is freed. */
void sk_manager_stop(struct sk_manager *m, bool handover, void (*cb)(void *ctx),
                     void *ctx);

bool sk_manager_is_leader(const struct sk_manager *m);

#endif
