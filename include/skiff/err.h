/* Error codes and messages that travel up to the user.
 *
 * A function that can fail returns an `sk_rc` and, where it takes one, fills
 * a caller-owned `struct sk_err` with a one-line message naming the object and
 * the cause. Callers add context with sk_err_wrap() as the error travels up,
 * so the user reads e.g.
 *   `node "h3": certificate renewal: manager 10.77.0.11:7443 refused (403)`.
 * Library code never logs; the daemon logs an error once, where it is
 * handled. */
#ifndef SKIFF_ERR_H
#define SKIFF_ERR_H

#include <stdarg.h>
#include <stddef.h>

enum sk_rc {
    SK_OK = 0,
    SK_EINVAL,     /* bad input from a user or peer */
    SK_ENOTFOUND,  /* no such object */
    SK_EEXIST,     /* an object with that name or ID exists */
    SK_ECONFLICT,  /* version mismatch: someone else changed it */
    SK_EAUTH,      /* no or bad credentials */
    SK_EPERM,      /* authenticated but not allowed */
    SK_ENOTLEADER, /* only the leader can do this */
    SK_EUNAVAIL,   /* no quorum, no leader, peer unreachable */
    SK_ETIMEDOUT,
    SK_ETOOBIG,   /* a size cap was hit; the message names the cap */
    SK_EPROTO,    /* a peer broke the protocol */
    SK_EIO,       /* file system or socket error */
    SK_ECANCELED, /* the operation was stopped by a close */
    SK_ENOSPC,    /* a pool ran out (addresses, subnets, VNIs) */
    SK_EMETHOD,   /* the path exists, not with this method (HTTP 405) */
    SK_EINTERNAL, /* a bug: an invariant did not hold */
    SK_RC_COUNT
};

#define SK_ERRMSG_SIZE 512

struct sk_err {
    enum sk_rc code;
    char msg[SK_ERRMSG_SIZE];
};

/* Short stable name of a code ("invalid", "not_found", ...), used in the API's
 * error objects and in CLI output. Unknown codes give "internal". */
const char *sk_rc_name(enum sk_rc rc);
/* The HTTP status a code maps to (400, 404, 409, ...). */
int sk_rc_http_status(enum sk_rc rc);
/* Inverse of sk_rc_name; unknown names give SK_EINTERNAL. */
enum sk_rc sk_rc_from_name(const char *name);

/* Sets code and message; returns code so callers can `return sk_err_set(...)`.
 * err may be NULL, then only the code is returned. */
enum sk_rc sk_err_set(struct sk_err *err, enum sk_rc code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* sk_err_set for variadic wrappers that build an error of their own. */
enum sk_rc sk_err_vset(struct sk_err *err, enum sk_rc code, const char *fmt,
                       va_list ap) __attribute__((format(printf, 3, 0)));
/* Prefixes the current message with context and ": "; keeps the code.
 * Returns the code. A message that would overflow is truncated with "...". */
enum sk_rc sk_err_wrap(struct sk_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sk_err_clear(struct sk_err *err);
/* Copies code and message from src to dst. */
void sk_err_copy(struct sk_err *dst, const struct sk_err *src);

#endif
