#include "store_fsm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The apply result travels as a small integer in the pointer: followers
 * drop results, so nothing may be allocated for them. */
#define RESULT_OF(rc) ((void *)(uintptr_t)(rc))

static int fsm_apply(struct raft_fsm *rf, const struct raft_buffer *buf,
                     void **result)
{
    struct sk_store_fsm *fsm = rf->data;
    uint64_t index = raft_last_applied(fsm->raft) + 1;
    struct sk_err err;
    enum sk_rc rc =
        sk_store_apply(fsm->store, index, buf->base, buf->len, &err);
    fsm->applied++;
    if (rc != SK_OK) {
        struct sk_fsm_reject *r =
            &fsm->rejects[fsm->next_reject++ % SK_FSM_REJECTS];
        r->index = index;
        sk_err_copy(&r->err, &err);
        fsm->rejected++;
    }
    *result = RESULT_OF(rc);
    return 0;
}

static int fsm_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[],
                        unsigned *n_bufs)
{
    struct sk_store_fsm *fsm = rf->data;
    size_t len;
    char *text = sk_store_snapshot(fsm->store, &len);
    /* raft frees what we hand it with raft_free, which is free() unless a
     * custom allocator is installed (we install none). */
    *bufs = raft_malloc(sizeof **bufs);
    if (!*bufs) {
        free(text);
        return RAFT_NOMEM;
    }
    (*bufs)[0].base = text;
    (*bufs)[0].len = len;
    *n_bufs = 1;
    return 0;
}

static int fsm_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct sk_store_fsm *fsm = rf->data;
    struct sk_err err;
    if (sk_store_restore(fsm->store, buf->base, buf->len, &err) != SK_OK)
        return RAFT_CORRUPT;
    raft_free(buf->base);
    fsm->restores++;
    return 0;
}

void sk_store_fsm_init(struct sk_store_fsm *fsm, struct sk_store *store)
{
    memset(fsm, 0, sizeof *fsm);
    fsm->store = store;
    fsm->raft_fsm.version = 1;
    fsm->raft_fsm.data = fsm;
    fsm->raft_fsm.apply = fsm_apply;
    fsm->raft_fsm.snapshot = fsm_snapshot;
    fsm->raft_fsm.restore = fsm_restore;
}

void sk_store_fsm_bind(struct sk_store_fsm *fsm, struct raft *r)
{
    fsm->raft = r;
}

enum sk_rc sk_store_fsm_result(struct raft_fsm *rf, uint64_t index,
                               void *result, struct sk_err *err)
{
    const struct sk_store_fsm *fsm = rf->data;
    enum sk_rc rc = (enum sk_rc)(uintptr_t)result;
    if (rc == SK_OK)
        return SK_OK;
    for (unsigned i = 0; i < SK_FSM_REJECTS; i++) {
        if (fsm->rejects[i].index == index) {
            sk_err_copy(err, &fsm->rejects[i].err);
            return rc;
        }
    }
    return sk_err_set(err, rc, "change at index %llu was rejected",
                      (unsigned long long)index);
}
