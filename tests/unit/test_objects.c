/* The JSON codec of every object kind (through the schema engine):
 * round trips, strict decoding with errors that name the field, caps,
 * defaults, the public view, copy/equal/free; the cluster policy checks and
 * ports as users type them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "skiff/mem.h"
#include "skiff/objects.h"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!j)
        fail_msg("bad test JSON: %s: %s", jerr.text, text);
    return j;
}

/* decode -> encode -> decode gives an equal object, and encode of that
 * gives the same JSON. */
static void round_trip(enum sk_kind kind, const char *text)
{
    const struct sk_schema *s = sk_kind_schema(kind);
    json_t *in = parse(text);
    void *a = sk_object_new(kind), *b = sk_object_new(kind);
    struct sk_err err;
    if (sk_schema_decode(s, in, a, NULL, &err) != SK_OK)
        fail_msg("%s: %s", sk_kind_name(kind), err.msg);
    json_t *enc = sk_schema_encode(s, a, SK_VIEW_FULL);
    assert_int_equal(sk_schema_decode(s, enc, b, NULL, &err), SK_OK);
    assert_true(sk_schema_equal(s, a, b));
    json_t *enc2 = sk_schema_encode(s, b, SK_VIEW_FULL);
    assert_true(json_equal(enc, enc2));
    /* Every field the input gave survives with its value. */
    const char *key;
    json_t *val;
    json_object_foreach(in, key, val)
    {
        if (!json_is_object(val) && !json_is_array(val) &&
            !json_equal(val, json_object_get(enc, key)))
            fail_msg("%s: field %s changed in the round trip",
                     sk_kind_name(kind), key);
    }
    void *c = sk_object_dup(kind, a);
    assert_true(sk_schema_equal(s, a, c));
    sk_object_free(kind, c);
    json_decref(in);
    json_decref(enc);
    json_decref(enc2);
    sk_object_free(kind, a);
    sk_object_free(kind, b);
}

#define ID1 "aaaaaaaaaaaaaaaaaaaaaaaaaa"
/* 26 characters carry 130 bits: the last two must be zero. */
#define ID2 "bbbbbbbbbbbbbbbbbbbbbbbbba"

