/*
 * The registry of stores: a new store adds its line here.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_store.h"
#include "ngx_http_usage_gate_ddb.h"


static ngx_http_usage_gate_store_t  *ngx_http_usage_gate_stores[] = {
    &ngx_http_usage_gate_ddb_store,
    NULL
};


char *
ngx_http_usage_gate_store_init_main_conf(ngx_conf_t *cf,
    ngx_http_usage_gate_main_conf_t *mcf)
{
    char                         *rv;
    ngx_http_usage_gate_store_t **s;

    for (s = ngx_http_usage_gate_stores; *s; s++) {
        rv = (*s)->init_main_conf(cf, mcf);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_usage_gate_store_init_process(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf)
{
    ngx_http_usage_gate_store_t **s;

    for (s = ngx_http_usage_gate_stores; *s; s++) {
        if ((*s)->init_process(cycle, mcf) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


void
ngx_http_usage_gate_store_exit_process(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf)
{
    ngx_http_usage_gate_store_t **s;

    for (s = ngx_http_usage_gate_stores; *s; s++) {
        (*s)->exit_process(cycle, mcf);
    }
}


ngx_int_t
ngx_http_usage_gate_store_init_module(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf)
{
    ngx_http_usage_gate_store_t **s;

    for (s = ngx_http_usage_gate_stores; *s; s++) {
        if ((*s)->init_module(cycle, mcf) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}
