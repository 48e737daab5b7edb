/*
 * Identity values: which asserted ids are accepted, and the anonymous
 * owner "anon:" + 24 hex digits of HMAC-SHA256(salt, client address).
 */

#include <string.h>

#include "ug_check.h"
#include "ug_identity.h"


#define U(s)  ((const unsigned char *) (s))


static int
check(const char *s, size_t len)
{
    return ug_id_check(U(s), len);
}


START_TEST(test_id_ok)
{
    unsigned char  buf[UG_ID_MAX + 1];
    unsigned       c;

    ck_assert_int_eq(check("u", 1), UG_ID_OK);
    ck_assert_int_eq(check("user_123", 8), UG_ID_OK);
    ck_assert_int_eq(check("org:acme/team-1", 15), UG_ID_OK);
    ck_assert_int_eq(check("!~", 2), UG_ID_OK);
    ck_assert_int_eq(check("user_2abcDEF", 12), UG_ID_OK);

    /* every printable ASCII byte but space, alone */
    for (c = 0x21; c <= 0x7e; c++) {
        buf[0] = (unsigned char) c;
        ck_assert_int_eq(ug_id_check(buf, 1), UG_ID_OK);
    }

    /* exactly 128 bytes */
    memset(buf, 'a', sizeof(buf));
    ck_assert_int_eq(ug_id_check(buf, UG_ID_MAX), UG_ID_OK);
    ck_assert_int_eq(UG_ID_MAX, 128);
}
END_TEST


START_TEST(test_id_empty_and_long)
{
    unsigned char  buf[4096];

    ck_assert_int_eq(check("", 0), UG_ID_EMPTY);
    ck_assert_int_eq(ug_id_check(NULL, 0), UG_ID_EMPTY);

    memset(buf, 'a', sizeof(buf));
    ck_assert_int_eq(ug_id_check(buf, UG_ID_MAX + 1), UG_ID_TOO_LONG);
    ck_assert_int_eq(ug_id_check(buf, sizeof(buf)), UG_ID_TOO_LONG);

    /* the 129th byte is never looked at as a character: too long wins */
    buf[UG_ID_MAX] = ' ';
    ck_assert_int_eq(ug_id_check(buf, UG_ID_MAX), UG_ID_OK);
    ck_assert_int_eq(ug_id_check(buf, UG_ID_MAX + 1), UG_ID_TOO_LONG);
}
END_TEST


START_TEST(test_id_bad_chars)
{
    unsigned char  buf[8];
    unsigned       c;
    size_t         pos;

    ck_assert_int_eq(check("a b", 3), UG_ID_BAD_CHAR);
    ck_assert_int_eq(check(" ", 1), UG_ID_BAD_CHAR);
    ck_assert_int_eq(check("a\tb", 3), UG_ID_BAD_CHAR);
    ck_assert_int_eq(check("a\x7f", 2), UG_ID_BAD_CHAR);
    ck_assert_int_eq(check("caf\xc3\xa9", 5), UG_ID_BAD_CHAR);
    ck_assert_int_eq(check("a\r\nX-Plan: enterprise", 22), UG_ID_BAD_CHAR);
    ck_assert_int_eq(check("a\0b", 3), UG_ID_BAD_CHAR);

    /* every byte outside 0x21..0x7e, at the start, middle and end */
    for (c = 0; c <= 0xff; c++) {
        if (c >= 0x21 && c <= 0x7e) {
            continue;
        }

        for (pos = 0; pos < 3; pos++) {
            memcpy(buf, "abc", 3);
            buf[pos] = (unsigned char) c;
            ck_assert_msg(ug_id_check(buf, 3) == UG_ID_BAD_CHAR,
                          "byte 0x%02x at %zu accepted", c, pos);
        }
    }
}
END_TEST


