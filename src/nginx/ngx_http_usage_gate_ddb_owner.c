/*
 * An owner's DynamoDB state in the zone, after its name in the node: the
 * month roll, the units to write, the sync queue, eviction and the
 * records the state file and a zone resize carry.  All under the zone
 * lock unless said otherwise.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_ddb_internal.h"
#include "ug_cycle.h"



ngx_int_t
ngx_http_usage_gate_ddb_init_zone(ngx_http_usage_gate_zone_t *zone,
    ngx_log_t *log)
{
    ngx_http_usage_gate_ddb_sh_t  *dsh;

    if (zone->store_conf == NULL) {
        return NGX_OK;
    }

    if (zone->sh->store != NULL) {
        /* a reload kept the zone: its generation moves on only once the
         * reload cannot fail any more (..._ddb_init_module) */
        return NGX_OK;
    }

    dsh = ngx_slab_alloc(zone->shpool, sizeof(ngx_http_usage_gate_ddb_sh_t));
    if (dsh == NULL) {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "usage_gate_zone \"%V\": no room for the DynamoDB "
                      "state", &zone->name);
        return NGX_ERROR;
    }

    ngx_memzero(dsh, sizeof(ngx_http_usage_gate_ddb_sh_t));
    ngx_queue_init(&dsh->dirty);

    zone->sh->store = dsh;

    return NGX_OK;
}


ngx_http_usage_gate_ddb_node_t *
ngx_http_usage_gate_ddb_state(ngx_http_usage_gate_node_t *un)
{
    ngx_http_usage_gate_ddb_node_t  *st;

    st = ngx_http_usage_gate_node_extra(un);
    st->c.back = (uint16_t) ((u_char *) st - (u_char *) un);

    return st;
}


/* Under the lock: the owner's state moves to another month (ug_claim.h). */
int64_t
ngx_http_usage_gate_ddb_roll(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_ddb_node_t *st, int32_t month)
{
    int64_t                        lost, backlog;
    ngx_http_usage_gate_ddb_sh_t  *dsh;

    dsh = zone->sh->store;
    backlog = 0;

    lost = ug_claim_roll(&st->c, month, &backlog);

    dsh->backlog += (ngx_atomic_uint_t) backlog;

    return lost;
}


/*
 * Under the lock: units to add to the table for an owner's month at the
 * next sync (ug_claim.h); the owner joins the sync queue.  Returns the
 * units that could not be kept.
 */
int64_t
ngx_http_usage_gate_ddb_add(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_ddb_node_t *st, int32_t month, int64_t units,
    ngx_uint_t fresh)
{
    int                            queue;
    int64_t                        lost, backlog;
    ngx_http_usage_gate_ddb_sh_t  *dsh;

    dsh = zone->sh->store;
    backlog = 0;

    lost = ug_claim_add(&st->c, month, units, fresh ? 1 : 0, &backlog,
                        &queue);

    dsh->backlog += (ngx_atomic_uint_t) backlog;

    if (queue) {
        ngx_http_usage_gate_ddb_dirty(zone, st);
    }

    return lost;
}


/*
 * Under the lock: the sync is to visit the owner.  And this worker's sync
 * timer is to hold a graceful exit back until it has fired once more
 * (within a second), so that the last round writes this.
 */
void
ngx_http_usage_gate_ddb_dirty(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_ddb_node_t *st)
{
    ngx_http_usage_gate_ddb_sh_t    *dsh;
    ngx_http_usage_gate_ddb_conf_t  *dc;

    dsh = zone->sh->store;
    dc = zone->store_conf;

    dc->sync_event.cancelable = 0;

    if (!(st->c.flags & UG_CLAIM_DIRTY)) {
        st->c.flags |= UG_CLAIM_DIRTY;
        ngx_queue_insert_tail(&dsh->dirty, &st->dirty);
        dsh->dirty_n++;
    }
}


