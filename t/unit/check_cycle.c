/*
 * Billing cycles: anchor parsing (bare days, RFC 3339 dates, hostile
 * text), anchored cycles for every anchor day in every month of three
 * centuries, the calendar month unchanged, identities and their rolls.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ug_check.h"
#include "ug_cycle.h"
#include "ug_time.h"


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


static int
parse(const char *s, int *day)
{
    *day = -7;

    return ug_anchor_parse(s, strlen(s), day);
}


/* libc's days in a month: the day before the 1st of the next one */
static int
libc_days(int y, int m)
{
    time_t     t;
    struct tm  tm;

    t = (time_t) (utc(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1, 0, 0, 0)
                  - 1);
    gmtime_r(&t, &tm);

    return tm.tm_mday;
}


START_TEST(test_parse_bare_day)
{
    char  buf[8];
    int   d, day;

    for (d = 1; d <= 28; d++) {
        snprintf(buf, sizeof(buf), "%d", d);
        ck_assert_int_eq(parse(buf, &day), UG_ANCHOR_OK);
        ck_assert_int_eq(day, d);

        snprintf(buf, sizeof(buf), "%02d", d);
        ck_assert_int_eq(parse(buf, &day), UG_ANCHOR_OK);
        ck_assert_int_eq(day, d);
    }

    /* 29..31 only as a subscription date, which says which month */
    ck_assert_int_eq(parse("29", &day), UG_ANCHOR_DAY);
    ck_assert_int_eq(parse("31", &day), UG_ANCHOR_DAY);
    ck_assert_int_eq(parse("0", &day), UG_ANCHOR_DAY);
    ck_assert_int_eq(parse("00", &day), UG_ANCHOR_DAY);
    ck_assert_int_eq(parse("99", &day), UG_ANCHOR_DAY);
    ck_assert_int_eq(day, -7);

    ck_assert_int_eq(parse("-1", &day), UG_ANCHOR_SYNTAX);
    ck_assert_int_eq(parse("+5", &day), UG_ANCHOR_SYNTAX);
    ck_assert_int_eq(parse(" 5", &day), UG_ANCHOR_SYNTAX);
    ck_assert_int_eq(parse("5 ", &day), UG_ANCHOR_SYNTAX);
    ck_assert_int_eq(parse("a", &day), UG_ANCHOR_SYNTAX);
    ck_assert_int_eq(parse("015", &day), UG_ANCHOR_SYNTAX);
    ck_assert_int_eq(parse("1e1", &day), UG_ANCHOR_SYNTAX);
    ck_assert_int_eq(day, -7);

    /* empty: no anchor, calendar months */
    ck_assert_int_eq(parse("", &day), UG_ANCHOR_OK);
    ck_assert_int_eq(day, 0);

    /* a NUL inside is a byte like any other */
    day = -7;
    ck_assert_int_eq(ug_anchor_parse("1\0", 2, &day), UG_ANCHOR_SYNTAX);
    ck_assert_int_eq(day, -7);
}
END_TEST


