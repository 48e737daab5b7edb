/*
 * The $usage_gate_* variables: what the gate decided for a request, for
 * access logs, map{} and the upstream.  They read the request's context,
 * so they are empty where no gate ran and follow an internal redirect.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_module.h"


static ngx_int_t ngx_http_usage_gate_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


/* what each $usage_gate_* variable reports */
enum {
    NGX_HTTP_USAGE_GATE_VAR_OWNER = 0,
    NGX_HTTP_USAGE_GATE_VAR_USER,
    NGX_HTTP_USAGE_GATE_VAR_ORG,
    NGX_HTTP_USAGE_GATE_VAR_PLAN,
    NGX_HTTP_USAGE_GATE_VAR_RESULT,
    NGX_HTTP_USAGE_GATE_VAR_MONTH_USED,
    NGX_HTTP_USAGE_GATE_VAR_MONTH_LIMIT,
    NGX_HTTP_USAGE_GATE_VAR_MONTH_REMAINING,
    NGX_HTTP_USAGE_GATE_VAR_MINUTE_USED,
    NGX_HTTP_USAGE_GATE_VAR_OVERAGE,
    NGX_HTTP_USAGE_GATE_VAR_JWT_SUB,
    NGX_HTTP_USAGE_GATE_VAR_JWT_KID,
    NGX_HTTP_USAGE_GATE_VAR_JWT_ERROR
};


