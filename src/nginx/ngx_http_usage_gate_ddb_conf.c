/*
 * The usage_gate_dynamodb directive, its checks at the end of http{}, and
 * the store's table of functions.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_ddb_internal.h"


/*
 * Regions are named <area>-<place>-<digit>: us-east-1, ap-southeast-2,
 * us-gov-west-1.  ug_ddb_region_ok() checks the bytes (they go into the
 * URL and the signature); this catches a word that is no region at all.
 */
static ngx_uint_t
ngx_http_usage_gate_ddb_region_shape(ngx_str_t *v)
{
    ngx_uint_t  i, dashes;

    dashes = 0;

    for (i = 0; i < v->len; i++) {
        if (v->data[i] == '-') {
            dashes++;
        }
    }

    return dashes >= 2 && v->data[0] >= 'a' && v->data[0] <= 'z'
           && v->data[v->len - 1] >= '0' && v->data[v->len - 1] <= '9';
}


/* sync=, timeout=, connect_timeout=: a time from 100ms to 1h */
static ngx_int_t
ngx_http_usage_gate_ddb_msec(ngx_conf_t *cf, ngx_str_t *arg, ngx_str_t *v)
{
    ngx_int_t  ms;

    ms = ngx_parse_time(v, 0);

    if (ms == NGX_ERROR || ms < 100 || ms > 3600000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_dynamodb: invalid \"%V\": a "
                           "time from 100ms to 1h", arg);
        return NGX_ERROR;
    }

    return ms;
}


/*
 * usage_gate_dynamodb zone=NAME table=NAME region=NAME [endpoint=URL]
 *     [mode=strict|async|auto] [sync=TIME] [timeout=TIME]
 *     [connect_timeout=TIME] [on_error=allow|deny] [profile=NAME]
 *     [ttl=ATTR] [ttl_keep=TIME];
 */
