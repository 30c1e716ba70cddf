/* skiff service create|ls|ps|inspect|scale|update|rm|logs. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/mem.h"
#include "skiff/objects.h"
#include "skiff/parse.h"
#include "skiff_cli.h"

/* ---- flags shared by create and update ---- */

enum {
    S_NAME,
    S_REPLICAS,
    S_MODE,
    S_CONSTRAINT,
    S_PREF,
    S_ENV,
    S_LABEL,
    S_CLABEL,
    S_PUBLISH,
    S_RES_CPU,
    S_RES_MEM,
    S_LIM_CPU,
    S_LIM_MEM,
    S_RESTART_COND,
    S_RESTART_DELAY,
    S_RESTART_MAX,
    S_RESTART_WINDOW,
    S_USER,
    S_WORKDIR,
    S_ENTRYPOINT,
    S_INIT,
    S_READ_ONLY,
    S_CAP_ADD,
    S_CAP_DROP,
    S_GRACE,
    S_STOP_SIGNAL,
    S_HOSTNAME,
    S_MAX_REPLICAS,
    S_UPD_PAR,
    S_UPD_DELAY,
    S_UPD_ORDER,
    S_UPD_FAILURE,
    S_UPD_MONITOR,
    S_HEALTH_CMD,
    S_HEALTH_INT,
    S_HEALTH_TIMEOUT,
    S_HEALTH_RETRIES,
    S_NO_HEALTH,
    S_ENDPOINT_MODE,
    S_QUIET,
    S_HELP,
    /* update only */
    S_IMAGE,
    S_ENV_ADD,
    S_ENV_RM,
    S_CONS_ADD,
    S_CONS_RM,
    S_LABEL_ADD,
    S_LABEL_RM,
    S_FORCE,
    S_ARGS,
    S_NET_ADD,
    S_NET_RM,
    /* create only */
    S_NETWORK,
    S_COUNT
};

