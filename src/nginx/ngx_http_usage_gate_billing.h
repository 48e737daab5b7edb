/*
 * Billing terms around the gate's decision: the overage band and the
 * billing-cycle anchor a request is decided under, refunds of calls that
 * failed on our side (log phase), and usage threshold notifications.
 */

#ifndef NGX_HTTP_USAGE_GATE_BILLING_H
#define NGX_HTTP_USAGE_GATE_BILLING_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_module.h"
#include "ug_notify.h"


/*
 * The terms to decide ctx's request under (its plan's overage band and
 * the cycle anchor of the location), kept in ctx->terms with the zone
 * and the cost, which the log phase needs to refund or notify.
 */
const ug_terms_t *ngx_http_usage_gate_terms(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ngx_http_usage_gate_ctx_t *ctx);

/* usage_gate_cycle_anchor $variable | off */
char *ngx_http_usage_gate_cycle_anchor(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* usage_gate_notify URL [thresholds=N,...] [secret_file=FILE] */
char *ngx_http_usage_gate_notify(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* Merges usage_gate_refund and usage_gate_cycle_anchor. */
char *ngx_http_usage_gate_billing_merge(ngx_conf_t *cf,
    ngx_http_usage_gate_loc_conf_t *conf,
    ngx_http_usage_gate_loc_conf_t *prev);

/* Postconfiguration: the anchor check and the log-phase handler. */
ngx_int_t ngx_http_usage_gate_billing_init(ngx_conf_t *cf);

/* Queues one threshold notification (notify.c); never blocks. */
void ngx_http_usage_gate_notify_send(ngx_http_request_t *r,
    ngx_http_usage_gate_zone_t *zone, ngx_http_usage_gate_ctx_t *ctx,
    unsigned threshold);

/* The configured thresholds, or NULL without usage_gate_notify. */
const ug_thresholds_t *ngx_http_usage_gate_notify_thresholds(
    ngx_http_usage_gate_main_conf_t *mcf);

/* Drops what is still queued or being retried (exit_process). */
void ngx_http_usage_gate_notify_exit_process(ngx_cycle_t *cycle);

#endif /* NGX_HTTP_USAGE_GATE_BILLING_H */
