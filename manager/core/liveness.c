#include "skiff/liveness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/log.h"
#include "skiff/mem.h"

void sk_liveness_init(struct sk_liveness *d)
{
    sk_map_init(&d->last_seen);
    d->leader_since = 0;
}

static void clear_seen(struct sk_liveness *d)
{
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, &d->last_seen);
    while (sk_map_iter_next(&it, NULL, &v))
        free(v);
    sk_map_clear(&d->last_seen);
}

void sk_liveness_free(struct sk_liveness *d)
{
    clear_seen(d);
}

void sk_liveness_reset(struct sk_liveness *d, int64_t now_ms)
{
    clear_seen(d);
    d->leader_since = now_ms;
}

void sk_liveness_heartbeat(struct sk_liveness *d, const char *node_id,
                           int64_t now_ms)
{
    int64_t *t = sk_map_get(&d->last_seen, node_id);
    if (!t) {
        t = sk_malloc(sizeof *t);
        sk_map_put(&d->last_seen, node_id, t);
    }
    *t = now_ms;
}

void sk_liveness_forget(struct sk_liveness *d, const char *node_id)
{
    free(sk_map_del(&d->last_seen, node_id));
}

int64_t sk_liveness_last_seen(const struct sk_liveness *d, const char *node_id)
{
    const int64_t *t = sk_map_get(&d->last_seen, node_id);
    return t ? *t : 0;
}

struct check {
    const struct sk_liveness *d;
    int64_t now, period;
    struct sk_node_change *out;
    size_t n, cap;
};

static bool check_node(const void *obj, void *ctx)
{
    const struct sk_node *node = obj;
    struct check *c = ctx;
    int64_t seen = sk_liveness_last_seen(c->d, node->meta.id);
    int64_t limit = SK_DOWN_AFTER_PERIODS * c->period;
    int want = -1;
    char msg[96] = "";
    if (seen && c->now - seen <= limit) {
        if (node->status.state != SK_NODE_READY) {
            want = SK_NODE_READY;
            snprintf(msg, sizeof msg, "heartbeat received");
        }
    } else if (node->status.state != SK_NODE_DOWN) {
        bool grace =
            c->now - c->d->leader_since < SK_LEADER_GRACE_PERIODS * c->period;
        /* A node that joined moments ago has not heartbeated yet: its join
         * counts as the last time it was heard of. */
        bool joined = !seen && node->meta.created_at > c->d->leader_since;
        if (joined && c->now - node->meta.created_at <= limit)
            grace = true;
        /* A node that left on purpose has longer to come back. */
        bool left = node->status.state == SK_NODE_DISCONNECTED;
        int64_t away = c->now - node->status.state_changed_at;
        if (left && away <= SK_LEFT_DOWN_AFTER_PERIODS * c->period)
            grace = true;
        if (!grace) {
            want = SK_NODE_DOWN;
            if (left)
                snprintf(msg, sizeof msg,
                         "skiffd stopped %lld ms ago and is not back "
                         "(limit %lld ms)",
                         (long long)away,
                         (long long)(SK_LEFT_DOWN_AFTER_PERIODS * c->period));
            else if (seen)
                snprintf(msg, sizeof msg,
                         "no heartbeat for %lld ms (limit %lld ms)",
                         (long long)(c->now - seen), (long long)limit);
            else if (joined)
                snprintf(msg, sizeof msg,
                         "no heartbeat since it joined %lld ms ago",
                         (long long)(c->now - node->meta.created_at));
            else
                snprintf(msg, sizeof msg,
                         "no heartbeat since this leader took over");
        }
    }
    if (want < 0)
        return true;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 8;
        c->out = sk_realloc(c->out, c->cap * sizeof *c->out);
    }
    struct sk_node_change *ch = &c->out[c->n++];
    memcpy(ch->node_id, node->meta.id, SK_ID_SIZE);
    ch->state = want;
    snprintf(ch->message, sizeof ch->message, "%s", msg);
    return true;
}

size_t sk_liveness_check(const struct sk_liveness *d, const struct sk_store *s,
                         int64_t now_ms, int64_t period_ms,
                         struct sk_node_change **out)
{
    struct check c = {.d = d, .now = now_ms, .period = period_ms};
    sk_store_each(s, SK_KIND_NODE, check_node, &c);
    *out = c.out;
    return c.n;
}

struct sk_txn *sk_liveness_txn(const struct sk_store *s,
                               const struct sk_node_change *changes, size_t n,
                               int64_t now_ms)
{
    struct sk_txn *t = sk_txn_new();
    for (size_t i = 0; i < n; i++) {
        const struct sk_node *cur =
            sk_store_get(s, SK_KIND_NODE, changes[i].node_id);
        if (!cur)
            continue;
        struct sk_node *u = sk_object_dup(SK_KIND_NODE, cur);
        u->status.state = changes[i].state;
        free(u->status.message);
        u->status.message = sk_strdup(changes[i].message);
        u->status.state_changed_at = now_ms;
        sk_trace("node", u->meta.id, sk_node_state_names[cur->status.state],
                 sk_node_state_names[u->status.state], changes[i].message);
        sk_txn_update(t, SK_KIND_NODE, u, cur->meta.version);
        sk_object_free(SK_KIND_NODE, u);
    }
    if (sk_txn_count(t) == 0) {
        sk_txn_free(t);
        return NULL;
    }
    return t;
}
