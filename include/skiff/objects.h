/* skiff's API objects: cluster, node, service, task, network, secret,
 * config.
 *
 * Every object starts with `struct sk_meta`: its ID (random base32), its
 * version (the Raft index of its last change), and created/updated times
 * (ms since the epoch, stamped by the leader into the Raft entry, so every
 * manager agrees). What the user asked for is the `spec`; what the system
 * observed is the `status`. Names live in the spec and are unique within
 * their kind.
 *
 * Each kind has a schema (skiff/schema.h) for the JSON codec; the same JSON
 * is used by the API, the Raft log and snapshots (the API uses the public
 * view, which leaves out keys, token hashes and secret values).
 *
 * Defaults follow Docker Swarm mode where the concept is the same (restart
 * delay, update parallelism, task history), and are safer or faster where
 * DESIGN.md says so (heartbeat period, no-new-privileges). */
#ifndef SKIFF_OBJECTS_H
#define SKIFF_OBJECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skiff/err.h"
#include "skiff/id.h"
#include "skiff/schema.h"

enum sk_kind {
    SK_KIND_CLUSTER,
    SK_KIND_NODE,
    SK_KIND_SERVICE,
    SK_KIND_TASK,
    SK_KIND_NETWORK,
    SK_KIND_SECRET,
    SK_KIND_CONFIG,
    SK_KIND_COUNT
};

struct sk_meta {
    char id[SK_ID_SIZE];
    uint64_t version;
    int64_t created_at;
    int64_t updated_at;
};

/* ---- cluster ---- */

#define SK_DEFAULT_HEARTBEAT_MS 1000
#define SK_DEFAULT_TASK_HISTORY 5

struct sk_cluster_spec {
    char *name;
    int64_t heartbeat_period_ms; /* agents' heartbeat; down after 3 missed */
    int64_t cert_expiry_ms;      /* node certificate lifetime */
    int64_t task_history_limit;  /* finished tasks kept per slot */
    int64_t snapshot_interval;   /* Raft entries between snapshots */
    bool require_non_root;       /* policy: tasks must set a non-root user */
    bool forbid_privileged;      /* policy: no privileged containers */
    bool require_image_digest;   /* policy: images pinned by digest */
    char *default_addr_pool;     /* overlay subnets come from here */
    int64_t default_addr_pool_mask_len; /* ... in subnets of this size */
};

/* Never leaves the managers (SK_FF_SECRET). */
struct sk_cluster_keys {
    char *ca_key_sealed;     /* CA private key, sealed with the data key */
    char *worker_token_hash; /* SHA-256 hex of the worker token secret */
    char *manager_token_hash;
    char *worker_token_sealed;  /* the tokens themselves, sealed, so that */
    char *manager_token_sealed; /* `join-token` can show them again */
};

struct sk_cluster {
    struct sk_meta meta; /* meta.id is the cluster ID */
    struct sk_cluster_spec spec;
    char *ca_cert_pem;
    char *ca_digest; /* base32 SHA-256 of the CA certificate */
    struct sk_cluster_keys keys;
};

/* ---- node ---- */

/* An address on an overlay network (of a task, or of a node itself). */
struct sk_net_attachment {
    char network_id[SK_ID_SIZE];
    char **addresses; /* "10.0.1.5/24" */
    size_t n_addresses;
};

enum sk_node_role { SK_ROLE_WORKER, SK_ROLE_MANAGER };
enum sk_availability { SK_AVAIL_ACTIVE, SK_AVAIL_PAUSE, SK_AVAIL_DRAIN };
enum sk_node_state {
    SK_NODE_UNKNOWN, /* no heartbeat seen by this leader yet */
    SK_NODE_DOWN,    /* missed its heartbeats */
    SK_NODE_READY,
    SK_NODE_DISCONNECTED, /* left on purpose (agent stopped) */
};

struct sk_node_spec {
    char *name; /* unique; defaults to the host name */
    int role;   /* enum sk_node_role: the desired role */
    int availability;
    struct sk_kv *labels;
    size_t n_labels;
};

