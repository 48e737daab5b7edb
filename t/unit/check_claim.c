/*
 * ug_claim: block sizing, the zone's view of usage, give-back of unused
 * claims across a month roll, the two month slots, the backlog, eviction
 * and what the state file keeps.
 */

#include <check.h>
#include <stdint.h>
#include <string.h>

#include "ug_claim.h"
#include "ug_time.h"


#define SEP  (2025 * 12 + 8)
#define OCT  (SEP + 1)
#define NOV  (SEP + 2)


static ug_claim_t
known(uint64_t base, uint32_t block)
{
    ug_claim_t  c;

    memset(&c, 0, sizeof(c));
    c.month = SEP;
    c.base = base;
    c.block = block;
    c.flags = UG_CLAIM_BASE;

    return c;
}


START_TEST(block_waits_for_the_store_count)
{
    ug_claim_t  c;

    c = known(0, 0);
    c.flags = 0;

    ck_assert_uint_eq(ug_claim_block(&c, 1000000, 0), 0);
}
END_TEST


START_TEST(block_starts_at_one_and_doubles)
{
    ug_claim_t  c;

    c = known(0, 0);
    ck_assert_uint_eq(ug_claim_block(&c, 1000000, 0), 1);

    c.block = 1;
    ck_assert_uint_eq(ug_claim_block(&c, 1000000, 0), 2);

    c.block = 300;
    ck_assert_uint_eq(ug_claim_block(&c, 1000000, 0), 600);
}
END_TEST


START_TEST(block_stops_at_the_maximum)
{
    ug_claim_t  c;

    c = known(0, 512);
    ck_assert_uint_eq(ug_claim_block(&c, 1000000, 0), UG_CLAIM_BLOCK_MAX);

    c.block = 4000;
    ck_assert_uint_eq(ug_claim_block(&c, 1000000, 0), UG_CLAIM_BLOCK_MAX);
}
END_TEST


START_TEST(block_is_a_quarter_of_what_is_left)
{
    ug_claim_t  c;

    /* 100 left after the base: at most 25 */
    c = known(900, 512);
    ck_assert_uint_eq(ug_claim_block(&c, 1000, 0), 25);

    /* the units the write adds for itself count as used */
    ck_assert_uint_eq(ug_claim_block(&c, 1000, 20), 20);
}
END_TEST


START_TEST(block_is_strict_near_the_limit)
{
    ug_claim_t  c;

    /* fewer than 4 left: no claim, every request writes */
    c = known(997, 8);
    ck_assert_uint_eq(ug_claim_block(&c, 1000, 0), 0);

    c = known(1000, 8);
    ck_assert_uint_eq(ug_claim_block(&c, 1000, 0), 0);

    /* past the limit (another node, an admin change): no claim either */
    c = known(1200, 8);
    ck_assert_uint_eq(ug_claim_block(&c, 1000, 5), 0);
}
END_TEST


START_TEST(used_is_base_less_claimed_plus_pending)
{
    ug_claim_t  c;

    c = known(100, 0);
    c.claimed = 16;
    c.pending = 5;

    ck_assert_int_eq(ug_claim_used(&c, SEP), 89);
}
END_TEST


START_TEST(used_is_never_negative)
{
    ug_claim_t  c;

    /* claims given back whose write failed: pending < 0 */
    c = known(3, 0);
    c.pending = -10;

    ck_assert_int_eq(ug_claim_used(&c, SEP), 0);
}
END_TEST


START_TEST(used_is_for_the_state_month_only)
{
    ug_claim_t  c;

    c = known(100, 0);

    ck_assert_int_eq(ug_claim_used(&c, OCT), -1);
}
END_TEST


START_TEST(add_fresh_usage_grows_the_backlog)
{
    int         queue;
    int64_t     backlog, lost;
    ug_claim_t  c;

    memset(&c, 0, sizeof(c));
    backlog = 0;

    lost = ug_claim_add(&c, SEP, 3, 1, &backlog, &queue);

    ck_assert_int_eq(lost, 0);
    ck_assert_int_eq(c.month, SEP);
    ck_assert_int_eq(c.pending, 3);
    ck_assert_int_eq(backlog, 3);
    ck_assert_int_eq(queue, 1);
}
END_TEST


