#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "skiff/err.h"

static void set_and_wrap(void **state)
{
    struct sk_err err;
    sk_err_clear(&err);
    assert_int_equal(err.code, SK_OK);
    assert_int_equal(
        sk_err_set(&err, SK_ENOTFOUND, "image \"%s\" not found", "bb:latest"),
        SK_ENOTFOUND);
    assert_int_equal(sk_err_wrap(&err, "service \"%s\"", "web"), SK_ENOTFOUND);
    assert_string_equal(err.msg,
                        "service \"web\": image \"bb:latest\" not found");
    assert_int_equal(sk_err_set(NULL, SK_EINVAL, "ignored"), SK_EINVAL);
}

static void wrap_truncates_visibly(void **state)
{
    struct sk_err err;
    char big[SK_ERRMSG_SIZE];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sk_err_set(&err, SK_EIO, "%s", big);
    sk_err_wrap(&err, "context");
    assert_int_equal(strlen(err.msg), SK_ERRMSG_SIZE - 1);
    assert_string_equal(err.msg + strlen(err.msg) - 3, "...");
    assert_memory_equal(err.msg, "context: xxx", 12);
}

static void names_and_statuses(void **state)
{
    assert_string_equal(sk_rc_name(SK_ECONFLICT), "conflict");
    assert_int_equal(sk_rc_http_status(SK_ECONFLICT), 409);
    assert_int_equal(sk_rc_http_status(SK_EINVAL), 400);
    assert_int_equal(sk_rc_http_status(SK_ENOTFOUND), 404);
    assert_int_equal(sk_rc_http_status(SK_EAUTH), 401);
    assert_int_equal(sk_rc_http_status(SK_EPERM), 403);
    assert_int_equal(sk_rc_http_status(SK_ETOOBIG), 413);
    assert_string_equal(sk_rc_name((enum sk_rc)999), "internal");
    for (int i = 0; i < SK_RC_COUNT; i++)
        assert_int_equal(sk_rc_from_name(sk_rc_name((enum sk_rc)i)), i);
    assert_int_equal(sk_rc_from_name("bogus"), SK_EINTERNAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(set_and_wrap),
        cmocka_unit_test(wrap_truncates_visibly),
        cmocka_unit_test(names_and_statuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
