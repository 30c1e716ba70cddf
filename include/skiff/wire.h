/* The agent <-> manager protocol, as objects of the one schema codec
 * (skiff/schema.h), so that each message is encoded in one place and
 * decoded, strictly, in one place on each side:
 *
 *   join          POST /v1/join            struct sk_join_body
 *   heartbeat     POST /v1/node/heartbeat  struct sk_heartbeat
 *   session       GET /v1/node/assignments JSON lines of sk_session_msg
 *   task reports  POST /v1/node/status     struct sk_task_reports
 *
 * What a node says about itself is one `struct sk_node_description`
 * (skiff/objects.h) wherever it travels: in the join body, in every
 * heartbeat, and in the daemon's and the agent's configuration.
 *
 * An assignment is a task plus what the node needs to run it and cannot
 * read from the task alone (the service's name and published ports; the
 * networks, secrets, configs and mounts it uses will join here). The leader
 * builds it from the store; the agent gets nothing else.
 *
 * A task report is what an agent observed of one of its tasks. The leader
 * records it only for a task assigned to the reporting node, and only if it
 * moves the task forward.
 *
 * Decoders are strict (unknown fields, wrong types, values out of range
 * are errors that name the field) and every list is capped. Pure. */
#ifndef SKIFF_WIRE_H
#define SKIFF_WIRE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skiff/err.h"
#include "skiff/objects.h"
#include "skiff/schema.h"

/* Caps on one message. */
#define SK_MAX_REPORTS 5000
#define SK_MAX_ASSIGNMENTS 10000

/* ---- joining ---- */

struct sk_join_body {
    char *token;
    char *csr;                              /* PEM */
    struct sk_node_description description; /* hostname becomes the name */
    char *api_addr;  /* a manager's "ip:port" of its API */
    char *raft_addr; /* a manager's "ip:port" of its Raft listener */
};

/* ---- heartbeats ---- */

struct sk_heartbeat {
    struct sk_node_description description;
};

/* ---- the session: assignments ---- */

struct sk_assignment {
    struct sk_task task;
    /* NULL once the service is gone (its tasks are then on their way
     * out, desired state remove). */
    char *service_name;
    struct sk_port *ports; /* the service's published ports */
    size_t n_ports;
};

/* ---- the session: the node's view of its overlay networks ---- */

/* Another node's part of a network: where its VXLAN ends (its data-path
 * address) and the addresses behind it (its tasks' and its own). */
struct sk_net_peer {
    char node_id[SK_ID_SIZE];
    char *vtep;
    char **addrs; /* "a.b.c.d" */
    size_t n_addrs;
};

/* A service attached to a network, as DNS and VIPs need it. */
struct sk_net_service {
    char service_id[SK_ID_SIZE];
    char *name;
    char **aliases;
    size_t n_aliases;
    int endpoint_mode; /* enum sk_endpoint_mode */
    char *vip;         /* "a.b.c.d", vip mode */
    char **ready;      /* running (and healthy) tasks' addresses here */
    size_t n_ready;
};

/* One overlay network this node runs tasks on. */
struct sk_net_info {
    char id[SK_ID_SIZE];
    char *name;
    int64_t vni;
    char *subnet;    /* "10.0.1.0/24" */
    char *gateway;   /* the network's gateway, on every node's bridge */
    char *node_addr; /* this node's own address there, once allocated */
    bool internal;
    struct sk_net_peer *peers;
    size_t n_peers;
    struct sk_net_service *services;
    size_t n_services;
};

enum sk_session_msg_type {
    SK_SESSION_ASSIGNMENTS,
    SK_SESSION_PING,     /* the leader is alive; nothing changed */
    SK_SESSION_NETWORKS, /* `networks` is the whole overlay view */
};

struct sk_session_msg {
    int type;  /* enum sk_session_msg_type */
    bool full; /* tasks is everything the node should run */
    struct sk_assignment *tasks;
    size_t n_tasks;
    char **removed; /* task IDs the node should forget (not with full) */
    size_t n_removed;
    struct sk_net_info *networks; /* type networks */
    size_t n_networks;
};

/* ---- task reports ---- */

enum sk_task_health {
    SK_HEALTH_NONE,     /* the task has no health check */
    SK_HEALTH_STARTING, /* checked, no verdict yet */
    SK_HEALTH_HEALTHY,
    SK_HEALTH_UNHEALTHY,
};

struct sk_task_report {
    char id[SK_ID_SIZE];
    int state;         /* enum sk_task_state, accepted and beyond, not remove */
    int health;        /* enum sk_task_health */
    int64_t timestamp; /* ms since the epoch, on the agent's clock */
    int64_t exit_code;
    char *message;
    char *err;
    char *container_id;
};

struct sk_task_reports {
    struct sk_task_report *tasks;
    size_t n_tasks;
};

extern const struct sk_schema sk_join_body_schema;
extern const struct sk_schema sk_heartbeat_schema;
extern const struct sk_schema sk_assignment_schema;
extern const struct sk_schema sk_session_msg_schema;
extern const struct sk_schema sk_net_info_schema;
extern const struct sk_schema sk_task_report_schema;
extern const struct sk_schema sk_task_reports_schema;

extern const char *const sk_task_health_names[];

/* Decodes a JSON text into out (zeroed first) with the schema; errors name
 * the field, or say where the text is not JSON. On error out owns
 * nothing. */
enum sk_rc sk_wire_decode(const struct sk_schema *schema, const char *text,
                          size_t len, void *out, struct sk_err *err);
/* Encodes obj as compact JSON text (heap, free()); with `line`, ends it
 * with a newline (session messages are JSON lines). */
char *sk_wire_encode(const struct sk_schema *schema, const void *obj, bool line,
                     size_t *out_len);

/* Checks what the schema cannot: a report names a task by a valid ID and a
 * state an agent may report (accepted .. rejected). */
enum sk_rc sk_task_report_validate(const struct sk_task_report *r,
                                   struct sk_err *err);

#endif
