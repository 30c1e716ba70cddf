#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "skiff/flags.h"
#include "skiff/parse.h"

static const char *const modes[] = {"replicated", "global", NULL};

enum {
    F_QUIET,
    F_ALL,
    F_NAME,
    F_LABEL,
    F_REPLICAS,
    F_OFFSET,
    F_GRACE,
    F_MEMORY,
    F_CPU,
    F_MODE,
    F_COUNT
};

static const struct sk_flag table[F_COUNT] = {
    [F_QUIET] = {.name = "quiet", .short_name = 'q', .type = SK_FLAG_BOOL},
    [F_ALL] = {.name = "all", .short_name = 'a', .type = SK_FLAG_BOOL},
    [F_NAME] = {.name = "name", .type = SK_FLAG_STRING},
    [F_LABEL] = {.name = "label-add",
                 .short_name = 'l',
                 .type = SK_FLAG_STRINGS},
    [F_REPLICAS] = {.name = "replicas",
                    .short_name = 'n',
                    .type = SK_FLAG_INT,
                    .min = 0,
                    .max = 100000},
    [F_OFFSET] = {.name = "offset", .type = SK_FLAG_INT},
    [F_GRACE] = {.name = "stop-grace-period", .type = SK_FLAG_DURATION},
    [F_MEMORY] = {.name = "limit-memory", .type = SK_FLAG_BYTES},
    [F_CPU] = {.name = "limit-cpu", .type = SK_FLAG_CPUS},
    [F_MODE] = {.name = "mode", .type = SK_FLAG_ENUM, .choices = modes},
};

struct fx {
    struct sk_flag flags[F_COUNT];
    struct sk_flags_result res;
    struct sk_err err;
    char *argv[32];
    int argc;
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    memcpy(fx->flags, table, sizeof table);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    sk_flags_free(fx->flags, F_COUNT, &fx->res);
    free(fx);
    return 0;
}

/* Parses the NULL-terminated arguments, freeing the previous parse first. */
static enum sk_rc run(struct fx *fx, int stop, ...)
{
    sk_flags_free(fx->flags, F_COUNT, &fx->res);
    fx->argc = 0;
    memset(&fx->err, 0, sizeof fx->err);
    va_list ap;
    va_start(ap, stop);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        assert_true(fx->argc < 32);
        fx->argv[fx->argc++] = (char *)a;
    }
    va_end(ap);
    return sk_flags_parse(fx->flags, F_COUNT, fx->argc, fx->argv, stop != 0,
                          &fx->res, &fx->err);
}

#define PARSE_OK(fx, stop, ...)                                                \
    assert_int_equal(run(fx, stop, __VA_ARGS__, NULL), SK_OK)

/* Parsing fails with SK_EINVAL and exactly this message. */
#define PARSE_ERR(fx, want, ...)                                               \
    do {                                                                       \
        assert_int_equal(run(fx, false, __VA_ARGS__, NULL), SK_EINVAL);        \
        assert_int_equal((fx)->err.code, SK_EINVAL);                           \
        assert_string_equal((fx)->err.msg, want);                              \
    } while (0)

static void assert_positional(const struct fx *fx, size_t n, ...)
{
    assert_int_equal(fx->res.n_positional, n);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(fx->res.positional[i], va_arg(ap, const char *));
    va_end(ap);
}

