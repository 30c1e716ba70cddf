/* The Compose loader: the keys each file may hold, and the merged tree
 * typed into a stack. See skiff/compose.h for what it does; the tree
 * steps are in compose_tree.c. */
#include "skiff/compose.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "skiff/constraint.h"
#include "skiff/ipv4.h"
#include "skiff/mem.h"
#include "skiff/parse.h"
#include "skiff/pki.h"
#include "compose_tree.h"

const char *const sk_mount_type_names[] = {"bind", "volume", "tmpfs", NULL};

#define MAX_ENV_FILE_BYTES (1024 * 1024)

/* ---- the keys of the Compose specification ---- */

/* K_READ: skiff honours it. K_WARN: Compose has it, skiff does not honour
 * it: a warning, never silence. Any other key is an error. */
enum kstatus { K_READ, K_WARN };
/* What is below a key, for checking the keys further down. */
enum kshape {
    SH_LEAF,
    SH_MAP,    /* a mapping of the keys of `sub` */
    SH_MAP_OF, /* a mapping whose values are mappings of `sub` */
    SH_SEQ_OF, /* a list whose items may be mappings of `sub` */
};

struct keyset;
struct keydef {
    const char *name;
    enum kstatus status;
    enum kshape shape;
    const struct keyset *sub;
    const char *why; /* K_WARN: what to do instead, or why */
};
struct keyset {
    const struct keydef *keys;
    size_t n;
};

#define KEYSET(var, tbl)                                                       \
    static const struct keyset var = {tbl, sizeof tbl / sizeof tbl[0]}
#define READ(k)                                                                \
    {                                                                          \
        k, K_READ, SH_LEAF, NULL, NULL                                         \
    }
#define READ_SUB(k, shape, sub)                                                \
    {                                                                          \
        k, K_READ, shape, &sub, NULL                                           \
    }
#define WARN(k, why)                                                           \
    {                                                                          \
        k, K_WARN, SH_LEAF, NULL, why                                          \
    }

static const struct keydef external_keys[] = {READ("name")};
KEYSET(external_set, external_keys);

static const struct keydef ipam_config_keys[] = {
    READ("subnet"),
    READ("gateway"),
    WARN("ip_range", "tasks get addresses from the whole subnet"),
    WARN("aux_addresses", NULL),
};
KEYSET(ipam_config_set, ipam_config_keys);

static const struct keydef ipam_keys[] = {
    READ("driver"),
    READ_SUB("config", SH_SEQ_OF, ipam_config_set),
    WARN("options", NULL),
};
KEYSET(ipam_set, ipam_keys);

static const struct keydef network_keys[] = {
    READ("driver"),
    WARN("driver_opts", NULL),
    READ("attachable"),
    WARN("enable_ipv6", "skiff's overlays are IPv4"),
    WARN("enable_ipv4", NULL),
    READ_SUB("ipam", SH_MAP, ipam_set),
    READ("internal"),
    READ("labels"),
    READ_SUB("external", SH_MAP, external_set),
    READ("name"),
};
KEYSET(network_set, network_keys);

static const struct keydef volume_keys[] = {
    READ("driver"),
    READ("driver_opts"),
    READ_SUB("external", SH_MAP, external_set),
    READ("labels"),
    READ("name"),
};
KEYSET(volume_set, volume_keys);

static const struct keydef secret_keys[] = {
    READ("file"),
    READ("environment"),
    READ_SUB("external", SH_MAP, external_set),
    READ("labels"),
    READ("name"),
    WARN("driver", NULL),
    WARN("driver_opts", NULL),
    WARN("template_driver", "the content is used as it is"),
};
KEYSET(secret_set, secret_keys);

static const struct keydef config_keys[] = {
    READ("file"),
    READ("environment"),
    READ("content"),
    READ_SUB("external", SH_MAP, external_set),
    READ("labels"),
    READ("name"),
    WARN("template_driver", "the content is used as it is"),
};
KEYSET(config_set, config_keys);

static const struct keydef healthcheck_keys[] = {
    READ("test"),
    READ("interval"),
    READ("timeout"),
    READ("retries"),
    READ("start_period"),
    READ("disable"),
    WARN("start_interval", NULL),
};
KEYSET(healthcheck_set, healthcheck_keys);

static const struct keydef port_keys[] = {
    READ("target"),
    READ("published"),
    READ("protocol"),
    READ("mode"),
    READ("host_ip"),
    WARN("name", NULL),
    WARN("app_protocol", NULL),
};
KEYSET(port_set, port_keys);

static const struct keydef service_net_keys[] = {
    READ("aliases"),
    WARN("ipv4_address", "tasks get addresses from the network's subnet"),
    WARN("ipv6_address", NULL),
    WARN("link_local_ips", NULL),
    WARN("mac_address", NULL),
    WARN("priority", NULL),
    WARN("gw_priority", NULL),
    WARN("driver_opts", NULL),
    WARN("interface_name", NULL),
};
KEYSET(service_net_set, service_net_keys);

static const struct keydef bind_keys[] = {
    WARN("propagation", NULL),
    WARN("create_host_path",
         "the source must exist on the nodes that run the tasks"),
    WARN("selinux", NULL),
    WARN("recursive", NULL),
};
KEYSET(bind_set, bind_keys);

static const struct keydef volume_opt_keys[] = {
    READ("nocopy"),
    WARN("subpath", NULL),
};
KEYSET(volume_opt_set, volume_opt_keys);

static const struct keydef tmpfs_keys[] = {READ("size"), READ("mode")};
KEYSET(tmpfs_set, tmpfs_keys);

static const struct keydef mount_keys[] = {
    READ("type"),
    READ("source"),
    READ("target"),
    READ("read_only"),
    READ_SUB("bind", SH_MAP, bind_set),
    READ_SUB("volume", SH_MAP, volume_opt_set),
    READ_SUB("tmpfs", SH_MAP, tmpfs_set),
    WARN("consistency", NULL),
    WARN("image", NULL),
};
KEYSET(mount_set, mount_keys);

static const struct keydef fileref_keys[] = {
    READ("source"), READ("target"), READ("uid"), READ("gid"), READ("mode"),
};
KEYSET(fileref_set, fileref_keys);

static const struct keydef env_file_keys[] = {
    READ("path"),
    READ("required"),
    WARN("format", NULL),
};
KEYSET(env_file_set, env_file_keys);

static const struct keydef spread_keys[] = {READ("spread")};
KEYSET(spread_set, spread_keys);

static const struct keydef placement_keys[] = {
    READ("constraints"),
    READ_SUB("preferences", SH_SEQ_OF, spread_set),
    READ("max_replicas_per_node"),
};
KEYSET(placement_set, placement_keys);

static const struct keydef limits_keys[] = {
    READ("cpus"),
    READ("memory"),
    WARN("pids", NULL),
};
KEYSET(limits_set, limits_keys);

static const struct keydef reservations_keys[] = {
    READ("cpus"),
    READ("memory"),
    WARN("generic_resources", NULL),
    WARN("devices", NULL),
};
KEYSET(reservations_set, reservations_keys);

static const struct keydef resources_keys[] = {
    READ_SUB("limits", SH_MAP, limits_set),
    READ_SUB("reservations", SH_MAP, reservations_set),
};
KEYSET(resources_set, resources_keys);

static const struct keydef restart_keys[] = {
    READ("condition"),
    READ("delay"),
    READ("max_attempts"),
    READ("window"),
};
KEYSET(restart_set, restart_keys);

static const struct keydef update_keys[] = {
    READ("parallelism"),       READ("delay"),
    READ("failure_action"),    READ("monitor"),
    READ("max_failure_ratio"), READ("order"),
};
KEYSET(update_set, update_keys);

static const struct keydef deploy_keys[] = {
    READ("mode"),
    READ("replicas"),
    READ_SUB("placement", SH_MAP, placement_set),
    READ_SUB("resources", SH_MAP, resources_set),
    READ_SUB("restart_policy", SH_MAP, restart_set),
    READ_SUB("update_config", SH_MAP, update_set),
    READ_SUB("rollback_config", SH_MAP, update_set),
    READ("endpoint_mode"),
    READ("labels"),
};
KEYSET(deploy_set, deploy_keys);

static const struct keydef service_keys[] = {
    READ("image"),
    READ("command"),
    READ("entrypoint"),
    READ("environment"),
    READ_SUB("env_file", SH_SEQ_OF, env_file_set),
    READ_SUB("ports", SH_SEQ_OF, port_set),
    READ_SUB("networks", SH_MAP_OF, service_net_set),
    READ_SUB("volumes", SH_SEQ_OF, mount_set),
    READ_SUB("secrets", SH_SEQ_OF, fileref_set),
    READ_SUB("configs", SH_SEQ_OF, fileref_set),
    READ_SUB("healthcheck", SH_MAP, healthcheck_set),
    READ("user"),
    READ("working_dir"),
    READ("read_only"),
    READ("cap_add"),
    READ("cap_drop"),
    READ("security_opt"),
    READ("labels"),
    READ("stop_grace_period"),
    READ("stop_signal"),
    READ("init"),
    READ_SUB("deploy", SH_MAP, deploy_set),
    READ("hostname"),
    READ("privileged"),
    WARN("build", "skiff runs images: build and push the image first"),
    WARN("depends_on", "services start in no particular order"),
    WARN("container_name", "tasks are named STACK_SERVICE.SLOT"),
    WARN("restart", "use deploy.restart_policy"),
    WARN("scale", "use deploy.replicas"),
    WARN("cpus", "use deploy.resources.limits.cpus"),
    WARN("mem_limit", "use deploy.resources.limits.memory"),
    WARN("mem_reservation", "use deploy.resources.reservations.memory"),
    WARN("tmpfs", "use a volumes entry of type tmpfs"),
    WARN("links", "services find each other by name on their networks"),
    WARN("external_links", NULL),
    WARN("expose", "ports are open on the service's networks"),
    WARN("network_mode", NULL),
    WARN("annotations", NULL),
    WARN("attach", NULL),
    WARN("blkio_config", NULL),
    WARN("cgroup", NULL),
    WARN("cgroup_parent", NULL),
    WARN("cpu_count", NULL),
    WARN("cpu_percent", NULL),
    WARN("cpu_period", NULL),
    WARN("cpu_quota", NULL),
    WARN("cpu_rt_period", NULL),
    WARN("cpu_rt_runtime", NULL),
    WARN("cpu_shares", NULL),
    WARN("cpuset", NULL),
    WARN("credential_spec", NULL),
    WARN("develop", NULL),
    WARN("device_cgroup_rules", NULL),
    WARN("devices", NULL),
    WARN("dns", NULL),
    WARN("dns_opt", NULL),
    WARN("dns_search", NULL),
    WARN("domainname", NULL),
    WARN("driver_opts", NULL),
    WARN("extends", NULL),
    WARN("extra_hosts", NULL),
    WARN("gpus", NULL),
    WARN("group_add", NULL),
    WARN("ipc", NULL),
    WARN("isolation", NULL),
    WARN("label_file", NULL),
    WARN("logging", "logs stay with dockerd's default driver"),
    WARN("mac_address", NULL),
    WARN("mem_swappiness", NULL),
    WARN("memswap_limit", NULL),
    WARN("models", NULL),
    WARN("oom_kill_disable", NULL),
    WARN("oom_score_adj", NULL),
    WARN("pid", NULL),
    WARN("pids_limit", NULL),
    WARN("platform", NULL),
    WARN("post_start", NULL),
    WARN("pre_stop", NULL),
    WARN("profiles", "every service of the files is deployed"),
    WARN("provider", NULL),
    WARN("pull_policy", NULL),
    WARN("runtime", NULL),
    WARN("shm_size", NULL),
    WARN("stdin_open", NULL),
    WARN("storage_opt", NULL),
    WARN("sysctls", NULL),
    WARN("tty", NULL),
    WARN("ulimits", NULL),
    WARN("use_api_socket", NULL),
    WARN("userns_mode", NULL),
    WARN("uts", NULL),
    WARN("volumes_from", NULL),
};
KEYSET(service_set, service_keys);

