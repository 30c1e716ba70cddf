#include "skiff/objects.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/constraint.h"
#include "skiff/ipv4.h"
#include "skiff/mem.h"
#include "skiff/parse.h"
#include "fields.h"

#define MS_MAX (10LL * 365 * 24 * 3600 * 1000)
#define BYTES_MAX (1LL << 50)
#define NANO_CPUS_MAX (4096LL * 1000000000LL)
#define NAME_MAX_LEN 63

const char *const sk_node_role_names[] = {"worker", "manager", NULL};
const char *const sk_availability_names[] = {"active", "pause", "drain", NULL};
const char *const sk_node_state_names[] = {"unknown", "down", "ready",
                                           "disconnected", NULL};
const char *const sk_task_state_names[] = {
    "new",      "pending", "assigned", "accepted", "preparing",
    "starting", "running", "complete", "shutdown", "failed",
    "rejected", "remove",  "orphaned", NULL};
const char *const sk_service_mode_names[] = {"replicated", "global", NULL};
const char *const sk_restart_condition_names[] = {"any", "on-failure", "none",
                                                  NULL};
const char *const sk_failure_action_names[] = {"pause", "continue", "rollback",
                                               NULL};
const char *const sk_update_order_names[] = {"stop-first", "start-first", NULL};
const char *const sk_port_protocol_names[] = {"tcp", "udp", NULL};
const char *const sk_port_mode_names[] = {"host", "ingress", NULL};
const char *const sk_endpoint_mode_names[] = {"vip", "dnsrr", NULL};
static const char *const update_state_names[] = {"none",
                                                 "updating",
                                                 "paused",
                                                 "completed",
                                                 "rollback_started",
                                                 "rollback_paused",
                                                 "rollback_completed",
                                                 NULL};

/* ---- meta, shared by every kind ---- */

#define META_FIELD(S, m, jname, t)                                             \
    {                                                                          \
        .name = jname, .type = (t), .offset = offsetof(S, meta.m)              \
    }
#define META_FIELDS(S)                                                         \
    META_FIELD(S, id, "id", SK_FT_ID),                                         \
        META_FIELD(S, version, "version", SK_FT_UINT),                         \
        META_FIELD(S, created_at, "created_at", SK_FT_INT),                    \
        META_FIELD(S, updated_at, "updated_at", SK_FT_INT)

/* ---- cluster ---- */

static const struct sk_field cluster_spec_fields[] = {
    STR(struct sk_cluster_spec, name, .def_str = "default",
        .max_len = NAME_MAX_LEN),
    INT(struct sk_cluster_spec, heartbeat_period_ms, .min = 100, .max = 60000,
        .def = SK_DEFAULT_HEARTBEAT_MS),
    INT(struct sk_cluster_spec, cert_expiry_ms, .min = 60000, .max = MS_MAX,
        .def = 90LL * 24 * 3600 * 1000),
    INT(struct sk_cluster_spec, task_history_limit, .min = 0, .max = 100,
        .def = SK_DEFAULT_TASK_HISTORY),
    INT(struct sk_cluster_spec, snapshot_interval, .min = 16, .max = 1000000,
        .def = 1024),
    BOOL(struct sk_cluster_spec, require_non_root),
    BOOL(struct sk_cluster_spec, forbid_privileged, .def = 1),
    BOOL(struct sk_cluster_spec, require_image_digest),
    STR(struct sk_cluster_spec, default_addr_pool, .def_str = "10.0.0.0/8",
        .max_len = 18),
    INT(struct sk_cluster_spec, default_addr_pool_mask_len, .min = 16,
        .max = 29, .def = 24),
};
SCHEMA(sk_cluster_spec_schema, struct sk_cluster_spec, "cluster spec",
       cluster_spec_fields);

static const struct sk_field cluster_keys_fields[] = {
    STR(struct sk_cluster_keys, ca_key_sealed),
    STR(struct sk_cluster_keys, worker_token_hash),
    STR(struct sk_cluster_keys, manager_token_hash),
    STR(struct sk_cluster_keys, worker_token_sealed),
    STR(struct sk_cluster_keys, manager_token_sealed),
};
static SCHEMA(cluster_keys_schema, struct sk_cluster_keys, "cluster keys",
              cluster_keys_fields);

static const struct sk_field cluster_fields[] = {
    META_FIELDS(struct sk_cluster),
    OBJ(struct sk_cluster, spec, sk_cluster_spec_schema),
    STR(struct sk_cluster, ca_cert_pem, .max_len = 16384),
    STR(struct sk_cluster, ca_digest, .max_len = 64),
    OBJ(struct sk_cluster, keys, cluster_keys_schema, .flags = SK_FF_SECRET),
};
SCHEMA(sk_cluster_schema, struct sk_cluster, "cluster", cluster_fields);

/* ---- node ---- */

