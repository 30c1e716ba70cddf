/* Limited log lines (lib/log.c) on a fake clock: a burst prints, the rest
 * is counted by cause and summarised once the window is over, by the next
 * line or by a flush; a quiet limiter prints nothing more. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "skiff/log.h"

static int64_t fake_now;

static int64_t fake_clock(void)
{
    return fake_now;
}

/* stderr goes to a temporary file while a test runs; read and emptied
 * through the file descriptor (stderr is unbuffered). */
static int saved_stderr = -1;

static void capture_start(void)
{
    fflush(stderr);
    FILE *f = tmpfile();
    assert_non_null(f);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fileno(f), STDERR_FILENO);
    fclose(f);
}

/* The captured text since the last call; the caller frees it. */
static char *captured_text(void)
{
    fflush(stderr);
    off_t len = lseek(STDERR_FILENO, 0, SEEK_CUR);
    char *text = calloc(1, (size_t)len + 1);
    assert_int_equal(pread(STDERR_FILENO, text, (size_t)len, 0), len);
    assert_int_equal(ftruncate(STDERR_FILENO, 0), 0);
    lseek(STDERR_FILENO, 0, SEEK_SET);
    return text;
}

static void capture_stop(void)
{
    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
}

/* Fails (visibly: stderr back first) unless want is in text. */
static void expect_in(const char *text, const char *want)
{
    if (strstr(text, want))
        return;
    capture_stop();
    fail_msg("\"%s\" not in:\n%s", want, text);
}

static int count(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

static void flood_is_summarised(void **state)
{
    (void)state;
    static struct sk_log_limit lim =
        SK_LOG_LIMIT(SK_LOG_INFO, "api", "refused connections");
    sk_log_set_clock(fake_clock);
    fake_now = 1000000;
    capture_start();

    for (int i = 0; i < 5000; i++)
        sk_log_limited(&lim, i % 5 ? SK_ETIMEDOUT : SK_EUNAVAIL,
                       "refused 10.0.0.%d:1: cause %d", i % 200, i);
    char *text = captured_text();
    assert_int_equal(count(text, "\n"), SK_LOG_LIMIT_BURST);
    assert_non_null(strstr(text, "info  [api] refused 10.0.0.0:1: cause 0\n"));
    assert_non_null(strstr(text, "cause 9\n"));
    free(text);

    /* Not before the window is over. */
    fake_now += SK_LOG_LIMIT_WINDOW_MS - 1;
    sk_log_flush_limited();
    text = captured_text();
    assert_string_equal(text, "");
    free(text);

    fake_now += 1;
    sk_log_flush_limited();
    text = captured_text();
    assert_int_equal(count(text, "\n"), 1);
    expect_in(text, "info  [api] refused connections: 4990 more in the last "
                    "10 s (998 unavailable, 3992 timeout); the last: "
                    "refused 10.0.0.199:1: cause 4999\n");
    free(text);

    /* Quiet now: nothing more, and the next line prints at once. */
    fake_now += 3 * SK_LOG_LIMIT_WINDOW_MS;
    sk_log_flush_limited();
    sk_log_limited(&lim, SK_EAUTH, "refused 10.0.0.1:2: no");
    text = captured_text();
    assert_int_equal(count(text, "\n"), 1);
    assert_non_null(strstr(text, "refused 10.0.0.1:2: no\n"));
    free(text);
    capture_stop();
    sk_log_set_clock(NULL);
}

/* Without a flush, the next line after the window brings the summary. */
static void summary_with_the_next_line(void **state)
{
    (void)state;
    static struct sk_log_limit lim =
        SK_LOG_LIMIT(SK_LOG_WARN, "raft", "refused Raft connections");
    sk_log_set_clock(fake_clock);
    fake_now = 5000000;
    capture_start();
    for (int i = 0; i < SK_LOG_LIMIT_BURST + 3; i++)
        sk_log_limited(&lim, SK_EAUTH, "raft: no %d", i);
    fake_now += SK_LOG_LIMIT_WINDOW_MS;
    sk_log_limited(&lim, SK_EAUTH, "raft: again");
    char *text = captured_text();
    assert_int_equal(count(text, "\n"), SK_LOG_LIMIT_BURST + 2);
    const char *sum = strstr(text, "warn  [raft] refused Raft connections: 3 "
                                   "more in the last 10 s (3 unauthenticated)"
                                   "; the last: raft: no 12\n");
    const char *again = strstr(text, "raft: again\n");
    assert_non_null(sum);
    assert_non_null(again);
    assert_true(sum < again);
    free(text);

    /* Below the log level: nothing, not even counted. */
    static struct sk_log_limit quiet =
        SK_LOG_LIMIT(SK_LOG_DEBUG, "api", "quiet");
    for (int i = 0; i < 50; i++)
        sk_log_limited(&quiet, SK_EAUTH, "x");
    fake_now += SK_LOG_LIMIT_WINDOW_MS;
    sk_log_flush_limited();
    text = captured_text();
    assert_int_equal(count(text, "quiet"), 0);
    assert_int_equal(count(text, "\n"), 0);
    free(text);
    capture_stop();
    sk_log_set_clock(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(flood_is_summarised),
        cmocka_unit_test(summary_with_the_next_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