static const struct keydef top_keys[] = {
    READ("version"),
    WARN("name", "the stack's name is the one given to stack deploy"),
    READ_SUB("services", SH_MAP_OF, service_set),
    READ_SUB("networks", SH_MAP_OF, network_set),
    READ_SUB("volumes", SH_MAP_OF, volume_set),
    READ_SUB("secrets", SH_MAP_OF, secret_set),
    READ_SUB("configs", SH_MAP_OF, config_set),
    WARN("include", "give each file with -c"),
    WARN("models", NULL),
};
KEYSET(top_set, top_keys);

/* Edit distance, for "did you mean". */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    size_t row[41];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t best = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

static void check_keys(struct cctx *c, const struct ynode *map,
                       const struct keyset *set, const char *path)
{
    if (map->kind != Y_MAP)
        return; /* the typing says what it wants */
    char p[PATH_SIZE], q[PATH_SIZE];
    for (size_t i = 0; i < map->n; i++) {
        const struct ynode *k = map->keys[i], *v = map->vals[i];
        if (strncmp(k->text, "x-", 2) == 0)
            continue; /* an extension: Compose ignores it */
        const struct keydef *d = NULL;
        const char *near = NULL;
        size_t best = 3;
        for (size_t j = 0; j < set->n && !d; j++) {
            if (strcmp(set->keys[j].name, k->text) == 0) {
                d = &set->keys[j];
            } else {
                size_t dist = distance(set->keys[j].name, k->text);
                if (dist < best) {
                    best = dist;
                    near = set->keys[j].name;
                }
            }
        }
        if (!d) {
            node_error(c, k, "%s%sunknown key \"%.64s\"%s%s%s", path,
                       *path ? ": " : "", k->text,
                       near ? " (did you mean \"" : "", near ? near : "",
                       near ? "\"?)" : "");
            continue;
        }
        path_key(p, path, k->text);
        if (d->status == K_WARN) {
            node_warn(c, k, "%s: not supported by skiff, ignored%s%s%s", p,
                      d->why ? " (" : "", d->why ? d->why : "",
                      d->why ? ")" : "");
            continue;
        }
        switch (d->shape) {
        case SH_LEAF:
            break;
        case SH_MAP:
            check_keys(c, v, d->sub, p);
            break;
        case SH_MAP_OF:
            for (size_t j = 0; v->kind == Y_MAP && j < v->n; j++)
                check_keys(c, v->vals[j], d->sub,
                           path_key(q, p, v->keys[j]->text));
            break;
        case SH_SEQ_OF:
            for (size_t j = 0; v->kind == Y_SEQ && j < v->n; j++)
                check_keys(c, v->items[j], d->sub, path_index(q, p, j));
            break;
        }
    }
}

/* ---- typed values ---- */

static const char *kind_name(enum ykind k)
{
    switch (k) {
    case Y_NULL:
        return "nothing";
    case Y_SCALAR:
        return "a value";
    case Y_SEQ:
        return "a list";
    default:
        return "a mapping";
    }
}

static bool want(struct cctx *c, const struct ynode *n, const char *path,
                 enum ykind kind)
{
    if (n->kind == kind)
        return true;
    node_error(c, n, "%s: want %s, got %s", path,
               kind == Y_MAP   ? "a mapping"
               : kind == Y_SEQ ? "a list"
                               : "a value",
               kind_name(n->kind));
    return false;
}

/* The scalar's text; NULL (no error) for null; NULL with an error for a
 * list or mapping. */
static const char *text_of(struct cctx *c, const struct ynode *n,
                           const char *path, bool *ok)
{
    if (n->kind == Y_NULL)
        return NULL;
    if (n->kind != Y_SCALAR) {
        want(c, n, path, Y_SCALAR);
        *ok = false;
        return NULL;
    }
    return n->text;
}

static bool get_str(struct cctx *c, const struct ynode *n, const char *path,
                    char **dst)
{
    bool ok = true;
    const char *t = text_of(c, n, path, &ok);
    if (t) {
        free(*dst);
        *dst = sk_strdup(t);
    }
    return ok;
}

static bool parse_bool(const char *t, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {
                                                                "false", "no",
                                                                "off"};
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(t, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(t, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool get_bool(struct cctx *c, const struct ynode *n, const char *path,
                     bool *dst)
{
    bool ok = true;
    const char *t = text_of(c, n, path, &ok);
    if (t && !parse_bool(t, dst)) {
        node_error(c, n, "%s: want true or false, got \"%.64s\"", path, t);
        return false;
    }
    return ok;
}

static bool get_int(struct cctx *c, const struct ynode *n, const char *path,
                    int64_t min, int64_t max, int64_t *dst)
{
    bool ok = true;
    const char *t = text_of(c, n, path, &ok);
    if (t && !sk_parse_int(t, min, max, dst, NULL)) {
        node_error(c, n, "%s: want an integer from %lld to %lld, got \"%.64s\"",
                   path, (long long)min, (long long)max, t);
        return false;
    }
    return ok;
}

/* A file mode: octal when written with a leading 0 (0440) or 0o, as
 * Compose's examples write them. */
static bool get_mode(struct cctx *c, const struct ynode *n, const char *path,
                     int64_t *dst)
{
    bool ok = true;
    const char *t = text_of(c, n, path, &ok);
    if (!t)
        return ok;
    const char *digits = t;
    int base = 10;
    if (t[0] == '0' && (t[1] == 'o' || t[1] == 'O')) {
        digits = t + 2;
        base = 8;
    } else if (t[0] == '0' && t[1]) {
        digits = t + 1;
        base = 8;
    }
    int64_t v = 0;
    bool good = *digits != '\0' && strlen(digits) <= 6;
    for (const char *d = digits; good && *d; d++) {
        good = *d >= '0' && *d < (base == 8 ? '8' : ':');
        v = v * base + (*d - '0');
    }
    if (!good || v > 07777) {
        node_error(c, n,
                   "%s: want a file mode up to 07777 (octal with a leading "
                   "0, e.g. 0440), got \"%.64s\"",
                   path, t);
        return false;
    }
    *dst = v;
    return true;
}

typedef bool (*parse_fn)(const char *s, int64_t *out, struct sk_err *err);

static bool get_parsed(struct cctx *c, const struct ynode *n, const char *path,
                       parse_fn fn, int64_t *dst)
{
    bool ok = true;
    const char *t = text_of(c, n, path, &ok);
    struct sk_err err;
    if (t && !fn(t, dst, &err)) {
        node_error(c, n, "%s: %s", path, err.msg);
        return false;
    }
    return ok;
}

static bool get_duration(struct cctx *c, const struct ynode *n,
                         const char *path, int64_t *dst)
{
    return get_parsed(c, n, path, sk_parse_duration_ms, dst);
}

static bool get_bytes(struct cctx *c, const struct ynode *n, const char *path,
                      int64_t *dst)
{
    return get_parsed(c, n, path, sk_parse_bytes, dst);
}

static bool get_enum(struct cctx *c, const struct ynode *n, const char *path,
                     const char *const *names, int *dst)
{
    bool ok = true;
    const char *t = text_of(c, n, path, &ok);
    if (!t)
        return ok;
    int v = sk_enum_index(names, t);
    if (v < 0) {
        char list[128] = "";
        for (size_t i = 0; names[i]; i++) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "",
                     names[i]);
        }
        node_error(c, n, "%s: want one of %s, got \"%.64s\"", path, list, t);
        return false;
    }
    *dst = v;
    return true;
}

static void free_strs(char ***strs, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*strs)[i]);
    free(*strs);
    *strs = NULL;
    *n = 0;
}

/* A list of values (numbers and words alike, as text). */
static bool get_strs(struct cctx *c, const struct ynode *n, const char *path,
                     char ***strs, size_t *count)
{
    if (n->kind == Y_NULL)
        return true;
    if (!want(c, n, path, Y_SEQ))
        return false;
    bool ok = true;
    char p[PATH_SIZE];
    free_strs(strs, count);
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *it = n->items[i];
        if (it->kind != Y_SCALAR) {
            node_error(c, it, "%s: want a value, got %s",
                       path_index(p, path, i), kind_name(it->kind));
            ok = false;
            continue;
        }
        sk_strs_push(strs, count, it->text);
    }
    return ok;
}

/* A command as a string (split as a shell would) or a list of words. */
static bool get_words(struct cctx *c, const struct ynode *n, const char *path,
                      char ***strs, size_t *count)
{
    if (n->kind != Y_SCALAR)
        return get_strs(c, n, path, strs, count);
    char **words;
    size_t n_words;
    struct sk_err err;
    if (sk_compose_split_words(n->text, &words, &n_words, &err) != SK_OK) {
        node_error(c, n, "%s: %s", path, err.msg);
        return false;
    }
    free_strs(strs, count);
    *strs = words;
    *count = n_words;
    return true;
}

/* A mapping of values (labels, driver options); null values read as
 * "". Lists were made mappings by ytree_normalise where Compose allows
 * them. */