static void every_kind_round_trips(void **state)
{
    round_trip(SK_KIND_CLUSTER,
               "{\"id\":\"" ID1 "\",\"version\":7,\"created_at\":1,"
               "\"updated_at\":2,\"spec\":{\"name\":\"prod\","
               "\"heartbeat_period_ms\":500},\"ca_cert_pem\":\"PEM\","
               "\"ca_digest\":\"abc\",\"keys\":{\"ca_key_sealed\":\"x\","
               "\"worker_token_hash\":\"h\"}}");
    round_trip(SK_KIND_NODE,
               "{\"id\":\"" ID1 "\",\"version\":3,\"spec\":{\"name\":\"h1\","
               "\"role\":\"manager\",\"availability\":\"drain\","
               "\"labels\":{\"zone\":\"eu\",\"ssd\":\"true\"}},"
               "\"description\":{\"hostname\":\"h1\",\"addr\":\"10.77.0.11\","
               "\"nano_cpus\":2000000000,\"memory_bytes\":1024},"
               "\"status\":{\"state\":\"ready\",\"message\":\"ok\"},"
               "\"manager\":{\"raft_id\":12345678901,\"raft_addr\":"
               "\"10.77.0.11:7444\",\"api_addr\":\"10.77.0.11:7443\"}}");
    round_trip(
        SK_KIND_SERVICE,
        "{\"id\":\"" ID1 "\",\"spec_version\":4,\"spec\":{"
        "\"name\":\"web\",\"labels\":{\"a\":\"b\"},\"mode\":"
        "\"replicated\",\"replicas\":20,\"task\":{\"container\":{"
        "\"image\":\"skiff-test/busybox:latest\",\"command\":[\"httpd\","
        "\"-f\"],\"env\":[\"A=1\"],\"user\":\"1000\",\"init\":true,"
        "\"cap_drop\":[\"ALL\"],\"healthcheck\":{\"test\":[\"CMD-SHELL\","
        "\"true\"],\"interval_ms\":1000},\"secrets\":[{\"name\":\"db\","
        "\"target\":\"db\",\"mode\":256}]},\"limits\":{\"memory_bytes\":"
        "1048576},\"restart\":{\"condition\":\"on-failure\","
        "\"delay_ms\":100,\"max_attempts\":3},\"placement\":{"
        "\"constraints\":[\"node.role==worker\"],\"preferences\":["
        "\"spread=node.labels.zone\"]},\"networks\":[{\"target\":"
        "\"front\",\"aliases\":[\"www\"]}]},\"update\":{\"parallelism\":"
        "2,\"failure_action\":\"rollback\",\"max_failure_ratio\":0.25,"
        "\"order\":\"start-first\"},\"endpoint\":{\"ports\":[{"
        "\"target\":80,\"published\":8080,\"mode\":\"host\"}]}},"
        "\"update_status\":{\"state\":\"updating\"},\"vips\":[{"
        "\"network_id\":\"" ID2 "\",\"addr\":\"10.0.1.2/24\"}]}");
    round_trip(SK_KIND_TASK,
               "{\"id\":\"" ID1 "\",\"service_id\":\"" ID2 "\",\"slot\":3,"
               "\"node_id\":\"" ID2 "\",\"spec_version\":4,\"spec\":{"
               "\"container\":{\"image\":\"x\"}},\"desired_state\":\"running\","
               "\"status\":{\"state\":\"failed\",\"exit_code\":137,"
               "\"err\":\"oom\",\"container_id\":\"abc\"},\"networks\":[{"
               "\"network_id\":\"" ID2 "\",\"addresses\":[\"10.0.1.5/24\"]}],"
               "\"restart_attempts\":2,\"not_before\":99}");
    round_trip(SK_KIND_NETWORK,
               "{\"id\":\"" ID1 "\",\"spec\":{\"name\":\"front\",\"subnet\":"
               "\"10.0.1.0/24\",\"attachable\":true},\"vni\":4097,"
               "\"subnet\":\"10.0.1.0/24\",\"gateway\":\"10.0.1.1\"}");
    round_trip(SK_KIND_SECRET, "{\"id\":\"" ID1 "\",\"spec\":{\"name\":\"db\","
                               "\"data\":\"c2VjcmV0\"},\"size\":6}");
    round_trip(SK_KIND_CONFIG, "{\"id\":\"" ID1 "\",\"spec\":{\"name\":"
                               "\"conf\",\"data\":\"eA==\"},\"size\":1}");
}

/* Decodes text as a service spec and expects failure with msg in the
 * message. */
static void spec_fails(const char *text, const char *msg)
{
    json_t *in = parse(text);
    struct sk_service_spec spec;
    struct sk_err err;
    assert_int_equal(
        sk_schema_decode(&sk_service_spec_schema, in, &spec, "spec", &err),
        SK_EINVAL);
    if (!strstr(err.msg, msg))
        fail_msg("want \"%s\" in \"%s\"", msg, err.msg);
    /* Nothing owned after a failure. */
    static const struct sk_service_spec zero;
    assert_memory_equal(&spec, &zero, sizeof zero);
    json_decref(in);
}

#define TASK "\"task\":{\"container\":{\"image\":\"x\"}}"