static void declare(struct sk_flag *f)
{
    static const struct sk_flag base[S_COUNT] = {
        [S_NAME] = {.name = "name",
                    .type = SK_FLAG_STRING,
                    .help = "service name"},
        [S_REPLICAS] = {.name = "replicas",
                        .type = SK_FLAG_INT,
                        .min = 0,
                        .max = SK_MAX_REPLICAS,
                        .metavar = "N",
                        .help = "number of tasks (replicated mode)"},
        [S_MODE] = {.name = "mode",
                    .type = SK_FLAG_ENUM,
                    .choices = sk_service_mode_names,
                    .help = "replicated (default) or global"},
        [S_CONSTRAINT] = {.name = "constraint",
                          .type = SK_FLAG_STRINGS,
                          .metavar = "EXPR",
                          .help = "placement constraint, e.g. "
                                  "node.labels.zone==eu"},
        [S_PREF] = {.name = "placement-pref",
                    .type = SK_FLAG_STRINGS,
                    .metavar = "PREF",
                    .help = "spread=node.labels.KEY"},
        [S_ENV] = {.name = "env",
                   .short_name = 'e',
                   .type = SK_FLAG_STRINGS,
                   .metavar = "K=V",
                   .help = "environment variable"},
        [S_LABEL] = {.name = "label",
                     .type = SK_FLAG_STRINGS,
                     .metavar = "K=V",
                     .help = "service label"},
        [S_CLABEL] = {.name = "container-label",
                      .type = SK_FLAG_STRINGS,
                      .metavar = "K=V",
                      .help = "container label"},
        [S_PUBLISH] = {.name = "publish",
                       .short_name = 'p',
                       .type = SK_FLAG_STRINGS,
                       .metavar = "SPEC",
                       .help = "mode=host,published=P,target=T[,protocol=udp]"},
        [S_RES_CPU] = {.name = "reserve-cpu",
                       .type = SK_FLAG_CPUS,
                       .help = "CPUs reserved on the node"},
        [S_RES_MEM] = {.name = "reserve-memory",
                       .type = SK_FLAG_BYTES,
                       .help = "memory reserved on the node"},
        [S_LIM_CPU] = {.name = "limit-cpu",
                       .type = SK_FLAG_CPUS,
                       .help = "CPU limit"},
        [S_LIM_MEM] = {.name = "limit-memory",
                       .type = SK_FLAG_BYTES,
                       .help = "memory limit"},
        [S_RESTART_COND] = {.name = "restart-condition",
                            .type = SK_FLAG_ENUM,
                            .choices = sk_restart_condition_names,
                            .help = "any (default), on-failure or none"},
        [S_RESTART_DELAY] = {.name = "restart-delay",
                             .type = SK_FLAG_DURATION,
                             .help = "wait before restarting (default 5s)"},
        [S_RESTART_MAX] = {.name = "restart-max-attempts",
                           .type = SK_FLAG_INT,
                           .min = 0,
                           .max = 1000000,
                           .help = "give up after N restarts (0: never)"},
        [S_RESTART_WINDOW] = {.name = "restart-window",
                              .type = SK_FLAG_DURATION,
                              .help = "window in which attempts count"},
        [S_USER] = {.name = "user",
                    .short_name = 'u',
                    .type = SK_FLAG_STRING,
                    .help = "user[:group] to run as"},
        [S_WORKDIR] = {.name = "workdir",
                       .short_name = 'w',
                       .type = SK_FLAG_STRING,
                       .help = "working directory"},
        [S_ENTRYPOINT] = {.name = "entrypoint",
                          .type = SK_FLAG_STRING,
                          .help = "override the image's entrypoint"},
        [S_INIT] = {.name = "init",
                    .type = SK_FLAG_BOOL,
                    .help = "run an init that forwards signals (PID 1)"},
        [S_READ_ONLY] = {.name = "read-only",
                         .type = SK_FLAG_BOOL,
                         .help = "read-only root file system"},
        [S_CAP_ADD] = {.name = "cap-add",
                       .type = SK_FLAG_STRINGS,
                       .help = "add a Linux capability"},
        [S_CAP_DROP] = {.name = "cap-drop",
                        .type = SK_FLAG_STRINGS,
                        .help = "drop a Linux capability"},
        [S_GRACE] = {.name = "stop-grace-period",
                     .type = SK_FLAG_DURATION,
                     .help = "time to stop before a kill (default 10s)"},
        [S_STOP_SIGNAL] = {.name = "stop-signal",
                           .type = SK_FLAG_STRING,
                           .help = "signal to stop the container"},
        [S_HOSTNAME] = {.name = "hostname",
                        .type = SK_FLAG_STRING,
                        .help = "container host name"},
        [S_MAX_REPLICAS] = {.name = "replicas-max-per-node",
                            .type = SK_FLAG_INT,
                            .min = 0,
                            .max = SK_MAX_REPLICAS,
                            .help = "at most N tasks per node"},
        [S_UPD_PAR] = {.name = "update-parallelism",
                       .type = SK_FLAG_INT,
                       .min = 0,
                       .max = SK_MAX_REPLICAS,
                       .help = "tasks replaced at once (0: all)"},
        [S_UPD_DELAY] = {.name = "update-delay",
                         .type = SK_FLAG_DURATION,
                         .help = "wait between update batches"},
        [S_UPD_ORDER] = {.name = "update-order",
                         .type = SK_FLAG_ENUM,
                         .choices = sk_update_order_names,
                         .help = "stop-first or start-first"},
        [S_UPD_FAILURE] = {.name = "update-failure-action",
                           .type = SK_FLAG_ENUM,
                           .choices = sk_failure_action_names,
                           .help = "pause, continue or rollback"},
        [S_UPD_MONITOR] = {.name = "update-monitor",
                           .type = SK_FLAG_DURATION,
                           .help = "watch each updated task this long"},
        [S_HEALTH_CMD] = {.name = "health-cmd",
                          .type = SK_FLAG_STRING,
                          .help = "command to check health (shell)"},
        [S_HEALTH_INT] = {.name = "health-interval",
                          .type = SK_FLAG_DURATION,
                          .help = "time between checks"},
        [S_HEALTH_TIMEOUT] = {.name = "health-timeout",
                              .type = SK_FLAG_DURATION,
                              .help = "time a check may take"},
        [S_HEALTH_RETRIES] = {.name = "health-retries",
                              .type = SK_FLAG_INT,
                              .min = 0,
                              .max = 1000,
                              .help = "failures before unhealthy"},
        [S_NO_HEALTH] = {.name = "no-healthcheck",
                         .type = SK_FLAG_BOOL,
                         .help = "disable the image's health check"},
        [S_ENDPOINT_MODE] = {.name = "endpoint-mode",
                             .type = SK_FLAG_ENUM,
                             .choices = sk_endpoint_mode_names,
                             .help = "vip (default: one address, balanced) "
                                     "or dnsrr (the tasks' addresses)"},
        [S_QUIET] = {.name = "quiet",
                     .short_name = 'q',
                     .type = SK_FLAG_BOOL,
                     .help = "print only the ID"},
        [S_HELP] = HELP_FLAG,
        [S_IMAGE] = {.name = "image",
                     .type = SK_FLAG_STRING,
                     .help = "new image"},
        [S_ENV_ADD] = {.name = "env-add",
                       .type = SK_FLAG_STRINGS,
                       .metavar = "K=V",
                       .help = "add or set a variable"},
        [S_ENV_RM] = {.name = "env-rm",
                      .type = SK_FLAG_STRINGS,
                      .metavar = "K",
                      .help = "remove a variable"},
        [S_CONS_ADD] = {.name = "constraint-add",
                        .type = SK_FLAG_STRINGS,
                        .help = "add a constraint"},
        [S_CONS_RM] = {.name = "constraint-rm",
                       .type = SK_FLAG_STRINGS,
                       .help = "remove a constraint"},
        [S_LABEL_ADD] = {.name = "label-add",
                         .type = SK_FLAG_STRINGS,
                         .help = "add or set a service label"},
        [S_LABEL_RM] = {.name = "label-rm",
                        .type = SK_FLAG_STRINGS,
                        .help = "remove a service label"},
        [S_FORCE] = {.name = "force",
                     .type = SK_FLAG_BOOL,
                     .help = "replace the tasks even if nothing changed"},
        [S_ARGS] = {.name = "args",
                    .type = SK_FLAG_STRING,
                    .help = "new command arguments (space separated)"},
        [S_NET_ADD] = {.name = "network-add",
                       .type = SK_FLAG_STRINGS,
                       .metavar = "NET",
                       .help = "join a network (NAME or "
                               "name=NAME,alias=ALIAS)"},
        [S_NET_RM] = {.name = "network-rm",
                      .type = SK_FLAG_STRINGS,
                      .metavar = "NET",
                      .help = "leave a network"},
        [S_NETWORK] = {.name = "network",
                       .type = SK_FLAG_STRINGS,
                       .metavar = "NET",
                       .help = "an overlay network to join: NAME, or "
                               "name=NAME,alias=ALIAS[,alias=...]"},
    };
    memcpy(f, base, sizeof base);
}