static void long_flags(void **state)
{
    struct fx *fx = *state;
    struct sk_flag *f = fx->flags;
    PARSE_OK(fx, false, "--name", "web", "--label-add", "a=b",
             "--label-add=c=d", "--replicas=3", "--offset", "-7",
             "--stop-grace-period", "1m30s", "--limit-memory=512M",
             "--limit-cpu", "0.5", "--mode", "global");

    assert_true(f[F_NAME].set);
    assert_string_equal(f[F_NAME].str, "web");
    /* Results point into argv. */
    assert_ptr_equal(f[F_NAME].str, fx->argv[1]);
    assert_ptr_equal(f[F_LABEL].strs[1], fx->argv[4] + strlen("--label-add="));

    assert_true(f[F_LABEL].set);
    assert_int_equal(f[F_LABEL].n_strs, 2);
    assert_string_equal(f[F_LABEL].strs[0], "a=b");
    assert_string_equal(f[F_LABEL].strs[1], "c=d");

    assert_true(f[F_REPLICAS].set);
    assert_int_equal(f[F_REPLICAS].num, 3);
    assert_string_equal(f[F_REPLICAS].str, "3");
    assert_int_equal(f[F_OFFSET].num, -7);
    assert_int_equal(f[F_GRACE].num, 90000);
    assert_string_equal(f[F_GRACE].str, "1m30s");
    assert_int_equal(f[F_MEMORY].num, 512LL << 20);
    assert_int_equal(f[F_CPU].num, 500000000);
    assert_true(f[F_MODE].set);
    assert_string_equal(f[F_MODE].str, "global");
    assert_int_equal(f[F_MODE].num, 1);

    assert_false(f[F_QUIET].set);
    assert_false(f[F_QUIET].on);
    assert_false(f[F_ALL].set);
    assert_int_equal(fx->res.n_positional, 0);
    assert_null(fx->res.positional);

    PARSE_OK(fx, false, "--mode=replicated");
    assert_int_equal(f[F_MODE].num, 0);
    assert_string_equal(f[F_MODE].str, "replicated");

    /* Any int64 when min and max are both 0. */
    PARSE_OK(fx, false, "--offset", "-9223372036854775808");
    assert_int_equal(f[F_OFFSET].num, INT64_MIN);
    PARSE_OK(fx, false, "--offset=9223372036854775807");
    assert_int_equal(f[F_OFFSET].num, INT64_MAX);

    PARSE_OK(fx, false, "--replicas", "100000");
    assert_int_equal(f[F_REPLICAS].num, 100000);

    /* No arguments at all. */
    assert_int_equal(run(fx, false, NULL), SK_OK);
    assert_int_equal(fx->res.n_positional, 0);
}

static void short_flags(void **state)
{
    struct fx *fx = *state;
    struct sk_flag *f = fx->flags;

    PARSE_OK(fx, false, "-qa");
    assert_true(f[F_QUIET].set && f[F_QUIET].on);
    assert_true(f[F_ALL].set && f[F_ALL].on);

    PARSE_OK(fx, false, "-q");
    assert_true(f[F_QUIET].on);
    assert_false(f[F_ALL].set);

    PARSE_OK(fx, false, "-n", "3");
    assert_int_equal(f[F_REPLICAS].num, 3);
    assert_int_equal(fx->res.n_positional, 0);

    PARSE_OK(fx, false, "-n3");
    assert_int_equal(f[F_REPLICAS].num, 3);
    assert_string_equal(f[F_REPLICAS].str, "3");

    PARSE_OK(fx, false, "-qn42");
    assert_true(f[F_QUIET].on);
    assert_int_equal(f[F_REPLICAS].num, 42);

    PARSE_OK(fx, false, "-aqn", "7", "rest");
    assert_true(f[F_QUIET].on && f[F_ALL].on);
    assert_int_equal(f[F_REPLICAS].num, 7);
    assert_positional(fx, 1, "rest");

    PARSE_OK(fx, false, "-n=5");
    assert_int_equal(f[F_REPLICAS].num, 5);

    PARSE_OK(fx, false, "-la=b", "-l", "c=d");
    assert_int_equal(f[F_LABEL].n_strs, 2);
    assert_string_equal(f[F_LABEL].strs[0], "a=b");
    assert_string_equal(f[F_LABEL].strs[1], "c=d");
    /* The 'a' is part of the value, not the -a flag. */
    assert_false(f[F_ALL].set);

    PARSE_OK(fx, false, "-q=false");
    assert_true(f[F_QUIET].set);
    assert_false(f[F_QUIET].on);

    /* The value of a short flag is the rest of the cluster. */
    PARSE_ERR(fx,
              "--replicas: invalid number \"q\": want an integer from 0 "
              "to 100000",
              "-nq");
    PARSE_ERR(fx, "flag --replicas needs a value", "-qn");
    PARSE_ERR(fx, "flag --replicas needs a value", "-n");
}

