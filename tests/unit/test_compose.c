/* The Compose loader (skiff/compose.h): every key it honours lands in the
 * right field of the spec, in its short and long forms; interpolation;
 * merges of several files; warnings for the keys skiff does not honour,
 * with file:line; and each bad input an error with file:line. The host is
 * fake: a fixed environment and files in memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "skiff/compose.h"
#include "skiff/mem.h"

/* ---- a fake host ---- */

static const char *const env[][2] = {
    {"TAG", "1.25"},          {"EMPTY", ""},
    {"REPLICAS", "3"},        {"HOME", "/home/me"},
    {"PASSED", "from-shell"}, {"DB_PASSWORD", "s3cret"},
    {"BAD_UTF8", "\xff\xfe"},
};

static const char *fake_getenv(void *ctx, const char *name)
{
    for (size_t i = 0; i < sizeof env / sizeof env[0]; i++)
        if (strcmp(env[i][0], name) == 0)
            return env[i][1];
    return NULL;
}

static char big_secret[600 * 1024];

static const struct {
    const char *path, *data;
} files[] = {
    {"/proj/db_password.txt", "hunter2\n"},
    {"/proj/nginx.conf", "server { listen 80; }\n"},
    {"/proj/app.env",
     "# comment\n\nA=1\nexport B = two words # a comment\nC='${TAG} "
     "literal'\nD=\"quoted ${TAG}\\nnext\"\nPASSED\nUNSET_ONE\nE=${TAG}\n"},
    {"/proj/override.env", "A=override\n"},
    {"/proj/bad.env", "A=1\nthis is not\n"},
    {"/proj/big.txt", big_secret},
};

static enum sk_rc fake_read(void *ctx, const char *path, size_t max, char **out,
                            size_t *out_len, struct sk_err *err)
{
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (strcmp(files[i].path, path) != 0)
            continue;
        size_t len = strlen(files[i].data);
        if (len > max)
            return sk_err_set(err, SK_ETOOBIG, "too big");
        *out = sk_strdup(files[i].data);
        *out_len = len;
        return SK_OK;
    }
    return sk_err_set(err, SK_ENOTFOUND, "%s: no such file", path);
}

static const struct sk_compose_host host = {
    .getenv = fake_getenv, .read_file = fake_read, .project_dir = "/proj"};

static struct sk_stack *load(const char *a, const char *b)
{
    struct sk_compose_file f[2] = {
        {"compose.yml", a, strlen(a)},
        {"override.yml", b ? b : "", b ? strlen(b) : 0},
    };
    return sk_compose_load("app", f, b ? 2 : 1, &host);
}

static void print_notes(const struct sk_stack *st)
{
    char buf[1024];
    for (size_t i = 0; i < st->n_errors; i++) {
        sk_compose_note_format(&st->errors[i], buf, sizeof buf);
        fprintf(stderr, "error: %s\n", buf);
    }
    for (size_t i = 0; i < st->n_warnings; i++) {
        sk_compose_note_format(&st->warnings[i], buf, sizeof buf);
        fprintf(stderr, "warning: %s\n", buf);
    }
}

/* A load that must succeed. */
static struct sk_stack *load_ok(const char *a, const char *b)
{
    struct sk_stack *st = load(a, b);
    if (st->n_errors)
        print_notes(st);
    assert_int_equal(st->n_errors, 0);
    return st;
}

static bool has_note(const struct sk_compose_note *notes, size_t n,
                     const char *file, int64_t line, const char *text)
{
    for (size_t i = 0; i < n; i++)
        if ((!file || strcmp(notes[i].file, file) == 0) &&
            (line < 0 || notes[i].line == line) && strstr(notes[i].msg, text))
            return true;
    return false;
}

#define assert_error(st, file, line, text)                                     \
    do {                                                                       \
        if (!has_note((st)->errors, (st)->n_errors, file, line, text)) {       \
            print_notes(st);                                                   \
            fail_msg("no error %s:%d: %s", file ? file : "*", line, text);     \
        }                                                                      \
    } while (0)
#define assert_warning(st, file, line, text)                                   \
    do {                                                                       \
        if (!has_note((st)->warnings, (st)->n_warnings, file, line, text)) {   \
            print_notes(st);                                                   \
            fail_msg("no warning %s:%d: %s", file ? file : "*", line, text);   \
        }                                                                      \
    } while (0)

/* One bad input: an error at file:line saying text, and nothing else
 * usable. */
static void bad(const char *a, const char *b, const char *file, int line,
                const char *text)
{
    struct sk_stack *st = load(a, b);
    if (getenv("SHOW"))
        print_notes(st);
    assert_true(st->n_errors > 0);
    assert_error(st, file, line, text);
    sk_stack_free(st);
}

static const struct sk_stack_service *svc(const struct sk_stack *st,
                                          const char *key)
{
    for (size_t i = 0; i < st->n_services; i++)
        if (strcmp(st->services[i].key, key) == 0)
            return &st->services[i];
    fail_msg("no service %s", key);
    return NULL;
}

static const struct sk_container_spec *ctr(const struct sk_stack *st,
                                           const char *key)
{
    return &svc(st, key)->spec.task.container;
}

static void assert_strs(char *const *got, size_t n, const char *const *want,
                        size_t n_want)
{
    if (n != n_want) {
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "got[%zu] = %s\n", i, got[i]);
    }
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(got[i], want[i]);
}

#define STRS(...) ((const char *const[]){__VA_ARGS__})
#define N(...) (sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *))
#define ASSERT_STRS(got, n, ...)                                               \
    assert_strs(got, n, STRS(__VA_ARGS__), N(__VA_ARGS__))

/* ---- every key where it belongs ---- */

