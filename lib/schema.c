#include "skiff/schema.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/id.h"
#include "skiff/mem.h"

#define DEFAULT_MAX_STR 4096
#define DEFAULT_MAX_ENTRIES 1024
#define MAX_KEY_LEN 256
#define PATH_SIZE 256

#define AT(obj, f, T) ((T *)((char *)(obj) + (f)->offset))
#define CAT(obj, f, T) ((T const *)((const char *)(obj) + (f)->offset))
#define COUNT(obj, f) ((size_t *)((char *)(obj) + (f)->count_offset))
#define CCOUNT(obj, f)                                                         \
    (*(const size_t *)((const char *)(obj) + (f)->count_offset))

static size_t max_entries(const struct sk_field *f)
{
    return f->max_len ? f->max_len : DEFAULT_MAX_ENTRIES;
}

static size_t max_str(const struct sk_field *f)
{
    return f->max_len ? f->max_len : DEFAULT_MAX_STR;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "something else";
}

/* A short rendering of a bad value for error messages. */
static void describe(const json_t *v, char *buf, size_t size)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        snprintf(buf, size, "\"%.40s%s\"", s, strlen(s) > 40 ? "..." : "");
    } else if (json_is_integer(v)) {
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(buf, size, "%g", json_real_value(v));
    } else {
        snprintf(buf, size, "%s", json_type_name(v));
    }
}

/* Paths only label error messages: a truncated one is still useful, so
 * they are built by hand, cut at PATH_SIZE. */
static size_t path_put(char *out, size_t at, const char *s)
{
    while (*s && at < PATH_SIZE - 1)
        out[at++] = *s++;
    out[at] = '\0';
    return at;
}

static void join_path(char *out, const char *path, const char *name)
{
    size_t at = 0;
    out[0] = '\0';
    if (path && *path) {
        at = path_put(out, at, path);
        at = path_put(out, at, ".");
    }
    path_put(out, at, name);
}

static void index_path(char *out, const char *path, size_t i)
{
    char num[32];
    size_t k = sizeof num - 1;
    num[k] = '\0';
    do {
        num[--k] = (char)('0' + i % 10);
        i /= 10;
    } while (i && k > 1);
    num[--k] = '[';
    size_t at = path_put(out, 0, path);
    at = path_put(out, at, num + k);
    path_put(out, at, "]");
}

static enum sk_rc bad_type(struct sk_err *err, const char *path,
                           const char *want, const json_t *got)
{
    char d[64];
    describe(got, d, sizeof d);
    return sk_err_set(err, SK_EINVAL, "%s: want %s, got %s", path, want, d);
}

/* A string value that fits the cap and holds no NUL. */
static enum sk_rc get_string(const json_t *v, size_t cap, const char *path,
                             const char **out, struct sk_err *err)
{
    if (!json_is_string(v))
        return bad_type(err, path, "a string", v);
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    if (strlen(s) != len)
        return sk_err_set(err, SK_EINVAL, "%s: string contains a NUL byte",
                          path);
    if (len > cap)
        return sk_err_set(err, SK_EINVAL, "%s: longer than %zu bytes", path,
                          cap);
    *out = s;
    return SK_OK;
}

static enum sk_rc decode_obj(const struct sk_schema *s, const json_t *in,
                             void *out, const char *path, struct sk_err *err);

static void apply_default(const struct sk_field *f, void *obj)
{
    switch (f->type) {
    case SK_FT_STR:
        *AT(obj, f, char *) = f->def_str ? sk_strdup(f->def_str) : NULL;
        break;
    case SK_FT_INT:
        *AT(obj, f, int64_t) = f->def;
        break;
    case SK_FT_BOOL:
        *AT(obj, f, bool) = f->def != 0;
        break;
    case SK_FT_ENUM:
        *AT(obj, f, int) = (int)f->def;
        break;
    case SK_FT_DOUBLE:
        *AT(obj, f, double) = (double)f->def;
        break;
    case SK_FT_OBJ:
        sk_schema_defaults(f->sub, AT(obj, f, char));
        break;
    default:
        break; /* zero, NULL or empty */
    }
}