static void bools(void **state)
{
    struct fx *fx = *state;
    struct sk_flag *f = fx->flags;

    PARSE_OK(fx, false, "--quiet");
    assert_true(f[F_QUIET].set && f[F_QUIET].on);

    PARSE_OK(fx, false, "--quiet=true");
    assert_true(f[F_QUIET].set && f[F_QUIET].on);
    assert_string_equal(f[F_QUIET].str, "true");

    PARSE_OK(fx, false, "--quiet=false");
    assert_true(f[F_QUIET].set);
    assert_false(f[F_QUIET].on);
    assert_string_equal(f[F_QUIET].str, "false");

    /* A bool never takes the next argument. */
    PARSE_OK(fx, false, "--quiet", "false");
    assert_true(f[F_QUIET].on);
    assert_positional(fx, 1, "false");

    PARSE_ERR(fx, "--quiet: invalid value \"yes\": want true or false",
              "--quiet=yes");
    PARSE_ERR(fx, "--quiet: invalid value \"\": want true or false",
              "--quiet=");
    PARSE_ERR(fx, "--all: invalid value \"1\": want true or false", "-a=1");
}

static void unknown_flags(void **state)
{
    struct fx *fx = *state;

    PARSE_ERR(fx, "unknown flag --replica (did you mean --replicas?)",
              "--replica", "3");
    PARSE_ERR(fx, "unknown flag --replic (did you mean --replicas?)",
              "--replic=3");
    PARSE_ERR(fx, "unknown flag --relpicas (did you mean --replicas?)",
              "--relpicas", "3");
    PARSE_ERR(fx, "unknown flag --nmae (did you mean --name?)", "--nmae", "x");
    PARSE_ERR(fx, "unknown flag --limit-cpus (did you mean --limit-cpu?)",
              "--limit-cpus=1");
    /* Distance 3 is too far to guess. */
    PARSE_ERR(fx, "unknown flag --repli", "--repli", "3");
    PARSE_ERR(fx, "unknown flag --xyz", "--xyz");
    PARSE_ERR(fx, "unknown flag --=3", "--=3");

    PARSE_ERR(fx, "unknown flag -x", "-x");
    PARSE_ERR(fx, "unknown flag -x in -qxa", "-qxa");
    PARSE_ERR(fx, "unknown flag -r in -replicas (did you mean --replicas?)",
              "-replicas", "3");

    /* Flags are case-sensitive. */
    PARSE_ERR(fx, "unknown flag --Name (did you mean --name?)", "--Name", "x");
    PARSE_ERR(fx, "unknown flag -Q", "-Q");
}

static void missing_values(void **state)
{
    struct fx *fx = *state;
    PARSE_ERR(fx, "flag --name needs a value", "--name");
    PARSE_ERR(fx, "flag --mode needs a value", "-q", "--mode");
    PARSE_ERR(fx, "flag --label-add needs a value", "--label-add", "a",
              "--label-add");
}

/* The prefix plus exactly what the value parser says about the value. */
static void assert_wrapped(const struct fx *fx, const char *flag,
                           bool (*parse)(const char *, int64_t *,
                                         struct sk_err *),
                           const char *value)
{
    struct sk_err why;
    int64_t v;
    assert_false(parse(value, &v, &why));
    char want[SK_ERRMSG_SIZE + 64];
    snprintf(want, sizeof want, "--%s: %s", flag, why.msg);
    assert_int_equal(fx->err.code, SK_EINVAL);
    assert_string_equal(fx->err.msg, want);
}

static void bad_values(void **state)
{
    struct fx *fx = *state;

    PARSE_ERR(fx,
              "--replicas: invalid number \"x\": want an integer from 0 "
              "to 100000",
              "--replicas", "x");
    PARSE_ERR(fx,
              "--replicas: invalid number \"100001\": want an integer "
              "from 0 to 100000",
              "--replicas=100001");
    PARSE_ERR(fx,
              "--replicas: invalid number \"-1\": want an integer from 0 "
              "to 100000",
              "-n", "-1");
    PARSE_ERR(fx,
              "--offset: invalid number \"1.5\": want an integer from "
              "-9223372036854775808 to 9223372036854775807",
              "--offset", "1.5");

    assert_int_equal(run(fx, false, "--stop-grace-period", "5", NULL),
                     SK_EINVAL);
    assert_wrapped(fx, "stop-grace-period", sk_parse_duration_ms, "5");
    assert_int_equal(run(fx, false, "--limit-memory=12X", NULL), SK_EINVAL);
    assert_wrapped(fx, "limit-memory", sk_parse_bytes, "12X");
    assert_int_equal(run(fx, false, "--limit-cpu", "two", NULL), SK_EINVAL);
    assert_wrapped(fx, "limit-cpu", sk_parse_nano_cpus, "two");

    PARSE_ERR(fx, "--mode: want one of replicated, global, got \"everywhere\"",
              "--mode", "everywhere");
    PARSE_ERR(fx, "--mode: want one of replicated, global, got \"Global\"",
              "--mode=Global");
}

