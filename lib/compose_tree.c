/* The Compose loader's trees: libyaml's document into nodes with lines,
 * interpolation, the two-form keys made one, and Compose's merge of
 * several files. See compose_tree.h. */
#include "compose_tree.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "skiff/mem.h"

/* ---- arena ---- */

#define ARENA_BLOCK (64 * 1024)
#define ARENA_ALIGN 16

struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    max_align_t data[];
};

void *arena_alloc(struct cctx *c, size_t size)
{
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    struct arena_block *b = c->arena;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > ARENA_BLOCK ? size : ARENA_BLOCK;
        b = sk_malloc(sizeof *b + cap);
        b->used = 0;
        b->cap = cap;
        b->next = c->arena;
        c->arena = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

char *arena_strndup(struct cctx *c, const char *s, size_t n)
{
    char *d = arena_alloc(c, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *arena_strdup(struct cctx *c, const char *s)
{
    return arena_strndup(c, s, strlen(s));
}

char *arena_printf(struct cctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *heap = sk_vprintf(fmt, ap);
    va_end(ap);
    char *s = arena_strdup(c, heap);
    free(heap);
    return s;
}

void arena_release(struct cctx *c)
{
    while (c->arena) {
        struct arena_block *next = c->arena->next;
        free(c->arena);
        c->arena = next;
    }
}

/* ---- notes ---- */

#define MAX_WARNINGS 1000

static void add_note(struct sk_compose_note **list, size_t *n, size_t cap,
                     const char *file, int64_t line, const char *fmt,
                     va_list ap) __attribute__((format(printf, 6, 0)));

static void add_note(struct sk_compose_note **list, size_t *n, size_t cap,
                     const char *file, int64_t line, const char *fmt,
                     va_list ap)
{
    char *msg = sk_vprintf(fmt, ap);
    for (size_t i = 0; i < *n; i++) {
        const struct sk_compose_note *o = &(*list)[i];
        if (o->line == line && strcmp(o->msg, msg) == 0 &&
            strcmp(o->file, file) == 0) {
            free(msg);
            return;
        }
    }
    if (*n > cap) {
        free(msg);
        return;
    }
    if (*n == cap) {
        free(msg);
        msg = sk_printf("more problems were left out (after %zu)", cap);
        line = 0;
    }
    *list = sk_realloc(*list, (*n + 1) * sizeof **list);
    (*list)[*n] =
        (struct sk_compose_note){.file = file, .line = line, .msg = msg};
    (*n)++;
}

void note_error(struct cctx *c, const char *file, int64_t line, const char *fmt,
                ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_note(&c->st->errors, &c->st->n_errors, SK_COMPOSE_MAX_ERRORS, file,
             line, fmt, ap);
    va_end(ap);
}

void note_warn(struct cctx *c, const char *file, int64_t line, const char *fmt,
               ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_note(&c->st->warnings, &c->st->n_warnings, MAX_WARNINGS, file, line,
             fmt, ap);
    va_end(ap);
}

void node_error(struct cctx *c, const struct ynode *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_note(&c->st->errors, &c->st->n_errors, SK_COMPOSE_MAX_ERRORS, at->file,
             at->line, fmt, ap);
    va_end(ap);
}

void node_warn(struct cctx *c, const struct ynode *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_note(&c->st->warnings, &c->st->n_warnings, MAX_WARNINGS, at->file,
             at->line, fmt, ap);
    va_end(ap);
}

/* ---- nodes ---- */

struct ynode *ynode_new(struct cctx *c, enum ykind kind, const struct ynode *at)
{
    struct ynode *n = arena_alloc(c, sizeof *n);
    n->kind = kind;
    n->file = at->file;
    n->line = at->line;
    n->text = "";
    return n;
}

struct ynode *ymap_get(const struct ynode *map, const char *key)
{
    if (!map || map->kind != Y_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i]->text, key) == 0)
            return map->vals[i];
    return NULL;
}

static void grow(struct cctx *c, struct ynode ***arr, size_t n)
{
    struct ynode **a = arena_alloc(c, (n + 1) * sizeof *a);
    if (n)
        memcpy(a, *arr, n * sizeof *a);
    *arr = a;
}

static void seq_push(struct cctx *c, struct ynode *seq, struct ynode *item)
{
    grow(c, &seq->items, seq->n);
    seq->items[seq->n++] = item;
}

void ymap_set(struct cctx *c, struct ynode *map, struct ynode *key,
              struct ynode *val)
{
    for (size_t i = 0; i < map->n; i++) {
        if (strcmp(map->keys[i]->text, key->text) != 0)
            continue;
        if (val) {
            map->vals[i] = val;
            return;
        }
        memmove(&map->keys[i], &map->keys[i + 1],
                (map->n - i - 1) * sizeof *map->keys);
        memmove(&map->vals[i], &map->vals[i + 1],
                (map->n - i - 1) * sizeof *map->vals);
        map->n--;
        return;
    }
    if (!val)
        return;
    grow(c, &map->keys, map->n);
    grow(c, &map->vals, map->n);
    map->keys[map->n] = key;
    map->vals[map->n] = val;
    map->n++;
}

/* ---- parsing ---- */

/* Entries of one mapping or list: far beyond any Compose file, and low
 * enough that checking keys pairwise stays cheap. */
#define MAX_ENTRIES 4096

static bool is_null_literal(const char *s, size_t len)
{
    return len == 0 || (len == 1 && s[0] == '~') ||
           (len == 4 &&
            (memcmp(s, "null", 4) == 0 || memcmp(s, "Null", 4) == 0 ||
             memcmp(s, "NULL", 4) == 0));
}

static bool is_merge_key(const yaml_node_t *k)
{
    return k->type == YAML_SCALAR_NODE &&
           k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           k->data.scalar.length == 2 &&
           memcmp(k->data.scalar.value, "<<", 2) == 0;
}

static struct ynode *conv(struct cctx *c, yaml_document_t *doc, yaml_node_t *yn,
                          const char *file, int depth);

/* Appends the pairs of a `<<` merge source that the map does not have. */
static void merge_key_source(struct cctx *c, struct ynode *map,
                             const struct ynode *src, const struct ynode *at)
{
    if (src->kind != Y_MAP) {
        node_error(c, at,
                   "a << merge key wants a mapping or a list of mappings");
        return;
    }
    for (size_t i = 0; i < src->n; i++)
        if (!ymap_get(map, src->keys[i]->text))
            ymap_set(c, map, src->keys[i], src->vals[i]);
}

static struct ynode *conv_map(struct cctx *c, yaml_document_t *doc,
                              yaml_node_t *yn, struct ynode *n, int depth)
{
    yaml_node_pair_t *start = yn->data.mapping.pairs.start;
    size_t count = (size_t)(yn->data.mapping.pairs.top - start);
    if (count > MAX_ENTRIES) {
        node_error(c, n, "a mapping of more than %d entries", MAX_ENTRIES);
        return NULL;
    }
    n->keys = arena_alloc(c, (count ? count : 1) * sizeof *n->keys);
    n->vals = arena_alloc(c, (count ? count : 1) * sizeof *n->vals);
    struct ynode **merges =
        arena_alloc(c, (count ? count : 1) * sizeof *merges);
    size_t n_merges = 0;
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *yk = yaml_document_get_node(doc, start[i].key);
        yaml_node_t *yv = yaml_document_get_node(doc, start[i].value);
        struct ynode *v = conv(c, doc, yv, n->file, depth + 1);
        if (!v)
            return NULL;
        if (is_merge_key(yk)) {
            merges[n_merges++] = v;
            continue;
        }
        struct ynode *k = conv(c, doc, yk, n->file, depth + 1);
        if (!k)
            return NULL;
        if (k->kind != Y_SCALAR && k->kind != Y_NULL) {
            node_error(c, k, "a mapping key must be a plain value");
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < n->n && !dup; j++) {
            if (strcmp(n->keys[j]->text, k->text) == 0) {
                node_error(c, k,
                           "key \"%s\" is given twice (first at line %lld)",
                           k->text, (long long)n->keys[j]->line);
                dup = true;
            }
        }
        if (dup)
            continue;
        n->keys[n->n] = k;
        n->vals[n->n] = v;
        n->n++;
    }
    /* Explicit keys win over merged ones, and an earlier source over a
     * later one (YAML's merge key). */
    for (size_t m = 0; m < n_merges; m++) {
        const struct ynode *src = merges[m];
        if (src->kind == Y_SEQ) {
            for (size_t i = 0; i < src->n; i++)
                merge_key_source(c, n, src->items[i], src);
        } else {
            merge_key_source(c, n, src, src);
        }
    }
    return n;
}

