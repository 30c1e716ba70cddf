/* Building a command for the store (skiff/store.h): a list of operations
 * -- create, update, delete objects, each with the version the proposer
 * expected -- encoded as the JSON text that goes into one Raft entry and
 * that sk_store_apply() applies all or nothing. Pure. */
#ifndef SKIFF_TXN_H
#define SKIFF_TXN_H

#include <stddef.h>
#include <stdint.h>

#include "skiff/objects.h"

/* Caps on one command (one Raft entry). Leader loops split larger batches
 * with sk_txn_count/sk_txn_size. */
#define SK_TXN_MAX_OPS 5000
#define SK_TXN_MAX_BYTES (4u << 20)

struct sk_txn;

struct sk_txn *sk_txn_new(void);
void sk_txn_free(struct sk_txn *t);
/* Each call encodes the object now (the caller keeps ownership). */
void sk_txn_create(struct sk_txn *t, enum sk_kind kind, const void *obj);
/* expect_version 0: update whatever version is current. */
void sk_txn_update(struct sk_txn *t, enum sk_kind kind, const void *obj,
                   uint64_t expect_version);
void sk_txn_delete(struct sk_txn *t, enum sk_kind kind, const char *id,
                   uint64_t expect_version);
size_t sk_txn_count(const struct sk_txn *t);
/* Approximate encoded size so far, for splitting batches. */
size_t sk_txn_size(const struct sk_txn *t);
/* The command as JSON text (heap, free()), stamped with time_ms. */
char *sk_txn_encode(const struct sk_txn *t, int64_t time_ms, size_t *out_len);

#endif
