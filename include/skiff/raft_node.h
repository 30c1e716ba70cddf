/* One manager's Raft instance: canonical raft with libuv I/O in a data
 * directory, our mutual-TLS transport, and the state machine the caller
 * gives it (a manager gives the object store's, manager/store_fsm.h).
 *
 * Lifecycle: sk_raft_node_init, then at most one of bootstrap (a brand-new
 * cluster of this one voter) or recover (force a new single-voter
 * configuration after quorum loss, keeping the log), then start. A node
 * joining a cluster starts with an empty directory and waits for the leader
 * to add it. sk_raft_node_close stops everything; its callback runs once
 * every handle is closed; then the struct may be freed.
 *
 * Requests (propose, barrier, change) are caller-allocated, must stay valid
 * until their callback ran, and get exactly one callback when the call
 * returned SK_OK -- none when it returned an error. A proposal's callback
 * gets SK_OK only once the command is committed AND the state machine
 * accepted it; a rejection (for the store: a conflict, a taken name) comes
 * with the state machine's message;
 * a lost leadership with SK_EUNAVAIL ("leadership lost: the change may or
 * may not have been applied").
 *
 * state_cb runs on the loop whenever the role, term or leader changed
 * (polled every 25 ms: libraft 0.22 has no state callback).
 *
 * storage_error_cb runs once, on the loop (within 25 ms), when the Raft
 * store in `dir` failed: libraft's storage wrote an error to io.errmsg or
 * traced a failure. libraft 0.22.1 reports neither to its user and goes on
 * from memory; after a storage error it may crash or leave the directory
 * unloadable (README, "Notes on libraft"). So the node stops there: it
 * refuses every request with SK_EIO, and the owner must end the process
 * without closing the node (raft_close writes to the failed directory).
 * What is on disk is then what a crash leaves, which libraft loads at the
 * next start.
 *
 * All on the loop thread. */
#ifndef SKIFF_RAFT_NODE_H
#define SKIFF_RAFT_NODE_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "skiff/err.h"
#include "skiff/raft_transport.h"
#include "skiff/tls.h"

struct sk_raft_node_config {
    uv_loop_t *loop;
    const char *dir;     /* raft's directory; must exist */
    uint64_t id;         /* sk_raft_id_of(node ID) */
    const char *address; /* advertised "10.77.0.11:7444" */
    const char *listen_host;
    int listen_port;
    struct sk_tls_ctx *server_tls;
    struct sk_tls_ctx *client_tls;
    /* The state machine (not owned), and how to read the outcome of an
     * applied entry at `index` from the result its apply() gave: SK_OK, or
     * an error with its message. */
    struct raft_fsm *fsm;
    enum sk_rc (*fsm_result)(struct raft_fsm *fsm, uint64_t index, void *result,
                             struct sk_err *err);
    bool (*authorize)(void *ctx, const struct sk_peer *peer, uint64_t id);
    void *authorize_ctx;
    void (*reject_cb)(void *ctx, const struct sk_err *err);
    void *reject_ctx;
    void (*state_cb)(void *ctx);
    void *state_ctx;
    void (*storage_error_cb)(void *ctx, const struct sk_err *err);
    void *storage_error_ctx;
    unsigned election_timeout_ms;  /* 0: 750 */
    unsigned heartbeat_timeout_ms; /* 0: 100 */
    unsigned snapshot_threshold;   /* 0: 1024 entries */
    unsigned snapshot_trailing;    /* 0: 512 entries */
    size_t max_entry_bytes;        /* larger proposals fail; 0: 4 MiB */
};

struct sk_raft_node {
    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport transport;
    struct raft_tracer tracer; /* libraft's storage diagnostics */
    struct sk_raft_node_config cfg;
    char *dir, *address, *listen_host;
    uv_timer_t poll;
    /* What state_cb last saw. */
    int last_state;
    uint64_t last_term, last_leader;
    bool started, closing;
    /* The first storage failure libraft traced (on any thread). */
    uv_mutex_t storage_lock;
    char storage_failure[256];
    bool failed;           /* storage_error_cb ran ... */
    struct sk_err failure; /* ... with this */
    unsigned closes_pending;
    void (*close_cb)(struct sk_raft_node *n);
};