/* Under the lock: the zone's view of the owner's usage this month. */
void
ngx_http_usage_gate_ddb_used(ngx_http_usage_gate_node_t *un,
    ngx_http_usage_gate_ddb_node_t *st)
{
    int64_t  used;

    used = ug_claim_used(&st->c,
                         ngx_http_usage_gate_ddb_month(un->counter.month));

    /* a write to settle counts as the table will once it is settled */
    if (used >= 0 && st->once.seq != 0
        && st->once.month == un->counter.month)
    {
        used += st->once.delta;
        used = used > 0 ? used : 0;
    }

    if (used >= 0) {
        un->counter.month_used = (uint64_t) used;
    }
}


void
ngx_http_usage_gate_ddb_lost(ngx_http_usage_gate_zone_t *zone, u_char *owner,
    size_t len, int64_t units, ngx_log_t *log)
{
    if (units == 0) {
        return;
    }

    ngx_log_error(NGX_LOG_ALERT, log, 0,
                  "usage_gate_dynamodb: zone \"%V\": %L units of owner "
                  "\"%*s\" could not be kept for DynamoDB (unreachable for "
                  "over a month, or the zone is full)", &zone->name, units,
                  len, owner);
}


ngx_uint_t
ngx_http_usage_gate_ddb_keep(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_node_t *un)
{
    ngx_http_usage_gate_ddb_node_t  *st;

    st = ngx_http_usage_gate_node_extra(un);

    return ug_claim_keep(&st->c) || st->once.seq != 0;
}


void
ngx_http_usage_gate_ddb_record(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_node_t *un, ngx_http_usage_gate_record_t *rec)
{
    ug_claim_carry_t                 carry;
    ngx_http_usage_gate_ddb_node_t  *st;

    st = ngx_http_usage_gate_node_extra(un);

    ug_claim_carry(&st->c, ngx_http_usage_gate_ddb_month(un->counter.month),
                   &carry);

    rec->carry.unsynced = carry.unsynced;
    rec->carry.synced_base = carry.synced_base;
    rec->carry.old_unsynced = carry.old_unsynced;
    rec->carry.old_month = carry.old_month;

    ngx_memzero(&rec->carry.write, sizeof(ug_state_write_t));

    if (st->once.seq != 0) {
        rec->carry.write.month = st->once.month;
        rec->carry.write.delta = st->once.delta;
        rec->carry.write.seq = st->once.seq;
        ngx_memcpy(rec->carry.write.writer, st->once.writer,
                   UG_STATE_WRITER_LEN);
    }
}


