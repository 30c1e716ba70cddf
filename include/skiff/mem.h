/* Allocation that never returns NULL.
 *
 * Out of memory is the one condition skiff does not try to survive: every
 * function here prints a message naming the size and aborts instead of
 * returning NULL (STYLE.md, "Errors"). Everything else reports errors. */
#ifndef SKIFF_MEM_H
#define SKIFF_MEM_H

#include <stdarg.h>
#include <stddef.h>

void *sk_malloc(size_t size);
void *sk_calloc(size_t count, size_t size);
void *sk_realloc(void *ptr, size_t size);
char *sk_strdup(const char *s);
char *sk_strndup(const char *s, size_t n);
/* printf into a fresh heap string; the caller frees it. */
char *sk_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *sk_vprintf(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));
/* Writes a message naming the failed size to stderr and aborts. */
_Noreturn void sk_oom(size_t size);

#endif