static bool get_kvs(struct cctx *c, const struct ynode *n, const char *path,
                    struct sk_kv **kv, size_t *count)
{
    if (n->kind == Y_NULL)
        return true;
    if (n->kind == Y_SEQ) {
        /* labels and driver_opts of networks, volumes, secrets: also
         * KEY=VALUE lists */
        bool ok = true;
        char p[PATH_SIZE];
        for (size_t i = 0; i < n->n; i++) {
            const struct ynode *it = n->items[i];
            const char *eq =
                it->kind == Y_SCALAR ? strchr(it->text, '=') : NULL;
            if (!eq || eq == it->text) {
                node_error(c, it, "%s: want KEY=VALUE", path_index(p, path, i));
                ok = false;
                continue;
            }
            char *key = sk_strndup(it->text, (size_t)(eq - it->text));
            sk_kv_set(kv, count, key, eq + 1);
            free(key);
        }
        return ok;
    }
    if (!want(c, n, path, Y_MAP))
        return false;
    bool ok = true;
    char p[PATH_SIZE];
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *v = n->vals[i];
        if (v->kind != Y_SCALAR && v->kind != Y_NULL) {
            node_error(c, v, "%s: want a value, got %s",
                       path_key(p, path, n->keys[i]->text), kind_name(v->kind));
            ok = false;
            continue;
        }
        sk_kv_set(kv, count, n->keys[i]->text, v->text);
    }
    return ok;
}

/* ---- the environment and paths on the host ---- */

/* A variable passed on as it is (environment: {K: }, an env_file's bare
 * KEY, a secret's environment:): NULL when unset, or after an error. */
static const char *env_value(struct cctx *c, const struct ynode *at,
                             const char *what, const char *name, bool *ok)
{
    const char *v = c->host->getenv(c->host->ctx, name);
    if (v && !utf8_valid(v)) {
        node_error(c, at, "%s: variable %.64s is not valid UTF-8", what, name);
        *ok = false;
        return NULL;
    }
    return v;
}

/* dir/path with "." and ".." taken out, for a relative path; "~" is
 * $HOME. */
static char *host_path(struct cctx *c, const char *path)
{
    const char *dir = c->host->project_dir ? c->host->project_dir : ".";
    char *joined;
    if (path[0] == '/') {
        joined = sk_strdup(path);
    } else if (path[0] == '~' && (path[1] == '/' || !path[1])) {
        const char *home = c->host->getenv(c->host->ctx, "HOME");
        joined = sk_printf("%s%s", home ? home : "", path + 1);
    } else {
        joined = sk_printf("%s/%s", dir, path);
    }
    bool absolute = joined[0] == '/';
    char *out = sk_malloc(strlen(joined) + 2);
    size_t len = 0;
    char *save = NULL;
    for (char *seg = strtok_r(joined, "/", &save); seg;
         seg = strtok_r(NULL, "/", &save)) {
        if (strcmp(seg, ".") == 0)
            continue;
        if (strcmp(seg, "..") == 0) {
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--;
            continue;
        }
        if (len > 0 || absolute)
            out[len++] = '/';
        size_t sl = strlen(seg);
        memcpy(out + len, seg, sl);
        len += sl;
    }
    if (len == 0)
        out[len++] = absolute ? '/' : '.';
    out[len] = '\0';
    free(joined);
    return out;
}

/* Reads a file the stack names; NULL after noting why at n. */
static char *read_host_file(struct cctx *c, const struct ynode *n,
                            const char *path, const char *name, size_t max,
                            const char *cap_what, size_t *out_len,
                            bool missing_ok)
{
    char *full = host_path(c, name);
    char *data = NULL;
    struct sk_err err = {0};
    enum sk_rc rc =
        c->host->read_file(c->host->ctx, full, max, &data, out_len, &err);
    if (rc == SK_ENOTFOUND && missing_ok) {
        data = NULL;
    } else if (rc == SK_ETOOBIG) {
        node_error(c, n,
                   "%s: \"%s\" (%s) is larger than %zu KiB, the cap on %s",
                   path, name, full, max / 1024, cap_what);
    } else if (rc != SK_OK) {
        node_error(c, n, "%s: \"%s\" (%s): %s", path, name, full,
                   rc == SK_ENOTFOUND ? "no such file" : err.msg);
    }
    free(full);
    return rc == SK_OK ? data : NULL;
}

/* ---- top-level definitions ---- */

/* The name in the cluster: `name:` as given, else STACK_KEY; checked. */
static char *cluster_name(struct cctx *c, const struct ynode *key,
                          const struct ynode *def, const char *path,
                          bool external)
{
    const struct ynode *name = ymap_get(def, "name");
    const struct ynode *ext = ymap_get(def, "external");
    const struct ynode *ext_name = ext ? ymap_get(ext, "name") : NULL;
    char *out = NULL;
    char p[PATH_SIZE];
    if (ext_name && ext_name->kind == Y_SCALAR)
        out = sk_strdup(ext_name->text); /* Compose's older form */
    else if (name && name->kind == Y_SCALAR)
        out = sk_strdup(name->text);
    else if (external)
        out = sk_strdup(key->text);
    else
        out = sk_printf("%s_%s", c->st->name, key->text);
    struct sk_err err;
    if (sk_name_validate("name", out, &err) != SK_OK) {
        node_error(c, name && name->kind == Y_SCALAR ? name : key,
                   "%s: the name in the cluster, \"%.80s\", is not valid: use "
                   "letters, digits and _.- (not first), at most 63",
                   name ? path_key(p, path, "name") : path, out);
        free(out);
        return NULL;
    }
    return out;
}

/* external: true|false, or Compose's older {name: N}. Other keys beside
 * it are an error, as Compose says. */
static bool read_external(struct cctx *c, const struct ynode *def,
                          const char *path, bool *out)
{
    const struct ynode *ext = ymap_get(def, "external");
    char p[PATH_SIZE];
    *out = false;
    if (!ext)
        return true;
    path_key(p, path, "external");
    if (ext->kind == Y_MAP)
        *out = true;
    else if (!get_bool(c, ext, p, out))
        return false;
    if (!*out)
        return true;
    for (size_t i = 0; i < def->n; i++) {
        const char *k = def->keys[i]->text;
        if (strcmp(k, "external") != 0 && strcmp(k, "name") != 0 &&
            strncmp(k, "x-", 2) != 0) {
            node_error(c, def->keys[i],
                       "%s: an external object takes no \"%.64s\" (it exists "
                       "already; only its name may be given)",
                       path, k);
            return false;
        }
    }
    return true;
}

static void stack_labels(struct cctx *c, struct sk_kv **kv, size_t *n,
                         const struct ynode *at, const char *path)
{
    const char *had = sk_kv_get(*kv, *n, SK_STACK_LABEL);
    if (had && strcmp(had, c->st->name) != 0)
        node_error(c, at, "%s: label %s is skiff's own (the stack's name)",
                   path, SK_STACK_LABEL);
    sk_kv_set(kv, n, SK_STACK_LABEL, c->st->name);
}

static bool check_subnet(struct cctx *c, const struct ynode *at,
                         const char *path, const struct sk_network_spec *s)
{
    uint32_t net, gw;
    int prefix;
    if (s->subnet) {
        if (!sk_cidr_parse(s->subnet, &net, &prefix) ||
            (net & ~sk_ipv4_mask(prefix)) != 0) {
            node_error(c, at,
                       "%s: subnet \"%.64s\" is not an IPv4 subnet like "
                       "10.0.9.0/24 (no host bits set)",
                       path, s->subnet);
            return false;
        }
        if (prefix < 16 || prefix > 29) {
            node_error(c, at,
                       "%s: subnet %s: the prefix length must be from /16 to "
                       "/29",
                       path, s->subnet);
            return false;
        }
        uint32_t bcast = net | ~sk_ipv4_mask(prefix);
        if (s->gateway &&
            (!sk_ipv4_parse(s->gateway, &gw, NULL) || strchr(s->gateway, '/') ||
             (gw & sk_ipv4_mask(prefix)) != net || gw == net || gw == bcast)) {
            node_error(c, at,
                       "%s: gateway \"%.64s\" is not a host address of the "
                       "subnet %s",
                       path, s->gateway, s->subnet);
            return false;
        }
    }
    return true;
}

static void read_network(struct cctx *c, const struct ynode *key,
                         const struct ynode *def, struct sk_stack_network *out)
{
    char path[PATH_SIZE], p[PATH_SIZE];
    path_key(path, "networks", key->text);
    out->key = sk_strdup(key->text);
    out->file = key->file;
    out->line = key->line;
    sk_schema_defaults(&sk_network_spec_schema, &out->spec);
    if (def->kind == Y_NULL)
        def = ynode_new(c, Y_MAP, key);
    if (!want(c, def, path, Y_MAP) ||
        !read_external(c, def, path, &out->external))
        return;
    struct sk_network_spec *s = &out->spec;
    s->name = cluster_name(c, key, def, path, out->external);
    if (!s->name || out->external)
        return;
    for (size_t i = 0; i < def->n; i++) {
        const char *k = def->keys[i]->text;
        const struct ynode *v = def->vals[i];
        path_key(p, path, k);
        if (strcmp(k, "driver") == 0) {
            get_str(c, v, p, &s->driver);
        } else if (strcmp(k, "attachable") == 0) {
            get_bool(c, v, p, &s->attachable);
        } else if (strcmp(k, "internal") == 0) {
            get_bool(c, v, p, &s->internal);
        } else if (strcmp(k, "labels") == 0) {
            get_kvs(c, v, p, &s->labels, &s->n_labels);
        } else if (strcmp(k, "ipam") == 0 && want(c, v, p, Y_MAP)) {
            const struct ynode *drv = ymap_get(v, "driver");
            const struct ynode *cfg = ymap_get(v, "config");
            char q[PATH_SIZE];
            if (drv && drv->kind == Y_SCALAR &&
                strcmp(drv->text, "default") != 0)
                node_warn(c, drv,
                          "%s.driver: \"%.64s\" is not honoured: skiff "
                          "allocates the addresses itself",
                          p, drv->text);
            path_key(q, p, "config");
            if (cfg && cfg->kind != Y_NULL && want(c, cfg, q, Y_SEQ)) {
                if (cfg->n > 1)
                    node_error(c, cfg, "%s: a network has one subnet in skiff",
                               q);
                if (cfg->n >= 1 && want(c, cfg->items[0], q, Y_MAP)) {
                    const struct ynode *sn = ymap_get(cfg->items[0], "subnet");
                    const struct ynode *gw = ymap_get(cfg->items[0], "gateway");
                    char r[PATH_SIZE];
                    if (sn)
                        get_str(c, sn, path_index(r, q, 0), &s->subnet);
                    if (gw)
                        get_str(c, gw, path_index(r, q, 0), &s->gateway);
                    check_subnet(c, cfg->items[0], q, s);
                }
            }
        }
    }
    stack_labels(c, &s->labels, &s->n_labels, key, path);
    struct sk_err err;
    if (sk_network_spec_validate(s, &err) != SK_OK)
        node_error(c, key, "%s: %s", path, err.msg);
}

