/* The Wing & Gong / Lowe search, laid out as in Porcupine: the calls and
 * replies of all ops in one doubly linked list in time order; linearizing
 * an op lifts its call and its reply out of the list, backtracking puts
 * them back. Reaching an op's reply in the list means it could not be
 * placed before it: backtrack. */
#include "linearize.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/mem.h"

struct entry {
    int64_t time;
    size_t op;
    bool is_call;
    struct entry *match; /* call <-> reply */
    struct entry *prev, *next;
};

struct frame {
    struct entry *call;
    int state;
    uint64_t hash;
};

/* Memo of explored (state, linearized set) pairs: open addressing on a
 * Zobrist hash of the set; the sets themselves live in one word arena. */
struct memo {
    struct slot {
        uint64_t hash; /* 0: empty (hashes are forced non-zero) */
        int state;
        size_t bits; /* offset in words */
    } * slots;
    size_t cap, used;
    uint64_t *words;
    size_t n_words, cap_words, set_words;
};

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t slot_hash(uint64_t set_hash, int state)
{
    uint64_t x = set_hash ^ ((uint64_t)(uint32_t)state * 0xff51afd7ed558ccdull);
    uint64_t h = splitmix(&x);
    return h ? h : 1;
}

static void memo_grow(struct memo *m)
{
    struct slot *old = m->slots;
    size_t old_cap = m->cap;
    m->cap = old_cap ? old_cap * 2 : 1024;
    m->slots = sk_calloc(m->cap, sizeof *m->slots);
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].hash)
            continue;
        size_t j = old[i].hash & (m->cap - 1);
        while (m->slots[j].hash)
            j = (j + 1) & (m->cap - 1);
        m->slots[j] = old[i];
    }
    free(old);
}

/* Adds (state, bits); returns false if it was there already. */
static bool memo_add(struct memo *m, uint64_t set_hash, int state,
                     const uint64_t *bits)
{
    if ((m->used + 1) * 2 > m->cap)
        memo_grow(m);
    uint64_t h = slot_hash(set_hash, state);
    size_t j = h & (m->cap - 1);
    for (; m->slots[j].hash; j = (j + 1) & (m->cap - 1)) {
        const struct slot *s = &m->slots[j];
        if (s->hash == h && s->state == state &&
            memcmp(m->words + s->bits, bits, m->set_words * sizeof *bits) == 0)
            return false;
    }
    if (m->n_words + m->set_words > m->cap_words) {
        m->cap_words = (m->cap_words + m->set_words) * 2;
        m->words = sk_realloc(m->words, m->cap_words * sizeof *m->words);
    }
    memcpy(m->words + m->n_words, bits, m->set_words * sizeof *bits);
    m->slots[j] = (struct slot){.hash = h, .state = state, .bits = m->n_words};
    m->n_words += m->set_words;
    m->used++;
    return true;
}

static size_t memo_bytes(const struct memo *m)
{
    return m->cap * sizeof *m->slots + m->cap_words * sizeof *m->words;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    /* At the same instant, calls first: that makes the ops concurrent,
     * which can only allow more orders, never report a false anomaly. */
    if (x->is_call != y->is_call)
        return x->is_call ? -1 : 1;
    return x->op < y->op ? -1 : x->op > y->op;
}

static void lift(struct entry *call)
{
    call->prev->next = call->next;
    call->next->prev = call->prev; /* a call is always followed by its reply */
    struct entry *r = call->match;
    r->prev->next = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

static void unlift(struct entry *call)
{
    struct entry *r = call->match;
    r->prev->next = r;
    if (r->next)
        r->next->prev = r;
    call->prev->next = call;
    call->next->prev = call;
}

/* Applies op to state: false if it is not legal there. */
static bool step(const struct lin_op *op, int state, int *next)
{
    switch (op->type) {
    case LIN_READ:
        *next = state;
        return state == op->value;
    case LIN_WRITE:
        *next = op->value;
        return true;
    case LIN_CAS:
        *next = op->value;
        return state == op->expect;
    case LIN_CAS_REFUSED:
        *next = state;
        return state != op->expect;
    }
    return false;
}

/* An unanswered op's effect and call, for grouping equal effects. */
struct effect {
    enum lin_type type;
    int value, expect;
    int64_t call;
    size_t op;
};

static int cmp_effect(const struct effect *x, const struct effect *y)
{
    if (x->type != y->type)
        return x->type < y->type ? -1 : 1;
    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    if (x->expect != y->expect)
        return x->expect < y->expect ? -1 : 1;
    return 0;
}

static int cmp_effect_then_call(const void *a, const void *b)
{
    const struct effect *x = a, *y = b;
    int c = cmp_effect(x, y);
    if (c)
        return c;
    if (x->call != y->call)
        return x->call < y->call ? -1 : 1;
    return x->op < y->op ? -1 : x->op > y->op;
}

/* prev[i]: for an unanswered op, the unanswered op with the same effect
 * called just before it (SIZE_MAX if none): it may only be linearized once
 * that one is. */
static size_t *same_effect_chain(const struct lin_op *ops, size_t n)
{
    size_t *prev = sk_malloc((n ? n : 1) * sizeof *prev);
    struct effect *fx = sk_malloc((n ? n : 1) * sizeof *fx);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        prev[i] = SIZE_MAX;
        if (ops[i].ret == LIN_NEVER)
            fx[k++] = (struct effect){
                .type = ops[i].type,
                .value = ops[i].value,
                .expect = ops[i].type == LIN_CAS ? ops[i].expect : 0,
                .call = ops[i].call,
                .op = i};
    }
    qsort(fx, k, sizeof *fx, cmp_effect_then_call);
    for (size_t j = 1; j < k; j++)
        if (cmp_effect(&fx[j - 1], &fx[j]) == 0)
            prev[fx[j].op] = fx[j - 1].op;
    free(fx);
    return prev;
}

