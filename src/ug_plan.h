/*
 * The plan table: each plan's monthly quota, overage band and per-minute
 * cap.
 */

#ifndef UG_PLAN_H
#define UG_PLAN_H

#include <stdint.h>
#include <stddef.h>

#define UG_PLAN_NAME_MAX  32
#define UG_PLANS_MAX      32

/* A limit of UG_OFF means "no limit". */
#define UG_OFF            (-1)

/* Largest limit accepted in configuration: keeps every sum in range. */
#define UG_LIMIT_MAX      1000000000000LL


typedef struct {
    int64_t   month;       /* allowed units per calendar month, or UG_OFF */
    int64_t   minute;      /* burst and refill per 60 s, or UG_OFF */
} ug_limits_t;


typedef struct {
    char         name[UG_PLAN_NAME_MAX + 1];    /* lower case */
    size_t       len;
    ug_limits_t  limits;
    int64_t      overage;   /* units past limits.month still allowed
                               (billed as overage): 0, N, or UG_OFF for
                               unlimited */
} ug_plan_t;


typedef struct {
    ug_plan_t    plans[UG_PLANS_MAX];
    unsigned     n;
} ug_plan_table_t;


enum {
    UG_PLAN_OK = 0,
    UG_PLAN_BAD_NAME = -1,      /* empty, too long, or not [a-z0-9_-] */
    UG_PLAN_DUPLICATE = -2,
    UG_PLAN_TOO_MANY = -3,
    UG_PLAN_OVERAGE = -4        /* an overage band without month=N */
};


/* Adds a plan; returns its index or a negative UG_PLAN_* code. */
int ug_plan_add(ug_plan_table_t *t, const char *name, size_t len,
    const ug_limits_t *limits);

/* ug_plan_add with an overage band (0: none, UG_OFF: unlimited). */
int ug_plan_add_overage(ug_plan_table_t *t, const char *name, size_t len,
    const ug_limits_t *limits, int64_t overage);

/* The seed's table: free 20/30, pro off/120, team off/300, enterprise
 * off/600. */
void ug_plan_table_default(ug_plan_table_t *t);

/* Case-insensitive lookup; returns the index or -1. */
int ug_plan_find(const ug_plan_table_t *t, const char *name, size_t len);

/*
 * Parses "N" or "off" into *out.  N is a decimal 0..UG_LIMIT_MAX with no
 * sign or spaces.  Returns 0 or -1.
 */
int ug_parse_limit(const char *p, size_t len, int64_t *out);

/*
 * Parses an overage band, "N" (as ug_parse_limit) or "unlimited" (into
 * UG_OFF).  "off" is refused: it would read as both "no band" and "no
 * limit".  Returns 0 or -1.
 */
int ug_parse_overage(const char *p, size_t len, int64_t *out);

/* Returns a static message saying why ug_plan_add failed. */
const char *ug_plan_strerror(int rc);

#endif /* UG_PLAN_H */