static void read_blob(struct cctx *c, const struct ynode *key,
                      const struct ynode *def, bool config,
                      struct sk_stack_blob *out)
{
    const char *kind = config ? "configs" : "secrets";
    char path[PATH_SIZE], p[PATH_SIZE];
    path_key(path, kind, key->text);
    out->key = sk_strdup(key->text);
    out->file = key->file;
    out->line = key->line;
    if (!want(c, def, path, Y_MAP) ||
        !read_external(c, def, path, &out->external))
        return;
    struct sk_secret_spec *s = &out->spec;
    s->name = cluster_name(c, key, def, path, out->external);
    if (!s->name || out->external)
        return;
    const struct ynode *file = ymap_get(def, "file"),
                       *env = ymap_get(def, "environment"),
                       *content = ymap_get(def, "content");
    int sources = (file != NULL) + (env != NULL) + (content != NULL);
    if (sources != 1) {
        node_error(c, key,
                   "%s: want one of file:, environment:%s or external: "
                   "true",
                   path, config ? ", content:" : "");
        return;
    }
    size_t max = config ? SK_MAX_CONFIG_BYTES : SK_MAX_SECRET_BYTES;
    char *data = NULL;
    size_t len = 0;
    bool ok = true;
    if (file) {
        const char *name = text_of(c, file, path_key(p, path, "file"), &ok);
        if (!name && ok) {
            node_error(c, file, "%s: want a file name", p);
            return;
        }
        if (!name)
            return;
        data = read_host_file(c, file, p, name, max,
                              config ? "a config" : "a secret", &len, false);
        if (!data)
            return;
        out->source = host_path(c, name);
    } else {
        const struct ynode *n = env ? env : content;
        path_key(p, path, env ? "environment" : "content");
        const char *t = text_of(c, n, p, &ok);
        if (!t) {
            if (ok)
                node_error(c, n, "%s: want %s", p,
                           env ? "a variable's name" : "the content");
            return;
        }
        if (env) {
            const char *v = env_value(c, n, p, t, &ok);
            if (!v) {
                if (ok)
                    node_error(c, n, "%s: variable %.64s is not set", p, t);
                return;
            }
            data = sk_strdup(v);
            out->source = sk_printf("environment %s", t);
        } else {
            data = sk_strdup(t);
            out->source = sk_strdup("content");
        }
        len = strlen(data);
        if (len > max) {
            node_error(c, n, "%s: larger than %zu KiB, the cap on %s", p,
                       max / 1024, config ? "a config" : "a secret");
            free(data);
            return;
        }
    }
    out->size = (int64_t)len;
    s->data = sk_base64_encode(data, len);
    free(data);
    const struct ynode *labels = ymap_get(def, "labels");
    if (labels)
        get_kvs(c, labels, path_key(p, path, "labels"), &s->labels,
                &s->n_labels);
    stack_labels(c, &s->labels, &s->n_labels, key, path);
}

static void read_volume(struct cctx *c, const struct ynode *key,
                        const struct ynode *def, struct sk_stack_volume *out)
{
    char path[PATH_SIZE], p[PATH_SIZE];
    path_key(path, "volumes", key->text);
    out->key = sk_strdup(key->text);
    out->file = key->file;
    out->line = key->line;
    if (def->kind == Y_NULL)
        def = ynode_new(c, Y_MAP, key);
    if (!want(c, def, path, Y_MAP) ||
        !read_external(c, def, path, &out->external))
        return;
    out->name = cluster_name(c, key, def, path, out->external);
    if (!out->name || out->external)
        return;
    out->driver = sk_strdup("local");
    for (size_t i = 0; i < def->n; i++) {
        const char *k = def->keys[i]->text;
        const struct ynode *v = def->vals[i];
        path_key(p, path, k);
        if (strcmp(k, "driver") == 0)
            get_str(c, v, p, &out->driver);
        else if (strcmp(k, "driver_opts") == 0)
            get_kvs(c, v, p, &out->driver_opts, &out->n_driver_opts);
        else if (strcmp(k, "labels") == 0)
            get_kvs(c, v, p, &out->labels, &out->n_labels);
    }
    stack_labels(c, &out->labels, &out->n_labels, key, path);
}

/* ---- services ---- */

/* What services refer to, and the published ports seen so far. */
struct defs {
    struct sk_stack_network *nets;
    bool *net_used;
    size_t n_nets;
    bool default_used;
    struct port_owner {
        int64_t published;
        int protocol;
        const char *service;
        const struct ynode *at;
    } * ports;
    size_t n_ports;
};

static const struct sk_stack_blob *find_blob(const struct sk_stack_blob *b,
                                             size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(b[i].key, key) == 0)
            return &b[i];
    return NULL;
}

static const struct sk_stack_volume *find_volume(const struct sk_stack *st,
                                                 const char *key)
{
    for (size_t i = 0; i < st->n_volumes; i++)
        if (strcmp(st->volumes[i].key, key) == 0)
            return &st->volumes[i];
    return NULL;
}

/* One line of an env_file, as Compose reads it: "export " allowed,
 * values in '...' taken as they are, in "..." (with \n, \" and \\) or
 * bare interpolated (a bare value ends at " #"); a line of only KEY passes
 * the variable on from the environment if it is set. */
static void env_line(struct cctx *c, const struct ynode *at, const char *what,
                     char *line, struct sk_kv **env, size_t *n_env)
{
    if (strncmp(line, "export ", 7) == 0)
        line += 7;
    char *eq = strchr(line, '=');
    char *kend = eq ? eq : line + strlen(line);
    while (kend > line && (kend[-1] == ' ' || kend[-1] == '\t'))
        kend--;
    *kend = '\0';
    if (!*line || strpbrk(line, " \t")) {
        node_error(c, at, "%s: want KEY=VALUE", what);
        return;
    }
    if (!eq) {
        bool ok = true;
        const char *v = env_value(c, at, what, line, &ok);
        if (v)
            sk_kv_set(env, n_env, line, v);
        return;
    }
    char *v = eq + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    const char *value;
    if (*v == '\'' || *v == '"') {
        char q = *v++;
        char *end = strrchr(v, q);
        if (!end) {
            node_error(c, at, "%s: a %c without its end", what, q);
            return;
        }
        *end = '\0';
        if (q == '\'') {
            sk_kv_set(env, n_env, line, v);
            return;
        }
        char *d = v;
        for (char *s = v; *s; s++) {
            if (*s == '\\' && s[1] == 'n') {
                *d++ = '\n';
                s++;
            } else if (*s == '\\' && (s[1] == '"' || s[1] == '\\')) {
                *d++ = *++s;
            } else {
                *d++ = *s;
            }
        }
        *d = '\0';
    } else {
        char *hash = strstr(v, " #");
        if (hash)
            *hash = '\0';
        size_t vl = strlen(v);
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            v[--vl] = '\0';
    }
    value = interpolate_text(c, v, at->file, at->line, what);
    if (value)
        sk_kv_set(env, n_env, line, value);
}

/* One env_file: KEY=VALUE lines; blank lines and #-comments skipped. */
static void read_env_file(struct cctx *c, const struct ynode *at,
                          const char *path, const char *name, bool required,
                          struct sk_kv **env, size_t *n_env)
{
    size_t len;
    char *data = read_host_file(c, at, path, name, MAX_ENV_FILE_BYTES,
                                "an env_file", &len, !required);
    if (!data)
        return;
    if (!utf8_valid(data) || strlen(data) != len) {
        node_error(c, at, "%s: %.64s is not UTF-8 text", path, name);
        free(data);
        return;
    }
    int64_t lineno = 0;
    for (char *line = data, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r')
            line[--ll] = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line || *line == '#')
            continue;
        char *what = sk_printf("%s: %.64s:%lld", path, name, (long long)lineno);
        env_line(c, at, what, line, env, n_env);
        free(what);
    }
    free(data);
}

static int kv_order(const void *a, const void *b)
{
    return strcmp(((const struct sk_kv *)a)->key,
                  ((const struct sk_kv *)b)->key);
}

/* env_file first, then environment over it; sorted by name, so that a
 * reordering in the file is no change. */
static void read_env(struct cctx *c, const struct ynode *svc, const char *path,
                     struct sk_container_spec *ct)
{
    struct sk_kv *env = NULL;
    size_t n_env = 0;
    char p[PATH_SIZE], q[PATH_SIZE];
    const struct ynode *files = ymap_get(svc, "env_file");
    if (files && files->kind != Y_NULL &&
        want(c, files, path_key(p, path, "env_file"), Y_SEQ)) {
        for (size_t i = 0; i < files->n; i++) {
            const struct ynode *f = files->items[i], *fp = f;
            bool required = true, ok = true;
            path_index(q, p, i);
            if (f->kind == Y_MAP) {
                fp = ymap_get(f, "path");
                const struct ynode *req = ymap_get(f, "required");
                if (req)
                    get_bool(c, req, q, &required);
                if (!fp) {
                    node_error(c, f, "%s: want path:", q);
                    continue;
                }
            }
            const char *name = text_of(c, fp, q, &ok);
            if (name)
                read_env_file(c, fp, q, name, required, &env, &n_env);
            else if (ok)
                node_error(c, fp, "%s: want a file name", q);
        }
    }
    const struct ynode *e = ymap_get(svc, "environment");
    if (e && e->kind != Y_NULL &&
        want(c, e, path_key(p, path, "environment"), Y_MAP)) {
        for (size_t i = 0; i < e->n; i++) {
            const char *k = e->keys[i]->text;
            const struct ynode *v = e->vals[i];
            if (v->kind == Y_NULL) {
                bool ok = true;
                const char *from = env_value(c, v, p, k, &ok);
                if (from)
                    sk_kv_set(&env, &n_env, k, from);
                else
                    sk_kv_del(&env, &n_env, k);
            } else if (v->kind == Y_SCALAR) {
                sk_kv_set(&env, &n_env, k, v->text);
            } else {
                want(c, v, path_key(q, p, k), Y_SCALAR);
            }
        }
    }
    if (n_env)
        qsort(env, n_env, sizeof *env, kv_order);
    for (size_t i = 0; i < n_env; i++) {
        char *kv = sk_printf("%s=%s", env[i].key, env[i].value);
        sk_strs_push(&ct->env, &ct->n_env, kv);
        free(kv);
        free(env[i].key);
        free(env[i].value);
    }
    free(env);
}

