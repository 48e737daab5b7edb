/*
 * The per-request decision: in the zone, or with a conditional write the
 * request waits for (suspended in the precontent phase), then settled
 * into the zone and woken.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_ddb_internal.h"


/* per worker: the requests that wait for the table */
ngx_queue_t  ngx_http_usage_gate_ddb_waiting;

static ngx_str_t  ngx_http_usage_gate_ddb_unavailable =
    ngx_string("The usage store (DynamoDB) is unavailable; try again later");


ngx_int_t
ngx_http_usage_gate_ddb_decide(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ngx_http_usage_gate_ctx_t *ctx,
    ngx_str_t *detail)
{
    ngx_uint_t                       rc;
    ngx_http_cleanup_t              *cln;
    ngx_http_usage_gate_zone_t      *zone;
    ngx_http_usage_gate_ddb_req_t   *dr, tmp;
    ngx_http_usage_gate_ddb_conf_t  *dc;

    zone = lcf->shm_zone->data;
    dc = zone->store_conf;

    ngx_memzero(&tmp, sizeof(ngx_http_usage_gate_ddb_req_t));

    tmp.r = r;
    tmp.zone = zone;
    tmp.conf = dc;
    tmp.owner = ctx->owner;
    tmp.limits = ctx->limits;
    tmp.terms = ctx->terms;
    tmp.hard = ug_month_hard_limit(&ctx->limits, &ctx->terms);
    tmp.cost = lcf->cost;
    tmp.d = &ctx->d;

    rc = ngx_http_usage_gate_ddb_locked(&tmp, ngx_http_usage_gate_now_us());

    switch (rc) {

    case NGX_HTTP_USAGE_GATE_DDB_LOCAL:
        return NGX_HTTP_USAGE_GATE_DECIDED;

    case NGX_HTTP_USAGE_GATE_DDB_CLAIM:
        /* allowed from a claim running low: the next one is fetched in
         * the background, so that no request waits while the owner is
         * busy */
        ngx_http_usage_gate_ddb_claim(&tmp);
        return NGX_HTTP_USAGE_GATE_DECIDED;

    case NGX_HTTP_USAGE_GATE_DDB_FULL:
        return NGX_HTTP_USAGE_GATE_FULL;

    case NGX_HTTP_USAGE_GATE_DDB_DOWN:
        *detail = ngx_http_usage_gate_ddb_unavailable;
        return NGX_HTTP_SERVICE_UNAVAILABLE;

    default: /* NGX_HTTP_USAGE_GATE_DDB_WRITE */
        break;
    }

    /* the table decides: the minute's units are taken, and what the
     * owner had pending, and in auto mode a claim, go with this write */

    dr = ngx_palloc(r->pool, sizeof(ngx_http_usage_gate_ddb_req_t));
    cln = (dr != NULL) ? ngx_http_cleanup_add(r, 0) : NULL;

    if (dr == NULL || cln == NULL
        || ngx_http_usage_gate_ddb_req_body(&tmp,
                                            (int64_t) (tmp.cost + tmp.taken
                                                       + tmp.extra))
           != NGX_OK)
    {
        ngx_http_usage_gate_ddb_settle(&tmp, NGX_HTTP_USAGE_GATE_DDB_FAILED,
                                       0);
        if (tmp.rc == NGX_HTTP_SERVICE_UNAVAILABLE) {
            *detail = ngx_http_usage_gate_ddb_unavailable;
        }

        return tmp.rc;
    }

    *dr = tmp;
    ctx->store = dr;

    cln->handler = ngx_http_usage_gate_ddb_cleanup;
    cln->data = dr;

    dr->retry.handler = ngx_http_usage_gate_ddb_retry;
    dr->retry.data = dr;
    dr->retry.log = r->connection->log;

    dr->deadline = ngx_current_msec + dc->timeout;

    if (ngx_http_usage_gate_ddb_send(dr) != NGX_OK) {
        ngx_http_usage_gate_ddb_settle(dr, NGX_HTTP_USAGE_GATE_DDB_FAILED, 0);
        dr->state = NGX_HTTP_USAGE_GATE_DDB_FINISHED;

        if (dr->rc == NGX_HTTP_SERVICE_UNAVAILABLE) {
            *detail = ngx_http_usage_gate_ddb_unavailable;
        }

        return dr->rc;
    }

    dr->state = NGX_HTTP_USAGE_GATE_DDB_WAITING;
    ngx_queue_insert_tail(&ngx_http_usage_gate_ddb_waiting, &dr->queue);
    dr->queued = 1;

    /* parked in its phase until the answer: a client that goes
     * away meanwhile ends the request (and the cleanup cancels) */
    r->main->count++;
    r->read_event_handler = ngx_http_test_reading;

    return NGX_DONE;
}


