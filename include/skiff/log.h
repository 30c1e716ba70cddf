/* Logging for the daemon and the CLI.
 *
 * Lines go to stderr as `TIME LEVEL [module] message`. The level is set once
 * at start (flag --log-level); SKIFF_TRACE=1 in the environment additionally
 * prints every state transition through sk_trace(). Only cmd/, and the loops
 * that handle an error, log; library code returns errors instead. */
#ifndef SKIFF_LOG_H
#define SKIFF_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "skiff/err.h"

enum sk_log_level { SK_LOG_DEBUG, SK_LOG_INFO, SK_LOG_WARN, SK_LOG_ERROR };

void sk_log_set_level(enum sk_log_level level);
enum sk_log_level sk_log_get_level(void);
/* Parses "debug", "info", "warn", "error"; returns false on anything else. */
bool sk_log_level_parse(const char *s, enum sk_log_level *out_level);
/* Reads SKIFF_TRACE from the environment; called once at start. */
void sk_log_init_from_env(void);
bool sk_trace_enabled(void);

void sk_log(enum sk_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* One line per state transition of a lifecycle (task, node, session, join):
 * `TRACE [kind] id: from -> to (why)`. Printed only when tracing is on. */
void sk_trace(const char *kind, const char *id, const char *from,
              const char *to, const char *why);

/* ---- Lines anyone can cause at will ----
 *
 * Refused connections, requests and joins are logged through a limit, so
 * that a flood cannot flood the log: per limiter, the first
 * SK_LOG_LIMIT_BURST lines of a window of SK_LOG_LIMIT_WINDOW_MS print as
 * they come; the rest are only counted, by cause, and after the window one
 * summary line says how many there were and which was the last:
 *
 *   refused connections: 8511 more in the last 10 s (8000 timed_out, 511
 *   unavailable); the last: refused 10.77.0.14:51234: TLS handshake ...
 *
 * The summary prints with the limiter's next line, or from
 * sk_log_flush_limited(), which the daemon calls every so often. Loop
 * thread only (the limiters are not locked). */
#define SK_LOG_LIMIT_BURST 10
#define SK_LOG_LIMIT_WINDOW_MS 10000

struct sk_log_limit {
    enum sk_log_level level;
    const char *module;
    const char *what; /* names the lines in the summary */
    /* private */
    int64_t window_end_ms; /* 0: no window open */
    unsigned printed;
    unsigned long suppressed;
    unsigned long by_cause[SK_RC_COUNT];
    char last[256];
    bool listed;
    struct sk_log_limit *next;
};

/* A static limiter: SK_LOG_LIMIT(SK_LOG_INFO, "api", "refused joins"). */
#define SK_LOG_LIMIT(lvl, mod, what_)                                          \
    {                                                                          \
        .level = (lvl), .module = (mod), .what = (what_)                       \
    }

/* Logs one line (cause: what kind of refusal, counted in the summary)
 * through the limiter. */
void sk_log_limited(struct sk_log_limit *lim, enum sk_rc cause, const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));
/* Prints the summaries of windows that are over. */
void sk_log_flush_limited(void);
/* For tests: the clock the limits use, in ms (NULL: CLOCK_MONOTONIC). */
void sk_log_set_clock(int64_t (*now_ms)(void));

#define SK_DEBUG(mod, ...) sk_log(SK_LOG_DEBUG, mod, __VA_ARGS__)
#define SK_INFO(mod, ...) sk_log(SK_LOG_INFO, mod, __VA_ARGS__)
#define SK_WARN(mod, ...) sk_log(SK_LOG_WARN, mod, __VA_ARGS__)
#define SK_ERROR(mod, ...) sk_log(SK_LOG_ERROR, mod, __VA_ARGS__)

#endif
