/*
 * The verified-token cache: hits, expiry at exp (and the 300 s cap for
 * tokens without exp), LRU eviction when full, scopes kept apart.
 */

#include <stdio.h>
#include <string.h>

#include "ug_check.h"
#include "ug_jwt_cache.h"


#define NOW  1800000000


static ug_jwt_claims_t
claims_for(const char *sub, int64_t exp)
{
    ug_jwt_claims_t  c;

    memset(&c, 0, sizeof(c));
    c.sub_len = strlen(sub);
    memcpy(c.sub, sub, c.sub_len);
    memcpy(c.plan, "pro", 3);
    c.plan_len = 3;
    c.alg = UG_JWT_ALG_RS256;
    c.exp = exp;

    return c;
}


static int
get(ug_jwt_cache_t *c, const char *tok, int64_t now, ug_jwt_claims_t *out)
{
    return ug_jwt_cache_get(c, 1, tok, strlen(tok), now, out);
}


static void
put(ug_jwt_cache_t *c, const char *tok, int64_t now, const char *sub,
    int64_t exp)
{
    ug_jwt_claims_t  cl;

    cl = claims_for(sub, exp);
    ug_jwt_cache_put(c, 1, tok, strlen(tok), now, &cl);
}


START_TEST(test_hit_returns_claims)
{
    ug_jwt_cache_t   *c;
    ug_jwt_claims_t   out;

    c = ug_jwt_cache_new(16);
    ck_assert_ptr_nonnull(c);

    ck_assert_int_eq(get(c, "tok.a.b", NOW, &out), 0);

    put(c, "tok.a.b", NOW, "user_1", NOW + 60);
    ck_assert_uint_eq(ug_jwt_cache_count(c), 1);

    memset(&out, 0, sizeof(out));
    ck_assert_int_eq(get(c, "tok.a.b", NOW + 1, &out), 1);
    ck_assert_str_eq(out.sub, "user_1");
    ck_assert_uint_eq(out.sub_len, 6);
    ck_assert_str_eq(out.plan, "pro");
    ck_assert_int_eq(out.exp, NOW + 60);

    /* a token one byte different is another token */
    ck_assert_int_eq(get(c, "tok.a.c", NOW + 1, &out), 0);
    ck_assert_int_eq(get(c, "tok.a.", NOW + 1, &out), 0);

    ug_jwt_cache_free(c);
}
END_TEST


START_TEST(test_miss_at_and_after_exp)
{
    ug_jwt_cache_t   *c;
    ug_jwt_claims_t   out;

    c = ug_jwt_cache_new(16);

    put(c, "t1", NOW, "u1", NOW + 30);
    put(c, "t2", NOW, "u2", NOW + 30);

    ck_assert_int_eq(get(c, "t1", NOW + 29, &out), 1);
    ck_assert_int_eq(get(c, "t1", NOW + 30, &out), 0);

    /* the expired entry was dropped, not just hidden */
    ck_assert_uint_eq(ug_jwt_cache_count(c), 1);
    ck_assert_int_eq(get(c, "t1", NOW, &out), 0);

    ck_assert_int_eq(get(c, "t2", NOW + 1000, &out), 0);
    ck_assert_uint_eq(ug_jwt_cache_count(c), 0);

    ug_jwt_cache_free(c);
}
END_TEST


START_TEST(test_no_exp_capped)
{
    ug_jwt_cache_t   *c;
    ug_jwt_claims_t   out;

    c = ug_jwt_cache_new(4);

    put(c, "noexp", NOW, "u", 0);

    ck_assert_int_eq(get(c, "noexp", NOW + UG_JWT_CACHE_NOEXP_TTL - 1, &out),
                     1);
    ck_assert_int_eq(get(c, "noexp", NOW + UG_JWT_CACHE_NOEXP_TTL, &out), 0);

    ug_jwt_cache_free(c);
}
END_TEST


START_TEST(test_expired_not_kept)
{
    ug_jwt_cache_t   *c;
    ug_jwt_claims_t   out;

    c = ug_jwt_cache_new(4);

    /* verified within the leeway, but past exp: not worth keeping */
    put(c, "late", NOW, "u", NOW - 10);
    put(c, "now", NOW, "u", NOW);

    ck_assert_uint_eq(ug_jwt_cache_count(c), 0);
    ck_assert_int_eq(get(c, "late", NOW - 20, &out), 0);

    ug_jwt_cache_free(c);
}
END_TEST


