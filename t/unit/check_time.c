/*
 * The monthly window: calendar months in UTC, their starts and resets,
 * leap years, and agreement with libc's timegm() and gmtime_r().
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ug_check.h"
#include "ug_time.h"


#define MI(y, m)  ((int32_t) ((y) * 12 + ((m) - 1)))


/* libc's answer, as an independent reference. */
static int64_t
utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm  tm;

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;

    return (int64_t) timegm(&tm);
}


/* A fixed-seed xorshift64, so that a failure is reproducible. */
static uint64_t
rnd(uint64_t *state)
{
    uint64_t  x;

    x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;

    return x;
}


START_TEST(test_month_start_known)
{
    /* hard-coded, computed with Python's calendar.timegm */
    ck_assert_int_eq(ug_month_start(MI(1970, 1)), 0);
    ck_assert_int_eq(ug_month_start(MI(2024, 2)), 1706745600);
    ck_assert_int_eq(ug_month_start(MI(2024, 3)), 1709251200);
    ck_assert_int_eq(ug_month_start(MI(2000, 3)), 951868800);
    ck_assert_int_eq(ug_month_start(MI(2100, 3)), 4107542400LL);
    ck_assert_int_eq(ug_month_start(MI(2026, 1)), 1767225600);
    ck_assert_int_eq(ug_month_start(MI(2025, 10)), 1759276800);
    ck_assert_int_eq(ug_month_start(MI(2200, 1)), 7258118400LL);
    ck_assert_int_eq(ug_month_start(MI(1900, 1)), -2208988800LL);
}
END_TEST


START_TEST(test_month_index_known)
{
    ck_assert_int_eq(ug_month_index(0), MI(1970, 1));
    ck_assert_int_eq(ug_month_index(-1), MI(1969, 12));
    ck_assert_int_eq(ug_month_index(-86400 * 31), MI(1969, 12));
    ck_assert_int_eq(ug_month_index(-86400 * 31 - 1), MI(1969, 11));

    /* leap day 2024 and the instants around it */
    ck_assert_int_eq(ug_month_index(utc(2024, 2, 28, 23, 59, 59)),
                     MI(2024, 2));
    ck_assert_int_eq(ug_month_index(utc(2024, 2, 29, 0, 0, 0)),
                     MI(2024, 2));
    ck_assert_int_eq(ug_month_index(utc(2024, 2, 29, 23, 59, 59)),
                     MI(2024, 2));
    ck_assert_int_eq(ug_month_index(utc(2024, 3, 1, 0, 0, 0)),
                     MI(2024, 3));

    /* 2100 is not a leap year: 28 February is its last day */
    ck_assert_int_eq(ug_month_index(utc(2100, 2, 28, 23, 59, 59)),
                     MI(2100, 2));
    ck_assert_int_eq(ug_month_index(utc(2100, 2, 28, 23, 59, 59) + 1),
                     MI(2100, 3));

    /* 2000 is: the day after 28 February is still February */
    ck_assert_int_eq(ug_month_index(utc(2000, 2, 28, 23, 59, 59) + 1),
                     MI(2000, 2));
    ck_assert_int_eq(ug_month_index(utc(2000, 2, 28, 23, 59, 59)
                                    + 86400 + 1),
                     MI(2000, 3));

    /* year end */
    ck_assert_int_eq(ug_month_index(utc(2025, 12, 31, 23, 59, 59)),
                     MI(2025, 12));
    ck_assert_int_eq(ug_month_index(utc(2026, 1, 1, 0, 0, 0)),
                     MI(2026, 1));
}
END_TEST


START_TEST(test_reset_seconds_known)
{
    /* one second before the 1st, 00:00:00 UTC: one second to go */
    ck_assert_int_eq(ug_month_reset_seconds(utc(2024, 2, 29, 23, 59, 59)),
                     1);
    ck_assert_int_eq(ug_month_reset_seconds(utc(2023, 2, 28, 23, 59, 59)),
                     1);
    ck_assert_int_eq(ug_month_reset_seconds(utc(2100, 2, 28, 23, 59, 59)),
                     1);
    ck_assert_int_eq(ug_month_reset_seconds(utc(2025, 12, 31, 23, 59, 59)),
                     1);
    ck_assert_int_eq(ug_month_reset_seconds(utc(2025, 4, 30, 23, 59, 59)),
                     1);
    ck_assert_int_eq(ug_month_reset_seconds(-1), 1);

    /* at the reset itself: the whole new month */
    ck_assert_int_eq(ug_month_reset_seconds(utc(2024, 3, 1, 0, 0, 0)),
                     31 * 86400);
    ck_assert_int_eq(ug_month_reset_seconds(utc(2024, 2, 1, 0, 0, 0)),
                     29 * 86400);
    ck_assert_int_eq(ug_month_reset_seconds(utc(2023, 2, 1, 0, 0, 0)),
                     28 * 86400);
    ck_assert_int_eq(ug_month_reset_seconds(utc(2100, 2, 1, 0, 0, 0)),
                     28 * 86400);
    ck_assert_int_eq(ug_month_reset_seconds(utc(2000, 2, 1, 0, 0, 0)),
                     29 * 86400);
    ck_assert_int_eq(ug_month_reset_seconds(utc(2025, 4, 1, 0, 0, 0)),
                     30 * 86400);
    ck_assert_int_eq(ug_month_reset_seconds(utc(2026, 1, 1, 0, 0, 0)),
                     31 * 86400);
    ck_assert_int_eq(ug_month_reset_seconds(0), 31 * 86400);

    /* 2000: 28 February 23:59:59 still has the 29th ahead */
    ck_assert_int_eq(ug_month_reset_seconds(utc(2000, 2, 28, 23, 59, 59)),
                     86400 + 1);

    /* the example: 183022 s before 1 October 2025 */
    ck_assert_int_eq(ug_month_reset_seconds(1759276800 - 183022), 183022);
}
END_TEST


