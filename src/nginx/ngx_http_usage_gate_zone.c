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


/* How many least recently used owners one allocation may examine for
 * eviction: bounds the time the zone lock is held. */
#define NGX_HTTP_USAGE_GATE_EVICT_SCAN  32


extern ngx_module_t  ngx_http_usage_gate_module;


static ngx_int_t ngx_http_usage_gate_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_usage_gate_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_rbtree_node_t *ngx_http_usage_gate_lookup(
    ngx_http_usage_gate_shctx_t *sh, ngx_uint_t hash, u_char *owner,
    size_t len);
static ngx_uint_t ngx_http_usage_gate_evict(ngx_http_usage_gate_zone_t *zone,
    uint64_t now_us);
static void ngx_http_usage_gate_stats_bind(ngx_http_usage_gate_zone_t *zone);
static ngx_http_usage_gate_node_t *ngx_http_usage_gate_alloc_locked(
    ngx_http_usage_gate_zone_t *zone, uint32_t hash, u_char *owner,
    size_t len, uint64_t now_us);
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
        ngx_http_usage_gate_stats_bind(zone);

        return zone->store ? zone->store->init_zone(zone, shm_zone->shm.log)
                           : NGX_OK;
    }

    zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zone->sh = zone->shpool->data;
        ngx_http_usage_gate_stats_bind(zone);
        return NGX_OK;
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

    ngx_rbtree_init(&zone->sh->rbtree, &zone->sh->sentinel,
                    ngx_http_usage_gate_rbtree_insert_value);
    ngx_queue_init(&zone->sh->lru);

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

    ngx_http_usage_gate_stats_bind(zone);

    if (zone->store
        && zone->store->init_zone(zone, shm_zone->shm.log) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_usage_gate_zone_carry(zone, shm_zone);

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
                                             &rec[i].counter)
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
 * Finds or claims a statistics slot for each configured plan, by name.
 */
