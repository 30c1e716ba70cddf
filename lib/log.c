#include "skiff/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum sk_log_level current_level = SK_LOG_INFO;
static bool trace_on;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void sk_log_set_level(enum sk_log_level level)
{
    current_level = level;
}

enum sk_log_level sk_log_get_level(void)
{
    return current_level;
}

bool sk_log_level_parse(const char *s, enum sk_log_level *out_level)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out_level = (enum sk_log_level)i;
            return true;
        }
    }
    return false;
}

void sk_log_init_from_env(void)
{
    const char *t = getenv("SKIFF_TRACE");
    trace_on = t && *t && strcmp(t, "0") != 0;
}

bool sk_trace_enabled(void)
{
    return trace_on;
}

static void stamp(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

void sk_log(enum sk_log_level level, const char *module, const char *fmt, ...)
{
    if (level < current_level)
        return;
    char ts[40], line[2048];
    stamp(ts, sizeof ts);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One fprintf per line keeps lines whole when several processes share a
     * log file. */
    fprintf(stderr, "%s %-5s [%s] %s\n", ts, level_names[level], module, line);
}

void sk_trace(const char *kind, const char *id, const char *from,
              const char *to, const char *why)
{
    if (!trace_on)
        return;
    char ts[40];
    stamp(ts, sizeof ts);
    fprintf(stderr, "%s TRACE [%s] %s: %s -> %s%s%s%s\n", ts, kind, id, from,
            to, why ? " (" : "", why ? why : "", why ? ")" : "");
}

/* ---- Limited lines ---- */

/* Limiters with a window open, so that flushing finds them. */
static struct sk_log_limit *open_limits;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t (*limit_clock)(void) = mono_ms;

void sk_log_set_clock(int64_t (*now_ms)(void))
{
    limit_clock = now_ms ? now_ms : mono_ms;
}

static void limit_unlist(struct sk_log_limit *lim)
{
    for (struct sk_log_limit **p = &open_limits; *p; p = &(*p)->next)
        if (*p == lim) {
            *p = lim->next;
            break;
        }
    lim->listed = false;
    lim->next = NULL;
}

/* Ends the window: the summary, if anything was held back. */
static void limit_close_window(struct sk_log_limit *lim)
{
    if (lim->suppressed) {
        char causes[256] = "";
        size_t n = 0;
        for (int i = 0; i < SK_RC_COUNT && n < sizeof causes; i++) {
            if (!lim->by_cause[i])
                continue;
            int w = snprintf(causes + n, sizeof causes - n, "%s%lu %s",
                             n ? ", " : "", lim->by_cause[i],
                             sk_rc_name((enum sk_rc)i));
            if (w > 0)
                n += (size_t)w;
        }
        sk_log(lim->level, lim->module,
               "%s: %lu more in the last %d s (%s); the last: %s", lim->what,
               lim->suppressed, SK_LOG_LIMIT_WINDOW_MS / 1000, causes,
               lim->last);
    }
    lim->window_end_ms = 0;
    lim->printed = 0;
    lim->suppressed = 0;
    memset(lim->by_cause, 0, sizeof lim->by_cause);
    limit_unlist(lim);
}

void sk_log_limited(struct sk_log_limit *lim, enum sk_rc cause, const char *fmt,
                    ...)
{
    if (lim->level < current_level)
        return;
    int64_t now = limit_clock();
    if (lim->window_end_ms && now >= lim->window_end_ms)
        limit_close_window(lim);
    if (!lim->window_end_ms) {
        lim->window_end_ms = now + SK_LOG_LIMIT_WINDOW_MS;
        if (!lim->listed) {
            lim->next = open_limits;
            open_limits = lim;
            lim->listed = true;
        }
    }
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (lim->printed < SK_LOG_LIMIT_BURST) {
        lim->printed++;
        sk_log(lim->level, lim->module, "%s", line);
        return;
    }
    lim->suppressed++;
    if ((int)cause < 0 || cause >= SK_RC_COUNT)
        cause = SK_EINTERNAL;
    lim->by_cause[cause]++;
    size_t n = strlen(line);
    if (n >= sizeof lim->last)
        n = sizeof lim->last - 1;
    memcpy(lim->last, line, n);
    lim->last[n] = '\0';
}

void sk_log_flush_limited(void)
{
    int64_t now = limit_clock();
    struct sk_log_limit *lim = open_limits, *next;
    for (; lim; lim = next) {
        next = lim->next;
        if (now >= lim->window_end_ms)
            limit_close_window(lim);
    }
}