/* ---- the flags applied to a spec ---- */

/* Each writes a flag's value into a member of the spec when the flag was
 * given (the C compiler checks the member's type). */
static void take_str(const struct sk_flag *f, char **dst)
{
    if (f->set) {
        free(*dst);
        *dst = sk_strdup(f->str);
    }
}

static void take_int(const struct sk_flag *f, int64_t *dst)
{
    if (f->set)
        *dst = f->num;
}

/* ENUM flags: choices are the schema's names table, so num is the value. */
static void take_enum(const struct sk_flag *f, int *dst)
{
    if (f->set)
        *dst = (int)f->num;
}

static void take_bool(const struct sk_flag *f, bool *dst)
{
    if (f->set)
        *dst = f->on;
}

static void push_strs(const struct sk_flag *f, char ***strs, size_t *n)
{
    for (size_t i = 0; i < f->n_strs; i++)
        sk_strs_push(strs, n, f->strs[i]);
}

static void clear_strs(char ***strs, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*strs)[i]);
    free(*strs);
    *strs = NULL;
    *n = 0;
}

/* Removes the entries equal to s or, with env_key, those that set the
 * variable s ("s=..."). Returns how many went. */
static size_t remove_strs(char **strs, size_t *n, const char *s, bool env_key)
{
    size_t len = strlen(s), kept = 0;
    for (size_t i = 0; i < *n; i++) {
        bool match = env_key
                         ? strncmp(strs[i], s, len) == 0 && strs[i][len] == '='
                         : strcmp(strs[i], s) == 0;
        if (match)
            free(strs[i]);
        else
            strs[kept++] = strs[i];
    }
    size_t gone = *n - kept;
    *n = kept;
    return gone;
}

/* KEY=VALUE values of a flag into a map. */
static bool set_kvs(const struct sk_flag *f, struct sk_kv **kv, size_t *n,
                    struct sk_err *err)
{
    for (size_t i = 0; i < f->n_strs; i++) {
        const char *arg = f->strs[i], *eq = strchr(arg, '=');
        if (!eq || eq == arg) {
            sk_err_set(err, SK_EINVAL, "--%s \"%s\": want KEY=VALUE", f->name,
                       arg);
            return false;
        }
        char *key = sk_strndup(arg, (size_t)(eq - arg));
        sk_kv_set(kv, n, key, eq + 1);
        free(key);
    }
    return true;
}

static bool apply_env(struct sk_flag *f, struct sk_container_spec *c,
                      struct sk_err *err)
{
    push_strs(&f[S_ENV], &c->env, &c->n_env);
    for (size_t i = 0; i < f[S_ENV_RM].n_strs; i++)
        remove_strs(c->env, &c->n_env, f[S_ENV_RM].strs[i], true);
    for (size_t i = 0; i < f[S_ENV_ADD].n_strs; i++) {
        const char *kv = f[S_ENV_ADD].strs[i], *eq = strchr(kv, '=');
        if (!eq || eq == kv) {
            sk_err_set(err, SK_EINVAL, "--%s \"%s\": want KEY=VALUE",
                       f[S_ENV_ADD].name, kv);
            return false;
        }
        char *key = sk_strndup(kv, (size_t)(eq - kv));
        remove_strs(c->env, &c->n_env, key, true);
        free(key);
        sk_strs_push(&c->env, &c->n_env, kv);
    }
    return true;
}

static bool apply_placement(struct sk_flag *f, struct sk_placement *p,
                            struct sk_err *err)
{
    push_strs(&f[S_CONSTRAINT], &p->constraints, &p->n_constraints);
    push_strs(&f[S_CONS_ADD], &p->constraints, &p->n_constraints);
    for (size_t i = 0; i < f[S_CONS_RM].n_strs; i++)
        if (!remove_strs(p->constraints, &p->n_constraints,
                         f[S_CONS_RM].strs[i], false)) {
            sk_err_set(err, SK_ENOTFOUND,
                       "--%s \"%s\": the service has no such constraint",
                       f[S_CONS_RM].name, f[S_CONS_RM].strs[i]);
            return false;
        }
    push_strs(&f[S_PREF], &p->preferences, &p->n_preferences);
    take_int(&f[S_MAX_REPLICAS], &p->max_replicas);
    return true;
}

static void apply_health(struct sk_flag *f, struct sk_container_spec *c)
{
    bool any = f[S_HEALTH_CMD].set || f[S_HEALTH_INT].set ||
               f[S_HEALTH_TIMEOUT].set || f[S_HEALTH_RETRIES].set;
    if (f[S_NO_HEALTH].on && c->healthcheck) {
        /* The image's check off: nothing of an earlier check stays. */
        sk_schema_free(&sk_healthcheck_schema, c->healthcheck);
        free(c->healthcheck);
        c->healthcheck = NULL;
    }
    if (!f[S_NO_HEALTH].on && !any)
        return;
    struct sk_healthcheck *h = c->healthcheck;
    if (!h) {
        h = c->healthcheck = sk_calloc(1, sizeof *h);
        sk_schema_defaults(&sk_healthcheck_schema, h);
    }
    if (f[S_NO_HEALTH].on) {
        sk_strs_push(&h->test, &h->n_test, "NONE");
        return;
    }
    if (f[S_HEALTH_CMD].set) {
        clear_strs(&h->test, &h->n_test);
        sk_strs_push(&h->test, &h->n_test, "CMD-SHELL");
        sk_strs_push(&h->test, &h->n_test, f[S_HEALTH_CMD].str);
    }
    take_int(&f[S_HEALTH_INT], &h->interval_ms);
    take_int(&f[S_HEALTH_TIMEOUT], &h->timeout_ms);
    take_int(&f[S_HEALTH_RETRIES], &h->retries);
}