static void given_twice(void **state)
{
    struct fx *fx = *state;
    struct sk_flag *f = fx->flags;

    PARSE_ERR(fx, "flag --name given twice", "--name", "a", "--name", "b");
    PARSE_ERR(fx, "flag --name given twice", "--name=a", "--name=a");
    PARSE_ERR(fx, "flag --quiet given twice", "-q", "--quiet");
    PARSE_ERR(fx, "flag --quiet given twice", "-qq");
    PARSE_ERR(fx, "flag --quiet given twice", "--quiet=false", "--quiet");
    PARSE_ERR(fx, "flag --replicas given twice", "--replicas", "1", "-n2");
    PARSE_ERR(fx, "flag --mode given twice", "--mode", "global", "--mode",
              "global");

    PARSE_OK(fx, false, "--label-add", "a", "-lb", "--label-add=c");
    assert_int_equal(f[F_LABEL].n_strs, 3);
    assert_string_equal(f[F_LABEL].strs[0], "a");
    assert_string_equal(f[F_LABEL].strs[1], "b");
    assert_string_equal(f[F_LABEL].strs[2], "c");
}

static void dash_and_empty_values(void **state)
{
    struct fx *fx = *state;
    struct sk_flag *f = fx->flags;

    PARSE_OK(fx, false, "-", "-q");
    assert_positional(fx, 1, "-");
    assert_true(f[F_QUIET].on);

    PARSE_OK(fx, false, "--name=");
    assert_true(f[F_NAME].set);
    assert_string_equal(f[F_NAME].str, "");

    PARSE_OK(fx, false, "--name", "");
    assert_true(f[F_NAME].set);
    assert_string_equal(f[F_NAME].str, "");

    PARSE_OK(fx, false, "--label-add=");
    assert_int_equal(f[F_LABEL].n_strs, 1);
    assert_string_equal(f[F_LABEL].strs[0], "");

    /* A value may start with '-'. */
    PARSE_OK(fx, false, "--name", "-x");
    assert_string_equal(f[F_NAME].str, "-x");
    PARSE_OK(fx, false, "--name", "--", "x");
    assert_string_equal(f[F_NAME].str, "--");
    assert_positional(fx, 1, "x");

    PARSE_ERR(fx,
              "--replicas: invalid number \"\": want an integer from 0 "
              "to 100000",
              "--replicas=");
    PARSE_ERR(fx,
              "--replicas: invalid number \"\": want an integer from 0 "
              "to 100000",
              "-n=");
    PARSE_ERR(fx, "--mode: want one of replicated, global, got \"\"",
              "--mode=");
    assert_int_equal(run(fx, false, "--stop-grace-period=", NULL), SK_EINVAL);
    assert_wrapped(fx, "stop-grace-period", sk_parse_duration_ms, "");
    assert_int_equal(run(fx, false, "--limit-memory", "", NULL), SK_EINVAL);
    assert_wrapped(fx, "limit-memory", sk_parse_bytes, "");
    assert_int_equal(run(fx, false, "--limit-cpu=", NULL), SK_EINVAL);
    assert_wrapped(fx, "limit-cpu", sk_parse_nano_cpus, "");
}