/* What the node reported about itself when it joined or reconnected. */
struct sk_node_description {
    char *hostname;
    char *addr;      /* control plane (advertise) address */
    char *data_addr; /* data plane address */
    int64_t nano_cpus;
    int64_t memory_bytes;
    char *engine_version; /* dockerd's */
    char *skiff_version;
    char *agent_addr; /* "ip:port" where managers reach its agent (logs) */
};

struct sk_node_status {
    int state; /* enum sk_node_state */
    char *message;
    int64_t state_changed_at;
    int64_t cert_not_after; /* expiry of the node's current certificate */
    /* The node's current certificate, as the CA issued it (in the same
     * Raft entry as the issue): only this one is honoured, so a role
     * change or a removal revokes the one before everywhere at once. NULL
     * for a node recorded before serials were (its role alone counts). */
    char *cert_serial;       /* lower-case hex, as sk_cert_info.serial */
    int64_t cert_not_before; /* its notBefore: orders certificates */
    /* After a renewal that kept the role, the certificate it replaced
     * still works until prev_cert_until (wall clock, ms), so that calls
     * already under way when the renewal commits do not fail. */
    char *prev_cert_serial;
    int64_t prev_cert_until;
};

/* Set for managers: the node's Raft identity and where its API listens
 * (followers forward writes there when it leads). */
struct sk_node_manager {
    uint64_t raft_id;
    char *raft_addr; /* "10.77.0.11:7444" */
    char *api_addr;  /* "10.77.0.11:7443" */
};

struct sk_node {
    struct sk_meta meta;
    struct sk_node_spec spec;
    struct sk_node_description description;
    struct sk_node_status status;
    struct sk_node_manager manager;
    /* The node's own address on each overlay network it runs tasks on
     * (skiff/allocator.h). */
    struct sk_net_attachment *networks;
    size_t n_networks;
};

/* ---- services and tasks ---- */

enum sk_service_mode { SK_MODE_REPLICATED, SK_MODE_GLOBAL };
enum sk_restart_condition {
    SK_RESTART_ANY,
    SK_RESTART_ON_FAILURE,
    SK_RESTART_NONE
};
enum sk_failure_action {
    SK_FAILURE_PAUSE,
    SK_FAILURE_CONTINUE,
    SK_FAILURE_ROLLBACK
};
enum sk_update_order { SK_ORDER_STOP_FIRST, SK_ORDER_START_FIRST };
enum sk_port_protocol { SK_PROTO_TCP, SK_PROTO_UDP };
enum sk_port_mode { SK_PORT_HOST, SK_PORT_INGRESS };
enum sk_endpoint_mode { SK_ENDPOINT_VIP, SK_ENDPOINT_DNSRR };

struct sk_healthcheck {
    char **test; /* ["CMD", ...], ["CMD-SHELL", "..."] or ["NONE"] */
    size_t n_test;
    int64_t interval_ms;
    int64_t timeout_ms;
    int64_t retries;
    int64_t start_period_ms;
};

/* A secret or config made available to a task as a file. */
struct sk_file_ref {
    char *name;          /* the secret's or config's name */
    char id[SK_ID_SIZE]; /* resolved by the manager at create/update */
    char *target;        /* file name under /run/secrets (secrets) or a path */
    int64_t uid;
    int64_t gid;
    int64_t mode;
};

struct sk_container_spec {
    char *image;
    char **command; /* arguments (docker run IMAGE CMD...) */
    size_t n_command;
    char **entrypoint;
    size_t n_entrypoint;
    char **env; /* "KEY=value" */
    size_t n_env;
    char *workdir;
    char *user;
    char *hostname;
    struct sk_kv *labels;
    size_t n_labels;
    bool init;      /* run an init as PID 1 (forwards SIGTERM) */
    bool read_only; /* read-only root file system */
    bool privileged;
    char **cap_add;
    size_t n_cap_add;
    char **cap_drop;
    size_t n_cap_drop;
    int64_t stop_grace_ms;
    char *stop_signal;
    struct sk_healthcheck *healthcheck; /* optional */
    struct sk_file_ref *secrets;
    size_t n_secrets;
    struct sk_file_ref *configs;
    size_t n_configs;
};

