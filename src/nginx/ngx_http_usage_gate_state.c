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
#include "ug_cycle.h"
#include "ug_state.h"
#include "ug_time.h"


#define NGX_HTTP_USAGE_GATE_STATE_BATCH  256


/* t->rc besides NGX_OK and NGX_ERROR: nothing written (upgrades) */
#define NGX_HTTP_USAGE_GATE_STATE_WAIT   1
#define NGX_HTTP_USAGE_GATE_STATE_MERGE  2

/* "<state>.upgrade": the file as a new binary's master loaded it */
#define NGX_HTTP_USAGE_GATE_STATE_BASE   ".upgrade"


typedef struct {
    ngx_http_usage_gate_zone_t     *zone;
    ngx_http_usage_gate_record_t   *records;
    ngx_uint_t                      n;
    int64_t                         now;
    ngx_int_t                       rc;
    char                            err[256];

    /* a binary upgrade: the old master's pid file, and the counts its
     * workers added after the load (month_used holds the units) */
    const char                     *oldpid;
    ngx_http_usage_gate_record_t   *merge;
    ngx_uint_t                      merge_n;
    uint64_t                        merge_units;
} ngx_http_usage_gate_state_task_t;


typedef struct {
    ngx_http_usage_gate_record_t   *rec;
    ngx_uint_t                      n;
    ngx_uint_t                      cap;
} ngx_http_usage_gate_state_list_t;


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
static const char *ngx_http_usage_gate_state_oldpid(void);
static void ngx_http_usage_gate_state_base(ngx_http_usage_gate_zone_t *zone,
    int rc, ngx_log_t *log);
static ngx_int_t ngx_http_usage_gate_state_upgrade(
    ngx_http_usage_gate_state_task_t *t);
static void ngx_http_usage_gate_state_merge(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_state_task_t *t, ngx_log_t *log);


static ngx_str_t  ngx_http_usage_gate_thread_pool = ngx_string("default");


