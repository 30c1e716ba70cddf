/* The Docker Engine API client against a real dockerd, whose socket is
 * $SKIFF_TEST_DOCKER_SOCK and which has skiff-test/busybox:latest loaded
 * (the lab's hosts have; tests/lab/05-docker.sh runs this on one). Without
 * the variable the test is skipped (exit 77).
 *
 * Every container is named "skifftest-<run>-..." and labelled
 * skifftest.run=<run>; each test removes what it made, and its teardown
 * force-removes whatever of this run is left, also after a failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "skiff/docker.h"
#include "skiff/mem.h"
#include "../unit/support.h"

#define IMAGE "skiff-test/busybox:latest"
#define DEADLINE_MS 30000
/* A pull from a registry that refuses connections fails fast; this bounds
 * it anyway. */
#define PULL_DEADLINE_MS 60000
#define MAX_LINES 256

static const char *sock;
static char run_id[40];
static int name_seq;

/* ---- Results of one-shot operations ---- */

struct res {
    int calls;
    enum sk_rc rc;
    char msg[SK_ERRMSG_SIZE];
    json_t *reply;
};

static void res_cb(void *ctx, enum sk_rc rc, const struct sk_err *err,
                   json_t *reply)
{
    struct res *r = ctx;
    r->calls++;
    r->rc = rc;
    snprintf(r->msg, sizeof r->msg, "%s", err ? err->msg : "");
    json_decref(r->reply);
    r->reply = json_incref(reply);
}

static void res_clear(struct res *r)
{
    json_decref(r->reply);
    memset(r, 0, sizeof *r);
}

static bool res_done(void *ctx)
{
    return ((struct res *)ctx)->calls > 0;
}

/* ---- Stream results ---- */

struct end {
    int calls;
    enum sk_rc rc;
    char msg[SK_ERRMSG_SIZE];
};

static void end_cb(void *ctx, enum sk_rc rc, const struct sk_err *err)
{
    struct end *e = ctx;
    e->calls++;
    e->rc = rc;
    snprintf(e->msg, sizeof e->msg, "%s", err ? err->msg : "");
}

struct lines {
    int n;
    int stream[MAX_LINES];
    char *text[MAX_LINES];
    size_t len[MAX_LINES];
    uint64_t first_ms, end_ms;
    struct end end;
    /* stop after this many lines (0: never), from inside the callback */
    int stop_after;
    struct sk_docker_logs *l;
    struct sk_docker *close_d; /* close this client after stop_after */
    uv_loop_t *loop;
    struct res late; /* an op started inside the callback, after close */
};

static void line_cb(void *ctx, int stream, const char *line, size_t len)
{
    struct lines *ls = ctx;
    assert_true(ls->n < MAX_LINES);
    assert_int_equal(line[len], '\0');
    if (ls->n == 0 && ls->loop)
        ls->first_ms = uv_now(ls->loop);
    ls->stream[ls->n] = stream;
    ls->text[ls->n] = sk_strndup(line, len);
    ls->len[ls->n] = len;
    ls->n++;
    if (ls->stop_after && ls->n == ls->stop_after) {
        if (ls->close_d) {
            sk_docker_close(ls->close_d, NULL, NULL);
            sk_docker_version(ls->close_d, res_cb, &ls->late);
        } else {
            sk_docker_logs_stop(ls->l);
            /* Twice is harmless. */
            sk_docker_logs_stop(ls->l);
        }
        assert_int_equal(ls->end.calls, 0);
    }
}

static void lines_end_cb(void *ctx, enum sk_rc rc, const struct sk_err *err)
{
    struct lines *ls = ctx;
    if (ls->loop)
        ls->end_ms = uv_now(ls->loop);
    end_cb(&ls->end, rc, err);
}

static bool lines_ended(void *ctx)
{
    return ((struct lines *)ctx)->end.calls > 0;
}

static void lines_clear(struct lines *ls)
{
    for (int i = 0; i < ls->n; i++)
        free(ls->text[i]);
    memset(ls, 0, sizeof *ls);
}

/* The texts of stream s, in order, joined by '|'. */
static char *lines_of(const struct lines *ls, int s)
{
    char *out = sk_strdup("");
    for (int i = 0; i < ls->n; i++) {
        if (ls->stream[i] != s)
            continue;
        char *t = ls->len[i] > 64 ? sk_printf("<%zu bytes>", ls->len[i])
                                  : sk_strdup(ls->text[i]);
        char *j = sk_printf("%s%s%s", out, *out ? "|" : "", t);
        free(t);
        free(out);
        out = j;
    }
    return out;
}

/* ---- Fixture ---- */

struct fx {
    uv_loop_t loop;
    struct sk_docker *d;
    int closes;
};