struct sk_resources {
    int64_t nano_cpus;
    int64_t memory_bytes;
};

struct sk_restart_policy {
    int condition; /* enum sk_restart_condition */
    int64_t delay_ms;
    int64_t max_attempts; /* 0: unlimited */
    int64_t window_ms;    /* 0: attempts count for ever */
};

struct sk_placement {
    char **constraints; /* "node.labels.zone==eu" */
    size_t n_constraints;
    char **preferences; /* "spread=node.labels.zone" */
    size_t n_preferences;
    int64_t max_replicas; /* per node; 0: unlimited */
};

struct sk_network_ref {
    char *target;        /* network name or ID as the user gave it */
    char id[SK_ID_SIZE]; /* resolved by the manager */
    char **aliases;
    size_t n_aliases;
};

struct sk_task_spec {
    struct sk_container_spec container;
    struct sk_resources limits;
    struct sk_resources reservations;
    struct sk_restart_policy restart;
    struct sk_placement placement;
    struct sk_network_ref *networks;
    size_t n_networks;
    int64_t force_update; /* bumped by `service update --force` */
};

struct sk_update_config {
    int64_t parallelism; /* 0: all at once */
    int64_t delay_ms;
    int failure_action; /* enum sk_failure_action */
    int64_t monitor_ms;
    double max_failure_ratio;
    int order; /* enum sk_update_order */
};

struct sk_port {
    int protocol; /* enum sk_port_protocol */
    int64_t target;
    int64_t published;
    int mode; /* enum sk_port_mode */
};

struct sk_endpoint_spec {
    int mode; /* enum sk_endpoint_mode */
    struct sk_port *ports;
    size_t n_ports;
};

struct sk_service_spec {
    char *name;
    struct sk_kv *labels;
    size_t n_labels;
    int mode; /* enum sk_service_mode */
    int64_t replicas;
    struct sk_task_spec task;
    struct sk_update_config update;
    struct sk_update_config rollback;
    struct sk_endpoint_spec endpoint;
};

enum sk_update_state {
    SK_UPDATE_NONE,
    SK_UPDATE_UPDATING,
    SK_UPDATE_PAUSED,
    SK_UPDATE_COMPLETED,
    SK_UPDATE_ROLLBACK_STARTED,
    SK_UPDATE_ROLLBACK_PAUSED,
    SK_UPDATE_ROLLBACK_COMPLETED,
};

struct sk_update_status {
    int state; /* enum sk_update_state */
    int64_t started_at;
    int64_t completed_at;
    char *message;
};

struct sk_vip {
    char network_id[SK_ID_SIZE];
    char *addr; /* "10.0.1.2/24" */
};

struct sk_service {
    struct sk_meta meta;
    struct sk_service_spec spec;
    /* Bumped on every spec change: tasks record the one they were made
     * from, so the orchestrator can tell outdated tasks. */
    int64_t spec_version;
    struct sk_service_spec *previous_spec; /* for rollback; optional */
    struct sk_update_status update_status;
    struct sk_vip *vips;
    size_t n_vips;
};

enum sk_task_state {
    SK_TASK_NEW,
    SK_TASK_PENDING,  /* waiting for the scheduler */
    SK_TASK_ASSIGNED, /* placed on a node */
    SK_TASK_ACCEPTED, /* the agent has it */
    SK_TASK_PREPARING,
    SK_TASK_STARTING,
    SK_TASK_RUNNING,
    SK_TASK_COMPLETE, /* exited 0 */
    SK_TASK_SHUTDOWN, /* stopped on request */
    SK_TASK_FAILED,
    SK_TASK_REJECTED, /* could not be started (e.g. image missing) */
    SK_TASK_REMOVE,   /* desired only: stop and delete */
    SK_TASK_ORPHANED, /* its node is gone */
    SK_TASK_STATE_COUNT
};