START_TEST(test_days_in_month)
{
    static const int  y2023[12] = { 31, 28, 31, 30, 31, 30,
                                    31, 31, 30, 31, 30, 31 };
    int               m;

    for (m = 1; m <= 12; m++) {
        ck_assert_int_eq(ug_days_in_month(2023, m), y2023[m - 1]);
        ck_assert_int_eq(ug_days_in_month(2024, m),
                         m == 2 ? 29 : y2023[m - 1]);
    }

    ck_assert_int_eq(ug_days_in_month(2000, 2), 29);
    ck_assert_int_eq(ug_days_in_month(2400, 2), 29);
    ck_assert_int_eq(ug_days_in_month(2100, 2), 28);
    ck_assert_int_eq(ug_days_in_month(1900, 2), 28);
    ck_assert_int_eq(ug_days_in_month(2200, 2), 28);
    ck_assert_int_eq(ug_days_in_month(2028, 2), 29);

    ck_assert_int_eq(ug_days_in_month(2024, 0), 0);
    ck_assert_int_eq(ug_days_in_month(2024, 13), 0);
    ck_assert_int_eq(ug_days_in_month(2024, -1), 0);
}
END_TEST


/*
 * Every month from 1900 to 2200: its start agrees with timegm(), its
 * length with ug_days_in_month(), and the reset falls exactly on
 * 00:00:00 UTC on the 1st: one second before it, 1 s to go and still the
 * old month; at it, the whole new month.
 */
START_TEST(test_every_month_boundary)
{
    int      y, m, days;
    int32_t  i;
    int64_t  s, next;

    for (y = 1900; y < 2200; y++) {
        for (m = 1; m <= 12; m++) {
            i = MI(y, m);
            s = ug_month_start(i);
            next = ug_month_start(i + 1);
            days = ug_days_in_month(y, m);

            ug_expect(s == utc(y, m, 1, 0, 0, 0),
                      "%04d-%02d: start %lld", y, m, (long long) s);
            ug_expect(next - s == (int64_t) days * 86400,
                      "%04d-%02d: %lld s long, %d days", y, m,
                      (long long) (next - s), days);

            ug_expect(ug_month_index(s) == i
                      && ug_month_index(s - 1) == i - 1
                      && ug_month_index(next - 1) == i,
                      "%04d-%02d: index at the edges", y, m);

            ug_expect(ug_month_reset_seconds(s - 1) == 1
                      && ug_month_reset_seconds(next - 1) == 1,
                      "%04d-%02d: not 1 s to go 1 s before a reset", y, m);
            ug_expect(ug_month_reset_seconds(s) == (int64_t) days * 86400,
                      "%04d-%02d: at the reset %lld s to go", y, m,
                      (long long) ug_month_reset_seconds(s));
        }
    }
}
END_TEST


/* Random instants 1900..2200 against gmtime_r() and timegm(). */
START_TEST(test_random_vs_libc)
{
    uint64_t    state;
    int64_t     lo, hi, t, start, next, reset;
    int32_t     idx;
    int         i, y, m, ny, nm;
    time_t      tt;
    struct tm   tm;
    char        key[UG_MONTH_KEY_LEN + 1], want[32];

    state = 0x9e3779b97f4a7c15ULL;
    lo = utc(1900, 1, 1, 0, 0, 0);
    hi = utc(2200, 1, 1, 0, 0, 0);

    for (i = 0; i < 200000; i++) {
        t = lo + (int64_t) (rnd(&state) % (uint64_t) (hi - lo));

        /* a fifth of them from 1970 on only, the range that matters */
        if (i % 5 == 0 && t < 0) {
            t = -t;
        }

        tt = (time_t) t;
        ug_expect(gmtime_r(&tt, &tm) != NULL, "gmtime_r(%lld)",
                  (long long) t);

        y = tm.tm_year + 1900;
        m = tm.tm_mon + 1;

        idx = ug_month_index(t);
        ug_expect(idx == MI(y, m), "t=%lld: index %d, want %04d-%02d",
                  (long long) t, (int) idx, y, m);

        start = ug_month_start(idx);
        ug_expect(start == utc(y, m, 1, 0, 0, 0) && start <= t,
                  "t=%lld: month start %lld", (long long) t,
                  (long long) start);

        ny = y + (m == 12);
        nm = m == 12 ? 1 : m + 1;
        next = utc(ny, nm, 1, 0, 0, 0);
        reset = ug_month_reset_seconds(t);

        ug_expect(reset == next - t && reset >= 1 && reset <= 31 * 86400,
                  "t=%lld: reset in %lld s, want %lld", (long long) t,
                  (long long) reset, (long long) (next - t));

        ug_expect(ug_days_in_month(y, m) == (next - start) / 86400,
                  "%04d-%02d: days", y, m);

        ug_expect(ug_month_key(idx, key) == UG_MONTH_KEY_LEN,
                  "month key length");
        snprintf(want, sizeof(want), "%04d-%02d", y, m);
        ug_expect(strcmp(key, want) == 0, "month key %s, want %s", key,
                  want);
    }
}
END_TEST