static void fx_init(struct fx *f)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    struct sk_err err;
    f->d = sk_docker_new(&f->loop, sock, &err);
    if (!f->d)
        fail_msg("sk_docker_new: %s", err.msg);
}

static void closed_cb(void *ctx)
{
    ((struct fx *)ctx)->closes++;
}

static bool fx_closed(void *ctx)
{
    return ((struct fx *)ctx)->closes > 0;
}

/* Closes the client (its callback must not run inside the call) and the
 * loop: a handle left open fails the test. */
static void fx_close(struct fx *f)
{
    sk_docker_close(f->d, closed_cb, f);
    assert_int_equal(f->closes, 0);
    assert_true(sk_test_run_until(&f->loop, fx_closed, f, DEADLINE_MS));
    sk_test_run_for(&f->loop, 20);
    assert_int_equal(f->closes, 1);
    sk_test_loop_close(&f->loop);
}

/* Waits for r, which must not have called back inside its start. */
static enum sk_rc wait_res(struct fx *f, struct res *r)
{
    if (!sk_test_run_until(&f->loop, res_done, r, DEADLINE_MS))
        fail_msg("no callback within %d ms", DEADLINE_MS);
    assert_int_equal(r->calls, 1);
    return r->rc;
}

#define START(r) assert_int_equal((r)->calls, 0)

static char *unique_name(const char *tag)
{
    return sk_printf("skifftest-%s-%d-%s", run_id, ++name_seq, tag);
}

/* A create body: IMAGE running cmd, labelled with this run, with an init
 * process (so that `sleep` stops on SIGTERM). Extra labels: NULL-ended
 * key, value pairs. */
static json_t *config_new(json_t *cmd, ...)
{
    json_t *labels = json_pack("{s:s}", "skifftest.run", run_id);
    va_list ap;
    va_start(ap, cmd);
    const char *k;
    while ((k = va_arg(ap, const char *))) {
        const char *v = va_arg(ap, const char *);
        json_object_set_new(labels, k, json_string(v));
    }
    va_end(ap);
    json_t *c = json_pack("{s:s, s:o, s:o, s:[s], s:{s:b}}", "Image", IMAGE,
                          "Cmd", cmd, "Labels", labels, "Env", "SKIFFTEST=1",
                          "HostConfig", "Init", 1);
    assert_non_null(c);
    return c;
}

static json_t *sh(const char *script)
{
    return json_pack("[s,s,s]", "sh", "-c", script);
}

/* Creates a container; returns its ID. */
static char *create(struct fx *f, const char *name, json_t *config)
{
    struct res r = {0};
    sk_docker_create(f->d, name, config, res_cb, &r);
    START(&r);
    if (wait_res(f, &r) != SK_OK)
        fail_msg("create %s: %s", name, r.msg);
    const char *id = json_string_value(json_object_get(r.reply, "Id"));
    assert_non_null(id);
    assert_int_equal(strlen(id), 64);
    char *out = sk_strdup(id);
    res_clear(&r);
    json_decref(config);
    return out;
}

static void expect_op(struct fx *f, struct res *r, enum sk_rc want,
                      const char *what)
{
    START(r);
    enum sk_rc rc = wait_res(f, r);
    if (rc != want)
        fail_msg("%s: got %s (%s), want %s", what, sk_rc_name(rc), r->msg,
                 sk_rc_name(want));
}

static void start(struct fx *f, const char *id)
{
    struct res r = {0};
    sk_docker_start(f->d, id, res_cb, &r);
    expect_op(f, &r, SK_OK, "start");
    res_clear(&r);
}

static void remove_force(struct fx *f, const char *id)
{
    struct res r = {0};
    sk_docker_remove(f->d, id, true, res_cb, &r);
    expect_op(f, &r, SK_OK, "remove");
    res_clear(&r);
}

static json_t *inspect(struct fx *f, const char *id)
{
    struct res r = {0};
    sk_docker_inspect(f->d, id, res_cb, &r);
    expect_op(f, &r, SK_OK, "inspect");
    json_t *j = json_incref(r.reply);
    res_clear(&r);
    return j;
}

static const char *jpath_str(json_t *j, const char *a, const char *b)
{
    return json_string_value(json_object_get(json_object_get(j, a), b));
}

/* Force-removes every container of this run, on a loop of its own (the
 * test's loop may be in any state after a failure). */
