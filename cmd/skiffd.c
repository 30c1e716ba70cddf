/* skiffd: the daemon, one per host. Flag parsing, the node's data dir, and
 * wiring of the manager and agent roles; nothing else.
 *
 *   skiffd --data-dir D --advertise-addr A [--data-path-addr B] --init
 *   skiffd --data-dir D --advertise-addr A [--data-path-addr B] \
 *          --join HOST:PORT --token T
 *   skiffd --data-dir D                      (resume)
 *
 * A data dir that already holds a membership resumes it and ignores
 * --init/--join, so restarts are idempotent. A role change (promote/demote)
 * is applied by saving the new credentials and re-executing the daemon. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <jansson.h>

#include "skiff/agent.h"
#include "skiff/ca.h"
#include "skiff/datadir.h"
#include "skiff/flags.h"
#include "skiff/http_client.h"
#include "skiff/join.h"
#include "skiff/log.h"
#include "skiff/manager.h"
#include "skiff/mem.h"
#include "skiff/objects.h"
#include "version.h"

enum {
    F_DATA_DIR,
    F_ADVERTISE,
    F_DATA_PATH,
    F_LISTEN,
    F_API_PORT,
    F_RAFT_PORT,
    F_INIT,
    F_JOIN,
    F_TOKEN,
    F_TOKEN_FILE,
    F_FORCE_NEW,
    F_HOSTNAME,
    F_HEARTBEAT,
    F_CERT_EXPIRY,
    F_ADDR_POOL,
    F_ADDR_POOL_LEN,
    F_ELECTION,
    F_ADMIN_CONFIG,
    F_DOCKER_HOST,
    F_LOG_LEVEL,
    F_VERSION,
    F_HELP,
    F_COUNT
};

static struct sk_flag flags[F_COUNT] = {
    [F_DATA_DIR] = {.name = "data-dir",
                    .type = SK_FLAG_STRING,
                    .metavar = "DIR",
                    .help = "node state (default /var/lib/skiff)"},
    [F_ADVERTISE] = {.name = "advertise-addr",
                     .type = SK_FLAG_STRING,
                     .metavar = "IP",
                     .help = "control-plane address others reach this node at"},
    [F_DATA_PATH] = {.name = "data-path-addr",
                     .type = SK_FLAG_STRING,
                     .metavar = "IP",
                     .help = "data-plane (VXLAN) address (default: advertise)"},
    [F_LISTEN] = {.name = "listen-addr",
                  .type = SK_FLAG_STRING,
                  .metavar = "IP",
                  .help = "address to listen on (default: advertise)"},
    [F_API_PORT] = {.name = "api-port",
                    .type = SK_FLAG_INT,
                    .min = 1,
                    .max = 65535,
                    .help = "HTTPS API port (default 7443)"},
    [F_RAFT_PORT] = {.name = "raft-port",
                     .type = SK_FLAG_INT,
                     .min = 1,
                     .max = 65535,
                     .help = "Raft port (default 7444)"},
    [F_INIT] = {.name = "init",
                .type = SK_FLAG_BOOL,
                .help = "create a new cluster with this node as manager"},
    [F_JOIN] = {.name = "join",
                .type = SK_FLAG_STRING,
                .metavar = "HOST:PORT",
                .help = "join the cluster of a manager"},
    [F_TOKEN] = {.name = "token",
                 .type = SK_FLAG_STRING,
                 .metavar = "TOKEN",
                 .help = "join token (SKF1-...); visible to every local user "
                         "in /proc: prefer --token-file or "
                         "$SKIFF_JOIN_TOKEN"},
    [F_TOKEN_FILE] = {.name = "token-file",
                      .type = SK_FLAG_STRING,
                      .metavar = "FILE",
                      .help = "read the join token from FILE"},
    [F_FORCE_NEW] = {.name = "force-new-cluster",
                     .type = SK_FLAG_BOOL,
                     .help = "after losing quorum: continue as the only "
                             "manager, keeping the state"},
    [F_HOSTNAME] = {.name = "hostname",
                    .type = SK_FLAG_STRING,
                    .metavar = "NAME",
                    .help = "node name (default: the host name)"},
    [F_HEARTBEAT] = {.name = "heartbeat-period",
                     .type = SK_FLAG_DURATION,
                     .help = "with --init: agents' heartbeat (default 1s)"},
    [F_CERT_EXPIRY] = {.name = "cert-expiry",
                       .type = SK_FLAG_DURATION,
                       .help = "with --init: node certificate life (default "
                               "90 days)"},
    [F_ADDR_POOL] = {.name = "default-addr-pool",
                     .type = SK_FLAG_STRING,
                     .metavar = "CIDR",
                     .help = "with --init: overlay subnets come from here "
                             "(default 10.0.0.0/8)"},
    [F_ADDR_POOL_LEN] = {.name = "default-addr-pool-mask-length",
                         .type = SK_FLAG_INT,
                         .min = 16,
                         .max = 29,
                         .metavar = "N",
                         .help = "with --init: ... in subnets of this "
                                 "prefix length (default 24)"},
    [F_ELECTION] = {.name = "election-timeout",
                    .type = SK_FLAG_DURATION,
                    .help = "Raft election timeout (default 750ms)"},
    [F_ADMIN_CONFIG] = {.name = "admin-config",
                        .type = SK_FLAG_STRING,
                        .metavar = "FILE",
                        .help = "with --init: where to write the admin "
                                "credentials (default DIR/admin.json)"},
    [F_DOCKER_HOST] = {.name = "docker-host",
                       .type = SK_FLAG_STRING,
                       .metavar = "SOCKET",
                       .help = "dockerd socket (default "
                               "/var/run/docker.sock)"},
    [F_LOG_LEVEL] = {.name = "log-level",
                     .type = SK_FLAG_ENUM,
                     .choices = (const char *const[]){"debug", "info", "warn",
                                                      "error", NULL},
                     .help = "log level (default info)"},
    [F_VERSION] = {.name = "version",
                   .type = SK_FLAG_BOOL,
                   .help = "print versions and exit"},
    [F_HELP] = {.name = "help",
                .short_name = 'h',
                .type = SK_FLAG_BOOL,
                .help = "this help"},
};

struct daemon {
    uv_loop_t *loop;
    char *dir;
    char *raft_dir;
    struct sk_local_node node;
    struct sk_manager *manager;
    struct sk_agent *agent;
    uv_signal_t sigterm, sigint;
    char **argv;
    const char *docker_socket;
    /* What this node says about itself, and where its API and Raft listen
     * ("ip:port"): filled once by describe_node. */
    struct sk_node_description description;
    char *api_addr, *raft_addr;
    bool stopping;
    bool reexec; /* after stopping, re-execute (role change) */
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "skiffd: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* DIR/NAME with DIR resolved (symbolic links, ".."), or NULL. */
static char *in_real_dir(const char *dir, const char *name)
{
    char real[PATH_MAX];
    if (!realpath(dir, real))
        return NULL;
    return sk_printf("%s/%s", strcmp(real, "/") == 0 ? "" : real, name);
}

