/* skiff service ps and node ps: tasks as docker lists them -- each slot's
 * current task, then its history (earlier tasks, "\_ web.1"), with
 * --filter to narrow them and --no-trunc for whole IDs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/mem.h"
#include "skiff_cli.h"

enum { P_QUIET, P_ALL, P_FILTER, P_NO_TRUNC, P_HELP, P_COUNT };

static void declare(struct sk_flag *f)
{
    static const struct sk_flag base[P_COUNT] = {
        [P_QUIET] = {.name = "quiet",
                     .short_name = 'q',
                     .type = SK_FLAG_BOOL,
                     .help = "only IDs"},
        [P_ALL] = {.name = "all",
                   .short_name = 'a',
                   .type = SK_FLAG_BOOL,
                   .help = "every task, also those that ended (the default; "
                           "--filter desired-state=running hides them)"},
        [P_FILTER] = {.name = "filter",
                      .short_name = 'f',
                      .type = SK_FLAG_STRINGS,
                      .metavar = "KEY=VALUE",
                      .help = "desired-state=running|shutdown, node=NODE, "
                              "name=TASK, id=ID (repeatable: values of one "
                              "key or'ed, keys and'ed)"},
        [P_NO_TRUNC] = {.name = "no-trunc",
                        .type = SK_FLAG_BOOL,
                        .help = "whole IDs and image references"},
        [P_HELP] = HELP_FLAG,
    };
    memcpy(f, base, sizeof base);
}

/* ---- filters ---- */

static const char *const filter_keys[] = {"desired-state", "node", "name", "id",
                                          NULL};

static bool check_filters(const struct sk_flag *f, struct sk_err *err)
{
    for (size_t i = 0; i < f->n_strs; i++) {
        const char *kv = f->strs[i], *eq = strchr(kv, '=');
        if (!eq || eq == kv || !eq[1]) {
            sk_err_set(err, SK_EINVAL, "--filter \"%s\": want KEY=VALUE", kv);
            return false;
        }
        size_t klen = (size_t)(eq - kv);
        bool known = false;
        for (size_t k = 0; filter_keys[k] && !known; k++)
            known = strlen(filter_keys[k]) == klen &&
                    strncmp(filter_keys[k], kv, klen) == 0;
        if (!known) {
            sk_err_set(err, SK_EINVAL,
                       "--filter \"%s\": unknown key %.*s (want desired-state, "
                       "node, name or id)",
                       kv, (int)klen, kv);
            return false;
        }
        if (strncmp(kv, "desired-state=", 14) == 0 &&
            strcmp(eq + 1, "running") != 0 && strcmp(eq + 1, "shutdown") != 0) {
            sk_err_set(err, SK_EINVAL,
                       "--filter \"%s\": want desired-state=running or "
                       "desired-state=shutdown",
                       kv);
            return false;
        }
    }
    return true;
}

static bool prefix(const char *s, const char *p)
{
    return *s && strncmp(s, p, strlen(p)) == 0;
}

/* Does the task pass one filter value of key? */
static bool matches(const json_t *t, const char *key, const char *value)
{
    if (strcmp(key, "desired-state") == 0) {
        bool running = strcmp(jstr(t, "desired_state"), "running") == 0;
        return strcmp(value, "running") == 0 ? running : !running;
    }
    if (strcmp(key, "node") == 0)
        return strcmp(jstr(t, "node_name"), value) == 0 ||
               prefix(jstr(t, "node_id"), value);
    if (strcmp(key, "name") == 0)
        return prefix(jstr(t, "name"), value);
    return prefix(jstr(t, "id"), value); /* id */
}

/* Values of one key: any; different keys: all. */
static bool passes(const json_t *t, const struct sk_flag *f)
{
    for (size_t k = 0; filter_keys[k]; k++) {
        size_t klen = strlen(filter_keys[k]);
        bool given = false, any = false;
        for (size_t i = 0; i < f->n_strs; i++) {
            const char *kv = f->strs[i];
            if (strncmp(kv, filter_keys[k], klen) != 0 || kv[klen] != '=')
                continue;
            given = true;
            any |= matches(t, filter_keys[k], kv + klen + 1);
        }
        if (given && !any)
            return false;
    }
    return true;
}

/* ---- the table ---- */

/* A task's addresses, "10.0.1.5,10.0.2.7" (without the prefix lengths). */
static void addresses_text(const json_t *task, char *buf, size_t size)
{
    buf[0] = '\0';
    size_t i, j;
    json_t *att, *a;
    json_array_foreach(json_object_get(task, "networks"), i, att)
    {
        json_array_foreach(json_object_get(att, "addresses"), j, a)
        {
            const char *text = json_string_value(a);
            size_t len = strlen(buf);
            snprintf(buf + len, size - len, "%s%.*s", len ? "," : "",
                     (int)strcspn(text ? text : "", "/"), text ? text : "");
        }
    }
}

/* The same slot (replicated) or node (global) of the same service as the
 * row before: then it is that slot's history. */
