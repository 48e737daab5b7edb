/*
 * ngx_http_usage_gate_module: monthly quotas and per-minute caps per
 * owner and plan, kept in a shared-memory zone.
 *
 * This file holds the directive table, the module's hooks (create/merge,
 * the checks once http{} is read, postconfiguration, worker start and
 * exit) and the setters of the zone, plan, gate and response directives.
 * The rest of the glue is in src/nginx/: the request path in
 * ngx_http_usage_gate_handler.c, identity sources in ..._identity.c, the
 * $usage_gate_* variables in ..._variables.c, the zone in ..._zone.c; see
 * docs/architecture.md.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_module.h"
#include "ngx_http_usage_gate_billing.h"
#include "ngx_http_usage_gate_identity.h"
#include "ngx_http_usage_gate_curl.h"
#include "ngx_http_usage_gate_ddb.h"
#include "ngx_http_usage_gate_store.h"
#include "ug_jwt_cache.h"


static void *ngx_http_usage_gate_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_usage_gate_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_usage_gate_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_usage_gate_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_usage_gate_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_usage_gate_check_cost(ngx_conf_t *cf,
    ngx_http_usage_gate_loc_conf_t *conf);

static char *ngx_http_usage_gate_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_usage_gate_plan(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_usage_gate_default_plan(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_usage_gate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_usage_gate_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_usage_gate_upgrade_url(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_usage_gate_jwt_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_usage_gate_log_level(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_usage_gate_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_usage_gate_init_process(ngx_cycle_t *cycle);
static void ngx_http_usage_gate_exit_process(ngx_cycle_t *cycle);
static ngx_http_usage_gate_main_conf_t *ngx_http_usage_gate_cycle_conf(
    ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_usage_gate_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};


/* usage_gate_preflight: a CORS preflight is not a call unless counted */
static ngx_conf_enum_t  ngx_http_usage_gate_preflight[] = {
    { ngx_string("skip"), 0 },
    { ngx_string("count"), 1 },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_usage_gate_commands[] = {

    { ngx_string("usage_gate_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_usage_gate_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("usage_gate_plan"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_usage_gate_plan,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("usage_gate_default_plan"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_usage_gate_default_plan,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("usage_gate_anon_salt"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_usage_gate_main_conf_t, salt),
      NULL },

    { ngx_string("usage_gate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_usage_gate,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("usage_gate_identity"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_usage_gate_identity,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("usage_gate_trusted_proxies"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_usage_gate_trusted_proxies,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("usage_gate_dry_run"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_usage_gate_loc_conf_t, dry_run),
      NULL },

    { ngx_string("usage_gate_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_usage_gate_loc_conf_t, headers),
      NULL },

    { ngx_string("usage_gate_preflight"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_usage_gate_loc_conf_t, count_preflight),
      &ngx_http_usage_gate_preflight },

    { ngx_string("usage_gate_quota_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_usage_gate_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_usage_gate_loc_conf_t, quota_status),
      NULL },

    { ngx_string("usage_gate_rate_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_usage_gate_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_usage_gate_loc_conf_t, rate_status),
      NULL },

    { ngx_string("usage_gate_upgrade_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_usage_gate_upgrade_url,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("usage_gate_log_level"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_usage_gate_log_level,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_usage_gate_loc_conf_t, log_level),
      NULL },

    { ngx_string("usage_gate_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_usage_gate_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("usage_gate_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_usage_gate_admin,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("usage_gate_admin_token_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_usage_gate_admin_token_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("usage_gate_jwt_keys"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_usage_gate_jwt_keys,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("usage_gate_jwt_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_usage_gate_jwt_secret_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("usage_gate_jwt_algorithms"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_usage_gate_jwt_algorithms,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("usage_gate_jwt_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_usage_gate_jwt_list,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_usage_gate_jwt_conf_t, issuers),
      NULL },

    { ngx_string("usage_gate_jwt_audience"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_usage_gate_jwt_list,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_usage_gate_jwt_conf_t, audiences),
      NULL },

    { ngx_string("usage_gate_jwt_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_usage_gate_jwt_leeway,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("usage_gate_jwt_plan_claim"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_usage_gate_jwt_list,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_usage_gate_jwt_conf_t, plan_claims),
      NULL },

    { ngx_string("usage_gate_jwt_org_claim"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_usage_gate_jwt_list,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_usage_gate_jwt_conf_t, org_claims),
      NULL },

    { ngx_string("usage_gate_jwt_required"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_usage_gate_loc_conf_t, jwt_required),
      NULL },

    { ngx_string("usage_gate_jwt_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_usage_gate_jwt_cache,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* billing: src/nginx/ngx_http_usage_gate_billing.c, ..._notify.c */
    { ngx_string("usage_gate_refund"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_usage_gate_loc_conf_t, refund),
      NULL },

    { ngx_string("usage_gate_cycle_anchor"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_usage_gate_cycle_anchor,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("usage_gate_notify"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_usage_gate_notify,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* a shared store: src/nginx/ngx_http_usage_gate_ddb_conf.c */
    { ngx_string("usage_gate_dynamodb"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_usage_gate_dynamodb,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_usage_gate_module_ctx = {
    ngx_http_usage_gate_add_variables,     /* preconfiguration */
    ngx_http_usage_gate_init,              /* postconfiguration */

    ngx_http_usage_gate_create_main_conf,  /* create main configuration */
    ngx_http_usage_gate_init_main_conf,    /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_usage_gate_create_loc_conf,   /* create location configuration */
    ngx_http_usage_gate_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_usage_gate_module = {
    NGX_MODULE_V1,
    &ngx_http_usage_gate_module_ctx,       /* module context */
    ngx_http_usage_gate_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_usage_gate_init_module,       /* init module */
    ngx_http_usage_gate_init_process,      /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_usage_gate_exit_process,      /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_usage_gate_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_usage_gate_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_usage_gate_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mcf->plans.n = 0;
     *     mcf->plans_set = 0;
     *     mcf->default_plan_name = { 0, NULL };
     *     mcf->salt = { 0, NULL };
     */

    mcf->default_plan = NGX_CONF_UNSET;
    mcf->jwt_cache_size = NGX_CONF_UNSET_UINT;

    if (ngx_array_init(&mcf->zones, cf->pool, 2, sizeof(ngx_shm_zone_t *))
        != NGX_OK
        || ngx_array_init(&mcf->refs, cf->pool, 4,
                          sizeof(ngx_http_usage_gate_zone_ref_t))
           != NGX_OK)
    {
        return NULL;
    }

    return mcf;
}


static char *
ngx_http_usage_gate_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_usage_gate_main_conf_t *mcf = conf;

    int64_t                           overflow;
    ngx_int_t                         i;
    ngx_uint_t                        k, n;
    ngx_shm_zone_t                  **zones;
    ngx_http_usage_gate_zone_t       *zone, *other;
    ngx_http_usage_gate_zone_ref_t   *ref;

    if (!mcf->plans_set) {
        ug_plan_table_default(&mcf->plans);
    }

    ngx_conf_init_uint_value(mcf->jwt_cache_size,
                             NGX_HTTP_USAGE_GATE_JWT_CACHE);

    if (mcf->default_plan_name.len) {
        i = ug_plan_find(&mcf->plans, (char *) mcf->default_plan_name.data,
                         mcf->default_plan_name.len);
        if (i < 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "usage_gate_default_plan: unknown plan \"%V\" "
                          "in %s:%ui (declare it with usage_gate_plan)",
                          &mcf->default_plan_name, mcf->default_plan_file,
                          mcf->default_plan_line);
            return NGX_CONF_ERROR;
        }

    } else {
        i = ug_plan_find(&mcf->plans, "free", 4);
        if (i < 0) {
            i = 0;
        }
    }

    mcf->default_plan = i;

    ref = mcf->refs.elts;

    for (k = 0; k < mcf->refs.nelts; k++) {
        zone = ref[k].shm_zone->data;

        if (!zone->configured) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "%s: unknown zone \"%V\" in %s:%ui "
                          "(declare it with usage_gate_zone in http{})",
                          ref[k].directive, &ref[k].shm_zone->shm.name,
                          ref[k].file, ref[k].line);
            return NGX_CONF_ERROR;
        }
    }

    /* a full zone lets new owners through together at most as fast as
     * the fastest plan lets one owner, unless overflow_minute= says */
    overflow = 0;

    for (k = 0; k < mcf->plans.n; k++) {
        if (mcf->plans.plans[k].limits.minute == UG_OFF) {
            overflow = UG_OFF;
            break;
        }

        overflow = ngx_max(overflow, mcf->plans.plans[k].limits.minute);
    }

    zones = mcf->zones.elts;

    for (k = 0; k < mcf->zones.nelts; k++) {
        zone = zones[k]->data;
        zone->plans = &mcf->plans;
        zone->salt = mcf->salt;

        if (zone->overflow_minute == NGX_CONF_UNSET) {
            zone->overflow_minute = overflow;
        }

        for (n = 0; n < k; n++) {
            other = zones[n]->data;

            if (zone->state.len && zone->state.len == other->state.len
                && ngx_strcmp(zone->state.data, other->state.data) == 0)
            {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "usage_gate_zone \"%V\" in %s:%ui: the state "
                              "file \"%V\" is already used by zone "
                              "\"%V\"", &zone->name, zone->file,
                              zone->line, &zone->state, &other->name);
                return NGX_CONF_ERROR;
            }
        }

        if (mcf->salt.len == 0 && zone->state.len == 0) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "usage_gate_zone \"%V\": usage_gate_anon_salt is "
                          "not set, so anonymous owners use a random salt "
                          "that a restart replaces; set usage_gate_anon_salt "
                          "to a long random secret (or give the zone a "
                          "state file, which keeps the salt) to keep their "
                          "counts", &zone->name);
        }
    }

    return ngx_http_usage_gate_store_init_main_conf(cf, mcf);
}


static void *
ngx_http_usage_gate_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_usage_gate_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_usage_gate_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->plans_mask = 0;
     *     conf->upgrade_url = { 0, NULL };
     *     conf->upgrade_url_set = 0;
     */

    conf->shm_zone = NGX_CONF_UNSET_PTR;
    conf->scope = NGX_CONF_UNSET_UINT;
    conf->cost = NGX_CONF_UNSET_UINT;
    conf->plan_names = NGX_CONF_UNSET_PTR;
    conf->identity = NGX_CONF_UNSET_PTR;
    conf->jwt = NGX_CONF_UNSET_PTR;
    conf->jwt_required = NGX_CONF_UNSET;
    conf->trusted = NGX_CONF_UNSET_PTR;
    conf->dry_run = NGX_CONF_UNSET;
    conf->headers = NGX_CONF_UNSET;
    conf->count_preflight = NGX_CONF_UNSET_UINT;
    conf->quota_status = NGX_CONF_UNSET_UINT;
    conf->rate_status = NGX_CONF_UNSET_UINT;
    conf->log_level = NGX_CONF_UNSET_UINT;
    conf->admin_zone = NGX_CONF_UNSET_PTR;
    conf->refund = NGX_CONF_UNSET;
    conf->cycle_anchor = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_usage_gate_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_usage_gate_loc_conf_t *prev = parent;
    ngx_http_usage_gate_loc_conf_t *conf = child;

    ngx_int_t                         i;
    ngx_str_t                        *name;
    ngx_uint_t                        k;
    ngx_http_usage_gate_main_conf_t  *mcf;

    if (conf->shm_zone == NGX_CONF_UNSET_PTR) {
        conf->shm_zone = prev->shm_zone;
        conf->scope = prev->scope;
        conf->cost = prev->cost;
        conf->plan_names = prev->plan_names;
        conf->plans_mask = prev->plans_mask;
        conf->plans_file = prev->plans_file;
        conf->plans_line = prev->plans_line;
    }

    ngx_conf_merge_ptr_value(conf->shm_zone, prev->shm_zone, NULL);
    ngx_conf_merge_uint_value(conf->scope, prev->scope,
                              NGX_HTTP_USAGE_GATE_SCOPE_USER);
    ngx_conf_merge_uint_value(conf->cost, prev->cost, 1);
    ngx_conf_merge_ptr_value(conf->plan_names, prev->plan_names, NULL);

    if (conf->jwt == NGX_CONF_UNSET_PTR) {
        conf->jwt = (prev->jwt == NGX_CONF_UNSET_PTR) ? NULL : prev->jwt;
    }

    if (conf->jwt
        && ngx_http_usage_gate_jwt_merge(cf, conf->jwt,
                                         (prev->jwt == NGX_CONF_UNSET_PTR
                                          || prev->jwt == conf->jwt)
                                         ? NULL : prev->jwt)
           != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_value(conf->jwt_required, prev->jwt_required, 0);

    /* after the jwt settings: the sources' checks look at them */
    if (ngx_http_usage_gate_identity_merge(cf, conf, prev) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_value(conf->dry_run, prev->dry_run, 0);
    ngx_conf_merge_value(conf->headers, prev->headers, 1);
    ngx_conf_merge_uint_value(conf->count_preflight, prev->count_preflight,
                              0);
    ngx_conf_merge_uint_value(conf->quota_status, prev->quota_status,
                              NGX_HTTP_USAGE_GATE_PAYMENT_REQUIRED);
    ngx_conf_merge_uint_value(conf->rate_status, prev->rate_status,
                              NGX_HTTP_TOO_MANY_REQUESTS);
    ngx_conf_merge_uint_value(conf->log_level, prev->log_level,
                              NGX_LOG_ERR);

    ngx_conf_merge_ptr_value(conf->admin_zone, prev->admin_zone, NULL);

    if (ngx_http_usage_gate_admin_merge(cf, conf, prev) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (!conf->upgrade_url_set) {
        conf->upgrade_url = prev->upgrade_url;
        conf->upgrade_url_set = prev->upgrade_url_set;
    }

    /* plans= names resolve here, once the whole plan table is known */
    if (conf->plan_names && conf->plans_mask == 0) {
        mcf = ngx_http_conf_get_module_main_conf(cf,
                                                 ngx_http_usage_gate_module);
        name = conf->plan_names->elts;

        for (k = 0; k < conf->plan_names->nelts; k++) {
            i = ug_plan_find(&mcf->plans, (char *) name[k].data,
                             name[k].len);
            if (i < 0) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "usage_gate: unknown plan \"%V\" in \"plans=\" "
                              "in %s:%ui (declare it with usage_gate_plan)",
                              &name[k], conf->plans_file, conf->plans_line);
                return NGX_CONF_ERROR;
            }

            conf->plans_mask |= 1u << i;
        }
    }

    if (conf->shm_zone && conf->gate_line
        && ngx_http_usage_gate_check_cost(cf, conf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_usage_gate_billing_merge(cf, conf, prev) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * A cost above a plan's minute cap or monthly quota can never be paid:
 * every request of that plan would be denied.  Worth a warning where the
 * usage_gate directive stands, not an error (a plan may be meant to be
 * shut out of one location).
 */
static ngx_int_t
ngx_http_usage_gate_check_cost(ngx_conf_t *cf,
    ngx_http_usage_gate_loc_conf_t *conf)
{
    ngx_uint_t                        i;
    ug_plan_t                        *plan;
    ngx_http_usage_gate_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_usage_gate_module);

    for (i = 0; i < mcf->plans.n; i++) {
        plan = &mcf->plans.plans[i];

        if (conf->plans_mask && !(conf->plans_mask & (1u << i))) {
            continue;
        }

        if ((plan->limits.minute != UG_OFF
             && (ngx_uint_t) plan->limits.minute < conf->cost)
            || (plan->limits.month != UG_OFF
                && (ngx_uint_t) plan->limits.month < conf->cost))
        {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "usage_gate: cost=%ui in %s:%ui is more than plan "
                          "\"%s\" allows (month=%L, minute=%L): every "
                          "request of that plan there will be denied",
                          conf->cost, conf->gate_file, conf->gate_line,
                          plan->name, plan->limits.month,
                          plan->limits.minute);
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_usage_gate_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /*
     * The gate decides in the precontent phase: after every access check
     * (allow/deny, auth_basic, auth_request, whatever `satisfy` says), so
     * a refused request is never counted and none is let past uncounted;
     * and, registered after the built-in modules, before try_files.
     */
    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_usage_gate_handler;

    if (ngx_http_usage_gate_billing_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_usage_gate_filter_init(cf);
}


/*
 * usage_gate_zone name:size [state=FILE] [state_interval=TIME]
 *     [overflow_minute=N|off] [full=allow|deny]
 */
static char *
ngx_http_usage_gate_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_usage_gate_main_conf_t *mcf = conf;

    u_char                       *p;
    ssize_t                       size;
    ngx_int_t                     overflow;
    ngx_str_t                    *value, name, s, state;
    ngx_uint_t                    i, full_deny;
    ngx_msec_t                    interval;
    ngx_shm_zone_t               *shm_zone, **zp;
    ngx_http_usage_gate_zone_t   *zone;

    value = cf->args->elts;

    p = (u_char *) ngx_strlchr(value[1].data, value[1].data + value[1].len,
                               ':');
    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_zone: \"%V\" is not name:size "
                           "(e.g. usage:10m)", &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_zone: invalid size \"%V\" "
                           "(e.g. 10m)", &s);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_zone: zone \"%V\" is too small: "
                           "at least %uz bytes", &name, 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    ngx_str_null(&state);
    interval = 10000;
    overflow = NGX_CONF_UNSET;
    full_deny = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "state=", 6) == 0
            && value[i].len > 6)
        {
            state.data = value[i].data + 6;
            state.len = value[i].len - 6;

            if (ngx_conf_full_name(cf->cycle, &state, 0) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "state_interval=", 15) == 0) {
            s.data = value[i].data + 15;
            s.len = value[i].len - 15;

            interval = ngx_parse_time(&s, 0);

            if (interval == (ngx_msec_t) NGX_ERROR || interval < 1000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_zone: invalid \"%V\": a "
                                   "time of at least 1s, e.g. 10s",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "overflow_minute=", 16) == 0) {
            s.data = value[i].data + 16;
            s.len = value[i].len - 16;

            if (s.len == 3 && ngx_strncmp(s.data, "off", 3) == 0) {
                overflow = UG_OFF;
                continue;
            }

            overflow = ngx_atoi(s.data, s.len);

            if (overflow == NGX_ERROR || overflow < 1
                || overflow > UG_LIMIT_MAX)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_zone: invalid \"%V\": a "
                                   "number of calls a minute, or off",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "full=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            if (s.len == 5 && ngx_strncmp(s.data, "allow", 5) == 0) {
                full_deny = 0;
                continue;
            }

            if (s.len == 4 && ngx_strncmp(s.data, "deny", 4) == 0) {
                full_deny = 1;
                continue;
            }

            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate_zone: invalid \"%V\" (use "
                               "full=allow or full=deny)", &value[i]);
            return NGX_CONF_ERROR;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_zone: unknown parameter \"%V\" "
                           "(use state=FILE, state_interval=TIME, "
                           "overflow_minute=N|off and full=allow|deny)",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    if (overflow != NGX_CONF_UNSET && full_deny) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_zone: \"overflow_minute=\" sizes "
                           "what a full zone lets through, and "
                           "\"full=deny\" lets nothing through: use one");
        return NGX_CONF_ERROR;
    }

    if (state.len == 0 && interval != 10000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_zone: \"state_interval=\" needs "
                           "\"state=\"");
        return NGX_CONF_ERROR;
    }

    /* the state file is written by nginx's default thread pool, so that
     * a slow disk never stalls a worker */
    if (state.len && ngx_thread_pool_add(cf, NULL) == NULL) {
        return NGX_CONF_ERROR;
    }

    zp = mcf->zones.elts;

    for (i = 0; i < mcf->zones.nelts; i++) {
        zone = zp[i]->data;

        if (zone->name.len == name.len
            && ngx_strncmp(zone->name.data, name.data, name.len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate_zone: zone \"%V\" is already "
                               "declared in %s:%ui", &name, zone->file,
                               zone->line);
            return NGX_CONF_ERROR;
        }
    }

    shm_zone = ngx_http_usage_gate_zone_add(cf, &name, size);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone = shm_zone->data;

    if (zone->configured) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_zone: zone \"%V\" is already "
                           "declared in %s:%ui", &name, zone->file,
                           zone->line);
        return NGX_CONF_ERROR;
    }

    zone->configured = 1;
    zone->overflow_minute = overflow;
    zone->full_deny = full_deny;
    zone->state = state;
    zone->load = ngx_http_usage_gate_state_load;
    zone->state_interval = interval;
    zone->core_conf = (ngx_core_conf_t *) ngx_get_conf(cf->cycle->conf_ctx,
                                                       ngx_core_module);
    zone->file = cf->conf_file->file.name.data;
    zone->line = cf->conf_file->line;

    zp = ngx_array_push(&mcf->zones);
    if (zp == NULL) {
        return NGX_CONF_ERROR;
    }

    *zp = shm_zone;

    return NGX_CONF_OK;
}


/* usage_gate_plan name [month=N|off] [overage=N|unlimited] [minute=N|off] */
static char *
ngx_http_usage_gate_plan(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_usage_gate_main_conf_t *mcf = conf;

    int           rc;
    int64_t      *slot, overage;
    ngx_str_t    *value, v;
    ngx_uint_t    i;
    ug_limits_t   limits;

    value = cf->args->elts;

    limits.month = UG_OFF;
    limits.minute = UG_OFF;
    overage = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "overage=", 8) == 0) {
            if (ug_parse_overage((char *) value[i].data + 8,
                                 value[i].len - 8, &overage)
                != 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_plan: invalid value in "
                                   "\"%V\": use a whole number from 0 to "
                                   "%L, or \"unlimited\"", &value[i],
                                   (int64_t) UG_LIMIT_MAX);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "month=", 6) == 0) {
            slot = &limits.month;
            v.data = value[i].data + 6;
            v.len = value[i].len - 6;

        } else if (ngx_strncmp(value[i].data, "minute=", 7) == 0) {
            slot = &limits.minute;
            v.data = value[i].data + 7;
            v.len = value[i].len - 7;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate_plan: unknown parameter \"%V\" "
                               "(use month=N|off, overage=N|unlimited "
                               "and minute=N|off)",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        if (ug_parse_limit((char *) v.data, v.len, slot) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate_plan: invalid value in \"%V\": "
                               "use a whole number from 0 to %L, or \"off\"",
                               &value[i], (int64_t) UG_LIMIT_MAX);
            return NGX_CONF_ERROR;
        }
    }

    if (!mcf->plans_set) {
        /* the first usage_gate_plan replaces the built-in table */
        mcf->plans.n = 0;
        mcf->plans_set = 1;
    }

    rc = ug_plan_add_overage(&mcf->plans, (char *) value[1].data,
                             value[1].len, &limits, overage);

    if (rc < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_plan: \"%V\": %s", &value[1],
                           ug_plan_strerror(rc));
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_usage_gate_default_plan(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_usage_gate_main_conf_t *mcf = conf;

    ngx_str_t  *value;

    if (mcf->default_plan_name.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    mcf->default_plan_name = value[1];
    mcf->default_plan_file = cf->conf_file->file.name.data;
    mcf->default_plan_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


/* usage_gate zone [scope=user|org] [cost=N] [plans=a,b] | off */
static char *
ngx_http_usage_gate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_usage_gate_loc_conf_t *lcf = conf;

    u_char                           *p, *last, *start;
    ngx_int_t                         n;
    ngx_str_t                        *value, s, *name;
    ngx_uint_t                        i;
    ngx_shm_zone_t                   *shm_zone;
    ngx_http_usage_gate_main_conf_t  *mcf;
    ngx_http_usage_gate_zone_ref_t   *ref;

    if (lcf->shm_zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts > 2) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate: \"off\" takes no parameters");
            return NGX_CONF_ERROR;
        }

        lcf->shm_zone = NULL;
        return NGX_CONF_OK;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "scope=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            if (s.len == 4 && ngx_strncmp(s.data, "user", 4) == 0) {
                lcf->scope = NGX_HTTP_USAGE_GATE_SCOPE_USER;

            } else if (s.len == 3 && ngx_strncmp(s.data, "org", 3) == 0) {
                lcf->scope = NGX_HTTP_USAGE_GATE_SCOPE_ORG;

            } else {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate: invalid \"%V\": scope is "
                                   "\"user\" or \"org\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "cost=", 5) == 0) {
            n = ngx_atoi(value[i].data + 5, value[i].len - 5);

            if (n == NGX_ERROR || n < 1 || n > NGX_HTTP_USAGE_GATE_COST_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate: invalid \"%V\": cost is a "
                                   "whole number from 1 to %d", &value[i],
                                   NGX_HTTP_USAGE_GATE_COST_MAX);
                return NGX_CONF_ERROR;
            }

            lcf->cost = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "plans=", 6) == 0) {
            lcf->plan_names = ngx_array_create(cf->pool, 4,
                                               sizeof(ngx_str_t));
            if (lcf->plan_names == NULL) {
                return NGX_CONF_ERROR;
            }

            p = value[i].data + 6;
            last = value[i].data + value[i].len;

            while (p <= last) {
                start = p;

                while (p < last && *p != ',') {
                    p++;
                }

                if (p == start) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "usage_gate: empty plan name in "
                                       "\"%V\"", &value[i]);
                    return NGX_CONF_ERROR;
                }

                name = ngx_array_push(lcf->plan_names);
                if (name == NULL) {
                    return NGX_CONF_ERROR;
                }

                name->data = start;
                name->len = p - start;

                p++;
            }

            lcf->plans_file = cf->conf_file->file.name.data;
            lcf->plans_line = cf->conf_file->line;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate: unknown parameter \"%V\" "
                           "(use scope=, cost= or plans=)", &value[i]);
        return NGX_CONF_ERROR;
    }

    /* size 0: the zone's size comes from its usage_gate_zone, checked
     * once http{} is read, wherever that directive stands */
    shm_zone = ngx_http_usage_gate_zone_add(cf, &value[1], 0);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_usage_gate_module);

    ref = ngx_array_push(&mcf->refs);
    if (ref == NULL) {
        return NGX_CONF_ERROR;
    }

    ref->shm_zone = shm_zone;
    ref->directive = "usage_gate";
    ref->file = cf->conf_file->file.name.data;
    ref->line = cf->conf_file->line;

    lcf->shm_zone = shm_zone;
    lcf->gate_file = cf->conf_file->file.name.data;
    lcf->gate_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


