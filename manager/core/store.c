#include "skiff/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/constraint.h"
#include "skiff/list.h"
#include "skiff/map.h"
#include "skiff/ipv4.h"
#include "skiff/mem.h"

/* A stored object with the links that index tasks by service and node. */
struct entry {
    enum sk_kind kind;
    void *obj;
    struct sk_list svc_link;  /* tasks of one service */
    struct sk_list node_link; /* tasks on one node */
    /* Services: the placement, parsed once when the service is written. */
    struct sk_placement_rules *placement;
};

/* The tasks of one service or one node. */
struct group {
    struct sk_list tasks; /* struct entry, by svc_link or node_link */
    size_t count;
};

struct watcher {
    unsigned id;
    sk_store_watch_cb cb;
    void *ctx;
};

struct sk_store {
    struct sk_map by_id[SK_KIND_COUNT];   /* id -> entry */
    struct sk_map by_name[SK_KIND_COUNT]; /* name -> entry */
    struct sk_map tasks_by_service;       /* service id -> group */
    struct sk_map tasks_by_node;          /* node id -> group */
    uint64_t index;
    struct watcher *watchers;
    size_t n_watchers;
    unsigned next_watcher_id;
};

struct sk_store *sk_store_new(void)
{
    struct sk_store *s = sk_calloc(1, sizeof *s);
    for (int k = 0; k < SK_KIND_COUNT; k++) {
        sk_map_init(&s->by_id[k]);
        sk_map_init(&s->by_name[k]);
    }
    sk_map_init(&s->tasks_by_service);
    sk_map_init(&s->tasks_by_node);
    s->next_watcher_id = 1;
    return s;
}

static void free_groups(struct sk_map *m)
{
    struct sk_map_iter it;
    void *g;
    sk_map_iter_init(&it, m);
    while (sk_map_iter_next(&it, NULL, &g))
        free(g);
    sk_map_clear(m);
}

/* Drops every object (not the watchers). */
static void clear_objects(struct sk_store *s)
{
    for (int k = 0; k < SK_KIND_COUNT; k++) {
        struct sk_map_iter it;
        void *v;
        sk_map_iter_init(&it, &s->by_id[k]);
        while (sk_map_iter_next(&it, NULL, &v)) {
            struct entry *e = v;
            sk_placement_rules_free(e->placement);
            free(e->placement);
            sk_object_free(e->kind, e->obj);
            free(e);
        }
        sk_map_clear(&s->by_id[k]);
        sk_map_clear(&s->by_name[k]);
    }
    free_groups(&s->tasks_by_service);
    free_groups(&s->tasks_by_node);
}

void sk_store_free(struct sk_store *s)
{
    if (!s)
        return;
    clear_objects(s);
    free(s->watchers);
    free(s);
}

uint64_t sk_store_index(const struct sk_store *s)
{
    return s->index;
}

/* ---- task indices ---- */

static struct sk_list *group_link(struct entry *e, bool by_node)
{
    return by_node ? &e->node_link : &e->svc_link;
}

static void group_add(struct sk_map *m, const char *key, struct entry *e,
                      bool by_node)
{
    if (!*key)
        return;
    struct group *g = sk_map_get(m, key);
    if (!g) {
        g = sk_calloc(1, sizeof *g);
        sk_list_init(&g->tasks);
        sk_map_put(m, key, g);
    }
    sk_list_insert_head(&g->tasks, group_link(e, by_node));
    g->count++;
}

static void group_remove(struct sk_map *m, const char *key, struct entry *e,
                         bool by_node)
{
    if (!*key)
        return;
    struct group *g = sk_map_get(m, key);
    if (!g)
        return;
    sk_list_remove(group_link(e, by_node));
    if (--g->count == 0) {
        sk_map_del(m, key);
        free(g);
    }
}

static void visit_group(const struct sk_map *m, const char *key, bool by_node,
                        sk_store_visit_cb cb, void *ctx)
{
    const struct group *g = sk_map_get(m, key);
    if (!g)
        return;
    const struct sk_list *it, *next;
    sk_list_each_safe(it, next, &g->tasks)
    {
        const struct entry *e =
            by_node ? sk_list_entry(it, const struct entry, node_link)
                    : sk_list_entry(it, const struct entry, svc_link);
        if (!cb(e->obj, ctx))
            return;
    }
}

