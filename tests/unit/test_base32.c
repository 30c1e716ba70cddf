#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "skiff/base32.h"
#include "skiff/id.h"

/* RFC 4648 test vectors, lower case and without padding. */
static void rfc_vectors(void **state)
{
    static const char *const plain[] = {"",     "f",     "fo",    "foo",
                                        "foob", "fooba", "foobar"};
    static const char *const coded[] = {
        "", "my", "mzxq", "mzxw6", "mzxw6yq", "mzxw6ytb", "mzxw6ytboi"};
    for (int i = 0; i < 7; i++) {
        char out[32];
        sk_base32_encode((const unsigned char *)plain[i], strlen(plain[i]),
                         out);
        assert_string_equal(out, coded[i]);
        assert_int_equal(sk_base32_encoded_len(strlen(plain[i])),
                         strlen(coded[i]));

        unsigned char back[32];
        size_t n = 99;
        assert_true(sk_base32_decode(coded[i], strlen(coded[i]), back, &n));
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(back, plain[i], n);
    }
}

static void decode_rejects_bad_input(void **state)
{
    unsigned char out[32];
    size_t n = 7;
    assert_false(sk_base32_decode("mzx1", 4, out, &n)); /* 1 not in alphabet */
    assert_false(sk_base32_decode("mz=q", 4, out, &n));
    /* "mz" has non-zero trailing bits: not the canonical spelling of "f". */
    assert_false(sk_base32_decode("mz", 2, out, &n));
    /* A lone character cannot encode a byte. */
    assert_false(sk_base32_decode("m", 1, out, &n));
    assert_int_equal(n, 7); /* untouched on failure */
    /* Upper case is accepted. */
    assert_true(sk_base32_decode("MZXW6", 5, out, &n));
    assert_memory_equal(out, "foo", 3);
}

static void round_trip_all_lengths(void **state)
{
    unsigned char in[64], back[64];
    char coded[128];
    for (size_t len = 0; len <= sizeof in; len++) {
        sk_random_bytes(in, len);
        sk_base32_encode(in, len, coded);
        size_t n;
        assert_true(sk_base32_decode(coded, strlen(coded), back, &n));
        assert_int_equal(n, len);
        assert_memory_equal(in, back, len);
    }
}

static void ids(void **state)
{
    char a[SK_ID_SIZE], b[SK_ID_SIZE];
    sk_id_new(a);
    sk_id_new(b);
    assert_int_equal(strlen(a), SK_ID_LEN);
    assert_true(sk_id_valid(a));
    assert_string_not_equal(a, b);
    assert_false(sk_id_valid("short"));
    assert_false(sk_id_valid(NULL));
    a[3] = 'A'; /* IDs are canonical lower case */
    assert_false(sk_id_valid(a));
    a[3] = '1';
    assert_false(sk_id_valid(a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc_vectors),
        cmocka_unit_test(decode_rejects_bad_input),
        cmocka_unit_test(round_trip_all_lengths),
        cmocka_unit_test(ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