/* The path this binary was started by, for the re-exec after a role
 * change: /proc/PID/comm is the base name of the path given to exec, so
 * exec'ing /proc/self/exe would rename the daemon "exe" and `pgrep -x
 * skiffd`, pidof and monitoring would miss it. Resolved at start (a
 * relative argv[0] means the working directory of then; a bare name, the
 * first match in $PATH); the directory is resolved, the file name kept, so
 * a daemon started through a symlink keeps that name. NULL if it cannot be
 * found (the re-exec then falls back to /proc/self/exe). */
static char *started_as(const char *argv0)
{
    if (!argv0 || !*argv0)
        return NULL;
    const char *slash = strrchr(argv0, '/');
    char *found = NULL;
    if (slash) {
        char *dir = slash == argv0 ? sk_strdup("/")
                                   : sk_strndup(argv0, (size_t)(slash - argv0));
        found = in_real_dir(dir, slash + 1);
        free(dir);
    } else {
        const char *path = getenv("PATH");
        char *copy = sk_strdup(path && *path ? path : "/usr/bin:/bin");
        char *save = NULL;
        for (char *d = strtok_r(copy, ":", &save); d && !found;
             d = strtok_r(NULL, ":", &save)) {
            char *cand = sk_printf("%s/%s", d, argv0);
            if (access(cand, X_OK) == 0)
                found = in_real_dir(d, argv0);
            free(cand);
        }
        free(copy);
    }
    if (found && access(found, X_OK) != 0) {
        free(found);
        found = NULL;
    }
    return found;
}