static void index_add(struct sk_store *s, struct entry *e)
{
    const struct sk_meta *meta = e->obj;
    sk_map_put(&s->by_id[e->kind], meta->id, e);
    const char *name = sk_object_name(e->kind, e->obj);
    if (name)
        sk_map_put(&s->by_name[e->kind], name, e);
    if (e->kind == SK_KIND_TASK) {
        const struct sk_task *t = e->obj;
        group_add(&s->tasks_by_service, t->service_id, e, false);
        group_add(&s->tasks_by_node, t->node_id, e, true);
    }
    if (e->kind == SK_KIND_SERVICE) {
        const struct sk_service *svc = e->obj;
        e->placement = sk_calloc(1, sizeof *e->placement);
        /* A spec that does not parse (validated by an older version) is
         * kept as the rules say: no node is eligible. */
        sk_placement_rules_parse(&svc->spec.task.placement, e->placement, NULL);
    }
}

static void index_remove(struct sk_store *s, struct entry *e)
{
    const struct sk_meta *meta = e->obj;
    sk_map_del(&s->by_id[e->kind], meta->id);
    const char *name = sk_object_name(e->kind, e->obj);
    if (name && sk_map_get(&s->by_name[e->kind], name) == e)
        sk_map_del(&s->by_name[e->kind], name);
    if (e->kind == SK_KIND_TASK) {
        const struct sk_task *t = e->obj;
        group_remove(&s->tasks_by_service, t->service_id, e, false);
        group_remove(&s->tasks_by_node, t->node_id, e, true);
    }
    sk_placement_rules_free(e->placement);
    free(e->placement);
    e->placement = NULL;
}

/* ---- applying commands ---- */

enum op_type { OP_CREATE, OP_UPDATE, OP_DELETE };
static const char *const op_names[] = {"create", "update", "delete", NULL};

struct op {
    enum op_type type;
    enum sk_kind kind;
    char id[SK_ID_SIZE];
    uint64_t expect;
    void *obj;           /* decoded new object (create, update) */
    struct entry *entry; /* the existing entry (update, delete) */
    void *old_obj;       /* replaced/removed object, freed after watchers */
};

static void ops_free(struct op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sk_object_free(ops[i].kind, ops[i].obj);
        sk_object_free(ops[i].kind, ops[i].old_obj);
    }
    free(ops);
}

static const char *obj_label(enum sk_kind kind, const void *obj, const char *id)
{
    const char *name = obj ? sk_object_name(kind, obj) : NULL;
    return name && *name ? name : id;
}

static enum sk_rc decode_op(const json_t *j, size_t i, struct op *op,
                            struct sk_err *err)
{
    const char *type = json_string_value(json_object_get(j, "op"));
    const char *kind = json_string_value(json_object_get(j, "kind"));
    const json_t *expect = json_object_get(j, "expect");
    int t = type ? sk_enum_index(op_names, type) : -1;
    if (t < 0)
        return sk_err_set(err, SK_EINVAL, "change %zu: unknown op \"%s\"", i,
                          type ? type : "");
    op->type = (enum op_type)t;
    if (!kind || !sk_kind_parse(kind, &op->kind))
        return sk_err_set(err, SK_EINVAL, "change %zu: unknown kind \"%s\"", i,
                          kind ? kind : "");
    if (expect && (!json_is_integer(expect) || json_integer_value(expect) < 0))
        return sk_err_set(err, SK_EINVAL, "change %zu: bad expect", i);
    op->expect = expect ? (uint64_t)json_integer_value(expect) : 0;

    if (op->type == OP_DELETE) {
        const char *id = json_string_value(json_object_get(j, "id"));
        if (!id || !sk_id_valid(id))
            return sk_err_set(err, SK_EINVAL, "change %zu: delete needs an id",
                              i);
        memcpy(op->id, id, SK_ID_SIZE);
        return SK_OK;
    }
    const json_t *o = json_object_get(j, "object");
    if (!o)
        return sk_err_set(err, SK_EINVAL, "change %zu: %s needs an object", i,
                          type);
    op->obj = sk_object_new(op->kind);
    enum sk_rc rc = sk_schema_decode(sk_kind_schema(op->kind), o, op->obj,
                                     sk_kind_name(op->kind), err);
    if (rc != SK_OK) {
        free(op->obj);
        op->obj = NULL;
        return rc;
    }
    const struct sk_meta *meta = op->obj;
    if (!*meta->id)
        return sk_err_set(err, SK_EINVAL, "change %zu: %s %s without an id", i,
                          type, kind);
    memcpy(op->id, meta->id, SK_ID_SIZE);
    return SK_OK;
}