static int teardown(void **state)
{
    (void)state;
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return 0;
    struct sk_err err;
    struct sk_docker *d = sk_docker_new(&loop, sock, &err);
    if (!d)
        return 0;
    char *label = sk_printf("skifftest.run=%s", run_id);
    struct res r = {0};
    sk_docker_list(d, label, res_cb, &r);
    free(label);
    sk_test_run_until(&loop, res_done, &r, DEADLINE_MS);
    size_t n = json_array_size(r.reply);
    struct res *rm = sk_calloc(n + 1, sizeof *rm);
    for (size_t i = 0; i < n; i++) {
        const char *id = json_string_value(
            json_object_get(json_array_get(r.reply, i), "Id"));
        if (id)
            sk_docker_remove(d, id, true, res_cb, &rm[i]);
        else
            rm[i].calls = 1;
    }
    for (size_t i = 0; i < n; i++) {
        sk_test_run_until(&loop, res_done, &rm[i], DEADLINE_MS);
        if (rm[i].rc != SK_OK)
            print_error("cleanup: %s\n", rm[i].msg);
        res_clear(&rm[i]);
    }
    if (n > 0)
        print_message("cleanup removed %zu container(s) left by the test\n", n);
    free(rm);
    res_clear(&r);
    sk_docker_close(d, NULL, NULL);
    sk_test_run_for(&loop, 50);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}

/* ---- Tests ---- */

static void test_version_info(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    struct res r = {0};
    sk_docker_version(f.d, res_cb, &r);
    expect_op(&f, &r, SK_OK, "version");
    const char *api = json_string_value(json_object_get(r.reply, "ApiVersion"));
    assert_non_null(api);
    assert_non_null(json_string_value(json_object_get(r.reply, "Version")));
    res_clear(&r);

    sk_docker_info(f.d, res_cb, &r);
    expect_op(&f, &r, SK_OK, "info");
    assert_non_null(json_string_value(json_object_get(r.reply, "ID")));
    assert_true(json_is_integer(json_object_get(r.reply, "Containers")));
    res_clear(&r);
    fx_close(&f);
}

static void test_image_inspect(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    struct res r = {0};
    sk_docker_image_inspect(f.d, IMAGE, res_cb, &r);
    expect_op(&f, &r, SK_OK, "image inspect");
    const char *id = json_string_value(json_object_get(r.reply, "Id"));
    assert_non_null(id);
    assert_memory_equal(id, "sha256:", 7);
    json_t *tags = json_object_get(r.reply, "RepoTags");
    bool tagged = false;
    for (size_t i = 0; i < json_array_size(tags); i++)
        tagged |=
            strcmp(json_string_value(json_array_get(tags, i)), IMAGE) == 0;
    assert_true(tagged);
    res_clear(&r);

    char *missing = sk_printf("skiff-test/none-%s:latest", run_id);
    sk_docker_image_inspect(f.d, missing, res_cb, &r);
    expect_op(&f, &r, SK_ENOTFOUND, "inspect of a missing image");
    assert_non_null(strstr(r.msg, missing));
    assert_non_null(strstr(r.msg, "inspect image \""));
    assert_non_null(strstr(r.msg, "dockerd 404: "));
    assert_null(r.reply);
    print_message("missing image: %s\n", r.msg);
    res_clear(&r);
    free(missing);

    /* A name that is no path segment is refused, but not inside the call. */
    sk_docker_image_inspect(f.d, "..", res_cb, &r);
    expect_op(&f, &r, SK_EINVAL, "inspect of \"..\"");
    res_clear(&r);
    fx_close(&f);
}

static void test_pull_unreachable(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    /* No registry is reachable from the lab; one that refuses connections
     * fails fast and the same way everywhere. */
    const char *image = "127.0.0.1:1/skifftest/none:latest";
    struct res r = {0};
    sk_docker_image_pull(f.d, image, res_cb, &r);
    START(&r);
    if (!sk_test_run_until(&f.loop, res_done, &r, PULL_DEADLINE_MS)) {
        fx_close(&f); /* cancels the pull */
        assert_int_equal(r.calls, 1);
        fail_msg("pull of %s did not end within %d ms", image,
                 PULL_DEADLINE_MS);
    }
    assert_int_equal(r.calls, 1);
    assert_int_not_equal(r.rc, SK_OK);
    assert_int_not_equal(r.rc, SK_ECANCELED);
    char *prefix = sk_printf("pull image \"%s\": ", image);
    assert_non_null(strstr(r.msg, prefix));
    assert_non_null(strstr(r.msg, "127.0.0.1:1"));
    print_message("pull: %s (%s)\n", r.msg, sk_rc_name(r.rc));
    free(prefix);
    res_clear(&r);

    /* With a tag and a digest: dockerd gets the name and the digest, tries
     * the registry, and fails the same way (not "invalid reference"). */
    image = "127.0.0.1:1/skifftest/none:v1@sha256:"
            "0000000000000000000000000000000000000000000000000000000000000000";
    sk_docker_image_pull(f.d, image, res_cb, &r);
    START(&r);
    if (!sk_test_run_until(&f.loop, res_done, &r, PULL_DEADLINE_MS)) {
        fx_close(&f);
        fail_msg("pull of %s did not end within %d ms", image,
                 PULL_DEADLINE_MS);
    }
    assert_int_not_equal(r.rc, SK_OK);
    assert_int_not_equal(r.rc, SK_EINVAL);
    assert_non_null(strstr(r.msg, "127.0.0.1:1"));
    print_message("pull by digest: %s\n", r.msg);
    res_clear(&r);
    fx_close(&f);
}