void sk_schema_defaults(const struct sk_schema *schema, void *obj)
{
    for (size_t i = 0; i < schema->n_fields; i++)
        apply_default(&schema->fields[i], obj);
}

static enum sk_rc decode_int(const struct sk_field *f, const json_t *v,
                             const char *path, void *dst, struct sk_err *err)
{
    int64_t lo = f->min, hi = f->max;
    if (lo == 0 && hi == 0) {
        lo = INT64_MIN;
        hi = INT64_MAX;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo ||
        json_integer_value(v) > hi) {
        char d[64];
        describe(v, d, sizeof d);
        return sk_err_set(err, SK_EINVAL,
                          "%s: want an integer from %" PRId64 " to %" PRId64
                          ", got %s",
                          path, lo, hi, d);
    }
    *(int64_t *)dst = json_integer_value(v);
    return SK_OK;
}

static enum sk_rc decode_field(const struct sk_field *f, const json_t *v,
                               void *obj, const char *path, struct sk_err *err)
{
    enum sk_rc rc;
    const char *str;
    switch (f->type) {
    case SK_FT_STR:
        if ((rc = get_string(v, max_str(f), path, &str, err)) != SK_OK)
            return rc;
        *AT(obj, f, char *) = sk_strdup(str);
        return SK_OK;
    case SK_FT_INT:
        return decode_int(f, v, path, AT(obj, f, int64_t), err);
    case SK_FT_UINT:
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return bad_type(err, path, "a non-negative integer", v);
        *AT(obj, f, uint64_t) = (uint64_t)json_integer_value(v);
        return SK_OK;
    case SK_FT_BOOL:
        if (!json_is_boolean(v))
            return bad_type(err, path, "true or false", v);
        *AT(obj, f, bool) = json_is_true(v);
        return SK_OK;
    case SK_FT_DOUBLE: {
        if (!json_is_number(v))
            return bad_type(err, path, "a number", v);
        double d = json_number_value(v);
        if ((f->min || f->max) && (d < (double)f->min || d > (double)f->max))
            return sk_err_set(err, SK_EINVAL,
                              "%s: want a number from %" PRId64 " to %" PRId64
                              ", got %g",
                              path, f->min, f->max, d);
        *AT(obj, f, double) = d;
        return SK_OK;
    }
    case SK_FT_ENUM: {
        if ((rc = get_string(v, 64, path, &str, err)) != SK_OK)
            return rc;
        int idx = sk_enum_index(f->names, str);
        if (idx < 0) {
            char list[256] = "";
            for (size_t i = 0; f->names[i]; i++) {
                size_t n = strlen(list);
                snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "",
                         f->names[i]);
            }
            return sk_err_set(err, SK_EINVAL, "%s: want one of %s, got \"%s\"",
                              path, list, str);
        }
        *AT(obj, f, int) = idx;
        return SK_OK;
    }
    case SK_FT_ID:
        if ((rc = get_string(v, SK_ID_LEN, path, &str, err)) != SK_OK)
            return rc;
        /* "" is an unset ID, which a required one may not be (it would
         * not encode). */
        if (!*str && (f->flags & SK_FF_REQUIRED))
            return sk_err_set(err, SK_EINVAL, "%s: required", path);
        if (*str && !sk_id_valid(str))
            return sk_err_set(err, SK_EINVAL,
                              "%s: \"%s\" is not an ID (26 characters a-z, "
                              "2-7)",
                              path, str);
        memcpy(AT(obj, f, char), str, strlen(str) + 1);
        return SK_OK;
    case SK_FT_STRS: {
        if (!json_is_array(v))
            return bad_type(err, path, "an array of strings", v);
        size_t n = json_array_size(v);
        if (n > max_entries(f))
            return sk_err_set(err, SK_EINVAL, "%s: more than %zu entries", path,
                              max_entries(f));
        char **arr = n ? sk_calloc(n, sizeof *arr) : NULL;
        *AT(obj, f, char **) = arr;
        for (size_t i = 0; i < n; i++) {
            char ipath[PATH_SIZE];
            index_path(ipath, path, i);
            if ((rc = get_string(json_array_get(v, i), DEFAULT_MAX_STR, ipath,
                                 &str, err)) != SK_OK)
                return rc;
            arr[i] = sk_strdup(str);
            *COUNT(obj, f) = i + 1;
        }
        return SK_OK;
    }
    case SK_FT_MAP: {
        if (!json_is_object(v))
            return bad_type(err, path, "an object of strings", v);
        size_t n = json_object_size(v);
        if (n > max_entries(f))
            return sk_err_set(err, SK_EINVAL, "%s: more than %zu entries", path,
                              max_entries(f));
        struct sk_kv *kv = n ? sk_calloc(n, sizeof *kv) : NULL;
        *AT(obj, f, struct sk_kv *) = kv;
        const char *key;
        json_t *val;
        size_t i = 0;
        json_object_foreach((json_t *)v, key, val)
        {
            char kpath[PATH_SIZE];
            join_path(kpath, path, key);
            if (!*key || strlen(key) > MAX_KEY_LEN)
                return sk_err_set(err, SK_EINVAL,
                                  "%s: keys must be 1 to %d bytes", path,
                                  MAX_KEY_LEN);
            if ((rc = get_string(val, DEFAULT_MAX_STR, kpath, &str, err)) !=
                SK_OK)
                return rc;
            kv[i].key = sk_strdup(key);
            kv[i].value = sk_strdup(str);
            *COUNT(obj, f) = ++i;
        }
        return SK_OK;
    }
    case SK_FT_OBJ:
        return decode_obj(f->sub, v, AT(obj, f, char), path, err);
    case SK_FT_PTR: {
        void *sub = sk_calloc(1, f->sub->size);
        rc = decode_obj(f->sub, v, sub, path, err);
        if (rc != SK_OK) {
            sk_schema_free(f->sub, sub);
            free(sub);
            return rc;
        }
        *AT(obj, f, void *) = sub;
        return SK_OK;
    }
    case SK_FT_OBJS: {
        if (!json_is_array(v))
            return bad_type(err, path, "an array of objects", v);
        size_t n = json_array_size(v);
        if (n > max_entries(f))
            return sk_err_set(err, SK_EINVAL, "%s: more than %zu entries", path,
                              max_entries(f));
        char *arr = n ? sk_calloc(n, f->sub->size) : NULL;
        *AT(obj, f, char *) = arr;
        for (size_t i = 0; i < n; i++) {
            char ipath[PATH_SIZE];
            index_path(ipath, path, i);
            /* Counted before decoding, so a half-decoded entry is freed
             * with the rest. */
            *COUNT(obj, f) = i + 1;
            rc = decode_obj(f->sub, json_array_get(v, i),
                            arr + i * f->sub->size, ipath, err);
            if (rc != SK_OK)
                return rc;
        }
        return SK_OK;
    }
    }
    return sk_err_set(err, SK_EINTERNAL, "%s: unknown field type", path);
}

