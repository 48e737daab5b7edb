/*
 * The state file: the zone's counts written every state_interval and at
 * shutdown, loaded when the zone is created, so that a restart or an
 * upgrade loses no billing data.
 *
 * A worker takes a snapshot in short batches under the zone lock and
 * hands the file writing (write, fsync, rename) to nginx's thread pool,
 * so that neither the lock nor the event loop waits on the disk.  One
 * writer at a time across workers: sh->state_writer holds its pid.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_module.h"
#include "ngx_http_usage_gate_store.h"
#include "ug_state.h"
#include "ug_time.h"


#define NGX_HTTP_USAGE_GATE_STATE_BATCH  256


typedef struct {
    ngx_http_usage_gate_zone_t     *zone;
    ngx_http_usage_gate_record_t   *records;
    ngx_uint_t                      n;
    int64_t                         now;
    ngx_int_t                       rc;
    char                            err[256];
} ngx_http_usage_gate_state_task_t;


static ngx_int_t ngx_http_usage_gate_state_snapshot(
    ngx_http_usage_gate_zone_t *zone, ngx_http_usage_gate_state_task_t *t,
    ngx_log_t *log);
static void ngx_http_usage_gate_state_write(void *data, ngx_log_t *log);
static void ngx_http_usage_gate_state_written(ngx_event_t *ev);
static void ngx_http_usage_gate_state_done(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_state_task_t *t, ngx_log_t *log);
static void ngx_http_usage_gate_state_timer(ngx_event_t *ev);
static int ngx_http_usage_gate_state_record(void *data,
    const ug_state_record_t *rec);


static ngx_str_t  ngx_http_usage_gate_thread_pool = ngx_string("default");


typedef struct {
    ngx_http_usage_gate_zone_t  *zone;
    ngx_uint_t                   loaded;
    ngx_uint_t                   dropped;
    int32_t                      month;
} ngx_http_usage_gate_load_t;


/*
 * Called when a zone is created with no predecessor: at start, or when
 * a reload adds it.  Any problem with the file leaves the zone empty and
 * says why; it never stops nginx from starting.
 */
ngx_int_t
ngx_http_usage_gate_state_load(ngx_http_usage_gate_zone_t *zone,
    ngx_log_t *log)
{
    int                          rc;
    char                         err[256], *aside;
    size_t                       salt_len, size;
    unsigned char                salt[UG_STATE_SALT_MAX];
    ngx_http_usage_gate_load_t   load;

    /* nginx -t only checks the configuration: it must neither load
     * counts nor move a damaged file aside */
    if (zone->state.len == 0 || ngx_test_config) {
        return NGX_OK;
    }

    load.zone = zone;
    load.loaded = 0;
    load.dropped = 0;
    load.month = ug_month_index((int64_t) ngx_time());
    salt_len = 0;
    err[0] = '\0';

    /* with a store, past months' usage not yet written to it is loaded
     * too, to be flushed */
    rc = ug_state_load((char *) zone->state.data,
                       zone->store ? INT32_MIN : load.month,
                       ngx_http_usage_gate_state_record, &load, salt,
                       &salt_len, err, sizeof(err));

    switch (rc) {

    case UG_STATE_OK:
        if (salt_len == NGX_HTTP_USAGE_GATE_SALT_LEN) {
            /* anonymous owners keep their keys across restarts */
            ngx_memcpy(zone->sh->salt, salt, NGX_HTTP_USAGE_GATE_SALT_LEN);
        }

        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "usage_gate_zone \"%V\": loaded %ui owners from "
                      "\"%V\"", &zone->name, load.loaded, &zone->state);

        if (load.dropped) {
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "usage_gate_zone \"%V\": %ui owners from \"%V\" "
                          "did not fit; increase the zone size",
                          &zone->name, load.dropped, &zone->state);
        }

        return NGX_OK;

    case UG_STATE_MISSING:
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "usage_gate_zone \"%V\": no state file \"%V\" yet, "
                      "starting empty", &zone->name, &zone->state);
        return NGX_OK;

    case UG_STATE_CORRUPT:
        size = zone->state.len + UG_STATE_ASIDE_EXTRA;

        aside = ngx_alloc(size, log);
        if (aside == NULL) {
            return NGX_ERROR;
        }

        if (ug_state_set_aside((char *) zone->state.data,
                               (int64_t) ngx_time(), aside, size)
            == UG_STATE_OK)
        {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "usage_gate_zone \"%V\": state file \"%V\" is "
                          "unusable (%s); moved it to \"%s\" and started "
                          "empty", &zone->name, &zone->state, err, aside);

        } else {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "usage_gate_zone \"%V\": state file \"%V\" is "
                          "unusable (%s) and could not be moved aside; "
                          "started empty", &zone->name, &zone->state, err);
        }

        ngx_free(aside);
        return NGX_OK;

    default:
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "usage_gate_zone \"%V\": cannot read state file "
                      "\"%V\": %s; started empty, check its permissions",
                      &zone->name, &zone->state, err);
        return NGX_OK;
    }
}


