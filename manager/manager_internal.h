/* Private to manager/: the manager's state, and what its files offer each
 * other. Each file has one job, and calls only the files listed below it:
 *
 *   manager.c      lifecycle: start, credentials, stop (handover), close
 *   router.c       routes, authorisation, forwarding to the leader
 *   leader.c       the leader's loops: init, membership, the pipeline
 *   api*.c         the request handlers (api_session.c: agents' sessions)
 *   call.c         responding, proposing, what handlers ask, mgr_kick
 *
 * (manager.c uses router.c, leader.c, api_session.c and call.c; router.c
 * uses the handlers and call.c; leader.c uses api_session.c and call.c;
 * the handlers use call.c.) */
#ifndef SKIFF_MANAGER_INTERNAL_H
#define SKIFF_MANAGER_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "skiff/allocator.h"
#include "skiff/ca.h"
#include "skiff/list.h"
#include "skiff/liveness.h"
#include "skiff/events.h"
#include "skiff/http.h"
#include "skiff/http_client.h"
#include "skiff/manager.h"
#include "skiff/raft_node.h"
#include "skiff/reports.h"
#include "skiff/store.h"
#include "skiff/stream.h"
#include "skiff/tls.h"
#include "skiff/wire.h"
#include "store_fsm.h"

/* The leader's loops' own state (leader.c), valid while `leading`. */
struct leader_state {
    bool leading;
    int64_t since;
    bool init_inflight, change_inflight;
    bool forced_cleanup_done, forced_cleanup_inflight;
    uint64_t last_liveness_ms; /* uv_now of the last liveness check */
    struct sk_raft_change change;
    /* The loops write one proposal at a time, each computed from the
     * latest state, so they never conflict with each other. */
    bool inflight;
    /* Node state changes in the proposal, logged once it commits (a
     * conflict re-proposes them). */
    struct sk_node_change *changes;
    size_t n_changes;
    unsigned next_producer;
    bool orch_dirty, sched_dirty, alloc_dirty;
    /* The overlay networks' addresses, synced from the store by each
     * producer that hands them out (skiff/allocator.h). */
    struct sk_allocator *allocator;
    int64_t orch_wake_ms; /* wall clock; 0: none */
};

struct sk_manager {
    /* The lifecycle's (manager.c). */
    uv_loop_t *loop;
    struct sk_manager_config cfg; /* strings below are our copies */
    char *raft_dir, *node_id, *cluster_id, *listen_addr, *api_addr, *raft_addr,
        *ca_pem, *cert_pem, *key_pem, *init_command;
    unsigned char data_key[SK_DATA_KEY_SIZE];
    unsigned char forward_key[SK_FORWARD_KEY_SIZE]; /* from data_key */
    struct sk_store *store;
    struct sk_events *events;
    unsigned watch_id, peers_watch_id;
    bool recheck_peers;      /* a node changed: recheck Raft connections */
    struct sk_store_fsm fsm; /* the store under raft */
    struct sk_raft_node raft;
    bool raft_inited;
    struct sk_tls_ctx *api_tls, *raft_server_tls, *client_tls;
    struct sk_tls_creds creds;       /* for forwarding; points at our strings */
    struct sk_tls_creds agent_creds; /* calling agents (any node role) */
    struct sk_listener listener;
    bool listening;
    struct sk_http_server http;
    bool http_inited;
    struct sk_http_client client;
    bool client_inited;
    uv_timer_t tick; /* runs the leader's loops */
    bool tick_inited;
    uv_async_t kick; /* runs them now (mgr_kick) */
    bool kick_inited;
    bool stopping;
    unsigned closes_pending;
    void (*stop_cb)(void *ctx);
    void *stop_ctx;

    /* What agents tell the leader (the handlers fill it, the loops use
     * it). */
    struct sk_liveness liveness;
    struct sk_map reports; /* task id -> struct sk_pending_report */

    struct leader_state lead;

    /* The agents' assignment streams (api_session.c). */
    struct sk_list sessions; /* struct session */
    uint64_t last_ping_ms;

