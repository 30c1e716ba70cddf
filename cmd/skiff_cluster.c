/* skiff cluster info, join-token, events, version. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "skiff/mem.h"
#include "skiff_cli.h"
#include "version.h"

int cmd_cluster_info(int argc, char **argv)
{
    struct sk_flag f[] = {HELP_FLAG};
    struct sk_flags_result res;
    int code;
    if (!parse_flags("skiff cluster info", f, 1, argc, argv, false, &res,
                     &code))
        return code;
    sk_flags_free(f, 1, &res);
    json_t *c;
    struct sk_err err;
    if (cli_call("GET", "/v1/cluster", NULL, &c, &err) != SK_OK)
        return fail_err(&err);
    if (cli.json) {
        print_json(c);
        json_decref(c);
        return 0;
    }
    char buf[64];
    printf("Cluster:       %s (%s)\n", jstr(c, "id"), jstr(c, "spec.name"));
    ago(jint(c, "created_at"), buf, sizeof buf);
    printf("Created:       %s\n", buf);
    printf("Leader:        %s %s\n", jstr(c, "leader.name"),
           jstr(c, "leader.api_addr"));
    printf("Raft:          term %lld, commit index %lld, applied %lld\n",
           jint(c, "raft.term"), jint(c, "raft.commit_index"),
           jint(c, "raft.applied_index"));
    printf("Nodes:         %lld (%lld ready, %lld down)\n",
           jint(c, "nodes.total"), jint(c, "nodes.ready"),
           jint(c, "nodes.down"));
    printf("Heartbeat:     %lld ms (a node is down after 3 missed)\n",
           jint(c, "spec.heartbeat_period_ms"));
    long long days = jint(c, "spec.cert_expiry_ms") / (24LL * 3600 * 1000);
    printf("Cert expiry:   %lld %s\n", days, plural(days, "day", "days"));
    printf("CA digest:     %s\n\nManagers:\n", jstr(c, "ca_digest"));
    struct table t;
    table_init(&t, 5, "NAME", "NODE ID", "API", "RAFT", "STATUS");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(c, "managers"), i, m)
    {
        char st[64], s2[32];
        snprintf(st, sizeof st, "%s%s%s",
                 title(jstr(m, "status"), s2, sizeof s2),
                 strcmp(jstr(m, "raft_member"), "voter") == 0 ? "" : " (",
                 strcmp(jstr(m, "raft_member"), "voter") == 0
                     ? ""
                     : jstr(m, "raft_member"));
        if (strcmp(jstr(m, "raft_member"), "voter") != 0)
            strncat(st, ")", sizeof st - strlen(st) - 1);
        table_row(&t, jstr(m, "name"), jstr(m, "node_id"), jstr(m, "api_addr"),
                  jstr(m, "raft_addr"), st);
    }
    table_print(&t);
    table_free(&t);
    json_decref(c);
    return 0;
}

int cmd_join_token(int argc, char **argv)
{
    enum { ROTATE, QUIET, HELP, N };
    struct sk_flag f[N] = {
        [ROTATE] = {.name = "rotate",
                    .type = SK_FLAG_BOOL,
                    .help = "replace the token; the old one stops working"},
        [QUIET] = {.name = "quiet",
                   .short_name = 'q',
                   .type = SK_FLAG_BOOL,
                   .help = "print only the token"},
        [HELP] = HELP_FLAG,
    };
    const char *usage = "skiff join-token [--rotate] [-q] worker|manager";
    struct sk_flags_result res;
    int code;
    if (!parse_flags(usage, f, N, argc, argv, false, &res, &code))
        return code;
    int rc = 0;
    if (res.n_positional != 1 || (strcmp(res.positional[0], "worker") != 0 &&
                                  strcmp(res.positional[0], "manager") != 0)) {
        rc = fail("usage: %s", usage);
        goto out;
    }
    const char *role = res.positional[0];
    bool quiet = f[QUIET].on || cli.quiet;
    json_t *reply = NULL;
    struct sk_err err;
    const char *token;
    if (f[ROTATE].on) {
        json_t *body = json_pack("{s:s}", "role", role);
        enum sk_rc r =
            cli_call("POST", "/v1/join-tokens/rotate", body, &reply, &err);
        json_decref(body);
        if (r != SK_OK) {
            rc = fail_err(&err);
            goto out;
        }
        token = jstr(reply, "token");
        if (!quiet)
            printf("The %s join token was rotated; the old one no longer "
                   "works.\n",
                   role);
    } else {
        if (cli_call("GET", "/v1/join-tokens", NULL, &reply, &err) != SK_OK) {
            rc = fail_err(&err);
            goto out;
        }
        token = jstr(reply, role);
    }
    if (quiet)
        printf("%s\n", token);
    else
        printf("To add a %s to this cluster, run on it:\n\n"
               "    skiffd --advertise-addr IP --data-path-addr IP \\\n"
               "           --join %s --token %s\n",
               role, cli.hosts[cli.preferred], token);
    json_decref(reply);
out:
    sk_flags_free(f, N, &res);
    return rc;
}

static void detail(char *buf, size_t size, const json_t *e, const char *key,
                   const char *label)
{
    const char *v = jstr(e, key);
    size_t len = strlen(buf);
    if (*v && len < size)
        snprintf(buf + len, size - len, "%s%s=%s", len ? ", " : "", label, v);
}

/* docker's manner: "TIME TYPE ACTION ID (name=..., ...)". */
static bool print_event(const char *line, void *ctx)
{
    if (cli.json) {
        printf("%s\n", line);
    } else {
        json_t *e = json_loads(line, 0, NULL);
        if (!e)
            return true;
        if (!*jstr(e, "id")) { /* gap, error, store reset */
            printf("%s %s\n", jstr(e, "type"),
                   *jstr(e, "message") ? jstr(e, "message")
                                       : jstr(e, "action"));
            json_decref(e);
            fflush(stdout);
            return true;
        }
        char when[32];
        long long ms = jint(e, "time");
        time_t tt = (time_t)(ms / 1000);
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        char what[512] = "";
        detail(what, sizeof what, e, "name", "name");
        detail(what, sizeof what, e, "service_name", "service");
        detail(what, sizeof what, e, "node_name", "node");
        detail(what, sizeof what, e, "state", "state");
        detail(what, sizeof what, e, "desired_state", "desired");
        detail(what, sizeof what, e, "availability", "availability");
        detail(what, sizeof what, e, "role", "role");
        detail(what, sizeof what, e, "mode", "mode");
        printf("%s.%03lldZ %s %s %s%s%s%s\n", when, ms % 1000, jstr(e, "type"),
               jstr(e, "action"), jstr(e, "id"), *what ? " (" : "", what,
               *what ? ")" : "");
        json_decref(e);
    }
    fflush(stdout);
    return true;
}

