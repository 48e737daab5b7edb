/*
 * DynamoDB as the fleet's shared store (issue 4): the usage_gate_dynamodb
 * directive, the per-owner state kept next to each owner in the zone,
 * the decision in strict, async and auto modes, the sync that flushes
 * unsynced usage, credentials, metrics and the admin write-through.
 *
 * The other glue files call only the hooks below, each marked "DynamoDB
 * (issue 4)" where it is called; nothing here runs for a zone without
 * usage_gate_dynamodb.
 */

#ifndef NGX_HTTP_USAGE_GATE_DDB_H
#define NGX_HTTP_USAGE_GATE_DDB_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_module.h"
#include "ug_admin.h"
#include "ug_metrics.h"


/* usage_gate_dynamodb zone=... table=... region=... [...] */
char *ngx_http_usage_gate_dynamodb(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* At the end of http{}: zone references, the shared credentials file. */
char *ngx_http_usage_gate_ddb_init_main_conf(ngx_conf_t *cf,
    ngx_http_usage_gate_main_conf_t *mcf);

/*
 * When a zone is mapped (new or kept across a reload): the shared part of
 * the DynamoDB state.  The caller has checked that the node layout did
 * not change.
 */
ngx_int_t ngx_http_usage_gate_ddb_init_zone(ngx_http_usage_gate_zone_t *zone,
    ngx_log_t *log);

ngx_int_t ngx_http_usage_gate_ddb_init_process(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf);
void ngx_http_usage_gate_ddb_exit_process(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf);

/*
 * The gate handler's decision for a zone with DynamoDB.  Returns
 * NGX_HTTP_USAGE_GATE_DECIDED or _FULL with ctx->d filled (as
 * ngx_http_usage_gate_zone_decide does), NGX_DONE when the request waits
 * for the table (the handler is run again when it may go on),
 * NGX_HTTP_SERVICE_UNAVAILABLE with *detail set (on_error=deny), or
 * NGX_ERROR.
 */
ngx_int_t ngx_http_usage_gate_ddb_decide(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ngx_http_usage_gate_ctx_t *ctx,
    ngx_str_t *detail);

/*
 * The gate handler run again for a request that has a context: the
 * outcome of its wait (codes as above), or NGX_DECLINED when it was
 * settled before (or never waited).
 */
ngx_int_t ngx_http_usage_gate_ddb_resume(ngx_http_request_t *r,
    ngx_http_usage_gate_ctx_t *ctx, ngx_str_t *detail);

/* Under the zone lock, for eviction: 1 if the owner must be kept. */
ngx_uint_t ngx_http_usage_gate_ddb_keep(ngx_http_usage_gate_node_t *un);

/* Under the zone lock, for ngx_http_usage_gate_zone_next(). */
void ngx_http_usage_gate_ddb_record(ngx_http_usage_gate_node_t *un,
    ngx_http_usage_gate_record_t *rec);

/*
 * After an owner was put into the zone from a record (state file, resize
 * carry-over): its unsynced usage and base.
 */
void ngx_http_usage_gate_ddb_restore(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_record_t *rec);

/*
 * The admin API changed an owner: under the zone lock, with the counter
 * as it is after the change; then, without the lock, the write-through
 * to the table (fire and forget, failures logged).
 */
void ngx_http_usage_gate_ddb_admin_changed(ngx_http_usage_gate_zone_t *zone,
    ug_counter_t *counter, const ug_admin_req_t *req);
void ngx_http_usage_gate_ddb_admin_write(ngx_http_usage_gate_zone_t *zone,
    const ug_admin_req_t *req, const ug_counter_t *counter, ngx_log_t *log);

/* The metrics endpoint: DynamoDB's numbers for a zone that has it. */
ngx_int_t ngx_http_usage_gate_ddb_metrics(ngx_http_usage_gate_zone_t *zone,
    ug_metrics_zone_t *mz, ngx_pool_t *pool);

#endif /* NGX_HTTP_USAGE_GATE_DDB_H */