char *
ngx_http_usage_gate_dynamodb(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_usage_gate_main_conf_t *mcf = conf;

    int                              rc;
    char                             buf[UG_DDB_BODY_MAX];
    size_t                           len;
    ngx_str_t                       *value, v, zname, *arg;
    ngx_int_t                        ms;
    ngx_uint_t                       i;
    ug_ddb_item_t                    item;
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_usage_gate_zone_t      *zone;
    ngx_http_usage_gate_zone_ref_t  *ref;
    ngx_http_usage_gate_ddb_conf_t  *dc, *prev, **dcp;

    dc = ngx_pcalloc(cf->pool, sizeof(ngx_http_usage_gate_ddb_conf_t));
    if (dc == NULL) {
        return NGX_CONF_ERROR;
    }

    dc->mode = NGX_HTTP_USAGE_GATE_DDB_AUTO;
    dc->sync = 1000;
    dc->timeout = 2000;
    dc->connect_timeout = NGX_CONF_UNSET_MSEC;
    dc->on_error = NGX_HTTP_USAGE_GATE_DDB_ALLOW;
    dc->ttl_keep = NGX_HTTP_USAGE_GATE_DDB_TTL_KEEP;
    dc->file = cf->conf_file->file.name.data;
    dc->line = cf->conf_file->line;

    ngx_str_null(&zname);

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        arg = &value[i];

        /* every parameter is key=value; the value starts after '=' */
        v.data = ngx_strlchr(arg->data, arg->data + arg->len, '=');

        if (v.data != NULL) {
            v.data++;
            v.len = arg->data + arg->len - v.data;

        } else {
            v.len = 0;
        }

        if (ngx_strncmp(arg->data, "zone=", 5) == 0) {
            if (v.len == 0) {
                goto no_value;
            }

            zname = v;

        } else if (ngx_strncmp(arg->data, "table=", 6) == 0) {
            if (v.len == 0) {
                goto no_value;
            }

            if (!ug_ddb_table_name_ok((char *) v.data, v.len)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_dynamodb: invalid table name "
                                   "\"%V\": 3 to 255 of A-Z a-z 0-9 _ . -",
                                   &v);
                return NGX_CONF_ERROR;
            }

            dc->table = v;

        } else if (ngx_strncmp(arg->data, "region=", 7) == 0) {
            if (v.len == 0) {
                goto no_value;
            }

            if (v.len > NGX_HTTP_USAGE_GATE_DDB_REGION_MAX
                || !ug_ddb_region_ok((char *) v.data, v.len)
                || !ngx_http_usage_gate_ddb_region_shape(&v))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_dynamodb: invalid region "
                                   "\"%V\" (an AWS region such as "
                                   "us-east-1)", &v);
                return NGX_CONF_ERROR;
            }

            ngx_memcpy(dc->region, v.data, v.len);
            dc->region[v.len] = '\0';

        } else if (ngx_strncmp(arg->data, "endpoint=", 9) == 0) {
            if (v.len == 0) {
                goto no_value;
            }

            if (!((v.len > 7 && ngx_strncmp(v.data, "http://", 7) == 0)
                  || (v.len > 8 && ngx_strncmp(v.data, "https://", 8) == 0))
                || v.len > 1024)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_dynamodb: invalid endpoint "
                                   "\"%V\": an http:// or https:// URL",
                                   &v);
                return NGX_CONF_ERROR;
            }

            dc->endpoint = (char *) v.data;

        } else if (ngx_strncmp(arg->data, "mode=", 5) == 0) {
            if (v.len == 0) {
                goto no_value;
            }

            if (v.len == 6 && ngx_strncmp(v.data, "strict", 6) == 0) {
                dc->mode = NGX_HTTP_USAGE_GATE_DDB_STRICT;

            } else if (v.len == 5 && ngx_strncmp(v.data, "async", 5) == 0) {
                dc->mode = NGX_HTTP_USAGE_GATE_DDB_ASYNC;

            } else if (v.len == 4 && ngx_strncmp(v.data, "auto", 4) == 0) {
                dc->mode = NGX_HTTP_USAGE_GATE_DDB_AUTO;

            } else {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_dynamodb: unknown mode "
                                   "\"%V\" (use strict, async or auto)", &v);
                return NGX_CONF_ERROR;
            }

        } else if (ngx_strncmp(arg->data, "sync=", 5) == 0) {
            if (v.len == 0) {
                goto no_value;
            }

            ms = ngx_http_usage_gate_ddb_msec(cf, arg, &v);
            if (ms == NGX_ERROR) {
                return NGX_CONF_ERROR;
            }

            dc->sync = (ngx_msec_t) ms;

        } else if (ngx_strncmp(arg->data, "timeout=", 8) == 0) {
            if (v.len == 0) {
                goto no_value;
            }

            ms = ngx_http_usage_gate_ddb_msec(cf, arg, &v);
            if (ms == NGX_ERROR) {
                return NGX_CONF_ERROR;
            }

            dc->timeout = (ngx_msec_t) ms;

        } else if (ngx_strncmp(arg->data, "connect_timeout=", 16) == 0) {
            if (v.len == 0) {
                goto no_value;
            }

            ms = ngx_http_usage_gate_ddb_msec(cf, arg, &v);
            if (ms == NGX_ERROR) {
                return NGX_CONF_ERROR;
            }

            dc->connect_timeout = (ngx_msec_t) ms;

        } else if (ngx_strncmp(arg->data, "on_error=", 9) == 0) {
            if (v.len == 0) {
                goto no_value;
            }

            if (v.len == 5 && ngx_strncmp(v.data, "allow", 5) == 0) {
                dc->on_error = NGX_HTTP_USAGE_GATE_DDB_ALLOW;

            } else if (v.len == 4 && ngx_strncmp(v.data, "deny", 4) == 0) {
                dc->on_error = NGX_HTTP_USAGE_GATE_DDB_DENY;

            } else {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_dynamodb: invalid \"%V\" "
                                   "(use on_error=allow or on_error=deny)",
                                   arg);
                return NGX_CONF_ERROR;
            }

        } else if (ngx_strncmp(arg->data, "profile=", 8) == 0) {
            if (v.len == 0) {
                goto no_value;
            }

            if (v.len > UG_AWS_PROFILE_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_dynamodb: profile name "
                                   "\"%V\" is longer than %d bytes", &v,
                                   UG_AWS_PROFILE_MAX);
                return NGX_CONF_ERROR;
            }

            dc->profile = v;

        } else if (ngx_strncmp(arg->data, "ttl=", 4) == 0) {
            if (v.len == 0) {
                goto no_value;
            }

            dc->ttl = v;

        } else if (ngx_strncmp(arg->data, "ttl_keep=", 9) == 0) {
            if (v.len == 0) {
                goto no_value;
            }

            ms = ngx_parse_time(&v, 1);

            if (ms == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_dynamodb: invalid \"%V\" "
                                   "(e.g. 400d)", arg);
                return NGX_CONF_ERROR;
            }

            dc->ttl_keep = (time_t) ms;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate_dynamodb: unknown parameter "
                               "\"%V\" (use zone=, table=, region=, "
                               "endpoint=, mode=, sync=, timeout=, "
                               "connect_timeout=, on_error=, profile=, "
                               "ttl= or ttl_keep=)", arg);
            return NGX_CONF_ERROR;
        }
    }

    if (zname.len == 0 || dc->table.len == 0 || dc->region[0] == '\0') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_dynamodb: \"%s\" is required",
                           zname.len == 0 ? "zone="
                           : dc->table.len == 0 ? "table=" : "region=");
        return NGX_CONF_ERROR;
    }

    if (dc->connect_timeout == NGX_CONF_UNSET_MSEC) {
        dc->connect_timeout = ngx_min(dc->timeout, 1000);
    }

    if (dc->endpoint == NULL) {
        dc->endpoint = ngx_pnalloc(cf->pool, UG_DDB_ENDPOINT_MAX);
        if (dc->endpoint == NULL) {
            return NGX_CONF_ERROR;
        }

        if (ug_ddb_endpoint(dc->endpoint, UG_DDB_ENDPOINT_MAX, dc->region)
            != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate_dynamodb: no endpoint for region "
                               "\"%s\"; set endpoint=", dc->region);
            return NGX_CONF_ERROR;
        }
    }

    /* the same checks the request bodies get, once, with a sample owner:
     * a bad ttl= attribute is refused here rather than at every write */
    if (dc->ttl.len) {
        ngx_memzero(&item, sizeof(ug_ddb_item_t));
        item.table = (char *) dc->table.data;
        item.table_len = dc->table.len;
        item.owner = "owner";
        item.owner_len = 5;
        item.month = ug_month_index((int64_t) ngx_time());
        item.ttl_attr = (char *) dc->ttl.data;
        item.ttl_attr_len = dc->ttl.len;
        item.ttl_at = ug_ddb_ttl_at(item.month, dc->ttl_keep);

        rc = ug_ddb_build_add(buf, sizeof(buf), &len, &item, 1, -1);

        if (rc != UG_DDB_BUILD_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate_dynamodb: invalid \"ttl=%V\": 1 "
                               "to 64 of A-Z a-z 0-9 _ . -, and not owner, "
                               "month or count", &dc->ttl);
            return NGX_CONF_ERROR;
        }
    }

    shm_zone = ngx_http_usage_gate_zone_add(cf, &zname, 0);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone = shm_zone->data;

    if (zone->store_conf) {
        prev = zone->store_conf;

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_dynamodb: zone \"%V\" already has a "
                           "usage_gate_dynamodb in %s:%ui", &zname,
                           prev->file, prev->line);
        return NGX_CONF_ERROR;
    }

    dc->shm_zone = shm_zone;
    zone->store = &ngx_http_usage_gate_ddb_store;
    zone->store_conf = dc;
    zone->node_extra = sizeof(ngx_http_usage_gate_ddb_node_t);

    /* an undeclared zone is reported once http{} is read */
    ref = ngx_array_push(&mcf->refs);
    if (ref == NULL) {
        return NGX_CONF_ERROR;
    }

    ref->directive = "usage_gate_dynamodb";
    ref->shm_zone = shm_zone;
    ref->file = dc->file;
    ref->line = dc->line;

    if (mcf->ddb == NULL) {
        mcf->ddb = ngx_array_create(cf->pool, 1,
                                    sizeof(ngx_http_usage_gate_ddb_conf_t *));
        if (mcf->ddb == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    dcp = ngx_array_push(mcf->ddb);
    if (dcp == NULL) {
        return NGX_CONF_ERROR;
    }

    *dcp = dc;

    return NGX_CONF_OK;

no_value:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "usage_gate_dynamodb: \"%V\" has no value", arg);
    return NGX_CONF_ERROR;
}


