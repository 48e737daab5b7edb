/*
 * Threshold notifications: the threshold list, which thresholds a
 * decision crossed, once per cycle, the JSON body (read back with
 * jansson) and the Stripe-style signature (against Python's hmac).
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ug_check.h"
#include "ug_cycle.h"
#include "ug_notify.h"


#define S(s)  (s), (sizeof(s) - 1)


static int
parse(const char *s, ug_thresholds_t *th)
{
    memset(th, 0x5a, sizeof(*th));

    return ug_thresholds_parse(s, strlen(s), th);
}


START_TEST(test_parse_good)
{
    ug_thresholds_t  th;
    char             buf[128];
    unsigned         i;

    ck_assert_int_eq(parse("80,100", &th), UG_NOTIFY_OK);
    ck_assert_uint_eq(th.n, 2);
    ck_assert_uint_eq(th.pct[0], 80);
    ck_assert_uint_eq(th.pct[1], 100);

    ck_assert_int_eq(parse("100,50,80,80,50,100", &th), UG_NOTIFY_OK);
    ck_assert_uint_eq(th.n, 3);
    ck_assert_uint_eq(th.pct[0], 50);
    ck_assert_uint_eq(th.pct[1], 80);
    ck_assert_uint_eq(th.pct[2], 100);

    ck_assert_int_eq(parse("1", &th), UG_NOTIFY_OK);
    ck_assert_uint_eq(th.n, 1);
    ck_assert_uint_eq(th.pct[0], 1);

    ck_assert_int_eq(parse("1000,0150,0001", &th), UG_NOTIFY_OK);
    ck_assert_uint_eq(th.n, 3);
    ck_assert_uint_eq(th.pct[0], 1);
    ck_assert_uint_eq(th.pct[1], 150);
    ck_assert_uint_eq(th.pct[2], 1000);

    /* 16 different ones, descending and repeated: sorted, once each */
    buf[0] = '\0';
    for (i = 16; i >= 1; i--) {
        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%u,%u%s",
                 i * 10, i * 10, i > 1 ? "," : "");
    }

    ck_assert_int_eq(parse(buf, &th), UG_NOTIFY_OK);
    ck_assert_uint_eq(th.n, 16);
    for (i = 0; i < 16; i++) {
        ck_assert_uint_eq(th.pct[i], (i + 1) * 10);
    }
}
END_TEST


START_TEST(test_parse_bad)
{
    static const struct {
        const char  *text;
        int          rc;
    } cases[] = {
        { "",            UG_NOTIFY_SYNTAX },
        { ",",           UG_NOTIFY_SYNTAX },
        { "80,",         UG_NOTIFY_SYNTAX },
        { ",80",         UG_NOTIFY_SYNTAX },
        { "80,,100",     UG_NOTIFY_SYNTAX },
        { " 80",         UG_NOTIFY_SYNTAX },
        { "80 ,100",     UG_NOTIFY_SYNTAX },
        { "80%",         UG_NOTIFY_SYNTAX },
        { "80;100",      UG_NOTIFY_SYNTAX },
        { "-80",         UG_NOTIFY_SYNTAX },
        { "+80",         UG_NOTIFY_SYNTAX },
        { "0",           UG_NOTIFY_RANGE },
        { "80,0",        UG_NOTIFY_RANGE },
        { "1001",        UG_NOTIFY_RANGE },
        { "00000",       UG_NOTIFY_RANGE },
        { "99999999999999999999999999", UG_NOTIFY_RANGE },
        { "18446744073709551696", UG_NOTIFY_RANGE },
        { "4294967376",  UG_NOTIFY_RANGE },
    };

    ug_thresholds_t  th, before;
    char             buf[UG_NOTIFY_LIST_MAX + 8];
    size_t           i, k;
    int              rc;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rc = parse(cases[i].text, &th);
        ck_assert_msg(rc == cases[i].rc, "\"%s\": %d, want %d",
                      cases[i].text, rc, cases[i].rc);
        memset(&before, 0x5a, sizeof(before));
        ck_assert(memcmp(&th, &before, sizeof(th)) == 0);
        ck_assert_str_ne(ug_thresholds_strerror(rc), "ok");
    }

    /* 17 different ones */
    ck_assert_int_eq(parse("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", &th),
                     UG_NOTIFY_TOO_MANY);
    ck_assert_ptr_nonnull(strstr(ug_thresholds_strerror(UG_NOTIFY_TOO_MANY),
                                 "16"));

    /* "1,1,1,...": repeats do not count, but the length is bounded */
    for (k = 0; k < sizeof(buf); k++) {
        buf[k] = k % 2 ? ',' : '1';
    }
    ck_assert_int_eq(ug_thresholds_parse(buf, UG_NOTIFY_LIST_MAX - 1, &th),
                     UG_NOTIFY_OK);
    ck_assert_uint_eq(th.n, 1);
    ck_assert_int_eq(ug_thresholds_parse(buf, UG_NOTIFY_LIST_MAX + 1, &th),
                     UG_NOTIFY_TOO_LONG);

    /* a NUL is a byte like any other */
    ck_assert_int_eq(ug_thresholds_parse("80\0" "100", 6, &th),
                     UG_NOTIFY_SYNTAX);
}
END_TEST


