/*
 * Key sets fetched from an issuer's JWKS URL (usage_gate_jwt_keys
 * https://...): one small shared memory zone per URL holds the last good
 * JWKS text, so that every worker verifies with the same set, a fetch
 * happens once per interval for all workers, and the set outlives a
 * reload and an unreachable issuer.
 */

#ifndef NGX_HTTP_USAGE_GATE_JWKS_H
#define NGX_HTTP_USAGE_GATE_JWKS_H

#include <ngx_config.h>
#include <ngx_core.h>

#include "ug_jwk.h"


/* The largest JWKS kept; Clerk's is a few KiB, 64 RSA-4096 keys ~60 KiB */
#define NGX_HTTP_USAGE_GATE_JWKS_MAX        (256 * 1024)

/* Default usage_gate_jwt_keys URL refresh= */
#define NGX_HTTP_USAGE_GATE_JWKS_REFRESH    600

/* One fetch may take this long, connecting included (ms). */
#define NGX_HTTP_USAGE_GATE_JWKS_CONNECT    5000
#define NGX_HTTP_USAGE_GATE_JWKS_TIMEOUT    10000


typedef struct ngx_http_usage_gate_jwks_s  ngx_http_usage_gate_jwks_t;


/* 1 if the value of usage_gate_jwt_keys is a URL rather than a file. */
ngx_int_t ngx_http_usage_gate_jwks_is_url(ngx_str_t *value);

/*
 * The key source of one URL, made on its first mention and shared by
 * every location that names it; refresh in seconds.  NULL with the
 * reason logged.
 */
ngx_http_usage_gate_jwks_t *ngx_http_usage_gate_jwks_add(ngx_conf_t *cf,
    ngx_str_t *url, time_t refresh);

/*
 * The worker's current key set of a source, parsed again when another
 * worker stored a newer one; NULL while none was ever fetched (the reason
 * is logged once per worker).  *generation tells sets apart, e.g. for
 * the cache of verified tokens.
 */
ug_jwt_keys_t *ngx_http_usage_gate_jwks_keys(ngx_http_usage_gate_jwks_t *jwks,
    ngx_log_t *log, uint64_t *generation);

/*
 * A token named a kid that no key has: the issuer may have rotated its
 * keys, so fetch now, unless this kid asked lately or the source has used
 * its few early fetches of this minute.
 */
void ngx_http_usage_gate_jwks_unknown_kid(ngx_http_usage_gate_jwks_t *jwks,
    const char *kid, size_t len, ngx_log_t *log);

/* The URL, for messages. */
ngx_str_t *ngx_http_usage_gate_jwks_url(ngx_http_usage_gate_jwks_t *jwks);

/* Timers of every source in this worker, and their teardown. */
ngx_int_t ngx_http_usage_gate_jwks_init_process(ngx_cycle_t *cycle);
void ngx_http_usage_gate_jwks_exit_process(ngx_cycle_t *cycle);

#endif /* NGX_HTTP_USAGE_GATE_JWKS_H */