static const struct sk_field node_spec_fields[] = {
    STR(struct sk_node_spec, name, .max_len = NAME_MAX_LEN),
    ENUM(struct sk_node_spec, role, sk_node_role_names),
    ENUM(struct sk_node_spec, availability, sk_availability_names),
    MAP(struct sk_node_spec, labels, .max_len = SK_MAX_LABELS),
};
SCHEMA(sk_node_spec_schema, struct sk_node_spec, "node spec", node_spec_fields);

static const struct sk_field node_description_fields[] = {
    STR(struct sk_node_description, hostname, .max_len = 255),
    STR(struct sk_node_description, addr, .max_len = 64),
    STR(struct sk_node_description, data_addr, .max_len = 64),
    INT(struct sk_node_description, nano_cpus, .min = 0, .max = NANO_CPUS_MAX),
    INT(struct sk_node_description, memory_bytes, .min = 0, .max = BYTES_MAX),
    STR(struct sk_node_description, engine_version, .max_len = 64),
    STR(struct sk_node_description, skiff_version, .max_len = 64),
    STR(struct sk_node_description, agent_addr, .max_len = 64),
};
SCHEMA(sk_node_description_schema, struct sk_node_description,
       "node description", node_description_fields);

static const struct sk_field node_status_fields[] = {
    ENUM(struct sk_node_status, state, sk_node_state_names),
    STR(struct sk_node_status, message),
    INT(struct sk_node_status, state_changed_at),
    INT(struct sk_node_status, cert_not_after),
    STR(struct sk_node_status, cert_serial, .max_len = 64),
    INT(struct sk_node_status, cert_not_before),
    STR(struct sk_node_status, prev_cert_serial, .max_len = 64),
    INT(struct sk_node_status, prev_cert_until),
};
static SCHEMA(node_status_schema, struct sk_node_status, "node status",
              node_status_fields);

static const struct sk_field node_manager_fields[] = {
    UINT(struct sk_node_manager, raft_id),
    STR(struct sk_node_manager, raft_addr, .max_len = 64),
    STR(struct sk_node_manager, api_addr, .max_len = 64),
};
SCHEMA(sk_node_manager_schema, struct sk_node_manager, "node manager",
       node_manager_fields);

static const struct sk_field attachment_fields[] = {
    ID(struct sk_net_attachment, network_id),
    STRS(struct sk_net_attachment, addresses, .max_len = 8),
};
static SCHEMA(attachment_schema, struct sk_net_attachment, "network attachment",
              attachment_fields);

static const struct sk_field node_fields[] = {
    META_FIELDS(struct sk_node),
    OBJ(struct sk_node, spec, sk_node_spec_schema),
    OBJ(struct sk_node, description, sk_node_description_schema),
    OBJ(struct sk_node, status, node_status_schema),
    OBJ(struct sk_node, manager, sk_node_manager_schema),
    OBJS(struct sk_node, networks, attachment_schema, .max_len = 1024),
};
SCHEMA(sk_node_schema, struct sk_node, "node", node_fields);

/* ---- service ---- */

static const struct sk_field healthcheck_fields[] = {
    STRS(struct sk_healthcheck, test, .max_len = 64),
    INT(struct sk_healthcheck, interval_ms, .min = 0, .max = MS_MAX,
        .def = 30000),
    INT(struct sk_healthcheck, timeout_ms, .min = 0, .max = MS_MAX,
        .def = 30000),
    INT(struct sk_healthcheck, retries, .min = 0, .max = 1000, .def = 3),
    INT(struct sk_healthcheck, start_period_ms, .min = 0, .max = MS_MAX),
};
SCHEMA(sk_healthcheck_schema, struct sk_healthcheck, "health check",
       healthcheck_fields);

static const struct sk_field file_ref_fields[] = {
    STR(struct sk_file_ref, name, .max_len = NAME_MAX_LEN,
        .flags = SK_FF_REQUIRED),
    ID(struct sk_file_ref, id),
    STR(struct sk_file_ref, target, .max_len = 255),
    INT(struct sk_file_ref, uid, .min = 0, .max = 4294967295LL),
    INT(struct sk_file_ref, gid, .min = 0, .max = 4294967295LL),
    INT(struct sk_file_ref, mode, .min = 0, .max = 07777, .def = 0444),
};
static SCHEMA(file_ref_schema, struct sk_file_ref, "file reference",
              file_ref_fields);

