/*
 * Check tests for src/ug_lognote.c: which denials are logged.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ug_check.h"
#include "ug_lognote.h"


static uint64_t
h(const char *s)
{
    return ug_lognote_hash((const unsigned char *) s, strlen(s));
}


START_TEST(test_once_per_period)
{
    ug_lognote_t  *t;
    int            i;

    t = calloc(1, sizeof(ug_lognote_t));
    ck_assert_ptr_nonnull(t);

    ck_assert_int_eq(ug_lognote_first(t, h("alice"), UG_LOGNOTE_QUOTA, 7), 1);

    for (i = 0; i < 1000; i++) {
        ug_expect(ug_lognote_first(t, h("alice"), UG_LOGNOTE_QUOTA, 7) == 0,
                  "denial %d logged again", i);
    }

    /* the next cycle, and the other kind, are events of their own */
    ck_assert_int_eq(ug_lognote_first(t, h("alice"), UG_LOGNOTE_QUOTA, 8), 1);
    ck_assert_int_eq(ug_lognote_first(t, h("alice"), UG_LOGNOTE_RATE, 8), 1);
    ck_assert_int_eq(ug_lognote_first(t, h("alice"), UG_LOGNOTE_RATE, 8), 0);
    ck_assert_int_eq(ug_lognote_first(t, h("alice"), UG_LOGNOTE_RATE, 9), 1);
    ck_assert_int_eq(ug_lognote_first(t, h("alice"), UG_LOGNOTE_QUOTA, 8), 0);

    /* another owner is logged on its own */
    ck_assert_int_eq(ug_lognote_first(t, h("bob"), UG_LOGNOTE_QUOTA, 8), 1);

    /* a kind out of range is always logged */
    ck_assert_int_eq(ug_lognote_first(t, h("bob"), UG_LOGNOTE_KINDS, 8), 1);
    ck_assert_int_eq(ug_lognote_first(t, h("bob"), UG_LOGNOTE_KINDS, 8), 1);

    free(t);
}
END_TEST


START_TEST(test_collision_adds_lines_never_hides)
{
    ug_lognote_t  *t;
    uint64_t       a, b;

    t = calloc(1, sizeof(ug_lognote_t));
    ck_assert_ptr_nonnull(t);

    /* two hashes in one slot */
    a = 5;
    b = 5 + UG_LOGNOTE_SLOTS;

    ck_assert_int_eq(ug_lognote_first(t, a, UG_LOGNOTE_QUOTA, 1), 1);
    ck_assert_int_eq(ug_lognote_first(t, b, UG_LOGNOTE_QUOTA, 1), 1);
    ck_assert_int_eq(ug_lognote_first(t, a, UG_LOGNOTE_QUOTA, 1), 1);
    ck_assert_int_eq(ug_lognote_first(t, a, UG_LOGNOTE_QUOTA, 1), 0);

    free(t);
}
END_TEST


START_TEST(test_hash)
{
    ck_assert_uint_ne(h("alice"), h("alicf"));
    ck_assert_uint_ne(h(""), 0);
    ck_assert_uint_eq(h("alice"), h("alice"));
    /* FNV-1a 64 of "a" */
    ck_assert_uint_eq(h("a"), 0xaf63dc4c8601ec8cULL);
}
END_TEST


static Suite *
lognote_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("ug_lognote");
    tc = tcase_create("core");

    tcase_add_test(tc, test_once_per_period);
    tcase_add_test(tc, test_collision_adds_lines_never_hides);
    tcase_add_test(tc, test_hash);

    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    return ug_check_run(lognote_suite());
}
