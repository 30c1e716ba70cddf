#include "skiff/wire.h"

#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "skiff/id.h"
#include "skiff/mem.h"

const char *const sk_task_health_names[] = {"none", "starting", "healthy",
                                            "unhealthy", NULL};
static const char *const session_msg_type_names[] = {"assignments", "ping",
                                                     "networks", NULL};

/* A CSR or a token is small; a bound keeps a stranger's join body small. */
static const struct sk_field join_body_fields[] = {
    STR(struct sk_join_body, token, .max_len = 256, .flags = SK_FF_REQUIRED),
    STR(struct sk_join_body, csr, .max_len = 8192, .flags = SK_FF_REQUIRED),
    OBJ(struct sk_join_body, description, sk_node_description_schema,
        .flags = SK_FF_REQUIRED),
    STR(struct sk_join_body, api_addr, .max_len = 64),
    STR(struct sk_join_body, raft_addr, .max_len = 64),
};
SCHEMA(sk_join_body_schema, struct sk_join_body, "join request",
       join_body_fields);

static const struct sk_field heartbeat_fields[] = {
    OBJ(struct sk_heartbeat, description, sk_node_description_schema),
};
SCHEMA(sk_heartbeat_schema, struct sk_heartbeat, "heartbeat", heartbeat_fields);

static const struct sk_field assignment_fields[] = {
    OBJ(struct sk_assignment, task, sk_task_schema, .flags = SK_FF_REQUIRED),
    STR(struct sk_assignment, service_name, .max_len = 63),
    OBJS(struct sk_assignment, ports, sk_port_schema, .max_len = 64),
};
SCHEMA(sk_assignment_schema, struct sk_assignment, "assignment",
       assignment_fields);

static const char *const endpoint_mode_names[] = {"vip", "dnsrr", NULL};

static const struct sk_field net_peer_fields[] = {
    ID(struct sk_net_peer, node_id),
    STR(struct sk_net_peer, vtep, .max_len = 15, .flags = SK_FF_REQUIRED),
    STRS(struct sk_net_peer, addrs, .max_len = 65536),
};
static SCHEMA(net_peer_schema, struct sk_net_peer, "network peer",
              net_peer_fields);

static const struct sk_field net_service_fields[] = {
    ID(struct sk_net_service, service_id),
    STR(struct sk_net_service, name, .max_len = 63, .flags = SK_FF_REQUIRED),
    STRS(struct sk_net_service, aliases, .max_len = 16),
    ENUM(struct sk_net_service, endpoint_mode, endpoint_mode_names),
    STR(struct sk_net_service, vip, .max_len = 18),
    STRS(struct sk_net_service, ready, .max_len = 65536),
};
static SCHEMA(net_service_schema, struct sk_net_service, "network service",
              net_service_fields);

static const struct sk_field net_info_fields[] = {
    ID(struct sk_net_info, id, .flags = SK_FF_REQUIRED),
    STR(struct sk_net_info, name, .max_len = 63),
    INT(struct sk_net_info, vni, .min = 1, .max = 16777215,
        .flags = SK_FF_REQUIRED),
    STR(struct sk_net_info, subnet, .max_len = 18, .flags = SK_FF_REQUIRED),
    STR(struct sk_net_info, gateway, .max_len = 15, .flags = SK_FF_REQUIRED),
    STR(struct sk_net_info, node_addr, .max_len = 18),
    BOOL(struct sk_net_info, internal),
    OBJS(struct sk_net_info, peers, net_peer_schema, .max_len = 10000),
    OBJS(struct sk_net_info, services, net_service_schema, .max_len = 10000),
};
SCHEMA(sk_net_info_schema, struct sk_net_info, "network", net_info_fields);

static const struct sk_field session_msg_fields[] = {
    ENUM(struct sk_session_msg, type, session_msg_type_names,
         .flags = SK_FF_REQUIRED),
    BOOL(struct sk_session_msg, full),
    OBJS(struct sk_session_msg, tasks, sk_assignment_schema,
         .max_len = SK_MAX_ASSIGNMENTS),
    STRS(struct sk_session_msg, removed, .max_len = SK_MAX_ASSIGNMENTS),
    OBJS(struct sk_session_msg, networks, sk_net_info_schema, .max_len = 1024),
};
SCHEMA(sk_session_msg_schema, struct sk_session_msg, "session message",
       session_msg_fields);

static const struct sk_field task_report_fields[] = {
    ID(struct sk_task_report, id, .flags = SK_FF_REQUIRED),
    ENUM(struct sk_task_report, state, sk_task_state_names,
         .flags = SK_FF_REQUIRED),
    ENUM(struct sk_task_report, health, sk_task_health_names),
    INT(struct sk_task_report, timestamp, .min = 0, .max = INT64_MAX),
    INT(struct sk_task_report, exit_code, .min = -1, .max = 255),
    STR(struct sk_task_report, message, .max_len = 512),
    STR(struct sk_task_report, err, .max_len = 512),
    STR(struct sk_task_report, container_id, .max_len = 128),
};
SCHEMA(sk_task_report_schema, struct sk_task_report, "task report",
       task_report_fields);

static const struct sk_field task_reports_fields[] = {
    OBJS(struct sk_task_reports, tasks, sk_task_report_schema,
         .max_len = SK_MAX_REPORTS, .flags = SK_FF_REQUIRED),
};
SCHEMA(sk_task_reports_schema, struct sk_task_reports, "task reports",
       task_reports_fields);

enum sk_rc sk_wire_decode(const struct sk_schema *schema, const char *text,
                          size_t len, void *out, struct sk_err *err)
{
    memset(out, 0, schema->size);
    json_error_t jerr;
    json_t *j = json_loadb(text ? text : "", len, 0, &jerr);
    if (!j)
        return sk_err_set(err, SK_EINVAL, "%s: not JSON: %s (line %d)",
                          schema->name, jerr.text, jerr.line);
    enum sk_rc rc = sk_schema_decode(schema, j, out, NULL, err);
    json_decref(j);
    /* Errors about the message itself already start with its name; those
     * about a field name the field only. */
    size_t n = strlen(schema->name);
    if (rc != SK_OK &&
        !(strncmp(err->msg, schema->name, n) == 0 && err->msg[n] == ':'))
        sk_err_wrap(err, "%s", schema->name);
    return rc;
}

char *sk_wire_encode(const struct sk_schema *schema, const void *obj, bool line,
                     size_t *out_len)
{
    json_t *j = sk_schema_encode(schema, obj, SK_VIEW_PUBLIC);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        sk_oom(0);
    size_t len = strlen(text);
    if (line) {
        text = sk_realloc(text, len + 2);
        text[len++] = '\n';
        text[len] = '\0';
    }
    if (out_len)
        *out_len = len;
    return text;
}

enum sk_rc sk_task_report_validate(const struct sk_task_report *r,
                                   struct sk_err *err)
{
    if (!*r->id)
        return sk_err_set(err, SK_EINVAL, "task report: no task id");
    if (r->state < SK_TASK_ACCEPTED || r->state == SK_TASK_REMOVE ||
        r->state == SK_TASK_ORPHANED)
        return sk_err_set(err, SK_EINVAL,
                          "task report for %s: an agent may not report "
                          "state \"%s\"",
                          r->id, sk_task_state_name(r->state));
    return SK_OK;
}