START_TEST(add_returned_units_leave_the_backlog_alone)
{
    int         queue;
    int64_t     backlog;
    ug_claim_t  c;

    c = known(10, 0);
    backlog = 0;

    /* a failed write gives its units back: they were counted already */
    (void) ug_claim_add(&c, SEP, 4, 0, &backlog, &queue);
    ck_assert_int_eq(c.pending, 4);
    ck_assert_int_eq(backlog, 0);

    /* a give-back of unused claims is negative */
    (void) ug_claim_add(&c, SEP, -6, 0, &backlog, &queue);
    ck_assert_int_eq(c.pending, -2);
    ck_assert_int_eq(backlog, 0);
    ck_assert_int_eq(queue, 1);
}
END_TEST


START_TEST(add_nothing_does_nothing)
{
    int         queue;
    int64_t     backlog;
    ug_claim_t  c, before;

    c = known(10, 4);
    before = c;
    backlog = 0;

    ck_assert_int_eq(ug_claim_add(&c, SEP, 0, 1, &backlog, &queue), 0);
    ck_assert_int_eq(queue, 0);
    ck_assert_int_eq(backlog, 0);
    ck_assert_int_eq(memcmp(&c, &before, sizeof(c)), 0);
}
END_TEST


START_TEST(roll_gives_unused_claims_back)
{
    int64_t     backlog, lost;
    ug_claim_t  c;

    /* 10 used here, of which 6 came out of a 16-unit claim: the store has
     * 16 of them, 4 still to write, 10 claimed and unused to give back */
    c = known(100, 16);
    c.claimed = 10;
    c.pending = 14;
    c.flags |= UG_CLAIM_USED;
    c.at_limit_until = 12345;
    backlog = 0;

    lost = ug_claim_roll(&c, OCT, &backlog);

    ck_assert_int_eq(lost, 0);
    ck_assert_int_eq(c.old_month, SEP);
    ck_assert_int_eq(c.old_pending, 4);
    /* the units covered by claims were in the store already */
    ck_assert_int_eq(backlog, -10);

    ck_assert_int_eq(c.month, OCT);
    ck_assert_uint_eq(c.base, 0);
    ck_assert_int_eq(c.pending, 0);
    ck_assert_uint_eq(c.claimed, 0);
    ck_assert_uint_eq(c.block, 0);
    ck_assert_uint_eq(c.at_limit_until, 0);
    ck_assert_uint_eq(c.flags & (UG_CLAIM_BASE | UG_CLAIM_USED), 0);
}
END_TEST


START_TEST(roll_keeps_a_negative_give_back)
{
    int64_t     backlog;
    ug_claim_t  c;

    /* 8 claimed, none used: the store is to hear of -8 */
    c = known(50, 8);
    c.claimed = 8;
    backlog = 0;

    (void) ug_claim_roll(&c, OCT, &backlog);

    ck_assert_int_eq(c.old_month, SEP);
    ck_assert_int_eq(c.old_pending, -8);
    ck_assert_int_eq(backlog, 0);
}
END_TEST


START_TEST(roll_only_forward)
{
    int64_t     backlog;
    ug_claim_t  c, before;

    c = known(50, 8);
    c.pending = 7;
    before = c;
    backlog = 0;

    ck_assert_int_eq(ug_claim_roll(&c, SEP, &backlog), 0);
    ck_assert_int_eq(ug_claim_roll(&c, SEP - 1, &backlog), 0);
    ck_assert_int_eq(memcmp(&c, &before, sizeof(c)), 0);
    ck_assert_int_eq(backlog, 0);
}
END_TEST


START_TEST(roll_over_a_third_month_loses_the_oldest)
{
    int64_t     backlog, lost;
    ug_claim_t  c;

    /* September still unwritten in the old slot, October's usage in the
     * current one, and now November: September's units cannot stay */
    memset(&c, 0, sizeof(c));
    c.month = OCT;
    c.pending = 5;
    c.old_month = SEP;
    c.old_pending = 7;
    backlog = 12;

    lost = ug_claim_roll(&c, NOV, &backlog);

    ck_assert_int_eq(lost, 7);
    ck_assert_int_eq(backlog, 5);
    ck_assert_int_eq(c.old_month, OCT);
    ck_assert_int_eq(c.old_pending, 5);
    ck_assert_int_eq(c.month, NOV);
}
END_TEST


