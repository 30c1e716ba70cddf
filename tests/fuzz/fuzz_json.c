/* Fuzz target: the JSON command codec. The input is applied as a Raft
 * command to a store that already holds a few objects, and decoded as each
 * kind's object. Whatever it is, the store must stay consistent: a rejected
 * command changes nothing, an accepted one survives a snapshot round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/mem.h"
#include "skiff/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void seed(struct sk_store *s)
{
    struct sk_node *n = sk_object_new(SK_KIND_NODE);
    memcpy(n->meta.id, "aaaaaaaaaaaaaaaaaaaaaaaaaa", SK_ID_SIZE);
    n->spec.name = sk_strdup("h1");
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NODE, n);
    size_t len;
    char *cmd = sk_txn_encode(t, 1, &len);
    if (sk_store_apply(s, 1, cmd, len, NULL) != SK_OK)
        abort();
    free(cmd);
    sk_txn_free(t);
    sk_object_free(SK_KIND_NODE, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    struct sk_store *s = sk_store_new();
    seed(s);
    size_t before_len;
    char *before = sk_store_snapshot(s, &before_len);
    struct sk_err err;
    enum sk_rc rc = sk_store_apply(s, 2, (const char *)data, size, &err);
    size_t after_len;
    char *after = sk_store_snapshot(s, &after_len);
    if (rc != SK_OK) {
        /* Nothing changed but the index. */
        if (sk_store_count(s, SK_KIND_NODE) != 1)
            abort();
    } else {
        struct sk_store *copy = sk_store_new();
        if (sk_store_restore(copy, after, after_len, &err) != SK_OK)
            abort();
        for (int k = 0; k < SK_KIND_COUNT; k++)
            if (sk_store_count(copy, (enum sk_kind)k) !=
                sk_store_count(s, (enum sk_kind)k))
                abort();
        sk_store_free(copy);
    }
    free(before);
    free(after);
    sk_store_free(s);

    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if (j) {
        for (int k = 0; k < SK_KIND_COUNT; k++) {
            const struct sk_schema *schema = sk_kind_schema((enum sk_kind)k);
            void *obj = sk_object_new((enum sk_kind)k);
            if (sk_schema_decode(schema, j, obj, "x", &err) == SK_OK) {
                json_t *enc = sk_schema_encode(schema, obj, SK_VIEW_FULL);
                void *again = sk_object_new((enum sk_kind)k);
                if (sk_schema_decode(schema, enc, again, NULL, &err) != SK_OK ||
                    !sk_schema_equal(schema, obj, again))
                    abort();
                sk_object_free((enum sk_kind)k, again);
                json_decref(enc);
            }
            sk_object_free((enum sk_kind)k, obj);
        }
        json_decref(j);
    }
    return 0;
}
