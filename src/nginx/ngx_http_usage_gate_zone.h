/*
 * The shared-memory zone: the owners in a hash index (ug_index.h) that
 * fills the slab pool after the shared header, and the zone-wide
 * statistics.  Every function here takes the slab pool's mutex for a
 * bounded, short piece of work.
 */

#ifndef NGX_HTTP_USAGE_GATE_ZONE_H
#define NGX_HTTP_USAGE_GATE_ZONE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_usage_gate_util.h"
#include "ug_decide.h"
#include "ug_identity.h"
#include "ug_index.h"
#include "ug_notify.h"
#include "ug_plan.h"
#include "ug_state.h"
#include "ug_stats.h"


#define NGX_HTTP_USAGE_GATE_SALT_LEN  32

/* Results counted per plan in the zone's statistics. */
enum {
    NGX_HTTP_USAGE_GATE_ST_ALLOWED = 0,
    NGX_HTTP_USAGE_GATE_ST_QUOTA,
    NGX_HTTP_USAGE_GATE_ST_RATE,
    NGX_HTTP_USAGE_GATE_ST_DRY_RUN_QUOTA,
    NGX_HTTP_USAGE_GATE_ST_DRY_RUN_RATE,
    NGX_HTTP_USAGE_GATE_ST_BYPASS,
    NGX_HTTP_USAGE_GATE_ST_UNAUTHORIZED,
    NGX_HTTP_USAGE_GATE_ST_BAD_REQUEST,
    NGX_HTTP_USAGE_GATE_ST_UNAVAILABLE,
    NGX_HTTP_USAGE_GATE_ST_PREFLIGHT,
    NGX_HTTP_USAGE_GATE_ST_OVERFLOW,
    NGX_HTTP_USAGE_GATE_ST_OVERFLOW_RATE,
    NGX_HTTP_USAGE_GATE_ST_FULL,
    NGX_HTTP_USAGE_GATE_ST_N
};


/* Per-plan counters: rows of them, one per worker (ug_stats.h); a row
 * is summed with the others only when the metrics are read. */
#define NGX_HTTP_USAGE_GATE_ST_PLANS  (UG_PLANS_MAX + 1)


/*
 * The layout of the zone's memory.  A reload that loads a rebuilt module
 * keeps the old mapping; the version tells whether this build can read
 * it (change it with any change to these structures).
 */
#define NGX_HTTP_USAGE_GATE_ZONE_VERSION  0x55470009


typedef struct {
    uint32_t                 version;

    /* the owner index: the rest of the slab pool, taken when the zone is
     * made (its hash seed is in its own header) */
    void                    *index;
    size_t                   index_size;

    ngx_atomic_t             evictions;
    ngx_atomic_t             fail_open;

    u_char                   salt[NGX_HTTP_USAGE_GATE_SALT_LEN];

    /* the state file: one writer at a time, by pid; counters for
     * the metrics */
    ngx_atomic_t             state_writer;
    ngx_atomic_t             state_writes;
    ngx_atomic_t             state_failures;
    ngx_atomic_t             state_last_write;
    ngx_atomic_t             state_claimed;
    ngx_atomic_t             state_failures_seen;  /* state_failures at
                                                      the last write */

    /* set when a reload copied this zone into a resized one: its workers
     * must no longer write the state file over the new zone's counts */
    ngx_atomic_t             superseded;

    /* bytes after each owner for its store's state (0 without a
     * store), and the store's zone-wide part */
    size_t                   node_extra;
    void                    *store;

    /* Plans are kept by name, so counts survive a reload that reorders
     * or adds plans; slot UG_PLANS_MAX collects requests with no plan.
     * Their counters (ug_stats_t) are in the slab, in stats_rows rows:
     * the worker count when the zone was made, kept by reloads. */
    u_char                   stats_name[UG_PLANS_MAX][UG_PLAN_NAME_MAX + 1];
    void                    *stats;
    size_t                   stats_size;
    ngx_uint_t               stats_rows;

    /* billing, by the same plan slots: units given back (usage_gate_
     * refund) and units allowed past the included month; and webhook
     * deliveries (usage_gate_notify) for the zone's owners */
    ngx_atomic_t             refunded[UG_PLANS_MAX + 1];
    ngx_atomic_t             overage[UG_PLANS_MAX + 1];
    ngx_atomic_t             notify_sent;
    ngx_atomic_t             notify_failures;

    /* the per-minute bucket that new owners share while the zone is
     * full (usage_gate_zone overflow_minute=) */
    ug_counter_t             overflow;
} ngx_http_usage_gate_shctx_t;