static const char full_yaml[] =
    "version: '3.9'\n"
    "services:\n"
    "  web:\n"
    "    image: nginx:${TAG}\n"
    "    command: nginx -g 'daemon off;'\n"
    "    entrypoint: [\"/docker-entrypoint.sh\"]\n"
    "    environment:\n"
    "      - MODE=prod\n"
    "      - PASSED\n"
    "      - NOT_SET_ANYWHERE\n"
    "    ports:\n"
    "      - \"8080:80\"\n"
    "      - target: 443\n"
    "        published: 8443\n"
    "        protocol: tcp\n"
    "        mode: host\n"
    "      - 53:53/udp\n"
    "    networks:\n"
    "      front:\n"
    "        aliases: [www, site]\n"
    "      back:\n"
    "    volumes:\n"
    "      - ./html:/usr/share/nginx/html:ro\n"
    "      - data:/var/data\n"
    "      - type: tmpfs\n"
    "        target: /tmp\n"
    "        tmpfs:\n"
    "          size: 64M\n"
    "          mode: 01777\n"
    "    secrets:\n"
    "      - db_password\n"
    "      - source: db_password\n"
    "        target: db.pw\n"
    "        uid: '101'\n"
    "        gid: '102'\n"
    "        mode: 0400\n"
    "    configs:\n"
    "      - source: nginx_conf\n"
    "        target: /etc/nginx/conf.d/default.conf\n"
    "    healthcheck:\n"
    "      test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://localhost/\"]\n"
    "      interval: 10s\n"
    "      timeout: 2s\n"
    "      retries: 5\n"
    "      start_period: 1m30s\n"
    "    user: \"101:101\"\n"
    "    working_dir: /srv\n"
    "    read_only: true\n"
    "    cap_add: [NET_BIND_SERVICE]\n"
    "    cap_drop: [ALL]\n"
    "    security_opt: [\"no-new-privileges:true\"]\n"
    "    labels:\n"
    "      tier: front\n"
    "    stop_grace_period: 30s\n"
    "    stop_signal: SIGQUIT\n"
    "    init: true\n"
    "    hostname: web-host\n"
    "    deploy:\n"
    "      mode: replicated\n"
    "      replicas: ${REPLICAS}\n"
    "      endpoint_mode: dnsrr\n"
    "      labels: [owner=team-a, note]\n"
    "      placement:\n"
    "        constraints: [node.role == worker, node.labels.zone==eu]\n"
    "        preferences:\n"
    "          - spread: node.labels.rack\n"
    "        max_replicas_per_node: 2\n"
    "      resources:\n"
    "        limits: {cpus: '0.5', memory: 512M}\n"
    "        reservations: {cpus: 0.25, memory: 128M}\n"
    "      restart_policy:\n"
    "        condition: on-failure\n"
    "        delay: 2s\n"
    "        max_attempts: 3\n"
    "        window: 2m\n"
    "      update_config:\n"
    "        parallelism: 2\n"
    "        delay: 5s\n"
    "        failure_action: rollback\n"
    "        monitor: 20s\n"
    "        max_failure_ratio: 0.25\n"
    "        order: start-first\n"
    "      rollback_config:\n"
    "        parallelism: 0\n"
    "        failure_action: pause\n"
    "        order: stop-first\n"
    "  db:\n"
    "    image: postgres:16\n"
    "    env_file: [app.env, {path: missing.env, required: false}, "
    "override.env]\n"
    "    environment: {B: from-environment, NUMBER: 5, FLAG: true}\n"
    "    networks: [back]\n"
    "    deploy:\n"
    "      mode: global\n"
    "  worker:\n"
    "    image: busybox\n"
    "    command: [sh, -c, \"echo $$HOME\"]\n"
    "    healthcheck:\n"
    "      test: wget -q localhost || exit 1\n"
    "networks:\n"
    "  front:\n"
    "    driver: overlay\n"
    "    attachable: true\n"
    "    labels: {purpose: web}\n"
    "  back:\n"
    "    internal: true\n"
    "    ipam:\n"
    "      config:\n"
    "        - subnet: 10.20.0.0/24\n"
    "          gateway: 10.20.0.254\n"
    "  outside:\n"
    "    external: true\n"
    "  unused: {}\n"
    "volumes:\n"
    "  data:\n"
    "    driver_opts: {type: nfs}\n"
    "    labels: [backup=daily]\n"
    "  old:\n"
    "    external: {name: legacy_volume}\n"
    "secrets:\n"
    "  db_password:\n"
    "    file: ./db_password.txt\n"
    "    labels: {kind: password}\n"
    "  from_env:\n"
    "    environment: DB_PASSWORD\n"
    "  outside_secret:\n"
    "    external: true\n"
    "    name: shared_pw\n"
    "configs:\n"
    "  nginx_conf:\n"
    "    file: nginx.conf\n"
    "  inline:\n"
    "    content: |\n"
    "      hello ${TAG}\n";

