/* The JSON codec of every object kind (through the schema engine):
 * round trips, strict decoding with errors that name the field, caps,
 * defaults, the public view, copy/equal/free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
