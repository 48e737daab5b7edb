/*
 * The jwt identity source: bearer tokens verified by src/ug_jwt.c before
 * any claim in them is believed, with a per-worker cache of verified
 * tokens so that a repeated token costs a hash instead of a signature.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_module.h"
#include "ug_jwt_cache.h"


static ngx_http_usage_gate_jwt_conf_t *ngx_http_usage_gate_jwt_conf(
    ngx_conf_t *cf, ngx_http_usage_gate_loc_conf_t *lcf);
static void ngx_http_usage_gate_jwt_free_keys(void *data);
static char *ngx_http_usage_gate_jwt_strings(ngx_conf_t *cf,
    ngx_array_t **slot);


/*
 * One cache per worker process, made on first use after fork and shared
 * by every location: entries are scoped by the location's jwt
 * configuration, so a token accepted under one policy is no hit under
 * another.
 */
static ug_jwt_cache_t  *ngx_http_usage_gate_jwt_cache;
static ngx_uint_t       ngx_http_usage_gate_jwt_cache_failed;


/* a JWKS or a PEM file; Clerk's JWKS is a few KiB */
#define NGX_HTTP_USAGE_GATE_KEYS_MAX  (1024 * 1024)


/* usage_gate_jwt_keys FILE (a JWKS or PEM public keys) */
char *
ngx_http_usage_gate_jwt_keys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char                            *rv;
    char                             err[256];
    ngx_str_t                       *value, text;
    ngx_http_usage_gate_jwt_conf_t  *jcf;

    value = cf->args->elts;

    jcf = ngx_http_usage_gate_jwt_conf(cf, conf);
    if (jcf == NULL) {
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_usage_gate_read_file(cf, &value[1],
                                       NGX_HTTP_USAGE_GATE_KEYS_MAX, &text);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (ug_jwt_keys_add_text(jcf->keys, (char *) text.data, text.len, err,
                             sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_jwt_keys: \"%V\": %s", &value[1],
                           err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* usage_gate_jwt_secret_file FILE (HS256/384/512) */
char *
ngx_http_usage_gate_jwt_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char                            *rv;
    char                             err[256];
    ngx_str_t                       *value, text;
    ngx_http_usage_gate_jwt_conf_t  *jcf;

    value = cf->args->elts;

    jcf = ngx_http_usage_gate_jwt_conf(cf, conf);
    if (jcf == NULL) {
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_usage_gate_read_file(cf, &value[1],
                                       NGX_HTTP_USAGE_GATE_KEYS_MAX, &text);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    /* the file's bytes are the key, less the newline an editor adds */
    if (text.len && text.data[text.len - 1] == '\n') {
        text.len--;
    }

    if (ug_jwt_keys_add_secret(jcf->keys, text.data, text.len, err,
                               sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_jwt_secret_file: \"%V\": %s",
                           &value[1], err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* usage_gate_jwt_algorithms RS256 ES256 ... */
char *
ngx_http_usage_gate_jwt_algorithms(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    int                              alg;
    ngx_str_t                       *value;
    ngx_uint_t                       i;
    ngx_http_usage_gate_jwt_conf_t  *jcf;

    jcf = ngx_http_usage_gate_jwt_conf(cf, conf);
    if (jcf == NULL) {
        return NGX_CONF_ERROR;
    }

    if (jcf->algs_set) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        alg = ug_jwt_alg_from_name((char *) value[i].data, value[i].len);

        if (alg < 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate_jwt_algorithms: unknown "
                               "algorithm \"%V\" (HS256, HS384, HS512, "
                               "RS256, RS384, RS512, PS256, PS384, PS512, "
                               "ES256, ES384 or EdDSA)", &value[i]);
            return NGX_CONF_ERROR;
        }

        jcf->policy.algs |= (unsigned) alg;
    }

    jcf->algs_set = 1;

    return NGX_CONF_OK;
}


/*
 * usage_gate_jwt_issuer, _audience, _plan_claim, _org_claim: lists of
 * strings, each kept in the jwt settings at cmd->offset.
 */
char *
ngx_http_usage_gate_jwt_list(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_usage_gate_jwt_conf_t  *jcf;

    jcf = ngx_http_usage_gate_jwt_conf(cf, conf);
    if (jcf == NULL) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_usage_gate_jwt_strings(cf,
                          (ngx_array_t **) ((char *) jcf + cmd->offset));
}


char *
ngx_http_usage_gate_jwt_leeway(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    time_t                           sec;
    ngx_str_t                       *value;
    ngx_http_usage_gate_jwt_conf_t  *jcf;

    jcf = ngx_http_usage_gate_jwt_conf(cf, conf);
    if (jcf == NULL) {
        return NGX_CONF_ERROR;
    }

    if (jcf->leeway_set) {
        return "is duplicate";
    }

    value = cf->args->elts;

    sec = ngx_parse_time(&value[1], 1);

    if (sec == (time_t) NGX_ERROR || sec > 86400) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_jwt_leeway: invalid time \"%V\" "
                           "(e.g. 60s; at most 1d)", &value[1]);
        return NGX_CONF_ERROR;
    }

    jcf->policy.leeway = sec;
    jcf->leeway_set = 1;

    return NGX_CONF_OK;
}


/*
 * The jwt settings of this level, made on its first usage_gate_jwt_*
 * directive; what it leaves unset is inherited directive by directive.
 */
static ngx_http_usage_gate_jwt_conf_t *
ngx_http_usage_gate_jwt_conf(ngx_conf_t *cf,
    ngx_http_usage_gate_loc_conf_t *lcf)
{
    ngx_pool_cleanup_t              *cln;
    ngx_http_usage_gate_jwt_conf_t  *jcf;

    if (lcf->jwt != NGX_CONF_UNSET_PTR) {
        return lcf->jwt;
    }

    jcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_usage_gate_jwt_conf_t));
    if (jcf == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    jcf->keys = ug_jwt_keys_new();
    if (jcf->keys == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_usage_gate_jwt_free_keys;
    cln->data = jcf->keys;

    jcf->policy.leeway = UG_JWT_LEEWAY;

    lcf->jwt = jcf;

    return jcf;
}


static void
ngx_http_usage_gate_jwt_free_keys(void *data)
{
    ug_jwt_keys_free(data);
}


static char *
ngx_http_usage_gate_jwt_strings(ngx_conf_t *cf, ngx_array_t **slot)
{
    u_char      **s;
    ngx_str_t    *value;
    ngx_uint_t    i;

    if (*slot != NULL) {
        return "is duplicate";
    }

    *slot = ngx_array_create(cf->pool, cf->args->nelts - 1, sizeof(char *));
    if (*slot == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        if (value[i].len == 0 || value[i].len > 512) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": a value is 1 to 512 bytes",
                               &value[0]);
            return NGX_CONF_ERROR;
        }

        s = ngx_array_push(*slot);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        /* configuration strings are NUL-terminated by the parser */
        *s = value[i].data;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_usage_gate_jwt_merge(ngx_conf_t *cf,
    ngx_http_usage_gate_jwt_conf_t *conf, ngx_http_usage_gate_jwt_conf_t *prev)
{
    static const char  *plan_claims[] = { "public_metadata.plan",
                                          "meta.plan" };
    static const char  *org_claims[] = { "org_id", "org" };

    if (conf->finished) {
        return NGX_CONF_OK;
    }

    conf->finished = 1;

    if (prev) {
        if (ug_jwt_keys_count(conf->keys) == 0) {
            conf->keys = prev->keys;
        }

        if (!conf->algs_set && prev->algs_set) {
            conf->algs_set = 1;
            conf->policy.algs = prev->policy.algs;
        }

        if (!conf->leeway_set) {
            conf->policy.leeway = prev->policy.leeway;
        }

        if (conf->issuers == NULL) {
            conf->issuers = prev->issuers;
        }

        if (conf->audiences == NULL) {
            conf->audiences = prev->audiences;
        }

        if (conf->plan_claims == NULL) {
            conf->plan_claims = prev->plan_claims;
        }

        if (conf->org_claims == NULL) {
            conf->org_claims = prev->org_claims;
        }
    }

    /* no key yet is fine at this level: a location below may add one,
     * and a gate that uses the jwt source without any is refused where
     * usage_gate_identity is checked */

    if (!conf->algs_set) {
        conf->policy.algs = ug_jwt_keys_algs(conf->keys);
    }

    if (conf->issuers) {
        conf->policy.issuers = conf->issuers->elts;
        conf->policy.n_issuers = conf->issuers->nelts;
    }

    if (conf->audiences) {
        conf->policy.audiences = conf->audiences->elts;
        conf->policy.n_audiences = conf->audiences->nelts;
    }

    if (conf->plan_claims) {
        conf->policy.plan_claims = conf->plan_claims->elts;
        conf->policy.n_plan_claims = conf->plan_claims->nelts;

    } else {
        conf->policy.plan_claims = plan_claims;
        conf->policy.n_plan_claims = 2;
    }

    if (conf->org_claims) {
        conf->policy.org_claims = conf->org_claims->elts;
        conf->policy.n_org_claims = conf->org_claims->nelts;

    } else {
        conf->policy.org_claims = org_claims;
        conf->policy.n_org_claims = 2;
    }

    return NGX_CONF_OK;
}


void
ngx_http_usage_gate_jwt_exit_process(void)
{
    if (ngx_http_usage_gate_jwt_cache) {
        ug_jwt_cache_free(ngx_http_usage_gate_jwt_cache);
        ngx_http_usage_gate_jwt_cache = NULL;
    }
}


/*
 * Returns NGX_OK with the identity set, NGX_DECLINED when there is no
 * bearer token and none is required, NGX_HTTP_UNAUTHORIZED with *detail,
 * or NGX_ERROR.
 */
ngx_int_t
ngx_http_usage_gate_from_jwt(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ngx_http_usage_gate_ctx_t *ctx,
    ngx_str_t *plan, ngx_str_t *detail)
{
    u_char                           *token, *last;
    size_t                            len;
    int64_t                           now;
    ug_jwt_rc_t                       rc;
    const char                       *why;
    ug_jwt_claims_t                  *claims;
    ngx_table_elt_t                  *auth;
    ngx_http_usage_gate_jwt_conf_t   *jcf;
    ngx_http_usage_gate_main_conf_t  *mcf;

    jcf = lcf->jwt;
    auth = r->headers_in.authorization;

    if (auth == NULL
        || auth->value.len < sizeof("Bearer ") - 1
        || ngx_strncasecmp(auth->value.data, (u_char *) "Bearer ",
                           sizeof("Bearer ") - 1) != 0)
    {
        if (lcf->jwt_required) {
            ctx->jwt_error = "missing";
            ngx_str_set(detail, "a bearer token is required");
            return NGX_HTTP_UNAUTHORIZED;
        }

        return NGX_DECLINED;
    }

    token = auth->value.data + sizeof("Bearer ") - 1;
    last = auth->value.data + auth->value.len;

    while (token < last && *token == ' ') {
        token++;
    }

    len = last - token;

    claims = ngx_palloc(r->pool, sizeof(ug_jwt_claims_t));
    if (claims == NULL) {
        return NGX_ERROR;
    }

    ctx->jwt = claims;

    now = (int64_t) ngx_time();

    mcf = ngx_http_get_module_main_conf(r, ngx_http_usage_gate_module);

    if (ngx_http_usage_gate_jwt_cache == NULL && mcf->jwt_cache_size > 0
        && !ngx_http_usage_gate_jwt_cache_failed)
    {
        ngx_http_usage_gate_jwt_cache = ug_jwt_cache_new(mcf->jwt_cache_size);

        if (ngx_http_usage_gate_jwt_cache == NULL) {
            ngx_http_usage_gate_jwt_cache_failed = 1;
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "usage_gate: no memory for the jwt cache of %ui "
                          "entries: tokens are verified every time",
                          mcf->jwt_cache_size);
        }
    }

    if (ngx_http_usage_gate_jwt_cache
        && ug_jwt_cache_get(ngx_http_usage_gate_jwt_cache,
                            (uint64_t) (uintptr_t) jcf, (char *) token, len,
                            now, claims))
    {
        goto verified;
    }

    why = NULL;

    rc = ug_jwt_verify(jcf->keys, &jcf->policy, (char *) token, len, now,
                       claims, &why);

    if (rc != UG_JWT_OK) {
        ctx->jwt_error = ug_jwt_rc_name(rc);

        detail->data = (u_char *) (why ? why : "invalid token");
        detail->len = ngx_strlen(detail->data);

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "usage_gate: bearer token rejected: %s (%s)",
                      ctx->jwt_error, detail->data);

        return NGX_HTTP_UNAUTHORIZED;
    }

    if (ngx_http_usage_gate_jwt_cache) {
        ug_jwt_cache_put(ngx_http_usage_gate_jwt_cache,
                         (uint64_t) (uintptr_t) jcf, (char *) token, len, now,
                         claims);
    }

verified:

    /* the claims live in the request's pool: point into them */
    ctx->user.data = (u_char *) claims->sub;
    ctx->user.len = claims->sub_len;
    ctx->org.data = (u_char *) claims->org;
    ctx->org.len = claims->org_len;
    plan->data = (u_char *) claims->plan;
    plan->len = claims->plan_len;

    return NGX_OK;
}
