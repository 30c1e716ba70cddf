#include "skiff/flags.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/mem.h"
#include "skiff/parse.h"

/* An unknown long flag is compared with every declared one; names longer
 * than this are never suggested (and never need to be). */
#define SUGGEST_MAX_NAME 64
#define SUGGEST_MAX_DISTANCE 2

/* The usage column for help text stops growing here, so one long flag does
 * not push every help line off the screen. */
#define USAGE_MAX_COLUMN 40

static bool takes_value(enum sk_flag_type type)
{
    return type != SK_FLAG_BOOL;
}

/* Arrays of results carry no capacity: it is implied by the count, as the
 * next power of two, so growing happens only when the count is one. */
static void *grow(void *array, size_t n, size_t elem)
{
    if (n == 0)
        return sk_malloc(elem);
    if ((n & (n - 1)) == 0)
        return sk_realloc(array, 2 * n * elem);
    return array;
}

static void push_positional(struct sk_flags_result *out, char *arg)
{
    out->positional =
        grow(out->positional, out->n_positional, sizeof *out->positional);
    out->positional[out->n_positional++] = arg;
}

static void reset(struct sk_flag *flags, size_t n_flags,
                  struct sk_flags_result *out)
{
    for (size_t i = 0; i < n_flags; i++) {
        flags[i].set = false;
        flags[i].on = false;
        flags[i].str = NULL;
        flags[i].num = 0;
        flags[i].strs = NULL;
        flags[i].n_strs = 0;
    }
    out->positional = NULL;
    out->n_positional = 0;
}

static struct sk_flag *find_long(struct sk_flag *flags, size_t n_flags,
                                 const char *name, size_t len)
{
    for (size_t i = 0; i < n_flags; i++) {
        const char *n = flags[i].name;
        if (n && strncmp(n, name, len) == 0 && n[len] == '\0')
            return &flags[i];
    }
    return NULL;
}

static struct sk_flag *find_short(struct sk_flag *flags, size_t n_flags, char c)
{
    for (size_t i = 0; i < n_flags; i++)
        if (flags[i].short_name != 0 && flags[i].short_name == c)
            return &flags[i];
    return NULL;
}

/* Levenshtein distance, or SUGGEST_MAX_DISTANCE + 1 as soon as it is known
 * to be larger than that (the length difference alone is a lower bound). */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t too_far = SUGGEST_MAX_DISTANCE + 1;
    if (lb > SUGGEST_MAX_NAME || la > lb + SUGGEST_MAX_DISTANCE ||
        lb > la + SUGGEST_MAX_DISTANCE)
        return too_far;
    size_t row[SUGGEST_MAX_NAME + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

/* The declared long flag closest to name, if it is close enough; the first
 * declared wins a tie. */
static const char *suggest(const struct sk_flag *flags, size_t n_flags,
                           const char *name, size_t len)
{
    const char *best = NULL;
    size_t best_d = SUGGEST_MAX_DISTANCE + 1;
    for (size_t i = 0; i < n_flags; i++) {
        const char *n = flags[i].name;
        if (!n)
            continue;
        size_t d = edit_distance(name, len, n, strlen(n));
        if (d < best_d) {
            best = n;
            best_d = d;
        }
    }
    return best;
}

static enum sk_rc unknown_long(const struct sk_flag *flags, size_t n_flags,
                               const char *arg, size_t name_len,
                               struct sk_err *err)
{
    const char *name = arg + 2;
    if (name_len == 0)
        return sk_err_set(err, SK_EINVAL, "unknown flag %s", arg);
    const char *near = suggest(flags, n_flags, name, name_len);
    if (near)
        return sk_err_set(err, SK_EINVAL,
                          "unknown flag --%.*s (did you mean --%s?)",
                          (int)name_len, name, near);
    return sk_err_set(err, SK_EINVAL, "unknown flag --%.*s", (int)name_len,
                      name);
}

/* An unknown letter in "-abc". A long flag typed with one dash
 * ("-replicas") gets the spelling it was meant to have. */
static enum sk_rc unknown_short(struct sk_flag *flags, size_t n_flags,
                                const char *arg, char c, struct sk_err *err)
{
    if (strlen(arg) == 2)
        return sk_err_set(err, SK_EINVAL, "unknown flag -%c", c);
    const char *body = arg + 1;
    size_t len = strcspn(body, "=");
    if (find_long(flags, n_flags, body, len))
        return sk_err_set(err, SK_EINVAL,
                          "unknown flag -%c in %s (did you mean -%s?)", c, arg,
                          arg);
    return sk_err_set(err, SK_EINVAL, "unknown flag -%c in %s", c, arg);
}

/* Marks f as given; only STRINGS may be given more than once. */
static enum sk_rc take(struct sk_flag *f, struct sk_err *err)
{
    if (f->set && f->type != SK_FLAG_STRINGS)
        return sk_err_set(err, SK_EINVAL, "flag --%s given twice", f->name);
    f->set = true;
    return SK_OK;
}

/* value is NULL for a bare "--quiet" / "-q". */
static enum sk_rc apply_bool(struct sk_flag *f, const char *value,
                             struct sk_err *err)
{
    bool on = true;
    if (value) {
        if (strcmp(value, "true") == 0)
            on = true;
        else if (strcmp(value, "false") == 0)
            on = false;
        else
            return sk_err_set(err, SK_EINVAL,
                              "--%s: invalid value \"%s\": want true or false",
                              f->name, value);
    }
    enum sk_rc rc = take(f, err);
    if (rc != SK_OK)
        return rc;
    f->on = on;
    f->str = value;
    return SK_OK;
}

static enum sk_rc bad_enum(const struct sk_flag *f, const char *value,
                           struct sk_err *err)
{
    char list[SK_ERRMSG_SIZE];
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = 0; f->choices && f->choices[i]; i++) {
        int n = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                         f->choices[i]);
        if (n < 0 || (size_t)n >= sizeof list - used)
            break;
        used += (size_t)n;
    }
    return sk_err_set(err, SK_EINVAL, "--%s: want one of %s, got \"%s\"",
                      f->name, list, value);
}

