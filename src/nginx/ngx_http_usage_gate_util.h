/*
 * Small nginx helpers shared by the glue files; they depend on nothing
 * else of the module's.
 */

#ifndef NGX_HTTP_USAGE_GATE_UTIL_H
#define NGX_HTTP_USAGE_GATE_UTIL_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* nginx's cached time, in microseconds since the epoch */
uint64_t ngx_http_usage_gate_now_us(void);

/* Sends a whole response from memory; returns what a content handler
 * returns. */
ngx_int_t ngx_http_usage_gate_output(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, u_char *body, size_t len);

/*
 * A header name the module adds: its lower-cased form is given, its hash
 * worked out on first use, so that adding it is a list push and a few
 * stores.  At most 31 bytes.
 */
typedef struct {
    ngx_str_t                     key;
    ngx_uint_t                    hash;      /* 0: not yet worked out */
    u_char                        lowcase[32];
} ngx_http_usage_gate_hname_t;

#define ngx_http_usage_gate_hname(name, low)  { ngx_string(name), 0, low }

/* Appends "name: value" to a header list. */
ngx_int_t ngx_http_usage_gate_push_header(ngx_list_t *list,
    ngx_http_usage_gate_hname_t *name, u_char *value, size_t len);

extern ngx_http_usage_gate_hname_t  ngx_http_usage_gate_h_www_authenticate;
extern ngx_http_usage_gate_hname_t  ngx_http_usage_gate_h_allow;

/* The first header of a list with this name (case-insensitive), or NULL. */
ngx_table_elt_t *ngx_http_usage_gate_find_header(ngx_list_t *headers,
    const char *name, size_t len);

/* Reads a file named in the directive being parsed (at most max bytes,
 * relative to the prefix) into the configuration pool, NUL-terminated. */
char *ngx_http_usage_gate_read_file(ngx_conf_t *cf, ngx_str_t *name,
    size_t max, ngx_str_t *text);

#endif /* NGX_HTTP_USAGE_GATE_UTIL_H */
