/*
 * The sync: one worker per zone at a time flushes the owners' unwritten
 * units and unused claims; and the worker's start and exit.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_ddb_internal.h"


/* per worker: whether the sync timers and credentials were started */
ngx_uint_t  ngx_http_usage_gate_ddb_running;

/*
 * Per worker, once it has been told to quit (a stop or a reload): the one
 * timer that holds its exit back while its last writes are in flight,
 * and when those are cut short.  Every other timer of the store is
 * cancelable then, and no new sync or retry starts.
 */
static ngx_event_t                       ngx_http_usage_gate_ddb_hold;
static ngx_msec_t                        ngx_http_usage_gate_ddb_hold_until;
static ngx_http_usage_gate_main_conf_t  *ngx_http_usage_gate_ddb_mcf;


static void ngx_http_usage_gate_ddb_exiting(
    ngx_http_usage_gate_ddb_conf_t *dc);
static void ngx_http_usage_gate_ddb_hold_handler(ngx_event_t *ev);
static ngx_uint_t ngx_http_usage_gate_ddb_in_flight(void);
static void ngx_http_usage_gate_ddb_cancel(ngx_log_t *log);
static ngx_int_t ngx_http_usage_gate_ddb_flush_post(
    ngx_http_usage_gate_ddb_flush_t *f, const char *op, ngx_str_t *body,
    const ug_aws_creds_t *creds, ngx_http_usage_gate_curl_done_pt done);
static ngx_uint_t ngx_http_usage_gate_ddb_once_take(
    ngx_http_usage_gate_ddb_node_t *st);
static ngx_http_usage_gate_ddb_node_t *ngx_http_usage_gate_ddb_once_find(
    ngx_http_usage_gate_ddb_flush_t *f, ngx_http_usage_gate_node_t **unp);
static void ngx_http_usage_gate_ddb_checked(void *data, ngx_int_t rc,
    long status, ngx_str_t *body, const char *error);


void
ngx_http_usage_gate_ddb_sync_timer(ngx_event_t *ev)
{
    ngx_http_usage_gate_ddb_conf_t *dc = ev->data;

    ngx_atomic_uint_t              pid;
    ngx_msec_int_t                 since;
    ngx_http_usage_gate_zone_t    *zone;
    ngx_http_usage_gate_ddb_sh_t  *dsh;

    zone = dc->shm_zone->data;
    dsh = zone->sh->store;

    if (ngx_terminate) {
        return;
    }

    if (ngx_exiting || ngx_quit) {
        ngx_http_usage_gate_ddb_exiting(dc);
        return;
    }

    if (!dc->syncing) {
        since = (ngx_msec_int_t) (ngx_current_msec - dsh->sync_started);

        /* a worker that died holding the claim must not stop the sync */
        pid = dsh->syncer;

        if (pid != 0
            && since > (ngx_msec_int_t) ngx_max(60000, 10 * dc->timeout))
        {
            ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                          "usage_gate_dynamodb: zone \"%V\": sync by "
                          "process %P did not finish, taking over",
                          &zone->name, (ngx_pid_t) pid);
            (void) ngx_atomic_cmp_set(&dsh->syncer, pid, 0);
        }

        /* one round per interval for all workers together */
        if (since >= (ngx_msec_int_t) dc->sync
            && ngx_atomic_cmp_set(&dsh->syncer, 0, ngx_pid))
        {
            dsh->sync_started = ngx_current_msec;
            dc->syncing = 1;
            dc->failed = 0;
            dc->budget = dsh->dirty_n;

            ngx_http_usage_gate_ddb_sync_fill(dc);
        }
    }

    /*
     * While usage waits to be written (or claims to be given back) the
     * timer holds a graceful exit back until it has fired once more; it
     * looks every second at most, so that such an exit never waits for a
     * long sync interval.
     */
    ev->cancelable = (dsh->dirty_n == 0) ? 1 : 0;

    ngx_add_timer(ev, ngx_min(dc->sync, 1000));
}


/*
 * The worker was told to quit, by a stop or a reload: its sync timer is
 * not armed again, and at most one last round runs, bounded by timeout.
 *
 * A reload has mapped the zone for the new configuration before the old
 * workers are told to quit (the generation moved on, or a resized zone
 * took the counts over): then nothing more is written from here.  The
 * unwritten units and the open claims stay in the shared zone, and the
 * new workers write them with the new configuration's endpoint and
 * credentials.  On a stop, what the last round does not write goes into
 * the state file, written after this, and is written after the next
 * start.
 */