static void apply_container(struct sk_flag *f, struct sk_container_spec *c)
{
    take_str(&f[S_IMAGE], &c->image);
    if (f[S_ARGS].set) {
        clear_strs(&c->command, &c->n_command);
        char *copy = sk_strdup(f[S_ARGS].str), *save = NULL;
        for (char *w = strtok_r(copy, " ", &save); w;
             w = strtok_r(NULL, " ", &save))
            sk_strs_push(&c->command, &c->n_command, w);
        free(copy);
    }
    if (f[S_ENTRYPOINT].set) {
        clear_strs(&c->entrypoint, &c->n_entrypoint);
        sk_strs_push(&c->entrypoint, &c->n_entrypoint, f[S_ENTRYPOINT].str);
    }
    take_str(&f[S_USER], &c->user);
    take_str(&f[S_WORKDIR], &c->workdir);
    take_str(&f[S_HOSTNAME], &c->hostname);
    take_bool(&f[S_INIT], &c->init);
    take_bool(&f[S_READ_ONLY], &c->read_only);
    push_strs(&f[S_CAP_ADD], &c->cap_add, &c->n_cap_add);
    push_strs(&f[S_CAP_DROP], &c->cap_drop, &c->n_cap_drop);
    take_int(&f[S_GRACE], &c->stop_grace_ms);
    take_str(&f[S_STOP_SIGNAL], &c->stop_signal);
    apply_health(f, c);
}

/* --network and --network-add values join the spec's networks;
 * --network-rm values leave, found by the name or ID given, or by the
 * network's ID as a manager resolved it (rm_ids, per value; "" if none). */
static bool apply_networks(struct sk_flag *f, struct sk_task_spec *t,
                           const char (*rm_ids)[SK_ID_SIZE], struct sk_err *err)
{
    for (size_t i = 0; i < f[S_NET_RM].n_strs; i++) {
        const char *x = f[S_NET_RM].strs[i];
        const char *id = rm_ids ? rm_ids[i] : "";
        size_t kept = 0, n = t->n_networks;
        for (size_t k = 0; k < n; k++) {
            struct sk_network_ref *r = &t->networks[k];
            if (strcmp(r->target, x) == 0 || strcmp(r->id, x) == 0 ||
                (*id && strcmp(r->id, id) == 0))
                sk_schema_free(&sk_network_ref_schema, r);
            else
                t->networks[kept++] = *r;
        }
        t->n_networks = kept;
        if (kept == n) {
            sk_err_set(err, SK_ENOTFOUND,
                       "--network-rm \"%s\": the service is not on that "
                       "network",
                       x);
            return false;
        }
    }
    const struct sk_flag *adds[] = {&f[S_NETWORK], &f[S_NET_ADD]};
    for (size_t a = 0; a < 2; a++) {
        for (size_t i = 0; i < adds[a]->n_strs; i++) {
            struct sk_network_ref r;
            char what[24];
            snprintf(what, sizeof what, "--%s", adds[a]->name);
            if (sk_network_ref_parse(what, adds[a]->strs[i], &r, err) != SK_OK)
                return false;
            t->networks = sk_realloc(t->networks,
                                     (t->n_networks + 1) * sizeof *t->networks);
            t->networks[t->n_networks++] = r;
        }
    }
    return true;
}

/* Writes the flags given into spec, then checks the whole spec as the
 * managers will (sk_service_spec_validate). */
static bool apply_flags(struct sk_flag *f, struct sk_service_spec *spec,
                        const char (*rm_ids)[SK_ID_SIZE], struct sk_err *err)
{
    struct sk_task_spec *t = &spec->task;
    struct sk_container_spec *c = &t->container;
    take_str(&f[S_NAME], &spec->name);
    take_int(&f[S_REPLICAS], &spec->replicas);
    take_enum(&f[S_MODE], &spec->mode);
    if (!set_kvs(&f[S_LABEL], &spec->labels, &spec->n_labels, err) ||
        !set_kvs(&f[S_LABEL_ADD], &spec->labels, &spec->n_labels, err))
        return false;
    for (size_t i = 0; i < f[S_LABEL_RM].n_strs; i++)
        sk_kv_del(&spec->labels, &spec->n_labels, f[S_LABEL_RM].strs[i]);
    for (size_t i = 0; i < f[S_PUBLISH].n_strs; i++) {
        struct sk_port p;
        if (sk_port_parse("--publish", f[S_PUBLISH].strs[i], &p, err) != SK_OK)
            return false;
        struct sk_endpoint_spec *e = &spec->endpoint;
        e->ports = sk_realloc(e->ports, (e->n_ports + 1) * sizeof *e->ports);
        e->ports[e->n_ports++] = p;
    }
    if (!apply_placement(f, &t->placement, err) || !apply_env(f, c, err) ||
        !set_kvs(&f[S_CLABEL], &c->labels, &c->n_labels, err) ||
        !apply_networks(f, t, rm_ids, err))
        return false;
    take_enum(&f[S_ENDPOINT_MODE], &spec->endpoint.mode);
    apply_container(f, c);
    take_int(&f[S_RES_CPU], &t->reservations.nano_cpus);
    take_int(&f[S_RES_MEM], &t->reservations.memory_bytes);
    take_int(&f[S_LIM_CPU], &t->limits.nano_cpus);
    take_int(&f[S_LIM_MEM], &t->limits.memory_bytes);
    take_enum(&f[S_RESTART_COND], &t->restart.condition);
    take_int(&f[S_RESTART_DELAY], &t->restart.delay_ms);
    take_int(&f[S_RESTART_MAX], &t->restart.max_attempts);
    take_int(&f[S_RESTART_WINDOW], &t->restart.window_ms);
    take_int(&f[S_UPD_PAR], &spec->update.parallelism);
    take_int(&f[S_UPD_DELAY], &spec->update.delay_ms);
    take_enum(&f[S_UPD_ORDER], &spec->update.order);
    take_enum(&f[S_UPD_FAILURE], &spec->update.failure_action);
    take_int(&f[S_UPD_MONITOR], &spec->update.monitor_ms);
    if (f[S_FORCE].on)
        t->force_update++;
    return sk_service_spec_validate(spec, err) == SK_OK;
}