static void stop_at_positional(void **state)
{
    struct fx *fx = *state;
    struct sk_flag *f = fx->flags;

    PARSE_OK(fx, true, "--name", "web", "IMAGE", "sh", "-c", "x");
    assert_string_equal(f[F_NAME].str, "web");
    assert_positional(fx, 4, "IMAGE", "sh", "-c", "x");

    PARSE_OK(fx, true, "-q", "IMAGE", "--all", "-n", "3", "--", "x");
    assert_true(f[F_QUIET].on);
    assert_false(f[F_ALL].set);
    assert_false(f[F_REPLICAS].set);
    assert_positional(fx, 6, "IMAGE", "--all", "-n", "3", "--", "x");

    /* "-" is the first positional argument, so it ends the flags too. */
    PARSE_OK(fx, true, "-", "-q");
    assert_false(f[F_QUIET].set);
    assert_positional(fx, 2, "-", "-q");

    /* Without it, flags and arguments mix, and "-c" is a flag. */
    PARSE_ERR(fx, "unknown flag -c", "--name", "web", "IMAGE", "sh", "-c", "x");
    PARSE_OK(fx, false, "a", "--quiet", "b", "-n", "2", "c");
    assert_true(f[F_QUIET].on);
    assert_int_equal(f[F_REPLICAS].num, 2);
    assert_positional(fx, 3, "a", "b", "c");
}

static void double_dash(void **state)
{
    struct fx *fx = *state;
    struct sk_flag *f = fx->flags;

    PARSE_OK(fx, false, "--quiet", "--", "--name", "x", "-q");
    assert_true(f[F_QUIET].on);
    assert_false(f[F_NAME].set);
    assert_positional(fx, 3, "--name", "x", "-q");

    /* Only the first "--" ends the flags; later ones are arguments. */
    PARSE_OK(fx, false, "a", "--", "--", "b");
    assert_positional(fx, 3, "a", "--", "b");

    PARSE_OK(fx, true, "--", "-q", "--all");
    assert_false(f[F_QUIET].set);
    assert_positional(fx, 2, "-q", "--all");

    PARSE_OK(fx, true, "--");
    assert_int_equal(fx->res.n_positional, 0);
}

static void assert_all_reset(const struct fx *fx)
{
    for (size_t i = 0; i < F_COUNT; i++) {
        const struct sk_flag *f = &fx->flags[i];
        assert_false(f->set);
        assert_false(f->on);
        assert_null(f->str);
        assert_int_equal(f->num, 0);
        assert_null(f->strs);
        assert_int_equal(f->n_strs, 0);
    }
}

static void results_reset(void **state)
{
    struct fx *fx = *state;
    PARSE_OK(fx, false, "-qa", "--name", "web", "-la", "-lb", "-n", "3",
             "--offset", "9", "--stop-grace-period", "5s", "--limit-memory",
             "1k", "--limit-cpu", "2", "--mode", "global", "pos");
    for (size_t i = 0; i < F_COUNT; i++)
        assert_true(fx->flags[i].set);
    assert_int_equal(fx->res.n_positional, 1);

    PARSE_OK(fx, false, "only");
    assert_all_reset(fx);
    assert_positional(fx, 1, "only");

    /* After a failed parse too, and freeing it is safe. */
    PARSE_ERR(fx, "unknown flag --bogus", "-la", "x", "--bogus");
    sk_flags_free(fx->flags, F_COUNT, &fx->res);
    assert_int_equal(run(fx, false, NULL), SK_OK);
    assert_all_reset(fx);
    assert_null(fx->res.positional);
    assert_int_equal(fx->res.n_positional, 0);

    /* Freeing twice and freeing nothing are both fine. */
    sk_flags_free(fx->flags, F_COUNT, &fx->res);
    sk_flags_free(fx->flags, F_COUNT, &fx->res);
    sk_flags_free(NULL, 0, NULL);
}

static void many_values(void **state)
{
    struct fx *fx = *state;
    char *argv[200];
    char store[100][8];
    for (int i = 0; i < 100; i++) {
        snprintf(store[i], sizeof store[i], "v%d", i);
        argv[2 * i] = i % 2 ? "-l" : "--label-add";
        argv[2 * i + 1] = store[i];
    }
    assert_int_equal(sk_flags_parse(fx->flags, F_COUNT, 200, argv, false,
                                    &fx->res, &fx->err),
                     SK_OK);
    assert_int_equal(fx->flags[F_LABEL].n_strs, 100);
    for (int i = 0; i < 100; i++)
        assert_ptr_equal(fx->flags[F_LABEL].strs[i], store[i]);

    sk_flags_free(fx->flags, F_COUNT, &fx->res);
    for (int i = 0; i < 100; i++)
        argv[i] = store[i];
    assert_int_equal(
        sk_flags_parse(fx->flags, F_COUNT, 100, argv, true, &fx->res, &fx->err),
        SK_OK);
    assert_int_equal(fx->res.n_positional, 100);
    for (int i = 0; i < 100; i++)
        assert_ptr_equal(fx->res.positional[i], store[i]);
}

