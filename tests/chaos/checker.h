/* Checks a whole history (history.h) for anomalies. Pure: no I/O.
 *
 * Registers, each checked on its own (linearizability is compositional):
 *   - versions and values must match one to one: every version is the Raft
 *     index of one change, so two reads returning the same version with
 *     different values, or the same value with different versions, are an
 *     anomaly;
 *   - a read (plain or linearizable) may only return the initial value or
 *     a value some write or CAS of that register was asked to write before
 *     the read's reply came, and not one whose write was refused;
 *   - the linearizable reads, writes and CASes together must be
 *     linearizable (linearize.h). A CAS names the version it expects; the
 *     reads say which value that version belongs to, so the search runs on
 *     values. A CAS refused with "conflict" claims the register had moved
 *     on: it is checked as such (the register must not have held the
 *     expected version then). Other refusals happened nowhere. Plain reads
 *     claim nothing more than the two checks above.
 * The set: every element whose add was acknowledged is in every final read
 * (set_read); every element read was added by some add that was not
 * refused. Unanswered adds may be in or out.
 *
 * The verdict: CHECK_ANOMALY if any anomaly was found; else CHECK_UNDECIDED
 * if some register's search ran out of its budget, or the set was added to
 * but never read whole; else CHECK_OK. */
#ifndef CHAOS_CHECKER_H
#define CHAOS_CHECKER_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"

enum check_verdict { CHECK_OK, CHECK_ANOMALY, CHECK_UNDECIDED };

struct check_opts {
    uint64_t max_steps;    /* per register; 0: 10^9 */
    size_t max_memo_bytes; /* per register; 0: 2 GiB */
};

struct check_report {
    enum check_verdict verdict;
    /* Client ops (not init, not set_read), by outcome. */
    size_t ops, ok, fail, info;
    size_t registers, registers_undecided;
    uint64_t steps;    /* summed over registers */
    size_t memo_bytes; /* the most one register's search used */
    size_t adds, adds_ok, adds_unknown, adds_unknown_present, set_reads;
    size_t anomalies;
    /* One paragraph per anomaly or undecided check, each line ending in
     * '\n'; heap string (empty if nothing to say). */
    char *text;
    size_t text_len;
};

enum check_verdict chaos_check(const struct chaos_history *h,
                               const struct check_opts *opts,
                               struct check_report *out);
void check_report_free(struct check_report *r);

#endif