static const struct sk_field *find_field(const struct sk_schema *s,
                                         const char *name)
{
    for (size_t i = 0; i < s->n_fields; i++)
        if (strcmp(s->fields[i].name, name) == 0)
            return &s->fields[i];
    return NULL;
}

static enum sk_rc decode_obj(const struct sk_schema *s, const json_t *in,
                             void *out, const char *path, struct sk_err *err)
{
    memset(out, 0, s->size);
    const char *where = path && *path ? path : s->name;
    if (!json_is_object(in))
        return bad_type(err, where, "an object", in);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)in, key, val)
    {
        if (!find_field(s, key))
            return sk_err_set(err, SK_EINVAL, "%s: unknown field \"%.64s\"",
                              where, key);
    }
    for (size_t i = 0; i < s->n_fields; i++) {
        const struct sk_field *f = &s->fields[i];
        char fpath[PATH_SIZE];
        join_path(fpath, path, f->name);
        const json_t *v = json_object_get(in, f->name);
        json_t *empty = NULL;
        if (!v || json_is_null(v)) {
            if (f->flags & SK_FF_REQUIRED)
                return sk_err_set(err, SK_EINVAL, "%s: required", fpath);
            if (f->type != SK_FT_OBJ) {
                apply_default(f, out);
                continue;
            }
            /* An absent object decodes as {}, so the fields it requires
             * are required here too and a decoded object always encodes
             * to something that decodes again. */
            v = empty = json_object();
        }
        enum sk_rc rc = decode_field(f, v, out, fpath, err);
        json_decref(empty);
        if (rc != SK_OK)
            return rc;
    }
    return SK_OK;
}

