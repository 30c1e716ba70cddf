/* skiff service create|ls|ps|inspect|scale|update|rm|logs. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/constraint.h"
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
    S_COUNT
};

static const char *const modes[] = {"replicated", "global", NULL};
static const char *const orders[] = {"stop-first", "start-first", NULL};
static const char *const actions[] = {"pause", "continue", "rollback", NULL};

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
                    .choices = modes,
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
                         .choices = orders,
                         .help = "stop-first or start-first"},
        [S_UPD_FAILURE] = {.name = "update-failure-action",
                           .type = SK_FLAG_ENUM,
                           .choices = actions,
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
    };
    memcpy(f, base, sizeof base);
}

/* "mode=host,published=8080,target=80,protocol=tcp" or "8080:80[/udp]". */
static bool parse_publish(const char *s, json_t **out, struct sk_err *err)
{
    long long published = 0, target = 0;
    const char *proto = "tcp", *mode = "host";
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    if (!strchr(buf, '=')) {
        char *slash = strchr(buf, '/');
        if (slash) {
            *slash = '\0';
            proto = slash + 1;
        }
        char *colon = strchr(buf, ':');
        char *end;
        if (colon) {
            *colon = '\0';
            published = strtoll(buf, &end, 10);
            if (*end || !*buf)
                goto bad;
            target = strtoll(colon + 1, &end, 10);
            if (*end || !colon[1])
                goto bad;
        } else {
            goto bad;
        }
    } else {
        char *save = NULL;
        for (char *kv = strtok_r(buf, ",", &save); kv;
             kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            if (!eq)
                goto bad;
            *eq = '\0';
            const char *v = eq + 1;
            char *end;
            if (strcmp(kv, "published") == 0) {
                published = strtoll(v, &end, 10);
                if (*end || !*v)
                    goto bad;
            } else if (strcmp(kv, "target") == 0) {
                target = strtoll(v, &end, 10);
                if (*end || !*v)
                    goto bad;
            } else if (strcmp(kv, "protocol") == 0) {
                proto = v;
            } else if (strcmp(kv, "mode") == 0) {
                mode = v;
            } else {
                goto bad;
            }
        }
    }
    if (target < 1 || target > 65535 || published < 0 || published > 65535 ||
        (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0) ||
        (strcmp(mode, "host") != 0 && strcmp(mode, "ingress") != 0))
        goto bad;
    *out = json_pack("{s:s, s:I, s:I, s:s}", "protocol", proto, "target",
                     target, "published", published, "mode", mode);
    return true;
bad:
    sk_err_set(err, SK_EINVAL,
               "--publish \"%s\": want mode=host,published=P,target=T"
               "[,protocol=tcp|udp] or P:T[/udp], ports 1-65535",
               s);
    return false;
}

static json_t *obj_at(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        v = json_object();
        json_object_set_new(o, key, v);
    }
    return v;
}

static json_t *arr_at(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        v = json_array();
        json_object_set_new(o, key, v);
    }
    return v;
}

static bool set_kv(json_t *obj, const char *kv, const char *flag,
                   struct sk_err *err)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) {
        sk_err_set(err, SK_EINVAL, "--%s \"%s\": want KEY=VALUE", flag, kv);
        return false;
    }
    char *key = sk_strndup(kv, (size_t)(eq - kv));
    json_object_set_new(obj, key, json_string(eq + 1));
    free(key);
    return true;
}

/* Removes from a string array the entries equal to s (or, with prefix,
 * starting with "s="). Returns how many went. */
static size_t remove_strs(json_t *arr, const char *s, bool env_key)
{
    size_t gone = 0;
    for (size_t i = json_array_size(arr); i-- > 0;) {
        const char *v = json_string_value(json_array_get(arr, i));
        bool match =
            v &&
            (env_key ? (strncmp(v, s, strlen(s)) == 0 && v[strlen(s)] == '=')
                     : strcmp(v, s) == 0);
        if (match) {
            json_array_remove(arr, i);
            gone++;
        }
    }
    return gone;
}

