/* skiff cluster info, join-token, events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "skiff/mem.h"
#include "skiff_cli.h"

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
    printf("Cert expiry:   %lld days\n",
           jint(c, "spec.cert_expiry_ms") / (24LL * 3600 * 1000));
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

static bool print_event(const char *line, void *ctx)
{
    if (cli.json) {
        printf("%s\n", line);
    } else {
        json_t *e = json_loads(line, 0, NULL);
        if (!e)
            return true;
        char when[32];
        long long t = jint(e, "time") / 1000;
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        const char *name = jstr(e, "name");
        const char *state = jstr(e, "state");
        printf("%s %s %s %s%s%s%s%s\n", when, jstr(e, "type"),
               jstr(e, "action"), jstr(e, "id"), *name ? " name=" : "", name,
               *state ? " state=" : "", state);
        json_decref(e);
    }
    fflush(stdout);
    return true;
}

int cmd_events(int argc, char **argv)
{
    enum { SINCE, HELP, N };
    struct sk_flag f[N] = {
        [SINCE] = {.name = "since",
                   .type = SK_FLAG_INT,
                   .min = 0,
                   .max = INT64_MAX,
                   .metavar = "INDEX",
                   .help = "replay events after this Raft index first"},
        [HELP] = HELP_FLAG,
    };
    struct sk_flags_result res;
    int code;
    if (!parse_flags("skiff events [--since INDEX]", f, N, argc, argv, false,
                     &res, &code))
        return code;
    char path[64];
    snprintf(path, sizeof path, "/v1/events%s%lld",
             f[SINCE].set ? "?since=" : "",
             f[SINCE].set ? (long long)f[SINCE].num : 0LL);
    if (!f[SINCE].set)
        snprintf(path, sizeof path, "/v1/events");
    sk_flags_free(f, N, &res);
    cli.timeout_ms = 0xffffffffu;
    struct sk_err err;
    if (cli_stream(path, print_event, NULL, &err) != SK_OK)
        return fail_err(&err);
    return 0;
}
