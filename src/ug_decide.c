#include "ug_decide.h"
#include "ug_time.h"

#define UG_US_PER_SEC     1000000ULL
#define UG_MINUTE_US      (60 * UG_US_PER_SEC)


static uint64_t
ug_ceil_sec(uint64_t us)
{
    return (us + UG_US_PER_SEC - 1) / UG_US_PER_SEC;
}


/*
 * The GCRA emission interval: one unit every 60 s / cap.  Integer division
 * rounds it down, so the burst tolerance is computed from the same
 * interval (cap * T), which keeps the burst at exactly `cap` units.
 */
static uint64_t
ug_interval(int64_t cap)
{
    uint64_t  t;

    t = cap > 0 ? UG_MINUTE_US / (uint64_t) cap : UG_MINUTE_US;

    return t ? t : 1;
}


static void
ug_roll(ug_counter_t *c, uint64_t now_us)
{
    int64_t   now_s;
    int32_t   month;
    uint32_t  minute;

    now_s = (int64_t) (now_us / UG_US_PER_SEC);

    month = ug_month_index(now_s);
    if (c->month != month) {
        c->month = month;
        c->month_used = 0;
    }

    minute = (uint32_t) (now_s / 60);
    if (c->minute != minute) {
        c->minute = minute;
        c->minute_used = 0;
    }
}


static void
ug_report(const ug_counter_t *c, const ug_limits_t *limits, uint64_t now_us,
    ug_decision_t *d)
{
    int64_t   now_s;
    uint64_t  t, burst, tat, held;

    now_s = (int64_t) (now_us / UG_US_PER_SEC);

    d->month_used = c->month_used;
    d->month_reset = (uint64_t) ug_month_reset_seconds(now_s);
    d->month_remaining = 0;

    if (limits->month != UG_OFF && (uint64_t) limits->month > c->month_used) {
        d->month_remaining = (uint64_t) limits->month - c->month_used;
    }

    d->minute_used = c->minute_used;
    d->minute_remaining = 0;
    d->minute_reset = 0;

    if (limits->minute == UG_OFF) {
        return;
    }

    t = ug_interval(limits->minute);
    burst = (uint64_t) limits->minute * t;
    tat = c->tat_us > now_us ? c->tat_us : now_us;
    held = tat - now_us;

    d->minute_remaining = held < burst ? (burst - held) / t : 0;
    d->minute_reset = ug_ceil_sec(held);
}


/*
 * The GCRA check for one request of `cost` units: 0 with *new_tat the
 * arrival time to store when it is allowed, or 1 with d filled as a 429.
 * Changes nothing in c.
 */
static int
ug_minute_check(const ug_counter_t *c, const ug_limits_t *limits,
    uint64_t cost, uint64_t now_us, uint64_t *new_tat, ug_decision_t *d)
{
    uint64_t  t, burst, tat;

    t = ug_interval(limits->minute);
    burst = (uint64_t) limits->minute * t;
    tat = c->tat_us > now_us ? c->tat_us : now_us;
    *new_tat = tat + cost * t;

    if (*new_tat - now_us <= burst) {
        return 0;
    }

    ug_report(c, limits, now_us, d);
    d->verdict = UG_RATE;
    d->retry_after = ug_ceil_sec(*new_tat - burst - now_us);

    if (d->retry_after == 0) {
        d->retry_after = 1;
    }

    return 1;
}


void
ug_decide(ug_counter_t *c, const ug_limits_t *limits, uint64_t cost,
    uint64_t now_us, ug_decision_t *d)
{
    uint64_t  new_tat;

    ug_roll(c, now_us);

    new_tat = 0;

    if (limits->minute != UG_OFF
        && ug_minute_check(c, limits, cost, now_us, &new_tat, d))
    {
        return;
    }

    if (limits->month != UG_OFF
        && c->month_used + cost > (uint64_t) limits->month)
    {
        ug_report(c, limits, now_us, d);
        d->verdict = UG_QUOTA;
        d->retry_after = d->month_reset;
        return;
    }

    c->month_used += cost;
    c->minute_used = c->minute_used + cost > UINT32_MAX
                     ? UINT32_MAX : (uint32_t) (c->minute_used + cost);

    if (limits->minute != UG_OFF) {
        c->tat_us = new_tat;
    }

    ug_report(c, limits, now_us, d);
    d->verdict = UG_ALLOWED;
    d->retry_after = 0;
}


void
ug_peek(const ug_counter_t *c, const ug_limits_t *limits, uint64_t now_us,
    ug_decision_t *d)
{
    ug_counter_t  now;

    now = *c;
    ug_roll(&now, now_us);
    ug_report(&now, limits, now_us, d);
    d->verdict = UG_ALLOWED;
    d->retry_after = 0;
}


void
ug_take_minute(ug_counter_t *c, const ug_limits_t *limits, uint64_t cost,
    uint64_t now_us, ug_decision_t *d)
{
    uint64_t  new_tat;

    ug_roll(c, now_us);

    if (limits->minute != UG_OFF) {
        if (ug_minute_check(c, limits, cost, now_us, &new_tat, d)) {
            return;
        }

        c->tat_us = new_tat;
    }

    c->minute_used = c->minute_used + cost > UINT32_MAX
                     ? UINT32_MAX : (uint32_t) (c->minute_used + cost);

    ug_report(c, limits, now_us, d);
    d->verdict = UG_ALLOWED;
    d->retry_after = 0;
}


void
ug_give_minute(ug_counter_t *c, const ug_limits_t *limits, uint64_t cost,
    uint64_t now_us)
{
    uint64_t  back;

    if (limits->minute != UG_OFF) {
        back = cost * ug_interval(limits->minute);
        c->tat_us = c->tat_us > back ? c->tat_us - back : 0;
    }

    /* a new calendar minute has already started from zero */
    if (c->minute == (uint32_t) (now_us / UG_MINUTE_US)) {
        c->minute_used = c->minute_used > cost
                         ? c->minute_used - (uint32_t) cost : 0;
    }
}
