#include "skiff/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int http;
} codes[SK_RC_COUNT] = {
    [SK_OK] = {"ok", 200},
    [SK_EINVAL] = {"invalid", 400},
    [SK_ENOTFOUND] = {"not_found", 404},
    [SK_EEXIST] = {"exists", 409},
    [SK_ECONFLICT] = {"conflict", 409},
    [SK_EAUTH] = {"unauthenticated", 401},
    [SK_EPERM] = {"forbidden", 403},
    [SK_ENOTLEADER] = {"not_leader", 503},
    [SK_EUNAVAIL] = {"unavailable", 503},
    [SK_ETIMEDOUT] = {"timeout", 504},
    [SK_ETOOBIG] = {"too_large", 413},
    [SK_EPROTO] = {"protocol", 400},
    [SK_EIO] = {"io", 500},
    [SK_ECANCELED] = {"canceled", 503},
    [SK_ENOSPC] = {"exhausted", 409},
    [SK_EMETHOD] = {"method_not_allowed", 405},
    [SK_EINTERNAL] = {"internal", 500},
};

const char *sk_rc_name(enum sk_rc rc)
{
    if ((unsigned)rc >= SK_RC_COUNT)
        return codes[SK_EINTERNAL].name;
    return codes[rc].name;
}

int sk_rc_http_status(enum sk_rc rc)
{
    if ((unsigned)rc >= SK_RC_COUNT)
        return 500;
    return codes[rc].http;
}

enum sk_rc sk_rc_from_name(const char *name)
{
    for (int i = 0; i < SK_RC_COUNT; i++)
        if (strcmp(codes[i].name, name) == 0)
            return (enum sk_rc)i;
    return SK_EINTERNAL;
}

enum sk_rc sk_err_vset(struct sk_err *err, enum sk_rc code, const char *fmt,
                       va_list ap)
{
    if (!err)
        return code;
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return code;
}

enum sk_rc sk_err_set(struct sk_err *err, enum sk_rc code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sk_err_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

enum sk_rc sk_err_wrap(struct sk_err *err, const char *fmt, ...)
{
    if (!err)
        return SK_EINTERNAL;
    char prefix[SK_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);

    char joined[SK_ERRMSG_SIZE];
    int n = snprintf(joined, sizeof joined, "%s: %s", prefix, err->msg);
    if (n >= (int)sizeof joined)
        memcpy(joined + sizeof joined - 4, "...", 4);
    memcpy(err->msg, joined, sizeof joined);
    return err->code;
}

void sk_err_clear(struct sk_err *err)
{
    if (!err)
        return;
    err->code = SK_OK;
    err->msg[0] = '\0';
}

void sk_err_copy(struct sk_err *dst, const struct sk_err *src)
{
    if (!dst || !src)
        return;
    dst->code = src->code;
    memcpy(dst->msg, src->msg, sizeof dst->msg);
}