/*
 * An owner: the payload of its slot in the index, which keeps the owner's
 * key itself.  The store's bytes, when there is a store, follow at
 * ngx_http_usage_gate_node_extra().  Payloads never move while their
 * owner is in the zone.
 */
typedef struct {
    ug_counter_t             counter;
    /* usage_gate_notify's ug_notify_mark_t: the thresholds sent (bit i
     * for the i-th, at most UG_NOTIFY_MAX = 16) in cycle notify_cycle */
    int32_t                  notify_cycle;
    uint16_t                 notify_sent;
    uint16_t                 reserved;
} ngx_http_usage_gate_node_t;


/* Key bytes kept in an owner's slot: `anon:` keys (29 bytes) and Clerk
 * ids (32) fit in one 104-byte slot, and the longest ids (128) in two. */
#define NGX_HTTP_USAGE_GATE_KEY_INLINE  48


typedef struct ngx_http_usage_gate_store_s  ngx_http_usage_gate_store_t;


typedef struct ngx_http_usage_gate_zone_s {
    ngx_http_usage_gate_shctx_t  *sh;
    ngx_slab_pool_t              *shpool;
    ug_index_t                   *ix;            /* in sh->index */
    size_t                        slot_size;
    ngx_str_t                     name;
    size_t                        size;

    /* plan index (in the http{} plan table) -> stats slot in sh */
    ngx_uint_t                    stats_slot[UG_PLANS_MAX];
    ug_stats_t                   *stats;         /* in sh->stats */

    ngx_uint_t                    configured;    /* usage_gate_zone seen */
    u_char                       *file;          /* where it was declared */
    ngx_uint_t                    line;

    ug_plan_table_t              *plans;
    ngx_str_t                     salt;          /* configured, or empty */

    ngx_str_t                     state;         /* file; NUL-terminated */
    ngx_msec_t                    state_interval;
    ngx_event_t                   state_event;   /* per worker */
    void                         *state_task;    /* per worker, reused */
    ngx_uint_t                    state_busy;    /* a write in flight */
    ngx_core_conf_t              *core_conf;     /* its `user` writes the
                                                    state file */

    /* per worker: the keyed HMAC for anonymous owners, made on first use
     * (the salt is final only once the zone is loaded), and when the
     * zone-full alert was last logged */
    ug_anon_t                    *anon;
    time_t                        full_logged;

    /* a full zone: new owners share a bucket of overflow_minute units a
     * minute (UG_OFF: no cap), or get 503 with full_deny */
    int64_t                       overflow_minute;
    ngx_uint_t                    full_deny;

    /* the shared store behind the zone (ngx_http_usage_gate_store.h) and
     * its configuration, or NULL; and the bytes each owner's node
     * carries for it */
    ngx_http_usage_gate_store_t  *store;
    void                         *store_conf;
    size_t                        node_extra;

    /* fills a new zone from the state file, when it has one */
    ngx_int_t                   (*load)(struct ngx_http_usage_gate_zone_s *zone,
                                        ngx_log_t *log);
} ngx_http_usage_gate_zone_t;


/* Where a walk over the zone stopped: the index's next slot (start at
 * 0, as a zeroed cursor does). */
typedef struct {
    uint32_t                      slot;
} ngx_http_usage_gate_cursor_t;


/*
 * What a store has not yet written for an owner, kept by the state file
 * and carried into a resized zone: usage for counter.month and for the
 * month before (old_month), and the store's last count.  All 0 without a
 * store.
 */
typedef struct {
    int64_t                       unsynced;
    uint64_t                      synced_base;
    int64_t                       old_unsynced;
    int32_t                       old_month;

    /* a store write whose outcome is not known yet (seq 0: none) */
    ug_state_write_t              write;
} ngx_http_usage_gate_carry_t;


typedef struct {
    size_t                        len;
    u_char                        owner[UG_OWNER_MAX];
    ug_counter_t                  counter;

    /* the notifications sent in the owner's cycle (usage_gate_notify) */
    ug_notify_mark_t              notify;

    ngx_http_usage_gate_carry_t   carry;
} ngx_http_usage_gate_record_t;