static ngx_http_variable_t  ngx_http_usage_gate_vars[] = {

    { ngx_string("usage_gate_owner"), NULL, ngx_http_usage_gate_variable,
      NGX_HTTP_USAGE_GATE_VAR_OWNER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("usage_gate_user"), NULL, ngx_http_usage_gate_variable,
      NGX_HTTP_USAGE_GATE_VAR_USER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("usage_gate_org"), NULL, ngx_http_usage_gate_variable,
      NGX_HTTP_USAGE_GATE_VAR_ORG, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("usage_gate_plan"), NULL, ngx_http_usage_gate_variable,
      NGX_HTTP_USAGE_GATE_VAR_PLAN, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("usage_gate_result"), NULL, ngx_http_usage_gate_variable,
      NGX_HTTP_USAGE_GATE_VAR_RESULT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("usage_gate_month_used"), NULL,
      ngx_http_usage_gate_variable,
      NGX_HTTP_USAGE_GATE_VAR_MONTH_USED, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("usage_gate_month_limit"), NULL,
      ngx_http_usage_gate_variable,
      NGX_HTTP_USAGE_GATE_VAR_MONTH_LIMIT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("usage_gate_month_remaining"), NULL,
      ngx_http_usage_gate_variable,
      NGX_HTTP_USAGE_GATE_VAR_MONTH_REMAINING, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("usage_gate_minute_used"), NULL,
      ngx_http_usage_gate_variable,
      NGX_HTTP_USAGE_GATE_VAR_MINUTE_USED, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("usage_gate_overage"), NULL,
      ngx_http_usage_gate_variable,
      NGX_HTTP_USAGE_GATE_VAR_OVERAGE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("usage_gate_jwt_sub"), NULL, ngx_http_usage_gate_variable,
      NGX_HTTP_USAGE_GATE_VAR_JWT_SUB, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("usage_gate_jwt_kid"), NULL, ngx_http_usage_gate_variable,
      NGX_HTTP_USAGE_GATE_VAR_JWT_KID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("usage_gate_jwt_error"), NULL,
      ngx_http_usage_gate_variable,
      NGX_HTTP_USAGE_GATE_VAR_JWT_ERROR, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_usage_gate_results[] = {
    ngx_null_string,
    ngx_string("ALLOWED"),
    ngx_string("QUOTA"),
    ngx_string("RATE"),
    ngx_string("DRY_RUN_QUOTA"),
    ngx_string("DRY_RUN_RATE"),
    ngx_string("BYPASS"),
};


ngx_int_t
ngx_http_usage_gate_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_usage_gate_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_usage_gate_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                           *p;
    uint64_t                          n;
    ngx_str_t                        *s;
    ngx_http_usage_gate_ctx_t        *ctx;
    ngx_http_usage_gate_main_conf_t  *mcf;

    ctx = ngx_http_usage_gate_get_ctx(r);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    /* the jwt variables tell about refused tokens too */
    switch (data) {

    case NGX_HTTP_USAGE_GATE_VAR_JWT_ERROR:
        if (ctx->jwt_error == NULL) {
            v->not_found = 1;
            return NGX_OK;
        }

        v->data = (u_char *) ctx->jwt_error;
        v->len = ngx_strlen(ctx->jwt_error);
        goto found;

    case NGX_HTTP_USAGE_GATE_VAR_JWT_SUB:
    case NGX_HTTP_USAGE_GATE_VAR_JWT_KID:
        if (ctx->jwt == NULL) {
            v->not_found = 1;
            return NGX_OK;
        }

        if (data == NGX_HTTP_USAGE_GATE_VAR_JWT_SUB) {
            v->data = (u_char *) ctx->jwt->sub;
            v->len = ctx->jwt->sub_len;

        } else {
            v->data = (u_char *) ctx->jwt->kid;
            v->len = ctx->jwt->kid_len;
        }

        if (v->len == 0) {
            v->not_found = 1;
            return NGX_OK;
        }

        goto found;
    }

    if (ctx->plan < 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = NULL;
    n = 0;

    switch (data) {

    case NGX_HTTP_USAGE_GATE_VAR_OWNER:
        s = &ctx->owner;
        break;

    case NGX_HTTP_USAGE_GATE_VAR_USER:
        s = &ctx->user;
        break;

    case NGX_HTTP_USAGE_GATE_VAR_ORG:
        s = &ctx->org;
        break;

    case NGX_HTTP_USAGE_GATE_VAR_PLAN:
        mcf = ngx_http_get_module_main_conf(r, ngx_http_usage_gate_module);
        v->data = (u_char *) mcf->plans.plans[ctx->plan].name;
        v->len = mcf->plans.plans[ctx->plan].len;
        goto found;

    case NGX_HTTP_USAGE_GATE_VAR_RESULT:
        s = &ngx_http_usage_gate_results[ctx->result];
        break;

    case NGX_HTTP_USAGE_GATE_VAR_OVERAGE:
        /* units of this call past the included month; "0" for any call
         * the gate saw that was not billed as overage, so that a log
         * column is always a number */
        n = (ctx->counted && ctx->d.verdict == UG_ALLOWED)
            ? ctx->d.overage : 0;
        break;

    case NGX_HTTP_USAGE_GATE_VAR_MONTH_LIMIT:
        if (ctx->limits.month == UG_OFF) {
            v->not_found = 1;
            return NGX_OK;
        }
        n = (uint64_t) ctx->limits.month;
        break;

    default:
        if (!ctx->counted) {
            v->not_found = 1;
            return NGX_OK;
        }

        if (data == NGX_HTTP_USAGE_GATE_VAR_MONTH_USED) {
            n = ctx->d.month_used;

        } else if (data == NGX_HTTP_USAGE_GATE_VAR_MINUTE_USED) {
            n = ctx->d.minute_used;

        } else if (ug_month_hard_limit(&ctx->limits, &ctx->terms)
                   == UG_OFF)
        {
            /* no month, or an unlimited overage band: nothing to run
             * out of */
            v->not_found = 1;
            return NGX_OK;

        } else {
            n = ctx->d.month_remaining;
        }
    }

    if (s) {
        if (s->len == 0) {
            v->not_found = 1;
            return NGX_OK;
        }

        v->data = s->data;
        v->len = s->len;
        goto found;
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;
    v->len = ngx_sprintf(p, "%uL", n) - p;

found:

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