START_TEST(roll_with_nothing_left_keeps_the_old_slot)
{
    int64_t     backlog;
    ug_claim_t  c;

    memset(&c, 0, sizeof(c));
    c.month = OCT;
    c.old_month = SEP;
    c.old_pending = 7;
    backlog = 7;

    ck_assert_int_eq(ug_claim_roll(&c, NOV, &backlog), 0);
    ck_assert_int_eq(c.old_month, SEP);
    ck_assert_int_eq(c.old_pending, 7);
    ck_assert_int_eq(backlog, 7);
}
END_TEST


START_TEST(add_for_the_month_before_uses_the_old_slot)
{
    int         queue;
    int64_t     backlog, lost;
    ug_claim_t  c;

    c = known(10, 0);
    c.month = OCT;
    backlog = 0;

    /* a failed September write comes back after the roll to October */
    lost = ug_claim_add(&c, SEP, 6, 0, &backlog, &queue);
    ck_assert_int_eq(lost, 0);
    ck_assert_int_eq(c.old_month, SEP);
    ck_assert_int_eq(c.old_pending, 6);
    ck_assert_int_eq(c.pending, 0);
    ck_assert_int_eq(queue, 1);

    /* the same month again adds up */
    (void) ug_claim_add(&c, SEP, 2, 0, &backlog, &queue);
    ck_assert_int_eq(c.old_pending, 8);
}
END_TEST


START_TEST(add_for_a_third_month_is_lost)
{
    int         queue;
    int64_t     backlog, lost;
    ug_claim_t  c;

    memset(&c, 0, sizeof(c));
    c.month = NOV;
    c.old_month = OCT;
    c.old_pending = 3;
    backlog = 3 + 4;

    /* returned units leave the backlog they were counted in */
    lost = ug_claim_add(&c, SEP, 4, 0, &backlog, &queue);
    ck_assert_int_eq(lost, 4);
    ck_assert_int_eq(backlog, 3);
    ck_assert_int_eq(queue, 0);
    ck_assert_int_eq(c.old_pending, 3);

    /* fresh ones never entered it */
    lost = ug_claim_add(&c, SEP, 2, 1, &backlog, &queue);
    ck_assert_int_eq(lost, 2);
    ck_assert_int_eq(backlog, 3);
}
END_TEST


START_TEST(add_for_a_later_month_rolls)
{
    int         queue;
    int64_t     backlog, lost;
    ug_claim_t  c;

    c = known(40, 4);
    c.pending = 9;
    backlog = 9;

    lost = ug_claim_add(&c, OCT, 1, 1, &backlog, &queue);

    ck_assert_int_eq(lost, 0);
    ck_assert_int_eq(c.month, OCT);
    ck_assert_int_eq(c.pending, 1);
    ck_assert_int_eq(c.old_month, SEP);
    ck_assert_int_eq(c.old_pending, 9);
    ck_assert_int_eq(backlog, 10);
}
END_TEST


START_TEST(keep_while_there_is_work)
{
    ug_claim_t  c;

    c = known(40, 4);
    ck_assert_int_eq(ug_claim_keep(&c), 0);

    c.flags |= UG_CLAIM_USED;
    ck_assert_int_eq(ug_claim_keep(&c), 0);

    c.flags |= UG_CLAIM_DIRTY;
    ck_assert_int_eq(ug_claim_keep(&c), 1);

    c.flags = UG_CLAIM_CLAIMING;
    ck_assert_int_eq(ug_claim_keep(&c), 1);
}
END_TEST


START_TEST(carry_forgets_claims)
{
    ug_claim_t        c;
    ug_claim_carry_t  k;

    c = known(100, 16);
    c.claimed = 10;
    c.pending = 14;

    ug_claim_carry(&c, SEP, &k);

    ck_assert_int_eq(k.unsynced, 4);
    ck_assert_uint_eq(k.synced_base, 100);
    ck_assert_int_eq(k.old_unsynced, 0);
    ck_assert_int_eq(k.old_month, 0);
}
END_TEST


START_TEST(carry_without_a_known_base)
{
    ug_claim_t        c;
    ug_claim_carry_t  k;

    c = known(100, 0);
    c.flags = 0;
    c.pending = 3;

    ug_claim_carry(&c, SEP, &k);

    ck_assert_int_eq(k.unsynced, 3);
    ck_assert_uint_eq(k.synced_base, 0);
}
END_TEST


