/*
 * Small nginx helpers that every glue file may use: the clock in
 * microseconds, whole responses from memory, header list entries, and
 * small files named in directives.  This file depends on nothing else of
 * the module's.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_util.h"


uint64_t
ngx_http_usage_gate_now_us(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000000 + (uint64_t) tp->msec * 1000;
}


/*
 * Sends a whole response from memory; returns what a content handler
 * returns.
 */
ngx_int_t
ngx_http_usage_gate_output(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, u_char *body, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_length_n = len;

    if (len == 0 || r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body;
    b->last = body + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* headers more than one file adds */
ngx_http_usage_gate_hname_t  ngx_http_usage_gate_h_www_authenticate =
    ngx_http_usage_gate_hname("WWW-Authenticate", "www-authenticate");
ngx_http_usage_gate_hname_t  ngx_http_usage_gate_h_allow =
    ngx_http_usage_gate_hname("Allow", "allow");


ngx_int_t
ngx_http_usage_gate_push_header(ngx_list_t *list,
    ngx_http_usage_gate_hname_t *name, u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(list);
    if (h == NULL) {
        return NGX_ERROR;
    }

    if (name->hash == 0) {
        /* a hash of 0 marks a deleted header for nginx's filters */
        name->hash = ngx_hash_key(name->lowcase, name->key.len);
        name->hash += (name->hash == 0);
    }

    h->hash = name->hash;
    h->key = name->key;
    h->lowcase_key = name->lowcase;
    h->value.data = value;
    h->value.len = len;

    return NGX_OK;
}


ngx_table_elt_t *
ngx_http_usage_gate_find_header(ngx_list_t *headers, const char *name,
    size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &headers->part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


/*
 * Reads a small file named in a directive (keys, secrets, tokens) at
 * configuration time, relative to the configuration prefix, into the
 * configuration pool with a NUL after it.  Errors name the directive.
 */
char *
ngx_http_usage_gate_read_file(ngx_conf_t *cf, ngx_str_t *name, size_t max,
    ngx_str_t *text)
{
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_str_t        path, *directive;
    ngx_file_info_t  fi;

    directive = &((ngx_str_t *) cf->args->elts)[0];
    path = *name;

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "%V: cannot open \"%V\"", directive, &path);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || !ngx_is_file(&fi)
        || (size_t) ngx_file_size(&fi) > max)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%V: \"%V\" is not a regular file of at most "
                           "%uz bytes", directive, &path, max);
        (void) ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    text->data = ngx_pnalloc(cf->pool, ngx_file_size(&fi) + 1);
    if (text->data == NULL) {
        (void) ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_fd(fd, text->data, ngx_file_size(&fi));

    (void) ngx_close_file(fd);

    if (n != (ssize_t) ngx_file_size(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "%V: cannot read \"%V\"", directive, &path);
        return NGX_CONF_ERROR;
    }

    text->len = n;
    text->data[n] = '\0';

    return NGX_CONF_OK;
}
