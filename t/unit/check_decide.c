/*
 * The decision: the GCRA per-minute cap (burst, refill, Retry-After, no
 * double burst across a calendar minute, the bucket's fill), the
 * calendar-month and anchored-cycle quota, the overage band, and what a
 * denial leaves alone.
 */

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "ug_check.h"
#include "ug_decide.h"
#include "ug_time.h"


#define SEC  1000000ULL


static uint64_t
at(int y, int mo, int d, int h, int mi, int s)
{
    struct tm  tm;

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;

    return (uint64_t) timegm(&tm) * SEC;
}


static ug_limits_t
lim(int64_t month, int64_t minute)
{
    ug_limits_t  l;

    l.month = month;
    l.minute = minute;

    return l;
}


static ug_verdict_t
go(ug_counter_t *c, const ug_limits_t *l, uint64_t cost, uint64_t now,
    ug_decision_t *d)
{
    memset(d, 0x5a, sizeof(*d));     /* every field must be written */
    ug_decide(c, l, cost, now, d);

    return d->verdict;
}


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


/* A whole-minute instant well inside a month: 2025-09-28 01:09:00 UTC. */
#define T0  at(2025, 9, 28, 1, 9, 0)


START_TEST(test_first_request_free)
{
    ug_counter_t   c;
    ug_decision_t  d;
    ug_limits_t    l;
    uint64_t       now;

    memset(&c, 0, sizeof(c));
    l = lim(20, 30);
    now = at(2025, 10, 1, 0, 0, 0) - 183022 * SEC;

    ck_assert_int_eq(go(&c, &l, 1, now, &d), UG_ALLOWED);
    ck_assert_uint_eq(d.month_used, 1);
    ck_assert_uint_eq(d.month_remaining, 19);
    ck_assert_uint_eq(d.month_reset, 183022);
    ck_assert_uint_eq(d.minute_used, 1);
    ck_assert_uint_eq(d.minute_remaining, 29);
    ck_assert_uint_eq(d.minute_reset, 2);
    ck_assert_uint_eq(d.retry_after, 0);

    ck_assert_uint_eq(c.month_used, 1);
    ck_assert_int_eq(c.month, ug_month_index((int64_t) (now / SEC)));
    ck_assert_uint_eq(c.minute_used, 1);

    /* a second one in the same instant: two units held, 4 s to refill */
    ck_assert_int_eq(go(&c, &l, 1, now, &d), UG_ALLOWED);
    ck_assert_uint_eq(d.month_used, 2);
    ck_assert_uint_eq(d.month_remaining, 18);
    ck_assert_uint_eq(d.minute_used, 2);
    ck_assert_uint_eq(d.minute_remaining, 28);
    ck_assert_uint_eq(d.minute_reset, 4);
}
END_TEST


/* Caps that divide 60 s evenly and caps that do not (7, 7000, 61). */
static const int64_t  caps[] = {
    1, 2, 3, 7, 29, 30, 59, 60, 61, 120, 300, 600, 7000, 60000, 1000000
};


START_TEST(test_burst_exact)
{
    ug_counter_t   c, saved;
    ug_decision_t  d;
    ug_limits_t    l;
    uint64_t       now;
    int64_t        cap, k;
    int            j;

    cap = caps[_i];
    l = lim(UG_OFF, cap);
    memset(&c, 0, sizeof(c));
    now = T0 + 123457;               /* not on a second boundary */

    for (k = 1; k <= cap; k++) {
        ug_expect(go(&c, &l, 1, now, &d) == UG_ALLOWED,
                  "cap %lld: request %lld denied", (long long) cap,
                  (long long) k);
        ug_expect(d.minute_remaining == (uint64_t) (cap - k)
                  && d.minute_used == (uint64_t) k,
                  "cap %lld: after %lld, %llu remaining, %llu used",
                  (long long) cap, (long long) k,
                  (unsigned long long) d.minute_remaining,
                  (unsigned long long) d.minute_used);
    }

    ck_assert_uint_eq(c.month_used, (uint64_t) cap);

    /* one over the cap: 429, and more of them change nothing */
    saved = c;

    for (j = 0; j < 5; j++) {
        ck_assert_msg(go(&c, &l, 1, now, &d) == UG_RATE,
                      "cap %lld: burst of %lld + 1 let through",
                      (long long) cap, (long long) cap);
        ck_assert_uint_ge(d.retry_after, 1);
        ck_assert_uint_eq(d.minute_remaining, 0);
        ck_assert_uint_eq(d.minute_used, (uint64_t) cap);
        ck_assert_uint_eq(d.month_used, (uint64_t) cap);
        ck_assert(memcmp(&c, &saved, sizeof(c)) == 0);
    }
}
END_TEST


/*
 * After a full burst, one unit comes back every 60/cap seconds: at
 * ceil(60/cap s) exactly one more passes, at 99% of it none does.
 */
START_TEST(test_refill_one)
{
    ug_counter_t   c, burst;
    ug_decision_t  d;
    ug_limits_t    l;
    uint64_t       now, step;
    int64_t        cap, k;

    cap = caps[_i];
    l = lim(UG_OFF, cap);
    memset(&c, 0, sizeof(c));
    now = T0 + 500000;

    for (k = 0; k < cap; k++) {
        ug_expect(go(&c, &l, 1, now, &d) == UG_ALLOWED, "burst %lld",
                  (long long) k);
    }

    burst = c;
    step = (60 * SEC + (uint64_t) cap - 1) / (uint64_t) cap;

    if (step >= 100) {
        ck_assert_int_eq(go(&c, &l, 1, now + step * 99 / 100, &d), UG_RATE);
    }

    c = burst;
    ck_assert_int_eq(go(&c, &l, 1, now + step, &d), UG_ALLOWED);
    ck_assert_int_eq(go(&c, &l, 1, now + step, &d), UG_RATE);

    /* a full minute later the whole burst is back, and no more */
    c = burst;
    for (k = 0; k < cap; k++) {
        ug_expect(go(&c, &l, 1, now + 60 * SEC, &d) == UG_ALLOWED,
                  "cap %lld: %lld of a refilled burst denied",
                  (long long) cap, (long long) k);
    }
    ck_assert_int_eq(go(&c, &l, 1, now + 60 * SEC, &d), UG_RATE);

    /* and a long wait does not bank more than one burst */
    c = burst;
    for (k = 0; k < cap; k++) {
        ug_expect(go(&c, &l, 1, now + 3600 * SEC, &d) == UG_ALLOWED,
                  "cap %lld: %lld after an hour denied", (long long) cap,
                  (long long) k);
    }
    ck_assert_int_eq(go(&c, &l, 1, now + 3600 * SEC, &d), UG_RATE);
}
END_TEST


