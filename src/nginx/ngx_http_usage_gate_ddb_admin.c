/*
 * Writes no request waits for: the admin API's write-through and the
 * claims of auto mode; and DynamoDB's numbers for the metrics endpoint.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_ddb_internal.h"


static ngx_int_t ngx_http_usage_gate_ddb_claim_send(
    ngx_http_usage_gate_ddb_admin_t *a, ngx_uint_t get);
static void ngx_http_usage_gate_ddb_claim_retry(ngx_event_t *ev);
static void ngx_http_usage_gate_ddb_claim_checked(void *data, ngx_int_t rc,
    long status, ngx_str_t *body, const char *error);
static ngx_uint_t ngx_http_usage_gate_ddb_claim_again(
    ngx_http_usage_gate_ddb_admin_t *a, ug_ddb_class_t cls);
static void ngx_http_usage_gate_ddb_claim_done(
    ngx_http_usage_gate_ddb_admin_t *a, ug_ddb_class_t cls,
    ug_ddb_result_t *res);


/* per worker: the writes in flight no request waits for */
ngx_queue_t  ngx_http_usage_gate_ddb_admins;


void
ngx_http_usage_gate_ddb_admin_changed(ngx_http_usage_gate_zone_t *zone,
    ug_counter_t *counter, const ug_admin_req_t *req)
{
    int32_t                          month;
    int64_t                          backlog;
    ngx_http_usage_gate_node_t      *un;
    ngx_http_usage_gate_ddb_sh_t    *dsh;
    ngx_http_usage_gate_ddb_node_t  *st;

    if (zone->store_conf == NULL || req->action == UG_ADMIN_GET) {
        return;
    }

    dsh = zone->sh->store;

    un = (ngx_http_usage_gate_node_t *)
             ((u_char *) counter - offsetof(ngx_http_usage_gate_node_t,
                                            counter));
    st = ngx_http_usage_gate_ddb_state(un);

    /* the table's month of the owner's cycle */
    month = ngx_http_usage_gate_ddb_month(counter->month);

    if (month < 0) {
        return;
    }

    (void) ngx_http_usage_gate_ddb_roll(zone, st, month);

    /* reset and PUT say what the whole count is (a SET); adjust changes
     * it by a delta */
    backlog = 0;

    /* a SET replaces whatever a sync write to settle would add to the
     * month it sets */
    if (req->action != UG_ADMIN_ADJUST && st->once.seq != 0
        && st->once.month == month)
    {
        if (st->once.delta > 0) {
            backlog -= st->once.delta;
        }

        st->once.seq = 0;
        st->once.pid = 0;
    }

    ug_claim_admin(&st->c, month, counter->month_used,
                   req->action != UG_ADMIN_ADJUST, &backlog);
    dsh->backlog += (ngx_atomic_uint_t) backlog;
}


/*
 * The table follows an admin change: reset and PUT set the count (SET),
 * adjust adds its delta (with a floor at zero when it subtracts), so
 * that what other nodes wrote meanwhile is kept.
 */