static void every_key(void **state)
{
    struct sk_stack *st = load_ok(full_yaml, NULL);
    assert_string_equal(st->name, "app");
    assert_int_equal(st->n_services, 3);

    const struct sk_service_spec *web = &svc(st, "web")->spec;
    const struct sk_container_spec *c = &web->task.container;
    assert_string_equal(web->name, "app_web");
    assert_string_equal(c->image, "nginx:1.25");
    ASSERT_STRS(c->command, c->n_command, "nginx", "-g", "daemon off;");
    ASSERT_STRS(c->entrypoint, c->n_entrypoint, "/docker-entrypoint.sh");
    ASSERT_STRS(c->env, c->n_env, "MODE=prod", "PASSED=from-shell");
    assert_int_equal(web->endpoint.n_ports, 3);
    assert_int_equal(web->endpoint.ports[0].published, 8080);
    assert_int_equal(web->endpoint.ports[0].target, 80);
    assert_int_equal(web->endpoint.ports[0].mode, SK_PORT_HOST);
    assert_int_equal(web->endpoint.ports[1].published, 8443);
    assert_int_equal(web->endpoint.ports[1].target, 443);
    assert_int_equal(web->endpoint.ports[2].protocol, SK_PROTO_UDP);
    assert_int_equal(web->endpoint.ports[2].target, 53);
    assert_int_equal(web->endpoint.mode, SK_ENDPOINT_DNSRR);

    assert_int_equal(web->task.n_networks, 2);
    assert_string_equal(web->task.networks[0].target, "app_front");
    ASSERT_STRS(web->task.networks[0].aliases, web->task.networks[0].n_aliases,
                "web", "www", "site");
    assert_string_equal(web->task.networks[1].target, "app_back");
    ASSERT_STRS(web->task.networks[1].aliases, web->task.networks[1].n_aliases,
                "web");

    const struct sk_stack_service *ws = svc(st, "web");
    assert_int_equal(ws->n_mounts, 3);
    assert_int_equal(ws->mounts[0].type, SK_MOUNT_BIND);
    assert_string_equal(ws->mounts[0].source, "/proj/html");
    assert_string_equal(ws->mounts[0].target, "/usr/share/nginx/html");
    assert_true(ws->mounts[0].read_only);
    assert_int_equal(ws->mounts[1].type, SK_MOUNT_VOLUME);
    assert_string_equal(ws->mounts[1].source, "app_data");
    assert_false(ws->mounts[1].read_only);
    assert_int_equal(ws->mounts[2].type, SK_MOUNT_TMPFS);
    assert_null(ws->mounts[2].source);
    assert_int_equal(ws->mounts[2].tmpfs_size, 64 << 20);
    assert_int_equal(ws->mounts[2].tmpfs_mode, 01777);
    assert_int_equal(ws->mounts[2].line, 25);
    ASSERT_STRS(ws->security_opt, ws->n_security_opt, "no-new-privileges:true");

    assert_int_equal(c->n_secrets, 2);
    assert_string_equal(c->secrets[0].name, "app_db_password");
    assert_string_equal(c->secrets[0].target, "db_password");
    assert_int_equal(c->secrets[0].mode, 0444);
    assert_string_equal(c->secrets[1].target, "db.pw");
    assert_int_equal(c->secrets[1].uid, 101);
    assert_int_equal(c->secrets[1].gid, 102);
    assert_int_equal(c->secrets[1].mode, 0400);
    assert_int_equal(c->n_configs, 1);
    assert_string_equal(c->configs[0].name, "app_nginx_conf");
    assert_string_equal(c->configs[0].target, "/etc/nginx/conf.d/default.conf");

    assert_non_null(c->healthcheck);
    ASSERT_STRS(c->healthcheck->test, c->healthcheck->n_test, "CMD", "wget",
                "-q", "-O-", "http://localhost/");
    assert_int_equal(c->healthcheck->interval_ms, 10000);
    assert_int_equal(c->healthcheck->timeout_ms, 2000);
    assert_int_equal(c->healthcheck->retries, 5);
    assert_int_equal(c->healthcheck->start_period_ms, 90000);

    assert_string_equal(c->user, "101:101");
    assert_string_equal(c->workdir, "/srv");
    assert_string_equal(c->hostname, "web-host");
    assert_true(c->read_only);
    assert_true(c->init);
    ASSERT_STRS(c->cap_add, c->n_cap_add, "NET_BIND_SERVICE");
    ASSERT_STRS(c->cap_drop, c->n_cap_drop, "ALL");
    assert_int_equal(c->stop_grace_ms, 30000);
    assert_string_equal(c->stop_signal, "SIGQUIT");
    assert_string_equal(sk_kv_get(c->labels, c->n_labels, "tier"), "front");
    assert_string_equal(sk_kv_get(c->labels, c->n_labels, SK_STACK_LABEL),
                        "app");

    assert_int_equal(web->mode, SK_MODE_REPLICATED);
    assert_int_equal(web->replicas, 3);
    assert_string_equal(sk_kv_get(web->labels, web->n_labels, "owner"),
                        "team-a");
    assert_string_equal(sk_kv_get(web->labels, web->n_labels, "note"), "");
    assert_string_equal(sk_kv_get(web->labels, web->n_labels, SK_STACK_LABEL),
                        "app");
    const struct sk_placement *pl = &web->task.placement;
    ASSERT_STRS(pl->constraints, pl->n_constraints, "node.role == worker",
                "node.labels.zone==eu");
    ASSERT_STRS(pl->preferences, pl->n_preferences, "spread=node.labels.rack");
    assert_int_equal(pl->max_replicas, 2);
    assert_int_equal(web->task.limits.nano_cpus, 500000000);
    assert_int_equal(web->task.limits.memory_bytes, 512 << 20);
    assert_int_equal(web->task.reservations.nano_cpus, 250000000);
    assert_int_equal(web->task.reservations.memory_bytes, 128 << 20);
    assert_int_equal(web->task.restart.condition, SK_RESTART_ON_FAILURE);
    assert_int_equal(web->task.restart.delay_ms, 2000);
    assert_int_equal(web->task.restart.max_attempts, 3);
    assert_int_equal(web->task.restart.window_ms, 120000);
    assert_int_equal(web->update.parallelism, 2);
    assert_int_equal(web->update.delay_ms, 5000);
    assert_int_equal(web->update.failure_action, SK_FAILURE_ROLLBACK);
    assert_int_equal(web->update.monitor_ms, 20000);
    assert_true(web->update.max_failure_ratio == 0.25);
    assert_int_equal(web->update.order, SK_ORDER_START_FIRST);
    assert_int_equal(web->rollback.parallelism, 0);
    assert_int_equal(web->rollback.failure_action, SK_FAILURE_PAUSE);
    assert_int_equal(web->rollback.order, SK_ORDER_STOP_FIRST);

    /* env_file, then environment over it, sorted; interpolated as Compose
     * does (not inside '...'). */
    const struct sk_service_spec *db = &svc(st, "db")->spec;
    assert_int_equal(db->mode, SK_MODE_GLOBAL);
    ASSERT_STRS(db->task.container.env, db->task.container.n_env, "A=override",
                "B=from-environment", "C=${TAG} literal", "D=quoted 1.25\nnext",
                "E=1.25", "FLAG=true", "NUMBER=5", "PASSED=from-shell");
    assert_int_equal(db->task.n_networks, 1);
    assert_string_equal(db->task.networks[0].target, "app_back");
    ASSERT_STRS(db->task.networks[0].aliases, db->task.networks[0].n_aliases,
                "db");

    /* No networks: the stack's default one. $$ is a $. */
    const struct sk_service_spec *worker = &svc(st, "worker")->spec;
    ASSERT_STRS(worker->task.container.command,
                worker->task.container.n_command, "sh", "-c", "echo $HOME");
    assert_int_equal(worker->task.n_networks, 1);
    assert_string_equal(worker->task.networks[0].target, "app_default");
    ASSERT_STRS(worker->task.container.healthcheck->test,
                worker->task.container.healthcheck->n_test, "CMD-SHELL",
                "wget -q localhost || exit 1");
    assert_int_equal(worker->task.container.healthcheck->interval_ms, 30000);

    /* Networks: those used, then the default; "unused" is a warning. */
    assert_int_equal(st->n_networks, 3);
    const struct sk_stack_network *front = &st->networks[0],
                                  *back = &st->networks[1],
                                  *dflt = &st->networks[2];
    assert_string_equal(front->spec.name, "app_front");
    assert_string_equal(front->spec.driver, "overlay");
    assert_true(front->spec.attachable);
    assert_string_equal(
        sk_kv_get(front->spec.labels, front->spec.n_labels, "purpose"), "web");
    assert_string_equal(
        sk_kv_get(front->spec.labels, front->spec.n_labels, SK_STACK_LABEL),
        "app");
    assert_string_equal(back->spec.name, "app_back");
    assert_true(back->spec.internal);
    assert_string_equal(back->spec.subnet, "10.20.0.0/24");
    assert_string_equal(back->spec.gateway, "10.20.0.254");
    assert_string_equal(dflt->spec.name, "app_default");
    assert_string_equal(
        sk_kv_get(dflt->spec.labels, dflt->spec.n_labels, SK_STACK_LABEL),
        "app");
    assert_warning(st, "compose.yml", 112, "networks.unused: no service uses");
    assert_warning(st, "compose.yml", 110,
                   "networks.outside: no service uses this network");

    assert_int_equal(st->n_volumes, 2);
    assert_string_equal(st->volumes[0].name, "app_data");
    assert_string_equal(st->volumes[0].driver, "local");
    assert_string_equal(sk_kv_get(st->volumes[0].driver_opts,
                                  st->volumes[0].n_driver_opts, "type"),
                        "nfs");
    assert_string_equal(
        sk_kv_get(st->volumes[0].labels, st->volumes[0].n_labels, "backup"),
        "daily");
    assert_true(st->volumes[1].external);
    assert_string_equal(st->volumes[1].name, "legacy_volume");

    assert_int_equal(st->n_secrets, 3);
    assert_string_equal(st->secrets[0].spec.name, "app_db_password");
    assert_string_equal(st->secrets[0].spec.data, "aHVudGVyMgo=");
    assert_int_equal(st->secrets[0].size, 8);
    assert_string_equal(st->secrets[0].source, "/proj/db_password.txt");
    assert_string_equal(sk_kv_get(st->secrets[0].spec.labels,
                                  st->secrets[0].spec.n_labels, "kind"),
                        "password");
    assert_string_equal(st->secrets[1].spec.data, "czNjcmV0");
    assert_true(st->secrets[2].external);
    assert_string_equal(st->secrets[2].spec.name, "shared_pw");
    assert_null(st->secrets[2].spec.data);
    assert_int_equal(st->n_configs, 2);
    assert_string_equal(st->configs[1].spec.name, "app_inline");
    assert_int_equal(st->configs[1].size, 11); /* "hello 1.25\n" */

    /* An unset variable is a warning, not silence. */
    assert_int_equal(st->n_errors, 0);
    sk_stack_free(st);
}

