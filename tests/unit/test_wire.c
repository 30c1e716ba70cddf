/* The agent <-> manager messages (skiff/wire.h): round trips through the
 * one codec, strict decoding with errors that name the field, caps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "skiff/wire.h"

#define ID1 "aaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID2 "bbbbbbbbbbbbbbbbbbbbbbbbba"

static void decode_ok(const struct sk_schema *s, const char *text, void *out)
{
    struct sk_err err;
    if (sk_wire_decode(s, text, strlen(text), out, &err) != SK_OK)
        fail_msg("%s: %s", s->name, err.msg);
}

static void decode_fails(const struct sk_schema *s, const char *text,
                         const char *want)
{
    char buf[4096];
    struct sk_err err;
    memset(buf, 0x5a, sizeof buf);
    assert_true(s->size <= sizeof buf);
    assert_int_equal(sk_wire_decode(s, text, strlen(text), buf, &err),
                     SK_EINVAL);
    if (!strstr(err.msg, want))
        fail_msg("decoding %s: want \"%s\" in \"%s\"", text, want, err.msg);
    /* A failed decode owns nothing: the struct is zero. */
    for (size_t i = 0; i < s->size; i++)
        assert_int_equal(buf[i], 0);
}

static void session_message_round_trips(void **state)
{
    const char *text =
        "{\"type\":\"assignments\",\"full\":true,\"tasks\":[{\"task\":{\"id\":"
        "\"" ID1 "\",\"service_id\":\"" ID2 "\",\"slot\":2,\"spec\":{"
        "\"container\":{\"image\":\"bb\"}}},\"service_name\":\"web\","
        "\"ports\":[{\"target\":80,\"published\":8080,\"mode\":\"host\"}]}],"
        "\"removed\":[\"" ID2 "\"]}";
    struct sk_session_msg m, back;
    decode_ok(&sk_session_msg_schema, text, &m);
    assert_int_equal(m.type, SK_SESSION_ASSIGNMENTS);
    assert_true(m.full);
    assert_int_equal(m.n_tasks, 1);
    assert_string_equal(m.tasks[0].task.meta.id, ID1);
    assert_string_equal(m.tasks[0].service_name, "web");
    assert_int_equal(m.tasks[0].n_ports, 1);
    assert_int_equal(m.tasks[0].ports[0].published, 8080);
    assert_int_equal(m.n_removed, 1);
    size_t len;
    char *enc = sk_wire_encode(&sk_session_msg_schema, &m, true, &len);
    assert_int_equal(enc[len - 1], '\n');
    decode_ok(&sk_session_msg_schema, enc, &back);
    assert_true(sk_schema_equal(&sk_session_msg_schema, &m, &back));
    free(enc);
    sk_schema_free(&sk_session_msg_schema, &m);
    sk_schema_free(&sk_session_msg_schema, &back);
}

static void reports_are_strict(void **state)
{
    struct sk_task_reports r;
    decode_ok(
        &sk_task_reports_schema,
        "{\"tasks\":[{\"id\":\"" ID1 "\",\"state\":\"running\","
        "\"health\":\"healthy\",\"exit_code\":0,\"container_id\":\"c1\"}]}",
        &r);
    assert_int_equal(r.n_tasks, 1);
    assert_int_equal(r.tasks[0].state, SK_TASK_RUNNING);
    assert_int_equal(r.tasks[0].health, SK_HEALTH_HEALTHY);
    struct sk_err err;
    assert_int_equal(sk_task_report_validate(&r.tasks[0], &err), SK_OK);
    r.tasks[0].state = SK_TASK_REMOVE;
    assert_int_equal(sk_task_report_validate(&r.tasks[0], &err), SK_EINVAL);
    assert_non_null(strstr(err.msg, "remove"));
    r.tasks[0].state = SK_TASK_PENDING;
    assert_int_equal(sk_task_report_validate(&r.tasks[0], &err), SK_EINVAL);
    sk_schema_free(&sk_task_reports_schema, &r);

    decode_fails(&sk_task_reports_schema, "{}", "tasks");
    decode_fails(&sk_task_reports_schema,
                 "{\"tasks\":[{\"state\":\"running\"}]}", "tasks[0].id");
    /* An empty ID is an unset one (found by fuzz_wire: it did not encode
     * back). */
    decode_fails(&sk_task_reports_schema,
                 "{\"tasks\":[{\"id\":\"\",\"state\":\"running\"}]}",
                 "tasks[0].id: required");
    decode_fails(&sk_task_reports_schema,
                 "{\"tasks\":[{\"id\":\"" ID1 "\",\"state\":\"dancing\"}]}",
                 "tasks[0].state");
    decode_fails(&sk_task_reports_schema,
                 "{\"tasks\":[{\"id\":\"" ID1
                 "\",\"state\":\"running\",\"healthy\":true}]}",
                 "unknown field \"healthy\"");
    decode_fails(&sk_task_reports_schema,
                 "{\"tasks\":[{\"id\":\"" ID1
                 "\",\"state\":\"failed\",\"exit_code\":\"x\"}]}",
                 "tasks[0].exit_code");
    decode_fails(&sk_task_reports_schema, "{\"tasks\":", "not JSON");
}

static void join_body_names_fields(void **state)
{
    struct sk_join_body j;
    decode_ok(&sk_join_body_schema,
              "{\"token\":\"SKF1-x\",\"csr\":\"pem\",\"description\":{"
              "\"hostname\":\"h1\",\"addr\":\"10.77.0.11\",\"nano_cpus\":"
              "2000000000}}",
              &j);
    assert_string_equal(j.description.hostname, "h1");
    assert_int_equal(j.description.nano_cpus, 2000000000);
    sk_schema_free(&sk_join_body_schema, &j);
    decode_fails(&sk_join_body_schema, "{\"csr\":\"pem\",\"description\":{}}",
                 "token");
    decode_fails(&sk_join_body_schema,
                 "{\"token\":\"t\",\"csr\":\"p\",\"description\":{"
                 "\"nano_cpus\":\"two\"}}",
                 "description.nano_cpus");
    decode_fails(&sk_join_body_schema,
                 "{\"token\":\"t\",\"csr\":\"p\",\"description\":{},"
                 "\"role\":\"manager\"}",
                 "unknown field \"role\"");
    /* The message is named once, whether the error is about it or about
     * one of its fields. */
    struct sk_err err;
    const char *text = "{\"csr\":\"p\",\"token\":\"t\",\"x\":1}";
    assert_int_equal(
        sk_wire_decode(&sk_join_body_schema, text, strlen(text), &j, &err),
        SK_EINVAL);
    assert_string_equal(err.msg, "join request: unknown field \"x\"");
    text = "{\"csr\":\"p\"}";
    assert_int_equal(
        sk_wire_decode(&sk_join_body_schema, text, strlen(text), &j, &err),
        SK_EINVAL);
    assert_string_equal(err.msg, "join request: token: required");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(session_message_round_trips),
        cmocka_unit_test(reports_are_strict),
        cmocka_unit_test(join_body_names_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