/* Is `name` of kind taken by an object other than `self`, once the ops of
 * this command are taken into account? */
static bool name_taken(const struct sk_store *s, const struct op *ops, size_t n,
                       size_t self, const char *name)
{
    const struct op *me = &ops[self];
    /* Claimed by another op of this command. */
    for (size_t i = 0; i < n; i++) {
        if (i == self || ops[i].kind != me->kind || !ops[i].obj)
            continue;
        const char *other = sk_object_name(ops[i].kind, ops[i].obj);
        if (other && strcmp(other, name) == 0)
            return true;
    }
    const struct entry *e = sk_map_get(&s->by_name[me->kind], name);
    if (!e)
        return false;
    const struct sk_meta *holder = e->obj;
    if (strcmp(holder->id, me->id) == 0)
        return false;
    /* The holder gives the name up in this command (deleted or renamed). */
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind != me->kind || strcmp(ops[i].id, holder->id) != 0)
            continue;
        if (ops[i].type == OP_DELETE)
            return false;
        const char *renamed = sk_object_name(ops[i].kind, ops[i].obj);
        if (!renamed || strcmp(renamed, name) != 0)
            return false;
    }
    return true;
}

/* The network of id as it is once this command applies: the op's object,
 * NULL if the command deletes it, else the store's. */
static const struct sk_network *network_after(const struct sk_store *s,
                                              const struct op *ops, size_t n,
                                              const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (ops[i].kind == SK_KIND_NETWORK && strcmp(ops[i].id, id) == 0)
            return ops[i].obj; /* NULL for a delete */
    return sk_store_get(s, SK_KIND_NETWORK, id);
}

struct clash {
    const struct sk_store *s;
    const struct op *ops;
    size_t n;
    const struct sk_network *me;
    uint32_t base, mask;
    bool has_subnet;
    const struct sk_network *with;
};

static bool networks_clash(const struct sk_network *a,
                           const struct sk_network *b, const struct clash *c)
{
    if (a->vni && a->vni == b->vni)
        return true;
    uint32_t base;
    int prefix;
    if (!c->has_subnet || !b->subnet ||
        !sk_cidr_parse(b->subnet, &base, &prefix))
        return false;
    uint32_t m = c->mask & sk_ipv4_mask(prefix);
    return (c->base & m) == (base & m);
}

static bool find_clash(const void *obj, void *ctx)
{
    struct clash *c = ctx;
    const struct sk_network *other = obj;
    if (strcmp(other->meta.id, c->me->meta.id) == 0)
        return true;
    other = network_after(c->s, c->ops, c->n, other->meta.id);
    if (other && networks_clash(c->me, other, c)) {
        c->with = other;
        return false;
    }
    return true;
}

/* Two networks may not share a VNI or overlapping subnets: proposers
 * allocate from what is committed, so two of them racing would otherwise
 * both win. */
static const struct sk_network *network_clash(const struct sk_store *s,
                                              const struct op *ops, size_t n,
                                              size_t self)
{
    struct clash c = {.s = s, .ops = ops, .n = n, .me = ops[self].obj};
    int prefix;
    c.has_subnet =
        c.me->subnet && sk_cidr_parse(c.me->subnet, &c.base, &prefix);
    if (c.has_subnet)
        c.mask = sk_ipv4_mask(prefix);
    for (size_t i = 0; i < n; i++) {
        if (i == self || ops[i].kind != SK_KIND_NETWORK || !ops[i].obj ||
            sk_store_get(s, SK_KIND_NETWORK, ops[i].id))
            continue; /* store members are visited below */
        if (networks_clash(c.me, ops[i].obj, &c))
            return ops[i].obj;
    }
    sk_store_each(s, SK_KIND_NETWORK, find_clash, &c);
    return c.with;
}

/* The service of id as it is once this command applies (NULL: deleted or
 * absent). */
static const struct sk_service *service_after(const struct sk_store *s,
                                              const struct op *ops, size_t n,
                                              const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (ops[i].kind == SK_KIND_SERVICE && strcmp(ops[i].id, id) == 0)
            return ops[i].obj;
    return sk_store_get(s, SK_KIND_SERVICE, id);
}

