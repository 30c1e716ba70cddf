#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "skiff/parse.h"

static void durations(void **state)
{
    static const struct {
        const char *in;
        int64_t ms;
    } ok[] = {
        {"0", 0},         {"300ms", 300},  {"5s", 5000},        {"1.5s", 1500},
        {"1m30s", 90000}, {"2h", 7200000}, {"1h1m1s", 3661000}, {"0.5ms", 1},
        {"10m", 600000}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t ms = -1;
        struct sk_err err;
        assert_true(sk_parse_duration_ms(ok[i].in, &ms, &err));
        assert_int_equal(ms, ok[i].ms);
    }
    static const char *const bad[] = {"",    "5",    "s",         "5x",  "-5s",
                                      "5 s", "1m30", "99999999h", "5ss", ".s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        struct sk_err err;
        assert_false(sk_parse_duration_ms(bad[i], &ms, &err));
        assert_int_equal(ms, 42);
        assert_int_equal(err.code, SK_EINVAL);
        assert_non_null(strstr(err.msg, "invalid duration"));
    }
}

static void sizes(void **state)
{
    static const struct {
        const char *in;
        int64_t bytes;
    } ok[] = {{"512", 512},        {"64k", 65536},      {"512M", 512LL << 20},
              {"1.5G", 3LL << 29}, {"2GiB", 2LL << 30}, {"1kb", 1024},
              {"10b", 10}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t b = -1;
        assert_true(sk_parse_bytes(ok[i].in, &b, NULL));
        assert_int_equal(b, ok[i].bytes);
    }
    static const char *const bad[] = {"",    "M",  "12X",   "-1",
                                      "1.5", "2P", "5GiBx", "99999999T"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t b = 42;
        struct sk_err err;
        assert_false(sk_parse_bytes(bad[i], &b, &err));
        assert_int_equal(b, 42);
        assert_non_null(strstr(err.msg, bad[i]));
    }
}

static void cpus_and_ints(void **state)
{
    int64_t v = 0;
    assert_true(sk_parse_nano_cpus("0.5", &v, NULL));
    assert_int_equal(v, 500000000);
    assert_true(sk_parse_nano_cpus("2", &v, NULL));
    assert_int_equal(v, 2000000000);
    assert_false(sk_parse_nano_cpus("two", &v, NULL));
    assert_false(sk_parse_nano_cpus("5000", &v, NULL));

    struct sk_err err;
    assert_true(sk_parse_int("17", 0, 100, &v, &err));
    assert_int_equal(v, 17);
    assert_true(sk_parse_int("-3", -5, 5, &v, &err));
    assert_int_equal(v, -3);
    assert_false(sk_parse_int("101", 0, 100, &v, &err));
    assert_non_null(strstr(err.msg, "from 0 to 100"));
    assert_false(sk_parse_int("1e3", 0, 10000, &v, &err));
    assert_false(sk_parse_int(" 5", 0, 10, &v, &err));
    assert_false(sk_parse_int("-", 0, 10, &v, &err));
    assert_false(sk_parse_int("99999999999999999999", 0, INT64_MAX, &v, &err));
}

static void format_durations(void **state)
{
    char buf[32];
    sk_format_duration_ms(250, buf, sizeof buf);
    assert_string_equal(buf, "250ms");
    sk_format_duration_ms(1500, buf, sizeof buf);
    assert_string_equal(buf, "1.5s");
    sk_format_duration_ms(90000, buf, sizeof buf);
    assert_string_equal(buf, "1m30s");
}

/* Singular for one: "1 second", not "1 seconds". */
static void format_ages(void **state)
{
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {0, "0 seconds"},         {1000, "1 second"},
        {1999, "1 second"},       {2000, "2 seconds"},
        {119000, "119 seconds"},  {120000, "2 minutes"},
        {7199000, "119 minutes"}, {7200000, "2 hours"},
        {172800000, "2 days"},    {86400000LL * 400, "400 days"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sk_format_age(cases[i].ms, buf, sizeof buf);
        assert_string_equal(buf, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(durations),     cmocka_unit_test(sizes),
        cmocka_unit_test(cpus_and_ints), cmocka_unit_test(format_durations),
        cmocka_unit_test(format_ages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
