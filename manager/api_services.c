/* Services and tasks: create, list, inspect, update (scale included),
 * remove, `service ps` (tasks) and `service logs` (streamed from the
 * agents that run the containers). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager_internal.h"
#include "skiff/log.h"
#include "skiff/mem.h"
#include "skiff/orchestrator.h"

/* ---- reading ---- */

static json_t *service_json(struct sk_manager *m, const struct sk_service *s)
{
    json_t *j = sk_schema_encode(&sk_service_schema, s, SK_VIEW_PUBLIC);
    struct sk_service_counts c;
    sk_service_counts(m->store, s, &c);
    json_object_set_new(j, "tasks",
                        json_pack("{s:I, s:I}", "running",
                                  (json_int_t)c.running, "desired",
                                  (json_int_t)c.desired));
    return j;
}

static const struct sk_service *lookup_service(struct call *c)
{
    struct sk_err err;
    const struct sk_service *s =
        sk_store_lookup(c->m->store, SK_KIND_SERVICE, c->param[0], &err);
    if (!s)
        call_error(c, &err);
    return s;
}

static int by_service_name(const void *a, const void *b)
{
    const struct sk_service *x = *(const struct sk_service *const *)a;
    const struct sk_service *y = *(const struct sk_service *const *)b;
    return strcmp(x->spec.name, y->spec.name);
}

void api_services(struct call *c)
{
    size_t n;
    const void **all = sk_store_list(c->m->store, SK_KIND_SERVICE, &n);
    qsort(all, n, sizeof *all, by_service_name);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, service_json(c->m, all[i]));
    free(all);
    call_json(c, 200, arr);
}

void api_service_get(struct call *c)
{
    const struct sk_service *s = lookup_service(c);
    if (s)
        call_json(c, 200, service_json(c->m, s));
}

static void task_name(const struct sk_store *st, const struct sk_task *t,
                      char *buf, size_t size)
{
    const struct sk_service *s =
        sk_store_get(st, SK_KIND_SERVICE, t->service_id);
    const char *name = s ? s->spec.name : "(removed)";
    if (t->slot > 0)
        snprintf(buf, size, "%s.%lld", name, (long long)t->slot);
    else
        snprintf(buf, size, "%s.%.10s", name, t->node_id);
}

static json_t *task_json(struct sk_manager *m, const struct sk_task *t)
{
    json_t *j = sk_schema_encode(&sk_task_schema, t, SK_VIEW_PUBLIC);
    char name[128];
    task_name(m->store, t, name, sizeof name);
    json_object_set_new(j, "name", json_string(name));
    const struct sk_node *n =
        *t->node_id ? sk_store_get(m->store, SK_KIND_NODE, t->node_id) : NULL;
    if (n)
        json_object_set_new(j, "node_name", json_string(n->spec.name));
    return j;
}

struct task_list {
    const struct sk_task **v;
    size_t n, cap;
    const char *node_id;
};

static bool add_task(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    struct task_list *l = ctx;
    if (l->node_id && strcmp(t->node_id, l->node_id) != 0)
        return true;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = sk_realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = t;
    return true;
}

/* By service, slot (or node), newest first. */
static int task_order(const void *a, const void *b)
{
    const struct sk_task *x = *(const struct sk_task *const *)a;
    const struct sk_task *y = *(const struct sk_task *const *)b;
    int c = strcmp(x->service_id, y->service_id);
    if (c)
        return c;
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    if (!x->slot && (c = strcmp(x->node_id, y->node_id)))
        return c;
    if (x->generation != y->generation)
        return x->generation > y->generation ? -1 : 1;
    return strcmp(x->meta.id, y->meta.id);
}

void api_tasks(struct call *c)
{
    struct sk_manager *m = c->m;
    char svc_ref[128] = "", node_ref[128] = "";
    sk_http_query(c->req, "service", svc_ref, sizeof svc_ref);
    sk_http_query(c->req, "node", node_ref, sizeof node_ref);
    struct task_list l = {0};
    struct sk_err err;
    if (*node_ref) {
        const struct sk_node *n =
            sk_store_lookup(m->store, SK_KIND_NODE, node_ref, &err);
        if (!n) {
            call_error(c, &err);
            return;
        }
        l.node_id = n->meta.id;
    }
    if (*svc_ref) {
        const struct sk_service *s =
            sk_store_lookup(m->store, SK_KIND_SERVICE, svc_ref, &err);
        if (!s) {
            call_error(c, &err);
            return;
        }
        sk_store_each_task_of_service(m->store, s->meta.id, add_task, &l);
    } else {
        sk_store_each(m->store, SK_KIND_TASK, add_task, &l);
    }
    qsort(l.v, l.n, sizeof *l.v, task_order);
    json_t *arr = json_array();
    for (size_t i = 0; i < l.n; i++)
        json_array_append_new(arr, task_json(m, l.v[i]));
    free(l.v);
    call_json(c, 200, arr);
}

