#include "skiff/reports.h"

#include <stdlib.h>
#include <string.h>

#include "skiff/log.h"
#include "skiff/mem.h"

void sk_pending_report_free(struct sk_pending_report *r)
{
    if (!r)
        return;
    sk_schema_free(&sk_task_report_schema, &r->report);
    free(r);
}

static char *dup_or_keep(const char *fresh, const char *old)
{
    return sk_strdup(fresh ? fresh : old ? old : "");
}

struct sk_txn *sk_reports_txn(const struct sk_store *s, struct sk_map *pending,
                              int64_t now_ms)
{
    struct sk_txn *t = sk_txn_new();
    struct sk_map_iter it;
    const char *id;
    void *v;
    sk_map_iter_init(&it, pending);
    while (sk_map_iter_next(&it, &id, &v)) {
        struct sk_pending_report *p = v;
        const struct sk_task_report *r = &p->report;
        /* Health gating comes later: no check counts as healthy. */
        bool healthy =
            r->health == SK_HEALTH_NONE || r->health == SK_HEALTH_HEALTHY;
        const struct sk_task *cur = sk_store_get(s, SK_KIND_TASK, id);
        bool apply =
            cur && strcmp(cur->node_id, p->node_id) == 0 &&
            (r->state > cur->status.state ||
             (r->state == cur->status.state && healthy != cur->status.healthy));
        if (apply && sk_txn_count(t) < SK_TXN_MAX_OPS &&
            sk_txn_size(t) < SK_TXN_MAX_BYTES / 2) {
            struct sk_task *u = sk_object_dup(SK_KIND_TASK, cur);
            sk_trace("task", id, sk_task_state_name(cur->status.state),
                     sk_task_state_name(r->state), r->message);
            u->status.state = r->state;
            u->status.timestamp = r->timestamp ? r->timestamp : now_ms;
            if (r->state == SK_TASK_RUNNING)
                u->status.started_at = u->status.timestamp;
            u->status.exit_code = r->exit_code;
            u->status.healthy = healthy;
            /* A task told to stop keeps the reason it was told ("replaced",
             * "node h1 no longer satisfies node.role==worker"): its state
             * says it stopped, the message why. */
            bool told = r->state == SK_TASK_SHUTDOWN &&
                        cur->desired_state != SK_TASK_RUNNING &&
                        cur->status.message && *cur->status.message;
            if (!told) {
                char *msg = dup_or_keep(r->message, NULL);
                free(u->status.message);
                u->status.message = msg;
            }
            free(u->status.err);
            u->status.err = r->err ? sk_strdup(r->err) : NULL;
            char *cid = dup_or_keep(r->container_id, cur->status.container_id);
            free(u->status.container_id);
            u->status.container_id = *cid ? cid : (free(cid), NULL);
            sk_txn_update(t, SK_KIND_TASK, u, cur->meta.version);
            sk_object_free(SK_KIND_TASK, u);
        } else if (apply) {
            continue; /* next entry */
        }
        sk_map_del(pending, id);
        sk_pending_report_free(p);
    }
    if (sk_txn_count(t) == 0) {
        sk_txn_free(t);
        return NULL;
    }
    return t;
}
