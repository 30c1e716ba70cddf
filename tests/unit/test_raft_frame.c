/* The check of libraft messages on their way from a peer to raft
 * (raft/transport.c): messages as libraft 0.22 encodes them pass, whole or
 * a byte at a time; lengths over the limits and headers shorter than what
 * libraft's decoder reads are refused with a message that names them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "skiff/raft_transport.h"

/* ---- Building messages (src/uv_encoding.c's layout) ---- */

struct msg {
    unsigned char b[4096];
    size_t len;
};

static void put8(struct msg *m, unsigned v)
{
    assert_true(m->len < sizeof m->b);
    m->b[m->len++] = (unsigned char)v;
}

static void put32(struct msg *m, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        put8(m, (v >> (8 * i)) & 0xff);
}

static void put64(struct msg *m, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        put8(m, (unsigned)((v >> (8 * i)) & 0xff));
}

static void put_bytes(struct msg *m, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put8(m, (unsigned char)s[i]);
}

/* The preamble: type, version, header length. */
static void preamble(struct msg *m, unsigned type, unsigned version,
                     uint64_t header_len)
{
    put8(m, type);
    put8(m, 0);
    put8(m, version);
    put8(m, 0);
    put32(m, 0);
    put64(m, header_len);
}

/* An AppendEntries with entries of the given lengths, and their data. */
static void append_entries(struct msg *m, const uint32_t *lens, size_t n)
{
    preamble(m, 1, 0, 48 + 16 * n);
    put64(m, 7); /* term */
    put64(m, 3); /* prev index */
    put64(m, 6); /* prev term */
    put64(m, 2); /* commit */
    put64(m, n);
    for (size_t i = 0; i < n; i++) {
        put64(m, 7);
        put8(m, 1); /* RAFT_COMMAND */
        put8(m, 0);
        put8(m, 0);
        put8(m, 0);
        put32(m, lens[i]);
    }
    put64(m, 0);
    for (size_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < lens[i]; j++)
            put8(m, 'x');
}

/* The configuration of one voter at addr. */
static void configuration(struct msg *m, const char *addr)
{
    put8(m, 1); /* format */
    put64(m, 1);
    put64(m, 42);
    put_bytes(m, addr, strlen(addr) + 1);
    put8(m, 1); /* RAFT_VOTER */
}

static void install_snapshot(struct msg *m, uint64_t data_len, size_t send)
{
    const char *addr = "10.77.0.11:7444";
    size_t conf_len = 1 + 8 + 8 + strlen(addr) + 1 + 1;
    preamble(m, 5, 0, 56 + conf_len);
    put64(m, 9);  /* term */
    put64(m, 50); /* last index */
    put64(m, 8);  /* last term */
    put64(m, 40); /* configuration index */
    put64(m, conf_len);
    configuration(m, addr);
    put64(m, data_len);
    put64(m, 0);
    for (size_t i = 0; i < send; i++)
        put8(m, 's');
}

static void fixed(struct msg *m, unsigned type, unsigned version, size_t len)
{
    preamble(m, type, version, len);
    for (size_t i = 0; i < len; i++)
        put8(m, (unsigned char)i);
}

/* ---- Checking ---- */

static enum sk_rc check(const struct msg *m, size_t step, struct sk_err *err,
                        uint64_t *messages)
{
    struct sk_raft_frame f;
    sk_raft_frame_init(&f, 0, 0);
    enum sk_rc rc = SK_OK;
    for (size_t at = 0; at < m->len && rc == SK_OK; at += step) {
        size_t n = m->len - at < step ? m->len - at : step;
        rc = sk_raft_frame_check(&f, m->b + at, n, err);
    }
    if (messages)
        *messages = f.messages;
    if (rc != SK_OK) {
        /* A failed check stays failed. */
        struct sk_err again;
        assert_int_not_equal(sk_raft_frame_check(&f, "x", 1, &again), SK_OK);
    }
    sk_raft_frame_free(&f);
    return rc;
}