static int
ngx_http_usage_gate_state_record(void *data, const ug_state_record_t *rec)
{
    ngx_http_usage_gate_load_t *load = data;

    ngx_http_usage_gate_record_t  r;

    if (rec->counter.month < load->month && rec->unsynced == 0) {
        return 0;
    }

    if (ngx_http_usage_gate_zone_put(load->zone, (u_char *) rec->owner,
                                     rec->owner_len, &rec->counter)
        == NGX_OK)
    {
        if (load->zone->store) {
            r.len = rec->owner_len;
            ngx_memcpy(r.owner, rec->owner, rec->owner_len);
            r.counter = rec->counter;
            r.carry.unsynced = rec->unsynced;
            r.carry.synced_base = rec->synced_base;
            r.carry.old_unsynced = 0;
            r.carry.old_month = 0;

            load->zone->store->restore(load->zone, &r);
        }

        load->loaded++;

    } else {
        load->dropped++;
    }

    return 0;
}


/* Starts each state-file zone's timer in a new worker. */
ngx_int_t
ngx_http_usage_gate_state_init_process(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf)
{
    ngx_uint_t                   i;
    ngx_msec_t                   delay;
    ngx_shm_zone_t             **zones;
    ngx_http_usage_gate_zone_t  *zone;

    zones = mcf->zones.elts;

    for (i = 0; i < mcf->zones.nelts; i++) {
        zone = zones[i]->data;

        if (zone->state.len == 0) {
            continue;
        }

        /* one task per zone and worker, reused by every write */
        zone->state_task = ngx_thread_task_alloc(cycle->pool,
                                    sizeof(ngx_http_usage_gate_state_task_t));
        if (zone->state_task == NULL) {
            return NGX_ERROR;
        }

        zone->state_event.handler = ngx_http_usage_gate_state_timer;
        zone->state_event.data = zone;
        zone->state_event.log = cycle->log;
        zone->state_event.cancelable = 1;

        /* workers start together: spread their first look */
        delay = zone->state_interval / 2
                + (ngx_msec_t) ngx_random() % (zone->state_interval / 2 + 1);

        ngx_add_timer(&zone->state_event, delay);
    }

    return NGX_OK;
}


