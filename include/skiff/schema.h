/* Table-driven JSON codec for skiff's API objects.
 *
 * Each object kind is a plain C struct described by a `struct sk_schema`: a
 * table of fields with their JSON name, C type, offset, limits and flags.
 * One engine then decodes (strictly), encodes, copies, compares and frees
 * every kind, so all kinds follow the same rules:
 *
 * - Decoding rejects unknown fields, wrong JSON types, out-of-range numbers,
 *   unknown enum names, strings and arrays past their caps, and missing
 *   required fields. The error (SK_EINVAL) names the field by its path and
 *   says what was expected, e.g.
 *   `spec.task.resources.limits.memory_bytes: want an integer from 0 to
 *   1125899906842624, got "lots"`, `spec: unknown field "replica"`,
 *   `spec.labels: more than 64 entries`.
 * - Absent fields take their default (schema `def`/`def_str`), else zero,
 *   NULL or empty.
 * - Encoding writes every field except NULL strings and absent optional
 *   structs; in SK_VIEW_PUBLIC it also leaves out SK_FF_SECRET fields
 *   (keys, token hashes, secret values), which never leave a manager.
 *
 * Memory: strings, arrays and optional structs inside an object are owned by
 * it (sk_malloc'd); sk_schema_free releases them (not the object itself).
 * On a failed decode the output struct is left zeroed and owns nothing. */
#ifndef SKIFF_SCHEMA_H
#define SKIFF_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skiff/err.h"

enum sk_ftype {
    SK_FT_STR,    /* char * (NULL = absent) */
    SK_FT_INT,    /* int64_t, within [min, max] */
    SK_FT_UINT,   /* uint64_t (versions, Raft IDs) */
    SK_FT_BOOL,   /* bool */
    SK_FT_DOUBLE, /* double, within [min, max] */
    SK_FT_ENUM,   /* int; JSON string from `names` */
    SK_FT_ID,     /* char[SK_ID_SIZE] inline; "" = unset */
    SK_FT_STRS,   /* char **, count at `count_offset` (size_t) */
    SK_FT_MAP,    /* struct sk_kv *, count at `count_offset`; JSON object */
    SK_FT_OBJ,    /* embedded struct described by `sub` */
    SK_FT_PTR,    /* pointer to a struct described by `sub`; NULL = absent */
    SK_FT_OBJS,   /* array of structs described by `sub`, count at
                     `count_offset` */
};

#define SK_FF_REQUIRED 0x1u /* must be present when decoding */
#define SK_FF_SECRET 0x2u   /* left out of the public view */

/* A string map entry (labels, options). */
struct sk_kv {
    char *key;
    char *value;
};

struct sk_schema;

struct sk_field {
    const char *name;
    enum sk_ftype type;
    size_t offset;
    size_t count_offset;         /* STRS, MAP, OBJS */
    const struct sk_schema *sub; /* OBJ, PTR, OBJS */
    const char *const *names;    /* ENUM: NULL-terminated */
    int64_t min, max;            /* INT; DOUBLE uses them too */
    int64_t def;                 /* INT, BOOL, ENUM default */
    const char *def_str;         /* STR default (copied) */
    size_t max_len;              /* STR bytes, STRS/MAP/OBJS entries;
                                    0: 4096 bytes / 1024 entries */
    unsigned flags;
};

struct sk_schema {
    const char *name; /* for messages: "service spec" */
    size_t size;      /* sizeof the struct */
    const struct sk_field *fields;
    size_t n_fields;
};

enum sk_view {
    SK_VIEW_FULL,   /* everything: the Raft log, snapshots */
    SK_VIEW_PUBLIC, /* the API: no SK_FF_SECRET fields */
};

/* Decodes a JSON object into out (a struct of schema->size bytes, which is
 * zeroed first). `path` prefixes field names in error messages ("spec");
 * NULL for none. */
enum sk_rc sk_schema_decode(const struct sk_schema *schema, const json_t *in,
                            void *out, const char *path, struct sk_err *err);
/* Encodes obj as a new JSON object. */
json_t *sk_schema_encode(const struct sk_schema *schema, const void *obj,
                         enum sk_view view);
/* Releases everything obj owns and zeroes it. */
void sk_schema_free(const struct sk_schema *schema, void *obj);
/* Deep copy: dst (uninitialised) becomes an independent equal of src. */
void sk_schema_copy(const struct sk_schema *schema, void *dst, const void *src);
/* Deep equality of two objects of the schema. */
bool sk_schema_equal(const struct sk_schema *schema, const void *a,
                     const void *b);
/* Fills a zeroed struct with the schema's defaults (as a decode of {}). */
void sk_schema_defaults(const struct sk_schema *schema, void *obj);

/* Map helpers: value for key, or NULL. */
const char *sk_kv_get(const struct sk_kv *kv, size_t n, const char *key);
/* Sets key=value (copies both), replacing an existing key. */
void sk_kv_set(struct sk_kv **kv, size_t *n, const char *key,
               const char *value);
/* Removes key; returns whether it was there. */
bool sk_kv_del(struct sk_kv **kv, size_t *n, const char *key);

/* String array helper: appends a copy. */
void sk_strs_push(char ***strs, size_t *n, const char *s);

/* The index of `name` in a NULL-terminated names table, or -1. */
int sk_enum_index(const char *const *names, const char *name);

#endif