/* --filter KEY=VALUE values as docker's filters JSON, {"key":["v",...]};
 * NULL (with err) on a malformed one or an unknown key. */
static char *filters_json(const struct sk_flag *f, struct sk_err *err)
{
    static const char *const keys[] = {"type", "service", "node", "event",
                                       NULL};
    json_t *j = json_object();
    for (size_t i = 0; i < f->n_strs; i++) {
        const char *kv = f->strs[i], *eq = strchr(kv, '=');
        size_t k = 0;
        while (eq && keys[k] &&
               (strlen(keys[k]) != (size_t)(eq - kv) ||
                strncmp(keys[k], kv, (size_t)(eq - kv)) != 0))
            k++;
        if (!eq || !eq[1] || !keys[k]) {
            sk_err_set(err, SK_EINVAL,
                       "--filter \"%s\": want type=, service=, node= or "
                       "event=VALUE",
                       kv);
            json_decref(j);
            return NULL;
        }
        json_t *vals = json_object_get(j, keys[k]);
        if (!vals)
            json_object_set_new(j, keys[k], vals = json_array());
        json_array_append_new(vals, json_string(eq + 1));
    }
    char *text = json_object_size(j) ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return text ? text : sk_strdup("");
}

int cmd_events(int argc, char **argv)
{
    enum { SINCE, FILTER, HELP, N };
    struct sk_flag f[N] = {
        [SINCE] = {.name = "since",
                   .type = SK_FLAG_INT,
                   .min = 0,
                   .max = INT64_MAX,
                   .metavar = "INDEX",
                   .help = "replay events after this Raft index first"},
        [FILTER] = {.name = "filter",
                    .short_name = 'f',
                    .type = SK_FLAG_STRINGS,
                    .metavar = "KEY=VALUE",
                    .help = "type=node|service|task|network|..., "
                            "service=SERVICE (its tasks too), node=NODE (its "
                            "tasks too), event=create|update|remove; "
                            "repeatable: values of one key or'ed, keys "
                            "and'ed"},
        [HELP] = HELP_FLAG,
    };
    const char *usage = "skiff events [--since INDEX] [--filter KEY=VALUE]... "
                        "[--format json]";
    struct sk_flags_result res;
    int code;
    if (!parse_flags(usage, f, N, argc, argv, false, &res, &code))
        return code;
    struct sk_err err;
    int rc = 0;
    char *filters = filters_json(&f[FILTER], &err);
    if (!filters) {
        fprintf(stderr, "skiff: %s\nSee 'skiff events --help'.\n", err.msg);
        rc = 2;
        goto out;
    }
    char *q = cli_escape(filters);
    char since[32] = "";
    if (f[SINCE].set)
        snprintf(since, sizeof since, "since=%lld", (long long)f[SINCE].num);
    char *path =
        sk_printf("/v1/events%s%s%s%s%s", *since || *q ? "?" : "", since,
                  *since && *q ? "&" : "", *q ? "filters=" : "", q);
    free(q);
    free(filters);
    cli.timeout_ms = 0xffffffffu;
    if (cli_stream(path, print_event, NULL, &err) != SK_OK)
        rc = fail_err(&err);
    free(path);
out:
    sk_flags_free(f, N, &res);
    return rc;
}