/* Flags create does not take, and flags update does not take. */
static const int create_only[] = {
    S_IMAGE,    S_ENV_ADD, S_ENV_RM, S_CONS_ADD, S_CONS_RM, S_LABEL_ADD,
    S_LABEL_RM, S_FORCE,   S_ARGS,   S_NET_ADD,  S_NET_RM};
static const int update_only_not[] = {S_NAME, S_MODE,  S_CONSTRAINT,
                                      S_ENV,  S_LABEL, S_NETWORK};

/* Create and update share the flag table but each hides some flags (they
 * would mean nothing there). Parses with the rest; results land in f, the
 * hidden flags read as not given. */
static bool parse_subset(struct sk_flag *f, const int *hidden, size_t n_hidden,
                         const char *usage, int argc, char **argv,
                         bool stop_at_positional, struct sk_flag *shown,
                         size_t *n_shown, struct sk_flags_result *res,
                         int *code)
{
    declare(f);
    int map[S_COUNT];
    size_t n = 0;
    for (int i = 0; i < S_COUNT; i++) {
        bool hide = false;
        for (size_t k = 0; k < n_hidden; k++)
            hide |= hidden[k] == i;
        map[i] = hide ? -1 : (int)n;
        if (!hide)
            shown[n++] = f[i];
    }
    *n_shown = n;
    if (!parse_flags(usage, shown, n, argc, argv, stop_at_positional, res,
                     code))
        return false;
    for (int i = 0; i < S_COUNT; i++)
        if (map[i] >= 0)
            f[i] = shown[map[i]];
        else
            memset(&f[i].set, 0, sizeof f[i] - offsetof(struct sk_flag, set));
    return true;
}

int cmd_service_create(int argc, char **argv)
{
    struct sk_flag f[S_COUNT], shown[S_COUNT];
    size_t n;
    const char *usage = "skiff service create [OPTIONS] IMAGE [COMMAND...]";
    struct sk_flags_result res;
    int code;
    if (!parse_subset(f, create_only,
                      sizeof create_only / sizeof create_only[0], usage, argc,
                      argv, true, shown, &n, &res, &code))
        return code;
    int rc = 0;
    struct sk_service_spec spec = {0};
    sk_schema_defaults(&sk_service_spec_schema, &spec);
    struct sk_err err;
    if (res.n_positional < 1) {
        rc = fail("usage: %s", usage);
        goto out;
    }
    struct sk_container_spec *c = &spec.task.container;
    c->image = sk_strdup(res.positional[0]);
    for (size_t i = 1; i < res.n_positional; i++)
        sk_strs_push(&c->command, &c->n_command, res.positional[i]);
    if (!f[S_NAME].set) {
        /* Like docker: a name is made up when none is given. */
        char id[SK_ID_SIZE];
        sk_id_new(id);
        spec.name = sk_printf("svc-%.8s", id);
    }
    if (!apply_flags(f, &spec, NULL, &err)) {
        rc = fail_err(&err);
        goto out;
    }
    json_t *body = json_pack(
        "{s:o}", "spec",
        sk_schema_encode(&sk_service_spec_schema, &spec, SK_VIEW_PUBLIC));
    json_t *reply = NULL;
    if (cli_call("POST", "/v1/services", body, &reply, &err) != SK_OK)
        rc = fail_err(&err);
    else /* the ID, with or without -q, as docker does */
        printf("%s\n", jstr(reply, "id"));
    json_decref(body);
    json_decref(reply);
out:
    sk_schema_free(&sk_service_spec_schema, &spec);
    sk_flags_free(shown, n, &res);
    return rc;
}

struct update_ctx {
    struct sk_flag *f;
    char (*rm_ids)[SK_ID_SIZE];
};

static bool update_change(void *spec, void *ctx, struct sk_err *err)
{
    struct update_ctx *u = ctx;
    return apply_flags(u->f, spec, (const char(*)[SK_ID_SIZE])u->rm_ids, err);
}

int cmd_service_update(int argc, char **argv)
{
    struct sk_flag f[S_COUNT], shown[S_COUNT];
    size_t n;
    const char *usage = "skiff service update [OPTIONS] SERVICE";
    struct sk_flags_result res;
    int code;
    if (!parse_subset(f, update_only_not,
                      sizeof update_only_not / sizeof update_only_not[0], usage,
                      argc, argv, false, shown, &n, &res, &code))
        return code;
    int rc = 0;
    struct update_ctx u = {.f = f};
    if (res.n_positional != 1) {
        rc = fail("usage: %s", usage);
    } else {
        /* A network to leave may be named otherwise than the spec has it
         * (name, ID, prefix): its ID, if it still exists, finds it. */
        size_t n_rm = f[S_NET_RM].n_strs;
        u.rm_ids = sk_calloc(n_rm ? n_rm : 1, sizeof *u.rm_ids);
        for (size_t i = 0; i < n_rm; i++) {
            struct sk_err ignored;
            json_t *net = cli_get("networks", f[S_NET_RM].strs[i], &ignored);
            snprintf(u.rm_ids[i], SK_ID_SIZE, "%s", jstr(net, "id"));
            json_decref(net);
        }
        struct sk_err err;
        if (cli_modify("services", res.positional[0], &sk_service_spec_schema,
                       update_change, &u, &err) != SK_OK)
            rc = fail_err(&err);
        else if (!cli.quiet)
            printf("%s\n", res.positional[0]);
    }
    free(u.rm_ids);
    sk_flags_free(shown, n, &res);
    return rc;
}