START_TEST(test_parse_dates)
{
    static const struct {
        const char  *text;
        int          rc;
        int          day;
    } cases[] = {
        { "2025-01-31",                      UG_ANCHOR_OK,     31 },
        { "2024-02-29",                      UG_ANCHOR_OK,     29 },
        { "2000-02-29",                      UG_ANCHOR_OK,     29 },
        { "2025-02-29",                      UG_ANCHOR_DATE,   0 },
        { "2100-02-29",                      UG_ANCHOR_DATE,   0 },
        { "2025-04-31",                      UG_ANCHOR_DATE,   0 },
        { "2025-13-01",                      UG_ANCHOR_DATE,   0 },
        { "2025-00-10",                      UG_ANCHOR_DATE,   0 },
        { "2025-01-00",                      UG_ANCHOR_DATE,   0 },
        { "2025-01-32",                      UG_ANCHOR_DATE,   0 },
        { "2025-1-31",                       UG_ANCHOR_SYNTAX, 0 },
        { "2025/01/31",                      UG_ANCHOR_SYNTAX, 0 },
        { "25-01-31",                        UG_ANCHOR_SYNTAX, 0 },
        { "+2025-01-31",                     UG_ANCHOR_SYNTAX, 0 },
        { "2025-01-31T18:30:00Z",            UG_ANCHOR_OK,     31 },
        { "2025-01-31t18:30:00z",            UG_ANCHOR_OK,     31 },
        { "2025-01-31T23:59:59Z",            UG_ANCHOR_OK,     31 },
        { "2025-01-31T00:00:00+00:00",       UG_ANCHOR_OK,     31 },
        { "2025-01-31T00:00:00-00:00",       UG_ANCHOR_OK,     31 },
        /* the UTC day is the anchor: an offset can move it */
        { "2025-01-31T23:30:00-05:00",       UG_ANCHOR_OK,     1 },
        { "2025-03-01T01:00:00+02:00",       UG_ANCHOR_OK,     28 },
        { "2024-03-01T01:00:00+02:00",       UG_ANCHOR_OK,     29 },
        { "2025-12-31T20:00:00-04:00",       UG_ANCHOR_OK,     1 },
        { "2026-01-01T03:00:00+05:30",       UG_ANCHOR_OK,     31 },
        { "2025-01-31T18:30:00.5Z",          UG_ANCHOR_OK,     31 },
        { "2025-01-31T18:30:00.123456789Z",  UG_ANCHOR_OK,     31 },
        { "2025-01-31T23:59:60Z",            UG_ANCHOR_OK,     31 },
        { "2025-01-31T18:30:61Z",            UG_ANCHOR_DATE,   0 },
        { "2025-01-31T24:00:00Z",            UG_ANCHOR_DATE,   0 },
        { "2025-01-31T18:60:00Z",            UG_ANCHOR_DATE,   0 },
        { "2025-01-31T18:30:00+24:00",       UG_ANCHOR_DATE,   0 },
        { "2025-01-31T18:30:00+05:60",       UG_ANCHOR_DATE,   0 },
        { "2025-01-31T18:30:00",             UG_ANCHOR_SYNTAX, 0 },
        { "2025-01-31 18:30:00Z",            UG_ANCHOR_SYNTAX, 0 },
        { "2025-01-31T18:30Z",               UG_ANCHOR_SYNTAX, 0 },
        { "2025-01-31T18:30:00.Z",           UG_ANCHOR_SYNTAX, 0 },
        { "2025-01-31T18:30:00,5Z",          UG_ANCHOR_SYNTAX, 0 },
        { "2025-01-31T18:30:00+0500",        UG_ANCHOR_SYNTAX, 0 },
        { "2025-01-31T18:30:00+05:00x",      UG_ANCHOR_SYNTAX, 0 },
        { "2025-01-31T18:30:00Zx",           UG_ANCHOR_SYNTAX, 0 },
        { "2025-01-31T18:30:00+5:00",        UG_ANCHOR_SYNTAX, 0 },
        { "2025-01-31T1:30:00Z",             UG_ANCHOR_SYNTAX, 0 },
        { "2025-01-31X",                     UG_ANCHOR_SYNTAX, 0 },
        { "2025-01-31T",                     UG_ANCHOR_SYNTAX, 0 },
    };

    size_t  i;
    int     rc, day;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rc = parse(cases[i].text, &day);

        ck_assert_msg(rc == cases[i].rc, "\"%s\": %d, want %d",
                      cases[i].text, rc, cases[i].rc);

        if (rc == UG_ANCHOR_OK) {
            ck_assert_msg(day == cases[i].day, "\"%s\": day %d, want %d",
                          cases[i].text, day, cases[i].day);
        } else {
            ck_assert_int_eq(day, -7);
            ck_assert_ptr_nonnull(ug_anchor_strerror(rc));
            ck_assert_str_ne(ug_anchor_strerror(rc), "ok");
        }
    }
}
END_TEST