static void test_lifecycle(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    char *name = unique_name("life");
    json_t *cmd = json_pack("[s,s]", "sleep", "1000");
    char *id =
        create(&f, name, config_new(cmd, "skifftest.role", "life", NULL));

    /* The name is taken now. */
    struct res r = {0};
    json_t *cfg = config_new(json_pack("[s]", "true"), NULL);
    sk_docker_create(f.d, name, cfg, res_cb, &r);
    expect_op(&f, &r, SK_ECONFLICT, "create with a taken name");
    assert_non_null(strstr(r.msg, name));
    res_clear(&r);
    json_decref(cfg);

    /* An image that is not there. */
    char *other = unique_name("noimage");
    cfg = json_pack("{s:s}", "Image", "skiff-test/none:latest");
    sk_docker_create(f.d, other, cfg, res_cb, &r);
    expect_op(&f, &r, SK_ENOTFOUND, "create from a missing image");
    assert_non_null(strstr(r.msg, "dockerd 404: "));
    assert_non_null(strstr(r.msg, other));
    print_message("missing image: %s\n", r.msg);
    res_clear(&r);
    json_decref(cfg);
    free(other);

    start(&f, id);
    start(&f, name); /* already started: dockerd's 304 is success */

    json_t *j = inspect(&f, name);
    assert_true(
        json_is_true(json_object_get(json_object_get(j, "State"), "Running")));
    assert_string_equal(jpath_str(j, "Config", "Image"), IMAGE);
    assert_string_equal(json_string_value(json_object_get(j, "Id")), id);
    json_t *labels = json_object_get(json_object_get(j, "Config"), "Labels");
    assert_string_equal(
        json_string_value(json_object_get(labels, "skifftest.role")), "life");
    assert_string_equal(
        json_string_value(json_object_get(labels, "skifftest.run")), run_id);
    json_t *env = json_object_get(json_object_get(j, "Config"), "Env");
    bool has_env = false;
    for (size_t i = 0; i < json_array_size(env); i++)
        has_env |= strcmp(json_string_value(json_array_get(env, i)),
                          "SKIFFTEST=1") == 0;
    assert_true(has_env);
    assert_true(json_is_true(
        json_object_get(json_object_get(j, "HostConfig"), "Init")));
    json_decref(j);

    /* The init process passes SIGTERM on: stop returns long before the
     * grace period ends. */
    uint64_t t0 = uv_now(&f.loop);
    sk_docker_stop(f.d, id, 20, res_cb, &r);
    expect_op(&f, &r, SK_OK, "stop");
    uint64_t took = uv_now(&f.loop) - t0;
    assert_true(took < 10000);
    res_clear(&r);

    j = inspect(&f, id);
    assert_false(
        json_is_true(json_object_get(json_object_get(j, "State"), "Running")));
    json_decref(j);

    sk_docker_stop(f.d, id, 20, res_cb, &r); /* already stopped: 304 */
    expect_op(&f, &r, SK_OK, "second stop");
    res_clear(&r);

    sk_docker_kill(f.d, id, "SIGKILL", res_cb, &r);
    expect_op(&f, &r, SK_ECONFLICT, "kill of a stopped container");
    res_clear(&r);

    sk_docker_remove(f.d, id, false, res_cb, &r);
    expect_op(&f, &r, SK_OK, "remove");
    assert_null(r.reply);
    res_clear(&r);

    sk_docker_remove(f.d, id, false, res_cb, &r);
    expect_op(&f, &r, SK_ENOTFOUND, "remove of a missing container");
    assert_non_null(strstr(r.msg, id));
    assert_non_null(strstr(r.msg, "remove container \""));
    print_message("missing container: %s\n", r.msg);
    res_clear(&r);

    sk_docker_inspect(f.d, name, res_cb, &r);
    expect_op(&f, &r, SK_ENOTFOUND, "inspect of a removed container");
    res_clear(&r);

    sk_docker_remove(f.d, "", true, res_cb, &r);
    expect_op(&f, &r, SK_EINVAL, "remove of \"\"");
    res_clear(&r);

    free(id);
    free(name);
    fx_close(&f);
}