static bool names_network(const struct sk_service *svc, const char *id)
{
    for (size_t i = 0; svc && i < svc->spec.task.n_networks; i++)
        if (strcmp(svc->spec.task.networks[i].id, id) == 0)
            return true;
    return false;
}

struct user {
    const struct sk_store *s;
    const struct op *ops;
    size_t n;
    const char *network_id;
    const struct sk_service *found;
};

static bool find_user(const void *obj, void *ctx)
{
    struct user *u = ctx;
    const struct sk_service *svc =
        service_after(u->s, u->ops, u->n, ((const struct sk_meta *)obj)->id);
    if (names_network(svc, u->network_id)) {
        u->found = svc;
        return false;
    }
    return true;
}

/* A service that names the network once this command applies, or NULL. */
static const struct sk_service *network_user(const struct sk_store *s,
                                             const struct op *ops, size_t n,
                                             const char *network_id)
{
    struct user u = {.s = s, .ops = ops, .n = n, .network_id = network_id};
    for (size_t i = 0; i < n; i++)
        if (ops[i].kind == SK_KIND_SERVICE && ops[i].type == OP_CREATE &&
            names_network(ops[i].obj, network_id))
            return ops[i].obj;
    sk_store_each(s, SK_KIND_SERVICE, find_user, &u);
    return u.found;
}

/* A service names only networks that exist, and a network goes only once
 * no service names it: proposers check against what is committed, so a
 * removal racing a create would otherwise leave a service on no network. */
static enum sk_rc check_network_refs(const struct sk_store *s,
                                     const struct op *ops, size_t n,
                                     const struct op *op, struct sk_err *err)
{
    if (op->kind == SK_KIND_SERVICE && op->obj) {
        const struct sk_service *svc = op->obj;
        for (size_t i = 0; i < svc->spec.task.n_networks; i++) {
            const struct sk_network_ref *r = &svc->spec.task.networks[i];
            if (!network_after(s, ops, n, r->id))
                return sk_err_set(err, SK_ENOTFOUND,
                                  "service \"%s\": network \"%s\" does not "
                                  "exist",
                                  svc->spec.name ? svc->spec.name : op->id,
                                  r->target ? r->target : r->id);
        }
    }
    if (op->kind == SK_KIND_NETWORK && op->type == OP_DELETE && op->entry) {
        const struct sk_network *net = op->entry->obj;
        const struct sk_service *user = network_user(s, ops, n, op->id);
        if (user)
            return sk_err_set(err, SK_ECONFLICT,
                              "network \"%s\" is in use by service \"%s\"",
                              net->spec.name ? net->spec.name : op->id,
                              user->spec.name ? user->spec.name : "");
    }
    return SK_OK;
}

static enum sk_rc check_op(const struct sk_store *s, struct op *ops, size_t n,
                           size_t i, struct sk_err *err)
{
    struct op *op = &ops[i];
    const char *kname = sk_kind_name(op->kind);
    op->entry = sk_map_get(&s->by_id[op->kind], op->id);
    const char *label = obj_label(op->kind, op->obj, op->id);
    if (op->type == OP_CREATE) {
        if (op->entry)
            return sk_err_set(err, SK_EEXIST, "%s %s already exists", kname,
                              op->id);
    } else {
        if (!op->entry)
            return sk_err_set(err, SK_ENOTFOUND, "%s \"%s\" does not exist",
                              kname, label);
        const struct sk_meta *cur = op->entry->obj;
        if (op->expect && cur->version != op->expect)
            return sk_err_set(err, SK_ECONFLICT,
                              "%s \"%s\" was changed by someone else (version "
                              "%llu, expected %llu): read it again and retry",
                              kname,
                              obj_label(op->kind, op->entry->obj, op->id),
                              (unsigned long long)cur->version,
                              (unsigned long long)op->expect);
        if (op->type == OP_UPDATE && op->kind == SK_KIND_TASK) {
            /* A task never moves to another service. */
            const struct sk_task *a = (const void *)cur, *b = op->obj;
            if (strcmp(a->service_id, b->service_id) != 0)
                return sk_err_set(err, SK_EINVAL,
                                  "task %s cannot change service", op->id);
        }
    }
    if (op->obj) {
        const char *name = sk_object_name(op->kind, op->obj);
        if (name && !*name)
            return sk_err_set(err, SK_EINVAL, "%s %s has an empty name", kname,
                              op->id);
        if (name && name_taken(s, ops, n, i, name))
            return sk_err_set(err, SK_EEXIST,
                              "%s name \"%s\" is already in use", kname, name);
    }
    const struct sk_network *clash = op->kind == SK_KIND_NETWORK && op->obj
                                         ? network_clash(s, ops, n, i)
                                         : NULL;
    if (clash)
        return sk_err_set(err, SK_ECONFLICT,
                          "network \"%s\" would share its VNI or subnet with "
                          "network \"%s\"",
                          label, clash->spec.name ? clash->spec.name : "");
    enum sk_rc rc = check_network_refs(s, ops, n, op, err);
    if (rc != SK_OK)
        return rc;
    if (op->kind == SK_KIND_CLUSTER && op->type == OP_CREATE &&
        sk_map_count(&s->by_id[SK_KIND_CLUSTER]) > 0)
        return sk_err_set(err, SK_EEXIST, "the cluster is already initialised");
    return SK_OK;
}

