/*
 * usage_gate_admin: read and correct an owner's counts.
 *
 *   GET  .../owners/{owner}            the owner's counts
 *   POST .../owners/{owner}/reset      month and minute back to zero
 *   POST .../owners/{owner}/adjust     {"delta": -5}
 *   PUT  .../owners/{owner}            {"used": N}
 *
 * Parsing is src/ug_admin.c's; a change is applied under the zone lock,
 * so every worker sees it at once and no reader sees half of it.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/crypto.h>

#include "ngx_http_usage_gate_module.h"
#include "ngx_http_usage_gate_store.h"
#include "ug_admin.h"
#include "ug_fmt.h"


typedef struct {
    ug_admin_req_t               req;
    ug_counter_t                 counter;      /* after the change */
    uint64_t                     now_us;
    const char                  *detail;
    ngx_http_usage_gate_zone_t  *zone;         /* for its store */
} ngx_http_usage_gate_admin_ctx_t;


static ngx_int_t ngx_http_usage_gate_admin_handler(ngx_http_request_t *r);
static void ngx_http_usage_gate_admin_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_usage_gate_admin_run(ngx_http_request_t *r,
    ngx_http_usage_gate_admin_ctx_t *ctx);
static ngx_int_t ngx_http_usage_gate_admin_change(ug_counter_t *counter,
    void *data);
static ngx_int_t ngx_http_usage_gate_admin_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *detail);


static ngx_str_t  ngx_http_usage_gate_admin_json =
    ngx_string("application/json");


/* usage_gate_admin [zone=NAME] */
char *
ngx_http_usage_gate_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_usage_gate_loc_conf_t *lcf = conf;

    ngx_str_t                        *value, name;
    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_usage_gate_zone_ref_t   *ref;
    ngx_http_usage_gate_main_conf_t  *mcf;

    value = cf->args->elts;

    if (cf->args->nelts == 2) {
        if (ngx_strncmp(value[1].data, "zone=", 5) != 0
            || value[1].len == 5)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate_admin: unknown parameter \"%V\" "
                               "(use zone=NAME)", &value[1]);
            return NGX_CONF_ERROR;
        }

        name.data = value[1].data + 5;
        name.len = value[1].len - 5;

        lcf->admin_zone = ngx_http_usage_gate_zone_add(cf, &name, 0);
        if (lcf->admin_zone == NULL) {
            return NGX_CONF_ERROR;
        }

        mcf = ngx_http_conf_get_module_main_conf(cf,
                                                 ngx_http_usage_gate_module);
        ref = ngx_array_push(&mcf->refs);
        if (ref == NULL) {
            return NGX_CONF_ERROR;
        }

        ref->shm_zone = lcf->admin_zone;
        ref->directive = "usage_gate_admin";
        ref->file = cf->conf_file->file.name.data;
        ref->line = cf->conf_file->line;
    }

    lcf->endpoint = 1;
    lcf->admin_file = cf->conf_file->file.name.data;
    lcf->admin_line = cf->conf_file->line;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_usage_gate_admin_handler;

    return NGX_CONF_OK;
}


/*
 * usage_gate_admin_token_file FILE | off: the bearer secret for the admin
 * API, or "off" for a location protected otherwise (allow/deny)
 */
char *
ngx_http_usage_gate_admin_token_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_usage_gate_loc_conf_t *lcf = conf;

    char       *rv;
    size_t      n;
    ngx_str_t  *value, text;

    if (lcf->admin_token.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        /* set, and empty: the admin API asks for no token */
        lcf->admin_token.data = (u_char *) "";
        lcf->admin_token.len = 0;
        return NGX_CONF_OK;
    }

    rv = ngx_http_usage_gate_read_file(cf, &value[1], 4096, &text);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    lcf->admin_token.data = text.data;
    n = text.len;

    while (n && (lcf->admin_token.data[n - 1] == '\n'
                 || lcf->admin_token.data[n - 1] == '\r'))
    {
        n--;
    }

    if (n < 16) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_admin_token_file: the token in "
                           "\"%V\" is shorter than 16 bytes", &value[1]);
        return NGX_CONF_ERROR;
    }

    lcf->admin_token.len = n;

    return NGX_CONF_OK;
}


/*
 * The admin API changes what owners are billed, so it is closed unless
 * opened on purpose: a location with usage_gate_admin must have a token
 * file, or say "usage_gate_admin_token_file off" (here or above it).
 */