static void strict_decoding_names_the_field(void **state)
{
    spec_fails("{\"name\":\"a\",\"replica\":3," TASK "}",
               "spec: unknown field \"replica\"");
    spec_fails("{\"name\":\"a\",\"replicas\":\"3\"," TASK "}",
               "spec.replicas: want an integer from 0 to 100000, got \"3\"");
    spec_fails("{\"name\":\"a\",\"replicas\":-1," TASK "}",
               "spec.replicas: want an integer from 0 to 100000, got -1");
    spec_fails("{\"name\":\"a\",\"replicas\":100001," TASK "}",
               "from 0 to 100000, got 100001");
    spec_fails("{\"name\":\"a\"}", "spec.task: required");
    spec_fails("{\"name\":\"a\",\"task\":{\"container\":{}}}",
               "spec.task.container.image: required");
    spec_fails("{\"name\":\"a\",\"mode\":\"everywhere\"," TASK "}",
               "spec.mode: want one of replicated, global, got "
               "\"everywhere\"");
    spec_fails("{\"name\":\"a\",\"task\":{\"container\":{\"image\":\"x\","
               "\"command\":[\"ok\",3]}}}",
               "spec.task.container.command[1]: want a string, got 3");
    spec_fails("{\"name\":\"a\",\"task\":{\"container\":{\"image\":\"x\","
               "\"secrets\":[{\"name\":\"s\"},{\"target\":\"t\"}]}}}",
               "spec.task.container.secrets[1].name: required");
    spec_fails("{\"name\":\"a\",\"task\":{\"container\":{\"image\":\"x\","
               "\"healthcheck\":{\"retries\":true}}}}",
               "spec.task.container.healthcheck.retries: want an integer");
    spec_fails("{\"name\":\"a\",\"labels\":{\"k\":1}," TASK "}",
               "spec.labels.k: want a string, got 1");
    spec_fails("[1,2]", "spec: want an object, got an array");
    spec_fails("{\"name\":\"a\",\"update\":{\"max_failure_ratio\":1.5}," TASK
               "}",
               "spec.update.max_failure_ratio: want a number from 0 to 1");
}

/* An absent object field decodes as {}: what the object requires is required
 * then too, so whatever decodes encodes to something that decodes again
 * (found by fuzz_json on the input "{}"). */
static void absent_objects_keep_their_required_fields(void **state)
{
    (void)state;
    const struct sk_schema *schema = sk_kind_schema(SK_KIND_SERVICE);
    json_t *in = parse("{}");
    struct sk_service svc;
    struct sk_err err;
    assert_int_equal(sk_schema_decode(schema, in, &svc, "service", &err),
                     SK_EINVAL);
    assert_string_equal(err.msg, "service.spec.task: required");
    json_decref(in);
}

static void nul_bytes_are_refused(void **state)
{
    /* jansson refuses \u0000 when parsing; an object built in memory can
     * still hold one. */
    json_t *in = parse("{" TASK "}");
    json_object_set_new(in, "name", json_stringn("a\0b", 3));
    struct sk_service_spec spec;
    struct sk_err err;
    assert_int_equal(
        sk_schema_decode(&sk_service_spec_schema, in, &spec, "spec", &err),
        SK_EINVAL);
    assert_non_null(strstr(err.msg, "spec.name: string contains a NUL byte"));
    json_decref(in);
}

static void caps_are_enforced_and_named(void **state)
{
    /* 65 labels: the cap is 64. */
    json_t *in = parse("{\"name\":\"a\"," TASK "}");
    json_t *labels = json_object();
    for (int i = 0; i < 65; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        json_object_set_new(labels, k, json_string("v"));
    }
    json_object_set_new(in, "labels", labels);
    struct sk_service_spec spec;
    struct sk_err err;
    assert_int_equal(
        sk_schema_decode(&sk_service_spec_schema, in, &spec, "spec", &err),
        SK_EINVAL);
    assert_non_null(strstr(err.msg, "spec.labels: more than 64 entries"));
    json_decref(in);

    /* A name past 63 bytes. */
    char text[256];
    snprintf(text, sizeof text, "{\"name\":\"%070d\"," TASK "}", 0);
    spec_fails(text, "spec.name: longer than 63 bytes");
}

static void defaults_follow_swarm(void **state)
{
    json_t *in = parse("{\"name\":\"web\"," TASK "}");
    struct sk_service_spec spec;
    struct sk_err err;
    assert_int_equal(
        sk_schema_decode(&sk_service_spec_schema, in, &spec, NULL, &err),
        SK_OK);
    assert_int_equal(spec.replicas, 1);
    assert_int_equal(spec.mode, SK_MODE_REPLICATED);
    assert_int_equal(spec.task.restart.condition, SK_RESTART_ANY);
    assert_int_equal(spec.task.restart.delay_ms, 5000);
    assert_int_equal(spec.update.parallelism, 1);
    assert_int_equal(spec.update.monitor_ms, 5000);
    assert_int_equal(spec.task.container.stop_grace_ms, 10000);
    assert_null(spec.task.container.healthcheck);
    assert_int_equal(sk_service_spec_validate(&spec, &err), SK_OK);
    sk_schema_free(&sk_service_spec_schema, &spec);
    json_decref(in);

    struct sk_cluster_spec cs = {0};
    sk_schema_defaults(&sk_cluster_spec_schema, &cs);
    assert_string_equal(cs.name, "default");
    assert_int_equal(cs.heartbeat_period_ms, SK_DEFAULT_HEARTBEAT_MS);
    assert_int_equal(cs.task_history_limit, 5);
    assert_true(cs.forbid_privileged);
    sk_schema_free(&sk_cluster_spec_schema, &cs);
}

