/*
 * The jwt identity source: bearer tokens verified by src/ug_jwt.c before
 * any claim in them is believed, with a per-worker cache of verified
 * tokens so that a repeated token costs a hash instead of a signature.
 * Keys come from files read at configuration time, or from an issuer's
 * JWKS URL (ngx_http_usage_gate_jwks.c).
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
static char *ngx_http_usage_gate_jwt_keys_url(ngx_conf_t *cf,
    ngx_http_usage_gate_jwt_conf_t *jcf, ngx_str_t *value, ngx_uint_t n);
static void ngx_http_usage_gate_jwt_plan(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ug_jwt_claims_t *claims,
    ngx_str_t *plan);


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

/* Plans from tokens that no usage_gate_plan names, each logged once per
 * worker: hashes of the lower-cased names, a fixed few */
#define NGX_HTTP_USAGE_GATE_JWT_UNKNOWN_PLANS  64

static uint32_t    ngx_http_usage_gate_jwt_unknown[
                       NGX_HTTP_USAGE_GATE_JWT_UNKNOWN_PLANS];
static ngx_uint_t  ngx_http_usage_gate_jwt_n_unknown;


/*
 * usage_gate_jwt_keys FILE (a JWKS or PEM public keys)
 * usage_gate_jwt_keys URL [refresh=TIME] (a JWKS, fetched by the workers)
 */
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

    if (ngx_http_usage_gate_jwks_is_url(&value[1])) {
        return ngx_http_usage_gate_jwt_keys_url(cf, jcf, value,
                                                cf->args->nelts);
    }

    if (cf->args->nelts > 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_jwt_keys: \"%V\" applies to a URL "
                           "(http:// or https://), not to a file",
                           &value[2]);
        return NGX_CONF_ERROR;
    }

    if (jcf->jwks) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_jwt_keys: keys from \"%V\" and from "
                           "a file cannot be combined at one level",
                           ngx_http_usage_gate_jwks_url(jcf->jwks));
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


static char *
ngx_http_usage_gate_jwt_keys_url(ngx_conf_t *cf,
    ngx_http_usage_gate_jwt_conf_t *jcf, ngx_str_t *value, ngx_uint_t n)
{
    time_t     refresh;
    ngx_str_t  s;

    if (jcf->jwks) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_jwt_keys: one URL per level; \"%V\" "
                           "is set already",
                           ngx_http_usage_gate_jwks_url(jcf->jwks));
        return NGX_CONF_ERROR;
    }

    if (ug_jwt_keys_count(jcf->keys) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_jwt_keys: keys from \"%V\" and from "
                           "a file or secret cannot be combined at one level",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    refresh = NGX_HTTP_USAGE_GATE_JWKS_REFRESH;

    if (n > 2) {
        if (value[2].len <= sizeof("refresh=") - 1
            || ngx_strncmp(value[2].data, "refresh=", sizeof("refresh=") - 1)
               != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate_jwt_keys: unknown parameter "
                               "\"%V\" (refresh=TIME)", &value[2]);
            return NGX_CONF_ERROR;
        }

        s.data = value[2].data + sizeof("refresh=") - 1;
        s.len = value[2].len - (sizeof("refresh=") - 1);

        refresh = ngx_parse_time(&s, 1);

        if (refresh == (time_t) NGX_ERROR || refresh < 1 || refresh > 86400) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate_jwt_keys: invalid refresh "
                               "\"%V\" (1s to 1d, e.g. refresh=10m)", &s);
            return NGX_CONF_ERROR;
        }
    }

    jcf->jwks = ngx_http_usage_gate_jwks_add(cf, &value[1], refresh);
    if (jcf->jwks == NULL) {
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

    if (jcf->jwks) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_jwt_secret_file: keys from \"%V\" "
                           "and a secret cannot be combined at one level",
                           ngx_http_usage_gate_jwks_url(jcf->jwks));
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
    ug_jwt_policy_t  defaults;

    if (conf->finished) {
        return NGX_CONF_OK;
    }

    conf->finished = 1;

    if (prev) {
        if (ug_jwt_keys_count(conf->keys) == 0 && conf->jwks == NULL) {
            conf->keys = prev->keys;
            conf->jwks = prev->jwks;
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

    /* the keys of a URL are known only once fetched: any asymmetric
     * algorithm, as a JWKS publishes public keys */

    if (!conf->algs_set) {
        conf->policy.algs = conf->jwks ? UG_JWT_ALG_ASYMMETRIC
                                       : ug_jwt_keys_algs(conf->keys);
    }

    ug_jwt_policy_init(&defaults, NULL);

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
        conf->policy.plan_claims = defaults.plan_claims;
        conf->policy.n_plan_claims = defaults.n_plan_claims;
    }

    if (conf->org_claims) {
        conf->policy.org_claims = conf->org_claims->elts;
        conf->policy.n_org_claims = conf->org_claims->nelts;

    } else {
        conf->policy.org_claims = defaults.org_claims;
        conf->policy.n_org_claims = defaults.n_org_claims;
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_usage_gate_jwt_has_keys(ngx_http_usage_gate_jwt_conf_t *jcf)
{
    return jcf->jwks != NULL || ug_jwt_keys_count(jcf->keys) != 0;
}


ngx_int_t
ngx_http_usage_gate_jwt_init_process(ngx_cycle_t *cycle)
{
    return ngx_http_usage_gate_jwks_init_process(cycle);
}


void
ngx_http_usage_gate_jwt_exit_process(void)
{
    ngx_http_usage_gate_jwks_exit_process((ngx_cycle_t *) ngx_cycle);

    if (ngx_http_usage_gate_jwt_cache) {
        ug_jwt_cache_free(ngx_http_usage_gate_jwt_cache);
        ngx_http_usage_gate_jwt_cache = NULL;
    }
}


/*
 * Returns NGX_OK with the identity set, NGX_DECLINED when there is no
 * bearer token and none is required, NGX_HTTP_UNAUTHORIZED with *detail,
 * NGX_HTTP_SERVICE_UNAVAILABLE when the keys of a URL were never fetched,
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
    uint64_t                          scope, generation;
    ug_jwt_rc_t                       rc;
    const char                       *why;
    ug_jwt_keys_t                    *keys;
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

    keys = jcf->keys;

    /* the scope of cached tokens: these settings, and for a URL the
     * generation of its key set, so that a key the issuer withdrew stops
     * verifying cached tokens too (pointers stay below 2^48) */
    scope = (uint64_t) (uintptr_t) jcf;

    if (jcf->jwks) {
        keys = ngx_http_usage_gate_jwks_keys(jcf->jwks, r->connection->log,
                                             &generation);
        if (keys == NULL) {
            ngx_memzero(claims, sizeof(ug_jwt_claims_t));
            ctx->jwt_error = "no_keys";
            ngx_str_set(detail, "the token issuer's keys could not be "
                                "fetched yet; try again shortly");
            return NGX_HTTP_SERVICE_UNAVAILABLE;
        }

        scope ^= generation << 48;
    }

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
        && ug_jwt_cache_get(ngx_http_usage_gate_jwt_cache, scope,
                            (char *) token, len, now, claims))
    {
        goto verified;
    }

    why = NULL;

    rc = ug_jwt_verify(keys, &jcf->policy, (char *) token, len, now, claims,
                       &why);

    if (rc != UG_JWT_OK) {
        ctx->jwt_error = ug_jwt_rc_name(rc);

        detail->data = (u_char *) (why ? why : "invalid token");
        detail->len = ngx_strlen(detail->data);

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "usage_gate: bearer token rejected: %s (%s)",
                      ctx->jwt_error, detail->data);

        /* a kid nobody knows may be the issuer's next key */
        if (rc == UG_JWT_UNKNOWN_KEY && jcf->jwks && claims->kid_len) {
            ngx_http_usage_gate_jwks_unknown_kid(jcf->jwks, claims->kid,
                                                 claims->kid_len,
                                                 r->connection->log);
        }

        return NGX_HTTP_UNAUTHORIZED;
    }

    if (ngx_http_usage_gate_jwt_cache) {
        ug_jwt_cache_put(ngx_http_usage_gate_jwt_cache, scope, (char *) token,
                         len, now, claims);
    }

