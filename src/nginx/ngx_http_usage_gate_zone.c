/*
 * The shared-memory zone of owners (model: ngx_http_limit_req_module).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include <openssl/rand.h>

#include "ngx_http_usage_gate_zone.h"
#include "ngx_http_usage_gate_paths.h"
#include "ngx_http_usage_gate_store.h"
#include "ug_cycle.h"
#include "ug_time.h"


/*
 * Slots the clock hand may look at to make room for one new owner, and
 * per batch of a walk: bound the time the zone lock is held.
 */
#define NGX_HTTP_USAGE_GATE_EVICT_SCAN  64
#define NGX_HTTP_USAGE_GATE_WALK_SCAN   4096


extern ngx_module_t  ngx_http_usage_gate_module;


typedef struct {
    ngx_http_usage_gate_zone_t   *zone;
    uint64_t                      now_us;
    ngx_uint_t                    dropped;
} ngx_http_usage_gate_evict_ctx_t;


static ngx_int_t ngx_http_usage_gate_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_usage_gate_index_conf(ngx_http_usage_gate_zone_t *zone,
    ug_index_conf_t *conf);
static ngx_int_t ngx_http_usage_gate_index_make(
    ngx_http_usage_gate_zone_t *zone, ngx_log_t *log);
static int ngx_http_usage_gate_may_drop(void *data, ug_index_entry_t *e,
    void *payload);
static ngx_http_usage_gate_node_t *ngx_http_usage_gate_get_locked(
    ngx_http_usage_gate_zone_t *zone, uint64_t hash, u_char *owner,
    size_t len, uint64_t now_us, ngx_uint_t create);
static ngx_int_t ngx_http_usage_gate_stats_make(
    ngx_http_usage_gate_zone_t *zone, ngx_log_t *log);
static void ngx_http_usage_gate_stats_bind(ngx_http_usage_gate_zone_t *zone);
static ngx_int_t ngx_http_usage_gate_zone_attach(
    ngx_http_usage_gate_zone_t *zone, ngx_log_t *log);
static void ngx_http_usage_gate_zone_carry(ngx_http_usage_gate_zone_t *zone,
    ngx_shm_zone_t *shm_zone);


ngx_shm_zone_t *
ngx_http_usage_gate_zone_add(ngx_conf_t *cf, ngx_str_t *name, size_t size)
{
    ngx_shm_zone_t              *shm_zone;
    ngx_http_usage_gate_zone_t  *zone;

    shm_zone = ngx_shared_memory_add(cf, name, size,
                                     &ngx_http_usage_gate_module);
    if (shm_zone == NULL) {
        return NULL;
    }

    if (shm_zone->data == NULL) {
        zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_usage_gate_zone_t));
        if (zone == NULL) {
            return NULL;
        }

        zone->name = *name;
        shm_zone->init = ngx_http_usage_gate_init_zone;
        shm_zone->data = zone;
    }

    return shm_zone;
}