START_TEST(test_lru_eviction)
{
    ug_jwt_cache_t   *c;
    ug_jwt_claims_t   out;

    c = ug_jwt_cache_new(3);

    put(c, "A", NOW, "a", NOW + 100);
    put(c, "B", NOW, "b", NOW + 100);
    put(c, "C", NOW, "c", NOW + 100);

    /* A is used again, so B is now the least recently used */
    ck_assert_int_eq(get(c, "A", NOW, &out), 1);

    put(c, "D", NOW, "d", NOW + 100);
    ck_assert_uint_eq(ug_jwt_cache_count(c), 3);

    ck_assert_int_eq(get(c, "B", NOW, &out), 0);
    ck_assert_int_eq(get(c, "A", NOW, &out), 1);
    ck_assert_str_eq(out.sub, "a");
    ck_assert_int_eq(get(c, "C", NOW, &out), 1);
    ck_assert_str_eq(out.sub, "c");
    ck_assert_int_eq(get(c, "D", NOW, &out), 1);
    ck_assert_str_eq(out.sub, "d");

    /* order now A C D (oldest first): E replaces A */
    put(c, "E", NOW, "e", NOW + 100);
    ck_assert_int_eq(get(c, "A", NOW, &out), 0);
    ck_assert_int_eq(get(c, "E", NOW, &out), 1);

    ug_jwt_cache_free(c);
}
END_TEST


START_TEST(test_put_again_updates)
{
    ug_jwt_cache_t   *c;
    ug_jwt_claims_t   out;

    c = ug_jwt_cache_new(2);

    put(c, "T", NOW, "first", NOW + 10);
    put(c, "T", NOW, "second", NOW + 50);

    ck_assert_uint_eq(ug_jwt_cache_count(c), 1);
    ck_assert_int_eq(get(c, "T", NOW + 20, &out), 1);
    ck_assert_str_eq(out.sub, "second");

    ug_jwt_cache_free(c);
}
END_TEST


START_TEST(test_scope_separates)
{
    ug_jwt_cache_t   *c;
    ug_jwt_claims_t   out, cl;

    c = ug_jwt_cache_new(8);
    cl = claims_for("u", NOW + 100);

    ug_jwt_cache_put(c, 111, "same", 4, NOW, &cl);

    ck_assert_int_eq(ug_jwt_cache_get(c, 111, "same", 4, NOW, &out), 1);
    ck_assert_int_eq(ug_jwt_cache_get(c, 222, "same", 4, NOW, &out), 0);

    ug_jwt_cache_free(c);
}
END_TEST


START_TEST(test_oversized_not_kept)
{
    char             *big;
    ug_jwt_cache_t   *c;
    ug_jwt_claims_t   out, cl;

    big = malloc(UG_JWT_MAX_TOKEN + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'a', UG_JWT_MAX_TOKEN + 1);

    c = ug_jwt_cache_new(8);
    cl = claims_for("u", NOW + 100);

    ug_jwt_cache_put(c, 1, big, UG_JWT_MAX_TOKEN + 1, NOW, &cl);
    ck_assert_uint_eq(ug_jwt_cache_count(c), 0);
    ck_assert_int_eq(ug_jwt_cache_get(c, 1, big, UG_JWT_MAX_TOKEN + 1, NOW,
                                      &out), 0);

    ug_jwt_cache_put(c, 1, big, UG_JWT_MAX_TOKEN, NOW, &cl);
    ck_assert_int_eq(ug_jwt_cache_get(c, 1, big, UG_JWT_MAX_TOKEN, NOW,
                                      &out), 1);

    ug_jwt_cache_free(c);
    free(big);
}
END_TEST


START_TEST(test_bad_sizes)
{
    ck_assert_ptr_null(ug_jwt_cache_new(0));
    ck_assert_ptr_null(ug_jwt_cache_new(UG_JWT_CACHE_MAX_SLOTS + 1));
}
END_TEST


START_TEST(test_churn_stays_consistent)
{
    int               i, j, hits;
    char              tok[32], sub[32];
    uint64_t          x;
    ug_jwt_cache_t   *c;
    ug_jwt_claims_t   out;

    c = ug_jwt_cache_new(64);
    x = 88172645463325252ULL;
    hits = 0;

    for (i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;

        j = (int) (x % 200);
        snprintf(tok, sizeof(tok), "tok%d", j);
        snprintf(sub, sizeof(sub), "user%d", j);

        if (get(c, tok, NOW + i / 100, &out)) {
            /* a hit is always the claims of that very token */
            ck_assert_str_eq(out.sub, sub);
            hits++;

        } else {
            put(c, tok, NOW + i / 100, sub, NOW + i / 100 + (int) (x % 50));
        }

        ck_assert_uint_le(ug_jwt_cache_count(c), 64);
    }

    /* the most recent put is always there */
    put(c, "last", NOW + 200, "last", NOW + 300);
    ck_assert_int_eq(get(c, "last", NOW + 200, &out), 1);

    ck_assert_int_gt(hits, 0);

    ug_jwt_cache_free(c);
}
END_TEST


static Suite *
cache_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("jwt_cache");
    tc = tcase_create("core");

    tcase_add_test(tc, test_hit_returns_claims);
    tcase_add_test(tc, test_miss_at_and_after_exp);
    tcase_add_test(tc, test_no_exp_capped);
    tcase_add_test(tc, test_expired_not_kept);
    tcase_add_test(tc, test_lru_eviction);
    tcase_add_test(tc, test_put_again_updates);
    tcase_add_test(tc, test_scope_separates);
    tcase_add_test(tc, test_oversized_not_kept);
    tcase_add_test(tc, test_bad_sizes);
    tcase_add_test(tc, test_churn_stays_consistent);
    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    return ug_check_run(cache_suite());
}
