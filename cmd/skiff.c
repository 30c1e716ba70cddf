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

const struct cli_command cli_commands[] = {
    {{"cluster", "info"},
     cmd_cluster_info,
     "cluster ID, leader, Raft term and index, managers",
     NULL},
    {{"join-token", NULL},
     cmd_join_token,
     "join-token worker|manager [--rotate] [-q]",
     "worker manager"},
    {{"node", "ls"}, cmd_node_ls, "list nodes", NULL},
    {{"node", "ps"}, cmd_node_ps, "list the tasks on nodes", NULL},
    {{"node", "inspect"}, cmd_node_inspect, "show nodes in detail", NULL},
    {{"node", "update"},
     cmd_node_update,
     "change availability and labels of a node",
     NULL},
    {{"node", "promote"}, cmd_node_promote, "make workers managers", NULL},
    {{"node", "demote"}, cmd_node_demote, "make managers workers", NULL},
    {{"node", "rm"}, cmd_node_rm, "remove nodes from the cluster", NULL},
    {{"service", "create"},
     cmd_service_create,
     "create a service: --name N --replicas R IMAGE [CMD...]",
     NULL},
    {{"service", "ls"}, cmd_service_ls, "list services", NULL},
    {{"service", "ps"}, cmd_service_ps, "list services' tasks", NULL},
    {{"service", "inspect"},
     cmd_service_inspect,
     "show services in detail",
     NULL},
    {{"service", "scale"}, cmd_service_scale, "SERVICE=REPLICAS...", NULL},
    {{"service", "update"}, cmd_service_update, "change a service", NULL},
    {{"service", "rollback"},
     cmd_service_rollback,
     "put a service's previous task spec back",
     NULL},
    {{"service", "rm"}, cmd_service_rm, "remove services", NULL},
    {{"service", "logs"},
     cmd_service_logs,
     "the logs of a service's tasks",
     NULL},
    {{"network", "create"},
     cmd_network_create,
     "create an overlay network: [--subnet CIDR] NAME",
     NULL},
    {{"network", "ls"}, cmd_network_ls, "list networks", NULL},
    {{"network", "inspect"},
     cmd_network_inspect,
     "show networks in detail",
     NULL},
    {{"network", "rm"}, cmd_network_rm, "remove networks", NULL},
    {{"stack", "deploy"},
     cmd_stack_deploy,
     "create or update a stack: -c COMPOSE-FILE... STACK",
     NULL},
    {{"stack", "ls"}, cmd_stack_ls, "list stacks", NULL},
    {{"stack", "services"},
     cmd_stack_services,
     "list a stack's services",
     NULL},
    {{"stack", "ps"}, cmd_stack_ps, "list a stack's tasks", NULL},
    {{"stack", "rm"}, cmd_stack_rm, "remove stacks and all they made", NULL},
    {{"events", NULL}, cmd_events, "stream cluster events", NULL},
    {{"version", NULL},
     cmd_version,
     "the versions of the CLI and of every manager",
     NULL},
    {{"completion", NULL},
     cmd_completion,
     "completion bash: a bash completion script",
     "bash"},
};
const size_t cli_n_commands = sizeof cli_commands / sizeof cli_commands[0];

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

