/*
 * The plan table: the seed's default, lookups, additions that must be
 * refused, the month=/minute= value parser and the overage band.
 */

#include <stdio.h>
#include <string.h>

#include "ug_check.h"
#include "ug_plan.h"


#define S(s)  (s), (sizeof(s) - 1)


static int
add(ug_plan_table_t *t, const char *name, int64_t month, int64_t minute)
{
    ug_limits_t  l;

    l.month = month;
    l.minute = minute;

    return ug_plan_add(t, name, strlen(name), &l);
}


START_TEST(test_default_table)
{
    ug_plan_table_t  t;
    int              i;

    memset(&t, 0x5a, sizeof(t));     /* must not rely on zeroed memory */
    ug_plan_table_default(&t);

    ck_assert_uint_eq(t.n, 4);

    ck_assert_str_eq(t.plans[0].name, "free");
    ck_assert_uint_eq(t.plans[0].len, 4);
    ck_assert_int_eq(t.plans[0].limits.month, 20);
    ck_assert_int_eq(t.plans[0].limits.minute, 30);

    ck_assert_str_eq(t.plans[1].name, "pro");
    ck_assert_uint_eq(t.plans[1].len, 3);
    ck_assert_int_eq(t.plans[1].limits.month, UG_OFF);
    ck_assert_int_eq(t.plans[1].limits.minute, 120);

    ck_assert_str_eq(t.plans[2].name, "team");
    ck_assert_uint_eq(t.plans[2].len, 4);
    ck_assert_int_eq(t.plans[2].limits.month, UG_OFF);
    ck_assert_int_eq(t.plans[2].limits.minute, 300);

    ck_assert_str_eq(t.plans[3].name, "enterprise");
    ck_assert_uint_eq(t.plans[3].len, 10);
    ck_assert_int_eq(t.plans[3].limits.month, UG_OFF);
    ck_assert_int_eq(t.plans[3].limits.minute, 600);

    i = ug_plan_find(&t, S("enterprise"));
    ck_assert_int_eq(i, 3);

    /* a second call starts again rather than appending */
    ug_plan_table_default(&t);
    ck_assert_uint_eq(t.n, 4);
}
END_TEST


START_TEST(test_find_case_insensitive)
{
    ug_plan_table_t  t;

    ug_plan_table_default(&t);

    ck_assert_int_eq(ug_plan_find(&t, S("free")), 0);
    ck_assert_int_eq(ug_plan_find(&t, S("FREE")), 0);
    ck_assert_int_eq(ug_plan_find(&t, S("Free")), 0);
    ck_assert_int_eq(ug_plan_find(&t, S("pro")), 1);
    ck_assert_int_eq(ug_plan_find(&t, S("PrO")), 1);
    ck_assert_int_eq(ug_plan_find(&t, S("TEAM")), 2);
    ck_assert_int_eq(ug_plan_find(&t, S("Enterprise")), 3);
    ck_assert_int_eq(ug_plan_find(&t, S("ENTERPRISE")), 3);

    /* the length bounds the comparison: no prefix or suffix matches */
    ck_assert_int_eq(ug_plan_find(&t, "freedom", 4), 0);
    ck_assert_int_eq(ug_plan_find(&t, S("fre")), -1);
    ck_assert_int_eq(ug_plan_find(&t, S("freee")), -1);
    ck_assert_int_eq(ug_plan_find(&t, S("free ")), -1);
    ck_assert_int_eq(ug_plan_find(&t, S(" free")), -1);
    ck_assert_int_eq(ug_plan_find(&t, S("pros")), -1);
    ck_assert_int_eq(ug_plan_find(&t, "", 0), -1);
    ck_assert_int_eq(ug_plan_find(&t, S("gold")), -1);
    ck_assert_int_eq(ug_plan_find(&t, "free\0", 5), -1);

    /* bytes that only look alike: not folded */
    ck_assert_int_eq(ug_plan_find(&t, S("fr\xc3\xa9" "e")), -1);
    ck_assert_int_eq(ug_plan_find(&t, S("fREE\x80")), -1);
}
END_TEST