START_TEST(test_parse_bounds)
{
    char    buf[UG_ANCHOR_MAX_LEN + 8];
    size_t  len, k;
    int     day, rc;

    /* the longest accepted: a fraction filling UG_ANCHOR_MAX_LEN */
    memcpy(buf, "2025-01-31T18:30:00.", 20);
    len = UG_ANCHOR_MAX_LEN - 1;
    memset(buf + 20, '7', len - 20);
    buf[len] = 'Z';

    ck_assert_int_eq(ug_anchor_parse(buf, len + 1, &day), UG_ANCHOR_OK);
    ck_assert_int_eq(day, 31);

    buf[len] = '7';
    buf[len + 1] = 'Z';
    ck_assert_int_eq(ug_anchor_parse(buf, len + 2, &day),
                     UG_ANCHOR_TOO_LONG);

    /* every cut of a valid date-time is refused, except the date and
     * the bare days "2" and "20" */
    memcpy(buf, "2025-01-31T18:30:00.25+05:30", 28);

    for (k = 1; k < 28; k++) {
        day = -7;
        rc = ug_anchor_parse(buf, k, &day);

        if (k == 10) {
            ck_assert_int_eq(rc, UG_ANCHOR_OK);
            ck_assert_int_eq(day, 31);
        } else if (k <= 2) {
            ck_assert_int_eq(rc, UG_ANCHOR_OK);
            ck_assert_int_eq(day, k == 1 ? 2 : 20);
        } else {
            ck_assert_msg(rc != UG_ANCHOR_OK, "cut at %zu accepted", k);
            ck_assert_int_eq(day, -7);
        }
    }

    ck_assert_int_eq(ug_anchor_parse(buf, 28, &day), UG_ANCHOR_OK);
    ck_assert_int_eq(day, 31);
}
END_TEST


/* Random instants and offsets written as RFC 3339: the UTC day back. */
START_TEST(test_parse_random_vs_libc)
{
    uint64_t   state;
    int64_t    t, local;
    int        i, off, day, rc;
    time_t     tt;
    struct tm  tm, lt;
    char       buf[64];

    state = 0x243f6a8885a308d3ULL;

    for (i = 0; i < 100000; i++) {
        t = utc(1970, 1, 1, 0, 0, 0)
            + (int64_t) (rnd(&state) % (uint64_t) utc(2200, 1, 1, 0, 0, 0));
        off = (int) (rnd(&state) % (2 * 1439 + 1)) - 1439;   /* minutes */

        tt = (time_t) t;
        gmtime_r(&tt, &tm);

        local = t + off * 60;
        tt = (time_t) local;
        gmtime_r(&tt, &lt);

        snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d",
                 lt.tm_year + 1900, lt.tm_mon + 1, lt.tm_mday, lt.tm_hour,
                 lt.tm_min, lt.tm_sec, off < 0 ? '-' : '+',
                 (off < 0 ? -off : off) / 60, (off < 0 ? -off : off) % 60);

        rc = parse(buf, &day);
        ug_expect(rc == UG_ANCHOR_OK && day == tm.tm_mday,
                  "\"%s\": rc %d day %d, want %d", buf, rc, day,
                  tm.tm_mday);
    }
}
END_TEST


/* Hostile bytes: never a crash, a day only in range, refused mostly. */
START_TEST(test_parse_random_bytes)
{
    static const char  alphabet[] = "0123456789-:TZtz+.,\0 x";

    uint64_t  state;
    char      buf[80];
    size_t    len, k;
    int       i, day, rc;

    state = 0x13198a2e03707344ULL;

    for (i = 0; i < 200000; i++) {
        len = (size_t) (rnd(&state) % sizeof(buf));

        for (k = 0; k < len; k++) {
            buf[k] = i % 2 ? (char) rnd(&state)
                           : alphabet[rnd(&state) % (sizeof(alphabet) - 1)];
        }

        day = -7;
        rc = ug_anchor_parse(buf, len, &day);

        ug_expect(rc <= UG_ANCHOR_OK && rc >= UG_ANCHOR_DATE,
                  "rc %d", rc);
        ug_expect(rc == UG_ANCHOR_OK ? (day >= 0 && day <= 31) : day == -7,
                  "rc %d day %d", rc, day);
        ug_expect(len <= UG_ANCHOR_MAX_LEN || rc == UG_ANCHOR_TOO_LONG,
                  "%zu bytes: rc %d", len, rc);
    }
}
END_TEST


