/*
 * UpdateItem requests: the body, the send, the answer and its retries,
 * and the per-zone error accounting.
 *
 * A request's write carries a writer and a sequence (ug_ddb.h), so that
 * retrying it after a lost answer never counts twice.  The writer is this
 * process's random id and a lane: a lane is held by one write, with its
 * retries, at a time, so no two writes in flight share the attribute
 * (a later sequence landing first would make the earlier one fail its
 * condition).  Lanes are reused lowest-first; an item gathers at most one
 * attribute per process and lane that wrote to it.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/rand.h>

#include "ngx_http_usage_gate_ddb_internal.h"


/* lanes per worker: the writer is 13 hex digits of id and 3 of lane */
#define NGX_HTTP_USAGE_GATE_DDB_LANES       4096
#define NGX_HTTP_USAGE_GATE_DDB_ID_LEN      (UG_DDB_WRITER_MAX - 3)


static void ngx_http_usage_gate_ddb_resolved(void *data, ngx_int_t rc,
    long status, ngx_str_t *body, const char *error);
static ngx_int_t ngx_http_usage_gate_ddb_post(
    ngx_http_usage_gate_ddb_req_t *dr, const char *op, ngx_str_t *body,
    ngx_http_usage_gate_curl_done_pt handler);
static ngx_uint_t ngx_http_usage_gate_ddb_retry_later(
    ngx_http_usage_gate_ddb_req_t *dr, ug_ddb_class_t cls);
static void ngx_http_usage_gate_ddb_refused(
    ngx_http_usage_gate_ddb_req_t *dr);


/* per worker */
static u_char      ngx_http_usage_gate_ddb_id[NGX_HTTP_USAGE_GATE_DDB_ID_LEN];
static uint64_t    ngx_http_usage_gate_ddb_seq;
static ngx_uint_t  ngx_http_usage_gate_ddb_lanes_n;
static ngx_uint_t  ngx_http_usage_gate_ddb_ready;
static uint16_t    ngx_http_usage_gate_ddb_lanes[NGX_HTTP_USAGE_GATE_DDB_LANES];


static void
ngx_http_usage_gate_ddb_item(ngx_http_usage_gate_ddb_conf_t *dc,
    u_char *owner, size_t len, int32_t month, ug_ddb_item_t *item)
{
    ngx_memzero(item, sizeof(ug_ddb_item_t));

    item->table = (char *) dc->table.data;
    item->table_len = dc->table.len;
    item->owner = (char *) owner;
    item->owner_len = len;
    item->month = month;

    if (dc->ttl.len) {
        item->ttl_attr = (char *) dc->ttl.data;
        item->ttl_attr_len = dc->ttl.len;
        item->ttl_at = ug_ddb_ttl_at(month, dc->ttl_keep);
    }
}


static ngx_int_t
ngx_http_usage_gate_ddb_copy(ngx_pool_t *pool, char *buf, size_t n,
    ngx_str_t *body, ngx_log_t *log)
{
    if (pool == NULL) {
        /* the caller sends it at once; curl copies the bytes */
        body->data = ngx_alloc(n, log);

    } else {
        body->data = ngx_pnalloc(pool, n);
    }

    if (body->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(body->data, buf, n);
    body->len = n;

    return NGX_OK;
}


ngx_int_t
ngx_http_usage_gate_ddb_body(ngx_http_usage_gate_ddb_conf_t *dc,
    ngx_pool_t *pool, u_char *owner, size_t len, int32_t month,
    int64_t delta, int64_t limit, ngx_str_t *body, ngx_log_t *log)
{
    int            rc;
    char           buf[UG_DDB_BODY_MAX];
    size_t         n;
    ug_ddb_item_t  item;

    ngx_http_usage_gate_ddb_item(dc, owner, len, month, &item);

    rc = ug_ddb_build_add(buf, sizeof(buf), &n, &item, delta, limit);

    if (rc != UG_DDB_BUILD_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "usage_gate_dynamodb: cannot build a write for owner "
                      "\"%*s\": %s", len, owner, ug_ddb_build_strerror(rc));
        return NGX_ERROR;
    }

    return ngx_http_usage_gate_ddb_copy(pool, buf, n, body, log);
}