static const struct sk_field container_fields[] = {
    STR(struct sk_container_spec, image, .max_len = 512,
        .flags = SK_FF_REQUIRED),
    STRS(struct sk_container_spec, command, .max_len = 256),
    STRS(struct sk_container_spec, entrypoint, .max_len = 64),
    STRS(struct sk_container_spec, env, .max_len = 256),
    STR(struct sk_container_spec, workdir, .max_len = 1024),
    STR(struct sk_container_spec, user, .max_len = 64),
    STR(struct sk_container_spec, hostname, .max_len = 255),
    MAP(struct sk_container_spec, labels, .max_len = SK_MAX_LABELS),
    BOOL(struct sk_container_spec, init),
    BOOL(struct sk_container_spec, read_only),
    BOOL(struct sk_container_spec, privileged),
    STRS(struct sk_container_spec, cap_add, .max_len = 64),
    STRS(struct sk_container_spec, cap_drop, .max_len = 64),
    INT(struct sk_container_spec, stop_grace_ms, .min = 0, .max = MS_MAX,
        .def = 10000),
    STR(struct sk_container_spec, stop_signal, .max_len = 16),
    PTR(struct sk_container_spec, healthcheck, sk_healthcheck_schema),
    OBJS(struct sk_container_spec, secrets, file_ref_schema, .max_len = 64),
    OBJS(struct sk_container_spec, configs, file_ref_schema, .max_len = 64),
};
static SCHEMA(container_schema, struct sk_container_spec, "container spec",
              container_fields);

static const struct sk_field resources_fields[] = {
    INT(struct sk_resources, nano_cpus, .min = 0, .max = NANO_CPUS_MAX),
    INT(struct sk_resources, memory_bytes, .min = 0, .max = BYTES_MAX),
};
static SCHEMA(resources_schema, struct sk_resources, "resources",
              resources_fields);

static const struct sk_field restart_fields[] = {
    ENUM(struct sk_restart_policy, condition, sk_restart_condition_names),
    INT(struct sk_restart_policy, delay_ms, .min = 0, .max = MS_MAX,
        .def = 5000),
    INT(struct sk_restart_policy, max_attempts, .min = 0, .max = 1000000),
    INT(struct sk_restart_policy, window_ms, .min = 0, .max = MS_MAX),
};
static SCHEMA(restart_schema, struct sk_restart_policy, "restart policy",
              restart_fields);

static const struct sk_field placement_fields[] = {
    STRS(struct sk_placement, constraints, .max_len = 32),
    STRS(struct sk_placement, preferences, .max_len = 8),
    INT(struct sk_placement, max_replicas, .min = 0, .max = SK_MAX_REPLICAS),
};
static SCHEMA(placement_schema, struct sk_placement, "placement",
              placement_fields);

static const struct sk_field network_ref_fields[] = {
    STR(struct sk_network_ref, target, .max_len = NAME_MAX_LEN,
        .flags = SK_FF_REQUIRED),
    ID(struct sk_network_ref, id),
    STRS(struct sk_network_ref, aliases, .max_len = 16),
};
SCHEMA(sk_network_ref_schema, struct sk_network_ref, "network reference",
       network_ref_fields);

static const struct sk_field task_spec_fields[] = {
    OBJ(struct sk_task_spec, container, container_schema,
        .flags = SK_FF_REQUIRED),
    OBJ(struct sk_task_spec, limits, resources_schema),
    OBJ(struct sk_task_spec, reservations, resources_schema),
    OBJ(struct sk_task_spec, restart, restart_schema),
    OBJ(struct sk_task_spec, placement, placement_schema),
    OBJS(struct sk_task_spec, networks, sk_network_ref_schema, .max_len = 16),
    INT(struct sk_task_spec, force_update, .min = 0, .max = INT64_MAX),
};
SCHEMA(sk_task_spec_schema, struct sk_task_spec, "task spec", task_spec_fields);

static const struct sk_field update_fields[] = {
    INT(struct sk_update_config, parallelism, .min = 0, .max = SK_MAX_REPLICAS,
        .def = 1),
    INT(struct sk_update_config, delay_ms, .min = 0, .max = MS_MAX),
    ENUM(struct sk_update_config, failure_action, sk_failure_action_names),
    INT(struct sk_update_config, monitor_ms, .min = 0, .max = MS_MAX,
        .def = 5000),
    DBL(struct sk_update_config, max_failure_ratio, .min = 0, .max = 1),
    ENUM(struct sk_update_config, order, sk_update_order_names),
};
static SCHEMA(update_schema, struct sk_update_config, "update config",
              update_fields);

static const struct sk_field port_fields[] = {
    ENUM(struct sk_port, protocol, sk_port_protocol_names),
    INT(struct sk_port, target, .min = 1, .max = 65535,
        .flags = SK_FF_REQUIRED),
    INT(struct sk_port, published, .min = 0, .max = 65535),
    ENUM(struct sk_port, mode, sk_port_mode_names),
};
SCHEMA(sk_port_schema, struct sk_port, "port", port_fields);

static const struct sk_field endpoint_fields[] = {
    ENUM(struct sk_endpoint_spec, mode, sk_endpoint_mode_names),
    OBJS(struct sk_endpoint_spec, ports, sk_port_schema, .max_len = 64),
};
SCHEMA(sk_endpoint_spec_schema, struct sk_endpoint_spec, "endpoint spec",
       endpoint_fields);