/*
 * Under the zone lock: what this request needs.  LOCAL: decided in the
 * zone (dr->d filled, allowed units queued for the sync).  WRITE: the
 * minute's units are taken and the table must say yes; dr has what the
 * write needs.  FULL, or DOWN (DynamoDB known to be down, on_error=deny).
 */
ngx_uint_t
ngx_http_usage_gate_ddb_locked(ngx_http_usage_gate_ddb_req_t *dr,
    uint64_t now_us)
{
    int32_t                          month;
    int64_t                          limit, now_s, lost;
    ug_cycle_t                       cy;
    ngx_uint_t                       rc;
    ngx_http_usage_gate_node_t      *un;
    ngx_http_usage_gate_zone_t      *zone;
    ngx_http_usage_gate_ddb_sh_t    *dsh;
    ngx_http_usage_gate_ddb_node_t  *st;
    ngx_http_usage_gate_ddb_conf_t  *dc;

    zone = dr->zone;
    dc = dr->conf;
    dsh = zone->sh->store;
    now_s = (int64_t) (now_us / 1000000);

    /* the hard limit: the included month and the overage band; a band
     * without end (UG_OFF) decides in the zone, as a plan without a
     * monthly limit does */
    limit = dr->hard;

    ngx_shmtx_lock(&zone->shpool->mutex);

    un = ngx_http_usage_gate_zone_node_locked(zone, dr->owner.data,
                                              dr->owner.len, now_us, 1);
    if (un == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        (void) ngx_atomic_fetch_add(&zone->sh->fail_open, 1);
        return NGX_HTTP_USAGE_GATE_DDB_FULL;
    }

    st = ngx_http_usage_gate_ddb_state(un);

    /* the counter and the state enter a new cycle together; the table
     * counts a cycle in the item of the month it starts in */
    (void) ug_cycle_roll(un->counter.month, dr->terms.anchor, now_s, &cy);
    month = cy.month;

    lost = ngx_http_usage_gate_ddb_roll(zone, st, month);

    if (un->counter.month != cy.id) {
        un->counter.month = cy.id;
        un->counter.month_used = 0;
        ngx_http_usage_gate_ddb_used(un, st);
    }

    dr->cycle = cy.id;

    if (limit == UG_OFF || dc->mode == NGX_HTTP_USAGE_GATE_DDB_ASYNC) {
        goto local;
    }

    if (st->c.claimed >= dr->cost) {
        /* auto: units this node claimed in the table ahead of use; they
         * go first, even when a write of another request was refused */
        ug_take_minute_terms(&un->counter, &dr->limits, &dr->terms,
                             dr->cost, now_us, dr->d);

        rc = NGX_HTTP_USAGE_GATE_DDB_LOCAL;

        if (dr->d->verdict == UG_ALLOWED) {
            dr->extra = ug_claim_use(&st->c, limit, dr->cost);
            ngx_http_usage_gate_ddb_used(un, st);
            ug_peek_terms(&un->counter, &dr->limits, &dr->terms, now_us,
                          dr->d);

            if (dr->extra) {
                dr->month = month;
                rc = NGX_HTTP_USAGE_GATE_DDB_CLAIM;
            }
        }

        goto done;
    }

    if (ug_claim_at_limit(&st->c, now_s)) {
        /* the table said no: answer as the zone answers at the limit */
        if (un->counter.month_used < (uint64_t) limit) {
            un->counter.month_used = (uint64_t) limit;
        }

        goto local;
    }

    if (dr->cost > (uint64_t) limit) {
        goto local;
    }

    if ((ngx_msec_int_t) (dsh->down_until - ngx_current_msec) > 0) {
        /* a recent request waited the whole timeout: do not make every
         * request wait until the sync sees DynamoDB answer again */
        if (dc->on_error == NGX_HTTP_USAGE_GATE_DDB_ALLOW) {
            goto local;
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);
        ngx_http_usage_gate_ddb_lost(zone, dr->owner.data, dr->owner.len,
                                     lost, dr->r->connection->log);
        return NGX_HTTP_USAGE_GATE_DDB_DOWN;
    }

    ug_take_minute_terms(&un->counter, &dr->limits, &dr->terms, dr->cost,
                         now_us, dr->d);

    if (dr->d->verdict != UG_ALLOWED) {
        rc = NGX_HTTP_USAGE_GATE_DDB_LOCAL;
        goto done;
    }

    /* usage allowed here before (while DynamoDB was down, or for a plan
     * without a limit then) goes with this write, under the same ceiling:
     * the table then says yes only if it and this request all fit */
    dr->taken = ug_claim_carried(&st->c, limit, dr->cost);

    /*
     * auto: a claim for the requests to come, for an owner that sent
     * others this minute (a claim that is not used costs a write to give
     * back), one at a time per owner: twice the last one, and at most a
     * quarter of what the table had left at the last answer, so that
     * near the limit every node falls back to one write per request.
     */
    if (dc->mode == NGX_HTTP_USAGE_GATE_DDB_AUTO
        && un->counter.minute_used > dr->cost)
    {
        dr->extra = ug_claim_start(&st->c, limit, dr->cost + dr->taken);
    }

    dr->month = month;

    rc = NGX_HTTP_USAGE_GATE_DDB_WRITE;
    goto done;

local:

    ug_decide_terms(&un->counter, &dr->limits, &dr->terms, dr->cost, now_us,
                    dr->d);

    if (dr->d->verdict == UG_ALLOWED) {
        lost += ngx_http_usage_gate_ddb_add(zone, st, month,
                                            (int64_t) dr->cost, 1);

    }

    rc = NGX_HTTP_USAGE_GATE_DDB_LOCAL;

done:

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_http_usage_gate_ddb_lost(zone, dr->owner.data, dr->owner.len, lost,
                                 dr->r->connection->log);

    return rc;
}