static void public_view_hides_secrets(void **state)
{
    json_t *in = parse("{\"id\":\"" ID1 "\",\"spec\":{\"name\":\"c\"},"
                       "\"keys\":{\"ca_key_sealed\":\"KEY\","
                       "\"manager_token_sealed\":\"TOK\"}}");
    struct sk_cluster c;
    struct sk_err err;
    assert_int_equal(sk_schema_decode(&sk_cluster_schema, in, &c, NULL, &err),
                     SK_OK);
    json_t *pub = sk_schema_encode(&sk_cluster_schema, &c, SK_VIEW_PUBLIC);
    char *text = json_dumps(pub, 0);
    assert_null(strstr(text, "KEY"));
    assert_null(strstr(text, "TOK"));
    assert_null(json_object_get(pub, "keys"));
    free(text);
    json_t *full = sk_schema_encode(&sk_cluster_schema, &c, SK_VIEW_FULL);
    assert_non_null(json_object_get(full, "keys"));

    json_t *sin = parse("{\"spec\":{\"name\":\"db\",\"data\":\"SECRET\"}}");
    struct sk_secret sec;
    assert_int_equal(sk_schema_decode(&sk_secret_schema, sin, &sec, NULL, &err),
                     SK_OK);
    json_t *spub = sk_schema_encode(&sk_secret_schema, &sec, SK_VIEW_PUBLIC);
    text = json_dumps(spub, 0);
    assert_null(strstr(text, "SECRET"));
    free(text);
    sk_schema_free(&sk_secret_schema, &sec);
    json_decref(sin);
    json_decref(spub);
    json_decref(pub);
    json_decref(full);
    json_decref(in);
    sk_schema_free(&sk_cluster_schema, &c);
}

static void ids_are_checked(void **state)
{
    json_t *in = parse("{\"id\":\"not-an-id\"}");
    struct sk_task t;
    struct sk_err err;
    assert_int_equal(sk_schema_decode(&sk_task_schema, in, &t, NULL, &err),
                     SK_EINVAL);
    assert_non_null(strstr(err.msg, "id: \"not-an-id\" is not an ID"));
    json_decref(in);
}

static void equality_and_maps(void **state)
{
    struct sk_node_spec a = {0}, b = {0};
    a.name = strdup("h1");
    b.name = strdup("h1");
    sk_kv_set(&a.labels, &a.n_labels, "x", "1");
    sk_kv_set(&a.labels, &a.n_labels, "y", "2");
    sk_kv_set(&b.labels, &b.n_labels, "y", "2");
    sk_kv_set(&b.labels, &b.n_labels, "x", "1");
    assert_true(sk_schema_equal(&sk_node_spec_schema, &a, &b));
    sk_kv_set(&b.labels, &b.n_labels, "x", "3");
    assert_string_equal(sk_kv_get(b.labels, b.n_labels, "x"), "3");
    assert_false(sk_schema_equal(&sk_node_spec_schema, &a, &b));
    assert_true(sk_kv_del(&b.labels, &b.n_labels, "x"));
    assert_false(sk_kv_del(&b.labels, &b.n_labels, "x"));
    assert_int_equal(b.n_labels, 1);
    sk_schema_free(&sk_node_spec_schema, &a);
    sk_schema_free(&sk_node_spec_schema, &b);
}