START_TEST(test_known_cycles)
{
    ug_cycle_t  cy;
    char        key[UG_MONTH_KEY_LEN + 1];

    /* anchor 31: 31 January, 29 February 2024, 31 March */
    ug_cycle_at(31, utc(2024, 2, 10, 12, 0, 0), &cy);
    ck_assert_int_eq(cy.start, utc(2024, 1, 31, 0, 0, 0));
    ck_assert_int_eq(cy.end, utc(2024, 2, 29, 0, 0, 0));
    ck_assert_int_eq(cy.anchor, 31);
    ug_cycle_key(&cy, key);
    ck_assert_str_eq(key, "2024-01");

    ug_cycle_at(31, utc(2024, 2, 29, 0, 0, 0), &cy);
    ck_assert_int_eq(cy.start, utc(2024, 2, 29, 0, 0, 0));
    ck_assert_int_eq(cy.end, utc(2024, 3, 31, 0, 0, 0));
    ug_cycle_key(&cy, key);
    ck_assert_str_eq(key, "2024-02");

    /* 2025: 28 February; 2100 is not a leap year, 2000 is */
    ug_cycle_at(31, utc(2025, 3, 1, 0, 0, 0), &cy);
    ck_assert_int_eq(cy.start, utc(2025, 2, 28, 0, 0, 0));
    ck_assert_int_eq(cy.end, utc(2025, 3, 31, 0, 0, 0));

    ug_cycle_at(30, utc(2100, 2, 28, 23, 59, 59), &cy);
    ck_assert_int_eq(cy.start, utc(2100, 2, 28, 0, 0, 0));
    ck_assert_int_eq(cy.end, utc(2100, 3, 30, 0, 0, 0));

    ug_cycle_at(30, utc(2000, 2, 28, 23, 59, 59), &cy);
    ck_assert_int_eq(cy.start, utc(2000, 1, 30, 0, 0, 0));
    ck_assert_int_eq(cy.end, utc(2000, 2, 29, 0, 0, 0));

    /* year end: the cycle and its key belong to December */
    ug_cycle_at(15, utc(2026, 1, 10, 8, 0, 0), &cy);
    ck_assert_int_eq(cy.start, utc(2025, 12, 15, 0, 0, 0));
    ck_assert_int_eq(cy.end, utc(2026, 1, 15, 0, 0, 0));
    ug_cycle_key(&cy, key);
    ck_assert_str_eq(key, "2025-12");

    ug_cycle_at(15, utc(2025, 12, 31, 23, 59, 59), &cy);
    ck_assert_int_eq(cy.start, utc(2025, 12, 15, 0, 0, 0));
    ck_assert_int_eq(cy.end - utc(2025, 12, 31, 23, 59, 59), 14 * 86400 + 1);

    /* the second before, at and after the reset */
    ug_cycle_at(5, utc(2025, 3, 4, 23, 59, 59), &cy);
    ck_assert_int_eq(cy.end - utc(2025, 3, 4, 23, 59, 59), 1);
    ck_assert_int_eq(cy.start, utc(2025, 2, 5, 0, 0, 0));
    ug_cycle_at(5, utc(2025, 3, 5, 0, 0, 0), &cy);
    ck_assert_int_eq(cy.start, utc(2025, 3, 5, 0, 0, 0));
    ck_assert_int_eq(cy.end - cy.start, 31 * 86400);
    ug_cycle_at(5, utc(2025, 3, 5, 0, 0, 1), &cy);
    ck_assert_int_eq(cy.end - utc(2025, 3, 5, 0, 0, 1), 31 * 86400 - 1);
}
END_TEST


/*
 * Every anchor day 1..31 in every month 1900..2200: the reset falls at
 * 00:00:00 UTC on the anchor day clamped to the month's length, which
 * libc is asked for; one second before it 1 s is left in the previous
 * cycle, at it the whole new cycle, one second after one less.
 */