static const char *flag_str(int f, const char *def)
{
    return flags[f].set ? flags[f].str : def;
}

static int64_t host_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (int64_t)pages * size : 0;
}

static int64_t host_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int64_t)n * 1000000000LL : 0;
}

/* dockerd's version, or NULL if it does not answer. */
static char *engine_version(const char *socket)
{
    struct sk_http_call call = {
        .url = "http://localhost/version",
        .unix_socket = socket,
        .connect_timeout_ms = 1000,
        .timeout_ms = 2000,
        .max_response_bytes = 64 * 1024,
    };
    char *v = NULL;
    if (sk_http_call_sync(&call) == SK_OK && call.status == 200) {
        json_t *j = json_loads(call.resp_body, 0, NULL);
        const char *s = json_string_value(json_object_get(j, "Version"));
        if (s)
            v = sk_strdup(s);
        json_decref(j);
    }
    sk_http_call_reset(&call);
    return v;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *host_port(const char *host, int port)
{
    return sk_printf("%s:%d", host, port);
}

/* The one description of this node, wherever it travels: the first
 * manager's node object at --init, the join request, every heartbeat. */
static void describe_node(struct daemon *d, const char *engine)
{
    const struct sk_local_node *n = &d->node;
    d->api_addr = host_port(n->advertise_addr, n->api_port);
    d->raft_addr = host_port(n->advertise_addr, n->raft_port);
    d->description = (struct sk_node_description){
        .hostname = sk_strdup(n->hostname),
        .addr = sk_strdup(n->advertise_addr),
        .data_addr = sk_strdup(n->data_addr),
        .nano_cpus = host_cpus(),
        .memory_bytes = host_memory(),
        .engine_version = engine ? sk_strdup(engine) : NULL,
        .skiff_version = sk_strdup(sk_version()),
        /* Workers serve their agent's API on the API port; a manager
         * routes it there too. */
        .agent_addr = sk_strdup(d->api_addr),
    };
}

static void save_state(struct daemon *d)
{
    struct sk_err err;
    if (sk_local_node_save(d->dir, &d->node, &err) != SK_OK)
        SK_ERROR("skiffd", "saving node state: %s", err.msg);
}

/* ---- --init ---- */

static void do_init(struct daemon *d)
{
    struct sk_local_node *n = &d->node;
    struct sk_cluster_spec spec = {0};
    sk_schema_defaults(&sk_cluster_spec_schema, &spec);
    if (flags[F_HEARTBEAT].set)
        spec.heartbeat_period_ms = flags[F_HEARTBEAT].num;
    if (flags[F_CERT_EXPIRY].set)
        spec.cert_expiry_ms = flags[F_CERT_EXPIRY].num;
    if (flags[F_ADDR_POOL].set) {
        free(spec.default_addr_pool);
        spec.default_addr_pool = sk_strdup(flags[F_ADDR_POOL].str);
    }
    if (flags[F_ADDR_POOL_LEN].set)
        spec.default_addr_pool_mask_len = flags[F_ADDR_POOL_LEN].num;
    struct sk_err err;
    if (sk_cluster_spec_validate(&spec, &err) != SK_OK)
        die("--init: %s", err.msg);
    if (spec.heartbeat_period_ms < 100 || spec.cert_expiry_ms < 60000)
        die("--heartbeat-period must be at least 100ms and --cert-expiry at "
            "least 1m");
    unsigned char key[SK_DATA_KEY_SIZE];
    sk_data_key_new(key);
    char *api = d->api_addr;
    struct sk_bootstrap_request req = {
        .description = d->description,
        .api_addr = api,
        .raft_addr = d->raft_addr,
        .spec = &spec,
    };
    struct sk_bootstrap b;
    if (sk_ca_bootstrap(&req, key, now_ms(), &b, &err) != SK_OK)
        die("init: %s", err.msg);
    sk_schema_free(&sk_cluster_spec_schema, &spec);

    memcpy(n->node_id, b.node->meta.id, SK_ID_SIZE);
    memcpy(n->cluster_id, b.init.cluster->meta.id, SK_ID_SIZE);
    n->role = SK_ROLE_MANAGER;
    n->ca_pem = sk_strdup(b.init.cluster->ca_cert_pem);
    n->cert_pem = sk_strdup(b.node_cert);
    n->key_pem = sk_strdup(b.node_key);
    memcpy(n->data_key, key, sizeof key);
    n->has_data_key = true;
    char *managers[] = {api};
    sk_local_node_set_managers(n, managers, 1);

    /* The first change goes to disk before the membership does: a crash in
     * between leaves no node.json, and --init simply runs again. */
    char *init_path = sk_printf("%s/init.json", d->dir);
    if (sk_write_file_atomic(init_path, b.command, strlen(b.command), 0600,
                             &err) != SK_OK)
        die("%s", err.msg);
    struct sk_admin_creds admin = {
        .cluster_id = n->cluster_id,
        .ca_pem = n->ca_pem,
        .cert_pem = b.admin_cert,
        .key_pem = b.admin_key,
        .managers = managers,
        .n_managers = 1,
    };
    char *admin_path = flags[F_ADMIN_CONFIG].set
                           ? sk_strdup(flags[F_ADMIN_CONFIG].str)
                           : sk_printf("%s/admin.json", d->dir);
    if (sk_admin_creds_save(admin_path, &admin, &err) != SK_OK)
        die("admin credentials: %s", err.msg);
    save_state(d);
    /* The tokens are secrets: they go to no log, only to `skiff
     * join-token`, which needs the admin credentials. */
    printf("skiffd: cluster %s initialised; this node (%s) is its first "
           "manager.\n"
           "  admin credentials: %s\n"
           "  to join other nodes: skiff join-token worker (or manager), then\n"
           "  SKIFF_JOIN_TOKEN=... skiffd --join %s ...\n",
           n->cluster_id, n->node_id, admin_path, api);
    fflush(stdout);
    free(admin_path);
    free(init_path);
    memset(key, 0, sizeof key);
    sk_bootstrap_free(&b);
}

/* ---- --join ---- */

/* The join token, from --token-file, $SKIFF_JOIN_TOKEN or --token, in that
 * order (heap; the caller wipes it). A token is never logged. */
static char *join_token(void)
{
    if (flags[F_TOKEN_FILE].set) {
        char *text = NULL;
        size_t len;
        struct sk_err err;
        if (sk_read_file(flags[F_TOKEN_FILE].str, 1024, &text, &len, &err) !=
            SK_OK)
            die("--token-file: %s", err.msg);
        while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' ||
                       text[len - 1] == ' ' || text[len - 1] == '\t'))
            text[--len] = '\0';
        if (!len)
            die("--token-file %s: the file is empty", flags[F_TOKEN_FILE].str);
        return text;
    }
    const char *env = getenv("SKIFF_JOIN_TOKEN");
    if (env && *env) {
        char *token = sk_strdup(env);
        unsetenv("SKIFF_JOIN_TOKEN");
        return token;
    }
    if (!flags[F_TOKEN].set)
        die("--join needs a join token: --token-file FILE, $SKIFF_JOIN_TOKEN "
            "or --token TOKEN");
    SK_WARN("skiffd",
            "--token is visible to every local user in "
            "/proc/%d/cmdline: prefer --token-file or "
            "$SKIFF_JOIN_TOKEN",
            (int)getpid());
    return sk_strdup(flags[F_TOKEN].str);
}

