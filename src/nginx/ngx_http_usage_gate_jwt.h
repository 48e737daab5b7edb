/*
 * The jwt identity source's configuration and entry points.
 */

#ifndef NGX_HTTP_USAGE_GATE_JWT_H
#define NGX_HTTP_USAGE_GATE_JWT_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_jwks.h"
#include "ug_jwt.h"


/* Tokens a worker remembers as verified, unless usage_gate_jwt_cache. */
#define NGX_HTTP_USAGE_GATE_JWT_CACHE  1024


typedef struct {
    ug_jwt_keys_t                *keys;      /* freed with the cycle */
    ngx_http_usage_gate_jwks_t   *jwks;      /* keys from a URL, or NULL */
    ug_jwt_policy_t               policy;    /* complete after finish */
    ngx_array_t                  *issuers;   /* char * */
    ngx_array_t                  *audiences;
    ngx_array_t                  *plan_claims;
    ngx_array_t                  *org_claims;
    unsigned                      algs_set:1;
    unsigned                      leeway_set:1;
    unsigned                      finished:1;
} ngx_http_usage_gate_jwt_conf_t;


char *ngx_http_usage_gate_jwt_keys(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_usage_gate_jwt_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_usage_gate_jwt_algorithms(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_usage_gate_jwt_list(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_usage_gate_jwt_leeway(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* Fills what conf leaves unset from prev and completes the policy. */
char *ngx_http_usage_gate_jwt_merge(ngx_conf_t *cf,
    ngx_http_usage_gate_jwt_conf_t *conf,
    ngx_http_usage_gate_jwt_conf_t *prev);

/* 1 if a gate using these settings has keys (a file, secret or URL). */
ngx_int_t ngx_http_usage_gate_jwt_has_keys(
    ngx_http_usage_gate_jwt_conf_t *jcf);

ngx_int_t ngx_http_usage_gate_jwt_init_process(ngx_cycle_t *cycle);
void ngx_http_usage_gate_jwt_exit_process(void);

#endif /* NGX_HTTP_USAGE_GATE_JWT_H */