static struct ynode *conv(struct cctx *c, yaml_document_t *doc, yaml_node_t *yn,
                          const char *file, int depth)
{
    if (c->nodes_exceeded)
        return NULL;
    int64_t line = (int64_t)yn->start_mark.line + 1;
    if (depth > SK_COMPOSE_MAX_DEPTH) {
        note_error(c, file, line,
                   "nested more than %d levels deep (an alias inside "
                   "itself?)",
                   SK_COMPOSE_MAX_DEPTH);
        return NULL;
    }
    if (++c->n_nodes > SK_COMPOSE_MAX_NODES) {
        c->nodes_exceeded = true;
        note_error(c, file, line,
                   "more than %d YAML nodes once aliases are expanded",
                   SK_COMPOSE_MAX_NODES);
        return NULL;
    }
    struct ynode *n = arena_alloc(c, sizeof *n);
    n->file = file;
    n->line = line;
    n->text = "";
    const char *tag = (const char *)yn->tag;
    if (tag && strcmp(tag, "!reset") == 0)
        n->tag = YT_RESET;
    else if (tag && strcmp(tag, "!override") == 0)
        n->tag = YT_OVERRIDE;
    else if (tag && strncmp(tag, "tag:yaml.org,2002:", 18) != 0 &&
             strcmp(tag, "!") != 0)
        note_warn(c, file, line, "tag %.64s is not honoured (ignored)", tag);
    switch (yn->type) {
    case YAML_SCALAR_NODE: {
        const char *v = (const char *)yn->data.scalar.value;
        size_t len = yn->data.scalar.length;
        if (memchr(v, '\0', len)) {
            note_error(c, file, line, "a value holds a NUL character");
            return NULL;
        }
        n->quoted = yn->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        n->kind = !n->quoted && is_null_literal(v, len) ? Y_NULL : Y_SCALAR;
        if (n->kind == Y_SCALAR)
            n->text = arena_strndup(c, v, len);
        return n;
    }
    case YAML_SEQUENCE_NODE: {
        yaml_node_item_t *start = yn->data.sequence.items.start;
        size_t count = (size_t)(yn->data.sequence.items.top - start);
        if (count > MAX_ENTRIES) {
            note_error(c, file, line, "a list of more than %d entries",
                       MAX_ENTRIES);
            return NULL;
        }
        n->kind = Y_SEQ;
        n->items = arena_alloc(c, (count ? count : 1) * sizeof *n->items);
        for (size_t i = 0; i < count; i++) {
            struct ynode *item = conv(
                c, doc, yaml_document_get_node(doc, start[i]), file, depth + 1);
            if (!item)
                return NULL;
            n->items[n->n++] = item;
        }
        return n;
    }
    case YAML_MAPPING_NODE:
        n->kind = Y_MAP;
        return conv_map(c, doc, yn, n, depth);
    default:
        note_error(c, file, line, "an empty YAML node");
        return NULL;
    }
}