static void
ngx_http_usage_gate_ddb_exiting(ngx_http_usage_gate_ddb_conf_t *dc)
{
    ngx_msec_t                     hold;
    ngx_core_conf_t               *ccf;
    ngx_http_usage_gate_zone_t    *zone;
    ngx_http_usage_gate_ddb_sh_t  *dsh;

    if (dc->exiting) {
        return;
    }

    dc->exiting = 1;

    zone = dc->shm_zone->data;
    dsh = zone->sh->store;

    if (zone->sh->superseded || dsh->generation != dc->generation) {
        /* a round in flight finishes what it sent, and starts no more */
        dc->budget = 0;

        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "usage_gate_dynamodb: zone \"%V\": reloaded, the "
                      "new workers write what is left", &zone->name);

    } else if (dc->syncing) {
        /* the round in flight is the last one: it gives claims back */
        dc->final = 1;

    } else if (dsh->dirty_n != 0
               && ngx_atomic_cmp_set(&dsh->syncer, 0, ngx_pid))
    {
        dsh->sync_started = ngx_current_msec;
        dc->syncing = 1;
        dc->final = 1;
        dc->failed = 0;
        dc->budget = dsh->dirty_n;

        ngx_http_usage_gate_ddb_sync_fill(dc);
    }

    if (!ngx_http_usage_gate_ddb_in_flight()) {
        return;
    }

    /* curl's own timeout ends each write first; this is the bound (the
     * longest of the zones' while several have writes in flight) */
    hold = dc->timeout + 100;

    ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                           ngx_core_module);

    if (ccf->shutdown_timeout && ccf->shutdown_timeout < hold) {
        hold = ccf->shutdown_timeout;
    }

    if (!ngx_http_usage_gate_ddb_hold.timer_set) {
        ngx_http_usage_gate_ddb_hold_until = ngx_current_msec + hold;
        ngx_add_timer(&ngx_http_usage_gate_ddb_hold, ngx_min(hold, 100));

    } else if ((ngx_msec_int_t) (ngx_current_msec + hold
                                 - ngx_http_usage_gate_ddb_hold_until) > 0)
    {
        ngx_http_usage_gate_ddb_hold_until = ngx_current_msec + hold;
    }
}


/*
 * Holds the exit back while the store's writes are in flight, looking
 * every 100 ms; past the deadline (timeout, or worker_shutdown_timeout
 * when shorter) it cancels them, and their units go back to the zone.
 */
static void
ngx_http_usage_gate_ddb_hold_handler(ngx_event_t *ev)
{
    ngx_msec_int_t  left;

    if (!ngx_http_usage_gate_ddb_in_flight()) {
        return;
    }

    left = (ngx_msec_int_t) (ngx_http_usage_gate_ddb_hold_until
                             - ngx_current_msec);

    if (left <= 0) {
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "usage_gate_dynamodb: last writes cut short at exit; "
                      "their units stay in the zone");
        ngx_http_usage_gate_ddb_cancel(ev->log);
        return;
    }

    ngx_add_timer(ev, (ngx_msec_t) ngx_min(left, 100));
}


/* 1 while a sync write, a claim, an admin write-through or a credentials
 * fetch of this worker is in flight. */
static ngx_uint_t
ngx_http_usage_gate_ddb_in_flight(void)
{
    ngx_uint_t                        i;
    ngx_http_usage_gate_ddb_conf_t  **dcp;

    if (!ngx_http_usage_gate_ddb_running
        || ngx_http_usage_gate_ddb_mcf == NULL)
    {
        return 0;
    }

    if (!ngx_queue_empty(&ngx_http_usage_gate_ddb_admins)
        || (ngx_http_usage_gate_ddb_aws
            && ngx_http_usage_gate_ddb_aws->req != NULL))
    {
        return 1;
    }

    dcp = ngx_http_usage_gate_ddb_mcf->ddb->elts;

    for (i = 0; i < ngx_http_usage_gate_ddb_mcf->ddb->nelts; i++) {
        if (dcp[i]->inflight) {
            return 1;
        }
    }

    return 0;
}


/*
 * Takes owners off the zone's sync queue, their unsynced units with them,
 * and sends one ADD for each, up to the in-flight limit.  A round ends
 * when the owners queued at its start are done, or at its first failure
 * (the rest wait for the next round).
 */