void
ngx_http_usage_gate_ddb_admin_write(ngx_http_usage_gate_zone_t *zone,
    const ug_admin_req_t *req, const ug_counter_t *counter, ngx_log_t *log)
{
    int                               rc;
    char                              buf[UG_DDB_BODY_MAX];
    size_t                            n;
    ngx_str_t                         body;
    ug_ddb_item_t                     item;
    const ug_aws_creds_t             *creds;
    ngx_http_usage_gate_ddb_conf_t   *dc;
    ngx_http_usage_gate_ddb_admin_t  *a;

    dc = zone->store_conf;

    if (dc == NULL || req->action == UG_ADMIN_GET
        || !ngx_http_usage_gate_ddb_running)
    {
        return;
    }

    ngx_memzero(&item, sizeof(ug_ddb_item_t));

    item.table = (char *) dc->table.data;
    item.table_len = dc->table.len;
    item.owner = (char *) req->owner;
    item.owner_len = req->owner_len;
    item.month = ngx_http_usage_gate_ddb_month(counter->month);

    if (item.month < 0) {
        return;
    }

    if (dc->ttl.len) {
        item.ttl_attr = (char *) dc->ttl.data;
        item.ttl_attr_len = dc->ttl.len;
        item.ttl_at = ug_ddb_ttl_at(item.month, dc->ttl_keep);
    }

    if (req->action == UG_ADMIN_ADJUST) {
        rc = ug_ddb_build_add(buf, sizeof(buf), &n, &item, req->value, -1);

    } else {
        rc = ug_ddb_build_set(buf, sizeof(buf), &n, &item,
                              (int64_t) counter->month_used);
    }

    creds = ngx_http_usage_gate_ddb_creds(dc);

    if (rc != UG_DDB_BUILD_OK || creds == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "usage_gate_dynamodb: zone \"%V\": the admin change "
                      "of owner \"%*s\" is not written to DynamoDB: %s",
                      &zone->name, req->owner_len, req->owner,
                      creds == NULL ? "no AWS credentials"
                                    : ug_ddb_build_strerror(rc));
        return;
    }

    /* the callback may come after the admin request is gone */
    a = ngx_calloc(sizeof(ngx_http_usage_gate_ddb_admin_t), log);
    if (a == NULL) {
        return;
    }

    a->zone = zone;
    a->extra = 0;
    a->month = item.month;
    a->len = req->owner_len;
    ngx_memcpy(a->owner, req->owner, req->owner_len);

    body.data = (u_char *) buf;
    body.len = n;

    a->curl = ngx_http_usage_gate_curl_post(ngx_cycle->log, dc->endpoint,
                                            UG_DDB_OP_UPDATE, &body,
                                            dc->connect_timeout, dc->timeout,
                                            creds, dc->region,
                                            ngx_http_usage_gate_ddb_admin_done,
                                            a);
    if (a->curl == NULL) {
        ngx_free(a);
        return;
    }

    (void) ngx_atomic_fetch_add(&((ngx_http_usage_gate_ddb_sh_t *)
                                  zone->sh->store)->writes, 1);

    ngx_queue_insert_tail(&ngx_http_usage_gate_ddb_admins, &a->queue);
}


void
ngx_http_usage_gate_ddb_admin_done(void *data, ngx_int_t rc, long status,
    ngx_str_t *body, const char *error)
{
    ngx_http_usage_gate_ddb_admin_t *a = data;

    ug_ddb_class_t   cls;
    ug_ddb_result_t  res;

    ngx_queue_remove(&a->queue);

    cls = ngx_http_usage_gate_ddb_parse(rc, status, body, error, &res);

    if (cls != UG_DDB_OK) {
        ngx_http_usage_gate_ddb_error(a->zone, &res, "UpdateItem (admin)",
                                      ngx_cycle->log);

        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "usage_gate_dynamodb: zone \"%V\": the admin change "
                      "of owner \"%*s\" was not written to DynamoDB: %s",
                      &a->zone->name, a->len, a->owner, res.type);
    }

    ngx_free(a);
}


/*
 * A claim fetched ahead of use (auto mode): ADD extra under the ceiling,
 * with no request waiting for it.
 */
