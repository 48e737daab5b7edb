/*
 * Identity sources as a table: usage_gate_identity names rows of
 * ngx_http_usage_gate_identity_sources[], the location keeps pointers to
 * them in the order given, and the request path calls each row's resolver
 * until one answers.  A new source is one row and one resolver.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_identity.h"


typedef struct {
    ngx_str_t                     name;
    ngx_str_t                     lowcase;
    ngx_table_elt_t              *first;
    ngx_uint_t                    count;
} ngx_http_usage_gate_hdr_t;


static ngx_int_t ngx_http_usage_gate_from_headers(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ngx_http_usage_gate_ctx_t *ctx,
    ngx_str_t *plan, ngx_str_t *detail);
static ngx_int_t ngx_http_usage_gate_from_anon(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ngx_http_usage_gate_ctx_t *ctx,
    ngx_str_t *plan, ngx_str_t *detail);
static char *ngx_http_usage_gate_jwt_source_check(ngx_conf_t *cf,
    ngx_http_usage_gate_loc_conf_t *lcf);
static ngx_http_usage_gate_identity_source_t *
    ngx_http_usage_gate_identity_find(ngx_str_t *name);
static u_char *ngx_http_usage_gate_identity_names(u_char *p, u_char *last);


/* the jwt resolver is in ngx_http_usage_gate_jwt.c */
static ngx_http_usage_gate_identity_source_t
    ngx_http_usage_gate_identity_sources[] =
{
    { ngx_string("jwt"), ngx_http_usage_gate_from_jwt,
      ngx_http_usage_gate_jwt_source_check },

    { ngx_string("header"), ngx_http_usage_gate_from_headers, NULL },

    { ngx_string("anon"), ngx_http_usage_gate_from_anon, NULL },

    { ngx_null_string, NULL, NULL }
};


/*
 * Without usage_gate_identity: the seed's order without the jwt source,
 * headers from a trusted proxy, else an anonymous owner.
 */
static ngx_str_t  ngx_http_usage_gate_identity_default[] = {
    ngx_string("header"),
    ngx_string("anon"),
};


/* usage_gate_identity source ...; (each source once, in any order) */
char *
ngx_http_usage_gate_identity(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_usage_gate_loc_conf_t *lcf = conf;

    u_char                                  names[128], *last;
    ngx_str_t                              *value;
    ngx_uint_t                              i, k;
    ngx_http_usage_gate_identity_source_t  *src, **source;

    if (lcf->identity != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    lcf->identity = ngx_array_create(cf->pool, cf->args->nelts - 1,
                          sizeof(ngx_http_usage_gate_identity_source_t *));
    if (lcf->identity == NULL) {
        return NGX_CONF_ERROR;
    }

    lcf->identity_file = cf->conf_file->file.name.data;
    lcf->identity_line = cf->conf_file->line;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        src = ngx_http_usage_gate_identity_find(&value[i]);

        if (src == NULL) {
            last = ngx_http_usage_gate_identity_names(names,
                                                      names + sizeof(names));
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate_identity: unknown source \"%V\" "
                               "(use %*s)", &value[i], last - names, names);
            return NGX_CONF_ERROR;
        }

        source = lcf->identity->elts;

        for (k = 0; k < lcf->identity->nelts; k++) {
            if (source[k] == src) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_identity: \"%V\" is listed "
                                   "twice", &value[i]);
                return NGX_CONF_ERROR;
            }
        }

        source = ngx_array_push(lcf->identity);
        if (source == NULL) {
            return NGX_CONF_ERROR;
        }

        *source = src;
    }

    return NGX_CONF_OK;
}


/* usage_gate_trusted_proxies address|CIDR ... | off */
char *
ngx_http_usage_gate_trusted_proxies(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_usage_gate_loc_conf_t *lcf = conf;

    ngx_int_t    rc;
    ngx_str_t   *value;
    ngx_uint_t   i;
    ngx_cidr_t  *cidr;

    if (lcf->trusted != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        lcf->trusted = NULL;
        return NGX_CONF_OK;
    }

    lcf->trusted = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                    sizeof(ngx_cidr_t));
    if (lcf->trusted == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        cidr = ngx_array_push(lcf->trusted);
        if (cidr == NULL) {
            return NGX_CONF_ERROR;
        }

        rc = ngx_ptocidr(&value[i], cidr);

        if (rc == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate_trusted_proxies: invalid address "
                               "or network \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_DONE) {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "usage_gate_trusted_proxies: low address "
                               "bits of %V are meaningless", &value[i]);
        }
    }

    return NGX_CONF_OK;
}