/* The managers' versions come from their node descriptions: each agent
 * reports its skiffd's version when it connects, so a manager that is
 * down shows the version it last ran. */
int cmd_version(int argc, char **argv)
{
    struct sk_flag f[] = {HELP_FLAG};
    struct sk_flags_result res;
    int code;
    if (!parse_flags("skiff version", f, 1, argc, argv, false, &res, &code))
        return code;
    sk_flags_free(f, 1, &res);
    json_t *nodes = NULL;
    struct sk_err err;
    enum sk_rc got = cli_call("GET", "/v1/nodes", NULL, &nodes, &err);
    json_t *managers = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        if (strcmp(jstr(n, "spec.role"), "manager") != 0)
            continue;
        const char *v = jstr(n, "description.skiff_version");
        json_array_append_new(
            managers,
            json_pack("{s:s, s:s, s:s, s:s}", "name", jstr(n, "spec.name"),
                      "api_addr", jstr(n, "manager.api_addr"), "version",
                      *v ? v : "unknown", "status", jstr(n, "manager_status")));
    }
    json_decref(nodes);
    if (cli.json) {
        json_t *all = json_pack("{s:{s:s}}", "client", "version", sk_version());
        if (got == SK_OK)
            json_object_set(all, "managers", managers);
        print_json(all);
        json_decref(all);
    } else {
        printf("Client:   skiff %s\n", sk_version());
        if (got == SK_OK) {
            printf("Managers:\n");
            struct table t;
            table_init(&t, 4, "NAME", "API", "VERSION", "STATUS");
            json_array_foreach(managers, i, n)
            {
                char st[32];
                table_row(&t, jstr(n, "name"), jstr(n, "api_addr"),
                          jstr(n, "version"),
                          title(jstr(n, "status"), st, sizeof st));
            }
            table_print(&t);
            table_free(&t);
        }
    }
    json_decref(managers);
    /* The client's version is printed even when no manager answers. */
    return got == SK_OK ? 0 : fail_err(&err);
}