static void validation(void **state)
{
    struct sk_err err;
    assert_int_equal(sk_name_validate("service", "web-1.a_b", &err), SK_OK);
    assert_int_equal(sk_name_validate("service", "-web", &err), SK_EINVAL);
    assert_int_equal(sk_name_validate("service", "we b", &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "invalid name \"we b\""));
    assert_int_equal(sk_name_validate("service", "", &err), SK_EINVAL);

    json_t *in =
        parse("{\"name\":\"web\",\"mode\":\"global\",\"replicas\":3," TASK "}");
    struct sk_service_spec spec;
    assert_int_equal(
        sk_schema_decode(&sk_service_spec_schema, in, &spec, NULL, &err),
        SK_OK);
    assert_int_equal(sk_service_spec_validate(&spec, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "global"));
    sk_schema_free(&sk_service_spec_schema, &spec);
    json_decref(in);

    in = parse("{\"name\":\"web\",\"task\":{\"container\":{\"image\":\"x\","
               "\"env\":[\"NOEQUALS\"]}}}");
    assert_int_equal(
        sk_schema_decode(&sk_service_spec_schema, in, &spec, NULL, &err),
        SK_OK);
    assert_int_equal(sk_service_spec_validate(&spec, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "env \"NOEQUALS\": want KEY=VALUE"));
    sk_schema_free(&sk_service_spec_schema, &spec);
    json_decref(in);

    in = parse("{\"name\":\"web\",\"task\":{\"container\":{\"image\":\"x\"}},"
               "\"endpoint\":{\"ports\":[{\"target\":80,\"mode\":\"host\"}]}}");
    assert_int_equal(
        sk_schema_decode(&sk_service_spec_schema, in, &spec, NULL, &err),
        SK_OK);
    assert_int_equal(sk_service_spec_validate(&spec, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "needs a published port"));
    sk_schema_free(&sk_service_spec_schema, &spec);
    json_decref(in);
}

static void kinds_table(void **state)
{
    for (int k = 0; k < SK_KIND_COUNT; k++) {
        enum sk_kind back;
        assert_true(sk_kind_parse(sk_kind_name((enum sk_kind)k), &back));
        assert_int_equal(back, k);
        assert_non_null(sk_kind_schema((enum sk_kind)k));
    }
    enum sk_kind back = SK_KIND_NODE;
    assert_false(sk_kind_parse("pod", &back));
    assert_null(sk_kind_name(SK_KIND_COUNT));
    assert_string_equal(sk_task_state_name(SK_TASK_RUNNING), "running");
    assert_true(sk_task_state_terminal(SK_TASK_FAILED));
    assert_false(sk_task_state_terminal(SK_TASK_RUNNING));
}

/* ---- cluster policy (sk_service_spec_check_policy) ---- */

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* Checks a service "web" running image as user (NULL: unset) against
 * policy; on refusal err must name the service and the rule. */
static enum sk_rc policy_check(const struct sk_cluster_spec *policy,
                               const char *user, const char *image,
                               bool privileged, const char *rule,
                               struct sk_err *err)
{
    struct sk_service_spec spec = {0};
    sk_schema_defaults(&sk_service_spec_schema, &spec);
    spec.name = sk_strdup("web");
    spec.task.container.image = sk_strdup(image);
    spec.task.container.user = user ? sk_strdup(user) : NULL;
    spec.task.container.privileged = privileged;
    assert_int_equal(sk_service_spec_validate(&spec, err), SK_OK);
    err->code = SK_OK;
    err->msg[0] = '\0';
    enum sk_rc rc = sk_service_spec_check_policy(policy, &spec, err);
    if (rc != SK_OK) {
        assert_int_equal(rc, SK_EINVAL);
        assert_int_equal(err->code, SK_EINVAL);
        assert_non_null(strstr(err->msg, "service \"web\": "));
        assert_non_null(strstr(err->msg, rule));
    }
    sk_schema_free(&sk_service_spec_schema, &spec);
    return rc;
}

static void policy_forbid_privileged(void **state)
{
    const char *rule = "(cluster policy forbid_privileged)";
    struct sk_cluster_spec on = {.forbid_privileged = true}, off = {0};
    struct sk_err err;
    assert_int_equal(policy_check(&on, NULL, "bb", true, rule, &err),
                     SK_EINVAL);
    assert_non_null(strstr(err.msg, "privileged containers are forbidden"));
    assert_int_equal(policy_check(&on, NULL, "bb", false, rule, &err), SK_OK);
    assert_int_equal(policy_check(&off, NULL, "bb", true, rule, &err), SK_OK);

    /* The default cluster forbids privileged containers, and only that. */
    struct sk_cluster_spec def = {0};
    sk_schema_defaults(&sk_cluster_spec_schema, &def);
    assert_int_equal(policy_check(&def, NULL, "bb", true, rule, &err),
                     SK_EINVAL);
    assert_int_equal(policy_check(&def, NULL, "bb:latest", false, rule, &err),
                     SK_OK);
    sk_schema_free(&sk_cluster_spec_schema, &def);
}