typedef struct {
    ngx_http_usage_gate_zone_t  *zone;
    ngx_uint_t                   loaded;
    ngx_uint_t                   dropped;
    int32_t                      month;
    int64_t                      now;
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
    load.now = (int64_t) ngx_time();
    load.month = ug_month_index(load.now);
    salt_len = 0;
    err[0] = '\0';

    /* with a store, past months' usage not yet written to it is loaded
     * too, to be flushed */
    rc = ug_state_load((char *) zone->state.data,
                       zone->store ? INT32_MIN : load.month,
                       ngx_http_usage_gate_state_record, &load, salt,
                       &salt_len, err, sizeof(err));

    ngx_http_usage_gate_state_base(zone, rc, log);

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

    ug_notify_mark_t              notify;
    ngx_http_usage_gate_record_t  r;

    /* a past cycle (calendar or anchored) is of no use, but for usage
     * the store has not yet been told of */
    if (!ug_cycle_live(rec->counter.month, load->now) && rec->unsynced == 0
        && rec->write.seq == 0)
    {
        return 0;
    }

    /* the notifications already sent in the cycle are not sent again */
    notify.cycle = rec->notify_cycle;
    notify.sent = rec->notify_sent;

    if (ngx_http_usage_gate_zone_put(load->zone, (u_char *) rec->owner,
                                     rec->owner_len, &rec->counter, &notify)
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
            r.carry.write = rec->write;

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
    t->oldpid = ngx_http_usage_gate_state_oldpid();

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

    cap = ngx_http_usage_gate_zone_owners(zone)
          + NGX_HTTP_USAGE_GATE_STATE_BATCH;

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

    ngx_uint_t                   i;
    ug_state_record_t            rec;
    ug_state_writer_t           *w;
    ngx_http_usage_gate_zone_t  *zone;

    zone = t->zone;
    t->rc = NGX_ERROR;
    t->err[0] = '\0';

    if (zone->store == NULL) {
        t->rc = ngx_http_usage_gate_state_upgrade(t);

        if (t->rc != NGX_DECLINED) {
            return;
        }

        t->rc = NGX_ERROR;
    }

    w = ug_state_open_write((char *) zone->state.data, zone->sh->salt,
                            NGX_HTTP_USAGE_GATE_SALT_LEN, t->now, t->err,
                            sizeof(t->err));
    if (w == NULL) {
        return;
    }

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
        if (!ug_cycle_live(t->records[i].counter.month, t->now)
            && t->records[i].carry.unsynced == 0
            && t->records[i].carry.write.seq == 0)
        {
            continue;
        }

        rec.owner = t->records[i].owner;
        rec.owner_len = t->records[i].len;
        rec.counter = t->records[i].counter;
        rec.unsynced = t->records[i].carry.unsynced;
        rec.synced_base = t->records[i].carry.synced_base;
        rec.notify_cycle = t->records[i].notify.cycle;
        rec.notify_sent = t->records[i].notify.sent;
        rec.write = t->records[i].carry.write;

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

    ngx_atomic_uint_t  failures;

    ngx_free(t->records);
    t->records = NULL;

    if (t->rc == NGX_HTTP_USAGE_GATE_STATE_WAIT) {
        /* the old binary's workers still write the file */

    } else if (t->rc == NGX_HTTP_USAGE_GATE_STATE_MERGE) {
        ngx_http_usage_gate_state_merge(zone, t, log);

    } else if (t->rc == NGX_OK) {
        (void) ngx_atomic_fetch_add(&zone->sh->state_writes, 1);
        zone->sh->state_last_write = (ngx_atomic_uint_t) t->now;

        /* once, by whichever worker writes first after failures (the
         * writer's claim is held here), at a level that an error log
         * showing the failures shows too */
        failures = zone->sh->state_failures;

        if (failures != zone->sh->state_failures_seen) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "usage_gate_zone \"%V\": state file \"%V\" "
                          "written again after %uA failures", &zone->name,
                          &zone->state,
                          failures - zone->sh->state_failures_seen);
            zone->sh->state_failures_seen = failures;
        }

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
        t.oldpid = ngx_http_usage_gate_state_oldpid();

        /* after a binary upgrade: the old workers' counts first, once
         * their master is gone; while it runs, the file is theirs */
        if (zone->store == NULL) {
            t.rc = ngx_http_usage_gate_state_upgrade(&t);

            if (t.rc == NGX_HTTP_USAGE_GATE_STATE_WAIT) {
                ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                              "usage_gate_zone \"%V\": the old binary "
                              "still runs; its workers write \"%V\"",
                              &zone->name, &zone->state);
                (void) ngx_atomic_cmp_set(&zone->sh->state_writer, ngx_pid,
                                          0);
                continue;
            }

            if (t.rc == NGX_HTTP_USAGE_GATE_STATE_MERGE) {
                ngx_http_usage_gate_state_merge(zone, &t, cycle->log);
            }

            ngx_memzero(&t, sizeof(t));
            t.zone = zone;
        }

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


/*
 * Binary upgrades (USR2).  The new master loads the file while the old
 * master's workers still count in their own zone and write the same
 * file, last when they exit.  So the new master keeps the file it loaded
 * as "<state>.upgrade" (a hard link: the file itself, whatever replaces
 * the name later), its workers leave the file to the old ones while the
 * old master runs, and once it is gone they add, per owner, what the
 * file then says beyond what was loaded, and go on writing.  Zones with
 * a store leave this to the store: each zone writes its own usage there.
 */

/* set in the master that kept the file, inherited by its workers: only
 * they merge (after a rollback the old binary's workers see the mark) */
#define NGX_HTTP_USAGE_GATE_STATE_MARKS  64

typedef struct {
    dev_t  dev;
    ino_t  ino;
} ngx_http_usage_gate_state_mark_t;