void
ngx_http_usage_gate_ddb_sync_fill(ngx_http_usage_gate_ddb_conf_t *dc)
{
    int64_t                           backlog;
    ngx_int_t                         rc;
    ngx_str_t                         body;
    ngx_uint_t                        i, n, want;
    ngx_queue_t                      *q;
    ug_ddb_result_t                   res;
    const ug_aws_creds_t             *creds;
    ngx_http_usage_gate_node_t       *un;
    ngx_http_usage_gate_zone_t       *zone;
    ngx_http_usage_gate_ddb_sh_t     *dsh;
    ngx_http_usage_gate_ddb_node_t   *st;
    ngx_http_usage_gate_ddb_flush_t  *f;
    ngx_http_usage_gate_ddb_flush_t  *slot[NGX_HTTP_USAGE_GATE_DDB_FLUSH_MAX];
    char                              writer[UG_DDB_WRITER_MAX + 1];

    zone = dc->shm_zone->data;
    dsh = zone->sh->store;

    creds = ngx_http_usage_gate_ddb_creds(dc);

    if (ngx_http_usage_gate_ddb_sync_writer(writer, ngx_cycle->log)
        != NGX_OK)
    {
        creds = NULL;
    }

    if (creds == NULL && dc->budget && !dc->failed) {
        ngx_memzero(&res, sizeof(ug_ddb_result_t));
        ngx_cpystrn((u_char *) res.type, (u_char *) "NoCredentials",
                    sizeof(res.type));
        res.cls = UG_DDB_FATAL;
        ngx_http_usage_gate_ddb_error(zone, &res, "UpdateItem (sync)",
                                      ngx_cycle->log);
        dc->failed = 1;
    }

    while (!dc->failed && dc->budget
           && dc->inflight < NGX_HTTP_USAGE_GATE_DDB_FLUSH_MAX)
    {
        want = ngx_min(dc->budget,
                       NGX_HTTP_USAGE_GATE_DDB_FLUSH_MAX - dc->inflight);
        n = 0;

        for (i = 0; n < want && i < NGX_HTTP_USAGE_GATE_DDB_FLUSH_MAX; i++) {
            if (!dc->flush[i].busy) {
                slot[n++] = &dc->flush[i];
            }
        }

        want = n;
        n = 0;

        ngx_shmtx_lock(&zone->shpool->mutex);

        while (n < want && dc->budget && !ngx_queue_empty(&dsh->dirty)) {
            q = ngx_queue_head(&dsh->dirty);
            st = ngx_queue_data(q, ngx_http_usage_gate_ddb_node_t, dirty);
            un = (ngx_http_usage_gate_node_t *) ((u_char *) st - st->c.back);

            dc->budget--;
            f = slot[n];

            if (st->once.seq != 0) {
                ngx_queue_remove(q);
                ngx_queue_insert_tail(&dsh->dirty, q);

                if (!ngx_http_usage_gate_ddb_once_take(st)) {
                    /* on its way: its answer settles it */
                    continue;
                }

                /* a write whose outcome is not known: again, as it was */
                f->month = st->once.month;
                f->delta = st->once.delta;
                f->seq = st->once.seq;
                ngx_memcpy(f->writer, st->once.writer, UG_DDB_WRITER_MAX);
                f->writer[UG_DDB_WRITER_MAX] = '\0';
                f->usage = f->delta > 0 ? (uint64_t) f->delta : 0;

                f->len = ngx_http_usage_gate_zone_owner_locked(zone, un,
                                                               f->owner);
                f->conf = dc;
                f->busy = 1;
                n++;
                continue;
            }

            backlog = 0;
            f->delta = ug_claim_flush(&st->c, dc->final ? 1 : 0,
                                      &f->month, &backlog);
            dsh->backlog += (ngx_atomic_uint_t) backlog;

            f->usage = f->delta > 0 ? (uint64_t) f->delta : 0;

            ngx_queue_remove(q);

            if (ug_claim_flushed(&st->c)) {
                dsh->dirty_n--;

            } else {
                ngx_queue_insert_tail(&dsh->dirty, q);
            }

            if (f->delta == 0) {
                /* usage covered by claims this node did not use */
                dsh->backlog -= f->usage;
                continue;
            }

            /* the write is the owner's to settle until its answer says
             * whether it was applied; the owner stays queued meanwhile */
            f->seq = ngx_http_usage_gate_ddb_next_seq();
            ngx_memcpy(f->writer, writer, UG_DDB_WRITER_MAX + 1);

            st->once.seq = f->seq;
            st->once.delta = f->delta;
            st->once.month = f->month;
            st->once.pid = (uint32_t) ngx_pid;
            ngx_memcpy(st->once.writer, writer, UG_DDB_WRITER_MAX);

            ngx_http_usage_gate_ddb_dirty(zone, st);

            f->len = ngx_http_usage_gate_zone_owner_locked(zone, un, f->owner);
            f->conf = dc;
            f->busy = 1;
            n++;
        }

        if (ngx_queue_empty(&dsh->dirty)) {
            dc->budget = 0;
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);

        if (n == 0) {
            break;
        }

        for (i = 0; i < n; i++) {
            f = slot[i];
            f->curl = NULL;

            rc = ngx_http_usage_gate_ddb_body_once(dc, NULL, f->owner,
                                                   f->len, f->month,
                                                   f->delta, -1, f->writer,
                                                   f->seq, 0, &body,
                                                   ngx_cycle->log);
            if (rc != NGX_OK
                || ngx_http_usage_gate_ddb_flush_post(f, UG_DDB_OP_UPDATE,
                       &body, creds, ngx_http_usage_gate_ddb_flushed)
                   != NGX_OK)
            {
                /* as if DynamoDB had failed: the units go back */
                ngx_memzero(&res, sizeof(ug_ddb_result_t));
                ngx_cpystrn((u_char *) res.type, (u_char *) "NoRequest",
                            sizeof(res.type));
                res.cls = UG_DDB_FATAL;
                ngx_http_usage_gate_ddb_flush_result(f, &res);
                continue;
            }

            dc->inflight++;
            (void) ngx_atomic_fetch_add(&dsh->writes, 1);
        }
    }

    if (dc->inflight == 0) {
        ngx_http_usage_gate_ddb_sync_end(dc);
    }
}