static const struct sk_field service_spec_fields[] = {
    STR(struct sk_service_spec, name, .max_len = NAME_MAX_LEN),
    MAP(struct sk_service_spec, labels, .max_len = SK_MAX_LABELS),
    ENUM(struct sk_service_spec, mode, sk_service_mode_names),
    INT(struct sk_service_spec, replicas, .min = 0, .max = SK_MAX_REPLICAS,
        .def = 1),
    OBJ(struct sk_service_spec, task, sk_task_spec_schema,
        .flags = SK_FF_REQUIRED),
    OBJ(struct sk_service_spec, update, update_schema),
    OBJ(struct sk_service_spec, rollback, update_schema),
    OBJ(struct sk_service_spec, endpoint, sk_endpoint_spec_schema),
};
SCHEMA(sk_service_spec_schema, struct sk_service_spec, "service spec",
       service_spec_fields);

static const struct sk_field update_status_fields[] = {
    ENUM(struct sk_update_status, state, update_state_names),
    INT(struct sk_update_status, started_at),
    INT(struct sk_update_status, completed_at),
    STR(struct sk_update_status, message),
};
static SCHEMA(update_status_schema, struct sk_update_status, "update status",
              update_status_fields);

static const struct sk_field vip_fields[] = {
    ID(struct sk_vip, network_id),
    STR(struct sk_vip, addr, .max_len = 64),
};
static SCHEMA(vip_schema, struct sk_vip, "virtual IP", vip_fields);

static const struct sk_field service_fields[] = {
    META_FIELDS(struct sk_service),
    OBJ(struct sk_service, spec, sk_service_spec_schema),
    INT(struct sk_service, spec_version, .min = 0, .max = INT64_MAX),
    PTR(struct sk_service, previous_spec, sk_service_spec_schema),
    OBJ(struct sk_service, update_status, update_status_schema),
    OBJS(struct sk_service, vips, vip_schema, .max_len = 16),
};
SCHEMA(sk_service_schema, struct sk_service, "service", service_fields);

/* ---- task ---- */

static const struct sk_field task_status_fields[] = {
    ENUM(struct sk_task_status, state, sk_task_state_names),
    INT(struct sk_task_status, timestamp),
    INT(struct sk_task_status, started_at),
    STR(struct sk_task_status, message),
    STR(struct sk_task_status, err),
    INT(struct sk_task_status, exit_code),
    STR(struct sk_task_status, container_id, .max_len = 128),
    BOOL(struct sk_task_status, healthy),
};
static SCHEMA(task_status_schema, struct sk_task_status, "task status",
              task_status_fields);

static const struct sk_field task_fields[] = {
    META_FIELDS(struct sk_task),
    ID(struct sk_task, service_id),
    INT(struct sk_task, slot, .min = 0, .max = SK_MAX_REPLICAS),
    INT(struct sk_task, generation, .min = 0, .max = INT64_MAX),
    ID(struct sk_task, node_id),
    INT(struct sk_task, spec_version, .min = 0, .max = INT64_MAX),
    OBJ(struct sk_task, spec, sk_task_spec_schema),
    ENUM(struct sk_task, desired_state, sk_task_state_names,
         .def = SK_TASK_RUNNING),
    OBJ(struct sk_task, status, task_status_schema),
    OBJS(struct sk_task, networks, attachment_schema, .max_len = 16),
    INT(struct sk_task, restart_attempts, .min = 0, .max = INT64_MAX),
    INT(struct sk_task, restart_window_start),
    INT(struct sk_task, not_before),
};
SCHEMA(sk_task_schema, struct sk_task, "task", task_fields);

/* ---- network, secret, config ---- */

static const struct sk_field network_spec_fields[] = {
    STR(struct sk_network_spec, name, .max_len = NAME_MAX_LEN),
    MAP(struct sk_network_spec, labels, .max_len = SK_MAX_LABELS),
    STR(struct sk_network_spec, driver, .def_str = "overlay", .max_len = 32),
    STR(struct sk_network_spec, subnet, .max_len = 43),
    STR(struct sk_network_spec, gateway, .max_len = 39),
    BOOL(struct sk_network_spec, attachable),
    BOOL(struct sk_network_spec, internal),
};
SCHEMA(sk_network_spec_schema, struct sk_network_spec, "network spec",
       network_spec_fields);

static const struct sk_field network_fields[] = {
    META_FIELDS(struct sk_network),
    OBJ(struct sk_network, spec, sk_network_spec_schema),
    INT(struct sk_network, vni, .min = 0, .max = 16777215),
    STR(struct sk_network, subnet, .max_len = 43),
    STR(struct sk_network, gateway, .max_len = 39),
};
SCHEMA(sk_network_schema, struct sk_network, "network", network_fields);

/* The value is base64 of at most SK_MAX_SECRET_BYTES, plus sealing
 * overhead. */