START_TEST(test_every_anchor_every_month)
{
    int         y, m, a, d, py, pm, ny, nm;
    int64_t     b, prev, next;
    ug_cycle_t  cy, back;
    char        key[UG_MONTH_KEY_LEN + 1], want[16];

    for (a = 1; a <= 31; a++) {
        for (y = 1900; y < 2200; y++) {
            for (m = 1; m <= 12; m++) {
                d = libc_days(y, m);
                b = utc(y, m, a < d ? a : d, 0, 0, 0);

                py = m == 1 ? y - 1 : y;
                pm = m == 1 ? 12 : m - 1;
                d = libc_days(py, pm);
                prev = utc(py, pm, a < d ? a : d, 0, 0, 0);

                ny = m == 12 ? y + 1 : y;
                nm = m == 12 ? 1 : m + 1;
                d = libc_days(ny, nm);
                next = utc(ny, nm, a < d ? a : d, 0, 0, 0);

                ug_cycle_at(a, b - 1, &cy);
                ug_expect(cy.start == prev && cy.end == b
                          && cy.end - (b - 1) == 1,
                          "anchor %d %04d-%02d: before the reset", a, y, m);

                ug_cycle_at(a, b, &cy);
                ug_expect(cy.start == b && cy.end == next
                          && cy.anchor == a
                          && cy.month == (int32_t) (y * 12 + m - 1),
                          "anchor %d %04d-%02d: at the reset", a, y, m);
                ug_expect(cy.end - cy.start >= 28 * 86400
                          && cy.end - cy.start <= 31 * 86400,
                          "anchor %d %04d-%02d: %lld s long", a, y, m,
                          (long long) (cy.end - cy.start));

                ug_cycle_key(&cy, key);
                snprintf(want, sizeof(want), "%04d-%02d", y, m);
                ug_expect(strcmp(key, want) == 0, "key %s, want %s", key,
                          want);

                ug_expect(ug_cycle_from_id(cy.id, &back) == 0
                          && back.id == cy.id && back.start == cy.start
                          && back.end == cy.end && back.anchor == a
                          && back.month == cy.month,
                          "anchor %d %04d-%02d: identity round trip", a, y,
                          m);

                ug_cycle_at(a, b + 1, &cy);
                ug_expect(cy.start == b && cy.end - (b + 1) == next - b - 1,
                          "anchor %d %04d-%02d: after the reset", a, y, m);

                ug_cycle_at(a, next - 1, &cy);
                ug_expect(cy.start == b && cy.id == back.id,
                          "anchor %d %04d-%02d: last second", a, y, m);
            }
        }
    }
}
END_TEST


/* No anchor, anchor 0 or 1: the calendar month, exactly as ug_time. */
START_TEST(test_calendar_unchanged)
{
    uint64_t    state;
    int64_t     t;
    int         i, a;
    ug_cycle_t  cy;

    state = 0x452821e638d01377ULL;

    for (i = 0; i < 200000; i++) {
        t = (int64_t) (rnd(&state) % (uint64_t) utc(2200, 1, 1, 0, 0, 0));
        a = i % 3 == 0 ? 0 : (i % 3 == 1 ? 1 : -5 - i % 40);

        ug_cycle_at(a, t, &cy);

        ug_expect(cy.id == ug_month_index(t) && cy.month == cy.id
                  && cy.anchor == 1
                  && cy.start == ug_month_start(cy.month)
                  && cy.end - t == ug_month_reset_seconds(t),
                  "t=%lld anchor %d: not the calendar month", (long long) t,
                  a);
    }

    /* an anchor past 31 is no anchor either */
    ug_cycle_at(32, utc(2025, 5, 20, 0, 0, 0), &cy);
    ck_assert_int_eq(cy.id, ug_month_index(utc(2025, 5, 20, 0, 0, 0)));
}
END_TEST


START_TEST(test_identities)
{
    ug_cycle_t  cy, other;
    int32_t     mi;
    int         a;

    /* calendar identities never look anchored; anchored ones differ by
     * anchor and by month */
    for (mi = 0; mi < 10000 * 12; mi += 7) {
        ck_assert_int_eq(ug_cycle_from_id(mi, &cy), 0);
        ck_assert_int_eq(cy.anchor, 1);
        ck_assert_int_eq(cy.start, ug_month_start(mi));
    }

    ug_cycle_at(2, utc(2025, 6, 10, 0, 0, 0), &cy);
    for (a = 3; a <= 31; a++) {
        ug_cycle_at(a, utc(2025, 6, 10, 0, 0, 0), &other);
        ck_assert_int_ne(cy.id, other.id);
        ck_assert_int_ne(other.id, ug_month_index(utc(2025, 6, 10, 0, 0, 0)));
    }

    ug_cycle_at(15, utc(2025, 6, 20, 0, 0, 0), &cy);
    ug_cycle_at(15, utc(2025, 7, 20, 0, 0, 0), &other);
    ck_assert_int_ne(cy.id, other.id);

    /* what ug_cycle_at never makes */
    ck_assert_int_eq(ug_cycle_from_id(-1, &cy), -1);
    ck_assert_int_eq(ug_cycle_from_id(INT32_MIN, &cy), -1);
    ck_assert_int_eq(ug_cycle_from_id(0x40000000, &cy), -1);
    ck_assert_int_eq(ug_cycle_from_id(0x40000001, &cy), -1);
    ck_assert_int_eq(ug_cycle_from_id(0x40000000 | (24300 << 5) | 1, &cy),
                     -1);
}
END_TEST