enum sk_rc sk_schema_decode(const struct sk_schema *schema, const json_t *in,
                            void *out, const char *path, struct sk_err *err)
{
    enum sk_rc rc = decode_obj(schema, in, out, path, err);
    if (rc != SK_OK)
        sk_schema_free(schema, out);
    return rc;
}

json_t *sk_schema_encode(const struct sk_schema *schema, const void *obj,
                         enum sk_view view)
{
    json_t *out = json_object();
    for (size_t i = 0; i < schema->n_fields; i++) {
        const struct sk_field *f = &schema->fields[i];
        if (view == SK_VIEW_PUBLIC && (f->flags & SK_FF_SECRET))
            continue;
        json_t *v = NULL;
        switch (f->type) {
        case SK_FT_STR: {
            const char *s = *CAT(obj, f, char *);
            if (s)
                v = json_string(s);
            break;
        }
        case SK_FT_INT:
            v = json_integer(*CAT(obj, f, int64_t));
            break;
        case SK_FT_UINT:
            v = json_integer((json_int_t)*CAT(obj, f, uint64_t));
            break;
        case SK_FT_BOOL:
            v = json_boolean(*CAT(obj, f, bool));
            break;
        case SK_FT_DOUBLE:
            v = json_real(*CAT(obj, f, double));
            break;
        case SK_FT_ENUM: {
            int e = *CAT(obj, f, int);
            size_t n = 0;
            while (f->names[n])
                n++;
            v = json_string(e >= 0 && (size_t)e < n ? f->names[e] : "unknown");
            break;
        }
        case SK_FT_ID: {
            const char *s = CAT(obj, f, char);
            if (*s)
                v = json_string(s);
            break;
        }
        case SK_FT_STRS: {
            char *const *arr = *CAT(obj, f, char **);
            v = json_array();
            for (size_t k = 0; k < CCOUNT(obj, f); k++)
                json_array_append_new(v, json_string(arr[k]));
            break;
        }
        case SK_FT_MAP: {
            const struct sk_kv *kv = *CAT(obj, f, struct sk_kv *);
            v = json_object();
            for (size_t k = 0; k < CCOUNT(obj, f); k++)
                json_object_set_new(v, kv[k].key, json_string(kv[k].value));
            break;
        }
        case SK_FT_OBJ:
            v = sk_schema_encode(f->sub, CAT(obj, f, char), view);
            break;
        case SK_FT_PTR: {
            const void *sub = *CAT(obj, f, void *);
            if (sub)
                v = sk_schema_encode(f->sub, sub, view);
            break;
        }
        case SK_FT_OBJS: {
            const char *arr = *CAT(obj, f, char *);
            v = json_array();
            for (size_t k = 0; k < CCOUNT(obj, f); k++)
                json_array_append_new(
                    v, sk_schema_encode(f->sub, arr + k * f->sub->size, view));
            break;
        }
        }
        if (v)
            json_object_set_new(out, f->name, v);
    }
    return out;
}