static bool has_id(json_t *list, const char *id)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *x =
            json_string_value(json_object_get(json_array_get(list, i), "Id"));
        if (x && strcmp(x, id) == 0)
            return true;
    }
    return false;
}

static void test_list_label(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    char *key = sk_printf("skifftest.list.%s", run_id);
    char *ids[3];
    const char *vals[3] = {"a", "a", "b"};
    for (int i = 0; i < 3; i++) {
        char *name = unique_name(vals[i]);
        ids[i] = create(
            &f, name, config_new(json_pack("[s]", "true"), key, vals[i], NULL));
        free(name);
    }

    struct res r = {0};
    char *label = sk_printf("%s=a", key);
    sk_docker_list(f.d, label, res_cb, &r);
    expect_op(&f, &r, SK_OK, "list k=a");
    assert_true(json_is_array(r.reply));
    assert_int_equal(json_array_size(r.reply), 2);
    assert_true(has_id(r.reply, ids[0]));
    assert_true(has_id(r.reply, ids[1]));
    res_clear(&r);
    free(label);

    sk_docker_list(f.d, key, res_cb, &r);
    expect_op(&f, &r, SK_OK, "list k");
    assert_int_equal(json_array_size(r.reply), 3);
    res_clear(&r);

    sk_docker_list(f.d, NULL, res_cb, &r);
    expect_op(&f, &r, SK_OK, "list all");
    for (int i = 0; i < 3; i++)
        assert_true(has_id(r.reply, ids[i]));
    res_clear(&r);

    for (int i = 0; i < 3; i++) {
        remove_force(&f, ids[i]);
        free(ids[i]);
    }
    sk_docker_list(f.d, key, res_cb, &r);
    expect_op(&f, &r, SK_OK, "list k after remove");
    assert_int_equal(json_array_size(r.reply), 0);
    res_clear(&r);
    free(key);
    fx_close(&f);
}

/* ---- Events ---- */

#define MAX_EVENTS 128

/* Every event is kept: the create event of a container can arrive before
 * the reply to its create request. */
struct evs {
    int n;
    struct {
        char action[16];
        char id[72];
        char exit_code[16];
    } ev[MAX_EVENTS];
    const char *id; /* the container of interest */
    int after_stop;
    int other_types;
    bool stopped;
    struct end end;
};

static void event_cb(void *ctx, json_t *ev)
{
    struct evs *e = ctx;
    if (e->stopped)
        e->after_stop++;
    const char *action = json_string_value(json_object_get(ev, "Action"));
    const char *actor = jpath_str(ev, "Actor", "ID");
    assert_non_null(action);
    const char *type = json_string_value(json_object_get(ev, "Type"));
    if (!type || strcmp(type, "container") != 0)
        e->other_types++;
    if (e->n == MAX_EVENTS)
        return;
    const char *code = json_string_value(json_object_get(
        json_object_get(json_object_get(ev, "Actor"), "Attributes"),
        "exitCode"));
    snprintf(e->ev[e->n].action, sizeof e->ev[e->n].action, "%s", action);
    snprintf(e->ev[e->n].id, sizeof e->ev[e->n].id, "%s", actor ? actor : "");
    snprintf(e->ev[e->n].exit_code, sizeof e->ev[e->n].exit_code, "%s",
             code ? code : "");
    e->n++;
}

/* Index of the first event `action` of the container of interest, or -1. */
static int ev_find(const struct evs *e, const char *action)
{
    for (int i = 0; e->id && i < e->n; i++)
        if (strcmp(e->ev[i].id, e->id) == 0 &&
            strcmp(e->ev[i].action, action) == 0)
            return i;
    return -1;
}

static bool ev_created(void *ctx)
{
    return ev_find(ctx, "create") >= 0;
}
static bool ev_died(void *ctx)
{
    return ev_find(ctx, "die") >= 0;
}
static void ev_end_cb(void *ctx, enum sk_rc rc, const struct sk_err *err)
{
    end_cb(&((struct evs *)ctx)->end, rc, err);
}
static bool ev_ended(void *ctx)
{
    return ((struct evs *)ctx)->end.calls > 0;
}