/* ---- short and long forms, and the odd corners of each ---- */

static void forms(void **state)
{
    struct sk_stack *st = load_ok(
        "services:\n"
        "  a:\n"
        "    image: x\n"
        "    command: 'echo \"a b\" c\\ d'\n"
        "    entrypoint: /bin/sh -c\n"
        "    environment: {K: v}\n"
        "    labels: [l1=v1, l2]\n"
        "    ports: ['9000-9002:90-92', {target: 80, published: '81', "
        "protocol: udp}]\n"
        "    volumes:\n"
        "      - /abs/dir:/data\n"
        "      - ~/cache:/cache:rw\n"
        "      - /anon\n"
        "      - vol:/v:ro,nocopy\n"
        "      - {type: bind, source: ../up, target: /up, read_only: true}\n"
        "      - {type: volume, source: vol, target: /v2, volume: {nocopy: "
        "true}}\n"
        "      - {type: volume, target: /anon2}\n"
        "    configs: [cfg]\n"
        "    healthcheck: {disable: true}\n"
        "volumes:\n"
        "  vol:\n"
        "configs:\n"
        "  cfg: {file: /proj/nginx.conf}\n",
        NULL);
    const struct sk_stack_service *a = svc(st, "a");
    const struct sk_container_spec *c = &a->spec.task.container;
    ASSERT_STRS(c->command, c->n_command, "echo", "a b", "c d");
    ASSERT_STRS(c->entrypoint, c->n_entrypoint, "/bin/sh", "-c");
    ASSERT_STRS(c->env, c->n_env, "K=v");
    assert_string_equal(sk_kv_get(c->labels, c->n_labels, "l2"), "");
    const struct sk_endpoint_spec *e = &a->spec.endpoint;
    assert_int_equal(e->n_ports, 4);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(e->ports[i].published, 9000 + i);
        assert_int_equal(e->ports[i].target, 90 + i);
    }
    assert_int_equal(e->ports[3].published, 81);
    assert_int_equal(e->ports[3].protocol, SK_PROTO_UDP);
    assert_int_equal(a->n_mounts, 7);
    assert_string_equal(a->mounts[0].source, "/abs/dir");
    assert_int_equal(a->mounts[0].type, SK_MOUNT_BIND);
    assert_string_equal(a->mounts[1].source, "/home/me/cache");
    assert_int_equal(a->mounts[2].type, SK_MOUNT_VOLUME);
    assert_null(a->mounts[2].source);
    assert_string_equal(a->mounts[2].target, "/anon");
    assert_string_equal(a->mounts[3].source, "app_vol");
    assert_true(a->mounts[3].read_only);
    assert_true(a->mounts[3].nocopy);
    assert_string_equal(a->mounts[4].source, "/up");
    assert_true(a->mounts[4].read_only);
    assert_true(a->mounts[5].nocopy);
    assert_null(a->mounts[6].source);
    assert_string_equal(c->configs[0].target, "/cfg");
    ASSERT_STRS(c->healthcheck->test, c->healthcheck->n_test, "NONE");
    sk_stack_free(st);
}

