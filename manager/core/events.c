#include "skiff/events.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/mem.h"

struct line {
    uint64_t index;
    char *text; /* with the trailing newline */
    size_t len;
};

struct sub {
    unsigned id;
    sk_events_sink sink;
    void *ctx;
};

struct sk_events {
    struct line *ring;
    size_t capacity, start, count;
    uint64_t dropped_upto; /* highest index no longer in the ring */
    struct sub *subs;
    size_t n_subs;
    unsigned next_id;
};

struct sk_events *sk_events_new(size_t capacity)
{
    struct sk_events *e = sk_calloc(1, sizeof *e);
    e->capacity = capacity ? capacity : 1;
    e->ring = sk_calloc(e->capacity, sizeof *e->ring);
    e->next_id = 1;
    return e;
}

void sk_events_free(struct sk_events *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->count; i++)
        free(e->ring[(e->start + i) % e->capacity].text);
    free(e->ring);
    free(e->subs);
    free(e);
}

static const char *action_of(enum sk_event_type t)
{
    switch (t) {
    case SK_EV_CREATE:
        return "create";
    case SK_EV_UPDATE:
        return "update";
    case SK_EV_DELETE:
        return "remove";
    default:
        return "reset";
    }
}

/* The few fields worth watching, per kind. */
static void add_details(json_t *j, enum sk_kind kind, const void *obj)
{
    switch (kind) {
    case SK_KIND_NODE: {
        const struct sk_node *n = obj;
        json_object_set_new(j, "state",
                            json_string(sk_node_state_names[n->status.state]));
        json_object_set_new(
            j, "availability",
            json_string(sk_availability_names[n->spec.availability]));
        json_object_set_new(j, "role",
                            json_string(sk_node_role_names[n->spec.role]));
        break;
    }
    case SK_KIND_TASK: {
        const struct sk_task *t = obj;
        json_object_set_new(j, "state",
                            json_string(sk_task_state_name(t->status.state)));
        json_object_set_new(j, "desired_state",
                            json_string(sk_task_state_name(t->desired_state)));
        json_object_set_new(j, "service_id", json_string(t->service_id));
        if (*t->node_id)
            json_object_set_new(j, "node_id", json_string(t->node_id));
        json_object_set_new(j, "slot", json_integer(t->slot));
        break;
    }
    case SK_KIND_SERVICE: {
        const struct sk_service *s = obj;
        json_object_set_new(j, "mode",
                            json_string(sk_service_mode_names[s->spec.mode]));
        json_object_set_new(j, "replicas", json_integer(s->spec.replicas));
        break;
    }
    default:
        break;
    }
}

static void deliver(struct sk_events *e, const struct line *l)
{
    /* Copy the list: a sink may unsubscribe itself. */
    size_t n = e->n_subs;
    struct sub *copy = sk_malloc((n ? n : 1) * sizeof *copy);
    if (n)
        memcpy(copy, e->subs, n * sizeof *copy);
    for (size_t i = 0; i < n; i++) {
        bool still = false;
        for (size_t k = 0; k < e->n_subs; k++)
            still |= e->subs[k].id == copy[i].id;
        if (still)
            copy[i].sink(copy[i].ctx, l->text, l->len);
    }
    free(copy);
}

void sk_events_record(struct sk_events *e, const struct sk_event *ev,
                      int64_t time_ms)
{
    json_t *j = json_object();
    json_object_set_new(j, "index", json_integer((json_int_t)ev->index));
    json_object_set_new(j, "time", json_integer(time_ms));
    if (ev->type == SK_EV_RESET) {
        json_object_set_new(j, "type", json_string("store"));
        json_object_set_new(j, "action", json_string("reset"));
    } else {
        const void *obj = ev->new_obj ? ev->new_obj : ev->old_obj;
        const struct sk_meta *meta = obj;
        json_object_set_new(j, "type", json_string(sk_kind_name(ev->kind)));
        json_object_set_new(j, "action", json_string(action_of(ev->type)));
        json_object_set_new(j, "id", json_string(meta->id));
        const char *name = sk_object_name(ev->kind, obj);
        if (name)
            json_object_set_new(j, "name", json_string(name));
        add_details(j, ev->kind, obj);
    }
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        sk_oom(0);
    size_t len = strlen(text);
    text = sk_realloc(text, len + 2);
    text[len++] = '\n';
    text[len] = '\0';

    if (e->count == e->capacity) {
        struct line *old = &e->ring[e->start];
        e->dropped_upto = old->index;
        free(old->text);
        e->start = (e->start + 1) % e->capacity;
        e->count--;
    }
    struct line *l = &e->ring[(e->start + e->count) % e->capacity];
    l->index = ev->index;
    l->text = text;
    l->len = len;
    e->count++;
    deliver(e, l);
}

unsigned sk_events_subscribe(struct sk_events *e, uint64_t since,
                             sk_events_sink sink, void *ctx)
{
    if (since && since < e->dropped_upto) {
        char gap[160];
        int n = snprintf(gap, sizeof gap,
                         "{\"type\":\"gap\",\"message\":\"events up to index "
                         "%llu are no longer kept\"}\n",
                         (unsigned long long)e->dropped_upto);
        sink(ctx, gap, (size_t)n);
    }
    if (since) {
        for (size_t i = 0; i < e->count; i++) {
            const struct line *l = &e->ring[(e->start + i) % e->capacity];
            if (l->index > since)
                sink(ctx, l->text, l->len);
        }
    }
    e->subs = sk_realloc(e->subs, (e->n_subs + 1) * sizeof *e->subs);
    e->subs[e->n_subs] =
        (struct sub){.id = e->next_id++, .sink = sink, .ctx = ctx};
    return e->subs[e->n_subs++].id;
}

void sk_events_unsubscribe(struct sk_events *e, unsigned id)
{
    for (size_t i = 0; i < e->n_subs; i++) {
        if (e->subs[i].id == id) {
            memmove(&e->subs[i], &e->subs[i + 1],
                    (e->n_subs - i - 1) * sizeof *e->subs);
            e->n_subs--;
            return;
        }
    }
}

size_t sk_events_subscribers(const struct sk_events *e)
{
    return e->n_subs;
}
