/*
 * An owner's state against a shared store that counts the fleet's usage
 * (DynamoDB): the arithmetic of claims, pending units and the month roll,
 * on plain integers.  The caller holds whatever lock guards the state and
 * does the I/O; nothing here allocates, blocks or logs.
 *
 * The owner's month_used in the zone is base - claimed + pending: the
 * store's count at its last answer, less the units claimed ahead of use
 * and not yet used, plus the units used here and not yet written.
 */

#ifndef UG_CLAIM_H
#define UG_CLAIM_H

#include <stdint.h>

/* the largest block a write claims ahead of use */
#define UG_CLAIM_BLOCK_MAX   1024

/* flags */
#define UG_CLAIM_BASE        0x01   /* base is the store's */
#define UG_CLAIM_CLAIMING    0x02   /* a claim in flight */
#define UG_CLAIM_DIRTY       0x04   /* in the sync queue */
#define UG_CLAIM_USED        0x08   /* claims used lately */


/*
 * 48 bytes, kept in shared memory after the owner's name.  pending may be
 * negative: claims given back whose write failed.
 */
typedef struct {
    uint64_t   base;
    int64_t    pending;          /* for month */
    int64_t    old_pending;      /* for old_month */
    int32_t    month;            /* 0: not yet set */
    int32_t    old_month;
    uint32_t   claimed;
    uint32_t   block;            /* the last claim */
    uint32_t   at_limit_until;   /* unix s; 0 */
    uint16_t   flags;
    uint16_t   back;             /* the caller's; left alone here */
} ug_claim_t;


/* What the state file keeps for an owner (a restart forgets claims). */
typedef struct {
    int64_t    unsynced;         /* for the counter's month */
    uint64_t   synced_base;      /* the store's count, 0 if unknown */
    int64_t    old_unsynced;     /* for old_month */
    int32_t    old_month;
} ug_claim_carry_t;


/*
 * The state moves to a later month (nothing happens for the same or an
 * earlier one).  What was still to be written for the month it leaves
 * (usage, less the claims not used) moves to the old slot; if that slot
 * holds a third month's, those units are lost and returned.  *backlog
 * gets the change of the units waiting to be written.
 */
int64_t ug_claim_roll(ug_claim_t *c, int32_t month, int64_t *backlog);

/*
 * Units to add to the store for a month at the next sync.  Fresh units
 * are new usage (the backlog grows); others come back from a write that
 * failed; negative ones are claims to give back.  Returns the units that
 * could not be kept (a third month, or a roll's); *queue is set to 1
 * when the owner is to be put into the sync queue (the caller does that
 * and sets UG_CLAIM_DIRTY).
 */
int64_t ug_claim_add(ug_claim_t *c, int32_t month, int64_t units, int fresh,
    int64_t *backlog, int *queue);

/*
 * The block a conditional write claims ahead of use, beyond `more` units
 * it adds for itself: double the last one (1 at first), at most a quarter
 * of what the limit leaves and UG_CLAIM_BLOCK_MAX.  0 until the store's
 * count is known.
 */
uint64_t ug_claim_block(const ug_claim_t *c, int64_t limit, uint64_t more);

/* The owner's month_used for `month`; -1 if the state is for another. */
int64_t ug_claim_used(const ug_claim_t *c, int32_t month);

/* 1 if the owner must stay in the zone: units to write, claims to give
 * back, or a claim in flight. */
int ug_claim_keep(const ug_claim_t *c);

/*
 * A request takes `cost` units out of this node's claims (the caller has
 * checked claimed >= cost and that the minute allows it).  Then, once
 * half of the last claim is used, the next one is asked for ahead of
 * need: its size is returned (0: none) and UG_CLAIM_CLAIMING is set until
 * ug_claim_answered() or ug_claim_unclaim().
 */
uint64_t ug_claim_use(ug_claim_t *c, int64_t limit, uint64_t cost);

/*
 * A conditional write for `cost` units: the pending units (allowed here
 * before, not yet written) it carries under the same ceiling, taken out
 * of pending and returned; 0 if they and the request would not fit.
 */
uint64_t ug_claim_carried(ug_claim_t *c, int64_t limit, uint64_t cost);

/*
 * The claim a write of `more` units adds, one at a time per owner: its
 * size (0: none), with UG_CLAIM_CLAIMING set when there is one.
 */
uint64_t ug_claim_start(ug_claim_t *c, int64_t limit, uint64_t more);

/*
 * A claim of `extra` units that was not granted: no longer in flight; a
 * refusal (the owner near its limit) makes the next block a quarter.
 */
void ug_claim_unclaim(ug_claim_t *c, uint64_t extra, int refused);

/*
 * The store accepted a write for the state's month and counts `count`:
 * the new base, and the claimed `extra` units are this node's to use
 * (*queue: the sync is to give back what is left of them).
 */
void ug_claim_answered(ug_claim_t *c, uint64_t count, uint64_t extra,
    int *queue);

/*
 * The store refused a write (the owner is at its limit): requests get
 * the limit's answer without a write until `hold` seconds from now_s have
 * passed, or the month ends.
 */
void ug_claim_refused(ug_claim_t *c, int64_t now_s, int64_t hold);

/* 1 while a refusal holds at now_s; once it has passed, it is cleared. */
int ug_claim_at_limit(ug_claim_t *c, int64_t now_s);

/*
 * The admin API set the owner's count for the state's month to
 * month_used: by a SET (reset, PUT: the units not yet written and this
 * node's claims are part of what it replaces; *backlog gets the change)
 * or by an adjustment.  The base follows, never below zero.
 */
void ug_claim_admin(ug_claim_t *c, int32_t month, uint64_t month_used,
    int set, int64_t *backlog);

/*
 * `units` counted for `month` are given back: a call that failed on our
 * side.  When this node holds claims they go back to them (they are in
 * the store already, and the sync gives back what stays unused); else
 * pending goes down by them, below zero when they were written already,
 * which the sync writes as a negative ADD.  Either way the store ends
 * without them.  *backlog loses those of them not yet written.  Returns
 * the units given back: 0 for another month than the state's (that
 * month's count is closed).  *queue as for ug_claim_add.
 */
uint64_t ug_claim_refund(ug_claim_t *c, int32_t month, uint64_t units,
    int64_t *backlog, int *queue);

/*
 * The sync takes what to write for the owner: the month before first (it
 * is complete), then this month's usage less the unused claims, which it
 * gives back, unless claims are in use and not `final` (they stay for
 * the next round, and go back once a round finds them idle).  Returns
 * the units to add for *month (negative: a give-back); *backlog gets the
 * change.
 */
int64_t ug_claim_flush(ug_claim_t *c, int final, int32_t *month,
    int64_t *backlog);

/* After a flush: 1 if nothing is left to write (UG_CLAIM_DIRTY is then
 * cleared and the owner leaves the sync queue). */
int ug_claim_flushed(ug_claim_t *c);

/* What the state file keeps, for an owner whose counter is at `month`. */
void ug_claim_carry(const ug_claim_t *c, int32_t month,
    ug_claim_carry_t *carry);

/*
 * Of a loaded count (month_used, with what the file kept for the store),
 * the units the store has never seen: counted while no store was
 * configured for the zone.  A zone that wrote to the store counts its last
 * count plus what it had not written yet (ug_claim_carry), so this is 0
 * for its files; never negative.
 */
int64_t ug_claim_unseen(uint64_t month_used, const ug_claim_carry_t *carry);

#endif /* UG_CLAIM_H */