static void split_words(void **state)
{
    char **w;
    size_t n;
    struct sk_err err;
    assert_int_equal(
        sk_compose_split_words("  a  'b c'\"d\\\"e\" f\\ g ", &w, &n, &err),
        SK_OK);
    ASSERT_STRS(w, n, "a", "b cd\"e", "f g");
    for (size_t i = 0; i < n; i++)
        free(w[i]);
    free(w);
    assert_int_equal(sk_compose_split_words("", &w, &n, &err), SK_OK);
    assert_int_equal(n, 0);
    assert_int_equal(sk_compose_split_words("a 'b", &w, &n, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "without its end"));
    assert_int_equal(sk_compose_split_words("a \"b", &w, &n, &err), SK_EINVAL);
    assert_int_equal(sk_compose_split_words("a\\", &w, &n, &err), SK_EINVAL);
}

/* ---- interpolation ---- */

static void interpolation(void **state)
{
    struct sk_stack *st =
        load_ok("services:\n"
                "  a:\n"
                "    image: \"img:${TAG}\"\n"
                "    environment:\n"
                "      - A=${NOPE:-dflt}\n"
                "      - B=${EMPTY:-dflt}\n"
                "      - C=${EMPTY-dflt}\n"
                "      - D=${TAG:+alt}\n"
                "      - E=${NOPE+alt}\n"
                "      - F=$$TAG and $$$$\n"
                "      - G=$TAG-${NOPE:-${TAG:-x}}\n"
                "      - H=${TAG:?set, so no error}${EMPTY?}\n"
                "      - I=${UNSET_VAR}\n"
                "    labels: {'${TAG}': key-not-interpolated}\n",
                NULL);
    const struct sk_container_spec *c = ctr(st, "a");
    assert_string_equal(c->image, "img:1.25");
    ASSERT_STRS(c->env, c->n_env, "A=dflt", "B=dflt", "C=", "D=alt",
                "E=", "F=$TAG and $$", "G=1.25-1.25", "H=1.25", "I=");
    assert_non_null(sk_kv_get(c->labels, c->n_labels, "${TAG}"));
    assert_warning(st, "compose.yml", 13,
                   "services.a.environment[8]: variable UNSET_VAR is not set: "
                   "it reads as an empty string");
    sk_stack_free(st);

    /* ${VAR:?} unset or empty: an error with the message, nothing else. */
    bad("services:\n  a:\n    image: x\n    user: ${NOPE:?give the user}\n",
        NULL, "compose.yml", 4,
        "services.a.user: required variable NOPE is not set: give the user");
    bad("services:\n  a:\n    image: ${EMPTY:?}\n", NULL, "compose.yml", 3,
        "required variable EMPTY is empty");
}

static void interpolation_errors(void **state)
{
    /* ${VAR?} only minds unset: EMPTY is set. */
    struct sk_stack *st = load_ok(
        "services:\n  a:\n    image: x\n    environment: ['A=${EMPTY?}']\n",
        NULL);
    ASSERT_STRS(ctr(st, "a")->env, ctr(st, "a")->n_env, "A=");
    sk_stack_free(st);
    bad("services:\n  a:\n    image: x${NOPE?}\n", NULL, "compose.yml", 3,
        "required variable NOPE is not set");
    bad("services:\n  a:\n    image: a$ b\n", NULL, "compose.yml", 3,
        "services.a.image: invalid interpolation: \"$\" must start");
    bad("services:\n  a:\n    image: ${TAG\n", NULL, "compose.yml", 3,
        "\"${\" without its \"}\"");
    bad("services:\n  a:\n    image: ${TAG%x}\n", NULL, "compose.yml", 3,
        "after the name, want }");
    bad("services:\n  a:\n    image: ${}\n", NULL, "compose.yml", 3,
        "invalid interpolation \"${}\"");
    bad("services:\n  a:\n    image: x\n    environment: [A=$BAD_UTF8]\n", NULL,
        "compose.yml", 4, "variable BAD_UTF8 is not valid UTF-8");
    bad("services:\n  a:\n    image: x\n    environment: [BAD_UTF8]\n", NULL,
        "compose.yml", 4, "variable BAD_UTF8 is not valid UTF-8");
}

/* ---- merging files ---- */