START_TEST(test_refill_exact_30_and_7)
{
    ug_counter_t   c, burst;
    ug_decision_t  d;
    ug_limits_t    l;
    uint64_t       now;
    int            k;

    /* 30 a minute: one every 2 s */
    l = lim(UG_OFF, 30);
    memset(&c, 0, sizeof(c));
    now = T0;

    for (k = 0; k < 30; k++) {
        ck_assert_int_eq(go(&c, &l, 1, now, &d), UG_ALLOWED);
    }

    ck_assert_int_eq(go(&c, &l, 1, now, &d), UG_RATE);
    ck_assert_uint_eq(d.retry_after, 2);
    ck_assert_uint_eq(d.minute_reset, 60);

    burst = c;
    ck_assert_int_eq(go(&c, &l, 1, now + 1 * SEC, &d), UG_RATE);
    ck_assert_uint_eq(d.retry_after, 1);
    ck_assert_int_eq(go(&c, &l, 1, now + 2 * SEC - 1, &d), UG_RATE);
    ck_assert_int_eq(go(&c, &l, 1, now + 2 * SEC, &d), UG_ALLOWED);
    ck_assert_uint_eq(d.minute_remaining, 0);
    ck_assert_int_eq(go(&c, &l, 1, now + 2 * SEC, &d), UG_RATE);
    ck_assert_int_eq(go(&c, &l, 1, now + 4 * SEC, &d), UG_ALLOWED);

    /* ten seconds after the burst: five back */
    c = burst;
    for (k = 0; k < 5; k++) {
        ck_assert_int_eq(go(&c, &l, 1, now + 10 * SEC, &d), UG_ALLOWED);
    }
    ck_assert_int_eq(go(&c, &l, 1, now + 10 * SEC, &d), UG_RATE);

    /* 7 a minute: one every 8.571428... s */
    l = lim(UG_OFF, 7);
    memset(&c, 0, sizeof(c));

    for (k = 0; k < 7; k++) {
        ck_assert_int_eq(go(&c, &l, 1, now, &d), UG_ALLOWED);
    }

    ck_assert_int_eq(go(&c, &l, 1, now, &d), UG_RATE);
    ck_assert_uint_eq(d.retry_after, 9);

    burst = c;
    ck_assert_int_eq(go(&c, &l, 1, now + 8 * SEC, &d), UG_RATE);
    ck_assert_uint_eq(d.retry_after, 1);
    ck_assert_int_eq(go(&c, &l, 1, now + 8500000, &d), UG_RATE);
    ck_assert_int_eq(go(&c, &l, 1, now + 8571429, &d), UG_ALLOWED);
    ck_assert_int_eq(go(&c, &l, 1, now + 8571429, &d), UG_RATE);
}
END_TEST


/*
 * Hammering far faster than the cap for ten minutes lets through one
 * burst plus the refill, cap/60 per second: not a unit more (or less
 * than rounding).
 */
START_TEST(test_sustained_rate)
{
    static const int64_t  sc[] = { 7, 30, 120 };

    ug_counter_t   c;
    ug_decision_t  d;
    ug_limits_t    l;
    uint64_t       now, end, allowed, want;
    int64_t        cap;

    cap = sc[_i];
    l = lim(UG_OFF, cap);
    memset(&c, 0, sizeof(c));
    allowed = 0;
    end = T0 + 600 * SEC;

    for (now = T0; now <= end; now += 50000) {
        if (go(&c, &l, 1, now, &d) == UG_ALLOWED) {
            allowed++;
        }
    }

    want = (uint64_t) cap + 600 * (uint64_t) cap / 60;
    ck_assert_msg(allowed >= want - 1 && allowed <= want + 1,
                  "cap %lld: %llu allowed in 10 min, want %llu",
                  (long long) cap, (unsigned long long) allowed,
                  (unsigned long long) want);
}
END_TEST


/*
 * The seed's fixed minute bucket lets a full burst through at hh:mm:59
 * and another at hh:mm+1:00.  The GCRA must not.
 */
START_TEST(test_minute_boundary_no_double_burst)
{
    static const int64_t  bc[] = { 7, 30, 120, 600 };

    ug_counter_t   c;
    ug_decision_t  d;
    ug_limits_t    l;
    uint64_t       late, next, first, second;
    int64_t        cap, k;

    cap = bc[_i];
    l = lim(UG_OFF, cap);
    memset(&c, 0, sizeof(c));

    late = T0 + 59 * SEC + 999000;   /* hh:mm:59.999 */
    next = T0 + 60 * SEC;            /* hh:mm+1:00.000 */
    first = 0;
    second = 0;

    for (k = 0; k < 2 * cap; k++) {
        first += go(&c, &l, 1, late, &d) == UG_ALLOWED;
    }

    ck_assert_uint_eq(first, (uint64_t) cap);

    for (k = 0; k < 2 * cap; k++) {
        second += go(&c, &l, 1, next, &d) == UG_ALLOWED;
    }

    /* 1 ms refills less than a unit for caps below 60000 a minute */
    ck_assert_msg(second == 0, "cap %lld: %llu more right after the minute",
                  (long long) cap, (unsigned long long) second);

    /* the calendar-minute count starts again; the bucket does not */
    ck_assert_uint_eq(d.minute_used, 0);
    ck_assert_uint_eq(d.minute_remaining, 0);

    /* one second later: only what a second refills */
    second = 0;
    for (k = 0; k < 2 * cap; k++) {
        second += go(&c, &l, 1, late + SEC, &d) == UG_ALLOWED;
    }

    ck_assert_uint_le(first + second, (uint64_t) cap + cap / 60 + 1);
    ck_assert_uint_lt(first + second, 2 * (uint64_t) cap);
}
END_TEST


/*
 * Random arrivals: in every window of length L the requests let through
 * number at most cap + floor(L * cap / 60 s) (+1 for rounding when
 * 60 s / cap is not a whole number of microseconds).
 */
START_TEST(test_window_bound_random)
{
    static const int64_t  wc[] = { 7, 30, 61, 120 };

    ug_counter_t   c;
    ug_decision_t  d;
    ug_limits_t    l;
    uint64_t       state, now, times[4096], span, bound;
    int64_t        cap;
    size_t         n, i, j;

    cap = wc[_i];
    l = lim(UG_OFF, cap);
    memset(&c, 0, sizeof(c));
    state = 0x1234567887654321ULL + (uint64_t) _i;
    now = T0;
    n = 0;

    while (n < sizeof(times) / sizeof(times[0])
           && now < T0 + 1800 * SEC)
    {
        /* bursts and gaps: mostly close together, sometimes seconds */
        if (rnd(&state) % 8 == 0) {
            now += rnd(&state) % (5 * SEC);
        } else {
            now += rnd(&state) % 200000;
        }

        if (go(&c, &l, 1, now, &d) == UG_ALLOWED) {
            times[n++] = now;
        }
    }

    ck_assert_uint_gt(n, (uint64_t) cap);

    for (i = 0; i < n; i++) {
        for (j = i; j < n; j++) {
            span = times[j] - times[i];
            bound = (uint64_t) cap + span * (uint64_t) cap / (60 * SEC)
                    + (60 * SEC % (uint64_t) cap != 0);

            ug_expect(j - i + 1 <= bound,
                      "cap %lld: %zu allowed in %llu us",
                      (long long) cap, j - i + 1,
                      (unsigned long long) span);
        }
    }
}
END_TEST