static void read_healthcheck(struct cctx *c, const struct ynode *h,
                             const char *path, struct sk_container_spec *ct)
{
    if (h->kind == Y_NULL || !want(c, h, path, Y_MAP))
        return;
    struct sk_healthcheck *hc = sk_calloc(1, sizeof *hc);
    sk_schema_defaults(&sk_healthcheck_schema, hc);
    ct->healthcheck = hc;
    char p[PATH_SIZE];
    bool disable = false;
    for (size_t i = 0; i < h->n; i++) {
        const char *k = h->keys[i]->text;
        const struct ynode *v = h->vals[i];
        path_key(p, path, k);
        if (strcmp(k, "test") == 0) {
            if (v->kind == Y_SCALAR) {
                sk_strs_push(&hc->test, &hc->n_test, "CMD-SHELL");
                sk_strs_push(&hc->test, &hc->n_test, v->text);
            } else if (get_strs(c, v, p, &hc->test, &hc->n_test) &&
                       hc->n_test) {
                const char *first = hc->test[0];
                if (strcmp(first, "CMD") != 0 &&
                    strcmp(first, "CMD-SHELL") != 0 &&
                    strcmp(first, "NONE") != 0)
                    node_error(c, v,
                               "%s: a list starts with CMD, CMD-SHELL or "
                               "NONE, got \"%.64s\"",
                               p, first);
                else if (hc->n_test == 1 && strcmp(first, "NONE") != 0)
                    node_error(c, v, "%s: %s without a command", p, first);
            }
        } else if (strcmp(k, "interval") == 0) {
            get_duration(c, v, p, &hc->interval_ms);
        } else if (strcmp(k, "timeout") == 0) {
            get_duration(c, v, p, &hc->timeout_ms);
        } else if (strcmp(k, "start_period") == 0) {
            get_duration(c, v, p, &hc->start_period_ms);
        } else if (strcmp(k, "retries") == 0) {
            get_int(c, v, p, 0, 1000, &hc->retries);
        } else if (strcmp(k, "disable") == 0) {
            get_bool(c, v, p, &disable);
        }
    }
    if (disable) {
        free_strs(&hc->test, &hc->n_test);
        sk_strs_push(&hc->test, &hc->n_test, "NONE");
    }
}

static void add_port(struct cctx *c, struct defs *d, const char *service,
                     const struct ynode *at, const char *path,
                     struct sk_endpoint_spec *e, struct sk_port port)
{
    for (size_t i = 0; i < d->n_ports; i++) {
        const struct port_owner *o = &d->ports[i];
        if (o->published != port.published || o->protocol != port.protocol)
            continue;
        if (strcmp(o->service, service) == 0)
            node_error(c, at,
                       "%s: published port %lld/%s is given twice (also at "
                       "%s:%lld)",
                       path, (long long)port.published,
                       sk_port_protocol_names[port.protocol], o->at->file,
                       (long long)o->at->line);
        else
            node_error(c, at,
                       "%s: published port %lld/%s is also published by "
                       "service \"%s\" (%s:%lld)",
                       path, (long long)port.published,
                       sk_port_protocol_names[port.protocol], o->service,
                       o->at->file, (long long)o->at->line);
        return;
    }
    if (e->n_ports >= 64) {
        node_error(c, at, "%s: more than 64 ports", path);
        return;
    }
    d->ports = sk_realloc(d->ports, (d->n_ports + 1) * sizeof *d->ports);
    d->ports[d->n_ports++] =
        (struct port_owner){port.published, port.protocol, service, at};
    e->ports = sk_realloc(e->ports, (e->n_ports + 1) * sizeof *e->ports);
    e->ports[e->n_ports++] = port;
}

/* "N" or "N-M" (a range of at most 64 ports). */
static bool port_range(const char *s, int64_t *lo, int64_t *hi)
{
    char buf[32];
    if (strlen(s) >= sizeof buf)
        return false;
    snprintf(buf, sizeof buf, "%s", s);
    char *dash = strchr(buf, '-');
    if (dash)
        *dash = '\0';
    if (!sk_parse_int(buf, 1, 65535, lo, NULL))
        return false;
    *hi = *lo;
    if (dash && (!sk_parse_int(dash + 1, 1, 65535, hi, NULL) || *hi < *lo ||
                 *hi - *lo >= 64))
        return false;
    return true;
}

static const char port_help[] =
    "want PUBLISHED:TARGET[/udp] (or ranges, 8000-8001:80-81), or "
    "target:, published:, protocol:, mode:";

/* Compose's short syntax: [[HOST_IP:]PUBLISHED:]TARGET[/PROTOCOL]. */
static void read_port_short(struct cctx *c, struct defs *d, const char *svc,
                            const struct ynode *n, const char *path,
                            struct sk_endpoint_spec *e)
{
    char buf[128];
    if (strlen(n->text) >= sizeof buf) {
        node_error(c, n, "%s: \"%.64s...\": %s", path, n->text, port_help);
        return;
    }
    snprintf(buf, sizeof buf, "%s", n->text);
    int proto = SK_PROTO_TCP;
    char *slash = strchr(buf, '/');
    if (slash) {
        *slash = '\0';
        proto = sk_enum_index(sk_port_protocol_names, slash + 1);
        if (proto < 0) {
            node_error(c, n, "%s: \"%s\": protocol \"%s\": want tcp or udp",
                       path, n->text, slash + 1);
            return;
        }
    }
    char *last = strrchr(buf, ':');
    if (!last) {
        node_error(c, n,
                   "%s: \"%s\": give the published port too "
                   "(PUBLISHED:TARGET): skiff publishes in host mode",
                   path, n->text);
        return;
    }
    *last = '\0';
    char *pub = strrchr(buf, ':');
    if (pub) {
        *pub = '\0';
        node_error(c, n,
                   "%s: \"%s\": a host address (%s) is not honoured: skiff "
                   "publishes on every address of the node; leave it out",
                   path, n->text, buf);
        return;
    }
    int64_t plo, phi, tlo, thi;
    if (!port_range(buf, &plo, &phi) || !port_range(last + 1, &tlo, &thi) ||
        phi - plo != thi - tlo) {
        node_error(c, n, "%s: \"%s\": %s", path, n->text, port_help);
        return;
    }
    for (int64_t k = 0; k <= phi - plo; k++)
        add_port(c, d, svc, n, path, e,
                 (struct sk_port){.protocol = proto,
                                  .target = tlo + k,
                                  .published = plo + k,
                                  .mode = SK_PORT_HOST});
}

static void read_port_long(struct cctx *c, struct defs *d, const char *svc,
                           const struct ynode *n, const char *path,
                           struct sk_endpoint_spec *e)
{
    struct sk_port port = {.protocol = SK_PROTO_TCP, .mode = SK_PORT_HOST};
    char p[PATH_SIZE];
    bool ok = true;
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->keys[i]->text;
        const struct ynode *v = n->vals[i];
        path_key(p, path, k);
        if (strcmp(k, "target") == 0) {
            ok &= get_int(c, v, p, 1, 65535, &port.target);
        } else if (strcmp(k, "published") == 0) {
            ok &= get_int(c, v, p, 1, 65535, &port.published);
        } else if (strcmp(k, "protocol") == 0) {
            ok &= get_enum(c, v, p, sk_port_protocol_names, &port.protocol);
        } else if (strcmp(k, "mode") == 0) {
            int mode = SK_PORT_HOST;
            ok &= get_enum(c, v, p, sk_port_mode_names, &mode);
            if (mode == SK_PORT_INGRESS)
                node_warn(c, v,
                          "%s: ingress: skiff has no routing mesh yet; the "
                          "port is published in host mode, on the nodes "
                          "that run a task",
                          p);
        } else if (strcmp(k, "host_ip") == 0 && v->kind != Y_NULL) {
            node_error(c, v,
                       "%s: not honoured: skiff publishes on every address "
                       "of the node; leave it out",
                       p);
            ok = false;
        }
    }
    if (!ok)
        return;
    if (!port.target) {
        node_error(c, n, "%s: want target:", path);
        return;
    }
    if (!port.published) {
        node_error(c, n,
                   "%s: want published: too: skiff publishes in host mode",
                   path);
        return;
    }
    add_port(c, d, svc, n, path, e, port);
}

static void read_ports(struct cctx *c, struct defs *d, const char *svc,
                       const struct ynode *n, const char *path,
                       struct sk_endpoint_spec *e)
{
    if (n->kind == Y_NULL || !want(c, n, path, Y_SEQ))
        return;
    char p[PATH_SIZE];
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *it = n->items[i];
        path_index(p, path, i);
        if (it->kind == Y_SCALAR)
            read_port_short(c, d, svc, it, p, e);
        else if (it->kind == Y_MAP)
            read_port_long(c, d, svc, it, p, e);
        else
            node_error(c, it, "%s: %s", p, port_help);
    }
}

static void read_networks(struct cctx *c, struct defs *d,
                          const struct ynode *svc_key, const struct ynode *n,
                          const char *path, struct sk_task_spec *t)
{
    bool none = !n || n->kind == Y_NULL || (n->kind == Y_MAP && n->n == 0);
    if (!none && !want(c, n, path, Y_MAP))
        return;
    size_t count = none ? 1 : n->n;
    char p[PATH_SIZE];
    for (size_t i = 0; i < count; i++) {
        const char *key = none ? "default" : n->keys[i]->text;
        const struct ynode *v = none ? NULL : n->vals[i];
        const struct sk_stack_network *net = NULL;
        for (size_t k = 0; k < d->n_nets && !net; k++)
            if (strcmp(d->nets[k].key, key) == 0) {
                net = &d->nets[k];
                d->net_used[k] = true;
            }
        char *target;
        if (net) {
            if (!net->spec.name)
                continue; /* its definition was in error */
            target = sk_strdup(net->spec.name);
        } else if (strcmp(key, "default") == 0) {
            d->default_used = true;
            target = sk_printf("%s_default", c->st->name);
        } else {
            node_error(c, n->keys[i],
                       "%s: network \"%.64s\" is not defined (under the "
                       "top-level networks:)",
                       path, key);
            continue;
        }
        struct sk_network_ref ref = {.target = target};
        /* Known on each network by its name in the file, as Compose does. */
        sk_strs_push(&ref.aliases, &ref.n_aliases, svc_key->text);
        const struct ynode *aliases = v ? ymap_get(v, "aliases") : NULL;
        if (v && v->kind != Y_NULL && v->kind != Y_MAP)
            want(c, v, path_key(p, path, key), Y_MAP);
        if (aliases) {
            char **list = NULL;
            size_t n_list = 0;
            char q[PATH_SIZE];
            path_key(q, path_key(p, path, key), "aliases");
            get_strs(c, aliases, q, &list, &n_list);
            for (size_t a = 0; a < n_list; a++) {
                bool dup = false;
                for (size_t b = 0; b < ref.n_aliases; b++)
                    dup |= strcmp(ref.aliases[b], list[a]) == 0;
                if (!dup)
                    sk_strs_push(&ref.aliases, &ref.n_aliases, list[a]);
            }
            free_strs(&list, &n_list);
        }
        t->networks =
            sk_realloc(t->networks, (t->n_networks + 1) * sizeof *t->networks);
        t->networks[t->n_networks++] = ref;
    }
}

