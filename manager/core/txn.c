#include "skiff/txn.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/mem.h"

struct sk_txn {
    json_t *ops;
    size_t size;
};

struct sk_txn *sk_txn_new(void)
{
    struct sk_txn *t = sk_calloc(1, sizeof *t);
    t->ops = json_array();
    return t;
}

void sk_txn_free(struct sk_txn *t)
{
    if (!t)
        return;
    json_decref(t->ops);
    free(t);
}

static void add_op(struct sk_txn *t, const char *type, enum sk_kind kind,
                   const void *obj, const char *id, uint64_t expect)
{
    json_t *op = json_object();
    json_object_set_new(op, "op", json_string(type));
    json_object_set_new(op, "kind", json_string(sk_kind_name(kind)));
    if (expect)
        json_object_set_new(op, "expect", json_integer((json_int_t)expect));
    if (obj) {
        json_t *o = sk_schema_encode(sk_kind_schema(kind), obj, SK_VIEW_FULL);
        /* Estimating the size by dumping keeps batches honest about the
         * entry size they will produce. */
        char *text = json_dumps(o, JSON_COMPACT);
        t->size += text ? strlen(text) + 48 : 0;
        free(text);
        json_object_set_new(op, "object", o);
    } else {
        json_object_set_new(op, "id", json_string(id));
        t->size += 96;
    }
    json_array_append_new(t->ops, op);
}

void sk_txn_create(struct sk_txn *t, enum sk_kind kind, const void *obj)
{
    add_op(t, "create", kind, obj, NULL, 0);
}

void sk_txn_update(struct sk_txn *t, enum sk_kind kind, const void *obj,
                   uint64_t expect_version)
{
    add_op(t, "update", kind, obj, NULL, expect_version);
}

void sk_txn_delete(struct sk_txn *t, enum sk_kind kind, const char *id,
                   uint64_t expect_version)
{
    add_op(t, "delete", kind, NULL, id, expect_version);
}

size_t sk_txn_count(const struct sk_txn *t)
{
    return json_array_size(t->ops);
}

size_t sk_txn_size(const struct sk_txn *t)
{
    return t->size;
}

char *sk_txn_encode(const struct sk_txn *t, int64_t time_ms, size_t *out_len)
{
    json_t *root = json_object();
    json_object_set_new(root, "time", json_integer(time_ms));
    json_object_set(root, "ops", t->ops);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text)
        sk_oom(0);
    *out_len = strlen(text);
    return text;
}