void sk_schema_free(const struct sk_schema *schema, void *obj)
{
    if (!obj)
        return;
    for (size_t i = 0; i < schema->n_fields; i++) {
        const struct sk_field *f = &schema->fields[i];
        switch (f->type) {
        case SK_FT_STR:
            free(*AT(obj, f, char *));
            break;
        case SK_FT_STRS: {
            char **arr = *AT(obj, f, char **);
            for (size_t k = 0; k < *COUNT(obj, f); k++)
                free(arr[k]);
            free(arr);
            break;
        }
        case SK_FT_MAP: {
            struct sk_kv *kv = *AT(obj, f, struct sk_kv *);
            for (size_t k = 0; k < *COUNT(obj, f); k++) {
                free(kv[k].key);
                free(kv[k].value);
            }
            free(kv);
            break;
        }
        case SK_FT_OBJ:
            sk_schema_free(f->sub, AT(obj, f, char));
            break;
        case SK_FT_PTR: {
            void *sub = *AT(obj, f, void *);
            sk_schema_free(f->sub, sub);
            free(sub);
            break;
        }
        case SK_FT_OBJS: {
            char *arr = *AT(obj, f, char *);
            for (size_t k = 0; k < *COUNT(obj, f); k++)
                sk_schema_free(f->sub, arr + k * f->sub->size);
            free(arr);
            break;
        }
        default:
            break;
        }
    }
    memset(obj, 0, schema->size);
}

void sk_schema_copy(const struct sk_schema *schema, void *dst, const void *src)
{
    memcpy(dst, src, schema->size);
    for (size_t i = 0; i < schema->n_fields; i++) {
        const struct sk_field *f = &schema->fields[i];
        switch (f->type) {
        case SK_FT_STR: {
            const char *s = *CAT(src, f, char *);
            *AT(dst, f, char *) = s ? sk_strdup(s) : NULL;
            break;
        }
        case SK_FT_STRS: {
            size_t n = CCOUNT(src, f);
            char *const *in = *CAT(src, f, char **);
            char **arr = n ? sk_calloc(n, sizeof *arr) : NULL;
            for (size_t k = 0; k < n; k++)
                arr[k] = sk_strdup(in[k]);
            *AT(dst, f, char **) = arr;
            break;
        }
        case SK_FT_MAP: {
            size_t n = CCOUNT(src, f);
            const struct sk_kv *in = *CAT(src, f, struct sk_kv *);
            struct sk_kv *kv = n ? sk_calloc(n, sizeof *kv) : NULL;
            for (size_t k = 0; k < n; k++) {
                kv[k].key = sk_strdup(in[k].key);
                kv[k].value = sk_strdup(in[k].value);
            }
            *AT(dst, f, struct sk_kv *) = kv;
            break;
        }
        case SK_FT_OBJ:
            sk_schema_copy(f->sub, AT(dst, f, char), CAT(src, f, char));
            break;
        case SK_FT_PTR: {
            const void *in = *CAT(src, f, void *);
            void *sub = NULL;
            if (in) {
                sub = sk_malloc(f->sub->size);
                sk_schema_copy(f->sub, sub, in);
            }
            *AT(dst, f, void *) = sub;
            break;
        }
        case SK_FT_OBJS: {
            size_t n = CCOUNT(src, f);
            const char *in = *CAT(src, f, char *);
            char *arr = n ? sk_malloc(n * f->sub->size) : NULL;
            for (size_t k = 0; k < n; k++)
                sk_schema_copy(f->sub, arr + k * f->sub->size,
                               in + k * f->sub->size);
            *AT(dst, f, char *) = arr;
            break;
        }
        default:
            break; /* scalars came with the memcpy */
        }
    }
}