/* Sends one request of a sync write with the zone's timeouts; frees the
 * body. */
static ngx_int_t
ngx_http_usage_gate_ddb_flush_post(ngx_http_usage_gate_ddb_flush_t *f,
    const char *op, ngx_str_t *body, const ug_aws_creds_t *creds,
    ngx_http_usage_gate_curl_done_pt done)
{
    ngx_http_usage_gate_ddb_conf_t  *dc;

    dc = f->conf;

    f->curl = ngx_http_usage_gate_curl_post(ngx_cycle->log, dc->endpoint,
                                            op, body, dc->connect_timeout,
                                            dc->timeout, creds, dc->region,
                                            done, f);
    ngx_free(body->data);

    return (f->curl != NULL) ? NGX_OK : NGX_ERROR;
}


/*
 * Under the lock: 1 if the sync may send the owner's write to settle
 * now, marked as this process's; 0 while another live process (or this
 * one) has it on its way.
 */
static ngx_uint_t
ngx_http_usage_gate_ddb_once_take(ngx_http_usage_gate_ddb_node_t *st)
{
    ngx_pid_t  pid;

    pid = (ngx_pid_t) st->once.pid;

    if (pid != 0
        && (pid == ngx_pid || kill(pid, 0) == 0 || ngx_errno != NGX_ESRCH))
    {
        return 0;
    }

    st->once.pid = (uint32_t) ngx_pid;

    return 1;
}


void
ngx_http_usage_gate_ddb_flushed(void *data, ngx_int_t rc, long status,
    ngx_str_t *body, const char *error)
{
    ngx_http_usage_gate_ddb_flush_t *f = data;

    ngx_str_t                        get;
    ug_ddb_class_t                   cls;
    ug_ddb_result_t                  res;
    const ug_aws_creds_t            *creds;
    ngx_http_usage_gate_ddb_conf_t  *dc;

    dc = f->conf;
    f->curl = NULL;

    cls = ngx_http_usage_gate_ddb_parse(rc, status, body, error, &res);

    if (cls == UG_DDB_CONDITIONAL_FAILED) {
        /*
         * The floor of a give-back, or this write's sequence: it was
         * applied already (a try whose answer was lost, or libcurl's own
         * resend).  A consistent read tells.
         */
        creds = ngx_http_usage_gate_ddb_creds(dc);

        if (creds != NULL
            && ngx_http_usage_gate_ddb_body_once(dc, NULL, f->owner, f->len,
                                                 f->month, 0, 0, f->writer,
                                                 f->seq, 1, &get,
                                                 ngx_cycle->log)
               == NGX_OK
            && ngx_http_usage_gate_ddb_flush_post(f, UG_DDB_OP_GET, &get,
                   creds, ngx_http_usage_gate_ddb_checked)
               == NGX_OK)
        {
            return;
        }

        /* not known: settled at a later round */
        res.cls = UG_DDB_RETRYABLE;
    }

    dc->inflight--;

    ngx_http_usage_gate_ddb_flush_result(f, &res);

    if (dc->syncing) {
        ngx_http_usage_gate_ddb_sync_fill(dc);
    }
}


