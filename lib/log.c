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