static void do_join(struct daemon *d)
{
    struct sk_local_node *n = &d->node;
    char *token = join_token();
    struct sk_join_config cfg = {
        .manager = flags[F_JOIN].str,
        .token = token,
        .description = d->description,
        .api_addr = d->api_addr,
        .raft_addr = d->raft_addr,
    };
    struct sk_err err;
    enum sk_rc rc = sk_join_cluster(&cfg, n, &err);
    memset(token, 0, strlen(token));
    free(token);
    if (rc != SK_OK)
        die("join %s: %s", flags[F_JOIN].str, err.msg);
    save_state(d);
    SK_INFO("skiffd", "joined cluster %s as %s %s", n->cluster_id,
            sk_node_role_names[n->role], n->node_id);
}

/* ---- running ---- */

static void stopped(void *ctx)
{
    struct daemon *d = ctx;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
}

static void stop_manager(void *ctx)
{
    struct daemon *d = ctx;
    struct sk_manager *m = d->manager;
    d->manager = NULL;
    if (m)
        sk_manager_stop(m, true, stopped, d);
    else
        stopped(d);
}

/* The agent stops first, then the manager: the agent's leave is a Raft
 * write, and with a cluster down to its last two managers it needs this
 * node's own manager for a quorum. */
static void stop(struct daemon *d, bool leave)
{
    if (d->stopping)
        return;
    d->stopping = true;
    struct sk_agent *a = d->agent;
    d->agent = NULL;
    if (a)
        sk_agent_stop(a, leave, stop_manager, d);
    else
        stop_manager(d);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct daemon *d = s->data;
    SK_INFO("skiffd", "%s: stopping", strsignal(signum));
    stop(d, true);
}