/* The read after a refused sync write: was an earlier try applied? */
static void
ngx_http_usage_gate_ddb_checked(void *data, ngx_int_t rc, long status,
    ngx_str_t *body, const char *error)
{
    ngx_http_usage_gate_ddb_flush_t *f = data;

    ug_ddb_class_t                   cls;
    ug_ddb_result_t                  res;
    ngx_http_usage_gate_ddb_conf_t  *dc;

    dc = f->conf;
    f->curl = NULL;
    dc->inflight--;

    cls = ngx_http_usage_gate_ddb_parse_check(f->writer, rc, status, body,
                                              error, &res);

    if (cls == UG_DDB_OK) {
        /* applied (its count is the item's now), or refused by the
         * floor of a give-back */
        if (!(res.has_seq && res.seq >= f->seq)) {
            res.cls = UG_DDB_CONDITIONAL_FAILED;
        }

    } else {
        /* the read failed: the write's outcome is still not known */
        ngx_http_usage_gate_ddb_error(dc->shm_zone->data, &res,
                                      "GetItem (sync)", ngx_cycle->log);
        res.cls = UG_DDB_RETRYABLE;
    }

    ngx_http_usage_gate_ddb_flush_result(f, &res);

    if (dc->syncing) {
        ngx_http_usage_gate_ddb_sync_fill(dc);
    }
}


/*
 * Under the lock: the owner's node whose write to settle is f's, or NULL
 * when it was settled elsewhere (another worker's resend, an admin SET).
 */
static ngx_http_usage_gate_ddb_node_t *
ngx_http_usage_gate_ddb_once_find(ngx_http_usage_gate_ddb_flush_t *f,
    ngx_http_usage_gate_node_t **unp)
{
    ngx_http_usage_gate_node_t      *un;
    ngx_http_usage_gate_zone_t      *zone;
    ngx_http_usage_gate_ddb_node_t  *st;

    zone = f->conf->shm_zone->data;

    un = ngx_http_usage_gate_zone_node_locked(zone, f->owner, f->len,
                                              ngx_http_usage_gate_now_us(),
                                              0);
    *unp = un;

    if (un == NULL) {
        return NULL;
    }

    st = ngx_http_usage_gate_ddb_state(un);

    if (st->once.seq != f->seq
        || ngx_memcmp(st->once.writer, f->writer, UG_DDB_WRITER_MAX) != 0)
    {
        return NULL;
    }

    return st;
}


/*
 * A sync write's outcome: applied (the owner's base follows), refused
 * (its units back, or a give-back with nothing left to give), or not
 * known (a timeout, a reset, a 5xx, an answer that cannot be read): then
 * the write stays the owner's to settle, and is sent again as it is.
 */
