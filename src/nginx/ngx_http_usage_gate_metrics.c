/*
 * usage_gate_metrics: the zones' counters in the Prometheus text format,
 * or JSON with ?format=json.  Counters are read without the zone lock
 * (each is one atomic word); owners and free bytes under it.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_module.h"
#include "ngx_http_usage_gate_store.h"
#include "ug_metrics.h"


static ngx_int_t ngx_http_usage_gate_metrics_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_usage_gate_metrics_zone(ngx_http_request_t *r,
    ngx_http_usage_gate_zone_t *zone, ug_metrics_zone_t *mz);


char *
ngx_http_usage_gate_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_usage_gate_loc_conf_t *lcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    lcf->endpoint = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_usage_gate_metrics_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_usage_gate_metrics_handler(ngx_http_request_t *r)
{
    u_char                           *buf;
    size_t                            size, len;
    ngx_int_t                         rc;
    ngx_str_t                         format, type;
    ngx_uint_t                        i, json;
    ngx_shm_zone_t                  **zones;
    ug_metrics_zone_t                *mz;
    ngx_http_usage_gate_main_conf_t  *mcf;

    static ngx_str_t  text_type = ngx_string(UG_METRICS_TEXT_TYPE);
    static ngx_str_t  json_type = ngx_string(UG_METRICS_JSON_TYPE);

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        if (ngx_http_usage_gate_push_header(&r->headers_out.headers,
                                            &ngx_http_usage_gate_h_allow,
                                            (u_char *) "GET, HEAD",
                                            sizeof("GET, HEAD") - 1)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    json = 0;

    if (ngx_http_arg(r, (u_char *) "format", 6, &format) == NGX_OK) {
        if (format.len == 4 && ngx_strncmp(format.data, "json", 4) == 0) {
            json = 1;

        } else if (!(format.len == 10
                     && ngx_strncmp(format.data, "prometheus", 10) == 0))
        {
            return NGX_HTTP_BAD_REQUEST;
        }
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_usage_gate_module);
    zones = mcf->zones.elts;

    mz = ngx_pcalloc(r->pool, (mcf->zones.nelts + 1)
                              * sizeof(ug_metrics_zone_t));
    if (mz == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < mcf->zones.nelts; i++) {
        if (ngx_http_usage_gate_metrics_zone(r, zones[i]->data, &mz[i])
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    size = json ? ug_metrics_json_size(mz, mcf->zones.nelts)
                : ug_metrics_text_size(mz, mcf->zones.nelts);

    buf = ngx_pnalloc(r->pool, size);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = json ? ug_metrics_json((char *) buf, size, mz, mcf->zones.nelts)
               : ug_metrics_text((char *) buf, size, mz, mcf->zones.nelts);

    if (len == 0 && size > 1) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    type = json ? json_type : text_type;

    return ngx_http_usage_gate_output(r, NGX_HTTP_OK, &type, buf, len);
}


static ngx_int_t
ngx_http_usage_gate_metrics_zone(ngx_http_request_t *r,
    ngx_http_usage_gate_zone_t *zone, ug_metrics_zone_t *mz)
{
    u_char                           (*name)[UG_PLAN_NAME_MAX + 1];
    ngx_uint_t                         k, n, res;
    ug_metrics_plan_t                 *plans;
    ngx_http_usage_gate_main_conf_t   *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_usage_gate_module);

    mz->name = (char *) zone->name.data;
    mz->len = zone->name.len;

    plans = ngx_pcalloc(r->pool, (UG_PLANS_MAX + 1)
                                 * sizeof(ug_metrics_plan_t));
    if (plans == NULL) {
        return NGX_ERROR;
    }

    name = zone->sh->stats_name;
    n = 0;

    for (k = 0; k <= UG_PLANS_MAX; k++) {
        if (k < UG_PLANS_MAX && name[k][0] == '\0') {
            continue;
        }

        plans[n].name = (k == UG_PLANS_MAX) ? "none" : (char *) name[k];
        plans[n].len = ngx_strlen(plans[n].name);

        for (res = 0; res < NGX_HTTP_USAGE_GATE_ST_N; res++) {
            plans[n].count[res] = ug_stats_sum(zone->stats, k, res);
        }

        plans[n].refunded = zone->sh->refunded[k];
        plans[n].overage = zone->sh->overage[k];

        n++;
    }

    mz->plans = plans;
    mz->nplans = n;

    ngx_shmtx_lock(&zone->shpool->mutex);
    mz->owners = ngx_http_usage_gate_zone_owners(zone);
    mz->bytes_total = zone->size;
    mz->bytes_used = ngx_http_usage_gate_zone_used(zone);
    ngx_shmtx_unlock(&zone->shpool->mutex);

    mz->evictions = zone->sh->evictions;
    mz->fail_open = zone->sh->fail_open;

    if (mcf->notify) {
        mz->notify = 1;
        mz->notify_sent = zone->sh->notify_sent;
        mz->notify_failures = zone->sh->notify_failures;
    }

    if (zone->state.len) {
        mz->state = 1;
        mz->state_writes = zone->sh->state_writes;
        mz->state_failures = zone->sh->state_failures;
        mz->state_last_write = (int64_t) zone->sh->state_last_write;
    }

    return zone->store ? zone->store->metrics(zone, mz, r->pool) : NGX_OK;
}