void
ngx_http_usage_gate_ddb_restore(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_record_t *rec)
{
    int32_t                          month;
    int64_t                          lost, unseen;
    ug_claim_carry_t                 carry;
    ngx_http_usage_gate_node_t      *un;
    ngx_http_usage_gate_ddb_node_t  *st;

    /*
     * A zone that wrote to the table counts the table's last count plus
     * what it had not written yet.  Usage beyond that was counted before
     * DynamoDB was configured for the zone (a state file written without
     * it): the table has never seen it, and it is added there like any
     * unwritten usage, never replaced by the table's count.
     */
    carry.unsynced = rec->carry.unsynced;
    carry.synced_base = rec->carry.synced_base;
    carry.old_unsynced = rec->carry.old_unsynced;
    carry.old_month = rec->carry.old_month;

    /* a write to settle is usage the table may have seen */
    if (rec->carry.write.seq != 0 && rec->carry.write.delta > 0
        && rec->carry.write.month == rec->counter.month)
    {
        carry.unsynced += rec->carry.write.delta;
    }

    unseen = ug_claim_unseen(rec->counter.month_used, &carry);

    rec->carry.unsynced += unseen;

    /*
     * The first configuration of a new binary (USR2): the old master's
     * workers still run over their own zone and write what this file
     * lists as unwritten themselves (their last round, when they are
     * told to quit).  Taken here too it would be counted twice: the
     * file's count is the base until the table answers.
     */
    if (ngx_inherited && ngx_is_init_cycle((ngx_cycle_t *) ngx_cycle)
        && unseen == 0)
    {
        rec->carry.synced_base = rec->counter.month_used;
        rec->carry.unsynced = 0;
        rec->carry.old_unsynced = 0;
    }

    /*
     * A write whose outcome was not known at the stop (or in the zone a
     * resize replaced) is settled here, as it was.  Not by a new binary's
     * first zone: the old workers settle it themselves, as above.
     */
    if (ngx_inherited && ngx_is_init_cycle((ngx_cycle_t *) ngx_cycle)) {
        rec->carry.write.seq = 0;
    }

    if (rec->carry.unsynced == 0 && rec->carry.old_unsynced == 0
        && rec->carry.synced_base == 0 && rec->carry.write.seq == 0)
    {
        return;
    }

    /* the table's month of the counter's cycle: its start month */
    month = ngx_http_usage_gate_ddb_month(rec->counter.month);

    if (month < 0) {
        return;
    }

    lost = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    un = ngx_http_usage_gate_zone_node_locked(zone, rec->owner, rec->len,
                                              ngx_http_usage_gate_now_us(),
                                              0);
    if (un == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return;
    }

    st = ngx_http_usage_gate_ddb_state(un);

    if (rec->carry.old_unsynced) {
        lost += ngx_http_usage_gate_ddb_add(zone, st, rec->carry.old_month,
                                            rec->carry.old_unsynced, 1);
    }

    if (st->c.month < month) {
        lost += ngx_http_usage_gate_ddb_roll(zone, st, month);
    }

    lost += ngx_http_usage_gate_ddb_add(zone, st, month, rec->carry.unsynced,
                                        1);

    if (rec->carry.write.seq != 0 && st->once.seq == 0) {
        st->once.seq = rec->carry.write.seq;
        st->once.delta = rec->carry.write.delta;
        st->once.month = rec->carry.write.month;
        st->once.pid = 0;
        ngx_memcpy(st->once.writer, rec->carry.write.writer,
                   UG_DDB_WRITER_MAX);

        if (st->once.delta > 0) {
            ((ngx_http_usage_gate_ddb_sh_t *) zone->sh->store)->backlog +=
                (ngx_atomic_uint_t) st->once.delta;
        }

        ngx_http_usage_gate_ddb_dirty(zone, st);
    }

    /* a base from before a restart is a fair first guess; it is replaced
     * by the table's at the first answer */
    if (rec->carry.synced_base && st->c.month == month) {
        st->c.base = rec->carry.synced_base;
        st->c.flags |= UG_CLAIM_BASE;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_http_usage_gate_ddb_lost(zone, rec->owner, rec->len, lost,
                                 ngx_cycle->log);
}


/*
 * Under the lock: a refund reaches the table as the owner's other units
 * do, through the claim arithmetic (ug_claim_refund): back to this
 * node's claim, or a pending count that goes down, below zero once the
 * unit was written, which the sync writes as a negative ADD.
 */
uint64_t
ngx_http_usage_gate_ddb_refund(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_node_t *un, int32_t cycle, uint64_t units)
{
    int                              queue;
    int32_t                          month;
    int64_t                          backlog;
    ngx_http_usage_gate_ddb_sh_t    *dsh;
    ngx_http_usage_gate_ddb_node_t  *st;

    month = ngx_http_usage_gate_ddb_month(cycle);

    if (month < 0) {
        return 0;
    }

    dsh = zone->sh->store;
    st = ngx_http_usage_gate_ddb_state(un);
    backlog = 0;

    units = ug_claim_refund(&st->c, month, units, &backlog, &queue);

    dsh->backlog += (ngx_atomic_uint_t) backlog;

    if (queue) {
        ngx_http_usage_gate_ddb_dirty(zone, st);
    }

    return units;
}


/*
 * The table's month of a counter's cycle, the item's `month` key: the
 * month the cycle starts in (a calendar month's own; an anchored cycle
 * from 15 March to 15 April is "YYYY-03"), so that every item of the
 * table keeps the seed's schema.  -1 for an identity no cycle has.
 */
int32_t
ngx_http_usage_gate_ddb_month(int32_t cycle)
{
    ug_cycle_t  cy;

    if (ug_cycle_from_id(cycle, &cy) != 0) {
        return -1;
    }

    return cy.month;
}
