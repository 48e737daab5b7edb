/*
 * The arithmetic of an owner's claims and pending units (ug_claim.h).
 */

#include "ug_claim.h"
#include "ug_time.h"


int64_t
ug_claim_roll(ug_claim_t *c, int32_t month, int64_t *backlog)
{
    int64_t  lost, left;

    if (c->month >= month) {
        return 0;
    }

    lost = 0;
    left = c->pending - (int64_t) c->claimed;

    /* usage covered by unused claims is in the store already */
    if (c->pending > 0) {
        *backlog -= (uint64_t) c->pending < (uint64_t) c->claimed
                    ? c->pending : (int64_t) c->claimed;
    }

    if (left != 0) {
        if (c->old_pending != 0 && c->old_month != c->month) {
            lost = c->old_pending;

            if (lost > 0) {
                *backlog -= lost;
            }

            c->old_pending = 0;
        }

        c->old_month = c->month;
        c->old_pending += left;
    }

    c->month = month;
    c->base = 0;
    c->pending = 0;
    c->claimed = 0;
    c->block = 0;
    c->at_limit_until = 0;
    c->flags &= (uint16_t) ~(UG_CLAIM_BASE | UG_CLAIM_USED);

    return lost;
}


int64_t
ug_claim_add(ug_claim_t *c, int32_t month, int64_t units, int fresh,
    int64_t *backlog, int *queue)
{
    int64_t  lost;

    *queue = 0;

    if (units == 0) {
        return 0;
    }

    lost = 0;

    if (c->month == 0) {
        c->month = month;
    }

    if (month > c->month) {
        lost = ug_claim_roll(c, month, backlog);
    }

    if (month == c->month) {
        c->pending += units;

    } else if (c->old_pending == 0 || c->old_month == month) {
        c->old_month = month;
        c->old_pending += units;

    } else {
        /* a third month: no slot left */
        if (!fresh && units > 0) {
            *backlog -= units;
        }

        return lost + units;
    }

    if (fresh && units > 0) {
        *backlog += units;
    }

    *queue = 1;

    return lost;
}


uint64_t
ug_claim_block(const ug_claim_t *c, int64_t limit, uint64_t more)
{
    uint64_t  left, extra;

    if (!(c->flags & UG_CLAIM_BASE)) {
        return 0;
    }

    left = (uint64_t) limit > c->base + more
           ? (uint64_t) limit - c->base - more : 0;

    extra = c->block ? 2 * (uint64_t) c->block : 1;

    if (extra > left / 4) {
        extra = left / 4;
    }

    if (extra > UG_CLAIM_BLOCK_MAX) {
        extra = UG_CLAIM_BLOCK_MAX;
    }

    return extra;
}


uint64_t
ug_claim_use(ug_claim_t *c, int64_t limit, uint64_t cost)
{
    uint64_t  extra;

    c->claimed -= (uint32_t) cost;
    c->flags |= UG_CLAIM_USED;

    /* half of the last claim used: the next one, ahead */
    if (c->claimed >= c->block / 2 + cost || (c->flags & UG_CLAIM_CLAIMING)) {
        return 0;
    }

    extra = ug_claim_block(c, limit, 0);

    if (extra) {
        c->flags |= UG_CLAIM_CLAIMING;
    }

    return extra;
}


uint64_t
ug_claim_carried(ug_claim_t *c, int64_t limit, uint64_t cost)
{
    uint64_t  taken;

    taken = 0;

    if (c->pending > 0
        && cost + (uint64_t) c->pending <= (uint64_t) limit)
    {
        taken = (uint64_t) c->pending;
    }

    c->pending -= (int64_t) taken;

    return taken;
}


uint64_t
ug_claim_start(ug_claim_t *c, int64_t limit, uint64_t more)
{
    uint64_t  extra;

    if (c->flags & UG_CLAIM_CLAIMING) {
        return 0;
    }

    extra = ug_claim_block(c, limit, more);

    if (extra) {
        c->flags |= UG_CLAIM_CLAIMING;
    }

    return extra;
}


void
ug_claim_unclaim(ug_claim_t *c, uint64_t extra, int refused)
{
    c->flags &= (uint16_t) ~UG_CLAIM_CLAIMING;

    if (refused) {
        c->block = (uint32_t) (extra / 4);
    }
}


void
ug_claim_answered(ug_claim_t *c, uint64_t count, uint64_t extra, int *queue)
{
    c->base = count;
    c->flags |= UG_CLAIM_BASE;
    c->at_limit_until = 0;
    *queue = 0;

    if (extra) {
        /* the claim is this node's to use; the sync gives back what is
         * left of it */
        c->claimed += (uint32_t) extra;
        c->block = (uint32_t) extra;
        c->flags |= UG_CLAIM_USED;
        *queue = 1;
    }
}


void
ug_claim_refused(ug_claim_t *c, int64_t now_s, int64_t hold)
{
    int64_t  until, end;

    until = now_s + hold;
    end = ug_month_start(c->month + 1);

    c->at_limit_until = (uint32_t) (until < end ? until : end);
}


