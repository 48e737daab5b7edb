/*
 * Types shared by the module's glue files: configuration and the
 * per-request context.
 */

#ifndef NGX_HTTP_USAGE_GATE_MODULE_H
#define NGX_HTTP_USAGE_GATE_MODULE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_jwt.h"
#include "ngx_http_usage_gate_util.h"
#include "ngx_http_usage_gate_zone.h"
#include "ug_decide.h"
#include "ug_identity.h"
#include "ug_plan.h"


#define NGX_HTTP_USAGE_GATE_SCOPE_USER  0
#define NGX_HTTP_USAGE_GATE_SCOPE_ORG   1

#define NGX_HTTP_USAGE_GATE_COST_MAX    1000000

/* nginx names no constant for 402 Payment Required */
#define NGX_HTTP_USAGE_GATE_PAYMENT_REQUIRED  402


/* $usage_gate_result */
typedef enum {
    NGX_HTTP_USAGE_GATE_NONE = 0,
    NGX_HTTP_USAGE_GATE_ALLOWED,
    NGX_HTTP_USAGE_GATE_QUOTA,
    NGX_HTTP_USAGE_GATE_RATE,
    NGX_HTTP_USAGE_GATE_DRY_RUN_QUOTA,
    NGX_HTTP_USAGE_GATE_DRY_RUN_RATE,
    NGX_HTTP_USAGE_GATE_BYPASS
} ngx_http_usage_gate_result_e;


typedef struct {
    ngx_shm_zone_t               *shm_zone;
    const char                   *directive;
    u_char                       *file;
    ngx_uint_t                    line;
} ngx_http_usage_gate_zone_ref_t;


typedef struct {
    ug_plan_table_t               plans;
    ngx_flag_t                    plans_set;
    ngx_int_t                     default_plan;
    ngx_str_t                     default_plan_name;
    u_char                       *default_plan_file;
    ngx_uint_t                    default_plan_line;
    ngx_str_t                     salt;
    ngx_array_t                   zones;       /* ngx_shm_zone_t * */
    ngx_array_t                   refs;        /* zone_ref_t */
    ngx_uint_t                    jwt_cache_size;
    ngx_array_t                  *ddb;         /* usage_gate_dynamodb
                                                  configurations, or NULL */
    void                         *notify;      /* usage_gate_notify, or
                                                  NULL */
} ngx_http_usage_gate_main_conf_t;


typedef struct {
    ngx_shm_zone_t               *shm_zone;     /* NULL: off */
    u_char                       *gate_file;    /* usage_gate set here */
    ngx_uint_t                    gate_line;
    ngx_uint_t                    scope;
    ngx_uint_t                    cost;
    uint32_t                      plans_mask;   /* 0: every plan */
    ngx_array_t                  *plan_names;   /* ngx_str_t, for plans= */
    u_char                       *plans_file;
    ngx_uint_t                    plans_line;

    ngx_array_t                  *identity;     /* identity_source_t *,
                                                   in the order to try */
    u_char                       *identity_file;
    ngx_uint_t                    identity_line;
    ngx_http_usage_gate_jwt_conf_t  *jwt;
    ngx_flag_t                    jwt_required;
    ngx_array_t                  *trusted;      /* ngx_cidr_t */

    ngx_flag_t                    dry_run;
    ngx_flag_t                    headers;
    ngx_uint_t                    quota_status;
    ngx_uint_t                    rate_status;
    ngx_uint_t                    log_level;
    ngx_str_t                     upgrade_url;
    ngx_flag_t                    upgrade_url_set;

    ngx_uint_t                    count_preflight;  /* usage_gate_
                                                       preflight count */
    ngx_flag_t                    endpoint;     /* metrics or admin */
    ngx_shm_zone_t               *admin_zone;   /* usage_gate_admin zone= */

    ngx_flag_t                    refund;       /* usage_gate_refund */
    ngx_http_complex_value_t     *cycle_anchor; /* usage_gate_cycle_anchor,
                                                   or NULL: calendar */
    ngx_str_t                     admin_token;  /* empty: "off" */
    u_char                       *admin_file;   /* usage_gate_admin here */
    ngx_uint_t                    admin_line;
} ngx_http_usage_gate_loc_conf_t;


typedef struct {
    ngx_http_usage_gate_result_e  result;
    unsigned                      decided:1;
    unsigned                      counted:1;    /* d holds real numbers */
    unsigned                      headers:1;    /* usage_gate_headers */
    unsigned                      filtered:1;   /* headers added */

    ngx_str_t                     user;
    ngx_str_t                     org;
    ngx_str_t                     owner;
    ngx_str_t                     remaining;    /* month_remaining, as
                                                   sent upstream */
    ngx_int_t                     plan;         /* index in the table */
    ug_limits_t                   limits;
    ug_terms_t                    terms;        /* overage band, anchor */
    ug_decision_t                 d;
    ngx_http_usage_gate_zone_t   *zone;         /* decided in, or NULL */
    uint64_t                      cost;         /* units counted */
    unsigned                      refund:1;     /* usage_gate_refund on */
    unsigned                      billed:1;     /* refund/notify done */

    void                         *admin;        /* an admin request's */
    void                         *store;        /* a request that waits
                                                   for the zone's store */
    ug_jwt_claims_t              *jwt;          /* a bearer token's */
    const char                   *jwt_error;    /* why it was refused */

    u_char                        anon[UG_ANON_LEN];
} ngx_http_usage_gate_ctx_t;


extern ngx_module_t  ngx_http_usage_gate_module;


ngx_int_t ngx_http_usage_gate_add_variables(ngx_conf_t *cf);
ngx_int_t ngx_http_usage_gate_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_usage_gate_filter_init(ngx_conf_t *cf);
ngx_http_usage_gate_ctx_t *ngx_http_usage_gate_get_ctx(ngx_http_request_t *r);
char *ngx_http_usage_gate_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_usage_gate_admin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_usage_gate_admin_token_file(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_usage_gate_admin_merge(ngx_conf_t *cf,
    ngx_http_usage_gate_loc_conf_t *conf,
    ngx_http_usage_gate_loc_conf_t *prev);
ngx_int_t ngx_http_usage_gate_state_init_process(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf);
void ngx_http_usage_gate_state_exit_process(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf);
ngx_int_t ngx_http_usage_gate_state_load(ngx_http_usage_gate_zone_t *zone,
    ngx_log_t *log);
ngx_int_t ngx_http_usage_gate_from_jwt(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ngx_http_usage_gate_ctx_t *ctx,
    ngx_str_t *plan, ngx_str_t *detail);

#endif /* NGX_HTTP_USAGE_GATE_MODULE_H */
