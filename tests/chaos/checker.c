#include "checker.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linearize.h"
#include "skiff/map.h"
#include "skiff/mem.h"

#define GHOST (-1)       /* every value no read returns, no CAS expects */
#define MAX_DESCRIBED 20 /* anomalies described in full, per check */
#define DEFAULT_MAX_STEPS 1000000000u
#define DEFAULT_MAX_MEMO_BYTES ((size_t)2 << 30)

struct checker {
    const struct chaos_history *h;
    struct check_report *r;
    struct lin_limits limits;
    size_t described;
    int64_t t_base; /* times are printed from the first event on */
};

static void say(struct checker *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(struct checker *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = sk_vprintf(fmt, ap);
    va_end(ap);
    size_t n = strlen(s);
    c->r->text = sk_realloc(c->r->text, c->r->text_len + n + 1);
    memcpy(c->r->text + c->r->text_len, s, n + 1);
    c->r->text_len += n;
    free(s);
}

static bool anomaly(struct checker *c)
{
    c->r->anomalies++;
    return c->described++ < MAX_DESCRIBED;
}

static void undecided(struct checker *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void undecided(struct checker *c, const char *fmt, ...)
{
    if (c->r->verdict == CHECK_OK)
        c->r->verdict = CHECK_UNDECIDED;
    va_list ap;
    va_start(ap, fmt);
    char *s = sk_vprintf(fmt, ap);
    va_end(ap);
    say(c, "undecided: %s\n", s);
    free(s);
}

static double secs(const struct checker *c, int64_t ns)
{
    return (double)(ns - c->t_base) / 1e9;
}

/* "line 12: client 3 cas(version 4213 -> "c1-3-17") = fail(conflict),
 * 1.234567-1.240112 s via 127.1.2.1:7443" */
static void describe(struct checker *c, const char *indent,
                     const struct chaos_op *op)
{
    char what[CHAOS_MAX_STRING * 2 + 96];
    switch (op->kind) {
    case CHAOS_READ:
    case CHAOS_READ_PLAIN:
        if (op->outcome == CHAOS_OK)
            snprintf(what, sizeof what, "%s = \"%s\" (version %" PRIu64 ")",
                     chaos_kind_names[op->kind], op->value, op->version);
        else
            snprintf(what, sizeof what, "%s = %s", chaos_kind_names[op->kind],
                     chaos_outcome_names[op->outcome]);
        break;
    case CHAOS_CAS:
        snprintf(what, sizeof what, "cas(version %" PRIu64 " -> \"%s\") = %s",
                 op->version, op->value, chaos_outcome_names[op->outcome]);
        break;
    default:
        snprintf(what, sizeof what, "%s(\"%s\") = %s",
                 chaos_kind_names[op->kind], op->value ? op->value : "",
                 chaos_outcome_names[op->outcome]);
        break;
    }
    char when[64];
    if (op->complete_ns == LIN_NEVER)
        snprintf(when, sizeof when, "%.6f s-(no reply)",
                 secs(c, op->invoke_ns));
    else
        snprintf(when, sizeof when, "%.6f-%.6f s", secs(c, op->invoke_ns),
                 secs(c, op->complete_ns));
    say(c, "%sline %zu: client %" PRId64 " %s%s%s, %s%s%s\n", indent, op->line,
        op->client, op->reg ? op->reg : "", op->reg ? " " : "", what, when,
        op->via ? " via " : "", op->via ? op->via : "");
    if (op->error && op->outcome != CHAOS_OK)
        say(c, "%s    (%s)\n", indent, op->error);
}

static void *as_ptr(size_t i)
{
    return (void *)(uintptr_t)(i + 1);
}

static bool from_ptr(void *p, size_t *out)
{
    if (!p)
        return false;
    *out = (size_t)(uintptr_t)p - 1;
    return true;
}

/* ---- registers ---- */

struct reg {
    const char *name;
    size_t init; /* op index of its init, SIZE_MAX if none */
    size_t *ops; /* op indices, in order of invocation */
    size_t n, cap;
};

struct reg_check {
    struct checker *c;
    struct reg *reg;
    struct sk_map ids;      /* value -> id + 1 */
    size_t *writer;         /* id -> op index (SIZE_MAX: the init) */
    uint64_t *version;      /* id -> version read (0: none seen) */
    size_t *version_seen;   /* id -> op that read that version */
    struct sk_map versions; /* version (decimal) -> id + 1 */
    bool *observed;         /* id -> read linearizably or expected */
    size_t n_ids;
};

static const struct chaos_op *op_at(const struct reg_check *rc, size_t i)
{
    return &rc->c->h->ops[i];
}

static const char *value_name(const struct reg_check *rc, int id)
{
    if (id == GHOST)
        return "(a value no read returned)";
    size_t w = rc->writer[id];
    return w == SIZE_MAX ? op_at(rc, rc->reg->init)->value
                         : op_at(rc, w)->value;
}

/* Interns the values written; false (undecided) if two ops write one. */
static bool intern_values(struct reg_check *rc)
{
    struct reg *g = rc->reg;
    size_t cap = g->n + 1;
    rc->writer = sk_malloc(cap * sizeof *rc->writer);
    rc->version = sk_calloc(cap, sizeof *rc->version);
    rc->version_seen = sk_calloc(cap, sizeof *rc->version_seen);
    rc->observed = sk_calloc(cap, sizeof *rc->observed);
    sk_map_put(&rc->ids, op_at(rc, g->init)->value, as_ptr(0));
    rc->writer[0] = SIZE_MAX;
    rc->n_ids = 1;
    for (size_t k = 0; k < g->n; k++) {
        const struct chaos_op *op = op_at(rc, g->ops[k]);
        if (op->kind != CHAOS_WRITE && op->kind != CHAOS_CAS)
            continue;
        size_t prev;
        if (from_ptr(sk_map_get(&rc->ids, op->value), &prev)) {
            undecided(rc->c,
                      "register %s: value \"%s\" is written twice (line "
                      "%zu); the checker needs unique values",
                      g->name, op->value, op->line);
            return false;
        }
        sk_map_put(&rc->ids, op->value, as_ptr(rc->n_ids));
        rc->writer[rc->n_ids++] = g->ops[k];
    }
    return true;
}

/* The checks every read must pass, plain or not. */
static void check_reads(struct reg_check *rc)
{
    struct checker *c = rc->c;
    struct reg *g = rc->reg;
    for (size_t k = 0; k < g->n; k++) {
        const struct chaos_op *op = op_at(rc, g->ops[k]);
        if ((op->kind != CHAOS_READ && op->kind != CHAOS_READ_PLAIN) ||
            op->outcome != CHAOS_OK)
            continue;
        size_t id;
        if (!from_ptr(sk_map_get(&rc->ids, op->value), &id)) {
            if (anomaly(c)) {
                say(c, "register %s: a read returned a value no one wrote:\n",
                    g->name);
                describe(c, "  ", op);
            }
            continue;
        }
        const struct chaos_op *w =
            rc->writer[id] == SIZE_MAX ? NULL : op_at(rc, rc->writer[id]);
        if (w && w->outcome == CHAOS_FAIL) {
            if (anomaly(c)) {
                say(c,
                    "register %s: a read returned a value whose write was "
                    "refused:\n",
                    g->name);
                describe(c, "  ", op);
                describe(c, "  ", w);
            }
        } else if (w && w->invoke_ns > op->complete_ns) {
            if (anomaly(c)) {
                say(c,
                    "register %s: a read returned a value written only "
                    "after its reply:\n",
                    g->name);
                describe(c, "  ", op);
                describe(c, "  ", w);
            }
        }
        char key[24];
        snprintf(key, sizeof key, "%" PRIu64, op->version);
        size_t other;
        if (from_ptr(sk_map_get(&rc->versions, key), &other) && other != id) {
            if (anomaly(c)) {
                say(c, "register %s: version %s was read with two values:\n",
                    g->name, key);
                describe(c, "  ", op_at(rc, rc->version_seen[other]));
                describe(c, "  ", op);
            }
        } else if (rc->version[id] && rc->version[id] != op->version) {
            if (anomaly(c)) {
                say(c,
                    "register %s: value \"%s\" was read with two "
                    "versions:\n",
                    g->name, op->value);
                describe(c, "  ", op_at(rc, rc->version_seen[id]));
                describe(c, "  ", op);
            }
        } else if (!rc->version[id]) {
            rc->version[id] = op->version;
            rc->version_seen[id] = g->ops[k];
            sk_map_put(&rc->versions, key, as_ptr(id));
        }
        if (op->kind == CHAOS_READ)
            rc->observed[id] = true;
    }
}

static int mapped(const struct reg_check *rc, size_t id)
{
    return rc->observed[id] ? (int)id : GHOST;
}

static void report_lin(struct reg_check *rc, const struct lin_op *lops,
                       const size_t *src, size_t n,
                       const struct lin_result *res)
{
    struct checker *c = rc->c;
    struct reg *g = rc->reg;
    if (!anomaly(c))
        return;
    say(c,
        "register %s: not linearizable (%zu ops checked, %" PRIu64 " steps).\n",
        g->name, n, res->steps);
    say(c, "  The longest legal order found places %zu ops; the last:\n",
        res->n_order);
    size_t from = res->n_order > 4 ? res->n_order - 4 : 0;
    for (size_t i = from; i < res->n_order; i++)
        describe(c, "    ", op_at(rc, src[res->order[i]]));
    say(c,
        "  then the register holds \"%s\", and this op cannot be placed "
        "before its reply:\n",
        value_name(rc, res->stuck_state));
    describe(c, "    ", op_at(rc, src[res->stuck]));
    const struct lin_op *s = &lops[res->stuck];
    say(c, "  Ops not yet placed that were invoked before that reply:\n");
    size_t shown = 0;
    bool *placed = sk_calloc(n ? n : 1, sizeof *placed);
    for (size_t i = 0; i < res->n_order; i++)
        placed[res->order[i]] = true;
    for (size_t i = 0; i < n && shown < 12; i++)
        if (!placed[i] && i != res->stuck && lops[i].call <= s->ret) {
            describe(c, "    ", op_at(rc, src[i]));
            shown++;
        }
    if (shown == 0)
        say(c, "    (none)\n");
    free(placed);
}

static void check_register(struct checker *c, struct reg *g)
{
    c->r->registers++;
    if (g->init == SIZE_MAX) {
        undecided(c, "register %s has ops but no init", g->name);
        return;
    }
    struct reg_check rc = {.c = c, .reg = g};
    sk_map_init(&rc.ids);
    sk_map_init(&rc.versions);
    struct lin_op *lops = sk_malloc((g->n + 1) * sizeof *lops);
    size_t *src = sk_malloc((g->n + 1) * sizeof *src);
    size_t n = 0;
    if (!intern_values(&rc))
        goto out;
    check_reads(&rc);

    /* Expected versions to values; those values count as observed. */
    int *expect = sk_malloc((g->n + 1) * sizeof *expect);
    for (size_t k = 0; k < g->n; k++) {
        const struct chaos_op *op = op_at(&rc, g->ops[k]);
        expect[k] = GHOST;
        if (op->kind != CHAOS_CAS)
            continue;
        char key[24];
        snprintf(key, sizeof key, "%" PRIu64, op->version);
        size_t id;
        if (!from_ptr(sk_map_get(&rc.versions, key), &id)) {
            undecided(c,
                      "register %s: the cas of line %zu expects version %s, "
                      "which no read returned",
                      g->name, op->line, key);
            free(expect);
            goto out;
        }
        expect[k] = (int)id;
        rc.observed[id] = true;
    }
    for (size_t k = 0; k < g->n; k++) {
        const struct chaos_op *op = op_at(&rc, g->ops[k]);
        struct lin_op l = {.call = op->invoke_ns, .ret = op->complete_ns};
        size_t id = 0;
        if (op->value)
            from_ptr(sk_map_get(&rc.ids, op->value), &id);
        switch (op->kind) {
        case CHAOS_READ:
            if (op->outcome != CHAOS_OK || !op->value ||
                !sk_map_get(&rc.ids, op->value))
                continue; /* phantoms are reported already */
            l.type = LIN_READ;
            l.value = mapped(&rc, id);
            break;
        case CHAOS_WRITE:
        case CHAOS_CAS:
            if (op->outcome == CHAOS_FAIL &&
                !(op->kind == CHAOS_CAS && op->error &&
                  strcmp(op->error, "conflict") == 0))
                continue; /* refused before it was proposed: never happened */
            l.value = mapped(&rc, id);
            l.expect = expect[k];
            l.type = op->kind == CHAOS_WRITE     ? LIN_WRITE
                     : op->outcome == CHAOS_FAIL ? LIN_CAS_REFUSED
                                                 : LIN_CAS;
            break;
        default:
            continue;
        }
        src[n] = g->ops[k];
        lops[n++] = l;
    }
    free(expect);
    struct lin_result res;
    lin_check(lops, n, mapped(&rc, 0), &c->limits, &res);
    c->r->steps += res.steps;
    if (res.memo_bytes > c->r->memo_bytes)
        c->r->memo_bytes = res.memo_bytes;
    if (res.verdict == LIN_ANOMALY)
        report_lin(&rc, lops, src, n, &res);
    else if (res.verdict == LIN_UNDECIDED) {
        c->r->registers_undecided++;
        undecided(c,
                  "register %s: the search ran out of its budget (%" PRIu64
                  " steps, %zu MiB of memo, %zu ops)",
                  g->name, res.steps, res.memo_bytes >> 20, n);
    }
    lin_result_free(&res);
out:
    free(lops);
    free(src);
    free(rc.writer);
    free(rc.version);
    free(rc.version_seen);
    free(rc.observed);
    sk_map_clear(&rc.ids);
    sk_map_clear(&rc.versions);
}

static void check_registers(struct checker *c)
{
    const struct chaos_history *h = c->h;
    struct sk_map by_name;
    sk_map_init(&by_name);
    struct reg **regs = NULL;
    size_t n_regs = 0;
    for (size_t i = 0; i < h->n; i++) {
        const struct chaos_op *op = &h->ops[i];
        if (!op->reg)
            continue;
        struct reg *g = sk_map_get(&by_name, op->reg);
        if (!g) {
            g = sk_calloc(1, sizeof *g);
            g->name = op->reg;
            g->init = SIZE_MAX;
            sk_map_put(&by_name, op->reg, g);
            regs = sk_realloc(regs, (n_regs + 1) * sizeof *regs);
            regs[n_regs++] = g;
        }
        if (op->kind == CHAOS_INIT) {
            if (g->init != SIZE_MAX || g->n)
                undecided(c,
                          "register %s: init on line %zu after other ops on "
                          "it",
                          op->reg, op->line);
            else
                g->init = i;
            continue;
        }
        if (g->n == g->cap) {
            g->cap = g->cap ? g->cap * 2 : 64;
            g->ops = sk_realloc(g->ops, g->cap * sizeof *g->ops);
        }
        g->ops[g->n++] = i;
    }
    for (size_t i = 0; i < n_regs; i++) {
        check_register(c, regs[i]);
        free(regs[i]->ops);
        free(regs[i]);
    }
    free(regs);
    sk_map_clear(&by_name);
}

/* ---- the set ---- */

static void check_set(struct checker *c)
{
    const struct chaos_history *h = c->h;
    struct check_report *r = c->r;
    struct sk_map adds;
    sk_map_init(&adds);
    for (size_t i = 0; i < h->n; i++) {
        const struct chaos_op *op = &h->ops[i];
        if (op->kind != CHAOS_ADD)
            continue;
        r->adds++;
        r->adds_ok += op->outcome == CHAOS_OK;
        r->adds_unknown += op->outcome == CHAOS_INFO;
        if (sk_map_put(&adds, op->value, as_ptr(i))) {
            undecided(c, "set: \"%s\" is added twice (line %zu)", op->value,
                      op->line);
            sk_map_clear(&adds);
            return;
        }
    }
    const struct chaos_op *last = NULL;
    for (size_t i = 0; i < h->n; i++) {
        const struct chaos_op *rd = &h->ops[i];
        if (rd->kind != CHAOS_SET_READ || rd->outcome != CHAOS_OK)
            continue;
        r->set_reads++;
        last = rd;
        struct sk_map seen;
        sk_map_init(&seen);
        for (size_t j = 0; j < rd->n_elems; j++) {
            sk_map_put(&seen, rd->elems[j], as_ptr(j));
            size_t a;
            if (!from_ptr(sk_map_get(&adds, rd->elems[j]), &a)) {
                if (anomaly(c))
                    say(c,
                        "set: the read of line %zu%s%s holds \"%s\", which "
                        "no one added\n",
                        rd->line, rd->via ? " via " : "",
                        rd->via ? rd->via : "", rd->elems[j]);
            } else if (h->ops[a].outcome == CHAOS_FAIL) {
                if (anomaly(c)) {
                    say(c,
                        "set: the read of line %zu%s%s holds \"%s\", whose "
                        "add was refused:\n",
                        rd->line, rd->via ? " via " : "",
                        rd->via ? rd->via : "", rd->elems[j]);
                    describe(c, "  ", &h->ops[a]);
                }
            }
        }
        for (size_t i2 = 0; i2 < h->n; i2++) {
            const struct chaos_op *a = &h->ops[i2];
            if (a->kind != CHAOS_ADD || a->outcome != CHAOS_OK ||
                sk_map_get(&seen, a->value))
                continue;
            if (anomaly(c)) {
                say(c,
                    "set: lost: the read of line %zu%s%s lacks \"%s\", "
                    "whose add was acknowledged:\n",
                    rd->line, rd->via ? " via " : "", rd->via ? rd->via : "",
                    a->value);
                describe(c, "  ", a);
            }
        }
        sk_map_clear(&seen);
    }
    if (last) {
        struct sk_map seen;
        sk_map_init(&seen);
        for (size_t j = 0; j < last->n_elems; j++)
            sk_map_put(&seen, last->elems[j], as_ptr(j));
        for (size_t i = 0; i < h->n; i++)
            r->adds_unknown_present +=
                h->ops[i].kind == CHAOS_ADD &&
                h->ops[i].outcome == CHAOS_INFO &&
                sk_map_get(&seen, h->ops[i].value) != NULL;
        sk_map_clear(&seen);
    } else if (r->adds) {
        undecided(c, "set: %zu adds but no final read of the set", r->adds);
    }
    sk_map_clear(&adds);
}

enum check_verdict chaos_check(const struct chaos_history *h,
                               const struct check_opts *opts,
                               struct check_report *out)
{
    memset(out, 0, sizeof *out);
    out->text = sk_strdup("");
    struct checker c = {
        .h = h,
        .r = out,
        .limits =
            {
                .max_steps = opts && opts->max_steps ? opts->max_steps
                                                     : DEFAULT_MAX_STEPS,
                .max_memo_bytes = opts && opts->max_memo_bytes
                                      ? opts->max_memo_bytes
                                      : DEFAULT_MAX_MEMO_BYTES,
            },
    };
    for (size_t i = 0; i < h->n; i++) {
        const struct chaos_op *op = &h->ops[i];
        if (i == 0 || op->invoke_ns < c.t_base)
            c.t_base = op->invoke_ns;
        if (op->kind == CHAOS_INIT || op->kind == CHAOS_SET_READ)
            continue;
        out->ops++;
        out->ok += op->outcome == CHAOS_OK;
        out->fail += op->outcome == CHAOS_FAIL;
        out->info += op->outcome == CHAOS_INFO;
    }
    check_registers(&c);
    check_set(&c);
    if (out->anomalies) {
        out->verdict = CHECK_ANOMALY;
        say(&c,
            "(times are seconds since the first event, at %.3f s of the "
            "monotonic clock)\n",
            (double)c.t_base / 1e9);
        if (c.described > MAX_DESCRIBED)
            say(&c, "(%zu more anomalies not described)\n",
                c.described - MAX_DESCRIBED);
    }
    return out->verdict;
}

void check_report_free(struct check_report *r)
{
    if (!r)
        return;
    free(r->text);
    r->text = NULL;
    r->text_len = 0;
}