START_TEST(test_month_key)
{
    static const struct {
        int32_t      index;
        const char  *key;
    } cases[] = {
        { MI(2025, 9),  "2025-09" },
        { MI(2024, 2),  "2024-02" },
        { MI(2024, 12), "2024-12" },
        { MI(2025, 1),  "2025-01" },
        { MI(1970, 1),  "1970-01" },
        { MI(2100, 10), "2100-10" },
        { MI(2200, 11), "2200-11" },
        { MI(0, 1),     "0000-01" },
        { MI(9999, 12), "9999-12" },
    };

    char    *buf;
    size_t   i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* exactly UG_MONTH_KEY_LEN + 1 bytes, canaries around them */
        buf = ug_canary_buf(UG_MONTH_KEY_LEN + 1);

        ck_assert_uint_eq(ug_month_key(cases[i].index, buf),
                          UG_MONTH_KEY_LEN);
        ck_assert_str_eq(buf, cases[i].key);
        ck_assert_int_eq(buf[UG_MONTH_KEY_LEN], '\0');
        ck_assert(ug_canary_ok(buf, UG_MONTH_KEY_LEN + 1));

        ug_canary_free(buf);
    }

    /* out of range years still give seven bytes and stay in bounds */
    buf = ug_canary_buf(UG_MONTH_KEY_LEN + 1);
    ck_assert_uint_eq(ug_month_key(MI(10000, 1), buf), UG_MONTH_KEY_LEN);
    ck_assert_uint_eq(strlen(buf), UG_MONTH_KEY_LEN);
    ck_assert(ug_canary_ok(buf, UG_MONTH_KEY_LEN + 1));
    ck_assert_uint_eq(ug_month_key(MI(-1, 12), buf), UG_MONTH_KEY_LEN);
    ck_assert_uint_eq(strlen(buf), UG_MONTH_KEY_LEN);
    ck_assert(ug_canary_ok(buf, UG_MONTH_KEY_LEN + 1));
    ug_canary_free(buf);
}
END_TEST


/* Every day 1900..2200: the date back from its day number, as libc. */
START_TEST(test_civil_days)
{
    int64_t    day, year, lo, hi;
    int        month, mday;
    time_t     tt;
    struct tm  tm;

    lo = utc(1900, 1, 1, 0, 0, 0) / 86400;
    hi = utc(2200, 1, 1, 0, 0, 0) / 86400;

    for (day = lo; day < hi; day++) {
        tt = (time_t) (day * 86400);
        ug_expect(gmtime_r(&tt, &tm) != NULL, "gmtime_r");

        ug_civil_from_days(day, &year, &month, &mday);
        ug_expect(year == tm.tm_year + 1900 && month == tm.tm_mon + 1
                  && mday == tm.tm_mday, "day %lld: %lld-%d-%d",
                  (long long) day, (long long) year, month, mday);
        ug_expect(ug_days_from_civil(year, month, mday) == day,
                  "day %lld: no round trip", (long long) day);
    }

    ck_assert_int_eq(ug_floor_div(-1, 86400), -1);
    ck_assert_int_eq(ug_floor_div(-86400, 86400), -1);
    ck_assert_int_eq(ug_floor_div(-86401, 86400), -2);
    ck_assert_int_eq(ug_floor_div(86399, 86400), 0);
}
END_TEST


START_TEST(test_window_constant)
{
    /* "month";w=2592000: 30 days, as in the RateLimit-Policy */
    ck_assert_int_eq(UG_MONTH_WINDOW_SEC, 30 * 86400);
}
END_TEST


static Suite *
time_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("ug_time");
    tc = tcase_create("core");
    tcase_set_timeout(tc, 60);

    tcase_add_test(tc, test_month_start_known);
    tcase_add_test(tc, test_month_index_known);
    tcase_add_test(tc, test_reset_seconds_known);
    tcase_add_test(tc, test_days_in_month);
    tcase_add_test(tc, test_every_month_boundary);
    tcase_add_test(tc, test_random_vs_libc);
    tcase_add_test(tc, test_month_key);
    tcase_add_test(tc, test_civil_days);
    tcase_add_test(tc, test_window_constant);

    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    return ug_check_run(time_suite());
}