static void policy_require_non_root(void **state)
{
    const char *rule = "set --user (cluster policy require_non_root)";
    struct sk_cluster_spec on = {.require_non_root = true}, off = {0};
    struct sk_err err;
    static const char *const root[] = {"0",         "root", "root:root",
                                       "0:0",       "00",   "0:app",
                                       "root:1000", "",     ":1000"};
    for (size_t i = 0; i < sizeof root / sizeof root[0]; i++) {
        if (policy_check(&on, root[i], "bb", false, rule, &err) != SK_EINVAL)
            fail_msg("user \"%s\" was taken for non-root", root[i]);
        char want[64];
        snprintf(want, sizeof want, "got user \"%s\"", root[i]);
        if (*root[i] && !strstr(err.msg, want))
            fail_msg("\"%s\" does not name user \"%s\"", err.msg, root[i]);
    }
    assert_int_equal(policy_check(&on, NULL, "bb", false, rule, &err),
                     SK_EINVAL);
    assert_non_null(
        strstr(err.msg, "must run as a non-root user, got no user"));
    static const char *const others[] = {
        "1000", "app", "app:app", "1000:0", "01", "rootless", "10:10"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        if (policy_check(&on, others[i], "bb", false, rule, &err) != SK_OK)
            fail_msg("user \"%s\" refused: %s", others[i], err.msg);
    assert_int_equal(policy_check(&off, "root", "bb", false, rule, &err),
                     SK_OK);
    assert_int_equal(policy_check(&off, NULL, "bb", false, rule, &err), SK_OK);
}

static void policy_require_image_digest(void **state)
{
    const char *rule = "(cluster policy require_image_digest)";
    struct sk_cluster_spec on = {.require_image_digest = true}, off = {0};
    struct sk_err err;
    static const char *const pinned[] = {
        "bb@sha256:" HEX64,
        "registry.local:5000/team/bb:1.2@sha256:" HEX64,
    };
    for (size_t i = 0; i < sizeof pinned / sizeof pinned[0]; i++)
        if (policy_check(&on, NULL, pinned[i], false, rule, &err) != SK_OK)
            fail_msg("image \"%s\" refused: %s", pinned[i], err.msg);
    static const char *const unpinned[] = {
        "bb:latest",
        "bb",
        "bb@sha256:",
        "bb@sha256:" HEX64 "0",       /* 65 digits */
        "bb@sha256:" HEX64 "x",       /* something after */
        "bb@sha256:0123456789abcdef", /* too short */
        "bb@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef"
        "0123456789abcdef", /* upper case */
        "bb@sha256:g123456789abcdef0123456789abcdef0123456789abcdef"
        "0123456789abcdef", /* not hex */
        "bb@sha512:" HEX64,
        "bb:sha256:" HEX64, /* a tag, not a digest */
        "bb:latest#@sha256x" HEX64,
    };
    for (size_t i = 0; i < sizeof unpinned / sizeof unpinned[0]; i++) {
        if (policy_check(&on, NULL, unpinned[i], false, rule, &err) !=
            SK_EINVAL)
            fail_msg("image \"%s\" taken as pinned by digest", unpinned[i]);
        char want[256];
        snprintf(want, sizeof want, "image \"%s\": images must be pinned",
                 unpinned[i]);
        if (!strstr(err.msg, want))
            fail_msg("\"%s\" does not name image \"%s\"", err.msg, unpinned[i]);
    }
    assert_int_equal(policy_check(&off, NULL, "bb:latest", false, rule, &err),
                     SK_OK);
}

/* The rules in order: the first broken one is named. */
static void policy_names_the_first_rule_broken(void **state)
{
    struct sk_cluster_spec all = {.forbid_privileged = true,
                                  .require_non_root = true,
                                  .require_image_digest = true};
    struct sk_err err;
    assert_int_equal(
        policy_check(&all, "root", "bb", true, "forbid_privileged", &err),
        SK_EINVAL);
    assert_int_equal(
        policy_check(&all, "root", "bb", false, "require_non_root", &err),
        SK_EINVAL);
    assert_int_equal(
        policy_check(&all, "app", "bb", false, "require_image_digest", &err),
        SK_EINVAL);
    assert_int_equal(
        policy_check(&all, "app", "bb@sha256:" HEX64, false, "", &err), SK_OK);
}

/* ---- ports as users type them (sk_port_parse) ---- */

static void ports_as_typed(void **state)
{
    struct sk_port p;
    struct sk_err err;
    assert_int_equal(sk_port_parse("--publish", "8080:80", &p, &err), SK_OK);
    assert_int_equal(p.published, 8080);
    assert_int_equal(p.target, 80);
    assert_int_equal(p.protocol, SK_PROTO_TCP);
    assert_int_equal(p.mode, SK_PORT_HOST);
    assert_int_equal(sk_port_parse("--publish", "53:53/udp", &p, &err), SK_OK);
    assert_int_equal(p.protocol, SK_PROTO_UDP);
    assert_int_equal(sk_port_parse("--publish",
                                   "mode=ingress,target=90,published=9000,"
                                   "protocol=udp",
                                   &p, &err),
                     SK_OK);
    assert_int_equal(p.published, 9000);
    assert_int_equal(p.target, 90);
    assert_int_equal(p.protocol, SK_PROTO_UDP);
    assert_int_equal(p.mode, SK_PORT_INGRESS);
    assert_int_equal(sk_port_parse("--publish", "target=70", &p, &err), SK_OK);
    assert_int_equal(p.published, 0);
    assert_int_equal(p.mode, SK_PORT_HOST);

    static const char *const bad[] = {
        "80:",
        ":80",
        "80",
        "80:0",
        "80:65536",
        "65536:80",
        "-1:80",
        " 80:80",
        "80:80/sctp",
        "80:80/",
        "target=0",
        "target=80,foo=1",
        "published=80",
        "target=x",
        "target=80,protocol=sctp",
        "target=80,mode=bridge",
        "target=80,published",
        "=80",
        "",
        "target=80,\xff=1", /* invalid UTF-8: no JSON key */
        "target=80,mode=\xc3",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&p, 0x5a, sizeof p);
        struct sk_port untouched = p;
        if (sk_port_parse("--publish", bad[i], &p, &err) != SK_EINVAL)
            fail_msg("port \"%s\" accepted", bad[i]);
        char want[64];
        snprintf(want, sizeof want, "--publish \"%s\": want ", bad[i]);
        if (!strstr(err.msg, want))
            fail_msg("\"%s\" does not name \"%s\"", err.msg, bad[i]);
        assert_memory_equal(&p, &untouched, sizeof p);
    }
}