static void test_events(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    char *label = sk_printf("skifftest.events=%s", run_id);
    json_t *filters =
        json_pack("{s:[s], s:[s]}", "type", "container", "label", label);
    struct evs e = {0};
    struct sk_docker_events *es =
        sk_docker_events_start(f.d, filters, event_cb, ev_end_cb, &e);
    json_decref(filters);
    assert_non_null(es);

    /* The stream has no "subscribed" signal: a container whose create
     * event arrives proves it is live (one created before the subscription
     * would be missed, so try again with a new one). */
    char *id = NULL;
    for (int tries = 0; tries < 10 && !ev_created(&e); tries++) {
        if (id) {
            remove_force(&f, id);
            free(id);
        }
        char *name = unique_name("events");
        id = create(&f, name,
                    config_new(sh("exit 3"), "skifftest.events", run_id, NULL));
        free(name);
        e.id = id;
        sk_test_run_until(&f.loop, ev_created, &e, 1000);
    }
    assert_true(ev_created(&e));
    start(&f, id);
    assert_true(sk_test_run_until(&f.loop, ev_died, &e, DEADLINE_MS));
    int started = ev_find(&e, "start"), died = ev_find(&e, "die");
    assert_true(started >= 0);
    assert_true(started < died);
    assert_string_equal(e.ev[died].exit_code, "3");
    assert_int_equal(e.end.calls, 0);

    json_t *j = inspect(&f, id);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(j, "State"), "ExitCode")),
                     3);
    json_decref(j);

    sk_docker_events_stop(es);
    e.stopped = true;
    assert_int_equal(e.end.calls, 0);
    remove_force(&f, id); /* makes a "destroy" event that must not arrive */
    assert_true(sk_test_run_until(&f.loop, ev_ended, &e, DEADLINE_MS));
    sk_test_run_for(&f.loop, 100);
    assert_int_equal(e.end.calls, 1);
    assert_int_equal(e.end.rc, SK_ECANCELED);
    assert_int_equal(e.after_stop, 0);
    assert_int_equal(e.other_types, 0);
    free(id);
    free(label);
    fx_close(&f);
}

/* ---- Logs ---- */

static struct sk_docker_logs *logs(struct fx *f, const char *id, bool follow,
                                   int tail, struct lines *ls)
{
    struct sk_docker_logs_opts o = {.follow = follow, .tail = tail};
    ls->loop = &f->loop;
    ls->l = sk_docker_logs_start(f->d, id, &o, line_cb, lines_end_cb, ls);
    assert_non_null(ls->l);
    assert_int_equal(ls->end.calls, 0);
    return ls->l;
}

static void wait_end(struct fx *f, struct lines *ls, enum sk_rc want)
{
    if (!sk_test_run_until(&f->loop, lines_ended, ls, DEADLINE_MS))
        fail_msg("log stream did not end");
    sk_test_run_for(&f->loop, 20);
    assert_int_equal(ls->end.calls, 1);
    if (ls->end.rc != want)
        fail_msg("log stream ended with %s (%s), want %s",
                 sk_rc_name(ls->end.rc), ls->end.msg, sk_rc_name(want));
}

#define expect_lines(ls, out, err) expect_lines_at(ls, out, err, __LINE__)

static void expect_lines_at(const struct lines *ls, const char *out,
                            const char *err, int line)
{
    char *o = lines_of(ls, 1), *e = lines_of(ls, 2);
    if (strcmp(o, out) != 0 || strcmp(e, err) != 0)
        fail_msg("line %d: got stdout \"%s\", stderr \"%s\"; want \"%s\", "
                 "\"%s\"",
                 line, o, e, out, err);
    free(o);
    free(e);
}

#define LONG_LINE 70000

static void test_logs(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    char *name = unique_name("logs");
    char *script =
        sk_printf("echo out1; echo err1 >&2; echo out2; echo err2 >&2;"
                  " echo >&2; head -c %d /dev/zero | tr '\\0' x;"
                  " echo; printf last-no-newline",
                  LONG_LINE);
    char *id = create(&f, name, config_new(sh(script), NULL));
    free(script);
    start(&f, id);
    const char *want_out =
        "out1|out2|<65536 bytes>|<4464 bytes>|last-no-newline";

    /* Following: the stream ends when the container exits. dockerd 20.10
     * writes an unterminated last line only when the container's output
     * closes, and a follower may have ended by then (curl sees the same),
     * so here that line may be missing. */
    struct lines ls = {0};
    logs(&f, id, true, -1, &ls);
    wait_end(&f, &ls, SK_OK);
    if (ls.n > 0 && strcmp(ls.text[ls.n - 1], "last-no-newline") != 0)
        expect_lines(&ls, "out1|out2|<65536 bytes>|<4464 bytes>", "err1|err2|");
    else
        expect_lines(&ls, want_out, "err1|err2|");
    for (int i = 0; i < ls.n; i++)
        if (ls.len[i] > 64)
            for (size_t k = 0; k < ls.len[i]; k++)
                assert_int_equal(ls.text[i][k], 'x');
    lines_clear(&ls);

    /* Not following, after the exit. */
    logs(&f, id, false, -1, &ls);
    wait_end(&f, &ls, SK_OK);
    expect_lines(&ls, want_out, "err1|err2|");
    lines_clear(&ls);

    logs(&f, id, false, 1, &ls);
    wait_end(&f, &ls, SK_OK);
    expect_lines(&ls, "last-no-newline", "");
    lines_clear(&ls);

    remove_force(&f, id);
    logs(&f, id, false, -1, &ls);
    wait_end(&f, &ls, SK_ENOTFOUND);
    assert_non_null(strstr(ls.end.msg, "logs of container \""));
    assert_int_equal(ls.n, 0);
    lines_clear(&ls);
    free(id);
    free(name);

    /* A TTY container's stream is raw: every line is on stdout, without
     * the terminal's "\r". */
    name = unique_name("tty");
    json_t *cfg = config_new(sh("echo t1; echo t2 >&2; echo t3"), NULL);
    json_object_set_new(cfg, "Tty", json_true());
    id = create(&f, name, cfg);
    start(&f, id);
    logs(&f, id, true, -1, &ls);
    wait_end(&f, &ls, SK_OK);
    expect_lines(&ls, "t1|t2|t3", "");
    lines_clear(&ls);
    remove_force(&f, id);
    free(id);
    free(name);
    fx_close(&f);
}

