/*
 * The gate's decision for one owner: a GCRA per-minute cap, then the
 * quota of the billing cycle (a calendar month, or a month anchored on
 * the subscription's day) with an optional overage band.  Pure
 * arithmetic on a counter the caller keeps (in the shared zone, under
 * its lock).
 */

#ifndef UG_DECIDE_H
#define UG_DECIDE_H

#include <stdint.h>

#include "ug_cycle.h"
#include "ug_plan.h"


/* What the zone stores for an owner.  Plan-independent. */
typedef struct {
    uint64_t   month_used;    /* units allowed in cycle `month` */
    uint64_t   tat_us;        /* GCRA theoretical arrival time, unix us */
    int32_t    month;         /* ug_cycle_t.id of month_used: for a
                                 calendar month its ug_month_index */
    uint32_t   minute;        /* unix minute of minute_used */
    uint32_t   minute_used;   /* units allowed in that calendar minute */
} ug_counter_t;


/*
 * A request's billing terms beyond its plan's limits.  All zero is what
 * ug_decide has always done: calendar months, no overage.
 */
typedef struct {
    int64_t    overage;       /* units allowed past limits->month: 0, N,
                                 or UG_OFF for no hard limit at all */
    int        anchor;        /* cycle anchor day 1..31; 0: calendar */
} ug_terms_t;


typedef enum {
    UG_ALLOWED = 0,
    UG_QUOTA,                 /* monthly quota reached: "upgrade" */
    UG_RATE                   /* per-minute cap reached: "slow down" */
} ug_verdict_t;


typedef struct {
    ug_verdict_t  verdict;
    uint64_t      month_used;       /* after the decision */
    int64_t       month_limit;      /* the hard limit: included month +
                                       overage band, or UG_OFF */
    uint64_t      month_remaining;  /* month_limit - month_used, or 0 */
    uint64_t      month_reset;      /* s until the cycle ends */
    uint64_t      overage;          /* units used past the included
                                       month (billed as overage) */
    ug_cycle_t    cycle;            /* the cycle counted in */
    uint64_t      minute_used;      /* calls this calendar minute */
    uint64_t      minute_fill;      /* with a cap: units held in the
                                       bucket (cap - available), <= cap;
                                       without: minute_used */
    uint64_t      minute_remaining; /* with a cap: units available now */
    uint64_t      minute_reset;     /* with a cap: s until fully refilled */
    uint64_t      retry_after;      /* s, when denied; at least 1 */
} ug_decision_t;


/*
 * Decides one request of `cost` units at now_us (unix microseconds) and,
 * when allowed, counts it.  Counters from a past cycle or minute start
 * again from zero.  A denied request changes nothing but expired state.
 * Calendar months, no overage: ug_decide_terms with NULL terms.
 */
void ug_decide(ug_counter_t *c, const ug_limits_t *limits, uint64_t cost,
    uint64_t now_us, ug_decision_t *d);

/*
 * ug_decide under billing terms (NULL: calendar months, no overage).
 * The quota is the hard limit, limits->month + terms->overage: a call
 * past limits->month but within the band is allowed and d->overage
 * says by how much the included month is exceeded; past the band it is
 * UG_QUOTA.  d->month_limit and d->month_remaining describe the hard
 * limit, since that is where a client is stopped, so RateLimit headers
 * built from them tell the client when 402s begin; with an unlimited
 * band (or no monthly limit) month_limit is UG_OFF and there is no
 * monthly policy to announce.  The cycle follows terms->anchor; a
 * counter's cycle under another anchor runs to its end first
 * (ug_cycle_roll), so changing an anchor never resets a count early.
 */
void ug_decide_terms(ug_counter_t *c, const ug_limits_t *limits,
    const ug_terms_t *terms, uint64_t cost, uint64_t now_us,
    ug_decision_t *d);

/* The hard monthly limit of limits and terms (NULL: none), or UG_OFF. */
int64_t ug_month_hard_limit(const ug_limits_t *limits,
    const ug_terms_t *terms);

/*
 * The per-minute half of ug_decide, for a request whose monthly quota is
 * decided elsewhere (a DynamoDB conditional write): on UG_RATE nothing
 * changes; else the cap's units are taken (GCRA and minute_used) and
 * verdict is UG_ALLOWED, with month_used untouched.  d reports the
 * counter after the change.
 */
void ug_take_minute(ug_counter_t *c, const ug_limits_t *limits,
    uint64_t cost, uint64_t now_us, ug_decision_t *d);

/* ug_take_minute under billing terms: the cycle rolls by their anchor. */
void ug_take_minute_terms(ug_counter_t *c, const ug_limits_t *limits,
    const ug_terms_t *terms, uint64_t cost, uint64_t now_us,
    ug_decision_t *d);

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

/* ug_peek under billing terms. */
void ug_peek_terms(const ug_counter_t *c, const ug_limits_t *limits,
    const ug_terms_t *terms, uint64_t now_us, ug_decision_t *d);

/*
 * The bucket's fill at now_us: units of the cap held, cap minus the
 * units available now (0..cap); 0 without a cap.
 */
uint64_t ug_minute_fill(const ug_counter_t *c, const ug_limits_t *limits,
    uint64_t now_us);

#endif /* UG_DECIDE_H */