/*
 * Takes a lane and writes the writer's name for it (UG_DDB_WRITER_MAX hex
 * digits and a NUL) into writer; makes the process's id the first time.
 */
ngx_int_t
ngx_http_usage_gate_ddb_lane_take(ngx_uint_t *lane, char *writer,
    ngx_log_t *log)
{
    u_char      raw[NGX_HTTP_USAGE_GATE_DDB_ID_LEN / 2 + 1];
    ngx_uint_t  i;

    if (!ngx_http_usage_gate_ddb_ready) {
        /* random, not the pid: workers of other hosts, of an old binary
         * and of past runs write to the same items */
        if (RAND_bytes(raw, sizeof(raw)) != 1) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "usage_gate_dynamodb: no random bytes for the "
                          "writer id");
            return NGX_ERROR;
        }

        ngx_hex_dump(ngx_http_usage_gate_ddb_id, raw,
                     NGX_HTTP_USAGE_GATE_DDB_ID_LEN / 2);
        ngx_http_usage_gate_ddb_id[NGX_HTTP_USAGE_GATE_DDB_ID_LEN - 1] =
            "0123456789abcdef"[raw[sizeof(raw) - 1] & 0xf];

        /* a stack: lane 0 on top, so the lowest free lanes are reused;
         * the last lane is the sync's (..._sync_writer) */
        for (i = 0; i < NGX_HTTP_USAGE_GATE_DDB_LANES - 1; i++) {
            ngx_http_usage_gate_ddb_lanes[i] =
                (uint16_t) (NGX_HTTP_USAGE_GATE_DDB_LANES - 2 - i);
        }

        ngx_http_usage_gate_ddb_lanes_n = NGX_HTTP_USAGE_GATE_DDB_LANES - 1;
        ngx_http_usage_gate_ddb_ready = 1;
    }

    if (ngx_http_usage_gate_ddb_lanes_n == 0) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "usage_gate_dynamodb: %d writes in flight in this "
                      "worker, no lane for another",
                      NGX_HTTP_USAGE_GATE_DDB_LANES);
        return NGX_ERROR;
    }

    *lane = ngx_http_usage_gate_ddb_lanes[--ngx_http_usage_gate_ddb_lanes_n];

    ngx_memcpy(writer, ngx_http_usage_gate_ddb_id,
               NGX_HTTP_USAGE_GATE_DDB_ID_LEN);
    ngx_sprintf((u_char *) writer + NGX_HTTP_USAGE_GATE_DDB_ID_LEN,
                "%03xi%Z", *lane);

    return NGX_OK;
}


/*
 * The writer of this process's sync writes: a lane of its own.  The sync
 * has at most one write per owner to settle, and sends the owner's next
 * only once that one is settled, so writes to one item never overtake
 * each other in it.
 */