/* ---- writing ---- */

/* The networks a spec names, by name, ID or ID prefix as given: their
 * IDs filled in; each at most once. */
static enum sk_rc resolve_networks(const struct sk_store *s,
                                   struct sk_service_spec *spec,
                                   struct sk_err *err)
{
    struct sk_task_spec *t = &spec->task;
    for (size_t i = 0; i < t->n_networks; i++) {
        struct sk_network_ref *r = &t->networks[i];
        /* An update sends back the ID resolved before: it stands while it
         * is still what the target names (a prefix may have become
         * ambiguous since). */
        const struct sk_network *n =
            *r->id ? sk_store_get(s, SK_KIND_NETWORK, r->id) : NULL;
        if (n && strcmp(n->spec.name, r->target) != 0 &&
            strncmp(n->meta.id, r->target, strlen(r->target)) != 0)
            n = NULL;
        if (!n)
            n = sk_store_lookup(s, SK_KIND_NETWORK, r->target, err);
        if (!n) {
            if (err->code == SK_ENOTFOUND)
                return sk_err_set(err, SK_ENOTFOUND,
                                  "service \"%s\": network \"%s\" does not "
                                  "exist",
                                  spec->name, r->target);
            return sk_err_wrap(err, "service \"%s\"", spec->name);
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(t->networks[j].id, n->meta.id) == 0)
                return sk_err_set(err, SK_EINVAL,
                                  "service \"%s\": network \"%s\" is given "
                                  "twice",
                                  spec->name, n->spec.name);
        memcpy(r->id, n->meta.id, SK_ID_SIZE);
    }
    return SK_OK;
}

/* Decodes and checks a spec against the schema, its own rules and the
 * cluster's policy; resolves its networks. */
static bool read_spec(struct call *c, struct sk_service_spec *spec)
{
    const json_t *j = json_object_get(c->body, "spec");
    if (!j) {
        call_errorf(c, SK_EINVAL, "body needs \"spec\"");
        return false;
    }
    struct sk_err err;
    const struct sk_cluster *cl = sk_store_cluster(c->m->store);
    if (sk_schema_decode(&sk_service_spec_schema, j, spec, "spec", &err) !=
            SK_OK ||
        sk_service_spec_validate(spec, &err) != SK_OK ||
        (cl && sk_service_spec_check_policy(&cl->spec, spec, &err) != SK_OK) ||
        resolve_networks(c->m->store, spec, &err) != SK_OK) {
        if (err.code == SK_OK)
            err.code = SK_EINVAL;
        sk_schema_free(&sk_service_spec_schema, spec);
        call_error(c, &err);
        return false;
    }
    return true;
}

void api_service_create(struct call *c)
{
    struct sk_manager *m = c->m;
    if (!call_body(c))
        return;
    struct sk_service_spec spec;
    if (!read_spec(c, &spec))
        return;
    if (sk_store_get_by_name(m->store, SK_KIND_SERVICE, spec.name)) {
        call_errorf(c, SK_EEXIST, "service \"%s\" already exists", spec.name);
        sk_schema_free(&sk_service_spec_schema, &spec);
        return;
    }
    struct sk_service *s = sk_object_new(SK_KIND_SERVICE);
    sk_id_new(s->meta.id);
    s->spec = spec;
    s->spec_version = 1;
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_SERVICE, s);
    char *log = sk_printf("service %s created (%s)", spec.name, s->meta.id);
    json_t *reply =
        json_pack("{s:s, s:s}", "id", s->meta.id, "name", spec.name);
    sk_object_free(SK_KIND_SERVICE, s);
    call_propose_logged(c, t, reply, log);
}

