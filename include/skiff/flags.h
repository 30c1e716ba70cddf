/* Command-line flags for the `skiff` CLI and `skiffd`, declared as tables.
 *
 * A command declares its flags as an array of `struct sk_flag`, then calls
 * sk_flags_parse() on its arguments. The parser fills each flag's result
 * fields and collects positional arguments. Flags follow the docker CLI's
 * conventions, so Swarm users feel at home:
 *
 *   --name value   --name=value   -q   -qa (several short booleans)
 *   --label-add a=b --label-add c=d      (repeatable flags)
 *   --                                   (end of flags)
 *
 * With `stop_at_positional`, the first positional argument ends flag parsing
 * and everything after it is positional, even if it starts with '-' (as in
 * `skiff service create --name web IMAGE sh -c 'x'`).
 *
 * Values are checked as they are parsed (numbers and their ranges,
 * durations, sizes, CPUs, enum choices); errors (SK_EINVAL) name the flag
 * and say what is wrong, e.g.
 *   `unknown flag --replica (did you mean --replicas?)`
 *   `flag --replicas needs a value`
 *   `--replicas: invalid number "x": want an integer from 0 to 100000`
 *   `--mode: want one of replicated, global, got "everywhere"`
 *   `flag --replicas given twice`.
 *
 * Pure: no I/O except sk_flags_usage. Result strings point into argv (no
 * copies); STRINGS results are a heap array freed by sk_flags_free. */
#ifndef SKIFF_FLAGS_H
#define SKIFF_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "skiff/err.h"

enum sk_flag_type {
    SK_FLAG_BOOL,     /* no value; --name=false is allowed */
    SK_FLAG_STRING,   /* one value */
    SK_FLAG_STRINGS,  /* repeatable, values collected in order */
    SK_FLAG_INT,      /* integer in [min, max] (both 0: any int64) */
    SK_FLAG_DURATION, /* "5s", "300ms": result in num (ms) */
    SK_FLAG_BYTES,    /* "512M": result in num (bytes) */
    SK_FLAG_CPUS,     /* "0.5": result in num (nano-CPUs) */
    SK_FLAG_ENUM,     /* one of `choices`: result in str and num (index) */
};

struct sk_flag {
    /* Declaration. */
    const char *name; /* long name without "--" */
    char short_name;  /* 0 for none */
    enum sk_flag_type type;
    const char *metavar; /* for usage: "N", "DURATION" */
    const char *help;
    const char *const *choices; /* ENUM: NULL-terminated */
    int64_t min, max;           /* INT */

    /* Results, written by sk_flags_parse. */
    bool set;          /* given on the command line */
    bool on;           /* BOOL */
    const char *str;   /* STRING, ENUM, and the raw text of the others */
    int64_t num;       /* INT, DURATION, BYTES, CPUS, ENUM */
    const char **strs; /* STRINGS */
    size_t n_strs;
};

struct sk_flags_result {
    char **positional; /* heap array of pointers into argv */
    size_t n_positional;
};

/* Parses argv[0..argc) (argv[0] is NOT skipped: pass the arguments after
 * the command words). Resets every flag's results first. On error, results
 * are undefined (but sk_flags_free is still safe) and err says why. */
enum sk_rc sk_flags_parse(struct sk_flag *flags, size_t n_flags, int argc,
                          char **argv, bool stop_at_positional,
                          struct sk_flags_result *out, struct sk_err *err);
/* Frees the STRINGS arrays and the positional array. */
void sk_flags_free(struct sk_flag *flags, size_t n_flags,
                   struct sk_flags_result *res);
/* Prints "  -q, --quiet         help" lines, aligned. */
void sk_flags_usage(FILE *f, const struct sk_flag *flags, size_t n_flags);
/* The flag with this long name, or NULL (for reading results). */
struct sk_flag *sk_flag_get(struct sk_flag *flags, size_t n_flags,
                            const char *name);

#endif