START_TEST(test_crossed_known)
{
    ug_thresholds_t  th;

    ck_assert_int_eq(parse("50,100", &th), UG_NOTIFY_OK);

    ck_assert_uint_eq(ug_thresholds_crossed(&th, 4, 5, 10), 1);
    ck_assert_uint_eq(ug_thresholds_crossed(&th, 5, 6, 10), 0);
    ck_assert_uint_eq(ug_thresholds_crossed(&th, 9, 10, 10), 2);
    ck_assert_uint_eq(ug_thresholds_crossed(&th, 10, 11, 10), 0);
    ck_assert_uint_eq(ug_thresholds_crossed(&th, 4, 10, 10), 3);
    ck_assert_uint_eq(ug_thresholds_crossed(&th, 0, 1000, 10), 3);
    ck_assert_uint_eq(ug_thresholds_crossed(&th, 4, 4, 10), 0);

    /* 50 % of 3 is 1.5: crossed on the 2nd unit, not the 1st */
    ck_assert_uint_eq(ug_thresholds_crossed(&th, 0, 1, 3), 0);
    ck_assert_uint_eq(ug_thresholds_crossed(&th, 1, 2, 3), 1);

    /* no monthly quota: nothing to be a percentage of */
    ck_assert_uint_eq(ug_thresholds_crossed(&th, 0, 100, 0), 0);
    ck_assert_uint_eq(ug_thresholds_crossed(&th, 0, 100, -1), 0);

    /* 150 %: into an overage band */
    ck_assert_int_eq(parse("150", &th), UG_NOTIFY_OK);
    ck_assert_uint_eq(ug_thresholds_crossed(&th, 14999, 15000, 10000), 1);
    ck_assert_uint_eq(ug_thresholds_crossed(&th, 14998, 14999, 10000), 0);

    /* the largest limit and percentage do not overflow: 1000 % of
     * INT64_MAX is beyond any counter, 100 % is reached exactly */
    ck_assert_int_eq(parse("100,1000", &th), UG_NOTIFY_OK);
    ck_assert_uint_eq(ug_thresholds_crossed(&th, 0, UINT64_MAX, INT64_MAX),
                      1);
    ck_assert_uint_eq(ug_thresholds_crossed(&th, 0, INT64_MAX - 1,
                                            INT64_MAX), 0);
    ck_assert_uint_eq(ug_thresholds_crossed(&th, INT64_MAX - 1, INT64_MAX,
                                            INT64_MAX), 1);
}
END_TEST


/* Against a reference: some unit in (before, after] reaches pct %. */
START_TEST(test_crossed_exhaustive)
{
    ug_thresholds_t  th;
    uint64_t         before, after, x;
    uint32_t         got, want;
    int64_t          limit;
    unsigned         i;

    ck_assert_int_eq(parse("1,33,50,80,99,100,101,150,1000", &th),
                     UG_NOTIFY_OK);

    for (limit = 1; limit <= 40; limit++) {
        for (before = 0; before <= (uint64_t) limit * 11; before++) {
            for (after = before; after <= before + 5; after++) {
                want = 0;

                for (i = 0; i < th.n; i++) {
                    for (x = before + 1; x <= after; x++) {
                        if (x * 100 >= (uint64_t) limit * th.pct[i]
                            && (x - 1) * 100 < (uint64_t) limit * th.pct[i])
                        {
                            want |= (uint32_t) 1 << i;
                        }
                    }
                }

                got = ug_thresholds_crossed(&th, before, after,
                                            limit);
                ug_expect(got == want, "limit %lld %llu -> %llu: %x, want %x",
                          (long long) limit, (unsigned long long) before,
                          (unsigned long long) after, got, want);
            }
        }
    }
}
END_TEST