/*
 * Retry-After is whole seconds, at least 1, and honest: retrying at
 * now + retry_after passes; at now + retry_after - 1 s it would not.
 */
START_TEST(test_retry_after_honest)
{
    static const int64_t  rc[] = { 1, 2, 7, 30, 61, 120, 7000 };

    ug_counter_t   c, probe;
    ug_decision_t  d, p;
    ug_limits_t    l;
    uint64_t       state, now, cost, denials, gap, max_wait;
    int64_t        cap;
    int            i;

    cap = rc[_i % 7];
    cost = (_i >= 7 && cap >= 2) ? 2 : 1;
    l = lim(UG_OFF, cap);
    memset(&c, 0, sizeof(c));
    state = 0xdeadbeefcafef00dULL + (uint64_t) _i;
    now = T0 + 777;
    denials = 0;

    /* arrivals on average twice as fast as the refill */
    gap = cost * (60 * SEC / (uint64_t) cap);
    max_wait = (cost * 60 * SEC + (uint64_t) cap - 1) / (uint64_t) cap;

    for (i = 0; i < 20000; i++) {
        now += rnd(&state) % gap;

        if (go(&c, &l, cost, now, &d) == UG_ALLOWED) {
            continue;
        }

        denials++;

        ug_expect(d.verdict == UG_RATE && d.retry_after >= 1,
                  "cap %lld: verdict %d, Retry-After %llu", (long long) cap,
                  (int) d.verdict, (unsigned long long) d.retry_after);

        /* never longer than refilling `cost` units takes, rounded up */
        ug_expect(d.retry_after <= (max_wait + SEC - 1) / SEC,
                  "cap %lld: Retry-After %llu", (long long) cap,
                  (unsigned long long) d.retry_after);

        probe = c;
        ug_expect(go(&probe, &l, cost, now + d.retry_after * SEC, &p)
                  == UG_ALLOWED,
                  "cap %lld cost %llu: still denied after Retry-After %llu",
                  (long long) cap, (unsigned long long) cost,
                  (unsigned long long) d.retry_after);

        if (d.retry_after > 1) {
            probe = c;
            ug_expect(go(&probe, &l, cost, now + (d.retry_after - 1) * SEC,
                         &p)
                      == UG_RATE,
                      "cap %lld: Retry-After %llu is later than needed",
                      (long long) cap, (unsigned long long) d.retry_after);
        }
    }

    ck_assert_uint_gt(denials, 1000);
}
END_TEST


START_TEST(test_month_quota_exact)
{
    ug_counter_t   c, saved;
    ug_decision_t  d;
    ug_limits_t    l;
    uint64_t       now, feb;
    int            k;

    l = lim(20, 30);
    memset(&c, 0, sizeof(c));
    now = at(2026, 1, 31, 23, 58, 0);
    feb = at(2026, 2, 1, 0, 0, 0);

    /* 2 s apart: the minute cap never bites */
    for (k = 1; k <= 20; k++) {
        ck_assert_int_eq(go(&c, &l, 1, now, &d), UG_ALLOWED);
        ck_assert_uint_eq(d.month_used, (uint64_t) k);
        ck_assert_uint_eq(d.month_remaining, (uint64_t) (20 - k));
        ck_assert_uint_eq(d.month_reset, (feb - now) / SEC);
        now += 2 * SEC;
    }

    /* the 21st: 402 until the month ends, with the seconds to go */
    ck_assert_int_eq(go(&c, &l, 1, now, &d), UG_QUOTA);
    ck_assert_uint_eq(d.month_used, 20);
    ck_assert_uint_eq(d.month_remaining, 0);
    ck_assert_uint_eq(d.retry_after, (feb - now) / SEC);
    ck_assert_uint_eq(d.retry_after, 80);
    ck_assert_uint_eq(d.month_reset, d.retry_after);

    /* denials count for nothing */
    saved = c;
    for (k = 0; k < 10; k++) {
        ck_assert_int_eq(go(&c, &l, 1, now, &d), UG_QUOTA);
        ck_assert(memcmp(&c, &saved, sizeof(c)) == 0);
    }

    ck_assert_int_eq(go(&c, &l, 1, feb - SEC, &d), UG_QUOTA);
    ck_assert_uint_eq(d.retry_after, 1);
    ck_assert_int_eq(go(&c, &l, 1, feb - 1, &d), UG_QUOTA);
    ck_assert_uint_eq(d.retry_after, 1);
    ck_assert_uint_eq(c.month_used, 20);

    /* 00:00:00 UTC on the 1st: a fresh month of 28 days (2026) */
    ck_assert_int_eq(go(&c, &l, 1, feb, &d), UG_ALLOWED);
    ck_assert_uint_eq(d.month_used, 1);
    ck_assert_uint_eq(d.month_remaining, 19);
    ck_assert_uint_eq(d.month_reset, 28 * 86400);
    ck_assert_int_eq(c.month, 2026 * 12 + 1);
}
END_TEST


START_TEST(test_month_ends)
{
    static const struct {
        int      y, m, d;        /* last day of a month */
        int      ny, nm;         /* the month after */
        int64_t  next_days;      /* its length */
    } ends[] = {
        { 2024, 2, 29, 2024, 3, 31 },   /* leap day */
        { 2023, 2, 28, 2023, 3, 31 },
        { 2100, 2, 28, 2100, 3, 31 },   /* 2100 is not a leap year */
        { 2000, 2, 29, 2000, 3, 31 },   /* 2000 is */
        { 2025, 12, 31, 2026, 1, 31 },  /* year end */
        { 2025, 4, 30, 2025, 5, 31 },   /* 30-day month */
        { 2024, 1, 31, 2024, 2, 29 },   /* into a leap February */
        { 2025, 1, 31, 2025, 2, 28 },
        { 2025, 10, 31, 2025, 11, 30 },
    };

    ug_counter_t   c;
    ug_decision_t  d;
    ug_limits_t    l;
    uint64_t       last, first;
    size_t         i;

    l = lim(1, UG_OFF);

    for (i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
        memset(&c, 0, sizeof(c));
        last = at(ends[i].y, ends[i].m, ends[i].d, 23, 59, 59);
        first = at(ends[i].ny, ends[i].nm, 1, 0, 0, 0);
        ck_assert_uint_eq(first - last, SEC);

        ck_assert_int_eq(go(&c, &l, 1, last - 3600 * SEC, &d), UG_ALLOWED);
        ck_assert_int_eq(go(&c, &l, 1, last, &d), UG_QUOTA);
        ck_assert_uint_eq(d.retry_after, 1);
        ck_assert_int_eq(go(&c, &l, 1, last + 999999, &d), UG_QUOTA);
        ck_assert_uint_eq(d.retry_after, 1);

        ck_assert_int_eq(go(&c, &l, 1, first, &d), UG_ALLOWED);
        ck_assert_uint_eq(d.month_reset, ends[i].next_days * 86400);
        ck_assert_int_eq(go(&c, &l, 1, first, &d), UG_QUOTA);
        ck_assert_uint_eq(d.retry_after, ends[i].next_days * 86400);
    }
}
END_TEST