/*
 * Cycles asked for in turn, again and again, and cycles that share their
 * month or their anchor day with the one before: each is the same as on
 * its own (a worker keeps the last cycle it worked out).
 */
START_TEST(test_cycles_in_turn)
{
    static const int  ask[][3] = {          /* year, month, anchor */
        { 2024, 2, 31 }, { 2024, 2, 1 }, { 2024, 2, 31 }, { 2024, 2, 31 },
        { 2024, 3, 31 }, { 2024, 2, 15 }, { 2100, 2, 30 }, { 2024, 2, 1 },
        { 2025, 12, 15 }, { 2026, 1, 15 }, { 2025, 12, 15 }, { 2000, 2, 30 },
        { 2025, 12, 1 }, { 2024, 3, 31 }, { 2024, 2, 31 }, { 2000, 1, 30 }
    };

    int         i, k, y, m, a, ny, nm, d, nd;
    int32_t     id;
    int64_t     start, end;
    ug_cycle_t  cy;

    for (k = 0; k < 3; k++) {
        for (i = 0; i < (int) (sizeof(ask) / sizeof(ask[0])); i++) {
            y = ask[i][0];
            m = ask[i][1];
            a = ask[i][2];
            ny = m == 12 ? y + 1 : y;
            nm = m == 12 ? 1 : m + 1;

            /* the anchor day clamped to each month's length, from libc */
            d = (int) ((utc(ny, nm, 1, 0, 0, 0) - utc(y, m, 1, 0, 0, 0))
                       / 86400);
            nd = (int) ((utc(nm == 12 ? ny + 1 : ny, nm == 12 ? 1 : nm + 1,
                             1, 0, 0, 0)
                         - utc(ny, nm, 1, 0, 0, 0)) / 86400);
            start = utc(y, m, a < d ? a : d, 0, 0, 0);
            end = utc(ny, nm, a < nd ? a : nd, 0, 0, 0);

            ug_cycle_at(a, start + 3600, &cy);
            ck_assert_int_eq(cy.start, start);
            ck_assert_int_eq(cy.end, end);
            ck_assert_int_eq(cy.anchor, a);
            id = cy.id;

            memset(&cy, 0, sizeof(cy));
            ck_assert_int_eq(ug_cycle_from_id(id, &cy), 0);
            ck_assert_int_eq(cy.start, start);
            ck_assert_int_eq(cy.end, end);
            ck_assert_int_eq(cy.anchor, a);
            ck_assert_int_eq(cy.id, id);

            ck_assert_int_eq(ug_cycle_roll(id, a, end - 1, &cy), 0);
            ck_assert_int_eq(cy.start, start);
        }
    }
}
END_TEST


