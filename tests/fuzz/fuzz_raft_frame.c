/* Fuzz target: the check of libraft messages a peer sends towards raft
 * (raft/transport.c). Any byte string, fed whole and then in uneven
 * pieces, must be accepted or refused without crashing or leaking, the
 * same way both times; whatever passes never claims more than the limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/raft_transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum sk_rc run(const uint8_t *data, size_t size, size_t step,
                      uint64_t *messages)
{
    struct sk_raft_frame f;
    struct sk_err err;
    sk_raft_frame_init(&f, 0, 0);
    enum sk_rc rc = SK_OK;
    for (size_t at = 0; at < size && rc == SK_OK; at += step) {
        size_t n = size - at < step ? size - at : step;
        rc = sk_raft_frame_check(&f, data + at, n, &err);
        if (rc == SK_OK && f.payload_left > SK_RAFT_DEFAULT_MAX_SNAPSHOT_BYTES)
            abort();
    }
    *messages = f.messages;
    sk_raft_frame_free(&f);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t whole, pieces;
    enum sk_rc a = run(data, size, size ? size : 1, &whole);
    enum sk_rc b = run(data, size, 7, &pieces);
    if (a != b || (a == SK_OK && whole != pieces))
        abort();
    return 0;
}