void
ngx_http_usage_gate_ddb_claim(ngx_http_usage_gate_ddb_req_t *dr)
{
    ngx_http_usage_gate_ddb_conf_t   *dc;
    ngx_http_usage_gate_ddb_admin_t  *a;

    dc = dr->conf;
    a = NULL;

    /* a worker told to quit claims nothing ahead: its last writes would
     * only give the claim back */
    if (ngx_http_usage_gate_ddb_creds(dc) == NULL || dc->exiting
        || ngx_exiting || ngx_quit)
    {
        goto failed;
    }

    a = ngx_calloc(sizeof(ngx_http_usage_gate_ddb_admin_t),
                   dr->r->connection->log);
    if (a == NULL) {
        goto failed;
    }

    a->zone = dr->zone;
    a->extra = dr->extra;
    a->month = dr->month;
    a->len = dr->owner.len;
    ngx_memcpy(a->owner, dr->owner.data, dr->owner.len);

    a->retry.handler = ngx_http_usage_gate_ddb_claim_retry;
    a->retry.data = a;
    a->retry.log = ngx_cycle->log;
    a->deadline = ngx_current_msec + dc->timeout;

    if (ngx_http_usage_gate_ddb_lane_take(&a->lane, a->writer,
                                          dr->r->connection->log)
        != NGX_OK)
    {
        goto failed;
    }

    a->has_lane = 1;
    a->seq = ngx_http_usage_gate_ddb_next_seq();

    if (ngx_http_usage_gate_ddb_body_once(dc, NULL, a->owner, a->len,
                                          a->month, (int64_t) a->extra,
                                          dr->hard, a->writer,
                                          a->seq, 0, &a->body,
                                          dr->r->connection->log)
        != NGX_OK
        || ngx_http_usage_gate_ddb_claim_send(a, 0) != NGX_OK)
    {
        goto failed;
    }

    ngx_queue_insert_tail(&ngx_http_usage_gate_ddb_admins, &a->queue);

    return;

failed:

    if (a) {
        ngx_http_usage_gate_ddb_admin_free(a);
    }

    ngx_http_usage_gate_ddb_unclaim(dr, 0);
}