static ngx_uint_t  ngx_http_usage_gate_state_marked;
static ngx_http_usage_gate_state_mark_t
    ngx_http_usage_gate_state_marks[NGX_HTTP_USAGE_GATE_STATE_MARKS];


static ngx_uint_t
ngx_http_usage_gate_state_mine(struct stat *st)
{
    ngx_uint_t  i;

    for (i = 0; i < ngx_http_usage_gate_state_marked; i++) {
        if (ngx_http_usage_gate_state_marks[i].dev == st->st_dev
            && ngx_http_usage_gate_state_marks[i].ino == st->st_ino)
        {
            return 1;
        }
    }

    return 0;
}


static const char *
ngx_http_usage_gate_state_oldpid(void)
{
    ngx_core_conf_t  *ccf;

    ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                           ngx_core_module);

    /* NUL-terminated: ngx_core_module_init_conf copies the extension's
     * terminating NUL */
    return (const char *) ccf->oldpid.data;
}


static char *
ngx_http_usage_gate_state_base_name(ngx_http_usage_gate_zone_t *zone)
{
    char  *name;

    name = malloc(zone->state.len + sizeof(NGX_HTTP_USAGE_GATE_STATE_BASE));
    if (name == NULL) {
        return NULL;
    }

    memcpy(name, zone->state.data, zone->state.len);
    memcpy(name + zone->state.len, NGX_HTTP_USAGE_GATE_STATE_BASE,
           sizeof(NGX_HTTP_USAGE_GATE_STATE_BASE));

    return name;
}


/* In the master, right after the load. */
static void
ngx_http_usage_gate_state_base(ngx_http_usage_gate_zone_t *zone, int rc,
    ngx_log_t *log)
{
    char         *base;
    ngx_fd_t      fd;
    ngx_err_t     err;
    struct stat   st;

    base = ngx_http_usage_gate_state_base_name(zone);
    if (base == NULL) {
        return;
    }

    /* one left by an upgrade that did not finish was merged, or is not
     * to be: the file loaded now holds what it would add */
    if (unlink(base) == -1 && ngx_errno != NGX_ENOENT) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "usage_gate_zone \"%V\": cannot remove \"%s\"",
                      &zone->name, base);
    }

    if (!ngx_inherited || !ngx_is_init_cycle((ngx_cycle_t *) ngx_cycle)
        || zone->store != NULL)
    {
        free(base);
        return;
    }

    if (rc == UG_STATE_OK) {
        if (link((char *) zone->state.data, base) == -1) {
            err = ngx_errno;
            goto failed;
        }

    } else {
        /* nothing loaded: an empty mark, everything is added */
        fd = ngx_open_file(base, NGX_FILE_WRONLY, NGX_FILE_CREATE_OR_OPEN,
                           0600);
        if (fd == NGX_INVALID_FILE) {
            err = ngx_errno;
            goto failed;
        }

        (void) ngx_close_file(fd);
    }

    if (stat(base, &st) == -1) {
        err = ngx_errno;
        goto failed;
    }

    if (ngx_http_usage_gate_state_marked == NGX_HTTP_USAGE_GATE_STATE_MARKS) {
        err = 0;
        (void) unlink(base);
        goto failed;
    }

    ngx_http_usage_gate_state_marks[ngx_http_usage_gate_state_marked].dev =
        st.st_dev;
    ngx_http_usage_gate_state_marks[ngx_http_usage_gate_state_marked++].ino =
        st.st_ino;

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "usage_gate_zone \"%V\": binary upgrade: what the old "
                  "workers count from now on is added once the old "
                  "master has exited", &zone->name);

    free(base);
    return;

failed:

    ngx_log_error(NGX_LOG_ALERT, log, err,
                  "usage_gate_zone \"%V\": binary upgrade: cannot keep "
                  "the loaded state file as \"%s\"; what the old workers "
                  "count from now on is lost", &zone->name, base);
    free(base);
}


