/*
 * The request path: resolve the identity (ngx_http_usage_gate_identity.c),
 * decide in the zone, tell the upstream who is calling, and answer
 * denials; the header filter adds the usage headers to whatever response
 * goes out.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_module.h"
#include "ngx_http_usage_gate_billing.h"
#include "ngx_http_usage_gate_identity.h"
#include "ngx_http_usage_gate_store.h"
#include "ug_fmt.h"
#include "ug_lognote.h"
#include "ug_time.h"


static ngx_int_t ngx_http_usage_gate_subrequest(ngx_http_request_t *r);
static ngx_uint_t ngx_http_usage_gate_preflight(ngx_http_request_t *r);
static ngx_int_t ngx_http_usage_gate_full(ngx_http_request_t *r,
    ngx_http_usage_gate_zone_t *zone, ngx_http_usage_gate_ctx_t *ctx);
static ngx_int_t ngx_http_usage_gate_owned_header(ngx_table_elt_t *h);
static ngx_int_t ngx_http_usage_gate_upstream_headers(ngx_http_request_t *r,
    ngx_http_usage_gate_ctx_t *ctx, ngx_uint_t private);
static void ngx_http_usage_gate_log_denial(ngx_http_request_t *r,
    ngx_uint_t level, const char *what, ngx_http_usage_gate_ctx_t *ctx,
    ug_plan_t *plan);
static ngx_int_t ngx_http_usage_gate_deny(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ngx_http_usage_gate_ctx_t *ctx);
static ngx_int_t ngx_http_usage_gate_send_json(ngx_http_request_t *r,
    ngx_uint_t status, u_char *body, size_t len);
static ngx_int_t ngx_http_usage_gate_reject(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ngx_uint_t status,
    ngx_str_t *detail);
static ngx_int_t ngx_http_usage_gate_challenge(ngx_http_request_t *r,
    ngx_str_t *detail);
static void ngx_http_usage_gate_cleanup(void *data);
static ngx_int_t ngx_http_usage_gate_header_filter(ngx_http_request_t *r);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;

static ngx_str_t  ngx_http_usage_gate_json = ngx_string("application/json");


/*
 * RateLimit-Policy depends on the limits alone, so a worker formats a
 * plan's once and every response points at it.  An entry is written once
 * and never changed, as the headers of requests in flight point into it;
 * its limits are compared on every use, so limits it was not made for (an
 * overage band, a plan a reload changed in a single-process nginx, which
 * keeps this table) are formatted per response instead.
 */
typedef struct {
    ug_limits_t                       limits;
    size_t                            len;          /* 0: not made yet */
    u_char                            data[UG_FMT_FIELD_MAX];
} ngx_http_usage_gate_policy_t;

static ngx_http_usage_gate_policy_t  ngx_http_usage_gate_policy[UG_PLANS_MAX];

/*
 * Headers the gate owns on the way upstream: whatever the client sent
 * under these names is dropped, so the app sees only what the gate says.
 */
static ngx_http_usage_gate_hname_t  ngx_http_usage_gate_owned[] = {
    ngx_http_usage_gate_hname("X-User-Id", "x-user-id"),
    ngx_http_usage_gate_hname("X-Org-Id", "x-org-id"),
    ngx_http_usage_gate_hname("X-Plan", "x-plan"),
    ngx_http_usage_gate_hname("X-Usage-Owner", "x-usage-owner"),
    ngx_http_usage_gate_hname("X-Usage-Month-Used", "x-usage-month-used"),
    ngx_http_usage_gate_hname("X-Usage-Month-Remaining",
                              "x-usage-month-remaining"),
    ngx_http_usage_gate_hname("X-Usage-Overage", "x-usage-overage"),
};

/* the usage headers of the response */
static ngx_http_usage_gate_hname_t  ngx_http_usage_gate_h_retry_after =
    ngx_http_usage_gate_hname("Retry-After", "retry-after");
static ngx_http_usage_gate_hname_t  ngx_http_usage_gate_h_plan =
    ngx_http_usage_gate_hname("X-Plan", "x-plan");