static const struct sk_field secret_spec_fields[] = {
    STR(struct sk_secret_spec, name, .max_len = NAME_MAX_LEN),
    MAP(struct sk_secret_spec, labels, .max_len = SK_MAX_LABELS),
    STR(struct sk_secret_spec, data,
        .max_len = SK_MAX_SECRET_BYTES / 3 * 4 + 64, .flags = SK_FF_SECRET),
};
SCHEMA(sk_secret_spec_schema, struct sk_secret_spec, "secret spec",
       secret_spec_fields);

static const struct sk_field config_spec_fields[] = {
    STR(struct sk_secret_spec, name, .max_len = NAME_MAX_LEN),
    MAP(struct sk_secret_spec, labels, .max_len = SK_MAX_LABELS),
    STR(struct sk_secret_spec, data,
        .max_len = SK_MAX_CONFIG_BYTES / 3 * 4 + 64),
};
static SCHEMA(config_spec_schema, struct sk_secret_spec, "config spec",
              config_spec_fields);

static const struct sk_field secret_fields[] = {
    META_FIELDS(struct sk_secret),
    OBJ(struct sk_secret, spec, sk_secret_spec_schema),
    INT(struct sk_secret, size, .min = 0, .max = SK_MAX_CONFIG_BYTES),
};
SCHEMA(sk_secret_schema, struct sk_secret, "secret", secret_fields);

static const struct sk_field config_fields[] = {
    META_FIELDS(struct sk_config),
    OBJ(struct sk_config, spec, config_spec_schema),
    INT(struct sk_config, size, .min = 0, .max = SK_MAX_CONFIG_BYTES),
};
SCHEMA(sk_config_schema, struct sk_config, "config", config_fields);

/* ---- the kinds table ---- */

static const struct {
    const char *name, *plural;
    const struct sk_schema *schema;
} kinds[SK_KIND_COUNT] = {
    [SK_KIND_CLUSTER] = {"cluster", "clusters", &sk_cluster_schema},
    [SK_KIND_NODE] = {"node", "nodes", &sk_node_schema},
    [SK_KIND_SERVICE] = {"service", "services", &sk_service_schema},
    [SK_KIND_TASK] = {"task", "tasks", &sk_task_schema},
    [SK_KIND_NETWORK] = {"network", "networks", &sk_network_schema},
    [SK_KIND_SECRET] = {"secret", "secrets", &sk_secret_schema},
    [SK_KIND_CONFIG] = {"config", "configs", &sk_config_schema},
};

const char *sk_kind_name(enum sk_kind kind)
{
    return (unsigned)kind < SK_KIND_COUNT ? kinds[kind].name : NULL;
}

const char *sk_kind_plural(enum sk_kind kind)
{
    return (unsigned)kind < SK_KIND_COUNT ? kinds[kind].plural : NULL;
}

bool sk_kind_parse(const char *name, enum sk_kind *out_kind)
{
    for (int k = 0; k < SK_KIND_COUNT; k++) {
        if (strcmp(kinds[k].name, name) == 0) {
            *out_kind = (enum sk_kind)k;
            return true;
        }
    }
    return false;
}

const struct sk_schema *sk_kind_schema(enum sk_kind kind)
{
    return (unsigned)kind < SK_KIND_COUNT ? kinds[kind].schema : NULL;
}

const char *sk_object_name(enum sk_kind kind, const void *obj)
{
    switch (kind) {
    case SK_KIND_CLUSTER:
        return ((const struct sk_cluster *)obj)->spec.name;
    case SK_KIND_NODE:
        return ((const struct sk_node *)obj)->spec.name;
    case SK_KIND_SERVICE:
        return ((const struct sk_service *)obj)->spec.name;
    case SK_KIND_NETWORK:
        return ((const struct sk_network *)obj)->spec.name;
    case SK_KIND_SECRET:
        return ((const struct sk_secret *)obj)->spec.name;
    case SK_KIND_CONFIG:
        return ((const struct sk_config *)obj)->spec.name;
    default:
        return NULL;
    }
}

void *sk_object_new(enum sk_kind kind)
{
    return sk_calloc(1, sk_kind_schema(kind)->size);
}

void sk_object_free(enum sk_kind kind, void *obj)
{
    if (!obj)
        return;
    sk_schema_free(sk_kind_schema(kind), obj);
    free(obj);
}

void *sk_object_dup(enum sk_kind kind, const void *obj)
{
    const struct sk_schema *s = sk_kind_schema(kind);
    void *copy = sk_malloc(s->size);
    sk_schema_copy(s, copy, obj);
    return copy;
}

const char *sk_task_state_name(int state)
{
    if (state < 0 || state >= SK_TASK_STATE_COUNT)
        return "unknown";
    return sk_task_state_names[state];
}

void sk_service_roll_back(struct sk_service *s, int64_t now, char *message)
{
    struct sk_task_spec current = s->spec.task;
    sk_schema_copy(&sk_task_spec_schema, &s->spec.task,
                   &s->previous_spec->task);
    sk_schema_free(&sk_task_spec_schema, &s->previous_spec->task);
    s->previous_spec->task = current;
    s->spec_version++;
    s->update_status.state = SK_UPDATE_ROLLBACK_STARTED;
    s->update_status.started_at = now;
    s->update_status.completed_at = 0;
    free(s->update_status.message);
    s->update_status.message = message;
}