/* Writes the flags given into a spec (JSON, as the API takes it). */
static bool apply_flags(struct sk_flag *f, json_t *spec, struct sk_err *err)
{
    json_t *task = obj_at(spec, "task");
    json_t *c = obj_at(task, "container");
    if (f[S_NAME].set)
        json_object_set_new(spec, "name", json_string(f[S_NAME].str));
    if (f[S_REPLICAS].set)
        json_object_set_new(spec, "replicas", json_integer(f[S_REPLICAS].num));
    if (f[S_MODE].set)
        json_object_set_new(spec, "mode", json_string(f[S_MODE].str));
    for (size_t i = 0; i < f[S_CONSTRAINT].n_strs; i++) {
        struct sk_constraint con;
        if (sk_constraint_parse(f[S_CONSTRAINT].strs[i], &con, err) != SK_OK)
            return false;
        json_array_append_new(arr_at(obj_at(task, "placement"), "constraints"),
                              json_string(f[S_CONSTRAINT].strs[i]));
    }
    for (size_t i = 0; i < f[S_CONS_ADD].n_strs; i++) {
        struct sk_constraint con;
        if (sk_constraint_parse(f[S_CONS_ADD].strs[i], &con, err) != SK_OK)
            return false;
        json_array_append_new(arr_at(obj_at(task, "placement"), "constraints"),
                              json_string(f[S_CONS_ADD].strs[i]));
    }
    for (size_t i = 0; i < f[S_CONS_RM].n_strs; i++)
        if (!remove_strs(arr_at(obj_at(task, "placement"), "constraints"),
                         f[S_CONS_RM].strs[i], false)) {
            sk_err_set(err, SK_ENOTFOUND,
                       "--constraint-rm \"%s\": the service has no such "
                       "constraint",
                       f[S_CONS_RM].strs[i]);
            return false;
        }
    for (size_t i = 0; i < f[S_PREF].n_strs; i++) {
        char key[128];
        if (sk_preference_parse(f[S_PREF].strs[i], key, sizeof key, err) !=
            SK_OK)
            return false;
        json_array_append_new(arr_at(obj_at(task, "placement"), "preferences"),
                              json_string(f[S_PREF].strs[i]));
    }
    if (f[S_MAX_REPLICAS].set)
        json_object_set_new(obj_at(task, "placement"), "max_replicas",
                            json_integer(f[S_MAX_REPLICAS].num));
    for (size_t i = 0; i < f[S_ENV].n_strs; i++) {
        if (!strchr(f[S_ENV].strs[i], '=')) {
            sk_err_set(err, SK_EINVAL, "--env \"%s\": want KEY=VALUE",
                       f[S_ENV].strs[i]);
            return false;
        }
        json_array_append_new(arr_at(c, "env"), json_string(f[S_ENV].strs[i]));
    }
    for (size_t i = 0; i < f[S_ENV_RM].n_strs; i++)
        remove_strs(arr_at(c, "env"), f[S_ENV_RM].strs[i], true);
    for (size_t i = 0; i < f[S_ENV_ADD].n_strs; i++) {
        const char *kv = f[S_ENV_ADD].strs[i];
        const char *eq = strchr(kv, '=');
        if (!eq || eq == kv) {
            sk_err_set(err, SK_EINVAL, "--env-add \"%s\": want KEY=VALUE", kv);
            return false;
        }
        char *key = sk_strndup(kv, (size_t)(eq - kv));
        remove_strs(arr_at(c, "env"), key, true);
        free(key);
        json_array_append_new(arr_at(c, "env"), json_string(kv));
    }
    for (size_t i = 0; i < f[S_LABEL].n_strs; i++)
        if (!set_kv(obj_at(spec, "labels"), f[S_LABEL].strs[i], "label", err))
            return false;
    for (size_t i = 0; i < f[S_LABEL_ADD].n_strs; i++)
        if (!set_kv(obj_at(spec, "labels"), f[S_LABEL_ADD].strs[i], "label-add",
                    err))
            return false;
    for (size_t i = 0; i < f[S_LABEL_RM].n_strs; i++)
        json_object_del(obj_at(spec, "labels"), f[S_LABEL_RM].strs[i]);
    for (size_t i = 0; i < f[S_CLABEL].n_strs; i++)
        if (!set_kv(obj_at(c, "labels"), f[S_CLABEL].strs[i], "container-label",
                    err))
            return false;
    for (size_t i = 0; i < f[S_PUBLISH].n_strs; i++) {
        json_t *p;
        if (!parse_publish(f[S_PUBLISH].strs[i], &p, err))
            return false;
        json_array_append_new(arr_at(obj_at(spec, "endpoint"), "ports"), p);
    }
    if (f[S_RES_CPU].set)
        json_object_set_new(obj_at(task, "reservations"), "nano_cpus",
                            json_integer(f[S_RES_CPU].num));
    if (f[S_RES_MEM].set)
        json_object_set_new(obj_at(task, "reservations"), "memory_bytes",
                            json_integer(f[S_RES_MEM].num));
    if (f[S_LIM_CPU].set)
        json_object_set_new(obj_at(task, "limits"), "nano_cpus",
                            json_integer(f[S_LIM_CPU].num));
    if (f[S_LIM_MEM].set)
        json_object_set_new(obj_at(task, "limits"), "memory_bytes",
                            json_integer(f[S_LIM_MEM].num));
    json_t *restart = obj_at(task, "restart");
    if (f[S_RESTART_COND].set)
        json_object_set_new(restart, "condition",
                            json_string(f[S_RESTART_COND].str));
    if (f[S_RESTART_DELAY].set)
        json_object_set_new(restart, "delay_ms",
                            json_integer(f[S_RESTART_DELAY].num));
    if (f[S_RESTART_MAX].set)
        json_object_set_new(restart, "max_attempts",
                            json_integer(f[S_RESTART_MAX].num));
    if (f[S_RESTART_WINDOW].set)
        json_object_set_new(restart, "window_ms",
                            json_integer(f[S_RESTART_WINDOW].num));
    if (json_object_size(restart) == 0)
        json_object_del(task, "restart");
    if (f[S_USER].set)
        json_object_set_new(c, "user", json_string(f[S_USER].str));
    if (f[S_WORKDIR].set)
        json_object_set_new(c, "workdir", json_string(f[S_WORKDIR].str));
    if (f[S_ENTRYPOINT].set)
        json_object_set_new(c, "entrypoint",
                            json_pack("[s]", f[S_ENTRYPOINT].str));
    if (f[S_INIT].set)
        json_object_set_new(c, "init", json_boolean(f[S_INIT].on));
    if (f[S_READ_ONLY].set)
        json_object_set_new(c, "read_only", json_boolean(f[S_READ_ONLY].on));
    for (size_t i = 0; i < f[S_CAP_ADD].n_strs; i++)
        json_array_append_new(arr_at(c, "cap_add"),
                              json_string(f[S_CAP_ADD].strs[i]));
    for (size_t i = 0; i < f[S_CAP_DROP].n_strs; i++)
        json_array_append_new(arr_at(c, "cap_drop"),
                              json_string(f[S_CAP_DROP].strs[i]));
    if (f[S_GRACE].set)
        json_object_set_new(c, "stop_grace_ms", json_integer(f[S_GRACE].num));
    if (f[S_STOP_SIGNAL].set)
        json_object_set_new(c, "stop_signal",
                            json_string(f[S_STOP_SIGNAL].str));
    if (f[S_HOSTNAME].set)
        json_object_set_new(c, "hostname", json_string(f[S_HOSTNAME].str));
    if (f[S_IMAGE].set)
        json_object_set_new(c, "image", json_string(f[S_IMAGE].str));
    if (f[S_ARGS].set) {
        json_t *args = json_array();
        char *copy = sk_strdup(f[S_ARGS].str), *save = NULL;
        for (char *w = strtok_r(copy, " ", &save); w;
             w = strtok_r(NULL, " ", &save))
            json_array_append_new(args, json_string(w));
        free(copy);
        json_object_set_new(c, "command", args);
    }
    json_t *upd = obj_at(spec, "update");
    if (f[S_UPD_PAR].set)
        json_object_set_new(upd, "parallelism", json_integer(f[S_UPD_PAR].num));
    if (f[S_UPD_DELAY].set)
        json_object_set_new(upd, "delay_ms", json_integer(f[S_UPD_DELAY].num));
    if (f[S_UPD_ORDER].set)
        json_object_set_new(upd, "order", json_string(f[S_UPD_ORDER].str));
    if (f[S_UPD_FAILURE].set)
        json_object_set_new(upd, "failure_action",
                            json_string(f[S_UPD_FAILURE].str));
    if (f[S_UPD_MONITOR].set)
        json_object_set_new(upd, "monitor_ms",
                            json_integer(f[S_UPD_MONITOR].num));
    if (json_object_size(upd) == 0)
        json_object_del(spec, "update");
    if (f[S_NO_HEALTH].on) {
        json_object_set_new(c, "healthcheck",
                            json_pack("{s:[s]}", "test", "NONE"));
    } else if (f[S_HEALTH_CMD].set || f[S_HEALTH_INT].set ||
               f[S_HEALTH_TIMEOUT].set || f[S_HEALTH_RETRIES].set) {
        json_t *h = obj_at(c, "healthcheck");
        if (f[S_HEALTH_CMD].set)
            json_object_set_new(
                h, "test",
                json_pack("[s,s]", "CMD-SHELL", f[S_HEALTH_CMD].str));
        if (f[S_HEALTH_INT].set)
            json_object_set_new(h, "interval_ms",
                                json_integer(f[S_HEALTH_INT].num));
        if (f[S_HEALTH_TIMEOUT].set)
            json_object_set_new(h, "timeout_ms",
                                json_integer(f[S_HEALTH_TIMEOUT].num));
        if (f[S_HEALTH_RETRIES].set)
            json_object_set_new(h, "retries",
                                json_integer(f[S_HEALTH_RETRIES].num));
    }
    if (f[S_FORCE].on) {
        json_t *fu = json_object_get(task, "force_update");
        json_object_set_new(task, "force_update",
                            json_integer(json_integer_value(fu) + 1));
    }
    return true;
}