/* The source of a mount: a bind's host path, or a named volume's cluster
 * name (it must be defined). */
static bool mount_source(struct cctx *c, const struct ynode *at,
                         const char *path, const char *src,
                         struct sk_stack_mount *m)
{
    if (m->type == SK_MOUNT_BIND) {
        m->source = host_path(c, src);
        return true;
    }
    const struct sk_stack_volume *v = find_volume(c->st, src);
    if (!v) {
        node_error(c, at,
                   "%s: volume \"%.64s\" is not defined (under the top-level "
                   "volumes:)",
                   path, src);
        return false;
    }
    m->source = v->name ? sk_strdup(v->name) : NULL;
    return v->name != NULL;
}

/* Options Compose knows that skiff does not honour: SELinux labels,
 * propagation, consistency. */
static const char *const ignored_mount_options[] = {
    "z",       "Z",        "shared", "rshared",   "slave",      "rslave",
    "private", "rprivate", "cached", "delegated", "consistent", NULL};

static bool one_of(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

static bool mount_short(struct cctx *c, const struct ynode *n, const char *path,
                        struct sk_stack_mount *m)
{
    char *parts[3] = {0};
    size_t np = 0;
    char *copy = sk_strdup(n->text), *s = copy;
    bool ok = true;
    /* Not strtok: an empty part (a::b) is an error, not skipped. */
    for (;;) {
        if (np == 3) {
            ok = false;
            break;
        }
        parts[np++] = s;
        char *colon = strchr(s, ':');
        if (!colon)
            break;
        *colon = '\0';
        s = colon + 1;
    }
    for (size_t i = 0; ok && i < np; i++)
        ok = *parts[i] != '\0';
    if (!ok) {
        node_error(c, n,
                   "%s: \"%.64s\": want [SOURCE:]TARGET[:ro|rw|nocopy], or "
                   "type:, source:, target:",
                   path, n->text);
        free(copy);
        return false;
    }
    m->type = SK_MOUNT_VOLUME;
    const char *target = np == 1 ? parts[0] : parts[1];
    if (np >= 2) {
        const char *src = parts[0];
        if (src[0] == '/' || src[0] == '.' || src[0] == '~')
            m->type = SK_MOUNT_BIND;
        ok = mount_source(c, n, path, src, m);
    }
    m->target = sk_strdup(target);
    if (np == 3) {
        char *osave = NULL;
        for (char *o = strtok_r(parts[2], ",", &osave); o && ok;
             o = strtok_r(NULL, ",", &osave)) {
            if (strcmp(o, "ro") == 0) {
                m->read_only = true;
            } else if (strcmp(o, "rw") == 0) {
                m->read_only = false;
            } else if (strcmp(o, "nocopy") == 0 && m->type == SK_MOUNT_VOLUME) {
                m->nocopy = true;
            } else if (one_of(o, ignored_mount_options)) {
                node_warn(c, n, "%s: option \"%s\" is not honoured", path, o);
            } else {
                node_error(c, n,
                           "%s: option \"%.32s\": want ro, rw or nocopy "
                           "(volumes)",
                           path, o);
                ok = false;
            }
        }
    }
    free(copy);
    return ok;
}

static bool mount_long(struct cctx *c, const struct ynode *n, const char *path,
                       struct sk_stack_mount *m)
{
    char p[PATH_SIZE];
    bool ok = true;
    const struct ynode *type = ymap_get(n, "type");
    if (!type) {
        node_error(c, n, "%s: want type: (bind, volume or tmpfs)", path);
        return false;
    }
    int t = SK_MOUNT_VOLUME;
    if (!get_enum(c, type, path_key(p, path, "type"), sk_mount_type_names, &t))
        return false;
    m->type = t;
    const struct ynode *src = ymap_get(n, "source");
    const struct ynode *tgt = ymap_get(n, "target");
    const char *s =
        src ? text_of(c, src, path_key(p, path, "source"), &ok) : NULL;
    const char *target =
        tgt ? text_of(c, tgt, path_key(p, path, "target"), &ok) : NULL;
    if (!ok)
        return false;
    if (!target) {
        node_error(c, n, "%s: want target:", path);
        return false;
    }
    m->target = sk_strdup(target);
    if (t == SK_MOUNT_TMPFS && s) {
        node_error(c, src, "%s.source: a tmpfs has no source", path);
        return false;
    }
    if (t == SK_MOUNT_BIND && !s) {
        node_error(c, n, "%s: a bind mount wants source:", path);
        return false;
    }
    if (s && !mount_source(c, src, path_key(p, path, "source"), s, m))
        return false;
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->keys[i]->text;
        const struct ynode *v = n->vals[i];
        path_key(p, path, k);
        if (strcmp(k, "read_only") == 0) {
            ok &= get_bool(c, v, p, &m->read_only);
        } else if (strcmp(k, "volume") == 0 && v->kind != Y_NULL &&
                   (ok &= want(c, v, p, Y_MAP))) {
            const struct ynode *nc = ymap_get(v, "nocopy");
            char q[PATH_SIZE];
            if (nc)
                ok &= get_bool(c, nc, path_key(q, p, "nocopy"), &m->nocopy);
        } else if (strcmp(k, "tmpfs") == 0 && v->kind != Y_NULL &&
                   (ok &= want(c, v, p, Y_MAP))) {
            const struct ynode *size = ymap_get(v, "size"),
                               *mode = ymap_get(v, "mode");
            char q[PATH_SIZE];
            if (size)
                ok &=
                    get_bytes(c, size, path_key(q, p, "size"), &m->tmpfs_size);
            if (mode)
                ok &= get_mode(c, mode, path_key(q, p, "mode"), &m->tmpfs_mode);
        }
        if ((strcmp(k, "volume") == 0 && t != SK_MOUNT_VOLUME) ||
            (strcmp(k, "tmpfs") == 0 && t != SK_MOUNT_TMPFS) ||
            (strcmp(k, "bind") == 0 && t != SK_MOUNT_BIND)) {
            node_error(c, n->keys[i], "%s: not for a mount of type %s", p,
                       sk_mount_type_names[t]);
            ok = false;
        }
    }
    return ok;
}

static void read_mounts(struct cctx *c, const struct ynode *n, const char *path,
                        struct sk_stack_service *out)
{
    if (n->kind == Y_NULL || !want(c, n, path, Y_SEQ))
        return;
    char p[PATH_SIZE];
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *it = n->items[i];
        path_index(p, path, i);
        struct sk_stack_mount m = {.file = it->file, .line = it->line};
        bool ok;
        if (it->kind == Y_SCALAR)
            ok = mount_short(c, it, p, &m);
        else if (want(c, it, p, Y_MAP))
            ok = mount_long(c, it, p, &m);
        else
            ok = false;
        if (ok && m.target[0] != '/') {
            node_error(c, it, "%s: target \"%.64s\" must be an absolute path",
                       p, m.target);
            ok = false;
        }
        for (size_t j = 0; ok && j < out->n_mounts; j++) {
            if (strcmp(out->mounts[j].target, m.target) == 0) {
                node_error(c, it,
                           "%s: target %.64s is mounted twice (also at "
                           "line %lld)",
                           p, m.target, (long long)out->mounts[j].line);
                ok = false;
            }
        }
        if (!ok) {
            free(m.source);
            free(m.target);
            continue;
        }
        out->mounts =
            sk_realloc(out->mounts, (out->n_mounts + 1) * sizeof *out->mounts);
        out->mounts[out->n_mounts++] = m;
    }
}

static bool parse_id(const char *t, int64_t *out)
{
    return sk_parse_int(t, 0, 4294967295LL, out, NULL);
}

static void read_filerefs(struct cctx *c, const struct ynode *n,
                          const char *path, bool config,
                          struct sk_file_ref **refs, size_t *count)
{
    if (n->kind == Y_NULL || !want(c, n, path, Y_SEQ))
        return;
    const struct sk_stack_blob *defs = config ? c->st->configs : c->st->secrets;
    size_t n_defs = config ? c->st->n_configs : c->st->n_secrets;
    const char *kind = config ? "config" : "secret";
    char p[PATH_SIZE], q[PATH_SIZE];
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *it = n->items[i], *src = it;
        path_index(p, path, i);
        struct sk_file_ref r = {.mode = 0444};
        bool ok = true;
        if (it->kind == Y_MAP) {
            src = ymap_get(it, "source");
            if (!src) {
                node_error(c, it, "%s: want source:", p);
                continue;
            }
            for (size_t k = 0; k < it->n; k++) {
                const char *key = it->keys[k]->text;
                const struct ynode *v = it->vals[k];
                path_key(q, p, key);
                if (strcmp(key, "target") == 0) {
                    ok &= get_str(c, v, q, &r.target);
                    const char *t = r.target;
                    if (!config && t &&
                        (!*t || strchr(t, '/') || strcmp(t, "..") == 0)) {
                        node_error(c, v,
                                   "%s: \"%.64s\": a secret's target is a "
                                   "file name (under /run/secrets)",
                                   q, t);
                        ok = false;
                    }
                } else if (strcmp(key, "mode") == 0) {
                    ok &= get_mode(c, v, q, &r.mode);
                } else if (strcmp(key, "uid") == 0 || strcmp(key, "gid") == 0) {
                    const char *t = text_of(c, v, q, &ok);
                    int64_t *dst = key[0] == 'u' ? &r.uid : &r.gid;
                    if (t && !parse_id(t, dst)) {
                        node_error(c, v, "%s: want a numeric ID, got \"%.64s\"",
                                   q, t);
                        ok = false;
                    }
                }
            }
        }
        const char *name = src->kind == Y_SCALAR ? src->text : NULL;
        if (!name) {
            node_error(c, src, "%s: want the %s's name", p, kind);
            ok = false;
        }
        const struct sk_stack_blob *def =
            name ? find_blob(defs, n_defs, name) : NULL;
        if (name && !def) {
            node_error(c, src,
                       "%s: %s \"%.64s\" is not defined (under the top-level "
                       "%ss:)",
                       p, kind, name, kind);
            ok = false;
        }
        if (!ok || !def->spec.name) {
            free(r.target);
            continue;
        }
        r.name = sk_strdup(def->spec.name);
        if (!r.target)
            r.target = config ? sk_printf("/%s", name) : sk_strdup(name);
        *refs = sk_realloc(*refs, (*count + 1) * sizeof **refs);
        (*refs)[(*count)++] = r;
    }
}

