#include "history.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/mem.h"

const char *const chaos_kind_names[CHAOS_KIND_COUNT] = {
    [CHAOS_INIT] = "init",
    [CHAOS_READ] = "read",
    [CHAOS_READ_PLAIN] = "read_plain",
    [CHAOS_WRITE] = "write",
    [CHAOS_CAS] = "cas",
    [CHAOS_ADD] = "add",
    [CHAOS_SET_READ] = "set_read",
};
const char *const chaos_outcome_names[3] = {"ok", "fail", "info"};

struct parser {
    struct chaos_history *h;
    size_t line;
    size_t *pending; /* by client: index of its op in flight + 1, or 0 */
    size_t n_pending;
    char *err;
    size_t errsize;
};

static bool fail(struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool fail(struct parser *p, const char *fmt, ...)
{
    int n = snprintf(p->err, p->errsize, "line %zu: ", p->line);
    if (n < 0 || (size_t)n >= p->errsize)
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errsize - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

static int lookup(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

/* A string field: NULL if absent; false (and an error) if not a string or
 * too long. */
static bool get_str(struct parser *p, json_t *o, const char *key,
                    const char **out)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v))
        return fail(p, "\"%s\" is not a string", key);
    if (json_string_length(v) > CHAOS_MAX_STRING ||
        strlen(json_string_value(v)) != json_string_length(v))
        return fail(p, "\"%s\" is longer than %u bytes or holds a NUL", key,
                    CHAOS_MAX_STRING);
    *out = json_string_value(v);
    return true;
}

static char *dup_or_null(const char *s)
{
    return s ? sk_strdup(s) : NULL;
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static struct chaos_op *new_op(struct chaos_history *h)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 256;
        h->ops = sk_realloc(h->ops, h->cap * sizeof *h->ops);
    }
    struct chaos_op *op = &h->ops[h->n++];
    memset(op, 0, sizeof *op);
    return op;
}

static bool set_elems(struct parser *p, struct chaos_op *op, json_t *o)
{
    json_t *arr = json_object_get(o, "values");
    if (!json_is_array(arr))
        return fail(p, "set_read ok without a \"values\" array");
    op->n_elems = json_array_size(arr);
    op->elems = sk_calloc(op->n_elems ? op->n_elems : 1, sizeof *op->elems);
    for (size_t i = 0; i < op->n_elems; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_string(v) || json_string_length(v) > CHAOS_MAX_STRING)
            return fail(p,
                        "set_read: element %zu is not a string of at most "
                        "%u bytes",
                        i, CHAOS_MAX_STRING);
        op->elems[i] = sk_strdup(json_string_value(v));
    }
    return true;
}