static void notify(struct sk_store *s, const struct sk_event *ev)
{
    /* Watchers may unwatch themselves; iterate over a stable count. */
    for (size_t i = 0; i < s->n_watchers; i++)
        s->watchers[i].cb(ev, s->watchers[i].ctx);
}

enum sk_rc sk_store_apply(struct sk_store *s, uint64_t index, const char *cmd,
                          size_t len, struct sk_err *err)
{
    if (index > s->index)
        s->index = index;
    json_error_t jerr;
    json_t *root = json_loadb(cmd, len, 0, &jerr);
    if (!root)
        return sk_err_set(err, SK_EINVAL, "change is not JSON: %s", jerr.text);
    const json_t *jops = json_object_get(root, "ops");
    const json_t *jtime = json_object_get(root, "time");
    if (!json_is_array(jops) || !json_is_integer(jtime)) {
        json_decref(root);
        return sk_err_set(err, SK_EINVAL, "change lacks ops or time");
    }
    size_t n = json_array_size(jops);
    if (n > SK_TXN_MAX_OPS) {
        json_decref(root);
        return sk_err_set(err, SK_ETOOBIG, "change has more than %d operations",
                          SK_TXN_MAX_OPS);
    }
    int64_t time = json_integer_value(jtime);
    struct op *ops = sk_calloc(n ? n : 1, sizeof *ops);
    enum sk_rc rc = SK_OK;
    for (size_t i = 0; i < n && rc == SK_OK; i++)
        rc = decode_op(json_array_get(jops, i), i, &ops[i], err);
    json_decref(root);
    /* One operation per object keeps the meaning of a change obvious. */
    struct sk_map seen;
    sk_map_init(&seen);
    for (size_t i = 0; i < n && rc == SK_OK; i++) {
        char key[SK_ID_SIZE + 4];
        snprintf(key, sizeof key, "%d:%s", (int)ops[i].kind, ops[i].id);
        if (sk_map_put(&seen, key, &ops[i]))
            rc = sk_err_set(err, SK_EINVAL, "%s %s appears twice in one change",
                            sk_kind_name(ops[i].kind), ops[i].id);
    }
    sk_map_clear(&seen);
    for (size_t i = 0; i < n && rc == SK_OK; i++)
        rc = check_op(s, ops, n, i, err);
    if (rc != SK_OK) {
        ops_free(ops, n);
        return rc;
    }

    /* Everything checks out: apply it all. */
    for (size_t i = 0; i < n; i++) {
        struct op *op = &ops[i];
        if (op->type == OP_DELETE) {
            index_remove(s, op->entry);
            op->old_obj = op->entry->obj;
            free(op->entry);
            op->entry = NULL;
            continue;
        }
        struct sk_meta *meta = op->obj;
        meta->version = index;
        meta->updated_at = time;
        if (op->type == OP_CREATE) {
            meta->created_at = time;
            struct entry *e = sk_calloc(1, sizeof *e);
            e->kind = op->kind;
            e->obj = op->obj;
            index_add(s, e);
        } else {
            const struct sk_meta *old = op->entry->obj;
            meta->created_at = old->created_at;
            index_remove(s, op->entry);
            op->old_obj = op->entry->obj;
            op->entry->obj = op->obj;
            index_add(s, op->entry);
        }
        op->obj = NULL; /* the store owns it now */
    }
    for (size_t i = 0; i < n; i++) {
        struct op *op = &ops[i];
        struct sk_event ev = {
            .type = op->type == OP_CREATE   ? SK_EV_CREATE
                    : op->type == OP_UPDATE ? SK_EV_UPDATE
                                            : SK_EV_DELETE,
            .kind = op->kind,
            .old_obj = op->old_obj,
            .new_obj =
                op->type == OP_DELETE
                    ? NULL
                    : ((struct entry *)sk_map_get(&s->by_id[op->kind], op->id))
                          ->obj,
            .index = index,
        };
        notify(s, &ev);
    }
    ops_free(ops, n);
    return SK_OK;
}

