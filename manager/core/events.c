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
    const struct sk_events_filter *filter;
    sk_events_sink sink;
    void *ctx;
};

/* A removed service's or node's name, for the events that follow. */
struct gone {
    char id[SK_ID_SIZE];
    char *name;
};

struct sk_events {
    struct line *ring;
    size_t capacity, start, count;
    uint64_t dropped_upto; /* highest index no longer in the ring */
    struct sub *subs;
    size_t n_subs;
    unsigned next_id;
    struct gone gone[SK_EVENTS_GONE_NAMES];
    size_t gone_next;
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
    for (size_t i = 0; i < SK_EVENTS_GONE_NAMES; i++)
        free(e->gone[i].name);
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

/* The name of a service or node by ID: from the store, else from its
 * removal; NULL if unknown. */
static const char *name_of(const struct sk_events *e,
                           const struct sk_store *store, enum sk_kind kind,
                           const char *id)
{
    if (!*id)
        return NULL;
    const void *o = store ? sk_store_get(store, kind, id) : NULL;
    if (o)
        return sk_object_name(kind, o);
    for (size_t i = 0; i < SK_EVENTS_GONE_NAMES; i++)
        if (e->gone[i].name && strcmp(e->gone[i].id, id) == 0)
            return e->gone[i].name;
    return NULL;
}

static void remember_gone(struct sk_events *e, const char *id, const char *name)
{
    if (!name)
        return;
    struct gone *g = &e->gone[e->gone_next];
    e->gone_next = (e->gone_next + 1) % SK_EVENTS_GONE_NAMES;
    free(g->name);
    snprintf(g->id, sizeof g->id, "%s", id);
    g->name = sk_strdup(name);
}

static void set_str(json_t *j, const char *key, const char *value)
{
    if (value)
        json_object_set_new(j, key, json_string(value));
}

/* The few fields worth watching, per kind. */
static void add_details(const struct sk_events *e, const struct sk_store *store,
                        json_t *j, enum sk_kind kind, const void *obj)
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
        const char *service = name_of(e, store, SK_KIND_SERVICE, t->service_id);
        if (service) {
            char name[160];
            if (t->slot > 0)
                snprintf(name, sizeof name, "%s.%lld", service,
                         (long long)t->slot);
            else
                snprintf(name, sizeof name, "%s.%.10s", service, t->node_id);
            set_str(j, "name", name);
        }
        json_object_set_new(j, "state",
                            json_string(sk_task_state_name(t->status.state)));
        json_object_set_new(j, "desired_state",
                            json_string(sk_task_state_name(t->desired_state)));
        json_object_set_new(j, "service_id", json_string(t->service_id));
        set_str(j, "service_name", service);
        if (*t->node_id) {
            json_object_set_new(j, "node_id", json_string(t->node_id));
            set_str(j, "node_name",
                    name_of(e, store, SK_KIND_NODE, t->node_id));
        }
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
        if (still && sk_events_filter_match(copy[i].filter, l->text, l->len))
            copy[i].sink(copy[i].ctx, l->text, l->len);
    }
    free(copy);
}

void sk_events_record(struct sk_events *e, const struct sk_store *store,
                      const struct sk_event *ev, int64_t time_ms)
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
        add_details(e, store, j, ev->kind, obj);
        if (ev->type == SK_EV_DELETE &&
            (ev->kind == SK_KIND_SERVICE || ev->kind == SK_KIND_NODE))
            remember_gone(e, meta->id, name);
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
                             const struct sk_events_filter *filter,
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
            if (l->index > since &&
                sk_events_filter_match(filter, l->text, l->len))
                sink(ctx, l->text, l->len);
        }
    }
    e->subs = sk_realloc(e->subs, (e->n_subs + 1) * sizeof *e->subs);
    e->subs[e->n_subs] = (struct sub){
        .id = e->next_id++, .filter = filter, .sink = sink, .ctx = ctx};
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

/* ---- filters ---- */

#define FILTER_MAX_VALUES 64
#define FILTER_MAX_VALUE_LEN 128

enum filter_key { F_TYPE, F_EVENT, F_SERVICE, F_NODE, F_KEYS };
static const char *const filter_key_names[F_KEYS] = {"type", "event", "service",
                                                     "node"};
static const char *const action_names[] = {"create", "update", "remove", NULL};

struct sk_events_filter {
    char **values[F_KEYS];
    size_t n_values[F_KEYS];
};

void sk_events_filter_free(struct sk_events_filter *f)
{
    if (!f)
        return;
    for (int k = 0; k < F_KEYS; k++) {
        for (size_t i = 0; i < f->n_values[k]; i++)
            free(f->values[k][i]);
        free(f->values[k]);
    }
    free(f);
}

static bool known_type(const char *v)
{
    for (int k = 0; k < SK_KIND_COUNT; k++)
        if (strcmp(v, sk_kind_name((enum sk_kind)k)) == 0)
            return true;
    return false;
}

