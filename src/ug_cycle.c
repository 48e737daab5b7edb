#include "ug_cycle.h"
#include "ug_time.h"


#define UG_CYCLE_ANCHORED    0x40000000
#define UG_CYCLE_MONTH_BITS  0x01ffffff
#define UG_DAY_SEC           86400


static int
ug_digits(const char *p, size_t n, int *out)
{
    size_t  i;
    int     v;

    v = 0;

    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }

        v = v * 10 + (p[i] - '0');
    }

    *out = v;

    return 0;
}


/* "HH:MM" with each field checked against its maximum. */
static int
ug_hh_mm(const char *p, int max_h, int *h, int *m)
{
    if (ug_digits(p, 2, h) != 0 || p[2] != ':'
        || ug_digits(p + 3, 2, m) != 0)
    {
        return UG_ANCHOR_SYNTAX;
    }

    return (*h > max_h || *m > 59) ? UG_ANCHOR_DATE : UG_ANCHOR_OK;
}


int
ug_anchor_parse(const char *p, size_t len, int *day)
{
    int      year, month, mday, h, mi, s, oh, om, sign, rc, m;
    int64_t  t, y;
    size_t   i;

    if (len == 0) {
        *day = 0;
        return UG_ANCHOR_OK;
    }

    if (len > UG_ANCHOR_MAX_LEN) {
        return UG_ANCHOR_TOO_LONG;
    }

    if (len <= 2) {
        if (ug_digits(p, len, &mday) != 0) {
            return UG_ANCHOR_SYNTAX;
        }

        if (mday < 1 || mday > 28) {
            return UG_ANCHOR_DAY;
        }

        *day = mday;
        return UG_ANCHOR_OK;
    }

    /* full-date = date-fullyear "-" date-month "-" date-mday */

    if (len < 10 || ug_digits(p, 4, &year) != 0 || p[4] != '-'
        || ug_digits(p + 5, 2, &month) != 0 || p[7] != '-'
        || ug_digits(p + 8, 2, &mday) != 0)
    {
        return UG_ANCHOR_SYNTAX;
    }

    if (len > 10 && p[10] != 'T' && p[10] != 't') {
        return UG_ANCHOR_SYNTAX;
    }

    if (month < 1 || month > 12 || mday < 1
        || mday > ug_days_in_month(year, month))
    {
        return UG_ANCHOR_DATE;
    }

    if (len == 10) {
        *day = mday;
        return UG_ANCHOR_OK;
    }

    /* "T" partial-time time-offset */

    if (len < 20) {
        return UG_ANCHOR_SYNTAX;
    }

    rc = ug_hh_mm(p + 11, 23, &h, &mi);
    if (rc != UG_ANCHOR_OK) {
        return rc;
    }

    if (p[16] != ':' || ug_digits(p + 17, 2, &s) != 0) {
        return UG_ANCHOR_SYNTAX;
    }

    /* 60 is a leap second, still in the same minute of the same day */
    if (s > 60) {
        return UG_ANCHOR_DATE;
    }

    i = 19;

    if (p[i] == '.') {
        for (i++; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
            /* the fraction cannot change the day */
        }

        if (i == 20) {
            return UG_ANCHOR_SYNTAX;
        }
    }

    if (i == len) {
        return UG_ANCHOR_SYNTAX;
    }

    oh = 0;
    om = 0;
    sign = 0;

    if (p[i] == 'Z' || p[i] == 'z') {
        i++;

    } else if (p[i] == '+' || p[i] == '-') {
        sign = p[i] == '+' ? 1 : -1;

        if (len - i != 6) {
            return UG_ANCHOR_SYNTAX;
        }

        rc = ug_hh_mm(p + i + 1, 23, &oh, &om);
        if (rc != UG_ANCHOR_OK) {
            return rc;
        }

        i += 6;

    } else {
        return UG_ANCHOR_SYNTAX;
    }

    if (i != len) {
        return UG_ANCHOR_SYNTAX;
    }

    /* the subscription started on this UTC day */

    t = ug_days_from_civil(year, month, mday) * UG_DAY_SEC
        + h * 3600 + mi * 60 + (s == 60 ? 59 : s)
        - sign * (oh * 3600 + om * 60);

    ug_civil_from_days(ug_floor_div(t, UG_DAY_SEC), &y, &m, &mday);

    *day = mday;

    return UG_ANCHOR_OK;
}