/* Flags create does not take, and flags update does not take. */
static const int create_only[] = {S_IMAGE,    S_ENV_ADD, S_ENV_RM,
                                  S_CONS_ADD, S_CONS_RM, S_LABEL_ADD,
                                  S_LABEL_RM, S_FORCE,   S_ARGS};
static const int update_only_not[] = {S_NAME, S_MODE, S_CONSTRAINT, S_ENV,
                                      S_LABEL};

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
    json_t *spec = json_object();
    struct sk_err err;
    if (res.n_positional < 1) {
        rc = fail("usage: %s", usage);
        goto out;
    }
    json_t *c = obj_at(obj_at(spec, "task"), "container");
    json_object_set_new(c, "image", json_string(res.positional[0]));
    if (res.n_positional > 1) {
        json_t *cmd = json_array();
        for (size_t i = 1; i < res.n_positional; i++)
            json_array_append_new(cmd, json_string(res.positional[i]));
        json_object_set_new(c, "command", cmd);
    }
    if (!apply_flags(f, spec, &err)) {
        rc = fail_err(&err);
        goto out;
    }
    if (!json_object_get(spec, "name")) {
        /* Like docker: a name is made up when none is given. */
        char id[SK_ID_SIZE];
        sk_id_new(id);
        json_object_set_new(spec, "name",
                            json_string(sk_printf("svc-%.8s", id)));
    }
    json_t *body = json_pack("{s:O}", "spec", spec), *reply = NULL;
    if (cli_call("POST", "/v1/services", body, &reply, &err) != SK_OK)
        rc = fail_err(&err);
    else
        printf("%s\n", f[S_QUIET].on || cli.quiet ? jstr(reply, "id")
                                                  : jstr(reply, "id"));
    json_decref(body);
    json_decref(reply);