/* The line of a byte offset, for reader errors (which have no mark). */
static int64_t line_of(const char *text, size_t len, size_t offset)
{
    int64_t line = 1;
    for (size_t i = 0; i < offset && i < len; i++)
        line += text[i] == '\n';
    return line;
}

static void yaml_problem(struct cctx *c, const char *file, const char *text,
                         size_t len, const yaml_parser_t *p)
{
    int64_t line = p->error == YAML_READER_ERROR
                       ? line_of(text, len, p->problem_offset)
                       : (int64_t)p->problem_mark.line + 1;
    const char *problem = p->problem ? p->problem : "not valid YAML";
    if (p->context)
        note_error(c, file, line, "YAML: %s (%s at line %lld)", problem,
                   p->context, (long long)p->context_mark.line + 1);
    else
        note_error(c, file, line, "YAML: %s", problem);
}

struct ynode *ytree_parse(struct cctx *c, const char *file, const char *text,
                          size_t len)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        sk_oom(sizeof p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    yaml_document_t doc;
    struct ynode *root = NULL;
    if (!yaml_parser_load(&p, &doc)) {
        yaml_problem(c, file, text, len, &p);
        yaml_parser_delete(&p);
        return NULL;
    }
    yaml_node_t *yroot = yaml_document_get_root_node(&doc);
    if (!yroot)
        note_error(c, file, 0, "the file is empty");
    else
        root = conv(c, &doc, yroot, file, 0);
    yaml_document_delete(&doc);
    if (root) {
        /* One document per file, as Compose wants. */
        yaml_document_t next;
        if (!yaml_parser_load(&p, &next)) {
            yaml_problem(c, file, text, len, &p);
            root = NULL;
        } else {
            yaml_node_t *more = yaml_document_get_root_node(&next);
            if (more) {
                note_error(c, file, (int64_t)more->start_mark.line + 1,
                           "a second YAML document: one per file");
                root = NULL;
            }
            yaml_document_delete(&next);
        }
    }
    yaml_parser_delete(&p);
    return root;
}

