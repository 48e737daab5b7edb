#include <stddef.h>

#include "ug_decide.h"
#include "ug_time.h"

#define UG_US_PER_SEC     1000000ULL
#define UG_MINUTE_US      (60 * UG_US_PER_SEC)


static const ug_terms_t  ug_no_terms = { 0, 0 };


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


/* Starts a new cycle or minute from zero; cy gets the cycle in force. */
static void
ug_roll(ug_counter_t *c, const ug_terms_t *terms, uint64_t now_us,
    ug_cycle_t *cy)
{
    int64_t   now_s;
    uint32_t  minute;

    now_s = (int64_t) (now_us / UG_US_PER_SEC);

    if (ug_cycle_roll(c->month, terms->anchor, now_s, cy)) {
        c->month = cy->id;
        c->month_used = 0;
    }

    minute = (uint32_t) (now_s / 60);
    if (c->minute != minute) {
        c->minute = minute;
        c->minute_used = 0;
    }
}


int64_t
ug_month_hard_limit(const ug_limits_t *limits, const ug_terms_t *terms)
{
    if (limits->month == UG_OFF) {
        return UG_OFF;
    }

    if (terms == NULL || terms->overage == 0) {
        return limits->month;
    }

    if (terms->overage == UG_OFF) {
        return UG_OFF;
    }

    if (terms->overage < 0) {
        return limits->month;
    }

    /* both at most UG_LIMIT_MAX in configuration: the sum fits */
    return limits->month + terms->overage;
}


/*
 * Units held in the bucket, ceil(held / T): the cap minus the units
 * available now, and never above the cap after an allowed request.
 */
uint64_t
ug_minute_fill(const ug_counter_t *c, const ug_limits_t *limits,
    uint64_t now_us)
{
    uint64_t  t, held, fill;

    if (limits->minute == UG_OFF) {
        return 0;
    }

    t = ug_interval(limits->minute);
    held = c->tat_us > now_us ? c->tat_us - now_us : 0;
    fill = held / t + (held % t != 0);

    return fill < (uint64_t) limits->minute ? fill
                                            : (uint64_t) limits->minute;
}


static void
ug_report(const ug_counter_t *c, const ug_limits_t *limits,
    const ug_terms_t *terms, const ug_cycle_t *cy, uint64_t now_us,
    ug_decision_t *d)
{
    int64_t   now_s, hard;
    uint64_t  t, burst, tat, held;

    now_s = (int64_t) (now_us / UG_US_PER_SEC);
    hard = ug_month_hard_limit(limits, terms);

    d->cycle = *cy;
    d->month_used = c->month_used;
    d->month_limit = hard;
    d->month_reset = (uint64_t) (cy->end - now_s);
    d->month_remaining = 0;
    d->overage = 0;

    if (hard != UG_OFF && (uint64_t) hard > c->month_used) {
        d->month_remaining = (uint64_t) hard - c->month_used;
    }

    if (limits->month != UG_OFF && c->month_used > (uint64_t) limits->month)
    {
        d->overage = c->month_used - (uint64_t) limits->month;
    }

    d->minute_used = c->minute_used;
    d->minute_fill = c->minute_used;
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
    d->minute_fill = ug_minute_fill(c, limits, now_us);
}


/*
 * The GCRA check for one request of `cost` units: 0 with *new_tat the
 * arrival time to store when it is allowed, or 1 with d filled as a 429.
 * Changes nothing in c.
 */
static int
ug_minute_check(const ug_counter_t *c, const ug_limits_t *limits,
    const ug_terms_t *terms, const ug_cycle_t *cy, uint64_t cost,
    uint64_t now_us, uint64_t *new_tat, ug_decision_t *d)
{
    uint64_t  t, burst, tat;

    t = ug_interval(limits->minute);
    burst = (uint64_t) limits->minute * t;
    tat = c->tat_us > now_us ? c->tat_us : now_us;
    *new_tat = tat + cost * t;

    if (*new_tat - now_us <= burst) {
        return 0;
    }

    ug_report(c, limits, terms, cy, now_us, d);
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
    ug_decide_terms(c, limits, NULL, cost, now_us, d);
}


void
ug_decide_terms(ug_counter_t *c, const ug_limits_t *limits,
    const ug_terms_t *terms, uint64_t cost, uint64_t now_us,
    ug_decision_t *d)
{
    int64_t     hard;
    uint64_t    new_tat;
    ug_cycle_t  cy;

    if (terms == NULL) {
        terms = &ug_no_terms;
    }

    ug_roll(c, terms, now_us, &cy);

    new_tat = 0;

    if (limits->minute != UG_OFF
        && ug_minute_check(c, limits, terms, &cy, cost, now_us, &new_tat, d))
    {
        return;
    }

    hard = ug_month_hard_limit(limits, terms);

    if (hard != UG_OFF && c->month_used + cost > (uint64_t) hard) {
        ug_report(c, limits, terms, &cy, now_us, d);
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

    ug_report(c, limits, terms, &cy, now_us, d);
    d->verdict = UG_ALLOWED;
    d->retry_after = 0;
}


void
ug_peek(const ug_counter_t *c, const ug_limits_t *limits, uint64_t now_us,
    ug_decision_t *d)
{
    ug_peek_terms(c, limits, NULL, now_us, d);
}


void
ug_peek_terms(const ug_counter_t *c, const ug_limits_t *limits,
    const ug_terms_t *terms, uint64_t now_us, ug_decision_t *d)
{
    ug_counter_t  now;
    ug_cycle_t    cy;

    if (terms == NULL) {
        terms = &ug_no_terms;
    }

    now = *c;
    ug_roll(&now, terms, now_us, &cy);
    ug_report(&now, limits, terms, &cy, now_us, d);
    d->verdict = UG_ALLOWED;
    d->retry_after = 0;
}


void
ug_take_minute(ug_counter_t *c, const ug_limits_t *limits, uint64_t cost,
    uint64_t now_us, ug_decision_t *d)
{
    ug_take_minute_terms(c, limits, NULL, cost, now_us, d);
}


void
ug_take_minute_terms(ug_counter_t *c, const ug_limits_t *limits,
    const ug_terms_t *terms, uint64_t cost, uint64_t now_us,
    ug_decision_t *d)
{
    uint64_t    new_tat;
    ug_cycle_t  cy;

    if (terms == NULL) {
        terms = &ug_no_terms;
    }

    ug_roll(c, terms, now_us, &cy);

    if (limits->minute != UG_OFF) {
        if (ug_minute_check(c, limits, terms, &cy, cost, now_us, &new_tat,
                            d))
        {
            return;
        }

        c->tat_us = new_tat;
    }

    c->minute_used = c->minute_used + cost > UINT32_MAX
                     ? UINT32_MAX : (uint32_t) (c->minute_used + cost);

    ug_report(c, limits, terms, &cy, now_us, d);
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