START_TEST(test_old_month_resets)
{
    ug_counter_t   c;
    ug_decision_t  d;
    ug_limits_t    l;

    /* a counter full in August is empty in September */
    l = lim(20, 30);
    memset(&c, 0, sizeof(c));
    c.month = 2025 * 12 + 7;
    c.month_used = 20;
    c.minute = 12345;
    c.minute_used = 30;
    c.tat_us = at(2025, 8, 31, 23, 0, 0);

    ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_ALLOWED);
    ck_assert_uint_eq(d.month_used, 1);
    ck_assert_uint_eq(d.minute_used, 1);
    ck_assert_uint_eq(d.minute_remaining, 29);
    ck_assert_int_eq(c.month, 2025 * 12 + 8);
}
END_TEST


START_TEST(test_quota_denial_keeps_rate_tokens)
{
    ug_counter_t   c;
    ug_decision_t  d;
    ug_limits_t    l;
    int            k;

    /* a 402 takes no minute token: it stays 402, never turns into 429 */
    l = lim(2, 3);
    memset(&c, 0, sizeof(c));

    ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_ALLOWED);
    ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_ALLOWED);

    for (k = 0; k < 5; k++) {
        ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_QUOTA);
        ck_assert_uint_eq(d.minute_remaining, 1);
        ck_assert_uint_eq(d.minute_used, 2);
        ck_assert_uint_eq(d.month_used, 2);
    }

    /* and a 429 takes no month unit */
    l = lim(100, 2);
    memset(&c, 0, sizeof(c));

    ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_ALLOWED);
    ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_ALLOWED);

    for (k = 0; k < 5; k++) {
        ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_RATE);
        ck_assert_uint_eq(d.month_used, 2);
        ck_assert_uint_eq(d.month_remaining, 98);
    }

    ck_assert_uint_eq(c.month_used, 2);
    ck_assert_uint_eq(c.minute_used, 2);
}
END_TEST


START_TEST(test_rate_before_quota)
{
    ug_counter_t   c;
    ug_decision_t  d;
    ug_limits_t    l;

    l = lim(1, 1);
    memset(&c, 0, sizeof(c));

    ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_ALLOWED);

    /* both exhausted: the minute cap answers first */
    ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_RATE);
    ck_assert_uint_eq(d.retry_after, 60);

    /* once the minute has refilled, the month is what stops it */
    ck_assert_int_eq(go(&c, &l, 1, T0 + 60 * SEC, &d), UG_QUOTA);
    ck_assert_uint_eq(d.retry_after,
                      (at(2025, 10, 1, 0, 0, 0) - T0) / SEC - 60);
}
END_TEST


START_TEST(test_cost)
{
    ug_counter_t   c;
    ug_decision_t  d;
    ug_limits_t    l;

    /* month 10, cost 3: 3, 6, 9, then 12 would pass the limit */
    l = lim(10, UG_OFF);
    memset(&c, 0, sizeof(c));

    ck_assert_int_eq(go(&c, &l, 3, T0, &d), UG_ALLOWED);
    ck_assert_uint_eq(d.month_used, 3);
    ck_assert_int_eq(go(&c, &l, 3, T0, &d), UG_ALLOWED);
    ck_assert_int_eq(go(&c, &l, 3, T0, &d), UG_ALLOWED);
    ck_assert_uint_eq(d.month_used, 9);
    ck_assert_uint_eq(d.month_remaining, 1);
    ck_assert_int_eq(go(&c, &l, 3, T0, &d), UG_QUOTA);
    ck_assert_uint_eq(d.month_used, 9);
    ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_ALLOWED);
    ck_assert_uint_eq(d.month_used, 10);
    ck_assert_uint_eq(d.month_remaining, 0);
    ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_QUOTA);
    ck_assert_uint_eq(c.month_used, 10);

    /* cost equal to the whole quota fits once */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(go(&c, &l, 10, T0, &d), UG_ALLOWED);
    ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_QUOTA);

    /* minute 10, cost 4: 4, 8, then only 2 more fit */
    l = lim(UG_OFF, 10);
    memset(&c, 0, sizeof(c));

    ck_assert_int_eq(go(&c, &l, 4, T0, &d), UG_ALLOWED);
    ck_assert_uint_eq(d.minute_remaining, 6);
    ck_assert_int_eq(go(&c, &l, 4, T0, &d), UG_ALLOWED);
    ck_assert_uint_eq(d.minute_remaining, 2);
    ck_assert_int_eq(go(&c, &l, 4, T0, &d), UG_RATE);
    /* two units short at 6 s each */
    ck_assert_uint_eq(d.retry_after, 12);
    ck_assert_int_eq(go(&c, &l, 2, T0, &d), UG_ALLOWED);
    ck_assert_uint_eq(d.minute_remaining, 0);
    ck_assert_uint_eq(d.minute_used, 10);
    ck_assert_uint_eq(d.month_used, 10);
    ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_RATE);
}
END_TEST


START_TEST(test_minute_used_calendar)
{
    ug_counter_t   c;
    ug_decision_t  d;
    ug_limits_t    l;
    int            k;

    l = lim(UG_OFF, 100);
    memset(&c, 0, sizeof(c));

    for (k = 1; k <= 5; k++) {
        ck_assert_int_eq(go(&c, &l, 1, T0 + 10 * SEC, &d), UG_ALLOWED);
        ck_assert_uint_eq(d.minute_used, (uint64_t) k);
    }

    ck_assert_int_eq(go(&c, &l, 1, T0 + 60 * SEC - 1, &d), UG_ALLOWED);
    ck_assert_uint_eq(d.minute_used, 6);

    /* a new calendar minute: the count starts again */
    ug_peek(&c, &l, T0 + 60 * SEC, &d);
    ck_assert_uint_eq(d.minute_used, 0);
    ck_assert_int_eq(go(&c, &l, 1, T0 + 60 * SEC, &d), UG_ALLOWED);
    ck_assert_uint_eq(d.minute_used, 1);

    /* denied calls are not counted */
    l = lim(UG_OFF, 3);
    memset(&c, 0, sizeof(c));

    for (k = 0; k < 6; k++) {
        (void) go(&c, &l, 1, T0, &d);
    }

    ck_assert_uint_eq(d.verdict, UG_RATE);
    ck_assert_uint_eq(d.minute_used, 3);
    ck_assert_uint_eq(c.minute_used, 3);

    /* cost counts units */
    l = lim(UG_OFF, UG_OFF);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(go(&c, &l, 3, T0, &d), UG_ALLOWED);
    ck_assert_uint_eq(d.minute_used, 3);
}
END_TEST