/* ---- networks as users name them ---- */

static void network_refs_as_typed(void **state)
{
    struct sk_network_ref r;
    struct sk_err err;
    assert_int_equal(sk_network_ref_parse("--network", "back", &r, &err),
                     SK_OK);
    assert_string_equal(r.target, "back");
    assert_int_equal(r.n_aliases, 0);
    sk_schema_free(&sk_network_ref_schema, &r);
    assert_int_equal(sk_network_ref_parse(
                         "--network", "name=back,alias=db,alias=db2", &r, &err),
                     SK_OK);
    assert_string_equal(r.target, "back");
    assert_int_equal(r.n_aliases, 2);
    assert_string_equal(r.aliases[0], "db");
    assert_string_equal(r.aliases[1], "db2");
    assert_string_equal(r.id, "");
    sk_schema_free(&sk_network_ref_schema, &r);

    static const char *const bad[] = {
        "",
        "name=",
        "alias=db",
        "name=back,name=front",
        "name=back,target=front",
        "name=back,alias=",
        "name=back,alias=a b",
        "name=back,driver-opt=x",
        "name=back,id=aaaaaaaaaaaaaaaaaaaaaaaaaa",
        "name=back,alias",
        "-back",
        "ba ck",
        "name=\xff",
        "name=back,\xff=1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&r, 0x5a, sizeof r);
        struct sk_network_ref untouched = r;
        if (sk_network_ref_parse("--network", bad[i], &r, &err) != SK_EINVAL)
            fail_msg("network \"%s\" accepted", bad[i]);
        char want[96];
        snprintf(want, sizeof want, "--network \"%s\": want NAME or ", bad[i]);
        if (!strstr(err.msg, want))
            fail_msg("\"%s\" does not name \"%s\"", err.msg, bad[i]);
        assert_memory_equal(&r, &untouched, sizeof r);
    }
}