static void merge_files(void **state)
{
    struct sk_stack *st =
        load_ok("services:\n"
                "  web:\n"
                "    image: web:1\n"
                "    command: [a, b]\n"
                "    environment: [A=1, B=2]\n"
                "    labels: {x: '1'}\n"
                "    ports: ['80:80', '81:81']\n"
                "    volumes: ['/a:/data', 'v:/keep']\n"
                "    networks: [front]\n"
                "    cap_add: [NET_ADMIN]\n"
                "    secrets: [s1]\n"
                "    healthcheck: {test: [CMD, a], retries: 2}\n"
                "    deploy:\n"
                "      replicas: 2\n"
                "      placement: {constraints: [node.role==worker]}\n"
                "      update_config: {parallelism: 3, delay: 1s}\n"
                "  gone:\n"
                "    image: x\n"
                "    user: nobody\n"
                "networks: {front: {}, back: {}}\n"
                "volumes: {v: {}}\n"
                "secrets: {s1: {file: db_password.txt}}\n",
                "services:\n"
                "  web:\n"
                "    image: web:2\n"
                "    command: [c]\n"
                "    environment: {B: 3, C: 4}\n"
                "    labels: [y=2]\n"
                "    ports: [{target: 81, published: 81}, '82:82']\n"
                "    volumes: ['/b:/data']\n"
                "    networks: {back: {aliases: [api]}}\n"
                "    cap_add: [NET_ADMIN, SYS_TIME]\n"
                "    secrets: [{source: s1, target: s1, mode: 0400}]\n"
                "    healthcheck: {test: [CMD, b, c]}\n"
                "    deploy:\n"
                "      placement: {constraints: [node.labels.z==1]}\n"
                "      update_config: {delay: 2s}\n"
                "  gone:\n"
                "    user: !reset null\n"
                "  extra:\n"
                "    image: extra\n");
    const struct sk_service_spec *web = &svc(st, "web")->spec;
    const struct sk_container_spec *c = &web->task.container;
    assert_string_equal(c->image, "web:2");
    ASSERT_STRS(c->command, c->n_command, "c");
    ASSERT_STRS(c->env, c->n_env, "A=1", "B=3", "C=4");
    assert_string_equal(sk_kv_get(c->labels, c->n_labels, "x"), "1");
    assert_string_equal(sk_kv_get(c->labels, c->n_labels, "y"), "2");
    assert_int_equal(web->endpoint.n_ports, 3); /* 81 once */
    assert_int_equal(web->endpoint.ports[2].published, 82);
    const struct sk_stack_service *ws = svc(st, "web");
    assert_int_equal(ws->n_mounts, 2);
    assert_string_equal(ws->mounts[0].source, "/b"); /* replaced in place */
    assert_string_equal(ws->mounts[1].target, "/keep");
    assert_int_equal(web->task.n_networks, 2);
    assert_string_equal(web->task.networks[1].target, "app_back");
    ASSERT_STRS(web->task.networks[1].aliases, web->task.networks[1].n_aliases,
                "web", "api");
    ASSERT_STRS(c->cap_add, c->n_cap_add, "NET_ADMIN", "SYS_TIME");
    assert_int_equal(c->n_secrets, 1);
    assert_int_equal(c->secrets[0].mode, 0400);
    ASSERT_STRS(c->healthcheck->test, c->healthcheck->n_test, "CMD", "b", "c");
    assert_int_equal(c->healthcheck->retries, 2);
    assert_int_equal(web->replicas, 2);
    ASSERT_STRS(web->task.placement.constraints,
                web->task.placement.n_constraints, "node.role==worker",
                "node.labels.z==1");
    assert_int_equal(web->update.parallelism, 3);
    assert_int_equal(web->update.delay_ms, 2000);
    assert_null(ctr(st, "gone")->user);
    assert_string_equal(ctr(st, "extra")->image, "extra");
    /* Where a merged value came from: the later file. */
    assert_int_equal(st->n_services, 3);
    sk_stack_free(st);

    /* !override replaces a mapping instead of merging it. */
    st =
        load_ok("services:\n  a:\n    image: x\n    labels: {p: '1', q: '2'}\n",
                "services:\n  a:\n    labels: !override {r: '3'}\n");
    const struct sk_container_spec *a = ctr(st, "a");
    assert_null(sk_kv_get(a->labels, a->n_labels, "p"));
    assert_string_equal(sk_kv_get(a->labels, a->n_labels, "r"), "3");
    sk_stack_free(st);

    /* An error in the second file names it. */
    bad("services:\n  a:\n    image: x\n",
        "services:\n  a:\n    deploy:\n      replicas: many\n", "override.yml",
        4,
        "services.a.deploy.replicas: want an integer from 0 to 100000, "
        "got \"many\"");
}

/* ---- keys skiff does not honour, and keys that are not Compose ---- */

static void unsupported_keys_warn(void **state)
{
    struct sk_stack *st = load_ok("name: myproject\n"
                                  "x-common: &common\n"
                                  "  restart: always\n"
                                  "services:\n"
                                  "  a:\n"
                                  "    <<: *common\n"
                                  "    image: x\n"
                                  "    build: .\n"
                                  "    depends_on: [b]\n"
                                  "    x-note: extensions are fine\n"
                                  "    ports:\n"
                                  "      - {target: 80, published: 80, "
                                  "app_protocol: http}\n"
                                  "    deploy:\n"
                                  "      resources: {limits: {pids: 10}}\n"
                                  "  b:\n"
                                  "    image: y\n"
                                  "    logging: {driver: none}\n"
                                  "    build: ./b\n",
                                  "services:\n  b:\n    build: ./again\n");
    assert_warning(st, "compose.yml", 1, "name: not supported by skiff");
    assert_warning(st, "compose.yml", 8,
                   "services.a.build: not supported by skiff, ignored (skiff "
                   "runs images: build and push the image first)");
    assert_warning(st, "compose.yml", 9, "services.a.depends_on");
    assert_warning(st, "compose.yml", 12, "services.a.ports[0].app_protocol");
    assert_warning(st, "compose.yml", 14,
                   "services.a.deploy.resources.limits.pids");
    assert_warning(st, "compose.yml", 17, "services.b.logging");
    assert_warning(st, "compose.yml", 18, "services.b.build");
    assert_warning(st, "override.yml", 3, "services.b.build");
    /* The merge key brought `restart` into a: warned where it is
     * written. */
    assert_warning(st, "compose.yml", 3, "services.a.restart");
    assert_int_equal(st->n_warnings, 9);
    sk_stack_free(st);
}