static bool str_equal(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

bool sk_schema_equal(const struct sk_schema *schema, const void *a,
                     const void *b)
{
    for (size_t i = 0; i < schema->n_fields; i++) {
        const struct sk_field *f = &schema->fields[i];
        switch (f->type) {
        case SK_FT_STR:
            if (!str_equal(*CAT(a, f, char *), *CAT(b, f, char *)))
                return false;
            break;
        case SK_FT_INT:
            if (*CAT(a, f, int64_t) != *CAT(b, f, int64_t))
                return false;
            break;
        case SK_FT_UINT:
            if (*CAT(a, f, uint64_t) != *CAT(b, f, uint64_t))
                return false;
            break;
        case SK_FT_BOOL:
            if (*CAT(a, f, bool) != *CAT(b, f, bool))
                return false;
            break;
        case SK_FT_DOUBLE:
            if (*CAT(a, f, double) != *CAT(b, f, double))
                return false;
            break;
        case SK_FT_ENUM:
            if (*CAT(a, f, int) != *CAT(b, f, int))
                return false;
            break;
        case SK_FT_ID:
            if (strcmp(CAT(a, f, char), CAT(b, f, char)) != 0)
                return false;
            break;
        case SK_FT_STRS: {
            size_t n = CCOUNT(a, f);
            if (n != CCOUNT(b, f))
                return false;
            char *const *x = *CAT(a, f, char **), *const *y =
                                                      *CAT(b, f, char **);
            for (size_t k = 0; k < n; k++)
                if (strcmp(x[k], y[k]) != 0)
                    return false;
            break;
        }
        case SK_FT_MAP: {
            /* Maps compare as sets of pairs, whatever their order. */
            size_t n = CCOUNT(a, f);
            if (n != CCOUNT(b, f))
                return false;
            const struct sk_kv *x = *CAT(a, f, struct sk_kv *);
            const struct sk_kv *y = *CAT(b, f, struct sk_kv *);
            for (size_t k = 0; k < n; k++)
                if (!str_equal(sk_kv_get(y, n, x[k].key), x[k].value))
                    return false;
            break;
        }
        case SK_FT_OBJ:
            if (!sk_schema_equal(f->sub, CAT(a, f, char), CAT(b, f, char)))
                return false;
            break;
        case SK_FT_PTR: {
            const void *x = *CAT(a, f, void *), *y = *CAT(b, f, void *);
            if (!x || !y) {
                if (x != y)
                    return false;
            } else if (!sk_schema_equal(f->sub, x, y)) {
                return false;
            }
            break;
        }
        case SK_FT_OBJS: {
            size_t n = CCOUNT(a, f);
            if (n != CCOUNT(b, f))
                return false;
            const char *x = *CAT(a, f, char *), *y = *CAT(b, f, char *);
            for (size_t k = 0; k < n; k++)
                if (!sk_schema_equal(f->sub, x + k * f->sub->size,
                                     y + k * f->sub->size))
                    return false;
            break;
        }
        }
    }
    return true;
}

const char *sk_kv_get(const struct sk_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0)
            return kv[i].value;
    return NULL;
}

void sk_kv_set(struct sk_kv **kv, size_t *n, const char *key, const char *value)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*kv)[i].key, key) == 0) {
            free((*kv)[i].value);
            (*kv)[i].value = sk_strdup(value);
            return;
        }
    }
    *kv = sk_realloc(*kv, (*n + 1) * sizeof **kv);
    (*kv)[*n].key = sk_strdup(key);
    (*kv)[*n].value = sk_strdup(value);
    (*n)++;
}

bool sk_kv_del(struct sk_kv **kv, size_t *n, const char *key)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*kv)[i].key, key) == 0) {
            free((*kv)[i].key);
            free((*kv)[i].value);
            memmove(&(*kv)[i], &(*kv)[i + 1], (*n - i - 1) * sizeof **kv);
            (*n)--;
            if (*n == 0) {
                free(*kv);
                *kv = NULL;
            }
            return true;
        }
    }
    return false;
}

void sk_strs_push(char ***strs, size_t *n, const char *s)
{
    *strs = sk_realloc(*strs, (*n + 1) * sizeof **strs);
    (*strs)[(*n)++] = sk_strdup(s);
}

int sk_enum_index(const char *const *names, const char *name)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}