    /* The router's (router.c): calls forwarded to the leader, in flight. */
    struct sk_list forwards; /* struct forward */
    /* Reads and forwarded replies waiting for this manager to catch up or
     * for a barrier (reads.c). */
    struct sk_list reads;
    /* When a leader was last known (uv_now ms), for refusing reads while
     * none is. */
    uint64_t leader_seen_ms;

    /* Counters for /metrics. */
    uint64_t requests, forwarded, refused;
};

/* ---- call.c ---- */

/* One API call in progress: the request, who made it, path parameters.
 * Every call ends in exactly one of call_json / call_error / call_raw,
 * which respond and free it. */
struct call {
    struct sk_manager *m;
    struct sk_http_req *req;
    /* Whom the call speaks for (router.c): the caller's certificate, or
     * the principal a manager forwarded it for. */
    struct sk_principal who;
    bool forwarded;
    char param[2][128];
    json_t *body; /* parsed JSON body, or NULL */
};

/* Hands the request on to someone else who will finish it; frees only the
 * call. */
void call_handoff(struct call *c);
/* Responding (each frees the call). */
void call_json(struct call *c, int status, json_t *body);
void call_raw(struct call *c, int status, const char *content_type,
              const char *body, size_t len);
void call_error(struct call *c, const struct sk_err *err);
void call_errorf(struct call *c, enum sk_rc code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Parses the request body as a JSON object into c->body; on failure
 * responds 400 (freeing the call) and returns false. */
bool call_body(struct call *c);

/* Proposing: runs t through Raft (t is freed here); done runs once with the
 * outcome. Returns false (and does not call done) if this manager is not
 * the leader or the change is too large; err then says why. */
typedef void (*propose_done)(struct sk_manager *m, void *ctx, enum sk_rc rc,
                             const struct sk_err *err);
bool mgr_propose(struct sk_manager *m, struct sk_txn *t, propose_done done,
                 void *ctx, struct sk_err *err);
/* The same for a command already encoded (copied). */
bool mgr_propose_cmd(struct sk_manager *m, const char *cmd, size_t len,
                     propose_done done, void *ctx, struct sk_err *err);
/* Responds to the call with 200 and `reply` once t commits, or with the
 * error. reply may be NULL ({"ok":true}). */
void call_propose(struct call *c, struct sk_txn *t, json_t *reply);
/* The same, and logs `committed` (heap, taken over; NULL: nothing) at info
 * level once t commits -- not before, so the log never tells of a change
 * that did not happen. */
void call_propose_logged(struct call *c, struct sk_txn *t, json_t *reply,
                         char *committed);

int64_t mgr_now_ms(void);
#ifdef SKIFF_TEST_FAULTS
bool mgr_test_ack_before_commit(void);
#endif
/* The certificate a TLS peer presented (pointing into peer). */
struct sk_cert_ident mgr_peer_cert(const struct sk_peer *peer);
/* The leader's node object, or NULL. */
const struct sk_node *mgr_leader_node(const struct sk_manager *m);
/* The node a user refers to (ID, name or ID prefix); on failure responds
 * (404, or 400 if ambiguous; freeing the call) and returns NULL. */
const struct sk_node *call_lookup_node(struct call *c, const char *ref);
/* JSON array of every manager's API address. */
json_t *mgr_manager_addrs(const struct sk_manager *m);
/* A node as the API shows it: public fields plus manager status. */
json_t *mgr_node_json(const struct sk_manager *m, const struct sk_node *n);
/* Wakes the leader loops soon (after a change that may need action): the
 * manager's tick runs in the next turn of the loop. */
void mgr_kick(struct sk_manager *m);

/* ---- reads.c: read-your-writes and linearizable reads ---- */

typedef void (*read_fn)(struct call *c);
/* This manager's applied Raft index: every reply carries it as
 * X-Skiff-Index, and a client that sends the highest it has seen as
 * X-Skiff-Min-Index reads its own writes on any manager. */
uint64_t reads_applied(const struct sk_manager *m);
/* Serves the read fn(c) once this manager has applied min_index (at most
 * 2 s; then 503 "behind"); with `linearizable` (the leader only), once a
 * barrier has confirmed it still leads and applied everything committed
 * before the call. */
void reads_serve(struct call *c, read_fn fn, uint64_t min_index,
                 bool linearizable);
/* Sends a reply the leader gave to a forwarded call once this manager has
 * applied `index` too (so the caller's next read here sees its write). */
void reads_reply_after(struct call *c, uint64_t index, int status,
                       const char *body, size_t len);
/* Answers what waits for an index now applied, or for too long. Called on
 * every store change and every tick. */
void reads_check(struct sk_manager *m);
/* Answers everything still waiting (503); before the HTTP server closes. */
void reads_close(struct sk_manager *m);
/* How long no leader has been known beyond the election timeout (ms), or
 * 0. */
int64_t mgr_leaderless_ms(const struct sk_manager *m);

/* ---- router.c ---- */

/* The HTTP server's handler: routes, authorises, forwards or serves. */
void router_handle(struct sk_http_req *req);
/* Answers the calls forwarded to a manager that no longer leads (503, so
 * that clients retry and find the new leader). */
void router_cancel_stale_forwards(struct sk_manager *m);

/* ---- leader.c ---- */

void leader_init(struct sk_manager *m);
void leader_free(struct sk_manager *m);
/* One turn of the leader's loops (nothing unless this manager leads). */
void leader_tick(struct sk_manager *m);
/* The store watcher (ctx: the manager): marks what the loops and the
 * sessions must look at again, records the event, kicks. */
void leader_store_watch(const struct sk_event *ev, void *ctx);

/* ---- api_session.c: the agents' assignment streams ---- */

/* An agent's assignment stream: the tasks of its node, full then changes. */
struct session {
    struct sk_manager *m;
    struct call *c;
    char node_id[SK_ID_SIZE];
    struct sk_map sent; /* task id -> version sent (as pointer) */
    bool dirty, ended;
    bool net_dirty;      /* the network view may have changed */
    char *net_sent;      /* the last network view sent (encoded) */
    struct sk_list link; /* in m->sessions */
};
/* Sends what changed on every dirty session, a ping on the others once a
 * second. */
void sessions_flush_all(struct sk_manager *m);
/* The sessions of node_id (NULL: all) have something to send. */
void sessions_mark_node(struct sk_manager *m, const char *node_id);
/* Every session's network view may have changed: compare and send. */
void sessions_mark_networks(struct sk_manager *m);
/* Ends every session (agents then find the new leader). */
void sessions_end_all(struct sk_manager *m);

/* ---- the handlers (api.c, api_nodes.c, api_services.c, api_networks.c,
 * api_session.c) ---- */

void api_health(struct call *c);
void api_ca(struct call *c);
void api_join(struct call *c);
void api_cluster(struct call *c);
void api_managers(struct call *c);
void api_tokens(struct call *c);
void api_tokens_rotate(struct call *c);
void api_nodes(struct call *c);
void api_node_get(struct call *c);
void api_node_update(struct call *c);
void api_node_promote(struct call *c);
void api_node_demote(struct call *c);
void api_node_remove(struct call *c);
void api_self_heartbeat(struct call *c);
void api_self_certificate(struct call *c);
void api_self_leave(struct call *c);
void api_self_assignments(struct call *c);
void api_self_status(struct call *c);
void api_services(struct call *c);
void api_service_create(struct call *c);
void api_service_get(struct call *c);
void api_service_update(struct call *c);
void api_service_remove(struct call *c);
void api_service_rollback(struct call *c);
void api_service_logs(struct call *c);
void api_tasks(struct call *c);
void api_networks(struct call *c);
void api_network_create(struct call *c);
void api_network_get(struct call *c);
void api_network_remove(struct call *c);
/* Agent endpoints, served by the local agent (see sk_manager_config). */
void api_agent(struct call *c);
void api_events(struct call *c);
void api_metrics(struct call *c);

#endif