static enum sk_rc apply_value(struct sk_flag *f, const char *value,
                              struct sk_err *err)
{
    struct sk_err why;
    bool ok = true;
    int64_t num = 0;
    switch (f->type) {
    case SK_FLAG_BOOL:
        return apply_bool(f, value, err);
    case SK_FLAG_STRING:
    case SK_FLAG_STRINGS:
        break;
    case SK_FLAG_INT: {
        int64_t min = f->min, max = f->max;
        if (min == 0 && max == 0) {
            min = INT64_MIN;
            max = INT64_MAX;
        }
        ok = sk_parse_int(value, min, max, &num, &why);
        break;
    }
    case SK_FLAG_DURATION:
        ok = sk_parse_duration_ms(value, &num, &why);
        break;
    case SK_FLAG_BYTES:
        ok = sk_parse_bytes(value, &num, &why);
        break;
    case SK_FLAG_CPUS:
        ok = sk_parse_nano_cpus(value, &num, &why);
        break;
    case SK_FLAG_ENUM: {
        ok = false;
        for (size_t i = 0; f->choices && f->choices[i]; i++) {
            if (strcmp(f->choices[i], value) == 0) {
                num = (int64_t)i;
                ok = true;
                break;
            }
        }
        if (!ok)
            return bad_enum(f, value, err);
        break;
    }
    default:
        return sk_err_set(err, SK_EINTERNAL, "flag --%s has unknown type %d",
                          f->name, (int)f->type);
    }
    if (!ok)
        return sk_err_set(err, SK_EINVAL, "--%s: %s", f->name, why.msg);

    enum sk_rc rc = take(f, err);
    if (rc != SK_OK)
        return rc;
    f->str = value;
    f->num = num;
    if (f->type == SK_FLAG_STRINGS) {
        f->strs = grow(f->strs, f->n_strs, sizeof *f->strs);
        f->strs[f->n_strs++] = value;
    }
    return SK_OK;
}

static enum sk_rc parse_long(struct sk_flag *flags, size_t n_flags, int argc,
                             char **argv, int *i, struct sk_err *err)
{
    const char *arg = argv[*i];
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    struct sk_flag *f = len ? find_long(flags, n_flags, name, len) : NULL;
    if (!f)
        return unknown_long(flags, n_flags, arg, len, err);

    const char *value = eq ? eq + 1 : NULL;
    if (takes_value(f->type) && !value) {
        if (*i + 1 >= argc)
            return sk_err_set(err, SK_EINVAL, "flag --%s needs a value",
                              f->name);
        value = argv[++*i];
    }
    return apply_value(f, value, err);
}

/* "-q", "-qa", "-n 3", "-n3", "-qn3", and pflag's "-n=3" / "-q=false". */
static enum sk_rc parse_short(struct sk_flag *flags, size_t n_flags, int argc,
                              char **argv, int *i, struct sk_err *err)
{
    const char *arg = argv[*i];
    for (const char *p = arg + 1; *p; p++) {
        struct sk_flag *f = find_short(flags, n_flags, *p);
        if (!f)
            return unknown_short(flags, n_flags, arg, *p, err);
        const char *value = NULL;
        if (p[1] == '=')
            value = p + 2;
        else if (takes_value(f->type) && p[1])
            value = p + 1;
        if (!takes_value(f->type) && !value) {
            enum sk_rc rc = apply_bool(f, NULL, err);
            if (rc != SK_OK)
                return rc;
            continue;
        }
        if (!value) {
            if (*i + 1 >= argc)
                return sk_err_set(err, SK_EINVAL, "flag --%s needs a value",
                                  f->name);
            value = argv[++*i];
        }
        /* The value was the rest of the cluster or the next argument. */
        return apply_value(f, value, err);
    }
    return SK_OK;
}

