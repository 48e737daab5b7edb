/*
 * Billing terms around the gate's decision.
 *
 * Before the gate decides (precontent phase, ahead of its handler): a
 * request whose billing-cycle anchor does not parse is refused with 400,
 * since counting it in a made-up cycle would bill it wrongly.  When the
 * gate decides: the plan's overage band and the anchor make the terms.
 * Once the response is sent (log phase, which knows the final status):
 * a call that failed on our side gets its units back, units past the
 * included month are counted for billing, and thresholds of the month
 * that were reached and not yet notified in this cycle are claimed under
 * the zone's lock and handed to the sender (ngx_http_usage_gate_notify.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_billing.h"
#include "ngx_http_usage_gate_store.h"
#include "ug_cycle.h"
#include "ug_fmt.h"
#include "ug_notify.h"


typedef struct {
    ngx_http_usage_gate_zone_t  *zone;
    int32_t                      cycle;   /* the decision's cycle id */
    uint64_t                     units;   /* in: to give back; out: given */
} ngx_http_usage_gate_refund_t;


typedef struct {
    int32_t            cycle;
    uint32_t           crossed;     /* in: reached; out: ours to send */
} ngx_http_usage_gate_claim_t;


static ngx_int_t ngx_http_usage_gate_anchor(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, int *day, const char **err);
static ngx_int_t ngx_http_usage_gate_anchor_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_usage_gate_log_handler(ngx_http_request_t *r);
static ngx_uint_t ngx_http_usage_gate_failed(ngx_http_request_t *r);
static ngx_int_t ngx_http_usage_gate_refund_fn(ug_counter_t *c, void *data);
static ngx_int_t ngx_http_usage_gate_claim_fn(ug_counter_t *c, void *data);
static ngx_uint_t ngx_http_usage_gate_slot(ngx_http_usage_gate_zone_t *zone,
    ngx_int_t plan);


static ngx_str_t  ngx_http_usage_gate_json_type =
    ngx_string("application/json");


const ug_terms_t *
ngx_http_usage_gate_terms(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ngx_http_usage_gate_ctx_t *ctx)
{
    int                               day;
    const char                       *err;
    ngx_http_usage_gate_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_usage_gate_module);

    ctx->terms.overage = (ctx->plan >= 0)
                         ? mcf->plans.plans[ctx->plan].overage : 0;
    ctx->terms.anchor = 0;

    /* the anchor was checked before the gate ran; were it to differ now,
     * calendar months are the safe reading */
    if (lcf->cycle_anchor
        && ngx_http_usage_gate_anchor(r, lcf, &day, &err) == NGX_OK)
    {
        ctx->terms.anchor = day;
    }

    ctx->zone = lcf->shm_zone->data;
    ctx->cost = lcf->cost;
    ctx->refund = lcf->refund ? 1 : 0;

    return &ctx->terms;
}


/* The anchor day of the request (0: calendar months), or NGX_DECLINED
 * with the reason. */