static void init_done(void *ctx)
{
    struct daemon *d = ctx;
    char *path = sk_printf("%s/init.json", d->dir);
    unlink(path);
    free(path);
}

static void on_credentials(void *ctx, const char *cert, const char *key)
{
    struct daemon *d = ctx;
    free(d->node.cert_pem);
    free(d->node.key_pem);
    d->node.cert_pem = sk_strdup(cert);
    d->node.key_pem = sk_strdup(key);
    save_state(d);
    if (d->manager) {
        struct sk_err err;
        if (sk_manager_set_credentials(d->manager, cert, key, &err) != SK_OK)
            SK_ERROR("skiffd", "new certificate: %s", err.msg);
    }
}

static void on_role(void *ctx, int role, const char *cert, const char *key,
                    const unsigned char *data_key)
{
    struct daemon *d = ctx;
    free(d->node.cert_pem);
    free(d->node.key_pem);
    d->node.cert_pem = sk_strdup(cert);
    d->node.key_pem = sk_strdup(key);
    d->node.role = role;
    if (data_key) {
        memcpy(d->node.data_key, data_key, SK_DATA_KEY_SIZE);
        d->node.has_data_key = true;
    } else {
        memset(d->node.data_key, 0, SK_DATA_KEY_SIZE);
        d->node.has_data_key = false;
    }
    save_state(d);
    SK_INFO("skiffd", "role is now %s: restarting in that role",
            sk_node_role_names[role]);
    d->reexec = true;
    stop(d, false);
}

static void on_managers(void *ctx, char *const *addrs, size_t n)
{
    struct daemon *d = ctx;
    sk_local_node_set_managers(&d->node, addrs, n);
    save_state(d);
}

/* Managers serve the node's agent API on their own port. */
static void route_to_agent(void *ctx, struct sk_http_req *req)
{
    struct daemon *d = ctx;
    if (d->agent) {
        sk_agent_handle(d->agent, req);
        return;
    }
    struct sk_err err = {.code = SK_EUNAVAIL};
    snprintf(err.msg, sizeof err.msg, "the agent is not running");
    sk_http_respond_error(req, &err);
}

static void start_roles(struct daemon *d, const char *init_command)
{
    struct sk_local_node *n = &d->node;
    struct sk_err err;
    const char *api = d->api_addr, *raft = d->raft_addr;
    if (n->role == SK_ROLE_MANAGER) {
        if (!n->has_data_key)
            die("%s/node.json: a manager without the data key", d->dir);
        if (sk_mkdirs(d->raft_dir, 0700, &err) != SK_OK)
            die("%s", err.msg);
        struct sk_manager_config mc = {
            .loop = d->loop,
            .raft_dir = d->raft_dir,
            .node_id = n->node_id,
            .cluster_id = n->cluster_id,
            .listen_addr = n->listen_addr,
            .api_addr = api,
            .raft_addr = raft,
            .api_port = n->api_port,
            .raft_port = n->raft_port,
            .ca_pem = n->ca_pem,
            .cert_pem = n->cert_pem,
            .key_pem = n->key_pem,
            .bootstrap = init_command != NULL,
            .force_new_cluster = flags[F_FORCE_NEW].on,
            .init_command = init_command,
            .election_timeout_ms =
                flags[F_ELECTION].set ? (unsigned)flags[F_ELECTION].num : 0,
            .init_done_cb = init_done,
            .ctx = d,
            .agent_handler = route_to_agent,
            .agent_ctx = d,
        };
        memcpy(mc.data_key, n->data_key, SK_DATA_KEY_SIZE);
        d->manager = sk_manager_start(&mc, &err);
        memset(mc.data_key, 0, sizeof mc.data_key);
        if (!d->manager)
            die("manager: %s", err.msg);
        SK_INFO("skiffd", "manager of cluster %s: API %s, Raft %s",
                n->cluster_id, api, raft);
    }
    struct sk_agent_config ac = {
        .loop = d->loop,
        .node_id = n->node_id,
        .role = n->role,
        .ca_pem = n->ca_pem,
        .cert_pem = n->cert_pem,
        .key_pem = n->key_pem,
        .managers = n->managers,
        .n_managers = n->n_managers,
        .description = d->description,
        .api_addr = api,
        .raft_addr = raft,
        .docker_socket = d->docker_socket,
        .serve_host = n->role == SK_ROLE_MANAGER ? NULL : n->listen_addr,
        .serve_port = n->role == SK_ROLE_MANAGER ? 0 : n->api_port,
        .credentials_cb = on_credentials,
        .role_cb = on_role,
        .managers_cb = on_managers,
        .ctx = d,
    };
    d->agent = sk_agent_start(&ac, &err);
    if (!d->agent)
        die("agent: %s", err.msg);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: skiffd [--data-dir DIR] --advertise-addr IP "
               "[--data-path-addr IP] --init\n"
               "       skiffd [--data-dir DIR] --advertise-addr IP "
               "[--data-path-addr IP] --join HOST:PORT --token-file FILE\n"
               "       skiffd [--data-dir DIR]        (resume)\n\n");
    sk_flags_usage(f, flags, F_COUNT);
}