static bool scale_change(void *obj, void *ctx, struct sk_err *err)
{
    struct sk_service_spec *spec = obj;
    if (spec->mode == SK_MODE_GLOBAL) {
        sk_err_set(err, SK_EINVAL,
                   "service \"%s\" is global: it runs one task per node and "
                   "cannot be scaled",
                   spec->name);
        return false;
    }
    spec->replicas = *(const int64_t *)ctx;
    return true;
}

int cmd_service_scale(int argc, char **argv)
{
    struct sk_flags_result res;
    int code;
    if (!parse_positionals("skiff service scale SERVICE=REPLICAS...", 0, argc,
                           argv, &res, &code))
        return code;
    int rc = 0;
    for (size_t i = 0; i < res.n_positional && rc == 0; i++) {
        const char *arg = res.positional[i];
        const char *eq = strchr(arg, '=');
        struct sk_err err;
        int64_t r;
        if (!eq || eq == arg) {
            rc = fail("scale \"%s\": want SERVICE=REPLICAS", arg);
            break;
        }
        if (!sk_parse_int(eq + 1, 0, SK_MAX_REPLICAS, &r, &err)) {
            rc = fail("scale \"%s\": %s", arg, err.msg);
            break;
        }
        char *name = sk_strndup(arg, (size_t)(eq - arg));
        if (cli_modify("services", name, &sk_service_spec_schema, scale_change,
                       &r, &err) != SK_OK)
            rc = fail_err(&err);
        else if (!cli.quiet)
            printf("%s scaled to %lld\n", name, (long long)r);
        free(name);
    }
    sk_flags_free(NULL, 0, &res);
    return rc;
}

static void ports_text(const json_t *svc, char *buf, size_t size)
{
    buf[0] = '\0';
    size_t i;
    json_t *p;
    json_array_foreach(
        json_object_get(
            json_object_get(json_object_get(svc, "spec"), "endpoint"), "ports"),
        i, p)
    {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s*:%lld->%lld/%s", i ? ", " : "",
                 jint(p, "published"), jint(p, "target"), jstr(p, "protocol"));
    }
}

/* What `service ls` adds to REPLICAS while an update is not done or did
 * not go as asked: "3/4 (update paused)". Nothing once it completed. */
static const char *update_mark(const char *state)
{
    static const char *const marks[][2] = {
        {"updating", "updating"},
        {"paused", "update paused"},
        {"rollback_started", "rolling back"},
        {"rollback_paused", "rollback paused"},
        {"rollback_completed", "rolled back"},
    };
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
        if (strcmp(state, marks[i][0]) == 0)
            return marks[i][1];
    return "";
}

int cmd_service_ls(int argc, char **argv)
{
    struct sk_flag f[] = {{.name = "quiet",
                           .short_name = 'q',
                           .type = SK_FLAG_BOOL,
                           .help = "only IDs"},
                          HELP_FLAG};
    struct sk_flags_result res;
    int code;
    if (!parse_flags("skiff service ls [-q]", f, 2, argc, argv, false, &res,
                     &code))
        return code;
    bool quiet = f[0].on || cli.quiet;
    sk_flags_free(f, 2, &res);
    json_t *all;
    struct sk_err err;
    if (cli_call("GET", "/v1/services", NULL, &all, &err) != SK_OK)
        return fail_err(&err);
    size_t i;
    json_t *s;
    if (cli.json) {
        print_json(all);
    } else if (quiet) {
        json_array_foreach(all, i, s) printf("%s\n", jstr(s, "id"));
    } else {
        struct table t;
        table_init(&t, 6, "ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS");
        json_array_foreach(all, i, s)
        {
            char reps[64], ports[256];
            const char *upd = update_mark(jstr(s, "update_status.state"));
            snprintf(reps, sizeof reps, "%lld/%lld%s%s%s",
                     jint(s, "tasks.running"), jint(s, "tasks.desired"),
                     *upd ? " (" : "", upd, *upd ? ")" : "");
            ports_text(s, ports, sizeof ports);
            table_row(&t, jstr(s, "id"), jstr(s, "spec.name"),
                      jstr(s, "spec.mode"), reps,
                      jstr(s, "spec.task.container.image"), ports);
        }
        table_print(&t);
        table_free(&t);
    }
    json_decref(all);
    return 0;
}

/* ---- service inspect --pretty ---- */

static void print_strs(const char *label, const json_t *arr)
{
    if (!json_array_size(arr))
        return;
    printf("%s", label);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
        printf("%s%s", i ? " " : "", json_string_value(v));
    printf("\n");
}

static void print_kvs(const char *label, const json_t *obj)
{
    if (!json_object_size(obj))
        return;
    printf("%s\n", label);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
        printf("  %s=%s\n", k, json_string_value(v));
}