const char *
ug_anchor_strerror(int rc)
{
    switch (rc) {
    case UG_ANCHOR_OK:
        return "ok";
    case UG_ANCHOR_TOO_LONG:
        return "the cycle anchor is longer than 64 bytes";
    case UG_ANCHOR_SYNTAX:
        return "the cycle anchor is neither a day of the month (1 to 28) "
               "nor an RFC 3339 date such as 2025-01-31 or "
               "2025-01-31T09:30:00Z";
    case UG_ANCHOR_DAY:
        return "a cycle anchor day is 1 to 28; give the subscription's "
               "date for the 29th to the 31st";
    default:
        return "the cycle anchor's date is out of range";
    }
}


/* 00:00:00 UTC on the anchor day of a month index, clamped to its end. */
static int64_t
ug_anchor_day_start(int32_t month_index, int anchor)
{
    int64_t  year;
    int      month, d;

    year = ug_floor_div(month_index, 12);
    month = (int) (month_index - year * 12) + 1;
    d = ug_days_in_month(year, month);

    if (anchor < d) {
        d = anchor;
    }

    return ug_days_from_civil(year, month, d) * UG_DAY_SEC;
}


static void
ug_cycle_fill(int32_t month_index, int anchor, ug_cycle_t *cy)
{
    /* the last cycle filled in this thread: every request of a month
     * asks for the same one, and its first and next days cost a few
     * hundred instructions; anchor 0 (never valid) is no entry */
    static __thread ug_cycle_t  last;

    if (last.month == month_index && last.anchor == anchor) {
        *cy = last;
        return;
    }

    cy->anchor = anchor;
    cy->month = month_index;
    cy->start = ug_anchor_day_start(month_index, anchor);
    cy->end = ug_anchor_day_start(month_index + 1, anchor);
    cy->id = anchor == 1
             ? month_index
             : (int32_t) (UG_CYCLE_ANCHORED
                          | ((uint32_t) (month_index & UG_CYCLE_MONTH_BITS)
                             << 5)
                          | (uint32_t) anchor);

    last = *cy;
}


void
ug_cycle_at(int anchor, int64_t now_s, ug_cycle_t *cy)
{
    int32_t  month;

    if (anchor < 1 || anchor > 31) {
        anchor = 1;
    }

    month = ug_month_index(now_s);

    if (now_s < ug_anchor_day_start(month, anchor)) {
        month--;
    }

    ug_cycle_fill(month, anchor, cy);
}


int
ug_cycle_from_id(int32_t id, ug_cycle_t *cy)
{
    int  anchor;

    if (id < 0) {
        return -1;
    }

    if (!(id & UG_CYCLE_ANCHORED)) {
        ug_cycle_fill(id, 1, cy);
        return 0;
    }

    anchor = id & 31;

    if (anchor < 2) {
        return -1;
    }

    ug_cycle_fill((id >> 5) & UG_CYCLE_MONTH_BITS, anchor, cy);

    return 0;
}


int
ug_cycle_roll(int32_t stored, int anchor, int64_t now_s, ug_cycle_t *cy)
{
    if (ug_cycle_from_id(stored, cy) == 0
        && cy->start <= now_s && now_s < cy->end)
    {
        return 0;
    }

    ug_cycle_at(anchor, now_s, cy);

    return 1;
}


int
ug_cycle_live(int32_t stored, int64_t now_s)
{
    ug_cycle_t  cy;

    return ug_cycle_from_id(stored, &cy) == 0
           && cy.start <= now_s && now_s < cy.end;
}


size_t
ug_cycle_key(const ug_cycle_t *cy, char *buf)
{
    return ug_month_key(cy->month, buf);
}