START_TEST(test_roll)
{
    ug_cycle_t  cy;
    int32_t     jan31;

    /* a calendar counter in its month stays */
    ck_assert_int_eq(ug_cycle_roll(ug_month_index(utc(2025, 5, 1, 0, 0, 0)),
                                   0, utc(2025, 5, 31, 23, 59, 59), &cy),
                     0);
    ck_assert_int_eq(cy.end, utc(2025, 6, 1, 0, 0, 0));

    /* and rolls at the 1st */
    ck_assert_int_eq(ug_cycle_roll(ug_month_index(utc(2025, 5, 1, 0, 0, 0)),
                                   0, utc(2025, 6, 1, 0, 0, 0), &cy),
                     1);
    ck_assert_int_eq(cy.id, ug_month_index(utc(2025, 6, 1, 0, 0, 0)));

    /* an anchor set mid-month takes effect when the month ends */
    ck_assert_int_eq(ug_cycle_roll(ug_month_index(utc(2025, 5, 1, 0, 0, 0)),
                                   15, utc(2025, 5, 20, 0, 0, 0), &cy),
                     0);
    ck_assert_int_eq(cy.anchor, 1);
    ck_assert_int_eq(ug_cycle_roll(ug_month_index(utc(2025, 5, 1, 0, 0, 0)),
                                   15, utc(2025, 6, 1, 0, 0, 0), &cy),
                     1);
    ck_assert_int_eq(cy.anchor, 15);
    ck_assert_int_eq(cy.start, utc(2025, 5, 15, 0, 0, 0));
    ck_assert_int_eq(cy.end, utc(2025, 6, 15, 0, 0, 0));

    /* a changed anchor: the stored cycle (31 Jan - 29 Feb) runs out */
    ug_cycle_at(31, utc(2024, 2, 1, 0, 0, 0), &cy);
    jan31 = cy.id;

    ck_assert_int_eq(ug_cycle_roll(jan31, 5, utc(2024, 2, 28, 23, 59, 59),
                                   &cy), 0);
    ck_assert_int_eq(cy.id, jan31);
    ck_assert_int_eq(cy.end, utc(2024, 2, 29, 0, 0, 0));

    ck_assert_int_eq(ug_cycle_roll(jan31, 5, utc(2024, 2, 29, 0, 0, 0),
                                   &cy), 1);
    ck_assert_int_eq(cy.anchor, 5);
    ck_assert_int_eq(cy.end, utc(2024, 3, 5, 0, 0, 0));

    /* a request without the anchor does not end an anchored cycle */
    ck_assert_int_eq(ug_cycle_roll(jan31, 0, utc(2024, 2, 15, 0, 0, 0),
                                   &cy), 0);
    ck_assert_int_eq(cy.id, jan31);

    /* a clock that went back, garbage, a zeroed counter: a new cycle */
    ck_assert_int_eq(ug_cycle_roll(jan31, 31, utc(2024, 1, 30, 23, 59, 59),
                                   &cy), 1);
    ck_assert_int_eq(cy.start, utc(2023, 12, 31, 0, 0, 0));
    ck_assert_int_eq(ug_cycle_roll(-12345, 31, utc(2024, 2, 15, 0, 0, 0),
                                   &cy), 1);
    ck_assert_int_eq(cy.id, jan31);
    ck_assert_int_eq(ug_cycle_roll(0, 0, utc(2024, 2, 15, 0, 0, 0), &cy), 1);
    ck_assert_int_eq(cy.id, ug_month_index(utc(2024, 2, 15, 0, 0, 0)));

    /* live: what eviction and a state file load keep */
    ck_assert_int_eq(ug_cycle_live(jan31, utc(2024, 1, 31, 0, 0, 0)), 1);
    ck_assert_int_eq(ug_cycle_live(jan31, utc(2024, 2, 28, 23, 59, 59)), 1);
    ck_assert_int_eq(ug_cycle_live(jan31, utc(2024, 2, 29, 0, 0, 0)), 0);
    ck_assert_int_eq(ug_cycle_live(jan31, utc(2024, 1, 30, 23, 59, 59)), 0);
    ck_assert_int_eq(ug_cycle_live(ug_month_index(utc(2024, 2, 1, 0, 0, 0)),
                                   utc(2024, 2, 29, 23, 59, 59)), 1);
    ck_assert_int_eq(ug_cycle_live(ug_month_index(utc(2024, 2, 1, 0, 0, 0)),
                                   utc(2024, 3, 1, 0, 0, 0)), 0);
    ck_assert_int_eq(ug_cycle_live(-1, 0), 0);
    ck_assert_int_eq(ug_cycle_live(0x40000000, 0), 0);
}
END_TEST


static Suite *
cycle_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("ug_cycle");
    tc = tcase_create("core");
    tcase_set_timeout(tc, 120);

    tcase_add_test(tc, test_parse_bare_day);
    tcase_add_test(tc, test_parse_dates);
    tcase_add_test(tc, test_parse_bounds);
    tcase_add_test(tc, test_parse_random_vs_libc);
    tcase_add_test(tc, test_parse_random_bytes);
    tcase_add_test(tc, test_known_cycles);
    tcase_add_test(tc, test_every_anchor_every_month);
    tcase_add_test(tc, test_calendar_unchanged);
    tcase_add_test(tc, test_identities);
    tcase_add_test(tc, test_roll);
    tcase_add_test(tc, test_cycles_in_turn);

    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    return ug_check_run(cycle_suite());
}
