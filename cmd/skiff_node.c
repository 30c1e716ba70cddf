/* skiff node ls|inspect|update|promote|demote|rm. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/mem.h"
#include "skiff/objects.h"
#include "skiff_cli.h"

static const char *engine(const json_t *n)
{
    const char *v = jstr(n, "description.engine_version");
    return *v ? v : "-";
}

int cmd_node_ls(int argc, char **argv)
{
    enum { QUIET, HELP, N };
    struct sk_flag f[N] = {
        [QUIET] = {.name = "quiet",
                   .short_name = 'q',
                   .type = SK_FLAG_BOOL,
                   .help = "only IDs"},
        [HELP] = HELP_FLAG,
    };
    struct sk_flags_result res;
    int code;
    if (!parse_flags("skiff node ls [-q]", f, N, argc, argv, false, &res,
                     &code))
        return code;
    bool quiet = f[QUIET].on || cli.quiet;
    sk_flags_free(f, N, &res);
    json_t *nodes;
    struct sk_err err;
    if (cli_call("GET", "/v1/nodes", NULL, &nodes, &err) != SK_OK)
        return fail_err(&err);
    size_t i;
    json_t *n;
    if (cli.json) {
        print_json(nodes);
    } else if (quiet) {
        json_array_foreach(nodes, i, n) printf("%s\n", jstr(n, "id"));
    } else {
        struct table t;
        table_init(&t, 7, "ID", "HOSTNAME", "STATUS", "AVAILABILITY",
                   "MANAGER STATUS", "ADDRESS", "ENGINE VERSION");
        json_array_foreach(nodes, i, n)
        {
            char st[32], av[32], ms[32];
            table_row(&t, jstr(n, "id"), jstr(n, "spec.name"),
                      title(jstr(n, "status.state"), st, sizeof st),
                      title(jstr(n, "spec.availability"), av, sizeof av),
                      title(jstr(n, "manager_status"), ms, sizeof ms),
                      jstr(n, "description.addr"), engine(n));
        }
        table_print(&t);
        table_free(&t);
    }
    json_decref(nodes);
    return 0;
}

int cmd_node_inspect(int argc, char **argv)
{
    return cli_inspect("nodes", "skiff node inspect NODE...", argc, argv);
}

enum { U_AVAIL, U_LABEL_ADD, U_LABEL_RM, U_ROLE, U_HELP, U_N };

/* ENUM flags: their choices are the schema's names, so num is the value. */
static bool apply_update(void *obj, void *ctx, struct sk_err *err)
{
    struct sk_node_spec *spec = obj;
    struct sk_flag *f = ctx;
    if (f[U_AVAIL].set)
        spec->availability = (int)f[U_AVAIL].num;
    if (f[U_ROLE].set)
        spec->role = (int)f[U_ROLE].num;
    for (size_t i = 0; i < f[U_LABEL_ADD].n_strs; i++) {
        const char *kv = f[U_LABEL_ADD].strs[i];
        const char *eq = strchr(kv, '=');
        char *key = eq ? sk_strndup(kv, (size_t)(eq - kv)) : sk_strdup(kv);
        if (!*key) {
            free(key);
            sk_err_set(err, SK_EINVAL, "--%s \"%s\": want KEY=VALUE",
                       f[U_LABEL_ADD].name, kv);
            return false;
        }
        sk_kv_set(&spec->labels, &spec->n_labels, key, eq ? eq + 1 : "");
        free(key);
    }
    for (size_t i = 0; i < f[U_LABEL_RM].n_strs; i++) {
        const char *key = f[U_LABEL_RM].strs[i];
        if (!sk_kv_del(&spec->labels, &spec->n_labels, key)) {
            sk_err_set(err, SK_ENOTFOUND,
                       "--%s \"%s\": the node has no such label",
                       f[U_LABEL_RM].name, key);
            return false;
        }
    }
    return sk_node_spec_validate(spec, err) == SK_OK;
}