static void
ngx_http_usage_gate_state_timer(ngx_event_t *ev)
{
    time_t                             now;
    ngx_thread_pool_t                 *tp;
    ngx_thread_task_t                 *task;
    ngx_http_usage_gate_zone_t        *zone;
    ngx_http_usage_gate_state_task_t  *t;

    zone = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (zone->sh->superseded) {
        /* a resized zone holds these counts now */
        return;
    }

    ngx_add_timer(ev, zone->state_interval);

    now = ngx_time();

    /* a writer that died holding the claim must not stop all writes:
     * a claim older than ten intervals is taken over */
    if (zone->sh->state_writer != 0
        && (time_t) zone->sh->state_claimed
           + (time_t) (10 * zone->state_interval / 1000) < now)
    {
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "usage_gate_zone \"%V\": state file writer %P did "
                      "not finish, taking over", &zone->name,
                      (ngx_pid_t) zone->sh->state_writer);
        zone->sh->state_writer = 0;
    }

    /* one write per interval for all workers together */
    if (zone->state_busy
        || (time_t) zone->sh->state_last_write
           + (time_t) (zone->state_interval / 1000) > now
        || !ngx_atomic_cmp_set(&zone->sh->state_writer, 0, ngx_pid))
    {
        return;
    }

    zone->sh->state_claimed = (ngx_atomic_uint_t) now;

    tp = ngx_thread_pool_get((ngx_cycle_t *) ngx_cycle,
                             &ngx_http_usage_gate_thread_pool);

    task = zone->state_task;

    if (tp == NULL) {
        ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                      "usage_gate_zone \"%V\": no thread pool \"default\" "
                      "for the state file", &zone->name);
        (void) ngx_atomic_cmp_set(&zone->sh->state_writer, ngx_pid, 0);
        return;
    }

    t = task->ctx;
    t->zone = zone;

    if (ngx_http_usage_gate_state_snapshot(zone, t, ev->log) != NGX_OK) {
        (void) ngx_atomic_fetch_add(&zone->sh->state_failures, 1);
        (void) ngx_atomic_cmp_set(&zone->sh->state_writer, ngx_pid, 0);
        return;
    }

    task->handler = ngx_http_usage_gate_state_write;
    task->event.handler = ngx_http_usage_gate_state_written;
    task->event.data = t;

    if (ngx_thread_task_post(tp, task) != NGX_OK) {
        ngx_free(t->records);
        (void) ngx_atomic_fetch_add(&zone->sh->state_failures, 1);
        (void) ngx_atomic_cmp_set(&zone->sh->state_writer, ngx_pid, 0);
        return;
    }

    zone->state_busy = 1;
}


/*
 * Copies the zone's owners, a batch per lock hold.  The snapshot is not
 * one instant across batches; each owner's counter is consistent, and a
 * later write catches up, which is all a crash-recovery file needs.
 */
static ngx_int_t
ngx_http_usage_gate_state_snapshot(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_state_task_t *t, ngx_log_t *log)
{
    ngx_uint_t                      n, cap;
    ngx_http_usage_gate_record_t   *rec, *grown;
    ngx_http_usage_gate_cursor_t    cursor;

    cap = zone->sh->owners + NGX_HTTP_USAGE_GATE_STATE_BATCH;

    rec = ngx_alloc(cap * sizeof(ngx_http_usage_gate_record_t), log);
    if (rec == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&cursor, sizeof(cursor));
    t->n = 0;

    for ( ;; ) {
        if (t->n + NGX_HTTP_USAGE_GATE_STATE_BATCH > cap) {
            cap *= 2;

            grown = ngx_alloc(cap * sizeof(ngx_http_usage_gate_record_t),
                              log);
            if (grown == NULL) {
                ngx_free(rec);
                return NGX_ERROR;
            }

            ngx_memcpy(grown, rec,
                       t->n * sizeof(ngx_http_usage_gate_record_t));
            ngx_free(rec);
            rec = grown;
        }

        n = ngx_http_usage_gate_zone_next(zone, &cursor, rec + t->n,
                                          NGX_HTTP_USAGE_GATE_STATE_BATCH);
        if (n == 0) {
            break;
        }

        t->n += n;
    }

    t->records = rec;
    t->now = (int64_t) ngx_time();

    return NGX_OK;
}