static void read_update(struct cctx *c, const struct ynode *n, const char *path,
                        struct sk_update_config *u)
{
    if (n->kind == Y_NULL || !want(c, n, path, Y_MAP))
        return;
    char p[PATH_SIZE];
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->keys[i]->text;
        const struct ynode *v = n->vals[i];
        path_key(p, path, k);
        if (strcmp(k, "parallelism") == 0) {
            get_int(c, v, p, 0, SK_MAX_REPLICAS, &u->parallelism);
        } else if (strcmp(k, "delay") == 0) {
            get_duration(c, v, p, &u->delay_ms);
        } else if (strcmp(k, "monitor") == 0) {
            get_duration(c, v, p, &u->monitor_ms);
        } else if (strcmp(k, "failure_action") == 0) {
            get_enum(c, v, p, sk_failure_action_names, &u->failure_action);
        } else if (strcmp(k, "order") == 0) {
            get_enum(c, v, p, sk_update_order_names, &u->order);
        } else if (strcmp(k, "max_failure_ratio") == 0) {
            bool ok = true;
            const char *t = text_of(c, v, p, &ok);
            char *end = NULL;
            double r = t ? strtod(t, &end) : 0;
            if (t && (end == t || *end || !(r >= 0 && r <= 1)))
                node_error(c, v, "%s: want a number from 0 to 1, got \"%.64s\"",
                           p, t);
            else if (t)
                u->max_failure_ratio = r;
        }
    }
}

static void read_resources(struct cctx *c, const struct ynode *n,
                           const char *path, struct sk_resources *r)
{
    if (n->kind == Y_NULL || !want(c, n, path, Y_MAP))
        return;
    char p[PATH_SIZE];
    const struct ynode *cpus = ymap_get(n, "cpus"),
                       *mem = ymap_get(n, "memory");
    if (cpus)
        get_parsed(c, cpus, path_key(p, path, "cpus"), sk_parse_nano_cpus,
                   &r->nano_cpus);
    if (mem)
        get_bytes(c, mem, path_key(p, path, "memory"), &r->memory_bytes);
}

static void read_deploy(struct cctx *c, const struct ynode *n, const char *path,
                        struct sk_service_spec *s)
{
    if (n->kind == Y_NULL || !want(c, n, path, Y_MAP))
        return;
    char p[PATH_SIZE], q[PATH_SIZE];
    struct sk_task_spec *t = &s->task;
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->keys[i]->text;
        const struct ynode *v = n->vals[i];
        path_key(p, path, k);
        if (strcmp(k, "mode") == 0) {
            if (v->kind == Y_SCALAR && strstr(v->text, "-job"))
                node_error(c, v, "%s: %s: jobs are not supported by skiff", p,
                           v->text);
            else
                get_enum(c, v, p, sk_service_mode_names, &s->mode);
        } else if (strcmp(k, "replicas") == 0) {
            get_int(c, v, p, 0, SK_MAX_REPLICAS, &s->replicas);
        } else if (strcmp(k, "endpoint_mode") == 0) {
            get_enum(c, v, p, sk_endpoint_mode_names, &s->endpoint.mode);
        } else if (strcmp(k, "labels") == 0) {
            get_kvs(c, v, p, &s->labels, &s->n_labels);
        } else if (strcmp(k, "update_config") == 0) {
            read_update(c, v, p, &s->update);
        } else if (strcmp(k, "rollback_config") == 0) {
            read_update(c, v, p, &s->rollback);
        } else if (strcmp(k, "resources") == 0 && v->kind != Y_NULL &&
                   want(c, v, p, Y_MAP)) {
            const struct ynode *lim = ymap_get(v, "limits"),
                               *res = ymap_get(v, "reservations");
            if (lim)
                read_resources(c, lim, path_key(q, p, "limits"), &t->limits);
            if (res)
                read_resources(c, res, path_key(q, p, "reservations"),
                               &t->reservations);
        } else if (strcmp(k, "restart_policy") == 0 && v->kind != Y_NULL &&
                   want(c, v, p, Y_MAP)) {
            struct sk_restart_policy *r = &t->restart;
            for (size_t j = 0; j < v->n; j++) {
                const char *rk = v->keys[j]->text;
                const struct ynode *rv = v->vals[j];
                path_key(q, p, rk);
                if (strcmp(rk, "condition") == 0)
                    get_enum(c, rv, q, sk_restart_condition_names,
                             &r->condition);
                else if (strcmp(rk, "delay") == 0)
                    get_duration(c, rv, q, &r->delay_ms);
                else if (strcmp(rk, "window") == 0)
                    get_duration(c, rv, q, &r->window_ms);
                else if (strcmp(rk, "max_attempts") == 0)
                    get_int(c, rv, q, 0, 1000000, &r->max_attempts);
            }
        } else if (strcmp(k, "placement") == 0 && v->kind != Y_NULL &&
                   want(c, v, p, Y_MAP)) {
            struct sk_placement *pl = &t->placement;
            const struct ynode *cons = ymap_get(v, "constraints"),
                               *prefs = ymap_get(v, "preferences"),
                               *max = ymap_get(v, "max_replicas_per_node");
            if (cons && get_strs(c, cons, path_key(q, p, "constraints"),
                                 &pl->constraints, &pl->n_constraints)) {
                for (size_t j = 0; j < pl->n_constraints; j++) {
                    struct sk_constraint con;
                    struct sk_err err;
                    char r[PATH_SIZE];
                    if (sk_constraint_parse(pl->constraints[j], &con, &err) !=
                        SK_OK)
                        node_error(c, cons->items[j], "%s: %s",
                                   path_index(r, q, j), err.msg);
                }
            }
            if (max)
                get_int(c, max, path_key(q, p, "max_replicas_per_node"), 0,
                        SK_MAX_REPLICAS, &pl->max_replicas);
            path_key(q, p, "preferences");
            if (prefs && prefs->kind != Y_NULL && want(c, prefs, q, Y_SEQ)) {
                for (size_t j = 0; j < prefs->n; j++) {
                    const struct ynode *pr = prefs->items[j];
                    const struct ynode *spread = ymap_get(pr, "spread");
                    char r[PATH_SIZE];
                    path_index(r, q, j);
                    if (!spread || spread->kind != Y_SCALAR) {
                        node_error(c, pr, "%s: want spread: node.labels.KEY",
                                   r);
                        continue;
                    }
                    char *pref = sk_printf("spread=%s", spread->text);
                    char label[128];
                    struct sk_err err;
                    if (sk_preference_parse(pref, label, sizeof label, &err) !=
                        SK_OK)
                        node_error(c, spread, "%s.spread: %s", r, err.msg);
                    sk_strs_push(&pl->preferences, &pl->n_preferences, pref);
                    free(pref);
                }
            }
        }
    }
}

static void read_service(struct cctx *c, struct defs *d,
                         const struct ynode *key, const struct ynode *svc,
                         struct sk_stack_service *out)
{
    char path[PATH_SIZE], p[PATH_SIZE];
    path_key(path, "services", key->text);
    out->key = sk_strdup(key->text);
    out->file = key->file;
    out->line = key->line;
    struct sk_service_spec *s = &out->spec;
    sk_schema_defaults(&sk_service_spec_schema, s);
    s->name = sk_printf("%s_%s", c->st->name, key->text);
    struct sk_err err;
    if (sk_name_validate("service", s->name, &err) != SK_OK) {
        node_error(c, key,
                   "%s: the service's name in the cluster, \"%.80s\", is not "
                   "valid: use letters, digits and _.- (not first), at most "
                   "63",
                   path, s->name);
        return;
    }
    if (svc->kind == Y_NULL || !want(c, svc, path, Y_MAP)) {
        if (svc->kind == Y_NULL)
            node_error(c, key, "%s: no image", path);
        return;
    }
    size_t errors_before = c->st->n_errors;
    struct sk_task_spec *t = &s->task;
    struct sk_container_spec *ct = &t->container;
    const struct ynode *image = ymap_get(svc, "image");
    if (!image || image->kind == Y_NULL)
        node_error(c, key, "%s: no image%s", path,
                   ymap_get(svc, "build") ? " (skiff does not build images: "
                                            "give image:)"
                                          : "");
    read_env(c, svc, path, ct);
    for (size_t i = 0; i < svc->n; i++) {
        const char *k = svc->keys[i]->text;
        const struct ynode *v = svc->vals[i];
        path_key(p, path, k);
        if (strcmp(k, "image") == 0)
            get_str(c, v, p, &ct->image);
        else if (strcmp(k, "command") == 0)
            get_words(c, v, p, &ct->command, &ct->n_command);
        else if (strcmp(k, "entrypoint") == 0)
            get_words(c, v, p, &ct->entrypoint, &ct->n_entrypoint);
        else if (strcmp(k, "user") == 0)
            get_str(c, v, p, &ct->user);
        else if (strcmp(k, "working_dir") == 0)
            get_str(c, v, p, &ct->workdir);
        else if (strcmp(k, "hostname") == 0)
            get_str(c, v, p, &ct->hostname);
        else if (strcmp(k, "stop_signal") == 0)
            get_str(c, v, p, &ct->stop_signal);
        else if (strcmp(k, "stop_grace_period") == 0)
            get_duration(c, v, p, &ct->stop_grace_ms);
        else if (strcmp(k, "read_only") == 0)
            get_bool(c, v, p, &ct->read_only);
        else if (strcmp(k, "init") == 0)
            get_bool(c, v, p, &ct->init);
        else if (strcmp(k, "privileged") == 0)
            get_bool(c, v, p, &ct->privileged);
        else if (strcmp(k, "cap_add") == 0)
            get_strs(c, v, p, &ct->cap_add, &ct->n_cap_add);
        else if (strcmp(k, "cap_drop") == 0)
            get_strs(c, v, p, &ct->cap_drop, &ct->n_cap_drop);
        else if (strcmp(k, "security_opt") == 0)
            get_strs(c, v, p, &out->security_opt, &out->n_security_opt);
        else if (strcmp(k, "labels") == 0)
            get_kvs(c, v, p, &ct->labels, &ct->n_labels);
        else if (strcmp(k, "healthcheck") == 0)
            read_healthcheck(c, v, p, ct);
        else if (strcmp(k, "ports") == 0)
            read_ports(c, d, key->text, v, p, &s->endpoint);
        else if (strcmp(k, "volumes") == 0)
            read_mounts(c, v, p, out);
        else if (strcmp(k, "secrets") == 0)
            read_filerefs(c, v, p, false, &ct->secrets, &ct->n_secrets);
        else if (strcmp(k, "configs") == 0)
            read_filerefs(c, v, p, true, &ct->configs, &ct->n_configs);
        else if (strcmp(k, "deploy") == 0)
            read_deploy(c, v, p, s);
    }
    read_networks(c, d, key, ymap_get(svc, "networks"),
                  path_key(p, path, "networks"), t);
    stack_labels(c, &s->labels, &s->n_labels, key, path);
    stack_labels(c, &ct->labels, &ct->n_labels, key, path);
    if (c->st->n_errors != errors_before)
        return;
    /* As a manager will check it: the spec's rules, then the schema's caps
     * (through the codec, which also makes the spec what a manager would
     * store). */
    if (sk_service_spec_validate(s, &err) != SK_OK) {
        node_error(c, key, "%s: %s", path, err.msg);
        return;
    }
    json_t *j = sk_schema_encode(&sk_service_spec_schema, s, SK_VIEW_PUBLIC);
    struct sk_service_spec back;
    if (sk_schema_decode(&sk_service_spec_schema, j, &back, "spec", &err) !=
        SK_OK) {
        node_error(c, key, "%s: %s", path, err.msg);
    } else {
        sk_schema_free(&sk_service_spec_schema, s);
        *s = back;
    }
    json_decref(j);
}