ngx_int_t
ngx_http_usage_gate_ddb_sync_writer(char *writer, ngx_log_t *log)
{
    ngx_uint_t  lane;

    if (!ngx_http_usage_gate_ddb_ready) {
        if (ngx_http_usage_gate_ddb_lane_take(&lane, writer, log)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        ngx_http_usage_gate_ddb_lane_put(lane);
    }

    ngx_memcpy(writer, ngx_http_usage_gate_ddb_id,
               NGX_HTTP_USAGE_GATE_DDB_ID_LEN);
    ngx_sprintf((u_char *) writer + NGX_HTTP_USAGE_GATE_DDB_ID_LEN,
                "%03xi%Z", (ngx_uint_t) NGX_HTTP_USAGE_GATE_DDB_LANES - 1);

    return NGX_OK;
}


void
ngx_http_usage_gate_ddb_lane_put(ngx_uint_t lane)
{
    ngx_http_usage_gate_ddb_lanes[ngx_http_usage_gate_ddb_lanes_n++] =
        (uint16_t) lane;
}


uint64_t
ngx_http_usage_gate_ddb_next_seq(void)
{
    return ++ngx_http_usage_gate_ddb_seq;
}


/*
 * An UpdateItem ADD with the writer's sequence (item as ..._ddb_body), or
 * with writer NULL the GetItem that reads the count and that sequence.
 */
ngx_int_t
ngx_http_usage_gate_ddb_body_once(ngx_http_usage_gate_ddb_conf_t *dc,
    ngx_pool_t *pool, u_char *owner, size_t len, int32_t month,
    int64_t delta, int64_t limit, const char *writer, uint64_t seq,
    ngx_uint_t get, ngx_str_t *body, ngx_log_t *log)
{
    int            rc;
    char           buf[UG_DDB_BODY_MAX];
    size_t         n;
    ug_ddb_item_t  item;

    ngx_http_usage_gate_ddb_item(dc, owner, len, month, &item);

    item.writer = writer;
    item.writer_len = UG_DDB_WRITER_MAX;
    item.seq = seq;

    rc = get ? ug_ddb_build_get(buf, sizeof(buf), &n, &item)
             : ug_ddb_build_add(buf, sizeof(buf), &n, &item, delta, limit);

    if (rc != UG_DDB_BUILD_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "usage_gate_dynamodb: cannot build a %s for owner "
                      "\"%*s\": %s", get ? "read" : "write", len, owner,
                      ug_ddb_build_strerror(rc));
        return NGX_ERROR;
    }

    return ngx_http_usage_gate_ddb_copy(pool, buf, n, body, log);
}


/* The write is over (answered, abandoned or never sent): its lane frees. */
void
ngx_http_usage_gate_ddb_release(ngx_http_usage_gate_ddb_req_t *dr)
{
    if (!dr->has_lane) {
        return;
    }

    ngx_http_usage_gate_ddb_lane_put(dr->lane);
    dr->has_lane = 0;
}