enum lin_verdict lin_check(const struct lin_op *ops, size_t n, int init,
                           const struct lin_limits *limits,
                           struct lin_result *out)
{
    memset(out, 0, sizeof *out);
    out->stuck = SIZE_MAX;

    struct entry *entries = sk_calloc(2 * n + 1, sizeof *entries);
    struct entry *head = &entries[2 * n];
    for (size_t i = 0; i < n; i++) {
        entries[2 * i] =
            (struct entry){.time = ops[i].call, .op = i, .is_call = true};
        entries[2 * i + 1] = (struct entry){.time = ops[i].ret, .op = i};
    }
    qsort(entries, 2 * n, sizeof *entries, cmp_entry);
    size_t *call_at = sk_malloc((n ? n : 1) * sizeof *call_at);
    size_t *ret_at = sk_malloc((n ? n : 1) * sizeof *ret_at);
    for (size_t i = 0; i < 2 * n; i++)
        (entries[i].is_call ? call_at : ret_at)[entries[i].op] = i;
    head->prev = NULL;
    head->next = n ? &entries[0] : NULL;
    for (size_t i = 0; i < 2 * n; i++) {
        entries[i].prev = i ? &entries[i - 1] : head;
        entries[i].next = i + 1 < 2 * n ? &entries[i + 1] : NULL;
    }
    for (size_t i = 0; i < n; i++) {
        entries[call_at[i]].match = &entries[ret_at[i]];
        entries[ret_at[i]].match = &entries[call_at[i]];
    }

    size_t *prev_same = same_effect_chain(ops, n);
    uint64_t *zobrist = sk_malloc((n ? n : 1) * sizeof *zobrist);
    uint64_t seed = 0x5eed;
    for (size_t i = 0; i < n; i++)
        zobrist[i] = splitmix(&seed);
    size_t set_words = (n + 63) / 64 + 1;
    uint64_t *bits = sk_calloc(set_words, sizeof *bits);
    struct memo memo = {.set_words = set_words};
    struct frame *stack = sk_malloc((n ? n : 1) * sizeof *stack);
    size_t depth = 0, definite = 0;
    for (size_t i = 0; i < n; i++)
        definite += ops[i].ret != LIN_NEVER;

    int state = init;
    uint64_t hash = 0;
    enum lin_verdict verdict = LIN_OK;
    bool have_best = false;
    struct entry *e = head->next;
    /* While an answered op is left, so is its reply, after e: e cannot run
     * off the end of the list. */
    while (definite > 0) {
        if (++out->steps > limits->max_steps ||
            memo_bytes(&memo) > limits->max_memo_bytes) {
            verdict = LIN_UNDECIDED;
            break;
        }
        const struct lin_op *op = &ops[e->op];
        if (e->is_call) {
            int next;
            bool unanswered = op->ret == LIN_NEVER;
            size_t before = prev_same[e->op];
            bool may = step(op, state, &next) &&
                       !(unanswered && next == state) &&
                       !(unanswered && before != SIZE_MAX &&
                         !(bits[before / 64] >> (before % 64) & 1));
            if (may) {
                bits[e->op / 64] |= 1ull << (e->op % 64);
                uint64_t h = hash ^ zobrist[e->op];
                if (memo_add(&memo, h, next, bits)) {
                    stack[depth++] = (struct frame){e, state, hash};
                    state = next;
                    hash = h;
                    definite -= !unanswered;
                    lift(e);
                    e = head->next;
                    continue;
                }
                bits[e->op / 64] &= ~(1ull << (e->op % 64));
            }
            e = e->next;
            continue;
        }
        if (op->ret == LIN_NEVER)
            break; /* only unanswered ops are left: they may never happen */
        /* This reply came before its op could be placed. */
        if (!have_best || depth > out->n_order) {
            have_best = true;
            out->order = sk_realloc(out->order,
                                    (depth ? depth : 1) * sizeof *out->order);
            for (size_t i = 0; i < depth; i++)
                out->order[i] = stack[i].call->op;
            out->n_order = depth;
            out->stuck = e->op;
            out->stuck_state = state;
        }
        if (depth == 0) {
            verdict = LIN_ANOMALY;
            break;
        }
        struct frame *f = &stack[--depth];
        state = f->state;
        hash = f->hash;
        bits[f->call->op / 64] &= ~(1ull << (f->call->op % 64));
        definite += ops[f->call->op].ret != LIN_NEVER;
        unlift(f->call);
        e = f->call->next;
    }
    if (verdict != LIN_ANOMALY) {
        free(out->order);
        out->order = NULL;
        out->n_order = 0;
        out->stuck = SIZE_MAX;
    }
    out->verdict = verdict;
    out->memo_entries = memo.used;
    out->memo_bytes = memo_bytes(&memo);
    free(memo.slots);
    free(memo.words);
    free(stack);
    free(bits);
    free(zobrist);
    free(prev_same);
    free(call_at);
    free(ret_at);
    free(entries);
    return verdict;
}

void lin_result_free(struct lin_result *r)
{
    if (!r)
        return;
    free(r->order);
    r->order = NULL;
    r->n_order = 0;
}