/* ---- the whole stack ---- */

static void read_stack(struct cctx *c, const struct ynode *root)
{
    struct sk_stack *st = c->st;
    const struct ynode *services = ymap_get(root, "services");
    if (!services || services->kind == Y_NULL ||
        (services->kind == Y_MAP && services->n == 0)) {
        note_error(c, root->file, root->line, "no services");
        return;
    }
    const struct ynode *sec[4] = {
        ymap_get(root, "networks"), ymap_get(root, "volumes"),
        ymap_get(root, "secrets"), ymap_get(root, "configs")};
    static const char *const sec_names[4] = {"networks", "volumes", "secrets",
                                             "configs"};
    for (int k = 0; k < 4; k++)
        if (sec[k] && sec[k]->kind != Y_NULL &&
            !want(c, sec[k], sec_names[k], Y_MAP))
            sec[k] = NULL;
    struct defs d = {0};
    const struct ynode *nets = sec[0], *vols = sec[1], *secrets = sec[2],
                       *configs = sec[3];
    size_t n_nets = nets && nets->kind == Y_MAP ? nets->n : 0;
    d.nets = sk_calloc(n_nets + 1, sizeof *d.nets);
    d.net_used = sk_calloc(n_nets + 1, sizeof *d.net_used);
    for (size_t i = 0; i < n_nets; i++)
        read_network(c, nets->keys[i], nets->vals[i], &d.nets[d.n_nets++]);
    if (vols && vols->kind == Y_MAP) {
        st->volumes = sk_calloc(vols->n + 1, sizeof *st->volumes);
        for (size_t i = 0; i < vols->n; i++)
            read_volume(c, vols->keys[i], vols->vals[i],
                        &st->volumes[st->n_volumes++]);
    }
    if (secrets && secrets->kind == Y_MAP) {
        st->secrets = sk_calloc(secrets->n + 1, sizeof *st->secrets);
        for (size_t i = 0; i < secrets->n; i++)
            read_blob(c, secrets->keys[i], secrets->vals[i], false,
                      &st->secrets[st->n_secrets++]);
    }
    if (configs && configs->kind == Y_MAP) {
        st->configs = sk_calloc(configs->n + 1, sizeof *st->configs);
        for (size_t i = 0; i < configs->n; i++)
            read_blob(c, configs->keys[i], configs->vals[i], true,
                      &st->configs[st->n_configs++]);
    }
    if (want(c, services, "services", Y_MAP)) {
        st->services = sk_calloc(services->n, sizeof *st->services);
        for (size_t i = 0; i < services->n; i++)
            read_service(c, &d, services->keys[i], services->vals[i],
                         &st->services[st->n_services++]);
    }
    /* The networks services use, in the order defined; then the default
     * one if needed and not defined. */
    st->networks = sk_calloc(d.n_nets + 1, sizeof *st->networks);
    bool default_defined = false;
    for (size_t i = 0; i < d.n_nets; i++) {
        default_defined |= strcmp(d.nets[i].key, "default") == 0;
        if (d.net_used[i]) {
            st->networks[st->n_networks++] = d.nets[i];
            continue;
        }
        if (strcmp(d.nets[i].key, "default") != 0)
            note_warn(c, d.nets[i].file, d.nets[i].line,
                      "networks.%s: no service uses this network%s",
                      d.nets[i].key,
                      d.nets[i].external ? "" : ": it is not created");
        free(d.nets[i].key);
        sk_schema_free(&sk_network_spec_schema, &d.nets[i].spec);
    }
    if (d.default_used && !default_defined) {
        struct sk_stack_network *n = &st->networks[st->n_networks++];
        n->key = sk_strdup("default");
        n->file = root->file;
        n->line = 0;
        sk_schema_defaults(&sk_network_spec_schema, &n->spec);
        n->spec.name = sk_printf("%s_default", st->name);
        sk_kv_set(&n->spec.labels, &n->spec.n_labels, SK_STACK_LABEL, st->name);
    }
    free(d.nets);
    free(d.net_used);
    free(d.ports);
}

struct sk_stack *sk_compose_load(const char *name,
                                 const struct sk_compose_file *files,
                                 size_t n_files,
                                 const struct sk_compose_host *host)
{
    struct sk_stack *st = sk_calloc(1, sizeof *st);
    st->name = sk_strdup(name ? name : "");
    st->files = sk_calloc(n_files + 1, sizeof *st->files);
    for (size_t i = 0; i < n_files; i++)
        st->files[st->n_files++] = sk_strdup(files[i].path);
    struct cctx c = {.st = st, .host = host};
    struct sk_err err;
    if (sk_name_validate("stack", st->name, &err) != SK_OK)
        note_error(&c, "", 0, "%s", err.msg);
    if (n_files == 0)
        note_error(&c, "", 0, "no Compose file");
    struct ynode *merged = NULL;
    bool parsed = true;
    for (size_t i = 0; i < n_files; i++) {
        const char *file = st->files[i];
        struct ynode *root = ytree_parse(&c, file, files[i].text, files[i].len);
        if (!root) {
            parsed = false;
            continue;
        }
        if (root->kind != Y_MAP) {
            node_error(&c, root,
                       "want a mapping at the top (services:, networks:, "
                       "...), got %s",
                       kind_name(root->kind));
            parsed = false;
            continue;
        }
        check_keys(&c, root, &top_set, "");
        ytree_interpolate(&c, root);
        ytree_normalise(&c, root);
        merged = merged ? ytree_merge(&c, merged, root) : root;
    }
    /* Typing what did not parse or interpolate would only say the same
     * again, less clearly. */
    if (parsed && merged && st->n_errors == 0)
        read_stack(&c, merged);
    arena_release(&c);
    return st;
}

/* ---- the rest of the contract ---- */

void sk_stack_free(struct sk_stack *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_services; i++) {
        struct sk_stack_service *s = &st->services[i];
        free(s->key);
        sk_schema_free(&sk_service_spec_schema, &s->spec);
        for (size_t j = 0; j < s->n_mounts; j++) {
            free(s->mounts[j].source);
            free(s->mounts[j].target);
        }
        free(s->mounts);
        free_strs(&s->security_opt, &s->n_security_opt);
    }
    free(st->services);
    for (size_t i = 0; i < st->n_networks; i++) {
        free(st->networks[i].key);
        sk_schema_free(&sk_network_spec_schema, &st->networks[i].spec);
    }
    free(st->networks);
    struct sk_stack_blob *blobs[2] = {st->secrets, st->configs};
    size_t n_blobs[2] = {st->n_secrets, st->n_configs};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < n_blobs[k]; i++) {
            free(blobs[k][i].key);
            free(blobs[k][i].source);
            sk_schema_free(&sk_secret_spec_schema, &blobs[k][i].spec);
        }
        free(blobs[k]);
    }
    for (size_t i = 0; i < st->n_volumes; i++) {
        struct sk_stack_volume *v = &st->volumes[i];
        free(v->key);
        free(v->name);
        free(v->driver);
        for (size_t j = 0; j < v->n_driver_opts; j++) {
            free(v->driver_opts[j].key);
            free(v->driver_opts[j].value);
        }
        free(v->driver_opts);
        for (size_t j = 0; j < v->n_labels; j++) {
            free(v->labels[j].key);
            free(v->labels[j].value);
        }
        free(v->labels);
    }
    free(st->volumes);
    for (size_t i = 0; i < st->n_warnings; i++)
        free(st->warnings[i].msg);
    free(st->warnings);
    for (size_t i = 0; i < st->n_errors; i++)
        free(st->errors[i].msg);
    free(st->errors);
    free_strs(&st->files, &st->n_files);
    free(st->name);
    free(st);
}

void sk_compose_note_format(const struct sk_compose_note *note, char *buf,
                            size_t size)
{
    if (!note->file || !*note->file)
        snprintf(buf, size, "%s", note->msg);
    else if (note->line > 0)
        snprintf(buf, size, "%s:%lld: %s", note->file, (long long)note->line,
                 note->msg);
    else
        snprintf(buf, size, "%s: %s", note->file, note->msg);
}

enum sk_rc sk_compose_split_words(const char *line, char ***out_words,
                                  size_t *out_n, struct sk_err *err)
{
    char **words = NULL;
    size_t n = 0, len = 0;
    char *cur = sk_malloc(strlen(line) + 1);
    bool in_word = false;
    const char *problem = NULL;
    for (const char *p = line; *p && !problem; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
            if (in_word) {
                cur[len] = '\0';
                sk_strs_push(&words, &n, cur);
                len = 0;
                in_word = false;
            }
            continue;
        }
        in_word = true;
        if (*p == '\'') {
            const char *end = strchr(p + 1, '\'');
            if (!end) {
                problem = "a ' without its end";
                break;
            }
            memcpy(cur + len, p + 1, (size_t)(end - p - 1));
            len += (size_t)(end - p - 1);
            p = end;
        } else if (*p == '"') {
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1] && strchr("\"\\$`", p[1]))
                    p++;
                cur[len++] = *p++;
            }
            if (!*p)
                problem = "a \" without its end";
        } else if (*p == '\\') {
            if (!p[1])
                problem = "a \\ at the end";
            else
                cur[len++] = *++p;
        } else {
            cur[len++] = *p;
        }
    }
    if (!problem && in_word) {
        cur[len] = '\0';
        sk_strs_push(&words, &n, cur);
    }
    free(cur);
    if (problem) {
        free_strs(&words, &n);
        return sk_err_set(err, SK_EINVAL, "command \"%.64s\": %s", line,
                          problem);
    }
    *out_words = words;
    *out_n = n;
    return SK_OK;
}