/* ---- snapshots ---- */

char *sk_store_snapshot(const struct sk_store *s, size_t *out_len)
{
    json_t *root = json_object();
    json_object_set_new(root, "index", json_integer((json_int_t)s->index));
    json_t *objects = json_object();
    for (int k = 0; k < SK_KIND_COUNT; k++) {
        json_t *arr = json_array();
        struct sk_map_iter it;
        void *v;
        sk_map_iter_init(&it, &s->by_id[k]);
        while (sk_map_iter_next(&it, NULL, &v)) {
            const struct entry *e = v;
            json_array_append_new(arr, sk_schema_encode(sk_kind_schema(e->kind),
                                                        e->obj, SK_VIEW_FULL));
        }
        json_object_set_new(objects, sk_kind_name((enum sk_kind)k), arr);
    }
    json_object_set_new(root, "objects", objects);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text)
        sk_oom(0);
    *out_len = strlen(text);
    return text;
}

enum sk_rc sk_store_restore(struct sk_store *s, const char *buf, size_t len,
                            struct sk_err *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, 0, &jerr);
    if (!root)
        return sk_err_set(err, SK_EINVAL, "snapshot is not JSON: %s",
                          jerr.text);
    const json_t *jindex = json_object_get(root, "index");
    const json_t *objects = json_object_get(root, "objects");
    if (!json_is_integer(jindex) || !json_is_object(objects)) {
        json_decref(root);
        return sk_err_set(err, SK_EINVAL, "snapshot lacks index or objects");
    }
    /* Decode everything into a fresh store first, so a bad snapshot leaves
     * this one untouched. */
    struct sk_store *fresh = sk_store_new();
    enum sk_rc rc = SK_OK;
    for (int k = 0; k < SK_KIND_COUNT && rc == SK_OK; k++) {
        const json_t *arr =
            json_object_get(objects, sk_kind_name((enum sk_kind)k));
        size_t i;
        const json_t *o;
        json_array_foreach(arr, i, o)
        {
            void *obj = sk_object_new((enum sk_kind)k);
            rc = sk_schema_decode(sk_kind_schema((enum sk_kind)k), o, obj,
                                  sk_kind_name((enum sk_kind)k), err);
            if (rc != SK_OK) {
                free(obj);
                break;
            }
            struct entry *e = sk_calloc(1, sizeof *e);
            e->kind = (enum sk_kind)k;
            e->obj = obj;
            index_add(fresh, e);
        }
    }
    if (rc != SK_OK) {
        sk_err_wrap(err, "snapshot");
        sk_store_free(fresh);
        json_decref(root);
        return rc;
    }
    clear_objects(s);
    for (int k = 0; k < SK_KIND_COUNT; k++) {
        s->by_id[k] = fresh->by_id[k];
        s->by_name[k] = fresh->by_name[k];
        sk_map_init(&fresh->by_id[k]);
        sk_map_init(&fresh->by_name[k]);
    }
    s->tasks_by_service = fresh->tasks_by_service;
    s->tasks_by_node = fresh->tasks_by_node;
    sk_map_init(&fresh->tasks_by_service);
    sk_map_init(&fresh->tasks_by_node);
    sk_store_free(fresh);
    s->index = (uint64_t)json_integer_value(jindex);
    json_decref(root);
    struct sk_event ev = {.type = SK_EV_RESET, .index = s->index};
    notify(s, &ev);
    return SK_OK;
}

/* ---- watchers ---- */

unsigned sk_store_watch(struct sk_store *s, sk_store_watch_cb cb, void *ctx)
{
    s->watchers =
        sk_realloc(s->watchers, (s->n_watchers + 1) * sizeof *s->watchers);
    s->watchers[s->n_watchers] =
        (struct watcher){.id = s->next_watcher_id++, .cb = cb, .ctx = ctx};
    return s->watchers[s->n_watchers++].id;
}