static void null_err(void **state)
{
    struct fx *fx = *state;
    char *argv[] = {"--replica", "--name"};
    assert_int_equal(
        sk_flags_parse(fx->flags, F_COUNT, 1, argv, false, &fx->res, NULL),
        SK_EINVAL);
    assert_int_equal(
        sk_flags_parse(fx->flags, F_COUNT, 1, argv + 1, false, &fx->res, NULL),
        SK_EINVAL);
}

static void flag_get(void **state)
{
    struct fx *fx = *state;
    assert_ptr_equal(sk_flag_get(fx->flags, F_COUNT, "replicas"),
                     &fx->flags[F_REPLICAS]);
    assert_ptr_equal(sk_flag_get(fx->flags, F_COUNT, "label-add"),
                     &fx->flags[F_LABEL]);
    assert_null(sk_flag_get(fx->flags, F_COUNT, "replica"));
    assert_null(sk_flag_get(fx->flags, F_COUNT, "replicass"));
    assert_null(sk_flag_get(fx->flags, F_COUNT, ""));
    assert_null(sk_flag_get(NULL, 0, "replicas"));

    PARSE_OK(fx, false, "-n", "12");
    assert_int_equal(sk_flag_get(fx->flags, F_COUNT, "replicas")->num, 12);
}

static char *usage_of(const struct sk_flag *flags, size_t n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    sk_flags_usage(f, flags, n);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(strlen(text), len);
    return text;
}

static void usage(void **state)
{
    static const struct sk_flag flags[] = {
        {.name = "quiet",
         .short_name = 'q',
         .type = SK_FLAG_BOOL,
         .help = "Only display IDs"},
        {.name = "name",
         .type = SK_FLAG_STRING,
         .metavar = "NAME",
         .help = "Service name"},
        {.name = "replicas",
         .short_name = 'n',
         .type = SK_FLAG_INT,
         .help = "Number of tasks"},
        {.name = "mode",
         .type = SK_FLAG_ENUM,
         .choices = modes,
         .help = "Service mode"},
        {.name = "label-add", .type = SK_FLAG_STRINGS},
        {.name = "update-delay",
         .type = SK_FLAG_DURATION,
         .help = "Delay between updates"},
    };
    char *text = usage_of(flags, sizeof flags / sizeof flags[0]);
    assert_string_equal(text,
                        "  -q, --quiet                   Only display IDs\n"
                        "      --name NAME               Service name\n"
                        "  -n, --replicas N              Number of tasks\n"
                        "      --mode replicated|global  Service mode\n"
                        "      --label-add VALUE\n"
                        "      --update-delay DURATION   Delay between "
                        "updates\n");
    free(text);

    /* A very long flag gets two spaces and does not widen the column. */
    static const struct sk_flag long_one[] = {
        {.name = "x", .type = SK_FLAG_BOOL, .help = "X"},
        {.name = "a-flag-with-a-name-that-goes-on-and-on",
         .type = SK_FLAG_BYTES,
         .help = "Long"},
    };
    text = usage_of(long_one, 2);
    assert_string_equal(text,
                        "      --x  X\n"
                        "      --a-flag-with-a-name-that-goes-on-and-on BYTES"
                        "  Long\n");
    free(text);

    text = usage_of(NULL, 0);
    assert_string_equal(text, "");
    free(text);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(long_flags),
        T(short_flags),
        T(bools),
        T(unknown_flags),
        T(missing_values),
        T(bad_values),
        T(given_twice),
        T(dash_and_empty_values),
        T(stop_at_positional),
        T(double_dash),
        T(results_reset),
        T(many_values),
        T(null_err),
        T(flag_get),
        T(usage),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
