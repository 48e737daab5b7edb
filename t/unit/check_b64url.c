/*
 * The base64url codec: RFC 4648 vectors, the URL alphabet, and the
 * strictness the JWT verifier relies on (no padding, no foreign bytes,
 * no 4n+1 lengths, no non-canonical last character, bounded output).
 */

#include <string.h>

#include "ug_b64url.h"
#include "ug_check.h"


static long
dec(const char *s, unsigned char *out, size_t size)
{
    return ug_b64url_decode(out, size, s, strlen(s));
}


START_TEST(test_rfc4648_vectors)
{
    /* RFC 4648 section 10, padding removed as JOSE does */
    static const char  *plain[] = {
        "", "f", "fo", "foo", "foob", "fooba", "foobar"
    };
    static const char  *enc[] = {
        "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"
    };

    int            i;
    long           n;
    char           e[16];
    size_t         m;
    unsigned char  out[16];

    for (i = 0; i < 7; i++) {
        n = dec(enc[i], out, sizeof(out));
        ck_assert_int_eq(n, (long) strlen(plain[i]));
        ck_assert(memcmp(out, plain[i], (size_t) n) == 0);

        m = ug_b64url_encode(e, sizeof(e), (const unsigned char *) plain[i],
                             strlen(plain[i]));
        ck_assert_uint_eq(m, strlen(enc[i]));
        ck_assert(memcmp(e, enc[i], m) == 0);
        ck_assert_uint_eq(m, UG_B64URL_ENCODED_LEN(strlen(plain[i])));
    }
}
END_TEST


START_TEST(test_url_alphabet)
{
    long                  n;
    char                  e[8];
    unsigned char         out[8];
    static unsigned char  in[] = { 0xfb, 0xff, 0xbf };

    /* 0xfb 0xff 0xbf is "+/+/" in standard base64 */
    ck_assert_uint_eq(ug_b64url_encode(e, sizeof(e), in, 3), 4);
    ck_assert(memcmp(e, "-_-_", 4) == 0);

    n = dec("-_-_", out, sizeof(out));
    ck_assert_int_eq(n, 3);
    ck_assert(memcmp(out, in, 3) == 0);

    /* the standard alphabet's 62 and 63 are foreign here */
    ck_assert_int_eq(dec("+/+/", out, sizeof(out)), -1);
    ck_assert_int_eq(dec("-_+_", out, sizeof(out)), -1);
}
END_TEST


START_TEST(test_rejects_foreign_bytes)
{
    static const char  *bad[] = {
        "Zg==", "Zm8=", "Zm9v Yg", "Zm9v\nYg", "Zm.v", "Zm9v\tYmFy",
        "Zm9\x80", "Zm9v\xff", "Zm9v!", "Z$9v"
    };

    size_t         i;
    unsigned char  out[32];

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(dec(bad[i], out, sizeof(out)) == -1,
                      "accepted \"%s\"", bad[i]);
    }

    /* a NUL inside the given length is foreign too */
    ck_assert_int_eq(ug_b64url_decode(out, sizeof(out), "Zm\0v", 4), -1);
}
END_TEST


START_TEST(test_rejects_impossible_length)
{
    unsigned char  out[32];

    ck_assert_int_eq(dec("Z", out, sizeof(out)), -1);
    ck_assert_int_eq(dec("Zm9vY", out, sizeof(out)), -1);
    ck_assert_int_eq(dec("Zm9vYmFyZ", out, sizeof(out)), -1);
}
END_TEST


START_TEST(test_rejects_non_canonical)
{
    unsigned char  out[32];

    /* "f" is Zg; Zh..Zv carry bits that "f" does not have */
    ck_assert_int_eq(dec("Zg", out, sizeof(out)), 1);
    ck_assert_int_eq(dec("Zh", out, sizeof(out)), -1);
    ck_assert_int_eq(dec("Zv", out, sizeof(out)), -1);

    /* "fo" is Zm8; Zm9 would decode to the same two bytes */
    ck_assert_int_eq(dec("Zm8", out, sizeof(out)), 2);
    ck_assert_int_eq(dec("Zm9", out, sizeof(out)), -1);
    ck_assert_int_eq(dec("Zm_", out, sizeof(out)), -1);

    /* the same after full groups */
    ck_assert_int_eq(dec("Zm9vZg", out, sizeof(out)), 4);
    ck_assert_int_eq(dec("Zm9vZh", out, sizeof(out)), -1);
}
END_TEST


START_TEST(test_bounded_output)
{
    long           n;
    char          *buf;
    unsigned char  out[8];

    buf = ug_canary_buf(3);

    /* exactly enough room */
    n = ug_b64url_decode((unsigned char *) buf, 3, "Zm9v", 4);
    ck_assert_int_eq(n, 3);
    ck_assert(ug_canary_ok(buf, 3));

    /* one byte short: refused, nothing written past the end */
    n = ug_b64url_decode((unsigned char *) buf, 3, "Zm9vYg", 6);
    ck_assert_int_eq(n, -1);
    ck_assert(ug_canary_ok(buf, 3));

    ug_canary_free(buf);

    ck_assert_int_eq(ug_b64url_decode(out, 0, "", 0), 0);
    ck_assert_uint_eq(ug_b64url_encode((char *) out, 3,
                                       (const unsigned char *) "foo", 3), 0);
}
END_TEST


START_TEST(test_roundtrip_all_lengths)
{
    long           n;
    size_t         len, i, m;
    char           enc[400];
    unsigned char  in[256], out[256];

    for (i = 0; i < sizeof(in); i++) {
        in[i] = (unsigned char) (i * 151 + 7);
    }

    for (len = 0; len <= sizeof(in); len++) {
        m = ug_b64url_encode(enc, sizeof(enc), in, len);
        ck_assert_uint_eq(m, UG_B64URL_ENCODED_LEN(len));
        ck_assert(len == 0 || m > 0);

        for (i = 0; i < m; i++) {
            ck_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrst"
                             "uvwxyz0123456789-_", enc[i]) != NULL);
        }

        n = ug_b64url_decode(out, sizeof(out), enc, m);
        ck_assert_int_eq(n, (long) len);
        ck_assert(memcmp(out, in, len) == 0);
        ck_assert((size_t) n <= UG_B64URL_DECODED_LEN(m));
    }
}
END_TEST


static Suite *
b64url_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("b64url");
    tc = tcase_create("core");

    tcase_add_test(tc, test_rfc4648_vectors);
    tcase_add_test(tc, test_url_alphabet);
    tcase_add_test(tc, test_rejects_foreign_bytes);
    tcase_add_test(tc, test_rejects_impossible_length);
    tcase_add_test(tc, test_rejects_non_canonical);
    tcase_add_test(tc, test_bounded_output);
    tcase_add_test(tc, test_roundtrip_all_lengths);
    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    return ug_check_run(b64url_suite());
}