static void refused(const struct msg *m, enum sk_rc code, const char *want)
{
    struct sk_err err;
    assert_int_equal(check(m, m->len, &err, NULL), code);
    if (!strstr(err.msg, want))
        fail_msg("\"%s\" not in \"%s\"", want, err.msg);
    /* The same a byte at a time. */
    assert_int_equal(check(m, 1, &err, NULL), code);
}

static void legitimate_messages_pass(void **state)
{
    (void)state;
    struct msg m = {.len = 0};
    append_entries(&m, NULL, 0); /* a heartbeat */
    uint32_t lens[] = {16, 24, 13};
    append_entries(&m, lens, 3);
    fixed(&m, 2, 2, 32); /* AppendEntriesResult v2 */
    fixed(&m, 3, 2, 40); /* RequestVote v2 */
    fixed(&m, 4, 2, 24); /* RequestVoteResult v2 */
    fixed(&m, 4, 0, 16); /* RequestVoteResult v1 */
    fixed(&m, 6, 0, 24); /* TimeoutNow */
    install_snapshot(&m, 100, 100);
    append_entries(&m, lens, 1);
    for (size_t step = 1; step <= m.len; step = step * 3 + 1) {
        struct sk_err err;
        uint64_t messages;
        if (check(&m, step, &err, &messages) != SK_OK)
            fail_msg("step %zu: %s", step, err.msg);
        assert_int_equal(messages, 9);
    }
}

/* The largest legitimate claims pass: 32 entries of 4 MiB, a snapshot of
 * 1 GiB (only their headers are fed here). */
static void limits_allow_the_largest(void **state)
{
    (void)state;
    struct msg m = {.len = 0};
    uint32_t lens[SK_RAFT_MAX_BATCH_ENTRIES];
    for (int i = 0; i < SK_RAFT_MAX_BATCH_ENTRIES; i++)
        lens[i] = 4u << 20;
    preamble(&m, 1, 0, 48 + 16 * SK_RAFT_MAX_BATCH_ENTRIES);
    for (int i = 0; i < 4; i++)
        put64(&m, 1);
    put64(&m, SK_RAFT_MAX_BATCH_ENTRIES);
    for (int i = 0; i < SK_RAFT_MAX_BATCH_ENTRIES; i++) {
        put64(&m, 1);
        put32(&m, 1);
        put32(&m, lens[i]);
    }
    put64(&m, 0);
    struct sk_err err;
    struct sk_raft_frame f;
    sk_raft_frame_init(&f, 0, 0);
    assert_int_equal(sk_raft_frame_check(&f, m.b, m.len, &err), SK_OK);
    assert_int_equal(f.payload_left, (uint64_t)SK_RAFT_MAX_BATCH_ENTRIES << 22);
    sk_raft_frame_free(&f);

    m.len = 0;
    install_snapshot(&m, (uint64_t)1 << 30, 0);
    sk_raft_frame_init(&f, 0, 0);
    assert_int_equal(sk_raft_frame_check(&f, m.b, m.len, &err), SK_OK);
    assert_int_equal(f.payload_left, (uint64_t)1 << 30);
    sk_raft_frame_free(&f);
}

static void oversized_claims_refused(void **state)
{
    (void)state;
    struct msg m = {.len = 0};
    preamble(&m, 3, 2, 512u << 20);
    refused(&m, SK_ETOOBIG,
            "message 1 (RequestVote): a header of 536870912 bytes exceeds the "
            "65536-byte limit");

    /* After a heartbeat, an entry of 4 GiB - 8: the count is in the
     * error. */
    m.len = 0;
    append_entries(&m, NULL, 0);
    preamble(&m, 1, 0, 64);
    for (int i = 0; i < 4; i++)
        put64(&m, 1);
    put64(&m, 1);
    put64(&m, 1);
    put32(&m, 1);
    put32(&m, UINT32_MAX - 7);
    put64(&m, 0);
    refused(&m, SK_ETOOBIG,
            "message 2 (AppendEntries): entry 0 of 4294967288 bytes exceeds "
            "the 4194304-byte limit");

    /* 33 entries of 4 MiB: more than libraft ever sends at once. */
    m.len = 0;
    preamble(&m, 1, 0, 48 + 16 * 33);
    for (int i = 0; i < 4; i++)
        put64(&m, 1);
    put64(&m, 33);
    for (int i = 0; i < 33; i++) {
        put64(&m, 1);
        put32(&m, 1);
        put32(&m, 4u << 20);
    }
    put64(&m, 0);
    refused(&m, SK_ETOOBIG,
            "entries of 138412032 bytes exceed the 134217728-byte limit");

    m.len = 0;
    install_snapshot(&m, ((uint64_t)1 << 30) + 1, 0);
    refused(&m, SK_ETOOBIG,
            "message 1 (InstallSnapshot): a snapshot of 1073741825 bytes "
            "exceeds the 1073741824-byte limit");
}