/* A request's write: a new sequence, retried as is until answered. */
ngx_int_t
ngx_http_usage_gate_ddb_req_body(ngx_http_usage_gate_ddb_req_t *dr,
    int64_t delta)
{
    if (!dr->has_lane) {
        if (ngx_http_usage_gate_ddb_lane_take(&dr->lane, dr->writer,
                                              dr->r->connection->log)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        dr->has_lane = 1;
    }

    dr->seq = ngx_http_usage_gate_ddb_next_seq();

    return ngx_http_usage_gate_ddb_body_once(dr->conf, dr->r->pool,
                                             dr->owner.data, dr->owner.len,
                                             dr->month, delta,
                                             dr->hard, dr->writer,
                                             dr->seq, 0, &dr->body,
                                             dr->r->connection->log);
}


/* One attempt of a waiting request's write. */
ngx_int_t
ngx_http_usage_gate_ddb_send(ngx_http_usage_gate_ddb_req_t *dr)
{
    ngx_int_t  rc;

    rc = ngx_http_usage_gate_ddb_post(dr, UG_DDB_OP_UPDATE, &dr->body,
                                      ngx_http_usage_gate_ddb_answered);

    if (rc == NGX_OK) {
        (void) ngx_atomic_fetch_add(&((ngx_http_usage_gate_ddb_sh_t *)
                                      dr->zone->sh->store)->writes, 1);
    }

    return rc;
}


static ngx_int_t
ngx_http_usage_gate_ddb_post(ngx_http_usage_gate_ddb_req_t *dr,
    const char *op, ngx_str_t *body,
    ngx_http_usage_gate_curl_done_pt handler)
{
    ngx_msec_int_t                   left;
    ug_ddb_result_t                  res;
    const ug_aws_creds_t            *creds;
    ngx_http_usage_gate_ddb_sh_t    *dsh;
    ngx_http_usage_gate_ddb_conf_t  *dc;

    dc = dr->conf;
    dsh = dr->zone->sh->store;

    /* an old worker after a reload: the endpoint may be one the new
     * configuration no longer names (the request gets on_error) */
    if ((ngx_exiting || ngx_quit)
        && (dr->zone->sh->superseded || dsh->generation != dc->generation))
    {
        return NGX_DECLINED;
    }

    creds = ngx_http_usage_gate_ddb_creds(dc);

    if (creds == NULL) {
        ngx_memzero(&res, sizeof(ug_ddb_result_t));
        ngx_cpystrn((u_char *) res.type, (u_char *) "NoCredentials",
                    sizeof(res.type));
        res.cls = UG_DDB_FATAL;
        ngx_http_usage_gate_ddb_error(dr->zone, &res, op,
                                      dr->r->connection->log);
        return NGX_DECLINED;
    }

    left = (ngx_msec_int_t) (dr->deadline - ngx_current_msec);

    if (left <= 0) {
        return NGX_DECLINED;
    }

    dr->attempts++;

    dr->curl = ngx_http_usage_gate_curl_post(dr->r->connection->log,
                          dc->endpoint, op, body,
                          ngx_min(dc->connect_timeout, (ngx_msec_t) left),
                          (ngx_msec_t) left, creds, dc->region, handler, dr);

    if (dr->curl == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A retried write failed its condition: a consistent read of the count
 * and of this writer's sequence tells whether an earlier try was applied.
 */
static ngx_int_t
ngx_http_usage_gate_ddb_check(ngx_http_usage_gate_ddb_req_t *dr)
{
    ngx_str_t  body;

    if (ngx_http_usage_gate_ddb_body_once(dr->conf, dr->r->pool,
                                          dr->owner.data, dr->owner.len,
                                          dr->month, 0, 0, dr->writer,
                                          dr->seq, 1, &body,
                                          dr->r->connection->log)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_usage_gate_ddb_post(dr, UG_DDB_OP_GET, &body,
                                        ngx_http_usage_gate_ddb_resolved);
}


static void
ngx_http_usage_gate_ddb_resolved(void *data, ngx_int_t rc, long status,
    ngx_str_t *body, const char *error)
{
    ngx_http_usage_gate_ddb_req_t *dr = data;

    ug_ddb_class_t   cls;
    ug_ddb_result_t  res;

    dr->curl = NULL;

    cls = ngx_http_usage_gate_ddb_parse_check(dr->writer, rc, status, body,
                                              error, &res);

    if (cls == UG_DDB_OK) {
        if (res.has_seq && res.seq >= dr->seq) {
            /* an earlier try was applied; its answer was lost */
            ngx_http_usage_gate_ddb_settle(dr, NGX_HTTP_USAGE_GATE_DDB_OK,
                                           res.count);

        } else {
            /* none was: the condition that failed is the limit's */
            ngx_http_usage_gate_ddb_refused(dr);

            if (dr->curl != NULL) {
                return;
            }
        }

        ngx_http_usage_gate_ddb_wake(dr);
        return;
    }

    ngx_http_usage_gate_ddb_error(dr->zone, &res, "GetItem",
                                  dr->r->connection->log);

    /* the write again, as is: it fails its condition again if it was
     * applied, and the read follows */
    if (ngx_http_usage_gate_ddb_retry_later(dr, cls)) {
        return;
    }

    ngx_http_usage_gate_ddb_settle(dr, NGX_HTTP_USAGE_GATE_DDB_FAILED, 0);
    ngx_http_usage_gate_ddb_wake(dr);
}


/*
 * The table refused the write (no earlier try of it was applied): a claim
 * is dropped and the request alone tried, or the owner is at its limit.
 * Leaves dr->curl set when another write is on its way.
 */
/*
 * A failed call of a request is tried again after a backoff when its
 * class allows it and the backoff ends before the request's deadline:
 * 1 when the retry timer is set.
 */
static ngx_uint_t
ngx_http_usage_gate_ddb_retry_later(ngx_http_usage_gate_ddb_req_t *dr,
    ug_ddb_class_t cls)
{
    uint32_t        delay;
    ngx_msec_int_t  left;

    if (!ug_ddb_should_retry(cls, dr->attempts)) {
        return 0;
    }

    delay = ug_ddb_backoff_ms(dr->attempts, (uint32_t) ngx_random());
    left = (ngx_msec_int_t) (dr->deadline - ngx_current_msec);

    if (left <= (ngx_msec_int_t) delay) {
        return 0;
    }

    ngx_add_timer(&dr->retry, (ngx_msec_t) delay + 1);

    return 1;
}


static void
ngx_http_usage_gate_ddb_refused(ngx_http_usage_gate_ddb_req_t *dr)
{
    if (dr->extra) {
        /* no room for the claim: this request alone may still fit */
        ngx_http_usage_gate_ddb_unclaim(dr, 1);

        if (ngx_http_usage_gate_ddb_req_body(dr,
                                             (int64_t) (dr->cost + dr->taken))
            == NGX_OK
            && ngx_http_usage_gate_ddb_send(dr) == NGX_OK)
        {
            return;
        }

        ngx_http_usage_gate_ddb_settle(dr, NGX_HTTP_USAGE_GATE_DDB_FAILED, 0);
        return;
    }

    ngx_http_usage_gate_ddb_settle(dr, NGX_HTTP_USAGE_GATE_DDB_QUOTA, 0);
}


ug_ddb_class_t
ngx_http_usage_gate_ddb_parse(ngx_int_t rc, long status, ngx_str_t *body,
    const char *error, ug_ddb_result_t *res)
{
    if (rc == NGX_OK) {
        return ug_ddb_parse_update(status, (char *) body->data, body->len,
                                   res);
    }

    return ug_ddb_parse_error(0, (char *) body->data, body->len, error, res);
}


/*
 * The answer to the consistent read that settles a refused write: did
 * this writer's sequence land in the item?  res->seq tells.
 */
ug_ddb_class_t
ngx_http_usage_gate_ddb_parse_check(const char *writer, ngx_int_t rc,
    long status, ngx_str_t *body, const char *error, ug_ddb_result_t *res)
{
    ug_ddb_item_t  item;

    if (rc != NGX_OK) {
        return ug_ddb_parse_error(0, (char *) body->data, body->len, error,
                                  res);
    }

    ngx_memzero(&item, sizeof(ug_ddb_item_t));
    item.writer = writer;
    item.writer_len = UG_DDB_WRITER_MAX;

    return ug_ddb_parse_get_writer(status, (char *) body->data, body->len,
                                   &item, res);
}


void
ngx_http_usage_gate_ddb_answered(void *data, ngx_int_t rc, long status,
    ngx_str_t *body, const char *error)
{
    ngx_http_usage_gate_ddb_req_t *dr = data;

    ug_ddb_class_t                   cls;
    ug_ddb_result_t                  res;
    ngx_http_usage_gate_ddb_sh_t    *dsh;

    dr->curl = NULL;
    dsh = dr->zone->sh->store;

    cls = ngx_http_usage_gate_ddb_parse(rc, status, body, error, &res);

    switch (cls) {

    case UG_DDB_OK:
        dsh->down_until = 0;
        ngx_http_usage_gate_ddb_settle(dr, NGX_HTTP_USAGE_GATE_DDB_OK,
                                       res.count);
        break;

    case UG_DDB_CONDITIONAL_FAILED:
        dsh->down_until = 0;

        /* maybe an earlier try of this write was applied: ours after a
         * lost answer, or libcurl's own resend when a reused connection
         * dies before the answer, which no retry count of ours sees */
        if (ngx_http_usage_gate_ddb_check(dr) == NGX_OK) {
            return;
        }

        ngx_http_usage_gate_ddb_settle(dr, NGX_HTTP_USAGE_GATE_DDB_FAILED, 0);
        break;

    case UG_DDB_RETRYABLE:
        /* sent, perhaps applied, answer lost: the retry keeps the
         * sequence, and a refusal of it is checked */
        ngx_http_usage_gate_ddb_error(dr->zone, &res, "UpdateItem",
                                      dr->r->connection->log);

        if (ngx_http_usage_gate_ddb_retry_later(dr, cls)) {
            return;
        }

        /* spare the next requests the same wait (see _locked) */
        dsh->down_until = ngx_current_msec + ngx_max(dr->conf->sync, 1000);

        ngx_http_usage_gate_ddb_settle(dr, NGX_HTTP_USAGE_GATE_DDB_FAILED, 0);
        break;

    default: /* UG_DDB_FATAL */
        ngx_http_usage_gate_ddb_error(dr->zone, &res, "UpdateItem",
                                      dr->r->connection->log);

        if (res.auth && ngx_http_usage_gate_ddb_aws
            && ngx_http_usage_gate_ddb_aws->remote_kind
            && ngx_http_usage_gate_ddb_aws->step
               == NGX_HTTP_USAGE_GATE_AWS_NONE)
        {
            /* expired or revoked temporary credentials: fetch again */
            if (ngx_http_usage_gate_ddb_aws->refresh.timer_set) {
                ngx_del_timer(&ngx_http_usage_gate_ddb_aws->refresh);
            }

            ngx_add_timer(&ngx_http_usage_gate_ddb_aws->refresh, 1);
        }

        ngx_http_usage_gate_ddb_settle(dr, NGX_HTTP_USAGE_GATE_DDB_FAILED, 0);
        break;
    }

    ngx_http_usage_gate_ddb_wake(dr);
}


void
ngx_http_usage_gate_ddb_retry(ngx_event_t *ev)
{
    ngx_http_usage_gate_ddb_req_t *dr = ev->data;

    if (ngx_http_usage_gate_ddb_send(dr) == NGX_OK) {
        return;
    }

    ngx_http_usage_gate_ddb_settle(dr, NGX_HTTP_USAGE_GATE_DDB_FAILED, 0);
    ngx_http_usage_gate_ddb_wake(dr);
}


/*
 * Counts an error by its AWS type in the zone, and logs it, at most once
 * a second per worker and zone.
 */
void
ngx_http_usage_gate_ddb_error(ngx_http_usage_gate_zone_t *zone,
    ug_ddb_result_t *res, const char *what, ngx_log_t *log)
{
    size_t                           len;
    ngx_uint_t                       i;
    ngx_http_usage_gate_ddb_sh_t    *dsh;
    ngx_http_usage_gate_ddb_err_t   *e;
    ngx_http_usage_gate_ddb_conf_t  *dc;

    dsh = zone->sh->store;
    dc = zone->store_conf;

    len = ngx_strlen(res->type);

    if (len == 0) {
        ngx_cpystrn((u_char *) res->type, (u_char *) "Unknown",
                    sizeof(res->type));
        len = 7;
    }

    if (len >= NGX_HTTP_USAGE_GATE_DDB_TYPE_LEN) {
        len = NGX_HTTP_USAGE_GATE_DDB_TYPE_LEN - 1;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    e = NULL;

    for (i = 0; i < NGX_HTTP_USAGE_GATE_DDB_ERRORS - 1; i++) {
        e = &dsh->errors[i];

        if (e->type[0] == '\0') {
            ngx_memcpy(e->type, res->type, len);
            e->type[len] = '\0';
            break;
        }

        if (ngx_strncmp(e->type, res->type, len) == 0
            && e->type[len] == '\0')
        {
            break;
        }
    }

    if (i == NGX_HTTP_USAGE_GATE_DDB_ERRORS - 1) {
        e = &dsh->errors[i];
        ngx_memcpy(e->type, "Other", sizeof("Other"));
    }

    e->count++;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (dc->logged == ngx_time()) {
        return;
    }

    dc->logged = ngx_time();

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "usage_gate_dynamodb: zone \"%V\": %s to \"%s\" failed: "
                  "%s (%s%s%s)", &zone->name, what, dc->endpoint, res->type,
                  ug_ddb_class_name(res->cls),
                  res->message[0] ? ": " : "", res->message);
}