static ngx_int_t
ngx_http_usage_gate_anchor(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, int *day, const char **err)
{
    int        rc;
    ngx_str_t  value;

    *day = 0;

    if (ngx_http_complex_value(r, lcf->cycle_anchor, &value) != NGX_OK) {
        *err = "the billing cycle anchor could not be evaluated";
        return NGX_ERROR;
    }

    rc = ug_anchor_parse((char *) value.data, value.len, day);

    if (rc != UG_ANCHOR_OK) {
        *err = ug_anchor_strerror(rc);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


char *
ngx_http_usage_gate_cycle_anchor(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_usage_gate_loc_conf_t *lcf = conf;

    ngx_str_t                         *value;
    ngx_http_compile_complex_value_t   ccv;

    if (lcf->cycle_anchor != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        lcf->cycle_anchor = NULL;
        return NGX_CONF_OK;
    }

    lcf->cycle_anchor = ngx_palloc(cf->pool,
                                   sizeof(ngx_http_complex_value_t));
    if (lcf->cycle_anchor == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = lcf->cycle_anchor;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_usage_gate_billing_merge(ngx_conf_t *cf,
    ngx_http_usage_gate_loc_conf_t *conf,
    ngx_http_usage_gate_loc_conf_t *prev)
{
    /* a zone with a shared store (DynamoDB) keeps the same terms: the
     * cycle's start month is the item's key, the hard limit the
     * conditional write's ceiling, and a refund goes to the table as a
     * negative delta (ngx_http_usage_gate_ddb_refund) */
    ngx_conf_merge_value(conf->refund, prev->refund, 0);
    ngx_conf_merge_ptr_value(conf->cycle_anchor, prev->cycle_anchor, NULL);

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_usage_gate_billing_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /* pushed after the gate's own precontent handler, so it runs first
     * (nginx runs a phase's handlers last pushed first) */
    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_usage_gate_anchor_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_usage_gate_log_handler;

    return NGX_OK;
}


/* Refuses a request whose billing-cycle anchor does not parse. */
static ngx_int_t
ngx_http_usage_gate_anchor_handler(ngx_http_request_t *r)
{
    u_char                          *body, *p;
    size_t                           size, len;
    ngx_int_t                        rc;
    int                              day;
    const char                      *err;
    ngx_http_usage_gate_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_usage_gate_module);

    if (lcf->shm_zone == NULL || lcf->endpoint || lcf->cycle_anchor == NULL
        || r != r->main || ngx_http_usage_gate_get_ctx(r) != NULL)
    {
        return NGX_DECLINED;
    }

    rc = ngx_http_usage_gate_anchor(r, lcf, &day, &err);

    if (rc == NGX_OK) {
        return NGX_DECLINED;
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_usage_gate_zone_count(lcf->shm_zone->data, -1,
                                   NGX_HTTP_USAGE_GATE_ST_BAD_REQUEST);

    /* the engine's sentence says what is wrong and what would do */
    p = (u_char *) err;
    len = ngx_strlen(err);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0, "usage_gate: 400: %s",
                  err);

    size = ug_fmt_detail_size(len);

    body = ngx_pnalloc(r->pool, size);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    size = ug_fmt_detail((char *) body, size, (char *) p, len);
    if (size == 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_finalize_request(r, ngx_http_usage_gate_output(r,
                                         NGX_HTTP_BAD_REQUEST,
                                         &ngx_http_usage_gate_json_type,
                                         body, size));

    return NGX_DONE;
}


/*
 * Once per request, when its final status is known: a refund for a call
 * that failed on our side; otherwise the overage it was billed and the
 * thresholds it reached.
 */
static ngx_int_t
ngx_http_usage_gate_log_handler(ngx_http_request_t *r)
{
    uint32_t                          bits;
    uint64_t                          over, before;
    ngx_uint_t                        i, slot;
    const ug_thresholds_t            *th;
    ngx_http_usage_gate_ctx_t        *ctx;
    ngx_http_usage_gate_zone_t       *zone;
    ngx_http_usage_gate_claim_t       claim;
    ngx_http_usage_gate_refund_t      refund;
    ngx_http_usage_gate_main_conf_t  *mcf;

    ctx = ngx_http_usage_gate_get_ctx(r);

    if (ctx == NULL || ctx->zone == NULL || !ctx->counted || ctx->billed
        || ctx->d.verdict != UG_ALLOWED || ctx->plan < 0)
    {
        return NGX_OK;
    }

    ctx->billed = 1;
    zone = ctx->zone;
    slot = ngx_http_usage_gate_slot(zone, ctx->plan);

    if (ctx->refund && ngx_http_usage_gate_failed(r)) {
        refund.zone = zone;
        refund.cycle = ctx->d.cycle.id;
        refund.units = ctx->cost;

        if (ngx_http_usage_gate_zone_update(zone, ctx->owner.data,
                                            ctx->owner.len,
                                            ngx_http_usage_gate_refund_fn,
                                            &refund)
            == NGX_OK
            && refund.units)
        {
            (void) ngx_atomic_fetch_add(&zone->sh->refunded[slot],
                                        refund.units);

            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "usage_gate: %uL units refunded to owner \"%V\" "
                          "for status %ui", refund.units, &ctx->owner,
                          r->headers_out.status);
        }

        return NGX_OK;
    }

    if (ctx->d.overage) {
        over = ngx_min(ctx->d.overage, ctx->cost);
        (void) ngx_atomic_fetch_add(&zone->sh->overage[slot], over);
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_usage_gate_module);
    th = ngx_http_usage_gate_notify_thresholds(mcf);

    if (th == NULL || ctx->limits.month == UG_OFF) {
        return NGX_OK;
    }

    /*
     * The thresholds this call crossed; the marks under the lock make
     * sure each goes once per cycle, whichever worker crosses it (again,
     * after a refund; the state file keeps them across a restart).
     * Counting from the call's own units rather than from zero keeps a
     * restart without a state file from sending what lies below.  With
     * a shared store, the count also moves between two calls of this
     * node (a sync's answer adds what the other nodes used, a refund
     * written later takes a unit back), so a threshold can be passed
     * without any call of this node crossing it: every threshold reached
     * and not yet marked here is due.
     */
    before = ctx->d.month_used - ngx_min(ctx->cost, ctx->d.month_used);

    if (zone->store) {
        before = 0;
    }

    claim.crossed = ug_thresholds_crossed(th, before, ctx->d.month_used,
                                          ctx->limits.month);
    if (claim.crossed == 0) {
        return NGX_OK;
    }

    claim.cycle = ctx->d.cycle.id;

    if (ngx_http_usage_gate_zone_update(zone, ctx->owner.data,
                                        ctx->owner.len,
                                        ngx_http_usage_gate_claim_fn, &claim)
        != NGX_OK)
    {
        return NGX_OK;
    }

    bits = claim.crossed;

    for (i = 0; bits && i < th->n; i++) {
        if (bits & (1u << i)) {
            ngx_http_usage_gate_notify_send(r, zone, ctx, th->pct[i]);
        }
    }

    return NGX_OK;
}


/*
 * A call failed on our side: its final status is a 5xx, or its upstream
 * gave no answer at all (an error_page may have served something else).
 * 4xx, 402 and 429 included, are the caller's and are never refunded.
 */
static ngx_uint_t
ngx_http_usage_gate_failed(ngx_http_request_t *r)
{
    ngx_http_upstream_state_t  *state;

    if (r->headers_out.status >= NGX_HTTP_INTERNAL_SERVER_ERROR
        && r->headers_out.status < 600)
    {
        return 1;
    }

    if (r->upstream_states == NULL || r->upstream_states->nelts == 0) {
        return 0;
    }

    state = r->upstream_states->elts;
    state = &state[r->upstream_states->nelts - 1];

    return state->status >= NGX_HTTP_INTERNAL_SERVER_ERROR
           && state->header_time == (ngx_msec_t) -1;
}


/* Under the zone lock: gives units back in the cycle they were taken. */
static ngx_int_t
ngx_http_usage_gate_refund_fn(ug_counter_t *c, void *data)
{
    ngx_http_usage_gate_refund_t *rf = data;

    ngx_http_usage_gate_node_t  *un;

    if (c->month != rf->cycle) {
        /* the cycle has ended since: its count is closed */
        rf->units = 0;
        return NGX_OK;
    }

    if (rf->units > c->month_used) {
        rf->units = c->month_used;
    }

    if (rf->zone->store) {
        /* the store gives the units back too, or neither does */
        un = (ngx_http_usage_gate_node_t *)
                 ((u_char *) c - offsetof(ngx_http_usage_gate_node_t,
                                          counter));

        rf->units = rf->zone->store->refund(rf->zone, un, rf->cycle,
                                            rf->units);
    }

    c->month_used -= rf->units;

    return NGX_OK;
}


/* Under the zone lock: the reached thresholds not yet sent this cycle. */
static ngx_int_t
ngx_http_usage_gate_claim_fn(ug_counter_t *c, void *data)
{
    ngx_http_usage_gate_claim_t *cl = data;

    ug_notify_mark_t             mark;
    ngx_http_usage_gate_node_t  *un;

    if (c->month != cl->cycle) {
        cl->crossed = 0;
        return NGX_OK;
    }

    un = (ngx_http_usage_gate_node_t *)
             ((u_char *) c - offsetof(ngx_http_usage_gate_node_t, counter));

    mark.cycle = un->notify_cycle;
    mark.sent = un->notify_sent;

    cl->crossed = ug_notify_claim(&mark, cl->cycle, cl->crossed);

    un->notify_cycle = mark.cycle;
    un->notify_sent = (u_short) mark.sent;

    return NGX_OK;
}


static ngx_uint_t
ngx_http_usage_gate_slot(ngx_http_usage_gate_zone_t *zone, ngx_int_t plan)
{
    return (plan >= 0 && plan < UG_PLANS_MAX) ? zone->stats_slot[plan]
                                              : UG_PLANS_MAX;
}