static char *
ngx_http_usage_gate_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_int_t    n;
    ngx_str_t   *value;
    ngx_uint_t  *slot;

    slot = (ngx_uint_t *) ((char *) conf + cmd->offset);

    if (*slot != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);

    if (n == NGX_ERROR || n < 400 || n > 599) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%V: invalid status \"%V\": use a code from 400 "
                           "to 599", &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    *slot = n;

    return NGX_CONF_OK;
}


static char *
ngx_http_usage_gate_upgrade_url(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_usage_gate_loc_conf_t *lcf = conf;

    ngx_str_t  *value;

    if (lcf->upgrade_url_set) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len > 2048) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_upgrade_url: longer than 2048 bytes");
        return NGX_CONF_ERROR;
    }

    if (ngx_strcmp(value[1].data, "off") != 0) {
        lcf->upgrade_url = value[1];
    }

    lcf->upgrade_url_set = 1;

    return NGX_CONF_OK;
}


/* usage_gate_jwt_cache N | off */
static char *
ngx_http_usage_gate_jwt_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_usage_gate_main_conf_t *mcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (mcf->jwt_cache_size != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        mcf->jwt_cache_size = 0;
        return NGX_CONF_OK;
    }

    n = ngx_atoi(value[1].data, value[1].len);

    if (n == NGX_ERROR || n < 1 || n > UG_JWT_CACHE_MAX_SLOTS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_jwt_cache: invalid value \"%V\": "
                           "a number of tokens from 1 to %d, or \"off\"",
                           &value[1], UG_JWT_CACHE_MAX_SLOTS);
        return NGX_CONF_ERROR;
    }

    mcf->jwt_cache_size = n;

    return NGX_CONF_OK;
}