int
ug_claim_at_limit(ug_claim_t *c, int64_t now_s)
{
    if (c->at_limit_until == 0) {
        return 0;
    }

    if (now_s < (int64_t) c->at_limit_until) {
        return 1;
    }

    c->at_limit_until = 0;

    return 0;
}


void
ug_claim_admin(ug_claim_t *c, int32_t month, uint64_t month_used, int set,
    int64_t *backlog)
{
    int64_t  base;

    if (c->month == 0) {
        c->month = month;
    }

    if (set) {
        if (c->pending > 0) {
            *backlog -= c->pending;
        }

        c->pending = 0;
        c->claimed = 0;
    }

    base = (int64_t) month_used - c->pending + (int64_t) c->claimed;

    c->base = base > 0 ? (uint64_t) base : 0;
    c->flags |= UG_CLAIM_BASE;
    c->at_limit_until = 0;
}


uint64_t
ug_claim_refund(ug_claim_t *c, int32_t month, uint64_t units,
    int64_t *backlog, int *queue)
{
    int64_t  unwritten;

    *queue = 0;

    if (units == 0 || month == 0 || month != c->month
        || units > (uint64_t) INT32_MAX)
    {
        return 0;
    }

    if (c->claimed > 0 && units <= UINT32_MAX - c->claimed) {
        c->claimed += (uint32_t) units;
        *queue = 1;
        return units;
    }

    unwritten = c->pending > 0 ? c->pending : 0;

    if (unwritten > (int64_t) units) {
        unwritten = (int64_t) units;
    }

    *backlog -= unwritten;
    c->pending -= (int64_t) units;
    *queue = 1;

    return units;
}


int64_t
ug_claim_flush(ug_claim_t *c, int final, int32_t *month, int64_t *backlog)
{
    int64_t  delta;

    if (c->old_pending) {
        *month = c->old_month;
        delta = c->old_pending;
        c->old_pending = 0;

    } else if ((c->flags & UG_CLAIM_USED) && !final) {
        c->flags &= (uint16_t) ~UG_CLAIM_USED;
        *month = c->month;
        delta = c->pending;
        c->pending = 0;

    } else {
        /* the units covered by claims are in the store already */
        *month = c->month;
        delta = c->pending - (int64_t) c->claimed;

        if (c->pending > 0) {
            *backlog -= (uint64_t) c->pending < (uint64_t) c->claimed
                        ? c->pending : (int64_t) c->claimed;
        }

        c->pending = 0;
        c->claimed = 0;
    }

    return delta;
}


int
ug_claim_flushed(ug_claim_t *c)
{
    if (c->pending == 0 && c->old_pending == 0 && c->claimed == 0) {
        c->flags &= (uint16_t) ~UG_CLAIM_DIRTY;
        return 1;
    }

    return 0;
}


int64_t
ug_claim_used(const ug_claim_t *c, int32_t month)
{
    int64_t  used;

    if (month != c->month) {
        return -1;
    }

    used = (int64_t) c->base - (int64_t) c->claimed + c->pending;

    return used > 0 ? used : 0;
}


int
ug_claim_keep(const ug_claim_t *c)
{
    return (c->flags & (UG_CLAIM_DIRTY | UG_CLAIM_CLAIMING)) ? 1 : 0;
}


void
ug_claim_carry(const ug_claim_t *c, int32_t month, ug_claim_carry_t *carry)
{
    int64_t  left;

    /* a restart forgets claims: what it must write is the usage less the
     * claims not used (the state follows the counter's month, both roll
     * together; anything else is the old slot's) */
    left = c->pending - (int64_t) c->claimed;

    carry->unsynced = 0;
    carry->synced_base = 0;
    carry->old_unsynced = 0;
    carry->old_month = 0;

    if (c->month == month) {
        carry->unsynced = left;
        carry->synced_base = (c->flags & UG_CLAIM_BASE) ? c->base : 0;

    } else if (left) {
        carry->old_unsynced = left;
        carry->old_month = c->month;
    }

    if (c->old_pending) {
        if (carry->old_unsynced == 0) {
            carry->old_unsynced = c->old_pending;
            carry->old_month = c->old_month;

        } else if (carry->old_month == c->old_month) {
            carry->old_unsynced += c->old_pending;
        }
    }
}


int64_t
ug_claim_unseen(uint64_t month_used, const ug_claim_carry_t *carry)
{
    int64_t  known, used;

    /* both are bounded far below 2^63 by the state file's reader */
    if (month_used > (uint64_t) INT64_MAX
        || carry->synced_base > (uint64_t) INT64_MAX)
    {
        return 0;
    }

    used = (int64_t) month_used;
    known = (int64_t) carry->synced_base;

    /* give-backs still to be written (negative) lowered month_used, which
     * never goes below zero: they are left out rather than taken for
     * usage the store has not seen */
    if (carry->unsynced > 0) {
        if (known > INT64_MAX - carry->unsynced) {
            return 0;
        }

        known += carry->unsynced;
    }

    return used > known ? used - known : 0;
}
