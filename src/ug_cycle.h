/*
 * Billing cycles (UTC): calendar months, or months anchored on a day of
 * the month, the day a subscription started.  An anchored cycle runs
 * from 00:00:00 UTC on its anchor day to the same day of the next month;
 * in a month too short for the day it ends on the month's last day
 * (anchor 31: 31 January, 29 February 2024, 31 March, 30 April, ...).
 * Anchor 1 is the calendar month.
 */

#ifndef UG_CYCLE_H
#define UG_CYCLE_H

#include <stdint.h>
#include <stddef.h>


/* The longest anchor text looked at: any longer is refused unread. */
#define UG_ANCHOR_MAX_LEN  64


enum {
    UG_ANCHOR_OK = 0,
    UG_ANCHOR_TOO_LONG = -1,     /* more than UG_ANCHOR_MAX_LEN bytes */
    UG_ANCHOR_SYNTAX = -2,       /* neither a day nor an RFC 3339 date */
    UG_ANCHOR_DAY = -3,          /* a bare day outside 1..28 */
    UG_ANCHOR_DATE = -4          /* a field out of range: 2025-02-30 */
};


typedef struct {
    int64_t   start;      /* unix s: 00:00:00 UTC on the first day */
    int64_t   end;        /* unix s: the next cycle's start */
    int32_t   id;         /* the identity ug_counter_t.month stores */
    int32_t   month;      /* ug_month_index of start: the storage key */
    int       anchor;     /* 1..31; 1 is the calendar month */
} ug_cycle_t;


/*
 * Parses an anchor: a bare day of the month "1".."28", or an RFC 3339
 * full-date "2025-01-31" or date-time "2025-01-31T18:30:00+02:00" (the
 * subscription start, whose UTC day of the month is taken, so 29..31
 * are possible).  Empty text is no anchor: *day = 0, calendar months.
 * Returns a UG_ANCHOR_* code; *day is set only on UG_ANCHOR_OK.
 */
int ug_anchor_parse(const char *p, size_t len, int *day);

/* A static message saying why ug_anchor_parse refused the text. */
const char *ug_anchor_strerror(int rc);

/* The cycle holding now_s for an anchor day (0 or 1: calendar months). */
void ug_cycle_at(int anchor, int64_t now_s, ug_cycle_t *cy);

/*
 * The cycle a stored identity stands for; -1 if id is not one that
 * ug_cycle_at makes (garbage from a file, a zeroed counter is year 0).
 * A calendar month's identity is its ug_month_index, as counters have
 * always stored; an anchored cycle's has bit 30 set, its start month in
 * bits 5..29 and its anchor day in bits 0..4.
 */
int ug_cycle_from_id(int32_t id, ug_cycle_t *cy);

/*
 * The cycle in force for a counter storing `stored` when a request with
 * `anchor` comes at now_s: the stored cycle while now_s is inside it,
 * else the anchor's cycle at now_s.  So a changed anchor takes effect
 * when the stored cycle ends (the first cycle under the new anchor may
 * then be shorter than a month), and a clock that went back rolls too.
 * Returns 1 when the caller must start counting from zero, else 0.
 */
int ug_cycle_roll(int32_t stored, int anchor, int64_t now_s,
    ug_cycle_t *cy);

/*
 * 1 when `stored` is a cycle holding now_s: a counter whose count is
 * current billing data (to keep on eviction or when loading a state
 * file), else 0.  Unlike comparing with ug_month_index, this is right
 * for anchored cycles, whose identities are not month indexes.
 */
int ug_cycle_live(int32_t stored, int64_t now_s);

/* "YYYY-MM" of the cycle's start month and a NUL: UG_MONTH_KEY_LEN + 1. */
size_t ug_cycle_key(const ug_cycle_t *cy, char *buf);

#endif /* UG_CYCLE_H */
