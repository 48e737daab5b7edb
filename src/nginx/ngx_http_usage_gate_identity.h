/*
 * Identity sources: who is calling, from a bearer token, a trusted proxy's
 * headers or the client address.  usage_gate_identity lists them by name;
 * the request path tries them in that order.
 */

#ifndef NGX_HTTP_USAGE_GATE_IDENTITY_H
#define NGX_HTTP_USAGE_GATE_IDENTITY_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_module.h"


/*
 * A source's resolver.  Returns NGX_OK with ctx->user (and ctx->org,
 * *plan) set; NGX_DECLINED when the request carries nothing for this
 * source, so the next one is tried; NGX_HTTP_BAD_REQUEST or
 * NGX_HTTP_UNAUTHORIZED with *detail set, which ends the walk; or
 * NGX_ERROR.
 */
typedef ngx_int_t (*ngx_http_usage_gate_resolve_pt)(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ngx_http_usage_gate_ctx_t *ctx,
    ngx_str_t *plan, ngx_str_t *detail);

/*
 * What a source needs from the rest of a location's configuration, checked
 * once the location is merged and only where a gate is on.  Returns
 * NGX_CONF_OK, or NGX_CONF_ERROR after logging what to add.
 */
typedef char *(*ngx_http_usage_gate_source_check_pt)(ngx_conf_t *cf,
    ngx_http_usage_gate_loc_conf_t *lcf);


typedef struct {
    ngx_str_t                              name;
    ngx_http_usage_gate_resolve_pt         resolve;
    ngx_http_usage_gate_source_check_pt    check;     /* NULL: none */
} ngx_http_usage_gate_identity_source_t;


/* usage_gate_identity and usage_gate_trusted_proxies */
char *ngx_http_usage_gate_identity(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_usage_gate_trusted_proxies(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* Inherits the sources and trusted proxies, and runs the sources' checks. */
char *ngx_http_usage_gate_identity_merge(ngx_conf_t *cf,
    ngx_http_usage_gate_loc_conf_t *conf,
    ngx_http_usage_gate_loc_conf_t *prev);

/*
 * Walks the location's sources in order.  Returns NGX_OK with ctx->user
 * (and ctx->org, *plan) set, NGX_HTTP_BAD_REQUEST or NGX_HTTP_UNAUTHORIZED
 * with *detail set, or NGX_ERROR.
 */
ngx_int_t ngx_http_usage_gate_identify(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ngx_http_usage_gate_ctx_t *ctx,
    ngx_str_t *plan, ngx_str_t *detail);

#endif /* NGX_HTTP_USAGE_GATE_IDENTITY_H */