START_TEST(unseen_is_what_no_store_counted)
{
    ug_claim_carry_t  k;

    memset(&k, 0, sizeof(k));

    /* a file written without a store: all of it */
    ck_assert_int_eq(ug_claim_unseen(30, &k), 30);
    ck_assert_int_eq(ug_claim_unseen(0, &k), 0);
}
END_TEST


START_TEST(unseen_is_nothing_for_a_store_zone)
{
    ug_claim_t        c;
    ug_claim_carry_t  k;

    /* what a zone that wrote to the store keeps: its view is the store's
     * count plus what it had not written, less unused claims */
    c = known(100, 16);
    c.claimed = 10;
    c.pending = 14;

    ug_claim_carry(&c, SEP, &k);
    ck_assert_int_eq(ug_claim_unseen((uint64_t) ug_claim_used(&c, SEP), &k),
                     0);

    /* a give-back still to be written never reads as usage */
    c = known(0, 0);
    c.pending = -3;

    ug_claim_carry(&c, SEP, &k);
    ck_assert_int_eq(ug_claim_unseen((uint64_t) ug_claim_used(&c, SEP), &k),
                     0);
}
END_TEST


START_TEST(unseen_adds_to_what_the_store_knew)
{
    ug_claim_carry_t  k;

    memset(&k, 0, sizeof(k));
    k.synced_base = 20;
    k.unsynced = 5;

    ck_assert_int_eq(ug_claim_unseen(31, &k), 6);
    ck_assert_int_eq(ug_claim_unseen(25, &k), 0);
    ck_assert_int_eq(ug_claim_unseen(10, &k), 0);

    k.synced_base = UINT64_MAX;
    ck_assert_int_eq(ug_claim_unseen(31, &k), 0);
}
END_TEST


START_TEST(carry_of_a_state_behind_the_counter)
{
    ug_claim_t        c;
    ug_claim_carry_t  k;

    /* the counter is at October, the state still at September: all of it
     * is the month before's */
    c = known(100, 0);
    c.pending = 5;
    c.claimed = 2;

    ug_claim_carry(&c, OCT, &k);

    ck_assert_int_eq(k.unsynced, 0);
    ck_assert_uint_eq(k.synced_base, 0);
    ck_assert_int_eq(k.old_unsynced, 3);
    ck_assert_int_eq(k.old_month, SEP);
}
END_TEST


START_TEST(carry_of_both_slots)
{
    ug_claim_t        c;
    ug_claim_carry_t  k;

    memset(&c, 0, sizeof(c));
    c.month = OCT;
    c.pending = 2;
    c.old_month = SEP;
    c.old_pending = 6;

    ug_claim_carry(&c, OCT, &k);
    ck_assert_int_eq(k.unsynced, 2);
    ck_assert_int_eq(k.old_unsynced, 6);
    ck_assert_int_eq(k.old_month, SEP);

    /* state and old slot for the same month (counter ahead): added up */
    c.month = SEP;
    c.pending = 2;
    ug_claim_carry(&c, OCT, &k);
    ck_assert_int_eq(k.old_unsynced, 8);
    ck_assert_int_eq(k.old_month, SEP);

    /* two different past months: the state's month wins the one slot */
    c.old_month = SEP - 1;
    ug_claim_carry(&c, OCT, &k);
    ck_assert_int_eq(k.old_unsynced, 2);
    ck_assert_int_eq(k.old_month, SEP);
}
END_TEST


START_TEST(use_takes_from_the_claims)
{
    ug_claim_t  c;

    c = known(100, 16);
    c.claimed = 16;

    /* plenty left of the claim: no new one yet */
    ck_assert_uint_eq(ug_claim_use(&c, 100000, 1), 0);
    ck_assert_uint_eq(c.claimed, 15);
    ck_assert(c.flags & UG_CLAIM_USED);
    ck_assert(!(c.flags & UG_CLAIM_CLAIMING));
}
END_TEST


START_TEST(use_claims_ahead_at_half)
{
    ug_claim_t  c;

    /* 8 of 16 left after this one: below half plus the cost, so the next
     * claim (twice the last) goes out now */
    c = known(100, 16);
    c.claimed = 9;

    ck_assert_uint_eq(ug_claim_use(&c, 100000, 1), 32);
    ck_assert_uint_eq(c.claimed, 8);
    ck_assert(c.flags & UG_CLAIM_CLAIMING);

    /* one claim in flight at a time */
    ck_assert_uint_eq(ug_claim_use(&c, 100000, 1), 0);
    ck_assert_uint_eq(c.claimed, 7);
}
END_TEST