/*
 * A claim that will not be made: the owner may claim again (smaller,
 * after a refusal).  A write that was sent and got no answer may have
 * been applied, claim included; that is the price of a lost answer
 * (docs/dynamodb.md).
 */
void
ngx_http_usage_gate_ddb_unclaim(ngx_http_usage_gate_ddb_req_t *dr,
    ngx_uint_t refused)
{
    ngx_http_usage_gate_node_t      *un;
    ngx_http_usage_gate_zone_t      *zone;
    ngx_http_usage_gate_ddb_node_t  *st;

    if (dr->extra == 0) {
        return;
    }

    zone = dr->zone;

    ngx_shmtx_lock(&zone->shpool->mutex);

    un = ngx_http_usage_gate_zone_node_locked(zone, dr->owner.data,
                                              dr->owner.len,
                                              ngx_http_usage_gate_now_us(),
                                              0);
    if (un != NULL) {
        st = ngx_http_usage_gate_ddb_state(un);
        ug_claim_unclaim(&st->c, dr->extra, refused ? 1 : 0);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    dr->extra = 0;
}


/*
 * The table's answer (or the lack of one) becomes the request's decision,
 * under the zone lock, as the zone would report it: dr->d and dr->rc.
 */
void
ngx_http_usage_gate_ddb_settle(ngx_http_usage_gate_ddb_req_t *dr,
    ngx_uint_t outcome, uint64_t count)
{
    int                              queue;
    int64_t                          now_s, lost;
    uint64_t                         now_us;
    ug_counter_t                     none, *c;
    ngx_http_usage_gate_node_t      *un;
    ngx_http_usage_gate_zone_t      *zone;
    ngx_http_usage_gate_ddb_sh_t    *dsh;
    ngx_http_usage_gate_ddb_node_t  *st;

    ngx_http_usage_gate_ddb_release(dr);

    zone = dr->zone;
    dsh = zone->sh->store;
    now_us = ngx_http_usage_gate_now_us();
    now_s = (int64_t) (now_us / 1000000);
    lost = 0;
    st = NULL;
    dr->rc = NGX_HTTP_USAGE_GATE_DECIDED;

    ngx_shmtx_lock(&zone->shpool->mutex);

    /* the owner may have been dropped while the request waited; if the
     * zone has no room for it now, it is decided as a zone that is full
     * decides (fail open), with a counter of its own */
    un = ngx_http_usage_gate_zone_node_locked(zone, dr->owner.data,
                                              dr->owner.len, now_us, 1);

    if (un != NULL) {
        c = &un->counter;
        st = ngx_http_usage_gate_ddb_state(un);

        if (dr->extra) {
            ug_claim_unclaim(&st->c, dr->extra, 0);
        }

    } else {
        ngx_memzero(&none, sizeof(ug_counter_t));
        none.month = dr->cycle;
        c = &none;
    }

    if (outcome != NGX_HTTP_USAGE_GATE_DDB_OK && dr->taken) {
        /* the carried units were allowed before: the sync writes them
         * without a condition */
        if (st) {
            lost += ngx_http_usage_gate_ddb_add(zone, st, dr->month,
                                                (int64_t) dr->taken, 0);
        } else {
            lost += (int64_t) dr->taken;
            dsh->backlog -= dr->taken;
        }
    }

    switch (outcome) {

    case NGX_HTTP_USAGE_GATE_DDB_OK:
        dsh->backlog -= dr->taken;

        if (st && st->c.month == dr->month) {
            ug_claim_answered(&st->c, count, dr->extra, &queue);

            if (queue) {
                ngx_http_usage_gate_ddb_dirty(zone, st);
            }

            ngx_http_usage_gate_ddb_used(un, st);

        } else if (dr->extra) {
            /* the month turned while the claim was on its way */
            if (st) {
                lost += ngx_http_usage_gate_ddb_add(zone, st, dr->month,
                                                    -(int64_t) dr->extra, 0);
            } else {
                lost -= (int64_t) dr->extra;
            }
        }

        if (st == NULL && c->month == dr->cycle) {
            c->month_used = count;
        }

        ug_peek_terms(c, &dr->limits, &dr->terms, now_us, dr->d);
        break;

    case NGX_HTTP_USAGE_GATE_DDB_QUOTA:
        ug_give_minute(c, &dr->limits, dr->cost, now_us);

        if (st && st->c.month == dr->month) {
            ug_claim_refused(&st->c, now_s, NGX_HTTP_USAGE_GATE_DDB_AT_LIMIT);
        }

        if (c->month == dr->cycle && c->month_used < (uint64_t) dr->hard) {
            c->month_used = (uint64_t) dr->hard;
        }

        ug_peek_terms(c, &dr->limits, &dr->terms, now_us, dr->d);
        dr->d->verdict = UG_QUOTA;
        dr->d->retry_after = dr->d->month_reset;
        break;

    default: /* NGX_HTTP_USAGE_GATE_DDB_FAILED */

        if (dr->conf->on_error == NGX_HTTP_USAGE_GATE_DDB_DENY) {
            ug_give_minute(c, &dr->limits, dr->cost, now_us);
            dr->rc = NGX_HTTP_SERVICE_UNAVAILABLE;
            break;
        }

        /* on_error=allow: the zone decides, with what it knows */
        if (c->month == dr->cycle
            && c->month_used + dr->cost > (uint64_t) dr->hard)
        {
            ug_give_minute(c, &dr->limits, dr->cost, now_us);
            ug_peek_terms(c, &dr->limits, &dr->terms, now_us, dr->d);
            dr->d->verdict = UG_QUOTA;
            dr->d->retry_after = dr->d->month_reset;
            break;
        }

        if (c->month == dr->cycle) {
            c->month_used += dr->cost;
        }

        if (st) {
            lost += ngx_http_usage_gate_ddb_add(zone, st, dr->month,
                                                (int64_t) dr->cost, 1);

        } else {
            lost += (int64_t) dr->cost;
        }

        ug_peek_terms(c, &dr->limits, &dr->terms, now_us, dr->d);
        break;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    dr->extra = 0;

    ngx_http_usage_gate_ddb_lost(zone, dr->owner.data, dr->owner.len, lost,
                                 dr->r->connection->log);
}


/* Lets a waiting request go on: the gate's handler runs again. */
void
ngx_http_usage_gate_ddb_wake(ngx_http_usage_gate_ddb_req_t *dr)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = dr->r;
    c = r->connection;

    dr->state = NGX_HTTP_USAGE_GATE_DDB_ANSWERED;

    if (dr->queued) {
        ngx_queue_remove(&dr->queue);
        dr->queued = 0;
    }

    r->main->count--;

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}


/* The request ends (normally, or terminated while it waited). */
void
ngx_http_usage_gate_ddb_cleanup(void *data)
{
    ngx_http_usage_gate_ddb_req_t *dr = data;

    int64_t                      lost;
    uint64_t                     now_us;
    ngx_http_usage_gate_node_t  *un;
    ngx_http_usage_gate_zone_t  *zone;

    if (dr->state != NGX_HTTP_USAGE_GATE_DDB_WAITING) {
        return;
    }

    dr->state = NGX_HTTP_USAGE_GATE_DDB_FINISHED;

    /* the write may have landed already; the table then counts a request
     * whose client left, as the zone counts one allowed before it left */
    ngx_http_usage_gate_curl_cancel(dr->curl);
    dr->curl = NULL;
    ngx_http_usage_gate_ddb_release(dr);

    if (dr->retry.timer_set) {
        ngx_del_timer(&dr->retry);
    }

    if (dr->queued) {
        ngx_queue_remove(&dr->queue);
        dr->queued = 0;
    }

    ngx_http_usage_gate_ddb_unclaim(dr, 0);

    zone = dr->zone;
    now_us = ngx_http_usage_gate_now_us();
    lost = (int64_t) dr->taken;

    ngx_shmtx_lock(&zone->shpool->mutex);

    un = ngx_http_usage_gate_zone_node_locked(zone, dr->owner.data,
                                              dr->owner.len, now_us, 1);
    if (un != NULL) {
        lost = ngx_http_usage_gate_ddb_add(zone,
                                           ngx_http_usage_gate_ddb_state(un),
                                           dr->month, (int64_t) dr->taken,
                                           0);
        ug_give_minute(&un->counter, &dr->limits, dr->cost, now_us);

    } else {
        ((ngx_http_usage_gate_ddb_sh_t *) zone->sh->store)->backlog
                                                              -= dr->taken;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_http_usage_gate_ddb_lost(zone, dr->owner.data, dr->owner.len, lost,
                                 ngx_cycle->log);
}


ngx_int_t
ngx_http_usage_gate_ddb_resume(ngx_http_request_t *r,
    ngx_http_usage_gate_ctx_t *ctx, ngx_str_t *detail)
{
    ngx_http_usage_gate_ddb_req_t  *dr;

    dr = ctx->store;

    if (dr == NULL || dr->state == NGX_HTTP_USAGE_GATE_DDB_FINISHED) {
        return NGX_DECLINED;
    }

    if (dr->state == NGX_HTTP_USAGE_GATE_DDB_WAITING) {
        /* a stray event while the write is in flight */
        return NGX_DONE;
    }

    dr->state = NGX_HTTP_USAGE_GATE_DDB_FINISHED;

    if (dr->rc == NGX_HTTP_SERVICE_UNAVAILABLE) {
        *detail = ngx_http_usage_gate_ddb_unavailable;
    }

    return dr->rc;
}