struct sk_task_status {
    int state; /* enum sk_task_state */
    int64_t timestamp;
    int64_t started_at; /* when it began running; 0: it never did */
    char *message;      /* what happened, or why a task is pending */
    char *err;          /* the failure, if any */
    int64_t exit_code;
    char *container_id;
    bool healthy; /* passed its health check (or has none) */
};

struct sk_task {
    struct sk_meta meta;
    char service_id[SK_ID_SIZE];
    int64_t slot; /* replicated: 1..N; global: 0 */
    /* Counts the tasks of the slot (or node, for global services): the
     * newest has the highest. Creation times can tie; this cannot. */
    int64_t generation;
    char node_id[SK_ID_SIZE]; /* "" until assigned (global: from birth) */
    int64_t spec_version;     /* the service spec_version it was made from */
    struct sk_task_spec spec;
    int desired_state; /* enum sk_task_state: RUNNING, SHUTDOWN, REMOVE */
    struct sk_task_status status;
    struct sk_net_attachment *networks;
    size_t n_networks;
    /* Restart bookkeeping for the slot: attempts so far and when the
     * current window began. */
    int64_t restart_attempts;
    int64_t restart_window_start;
    int64_t not_before; /* restart delay: do not start before this time */
};

/* ---- networks, secrets, configs ---- */

struct sk_network_spec {
    char *name;
    struct sk_kv *labels;
    size_t n_labels;
    char *driver; /* "overlay" */
    char *subnet; /* CIDR, optional: allocated when absent */
    char *gateway;
    bool attachable;
    bool internal;
};

struct sk_network {
    struct sk_meta meta;
    struct sk_network_spec spec;
    int64_t vni;
    char *subnet; /* allocated */
    char *gateway;
};

struct sk_secret_spec {
    char *name;
    struct sk_kv *labels;
    size_t n_labels;
    char *data; /* base64; sealed with the data key in the store */
};

struct sk_secret {
    struct sk_meta meta;
    struct sk_secret_spec spec;
    int64_t size; /* bytes of the plain value */
};

struct sk_config {
    struct sk_meta meta;
    struct sk_secret_spec spec; /* same shape; data is not secret */
    int64_t size;
};

/* ---- the kinds table ---- */

#define SK_MAX_SECRET_BYTES (500 * 1024)
#define SK_MAX_CONFIG_BYTES (1000 * 1024)
#define SK_MAX_REPLICAS 100000
#define SK_MAX_LABELS 64

extern const struct sk_schema sk_cluster_schema;
extern const struct sk_schema sk_cluster_spec_schema;
extern const struct sk_schema sk_node_schema;
extern const struct sk_schema sk_node_spec_schema;
extern const struct sk_schema sk_node_description_schema;
extern const struct sk_schema sk_node_manager_schema;
extern const struct sk_schema sk_service_schema;
extern const struct sk_schema sk_service_spec_schema;
extern const struct sk_schema sk_task_spec_schema;
extern const struct sk_schema sk_healthcheck_schema;
extern const struct sk_schema sk_endpoint_spec_schema;
extern const struct sk_schema sk_port_schema;
extern const struct sk_schema sk_network_ref_schema;
extern const struct sk_schema sk_task_schema;
extern const struct sk_schema sk_network_schema;
extern const struct sk_schema sk_network_spec_schema;
extern const struct sk_schema sk_secret_schema;
extern const struct sk_schema sk_secret_spec_schema;
extern const struct sk_schema sk_config_schema;

extern const char *const sk_node_role_names[];
extern const char *const sk_availability_names[];
extern const char *const sk_node_state_names[];
extern const char *const sk_task_state_names[];
extern const char *const sk_service_mode_names[];
extern const char *const sk_restart_condition_names[];
extern const char *const sk_failure_action_names[];
extern const char *const sk_update_order_names[];
extern const char *const sk_port_protocol_names[];
extern const char *const sk_port_mode_names[];
extern const char *const sk_endpoint_mode_names[];