char *sk_update_done_message(const struct sk_update_status *st)
{
    static const char started[] = "rolling back: ";
    if (st->state == SK_UPDATE_UPDATING)
        return sk_strdup("update completed");
    if (st->message && strncmp(st->message, started, sizeof started - 1) == 0)
        return sk_printf("rolled back: %s", st->message + sizeof started - 1);
    return sk_strdup("rollback completed");
}

bool sk_task_state_terminal(int state)
{
    return state >= SK_TASK_COMPLETE;
}

/* ---- validation ---- */

enum sk_rc sk_name_validate(const char *what, const char *name,
                            struct sk_err *err)
{
    if (!name || !*name)
        return sk_err_set(err, SK_EINVAL, "%s: a name is required", what);
    size_t len = strlen(name);
    if (len > NAME_MAX_LEN)
        return sk_err_set(err, SK_EINVAL,
                          "%s: name \"%.20s...\" is longer than %d characters",
                          what, name, NAME_MAX_LEN);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        bool ok = isalnum(c) || (i > 0 && (c == '_' || c == '.' || c == '-'));
        if (!ok)
            return sk_err_set(err, SK_EINVAL,
                              "%s: invalid name \"%s\": use letters, digits "
                              "and _.- (not first)",
                              what, name);
    }
    return SK_OK;
}

static bool valid_label_key(const char *key)
{
    for (const char *c = key; *c; c++)
        if (!isgraph((unsigned char)*c) || *c == '=')
            return false;
    return true;
}

static enum sk_rc validate_labels(const char *path, const struct sk_kv *kv,
                                  size_t n, struct sk_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (!valid_label_key(kv[i].key))
            return sk_err_set(err, SK_EINVAL,
                              "%s: invalid label key \"%s\" (no spaces or =)",
                              path, kv[i].key);
    return SK_OK;
}

enum sk_rc sk_node_spec_validate(const struct sk_node_spec *spec,
                                 struct sk_err *err)
{
    enum sk_rc rc = sk_name_validate("node", spec->name, err);
    if (rc != SK_OK)
        return rc;
    return validate_labels("node labels", spec->labels, spec->n_labels, err);
}

enum sk_rc sk_cluster_spec_validate(const struct sk_cluster_spec *spec,
                                    struct sk_err *err)
{
    enum sk_rc rc = sk_name_validate("cluster", spec->name, err);
    if (rc != SK_OK)
        return rc;
    uint32_t pool;
    int prefix;
    if (spec->default_addr_pool &&
        (!sk_cidr_parse(spec->default_addr_pool, &pool, &prefix) ||
         prefix > spec->default_addr_pool_mask_len))
        return sk_err_set(err, SK_EINVAL,
                          "cluster: default address pool \"%s\" must be an "
                          "IPv4 subnet (like 10.0.0.0/8) that holds /%lld "
                          "subnets",
                          spec->default_addr_pool,
                          (long long)spec->default_addr_pool_mask_len);
    return SK_OK;
}

/* Targets are names or IDs (resolved by the manager, which also refuses
 * one network given twice under two names); aliases are names. */
static enum sk_rc validate_network_refs(const struct sk_service_spec *spec,
                                        struct sk_err *err)
{
    const struct sk_task_spec *t = &spec->task;
    for (size_t i = 0; i < t->n_networks; i++) {
        const struct sk_network_ref *r = &t->networks[i];
        if (sk_name_validate("network", r->target, err) != SK_OK)
            return sk_err_wrap(err, "service \"%s\"", spec->name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(t->networks[j].target, r->target) == 0)
                return sk_err_set(err, SK_EINVAL,
                                  "service \"%s\": network \"%s\" is given "
                                  "twice",
                                  spec->name, r->target);
        for (size_t j = 0; j < r->n_aliases; j++)
            if (sk_name_validate("alias", r->aliases[j], err) != SK_OK)
                return sk_err_wrap(err, "service \"%s\": network \"%s\"",
                                   spec->name, r->target);
    }
    return SK_OK;
}

enum sk_rc sk_network_spec_validate(const struct sk_network_spec *spec,
                                    struct sk_err *err)
{
    enum sk_rc rc = sk_name_validate("network", spec->name, err);
    if (rc != SK_OK)
        return rc;
    if (!spec->driver || strcmp(spec->driver, "overlay") != 0)
        return sk_err_set(err, SK_EINVAL,
                          "network \"%s\": driver \"%s\" is not supported: "
                          "skiff's networks are overlays across the nodes "
                          "(driver \"overlay\")",
                          spec->name, spec->driver ? spec->driver : "");
    if (spec->gateway && !spec->subnet)
        return sk_err_set(err, SK_EINVAL,
                          "network \"%s\": a gateway needs a subnet (give "
                          "--subnet too)",
                          spec->name);
    return validate_labels("network labels", spec->labels, spec->n_labels, err);
}