START_TEST(use_near_the_limit_claims_nothing)
{
    ug_claim_t  c;

    c = known(998, 16);
    c.claimed = 2;

    ck_assert_uint_eq(ug_claim_use(&c, 1000, 1), 0);
    ck_assert(!(c.flags & UG_CLAIM_CLAIMING));
}
END_TEST


START_TEST(carried_pending_goes_with_the_write)
{
    ug_claim_t  c;

    c = known(10, 0);
    c.pending = 5;

    ck_assert_uint_eq(ug_claim_carried(&c, 100, 1), 5);
    ck_assert_int_eq(c.pending, 0);
}
END_TEST


START_TEST(carried_only_if_all_fits_the_limit)
{
    ug_claim_t  c;

    /* 5 pending + 1 for the request > a limit of 5: carried by the sync */
    c = known(0, 0);
    c.pending = 5;
    ck_assert_uint_eq(ug_claim_carried(&c, 5, 1), 0);
    ck_assert_int_eq(c.pending, 5);

    /* a negative pending (a failed give-back) is never carried */
    c.pending = -3;
    ck_assert_uint_eq(ug_claim_carried(&c, 100, 1), 0);
    ck_assert_int_eq(c.pending, -3);
}
END_TEST


START_TEST(refund_of_unwritten_usage)
{
    int         queue;
    int64_t     backlog;
    ug_claim_t  c;

    /* async: 3 units allowed here, not yet written; 1 comes back */
    c = known(10, 0);
    backlog = 0;
    ck_assert_int_eq(ug_claim_add(&c, SEP, 3, 1, &backlog, &queue), 0);
    ck_assert_int_eq(backlog, 3);

    ck_assert_uint_eq(ug_claim_refund(&c, SEP, 1, &backlog, &queue), 1);
    ck_assert_int_eq(queue, 1);
    ck_assert_int_eq(c.pending, 2);
    ck_assert_int_eq(backlog, 2);
    ck_assert_int_eq(ug_claim_used(&c, SEP), 12);
}
END_TEST


START_TEST(refund_of_written_usage_is_a_negative_add)
{
    int         queue;
    int32_t     month;
    int64_t     backlog;
    ug_claim_t  c;

    /* strict: the table counted 10, this request's unit included */
    c = known(10, 0);
    backlog = 0;

    ck_assert_uint_eq(ug_claim_refund(&c, SEP, 1, &backlog, &queue), 1);
    ck_assert_int_eq(queue, 1);
    ck_assert_int_eq(c.pending, -1);
    ck_assert_int_eq(backlog, 0);
    ck_assert_int_eq(ug_claim_used(&c, SEP), 9);

    /* the sync writes it as ADD -1 */
    ck_assert_int_eq(ug_claim_flush(&c, 0, &month, &backlog), -1);
    ck_assert_int_eq(month, SEP);
    ck_assert_int_eq(backlog, 0);

    /* part unwritten, part written: only the unwritten leave the
     * backlog */
    c = known(10, 0);
    backlog = 0;
    (void) ug_claim_add(&c, SEP, 1, 1, &backlog, &queue);
    ck_assert_uint_eq(ug_claim_refund(&c, SEP, 3, &backlog, &queue), 3);
    ck_assert_int_eq(c.pending, -2);
    ck_assert_int_eq(backlog, 0);
    ck_assert_int_eq(ug_claim_used(&c, SEP), 8);
}
END_TEST


START_TEST(refund_goes_back_to_the_claim)
{
    int         queue;
    int32_t     month;
    int64_t     backlog;
    ug_claim_t  c;

    /* auto: 8 claimed, 2 of them used; one comes back to the claim */
    c = known(20, 8);
    c.claimed = 8;
    backlog = 0;
    (void) ug_claim_use(&c, 1000, 2);
    ck_assert_int_eq(ug_claim_used(&c, SEP), 14);

    ck_assert_uint_eq(ug_claim_refund(&c, SEP, 1, &backlog, &queue), 1);
    ck_assert_uint_eq(c.claimed, 7);
    ck_assert_int_eq(c.pending, 0);
    ck_assert_int_eq(ug_claim_used(&c, SEP), 13);

    /* the final flush gives back all that is unused: the store counts
     * 20 - 7 = 13, the one used unit */
    ck_assert_int_eq(ug_claim_flush(&c, 1, &month, &backlog), -7);
}
END_TEST