static void test_logs_follow_live(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    char *name = unique_name("follow");
    char *id =
        create(&f, name,
               config_new(sh("for i in 1 2 3 4 5; do echo o$i; echo e$i >&2; "
                             "sleep 0.3; done"),
                          NULL));
    start(&f, id);
    struct lines ls = {0};
    logs(&f, id, true, -1, &ls);
    wait_end(&f, &ls, SK_OK);
    expect_lines(&ls, "o1|o2|o3|o4|o5", "e1|e2|e3|e4|e5");
    /* Lines arrived as they were printed, not all at the end. */
    assert_true(ls.end_ms - ls.first_ms >= 800);
    lines_clear(&ls);
    remove_force(&f, id);
    free(id);
    free(name);
    fx_close(&f);
}

static bool got_line(void *ctx)
{
    return ((struct lines *)ctx)->n > 0;
}

static void test_logs_stop(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    char *name = unique_name("tick");
    char *id = create(
        &f, name,
        config_new(sh("while true; do echo tick; echo tock >&2; sleep 0.05; "
                      "done"),
                   NULL));
    start(&f, id);

    /* Stopped from inside its line callback. */
    struct lines ls = {0};
    ls.stop_after = 3;
    logs(&f, id, true, -1, &ls);
    wait_end(&f, &ls, SK_ECANCELED);
    sk_test_run_for(&f.loop, 300);
    assert_int_equal(ls.n, 3);
    assert_int_equal(ls.end.calls, 1);
    lines_clear(&ls);

    /* Stopped from outside, while lines keep coming. */
    struct sk_docker_logs *l = logs(&f, id, true, -1, &ls);
    assert_true(sk_test_run_until(&f.loop, got_line, &ls, DEADLINE_MS));
    sk_docker_logs_stop(l);
    int n = ls.n;
    assert_int_equal(ls.end.calls, 0);
    wait_end(&f, &ls, SK_ECANCELED);
    sk_test_run_for(&f.loop, 300);
    assert_int_equal(ls.n, n);
    assert_int_equal(ls.end.calls, 1);
    lines_clear(&ls);

    /* Stopped before it got anywhere (still inspecting the container). */
    l = logs(&f, id, true, -1, &ls);
    sk_docker_logs_stop(l);
    wait_end(&f, &ls, SK_ECANCELED);
    assert_int_equal(ls.n, 0);
    lines_clear(&ls);

    remove_force(&f, id);
    free(id);
    free(name);
    fx_close(&f);
}

/* ---- Closing with operations in flight ---- */