static bool event(struct parser *p, json_t *o)
{
    if (!json_is_object(o))
        return fail(p, "not a JSON object");
    json_t *jclient = json_object_get(o, "client");
    json_t *jt = json_object_get(o, "t_ns");
    json_t *jver = json_object_get(o, "version");
    const char *op_name, *type_name, *reg, *value, *error, *via;
    if (!get_str(p, o, "op", &op_name) || !get_str(p, o, "type", &type_name) ||
        !get_str(p, o, "register", &reg) || !get_str(p, o, "value", &value) ||
        !get_str(p, o, "error", &error) || !get_str(p, o, "via", &via))
        return false;
    int kind = lookup(chaos_kind_names, CHAOS_KIND_COUNT, op_name);
    if (kind < 0)
        return fail(p, "unknown op \"%s\"", op_name ? op_name : "(none)");
    bool invoke = type_name && strcmp(type_name, "invoke") == 0;
    int outcome = lookup(chaos_outcome_names, 3, type_name);
    if (!invoke && outcome < 0)
        return fail(p, "type must be invoke, ok, fail or info, not \"%s\"",
                    type_name ? type_name : "(none)");
    if (!json_is_integer(jt) || json_integer_value(jt) < 0)
        return fail(p, "t_ns must be a non-negative integer");
    int64_t t = json_integer_value(jt);
    if (jver && !json_is_null(jver) &&
        (!json_is_integer(jver) || json_integer_value(jver) < 0))
        return fail(p, "version must be a non-negative integer");
    uint64_t version =
        jver && json_is_integer(jver) ? (uint64_t)json_integer_value(jver) : 0;
    bool has_reg = kind == CHAOS_INIT || kind == CHAOS_READ ||
                   kind == CHAOS_READ_PLAIN || kind == CHAOS_WRITE ||
                   kind == CHAOS_CAS;
    if (has_reg && !reg)
        return fail(p, "%s without a register", op_name);

    if (kind == CHAOS_INIT) {
        if (outcome != CHAOS_OK || !value)
            return fail(p, "init must be type ok with a value");
        struct chaos_op *op = new_op(p->h);
        op->client = -1;
        op->kind = CHAOS_INIT;
        op->outcome = CHAOS_OK;
        op->reg = sk_strdup(reg);
        op->value = sk_strdup(value);
        op->invoke_ns = op->complete_ns = t;
        op->line = p->line;
        return true;
    }

    if (!json_is_integer(jclient) || json_integer_value(jclient) < 0 ||
        json_integer_value(jclient) >= CHAOS_MAX_CLIENT)
        return fail(p, "client must be an integer from 0 to %d",
                    CHAOS_MAX_CLIENT - 1);
    size_t client = (size_t)json_integer_value(jclient);
    if (client >= p->n_pending) {
        size_t n = p->n_pending ? p->n_pending : 64;
        while (n <= client)
            n *= 2;
        p->pending = sk_realloc(p->pending, n * sizeof *p->pending);
        memset(p->pending + p->n_pending, 0,
               (n - p->n_pending) * sizeof *p->pending);
        p->n_pending = n;
    }
    if (invoke) {
        if (p->pending[client])
            return fail(p,
                        "client %zu invokes an op while its op of line %zu "
                        "is in flight",
                        client, p->h->ops[p->pending[client] - 1].line);
        if ((kind == CHAOS_WRITE || kind == CHAOS_CAS || kind == CHAOS_ADD) &&
            !value)
            return fail(p, "%s without a value", op_name);
        struct chaos_op *op = new_op(p->h);
        op->client = (int64_t)client;
        op->kind = (enum chaos_kind)kind;
        op->outcome = CHAOS_INFO;
        op->reg = dup_or_null(reg);
        op->value = kind == CHAOS_READ || kind == CHAOS_READ_PLAIN ||
                            kind == CHAOS_SET_READ
                        ? NULL
                        : dup_or_null(value);
        op->version = kind == CHAOS_CAS ? version : 0;
        op->via = dup_or_null(via);
        op->invoke_ns = t;
        op->complete_ns = LIN_NEVER;
        op->line = p->line;
        p->pending[client] = p->h->n;
        return true;
    }
    if (!p->pending[client])
        return fail(p, "client %zu completes an op it never invoked", client);
    struct chaos_op *op = &p->h->ops[p->pending[client] - 1];
    if (op->kind != (enum chaos_kind)kind || !same(op->reg, reg))
        return fail(p,
                    "client %zu completes %s on %s, but invoked %s on %s "
                    "(line %zu)",
                    client, op_name, reg ? reg : "-",
                    chaos_kind_names[op->kind], op->reg ? op->reg : "-",
                    op->line);
    if (t < op->invoke_ns)
        return fail(p, "completion before its invoke (line %zu)", op->line);
    p->pending[client] = 0;
    op->outcome = (enum chaos_outcome)outcome;
    op->error = dup_or_null(error);
    if (outcome == CHAOS_INFO)
        return true; /* complete_ns stays LIN_NEVER */
    op->complete_ns = t;
    if (outcome == CHAOS_OK &&
        (kind == CHAOS_READ || kind == CHAOS_READ_PLAIN)) {
        if (!value || !jver || !json_is_integer(jver))
            return fail(p, "%s ok without value and version", op_name);
        op->value = sk_strdup(value);
        op->version = version;
    }
    if (outcome == CHAOS_OK && kind == CHAOS_SET_READ)
        return set_elems(p, op, o);
    return true;
}

bool chaos_history_parse(const char *text, size_t len,
                         struct chaos_history *out, char *errbuf,
                         size_t errsize)
{
    memset(out, 0, sizeof *out);
    struct parser p = {.h = out, .err = errbuf, .errsize = errsize};
    const char *s = text, *end = text + len;
    bool ok = true;
    while (ok && s < end) {
        p.line++;
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
        if (n > CHAOS_MAX_LINE) {
            ok = fail(&p, "longer than %u bytes", CHAOS_MAX_LINE);
            break;
        }
        size_t blank = 0;
        while (blank < n &&
               (s[blank] == ' ' || s[blank] == '\t' || s[blank] == '\r'))
            blank++;
        if (blank < n) {
            json_error_t jerr;
            json_t *o = json_loadb(s, n, JSON_REJECT_DUPLICATES, &jerr);
            if (!o)
                ok = fail(&p, "not JSON: %s", jerr.text);
            else
                ok = event(&p, o);
            json_decref(o);
        }
        s += n + (nl != NULL);
    }
    free(p.pending);
    if (!ok)
        chaos_history_free(out);
    return ok;
}

void chaos_history_free(struct chaos_history *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++) {
        struct chaos_op *op = &h->ops[i];
        free(op->reg);
        free(op->value);
        free(op->error);
        free(op->via);
        for (size_t j = 0; j < op->n_elems; j++)
            free(op->elems[j]);
        free(op->elems);
    }
    free(h->ops);
    memset(h, 0, sizeof *h);
}