static bool known_action(const char *v)
{
    for (size_t i = 0; action_names[i]; i++)
        if (strcmp(v, action_names[i]) == 0)
            return true;
    return false;
}

static enum sk_rc filter_value(struct sk_events_filter *f, int k,
                               const json_t *v, struct sk_err *err)
{
    const char *key = filter_key_names[k];
    const char *s = json_string_value(v);
    if (!s || !*s || strlen(s) > FILTER_MAX_VALUE_LEN)
        return sk_err_set(err, SK_EINVAL,
                          "filter %s: values are strings of 1 to %d bytes", key,
                          FILTER_MAX_VALUE_LEN);
    if (k == F_TYPE && !known_type(s))
        return sk_err_set(err, SK_EINVAL,
                          "filter type=%s: no such type (want node, service, "
                          "task, network, secret, config or cluster)",
                          s);
    if (k == F_EVENT && !known_action(s))
        return sk_err_set(err, SK_EINVAL,
                          "filter event=%s: no such event (want create, "
                          "update or remove)",
                          s);
    if (f->n_values[k] == FILTER_MAX_VALUES)
        return sk_err_set(err, SK_ETOOBIG, "filter %s: more than %d values",
                          key, FILTER_MAX_VALUES);
    f->values[k] =
        sk_realloc(f->values[k], (f->n_values[k] + 1) * sizeof *f->values[k]);
    f->values[k][f->n_values[k]++] = sk_strdup(s);
    return SK_OK;
}

enum sk_rc sk_events_filter_parse(const char *text,
                                  struct sk_events_filter **out,
                                  struct sk_err *err)
{
    *out = NULL;
    if (!text || !*text)
        return SK_OK;
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        return sk_err_set(err, SK_EINVAL,
                          "filters: want a JSON object of lists, e.g. "
                          "{\"type\":[\"service\"]}");
    }
    struct sk_events_filter *f = sk_calloc(1, sizeof *f);
    enum sk_rc rc = SK_OK;
    const char *key;
    json_t *vals;
    json_object_foreach(j, key, vals)
    {
        int k = 0;
        while (k < F_KEYS && strcmp(key, filter_key_names[k]) != 0)
            k++;
        if (k == F_KEYS) {
            rc = sk_err_set(err, SK_EINVAL,
                            "filter %.64s: no such key (want type, event, "
                            "service or node)",
                            key);
            break;
        }
        if (!json_is_array(vals) || json_array_size(vals) == 0) {
            rc = sk_err_set(err, SK_EINVAL, "filter %s: want a list of values",
                            key);
            break;
        }
        size_t i;
        json_t *v;
        json_array_foreach(vals, i, v)
        {
            if ((rc = filter_value(f, k, v, err)) != SK_OK)
                break;
        }
        if (rc != SK_OK)
            break;
    }
    json_decref(j);
    if (rc != SK_OK) {
        sk_events_filter_free(f);
        return rc;
    }
    *out = f;
    return SK_OK;
}

static const char *field(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s ? s : "";
}

/* An object named by name, full ID, or an ID prefix of 4 or more. */
static bool names(const char *value, const char *id, const char *name)
{
    size_t len = strlen(value);
    return strcmp(value, name) == 0 ||
           (*id && len >= 4 && strncmp(id, value, len) == 0);
}

static bool key_matches(int k, const char *value, const json_t *j)
{
    const char *type = field(j, "type");
    switch (k) {
    case F_TYPE:
        return strcmp(type, value) == 0;
    case F_EVENT:
        return strcmp(field(j, "action"), value) == 0;
    case F_SERVICE:
        if (strcmp(type, "service") == 0)
            return names(value, field(j, "id"), field(j, "name"));
        return strcmp(type, "task") == 0 &&
               names(value, field(j, "service_id"), field(j, "service_name"));
    default: /* F_NODE */
        if (strcmp(type, "node") == 0)
            return names(value, field(j, "id"), field(j, "name"));
        return strcmp(type, "task") == 0 &&
               names(value, field(j, "node_id"), field(j, "node_name"));
    }
}

bool sk_events_filter_match(const struct sk_events_filter *f, const char *line,
                            size_t len)
{
    if (!f)
        return true;
    json_t *j = json_loadb(line, len, 0, NULL);
    if (!j)
        return false;
    const char *type = field(j, "type");
    /* What the watcher must know whatever it asked for. */
    bool pass = strcmp(type, "gap") == 0 || strcmp(type, "error") == 0 ||
                strcmp(type, "store") == 0;
    if (!pass) {
        pass = true;
        for (int k = 0; k < F_KEYS && pass; k++) {
            if (!f->n_values[k])
                continue;
            bool any = false;
            for (size_t i = 0; i < f->n_values[k] && !any; i++)
                any = key_matches(k, f->values[k][i], j);
            pass = any;
        }
    }
    json_decref(j);
    return pass;
}