static void malformed_refused(void **state)
{
    (void)state;
    struct msg m = {.len = 0};
    fixed(&m, 9, 0, 24);
    refused(&m, SK_EPROTO, "unknown message type 9");

    m.len = 0;
    fixed(&m, 3, 2, 8);
    refused(&m, SK_EPROTO,
            "message 1 (RequestVote): a header of 8 bytes is shorter than "
            "the 40 its type needs");
    m.len = 0;
    fixed(&m, 2, 2, 24); /* version 2 reads 28 */
    refused(&m, SK_EPROTO, "shorter than the 28 its type needs");
    m.len = 0;
    fixed(&m, 4, 0, 20); /* reads as version 2: 22 */
    refused(&m, SK_EPROTO, "shorter than the 22 its type needs");
    m.len = 0;
    fixed(&m, 6, 0, 0);
    refused(&m, SK_EPROTO, "a header of 0 bytes is shorter");

    /* An entry count the header cannot hold. */
    m.len = 0;
    preamble(&m, 1, 0, 48);
    for (int i = 0; i < 4; i++)
        put64(&m, 1);
    put64(&m, 1000000);
    put64(&m, 0);
    refused(&m, SK_EPROTO, "1000000 entries do not fit a 48-byte header");

    /* An entry in the middle that is not whole 8-byte words would make
     * libraft's decoder run past the payload. */
    m.len = 0;
    uint32_t lens[] = {13, 8};
    append_entries(&m, lens, 2);
    refused(&m, SK_EPROTO, "entry 0 of 13 bytes is not padded to 8 bytes");

    m.len = 0;
    append_entries(&m, lens + 1, 1);
    m.b[16 + 40 + 8] = 7; /* the entry's type */
    refused(&m, SK_EPROTO, "entry 0 has unknown type 7");

    /* InstallSnapshot: a configuration that does not fit or decode. */
    m.len = 0;
    install_snapshot(&m, 10, 10);
    m.b[16 + 32] = 0;
    m.b[16 + 33] = 0x10; /* configuration length 4096 */
    refused(&m, SK_EPROTO,
            "a configuration of 4096 bytes does not fit a 90-byte header");
    m.len = 0;
    install_snapshot(&m, 10, 10);
    m.b[16 + 32] = 0;
    refused(&m, SK_EPROTO, "a configuration of 0 bytes does not fit");
    m.len = 0;
    install_snapshot(&m, 10, 10);
    m.b[16 + 40] = 2; /* format */
    refused(&m, SK_EPROTO, "the configuration does not decode");
    m.len = 0;
    install_snapshot(&m, 10, 10);
    m.b[16 + 40 + 1] = 2; /* two servers in the room of one */
    refused(&m, SK_EPROTO, "the configuration does not decode");
    m.len = 0;
    install_snapshot(&m, 10, 10);
    /* The address loses its NUL. */
    unsigned char *nul = memchr(m.b + 16 + 40 + 17, 0, 40);
    assert_non_null(nul);
    *nul = 'x';
    refused(&m, SK_EPROTO, "the configuration does not decode");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(legitimate_messages_pass),
        cmocka_unit_test(limits_allow_the_largest),
        cmocka_unit_test(oversized_claims_refused),
        cmocka_unit_test(malformed_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