char *
ngx_http_usage_gate_ddb_init_main_conf(ngx_conf_t *cf,
    ngx_http_usage_gate_main_conf_t *mcf)
{
    ngx_uint_t                        i;
    ngx_http_usage_gate_ddb_conf_t  **dcp;

    if (mcf->ddb == NULL) {
        return NGX_CONF_OK;
    }

    dcp = mcf->ddb->elts;

    for (i = 0; i < mcf->ddb->nelts; i++) {
        ngx_http_usage_gate_ddb_file_creds(cf, dcp[i]);
    }

    return NGX_CONF_OK;
}


ngx_http_usage_gate_store_t  ngx_http_usage_gate_ddb_store = {
    ngx_string("dynamodb"),
    ngx_http_usage_gate_ddb_init_main_conf,
    ngx_http_usage_gate_ddb_init_process,
    ngx_http_usage_gate_ddb_exit_process,
    ngx_http_usage_gate_ddb_init_module,
    ngx_http_usage_gate_ddb_init_zone,
    ngx_http_usage_gate_ddb_keep,
    ngx_http_usage_gate_ddb_record,
    ngx_http_usage_gate_ddb_restore,
    ngx_http_usage_gate_ddb_decide,
    ngx_http_usage_gate_ddb_resume,
    ngx_http_usage_gate_ddb_admin_changed,
    ngx_http_usage_gate_ddb_admin_write,
    ngx_http_usage_gate_ddb_metrics,
    ngx_http_usage_gate_ddb_refund
};