static int
ngx_http_usage_gate_state_collect(void *data, const ug_state_record_t *rec)
{
    ngx_http_usage_gate_state_list_t *l = data;

    ngx_uint_t                     cap;
    ngx_http_usage_gate_record_t  *r;

    if (l->n == l->cap) {
        cap = l->cap ? 2 * l->cap : 256;

        r = realloc(l->rec, cap * sizeof(ngx_http_usage_gate_record_t));
        if (r == NULL) {
            return 1;
        }

        l->rec = r;
        l->cap = cap;
    }

    r = &l->rec[l->n++];
    memset(r, 0, sizeof(ngx_http_usage_gate_record_t));
    r->len = rec->owner_len;
    memcpy(r->owner, rec->owner, rec->owner_len);
    r->counter = rec->counter;
    r->notify.cycle = rec->notify_cycle;
    r->notify.sent = rec->notify_sent;

    return 0;
}


static int
ngx_http_usage_gate_state_cmp(const void *one, const void *two)
{
    int                                  c;
    const ngx_http_usage_gate_record_t  *a, *b;

    a = one;
    b = two;

    c = memcmp(a->owner, b->owner, ngx_min(a->len, b->len));

    if (c != 0) {
        return c;
    }

    if (a->len != b->len) {
        return a->len < b->len ? -1 : 1;
    }

    return (a->counter.month > b->counter.month)
           - (a->counter.month < b->counter.month);
}


/* The pid in the file while that process runs (EPERM: it runs as
 * another user, as a master does), else 0. */
static pid_t
ngx_http_usage_gate_state_running(const char *path)
{
    int      fd;
    char     buf[32];
    ssize_t  n;
    long     pid;

    if (path == NULL) {
        return 0;
    }

    fd = open(path, O_RDONLY);
    if (fd == -1) {
        return 0;
    }

    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);

    if (n <= 0) {
        return 0;
    }

    buf[n] = '\0';
    pid = strtol(buf, NULL, 10);

    if (pid <= 1) {
        return 0;
    }

    if (kill((pid_t) pid, 0) == 0 || errno == EPERM) {
        return (pid_t) pid;
    }

    return 0;
}


/*
 * In a pool thread, or at exit (plain C, no nginx calls): NGX_DECLINED
 * without an upgrade in progress; _WAIT while the old master runs;
 * _MERGE with t->merge filled once it is gone (the mark is removed).
 */
static ngx_int_t
ngx_http_usage_gate_state_upgrade(ngx_http_usage_gate_state_task_t *t)
{
    int                                rc;
    char                              *base;
    struct stat                        st;
    ngx_uint_t                         i;
    ngx_http_usage_gate_record_t      *found;
    ngx_http_usage_gate_state_list_t   loaded, now;

    base = ngx_http_usage_gate_state_base_name(t->zone);
    if (base == NULL) {
        return NGX_DECLINED;
    }

    /* only the master that kept it, and its workers, merge (a worker of
     * the old binary, or of one that took over again, sees the mark) */
    if (stat(base, &st) == -1 || !ngx_http_usage_gate_state_mine(&st)) {
        free(base);
        return NGX_DECLINED;
    }

    if (ngx_http_usage_gate_state_running(t->oldpid)) {
        free(base);
        return NGX_HTTP_USAGE_GATE_STATE_WAIT;
    }

    memset(&loaded, 0, sizeof(loaded));
    memset(&now, 0, sizeof(now));
    t->merge = NULL;
    t->merge_n = 0;
    t->merge_units = 0;
    t->err[0] = '\0';

    rc = UG_STATE_OK;

    if (st.st_size != 0) {
        rc = ug_state_load(base, INT32_MIN, ngx_http_usage_gate_state_collect,
                           &loaded, NULL, NULL, t->err, sizeof(t->err));
    }

    if (rc == UG_STATE_OK) {
        rc = ug_state_load((char *) t->zone->state.data, INT32_MIN,
                           ngx_http_usage_gate_state_collect, &now, NULL,
                           NULL, t->err, sizeof(t->err));
    }

    if (rc == UG_STATE_OK && loaded.n) {
        qsort(loaded.rec, loaded.n, sizeof(ngx_http_usage_gate_record_t),
              ngx_http_usage_gate_state_cmp);
    }

    /* what the old workers added: the file now, less the file loaded */
    for (i = 0; rc == UG_STATE_OK && i < now.n; i++) {
        found = loaded.n ? bsearch(&now.rec[i], loaded.rec, loaded.n,
                                   sizeof(ngx_http_usage_gate_record_t),
                                   ngx_http_usage_gate_state_cmp)
                         : NULL;

        if (found != NULL) {
            if (now.rec[i].counter.month_used
                <= found->counter.month_used)
            {
                continue;
            }

            now.rec[i].counter.month_used -= found->counter.month_used;
        }

        if (now.rec[i].counter.month_used == 0) {
            continue;
        }

        t->merge_units += now.rec[i].counter.month_used;
        now.rec[t->merge_n++] = now.rec[i];
    }

    if (rc == UG_STATE_OK) {
        t->merge = now.rec;

    } else {
        t->merge_n = 0;
        free(now.rec);
    }

    free(loaded.rec);

    /* once: a failure is said, and the next writes go on as usual */
    (void) unlink(base);
    free(base);

    return NGX_HTTP_USAGE_GATE_STATE_MERGE;
}