int main(int argc, char **argv)
{
    sk_log_init_from_env();
    signal(SIGPIPE, SIG_IGN);
    /* What skiffd writes (data dir, credentials) is no one else's to read. */
    umask(027);
    struct sk_flags_result res;
    struct sk_err err;
    if (sk_flags_parse(flags, F_COUNT, argc - 1, argv + 1, false, &res, &err) !=
        SK_OK) {
        fprintf(stderr, "skiffd: %s\nSee 'skiffd --help'.\n", err.msg);
        return 2;
    }
    if (flags[F_HELP].on) {
        usage(stdout);
        return 0;
    }
    if (flags[F_VERSION].on) {
        sk_version_print(stdout, "skiffd");
        return 0;
    }
    if (res.n_positional > 0) {
        fprintf(stderr, "skiffd: unexpected argument \"%s\"\n",
                res.positional[0]);
        return 2;
    }
    if (flags[F_LOG_LEVEL].set) {
        enum sk_log_level lvl;
        sk_log_level_parse(flags[F_LOG_LEVEL].str, &lvl);
        sk_log_set_level(lvl);
    }

    /* Before anything could change the working directory. */
    char *self = started_as(argv[0]);
    struct daemon d = {.argv = argv};
    d.dir = sk_strdup(flag_str(F_DATA_DIR, "/var/lib/skiff"));
    d.raft_dir = sk_printf("%s/raft", d.dir);
    if (sk_mkdirs(d.dir, 0700, &err) != SK_OK)
        die("%s", err.msg);

    char hostbuf[HOST_NAME_MAX + 1] = "";
    gethostname(hostbuf, sizeof hostbuf);
    char *init_command = NULL;
    enum sk_rc loaded = sk_local_node_load(d.dir, &d.node, &err);
    /* The dockerd given at the first start is remembered, so a plain
     * resume (systemd) finds it again. */
    if (flags[F_DOCKER_HOST].set || !d.node.docker_socket) {
        const char *sock = flag_str(F_DOCKER_HOST, "/var/run/docker.sock");
        if (strncmp(sock, "unix://", 7) == 0)
            sock += 7;
        free(d.node.docker_socket);
        d.node.docker_socket = sk_strdup(sock);
    }
    const char *docker = d.node.docker_socket;
    char *engine = engine_version(docker);
    d.docker_socket = docker;
    if (loaded == SK_OK) {
        if (flags[F_INIT].on || flags[F_JOIN].set)
            SK_INFO("skiffd",
                    "%s holds a membership (node %s of cluster "
                    "%s): resuming, ignoring --init/--join",
                    d.dir, d.node.node_id, d.node.cluster_id);
        char *path = sk_printf("%s/init.json", d.dir);
        if (sk_read_file(path, 8u << 20, &init_command, NULL, &err) != SK_OK)
            init_command = NULL;
        free(path);
    } else if (loaded != SK_ENOTFOUND) {
        die("%s", err.msg);
    } else {
        if (!flags[F_INIT].on && !flags[F_JOIN].set)
            die("%s holds no membership: start with --init (new cluster) "
                "or --join HOST:PORT --token-file FILE",
                d.dir);
        if (flags[F_INIT].on && flags[F_JOIN].set)
            die("--init and --join exclude each other");
        if (!flags[F_ADVERTISE].set)
            die("--advertise-addr is required to create or join a cluster");
        if (flags[F_FORCE_NEW].on)
            die("--force-new-cluster needs a data dir with a membership");
        d.node.advertise_addr = sk_strdup(flags[F_ADVERTISE].str);
        d.node.data_addr =
            sk_strdup(flag_str(F_DATA_PATH, flags[F_ADVERTISE].str));
        d.node.listen_addr =
            sk_strdup(flag_str(F_LISTEN, flags[F_ADVERTISE].str));
        d.node.api_port =
            flags[F_API_PORT].set ? (int)flags[F_API_PORT].num : 7443;
        d.node.raft_port =
            flags[F_RAFT_PORT].set ? (int)flags[F_RAFT_PORT].num : 7444;
        d.node.hostname = sk_strdup(flag_str(F_HOSTNAME, hostbuf));
    }
    if (!d.node.listen_addr)
        d.node.listen_addr = sk_strdup(d.node.advertise_addr);
    if (!d.node.data_addr)
        d.node.data_addr = sk_strdup(d.node.advertise_addr);
    if (!d.node.api_port)
        d.node.api_port = 7443;
    if (!d.node.raft_port)
        d.node.raft_port = 7444;
    if (!d.node.hostname)
        d.node.hostname = sk_strdup(flag_str(F_HOSTNAME, hostbuf));
    describe_node(&d, engine);
    if (loaded != SK_OK && flags[F_INIT].on) {
        do_init(&d);
        char *path = sk_printf("%s/init.json", d.dir);
        if (sk_read_file(path, 8u << 20, &init_command, NULL, &err) != SK_OK)
            die("%s", err.msg);
        free(path);
    } else if (loaded != SK_OK) {
        do_join(&d);
    }
    if (loaded == SK_OK && flags[F_DOCKER_HOST].set)
        save_state(&d);
    /* A worker holds no Raft state: a demoted manager's is wiped. */
    if (d.node.role == SK_ROLE_WORKER) {
        struct stat st;
        if (stat(d.raft_dir, &st) == 0 &&
            sk_remove_tree(d.raft_dir, &err) != SK_OK)
            SK_WARN("skiffd", "removing old Raft state: %s", err.msg);
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    d.loop = &loop;
    uv_signal_init(&loop, &d.sigterm);
    uv_signal_init(&loop, &d.sigint);
    d.sigterm.data = d.sigint.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);

    start_roles(&d, init_command);
    free(init_command);
    uv_run(&loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop);
    if (rc != 0)
        SK_WARN("skiffd", "loop closed with handles open: %s", uv_strerror(rc));
    bool reexec = d.reexec;
    sk_local_node_free(&d.node);
    sk_schema_free(&sk_node_description_schema, &d.description);
    free(d.api_addr);
    free(d.raft_addr);
    free(d.dir);
    free(d.raft_dir);
    free(engine);
    sk_flags_free(flags, F_COUNT, &res);
    if (reexec) {
        /* --force-new-cluster was done once, by this process. Given again
         * to the new role it would recover the Raft state once more -- for
         * a promoted node, the empty state of a fresh manager, which then
         * leads a cluster of its own. */
        int k = 1;
        for (int i = 1; i < argc; i++)
            if (strcmp(argv[i], "--force-new-cluster") != 0 &&
                strncmp(argv[i], "--force-new-cluster=", 20) != 0)
                argv[k++] = argv[i];
        argv[k] = NULL;
        if (self)
            execv(self, argv);
        if (self)
            SK_WARN("skiffd", "re-exec of %s: %s; trying /proc/self/exe", self,
                    strerror(errno));
        execv("/proc/self/exe", argv);
        fprintf(stderr, "skiffd: re-exec: %s\n", strerror(errno));
        free(self);
        return 1;
    }
    free(self);
    SK_INFO("skiffd", "stopped");
    return 0;
}