static void test_close_in_flight(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    char *name = unique_name("close");
    char *id = create(
        &f, name,
        config_new(sh("while true; do echo tick; sleep 0.05; done"), NULL));
    start(&f, id);
    fx_close(&f);

    /* Everything just started, nothing answered yet. */
    fx_init(&f);
    struct res r[5] = {{0}};
    sk_docker_version(f.d, res_cb, &r[0]);
    sk_docker_info(f.d, res_cb, &r[1]);
    sk_docker_image_inspect(f.d, IMAGE, res_cb, &r[2]);
    sk_docker_list(f.d, NULL, res_cb, &r[3]);
    sk_docker_inspect(f.d, "..", res_cb, &r[4]); /* fails before a call */
    struct evs e = {0};
    sk_docker_events_start(f.d, NULL, event_cb, ev_end_cb, &e);
    struct lines ls = {0};
    logs(&f, id, true, -1, &ls);
    sk_docker_close(f.d, closed_cb, &f);
    for (int i = 0; i < 5; i++)
        assert_int_equal(r[i].calls, 0);
    assert_int_equal(e.end.calls, 0);
    assert_int_equal(ls.end.calls, 0);
    assert_int_equal(f.closes, 0);
    assert_true(sk_test_run_until(&f.loop, fx_closed, &f, DEADLINE_MS));
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].rc, SK_ECANCELED);
        res_clear(&r[i]);
    }
    assert_int_equal(e.end.calls, 1);
    assert_int_equal(e.end.rc, SK_ECANCELED);
    assert_int_equal(ls.end.calls, 1);
    assert_int_equal(ls.end.rc, SK_ECANCELED);
    lines_clear(&ls);
    sk_test_run_for(&f.loop, 20);
    assert_int_equal(f.closes, 1);
    sk_test_loop_close(&f.loop);

    /* Streams that are live, closed from inside a line callback, which then
     * starts another operation on the closed client. */
    fx_init(&f);
    memset(&e, 0, sizeof e);
    sk_docker_events_start(f.d, NULL, event_cb, ev_end_cb, &e);
    ls.stop_after = 2;
    ls.close_d = f.d;
    logs(&f, id, true, -1, &ls);
    sk_docker_version(f.d, res_cb, &r[0]);
    assert_true(sk_test_run_until(&f.loop, lines_ended, &ls, DEADLINE_MS));
    assert_true(sk_test_run_until(&f.loop, ev_ended, &e, DEADLINE_MS));
    sk_test_run_for(&f.loop, 50);
    assert_int_equal(ls.n, 2);
    assert_int_equal(ls.end.calls, 1);
    assert_int_equal(ls.end.rc, SK_ECANCELED);
    assert_int_equal(e.end.calls, 1);
    assert_int_equal(e.end.rc, SK_ECANCELED);
    assert_int_equal(ls.late.calls, 1);
    assert_int_equal(ls.late.rc, SK_ECANCELED);
    res_clear(&ls.late);
    assert_int_equal(r[0].calls, 1); /* answered before, or canceled */
    res_clear(&r[0]);
    lines_clear(&ls);
    sk_test_loop_close(&f.loop);

    fx_init(&f);
    remove_force(&f, id);
    fx_close(&f);
    free(id);
    free(name);
}

/* Needs no dockerd, only a path where none listens. */
static void test_unreachable(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct sk_err err;
    assert_null(sk_docker_new(&loop, "tcp://127.0.0.1:2375", &err));
    assert_int_equal(err.code, SK_EINVAL);
    assert_null(sk_docker_new(&loop, "unix://", &err));
    assert_int_equal(err.code, SK_EINVAL);

    struct fx f;
    memset(&f, 0, sizeof f);
    assert_int_equal(uv_loop_init(&f.loop), 0);
    f.d = sk_docker_new(&f.loop, "unix:///nonexistent/skifftest.sock", &err);
    assert_non_null(f.d);
    struct res r = {0};
    sk_docker_version(f.d, res_cb, &r);
    expect_op(&f, &r, SK_EUNAVAIL, "version without dockerd");
    assert_non_null(strstr(r.msg, "docker version: dockerd at "
                                  "/nonexistent/skifftest.sock: "));
    print_message("unreachable: %s\n", r.msg);
    res_clear(&r);
    struct evs e = {0};
    sk_docker_events_start(f.d, NULL, event_cb, ev_end_cb, &e);
    assert_true(sk_test_run_until(&f.loop, ev_ended, &e, DEADLINE_MS));
    assert_int_equal(e.end.rc, SK_EUNAVAIL);
    fx_close(&f);
    sk_test_loop_close(&loop);
}

int main(void)
{
    sock = getenv("SKIFF_TEST_DOCKER_SOCK");
    if (!sock || !*sock) {
        printf("SKIP: SKIFF_TEST_DOCKER_SOCK is not set; set it to a dockerd "
               "socket that has %s (tests/lab/05-docker.sh does)\n",
               IMAGE);
        return 77;
    }
    snprintf(run_id, sizeof run_id, "%lx%lx", (unsigned long)time(NULL),
             (unsigned long)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_version_info, teardown),
        cmocka_unit_test_teardown(test_image_inspect, teardown),
        cmocka_unit_test_teardown(test_pull_unreachable, teardown),
        cmocka_unit_test_teardown(test_lifecycle, teardown),
        cmocka_unit_test_teardown(test_list_label, teardown),
        cmocka_unit_test_teardown(test_events, teardown),
        cmocka_unit_test_teardown(test_logs, teardown),
        cmocka_unit_test_teardown(test_logs_follow_live, teardown),
        cmocka_unit_test_teardown(test_logs_stop, teardown),
        cmocka_unit_test_teardown(test_close_in_flight, teardown),
        cmocka_unit_test_teardown(test_unreachable, teardown),
    };
    return cmocka_run_group_tests_name("docker", tests, NULL, NULL);
}
