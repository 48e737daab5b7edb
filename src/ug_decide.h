/*
 * The gate's decision for one owner: a GCRA per-minute cap, then the
 * calendar-month quota.  Pure arithmetic on a counter the caller keeps
 * (in the shared zone, under its lock).
 */

#ifndef UG_DECIDE_H
#define UG_DECIDE_H

#include <stdint.h>

#include "ug_plan.h"


/* What the zone stores for an owner.  Plan-independent. */
typedef struct {
    uint64_t   month_used;    /* units allowed in month `month` */
    uint64_t   tat_us;        /* GCRA theoretical arrival time, unix us */
    int32_t    month;         /* ug_month_index of month_used */
    uint32_t   minute;        /* unix minute of minute_used */
    uint32_t   minute_used;   /* units allowed in that calendar minute */
} ug_counter_t;


typedef enum {
    UG_ALLOWED = 0,
    UG_QUOTA,                 /* monthly quota reached: "upgrade" */
    UG_RATE                   /* per-minute cap reached: "slow down" */
} ug_verdict_t;


typedef struct {
    ug_verdict_t  verdict;
    uint64_t      month_used;       /* after the decision */
    uint64_t      month_remaining;  /* with a monthly limit */
    uint64_t      month_reset;      /* s until 00:00 UTC on the 1st */
    uint64_t      minute_used;      /* calls this calendar minute */
    uint64_t      minute_remaining; /* with a cap: units available now */
    uint64_t      minute_reset;     /* with a cap: s until fully refilled */
    uint64_t      retry_after;      /* s, when denied; at least 1 */
} ug_decision_t;


/*
 * Decides one request of `cost` units at now_us (unix microseconds) and,
 * when allowed, counts it.  Counters from a past month or minute start
 * again from zero.  A denied request changes nothing but expired state.
 */
void ug_decide(ug_counter_t *c, const ug_limits_t *limits, uint64_t cost,
    uint64_t now_us, ug_decision_t *d);

/*
 * The per-minute half of ug_decide, for a request whose monthly quota is
 * decided elsewhere (a DynamoDB conditional write): on UG_RATE nothing
 * changes; else the cap's units are taken (GCRA and minute_used) and
 * verdict is UG_ALLOWED, with month_used untouched.  d reports the
 * counter after the change.
 */
void ug_take_minute(ug_counter_t *c, const ug_limits_t *limits,
    uint64_t cost, uint64_t now_us, ug_decision_t *d);

/*
 * Gives back what ug_take_minute took when the request is not allowed
 * after all (402 from the table, or an error): the GCRA's time moves back
 * by cost intervals and minute_used down by cost if still in the same
 * calendar minute.
 */
void ug_give_minute(ug_counter_t *c, const ug_limits_t *limits,
    uint64_t cost, uint64_t now_us);

/*
 * Fills d as ug_decide would report the counter now, without counting:
 * for reads (admin, headers) that must not change usage.
 */
void ug_peek(const ug_counter_t *c, const ug_limits_t *limits,
    uint64_t now_us, ug_decision_t *d);

#endif /* UG_DECIDE_H */