static void print_duration(const char *label, long long ms)
{
    char d[32];
    sk_format_duration_ms(ms, d, sizeof d);
    printf("%s%s\n", label, d);
}

static void print_resources(const char *label, const json_t *r)
{
    long long cpus = jint(r, "nano_cpus"), mem = jint(r, "memory_bytes");
    if (!cpus && !mem)
        return;
    printf("%s\n", label);
    if (cpus)
        printf("  CPUs:       %g\n", (double)cpus / 1e9);
    if (mem)
        printf("  Memory:     %.4g MiB\n", (double)mem / (1024.0 * 1024.0));
}

static void print_update_config(const char *label, const json_t *u)
{
    if (!u)
        return;
    printf("%s\n", label);
    printf("  Parallelism:        %lld\n", jint(u, "parallelism"));
    if (jint(u, "delay_ms"))
        print_duration("  Delay:              ", jint(u, "delay_ms"));
    printf("  On failure:         %s\n", jstr(u, "failure_action"));
    print_duration("  Monitoring period:  ", jint(u, "monitor_ms"));
    printf("  Max failure ratio:  %g\n",
           json_number_value(json_object_get(u, "max_failure_ratio")));
    printf("  Update order:       %s\n", jstr(u, "order"));
}

/* A network by its current name where it still exists, else as the spec
 * named it. */
static const char *network_name(const json_t *networks, const char *id,
                                const char *named)
{
    size_t i;
    json_t *net;
    json_array_foreach(networks, i, net)
    {
        if (strcmp(jstr(net, "id"), id) == 0)
            return jstr(net, "spec.name");
    }
    return named;
}

/* A service as people read it, in docker's manner: what it is, how far
 * its update got and why, then its spec section by section. */
static void print_pretty(const json_t *s, const json_t *networks)
{
    const json_t *spec = json_object_get(s, "spec");
    const json_t *task = json_object_get(spec, "task");
    const json_t *c = json_object_get(task, "container");
    char buf[64], when[48];
    printf("ID:             %s\n", jstr(s, "id"));
    printf("Name:           %s\n", jstr(s, "spec.name"));
    print_kvs("Labels:", json_object_get(spec, "labels"));
    printf("Service Mode:   %s\n", title(jstr(spec, "mode"), buf, sizeof buf));
    if (strcmp(jstr(spec, "mode"), "replicated") == 0)
        printf("  Replicas:     %lld\n", jint(spec, "replicas"));
    printf("Tasks:          %lld running of %lld desired\n",
           jint(s, "tasks.running"), jint(s, "tasks.desired"));
    const json_t *us = json_object_get(s, "update_status");
    const char *ustate = jstr(us, "state");
    if (*ustate && strcmp(ustate, "none") != 0) {
        printf("UpdateStatus:\n");
        printf("  State:        %s\n", ustate);
        ago(jint(us, "started_at"), when, sizeof when);
        printf("  Started:      %s\n", when);
        if (jint(us, "completed_at")) {
            ago(jint(us, "completed_at"), when, sizeof when);
            printf("  Completed:    %s\n", when);
        }
        printf("  Message:      %s\n", jstr(us, "message"));
    }
    const json_t *pl = json_object_get(task, "placement");
    if (json_array_size(json_object_get(pl, "constraints")) ||
        json_array_size(json_object_get(pl, "preferences")) ||
        jint(pl, "max_replicas")) {
        printf("Placement:\n");
        print_strs("  Constraints:  ", json_object_get(pl, "constraints"));
        print_strs("  Preferences:  ", json_object_get(pl, "preferences"));
        if (jint(pl, "max_replicas"))
            printf("  Max replicas per node: %lld\n", jint(pl, "max_replicas"));
    }
    print_update_config("UpdateConfig:", json_object_get(spec, "update"));
    print_update_config("RollbackConfig:", json_object_get(spec, "rollback"));
    const json_t *r = json_object_get(task, "restart");
    printf("RestartPolicy:\n");
    printf("  Condition:    %s\n", jstr(r, "condition"));
    print_duration("  Delay:        ", jint(r, "delay_ms"));
    if (jint(r, "max_attempts"))
        printf("  Max attempts: %lld\n", jint(r, "max_attempts"));
    printf("ContainerSpec:\n");
    printf("  Image:        %s\n", jstr(c, "image"));
    print_strs("  Entrypoint:   ", json_object_get(c, "entrypoint"));
    print_strs("  Args:         ", json_object_get(c, "command"));
    print_strs("  Env:          ", json_object_get(c, "env"));
    if (*jstr(c, "user"))
        printf("  User:         %s\n", jstr(c, "user"));
    if (*jstr(c, "workdir"))
        printf("  Dir:          %s\n", jstr(c, "workdir"));
    printf("  Init:         %s\n",
           json_is_true(json_object_get(c, "init")) ? "true" : "false");
    if (json_is_true(json_object_get(c, "read_only")))
        printf("  Read-only root file system: true\n");
    print_resources("Reservations:", json_object_get(task, "reservations"));
    print_resources("Limits:", json_object_get(task, "limits"));
    const json_t *nets = json_object_get(task, "networks");
    if (json_array_size(nets)) {
        printf("Networks:      ");
        size_t i;
        json_t *n;
        json_array_foreach(nets, i, n) printf(
            " %s", network_name(networks, jstr(n, "id"), jstr(n, "target")));
        printf("\n");
    }
    printf("Endpoint Mode:  %s\n", jstr(spec, "endpoint.mode"));
    const json_t *ports =
        json_object_get(json_object_get(spec, "endpoint"), "ports");
    if (json_array_size(ports)) {
        printf("Ports:\n");
        size_t i;
        json_t *p;
        json_array_foreach(ports, i, p)
            printf("  %lld -> %lld/%s (%s)\n", jint(p, "published"),
                   jint(p, "target"), jstr(p, "protocol"), jstr(p, "mode"));
    }
}