static ngx_http_usage_gate_main_conf_t *
ngx_http_usage_gate_cycle_conf(ngx_cycle_t *cycle)
{
    if (cycle->conf_ctx == NULL
        || cycle->conf_ctx[ngx_http_module.index] == NULL)
    {
        return NULL;
    }

    return ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_usage_gate_module);
}


/* The configuration is committed: a reload can no longer fail. */
static ngx_int_t
ngx_http_usage_gate_init_module(ngx_cycle_t *cycle)
{
    ngx_http_usage_gate_main_conf_t  *mcf;

    mcf = ngx_http_usage_gate_cycle_conf(cycle);
    if (mcf == NULL) {
        return NGX_OK;
    }

    return ngx_http_usage_gate_store_init_module(cycle, mcf);
}


static ngx_int_t
ngx_http_usage_gate_init_process(ngx_cycle_t *cycle)
{
    ngx_http_usage_gate_main_conf_t  *mcf;

    mcf = ngx_http_usage_gate_cycle_conf(cycle);
    if (mcf == NULL) {
        return NGX_OK;
    }

    if (ngx_http_usage_gate_store_init_process(cycle, mcf) != NGX_OK
        || ngx_http_usage_gate_jwt_init_process(cycle) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_usage_gate_state_init_process(cycle, mcf);
}


static void
ngx_http_usage_gate_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_usage_gate_main_conf_t  *mcf;

    ngx_http_usage_gate_jwt_exit_process();

    mcf = ngx_http_usage_gate_cycle_conf(cycle);
    if (mcf == NULL) {
        return;
    }

    /* what is in flight goes back to the zone before the state file's
     * last write */
    ngx_http_usage_gate_store_exit_process(cycle, mcf);

    ngx_http_usage_gate_state_exit_process(cycle, mcf);

    ngx_http_usage_gate_notify_exit_process(cycle);

    ngx_http_usage_gate_curl_done(cycle);
}


/* usage_gate_log_level info | notice | warn | error */
static char *
ngx_http_usage_gate_log_level(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t        *value;
    ngx_uint_t       *slot;
    ngx_conf_enum_t  *e;

    slot = (ngx_uint_t *) ((char *) conf + cmd->offset);

    if (*slot != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (e = ngx_http_usage_gate_log_levels; e->name.len; e++) {
        if (e->name.len == value[1].len
            && ngx_strcmp(e->name.data, value[1].data) == 0)
        {
            *slot = e->value;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "usage_gate_log_level: invalid level \"%V\" "
                       "(info, notice, warn or error)", &value[1]);

    return NGX_CONF_ERROR;
}
