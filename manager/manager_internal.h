/* Private to manager/: the manager's state, shared by manager.c (runtime,
 * routing, forwarding, leader loops) and api.c (the request handlers). */
#ifndef SKIFF_MANAGER_INTERNAL_H
#define SKIFF_MANAGER_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "skiff/dispatcher.h"
#include "skiff/events.h"
#include "skiff/http.h"
#include "skiff/http_client.h"
#include "skiff/manager.h"
#include "skiff/raft_node.h"
#include "skiff/store.h"
#include "skiff/stream.h"
#include "skiff/tls.h"
#include "skiff/wire.h"

struct sk_manager {
    uv_loop_t *loop;
    struct sk_manager_config cfg; /* strings below are our copies */
    char *raft_dir, *node_id, *cluster_id, *listen_addr, *api_addr, *raft_addr,
        *ca_pem, *cert_pem, *key_pem, *init_command;
    unsigned char data_key[SK_DATA_KEY_SIZE];

    struct sk_store *store;
    struct sk_events *events;
    struct sk_dispatcher dispatcher;
    unsigned watch_id;

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
    uv_timer_t tick;
    bool tick_inited;

    /* Leader state (valid while `leader`). */
    bool leader;
    int64_t leader_since;
    bool init_inflight, change_inflight;
    bool forced_cleanup_done, forced_cleanup_inflight;
    uint64_t last_liveness_ms; /* uv_now of the last liveness check */
    struct sk_raft_change change;
    /* The leader loops write one proposal at a time, each computed from
     * the latest state, so they never conflict with each other. */
    bool loop_inflight;
    /* Node state changes in the loop's proposal, logged once it commits
     * (a conflict re-proposes them). */
    struct sk_node_change *loop_changes;
    size_t n_loop_changes;
    unsigned next_producer;
    bool orch_dirty, sched_dirty;
    int64_t orch_wake_ms;     /* wall clock; 0: none */
    struct sk_map reports;    /* task id -> struct task_report (pending) */
    struct session *sessions; /* agents' assignment streams */
    struct forward *forwards; /* calls forwarded to the leader, in flight */
    uint64_t last_ping_ms;

    /* Counters for /metrics. */
    uint64_t requests, forwarded, refused;

    bool stopping;
    unsigned closes_pending;
    void (*stop_cb)(void *ctx);
    void *stop_ctx;
};

/* A task status reported by an agent, waiting to be written. */
struct task_report {
    char node_id[SK_ID_SIZE]; /* the node that reported it */
    struct sk_task_report report;
};
void task_report_free(struct task_report *r);

struct call;

/* An agent's assignment stream: the tasks of its node, full then changes. */
struct session {
    struct sk_manager *m;
    struct call *c;
    char node_id[SK_ID_SIZE];
    struct sk_map sent; /* task id -> version sent (as pointer) */
    bool dirty, ended;
    struct session *prev, *next;
};
void session_flush(struct session *s);
void session_end(struct session *s);

enum principal_kind { WHO_NONE, WHO_NODE, WHO_ADMIN };

struct principal {
    enum principal_kind kind;
    char node_id[64]; /* WHO_NODE */
    char role[16];    /* certificate role, or "forwarded" */
};

/* One API call in progress: the request, who made it, path parameters.
 * Every call ends in exactly one of call_json / call_error / call_raw,
 * which respond and free it. */
struct call {
    struct sk_manager *m;
    struct sk_http_req *req;
    struct principal who;
    char param[2][128];
    json_t *body; /* parsed JSON body, or NULL */
};

/* Hands the request on to someone else who will finish it; frees only the
 * call. */
void call_handoff(struct call *c);
/* Responding (each frees the call). */
void call_json(struct call *c, int status, json_t *body);
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
/* Responds to the call with 200 and `reply` once t commits, or with the
 * error. reply may be NULL ({"ok":true}). */
void call_propose(struct call *c, struct sk_txn *t, json_t *reply);

int64_t mgr_now_ms(void);
/* The leader's node object, or NULL. */
const struct sk_node *mgr_leader_node(const struct sk_manager *m);
/* JSON array of every manager's API address. */
json_t *mgr_manager_addrs(const struct sk_manager *m);
/* A node as the API shows it: public fields plus manager status. */
json_t *mgr_node_json(const struct sk_manager *m, const struct sk_node *n);
/* Wakes the leader loops soon (after a change that may need action). */
void mgr_kick(struct sk_manager *m);

/* ---- handlers (api.c) ---- */

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
/* Agent endpoints, served by the local agent (see sk_manager_config). */
void api_agent(struct call *c);
void api_events(struct call *c);
void api_metrics(struct call *c);

#endif