START_TEST(test_add)
{
    ug_plan_table_t  t;
    int              rc;

    t.n = 0;

    ck_assert_int_eq(add(&t, "free", 20, 30), 0);
    ck_assert_int_eq(add(&t, "Gold_Plus-2", UG_OFF, 7), 1);
    ck_assert_uint_eq(t.n, 2);

    /* stored in lower case, found in any case */
    ck_assert_str_eq(t.plans[1].name, "gold_plus-2");
    ck_assert_uint_eq(t.plans[1].len, 11);
    ck_assert_int_eq(t.plans[1].limits.month, UG_OFF);
    ck_assert_int_eq(t.plans[1].limits.minute, 7);
    ck_assert_int_eq(ug_plan_find(&t, S("GOLD_PLUS-2")), 1);

    /* duplicates, in any case */
    ck_assert_int_eq(add(&t, "free", 1, 1), UG_PLAN_DUPLICATE);
    ck_assert_int_eq(add(&t, "FREE", 1, 1), UG_PLAN_DUPLICATE);
    ck_assert_int_eq(add(&t, "gold_PLUS-2", 1, 1), UG_PLAN_DUPLICATE);
    ck_assert_uint_eq(t.n, 2);
    ck_assert_int_eq(t.plans[0].limits.month, 20);

    rc = add(&t, "0", 0, 0);
    ck_assert_int_eq(rc, 2);
}
END_TEST


START_TEST(test_add_bad_names)
{
    static const char  *bad[] = {
        "a b", " free", "free ", "fr.ee", "free!", "pl/an", "pl\"an",
        "pl\\an", "pl\tan", "caf\xc3\xa9", "x\x7f", "x\x01", "x:y",
        "x;y", "{x}",
    };

    ug_plan_table_t     t;
    ug_limits_t         l;
    char                name[UG_PLAN_NAME_MAX + 2];
    size_t              i;

    ug_plan_table_default(&t);
    l.month = 1;
    l.minute = 1;

    ck_assert_int_eq(ug_plan_add(&t, "", 0, &l), UG_PLAN_BAD_NAME);
    ck_assert_int_eq(ug_plan_add(&t, "a\0b", 3, &l), UG_PLAN_BAD_NAME);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(ug_plan_add(&t, bad[i], strlen(bad[i]), &l)
                      == UG_PLAN_BAD_NAME, "accepted \"%s\"", bad[i]);
    }

    ck_assert_uint_eq(t.n, 4);

    /* 32 characters is the limit; 33 is too long */
    memset(name, 'p', sizeof(name));
    ck_assert_int_eq(ug_plan_add(&t, name, UG_PLAN_NAME_MAX + 1, &l),
                     UG_PLAN_BAD_NAME);
    ck_assert_uint_eq(t.n, 4);

    ck_assert_int_eq(ug_plan_add(&t, name, UG_PLAN_NAME_MAX, &l), 4);
    ck_assert_uint_eq(t.plans[4].len, UG_PLAN_NAME_MAX);
    ck_assert_uint_eq(strlen(t.plans[4].name), UG_PLAN_NAME_MAX);
    ck_assert_int_eq(ug_plan_find(&t, name, UG_PLAN_NAME_MAX), 4);
    ck_assert_int_eq(ug_plan_find(&t, name, UG_PLAN_NAME_MAX + 1), -1);
}
END_TEST