/* One try of a claim's write (get 0), or the read after a refusal. */
static ngx_int_t
ngx_http_usage_gate_ddb_claim_send(ngx_http_usage_gate_ddb_admin_t *a,
    ngx_uint_t get)
{
    ngx_int_t                        rc;
    ngx_str_t                        body;
    ngx_msec_int_t                   left;
    const ug_aws_creds_t            *creds;
    ngx_http_usage_gate_ddb_conf_t  *dc;

    dc = a->zone->store_conf;
    creds = ngx_http_usage_gate_ddb_creds(dc);
    left = (ngx_msec_int_t) (a->deadline - ngx_current_msec);

    if (creds == NULL || left <= 0) {
        return NGX_DECLINED;
    }

    a->attempts++;

    if (!get) {
        a->curl = ngx_http_usage_gate_curl_post(ngx_cycle->log,
                          dc->endpoint, UG_DDB_OP_UPDATE, &a->body,
                          ngx_min(dc->connect_timeout, (ngx_msec_t) left),
                          (ngx_msec_t) left, creds, dc->region,
                          ngx_http_usage_gate_ddb_claimed, a);

        if (a->curl == NULL) {
            return NGX_ERROR;
        }

        (void) ngx_atomic_fetch_add(&((ngx_http_usage_gate_ddb_sh_t *)
                                      a->zone->sh->store)->writes, 1);
        return NGX_OK;
    }

    if (ngx_http_usage_gate_ddb_body_once(dc, NULL, a->owner, a->len,
                                          a->month, 0, 0, a->writer, a->seq,
                                          1, &body, ngx_cycle->log)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    a->curl = ngx_http_usage_gate_curl_post(ngx_cycle->log, dc->endpoint,
                          UG_DDB_OP_GET, &body,
                          ngx_min(dc->connect_timeout, (ngx_msec_t) left),
                          (ngx_msec_t) left, creds, dc->region,
                          ngx_http_usage_gate_ddb_claim_checked, a);
    ngx_free(body.data);

    rc = (a->curl == NULL) ? NGX_ERROR : NGX_OK;

    return rc;
}


static void
ngx_http_usage_gate_ddb_claim_retry(ngx_event_t *ev)
{
    ug_ddb_result_t                   res;
    ngx_http_usage_gate_ddb_admin_t  *a;

    a = ev->data;

    if (ngx_http_usage_gate_ddb_claim_send(a, 0) == NGX_OK) {
        return;
    }

    ngx_memzero(&res, sizeof(ug_ddb_result_t));
    ngx_cpystrn((u_char *) res.type, (u_char *) "Timeout", sizeof(res.type));
    res.cls = UG_DDB_RETRYABLE;

    ngx_http_usage_gate_ddb_claim_done(a, UG_DDB_RETRYABLE, &res);
}


/* A retryable failure: 1 if the write goes again, as is, after a while. */
static ngx_uint_t
ngx_http_usage_gate_ddb_claim_again(ngx_http_usage_gate_ddb_admin_t *a,
    ug_ddb_class_t cls)
{
    uint32_t        delay;
    ngx_msec_int_t  left;

    if (!ug_ddb_should_retry(cls, a->attempts)) {
        return 0;
    }

    delay = ug_ddb_backoff_ms(a->attempts, (uint32_t) ngx_random());
    left = (ngx_msec_int_t) (a->deadline - ngx_current_msec);

    if (left <= (ngx_msec_int_t) delay) {
        return 0;
    }

    ngx_add_timer(&a->retry, (ngx_msec_t) delay + 1);

    return 1;
}


void
ngx_http_usage_gate_ddb_claimed(void *data, ngx_int_t rc, long status,
    ngx_str_t *body, const char *error)
{
    ngx_http_usage_gate_ddb_admin_t *a = data;

    ug_ddb_class_t   cls;
    ug_ddb_result_t  res;

    a->curl = NULL;

    cls = ngx_http_usage_gate_ddb_parse(rc, status, body, error, &res);

    if (cls == UG_DDB_CONDITIONAL_FAILED) {
        /* an earlier try may have been applied (see _request) */
        if (ngx_http_usage_gate_ddb_claim_send(a, 1) == NGX_OK) {
            return;
        }

        cls = UG_DDB_FATAL;
        res.cls = cls;
    }

    if (cls == UG_DDB_RETRYABLE) {
        ngx_http_usage_gate_ddb_error(a->zone, &res, "UpdateItem (claim)",
                                      ngx_cycle->log);

        if (ngx_http_usage_gate_ddb_claim_again(a, cls)) {
            return;
        }
    }

    ngx_http_usage_gate_ddb_claim_done(a, cls, &res);
}


static void
ngx_http_usage_gate_ddb_claim_checked(void *data, ngx_int_t rc, long status,
    ngx_str_t *body, const char *error)
{
    ngx_http_usage_gate_ddb_admin_t *a = data;

    ug_ddb_class_t   cls;
    ug_ddb_result_t  res;

    a->curl = NULL;

    cls = ngx_http_usage_gate_ddb_parse_check(a->writer, rc, status, body,
                                              error, &res);

    if (cls == UG_DDB_OK && !(res.has_seq && res.seq >= a->seq)) {
        /* not applied: the limit refused it */
        cls = UG_DDB_CONDITIONAL_FAILED;
        res.cls = cls;
    }

    if (cls == UG_DDB_RETRYABLE) {
        ngx_http_usage_gate_ddb_error(a->zone, &res, "GetItem (claim)",
                                      ngx_cycle->log);

        if (ngx_http_usage_gate_ddb_claim_again(a, cls)) {
            return;
        }
    }

    ngx_http_usage_gate_ddb_claim_done(a, cls, &res);
}


/* The claim's outcome: units claimed in the zone, or none. */
static void
ngx_http_usage_gate_ddb_claim_done(ngx_http_usage_gate_ddb_admin_t *a,
    ug_ddb_class_t cls, ug_ddb_result_t *res)
{
    ngx_http_usage_gate_node_t      *un;
    ngx_http_usage_gate_zone_t      *zone;
    ngx_http_usage_gate_ddb_sh_t    *dsh;
    ngx_http_usage_gate_ddb_node_t  *st;

    ngx_queue_remove(&a->queue);

    zone = a->zone;
    dsh = zone->sh->store;

    ngx_shmtx_lock(&zone->shpool->mutex);

    un = ngx_http_usage_gate_zone_node_locked(zone, a->owner, a->len,
                                              ngx_http_usage_gate_now_us(),
                                              cls == UG_DDB_OK);
    st = (un != NULL) ? ngx_http_usage_gate_ddb_state(un) : NULL;

    if (st) {
        /* a refusal (the owner near its limit) makes the next block a
         * quarter */
        ug_claim_unclaim(&st->c, a->extra, cls == UG_DDB_CONDITIONAL_FAILED);
    }

    if (cls == UG_DDB_OK) {
        dsh->down_until = 0;

        if (st && st->c.month == a->month) {
            st->c.base = res->count;
            st->c.claimed += (uint32_t) a->extra;
            st->c.block = (uint32_t) a->extra;
            st->c.flags |= UG_CLAIM_BASE
                         |UG_CLAIM_USED;
            ngx_http_usage_gate_ddb_dirty(zone, st);
            ngx_http_usage_gate_ddb_used(un, st);

        } else if (st) {
            /* the month turned meanwhile: give it back to that month */
            (void) ngx_http_usage_gate_ddb_add(zone, st, a->month,
                                               -(int64_t) a->extra, 0);
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (cls != UG_DDB_OK && cls != UG_DDB_CONDITIONAL_FAILED
        && cls != UG_DDB_RETRYABLE)
    {
        ngx_http_usage_gate_ddb_error(zone, res, "UpdateItem (claim)",
                                      ngx_cycle->log);
    }

    ngx_http_usage_gate_ddb_admin_free(a);
}


/* Frees a write no request waits for, with whatever it still holds. */
void
ngx_http_usage_gate_ddb_admin_free(ngx_http_usage_gate_ddb_admin_t *a)
{
    if (a->curl) {
        ngx_http_usage_gate_curl_cancel(a->curl);
        a->curl = NULL;
    }

    if (a->retry.timer_set) {
        ngx_del_timer(&a->retry);
    }

    if (a->body.data) {
        ngx_free(a->body.data);
    }

    if (a->has_lane) {
        ngx_http_usage_gate_ddb_lane_put(a->lane);
    }

    ngx_free(a);
}


ngx_int_t
ngx_http_usage_gate_ddb_metrics(ngx_http_usage_gate_zone_t *zone,
    ug_metrics_zone_t *mz, ngx_pool_t *pool)
{
    ngx_uint_t                     i, n;
    ug_metrics_error_t            *errors;
    ngx_http_usage_gate_ddb_sh_t  *dsh;

    if (zone->store_conf == NULL || zone->sh->store == NULL) {
        return NGX_OK;
    }

    dsh = zone->sh->store;

    mz->dynamodb = 1;
    mz->sync_backlog = dsh->backlog;
    mz->last_sync = (int64_t) dsh->last_ok;
    mz->writes = dsh->writes;

    errors = ngx_pcalloc(pool, NGX_HTTP_USAGE_GATE_DDB_ERRORS
                               * sizeof(ug_metrics_error_t));
    if (errors == NULL) {
        return NGX_ERROR;
    }

    n = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    for (i = 0; i < NGX_HTTP_USAGE_GATE_DDB_ERRORS; i++) {
        if (dsh->errors[i].type[0] == '\0') {
            continue;
        }

        errors[n].len = ngx_strlen(dsh->errors[i].type);
        errors[n].type = ngx_pnalloc(pool, errors[n].len);

        if (errors[n].type == NULL) {
            ngx_shmtx_unlock(&zone->shpool->mutex);
            return NGX_ERROR;
        }

        ngx_memcpy((u_char *) errors[n].type, dsh->errors[i].type,
                   errors[n].len);
        errors[n].count = dsh->errors[i].count;
        n++;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    mz->errors = errors;
    mz->nerrors = n;

    return NGX_OK;
}
