/* Logging for the daemon and the CLI.
 *
 * Lines go to stderr as `TIME LEVEL [module] message`. The level is set once
 * at start (flag --log-level); SKIFF_TRACE=1 in the environment additionally
 * prints every state transition through sk_trace(). Only cmd/, and the loops
 * that handle an error, log; library code returns errors instead. */
#ifndef SKIFF_LOG_H
#define SKIFF_LOG_H

#include <stdbool.h>

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

#define SK_DEBUG(mod, ...) sk_log(SK_LOG_DEBUG, mod, __VA_ARGS__)
#define SK_INFO(mod, ...) sk_log(SK_LOG_INFO, mod, __VA_ARGS__)
#define SK_WARN(mod, ...) sk_log(SK_LOG_WARN, mod, __VA_ARGS__)
#define SK_ERROR(mod, ...) sk_log(SK_LOG_ERROR, mod, __VA_ARGS__)

#endif