static void
ngx_http_usage_gate_stats_bind(ngx_http_usage_gate_zone_t *zone)
{
    ngx_uint_t                         i, k;
    ug_plan_t                         *plan;
    ngx_http_usage_gate_plan_stats_t  *st;

    if (zone->plans == NULL) {
        return;
    }

    st = zone->sh->stats;

    ngx_shmtx_lock(&zone->shpool->mutex);

    for (i = 0; i < zone->plans->n; i++) {
        plan = &zone->plans->plans[i];
        zone->stats_slot[i] = UG_PLANS_MAX;

        for (k = 0; k < UG_PLANS_MAX; k++) {
            if (ngx_strcmp(st[k].name, plan->name) == 0) {
                zone->stats_slot[i] = k;
                break;
            }

            if (st[k].name[0] == '\0') {
                ngx_cpystrn(st[k].name, (u_char *) plan->name,
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

    (void) ngx_atomic_fetch_add(&zone->sh->stats[slot].count[result], 1);
}


static void
ngx_http_usage_gate_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t           **p;
    ngx_http_usage_gate_node_t   *un, *unt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            un = (ngx_http_usage_gate_node_t *) &node->color;
            unt = (ngx_http_usage_gate_node_t *) &temp->color;

            p = (ngx_memn2cmp(un->owner, unt->owner, un->len, unt->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_rbtree_node_t *
ngx_http_usage_gate_lookup(ngx_http_usage_gate_shctx_t *sh, ngx_uint_t hash,
    u_char *owner, size_t len)
{
    ngx_int_t                    rc;
    ngx_rbtree_node_t           *node, *sentinel;
    ngx_http_usage_gate_node_t  *un;

    node = sh->rbtree.root;
    sentinel = sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        un = (ngx_http_usage_gate_node_t *) &node->color;

        rc = ngx_memn2cmp(owner, un->owner, len, (size_t) un->len);

        if (rc == 0) {
            return node;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/*
 * Frees owners that hold nothing worth keeping: counts from a past
 * billing cycle, or no count this cycle and a fully refilled minute
 * bucket.  The LRU tail holds the owners seen longest ago, so owners of
 * past cycles come first.  An owner with counts in a cycle that is still
 * running is billing data and is never dropped; so is one whose
 * threshold notifications this cycle were sent, or they would be sent
 * again.
 */
static ngx_uint_t
ngx_http_usage_gate_evict(ngx_http_usage_gate_zone_t *zone, uint64_t now_us)
{
    int64_t                       now_s;
    ngx_uint_t                    n, freed;
    ngx_queue_t                  *q, *prev;
    ngx_rbtree_node_t            *node;
    ngx_http_usage_gate_node_t   *un;

    now_s = (int64_t) (now_us / 1000000);
    freed = 0;

    q = ngx_queue_last(&zone->sh->lru);

    for (n = 0; n < NGX_HTTP_USAGE_GATE_EVICT_SCAN; n++) {

        if (q == ngx_queue_sentinel(&zone->sh->lru)) {
            break;
        }

        prev = ngx_queue_prev(q);
        un = ngx_queue_data(q, ngx_http_usage_gate_node_t, queue);

        /* usage the store has not yet written is kept too */
        if ((!ug_cycle_live(un->counter.month, now_s)
             || (un->counter.month_used == 0
                 && un->counter.tat_us <= now_us
                 && un->notify_sent == 0))
            && !(zone->store && zone->store->keep(zone, un)))
        {
            node = (ngx_rbtree_node_t *)
                       ((u_char *) un - offsetof(ngx_rbtree_node_t, color));

            ngx_queue_remove(q);
            ngx_rbtree_delete(&zone->sh->rbtree, node);
            ngx_slab_free_locked(zone->shpool, node);

            zone->sh->owners--;
            freed++;
        }

        q = prev;
    }

    if (freed) {
        (void) ngx_atomic_fetch_add(&zone->sh->evictions, freed);
    }

    return freed;
}


ngx_int_t
ngx_http_usage_gate_zone_decide(ngx_http_usage_gate_zone_t *zone,
    u_char *owner, size_t len, const ug_limits_t *limits,
    const ug_terms_t *terms, uint64_t cost, uint64_t now_us,
    ug_decision_t *d)
{
    uint32_t                      hash;
    ngx_rbtree_node_t            *node;
    ngx_http_usage_gate_node_t   *un;

    hash = ngx_crc32_short(owner, len);

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = ngx_http_usage_gate_lookup(zone->sh, hash, owner, len);

    if (node) {
        un = (ngx_http_usage_gate_node_t *) &node->color;
        ngx_queue_remove(&un->queue);

    } else {
        un = ngx_http_usage_gate_alloc_locked(zone, hash, owner, len, now_us);

        if (un == NULL) {
            ngx_shmtx_unlock(&zone->shpool->mutex);
            (void) ngx_atomic_fetch_add(&zone->sh->fail_open, 1);
            return NGX_HTTP_USAGE_GATE_FULL;
        }
    }

    ngx_queue_insert_head(&zone->sh->lru, &un->queue);

    ug_decide_terms(&un->counter, limits, terms, cost, now_us, d);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return NGX_HTTP_USAGE_GATE_DECIDED;
}


ngx_int_t
ngx_http_usage_gate_zone_read(ngx_http_usage_gate_zone_t *zone,
    u_char *owner, size_t len, ug_counter_t *counter)
{
    uint32_t                      hash;
    ngx_rbtree_node_t            *node;
    ngx_http_usage_gate_node_t   *un;

    hash = ngx_crc32_short(owner, len);

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = ngx_http_usage_gate_lookup(zone->sh, hash, owner, len);

    if (node == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return NGX_DECLINED;
    }

    un = (ngx_http_usage_gate_node_t *) &node->color;
    *counter = un->counter;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return NGX_OK;
}


ngx_http_usage_gate_node_t *
ngx_http_usage_gate_zone_node_locked(ngx_http_usage_gate_zone_t *zone,
    u_char *owner, size_t len, uint64_t now_us, ngx_uint_t create)
{
    uint32_t                      hash;
    ngx_rbtree_node_t            *node;
    ngx_http_usage_gate_node_t   *un;

    if (len == 0 || len > UG_OWNER_MAX) {
        return NULL;
    }

    hash = ngx_crc32_short(owner, len);

    node = ngx_http_usage_gate_lookup(zone->sh, hash, owner, len);

    if (node) {
        un = (ngx_http_usage_gate_node_t *) &node->color;
        ngx_queue_remove(&un->queue);

    } else {
        if (!create) {
            return NULL;
        }

        un = ngx_http_usage_gate_alloc_locked(zone, hash, owner, len, now_us);
        if (un == NULL) {
            return NULL;
        }
    }

    ngx_queue_insert_head(&zone->sh->lru, &un->queue);

    return un;
}


/*
 * A new owner with zero counts, inserted in the tree but not yet in the
 * LRU queue.  Under the lock.  NULL when even eviction finds no room.
 */
static ngx_http_usage_gate_node_t *
ngx_http_usage_gate_alloc_locked(ngx_http_usage_gate_zone_t *zone,
    uint32_t hash, u_char *owner, size_t len, uint64_t now_us)
{
    size_t                        size;
    ngx_rbtree_node_t            *node;
    ngx_http_usage_gate_node_t   *un;

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_usage_gate_node_t, owner)
           + len;

    /* the store's state follows the owner, aligned */
    if (zone->node_extra) {
        size = ngx_align(size, NGX_ALIGNMENT) + zone->node_extra;
    }

    node = ngx_slab_alloc_locked(zone->shpool, size);

    if (node == NULL && ngx_http_usage_gate_evict(zone, now_us) > 0) {
        node = ngx_slab_alloc_locked(zone->shpool, size);
    }

    if (node == NULL) {
        return NULL;
    }

    node->key = hash;

    un = (ngx_http_usage_gate_node_t *) &node->color;
    un->len = (u_char) len;
    un->notify_sent = 0;
    un->notify_cycle = 0;
    ngx_memzero(&un->counter, sizeof(ug_counter_t));
    ngx_memcpy(un->owner, owner, len);

    if (zone->node_extra) {
        ngx_memzero(ngx_http_usage_gate_node_extra(un), zone->node_extra);
    }

    ngx_rbtree_insert(&zone->sh->rbtree, node);
    zone->sh->owners++;

    return un;
}


ngx_int_t
ngx_http_usage_gate_zone_put(ngx_http_usage_gate_zone_t *zone,
    u_char *owner, size_t len, const ug_counter_t *counter)
{
    uint32_t                      hash;
    ngx_rbtree_node_t            *node;
    ngx_http_usage_gate_node_t   *un;

    if (len == 0 || len > UG_OWNER_MAX) {
        return NGX_DECLINED;
    }

    hash = ngx_crc32_short(owner, len);

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = ngx_http_usage_gate_lookup(zone->sh, hash, owner, len);

    if (node) {
        un = (ngx_http_usage_gate_node_t *) &node->color;
        ngx_queue_remove(&un->queue);

    } else {
        un = ngx_http_usage_gate_alloc_locked(zone, hash, owner, len,
                                              ngx_http_usage_gate_now_us());
        if (un == NULL) {
            ngx_shmtx_unlock(&zone->shpool->mutex);
            return NGX_DECLINED;
        }
    }

    un->counter = *counter;
    ngx_queue_insert_head(&zone->sh->lru, &un->queue);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return NGX_OK;
}


ngx_int_t
ngx_http_usage_gate_zone_update(ngx_http_usage_gate_zone_t *zone,
    u_char *owner, size_t len, ngx_http_usage_gate_update_pt fn, void *data)
{
    uint32_t                      hash;
    ngx_int_t                     rc;
    ngx_rbtree_node_t            *node;
    ngx_http_usage_gate_node_t   *un;

    hash = ngx_crc32_short(owner, len);

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = ngx_http_usage_gate_lookup(zone->sh, hash, owner, len);

    if (node == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return NGX_DECLINED;
    }

    un = (ngx_http_usage_gate_node_t *) &node->color;

    rc = fn(&un->counter, data);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


ngx_uint_t
ngx_http_usage_gate_zone_next(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_cursor_t *cursor,
    ngx_http_usage_gate_record_t *records, ngx_uint_t max)
{
    ngx_int_t                     rc;
    ngx_uint_t                    n;
    ngx_rbtree_node_t            *node, *next, *sentinel;
    ngx_http_usage_gate_node_t   *un;

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = zone->sh->rbtree.root;
    sentinel = zone->sh->rbtree.sentinel;
    next = NULL;

    /* the first owner after the cursor in (hash, owner) order: the tree
     * may have changed since the last batch, so search it afresh */

    while (node != sentinel) {
        un = (ngx_http_usage_gate_node_t *) &node->color;

        if (!cursor->started) {
            rc = 1;

        } else if (node->key != cursor->hash) {
            rc = (node->key > cursor->hash) ? 1 : -1;

        } else {
            rc = ngx_memn2cmp(un->owner, cursor->owner, un->len,
                              cursor->len);
        }

        if (rc > 0) {
            next = node;
            node = node->left;

        } else {
            node = node->right;
        }
    }

    for (n = 0; next != NULL && n < max; n++) {
        un = (ngx_http_usage_gate_node_t *) &next->color;

        records[n].len = un->len;
        ngx_memcpy(records[n].owner, un->owner, un->len);
        records[n].counter = un->counter;

        if (zone->store) {
            zone->store->record(zone, un, &records[n]);

        } else {
            ngx_memzero(&records[n].carry, sizeof(records[n].carry));
        }

        cursor->hash = (uint32_t) next->key;
        cursor->len = un->len;
        ngx_memcpy(cursor->owner, un->owner, un->len);
        cursor->started = 1;

        next = ngx_rbtree_next(&zone->sh->rbtree, next);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return n;
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