START_TEST(refund_of_a_closed_month_is_nothing)
{
    int         queue;
    int64_t     backlog;
    ug_claim_t  c;

    c = known(10, 0);
    backlog = 0;

    ck_assert_uint_eq(ug_claim_refund(&c, OCT, 1, &backlog, &queue), 0);
    ck_assert_uint_eq(ug_claim_refund(&c, SEP - 1, 1, &backlog, &queue), 0);
    ck_assert_uint_eq(ug_claim_refund(&c, SEP, 0, &backlog, &queue), 0);
    ck_assert_int_eq(queue, 0);
    ck_assert_int_eq(c.pending, 0);
    ck_assert_int_eq(ug_claim_used(&c, SEP), 10);
}
END_TEST


START_TEST(start_one_claim_at_a_time)
{
    ug_claim_t  c;

    c = known(0, 4);

    /* the write's own units count against what is left */
    ck_assert_uint_eq(ug_claim_start(&c, 40, 8), 8);
    ck_assert(c.flags & UG_CLAIM_CLAIMING);
    ck_assert_uint_eq(ug_claim_start(&c, 40, 8), 0);

    c = known(0, 4);
    c.flags = 0;
    ck_assert_uint_eq(ug_claim_start(&c, 40, 8), 0);
    ck_assert(!(c.flags & UG_CLAIM_CLAIMING));
}
END_TEST


START_TEST(unclaim_shrinks_after_a_refusal)
{
    ug_claim_t  c;

    c = known(0, 64);
    c.flags |= UG_CLAIM_CLAIMING;

    ug_claim_unclaim(&c, 64, 0);
    ck_assert(!(c.flags & UG_CLAIM_CLAIMING));
    ck_assert_uint_eq(c.block, 64);

    c.flags |= UG_CLAIM_CLAIMING;
    ug_claim_unclaim(&c, 64, 1);
    ck_assert(!(c.flags & UG_CLAIM_CLAIMING));
    ck_assert_uint_eq(c.block, 16);
}
END_TEST


START_TEST(answered_sets_the_base_and_the_claim)
{
    int         queue;
    ug_claim_t  c;

    memset(&c, 0, sizeof(c));
    c.month = SEP;
    c.claimed = 3;
    c.at_limit_until = 99;

    ug_claim_answered(&c, 500, 0, &queue);
    ck_assert_uint_eq(c.base, 500);
    ck_assert(c.flags & UG_CLAIM_BASE);
    ck_assert_uint_eq(c.at_limit_until, 0);
    ck_assert_uint_eq(c.claimed, 3);
    ck_assert_int_eq(queue, 0);

    ug_claim_answered(&c, 532, 32, &queue);
    ck_assert_uint_eq(c.base, 532);
    ck_assert_uint_eq(c.claimed, 35);
    ck_assert_uint_eq(c.block, 32);
    ck_assert(c.flags & UG_CLAIM_USED);
    ck_assert_int_eq(queue, 1);

    /* the zone's view: the claimed units are not used yet */
    ck_assert_int_eq(ug_claim_used(&c, SEP), 497);
}
END_TEST


START_TEST(refusal_holds_for_a_while)
{
    int64_t     t0;
    ug_claim_t  c;

    c = known(1000, 0);
    t0 = ug_month_start(SEP) + 86400;

    ug_claim_refused(&c, t0, 60);
    ck_assert_int_eq(ug_claim_at_limit(&c, t0), 1);
    ck_assert_int_eq(ug_claim_at_limit(&c, t0 + 59), 1);

    /* it passes, and is cleared */
    ck_assert_int_eq(ug_claim_at_limit(&c, t0 + 60), 0);
    ck_assert_uint_eq(c.at_limit_until, 0);
    ck_assert_int_eq(ug_claim_at_limit(&c, t0), 0);
}
END_TEST


START_TEST(refusal_ends_with_the_month)
{
    int64_t     end;
    ug_claim_t  c;

    c = known(1000, 0);
    end = ug_month_start(OCT);

    ug_claim_refused(&c, end - 10, 60);
    ck_assert_int_eq((int64_t) c.at_limit_until, end);
    ck_assert_int_eq(ug_claim_at_limit(&c, end - 1), 1);
    ck_assert_int_eq(ug_claim_at_limit(&c, end), 0);
}
END_TEST