START_TEST(test_add_too_many)
{
    ug_plan_table_t  t;
    char             name[16];
    int              i;

    t.n = 0;

    for (i = 0; i < UG_PLANS_MAX; i++) {
        snprintf(name, sizeof(name), "plan%d", i);
        ck_assert_int_eq(add(&t, name, i, i + 1), i);
    }

    ck_assert_uint_eq(t.n, UG_PLANS_MAX);
    ck_assert_int_eq(add(&t, "one-more", 1, 1), UG_PLAN_TOO_MANY);
    ck_assert_uint_eq(t.n, UG_PLANS_MAX);

    /* all 32 still there with their own limits */
    for (i = 0; i < UG_PLANS_MAX; i++) {
        snprintf(name, sizeof(name), "PLAN%d", i);
        ck_assert_int_eq(ug_plan_find(&t, name, strlen(name)), i);
        ck_assert_int_eq(t.plans[i].limits.month, i);
        ck_assert_int_eq(t.plans[i].limits.minute, i + 1);
    }

    ck_assert_int_eq(ug_plan_find(&t, S("one-more")), -1);
}
END_TEST


START_TEST(test_strerror)
{
    const char  *m[3];
    int          i, j;

    m[0] = ug_plan_strerror(UG_PLAN_BAD_NAME);
    m[1] = ug_plan_strerror(UG_PLAN_DUPLICATE);
    m[2] = ug_plan_strerror(UG_PLAN_TOO_MANY);

    for (i = 0; i < 3; i++) {
        ck_assert_ptr_nonnull(m[i]);
        ck_assert_uint_gt(strlen(m[i]), 0);

        for (j = 0; j < i; j++) {
            ck_assert_str_ne(m[i], m[j]);
        }
    }

    ck_assert_ptr_nonnull(strstr(m[2], "32"));
    ck_assert_ptr_nonnull(strstr(m[0], "32"));
}
END_TEST


START_TEST(test_parse_limit_good)
{
    int64_t  v;

    v = 12345;
    ck_assert_int_eq(ug_parse_limit(S("0"), &v), 0);
    ck_assert_int_eq(v, 0);

    ck_assert_int_eq(ug_parse_limit(S("20"), &v), 0);
    ck_assert_int_eq(v, 20);

    ck_assert_int_eq(ug_parse_limit(S("off"), &v), 0);
    ck_assert_int_eq(v, UG_OFF);

    ck_assert_int_eq(ug_parse_limit(S("7000"), &v), 0);
    ck_assert_int_eq(v, 7000);

    ck_assert_int_eq(ug_parse_limit(S("1000000000000"), &v), 0);
    ck_assert_int_eq(v, UG_LIMIT_MAX);

    ck_assert_int_eq(ug_parse_limit(S("999999999999"), &v), 0);
    ck_assert_int_eq(v, UG_LIMIT_MAX - 1);

    /* only len bytes are read */
    ck_assert_int_eq(ug_parse_limit("205", 2, &v), 0);
    ck_assert_int_eq(v, 20);
    ck_assert_int_eq(ug_parse_limit("offset", 3, &v), 0);
    ck_assert_int_eq(v, UG_OFF);
}
END_TEST


START_TEST(test_parse_limit_bad)
{
    static const char  *bad[] = {
        "-1", "-0", "+5", "", "1e3", "  5", "5 ", " ", "0x10", "1.5",
        "1,000", "of", "offf", "on", "none", "x", "20abc",
        "1000000000001",            /* UG_LIMIT_MAX + 1 */
        "9999999999999",
        "99999999999999999999",     /* beyond int64 */
        "18446744073709551616",     /* beyond uint64 */
        "9223372036854775807",      /* INT64_MAX */
        "9223372036854775808",
    };

    int64_t  v;
    size_t   i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 424242;
        ck_assert_msg(ug_parse_limit(bad[i], strlen(bad[i]), &v) == -1,
                      "accepted \"%s\"", bad[i]);
        /* a refused value leaves the output alone */
        ck_assert_int_eq(v, 424242);
    }

    v = 424242;
    ck_assert_int_eq(ug_parse_limit("5\0", 2, &v), -1);
    ck_assert_int_eq(ug_parse_limit("\0" "5", 2, &v), -1);
    ck_assert_int_eq(ug_parse_limit("off", 2, &v), -1);
    ck_assert_int_eq(v, 424242);
}
END_TEST


