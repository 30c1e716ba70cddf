/* A history of client operations against the cluster, as the chaos driver
 * (chaos_client) records it and the checker (chaos_check) reads it: one
 * JSON object per line, one line per event.
 *
 *   {"client":3,"op":"cas","register":"c1-r0","value":"c1-3-17",
 *    "version":4213,"type":"invoke","t_ns":1234567,"via":"127.1.2.1:7443"}
 *   {"client":3,"op":"cas","register":"c1-r0","value":"c1-3-17",
 *    "version":4213,"type":"fail","error":"conflict","t_ns":1240000}
 *
 * client   the process: at most one op in flight per client. A client whose
 *          op went unanswered is retired; the driver goes on under a new
 *          client number (as Jepsen does).
 * op       init      declares a register and its initial value (one event,
 *                    type "ok", before any op on it)
 *          read      a linearizable read (?consistent=1): ok carries the
 *                    value and the version read
 *          read_plain  a plain read, allowed to be stale: checked only for
 *                    returning a value that was written by then
 *          write     sets the register to `value` unconditionally
 *          cas       sets it to `value` if its version is still `version`
 *          add       adds the element `value` to the set
 *          set_read  reads the whole set (after healing): ok carries
 *                    "values":[...]
 * type     invoke, then one of ok | fail (definitely did not happen;
 *          "error" says why: "conflict" for a version mismatch) | info (no
 *          answer: it may or may not have happened).
 * t_ns     monotonic nanoseconds (CLOCK_MONOTONIC: the same clock in every
 *          process on the machine).
 *
 * An invoke without a completion (the driver stopped first) counts as info.
 * Unknown keys are ignored. */
#ifndef CHAOS_HISTORY_H
#define CHAOS_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "linearize.h"

enum chaos_kind {
    CHAOS_INIT,
    CHAOS_READ,
    CHAOS_READ_PLAIN,
    CHAOS_WRITE,
    CHAOS_CAS,
    CHAOS_ADD,
    CHAOS_SET_READ,
    CHAOS_KIND_COUNT
};
extern const char *const chaos_kind_names[CHAOS_KIND_COUNT];

enum chaos_outcome { CHAOS_OK, CHAOS_FAIL, CHAOS_INFO };
extern const char *const chaos_outcome_names[3];

/* One operation: its invoke and its completion paired. Strings are owned
 * by the op. */
struct chaos_op {
    int64_t client;
    enum chaos_kind kind;
    enum chaos_outcome outcome;
    char *reg;        /* init, reads, write, cas; NULL otherwise */
    char *value;      /* init, write, cas, add: the value given; reads: the
                       * value returned (ok only) */
    uint64_t version; /* cas: the version expected; reads: the version
                       * returned (ok only) */
    char *error;      /* fail, info: why (may be NULL) */
    char *via;        /* the manager asked (may be NULL) */
    char **elems;     /* set_read ok: the elements */
    size_t n_elems;
    int64_t invoke_ns;
    int64_t complete_ns; /* LIN_NEVER for info */
    size_t line;         /* of the invoke, 1-based */
};

struct chaos_history {
    struct chaos_op *ops; /* in order of invocation */
    size_t n, cap;
};

/* Caps on what a history may hold (it is read whole into memory). */
#define CHAOS_MAX_LINE (64u << 20)
#define CHAOS_MAX_CLIENT 10000000
#define CHAOS_MAX_STRING 512

/* Parses a whole history. On error returns false with a message naming the
 * line and the cause in errbuf, and out is left empty. */
bool chaos_history_parse(const char *text, size_t len,
                         struct chaos_history *out, char *errbuf,
                         size_t errsize);
void chaos_history_free(struct chaos_history *h);

#endif