static void unknown_keys_fail(void **state)
{
    bad("services:\n  a:\n    imgae: x\n", NULL, "compose.yml", 3,
        "services.a: unknown key \"imgae\" (did you mean \"image\"?)");
    bad("servics: {}\n", NULL, "compose.yml", 1,
        "unknown key \"servics\" (did you mean \"services\"?)");
    bad("services:\n  a:\n    image: x\n    deploy: {replica: 2}\n", NULL,
        "compose.yml", 4, "services.a.deploy: unknown key \"replica\"");
    bad("services:\n  a:\n    image: x\n    frobnicate: 1\n", NULL,
        "compose.yml", 4, "services.a: unknown key \"frobnicate\"");
    bad("services:\n  a:\n    image: x\nnetworks:\n  n: {drivr: overlay}\n",
        NULL, "compose.yml", 5, "networks.n: unknown key \"drivr\"");
}

/* ---- bad input: an error with file:line ---- */

static void bad_inputs(void **state)
{
    bad("services:\n  a:\n    image: x\n   bad: indent\n", NULL, "compose.yml",
        4, "YAML: ");
    bad("services:\n  a: [unclosed\n", NULL, "compose.yml", -1, "YAML: ");
    bad("services:\n  a:\n    command: echo\n", NULL, "compose.yml", 2,
        "services.a: no image");
    bad("services:\n  a:\n    build: .\n", NULL, "compose.yml", 2,
        "no image (skiff does not build images: give image:)");
    bad("services:\n  a:\n    image: x\n    networks: [nope]\n", NULL,
        "compose.yml", 4,
        "services.a.networks: network \"nope\" is not defined");
    bad("services:\n  a:\n    image: x\n    secrets: [nope]\n", NULL,
        "compose.yml", 4,
        "services.a.secrets[0]: secret \"nope\" is not defined");
    bad("services:\n  a:\n    image: x\n    configs: [{source: nope}]\n", NULL,
        "compose.yml", 4, "config \"nope\" is not defined");
    bad("services:\n  a:\n    image: x\n    volumes: [nope:/data]\n", NULL,
        "compose.yml", 4, "volume \"nope\" is not defined");
    /* Port clashes: two services, and within one. */
    bad("services:\n  a:\n    image: x\n    ports: ['8080:80']\n"
        "  b:\n    image: y\n    ports:\n      - {target: 81, published: "
        "8080}\n",
        NULL, "compose.yml", 8,
        "services.b.ports[0]: published port 8080/tcp is also published by "
        "service \"a\" (compose.yml:4)");
    bad("services:\n  a:\n    image: x\n    ports:\n      - '80:80'\n"
        "      - '80:81'\n",
        NULL, "compose.yml", 6,
        "published port 80/tcp is given twice (also at compose.yml:5)");
    bad("services:\n  a:\n    image: x\n    ports: ['8000-8001:80']\n", NULL,
        "compose.yml", 4, "want PUBLISHED:TARGET");
    bad("services:\n  a:\n    image: x\n    ports: ['127.0.0.1:80:80']\n", NULL,
        "compose.yml", 4, "a host address (127.0.0.1) is not honoured");
    bad("services:\n  a:\n    image: x\n    ports: ['80']\n", NULL,
        "compose.yml", 4, "give the published port too");
    bad("services:\n  a:\n    image: x\n    ports: [{target: 80}]\n", NULL,
        "compose.yml", 4, "want published: too");
    bad("services:\n  a:\n    image: x\n    ports: ['80:80/sctp']\n", NULL,
        "compose.yml", 4, "protocol \"sctp\": want tcp or udp");
    /* Values. */
    bad("services:\n  a:\n    image: x\n    read_only: maybe\n", NULL,
        "compose.yml", 4, "services.a.read_only: want true or false");
    bad("services:\n  a:\n    image: x\n    stop_grace_period: 10\n", NULL,
        "compose.yml", 4, "services.a.stop_grace_period: invalid duration");
    bad("services:\n  a:\n    image: x\n    deploy: {mode: global-job}\n", NULL,
        "compose.yml", 4, "jobs are not supported");
    bad("services:\n  a:\n    image: x\n    deploy: {mode: everywhere}\n", NULL,
        "compose.yml", 4, "want one of replicated, global");
    bad("services:\n  a:\n    image: x\n    deploy:\n      resources:\n"
        "        limits: {memory: lots}\n",
        NULL, "compose.yml", 6, "invalid size \"lots\"");
    bad("services:\n  a:\n    image: x\n    deploy:\n      placement:\n"
        "        constraints:\n          - node.role==worker\n"
        "          - node.cpu==2\n",
        NULL, "compose.yml", 8,
        "services.a.deploy.placement.constraints[1]: constraint "
        "\"node.cpu==2\": unknown key node.cpu");
    bad("services:\n  a:\n    image: x\n    deploy:\n      placement:\n"
        "        preferences: [{spread: node.zone}]\n",
        NULL, "compose.yml", 6, "preferences[0].spread: placement preference");
    bad("services:\n  a:\n    image: x\n    healthcheck: {test: [RUN, x]}\n",
        NULL, "compose.yml", 4, "a list starts with CMD, CMD-SHELL or NONE");
    bad("services:\n  a:\n    image: x\n    command: \"echo 'oops\"\n", NULL,
        "compose.yml", 4, "without its end");
    bad("services:\n  a:\n    image: x\n    volumes: [/a:relative]\n", NULL,
        "compose.yml", 4, "target \"relative\" must be an absolute path");
    bad("services:\n  a:\n    image: x\n    volumes: ['/a:/b', '/c:/b']\n",
        NULL, "compose.yml", 4, "target /b is mounted twice");
    bad("services:\n  a:\n    image: x\n    volumes: [{type: npipe, target: "
        "/x}]\n",
        NULL, "compose.yml", 4, "want one of bind, volume, tmpfs");
    bad("services:\n  a:\n    image: x\n    volumes: [{type: tmpfs, source: "
        "s, target: /x}]\n",
        NULL, "compose.yml", 4, "a tmpfs has no source");
    bad("services:\n  a:\n    image: x\n    secrets: [{source: s, mode: "
        "0999}]\nsecrets: {s: {file: db_password.txt}}\n",
        NULL, "compose.yml", 4, "want a file mode up to 07777");
    bad("services:\n  a:\n    image: x\n    secrets:\n      - source: s\n"
        "        target: /etc/s\nsecrets: {s: {file: db_password.txt}}\n",
        NULL, "compose.yml", 6,
        "services.a.secrets[0].target: \"/etc/s\": a secret's target is a "
        "file name");
    /* Definitions. */
    bad("services:\n  a: {image: x}\nsecrets:\n  s: {file: ./nope.txt}\n", NULL,
        "compose.yml", 4,
        "secrets.s.file: \"./nope.txt\" (/proj/nope.txt): no such file");
    bad("services:\n  a: {image: x}\nsecrets:\n  s: {file: big.txt}\n", NULL,
        "compose.yml", 4, "is larger than 500 KiB, the cap on a secret");
    bad("services:\n  a: {image: x}\nsecrets:\n  s: {labels: {a: b}}\n", NULL,
        "compose.yml", 4, "secrets.s: want one of file:, environment:");
    bad("services:\n  a: {image: x}\nnetworks:\n  n: {external: true, "
        "driver: overlay}\n",
        NULL, "compose.yml", 4,
        "networks.n: an external object takes no \"driver\"");
    bad("services:\n  a: {image: x, networks: [n]}\nnetworks:\n  n:\n"
        "    ipam: {config: [{subnet: 10.0.0.1/24}]}\n",
        NULL, "compose.yml", 5, "is not an IPv4 subnet like 10.0.9.0/24");
    bad("services:\n  a: {image: x, networks: [n]}\nnetworks:\n  n:\n"
        "    ipam: {config: [{subnet: 10.1.0.0/24, gateway: 10.2.0.1}]}\n",
        NULL, "compose.yml", 5, "gateway \"10.2.0.1\" is not a host address");
    bad("services:\n  a: {image: x, networks: [n]}\nnetworks:\n  n: {driver: "
        "bridge}\n",
        NULL, "compose.yml", 4, "driver \"bridge\" is not supported");
    bad("services:\n  a: {image: x, env_file: nope.env}\n", NULL, "compose.yml",
        2, "services.a.env_file[0]: \"nope.env\"");
    bad("services:\n  a: {image: x, env_file: bad.env}\n", NULL, "compose.yml",
        2, "bad.env:2: want KEY=VALUE");
    /* Names. */
    bad("services:\n  this-service-name-is-far-too-long-for-a-cluster-object-"
        "name-x:\n    image: x\n",
        NULL, "compose.yml", 2, "is not valid");
    /* Whole files. */
    bad("", NULL, "compose.yml", 0, "the file is empty");
    bad("- a\n- b\n", NULL, "compose.yml", 1, "want a mapping at the top");
    bad("services: {}\n", NULL, "compose.yml", 1, "no services");
    bad("services:\n  a: {image: x}\n  a: {image: y}\n", NULL, "compose.yml", 3,
        "key \"a\" is given twice (first at line 2)");
    bad("services:\n  a: {image: x}\n---\nservices: {}\n", NULL, "compose.yml",
        4, "a second YAML document");
    bad("services:\n  a: {image: \"x\\0y\"}\n", NULL, "compose.yml", 2, "NUL");
    bad("services:\n  a: {image: x}\n", "services: [oops]\n", "override.yml", 1,
        "services: want a mapping, got a list");
}