static ngx_int_t
ngx_http_usage_gate_state_add(ug_counter_t *counter, void *data)
{
    ngx_http_usage_gate_record_t *rec = data;

    ngx_http_usage_gate_node_t  *un;

    if (counter->month == rec->counter.month) {
        counter->month_used += rec->counter.month_used;

    } else if (counter->month < rec->counter.month) {
        /* the old workers' month is later than this zone's view */
        counter->month = rec->counter.month;
        counter->month_used = rec->counter.month_used;
    }

    /* what either binary's workers notified in the cycle stays sent */
    un = (ngx_http_usage_gate_node_t *)
             ((u_char *) counter - offsetof(ngx_http_usage_gate_node_t,
                                            counter));

    if (rec->notify.sent == 0) {
        return NGX_OK;
    }

    if (un->notify_cycle == rec->notify.cycle) {
        un->notify_sent |= (uint16_t) rec->notify.sent;

    } else if (rec->notify.cycle == counter->month) {
        un->notify_cycle = rec->notify.cycle;
        un->notify_sent = (uint16_t) rec->notify.sent;
    }

    return NGX_OK;
}


/* In a worker: adds what the old workers counted after the load. */
static void
ngx_http_usage_gate_state_merge(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_state_task_t *t, ngx_log_t *log)
{
    ngx_uint_t  i, lost;

    lost = 0;

    for (i = 0; i < t->merge_n; i++) {
        if (ngx_http_usage_gate_zone_update(zone, t->merge[i].owner,
                                            t->merge[i].len,
                                            ngx_http_usage_gate_state_add,
                                            &t->merge[i])
            == NGX_DECLINED
            && ngx_http_usage_gate_zone_put(zone, t->merge[i].owner,
                                            t->merge[i].len,
                                            &t->merge[i].counter,
                                            &t->merge[i].notify)
               != NGX_OK)
        {
            lost++;
        }
    }

    if (t->err[0] != '\0') {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "usage_gate_zone \"%V\": binary upgrade: cannot read "
                      "what the old workers wrote to \"%V\" (%s); what they "
                      "counted after the upgrade is lost", &zone->name,
                      &zone->state, t->err);

    } else {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "usage_gate_zone \"%V\": binary upgrade: added "
                      "%uL units of %ui owners that the old workers "
                      "counted", &zone->name, t->merge_units, t->merge_n);
    }

    if (lost) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "usage_gate_zone \"%V\": binary upgrade: %ui owners "
                      "did not fit; increase the zone size", &zone->name,
                      lost);
    }

    free(t->merge);
    t->merge = NULL;
    t->merge_n = 0;
}