START_TEST(test_off_limits)
{
    ug_counter_t   c;
    ug_decision_t  d;
    ug_limits_t    l;
    int            k;

    /* both off: never denied, still counted */
    l = lim(UG_OFF, UG_OFF);
    memset(&c, 0, sizeof(c));

    for (k = 1; k <= 100000; k++) {
        ug_expect(go(&c, &l, 1, T0, &d) == UG_ALLOWED, "request %d", k);
    }

    ck_assert_uint_eq(d.month_used, 100000);
    ck_assert_uint_eq(d.minute_used, 100000);
    ck_assert_uint_eq(d.month_remaining, 0);
    ck_assert_uint_eq(d.minute_remaining, 0);
    ck_assert_uint_eq(d.minute_reset, 0);
    ck_assert_uint_eq(d.retry_after, 0);
    ck_assert_uint_eq(c.tat_us, 0);

    /* month off (pro): only the 120 a minute cap */
    l = lim(UG_OFF, 120);
    memset(&c, 0, sizeof(c));

    for (k = 0; k < 120; k++) {
        ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_ALLOWED);
    }

    ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_RATE);
    ck_assert_uint_eq(d.month_used, 120);

    /* minute off: only the month */
    l = lim(20, UG_OFF);
    memset(&c, 0, sizeof(c));

    for (k = 0; k < 20; k++) {
        ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_ALLOWED);
    }

    ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_QUOTA);
    ck_assert_uint_eq(d.minute_remaining, 0);
    ck_assert_uint_eq(d.minute_reset, 0);
}
END_TEST


START_TEST(test_zero_limits)
{
    ug_counter_t   c, zero;
    ug_decision_t  d;
    ug_limits_t    l;

    memset(&zero, 0, sizeof(zero));

    l = lim(0, 30);
    c = zero;
    ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_QUOTA);
    ck_assert_uint_eq(c.month_used, 0);
    ck_assert_uint_eq(c.minute_used, 0);
    ck_assert_uint_eq(c.tat_us, 0);

    l = lim(20, 0);
    c = zero;
    ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_RATE);
    ck_assert_int_eq(go(&c, &l, 1, T0 + 3600 * SEC, &d), UG_RATE);
    ck_assert_uint_ge(d.retry_after, 1);
    ck_assert_uint_eq(c.month_used, 0);
}
END_TEST


START_TEST(test_peek)
{
    ug_counter_t   c, saved;
    ug_decision_t  d, p;
    ug_limits_t    l;
    int            k;

    l = lim(20, 30);
    memset(&c, 0, sizeof(c));

    for (k = 0; k < 5; k++) {
        ck_assert_int_eq(go(&c, &l, 1, T0, &d), UG_ALLOWED);
    }

    /* what the last decision reported, without counting */
    saved = c;
    memset(&p, 0x5a, sizeof(p));
    ug_peek(&c, &l, T0, &p);
    ck_assert(memcmp(&c, &saved, sizeof(c)) == 0);
    ck_assert_int_eq(p.verdict, UG_ALLOWED);
    ck_assert_uint_eq(p.retry_after, 0);
    ck_assert_uint_eq(p.month_used, d.month_used);
    ck_assert_uint_eq(p.month_remaining, d.month_remaining);
    ck_assert_uint_eq(p.month_reset, d.month_reset);
    ck_assert_uint_eq(p.minute_used, d.minute_used);
    ck_assert_uint_eq(p.minute_remaining, d.minute_remaining);
    ck_assert_uint_eq(p.minute_reset, d.minute_reset);

    /* later: the bucket refilled (5 units held, 4 s later 3 held) */
    ug_peek(&c, &l, T0 + 4 * SEC, &p);
    ck_assert_uint_eq(p.minute_remaining, 27);
    ck_assert_uint_eq(p.minute_reset, 6);
    ck_assert(memcmp(&c, &saved, sizeof(c)) == 0);

    /* next month: nothing used, still without touching the counter */
    ug_peek(&c, &l, at(2025, 10, 1, 0, 0, 0), &p);
    ck_assert_uint_eq(p.month_used, 0);
    ck_assert_uint_eq(p.month_remaining, 20);
    ck_assert_uint_eq(p.minute_used, 0);
    ck_assert_uint_eq(p.minute_remaining, 30);
    ck_assert_uint_eq(p.minute_reset, 0);
    ck_assert(memcmp(&c, &saved, sizeof(c)) == 0);
}
END_TEST



/*
 * ug_take_minute decides exactly what ug_decide decides for the minute,
 * and counts nothing for the month; ug_give_minute undoes it.
 */
START_TEST(test_take_minute)
{
    ug_counter_t   c, ref;
    ug_decision_t  d, dref;
    ug_limits_t    l, lref;
    int            k;

    l = lim(5, 30);
    lref = lim(UG_OFF, 30);
    memset(&c, 0, sizeof(c));
    memset(&ref, 0, sizeof(ref));

    for (k = 0; k < 40; k++) {
        memset(&d, 0x5a, sizeof(d));
        ug_take_minute(&c, &l, 1, T0 + (uint64_t) k * SEC / 100, &d);
        ug_decide(&ref, &lref, 1, T0 + (uint64_t) k * SEC / 100, &dref);

        ck_assert_int_eq(d.verdict, dref.verdict);
        ck_assert_uint_eq(d.minute_used, dref.minute_used);
        ck_assert_uint_eq(d.minute_remaining, dref.minute_remaining);
        ck_assert_uint_eq(d.retry_after, dref.retry_after);
        ck_assert_uint_eq(c.tat_us, ref.tat_us);

        /* the month is the table's business: never counted here, and
         * a month limit below the minute's burst never says 402 */
        ck_assert_uint_eq(c.month_used, 0);
        ck_assert_uint_eq(d.month_used, 0);
        ck_assert_int_ne(d.verdict, UG_QUOTA);
    }

    ck_assert_uint_eq(c.minute_used, 30);
    ck_assert_int_eq(d.verdict, UG_RATE);
}
END_TEST