START_TEST(test_claim)
{
    ug_notify_mark_t  m;

    memset(&m, 0, sizeof(m));

    ck_assert_uint_eq(ug_notify_claim(&m, 100, 0x1), 0x1);
    ck_assert_uint_eq(ug_notify_claim(&m, 100, 0x1), 0);
    ck_assert_uint_eq(ug_notify_claim(&m, 100, 0x3), 0x2);
    ck_assert_uint_eq(ug_notify_claim(&m, 100, 0x3), 0);
    ck_assert_uint_eq(m.sent, 0x3);

    /* a new cycle: everything may be sent once more */
    ck_assert_uint_eq(ug_notify_claim(&m, 101, 0x2), 0x2);
    ck_assert_uint_eq(m.sent, 0x2);
    ck_assert_int_eq(m.cycle, 101);
    ck_assert_uint_eq(ug_notify_claim(&m, 101, 0), 0);

    ck_assert_int_eq(ug_notify_test_and_set(&m, 101, 0), 1);
    ck_assert_int_eq(ug_notify_test_and_set(&m, 101, 0), 0);
    ck_assert_int_eq(ug_notify_test_and_set(&m, 101, 1), 0);
    ck_assert_int_eq(ug_notify_test_and_set(&m, 101, 15), 1);
    ck_assert_int_eq(ug_notify_test_and_set(&m, 101, 16), 0);
    ck_assert_int_eq(ug_notify_test_and_set(&m, 101, 4000000000u), 0);
    ck_assert_uint_eq(m.sent, 0x8003);
    ck_assert_int_eq(ug_notify_test_and_set(&m, 102, 1), 1);
    ck_assert_uint_eq(m.sent, 0x2);
}
END_TEST


static ug_notify_event_t
event(const char *owner, size_t owner_len, const ug_cycle_t *cy)
{
    ug_notify_event_t  ev;

    ev.owner = owner;
    ev.owner_len = owner_len;
    ev.plan = "pro";
    ev.plan_len = 3;
    ev.cycle = cy;
    ev.used = 8000;
    ev.limit = 10000;
    ev.threshold = 80;
    ev.at = 1738320645;             /* 2025-01-31T10:50:45Z */

    return ev;
}


START_TEST(test_body)
{
    ug_notify_event_t   ev;
    ug_cycle_t          cy;
    json_t             *j;
    json_error_t        err;
    char               *buf;
    size_t              size, n;

    ug_cycle_at(31, 1738320645, &cy);
    ev = event(S("user_42"), &cy);

    size = ug_notify_body_size(&ev);
    buf = ug_canary_buf(size);

    n = ug_notify_body(buf, size, &ev);
    ck_assert_uint_gt(n, 0);
    ck_assert(ug_canary_ok(buf, size));

    ck_assert_int_eq(n, strlen("{\"owner\":\"user_42\",\"plan\":\"pro\","
                               "\"cycle\":\"2025-01\",\"used\":8000,"
                               "\"limit\":10000,\"threshold\":80,"
                               "\"at\":\"2025-01-31T10:50:45Z\"}"));
    ck_assert(memcmp(buf, "{\"owner\":\"user_42\",\"plan\":\"pro\","
                          "\"cycle\":\"2025-01\",\"used\":8000,"
                          "\"limit\":10000,\"threshold\":80,"
                          "\"at\":\"2025-01-31T10:50:45Z\"}", n) == 0);

    j = json_loadb(buf, n, 0, &err);
    ck_assert_msg(j != NULL, "%s", err.text);
    ck_assert_str_eq(json_string_value(json_object_get(j, "owner")),
                     "user_42");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "used")), 8000);
    json_decref(j);

    /* too small by one: refused, nothing written past the end */
    ck_assert_uint_eq(ug_notify_body(buf, size - 1, &ev), 0);
    ck_assert(ug_canary_ok(buf, size - 1));

    ug_canary_free(buf);
}
END_TEST