static ngx_http_usage_gate_hname_t  ngx_http_usage_gate_h_remaining =
    ngx_http_usage_gate_hname("X-Usage-Remaining", "x-usage-remaining");
static ngx_http_usage_gate_hname_t  ngx_http_usage_gate_h_this_minute =
    ngx_http_usage_gate_hname("X-Usage-This-Minute", "x-usage-this-minute");
static ngx_http_usage_gate_hname_t  ngx_http_usage_gate_h_overage =
    ngx_http_usage_gate_hname("X-Usage-Overage", "x-usage-overage");
static ngx_http_usage_gate_hname_t  ngx_http_usage_gate_h_policy =
    ngx_http_usage_gate_hname("RateLimit-Policy", "ratelimit-policy");
static ngx_http_usage_gate_hname_t  ngx_http_usage_gate_h_ratelimit =
    ngx_http_usage_gate_hname("RateLimit", "ratelimit");

#define NGX_HTTP_USAGE_GATE_OWNED                                           \
    (sizeof(ngx_http_usage_gate_owned) / sizeof(ngx_http_usage_gate_owned[0]))


static ngx_inline ngx_int_t
ngx_http_usage_gate_response_header(ngx_http_request_t *r,
    ngx_http_usage_gate_hname_t *name, u_char *value, size_t len)
{
    return ngx_http_usage_gate_push_header(&r->headers_out.headers, name,
                                           value, len);
}


ngx_http_usage_gate_ctx_t *
ngx_http_usage_gate_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t         *cln;
    ngx_http_usage_gate_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_usage_gate_module);

    if (ctx == NULL && (r->internal || r->filter_finalize)) {

        /* an internal redirect (error_page, try_files) clears module
         * contexts; the decision is still in the pool's cleanup list, and
         * finding it keeps a request from being counted twice */

        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_usage_gate_cleanup) {
                ctx = cln->data;
                ngx_http_set_ctx(r, ctx, ngx_http_usage_gate_module);
                break;
            }
        }
    }

    return ctx;
}


static void
ngx_http_usage_gate_cleanup(void *data)
{
    /* a marker only: see ngx_http_usage_gate_get_ctx() */
}