int cmd_node_update(int argc, char **argv)
{
    struct sk_flag f[U_N] = {
        [U_AVAIL] = {.name = "availability",
                     .type = SK_FLAG_ENUM,
                     .choices = sk_availability_names,
                     .help = "active, pause (no new tasks) or drain (move "
                             "tasks away)"},
        [U_LABEL_ADD] = {.name = "label-add",
                         .type = SK_FLAG_STRINGS,
                         .metavar = "KEY=VALUE",
                         .help = "add or set a label"},
        [U_LABEL_RM] = {.name = "label-rm",
                        .type = SK_FLAG_STRINGS,
                        .metavar = "KEY",
                        .help = "remove a label"},
        [U_ROLE] = {.name = "role",
                    .type = SK_FLAG_ENUM,
                    .choices = sk_node_role_names,
                    .help = "change the role (as promote/demote)"},
        [U_HELP] = HELP_FLAG,
    };
    const char *usage = "skiff node update [OPTIONS] NODE";
    struct sk_flags_result res;
    int code;
    if (!parse_flags(usage, f, U_N, argc, argv, false, &res, &code))
        return code;
    int rc = 0;
    if (res.n_positional != 1) {
        rc = fail("usage: %s", usage);
    } else if (!f[U_AVAIL].set && !f[U_LABEL_ADD].set && !f[U_LABEL_RM].set &&
               !f[U_ROLE].set) {
        rc = fail("node update: nothing to change (see --help)");
    } else {
        struct sk_err err;
        if (cli_modify("nodes", res.positional[0], &sk_node_spec_schema,
                       apply_update, f, &err) != SK_OK)
            rc = fail_err(&err);
        else if (!cli.quiet)
            printf("%s\n", res.positional[0]);
    }
    sk_flags_free(f, U_N, &res);
    return rc;
}

static int role_command(int argc, char **argv, const char *verb)
{
    char usage[64];
    snprintf(usage, sizeof usage, "skiff node %s NODE...", verb);
    struct sk_flags_result res;
    int code;
    if (!parse_positionals(usage, 0, argc, argv, &res, &code))
        return code;
    int rc = 0;
    for (size_t i = 0; i < res.n_positional && rc == 0; i++) {
        char *path = sk_printf("/v1/nodes/%s/%s", res.positional[i], verb);
        json_t *reply = NULL;
        struct sk_err err;
        if (cli_call("POST", path, NULL, &reply, &err) != SK_OK) {
            rc = fail("node %s: %s", res.positional[i], err.msg);
        } else if (!cli.quiet) {
            const char *msg = jstr(reply, "message");
            if (*msg)
                printf("node %s: %s\n", res.positional[i], msg);
            else
                printf("node %s %sd\n", res.positional[i], verb);
        }
        json_decref(reply);
        free(path);
    }
    sk_flags_free(NULL, 0, &res);
    return rc;
}

int cmd_node_promote(int argc, char **argv)
{
    return role_command(argc, argv, "promote");
}

int cmd_node_demote(int argc, char **argv)
{
    return role_command(argc, argv, "demote");
}

int cmd_node_rm(int argc, char **argv)
{
    enum { FORCE, HELP, N };
    struct sk_flag f[N] = {
        [FORCE] = {.name = "force",
                   .short_name = 'f',
                   .type = SK_FLAG_BOOL,
                   .help = "remove even if the node is ready"},
        [HELP] = HELP_FLAG,
    };
    const char *usage = "skiff node rm [--force] NODE...";
    struct sk_flags_result res;
    int code;
    if (!parse_flags(usage, f, N, argc, argv, false, &res, &code))
        return code;
    int rc = 0;
    if (res.n_positional == 0)
        rc = fail("usage: %s", usage);
    for (size_t i = 0; i < res.n_positional && rc == 0; i++) {
        char *path = sk_printf("/v1/nodes/%s%s", res.positional[i],
                               f[FORCE].on ? "?force=1" : "");
        struct sk_err err;
        if (cli_call("DELETE", path, NULL, NULL, &err) != SK_OK)
            rc = fail("node %s: %s", res.positional[i], err.msg);
        else if (!cli.quiet)
            printf("%s\n", res.positional[i]);
        free(path);
    }
    sk_flags_free(f, N, &res);
    return rc;
}