START_TEST(test_give_minute)
{
    ug_counter_t   c, before;
    ug_decision_t  d;
    ug_limits_t    l;
    int            k;

    l = lim(100, 3);
    memset(&c, 0, sizeof(c));

    for (k = 0; k < 3; k++) {
        ug_take_minute(&c, &l, 1, T0, &d);
        ck_assert_int_eq(d.verdict, UG_ALLOWED);
    }

    ug_take_minute(&c, &l, 1, T0, &d);
    ck_assert_int_eq(d.verdict, UG_RATE);

    /* a request that the table refused hands its unit back: the next
     * one passes, and the counter is as before the refused one */
    before = c;
    ug_give_minute(&c, &l, 1, T0);
    ck_assert_uint_eq(c.minute_used, 2);
    ck_assert_uint_eq(c.tat_us, before.tat_us - 20 * SEC);

    ug_take_minute(&c, &l, 1, T0, &d);
    ck_assert_int_eq(d.verdict, UG_ALLOWED);
    ck_assert(memcmp(&c, &before, sizeof(c)) == 0);

    /* cost, and never below zero */
    ug_give_minute(&c, &l, 5, T0);
    ck_assert_uint_eq(c.minute_used, 0);
    ck_assert_uint_le(c.tat_us, T0);

    ug_take_minute(&c, &l, 3, T0, &d);
    ck_assert_int_eq(d.verdict, UG_ALLOWED);

    /* in the next calendar minute the minute's count is not touched */
    ug_take_minute(&c, &l, 1, T0 + 61 * SEC, &d);
    ck_assert_int_eq(d.verdict, UG_ALLOWED);
    ck_assert_uint_eq(c.minute_used, 1);
    ug_give_minute(&c, &l, 1, T0 + 125 * SEC);
    ck_assert_uint_eq(c.minute_used, 1);

    /* no cap: only the count moves */
    l = lim(10, UG_OFF);
    memset(&c, 0, sizeof(c));
    ug_take_minute(&c, &l, 2, T0, &d);
    ck_assert_int_eq(d.verdict, UG_ALLOWED);
    ck_assert_uint_eq(c.minute_used, 2);
    ck_assert_uint_eq(c.tat_us, 0);
    ug_give_minute(&c, &l, 2, T0);
    ck_assert_uint_eq(c.minute_used, 0);
}
END_TEST

static ug_verdict_t
go_terms(ug_counter_t *c, const ug_limits_t *l, int64_t overage, int anchor,
    uint64_t cost, uint64_t now, ug_decision_t *d)
{
    ug_terms_t  terms;

    terms.overage = overage;
    terms.anchor = anchor;

    memset(d, 0x5a, sizeof(*d));
    ug_decide_terms(c, l, &terms, cost, now, d);

    return d->verdict;
}


/* month=10 overage=5: 15 calls pass, the last 5 flagged, then 402. */
START_TEST(test_overage_band)
{
    ug_counter_t   c, before;
    ug_decision_t  d;
    ug_limits_t    l;
    int            i;

    memset(&c, 0, sizeof(c));
    l = lim(10, UG_OFF);

    for (i = 1; i <= 15; i++) {
        ck_assert_int_eq(go_terms(&c, &l, 5, 0, 1, T0 + i * SEC, &d),
                         UG_ALLOWED);
        ck_assert_uint_eq(d.month_used, i);
        ck_assert_uint_eq(d.overage, i > 10 ? i - 10 : 0);
        /* RateLimit describes the hard limit: where the 402s begin */
        ck_assert_int_eq(d.month_limit, 15);
        ck_assert_uint_eq(d.month_remaining, 15 - i);
    }

    before = c;
    ck_assert_int_eq(go_terms(&c, &l, 5, 0, 1, T0 + 20 * SEC, &d), UG_QUOTA);
    ck_assert_uint_eq(d.month_used, 15);
    ck_assert_uint_eq(d.overage, 5);
    ck_assert_uint_eq(d.month_remaining, 0);
    ck_assert_uint_eq(d.retry_after, d.month_reset);
    ck_assert_uint_eq(d.month_reset,
                      (uint64_t) ug_month_reset_seconds(
                          (int64_t) ((T0 + 20 * SEC) / SEC)));
    ck_assert(memcmp(&c, &before, sizeof(c)) == 0);

    /* the same counter without the band is already past its quota */
    ck_assert_int_eq(go(&c, &l, 1, T0 + 21 * SEC, &d), UG_QUOTA);
    ck_assert_int_eq(d.month_limit, 10);
    ck_assert_uint_eq(d.overage, 5);

    /* a cost that would cross the band's end is refused whole */
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(go_terms(&c, &l, 5, 0, 14, T0, &d), UG_ALLOWED);
    ck_assert_uint_eq(d.overage, 4);
    ck_assert_int_eq(go_terms(&c, &l, 5, 0, 2, T0 + SEC, &d), UG_QUOTA);
    ck_assert_uint_eq(d.month_used, 14);
    ck_assert_int_eq(go_terms(&c, &l, 5, 0, 1, T0 + SEC, &d), UG_ALLOWED);
    ck_assert_uint_eq(d.overage, 5);

    /* the band resets with the month */
    ck_assert_int_eq(go_terms(&c, &l, 5, 0, 1, at(2025, 10, 1, 0, 0, 0), &d),
                     UG_ALLOWED);
    ck_assert_uint_eq(d.month_used, 1);
    ck_assert_uint_eq(d.overage, 0);
}
END_TEST


/* overage=unlimited: never a 402 for the quota, overage keeps counting. */
START_TEST(test_overage_unlimited)
{
    ug_counter_t   c;
    ug_decision_t  d;
    ug_limits_t    l;
    int            i;

    memset(&c, 0, sizeof(c));
    l = lim(10, UG_OFF);

    for (i = 1; i <= 1000; i++) {
        ug_expect(go_terms(&c, &l, UG_OFF, 0, 3, T0 + i * SEC, &d)
                  == UG_ALLOWED, "call %d denied", i);
        ug_expect(d.overage == (3 * (uint64_t) i > 10 ? 3 * (uint64_t) i - 10
                                                      : 0),
                  "call %d: overage %llu", i, (unsigned long long) d.overage);
        ug_expect(d.month_limit == UG_OFF && d.month_remaining == 0,
                  "call %d: a hard limit reported", i);
    }

    /* the minute cap still applies */
    l = lim(10, 2);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(go_terms(&c, &l, UG_OFF, 0, 1, T0, &d), UG_ALLOWED);
    ck_assert_int_eq(go_terms(&c, &l, UG_OFF, 0, 1, T0, &d), UG_ALLOWED);
    ck_assert_int_eq(go_terms(&c, &l, UG_OFF, 0, 1, T0, &d), UG_RATE);
}
END_TEST


