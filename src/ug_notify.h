/*
 * Usage threshold notifications, the pure part: the threshold list, which
 * thresholds a decision crossed, the once-per-cycle marks, the JSON body
 * and its signature header (as Stripe signs webhooks).
 */

#ifndef UG_NOTIFY_H
#define UG_NOTIFY_H

#include <stdint.h>
#include <stddef.h>

#include "ug_cycle.h"


#define UG_NOTIFY_MAX        16     /* thresholds in a list: bits of a mark */
#define UG_NOTIFY_PCT_MAX    1000   /* percent: up to 10 x the month */
#define UG_NOTIFY_LIST_MAX   256    /* bytes of list text looked at */


enum {
    UG_NOTIFY_OK = 0,
    UG_NOTIFY_SYNTAX = -1,      /* not N[,N]... with decimal N */
    UG_NOTIFY_RANGE = -2,       /* a percentage outside 1..1000 */
    UG_NOTIFY_TOO_MANY = -3,    /* more than 16 different ones */
    UG_NOTIFY_TOO_LONG = -4     /* more than 256 bytes */
};


/* Percentages of the included month, ascending, each once. */
typedef struct {
    uint16_t   pct[UG_NOTIFY_MAX];
    unsigned   n;
} ug_thresholds_t;


/*
 * What the zone keeps per owner: the thresholds already sent (bit i for
 * pct[i]) in cycle `cycle` (a ug_cycle_t id).  All zero is "none sent".
 */
typedef struct {
    int32_t    cycle;
    uint32_t   sent;
} ug_notify_mark_t;


typedef struct {
    const char        *owner;       /* any bytes: escaped in the body */
    size_t             owner_len;
    const char        *plan;
    size_t             plan_len;
    const ug_cycle_t  *cycle;       /* "cycle": its storage key YYYY-MM */
    uint64_t           used;        /* units used after the decision */
    int64_t            limit;       /* the included month */
    unsigned           threshold;   /* percent */
    int64_t            at;          /* unix s of the decision */
} ug_notify_event_t;


/*
 * Parses "80,100": decimal percentages 1..1000, sorted and deduplicated
 * into th.  Returns a UG_NOTIFY_* code; th is set only on UG_NOTIFY_OK.
 */
int ug_thresholds_parse(const char *p, size_t len, ug_thresholds_t *th);

/* A static message saying why ug_thresholds_parse refused the list. */
const char *ug_thresholds_strerror(int rc);

/*
 * The thresholds a decision crossed: bit i is set when used went from
 * below pct[i] % of limit (rounded up to a whole unit) to at or above it.
 * 0 when limit is not positive (no monthly quota to be a percentage of).
 */
uint32_t ug_thresholds_crossed(const ug_thresholds_t *th, uint64_t before,
    uint64_t after, int64_t limit);

/*
 * The crossed thresholds not yet sent in `cycle`, marked as sent: a new
 * cycle clears the marks first.  The caller sends one notification per
 * returned bit (under the zone's lock, so that only one worker does).
 */
uint32_t ug_notify_claim(ug_notify_mark_t *m, int32_t cycle,
    uint32_t crossed);

/* Test-and-set of one threshold in `cycle`: 1 if the caller is the first
 * to claim it, 0 if it was already sent. */
int ug_notify_test_and_set(ug_notify_mark_t *m, int32_t cycle, unsigned i);

/* Bytes enough for ug_notify_body of this event. */
size_t ug_notify_body_size(const ug_notify_event_t *ev);

/*
 * {"owner":..,"plan":..,"cycle":"YYYY-MM","used":N,"limit":N,
 *  "threshold":N,"at":"YYYY-MM-DDTHH:MM:SSZ"}, compact, no NUL.  Returns
 * its length, or 0 if size is too small.
 */
size_t ug_notify_body(char *buf, size_t size, const ug_notify_event_t *ev);

/* "t=" 20 digits at most ",v1=" 64 hex digits, and a NUL. */
#define UG_NOTIFY_SIG_MAX    (2 + 20 + 4 + 64)

/*
 * The signature header value "t=<unix>,v1=<hex HMAC-SHA256 of
 * "<unix>.<body>" keyed with secret>", as Stripe's Stripe-Signature:
 * a receiver recomputes it and refuses an old t to stop replays.  out
 * holds UG_NOTIFY_SIG_MAX + 1 bytes.  Returns the length, or 0 if
 * OpenSSL failed.
 */
size_t ug_notify_sign(const unsigned char *secret, size_t secret_len,
    int64_t t, const char *body, size_t body_len, char *out);

#endif /* UG_NOTIFY_H */