START_TEST(test_id_reserved_prefix)
{
    const unsigned char  *anon = (const unsigned char *)
                                 "anon:0123456789abcdef01234567";

    ck_assert_int_eq(ug_id_check_asserted(anon, 29), UG_ID_RESERVED);
    ck_assert_int_eq(ug_id_check_asserted(anon, 5), UG_ID_RESERVED);
    ck_assert_int_eq(ug_id_check(anon, 29), UG_ID_OK);

    /* other spellings are other owners, not the anonymous key space */
    ck_assert_int_eq(ug_id_check_asserted((const unsigned char *) "anon", 4),
                     UG_ID_OK);
    ck_assert_int_eq(ug_id_check_asserted((const unsigned char *) "ANON:x",
                                          6), UG_ID_OK);
    ck_assert_int_eq(ug_id_check_asserted((const unsigned char *) "x-anon:",
                                          7), UG_ID_OK);

    /* the other checks come first */
    ck_assert_int_eq(ug_id_check_asserted((const unsigned char *) "anon: x",
                                          7), UG_ID_BAD_CHAR);
    ck_assert_int_eq(ug_id_check_asserted(anon, 0), UG_ID_EMPTY);
    ck_assert_ptr_nonnull(strstr(ug_id_strerror(UG_ID_RESERVED), "anon:"));
}
END_TEST


START_TEST(test_id_strerror)
{
    const char  *e, *l, *b;

    e = ug_id_strerror(UG_ID_EMPTY);
    l = ug_id_strerror(UG_ID_TOO_LONG);
    b = ug_id_strerror(UG_ID_BAD_CHAR);

    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_nonnull(l);
    ck_assert_ptr_nonnull(b);
    ck_assert_str_ne(e, l);
    ck_assert_str_ne(e, b);
    ck_assert_str_ne(l, b);
    ck_assert_ptr_nonnull(strstr(l, "128"));

    /* it goes into a JSON "detail": no quote or backslash to escape */
    ck_assert_ptr_null(strpbrk(e, "\"\\"));
    ck_assert_ptr_null(strpbrk(l, "\"\\"));
    ck_assert_ptr_null(strpbrk(b, "\"\\"));
}
END_TEST


/*
 * Expected owners, computed once with /usr/bin/python3 by the seed's own
 * formula and hard-coded here:
 *
 *   "anon:" + hmac.new(salt, addr, hashlib.sha256).hexdigest()[:24]
 *
 * The first is the value the issue and the seed name.
 */
static const struct {
    const char  *salt;
    size_t       salt_len;
    const char  *addr;
    const char  *owner;
} anon_vectors[] = {
    { "sentientiq", 10, "127.0.0.1", "anon:b109e04d0335ce95dea2a753" },
    { "sentientiq", 10, "::1", "anon:558f09aa4bf585e9cc8c2879" },
    { "sentientiq", 10, "0.0.0.0", "anon:ebd5059b040108eba285347b" },
    { "long-random-secret", 18, "10.0.0.7",
      "anon:7bc365df02b852473cd107cf" },
    { "s", 1, "2001:db8::1", "anon:14ef6e9f21c921a9263e3fe2" },
    /* a salt with a NUL byte: the length counts, not strlen() */
    { "k\0ey", 4, "1.2.3.4", "anon:a0e5e7d6ed6d23005878165f" },
    /* an empty address */
    { "sentientiq", 10, "", "anon:ec6431fb1558b51a5dc16b61" },
};


START_TEST(test_anon_vectors)
{
    char    *out;
    size_t   i;

    ck_assert_uint_eq(UG_ANON_LEN, 29);

    for (i = 0; i < sizeof(anon_vectors) / sizeof(anon_vectors[0]); i++) {
        out = ug_canary_buf(UG_ANON_LEN);

        ck_assert_int_eq(ug_anon_owner(U(anon_vectors[i].salt),
                                       anon_vectors[i].salt_len,
                                       U(anon_vectors[i].addr),
                                       strlen(anon_vectors[i].addr),
                                       (unsigned char *) out), 0);

        ck_assert_msg(memcmp(out, anon_vectors[i].owner, UG_ANON_LEN) == 0,
                      "vector %zu: got %.29s, want %s", i, out,
                      anon_vectors[i].owner);

        /* exactly UG_ANON_LEN bytes written, nothing around them */
        ck_assert(ug_canary_ok(out, UG_ANON_LEN));

        ug_canary_free(out);
    }
}
END_TEST


/*
 * The reusable context gives the published owners, whether the address
 * is new, repeated (the remembered one) or alternating with another.
 */