void sk_store_unwatch(struct sk_store *s, unsigned id)
{
    for (size_t i = 0; i < s->n_watchers; i++) {
        if (s->watchers[i].id == id) {
            memmove(&s->watchers[i], &s->watchers[i + 1],
                    (s->n_watchers - i - 1) * sizeof *s->watchers);
            s->n_watchers--;
            return;
        }
    }
}

/* ---- reading ---- */

const void *sk_store_get(const struct sk_store *s, enum sk_kind kind,
                         const char *id)
{
    const struct entry *e = sk_map_get(&s->by_id[kind], id);
    return e ? e->obj : NULL;
}

const struct sk_placement_rules *sk_store_placement(const struct sk_store *s,
                                                    const char *service_id)
{
    const struct entry *e = sk_map_get(&s->by_id[SK_KIND_SERVICE], service_id);
    return e ? e->placement : NULL;
}

const void *sk_store_get_by_name(const struct sk_store *s, enum sk_kind kind,
                                 const char *name)
{
    const struct entry *e = sk_map_get(&s->by_name[kind], name);
    return e ? e->obj : NULL;
}

const void *sk_store_lookup(const struct sk_store *s, enum sk_kind kind,
                            const char *ref, struct sk_err *err)
{
    const char *kname = sk_kind_name(kind);
    if (!ref || !*ref) {
        sk_err_set(err, SK_EINVAL, "no %s given", kname);
        return NULL;
    }
    const void *obj = sk_store_get(s, kind, ref);
    if (!obj)
        obj = sk_store_get_by_name(s, kind, ref);
    if (obj)
        return obj;
    size_t len = strlen(ref);
    if (len >= 4 && len < SK_ID_LEN) {
        size_t matches = 0;
        struct sk_map_iter it;
        const char *key;
        void *v;
        sk_map_iter_init(&it, &s->by_id[kind]);
        while (sk_map_iter_next(&it, &key, &v)) {
            if (strncmp(key, ref, len) == 0) {
                matches++;
                obj = ((const struct entry *)v)->obj;
            }
        }
        if (matches == 1)
            return obj;
        if (matches > 1) {
            sk_err_set(err, SK_EINVAL,
                       "%s \"%s\" is ambiguous: %zu IDs start with it", kname,
                       ref, matches);
            return NULL;
        }
    }
    sk_err_set(err, SK_ENOTFOUND, "no such %s: \"%s\"", kname, ref);
    return NULL;
}

size_t sk_store_count(const struct sk_store *s, enum sk_kind kind)
{
    return sk_map_count(&s->by_id[kind]);
}

void sk_store_each(const struct sk_store *s, enum sk_kind kind,
                   sk_store_visit_cb cb, void *ctx)
{
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, &s->by_id[kind]);
    while (sk_map_iter_next(&it, NULL, &v))
        if (!cb(((const struct entry *)v)->obj, ctx))
            return;
}

void sk_store_each_task_of_service(const struct sk_store *s,
                                   const char *service_id, sk_store_visit_cb cb,
                                   void *ctx)
{
    visit_group(&s->tasks_by_service, service_id, false, cb, ctx);
}

void sk_store_each_task_of_node(const struct sk_store *s, const char *node_id,
                                sk_store_visit_cb cb, void *ctx)
{
    visit_group(&s->tasks_by_node, node_id, true, cb, ctx);
}

size_t sk_store_count_tasks_of_service(const struct sk_store *s,
                                       const char *service_id)
{
    const struct group *g = sk_map_get(&s->tasks_by_service, service_id);
    return g ? g->count : 0;
}

const void **sk_store_list(const struct sk_store *s, enum sk_kind kind,
                           size_t *out_n)
{
    size_t n = sk_map_count(&s->by_id[kind]), i = 0;
    const void **arr = sk_calloc(n ? n : 1, sizeof *arr);
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, &s->by_id[kind]);
    while (sk_map_iter_next(&it, NULL, &v))
        arr[i++] = ((const struct entry *)v)->obj;
    *out_n = n;
    return arr;
}

const struct sk_cluster *sk_store_cluster(const struct sk_store *s)
{
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, &s->by_id[SK_KIND_CLUSTER]);
    if (sk_map_iter_next(&it, NULL, &v))
        return ((const struct entry *)v)->obj;
    return NULL;
}