char *
ngx_http_usage_gate_identity_merge(ngx_conf_t *cf,
    ngx_http_usage_gate_loc_conf_t *conf,
    ngx_http_usage_gate_loc_conf_t *prev)
{
    ngx_uint_t                              k, n;
    ngx_http_usage_gate_identity_source_t  **source;

    if (conf->identity == NGX_CONF_UNSET_PTR) {

        if (prev->identity == NGX_CONF_UNSET_PTR) {
            /* made once, on the outermost level, and shared below it */
            n = sizeof(ngx_http_usage_gate_identity_default)
                / sizeof(ngx_str_t);

            prev->identity = ngx_array_create(cf->pool, n,
                             sizeof(ngx_http_usage_gate_identity_source_t *));
            if (prev->identity == NULL) {
                return NGX_CONF_ERROR;
            }

            source = ngx_array_push_n(prev->identity, n);
            if (source == NULL) {
                return NGX_CONF_ERROR;
            }

            for (k = 0; k < n; k++) {
                source[k] = ngx_http_usage_gate_identity_find(
                                &ngx_http_usage_gate_identity_default[k]);
            }
        }

        conf->identity = prev->identity;
        conf->identity_file = prev->identity_file;
        conf->identity_line = prev->identity_line;
    }

    ngx_conf_merge_ptr_value(conf->trusted, prev->trusted, NULL);

    /* a location without a gate never resolves an identity */
    if (conf->shm_zone == NULL) {
        return NGX_CONF_OK;
    }

    source = conf->identity->elts;

    for (k = 0; k < conf->identity->nelts; k++) {
        if (source[k]->check
            && source[k]->check(cf, conf) != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_usage_gate_identify(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ngx_http_usage_gate_ctx_t *ctx,
    ngx_str_t *plan, ngx_str_t *detail)
{
    ngx_int_t                               rc;
    ngx_uint_t                              i;
    ngx_http_usage_gate_identity_source_t  **source;

    source = lcf->identity->elts;

    for (i = 0; i < lcf->identity->nelts; i++) {

        rc = source[i]->resolve(r, lcf, ctx, plan, detail);

        /* a source that finds its credential but refuses it answers for
         * the request: falling back to the next source is how a bad token
         * or a forged header would get a plan in */
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    ngx_str_set(detail, "Not authenticated: no identity source matched "
                        "this request");

    return NGX_HTTP_UNAUTHORIZED;
}


/* header: X-User-Id, X-Org-Id and X-Plan, from a trusted proxy only */
static ngx_int_t
ngx_http_usage_gate_from_headers(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ngx_http_usage_gate_ctx_t *ctx,
    ngx_str_t *plan, ngx_str_t *detail)
{
    int                         id;
    u_char                     *p;
    size_t                      len;
    const char                 *why;
    ngx_uint_t                  i, k;
    ngx_list_part_t            *part;
    ngx_table_elt_t            *h;
    ngx_http_usage_gate_hdr_t   hdr[3];

    if (lcf->trusted == NULL
        || ngx_cidr_match(r->connection->sockaddr, lcf->trusted) != NGX_OK)
    {
        /* anyone may send these headers: only a trusted proxy's word
         * counts, and the rest are dropped on the way upstream */
        return NGX_DECLINED;
    }

    ngx_str_set(&hdr[0].name, "X-User-Id");
    ngx_str_set(&hdr[1].name, "X-Org-Id");
    ngx_str_set(&hdr[2].name, "X-Plan");

    /* compared with lowcase_key: every request header has one (the
     * proxy module looks headers up by it), and a memcmp costs a tenth
     * of a case-folding loop */
    ngx_str_set(&hdr[0].lowcase, "x-user-id");
    ngx_str_set(&hdr[1].lowcase, "x-org-id");
    ngx_str_set(&hdr[2].lowcase, "x-plan");

    for (k = 0; k < 3; k++) {
        hdr[k].first = NULL;
        hdr[k].count = 0;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        for (k = 0; k < 3; k++) {
            if (h[i].key.len == hdr[k].lowcase.len
                && ngx_memcmp(h[i].lowcase_key, hdr[k].lowcase.data,
                              hdr[k].lowcase.len) == 0)
            {
                if (hdr[k].count++ == 0) {
                    hdr[k].first = &h[i];
                }
                break;
            }
        }
    }

    if (hdr[0].count == 0) {
        return NGX_DECLINED;
    }

    for (k = 0; k < 3; k++) {

        if (hdr[k].count == 0) {
            continue;
        }

        if (hdr[k].count > 1) {
            why = "was sent more than once";

        } else {
            /* the user and the org are asserted ids: "anon:" is the
             * anonymous owners' own key space */
            id = (k < 2) ? ug_id_check_asserted(hdr[k].first->value.data,
                                                hdr[k].first->value.len)
                         : ug_id_check(hdr[k].first->value.data,
                                       hdr[k].first->value.len);
            if (id == UG_ID_OK) {
                continue;
            }

            why = ug_id_strerror(id);
        }

        len = hdr[k].name.len + sizeof(" header ") - 1 + ngx_strlen(why);

        p = ngx_pnalloc(r->pool, len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        detail->data = p;
        detail->len = ngx_sprintf(p, "%V header %s", &hdr[k].name, why) - p;

        return NGX_HTTP_BAD_REQUEST;
    }

    ctx->user = hdr[0].first->value;

    if (hdr[1].count) {
        ctx->org = hdr[1].first->value;
    }

    if (hdr[2].count) {
        *plan = hdr[2].first->value;
    }

    return NGX_OK;
}


/* anon: an owner made from the client address; it always answers */
static ngx_int_t
ngx_http_usage_gate_from_anon(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ngx_http_usage_gate_ctx_t *ctx,
    ngx_str_t *plan, ngx_str_t *detail)
{
    u_char                           *salt;
    size_t                            salt_len;
    ngx_http_usage_gate_zone_t       *zone;
    ngx_http_usage_gate_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_usage_gate_module);
    zone = lcf->shm_zone->data;

    if (zone->anon == NULL) {
        if (mcf->salt.len) {
            salt = mcf->salt.data;
            salt_len = mcf->salt.len;

        } else {
            salt = zone->sh->salt;
            salt_len = NGX_HTTP_USAGE_GATE_SALT_LEN;
        }

        zone->anon = ug_anon_new(salt, salt_len);
    }

    if (zone->anon == NULL
        || ug_anon_owner_cached(zone->anon, r->connection->addr_text.data,
                                r->connection->addr_text.len, ctx->anon)
           != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "usage_gate: HMAC-SHA256 failed for an anonymous "
                      "owner; check the OpenSSL installation");
        return NGX_ERROR;
    }

    ctx->user.data = ctx->anon;
    ctx->user.len = UG_ANON_LEN;

    return NGX_OK;
}


/* jwt: a gate that tries tokens must have keys to verify them with */
static char *
ngx_http_usage_gate_jwt_source_check(ngx_conf_t *cf,
    ngx_http_usage_gate_loc_conf_t *lcf)
{
    if (lcf->jwt != NULL && ngx_http_usage_gate_jwt_has_keys(lcf->jwt)) {
        return NGX_CONF_OK;
    }

    ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                  "usage_gate_identity: the jwt source in %s:%ui needs "
                  "usage_gate_jwt_keys or usage_gate_jwt_secret_file where "
                  "a gate uses it", lcf->identity_file, lcf->identity_line);

    return NGX_CONF_ERROR;
}


static ngx_http_usage_gate_identity_source_t *
ngx_http_usage_gate_identity_find(ngx_str_t *name)
{
    ngx_http_usage_gate_identity_source_t  *src;

    for (src = ngx_http_usage_gate_identity_sources; src->name.len; src++) {
        if (src->name.len == name->len
            && ngx_strncmp(src->name.data, name->data, name->len) == 0)
        {
            return src;
        }
    }

    return NULL;
}


/* "jwt, header or anon": the table's names, for an error message */
static u_char *
ngx_http_usage_gate_identity_names(u_char *p, u_char *last)
{
    ngx_http_usage_gate_identity_source_t  *src;

    for (src = ngx_http_usage_gate_identity_sources; src->name.len; src++) {

        if (src != ngx_http_usage_gate_identity_sources) {
            p = ngx_slprintf(p, last, "%s",
                             src[1].name.len ? ", " : " or ");
        }

        p = ngx_slprintf(p, last, "%V", &src->name);
    }

    return p;
}