static bool same_slot(const json_t *a, const json_t *b)
{
    return a && strcmp(jstr(a, "service_id"), jstr(b, "service_id")) == 0 &&
           jint(a, "slot") == jint(b, "slot") &&
           (jint(b, "slot") > 0 ||
            strcmp(jstr(a, "node_id"), jstr(b, "node_id")) == 0);
}

static void print_table(const json_t *tasks, bool no_trunc)
{
    size_t i;
    json_t *t;
    /* The addresses column only for services on networks. */
    bool nets = false;
    json_array_foreach(tasks, i, t) nets |=
        json_array_size(json_object_get(t, "networks")) > 0;
    struct table tb;
    if (nets)
        table_init(&tb, 8, "ID", "NAME", "IMAGE", "NODE", "DESIRED STATE",
                   "CURRENT STATE", "ADDRESSES", "ERROR");
    else
        table_init(&tb, 7, "ID", "NAME", "IMAGE", "NODE", "DESIRED STATE",
                   "CURRENT STATE", "ERROR");
    const json_t *before = NULL;
    json_array_foreach(tasks, i, t)
    {
        char desired[32], state[96], st[32], when[48], name[160], id[64],
            image[256];
        title(jstr(t, "desired_state"), desired, sizeof desired);
        ago(jint(t, "status.timestamp"), when, sizeof when);
        snprintf(state, sizeof state, "%s %s",
                 title(jstr(t, "status.state"), st, sizeof st), when);
        const char *error = jstr(t, "status.err");
        if (!*error && strcmp(jstr(t, "status.state"), "pending") == 0)
            error = jstr(t, "status.message");
        snprintf(name, sizeof name, "%s%s", same_slot(before, t) ? " \\_ " : "",
                 jstr(t, "name"));
        snprintf(id, sizeof id, no_trunc ? "%s" : "%.12s", jstr(t, "id"));
        const char *img = jstr(t, "spec.container.image");
        /* docker shows "nginx:1" for "nginx:1@sha256:...". */
        snprintf(image, sizeof image, "%.*s",
                 no_trunc ? (int)strlen(img) : (int)strcspn(img, "@"), img);
        if (nets) {
            char addrs[256];
            addresses_text(t, addrs, sizeof addrs);
            table_row(&tb, id, name, image, jstr(t, "node_name"), desired,
                      state, addrs, error);
        } else {
            table_row(&tb, id, name, image, jstr(t, "node_name"), desired,
                      state, error);
        }
        before = t;
    }
    table_print(&tb);
    table_free(&tb);
}

/* Lists the tasks of each ref through /v1/tasks?KEY=REF (all tasks with
 * no refs: those with a node, if on_node). */
static int list_tasks(const char *usage, const char *key, bool need_ref,
                      int argc, char **argv)
{
    struct sk_flag f[P_COUNT];
    declare(f);
    struct sk_flags_result res;
    int code;
    if (!parse_flags(usage, f, P_COUNT, argc, argv, false, &res, &code))
        return code;
    int rc = 0;
    bool quiet = f[P_QUIET].on || cli.quiet;
    json_t *shown = json_array();
    struct sk_err err;
    char cmd[64];
    command_of(usage, cmd, sizeof cmd);
    if (need_ref && res.n_positional == 0) {
        rc = fail("usage: %s", usage);
        goto out;
    }
    if (!check_filters(&f[P_FILTER], &err)) {
        fprintf(stderr, "skiff: %s\nSee '%s --help'.\n", err.msg, cmd);
        rc = 2;
        goto out;
    }
    for (size_t r = 0; r < (res.n_positional ? res.n_positional : 1); r++) {
        char *path;
        if (res.n_positional) {
            char *ref = cli_escape(res.positional[r]);
            path = sk_printf("/v1/tasks?%s=%s", key, ref);
            free(ref);
        } else {
            path = sk_strdup("/v1/tasks");
        }
        json_t *tasks = NULL;
        enum sk_rc got = cli_call("GET", path, NULL, &tasks, &err);
        free(path);
        if (got != SK_OK) {
            rc = fail_err(&err);
            goto out;
        }
        size_t i;
        json_t *t;
        json_array_foreach(tasks, i, t)
        {
            if (!res.n_positional && !*jstr(t, "node_id"))
                continue; /* node ps: not on a node yet */
            if (passes(t, &f[P_FILTER]))
                json_array_append(shown, t);
        }
        json_decref(tasks);
    }
    size_t i;
    json_t *t;
    if (cli.json)
        print_json(shown);
    else if (quiet)
        json_array_foreach(shown, i, t) printf("%s\n", jstr(t, "id"));
    else
        print_table(shown, f[P_NO_TRUNC].on);
out:
    json_decref(shown);
    sk_flags_free(f, P_COUNT, &res);
    return rc;
}

int cmd_service_ps(int argc, char **argv)
{
    return list_tasks("skiff service ps [OPTIONS] SERVICE...", "service", true,
                      argc, argv);
}

int cmd_node_ps(int argc, char **argv)
{
    return list_tasks("skiff node ps [OPTIONS] [NODE...]  (no NODE: the "
                      "tasks on every node)",
                      "node", false, argc, argv);
}
