/*
 * A shared store behind a zone: the zone decides alone unless a store
 * directive (usage_gate_dynamodb) names it, which sets zone->store to the
 * store's table of functions below and zone->node_extra to the bytes each
 * owner's node carries for it.  The zone, the handler, the state file,
 * the admin API and the metrics call a store only through this table.
 *
 * Adding a store: one file that fills an ngx_http_usage_gate_store_t and
 * a directive that sets zone->store, plus its line in the registry
 * (ngx_http_usage_gate_store.c) for the per-process hooks.
 */

#ifndef NGX_HTTP_USAGE_GATE_STORE_H
#define NGX_HTTP_USAGE_GATE_STORE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_module.h"
#include "ngx_http_usage_gate_zone.h"
#include "ug_admin.h"
#include "ug_metrics.h"


struct ngx_http_usage_gate_store_s {
    ngx_str_t    name;

    /* At the end of http{}: checks across directives, files to read. */
    char      *(*init_main_conf)(ngx_conf_t *cf,
                                 ngx_http_usage_gate_main_conf_t *mcf);

    /* Per worker; exit_process gives what is in flight back to the zone
     * before the state file's last write. */
    ngx_int_t  (*init_process)(ngx_cycle_t *cycle,
                               ngx_http_usage_gate_main_conf_t *mcf);
    void       (*exit_process)(ngx_cycle_t *cycle,
                               ngx_http_usage_gate_main_conf_t *mcf);

    /* In the master, once a configuration has been committed (nothing
     * can make it fail any more) and before its workers start. */
    ngx_int_t  (*init_module)(ngx_cycle_t *cycle,
                              ngx_http_usage_gate_main_conf_t *mcf);

    /*
     * When a zone is mapped (new or kept across a reload): the store's
     * zone-wide part in sh->store.  The zone has checked that the node
     * layout (node_extra) did not change.
     */
    ngx_int_t  (*init_zone)(ngx_http_usage_gate_zone_t *zone, ngx_log_t *log);

    /* Under the zone lock, for eviction: 1 if the owner must be kept. */
    ngx_uint_t (*keep)(ngx_http_usage_gate_zone_t *zone,
                       ngx_http_usage_gate_node_t *un);

    /* Under the zone lock, for ngx_http_usage_gate_zone_next(): the
     * owner's usage not yet in the store, into rec->carry. */
    void       (*record)(ngx_http_usage_gate_zone_t *zone,
                         ngx_http_usage_gate_node_t *un,
                         ngx_http_usage_gate_record_t *rec);

    /* Without the lock, after an owner was put into the zone from a
     * record (state file, resize carry-over): rec->carry goes back. */
    void       (*restore)(ngx_http_usage_gate_zone_t *zone,
                          ngx_http_usage_gate_record_t *rec);

    /*
     * The gate handler's decision: NGX_HTTP_USAGE_GATE_DECIDED or _FULL
     * with ctx->d filled (as ngx_http_usage_gate_zone_decide does),
     * NGX_DONE when the request waits for the store (the handler is run
     * again when it may go on), NGX_HTTP_SERVICE_UNAVAILABLE with *detail
     * set, or NGX_ERROR.
     */
    ngx_int_t  (*decide)(ngx_http_request_t *r,
                         ngx_http_usage_gate_loc_conf_t *lcf,
                         ngx_http_usage_gate_ctx_t *ctx, ngx_str_t *detail);

    /* The handler run again for a request with a context: the outcome of
     * its wait (codes as above), or NGX_DECLINED when it was settled
     * before (or never waited). */
    ngx_int_t  (*resume)(ngx_http_request_t *r,
                         ngx_http_usage_gate_ctx_t *ctx, ngx_str_t *detail);

    /*
     * The admin API changed an owner: under the zone lock, with the
     * counter as it is after the change; then, without the lock, the
     * write-through to the store.
     */
    void       (*admin_changed)(ngx_http_usage_gate_zone_t *zone,
                                ug_counter_t *counter,
                                const ug_admin_req_t *req);
    void       (*admin_write)(ngx_http_usage_gate_zone_t *zone,
                              const ug_admin_req_t *req,
                              const ug_counter_t *counter, ngx_log_t *log);

    /* The metrics endpoint: the store's numbers for the zone. */
    ngx_int_t  (*metrics)(ngx_http_usage_gate_zone_t *zone,
                          ug_metrics_zone_t *mz, ngx_pool_t *pool);

    /*
     * Under the zone lock, in the log phase: `units` the owner was
     * counted in cycle `cycle` are refunded.  Returns the units the
     * store gives back too (0: none, and the zone keeps them as well),
     * so that the zone and the store never disagree about a refund.
     */
    uint64_t   (*refund)(ngx_http_usage_gate_zone_t *zone,
                         ngx_http_usage_gate_node_t *un, int32_t cycle,
                         uint64_t units);
};


/* The per-process hooks of every registered store, in order. */
char *ngx_http_usage_gate_store_init_main_conf(ngx_conf_t *cf,
    ngx_http_usage_gate_main_conf_t *mcf);
ngx_int_t ngx_http_usage_gate_store_init_process(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf);
void ngx_http_usage_gate_store_exit_process(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf);
ngx_int_t ngx_http_usage_gate_store_init_module(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf);

#endif /* NGX_HTTP_USAGE_GATE_STORE_H */
