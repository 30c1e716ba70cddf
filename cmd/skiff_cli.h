/* Private to the `skiff` CLI: talking to the managers, printing tables,
 * and the command table each command file contributes to. */
#ifndef SKIFF_CLI_H
#define SKIFF_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "skiff/datadir.h"
#include "skiff/err.h"
#include "skiff/flags.h"
#include "skiff/schema.h"

struct cli {
    const char *config;    /* the credentials file */
    const char *host_flag; /* --host or $SKIFF_HOST, else NULL */
    bool connected;        /* creds and hosts loaded (cli_connect) */
    struct sk_admin_creds creds;
    char **hosts; /* managers to try, in order */
    size_t n_hosts;
    size_t preferred; /* the one that answered last */
    bool consistent;  /* --consistent: linearizable reads */
    bool stale;       /* --stale: read even without a leader */
    /* The highest Raft index this user has seen applied (kept in the file
     * CONFIG.index): every read asks for at least it, so a write is seen
     * by the next command on any manager. */
    unsigned long long seen_index, seen_loaded;
    bool json;  /* --format json */
    bool quiet; /* -q */
    unsigned timeout_ms;
    /* Set by `skiff completion`: parse_flags hands every command's usage
     * and flag table here and ends the command (exit 0) before it does
     * anything, so the completion script is made from the tables the
     * commands parse with. */
    void (*describe)(const char *usage, const struct sk_flag *flags, size_t n,
                     void *ctx);
    void *describe_ctx;
};

extern struct cli cli;

/* Loads the credentials and the list of managers, once; the calls below do
 * it themselves. */
enum sk_rc cli_connect(struct sk_err *err);
/* After a command succeeded: keeps the credentials file's list of managers
 * current (see skiff_util.c); quiet on failure. Does nothing unless the
 * command talked to a manager and no --host / SKIFF_HOST was given. */
void cli_refresh_managers(void);
/* Releases what cli_connect loaded. */
void cli_close(void);

/* Runs method on path (e.g. "/v1/nodes") against the managers, trying the
 * next one on a transport failure or an unavailable manager, for up to the
 * CLI's timeout. On success *out gets the parsed JSON reply (or NULL for an
 * empty body). On failure err has the manager's message. */
enum sk_rc cli_call(const char *method, const char *path, const json_t *body,
                    json_t **out, struct sk_err *err);
/* Streams a GET: each line goes to on_line until it returns false or the
 * server ends the stream. */
enum sk_rc cli_stream(const char *path,
                      bool (*on_line)(const char *line, void *ctx), void *ctx,
                      struct sk_err *err);

/* s percent-encoded for a URL's path or query (heap; free()). */
char *cli_escape(const char *s);
/* GET /v1/COLLECTION/REF ("nodes", "services"); NULL with err on failure. */
json_t *cli_get(const char *collection, const char *ref, struct sk_err *err);
/* Read-modify-write of an object's spec with its version: the spec is
 * decoded with spec_schema (e.g. sk_service_spec_schema) and change edits
 * it (false, with err, refuses); it goes back encoded with the same schema.
 * A version conflict means the object changed meanwhile -- often the
 * cluster itself, e.g. a node's status -- so it is read and changed again,
 * after a growing pause. */
enum sk_rc cli_modify(const char *collection, const char *ref,
                      const struct sk_schema *spec_schema,
                      bool (*change)(void *spec, void *ctx, struct sk_err *err),
                      void *ctx, struct sk_err *err);
/* `skiff KIND inspect REF...`: prints the objects as one JSON array. */
int cli_inspect(const char *collection, const char *usage, int argc,
                char **argv);

/* Every command's -h/--help. */
#define HELP_FLAG                                                              \
    {                                                                          \
        .name = "help", .short_name = 'h', .type = SK_FLAG_BOOL,               \
        .help = "this help"                                                    \
    }

/* Prints "skiff: MESSAGE" to stderr and returns 1 (for `return fail(...)`). */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int fail_err(const struct sk_err *err);
/* The command words at the start of a usage line: "skiff service create"
 * of "skiff service create [OPTIONS] IMAGE". */
void command_of(const char *usage, char *buf, size_t size);
/* Parses a command's flags. On an error prints it and "See 'skiff CMD
 * --help'." (exit code 2); on -h/--help prints the usage (exit code 0). */
bool parse_flags(const char *usage, struct sk_flag *flags, size_t n, int argc,
                 char **argv, bool stop_at_positional,
                 struct sk_flags_result *res, int *exit_code);

/* For a command whose only flag is -h/--help: parses its arguments into
 * res and wants at least one positional argument, at most max (0: any
 * number); prints the usage otherwise. On success free res with
 * sk_flags_free(NULL, 0, res). */
bool parse_positionals(const char *usage, size_t max, int argc, char **argv,
                       struct sk_flags_result *res, int *exit_code);

/* Prints JSON pretty (for --format json and inspect). */
void print_json(const json_t *j);

/* A simple aligned table. */
struct table {
    size_t cols;
    char **cells; /* rows * cols */
    size_t rows;
};
void table_init(struct table *t, size_t cols, ...);
void table_row(struct table *t, ...);
void table_print(struct table *t);
void table_free(struct table *t);

/* Small formatting helpers. */
const char *jstr(const json_t *o, const char *path); /* "a.b.c"; "" if none */
long long jint(const json_t *o, const char *path);
/* "Ready", "Active": first letter upper-cased into buf. */
const char *title(const char *s, char *buf, size_t size);
/* one or many by n: plural(n, "node", "nodes"). */
const char *plural(long long n, const char *one, const char *many);
/* "3 seconds ago" style age of a ms timestamp. */
void ago(long long ms, char *buf, size_t size);

/* The command table (skiff.c): one or two words, the function, a line of
 * help, and for completion the words its positional arguments may be
 * (space-separated), or NULL. */
struct cli_command {
    const char *words[2];
    int (*fn)(int argc, char **argv);
    const char *help;
    const char *args;
};
extern const struct cli_command cli_commands[];
extern const size_t cli_n_commands;
/* The global flags (before the command words). */
extern struct sk_flag cli_global_flags[];
extern const size_t cli_n_global_flags;

/* Commands. Each gets the arguments after its words. */
int cmd_cluster_info(int argc, char **argv);
int cmd_join_token(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_node_ls(int argc, char **argv);
int cmd_node_ps(int argc, char **argv);
int cmd_node_inspect(int argc, char **argv);
int cmd_node_update(int argc, char **argv);
int cmd_node_promote(int argc, char **argv);
int cmd_node_demote(int argc, char **argv);
int cmd_node_rm(int argc, char **argv);
int cmd_service_create(int argc, char **argv);
int cmd_service_ls(int argc, char **argv);
int cmd_service_ps(int argc, char **argv);
int cmd_service_inspect(int argc, char **argv);
int cmd_service_scale(int argc, char **argv);
int cmd_service_update(int argc, char **argv);
int cmd_service_rm(int argc, char **argv);
int cmd_service_rollback(int argc, char **argv);
int cmd_service_logs(int argc, char **argv);
int cmd_network_create(int argc, char **argv);
int cmd_network_ls(int argc, char **argv);
int cmd_network_inspect(int argc, char **argv);
int cmd_network_rm(int argc, char **argv);
int cmd_stack_deploy(int argc, char **argv);
int cmd_stack_ls(int argc, char **argv);
int cmd_stack_services(int argc, char **argv);
int cmd_stack_ps(int argc, char **argv);
int cmd_stack_rm(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_completion(int argc, char **argv);

#endif