int cmd_service_inspect(int argc, char **argv)
{
    enum { PRETTY, HELP, N };
    struct sk_flag f[N] = {
        [PRETTY] = {.name = "pretty",
                    .type = SK_FLAG_BOOL,
                    .help = "for people: the update status with its "
                            "message, then the spec section by section"},
        [HELP] = HELP_FLAG,
    };
    const char *usage = "skiff service inspect [--pretty] SERVICE...";
    struct sk_flags_result res;
    int code;
    if (!parse_flags(usage, f, N, argc, argv, false, &res, &code))
        return code;
    int rc = 0;
    if (res.n_positional == 0) {
        rc = fail("usage: %s", usage);
        goto out;
    }
    json_t *all = json_array(), *networks = NULL;
    struct sk_err err;
    for (size_t i = 0; i < res.n_positional && rc == 0; i++) {
        json_t *o = cli_get("services", res.positional[i], &err);
        if (!o)
            rc = fail_err(&err);
        else
            json_array_append_new(all, o);
    }
    if (rc == 0 && f[PRETTY].on && !cli.json) {
        /* Networks by name; without them, by the name the spec gave. */
        if (cli_call("GET", "/v1/networks", NULL, &networks, &err) != SK_OK)
            networks = NULL;
        size_t i;
        json_t *o;
        json_array_foreach(all, i, o)
        {
            if (i)
                printf("\n");
            print_pretty(o, networks);
        }
    } else if (rc == 0) {
        print_json(all);
    }
    json_decref(networks);
    json_decref(all);
out:
    sk_flags_free(f, N, &res);
    return rc;
}

int cmd_service_rollback(int argc, char **argv)
{
    struct sk_flags_result res;
    int code;
    if (!parse_positionals("skiff service rollback SERVICE", 1, argc, argv,
                           &res, &code))
        return code;
    int rc = 0;
    char *path = sk_printf("/v1/services/%s/rollback", res.positional[0]);
    struct sk_err err;
    if (cli_call("POST", path, NULL, NULL, &err) != SK_OK)
        rc = fail_err(&err);
    else if (!cli.quiet)
        printf("%s\n", res.positional[0]);
    free(path);
    sk_flags_free(NULL, 0, &res);
    return rc;
}

int cmd_service_rm(int argc, char **argv)
{
    struct sk_flags_result res;
    int code;
    if (!parse_positionals("skiff service rm SERVICE...", 0, argc, argv, &res,
                           &code))
        return code;
    int rc = 0;
    for (size_t i = 0; i < res.n_positional && rc == 0; i++) {
        char *path = sk_printf("/v1/services/%s", res.positional[i]);
        struct sk_err err;
        if (cli_call("DELETE", path, NULL, NULL, &err) != SK_OK)
            rc = fail_err(&err);
        else if (!cli.quiet)
            printf("%s\n", res.positional[i]);
        free(path);
    }
    sk_flags_free(NULL, 0, &res);
    return rc;
}

struct logs_ctx {
    int errors;
};

static bool print_log(const char *line, void *ctx)
{
    struct logs_ctx *l = ctx;
    json_t *j = json_loads(line, 0, NULL);
    if (!j)
        return true;
    if (cli.json) {
        printf("%s\n", line);
    } else if (json_object_get(j, "error")) {
        fprintf(stderr, "skiff: %s@%s: %s\n", jstr(j, "task"), jstr(j, "node"),
                jstr(j, "error"));
        l->errors++;
    } else {
        FILE *out = strcmp(jstr(j, "stream"), "stderr") == 0 ? stderr : stdout;
        fprintf(out, "%s.%.6s@%s | %s\n", jstr(j, "task"), jstr(j, "task_id"),
                jstr(j, "node"), jstr(j, "line"));
        fflush(out);
    }
    json_decref(j);
    return true;
}

int cmd_service_logs(int argc, char **argv)
{
    struct sk_flag f[] = {
        {.name = "follow",
         .short_name = 'f',
         .type = SK_FLAG_BOOL,
         .help = "keep following new lines"},
        {.name = "tail",
         .short_name = 'n',
         .type = SK_FLAG_INT,
         .min = 0,
         .max = 1000000,
         .help = "only the last N lines of each task"},
        HELP_FLAG,
    };
    const char *usage = "skiff service logs [-f] [--tail N] SERVICE";
    struct sk_flags_result res;
    int code;
    if (!parse_flags(usage, f, 3, argc, argv, false, &res, &code))
        return code;
    int rc = 0;
    if (res.n_positional != 1) {
        rc = fail("usage: %s", usage);
        goto out;
    }
    char tail[32] = "";
    if (f[1].set)
        snprintf(tail, sizeof tail, "&tail=%lld", (long long)f[1].num);
    char *path = sk_printf("/v1/services/%s/logs?follow=%d%s",
                           res.positional[0], f[0].on ? 1 : 0, tail);
    if (f[0].on)
        cli.timeout_ms = 0xffffffffu;
    struct logs_ctx l = {0};
    struct sk_err err;
    if (cli_stream(path, print_log, &l, &err) != SK_OK)
        rc = fail_err(&err);
    else if (l.errors)
        rc = 1;
    free(path);
out:
    sk_flags_free(f, 3, &res);
    return rc;
}