/* "cluster", "node", ...; NULL for an out-of-range kind. */
const char *sk_kind_name(enum sk_kind kind);
/* Plural for URLs and messages: "clusters", "nodes", ... */
const char *sk_kind_plural(enum sk_kind kind);
bool sk_kind_parse(const char *name, enum sk_kind *out_kind);
/* The full object schema of a kind. */
const struct sk_schema *sk_kind_schema(enum sk_kind kind);
/* The object's unique name, or NULL for kinds without one (task). */
const char *sk_object_name(enum sk_kind kind, const void *obj);

/* Allocates a zeroed object of the kind; frees one with all it owns. */
void *sk_object_new(enum sk_kind kind);
void sk_object_free(enum sk_kind kind, void *obj);
void *sk_object_dup(enum sk_kind kind, const void *obj);

/* Task states in order: a task only moves forward. */
const char *sk_task_state_name(int state);
bool sk_task_state_terminal(int state); /* complete and beyond */

/* Starts a rollback of s (which must have a previous_spec): the previous
 * task spec comes back and the current one becomes the previous; a new
 * spec_version; update status rollback_started at now, with message (taken
 * over). The orchestrator then replaces tasks under the rollback settings. */
void sk_service_roll_back(struct sk_service *s, int64_t now, char *message);
/* What the update status says once the update or rollback st describes
 * completed (heap): "update completed", "rollback completed", and for a
 * rollback the orchestrator started on failures its cause, kept:
 * "rolled back: 1 of 4 tasks failed; task web.3 failed: ...". */
char *sk_update_done_message(const struct sk_update_status *st);

/* ---- validation of what users send ---- */

/* Checks a decoded spec beyond what the schema can (names, consistency,
 * constraint syntax, port ranges). Errors name the field. */
enum sk_rc sk_service_spec_validate(const struct sk_service_spec *spec,
                                    struct sk_err *err);
enum sk_rc sk_node_spec_validate(const struct sk_node_spec *spec,
                                 struct sk_err *err);
enum sk_rc sk_cluster_spec_validate(const struct sk_cluster_spec *spec,
                                    struct sk_err *err);
/* A network spec as users send it: a name, driver "overlay" (the only
 * one), label keys, no gateway without a subnet. The subnet and gateway
 * themselves are checked when the network is allocated
 * (skiff/allocator.h). */
enum sk_rc sk_network_spec_validate(const struct sk_network_spec *spec,
                                    struct sk_err *err);
/* The cluster's policy for what tasks may run (DESIGN.md, Security model),
 * checked when a service is created or updated: forbid_privileged refuses
 * privileged containers; require_non_root refuses a spec whose user is
 * unset (the image's, root for most), "root" or UID 0, with any group
 * ("root:root", "0:0"); require_image_digest wants the image pinned as
 * NAME@sha256:<64 lower-case hex digits>. Errors (SK_EINVAL) name the
 * service and the rule. Pure. */
enum sk_rc sk_service_spec_check_policy(const struct sk_cluster_spec *policy,
                                        const struct sk_service_spec *spec,
                                        struct sk_err *err);
/* A port as users type it: "P:T[/udp]" (host mode), or the port object's
 * fields as "mode=host,published=P,target=T[,protocol=udp]" (protocol tcp
 * and mode host by default). The error names the text, prefixed with what
 * (e.g. "--publish"). */
enum sk_rc sk_port_parse(const char *what, const char *text,
                         struct sk_port *out_port, struct sk_err *err);
/* A service's network as users type it: "NAME" (or ID), or the
 * reference's fields as "name=NAME,alias=ALIAS[,alias=ALIAS2]" (as docker
 * service create --network); names and aliases are checked as names. The
 * error names the text, prefixed with what (e.g. "--network"). */
enum sk_rc sk_network_ref_parse(const char *what, const char *text,
                                struct sk_network_ref *out_ref,
                                struct sk_err *err);
/* Object names: 1-63 characters, [a-zA-Z0-9][a-zA-Z0-9_.-]*. */
enum sk_rc sk_name_validate(const char *what, const char *name,
                            struct sk_err *err);

#endif
