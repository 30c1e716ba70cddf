#include "skiff/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void sk_oom(size_t size)
{
    fprintf(stderr, "skiff: out of memory allocating %zu bytes\n", size);
    abort();
}

void *sk_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        sk_oom(size);
    return p;
}

void *sk_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        sk_oom(count * size);
    return p;
}

void *sk_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        sk_oom(size);
    return p;
}

char *sk_strdup(const char *s)
{
    return sk_strndup(s, strlen(s));
}

char *sk_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = sk_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *sk_vprintf(const char *fmt, va_list ap)
{
    char small[256];
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(small, sizeof small, fmt, copy);
    va_end(copy);
    if (n < 0)
        sk_oom(0);
    if ((size_t)n < sizeof small)
        return sk_strndup(small, (size_t)n);
    char *p = sk_malloc((size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *sk_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = sk_vprintf(fmt, ap);
    va_end(ap);
    return p;
}