enum sk_rc sk_service_spec_validate(const struct sk_service_spec *spec,
                                    struct sk_err *err)
{
    enum sk_rc rc = sk_name_validate("service", spec->name, err);
    if (rc != SK_OK)
        return rc;
    if ((rc = validate_labels("service labels", spec->labels, spec->n_labels,
                              err)) != SK_OK)
        return rc;
    const struct sk_container_spec *c = &spec->task.container;
    if (!c->image || !*c->image)
        return sk_err_set(err, SK_EINVAL,
                          "service \"%s\": spec.task.container.image: an "
                          "image is required",
                          spec->name);
    for (const char *p = c->image; *p; p++)
        if (isspace((unsigned char)*p))
            return sk_err_set(err, SK_EINVAL,
                              "service \"%s\": image \"%s\" contains a space",
                              spec->name, c->image);
    for (size_t i = 0; i < c->n_env; i++) {
        const char *eq = strchr(c->env[i], '=');
        if (!eq || eq == c->env[i])
            return sk_err_set(err, SK_EINVAL,
                              "service \"%s\": env \"%s\": want KEY=VALUE",
                              spec->name, c->env[i]);
    }
    if (spec->mode == SK_MODE_GLOBAL && spec->replicas > 1)
        /* Replicas mean nothing for a global service; refusing a value
         * that would be ignored avoids a silent surprise. */
        return sk_err_set(err, SK_EINVAL,
                          "service \"%s\": replicas cannot be set for a "
                          "global service",
                          spec->name);
    for (size_t i = 0; i < spec->endpoint.n_ports; i++) {
        const struct sk_port *p = &spec->endpoint.ports[i];
        if (p->mode == SK_PORT_HOST && p->published == 0)
            return sk_err_set(err, SK_EINVAL,
                              "service \"%s\": port %lld: a host-mode port "
                              "needs a published port",
                              spec->name, (long long)p->target);
        for (size_t j = 0; j < i; j++) {
            const struct sk_port *q = &spec->endpoint.ports[j];
            if (p->published && p->published == q->published &&
                p->protocol == q->protocol)
                return sk_err_set(err, SK_EINVAL,
                                  "service \"%s\": published port %lld is "
                                  "given twice",
                                  spec->name, (long long)p->published);
        }
    }
    struct sk_placement_rules rules;
    rc = sk_placement_rules_parse(&spec->task.placement, &rules, err);
    sk_placement_rules_free(&rules);
    if (rc != SK_OK)
        return sk_err_wrap(err, "service \"%s\"", spec->name);
    if ((rc = validate_network_refs(spec, err)) != SK_OK)
        return rc;
    for (size_t i = 0; i < c->n_secrets; i++) {
        const char *t = c->secrets[i].target;
        if (t && (strchr(t, '/') || strcmp(t, "..") == 0 || !*t))
            return sk_err_set(err, SK_EINVAL,
                              "service \"%s\": secret \"%s\": target \"%s\" "
                              "must be a plain file name",
                              spec->name, c->secrets[i].name, t);
    }
    return SK_OK;
}

/* ---- ports as users type them ---- */

/* "P:T[/udp]". */
static bool port_short(char *text, struct sk_port *p)
{
    char *slash = strchr(text, '/');
    if (slash) {
        *slash = '\0';
        p->protocol = sk_enum_index(sk_port_protocol_names, slash + 1);
        if (p->protocol < 0)
            return false;
    }
    char *colon = strchr(text, ':');
    if (!colon)
        return false;
    *colon = '\0';
    return sk_parse_int(text, 0, 65535, &p->published, NULL) &&
           sk_parse_int(colon + 1, 1, 65535, &p->target, NULL);
}

/* "KEY=VALUE,...": the port object itself, its fields written as flags
 * are, so the schema checks the keys, numbers and names. */
static bool port_long(char *text, struct sk_port *p)
{
    json_t *obj = json_object();
    bool ok = true;
    char *save = NULL;
    for (char *kv = strtok_r(text, ",", &save); kv && ok;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            ok = false;
            break;
        }
        *eq = '\0';
        const char *v = eq + 1;
        bool digits = *v != '\0' && strspn(v, "0123456789") == strlen(v);
        /* json_string refuses invalid UTF-8 (NULL): then the set fails. */
        ok = json_object_set_new(obj, kv,
                                 digits ? json_integer(strtoll(v, NULL, 10))
                                        : json_string(v)) == 0;
    }
    ok = ok && sk_schema_decode(&sk_port_schema, obj, p, NULL, NULL) == SK_OK;
    json_decref(obj);
    return ok;
}