START_TEST(admin_set_replaces_pending_and_claims)
{
    int64_t     backlog;
    ug_claim_t  c;

    c = known(100, 16);
    c.pending = 7;
    c.claimed = 5;
    c.at_limit_until = 99;
    backlog = 0;

    ug_claim_admin(&c, SEP, 40, 1, &backlog);

    ck_assert_int_eq(backlog, -7);
    ck_assert_int_eq(c.pending, 0);
    ck_assert_uint_eq(c.claimed, 0);
    ck_assert_uint_eq(c.base, 40);
    ck_assert_uint_eq(c.at_limit_until, 0);
    ck_assert_int_eq(ug_claim_used(&c, SEP), 40);
}
END_TEST


START_TEST(admin_adjust_keeps_pending_and_claims)
{
    int64_t     backlog;
    ug_claim_t  c;

    /* the zone's count after the change is 50, of which 7 are not yet
     * written; 5 claimed units are not used */
    c = known(100, 16);
    c.pending = 7;
    c.claimed = 5;
    backlog = 0;

    ug_claim_admin(&c, SEP, 50, 0, &backlog);

    ck_assert_int_eq(backlog, 0);
    ck_assert_int_eq(c.pending, 7);
    ck_assert_uint_eq(c.claimed, 5);
    ck_assert_uint_eq(c.base, 48);
    ck_assert_int_eq(ug_claim_used(&c, SEP), 50);
}
END_TEST


START_TEST(admin_base_never_negative)
{
    int64_t     backlog;
    ug_claim_t  c;

    memset(&c, 0, sizeof(c));
    c.pending = 9;
    backlog = 0;

    ug_claim_admin(&c, SEP, 0, 0, &backlog);

    ck_assert_int_eq(c.month, SEP);
    ck_assert_uint_eq(c.base, 0);
    ck_assert(c.flags & UG_CLAIM_BASE);
}
END_TEST


START_TEST(flush_the_month_before_first)
{
    int32_t     month;
    int64_t     backlog, delta;
    ug_claim_t  c;

    c = known(10, 0);
    c.month = OCT;
    c.pending = 2;
    c.old_month = SEP;
    c.old_pending = 6;
    c.flags |= UG_CLAIM_DIRTY;
    backlog = 0;

    delta = ug_claim_flush(&c, 0, &month, &backlog);
    ck_assert_int_eq(delta, 6);
    ck_assert_int_eq(month, SEP);
    ck_assert_int_eq(c.old_pending, 0);
    ck_assert_int_eq(c.pending, 2);
    ck_assert_int_eq(ug_claim_flushed(&c), 0);
    ck_assert(c.flags & UG_CLAIM_DIRTY);

    delta = ug_claim_flush(&c, 0, &month, &backlog);
    ck_assert_int_eq(delta, 2);
    ck_assert_int_eq(month, OCT);
    ck_assert_int_eq(ug_claim_flushed(&c), 1);
    ck_assert(!(c.flags & UG_CLAIM_DIRTY));
    ck_assert_int_eq(backlog, 0);
}
END_TEST


START_TEST(flush_keeps_claims_in_use)
{
    int32_t     month;
    int64_t     backlog, delta;
    ug_claim_t  c;

    /* claims used lately stay for the next round; usage is written */
    c = known(10, 16);
    c.pending = 4;
    c.claimed = 10;
    c.flags |= UG_CLAIM_USED | UG_CLAIM_DIRTY;
    backlog = 0;

    delta = ug_claim_flush(&c, 0, &month, &backlog);
    ck_assert_int_eq(delta, 4);
    ck_assert_int_eq(month, SEP);
    ck_assert_uint_eq(c.claimed, 10);
    ck_assert(!(c.flags & UG_CLAIM_USED));
    ck_assert_int_eq(ug_claim_flushed(&c), 0);

    /* a round that finds them idle gives them back */
    delta = ug_claim_flush(&c, 0, &month, &backlog);
    ck_assert_int_eq(delta, -10);
    ck_assert_uint_eq(c.claimed, 0);
    ck_assert_int_eq(ug_claim_flushed(&c), 1);
}
END_TEST