void api_service_update(struct call *c)
{
    if (!call_body(c))
        return;
    const struct sk_service *cur = lookup_service(c);
    if (!cur)
        return;
    const json_t *jver = json_object_get(c->body, "version");
    if (jver && (!json_is_integer(jver) || json_integer_value(jver) < 0)) {
        call_errorf(c, SK_EINVAL, "version must be a non-negative integer");
        return;
    }
    struct sk_service_spec spec;
    if (!read_spec(c, &spec))
        return;
    if (spec.mode != cur->spec.mode) {
        call_errorf(c, SK_EINVAL,
                    "service \"%s\": the mode (replicated/global) cannot "
                    "change; create a new service",
                    cur->spec.name);
        sk_schema_free(&sk_service_spec_schema, &spec);
        return;
    }
    struct sk_service *u = sk_object_dup(SK_KIND_SERVICE, cur);
    bool task_changed =
        !sk_schema_equal(&sk_task_spec_schema, &cur->spec.task, &spec.task);
    if (task_changed) {
        /* The old spec is kept for `service rollback`. */
        sk_schema_free(&sk_service_spec_schema, u->previous_spec);
        free(u->previous_spec);
        u->previous_spec = sk_malloc(sizeof *u->previous_spec);
        sk_schema_copy(&sk_service_spec_schema, u->previous_spec, &cur->spec);
        u->spec_version++;
        u->update_status.state = SK_UPDATE_UPDATING;
        u->update_status.started_at = mgr_now_ms();
        u->update_status.completed_at = 0;
        free(u->update_status.message);
        u->update_status.message = sk_strdup("update in progress");
    }
    sk_schema_free(&sk_service_spec_schema, &u->spec);
    u->spec = spec;
    struct sk_txn *t = sk_txn_new();
    sk_txn_update(t, SK_KIND_SERVICE, u,
                  jver ? (uint64_t)json_integer_value(jver) : 0);
    char *log = sk_printf("service %s updated%s", u->spec.name,
                          task_changed ? " (tasks will be replaced)" : "");
    json_t *reply = json_pack("{s:s, s:b}", "id", u->meta.id, "tasks_replaced",
                              task_changed);
    sk_object_free(SK_KIND_SERVICE, u);
    call_propose_logged(c, t, reply, log);
}

/* `service rollback`: the previous task spec back, like the failure
 * action rollback. */
void api_service_rollback(struct call *c)
{
    const struct sk_service *cur = lookup_service(c);
    if (!cur)
        return;
    if (!cur->previous_spec) {
        call_errorf(c, SK_EINVAL,
                    "service \"%s\" has no previous spec to roll back to "
                    "(it was never updated)",
                    cur->spec.name);
        return;
    }
    const struct sk_task_spec *prev = &cur->previous_spec->task;
    for (size_t i = 0; i < prev->n_networks; i++)
        if (!sk_store_get(c->m->store, SK_KIND_NETWORK, prev->networks[i].id)) {
            call_errorf(c, SK_ENOTFOUND,
                        "service \"%s\": cannot roll back: its previous spec "
                        "names network \"%s\", which no longer exists",
                        cur->spec.name, prev->networks[i].target);
            return;
        }
    struct sk_service *u = sk_object_dup(SK_KIND_SERVICE, cur);
    sk_service_roll_back(u, mgr_now_ms(), sk_strdup("rollback requested"));
    struct sk_txn *t = sk_txn_new();
    sk_txn_update(t, SK_KIND_SERVICE, u, cur->meta.version);
    char *log = sk_printf("service %s: rolling back", u->spec.name);
    json_t *reply = json_pack("{s:s}", "id", u->meta.id);
    sk_object_free(SK_KIND_SERVICE, u);
    call_propose_logged(c, t, reply, log);
}

void api_service_remove(struct call *c)
{
    const struct sk_service *s = lookup_service(c);
    if (!s)
        return;
    struct sk_txn *t = sk_txn_new();
    sk_txn_delete(t, SK_KIND_SERVICE, s->meta.id, s->meta.version);
    call_propose_logged(c, t, json_pack("{s:s}", "id", s->meta.id),
                        sk_printf("service %s removed", s->spec.name));
}

/* ---- logs: one stream per task, from its node's agent ---- */

struct logs;

struct log_source {
    struct logs *l;
    struct sk_http_call http;
    char *url;
    char task[128];
    char task_id[SK_ID_SIZE];
    char node[64];
    char *partial; /* an incomplete line from the agent */
    size_t partial_len;
    bool done;
};

struct logs {
    struct call *c;
    struct log_source *src;
    size_t n, open;
    bool aborted, ended;
};

static void logs_write(struct logs *l, json_t *line)
{
    char *text = json_dumps(line, JSON_COMPACT);
    json_decref(line);
    size_t len = strlen(text);
    text = sk_realloc(text, len + 2);
    text[len++] = '\n';
    if (!l->ended)
        sk_http_stream_write(l->c->req, text, len);
    free(text);
}

static void logs_finish(struct logs *l)
{
    if (l->open > 0)
        return;
    if (!l->ended) {
        l->ended = true;
        sk_http_stream_end(l->c->req);
        call_handoff(l->c);
    }
    for (size_t i = 0; i < l->n; i++) {
        free(l->src[i].url);
        free(l->src[i].partial);
    }
    free(l->src);
    free(l);
}