void
ngx_http_usage_gate_ddb_flush_result(ngx_http_usage_gate_ddb_flush_t *f,
    ug_ddb_result_t *res)
{
    int64_t                          lost;
    uint64_t                         before;
    ngx_uint_t                       unknown;
    ngx_http_usage_gate_node_t      *un;
    ngx_http_usage_gate_zone_t      *zone;
    ngx_http_usage_gate_ddb_sh_t    *dsh;
    ngx_http_usage_gate_ddb_node_t  *st;
    ngx_http_usage_gate_ddb_conf_t  *dc;

    dc = f->conf;
    zone = dc->shm_zone->data;
    dsh = zone->sh->store;
    lost = 0;

    unknown = (res->cls == UG_DDB_RETRYABLE
               || (res->cls == UG_DDB_FATAL && res->status == 200));

    ngx_shmtx_lock(&zone->shpool->mutex);

    st = ngx_http_usage_gate_ddb_once_find(f, &un);

    if (st == NULL) {
        /* settled elsewhere: nothing of it is this answer's */

    } else if (unknown) {
        st->once.pid = 0;
        ngx_http_usage_gate_ddb_dirty(zone, st);

    } else {
        st->once.seq = 0;
        st->once.pid = 0;

        if (res->cls == UG_DDB_OK) {
            dsh->backlog -= f->usage;

        } else if (res->cls == UG_DDB_CONDITIONAL_FAILED && f->delta < 0) {
            /* a give-back below zero (the count was set lower meanwhile,
             * by the admin API): there is nothing left to give back */

        } else {
            /* not applied: the units stay here for the next round */
            lost = ngx_http_usage_gate_ddb_add(zone, st, f->month, f->delta,
                                               0);
        }
    }

    if (res->cls == UG_DDB_OK) {
        dsh->down_until = 0;

        if (un != NULL) {
            st = ngx_http_usage_gate_ddb_state(un);

            if (st->c.month == f->month) {
                st->c.base = res->count;
                st->c.flags |= UG_CLAIM_BASE;

                before = un->counter.month_used;
                ngx_http_usage_gate_ddb_used(un, st);

                /* less than the zone thought: an admin change, maybe on
                 * another node; the table may have room again */
                if (un->counter.month_used < before) {
                    st->c.at_limit_until = 0;
                }
            }
        }

    } else if (res->cls == UG_DDB_RETRYABLE) {
        dsh->down_until = ngx_current_msec + ngx_max(dc->sync, 1000);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (res->cls != UG_DDB_OK && res->cls != UG_DDB_CONDITIONAL_FAILED) {
        dc->failed = 1;
        ngx_http_usage_gate_ddb_error(zone, res, "UpdateItem (sync)",
                                      ngx_cycle->log);
    }

    ngx_http_usage_gate_ddb_lost(zone, f->owner, f->len, lost,
                                 ngx_cycle->log);

    f->busy = 0;
}


void
ngx_http_usage_gate_ddb_sync_end(ngx_http_usage_gate_ddb_conf_t *dc)
{
    ngx_http_usage_gate_zone_t    *zone;
    ngx_http_usage_gate_ddb_sh_t  *dsh;

    if (!dc->syncing) {
        return;
    }

    zone = dc->shm_zone->data;
    dsh = zone->sh->store;

    dc->syncing = 0;

    if (!dc->failed) {
        dsh->last_ok = (ngx_atomic_uint_t) ngx_time();
    }

    (void) ngx_atomic_cmp_set(&dsh->syncer, ngx_pid, 0);
}


ngx_int_t
ngx_http_usage_gate_ddb_init_process(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf)
{
    int                               rc;
    char                             *v;
    ngx_uint_t                        i, need;
    ngx_msec_t                        delay;
    ngx_http_usage_gate_ddb_aws_t    *aws;
    ngx_http_usage_gate_ddb_conf_t  **dcp, *dc;

    if (mcf->ddb == NULL) {
        return NGX_OK;
    }

    /* libcurl's multi handle: only zones with usage_gate_dynamodb use it */
    if (ngx_http_usage_gate_curl_init(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (mcf->ddb->nelts == 0
        || (ngx_process != NGX_PROCESS_WORKER
            && ngx_process != NGX_PROCESS_SINGLE))
    {
        return NGX_OK;
    }

    ngx_queue_init(&ngx_http_usage_gate_ddb_waiting);
    ngx_queue_init(&ngx_http_usage_gate_ddb_admins);

    aws = ngx_pcalloc(cycle->pool, sizeof(ngx_http_usage_gate_ddb_aws_t));
    if (aws == NULL) {
        return NGX_ERROR;
    }

    aws->log = cycle->log;
    aws->refresh.handler = ngx_http_usage_gate_ddb_aws_fetch;
    aws->refresh.data = aws;
    aws->refresh.log = cycle->log;
    aws->refresh.cancelable = 1;

    ngx_http_usage_gate_ddb_aws = aws;
    ngx_http_usage_gate_ddb_running = 1;
    ngx_http_usage_gate_ddb_mcf = mcf;

    ngx_http_usage_gate_ddb_hold.handler = ngx_http_usage_gate_ddb_hold_handler;
    ngx_http_usage_gate_ddb_hold.log = cycle->log;
    ngx_http_usage_gate_ddb_hold.data = &ngx_http_usage_gate_ddb_hold;

    /* workers see only the variables named by env directives */
    rc = ug_aws_creds_from_env(&aws->env, getenv("AWS_ACCESS_KEY_ID"),
                               getenv("AWS_SECRET_ACCESS_KEY"),
                               getenv("AWS_SESSION_TOKEN"));
    aws->have_env = (rc == UG_AWS_OK);

    if (rc != UG_AWS_OK && rc != UG_AWS_INCOMPLETE) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "usage_gate_dynamodb: AWS credentials in the "
                      "environment are not usable: %s", ug_aws_strerror(rc));
    }

    need = 0;
    dcp = mcf->ddb->elts;

    for (i = 0; i < mcf->ddb->nelts; i++) {
        dc = dcp[i];

        dc->flush = ngx_pcalloc(cycle->pool,
                                NGX_HTTP_USAGE_GATE_DDB_FLUSH_MAX
                                * sizeof(ngx_http_usage_gate_ddb_flush_t));
        if (dc->flush == NULL) {
            return NGX_ERROR;
        }

        dc->sync_event.handler = ngx_http_usage_gate_ddb_sync_timer;
        dc->sync_event.data = dc;
        dc->sync_event.log = cycle->log;
        dc->sync_event.cancelable = 1;

        /* workers start together: spread their first look (the timer
         * looks every second at most, see the sync timer) */
        delay = ngx_min(dc->sync, 1000);
        delay = delay / 2 + (ngx_msec_t) ngx_random() % (delay / 2 + 1);
        ngx_add_timer(&dc->sync_event, delay);

        if (!aws->have_env && dc->file_creds == NULL) {
            need = 1;
        }
    }

    if (!need) {
        return NGX_OK;
    }

    /* ECS task role, then EC2 instance profile (IMDSv2), asynchronously */
    if (getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
    {
        if (ug_aws_ecs_url(aws->url, sizeof(aws->url),
                           getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
                           getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
            != UG_AWS_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "usage_gate_dynamodb: the ECS credentials URL in "
                          "AWS_CONTAINER_CREDENTIALS_*_URI is not usable "
                          "(https, or http to a loopback or link-local "
                          "address)");
            ngx_http_usage_gate_ddb_no_creds(cycle->log);
            return NGX_OK;
        }

        aws->remote_kind = NGX_HTTP_USAGE_GATE_AWS_ECS;

    } else {
        v = getenv("AWS_EC2_METADATA_DISABLED");

        if (v && ngx_strcasecmp((u_char *) v, (u_char *) "true") == 0) {
            ngx_http_usage_gate_ddb_no_creds(cycle->log);
            return NGX_OK;
        }

        aws->remote_kind = NGX_HTTP_USAGE_GATE_AWS_IMDS_TOKEN;
    }

    ngx_add_timer(&aws->refresh, 1);

    return NGX_OK;
}


/*
 * The configuration is committed: its zones' generation moves on, so
 * that the workers of the one before, told to quit next, leave what is
 * unwritten to this one's.  A reload that fails (a port that cannot be
 * bound, after the zones were mapped) never gets here, and the running
 * workers go on writing.
 */
ngx_int_t
ngx_http_usage_gate_ddb_init_module(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf)
{
    ngx_uint_t                        i;
    ngx_http_usage_gate_zone_t       *zone;
    ngx_http_usage_gate_ddb_sh_t     *dsh;
    ngx_http_usage_gate_ddb_conf_t  **dcp;

    if (mcf->ddb == NULL) {
        return NGX_OK;
    }

    dcp = mcf->ddb->elts;

    for (i = 0; i < mcf->ddb->nelts; i++) {
        zone = dcp[i]->shm_zone->data;

        if (zone->sh == NULL || zone->sh->store == NULL) {
            continue;
        }

        dsh = zone->sh->store;
        dcp[i]->generation = ngx_atomic_fetch_add(&dsh->generation, 1) + 1;
    }

    return NGX_OK;
}


void
ngx_http_usage_gate_ddb_exit_process(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf)
{
    ngx_uint_t                        i;
    ngx_queue_t                      *q;
    ngx_http_usage_gate_zone_t       *zone;
    ngx_http_usage_gate_ddb_sh_t     *dsh;
    ngx_http_usage_gate_ddb_req_t    *dr;
    ngx_http_usage_gate_ddb_conf_t  **dcp, *dc;

    if (!ngx_http_usage_gate_ddb_running || mcf->ddb == NULL) {
        return;
    }

    /*
     * Whatever is still in flight is cancelled: its units go back to the
     * zone, so that the state file written next keeps them.  (A graceful
     * exit waits for requests in flight; this is for a fast one.)
     */

    while (!ngx_queue_empty(&ngx_http_usage_gate_ddb_waiting)) {
        q = ngx_queue_head(&ngx_http_usage_gate_ddb_waiting);
        dr = ngx_queue_data(q, ngx_http_usage_gate_ddb_req_t, queue);
        ngx_http_usage_gate_ddb_cleanup(dr);
    }

    ngx_http_usage_gate_ddb_cancel(cycle->log);

    if (ngx_http_usage_gate_ddb_hold.timer_set) {
        ngx_del_timer(&ngx_http_usage_gate_ddb_hold);
    }

    dcp = mcf->ddb->elts;

    for (i = 0; i < mcf->ddb->nelts; i++) {
        dc = dcp[i];
        zone = dc->shm_zone->data;

        if (dc->sync_event.timer_set) {
            ngx_del_timer(&dc->sync_event);
        }

        if (zone->sh == NULL || zone->state.len != 0
            || zone->sh->superseded)
        {
            continue;
        }

        dsh = zone->sh->store;

        /*
         * A stop without a state file: what the zone has not written is
         * lost with it.  Said once, by the worker that made the last
         * round (or any, on a fast stop), as the others exit before it.
         */
        if (dsh->generation == dc->generation
            && dsh->backlog != 0
            && (dc->final || ngx_terminate)
            && ngx_atomic_cmp_set(&dsh->loss_logged, 0, 1))
        {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "usage_gate_dynamodb: zone \"%V\": %uA units "
                          "not written to DynamoDB are lost at this stop "
                          "(usage_gate_zone state= keeps them)",
                          &zone->name, dsh->backlog);
        }
    }

    ngx_http_usage_gate_ddb_running = 0;

    if (ngx_http_usage_gate_ddb_aws) {
        if (ngx_http_usage_gate_ddb_aws->refresh.timer_set) {
            ngx_del_timer(&ngx_http_usage_gate_ddb_aws->refresh);
        }

        ngx_explicit_memzero(ngx_http_usage_gate_ddb_aws,
                             sizeof(ngx_http_usage_gate_ddb_aws_t));
        ngx_http_usage_gate_ddb_aws = NULL;
    }
}


/*
 * Cancels the sync writes, claims, admin write-throughs and credentials
 * fetch in flight; their units go back to the zone.
 */
static void
ngx_http_usage_gate_ddb_cancel(ngx_log_t *log)
{
    ngx_uint_t                        i, k;
    ngx_queue_t                      *q;
    ngx_http_usage_gate_node_t       *un;
    ngx_http_usage_gate_zone_t       *zone;
    ngx_http_usage_gate_ddb_node_t   *st;
    ngx_http_usage_gate_ddb_conf_t  **dcp, *dc;
    ngx_http_usage_gate_ddb_admin_t  *a;
    ngx_http_usage_gate_ddb_flush_t  *f;

    dcp = ngx_http_usage_gate_ddb_mcf->ddb->elts;

    for (i = 0; i < ngx_http_usage_gate_ddb_mcf->ddb->nelts; i++) {
        dc = dcp[i];
        zone = dc->shm_zone->data;

        if (dc->flush == NULL || zone->sh == NULL) {
            continue;
        }

        for (k = 0; k < NGX_HTTP_USAGE_GATE_DDB_FLUSH_MAX; k++) {
            f = &dc->flush[k];

            if (!f->busy) {
                continue;
            }

            ngx_http_usage_gate_curl_cancel(f->curl);
            f->curl = NULL;
            f->busy = 0;

            /* sent, its outcome not known: it stays the owner's to
             * settle, by the new workers after a reload, or through the
             * state file after a stop */
            ngx_shmtx_lock(&zone->shpool->mutex);

            st = ngx_http_usage_gate_ddb_once_find(f, &un);

            if (st != NULL) {
                st->once.pid = 0;
                ngx_http_usage_gate_ddb_dirty(zone, st);
            }

            ngx_shmtx_unlock(&zone->shpool->mutex);
        }

        dc->inflight = 0;
        dc->failed = 1;
        dc->budget = 0;
        ngx_http_usage_gate_ddb_sync_end(dc);
    }

    while (!ngx_queue_empty(&ngx_http_usage_gate_ddb_admins)) {
        q = ngx_queue_head(&ngx_http_usage_gate_ddb_admins);
        a = ngx_queue_data(q, ngx_http_usage_gate_ddb_admin_t, queue);
        ngx_queue_remove(q);
        ngx_http_usage_gate_curl_cancel(a->curl);
        a->curl = NULL;

        if (a->extra && a->zone->sh) {
            /* a claim cut short: the owner may claim again */
            zone = a->zone;

            ngx_shmtx_lock(&zone->shpool->mutex);

            un = ngx_http_usage_gate_zone_node_locked(zone, a->owner, a->len,
                                              ngx_http_usage_gate_now_us(),
                                              0);
            if (un != NULL) {
                ug_claim_unclaim(&ngx_http_usage_gate_ddb_state(un)->c,
                                 a->extra, 0);
            }

            ngx_shmtx_unlock(&zone->shpool->mutex);
        }

        ngx_http_usage_gate_ddb_admin_free(a);
    }

    if (ngx_http_usage_gate_ddb_aws && ngx_http_usage_gate_ddb_aws->req) {
        ngx_http_usage_gate_curl_cancel(ngx_http_usage_gate_ddb_aws->req);
        ngx_http_usage_gate_ddb_aws->req = NULL;
    }
}