START_TEST(flush_gives_back_when_final)
{
    int32_t     month;
    int64_t     backlog, delta;
    ug_claim_t  c;

    /* on exit claims in use go back too: usage 14, 10 of it from claims
     * already in the store, 6 claimed and unused */
    c = known(10, 16);
    c.pending = 14;
    c.claimed = 6;
    c.flags |= UG_CLAIM_USED;
    backlog = 0;

    delta = ug_claim_flush(&c, 1, &month, &backlog);
    ck_assert_int_eq(delta, 8);
    ck_assert_int_eq(backlog, -6);
    ck_assert_int_eq(c.pending, 0);
    ck_assert_uint_eq(c.claimed, 0);
}
END_TEST


static Suite *
claim_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("claim");

    tc = tcase_create("block");
    tcase_add_test(tc, block_waits_for_the_store_count);
    tcase_add_test(tc, block_starts_at_one_and_doubles);
    tcase_add_test(tc, block_stops_at_the_maximum);
    tcase_add_test(tc, block_is_a_quarter_of_what_is_left);
    tcase_add_test(tc, block_is_strict_near_the_limit);
    suite_add_tcase(s, tc);

    tc = tcase_create("used");
    tcase_add_test(tc, used_is_base_less_claimed_plus_pending);
    tcase_add_test(tc, used_is_never_negative);
    tcase_add_test(tc, used_is_for_the_state_month_only);
    suite_add_tcase(s, tc);

    tc = tcase_create("add");
    tcase_add_test(tc, add_fresh_usage_grows_the_backlog);
    tcase_add_test(tc, add_returned_units_leave_the_backlog_alone);
    tcase_add_test(tc, add_nothing_does_nothing);
    tcase_add_test(tc, add_for_the_month_before_uses_the_old_slot);
    tcase_add_test(tc, add_for_a_third_month_is_lost);
    tcase_add_test(tc, add_for_a_later_month_rolls);
    suite_add_tcase(s, tc);

    tc = tcase_create("roll");
    tcase_add_test(tc, roll_gives_unused_claims_back);
    tcase_add_test(tc, roll_keeps_a_negative_give_back);
    tcase_add_test(tc, roll_only_forward);
    tcase_add_test(tc, roll_over_a_third_month_loses_the_oldest);
    tcase_add_test(tc, roll_with_nothing_left_keeps_the_old_slot);
    suite_add_tcase(s, tc);

    tc = tcase_create("request");
    tcase_add_test(tc, use_takes_from_the_claims);
    tcase_add_test(tc, use_claims_ahead_at_half);
    tcase_add_test(tc, use_near_the_limit_claims_nothing);
    tcase_add_test(tc, carried_pending_goes_with_the_write);
    tcase_add_test(tc, carried_only_if_all_fits_the_limit);
    tcase_add_test(tc, start_one_claim_at_a_time);
    tcase_add_test(tc, unclaim_shrinks_after_a_refusal);
    tcase_add_test(tc, answered_sets_the_base_and_the_claim);
    tcase_add_test(tc, refusal_holds_for_a_while);
    tcase_add_test(tc, refusal_ends_with_the_month);
    tcase_add_test(tc, refund_of_unwritten_usage);
    tcase_add_test(tc, refund_of_written_usage_is_a_negative_add);
    tcase_add_test(tc, refund_goes_back_to_the_claim);
    tcase_add_test(tc, refund_of_a_closed_month_is_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("admin");
    tcase_add_test(tc, admin_set_replaces_pending_and_claims);
    tcase_add_test(tc, admin_adjust_keeps_pending_and_claims);
    tcase_add_test(tc, admin_base_never_negative);
    suite_add_tcase(s, tc);

    tc = tcase_create("flush");
    tcase_add_test(tc, flush_the_month_before_first);
    tcase_add_test(tc, flush_keeps_claims_in_use);
    tcase_add_test(tc, flush_gives_back_when_final);
    suite_add_tcase(s, tc);

    tc = tcase_create("keep");
    tcase_add_test(tc, keep_while_there_is_work);
    tcase_add_test(tc, carry_forgets_claims);
    tcase_add_test(tc, carry_without_a_known_base);
    tcase_add_test(tc, carry_of_a_state_behind_the_counter);
    tcase_add_test(tc, carry_of_both_slots);
    tcase_add_test(tc, unseen_is_what_no_store_counted);
    tcase_add_test(tc, unseen_is_nothing_for_a_store_zone);
    tcase_add_test(tc, unseen_adds_to_what_the_store_knew);
    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    SRunner  *sr;
    int       failed;

    sr = srunner_create(claim_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    return failed != 0;
}