enum sk_rc sk_flags_parse(struct sk_flag *flags, size_t n_flags, int argc,
                          char **argv, bool stop_at_positional,
                          struct sk_flags_result *out, struct sk_err *err)
{
    reset(flags, n_flags, out);
    bool flags_done = false;
    for (int i = 0; i < argc; i++) {
        char *arg = argv[i];
        /* "-" alone names stdin by convention: it is an argument. */
        if (flags_done || arg[0] != '-' || arg[1] == '\0') {
            push_positional(out, arg);
            if (stop_at_positional)
                flags_done = true;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            flags_done = true;
            continue;
        }
        enum sk_rc rc = arg[1] == '-'
                            ? parse_long(flags, n_flags, argc, argv, &i, err)
                            : parse_short(flags, n_flags, argc, argv, &i, err);
        if (rc != SK_OK)
            return rc;
    }
    return SK_OK;
}

void sk_flags_free(struct sk_flag *flags, size_t n_flags,
                   struct sk_flags_result *res)
{
    for (size_t i = 0; flags && i < n_flags; i++) {
        free(flags[i].strs);
        flags[i].strs = NULL;
        flags[i].n_strs = 0;
    }
    if (res) {
        free(res->positional);
        res->positional = NULL;
        res->n_positional = 0;
    }
}

static const char *default_metavar(enum sk_flag_type type)
{
    switch (type) {
    case SK_FLAG_BOOL:
        return NULL;
    case SK_FLAG_STRING:
    case SK_FLAG_STRINGS:
        return "VALUE";
    case SK_FLAG_INT:
        return "N";
    case SK_FLAG_DURATION:
        return "DURATION";
    case SK_FLAG_BYTES:
        return "BYTES";
    case SK_FLAG_CPUS:
        return "CPUS";
    case SK_FLAG_ENUM:
        return NULL; /* the choices, see usage_left */
    }
    return "VALUE";
}

/* Writes "  -q, --quiet" or "      --mode replicated|global" into buf and
 * returns its length (at most size - 1). */
static size_t usage_left(const struct sk_flag *f, char *buf, size_t size)
{
    size_t used = 0;
    int n;
#define APPEND(...)                                                            \
    do {                                                                       \
        n = snprintf(buf + used, size - used, __VA_ARGS__);                    \
        if (n < 0 || (size_t)n >= size - used)                                 \
            return strlen(buf);                                                \
        used += (size_t)n;                                                     \
    } while (0)

    buf[0] = '\0';
    if (f->short_name)
        APPEND("  -%c, --%s", f->short_name, f->name ? f->name : "");
    else
        APPEND("      --%s", f->name ? f->name : "");
    if (!takes_value(f->type))
        return used;
    const char *metavar = f->metavar ? f->metavar : default_metavar(f->type);
    if (metavar) {
        APPEND(" %s", metavar);
    } else {
        for (size_t i = 0; f->choices && f->choices[i]; i++)
            APPEND("%c%s", i ? '|' : ' ', f->choices[i]);
    }
#undef APPEND
    return used;
}

void sk_flags_usage(FILE *f, const struct sk_flag *flags, size_t n_flags)
{
    char left[256];
    size_t column = 0;
    for (size_t i = 0; i < n_flags; i++) {
        size_t len = usage_left(&flags[i], left, sizeof left);
        if (len > column && len <= USAGE_MAX_COLUMN)
            column = len;
    }
    for (size_t i = 0; i < n_flags; i++) {
        size_t len = usage_left(&flags[i], left, sizeof left);
        if (!flags[i].help || !flags[i].help[0]) {
            fprintf(f, "%s\n", left);
            continue;
        }
        /* Two spaces before the help, even after an over-long flag. */
        size_t pad = (len < column ? column - len : 0) + 2;
        fprintf(f, "%s%*s%s\n", left, (int)pad, "", flags[i].help);
    }
}

struct sk_flag *sk_flag_get(struct sk_flag *flags, size_t n_flags,
                            const char *name)
{
    if (!flags || !name)
        return NULL;
    return find_long(flags, n_flags, name, strlen(name));
}