/* ---- interpolation ---- */

#define MAX_INTERP_DEPTH 8
#define MAX_INTERP_BYTES (1024 * 1024)

struct sbuf {
    char *p;
    size_t len, cap;
    bool too_big;
};

static void sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n > MAX_INTERP_BYTES) {
        b->too_big = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = sk_realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

bool utf8_valid(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    while (*s) {
        size_t n = *s < 0x80             ? 0
                   : (*s & 0xe0) == 0xc0 ? 1
                   : (*s & 0xf0) == 0xe0 ? 2
                   : (*s & 0xf8) == 0xf0 ? 3
                                         : 4;
        if (n == 4 || (n == 1 && *s < 0xc2))
            return false;
        s++;
        for (size_t i = 0; i < n; i++, s++)
            if ((*s & 0xc0) != 0x80)
                return false;
    }
    return true;
}

struct where {
    const char *file;
    int64_t line;
    const char *what;
};

static bool interp(struct cctx *c, const char *s, size_t len,
                   const struct where *w, struct sbuf *out, int depth);

static bool name_start(char ch)
{
    return ch == '_' || isalpha((unsigned char)ch);
}

static bool name_char(char ch)
{
    return ch == '_' || isalnum((unsigned char)ch);
}

/* The value of VAR, or NULL when unset; an error if it is not UTF-8. */
static bool lookup(struct cctx *c, const char *name, const struct where *w,
                   const char **out)
{
    const char *v = c->host->getenv(c->host->ctx, name);
    if (v && !utf8_valid(v)) {
        note_error(c, w->file, w->line, "%s: variable %s is not valid UTF-8",
                   w->what, name);
        return false;
    }
    *out = v;
    return true;
}

/* The inside of ${...}: NAME, then nothing or one of :- - :? ? :+ +
 * followed by a word (itself interpolated). */
static bool interp_braced(struct cctx *c, const char *in, size_t len,
                          const struct where *w, struct sbuf *out, int depth)
{
    size_t k = 0;
    if (k < len && name_start(in[k]))
        while (k < len && name_char(in[k]))
            k++;
    if (k == 0 || k > 255) {
        note_error(c, w->file, w->line,
                   "%s: invalid interpolation \"${%.*s}\": want ${NAME}, "
                   "${NAME:-default} or ${NAME:?error} (write $$ for a "
                   "literal $)",
                   w->what, (int)(len > 64 ? 64 : len), in);
        return false;
    }
    char name[256];
    memcpy(name, in, k);
    name[k] = '\0';
    const char *op = in + k, *arg = op;
    size_t oplen = 0;
    if (k < len) {
        oplen = in[k] == ':' ? 2 : 1;
        if (k + oplen > len || !strchr("-?+", op[oplen - 1]) ||
            (oplen == 2 && op[0] != ':')) {
            note_error(c, w->file, w->line,
                       "%s: invalid interpolation \"${%.*s}\": after the "
                       "name, want }, :-, -, :?, ?, :+ or +",
                       w->what, (int)(len > 64 ? 64 : len), in);
            return false;
        }
        arg = op + oplen;
    }
    size_t arglen = len - k - oplen;
    const char *v;
    if (!lookup(c, name, w, &v))
        return false;
    bool set = v != NULL, full = set && *v;
    char kind = oplen ? op[oplen - 1] : 0;
    bool colon = oplen == 2;
    switch (kind) {
    case 0:
        if (!set)
            note_warn(c, w->file, w->line,
                      "%s: variable %s is not set: it reads as an empty "
                      "string",
                      w->what, name);
        break;
    case '-':
        if (colon ? !full : !set)
            return interp(c, arg, arglen, w, out, depth + 1);
        break;
    case '+':
        if (colon ? full : set)
            return interp(c, arg, arglen, w, out, depth + 1);
        return true;
    case '?':
        if (colon ? !full : !set) {
            struct sbuf msg = {0};
            bool ok = interp(c, arg, arglen, w, &msg, depth + 1);
            if (ok)
                note_error(c, w->file, w->line,
                           "%s: required variable %s is %s%s%s", w->what, name,
                           set ? "empty" : "not set", msg.len ? ": " : "",
                           msg.len ? msg.p : "");
            free(msg.p);
            return false;
        }
        break;
    }
    if (v)
        sbuf_add(out, v, strlen(v));
    return true;
}

static bool interp(struct cctx *c, const char *s, size_t len,
                   const struct where *w, struct sbuf *out, int depth)
{
    if (depth > MAX_INTERP_DEPTH) {
        note_error(c, w->file, w->line,
                   "%s: interpolation nested more than %d deep", w->what,
                   MAX_INTERP_DEPTH);
        return false;
    }
    sbuf_add(out, "", 0);
    size_t i = 0;
    while (i < len) {
        const char *dollar = memchr(s + i, '$', len - i);
        size_t plain = dollar ? (size_t)(dollar - (s + i)) : len - i;
        sbuf_add(out, s + i, plain);
        i += plain;
        if (i >= len)
            break;
        /* s[i] is '$' */
        if (i + 1 < len && s[i + 1] == '$') {
            sbuf_add(out, "$", 1);
            i += 2;
        } else if (i + 1 < len && s[i + 1] == '{') {
            size_t j = i + 2;
            int open = 1;
            while (j < len && open) {
                if (s[j] == '$' && j + 1 < len && s[j + 1] == '$') {
                    j += 2;
                    continue;
                }
                if (s[j] == '$' && j + 1 < len && s[j + 1] == '{') {
                    open++;
                    j += 2;
                    continue;
                }
                if (s[j] == '}' && --open == 0)
                    break;
                j++;
            }
            if (open) {
                note_error(c, w->file, w->line,
                           "%s: \"${\" without its \"}\" (write $$ for a "
                           "literal $)",
                           w->what);
                return false;
            }
            if (!interp_braced(c, s + i + 2, j - i - 2, w, out, depth))
                return false;
            i = j + 1;
        } else if (i + 1 < len && name_start(s[i + 1])) {
            size_t j = i + 1;
            while (j < len && name_char(s[j]))
                j++;
            if (!interp_braced(c, s + i + 1, j - i - 1, w, out, depth))
                return false;
            i = j;
        } else {
            note_error(c, w->file, w->line,
                       "%s: invalid interpolation: \"$\" must start $NAME, "
                       "${NAME...} or $$ (a literal $)",
                       w->what);
            return false;
        }
    }
    if (out->too_big) {
        note_error(c, w->file, w->line,
                   "%s: the value is longer than %d bytes once interpolated",
                   w->what, MAX_INTERP_BYTES);
        return false;
    }
    return true;
}

char *interpolate_text(struct cctx *c, const char *text, const char *file,
                       int64_t line, const char *what)
{
    struct where w = {file, line, what};
    struct sbuf out = {0};
    char *r = NULL;
    if (interp(c, text, strlen(text), &w, &out, 0))
        r = arena_strndup(c, out.p ? out.p : "", out.len);
    free(out.p);
    return r;
}

static size_t put(char *buf, size_t at, const char *s, size_t max)
{
    for (size_t i = 0; s[i] && i < max && at < PATH_SIZE - 1; i++)
        buf[at++] = s[i];
    buf[at] = '\0';
    return at;
}

const char *path_key(char *buf, const char *path, const char *key)
{
    size_t at = put(buf, 0, path, PATH_SIZE);
    at = put(buf, at, *path ? "." : "", 1);
    put(buf, at, key, 64);
    return buf;
}

const char *path_index(char *buf, const char *path, size_t i)
{
    char idx[32];
    snprintf(idx, sizeof idx, "[%zu]", i);
    size_t at = put(buf, 0, path, PATH_SIZE);
    put(buf, at, idx, sizeof idx);
    return buf;
}

static void interp_walk(struct cctx *c, struct ynode *n, const char *path)
{
    char sub[PATH_SIZE];
    switch (n->kind) {
    case Y_SCALAR:
        if (strchr(n->text, '$')) {
            char *r = interpolate_text(c, n->text, n->file, n->line, path);
            if (r)
                n->text = r;
        }
        break;
    case Y_SEQ:
        for (size_t i = 0; i < n->n; i++) {
            path_index(sub, path, i);
            interp_walk(c, n->items[i], sub);
        }
        break;
    case Y_MAP:
        for (size_t i = 0; i < n->n; i++) {
            path_key(sub, path, n->keys[i]->text);
            interp_walk(c, n->vals[i], sub);
        }
        break;
    case Y_NULL:
        break;
    }
}

void ytree_interpolate(struct cctx *c, struct ynode *root)
{
    interp_walk(c, root, "");
}

/* ---- one form for the keys written two ways ---- */

/* ["K=V", "K"] into {K: V, K: null}; for labels "K" is K: "". */
static void list_to_map(struct cctx *c, struct ynode *owner, const char *key,
                        const char *path, bool labels)
{
    struct ynode *list = ymap_get(owner, key);
    if (!list || list->kind != Y_SEQ)
        return;
    struct ynode *map = ynode_new(c, Y_MAP, list);
    for (size_t i = 0; i < list->n; i++) {
        struct ynode *item = list->items[i];
        if (item->kind != Y_SCALAR) {
            node_error(c, item, "%s.%s[%zu]: want a KEY=VALUE string", path,
                       key, i);
            continue;
        }
        const char *eq = strchr(item->text, '=');
        size_t klen = eq ? (size_t)(eq - item->text) : strlen(item->text);
        if (klen == 0) {
            node_error(c, item, "%s.%s[%zu]: \"%s\": the name is empty", path,
                       key, i, item->text);
            continue;
        }
        struct ynode *k = ynode_new(c, Y_SCALAR, item);
        k->text = arena_strndup(c, item->text, klen);
        struct ynode *v;
        if (eq || labels) {
            v = ynode_new(c, Y_SCALAR, item);
            v->quoted = true;
            v->text = arena_strdup(c, eq ? eq + 1 : "");
        } else {
            v = ynode_new(c, Y_NULL, item);
        }
        ymap_set(c, map, k, v);
    }
    for (size_t i = 0; i < owner->n; i++)
        if (owner->vals[i] == list)
            owner->vals[i] = map;
}

void ytree_normalise(struct cctx *c, struct ynode *root)
{
    struct ynode *services = ymap_get(root, "services");
    if (!services || services->kind != Y_MAP)
        return;
    for (size_t i = 0; i < services->n; i++) {
        struct ynode *s = services->vals[i];
        if (s->kind != Y_MAP)
            continue;
        char path[PATH_SIZE];
        path_key(path, "services", services->keys[i]->text);
        list_to_map(c, s, "environment", path, false);
        list_to_map(c, s, "labels", path, true);
        struct ynode *deploy = ymap_get(s, "deploy");
        if (deploy && deploy->kind == Y_MAP) {
            char dpath[PATH_SIZE];
            path_key(dpath, path, "deploy");
            list_to_map(c, deploy, "labels", dpath, true);
        }
        for (size_t k = 0; k < s->n; k++) {
            struct ynode *v = s->vals[k];
            const char *key = s->keys[k]->text;
            if (strcmp(key, "networks") == 0 && v->kind == Y_SEQ) {
                struct ynode *map = ynode_new(c, Y_MAP, v);
                for (size_t j = 0; j < v->n; j++) {
                    if (v->items[j]->kind != Y_SCALAR) {
                        node_error(c, v->items[j],
                                   "%s.networks[%zu]: want a network name",
                                   path, j);
                        continue;
                    }
                    ymap_set(c, map, v->items[j],
                             ynode_new(c, Y_NULL, v->items[j]));
                }
                s->vals[k] = map;
            } else if (strcmp(key, "env_file") == 0 && v->kind == Y_SCALAR) {
                struct ynode *seq = ynode_new(c, Y_SEQ, v);
                seq_push(c, seq, v);
                s->vals[k] = seq;
            }
        }
    }
}

/* ---- merging files ---- */

/* Where in the document a merge happens: the keys with rules of their
 * own. */
enum mwhere {
    M_ANY,
    M_TOP,
    M_SERVICES,
    M_SERVICE,
    M_HEALTHCHECK,
    M_REPLACE,
    M_PORTS,
    M_MOUNTS,
    M_SECRETS,
    M_CONFIGS,
};

static enum mwhere child_where(enum mwhere w, const char *key)
{
    switch (w) {
    case M_TOP:
        return strcmp(key, "services") == 0 ? M_SERVICES : M_ANY;
    case M_SERVICES:
        return M_SERVICE;
    case M_SERVICE:
        if (strcmp(key, "healthcheck") == 0)
            return M_HEALTHCHECK;
        if (strcmp(key, "command") == 0 || strcmp(key, "entrypoint") == 0)
            return M_REPLACE;
        if (strcmp(key, "ports") == 0)
            return M_PORTS;
        if (strcmp(key, "volumes") == 0)
            return M_MOUNTS;
        if (strcmp(key, "secrets") == 0)
            return M_SECRETS;
        if (strcmp(key, "configs") == 0)
            return M_CONFIGS;
        return M_ANY;
    case M_HEALTHCHECK:
        return strcmp(key, "test") == 0 ? M_REPLACE : M_ANY;
    default:
        return M_ANY;
    }
}

static const char *scalar_text(const struct ynode *n)
{
    return n->kind == Y_SCALAR ? n->text : NULL;
}

char *port_merge_key(struct cctx *c, const struct ynode *e)
{
    if (e->kind == Y_SCALAR)
        return strchr(e->text, '/') ? arena_strdup(c, e->text)
                                    : arena_printf(c, "%s/tcp", e->text);
    if (e->kind != Y_MAP)
        return NULL;
    const struct ynode *ip = ymap_get(e, "host_ip"),
                       *pub = ymap_get(e, "published"),
                       *tgt = ymap_get(e, "target"),
                       *proto = ymap_get(e, "protocol");
    if (!tgt || !scalar_text(tgt))
        return NULL;
    return arena_printf(c, "%s%s%s%s%s/%s",
                        ip && scalar_text(ip) ? ip->text : "",
                        ip && scalar_text(ip) ? ":" : "",
                        pub && scalar_text(pub) ? pub->text : "",
                        pub && scalar_text(pub) ? ":" : "", tgt->text,
                        proto && scalar_text(proto) ? proto->text : "tcp");
}

char *mount_merge_key(struct cctx *c, const struct ynode *e)
{
    if (e->kind == Y_SCALAR) {
        const char *colon = strchr(e->text, ':');
        if (!colon)
            return arena_strdup(c, e->text);
        const char *end = strchr(colon + 1, ':');
        return end ? arena_strndup(c, colon + 1, (size_t)(end - colon - 1))
                   : arena_strdup(c, colon + 1);
    }
    const struct ynode *t = ymap_get(e, "target");
    return t && scalar_text(t) ? arena_strdup(c, t->text) : NULL;
}

char *fileref_merge_key(struct cctx *c, const struct ynode *e, bool config)
{
    const struct ynode *src = e, *t = NULL;
    if (e->kind == Y_MAP) {
        t = ymap_get(e, "target");
        src = ymap_get(e, "source");
    }
    if (t && scalar_text(t))
        return arena_strdup(c, t->text);
    if (!src || !scalar_text(src))
        return NULL;
    return config ? arena_printf(c, "/%s", src->text)
                  : arena_strdup(c, src->text);
}

static char *entry_key(struct cctx *c, enum mwhere w, const struct ynode *e)
{
    switch (w) {
    case M_PORTS:
        return port_merge_key(c, e);
    case M_MOUNTS:
        return mount_merge_key(c, e);
    case M_SECRETS:
        return fileref_merge_key(c, e, false);
    case M_CONFIGS:
        return fileref_merge_key(c, e, true);
    default:
        return NULL;
    }
}

static bool same_scalar(const struct ynode *a, const struct ynode *b)
{
    return (a->kind == Y_NULL && b->kind == Y_NULL) ||
           (a->kind == Y_SCALAR && b->kind == Y_SCALAR &&
            strcmp(a->text, b->text) == 0);
}

static void merge_seq(struct cctx *c, struct ynode *base,
                      const struct ynode *over, enum mwhere w)
{
    bool unique =
        w == M_PORTS || w == M_MOUNTS || w == M_SECRETS || w == M_CONFIGS;
    size_t n_base = base->n;
    char **keys = arena_alloc(c, (n_base ? n_base : 1) * sizeof *keys);
    for (size_t j = 0; unique && j < n_base; j++)
        keys[j] = entry_key(c, w, base->items[j]);
    for (size_t i = 0; i < over->n; i++) {
        struct ynode *item = over->items[i];
        bool placed = false;
        char *key = unique ? entry_key(c, w, item) : NULL;
        for (size_t j = 0; j < n_base && !placed; j++) {
            if (key) {
                if (keys[j] && strcmp(keys[j], key) == 0) {
                    base->items[j] = item; /* the later file's entry */
                    placed = true;
                }
            } else if (same_scalar(base->items[j], item)) {
                placed = true; /* already there */
            }
        }
        if (!placed)
            seq_push(c, base, item);
    }
}

static struct ynode *merge(struct cctx *c, struct ynode *base,
                           struct ynode *over, enum mwhere w);

static void merge_map(struct cctx *c, struct ynode *base,
                      const struct ynode *over, enum mwhere w)
{
    for (size_t i = 0; i < over->n; i++) {
        struct ynode *k = over->keys[i], *v = over->vals[i];
        if (v->tag == YT_RESET) {
            ymap_set(c, base, k, NULL);
            continue;
        }
        struct ynode *old = ymap_get(base, k->text);
        ymap_set(c, base, k,
                 old ? merge(c, old, v, child_where(w, k->text)) : v);
    }
}

static struct ynode *merge(struct cctx *c, struct ynode *base,
                           struct ynode *over, enum mwhere w)
{
    if (over->tag == YT_OVERRIDE || w == M_REPLACE)
        return over;
    if (base->kind == Y_MAP && over->kind == Y_MAP) {
        merge_map(c, base, over, w);
        return base;
    }
    if (base->kind == Y_SEQ && over->kind == Y_SEQ) {
        merge_seq(c, base, over, w);
        return base;
    }
    return over;
}

struct ynode *ytree_merge(struct cctx *c, struct ynode *base,
                          struct ynode *over)
{
    return merge(c, base, over, M_TOP);
}