struct sk_flag cli_global_flags[G_COUNT] = {
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
const size_t cli_n_global_flags = G_COUNT;

static void usage(FILE *f)
{
    fprintf(f, "usage: skiff [OPTIONS] COMMAND ...\n\nOptions:\n");
    sk_flags_usage(f, cli_global_flags, G_COUNT);
    fprintf(f, "\nCommands:\n");
    for (size_t i = 0; i < cli_n_commands; i++) {
        const struct cli_command *c = &cli_commands[i];
        char words[64];
        snprintf(words, sizeof words, "%s%s%s", c->words[0],
                 c->words[1] ? " " : "", c->words[1] ? c->words[1] : "");
        fprintf(f, "  %-18s %s\n", words, c->help);
    }
    fprintf(f, "\nRun 'skiff COMMAND --help' for more on a command.\n");
}

/* `skiff service` alone, or with --help: its subcommands. */
static void group_usage(FILE *f, const char *group)
{
    fprintf(f, "usage: skiff %s COMMAND\n\nCommands:\n", group);
    for (size_t i = 0; i < cli_n_commands; i++) {
        const struct cli_command *c = &cli_commands[i];
        if (c->words[1] && strcmp(c->words[0], group) == 0)
            fprintf(f, "  %-10s %s\n", c->words[1], c->help);
    }
    fprintf(f, "\nRun 'skiff %s COMMAND --help' for more on a command.\n",
            group);
}

static bool is_group(const char *word)
{
    for (size_t i = 0; i < cli_n_commands; i++)
        if (cli_commands[i].words[1] &&
            strcmp(cli_commands[i].words[0], word) == 0)
            return true;
    return false;
}

static bool is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

/* Does this global flag (as written: "--host", "-H", "--host=x") take
 * the next word as its value? */
static bool global_takes_value(const char *a)
{
    if (strchr(a, '='))
        return false;
    for (size_t i = 0; i < G_COUNT; i++) {
        const struct sk_flag *f = &cli_global_flags[i];
        if (f->type == SK_FLAG_BOOL)
            continue;
        if ((a[1] == '-' && strcmp(a + 2, f->name) == 0) ||
            (f->short_name && a[1] == f->short_name && a[2] == '\0'))
            return true;
    }
    return false;
}

/* The command argv names, and how many words it took (1 or 2); NULL
 * (with the exit code in *code) when there is none: the group's usage or
 * an unknown command was printed. */
static const struct cli_command *find_command(int argc, char **argv, int *used,
                                              int *code)
{
    const char *w0 = argv[0], *w1 = argc > 1 ? argv[1] : NULL;
    for (size_t i = 0; i < cli_n_commands; i++) {
        const struct cli_command *c = &cli_commands[i];
        if (strcmp(w0, c->words[0]) != 0)
            continue;
        if (!c->words[1]) {
            *used = 1;
            return c;
        }
        if (w1 && strcmp(w1, c->words[1]) == 0) {
            *used = 2;
            return c;
        }
    }
    if (is_group(w0) && (!w1 || is_help(w1))) {
        group_usage(w1 ? stdout : stderr, w0);
        *code = w1 ? 0 : 2;
    } else if (is_group(w0)) {
        fprintf(stderr,
                "skiff: unknown command \"%s %s\"\nSee 'skiff %s --help'.\n",
                w0, w1, w0);
        *code = 2;
    } else {
        fprintf(stderr, "skiff: unknown command \"%s\"\nSee 'skiff --help'.\n",
                w0);
        *code = 2;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    sk_log_init_from_env();
    /* Global flags come before the command words; those that take a value
     * may have it as the next word. */
    int first = 1;
    while (first < argc && argv[first][0] == '-')
        first += global_takes_value(argv[first]) ? 2 : 1;
    if (first > argc)
        first = argc;
    struct sk_flags_result res;
    struct sk_err err;
    if (sk_flags_parse(cli_global_flags, G_COUNT, first - 1, argv + 1, false,
                       &res, &err) != SK_OK) {
        fprintf(stderr, "skiff: %s\nSee 'skiff --help'.\n", err.msg);
        return 2;
    }
    if (cli_global_flags[G_VERSION].on) {
        sk_version_print(stdout, "skiff");
        return 0;
    }
    if (cli_global_flags[G_HELP].on || first >= argc) {
        usage(cli_global_flags[G_HELP].on ? stdout : stderr);
        return cli_global_flags[G_HELP].on ? 0 : 2;
    }
    cli.json = cli_global_flags[G_FORMAT].set &&
               strcmp(cli_global_flags[G_FORMAT].str, "json") == 0;
    cli.quiet = cli_global_flags[G_QUIET].on;
    cli.consistent = cli_global_flags[G_CONSISTENT].on;
    cli.stale = cli_global_flags[G_STALE].on;
    cli.timeout_ms = cli_global_flags[G_TIMEOUT].set
                         ? (unsigned)cli_global_flags[G_TIMEOUT].num
                         : 15000;

    int used = 0, code = 2;
    const struct cli_command *cmd =
        find_command(argc - first, argv + first, &used, &code);
    if (!cmd)
        return code;

    cli.config = cli_global_flags[G_CONFIG].set ? cli_global_flags[G_CONFIG].str
                                                : getenv("SKIFF_CONFIG");
    if (!cli.config || !*cli.config)
        cli.config = "/var/lib/skiff/admin.json";
    const char *env_host = getenv("SKIFF_HOST");
    cli.host_flag = cli_global_flags[G_HOST].set ? cli_global_flags[G_HOST].str
                    : env_host && *env_host      ? env_host
                                                 : NULL;

    int rc = cmd->fn(argc - first - used, argv + first + used);
    if (rc == 0)
        cli_refresh_managers();
    cli_close();
    sk_flags_free(cli_global_flags, G_COUNT, &res);
    return rc;
}