static void relay_line(struct log_source *s, const char *line, size_t len)
{
    json_t *in = json_loadb(line, len, 0, NULL);
    if (!in)
        return;
    int stream = (int)json_integer_value(json_object_get(in, "s"));
    const char *text = json_string_value(json_object_get(in, "l"));
    const char *err = json_string_value(json_object_get(in, "error"));
    json_t *out = json_pack("{s:s, s:s, s:s}", "task", s->task, "task_id",
                            s->task_id, "node", s->node);
    if (err)
        json_object_set_new(out, "error", json_string(err));
    else
        json_object_set_new(out, "stream",
                            json_string(stream == 2 ? "stderr" : "stdout"));
    if (text)
        json_object_set_new(out, "line", json_string(text));
    json_decref(in);
    logs_write(s->l, out);
}

static bool source_data(struct sk_http_call *h, const char *buf, size_t len)
{
    struct log_source *s = h->data;
    if (s->l->aborted)
        return false;
    s->partial = sk_realloc(s->partial, s->partial_len + len + 1);
    memcpy(s->partial + s->partial_len, buf, len);
    s->partial_len += len;
    size_t start = 0;
    for (size_t i = 0; i < s->partial_len; i++) {
        if (s->partial[i] != '\n')
            continue;
        relay_line(s, s->partial + start, i - start);
        start = i + 1;
    }
    memmove(s->partial, s->partial + start, s->partial_len - start);
    s->partial_len -= start;
    return true;
}

static void source_done(struct sk_http_call *h)
{
    struct log_source *s = h->data;
    struct logs *l = s->l;
    struct sk_err err;
    if (!l->aborted && sk_http_call_api_error(h, &err) != SK_OK &&
        err.code != SK_ECANCELED) {
        /* Name the node and go on with the others: never hang on one. */
        logs_write(l, json_pack("{s:s, s:s, s:s, s:s+}", "task", s->task,
                                "task_id", s->task_id, "node", s->node, "error",
                                "logs unavailable: ", err.msg));
    }
    sk_http_call_reset(h);
    s->done = true;
    l->open--;
    logs_finish(l);
}

static void logs_abort(struct sk_http_req *req)
{
    struct logs *l = req->data;
    l->aborted = true;
    for (size_t i = 0; i < l->n; i++)
        if (!l->src[i].done)
            sk_http_call_cancel(&l->src[i].http);
}

void api_service_logs(struct call *c)
{
    struct sk_manager *m = c->m;
    const struct sk_service *svc = lookup_service(c);
    if (!svc)
        return;
    char follow[8] = "", tail[16] = "";
    bool f = sk_http_query(c->req, "follow", follow, sizeof follow) &&
             strcmp(follow, "0") != 0 && strcmp(follow, "false") != 0;
    sk_http_query(c->req, "tail", tail, sizeof tail);
    for (const char *p = tail; *p; p++)
        if (*p < '0' || *p > '9') {
            call_errorf(c, SK_EINVAL, "tail must be a number of lines");
            return;
        }
    struct task_list tl = {0};
    sk_store_each_task_of_service(m->store, svc->meta.id, add_task, &tl);
    qsort(tl.v, tl.n, sizeof *tl.v, task_order);
    struct logs *l = sk_calloc(1, sizeof *l);
    l->c = c;
    l->src = sk_calloc(tl.n ? tl.n : 1, sizeof *l->src);
    c->req->data = l;
    c->req->abort_cb = logs_abort;
    sk_http_stream_begin(c->req, 200, "application/x-ndjson");
    for (size_t i = 0; i < tl.n; i++) {
        const struct sk_task *t = tl.v[i];
        if (!t->status.container_id || !*t->node_id)
            continue;
        const struct sk_node *n =
            sk_store_get(m->store, SK_KIND_NODE, t->node_id);
        struct log_source *s = &l->src[l->n++];
        s->l = l;
        task_name(m->store, t, s->task, sizeof s->task);
        memcpy(s->task_id, t->meta.id, SK_ID_SIZE);
        snprintf(s->node, sizeof s->node, "%s", n ? n->spec.name : "?");
        if (!n || !n->description.agent_addr) {
            logs_write(l, json_pack("{s:s, s:s, s:s, s:s}", "task", s->task,
                                    "task_id", s->task_id, "node", s->node,
                                    "error",
                                    "logs unavailable: the node's agent "
                                    "address is unknown"));
            s->done = true;
            continue;
        }
        s->url = sk_printf("https://%s/v1/agent/logs?container=%s%s%s%s",
                           n->description.agent_addr, t->status.container_id,
                           f ? "&follow=1" : "", *tail ? "&tail=" : "", tail);
        s->http.url = s->url;
        s->http.tls = &m->agent_creds;
        s->http.connect_timeout_ms = 2000;
        s->http.timeout_ms = f ? 0 : 20000;
        s->http.on_data = source_data;
        s->http.cb = source_done;
        s->http.data = s;
        if (sk_http_call_start(&m->client, &s->http) != 0) {
            s->done = true;
            continue;
        }
        l->open++;
    }
    free(tl.v);
    logs_finish(l);
}