/* A hostile owner still makes valid JSON, whatever its bytes. */
START_TEST(test_body_hostile)
{
    static const char  owner[] = "a\"b\\c\n\x01\x7f\xff\xc3\xa9</script>\0z";

    ug_notify_event_t   ev;
    ug_cycle_t          cy;
    json_t             *j;
    json_error_t        err;
    const char         *got;
    char               *buf, big[4096];
    size_t              size, n, i;

    ug_cycle_at(0, 0, &cy);
    ev = event(owner, sizeof(owner) - 1, &cy);
    ev.at = 0;
    ev.used = INT64_MAX;
    ev.limit = INT64_MAX;
    ev.threshold = 1000;

    size = ug_notify_body_size(&ev);
    buf = ug_canary_buf(size);
    n = ug_notify_body(buf, size, &ev);
    ck_assert_uint_gt(n, 0);
    ck_assert(ug_canary_ok(buf, size));

    j = json_loadb(buf, n, JSON_ALLOW_NUL, &err);
    ck_assert_msg(j != NULL, "%s: %.*s", err.text, (int) n, buf);
    got = json_string_value(json_object_get(j, "owner"));
    ck_assert_ptr_nonnull(got);
    /* escapes come back as the bytes; the bad byte as U+FFFD */
    ck_assert(memcmp(got, "a\"b\\c\n\x01\x7f\xef\xbf\xbd\xc3\xa9</script>",
                     23) == 0);
    ck_assert_str_eq(json_string_value(json_object_get(j, "cycle")),
                     "1970-01");
    ck_assert_str_eq(json_string_value(json_object_get(j, "at")),
                     "1970-01-01T00:00:00Z");
    json_decref(j);
    ug_canary_free(buf);

    /* every single byte as an owner */
    for (i = 0; i < 256; i++) {
        big[0] = (char) i;
        ev = event(big, 1, &cy);
        n = ug_notify_body(big + 8, sizeof(big) - 8, &ev);
        ck_assert_uint_gt(n, 0);
        j = json_loadb(big + 8, n, JSON_ALLOW_NUL, &err);
        ck_assert_msg(j != NULL, "byte %zu: %s", i, err.text);
        json_decref(j);
    }
}
END_TEST


START_TEST(test_sign)
{
    char    out[UG_NOTIFY_SIG_MAX + 1 + 16];
    size_t  n;

    /* python3: hmac.new(key, b"<t>.<body>", hashlib.sha256).hexdigest() */
    n = ug_notify_sign((const unsigned char *) "whsec_test", 10, 1700000000,
                       S("{\"a\":1}"), out);
    ck_assert_str_eq(out, "t=1700000000,v1=38877139021993b830af32feea6e18a8"
                          "da83eb2f6e49ee50bd9e4cf4ca4d3789");
    ck_assert_uint_eq(n, strlen(out));

    n = ug_notify_sign((const unsigned char *) "", 0, 0, "", 0, out);
    ck_assert_str_eq(out, "t=0,v1=b849d5a581847b281957065739df36df"
                          "2463d1977ea8d6e1e4e6cf33fadc68c3");
    ck_assert_uint_eq(n, strlen(out));

    /* a key longer than the block; the largest header fits */
    memset(out, 'k', 100);
    n = ug_notify_sign((const unsigned char *) out, 100, -5, "x", 1, out);
    ck_assert_str_eq(out, "t=-5,v1=81d640e96e8b7b8bcd47355146bbba6a"
                          "c13d17bbe33d6cbab30df075080b62f1");

    memset(out, 0x5a, sizeof(out));
    n = ug_notify_sign((const unsigned char *) "k", 1, INT64_MIN, "x", 1,
                       out);
    ck_assert_uint_eq(n, UG_NOTIFY_SIG_MAX);
    ck_assert_int_eq(out[UG_NOTIFY_SIG_MAX], '\0');
    ck_assert_int_eq((unsigned char) out[UG_NOTIFY_SIG_MAX + 1], 0x5a);
}
END_TEST


static Suite *
notify_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("ug_notify");
    tc = tcase_create("core");
    tcase_set_timeout(tc, 60);

    tcase_add_test(tc, test_parse_good);
    tcase_add_test(tc, test_parse_bad);
    tcase_add_test(tc, test_crossed_known);
    tcase_add_test(tc, test_crossed_exhaustive);
    tcase_add_test(tc, test_claim);
    tcase_add_test(tc, test_body);
    tcase_add_test(tc, test_body_hostile);
    tcase_add_test(tc, test_sign);

    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    return ug_check_run(notify_suite());
}