START_TEST(test_hard_limit)
{
    ug_limits_t  l;
    ug_terms_t   t;

    l = lim(10, 5);
    t.anchor = 0;

    ck_assert_int_eq(ug_month_hard_limit(&l, NULL), 10);
    t.overage = 0;
    ck_assert_int_eq(ug_month_hard_limit(&l, &t), 10);
    t.overage = 5000;
    ck_assert_int_eq(ug_month_hard_limit(&l, &t), 5010);
    t.overage = UG_OFF;
    ck_assert_int_eq(ug_month_hard_limit(&l, &t), UG_OFF);
    t.overage = -7;                 /* not a band: as none */
    ck_assert_int_eq(ug_month_hard_limit(&l, &t), 10);
    t.overage = UG_LIMIT_MAX;
    l.month = UG_LIMIT_MAX;
    ck_assert_int_eq(ug_month_hard_limit(&l, &t), 2 * UG_LIMIT_MAX);

    /* no monthly quota: no band either */
    l = lim(UG_OFF, 5);
    t.overage = 5;
    ck_assert_int_eq(ug_month_hard_limit(&l, &t), UG_OFF);
}
END_TEST


/*
 * No terms, NULL terms and all-zero terms decide exactly as ug_decide,
 * over random calls, costs and limits spanning month ends; without a
 * band no allowed call is overage (a lowered limit can leave a counter
 * above it: its denials report by how much).
 */
START_TEST(test_terms_zero_same)
{
    ug_counter_t   a, b, z;
    ug_decision_t  da, db, dz;
    ug_limits_t    l;
    ug_terms_t     zero;
    uint64_t       state, now, cost;
    int            i;

    memset(&a, 0, sizeof(a));
    b = a;
    z = a;
    memset(&zero, 0, sizeof(zero));
    state = 0x0123456789abcdefULL;
    now = at(2025, 12, 30, 0, 0, 0);

    for (i = 0; i < 100000; i++) {
        if (i % 1000 == 0) {
            l = lim((int64_t) (rnd(&state) % 50) - (i % 3000 == 0),
                    (int64_t) (rnd(&state) % 10) - (i % 2000 == 0));
        }

        now += rnd(&state) % (20 * SEC);
        cost = 1 + rnd(&state) % 3;

        ug_decide(&a, &l, cost, now, &da);
        ug_decide_terms(&b, &l, NULL, cost, now, &db);
        ug_decide_terms(&z, &l, &zero, cost, now, &dz);

        ug_expect(memcmp(&a, &b, sizeof(a)) == 0
                  && memcmp(&a, &z, sizeof(a)) == 0, "counters differ");
        ug_expect(da.verdict == db.verdict && da.verdict == dz.verdict
                  && da.month_used == dz.month_used
                  && da.month_remaining == dz.month_remaining
                  && da.month_reset == dz.month_reset
                  && da.month_limit == dz.month_limit
                  && da.month_limit == l.month
                  && da.overage == dz.overage
                  && (da.verdict != UG_ALLOWED || da.overage == 0)
                  && da.retry_after == dz.retry_after
                  && da.minute_remaining == dz.minute_remaining
                  && da.minute_reset == dz.minute_reset
                  && da.cycle.id == dz.cycle.id
                  && da.cycle.id == ug_month_index((int64_t) (now / SEC)),
                  "decision %d differs", i);
    }
}
END_TEST


/* An anchored cycle: the quota resets on the anchor day, not the 1st. */
START_TEST(test_anchor_cycle)
{
    ug_counter_t   c;
    ug_decision_t  d;
    ug_limits_t    l;
    char           key[UG_MONTH_KEY_LEN + 1];
    int            i;

    memset(&c, 0, sizeof(c));
    l = lim(3, UG_OFF);

    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(go_terms(&c, &l, 0, 15, 1,
                                  at(2025, 1, 20, 0, 0, i), &d),
                         UG_ALLOWED);
    }

    /* the 1st of February is no reset for an anchor of 15 */
    ck_assert_int_eq(go_terms(&c, &l, 0, 15, 1, at(2025, 2, 1, 0, 0, 0), &d),
                     UG_QUOTA);
    ug_cycle_key(&d.cycle, key);
    ck_assert_str_eq(key, "2025-01");

    /* the second before the anchor day: 402, 1 s to the reset */
    ck_assert_int_eq(go_terms(&c, &l, 0, 15, 1,
                              at(2025, 2, 14, 23, 59, 59), &d), UG_QUOTA);
    ck_assert_uint_eq(d.month_reset, 1);
    ck_assert_uint_eq(d.retry_after, 1);

    /* at it: a new cycle keyed by February */
    ck_assert_int_eq(go_terms(&c, &l, 0, 15, 1, at(2025, 2, 15, 0, 0, 0), &d),
                     UG_ALLOWED);
    ck_assert_uint_eq(d.month_used, 1);
    ck_assert_uint_eq(d.month_reset, 28 * 86400);
    ug_cycle_key(&d.cycle, key);
    ck_assert_str_eq(key, "2025-02");
    ck_assert_int_eq(c.month, d.cycle.id);

    /* an anchor of tomorrow: a 402 whose reset is under a day */
    memset(&c, 0, sizeof(c));
    for (i = 0; i < 3; i++) {
        (void) go_terms(&c, &l, 0, 29, 1, at(2024, 2, 28, 10, 0, i), &d);
    }
    ck_assert_int_eq(go_terms(&c, &l, 0, 29, 1, at(2024, 2, 28, 10, 0, 9),
                              &d), UG_QUOTA);
    ck_assert_uint_lt(d.month_reset, 86400);
    ck_assert_uint_eq(d.month_reset, 14 * 3600 - 9);

    /* a changed anchor waits for the stored cycle to end */
    ck_assert_int_eq(go_terms(&c, &l, 0, 3, 1, at(2024, 2, 28, 11, 0, 0),
                              &d), UG_QUOTA);
    ck_assert_int_eq(go_terms(&c, &l, 0, 3, 1, at(2024, 2, 29, 0, 0, 0), &d),
                     UG_ALLOWED);
    ck_assert_uint_eq(d.month_used, 1);
    ck_assert_int_eq(d.cycle.anchor, 3);
    ck_assert_uint_eq(d.month_reset, 3 * 86400);

    /* peek and take_minute follow the same cycle */
    ug_peek_terms(&c, &l, NULL, at(2024, 3, 2, 0, 0, 0), &d);
    ck_assert_uint_eq(d.month_used, 1);
    ck_assert_uint_eq(d.month_reset, 86400);
    ug_peek(&c, &l, at(2024, 3, 3, 0, 0, 0), &d);
    ck_assert_uint_eq(d.month_used, 0);
}
END_TEST