enum sk_rc sk_raft_node_init(struct sk_raft_node *n,
                             const struct sk_raft_node_config *cfg,
                             struct sk_err *err);
/* A new cluster whose only voter is this node. SK_EEXIST if the directory
 * already holds state (then just start). */
enum sk_rc sk_raft_node_bootstrap(struct sk_raft_node *n, struct sk_err *err);
/* After quorum loss: make this node the only voter, keeping its log. */
enum sk_rc sk_raft_node_recover(struct sk_raft_node *n, struct sk_err *err);
enum sk_rc sk_raft_node_start(struct sk_raft_node *n, struct sk_err *err);
void sk_raft_node_close(struct sk_raft_node *n,
                        void (*cb)(struct sk_raft_node *n));

/* ---- proposals ---- */

struct sk_raft_propose;
typedef void (*sk_raft_propose_cb)(struct sk_raft_propose *req, enum sk_rc rc,
                                   const struct sk_err *err);

struct sk_raft_propose {
    void *data;
    uint64_t index; /* the entry's index, once submitted */
    /* private */
    struct raft_apply apply;
    struct sk_raft_node *node;
    sk_raft_propose_cb cb;
};

/* Submits a command (copied). SK_ENOTLEADER if this node is not the
 * leader, SK_ETOOBIG past SK_TXN_MAX_BYTES. */
enum sk_rc sk_raft_propose(struct sk_raft_node *n, struct sk_raft_propose *req,
                           const char *cmd, size_t len, sk_raft_propose_cb cb,
                           struct sk_err *err);

struct sk_raft_barrier;
typedef void (*sk_raft_barrier_cb)(struct sk_raft_barrier *req, enum sk_rc rc);
struct sk_raft_barrier {
    void *data;
    struct raft_barrier barrier;
    sk_raft_barrier_cb cb;
};
/* Fires once every entry before it is applied (linearizable reads). */
enum sk_rc sk_raft_barrier(struct sk_raft_node *n, struct sk_raft_barrier *req,
                           sk_raft_barrier_cb cb, struct sk_err *err);

/* ---- membership ---- */

enum sk_raft_change_type {
    SK_RAFT_ADD_SPARE,    /* raft_add */
    SK_RAFT_MAKE_STANDBY, /* raft_assign(STANDBY): replicated, no vote */
    SK_RAFT_MAKE_VOTER,   /* raft_assign(VOTER): catches up first */
    SK_RAFT_REMOVE,
    SK_RAFT_TRANSFER, /* hand leadership to id (0: any voter) */
};

struct sk_raft_change;
typedef void (*sk_raft_change_cb)(struct sk_raft_change *req, enum sk_rc rc,
                                  const char *msg);
struct sk_raft_change {
    void *data;
    enum sk_raft_change_type type;
    uint64_t id;
    /* private */
    union {
        struct raft_change change;
        struct raft_transfer transfer;
    } u;
    struct sk_raft_node *node;
    sk_raft_change_cb cb;
};

enum sk_rc sk_raft_change(struct sk_raft_node *n, struct sk_raft_change *req,
                          enum sk_raft_change_type type, uint64_t id,
                          const char *address, sk_raft_change_cb cb,
                          struct sk_err *err);

/* ---- state ---- */

bool sk_raft_is_leader(const struct sk_raft_node *n);
/* The leader's raft ID (0 if unknown) and address (NULL if unknown). */
uint64_t sk_raft_leader(const struct sk_raft_node *n, const char **address);
/* "stopped", "failed" (storage), else libraft's name of the role. */
const char *sk_raft_state_name(const struct sk_raft_node *n);
uint64_t sk_raft_term(const struct sk_raft_node *n);
uint64_t sk_raft_commit_index(const struct sk_raft_node *n);
uint64_t sk_raft_applied_index(const struct sk_raft_node *n);
uint64_t sk_raft_last_index(const struct sk_raft_node *n);
/* The current configuration (valid until the next loop iteration). */
const struct raft_configuration *
sk_raft_configuration(const struct sk_raft_node *n);
/* Leader only: the highest index known replicated on server id. */
uint64_t sk_raft_match_index(const struct sk_raft_node *n, uint64_t id);

#endif