ngx_int_t
ngx_http_usage_gate_handler(ngx_http_request_t *r)
{
    ngx_int_t                         rc;
    ngx_str_t                         plan, detail;
    ngx_pool_cleanup_t               *cln;
    const ug_terms_t                 *terms;
    ngx_http_usage_gate_ctx_t        *ctx;
    ngx_http_usage_gate_zone_t       *zone;
    ngx_http_usage_gate_loc_conf_t   *lcf;
    ngx_http_usage_gate_main_conf_t  *mcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_usage_gate_module);

    if (lcf->shm_zone == NULL || lcf->endpoint) {
        return NGX_DECLINED;
    }

    /* a subrequest (SSI include, mirror, auth_request) is never a call of
     * its own: its main request is the one counted */
    if (r != r->main) {
        return ngx_http_usage_gate_subrequest(r);
    }

    ctx = ngx_http_usage_gate_get_ctx(r);

    if (ctx != NULL) {
        /* run again when the zone's store has answered */
        zone = lcf->shm_zone->data;
        rc = zone->store ? zone->store->resume(r, ctx, &detail)
                         : NGX_DECLINED;

        if (rc == NGX_DECLINED) {
            /* decided once already for this request */
            return NGX_DECLINED;
        }

        mcf = ngx_http_get_module_main_conf(r, ngx_http_usage_gate_module);
        zone = lcf->shm_zone->data;

        goto decided;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_usage_gate_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->plan = -1;

    /* a CORS preflight asks the browser's leave to call, and is not a
     * call: it passes uncounted and unrefused, with no identity */
    if (!lcf->count_preflight && ngx_http_usage_gate_preflight(r)) {
        ngx_http_usage_gate_zone_count(lcf->shm_zone->data, -1,
                                       NGX_HTTP_USAGE_GATE_ST_PREFLIGHT);

        if (ngx_http_usage_gate_upstream_headers(r, ctx, 0) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_DECLINED;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_usage_gate_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_usage_gate_module);

    mcf = ngx_http_get_module_main_conf(r, ngx_http_usage_gate_module);
    zone = lcf->shm_zone->data;

    ctx->decided = 1;
    ctx->headers = lcf->headers ? 1 : 0;

    ngx_str_null(&plan);

    rc = ngx_http_usage_gate_identify(r, lcf, ctx, &plan, &detail);

    if (rc != NGX_OK) {
        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_usage_gate_zone_count(zone, -1,
                                 rc == NGX_HTTP_UNAUTHORIZED
                                 ? NGX_HTTP_USAGE_GATE_ST_UNAUTHORIZED
                                 : rc == NGX_HTTP_SERVICE_UNAVAILABLE
                                 ? NGX_HTTP_USAGE_GATE_ST_UNAVAILABLE
                                 : NGX_HTTP_USAGE_GATE_ST_BAD_REQUEST);

        /* nothing the client asserted survives a refusal: an error_page
         * may send this request to another upstream */
        ngx_str_null(&ctx->user);
        ngx_str_null(&ctx->org);

        if (ngx_http_usage_gate_upstream_headers(r, ctx, 0) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_usage_gate_reject(r, lcf, rc, &detail);
    }

    if (plan.len) {
        ctx->plan = ug_plan_find(&mcf->plans, (char *) plan.data, plan.len);
    }

    if (ctx->plan < 0) {
        ctx->plan = mcf->default_plan;
    }

    ctx->limits = mcf->plans.plans[ctx->plan].limits;

    ctx->owner = (lcf->scope == NGX_HTTP_USAGE_GATE_SCOPE_ORG && ctx->org.len)
                 ? ctx->org : ctx->user;

    if (lcf->plans_mask && !(lcf->plans_mask & (1u << ctx->plan))) {
        ctx->result = NGX_HTTP_USAGE_GATE_BYPASS;
        ngx_http_usage_gate_zone_count(zone, ctx->plan,
                                       NGX_HTTP_USAGE_GATE_ST_BYPASS);
        goto pass;
    }

    terms = ngx_http_usage_gate_terms(r, lcf, ctx);

    /* a zone backed by a store decides with it (under ctx->terms), and
     * the request may wait for its answer (NGX_DONE) */
    if (zone->store) {
        rc = zone->store->decide(r, lcf, ctx, &detail);

    } else {
        rc = ngx_http_usage_gate_zone_decide(zone, ctx->owner.data,
                                 ctx->owner.len, &ctx->limits, terms,
                                 lcf->cost, ngx_http_usage_gate_now_us(),
                                 &ctx->d);
    }

decided:

    if (rc == NGX_DONE) {
        return NGX_DONE;
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_HTTP_SERVICE_UNAVAILABLE) {
        /* the store unreachable and on_error=deny: nothing was counted */
        ngx_http_usage_gate_zone_count(zone, ctx->plan,
                                       NGX_HTTP_USAGE_GATE_ST_UNAVAILABLE);

        if (ngx_http_usage_gate_upstream_headers(r, ctx, 0) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_usage_gate_reject(r, lcf, rc, &detail);
    }

    if (rc == NGX_HTTP_USAGE_GATE_FULL) {
        rc = ngx_http_usage_gate_full(r, zone, ctx);

        if (rc == NGX_DECLINED) {
            goto pass;
        }

        if (ngx_http_usage_gate_upstream_headers(r, ctx, 0) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_HTTP_SERVICE_UNAVAILABLE) {
            ngx_str_set(&detail, "The usage gate has no room for a new "
                                 "caller right now. Please retry later.");
            return ngx_http_usage_gate_reject(r, lcf, rc, &detail);
        }

        return ngx_http_usage_gate_deny(r, lcf, ctx);
    }

    ctx->counted = 1;

    switch (ctx->d.verdict) {

    case UG_ALLOWED:
        ctx->result = NGX_HTTP_USAGE_GATE_ALLOWED;
        ngx_http_usage_gate_zone_count(zone, ctx->plan,
                                       NGX_HTTP_USAGE_GATE_ST_ALLOWED);
        break;

    case UG_QUOTA:
        ctx->result = lcf->dry_run ? NGX_HTTP_USAGE_GATE_DRY_RUN_QUOTA
                                   : NGX_HTTP_USAGE_GATE_QUOTA;
        ngx_http_usage_gate_zone_count(zone, ctx->plan, lcf->dry_run
                                   ? NGX_HTTP_USAGE_GATE_ST_DRY_RUN_QUOTA
                                   : NGX_HTTP_USAGE_GATE_ST_QUOTA);
        break;

    default: /* UG_RATE */
        ctx->result = lcf->dry_run ? NGX_HTTP_USAGE_GATE_DRY_RUN_RATE
                                   : NGX_HTTP_USAGE_GATE_RATE;
        ngx_http_usage_gate_zone_count(zone, ctx->plan, lcf->dry_run
                                   ? NGX_HTTP_USAGE_GATE_ST_DRY_RUN_RATE
                                   : NGX_HTTP_USAGE_GATE_ST_RATE);
        break;
    }

    if (ctx->d.verdict != UG_ALLOWED) {

        if (!lcf->dry_run) {
            /* the gate's identity goes with the request wherever an
             * error_page sends it */
            if (ngx_http_usage_gate_upstream_headers(r, ctx, 0) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_usage_gate_deny(r, lcf, ctx);
        }

        ngx_http_usage_gate_log_denial(r, NGX_LOG_WARN,
                                       "dry run: would deny: ", ctx,
                                       &mcf->plans.plans[ctx->plan]);
    }

pass:

    if (ngx_http_usage_gate_upstream_headers(r, ctx, 0) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DECLINED;
}


/*
 * A subrequest in a gated location: it is not counted, and it carries the
 * identity the gate resolved for its main request, or none when the main
 * request was not gated (an SSI page, say).  Its header list is a copy of
 * its parent's list head whose parts it shares, so it gets a private list
 * rather than changes that would show through in the parent.
 */
static ngx_int_t
ngx_http_usage_gate_subrequest(ngx_http_request_t *r)
{
    ngx_http_usage_gate_ctx_t  *mctx, ctx;

    ngx_memzero(&ctx, sizeof(ngx_http_usage_gate_ctx_t));
    ctx.plan = -1;

    mctx = ngx_http_usage_gate_get_ctx(r->main);

    if (mctx != NULL && mctx->plan >= 0) {
        ctx = *mctx;
    }

    if (ngx_http_usage_gate_upstream_headers(r, &ctx, 1) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DECLINED;
}


/* OPTIONS with Origin and Access-Control-Request-Method (Fetch standard) */
static ngx_uint_t
ngx_http_usage_gate_preflight(ngx_http_request_t *r)
{
    return r->method == NGX_HTTP_OPTIONS
           && ngx_http_usage_gate_find_header(&r->headers_in.headers,
                                              "Origin",
                                              sizeof("Origin") - 1)
           && ngx_http_usage_gate_find_header(&r->headers_in.headers,
                                    "Access-Control-Request-Method",
                                    sizeof("Access-Control-Request-Method")
                                    - 1);
}


/*
 * The zone has no room for a new owner even after dropping stale ones.
 * With full=deny the request gets 503; otherwise it passes uncounted for
 * the month, as serving is worth more than counting it, but new owners
 * that do not fit share one per-minute bucket per zone, so minting ids
 * buys no more than that rate.  NGX_DECLINED: pass; NGX_HTTP_SERVICE_-
 * UNAVAILABLE: 503; NGX_OK: refused by the bucket (ctx->d says when to
 * retry).
 */
static ngx_int_t
ngx_http_usage_gate_full(ngx_http_request_t *r,
    ngx_http_usage_gate_zone_t *zone, ngx_http_usage_gate_ctx_t *ctx)
{
    if (zone->full_logged != ngx_time()) {
        zone->full_logged = ngx_time();
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "usage_gate_zone \"%V\" is full: %s; increase the "
                      "zone size", &zone->name,
                      zone->full_deny ? "new callers get 503"
                      : "new callers pass uncounted, within the "
                        "overflow bucket");
    }

    if (zone->full_deny) {
        ngx_http_usage_gate_zone_count(zone, ctx->plan,
                                       NGX_HTTP_USAGE_GATE_ST_FULL);
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    if (ngx_http_usage_gate_zone_overflow(zone, ngx_http_usage_gate_now_us(),
                                          &ctx->d)
        == NGX_OK)
    {
        ctx->result = NGX_HTTP_USAGE_GATE_ALLOWED;
        ngx_http_usage_gate_zone_count(zone, ctx->plan,
                                       NGX_HTTP_USAGE_GATE_ST_OVERFLOW);
        return NGX_DECLINED;
    }

    ctx->result = NGX_HTTP_USAGE_GATE_RATE;
    ngx_http_usage_gate_zone_count(zone, ctx->plan,
                                   NGX_HTTP_USAGE_GATE_ST_OVERFLOW_RATE);

    return NGX_OK;
}


/*
 * Which of the gate's own headers h is, or -1.  Compared by lowcase_key:
 * every request header has one (the proxy module looks headers up by
 * it), and a memcmp costs a tenth of a case-folding loop.
 */
static ngx_int_t
ngx_http_usage_gate_owned_header(ngx_table_elt_t *h)
{
    ngx_uint_t  k;

    for (k = 0; k < NGX_HTTP_USAGE_GATE_OWNED; k++) {
        if (h->key.len == ngx_http_usage_gate_owned[k].key.len
            && ngx_memcmp(h->lowcase_key,
                          ngx_http_usage_gate_owned[k].lowcase,
                          h->key.len) == 0)
        {
            return k;
        }
    }

    return -1;
}


/*
 * Rewrites the request headers that go upstream: the gate's headers carry
 * the resolved values and nothing a client sent under their names gets
 * through.  A header sent once is given its new value in place (the
 * common case: a trusted proxy's X-User-Id and X-Plan).  When one was sent
 * twice, or must go because there is no value for it (X-Org-Id without an
 * org), the list is rebuilt without them, as entries cannot be removed
 * from an ngx_list_t; the old entries stay in the pool, so any pointer
 * nginx keeps to them (r->headers_in.host, ...) remains valid.
 */
static ngx_int_t
ngx_http_usage_gate_upstream_headers(ngx_http_request_t *r,
    ngx_http_usage_gate_ctx_t *ctx, ngx_uint_t private)
{
    u_char                           *p;
    ngx_int_t                         k;
    ngx_str_t                         value[NGX_HTTP_USAGE_GATE_OWNED];
    ngx_uint_t                        i, n, rebuild;
    ngx_uint_t                        count[NGX_HTTP_USAGE_GATE_OWNED];
    ngx_list_t                        headers;
    ngx_list_part_t                  *part;
    ngx_table_elt_t                  *h, *nh;
    ngx_table_elt_t                  *found[NGX_HTTP_USAGE_GATE_OWNED];
    ug_plan_t                        *plan;
    ngx_http_usage_gate_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_usage_gate_module);

    ngx_memzero(value, sizeof(value));
    ngx_memzero(count, sizeof(count));
    ngx_memzero(found, sizeof(found));
    ngx_str_null(&ctx->remaining);

    /* in the order of ngx_http_usage_gate_owned[]; empty: not sent; no
     * plan yet: nothing is known, and every owned header goes */
    if (ctx->plan >= 0) {
        plan = &mcf->plans.plans[ctx->plan];

        value[0] = ctx->user;
        value[1] = ctx->org;
        value[2].data = (u_char *) plan->name;
        value[2].len = plan->len;
        value[3] = ctx->owner;
    }

    if (ctx->counted) {
        p = ngx_pnalloc(r->pool, 3 * UG_FMT_UINT_MAX);
        if (p == NULL) {
            return NGX_ERROR;
        }

        value[4].data = p;
        value[4].len = ug_fmt_uint((char *) p, ctx->d.month_used);

        if (ug_month_hard_limit(&ctx->limits, &ctx->terms) != UG_OFF) {
            p += UG_FMT_UINT_MAX;
            value[5].data = p;
            value[5].len = ug_fmt_uint((char *) p, ctx->d.month_remaining);

            /* X-Usage-Remaining of the response says the same */
            ctx->remaining = value[5];
        }

        if (ctx->d.verdict == UG_ALLOWED && ctx->d.overage) {
            p += UG_FMT_UINT_MAX;
            value[6].data = p;
            value[6].len = ug_fmt_uint((char *) p, ctx->d.overage);
        }
    }

    n = 0;
    rebuild = private;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        n++;

        k = ngx_http_usage_gate_owned_header(&h[i]);
        if (k < 0) {
            continue;
        }

        if (count[k]++ == 0) {
            found[k] = &h[i];
        }

        if (count[k] > 1 || value[k].len == 0) {
            rebuild = 1;
        }
    }

    if (rebuild) {
        /* a copy of the list head: its parts stay where they are */
        headers = r->headers_in.headers;

        if (ngx_list_init(&r->headers_in.headers, r->pool, n + 6,
                          sizeof(ngx_table_elt_t))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        part = &headers.part;
        h = part->elts;

        for (i = 0; /* void */; i++) {

            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }

                part = part->next;
                h = part->elts;
                i = 0;
            }

            if (ngx_http_usage_gate_owned_header(&h[i]) >= 0) {
                continue;
            }

            nh = ngx_list_push(&r->headers_in.headers);
            if (nh == NULL) {
                return NGX_ERROR;
            }

            *nh = h[i];
        }

        ngx_memzero(found, sizeof(found));
    }

    for (k = 0; k < (ngx_int_t) NGX_HTTP_USAGE_GATE_OWNED; k++) {

        if (value[k].len == 0) {
            continue;
        }

        if (found[k]) {
            found[k]->value = value[k];
            continue;
        }

        if (ngx_http_usage_gate_push_header(&r->headers_in.headers,
                                            &ngx_http_usage_gate_owned[k],
                                            value[k].data, value[k].len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * One owner refused a thousand times is one event: a worker logs the
 * first quota denial of an owner in a cycle and the first rate denial in
 * a minute; $usage_gate_status in the access log records every request.
 * The owner is escaped, as it is whatever a token or a proxy said.
 */
static void
ngx_http_usage_gate_log_denial(ngx_http_request_t *r, ngx_uint_t level,
    const char *what, ngx_http_usage_gate_ctx_t *ctx, ug_plan_t *plan)
{
    size_t                 len;
    int64_t                period;
    unsigned               kind;
    u_char                 owner[4 * UG_OWNER_MAX + 3];
    static ug_lognote_t   *notes;

    if (r->connection->log->log_level < level) {
        return;
    }

    if (ctx->d.verdict == UG_QUOTA) {
        kind = UG_LOGNOTE_QUOTA;
        period = ctx->d.cycle.id ? ctx->d.cycle.id
                                 : ug_month_index(ngx_time());

    } else {
        kind = UG_LOGNOTE_RATE;
        period = ngx_time() / 60;
    }

    if (notes == NULL) {
        /* per worker, for the worker's life */
        notes = ngx_calloc(sizeof(ug_lognote_t), ngx_cycle->log);
    }

    if (notes != NULL
        && !ug_lognote_first(notes, ug_lognote_hash(ctx->owner.data,
                                                    ctx->owner.len),
                             kind, period))
    {
        return;
    }

    len = ug_log_escape((char *) owner, sizeof(owner), ctx->owner.data,
                        ctx->owner.len);

    ngx_log_error(level, r->connection->log, 0,
                  "usage_gate: %s%s for owner \"%*s\" (plan \"%s\", "
                  "month %uL, minute %uL)%s",
                  what, ctx->d.verdict == UG_QUOTA
                  ? "monthly quota reached" : "per-minute cap reached",
                  len, owner, plan->name, ctx->d.month_used,
                  ctx->d.minute_used,
                  ctx->d.verdict == UG_QUOTA
                  ? "; later denials of this owner this cycle are not logged"
                  : "; later denials of this owner this minute are not "
                    "logged");
}


static ngx_int_t
ngx_http_usage_gate_deny(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ngx_http_usage_gate_ctx_t *ctx)
{
    u_char                           *body;
    size_t                            size, len;
    ngx_uint_t                        status;
    ug_plan_t                        *plan;
    ngx_http_usage_gate_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_usage_gate_module);
    plan = &mcf->plans.plans[ctx->plan];

    status = ctx->d.verdict == UG_QUOTA ? lcf->quota_status
                                        : lcf->rate_status;

    ngx_http_usage_gate_log_denial(r, lcf->log_level, "", ctx, plan);

    size = ug_fmt_deny_body_size(plan->len, lcf->upgrade_url.len);

    body = ngx_pnalloc(r->pool, size);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ug_fmt_deny_body((char *) body, size, &ctx->d, plan->name,
                           plan->len, &ctx->limits,
                           lcf->upgrade_url.len
                           ? (char *) lcf->upgrade_url.data : NULL,
                           lcf->upgrade_url.len);
    if (len == 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_usage_gate_send_json(r, status, body, len);
}


static ngx_int_t
ngx_http_usage_gate_reject(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ngx_uint_t status,
    ngx_str_t *detail)
{
    u_char  *body;
    size_t   size, len;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "usage_gate: %ui: %V", status, detail);

    if (status == NGX_HTTP_UNAUTHORIZED
        && ngx_http_usage_gate_challenge(r, detail) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    size = ug_fmt_detail_size(detail->len);

    body = ngx_pnalloc(r->pool, size);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ug_fmt_detail((char *) body, size, (char *) detail->data,
                        detail->len);
    if (len == 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_usage_gate_send_json(r, status, body, len);
}


/*
 * RFC 6750: a refused token gets error="invalid_token" and the reason; a
 * request with no token at all (ctx->jwt unset) gets the bare challenge.
 */
static ngx_int_t
ngx_http_usage_gate_challenge(ngx_http_request_t *r, ngx_str_t *detail)
{
    u_char                     *p, *last;
    size_t                      len, i;
    ngx_http_usage_gate_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_usage_gate_module);

    if (ctx == NULL || ctx->jwt_error == NULL || ctx->jwt == NULL) {
        return ngx_http_usage_gate_response_header(r,
                   &ngx_http_usage_gate_h_www_authenticate,
                   (u_char *) "Bearer", sizeof("Bearer") - 1);
    }

    len = sizeof("Bearer error=\"invalid_token\", error_description=\"\"")
          + detail->len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_cpymem(p, "Bearer error=\"invalid_token\", "
                         "error_description=\"",
                      sizeof("Bearer error=\"invalid_token\", "
                             "error_description=\"") - 1);

    /* details are the module's own sentences; keep the quoting sound
     * anyway: a quote or backslash would end the quoted-string early */
    for (i = 0; i < detail->len; i++) {
        *last++ = (detail->data[i] == '"' || detail->data[i] == '\\')
                  ? '\'' : detail->data[i];
    }

    *last++ = '"';

    return ngx_http_usage_gate_response_header(r,
               &ngx_http_usage_gate_h_www_authenticate, p, last - p);
}


/*
 * Answers from the access phase with a JSON body, unless an error_page
 * for the status is configured: then nginx's error page takes over.
 */
static ngx_int_t
ngx_http_usage_gate_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len)
{
    ngx_int_t                  rc;
    ngx_uint_t                 i;
    ngx_http_err_page_t       *err_page;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->error_pages) {
        err_page = clcf->error_pages->elts;

        for (i = 0; i < clcf->error_pages->nelts; i++) {
            if ((ngx_uint_t) err_page[i].status == status) {
                return status;
            }
        }
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_finalize_request(r, ngx_http_usage_gate_output(r, status,
                                         &ngx_http_usage_gate_json, body,
                                         len));

    return NGX_DONE;
}


ngx_int_t
ngx_http_usage_gate_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_usage_gate_header_filter;

    return NGX_OK;
}


/*
 * Adds the client-facing usage headers to the response that goes out,
 * whatever produced it: the upstream, our own denial, or an error_page.
 */
static ngx_int_t
ngx_http_usage_gate_header_filter(ngx_http_request_t *r)
{
    u_char                           *p, *value;
    size_t                            len;
    ug_plan_t                        *plan;
    ug_limits_t                       hard;
    ngx_http_usage_gate_ctx_t        *ctx;
    ngx_http_usage_gate_policy_t     *policy;
    ngx_http_usage_gate_main_conf_t  *mcf;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_usage_gate_get_ctx(r);

    if (ctx == NULL || ctx->plan < 0 || ctx->filtered) {
        return ngx_http_next_header_filter(r);
    }

    /* once per response: an error_page would pass here again */
    ctx->filtered = 1;

    p = ngx_pnalloc(r->pool, 4 * UG_FMT_UINT_MAX + 2 * UG_FMT_FIELD_MAX);
    if (p == NULL) {
        return NGX_ERROR;
    }

    /* Retry-After belongs to the denial, not to the usage headers */
    if (ctx->result == NGX_HTTP_USAGE_GATE_QUOTA
        || ctx->result == NGX_HTTP_USAGE_GATE_RATE)
    {
        len = ug_fmt_uint((char *) p, ctx->d.retry_after);

        if (ngx_http_usage_gate_response_header(r,
                &ngx_http_usage_gate_h_retry_after, p, len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    p += UG_FMT_UINT_MAX;

    if (!ctx->headers) {
        return ngx_http_next_header_filter(r);
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_usage_gate_module);
    plan = &mcf->plans.plans[ctx->plan];

    if (ngx_http_usage_gate_response_header(r, &ngx_http_usage_gate_h_plan,
                                            (u_char *) plan->name, plan->len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!ctx->counted) {
        return ngx_http_next_header_filter(r);
    }

    /* remaining and RateLimit tell where 402s begin: past the overage
     * band, if the plan has one */
    hard = ctx->limits;
    hard.month = ug_month_hard_limit(&ctx->limits, &ctx->terms);

    if (hard.month != UG_OFF) {
        /* the same digits as the upstream's X-Usage-Month-Remaining */
        if (ctx->remaining.len == 0) {
            ctx->remaining.data = p;
            ctx->remaining.len = ug_fmt_uint((char *) p,
                                             ctx->d.month_remaining);
        }

        if (ngx_http_usage_gate_response_header(r,
                &ngx_http_usage_gate_h_remaining, ctx->remaining.data,
                ctx->remaining.len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    p += UG_FMT_UINT_MAX;

    /* the bucket's fill, never above the cap it reports against */
    len = ug_fmt_uint((char *) p, ctx->d.minute_fill);

    if (ngx_http_usage_gate_response_header(r,
            &ngx_http_usage_gate_h_this_minute, p, len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    p += UG_FMT_UINT_MAX;

    /* units of this call past the included month: billed as overage */
    if (ctx->d.verdict == UG_ALLOWED && ctx->d.overage) {
        len = ug_fmt_uint((char *) p, ctx->d.overage);

        if (ngx_http_usage_gate_response_header(r,
                &ngx_http_usage_gate_h_overage, p, len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    p += UG_FMT_UINT_MAX;

    policy = &ngx_http_usage_gate_policy[ctx->plan];

    if (policy->len
        && policy->limits.month == hard.month
        && policy->limits.minute == hard.minute)
    {
        value = policy->data;
        len = policy->len;

    } else {
        value = p;
        len = ug_fmt_policy((char *) p, UG_FMT_FIELD_MAX, &hard);

        if (len && policy->len == 0) {
            ngx_memcpy(policy->data, p, len);
            policy->limits = hard;
            policy->len = len;
        }
    }

    if (len == 0) {
        return ngx_http_next_header_filter(r);
    }

    if (ngx_http_usage_gate_response_header(r, &ngx_http_usage_gate_h_policy,
                                            value, len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    p += UG_FMT_FIELD_MAX;

    len = ug_fmt_ratelimit((char *) p, UG_FMT_FIELD_MAX, &hard, &ctx->d);

    if (len
        && ngx_http_usage_gate_response_header(r,
               &ngx_http_usage_gate_h_ratelimit, p, len)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}