START_TEST(test_anon_cached_vectors)
{
    size_t          i, round;
    ug_anon_t      *anon;
    unsigned char   out[UG_ANON_LEN];

    for (i = 0; i < sizeof(anon_vectors) / sizeof(anon_vectors[0]); i++) {
        anon = ug_anon_new(U(anon_vectors[i].salt),
                           anon_vectors[i].salt_len);
        ck_assert_ptr_nonnull(anon);

        for (round = 0; round < 3; round++) {
            ck_assert_int_eq(ug_anon_owner_cached(anon,
                                 U(anon_vectors[i].addr),
                                 strlen(anon_vectors[i].addr), out), 0);
            ck_assert_msg(memcmp(out, anon_vectors[i].owner, UG_ANON_LEN)
                          == 0, "vector %zu round %zu: got %.29s", i, round,
                          out);

            /* another address in between must not be answered from the
             * remembered one, nor spoil it */
            ck_assert_int_eq(ug_anon_owner_cached(anon, U("198.51.100.9"),
                                                  12, out), 0);
            ck_assert(memcmp(out, anon_vectors[i].owner, UG_ANON_LEN) != 0);
        }

        ug_anon_free(anon);
    }

    ug_anon_free(NULL);
}
END_TEST


START_TEST(test_anon_long_salt)
{
    /* longer than SHA-256's 64-byte block, so HMAC hashes the key first:
     * salt = "x" * 100, address "192.168.1.1", made with Python as above */
    unsigned char  salt[100], out[UG_ANON_LEN];

    memset(salt, 'x', sizeof(salt));

    ck_assert_int_eq(ug_anon_owner(salt, sizeof(salt), U("192.168.1.1"), 11,
                                   out), 0);
    ck_assert(memcmp(out, "anon:b232d332a8534325e512b1e7", UG_ANON_LEN)
              == 0);
}
END_TEST


START_TEST(test_anon_properties)
{
    unsigned char  a[UG_ANON_LEN], b[UG_ANON_LEN];
    size_t         i;

    /* stable for the same input */
    ck_assert_int_eq(ug_anon_owner(U("salt"), 4, U("10.1.2.3"), 8, a), 0);
    ck_assert_int_eq(ug_anon_owner(U("salt"), 4, U("10.1.2.3"), 8, b), 0);
    ck_assert(memcmp(a, b, UG_ANON_LEN) == 0);

    /* the address length bounds the input */
    ck_assert_int_eq(ug_anon_owner(U("salt"), 4, U("10.1.2.34"), 8, b), 0);
    ck_assert(memcmp(a, b, UG_ANON_LEN) == 0);

    /* another salt or another address: another owner */
    ck_assert_int_eq(ug_anon_owner(U("salt2"), 5, U("10.1.2.3"), 8, b), 0);
    ck_assert(memcmp(a, b, UG_ANON_LEN) != 0);
    ck_assert_int_eq(ug_anon_owner(U("salt"), 4, U("10.1.2.4"), 8, b), 0);
    ck_assert(memcmp(a, b, UG_ANON_LEN) != 0);

    /* shape: the prefix, then lower-case hex only; valid as an id */
    ck_assert(memcmp(a, UG_ANON_PREFIX, 5) == 0);
    for (i = 5; i < UG_ANON_LEN; i++) {
        ck_assert((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f'));
    }
    ck_assert_int_eq(ug_id_check(a, UG_ANON_LEN), UG_ID_OK);
    ck_assert_uint_le(UG_ANON_LEN, UG_OWNER_MAX);
}
END_TEST


static Suite *
identity_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("ug_identity");
    tc = tcase_create("core");

    tcase_add_test(tc, test_id_ok);
    tcase_add_test(tc, test_id_empty_and_long);
    tcase_add_test(tc, test_id_bad_chars);
    tcase_add_test(tc, test_id_reserved_prefix);
    tcase_add_test(tc, test_id_strerror);
    tcase_add_test(tc, test_anon_vectors);
    tcase_add_test(tc, test_anon_cached_vectors);
    tcase_add_test(tc, test_anon_long_salt);
    tcase_add_test(tc, test_anon_properties);

    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    return ug_check_run(identity_suite());
}