static void stack_name(void **state)
{
    struct sk_compose_file f = {"c.yml", "services: {a: {image: x}}\n", 26};
    struct sk_stack *st = sk_compose_load("bad name", &f, 1, &host);
    assert_error(st, "", 0, "stack: invalid name \"bad name\"");
    sk_stack_free(st);
    st = sk_compose_load("ok", &f, 0, &host);
    assert_error(st, "", 0, "no Compose file");
    sk_stack_free(st);
}

/* Anchors expand, << merges; an alias bomb hits the cap; a label of
 * skiff's own cannot be set. */
static void anchors_and_caps(void **state)
{
    struct sk_stack *st = load_ok("x-base: &base\n"
                                  "  image: base\n"
                                  "  environment: {A: '1'}\n"
                                  "services:\n"
                                  "  a:\n"
                                  "    <<: *base\n"
                                  "    environment: {B: '2'}\n"
                                  "  b: *base\n",
                                  NULL);
    assert_string_equal(ctr(st, "a")->image, "base");
    ASSERT_STRS(ctr(st, "a")->env, ctr(st, "a")->n_env, "B=2");
    ASSERT_STRS(ctr(st, "b")->env, ctr(st, "b")->n_env, "A=1");
    sk_stack_free(st);

    char bomb[2048] = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    for (char l = 'b'; l <= 'h'; l++) {
        size_t len = strlen(bomb);
        snprintf(bomb + len, sizeof bomb - len,
                 "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, "
                 "*%c]\n",
                 l, l, l - 1, l - 1, l - 1, l - 1, l - 1, l - 1, l - 1, l - 1,
                 l - 1, l - 1);
    }
    bad(bomb, NULL, "compose.yml", -1, "more than 200000 YAML nodes");
    bad("a: &a [*a]\n", NULL, "compose.yml", 1,
        "nested more than 64 levels deep (an alias inside itself?)");

    bad("services:\n  a:\n    image: x\n    labels: {skiff.stack.namespace: "
        "other}\n",
        NULL, "compose.yml", 2, "label skiff.stack.namespace is skiff's own");
}

int main(void)
{
    memset(big_secret, 'x', sizeof big_secret - 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_key),
        cmocka_unit_test(forms),
        cmocka_unit_test(split_words),
        cmocka_unit_test(interpolation),
        cmocka_unit_test(interpolation_errors),
        cmocka_unit_test(merge_files),
        cmocka_unit_test(unsupported_keys_warn),
        cmocka_unit_test(unknown_keys_fail),
        cmocka_unit_test(bad_inputs),
        cmocka_unit_test(stack_name),
        cmocka_unit_test(anchors_and_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