enum sk_rc sk_port_parse(const char *what, const char *text,
                         struct sk_port *out_port, struct sk_err *err)
{
    struct sk_port p = {.protocol = SK_PROTO_TCP, .mode = SK_PORT_HOST};
    char *copy = sk_strdup(text);
    bool ok = strchr(copy, '=') ? port_long(copy, &p) : port_short(copy, &p);
    free(copy);
    if (!ok)
        return sk_err_set(err, SK_EINVAL,
                          "%s \"%s\": want mode=host,published=P,target=T"
                          "[,protocol=tcp|udp] or P:T[/udp], ports 1-65535",
                          what, text);
    *out_port = p;
    return SK_OK;
}

/* ---- networks as users name them ---- */

/* "name=N,alias=A,alias=B": the network reference's fields under the
 * names `docker service create --network` uses, decoded by its schema. */
static bool network_long(char *text, struct sk_network_ref *r)
{
    json_t *obj = json_object(), *aliases = json_array();
    bool ok = true;
    char *save = NULL;
    for (char *kv = strtok_r(text, ",", &save); kv && ok;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            ok = false;
            break;
        }
        *eq = '\0';
        /* json_string refuses invalid UTF-8 (NULL): then the set fails. */
        json_t *v = json_string(eq + 1);
        const char *key = strcmp(kv, "name") == 0 ? "target" : kv;
        if (strcmp(kv, "alias") == 0) {
            ok = json_array_append_new(aliases, v) == 0;
        } else if (json_object_get(obj, key)) {
            json_decref(v); /* given twice */
            ok = false;
        } else {
            ok = json_object_set_new(obj, key, v) == 0;
        }
    }
    if (json_array_size(aliases))
        json_object_set(obj, "aliases", aliases);
    json_decref(aliases);
    ok = ok &&
         sk_schema_decode(&sk_network_ref_schema, obj, r, NULL, NULL) == SK_OK;
    json_decref(obj);
    return ok;
}

enum sk_rc sk_network_ref_parse(const char *what, const char *text,
                                struct sk_network_ref *out_ref,
                                struct sk_err *err)
{
    struct sk_network_ref r = {0};
    bool ok;
    if (strchr(text, '=')) {
        char *copy = sk_strdup(text);
        ok = network_long(copy, &r);
        free(copy);
    } else {
        ok = *text != '\0';
        r.target = ok ? sk_strdup(text) : NULL;
    }
    ok = ok && sk_name_validate("network", r.target, NULL) == SK_OK;
    for (size_t i = 0; ok && i < r.n_aliases; i++)
        ok = sk_name_validate("alias", r.aliases[i], NULL) == SK_OK;
    if (!ok || *r.id) {
        sk_schema_free(&sk_network_ref_schema, &r);
        return sk_err_set(err, SK_EINVAL,
                          "%s \"%s\": want NAME or name=NAME[,alias=ALIAS]... "
                          "(names: letters, digits and _.-)",
                          what, text);
    }
    *out_ref = r;
    return SK_OK;
}

/* ---- cluster policy ---- */

/* Unset (the image's user: root for most), "root" or UID 0, with or
 * without a group. */
static bool runs_as_root(const char *user)
{
    if (!user)
        return true;
    size_t len = strcspn(user, ":");
    bool uid0 = len > 0 && strspn(user, "0") >= len;
    return len == 0 || uid0 || (len == 4 && strncmp(user, "root", 4) == 0);
}

/* NAME@sha256:<64 lower-case hex digits>, nothing after. */
static bool pinned_by_digest(const char *image)
{
    const char *at = image ? strchr(image, '@') : NULL;
    if (!at || strncmp(at + 1, "sha256:", 7) != 0)
        return false;
    const char *hex = at + 8;
    return strspn(hex, "0123456789abcdef") == 64 && hex[64] == '\0';
}

enum sk_rc sk_service_spec_check_policy(const struct sk_cluster_spec *policy,
                                        const struct sk_service_spec *spec,
                                        struct sk_err *err)
{
    const struct sk_container_spec *c = &spec->task.container;
    if (policy->forbid_privileged && c->privileged)
        return sk_err_set(err, SK_EINVAL,
                          "service \"%s\": privileged containers are "
                          "forbidden (cluster policy forbid_privileged)",
                          spec->name);
    if (policy->require_non_root && runs_as_root(c->user)) {
        char got[96] = "no user (the image's)";
        if (c->user && *c->user)
            snprintf(got, sizeof got, "user \"%.64s\"", c->user);
        return sk_err_set(err, SK_EINVAL,
                          "service \"%s\": tasks must run as a non-root user, "
                          "got %s: set --user (cluster policy "
                          "require_non_root)",
                          spec->name, got);
    }
    if (policy->require_image_digest && !pinned_by_digest(c->image))
        return sk_err_set(err, SK_EINVAL,
                          "service \"%s\": image \"%s\": images must be "
                          "pinned by digest, IMAGE@sha256:<64 hex digits> "
                          "(cluster policy require_image_digest)",
                          spec->name, c->image);
    return SK_OK;
}