static ngx_int_t
ngx_http_usage_gate_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_usage_gate_zone_t  *ozone = data;

    size_t                        len;
    ngx_http_usage_gate_zone_t   *zone;

    zone = shm_zone->data;
    zone->size = shm_zone->shm.size;

    /* here, not in an init_module hook: this runs in nginx -t too, and a
     * failure here makes a reload keep the old configuration instead of
     * ending the master */
    if (ngx_http_usage_gate_paths_check(zone, shm_zone->shm.log) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ozone) {
        /* a reload with the same name and size: nginx kept the mapping,
         * so the owners and their counts carry over as they are */
        if (ozone->sh->version != NGX_HTTP_USAGE_GATE_ZONE_VERSION) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "usage_gate_zone \"%V\" was made by another "
                          "build of the module; restart nginx (with a "
                          "state file, counts are kept) instead of "
                          "reloading", &shm_zone->shm.name);
            return NGX_ERROR;
        }

        /* a store's state makes every node larger; nodes made for
         * another layout cannot be reused */
        if (ozone->sh->node_extra != zone->node_extra) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "usage_gate_zone \"%V\": usage_gate_%V was "
                          "added or removed; restart nginx (with a state "
                          "file, counts are kept) instead of reloading",
                          &shm_zone->shm.name,
                          zone->store ? &zone->store->name
                                      : &ozone->store->name);
            return NGX_ERROR;
        }

        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;

        if (ngx_http_usage_gate_zone_attach(zone, shm_zone->shm.log)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        return zone->store ? zone->store->init_zone(zone, shm_zone->shm.log)
                           : NGX_OK;
    }

    zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zone->sh = zone->shpool->data;

        return ngx_http_usage_gate_zone_attach(zone, shm_zone->shm.log);
    }

    zone->sh = ngx_slab_alloc(zone->shpool,
                              sizeof(ngx_http_usage_gate_shctx_t));
    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(zone->sh, sizeof(ngx_http_usage_gate_shctx_t));
    zone->sh->version = NGX_HTTP_USAGE_GATE_ZONE_VERSION;
    zone->sh->node_extra = zone->node_extra;

    zone->shpool->data = zone->sh;

    /* The fallback salt for anonymous owners: random per zone, never a
     * constant an attacker could know; kept across reloads with the zone.*/
    if (RAND_bytes(zone->sh->salt, NGX_HTTP_USAGE_GATE_SALT_LEN) != 1) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "usage_gate_zone \"%V\": no random bytes for the "
                      "anonymous salt", &shm_zone->shm.name);
        return NGX_ERROR;
    }

    len = sizeof(" in usage_gate_zone \"\"") + shm_zone->shm.name.len;

    zone->shpool->log_ctx = ngx_slab_alloc(zone->shpool, len);
    if (zone->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(zone->shpool->log_ctx, " in usage_gate_zone \"%V\"%Z",
                &shm_zone->shm.name);

    zone->shpool->log_nomem = 0;

    if (ngx_http_usage_gate_stats_make(zone, shm_zone->shm.log) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_usage_gate_stats_bind(zone);

    if (zone->store
        && zone->store->init_zone(zone, shm_zone->shm.log) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* last: the index takes what the allocations above left */
    if (ngx_http_usage_gate_index_make(zone, shm_zone->shm.log) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_usage_gate_zone_carry(zone, shm_zone);

    return NGX_OK;
}


/*
 * A zone whose memory was made before (kept by a reload): this
 * configuration's view of its index and of the workers' statistics rows.
 */
static ngx_int_t
ngx_http_usage_gate_zone_attach(ngx_http_usage_gate_zone_t *zone,
    ngx_log_t *log)
{
    if (ngx_http_usage_gate_index_make(zone, log) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_usage_gate_stats_make(zone, log) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_usage_gate_stats_bind(zone);

    return NGX_OK;
}


/*
 * A new zone starts with what there was: the owners of the zone it
 * replaces when a reload changed its size (nginx would map a new, empty
 * one), else the state file's.
 */
static void
ngx_http_usage_gate_zone_carry(ngx_http_usage_gate_zone_t *zone,
    ngx_shm_zone_t *shm_zone)
{
    ngx_uint_t                     i, n, total, lost;
    ngx_list_part_t               *part;
    ngx_shm_zone_t                *oshm;
    ngx_http_usage_gate_zone_t    *ozone;
    ngx_http_usage_gate_cursor_t   cursor;
    ngx_http_usage_gate_record_t   rec[64];

    part = &((ngx_cycle_t *) ngx_cycle)->shared_memory.part;
    oshm = part->elts;
    ozone = NULL;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            oshm = part->elts;
            i = 0;
        }

        if (oshm[i].tag == &ngx_http_usage_gate_module
            && oshm[i].shm.name.len == shm_zone->shm.name.len
            && ngx_strncmp(oshm[i].shm.name.data, shm_zone->shm.name.data,
                           shm_zone->shm.name.len) == 0
            && oshm[i].data != zone
            && ((ngx_http_usage_gate_zone_t *) oshm[i].data)->sh)
        {
            ozone = oshm[i].data;
            break;
        }
    }

    if (ozone == NULL
        || ozone->sh->version != NGX_HTTP_USAGE_GATE_ZONE_VERSION)
    {
        if (zone->load) {
            (void) zone->load(zone, shm_zone->shm.log);
        }

        return;
    }

    ngx_memcpy(zone->sh->salt, ozone->sh->salt,
               NGX_HTTP_USAGE_GATE_SALT_LEN);

    ozone->sh->superseded = 1;

    ngx_memzero(&cursor, sizeof(cursor));
    total = 0;
    lost = 0;

    while ((n = ngx_http_usage_gate_zone_next(ozone, &cursor, rec, 64))) {
        for (i = 0; i < n; i++) {
            if (ngx_http_usage_gate_zone_put(zone, rec[i].owner, rec[i].len,
                                             &rec[i].counter, &rec[i].notify)
                == NGX_OK)
            {
                /* usage the store has not yet written moves along */
                if (zone->store) {
                    zone->store->restore(zone, &rec[i]);
                }

                total++;

            } else {
                lost++;
            }
        }
    }

    ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                  "usage_gate_zone \"%V\": %ui owners carried over into "
                  "the resized zone", &shm_zone->shm.name, total);

    if (lost) {
        ngx_log_error(NGX_LOG_ALERT, shm_zone->shm.log, 0,
                      "usage_gate_zone \"%V\": %ui owners with counts this "
                      "month did not fit in the resized zone and were "
                      "dropped; make the zone larger", &shm_zone->shm.name,
                      lost);
    }
}


/*
 * The per-plan counters: made in a new zone, a row per worker so that
 * each worker's adds stay in its own cache lines; found again in a zone
 * a reload kept, with the rows it was made with (worker numbers past
 * them share rows, which the atomic adds keep exact).
 */
static ngx_int_t
ngx_http_usage_gate_stats_make(ngx_http_usage_gate_zone_t *zone,
    ngx_log_t *log)
{
    size_t                        size;
    ngx_uint_t                    rows;
    ngx_http_usage_gate_shctx_t  *sh;

    sh = zone->sh;

    if (sh->stats == NULL) {
        rows = 1;

        if (zone->core_conf && zone->core_conf->worker_processes > 0) {
            rows = ngx_min((ngx_uint_t) zone->core_conf->worker_processes,
                           UG_STATS_WORKERS_MAX);
        }

        /* a small zone keeps its room for owners: workers past the rows
         * it can spare share them */
        while (rows > 1
               && ug_stats_size(rows, NGX_HTTP_USAGE_GATE_ST_PLANS,
                                NGX_HTTP_USAGE_GATE_ST_N)
                  > zone->size / 8)
        {
            rows--;
        }

        size = ug_stats_size(rows, NGX_HTTP_USAGE_GATE_ST_PLANS,
                             NGX_HTTP_USAGE_GATE_ST_N);

        sh->stats = ngx_slab_alloc(zone->shpool, size);
        if (sh->stats == NULL) {
            ngx_log_error(NGX_LOG_EMERG, log, 0,
                          "usage_gate_zone \"%V\" is too small for its "
                          "statistics (%uz bytes)", &zone->name, size);
            return NGX_ERROR;
        }

        sh->stats_size = size;
        sh->stats_rows = rows;

        zone->stats = ug_stats_init(sh->stats, size, rows,
                                    NGX_HTTP_USAGE_GATE_ST_PLANS,
                                    NGX_HTTP_USAGE_GATE_ST_N);

    } else {
        zone->stats = ug_stats_attach(sh->stats, sh->stats_size,
                                      sh->stats_rows,
                                      NGX_HTTP_USAGE_GATE_ST_PLANS,
                                      NGX_HTTP_USAGE_GATE_ST_N);
    }

    if (zone->stats == NULL) {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "usage_gate_zone \"%V\": its statistics are not "
                      "where this build expects them; restart nginx",
                      &zone->name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Finds or claims a statistics slot for each configured plan, by name.
 */
static void
ngx_http_usage_gate_stats_bind(ngx_http_usage_gate_zone_t *zone)
{
    u_char      (*name)[UG_PLAN_NAME_MAX + 1];
    ngx_uint_t    i, k;
    ug_plan_t    *plan;

    if (zone->plans == NULL) {
        return;
    }

    name = zone->sh->stats_name;

    ngx_shmtx_lock(&zone->shpool->mutex);

    for (i = 0; i < zone->plans->n; i++) {
        plan = &zone->plans->plans[i];
        zone->stats_slot[i] = UG_PLANS_MAX;

        for (k = 0; k < UG_PLANS_MAX; k++) {
            if (ngx_strcmp(name[k], plan->name) == 0) {
                zone->stats_slot[i] = k;
                break;
            }

            if (name[k][0] == '\0') {
                ngx_cpystrn(name[k], (u_char *) plan->name,
                            UG_PLAN_NAME_MAX + 1);
                zone->stats_slot[i] = k;
                break;
            }
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


void
ngx_http_usage_gate_zone_count(ngx_http_usage_gate_zone_t *zone,
    ngx_int_t plan, ngx_uint_t result)
{
    ngx_uint_t  slot;

    slot = (plan >= 0 && plan < UG_PLANS_MAX) ? zone->stats_slot[plan]
                                              : UG_PLANS_MAX;

    ug_stats_add(zone->stats, (unsigned) ngx_worker, (unsigned) slot,
                 (unsigned) result, 1);
}


static void
ngx_http_usage_gate_index_conf(ngx_http_usage_gate_zone_t *zone,
    ug_index_conf_t *conf)
{
    ngx_memzero(conf, sizeof(ug_index_conf_t));

    conf->payload = sizeof(ngx_http_usage_gate_node_t) + zone->node_extra;
    conf->key_inline = NGX_HTTP_USAGE_GATE_KEY_INLINE;
    conf->key_max = UG_OWNER_MAX;
}


/*
 * The zone's index: made in the pages the slab pool has left when the
 * zone is new (sh->index NULL), else the one the zone holds.
 */
static ngx_int_t
ngx_http_usage_gate_index_make(ngx_http_usage_gate_zone_t *zone,
    ngx_log_t *log)
{
    void             *mem;
    size_t            size;
    ngx_uint_t        pages;
    ug_index_conf_t   conf;

    ngx_http_usage_gate_index_conf(zone, &conf);
    zone->slot_size = ug_index_slot_size(&conf);

    if (zone->sh->index) {
        zone->ix = ug_index_attach(zone->sh->index, zone->sh->index_size,
                                   &conf);
        if (zone->ix == NULL) {
            ngx_log_error(NGX_LOG_EMERG, log, 0,
                          "usage_gate_zone \"%V\" holds an owner index of "
                          "another layout; restart nginx (with a state "
                          "file, counts are kept) instead of reloading",
                          &zone->name);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    /* the free pages are one run at this point; should they not be,
     * take a little less until an allocation succeeds */
    mem = NULL;
    pages = zone->shpool->pfree;
    size = 0;

    while (pages > 0) {
        size = pages << ngx_pagesize_shift;
        mem = ngx_slab_alloc(zone->shpool, size);

        if (mem != NULL) {
            break;
        }

        pages -= pages / 16 + 1;
    }

    if (RAND_bytes(conf.seed, sizeof(conf.seed)) != 1) {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "usage_gate_zone \"%V\": no random bytes for the "
                      "owner index's hash key", &zone->name);
        return NGX_ERROR;
    }

    zone->ix = (mem != NULL) ? ug_index_init(mem, size, &conf) : NULL;

    if (zone->ix == NULL) {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "usage_gate_zone \"%V\" is too small to hold any "
                      "owner; make it larger", &zone->name);
        return NGX_ERROR;
    }

    zone->sh->index = mem;
    zone->sh->index_size = size;

    return NGX_OK;
}


/*
 * The clock's question for an owner it has not seen used since its last
 * pass: may it be dropped?  Yes when it holds nothing worth keeping:
 * counts from a past billing cycle, or no count this cycle and a fully
 * refilled minute bucket.  An owner with counts in a cycle that is still
 * running is billing data and is never dropped; so is one whose threshold
 * notifications this cycle were sent (or they would be sent again), and
 * one with usage its store has not yet written.
 */
static int
ngx_http_usage_gate_may_drop(void *data, ug_index_entry_t *e, void *payload)
{
    ngx_http_usage_gate_evict_ctx_t *ec = data;

    ngx_http_usage_gate_node_t  *un;

    un = payload;

    if (ug_cycle_live(un->counter.month, (int64_t) (ec->now_us / 1000000))
        && (un->counter.month_used != 0
            || un->counter.tat_us > ec->now_us
            || un->notify_sent != 0))
    {
        return 0;
    }

    if (ec->zone->store && ec->zone->store->keep(ec->zone, un)) {
        return 0;
    }

    ec->dropped++;

    return 1;
}


/*
 * Under the lock: the owner's node, found or (with create) added with zero
 * counts, making room from owners the clock may drop if need be.  NULL
 * when it is not there, or there is no room.
 */
static ngx_http_usage_gate_node_t *
ngx_http_usage_gate_get_locked(ngx_http_usage_gate_zone_t *zone,
    uint64_t hash, u_char *owner, size_t len, uint64_t now_us,
    ngx_uint_t create)
{
    int                               created;
    ug_index_entry_t                 *e;
    ngx_http_usage_gate_evict_ctx_t   ec;

    if (!create) {
        e = ug_index_find(zone->ix, hash, owner, len);
        return (e != NULL) ? ug_index_payload(e) : NULL;
    }

    e = ug_index_insert(zone->ix, hash, owner, len, &created);

    if (e == NULL) {
        ec.zone = zone;
        ec.now_us = now_us;
        ec.dropped = 0;

        (void) ug_index_evict(zone->ix, NGX_HTTP_USAGE_GATE_EVICT_SCAN,
                              ug_index_slots_for(zone->ix, len),
                              ngx_http_usage_gate_may_drop, &ec);

        if (ec.dropped) {
            (void) ngx_atomic_fetch_add(&zone->sh->evictions, ec.dropped);
        }

        e = ug_index_insert(zone->ix, hash, owner, len, &created);

        if (e == NULL) {
            return NULL;
        }
    }

    return ug_index_payload(e);
}


ngx_int_t
ngx_http_usage_gate_zone_decide(ngx_http_usage_gate_zone_t *zone,
    u_char *owner, size_t len, const ug_limits_t *limits,
    const ug_terms_t *terms, uint64_t cost, uint64_t now_us,
    ug_decision_t *d)
{
    uint64_t                      hash;
    ngx_http_usage_gate_node_t   *un;

    /* the hash and the likely cache miss of its bucket before the lock,
     * so that they overlap other workers' turns instead of lengthening
     * them */
    hash = ug_index_hash(zone->ix, owner, len);
    ug_index_prefetch(zone->ix, hash);

    ngx_shmtx_lock(&zone->shpool->mutex);

    un = ngx_http_usage_gate_get_locked(zone, hash, owner, len, now_us, 1);

    if (un == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        (void) ngx_atomic_fetch_add(&zone->sh->fail_open, 1);
        return NGX_HTTP_USAGE_GATE_FULL;
    }

    ug_decide_terms(&un->counter, limits, terms, cost, now_us, d);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return NGX_HTTP_USAGE_GATE_DECIDED;
}


ngx_int_t
ngx_http_usage_gate_zone_read(ngx_http_usage_gate_zone_t *zone,
    u_char *owner, size_t len, ug_counter_t *counter)
{
    uint64_t                      hash;
    ngx_http_usage_gate_node_t   *un;

    hash = ug_index_hash(zone->ix, owner, len);

    ngx_shmtx_lock(&zone->shpool->mutex);

    un = ngx_http_usage_gate_get_locked(zone, hash, owner, len, 0, 0);

    if (un == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return NGX_DECLINED;
    }

    *counter = un->counter;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return NGX_OK;
}


ngx_http_usage_gate_node_t *
ngx_http_usage_gate_zone_node_locked(ngx_http_usage_gate_zone_t *zone,
    u_char *owner, size_t len, uint64_t now_us, ngx_uint_t create)
{
    if (len == 0 || len > UG_OWNER_MAX) {
        return NULL;
    }

    return ngx_http_usage_gate_get_locked(zone,
                                          ug_index_hash(zone->ix, owner, len),
                                          owner, len, now_us, create);
}


size_t
ngx_http_usage_gate_zone_owner_locked(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_node_t *un, u_char *buf)
{
    ug_index_entry_t  *e;

    /* the payload follows its slot's head */
    e = (ug_index_entry_t *) ((u_char *) un - UG_INDEX_SLOT_HEAD);

    return ug_index_key(zone->ix, e, buf);
}


ngx_uint_t
ngx_http_usage_gate_zone_owners(ngx_http_usage_gate_zone_t *zone)
{
    return ug_index_count(zone->ix);
}


size_t
ngx_http_usage_gate_zone_used(ngx_http_usage_gate_zone_t *zone)
{
    size_t  free;

    free = (zone->shpool->pfree << ngx_pagesize_shift)
           + ug_index_slots_free(zone->ix) * zone->slot_size;

    return free < zone->size ? zone->size - free : 0;
}


ngx_int_t
ngx_http_usage_gate_zone_put(ngx_http_usage_gate_zone_t *zone,
    u_char *owner, size_t len, const ug_counter_t *counter,
    const ug_notify_mark_t *notify)
{
    uint64_t                      hash;
    ngx_http_usage_gate_node_t   *un;

    if (len == 0 || len > UG_OWNER_MAX) {
        return NGX_DECLINED;
    }

    hash = ug_index_hash(zone->ix, owner, len);

    ngx_shmtx_lock(&zone->shpool->mutex);

    un = ngx_http_usage_gate_get_locked(zone, hash, owner, len,
                                        ngx_http_usage_gate_now_us(), 1);
    if (un == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return NGX_DECLINED;
    }

    un->counter = *counter;

    if (notify && notify->sent) {
        un->notify_cycle = notify->cycle;
        un->notify_sent = (uint16_t) notify->sent;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return NGX_OK;
}


ngx_int_t
ngx_http_usage_gate_zone_update(ngx_http_usage_gate_zone_t *zone,
    u_char *owner, size_t len, ngx_http_usage_gate_update_pt fn, void *data)
{
    uint64_t                      hash;
    ngx_int_t                     rc;
    ngx_http_usage_gate_node_t   *un;

    hash = ug_index_hash(zone->ix, owner, len);

    ngx_shmtx_lock(&zone->shpool->mutex);

    un = ngx_http_usage_gate_get_locked(zone, hash, owner, len, 0, 0);

    if (un == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return NGX_DECLINED;
    }

    rc = fn(&un->counter, data);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


ngx_uint_t
ngx_http_usage_gate_zone_next(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_cursor_t *cursor,
    ngx_http_usage_gate_record_t *records, ngx_uint_t max)
{
    ngx_uint_t                    n;
    ug_index_entry_t             *e;
    ngx_http_usage_gate_node_t   *un;

    n = 0;

    for ( ;; ) {
        ngx_shmtx_lock(&zone->shpool->mutex);

        while (n < max) {
            e = ug_index_next(zone->ix, &cursor->slot,
                              NGX_HTTP_USAGE_GATE_WALK_SCAN);
            if (e == NULL) {
                break;
            }

            un = ug_index_payload(e);

            records[n].len = ug_index_key(zone->ix, e, records[n].owner);
            records[n].counter = un->counter;
            records[n].notify.cycle = un->notify_cycle;
            records[n].notify.sent = un->notify_sent;

            if (zone->store) {
                zone->store->record(zone, un, &records[n]);

            } else {
                ngx_memzero(&records[n].carry, sizeof(records[n].carry));
            }

            n++;
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);

        /* a batch ends with max owners or at the end of the walk; a
         * stretch of empty slots only gives other workers the lock */
        if (n > 0 || ug_index_walk_done(zone->ix, cursor->slot)) {
            return n;
        }
    }
}


ngx_int_t
ngx_http_usage_gate_zone_overflow(ngx_http_usage_gate_zone_t *zone,
    uint64_t now_us, ug_decision_t *d)
{
    ug_limits_t  limits;

    if (zone->overflow_minute == UG_OFF) {
        return NGX_OK;
    }

    limits.month = UG_OFF;
    limits.minute = zone->overflow_minute;

    ngx_shmtx_lock(&zone->shpool->mutex);

    ug_take_minute(&zone->sh->overflow, &limits, 1, now_us, d);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return d->verdict == UG_ALLOWED ? NGX_OK : NGX_DECLINED;
}