out:
    json_decref(spec);
    sk_flags_free(shown, n, &res);
    return rc;
}

static bool update_change(json_t *spec, void *ctx, struct sk_err *err)
{
    return apply_flags(ctx, spec, err);
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
    if (res.n_positional != 1) {
        rc = fail("usage: %s", usage);
    } else {
        struct sk_err err;
        if (cli_modify("services", res.positional[0], update_change, f, &err) !=
            SK_OK)
            rc = fail_err(&err);
        else if (!cli.quiet)
            printf("%s\n", res.positional[0]);
    }
    sk_flags_free(shown, n, &res);
    return rc;
}

struct scale_ctx {
    long long replicas;
};

static bool scale_change(json_t *spec, void *ctx, struct sk_err *err)
{
    struct scale_ctx *s = ctx;
    if (strcmp(jstr(spec, "mode"), "global") == 0) {
        sk_err_set(err, SK_EINVAL,
                   "service \"%s\" is global: it runs one task per node and "
                   "cannot be scaled",
                   jstr(spec, "name"));
        return false;
    }
    json_object_set_new(spec, "replicas", json_integer(s->replicas));
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
        struct scale_ctx s = {.replicas = r};
        if (cli_modify("services", name, scale_change, &s, &err) != SK_OK)
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
            char reps[48], ports[256];
            snprintf(reps, sizeof reps, "%lld/%lld", jint(s, "tasks.running"),
                     jint(s, "tasks.desired"));
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

int cmd_service_ps(int argc, char **argv)
{
    struct sk_flag f[] = {{.name = "quiet",
                           .short_name = 'q',
                           .type = SK_FLAG_BOOL,
                           .help = "only IDs"},
                          {.name = "all",
                           .short_name = 'a',
                           .type = SK_FLAG_BOOL,
                           .help = "also the tasks that ended"},
                          HELP_FLAG};
    const char *usage = "skiff service ps [-q] [-a] SERVICE";
    struct sk_flags_result res;
    int code;
    if (!parse_flags(usage, f, 3, argc, argv, false, &res, &code))
        return code;
    int rc = 0;
    bool quiet = f[0].on || cli.quiet, all = f[1].on;
    if (res.n_positional != 1) {
        rc = fail("usage: %s", usage);
        goto out;
    }
    char *path = sk_printf("/v1/tasks?service=%s", res.positional[0]);
    json_t *tasks;
    struct sk_err err;
    enum sk_rc r = cli_call("GET", path, NULL, &tasks, &err);
    free(path);
    if (r != SK_OK) {
        rc = fail_err(&err);
        goto out;
    }
    size_t i;
    json_t *t;
    if (cli.json) {
        print_json(tasks);
    } else if (quiet) {
        json_array_foreach(tasks, i, t) printf("%s\n", jstr(t, "id"));
    } else {
        struct table tb;
        table_init(&tb, 7, "ID", "NAME", "IMAGE", "NODE", "DESIRED STATE",
                   "CURRENT STATE", "ERROR");
        json_array_foreach(tasks, i, t)
        {
            bool live = strcmp(jstr(t, "desired_state"), "running") == 0;
            if (!all && !live &&
                (strcmp(jstr(t, "status.state"), "running") != 0))
                continue;
            char desired[32], state[96], st[32], when[48];
            title(jstr(t, "desired_state"), desired, sizeof desired);
            ago(jint(t, "status.timestamp"), when, sizeof when);
            snprintf(state, sizeof state, "%s %s",
                     title(jstr(t, "status.state"), st, sizeof st), when);
            const char *error = jstr(t, "status.err");
            if (!*error && strcmp(jstr(t, "status.state"), "pending") == 0)
                error = jstr(t, "status.message");
            char shortid[16];
            snprintf(shortid, sizeof shortid, "%.12s", jstr(t, "id"));
            table_row(&tb, shortid, jstr(t, "name"),
                      jstr(t, "spec.container.image"), jstr(t, "node_name"),
                      desired, state, error);
        }
        table_print(&tb);
        table_free(&tb);
    }
    json_decref(tasks);
out:
    sk_flags_free(f, 3, &res);
    return rc;
}

int cmd_service_inspect(int argc, char **argv)
{
    return cli_inspect("services", "skiff service inspect SERVICE...", argc,
                       argv);
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
