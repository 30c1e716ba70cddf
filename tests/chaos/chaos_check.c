/* chaos_check: checks a history written by chaos_client (history.h) and
 * says what it found (checker.h).
 *
 *   chaos_check [--max-steps N] [--max-memo BYTES] HISTORY.jsonl
 *
 * Prints one summary line,
 *   ops=.. ok=.. fail=.. unknown=.. registers=.. adds=.. acked=..
 *   unanswered=.. (present ..) set_reads=.. steps=.. memo_mib=..
 *   anomalies=.. verdict=..
 * then a paragraph per anomaly. Exit status: 0 no anomaly, 1 anomalies,
 * 3 undecided (a search ran out of budget, or the set was never read),
 * 2 the history cannot be read. */
#include <stdio.h>
#include <stdlib.h>

#include "checker.h"
#include "history.h"
#include "skiff/datadir.h"
#include "skiff/flags.h"

enum { F_MAX_STEPS, F_MAX_MEMO, F_HELP, F_COUNT };

static struct sk_flag flags[F_COUNT] = {
    [F_MAX_STEPS] = {.name = "max-steps",
                     .type = SK_FLAG_INT,
                     .min = 1,
                     .max = INT64_MAX,
                     .help = "search budget per register (default 10^9)"},
    [F_MAX_MEMO] = {.name = "max-memo",
                    .type = SK_FLAG_BYTES,
                    .help = "memory for the search's memo, per register "
                            "(default 2G)"},
    [F_HELP] = {.name = "help",
                .short_name = 'h',
                .type = SK_FLAG_BOOL,
                .help = "this help"},
};

static const char *const verdict_names[] = {"ok", "anomaly", "undecided"};

int main(int argc, char **argv)
{
    struct sk_flags_result res;
    struct sk_err err;
    if (sk_flags_parse(flags, F_COUNT, argc - 1, argv + 1, false, &res, &err) !=
        SK_OK) {
        fprintf(stderr, "chaos_check: %s\n", err.msg);
        return 2;
    }
    if (flags[F_HELP].on || res.n_positional != 1) {
        fprintf(flags[F_HELP].on ? stdout : stderr,
                "usage: chaos_check [--max-steps N] [--max-memo BYTES] "
                "HISTORY.jsonl\n\n");
        sk_flags_usage(flags[F_HELP].on ? stdout : stderr, flags, F_COUNT);
        sk_flags_free(flags, F_COUNT, &res);
        return flags[F_HELP].on ? 0 : 2;
    }
    const char *path = res.positional[0];
    char *text;
    size_t len;
    if (sk_read_file(path, (size_t)4 << 30, &text, &len, &err) != SK_OK) {
        fprintf(stderr, "chaos_check: %s\n", err.msg);
        sk_flags_free(flags, F_COUNT, &res);
        return 2;
    }
    struct chaos_history h;
    char perr[512];
    if (!chaos_history_parse(text, len, &h, perr, sizeof perr)) {
        fprintf(stderr, "chaos_check: %s: %s\n", path, perr);
        free(text);
        sk_flags_free(flags, F_COUNT, &res);
        return 2;
    }
    free(text);
    struct check_opts opts = {
        .max_steps =
            flags[F_MAX_STEPS].set ? (uint64_t)flags[F_MAX_STEPS].num : 0};
    struct check_report r;
    enum check_verdict v = chaos_check(&h, &opts, &r);
    printf("ops=%zu ok=%zu fail=%zu unknown=%zu registers=%zu adds=%zu "
           "acked=%zu unanswered=%zu (present %zu) set_reads=%zu "
           "steps=%llu memo_mib=%zu anomalies=%zu verdict=%s\n",
           r.ops, r.ok, r.fail, r.info, r.registers, r.adds, r.adds_ok,
           r.adds_unknown, r.adds_unknown_present, r.set_reads,
           (unsigned long long)r.steps, r.memo_bytes >> 20, r.anomalies,
           verdict_names[v]);
    fputs(r.text, stdout);
    check_report_free(&r);
    chaos_history_free(&h);
    sk_flags_free(flags, F_COUNT, &res);
    return v == CHECK_OK ? 0 : v == CHECK_ANOMALY ? 1 : 3;
}