static void network_specs_and_service_networks(void **state)
{
    struct sk_network_spec n = {0};
    struct sk_err err;
    sk_schema_defaults(&sk_network_spec_schema, &n);
    n.name = sk_strdup("back");
    assert_string_equal(n.driver, "overlay");
    assert_int_equal(sk_network_spec_validate(&n, &err), SK_OK);
    free(n.driver);
    n.driver = sk_strdup("bridge");
    assert_int_equal(sk_network_spec_validate(&n, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "network \"back\": driver \"bridge\" is "
                                    "not supported"));
    free(n.driver);
    n.driver = sk_strdup("overlay");
    n.gateway = sk_strdup("10.0.9.1");
    assert_int_equal(sk_network_spec_validate(&n, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "a gateway needs a subnet"));
    n.subnet = sk_strdup("10.0.9.0/24");
    assert_int_equal(sk_network_spec_validate(&n, &err), SK_OK);
    sk_kv_set(&n.labels, &n.n_labels, "a b", "c");
    assert_int_equal(sk_network_spec_validate(&n, &err), SK_EINVAL);
    free(n.name);
    n.name = sk_strdup("-x");
    assert_int_equal(sk_network_spec_validate(&n, &err), SK_EINVAL);
    sk_schema_free(&sk_network_spec_schema, &n);

    /* A service names a network once, and its aliases are names. */
    struct sk_service_spec s = {0};
    sk_schema_defaults(&sk_service_spec_schema, &s);
    s.name = sk_strdup("api");
    s.task.container.image = sk_strdup("bb");
    s.task.networks = sk_calloc(2, sizeof *s.task.networks);
    s.task.n_networks = 2;
    s.task.networks[0].target = sk_strdup("back");
    s.task.networks[1].target = sk_strdup("front");
    assert_int_equal(sk_service_spec_validate(&s, &err), SK_OK);
    free(s.task.networks[1].target);
    s.task.networks[1].target = sk_strdup("back");
    assert_int_equal(sk_service_spec_validate(&s, &err), SK_EINVAL);
    assert_string_equal(err.msg,
                        "service \"api\": network \"back\" is given twice");
    free(s.task.networks[1].target);
    s.task.networks[1].target = sk_strdup("front");
    sk_strs_push(&s.task.networks[1].aliases, &s.task.networks[1].n_aliases,
                 "no good");
    assert_int_equal(sk_service_spec_validate(&s, &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "service \"api\": network \"front\": "
                                    "alias: invalid name \"no good\""));
    sk_schema_free(&sk_service_spec_schema, &s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_kind_round_trips),
        cmocka_unit_test(strict_decoding_names_the_field),
        cmocka_unit_test(absent_objects_keep_their_required_fields),
        cmocka_unit_test(nul_bytes_are_refused),
        cmocka_unit_test(caps_are_enforced_and_named),
        cmocka_unit_test(defaults_follow_swarm),
        cmocka_unit_test(public_view_hides_secrets),
        cmocka_unit_test(ids_are_checked),
        cmocka_unit_test(equality_and_maps),
        cmocka_unit_test(validation),
        cmocka_unit_test(kinds_table),
        cmocka_unit_test(policy_forbid_privileged),
        cmocka_unit_test(policy_require_non_root),
        cmocka_unit_test(policy_require_image_digest),
        cmocka_unit_test(policy_names_the_first_rule_broken),
        cmocka_unit_test(ports_as_typed),
        cmocka_unit_test(network_refs_as_typed),
        cmocka_unit_test(network_specs_and_service_networks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