START_TEST(test_overage_parse)
{
    static const char  *bad[] = {
        "", "off", "OFF", "Unlimited", "unlimite", "unlimitedx", "-1",
        "+5", " 5", "5 ", "1e3", "1000000000001", "99999999999999999999",
        "5000\0", "0x10"
    };

    int64_t  v;
    size_t   i, len;

    v = 7;
    ck_assert_int_eq(ug_parse_overage(S("5000"), &v), 0);
    ck_assert_int_eq(v, 5000);
    ck_assert_int_eq(ug_parse_overage(S("0"), &v), 0);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(ug_parse_overage(S("1000000000000"), &v), 0);
    ck_assert_int_eq(v, UG_LIMIT_MAX);
    ck_assert_int_eq(ug_parse_overage(S("unlimited"), &v), 0);
    ck_assert_int_eq(v, UG_OFF);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* "5000\0": the NUL counts as a byte of the value */
        len = strcmp(bad[i], "5000") == 0 ? 5 : strlen(bad[i]);
        v = 7;
        ck_assert_msg(ug_parse_overage(bad[i], len, &v) == -1,
                      "\"%s\" accepted", bad[i]);
        ck_assert_int_eq(v, 7);
    }
}
END_TEST


START_TEST(test_add_overage)
{
    ug_plan_table_t  t;
    ug_limits_t      l;
    int              i;

    memset(&t, 0x5a, sizeof(t));
    t.n = 0;

    l.month = 10000;
    l.minute = 120;
    i = ug_plan_add_overage(&t, S("pro"), &l, 5000);
    ck_assert_int_eq(i, 0);
    ck_assert_int_eq(t.plans[0].limits.month, 10000);
    ck_assert_int_eq(t.plans[0].overage, 5000);

    i = ug_plan_add_overage(&t, S("scale"), &l, UG_OFF);
    ck_assert_int_eq(i, 1);
    ck_assert_int_eq(t.plans[1].overage, UG_OFF);

    /* the old entry point: no band */
    i = ug_plan_add(&t, S("basic"), &l);
    ck_assert_int_eq(i, 2);
    ck_assert_int_eq(t.plans[2].overage, 0);

    /* a band without an included month is refused, and says why */
    l.month = UG_OFF;
    ck_assert_int_eq(ug_plan_add_overage(&t, S("odd"), &l, 10),
                     UG_PLAN_OVERAGE);
    ck_assert_int_eq(ug_plan_add_overage(&t, S("odd"), &l, UG_OFF),
                     UG_PLAN_OVERAGE);
    ck_assert_uint_eq(t.n, 3);
    ck_assert_ptr_nonnull(strstr(ug_plan_strerror(UG_PLAN_OVERAGE),
                                 "month="));
    ck_assert_int_eq(ug_plan_add_overage(&t, S("odd"), &l, 0), 3);

    /* name checks still come first */
    l.month = 5;
    ck_assert_int_eq(ug_plan_add_overage(&t, S("pro"), &l, 1),
                     UG_PLAN_DUPLICATE);
    ck_assert_int_eq(ug_plan_add_overage(&t, S("a b"), &l, 1),
                     UG_PLAN_BAD_NAME);

    /* the built-in table has no bands */
    memset(&t, 0x5a, sizeof(t));
    ug_plan_table_default(&t);
    for (i = 0; i < (int) t.n; i++) {
        ck_assert_int_eq(t.plans[i].overage, 0);
    }
}
END_TEST


static Suite *
plan_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("ug_plan");
    tc = tcase_create("core");

    tcase_add_test(tc, test_default_table);
    tcase_add_test(tc, test_find_case_insensitive);
    tcase_add_test(tc, test_add);
    tcase_add_test(tc, test_add_bad_names);
    tcase_add_test(tc, test_add_too_many);
    tcase_add_test(tc, test_strerror);
    tcase_add_test(tc, test_parse_limit_good);
    tcase_add_test(tc, test_parse_limit_bad);
    tcase_add_test(tc, test_overage_parse);
    tcase_add_test(tc, test_add_overage);

    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    return ug_check_run(plan_suite());
}