char *
ngx_http_usage_gate_admin_merge(ngx_conf_t *cf,
    ngx_http_usage_gate_loc_conf_t *conf, ngx_http_usage_gate_loc_conf_t *prev)
{
    if (conf->admin_token.data == NULL) {
        conf->admin_token = prev->admin_token;
    }

    if (conf->admin_line == 0 || conf->admin_token.data) {
        return NGX_CONF_OK;
    }

    ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                  "usage_gate_admin in %s:%ui has no token, so anyone who "
                  "reaches it could change what owners are billed: add "
                  "\"usage_gate_admin_token_file FILE;\" (a secret of at "
                  "least 16 bytes, sent as \"Authorization: Bearer ...\"), "
                  "or, for a location protected by allow/deny, "
                  "\"usage_gate_admin_token_file off;\"",
                  conf->admin_file, conf->admin_line);

    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_usage_gate_admin_handler(ngx_http_request_t *r)
{
    u_char                           *token;
    size_t                            len;
    ngx_int_t                         rc;
    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_usage_gate_ctx_t        *gctx;
    ngx_http_usage_gate_loc_conf_t   *lcf;
    ngx_http_usage_gate_admin_ctx_t  *ctx;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_usage_gate_module);

    if (lcf->admin_token.len) {
        token = NULL;
        len = 0;

        if (r->headers_in.authorization
            && r->headers_in.authorization->value.len > 7
            && ngx_strncasecmp(r->headers_in.authorization->value.data,
                               (u_char *) "Bearer ", 7) == 0)
        {
            token = r->headers_in.authorization->value.data + 7;
            len = r->headers_in.authorization->value.len - 7;
        }

        if (len != lcf->admin_token.len
            || CRYPTO_memcmp(token, lcf->admin_token.data, len) != 0)
        {
            if (ngx_http_usage_gate_push_header(&r->headers_out.headers,
                    &ngx_http_usage_gate_h_www_authenticate,
                    (u_char *) "Bearer", sizeof("Bearer") - 1)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_usage_gate_admin_error(r, NGX_HTTP_UNAUTHORIZED,
                                 "a valid admin bearer token is required");
        }
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_usage_gate_admin_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    /* the raw URI: a %2F inside an owner must not split the path */
    if (ug_admin_route(&ctx->req, (char *) r->method_name.data,
                       r->method_name.len, (char *) r->unparsed_uri.data,
                       r->unparsed_uri.len, (char *) clcf->name.data,
                       clcf->name.len)
        != 0)
    {
        if (ctx->req.status == NGX_HTTP_NOT_ALLOWED && ctx->req.allow) {
            if (ngx_http_usage_gate_push_header(&r->headers_out.headers,
                    &ngx_http_usage_gate_h_allow, (u_char *) ctx->req.allow,
                    ngx_strlen(ctx->req.allow))
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_usage_gate_admin_error(r, ctx->req.status,
                                               ctx->req.detail);
    }

    /*
     * The module's context slot is the gate's: the header filter and the
     * $usage_gate_* variables read it.  An admin request gets a gate
     * context that holds no decision (plan -1) and points to its own.
     */
    gctx = ngx_pcalloc(r->pool, sizeof(ngx_http_usage_gate_ctx_t));
    if (gctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    gctx->plan = -1;
    gctx->admin = ctx;

    ngx_http_set_ctx(r, gctx, ngx_http_usage_gate_module);

    if (!ug_admin_needs_body(&ctx->req)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_usage_gate_admin_run(r, ctx);
    }

    if (r->headers_in.content_length_n > UG_ADMIN_BODY_MAX) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_usage_gate_admin_error(r,
                               NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                               "the body is larger than 4096 bytes");
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_usage_gate_admin_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_usage_gate_admin_body(ngx_http_request_t *r)
{
    u_char                           *p;
    size_t                            len;
    ngx_buf_t                        *b;
    ngx_chain_t                      *cl;
    ngx_http_usage_gate_ctx_t        *gctx;
    ngx_http_usage_gate_admin_ctx_t  *ctx;

    gctx = ngx_http_get_module_ctx(r, ngx_http_usage_gate_module);
    ctx = gctx->admin;

    if (r->request_body == NULL || r->request_body->temp_file) {
        ngx_http_finalize_request(r, ngx_http_usage_gate_admin_error(r,
                                  NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                  "the body is larger than 4096 bytes"));
        return;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len > UG_ADMIN_BODY_MAX) {
        ngx_http_finalize_request(r, ngx_http_usage_gate_admin_error(r,
                                  NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                  "the body is larger than 4096 bytes"));
        return;
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        p = ngx_cpymem(p, b->pos, b->last - b->pos);
        len += b->last - b->pos;
    }

    p -= len;

    if (ug_admin_body(&ctx->req, (char *) p, len) != 0) {
        ngx_http_finalize_request(r, ngx_http_usage_gate_admin_error(r,
                                  ctx->req.status, ctx->req.detail));
        return;
    }

    ngx_http_finalize_request(r, ngx_http_usage_gate_admin_run(r, ctx));
}


static ngx_int_t
ngx_http_usage_gate_admin_run(ngx_http_request_t *r,
    ngx_http_usage_gate_admin_ctx_t *ctx)
{
    u_char                           *body;
    size_t                            len;
    ngx_int_t                         rc;
    ngx_shm_zone_t                   *shm_zone, **zones;
    ngx_http_usage_gate_loc_conf_t   *lcf;
    ngx_http_usage_gate_main_conf_t  *mcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_usage_gate_module);
    mcf = ngx_http_get_module_main_conf(r, ngx_http_usage_gate_module);

    shm_zone = lcf->admin_zone;

    if (shm_zone == NULL) {
        if (mcf->zones.nelts == 0) {
            return ngx_http_usage_gate_admin_error(r,
                                  NGX_HTTP_SERVICE_UNAVAILABLE,
                                  "no usage_gate_zone is configured");
        }

        zones = mcf->zones.elts;
        shm_zone = zones[0];
    }

    ctx->now_us = ngx_http_usage_gate_now_us();
    ctx->zone = shm_zone->data;

    rc = ngx_http_usage_gate_zone_update(shm_zone->data, ctx->req.owner,
                                         ctx->req.owner_len,
                                         ngx_http_usage_gate_admin_change,
                                         ctx);

    if (rc == NGX_DECLINED) {
        return ngx_http_usage_gate_admin_error(r, NGX_HTTP_NOT_FOUND,
                                 "the zone holds no such owner");
    }

    if (rc != NGX_OK) {
        return ngx_http_usage_gate_admin_error(r, NGX_HTTP_BAD_REQUEST,
                                 ctx->detail ? ctx->detail
                                             : "the change was refused");
    }

    if (ctx->req.action != UG_ADMIN_GET) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "usage_gate_admin: owner \"%*s\" changed: month "
                      "used is now %uL", ctx->req.owner_len, ctx->req.owner,
                      ctx->counter.month_used);

        /* the zone's store follows, fire and forget */
        if (ctx->zone->store) {
            ctx->zone->store->admin_write(ctx->zone, &ctx->req,
                                          &ctx->counter, r->connection->log);
        }
    }

    body = ngx_pnalloc(r->pool, UG_ADMIN_RENDER_MAX);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ug_admin_render((char *) body, UG_ADMIN_RENDER_MAX, ctx->req.owner,
                          ctx->req.owner_len, &ctx->counter, ctx->now_us);
    if (len == 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_usage_gate_output(r, NGX_HTTP_OK,
                                      &ngx_http_usage_gate_admin_json, body,
                                      len);
}


/* Under the zone lock: short, no allocation, no logging. */
static ngx_int_t
ngx_http_usage_gate_admin_change(ug_counter_t *counter, void *data)
{
    ngx_http_usage_gate_admin_ctx_t *ctx = data;

    if (ug_admin_apply_counter(&ctx->req, counter, ctx->now_us,
                               &ctx->detail)
        != 0)
    {
        return NGX_ERROR;
    }

    ctx->counter = *counter;

    /* the owner's state in the zone's store follows */
    if (ctx->zone->store) {
        ctx->zone->store->admin_changed(ctx->zone, counter, &ctx->req);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_usage_gate_admin_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *detail)
{
    u_char  *body;
    size_t   size, len;

    size = ug_fmt_detail_size(ngx_strlen(detail));

    body = ngx_pnalloc(r->pool, size);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ug_fmt_detail((char *) body, size, detail, ngx_strlen(detail));
    if (len == 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_usage_gate_output(r, status,
                                      &ngx_http_usage_gate_admin_json, body,
                                      len);
}
