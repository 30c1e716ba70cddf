/* skiff: the CLI. Global flags, finding the credentials and the managers,
 * and dispatch to the commands; nothing else.
 *
 *   skiff [--host HOST:PORT] [--config FILE] [--format table|json] [-q]
 *         COMMAND ...
 *
 * Credentials: --config, else $SKIFF_CONFIG, else /var/lib/skiff/admin.json
 * (what `skiffd --init` writes on the first manager). Managers: --host or
 * $SKIFF_HOST (comma-separated), else the ones in the credentials file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/log.h"
#include "version.h"
#include "skiff_cli.h"

struct command {
    const char *words[2];
    int (*fn)(int argc, char **argv);
    const char *help;
};

static const struct command commands[] = {
    {{"cluster", "info"},
     cmd_cluster_info,
     "cluster ID, leader, Raft term and index, managers"},
    {{"join-token", NULL},
     cmd_join_token,
     "join-token worker|manager [--rotate] [-q]"},
    {{"node", "ls"}, cmd_node_ls, "list nodes"},
    {{"node", "inspect"}, cmd_node_inspect, "show nodes in detail"},
    {{"node", "update"},
     cmd_node_update,
     "change availability and labels of a node"},
    {{"node", "promote"}, cmd_node_promote, "make workers managers"},
    {{"node", "demote"}, cmd_node_demote, "make managers workers"},
    {{"node", "rm"}, cmd_node_rm, "remove nodes from the cluster"},
    {{"service", "create"},
     cmd_service_create,
     "create a service: --name N --replicas R IMAGE [CMD...]"},
    {{"service", "ls"}, cmd_service_ls, "list services"},
    {{"service", "ps"}, cmd_service_ps, "list a service's tasks"},
    {{"service", "inspect"}, cmd_service_inspect, "show services in detail"},
    {{"service", "scale"}, cmd_service_scale, "SERVICE=REPLICAS..."},
    {{"service", "update"}, cmd_service_update, "change a service"},
    {{"service", "rollback"},
     cmd_service_rollback,
     "put a service's previous task spec back"},
    {{"service", "rm"}, cmd_service_rm, "remove services"},
    {{"service", "logs"}, cmd_service_logs, "the logs of a service's tasks"},
    {{"network", "create"},
     cmd_network_create,
     "create an overlay network: [--subnet CIDR] NAME"},
    {{"network", "ls"}, cmd_network_ls, "list networks"},
    {{"network", "inspect"}, cmd_network_inspect, "show networks in detail"},
    {{"network", "rm"}, cmd_network_rm, "remove networks"},
    {{"stack", "deploy"},
     cmd_stack_deploy,
     "create or update a stack: -c COMPOSE-FILE... STACK"},
    {{"stack", "ls"}, cmd_stack_ls, "list stacks"},
    {{"stack", "services"}, cmd_stack_services, "list a stack's services"},
    {{"stack", "ps"}, cmd_stack_ps, "list a stack's tasks"},
    {{"stack", "rm"}, cmd_stack_rm, "remove stacks and all they made"},
    {{"events", NULL}, cmd_events, "stream cluster events"},
};

enum {
    G_HOST,
    G_CONFIG,
    G_FORMAT,
    G_QUIET,
    G_TIMEOUT,
    G_CONSISTENT,
    G_STALE,
    G_VERSION,
    G_HELP,
    G_COUNT
};

static struct sk_flag gflags[G_COUNT] = {
    [G_HOST] = {.name = "host",
                .short_name = 'H',
                .type = SK_FLAG_STRING,
                .metavar = "HOST:PORT",
                .help = "manager(s) to talk to, comma-separated"},
    [G_CONFIG] = {.name = "config",
                  .type = SK_FLAG_STRING,
                  .metavar = "FILE",
                  .help = "admin credentials (default "
                          "/var/lib/skiff/admin.json)"},
    [G_FORMAT] = {.name = "format",
                  .type = SK_FLAG_ENUM,
                  .choices = (const char *const[]){"table", "json", NULL},
                  .help = "output format"},
    [G_QUIET] = {.name = "quiet",
                 .short_name = 'q',
                 .type = SK_FLAG_BOOL,
                 .help = "only IDs (or the token)"},
    [G_TIMEOUT] = {.name = "timeout",
                   .type = SK_FLAG_DURATION,
                   .help = "give up after this long (default 15s)"},
    [G_CONSISTENT] = {.name = "consistent",
                      .type = SK_FLAG_BOOL,
                      .help = "linearizable reads: the leader confirms it "
                              "still leads before answering"},
    [G_STALE] = {.name = "stale",
                 .type = SK_FLAG_BOOL,
                 .help = "read what a manager has even when it knows no "
                         "leader"},
    [G_VERSION] = {.name = "version",
                   .type = SK_FLAG_BOOL,
                   .help = "print versions"},
    [G_HELP] = HELP_FLAG,
};

static void usage(FILE *f)
{
    fprintf(f, "usage: skiff [OPTIONS] COMMAND ...\n\nOptions:\n");
    sk_flags_usage(f, gflags, G_COUNT);
    fprintf(f, "\nCommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char words[64];
        snprintf(words, sizeof words, "%s%s%s", commands[i].words[0],
                 commands[i].words[1] ? " " : "",
                 commands[i].words[1] ? commands[i].words[1] : "");
        fprintf(f, "  %-18s %s\n", words, commands[i].help);
    }
}

int main(int argc, char **argv)
{
    sk_log_init_from_env();
    /* Global flags come before the command words; those that take a value
     * may have it as the next word. */
    int first = 1;
    while (first < argc && argv[first][0] == '-') {
        const char *a = argv[first];
        bool takes_value =
            !strchr(a, '=') &&
            (strcmp(a, "--host") == 0 || strcmp(a, "-H") == 0 ||
             strcmp(a, "--config") == 0 || strcmp(a, "--format") == 0 ||
             strcmp(a, "--timeout") == 0);
        first += takes_value ? 2 : 1;
    }
    if (first > argc)
        first = argc;
    struct sk_flags_result res;
    struct sk_err err;
    if (sk_flags_parse(gflags, G_COUNT, first - 1, argv + 1, false, &res,
                       &err) != SK_OK) {
        fprintf(stderr, "skiff: %s\n", err.msg);
        usage(stderr);
        return 2;
    }
    if (gflags[G_VERSION].on) {
        sk_version_print(stdout, "skiff");
        return 0;
    }
    if (gflags[G_HELP].on || first >= argc) {
        usage(gflags[G_HELP].on ? stdout : stderr);
        return gflags[G_HELP].on ? 0 : 2;
    }
    cli.json =
        gflags[G_FORMAT].set && strcmp(gflags[G_FORMAT].str, "json") == 0;
    cli.quiet = gflags[G_QUIET].on;
    cli.consistent = gflags[G_CONSISTENT].on;
    cli.stale = gflags[G_STALE].on;
    cli.timeout_ms =
        gflags[G_TIMEOUT].set ? (unsigned)gflags[G_TIMEOUT].num : 15000;

    const struct command *cmd = NULL;
    int used = 0;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0] && !cmd; i++) {
        const struct command *c = &commands[i];
        if (strcmp(argv[first], c->words[0]) != 0)
            continue;
        if (!c->words[1]) {
            cmd = c;
            used = 1;
        } else if (first + 1 < argc &&
                   strcmp(argv[first + 1], c->words[1]) == 0) {
            cmd = c;
            used = 2;
        }
    }
    if (!cmd) {
        fprintf(stderr, "skiff: unknown command \"%s%s%s\"\n", argv[first],
                first + 1 < argc ? " " : "",
                first + 1 < argc ? argv[first + 1] : "");
        usage(stderr);
        return 2;
    }

    cli.config =
        gflags[G_CONFIG].set ? gflags[G_CONFIG].str : getenv("SKIFF_CONFIG");
    if (!cli.config || !*cli.config)
        cli.config = "/var/lib/skiff/admin.json";
    const char *env_host = getenv("SKIFF_HOST");
    cli.host_flag = gflags[G_HOST].set      ? gflags[G_HOST].str
                    : env_host && *env_host ? env_host
                                            : NULL;

    int rc = cmd->fn(argc - first - used, argv + first + used);
    if (rc == 0)
        cli_refresh_managers();
    cli_close();
    sk_flags_free(gflags, G_COUNT, &res);
    return rc;
}
