/* Linearizability of one compare-and-set register: the Wing & Gong search
 * with Lowe's memoisation (as in Porcupine), over a history whose values
 * are small integers. Pure: no I/O, no globals; the caller owns the ops.
 *
 * The model: a register holds one value. Operations, each with the time it
 * was invoked (`call`) and the time its reply arrived (`ret`):
 *
 *   LIN_READ         returned `value`: legal iff the register holds it.
 *   LIN_WRITE        sets the register to `value`.
 *   LIN_CAS          legal iff the register holds `expect`; sets `value`.
 *   LIN_CAS_REFUSED  the server said "changed by someone else": legal iff
 *                    the register does NOT hold `expect`; changes nothing.
 *
 * A history is linearizable if every op can be given one instant between
 * its call and its ret, so that taken in that order each is legal from the
 * value before it (starting from `init`). An op whose reply never came
 * (ret == LIN_NEVER: a timeout, a reset connection, a 503) may take effect
 * at any instant after its call, or never. Reads whose reply never came say
 * nothing and should not be passed in.
 *
 * Values should be unique per write (each write or CAS writes a value no
 * other op writes), except that the caller should map every value that no
 * read returns and no CAS expects to one "ghost" value: to the model they
 * are indistinguishable, and unanswered writes of the same value with the
 * same expectation are interchangeable (see the pruning below), which keeps
 * the search small when many writes went unanswered.
 *
 * Pruning, all sound for this model: (state, set of ops linearized) pairs
 * already explored are not explored again (Lowe); an unanswered op is only
 * linearized where it changes the value (elsewhere "never" is the same);
 * unanswered ops identical in effect are linearized in the order of their
 * calls (the search tries the earliest only).
 *
 * The search is exponential in the worst case: `limits` bound its steps
 * (one per list entry visited, some 20-50 million a second) and the memory
 * of its memo; running out of either is reported as LIN_UNDECIDED, never
 * as an anomaly. */
#ifndef CHAOS_LINEARIZE_H
#define CHAOS_LINEARIZE_H

#include <stddef.h>
#include <stdint.h>

#define LIN_NEVER INT64_MAX /* ret of an op whose reply never came */

enum lin_type { LIN_READ, LIN_WRITE, LIN_CAS, LIN_CAS_REFUSED };

struct lin_op {
    enum lin_type type;
    int value;  /* READ: value returned; WRITE, CAS: value written */
    int expect; /* CAS, CAS_REFUSED: the value expected */
    int64_t call, ret;
};

enum lin_verdict { LIN_OK, LIN_ANOMALY, LIN_UNDECIDED };

struct lin_limits {
    uint64_t max_steps;
    size_t max_memo_bytes;
};

/* What the search found. On LIN_ANOMALY, the point where it got furthest:
 * `order` holds the ops (indices) of the longest legal prefix it built
 * (n_order of them, heap array owned by the result), after which op
 * `stuck` (an answered op) could not be placed before its reply arrived,
 * from value `stuck_state`. */
struct lin_result {
    enum lin_verdict verdict;
    uint64_t steps;
    size_t memo_entries, memo_bytes;
    size_t *order;
    size_t n_order;
    size_t stuck;
    int stuck_state;
};

enum lin_verdict lin_check(const struct lin_op *ops, size_t n, int init,
                           const struct lin_limits *limits,
                           struct lin_result *out);
void lin_result_free(struct lin_result *r);

#endif