typedef enum {
    NGX_HTTP_USAGE_GATE_DECIDED = 0,
    NGX_HTTP_USAGE_GATE_FULL             /* no room: fail open */
} ngx_http_usage_gate_zone_rc_e;


ngx_shm_zone_t *ngx_http_usage_gate_zone_add(ngx_conf_t *cf, ngx_str_t *name,
    size_t size);

/* Decides and counts one request under billing terms (NULL: calendar
 * months, no overage). */
ngx_int_t ngx_http_usage_gate_zone_decide(ngx_http_usage_gate_zone_t *zone,
    u_char *owner, size_t len, const ug_limits_t *limits,
    const ug_terms_t *terms, uint64_t cost, uint64_t now_us,
    ug_decision_t *d);

/* Where the bytes an owner's node carries for its store start. */
#define ngx_http_usage_gate_node_extra(un)                                   \
    ((void *) ((u_char *) (un) + sizeof(ngx_http_usage_gate_node_t)))

/*
 * Under the zone lock: the owner's node, marked as seen; with create, a
 * new one (zero counts) if the zone holds none.  NULL when it is not
 * there, or there is no room.
 */
ngx_http_usage_gate_node_t *ngx_http_usage_gate_zone_node_locked(
    ngx_http_usage_gate_zone_t *zone, u_char *owner, size_t len,
    uint64_t now_us, ngx_uint_t create);

/* Under the zone lock: copies a node's owner key into buf (UG_OWNER_MAX
 * bytes); returns its length. */
size_t ngx_http_usage_gate_zone_owner_locked(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_node_t *un, u_char *buf);

/* Owners in the zone (read without the lock: for reports). */
ngx_uint_t ngx_http_usage_gate_zone_owners(ngx_http_usage_gate_zone_t *zone);

/* Bytes of the zone in use: the slab pool's and the index's. */
size_t ngx_http_usage_gate_zone_used(ngx_http_usage_gate_zone_t *zone);

/* Copies an owner's counter; NGX_DECLINED if the zone does not hold it. */
ngx_int_t ngx_http_usage_gate_zone_read(ngx_http_usage_gate_zone_t *zone,
    u_char *owner, size_t len, ug_counter_t *counter);

/*
 * Sets an owner's counter, adding the owner if needed (state file, zone
 * resize, admin), and the notifications sent in its cycle when notify
 * has any (NULL: they stay).  NGX_DECLINED if there is no room.  The
 * caller holds no lock; `locked` variants are for callers that do.
 */
ngx_int_t ngx_http_usage_gate_zone_put(ngx_http_usage_gate_zone_t *zone,
    u_char *owner, size_t len, const ug_counter_t *counter,
    const ug_notify_mark_t *notify);

/*
 * Copies up to max owners that follow the cursor in the index's slot
 * order, and advances it.  The lock is held for a bounded number of slots
 * at a time; owners present for the whole walk are seen exactly once,
 * owners added or dropped meanwhile may or may not be, which is fine for
 * snapshots.  Returns how many were copied; 0 at the end.
 */
ngx_uint_t ngx_http_usage_gate_zone_next(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_cursor_t *cursor,
    ngx_http_usage_gate_record_t *records, ngx_uint_t max);

/*
 * Runs fn on an owner's counter under the lock: the admin API's changes
 * are applied in one place, atomically with respect to every worker.
 * NGX_DECLINED if the zone does not hold the owner; else what fn returns.
 */
typedef ngx_int_t (*ngx_http_usage_gate_update_pt)(ug_counter_t *counter,
    void *data);

ngx_int_t ngx_http_usage_gate_zone_update(ngx_http_usage_gate_zone_t *zone,
    u_char *owner, size_t len, ngx_http_usage_gate_update_pt fn, void *data);

/*
 * Takes one unit from the bucket that new owners of a full zone share:
 * NGX_OK, or NGX_DECLINED with d's retry_after and minute fields set.
 */
ngx_int_t ngx_http_usage_gate_zone_overflow(ngx_http_usage_gate_zone_t *zone,
    uint64_t now_us, ug_decision_t *d);

void ngx_http_usage_gate_zone_count(ngx_http_usage_gate_zone_t *zone,
    ngx_int_t plan, ngx_uint_t result);

#endif /* NGX_HTTP_USAGE_GATE_ZONE_H */