verified:

    /* the claims live in the request's pool: point into them */
    ctx->user.data = (u_char *) claims->sub;
    ctx->user.len = claims->sub_len;
    ctx->org.data = (u_char *) claims->org;
    ctx->org.len = claims->org_len;

    ngx_http_usage_gate_jwt_plan(r, lcf, claims, plan);

    return NGX_OK;
}


/*
 * The plan of the gate's scope; one that no usage_gate_plan names falls
 * to the default plan in the handler, and is logged here once per worker
 * so that a misspelt or new billing plan does not go unnoticed.
 */
static void
ngx_http_usage_gate_jwt_plan(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ug_jwt_claims_t *claims,
    ngx_str_t *plan)
{
    u_char                            lower[UG_ID_MAX];
    uint32_t                          hash;
    ngx_uint_t                        i;
    ngx_http_usage_gate_main_conf_t  *mcf;

    if (lcf->scope == NGX_HTTP_USAGE_GATE_SCOPE_ORG) {
        plan->data = (u_char *) claims->plan_org;
        plan->len = claims->plan_org_len;

    } else {
        plan->data = (u_char *) claims->plan;
        plan->len = claims->plan_len;
    }

    if (plan->len == 0 || plan->len > UG_ID_MAX) {
        return;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_usage_gate_module);

    if (ug_plan_find(&mcf->plans, (char *) plan->data, plan->len) >= 0) {
        return;
    }

    ngx_strlow(lower, plan->data, plan->len);
    hash = ngx_crc32_short(lower, plan->len);

    for (i = 0; i < ngx_http_usage_gate_jwt_n_unknown; i++) {
        if (ngx_http_usage_gate_jwt_unknown[i] == hash) {
            return;
        }
    }

    if (ngx_http_usage_gate_jwt_n_unknown
        == NGX_HTTP_USAGE_GATE_JWT_UNKNOWN_PLANS)
    {
        return;
    }

    ngx_http_usage_gate_jwt_unknown[ngx_http_usage_gate_jwt_n_unknown++]
        = hash;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "usage_gate: token plan \"%V\" is not a configured plan; "
                  "such tokens get the default plan \"%s\" (add "
                  "usage_gate_plan %V ...; to give it limits)",
                  plan, mcf->plans.plans[mcf->default_plan].name, plan);
}