START_TEST(test_take_minute_terms_roll)
{
    ug_counter_t   c;
    ug_decision_t  d;
    ug_limits_t    l;
    ug_terms_t     t;

    memset(&c, 0, sizeof(c));
    l = lim(100, 10);
    t.overage = 0;
    t.anchor = 10;

    ug_decide_terms(&c, &l, &t, 5, at(2025, 6, 9, 12, 0, 0), &d);
    ck_assert_uint_eq(d.month_used, 5);

    ug_take_minute_terms(&c, &l, &t, 1, at(2025, 6, 9, 23, 59, 59), &d);
    ck_assert_int_eq(d.verdict, UG_ALLOWED);
    ck_assert_uint_eq(c.month_used, 5);

    ug_take_minute_terms(&c, &l, &t, 1, at(2025, 6, 10, 0, 0, 0), &d);
    ck_assert_int_eq(d.verdict, UG_ALLOWED);
    ck_assert_uint_eq(c.month_used, 0);
    ck_assert_uint_eq(d.month_reset, 30 * 86400);
}
END_TEST


/*
 * Cap 3: a burst of 3, then one call every 20 s for two minutes.  The
 * bucket's fill never passes the cap, while calls in the calendar minute
 * do (the header this replaces showed 5 with a cap of 3).
 */
START_TEST(test_minute_fill_spaced)
{
    ug_counter_t   c;
    ug_decision_t  d;
    ug_limits_t    l;
    uint64_t       now, most_calendar;
    int            i;

    memset(&c, 0, sizeof(c));
    l = lim(UG_OFF, 3);
    now = T0;
    most_calendar = 0;

    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(go(&c, &l, 1, now, &d), UG_ALLOWED);
        ck_assert_uint_eq(d.minute_fill, (uint64_t) i + 1);
    }

    ck_assert_int_eq(go(&c, &l, 1, now, &d), UG_RATE);
    ck_assert_uint_eq(d.minute_fill, 3);

    for (i = 1; i <= 6; i++) {
        now = T0 + (uint64_t) i * 20 * SEC;

        ug_peek(&c, &l, now, &d);
        ck_assert_uint_eq(d.minute_fill, 2);
        ck_assert_uint_eq(d.minute_fill, 3 - d.minute_remaining);

        ck_assert_int_eq(go(&c, &l, 1, now, &d), UG_ALLOWED);
        ck_assert_uint_le(d.minute_fill, 3);
        ck_assert_uint_eq(d.minute_fill, 3);
        ck_assert_uint_eq(d.minute_fill, 3 - d.minute_remaining);

        if (d.minute_used > most_calendar) {
            most_calendar = d.minute_used;
        }
    }

    ck_assert_uint_eq(most_calendar, 5);

    /* a quiet minute empties the bucket */
    ug_peek(&c, &l, now + 60 * SEC, &d);
    ck_assert_uint_eq(d.minute_fill, 0);
    ck_assert_uint_eq(ug_minute_fill(&c, &l, now + 60 * SEC), 0);
    ck_assert_uint_eq(ug_minute_fill(&c, &l, now + 60 * SEC - 1), 1);
    ck_assert_uint_eq(ug_minute_fill(&c, &l, now), 3);
}
END_TEST


/* Random traffic: fill == cap - available, within 0..cap, always. */
START_TEST(test_minute_fill_random)
{
    ug_counter_t   c;
    ug_decision_t  d;
    ug_limits_t    l;
    uint64_t       state, now;
    int            i;

    state = 0xfeedfacecafebeefULL;
    now = T0;

    for (i = 0; i < 200000; i++) {
        if (i % 5000 == 0) {
            memset(&c, 0, sizeof(c));
            l = lim(UG_OFF, 1 + (int64_t) (rnd(&state) % 700));
        }

        now += rnd(&state) % (3 * SEC);
        (void) go(&c, &l, 1 + rnd(&state) % 3, now, &d);

        ug_expect(d.minute_fill <= (uint64_t) l.minute
                  && d.minute_fill == (uint64_t) l.minute
                                      - d.minute_remaining,
                  "cap %lld: fill %llu, remaining %llu", (long long) l.minute,
                  (unsigned long long) d.minute_fill,
                  (unsigned long long) d.minute_remaining);
    }

    /* without a cap there is no bucket: the calendar minute's calls */
    memset(&c, 0, sizeof(c));
    l = lim(UG_OFF, UG_OFF);
    for (i = 1; i <= 7; i++) {
        ck_assert_int_eq(go(&c, &l, 1, T0 + (uint64_t) i * SEC, &d),
                         UG_ALLOWED);
        ck_assert_uint_eq(d.minute_fill, (uint64_t) i);
    }
    ck_assert_uint_eq(ug_minute_fill(&c, &l, T0), 0);
}
END_TEST


static Suite *
decide_suite(void)
{
    Suite   *s;
    TCase   *tc;
    int      ncaps;

    ncaps = (int) (sizeof(caps) / sizeof(caps[0]));

    s = suite_create("ug_decide");
    tc = tcase_create("core");
    tcase_set_timeout(tc, 60);

    tcase_add_test(tc, test_first_request_free);
    tcase_add_loop_test(tc, test_burst_exact, 0, ncaps);
    tcase_add_loop_test(tc, test_refill_one, 0, ncaps);
    tcase_add_test(tc, test_refill_exact_30_and_7);
    tcase_add_loop_test(tc, test_sustained_rate, 0, 3);
    tcase_add_loop_test(tc, test_minute_boundary_no_double_burst, 0, 4);
    tcase_add_loop_test(tc, test_window_bound_random, 0, 4);
    tcase_add_loop_test(tc, test_retry_after_honest, 0, 14);
    tcase_add_test(tc, test_month_quota_exact);
    tcase_add_test(tc, test_month_ends);
    tcase_add_test(tc, test_old_month_resets);
    tcase_add_test(tc, test_quota_denial_keeps_rate_tokens);
    tcase_add_test(tc, test_rate_before_quota);
    tcase_add_test(tc, test_cost);
    tcase_add_test(tc, test_minute_used_calendar);
    tcase_add_test(tc, test_off_limits);
    tcase_add_test(tc, test_zero_limits);
    tcase_add_test(tc, test_peek);
    tcase_add_test(tc, test_take_minute);
    tcase_add_test(tc, test_give_minute);
    tcase_add_test(tc, test_overage_band);
    tcase_add_test(tc, test_overage_unlimited);
    tcase_add_test(tc, test_hard_limit);
    tcase_add_test(tc, test_terms_zero_same);
    tcase_add_test(tc, test_anchor_cycle);
    tcase_add_test(tc, test_take_minute_terms_roll);
    tcase_add_test(tc, test_minute_fill_spaced);
    tcase_add_test(tc, test_minute_fill_random);

    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    return ug_check_run(decide_suite());
}