/* In a pool thread (or at exit): writes the snapshot; no nginx calls. */
static void
ngx_http_usage_gate_state_write(void *data, ngx_log_t *log)
{
    ngx_http_usage_gate_state_task_t *t = data;

    int32_t                      month;
    ngx_uint_t                   i;
    ug_state_record_t            rec;
    ug_state_writer_t           *w;
    ngx_http_usage_gate_zone_t  *zone;

    zone = t->zone;
    t->rc = NGX_ERROR;
    t->err[0] = '\0';

    w = ug_state_open_write((char *) zone->state.data, zone->sh->salt,
                            NGX_HTTP_USAGE_GATE_SALT_LEN, t->now, t->err,
                            sizeof(t->err));
    if (w == NULL) {
        return;
    }

    month = ug_month_index(t->now);

    ngx_memzero(&rec, sizeof(rec));

    for (i = 0; i < t->n; i++) {

        /*
         * usage of the month before that the store has not yet written
         * goes first, as a record of its own for that month (the loader
         * adds the records of one owner together)
         */
        if (t->records[i].carry.old_unsynced != 0) {
            ngx_memzero(&rec, sizeof(rec));
            rec.owner = t->records[i].owner;
            rec.owner_len = t->records[i].len;
            rec.counter.month = t->records[i].carry.old_month;
            rec.unsynced = t->records[i].carry.old_unsynced;

            if (ug_state_write_record(w, &rec) == UG_STATE_IO) {
                break;
            }

            ngx_memzero(&rec, sizeof(rec));
        }

        /* past months are of no use to a restart, but for usage that
         * the store has not yet been told of */
        if (t->records[i].counter.month < month
            && t->records[i].carry.unsynced == 0)
        {
            continue;
        }

        rec.owner = t->records[i].owner;
        rec.owner_len = t->records[i].len;
        rec.counter = t->records[i].counter;
        rec.unsynced = t->records[i].carry.unsynced;
        rec.synced_base = t->records[i].carry.synced_base;

        if (ug_state_write_record(w, &rec) != UG_STATE_OK) {
            break;
        }
    }

    if (ug_state_commit(w, t->err, sizeof(t->err)) == UG_STATE_OK) {
        t->rc = NGX_OK;
    }
}


static void
ngx_http_usage_gate_state_written(ngx_event_t *ev)
{
    ngx_http_usage_gate_state_task_t  *t;

    t = ev->data;

    t->zone->state_busy = 0;

    /* a thread task's event carries no log of its own */
    ngx_http_usage_gate_state_done(t->zone, t, ngx_cycle->log);
}


static void
ngx_http_usage_gate_state_done(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_state_task_t *t, ngx_log_t *log)
{
    static time_t  logged;

    ngx_free(t->records);
    t->records = NULL;

    if (t->rc == NGX_OK) {
        (void) ngx_atomic_fetch_add(&zone->sh->state_writes, 1);
        zone->sh->state_last_write = (ngx_atomic_uint_t) t->now;

    } else {
        (void) ngx_atomic_fetch_add(&zone->sh->state_failures, 1);

        if (logged != ngx_time()) {
            logged = ngx_time();
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "usage_gate_zone \"%V\": cannot write state file "
                          "\"%V\": %s; counts since the last write would "
                          "be lost in a crash", &zone->name, &zone->state,
                          t->err);
        }
    }

    (void) ngx_atomic_cmp_set(&zone->sh->state_writer, ngx_pid, 0);
}


/*
 * At a worker's exit (quit, stop, reload): a last write, synchronous as
 * nothing else is served any more.  Workers exit together, so each waits
 * briefly for another's write rather than skipping its own: the last
 * one to exit has seen every count.
 */
void
ngx_http_usage_gate_state_exit_process(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf)
{
    ngx_uint_t                         i, tries;
    ngx_shm_zone_t                   **zones;
    ngx_http_usage_gate_zone_t        *zone;
    ngx_http_usage_gate_state_task_t   t;

    zones = mcf->zones.elts;

    for (i = 0; i < mcf->zones.nelts; i++) {
        zone = zones[i]->data;

        if (zone->state.len == 0 || zone->sh == NULL
            || zone->sh->superseded)
        {
            continue;
        }

        for (tries = 0; tries < 200; tries++) {
            if (zone->sh->state_writer == (ngx_atomic_uint_t) ngx_pid
                || ngx_atomic_cmp_set(&zone->sh->state_writer, 0, ngx_pid))
            {
                break;
            }

            ngx_msleep(10);
        }

        if (tries == 200) {
            /* a writer died holding the claim: take it over */
            zone->sh->state_writer = ngx_pid;
        }

        ngx_memzero(&t, sizeof(t));
        t.zone = zone;

        if (ngx_http_usage_gate_state_snapshot(zone, &t, cycle->log)
            != NGX_OK)
        {
            (void) ngx_atomic_cmp_set(&zone->sh->state_writer, ngx_pid, 0);
            continue;
        }

        ngx_http_usage_gate_state_write(&t, cycle->log);
        ngx_http_usage_gate_state_done(zone, &t, cycle->log);
    }
}
