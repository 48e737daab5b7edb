/*
 * Key sets fetched from an issuer's JWKS URL.
 *
 * Each URL has a shared memory zone with the last good JWKS text and its
 * generation.  Every worker ticks once a second: when the set is due
 * (refresh= after the last good fetch, sooner after a failure, at once
 * when a token names an unknown kid) the first worker to take the zone's
 * lease fetches it through the worker's libcurl multi, never blocking;
 * a set that parses is stored and its generation bumped, and each worker
 * parses the new text on its next request or tick.  A failed fetch
 * leaves the last good set in place.  nginx keeps a zone of the same
 * name and size across reloads, so the set survives them too.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_curl.h"
#include "ngx_http_usage_gate_jwks.h"
#include "ngx_http_usage_gate_module.h"


/* Workers look at the zone this often (ms). */
#define NGX_HTTP_USAGE_GATE_JWKS_TICK       1000

/* Longest wait between fetches after failures, in seconds. */
#define NGX_HTTP_USAGE_GATE_JWKS_BACKOFF    60

/* Unknown kids: the same kid fetches again only after KID_QUIET
 * seconds, and at most KID_FETCHES such fetches run per minute. */
#define NGX_HTTP_USAGE_GATE_JWKS_KIDS       8
#define NGX_HTTP_USAGE_GATE_JWKS_KID_QUIET  10
#define NGX_HTTP_USAGE_GATE_JWKS_KID_FETCHES  4

#define NGX_HTTP_USAGE_GATE_JWKS_ERROR      256


typedef struct {
    ngx_atomic_t                  generation;  /* 0: no set yet */
    time_t                        fetched;     /* last good fetch */
    time_t                        due;         /* next fetch, or 0: now */
    time_t                        lease;       /* a fetch runs until then */
    ngx_pid_t                     fetcher;
    ngx_uint_t                    failures;    /* in a row */
    ngx_uint_t                    fetches;     /* attempts since start */

    time_t                        kid_minute;  /* unknown-kid fetches */
    ngx_uint_t                    kid_fetches;
    uint32_t                      kid_hash[NGX_HTTP_USAGE_GATE_JWKS_KIDS];
    time_t                        kid_time[NGX_HTTP_USAGE_GATE_JWKS_KIDS];
    ngx_uint_t                    kid_next;

    u_char                        error[NGX_HTTP_USAGE_GATE_JWKS_ERROR];
    size_t                        len;
    u_char                        body[NGX_HTTP_USAGE_GATE_JWKS_MAX];
} ngx_http_usage_gate_jwks_sh_t;


struct ngx_http_usage_gate_jwks_s {
    ngx_str_t                     url;         /* NUL-terminated */
    time_t                        refresh;
    ngx_shm_zone_t               *shm_zone;
    ngx_slab_pool_t              *shpool;
    ngx_http_usage_gate_jwks_sh_t  *sh;

    /* this worker's */
    ug_jwt_keys_t                *keys;
    ngx_atomic_uint_t             generation;
    u_char                       *copy;        /* the text, out of the
                                                  lock, to parse */
    ngx_event_t                   tick;
    ngx_http_usage_gate_curl_req_t  *req;
    ngx_log_t                    *log;
    unsigned                      no_keys_logged:1;
};


static ngx_int_t ngx_http_usage_gate_jwks_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_usage_gate_jwks_tick(ngx_event_t *ev);
static void ngx_http_usage_gate_jwks_fetch(ngx_http_usage_gate_jwks_t *jwks,
    ngx_log_t *log);
static void ngx_http_usage_gate_jwks_done(void *data, ngx_int_t rc,
    long http_status, ngx_str_t *body, const char *error);
static void ngx_http_usage_gate_jwks_failed(ngx_http_usage_gate_jwks_t *jwks,
    u_char *error, size_t len);
static ngx_int_t ngx_http_usage_gate_jwks_load(
    ngx_http_usage_gate_jwks_t *jwks, ngx_log_t *log);


ngx_int_t
ngx_http_usage_gate_jwks_is_url(ngx_str_t *value)
{
    return (value->len > sizeof("http://") - 1
            && ngx_strncasecmp(value->data, (u_char *) "http://",
                               sizeof("http://") - 1) == 0)
           || (value->len > sizeof("https://") - 1
               && ngx_strncasecmp(value->data, (u_char *) "https://",
                                  sizeof("https://") - 1) == 0);
}


ngx_http_usage_gate_jwks_t *
ngx_http_usage_gate_jwks_add(ngx_conf_t *cf, ngx_str_t *url, time_t refresh)
{
    size_t                       size;
    ngx_str_t                    name;
    ngx_uint_t                   i;
    ngx_shm_zone_t              *shm_zone;
    ngx_http_usage_gate_jwks_t  *jwks;

    for (i = 0; i < url->len; i++) {
        if (url->data[i] <= 0x20 || url->data[i] == 0x7f) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate_jwt_keys: the URL \"%V\" has a "
                               "space or control character", url);
            return NULL;
        }
    }

    name.len = sizeof("usage_gate_jwks:") - 1 + url->len;
    name.data = ngx_pnalloc(cf->pool, name.len);
    if (name.data == NULL) {
        return NULL;
    }

    ngx_sprintf(name.data, "usage_gate_jwks:%V", url);

    /* the same size every time: nginx keeps the zone across a reload
     * only when name, size and tag are unchanged */
    size = ngx_align(sizeof(ngx_http_usage_gate_jwks_sh_t), ngx_pagesize)
           + 16 * ngx_pagesize;

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_usage_gate_module);
    if (shm_zone == NULL) {
        return NULL;
    }

    if (shm_zone->data) {
        /* another location named the same URL */
        jwks = shm_zone->data;

        if (jwks->refresh != refresh) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate_jwt_keys: \"%V\" is used with "
                               "refresh=%T elsewhere; give every use of a "
                               "URL the same refresh=", url, jwks->refresh);
            return NULL;
        }

        return jwks;
    }

    jwks = ngx_pcalloc(cf->pool, sizeof(ngx_http_usage_gate_jwks_t));
    if (jwks == NULL) {
        return NULL;
    }

    jwks->url.len = url->len;
    jwks->url.data = ngx_pnalloc(cf->pool, url->len + 1);
    if (jwks->url.data == NULL) {
        return NULL;
    }

    ngx_memcpy(jwks->url.data, url->data, url->len);
    jwks->url.data[url->len] = '\0';

    jwks->refresh = refresh;
    jwks->shm_zone = shm_zone;

    shm_zone->init = ngx_http_usage_gate_jwks_init_zone;
    shm_zone->data = jwks;

    return jwks;
}


static ngx_int_t
ngx_http_usage_gate_jwks_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_usage_gate_jwks_t  *ojwks = data;

    ngx_slab_pool_t             *shpool;
    ngx_http_usage_gate_jwks_t  *jwks;

    jwks = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    jwks->shpool = shpool;

    if (ojwks) {
        /* a reload: the last good set and its schedule carry over */
        jwks->sh = ojwks->sh;

        ngx_shmtx_lock(&shpool->mutex);

        if (jwks->sh->due > ngx_time() + jwks->refresh) {
            jwks->sh->due = ngx_time() + jwks->refresh;
        }

        ngx_shmtx_unlock(&shpool->mutex);

        return NGX_OK;
    }

    if (shm_zone->shm.exists) {
        jwks->sh = shpool->data;
        return NGX_OK;
    }

    jwks->sh = ngx_slab_calloc(shpool, sizeof(ngx_http_usage_gate_jwks_sh_t));
    if (jwks->sh == NULL) {
        return NGX_ERROR;
    }

    shpool->data = jwks->sh;

    return NGX_OK;
}


ngx_str_t *
ngx_http_usage_gate_jwks_url(ngx_http_usage_gate_jwks_t *jwks)
{
    return &jwks->url;
}


ngx_int_t
ngx_http_usage_gate_jwks_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                   i;
    ngx_list_part_t             *part;
    ngx_shm_zone_t              *shm_zone;
    ngx_http_usage_gate_jwks_t  *jwks;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    part = &cycle->shared_memory.part;
    shm_zone = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            shm_zone = part->elts;
            i = 0;
        }

        if (shm_zone[i].init != ngx_http_usage_gate_jwks_init_zone) {
            continue;
        }

        jwks = shm_zone[i].data;

        jwks->log = cycle->log;
        jwks->tick.handler = ngx_http_usage_gate_jwks_tick;
        jwks->tick.data = jwks;
        jwks->tick.log = cycle->log;

        /* a timer must not hold a worker back from a graceful exit */
        jwks->tick.cancelable = 1;

        ngx_add_timer(&jwks->tick, 1);
    }

    return NGX_OK;
}


void
ngx_http_usage_gate_jwks_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                   i;
    ngx_list_part_t             *part;
    ngx_shm_zone_t              *shm_zone;
    ngx_http_usage_gate_jwks_t  *jwks;

    part = &cycle->shared_memory.part;
    shm_zone = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            shm_zone = part->elts;
            i = 0;
        }

        if (shm_zone[i].init != ngx_http_usage_gate_jwks_init_zone) {
            continue;
        }

        jwks = shm_zone[i].data;

        if (jwks->tick.timer_set) {
            ngx_del_timer(&jwks->tick);
        }

        if (jwks->req) {
            ngx_http_usage_gate_curl_cancel(jwks->req);
            jwks->req = NULL;

            /* let another worker (or the next cycle's) fetch at once */
            if (jwks->sh) {
                ngx_shmtx_lock(&jwks->shpool->mutex);

                if (jwks->sh->fetcher == ngx_pid) {
                    jwks->sh->lease = 0;
                }

                ngx_shmtx_unlock(&jwks->shpool->mutex);
            }
        }

        if (jwks->keys) {
            ug_jwt_keys_free(jwks->keys);
            jwks->keys = NULL;
        }

        if (jwks->copy) {
            ngx_free(jwks->copy);
            jwks->copy = NULL;
        }
    }
}


static void
ngx_http_usage_gate_jwks_tick(ngx_event_t *ev)
{
    time_t                           now;
    ngx_uint_t                       fetch;
    ngx_http_usage_gate_jwks_t      *jwks;
    ngx_http_usage_gate_jwks_sh_t   *sh;

    jwks = ev->data;
    sh = jwks->sh;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    if (jwks->generation != sh->generation) {
        (void) ngx_http_usage_gate_jwks_load(jwks, ev->log);
    }

    now = ngx_time();
    fetch = 0;

    if (jwks->req == NULL) {
        ngx_shmtx_lock(&jwks->shpool->mutex);

        if (sh->due <= now && sh->lease <= now) {
            sh->lease = now + NGX_HTTP_USAGE_GATE_JWKS_TIMEOUT / 1000 + 2;
            sh->fetcher = ngx_pid;
            fetch = 1;
        }

        ngx_shmtx_unlock(&jwks->shpool->mutex);
    }

    if (fetch) {
        ngx_http_usage_gate_jwks_fetch(jwks, ev->log);
    }

    ngx_add_timer(ev, NGX_HTTP_USAGE_GATE_JWKS_TICK);
}


/* Starts a fetch; the caller holds the zone's lease. */
static void
ngx_http_usage_gate_jwks_fetch(ngx_http_usage_gate_jwks_t *jwks,
    ngx_log_t *log)
{
    ngx_http_usage_gate_curl_opts_t  opts;

    static const char *const  headers[] = {
        "Accept: application/json", NULL
    };

    if (jwks->log == NULL) {
        jwks->log = log;
    }

    ngx_memzero(&opts, sizeof(ngx_http_usage_gate_curl_opts_t));

    opts.method = "GET";
    opts.url = (const char *) jwks->url.data;
    opts.headers = headers;
    opts.connect_timeout = NGX_HTTP_USAGE_GATE_JWKS_CONNECT;
    opts.timeout = NGX_HTTP_USAGE_GATE_JWKS_TIMEOUT;
    opts.max_response = NGX_HTTP_USAGE_GATE_JWKS_MAX;

    ngx_shmtx_lock(&jwks->shpool->mutex);
    jwks->sh->fetches++;
    ngx_shmtx_unlock(&jwks->shpool->mutex);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                   "usage_gate: fetching the JWKS at \"%V\"", &jwks->url);

    jwks->req = ngx_http_usage_gate_curl_start(jwks->log, &opts,
                                               ngx_http_usage_gate_jwks_done,
                                               jwks);
    if (jwks->req == NULL) {
        ngx_http_usage_gate_jwks_failed(jwks,
                                        (u_char *) "could not start a request "
                                        "(out of memory?)",
                                        sizeof("could not start a request "
                                               "(out of memory?)") - 1);
    }
}


static void
ngx_http_usage_gate_jwks_done(void *data, ngx_int_t rc, long http_status,
    ngx_str_t *body, const char *error)
{
    ngx_http_usage_gate_jwks_t *jwks = data;

    u_char                          *p, msg[NGX_HTTP_USAGE_GATE_JWKS_ERROR];
    char                             err[200];
    time_t                           now;
    size_t                           n;
    ngx_uint_t                       changed, first, level;
    ug_jwt_keys_t                   *keys;
    ngx_http_usage_gate_jwks_sh_t   *sh;

    jwks->req = NULL;
    sh = jwks->sh;

    if (rc != NGX_OK) {
        n = body ? ngx_min(body->len, 160) : 0;
        p = ngx_snprintf(msg, sizeof(msg), "%s%s%*s", error,
                         n ? ": " : "", n, n ? body->data : (u_char *) "");
        ngx_http_usage_gate_jwks_failed(jwks, msg, p - msg);
        return;
    }

    if (http_status != 200) {
        p = ngx_snprintf(msg, sizeof(msg), "the issuer answered HTTP %l",
                         http_status);
        ngx_http_usage_gate_jwks_failed(jwks, msg, p - msg);
        return;
    }

    /* parsed here first: a set that does not parse never replaces a good
     * one in the zone */

    keys = ug_jwt_keys_new();
    if (keys == NULL) {
        p = ngx_snprintf(msg, sizeof(msg), "out of memory");
        ngx_http_usage_gate_jwks_failed(jwks, msg, p - msg);
        return;
    }

    if (body->len == 0
        || ug_jwt_keys_add_text(keys, (char *) body->data, body->len, err,
                                sizeof(err))
           != 0)
    {
        ug_jwt_keys_free(keys);
        p = ngx_snprintf(msg, sizeof(msg), "the answer is not a usable "
                         "JWKS: %s", body->len ? err : "empty");
        ngx_http_usage_gate_jwks_failed(jwks, msg, p - msg);
        return;
    }

    now = ngx_time();

    ngx_shmtx_lock(&jwks->shpool->mutex);

    first = (sh->generation == 0);
    changed = (sh->len != body->len
               || ngx_memcmp(sh->body, body->data, body->len) != 0);

    if (changed) {
        ngx_memcpy(sh->body, body->data, body->len);
        sh->len = body->len;
        sh->generation++;
    }

    sh->fetched = now;
    sh->due = now + jwks->refresh;
    sh->lease = 0;
    sh->failures = 0;
    sh->error[0] = '\0';

    /* this worker has the set parsed already */
    jwks->generation = sh->generation;

    ngx_shmtx_unlock(&jwks->shpool->mutex);

    if (changed || jwks->keys == NULL) {
        if (jwks->keys) {
            ug_jwt_keys_free(jwks->keys);
        }

        jwks->keys = keys;

    } else {
        ug_jwt_keys_free(keys);
    }

    level = changed ? NGX_LOG_NOTICE : NGX_LOG_INFO;

    ngx_log_error(level, jwks->log, 0,
                  "usage_gate_jwt_keys: \"%V\": %s, %uz keys",
                  &jwks->url,
                  first ? "first key set fetched"
                        : changed ? "new key set fetched"
                                  : "key set unchanged",
                  ug_jwt_keys_count(jwks->keys));
}


static void
ngx_http_usage_gate_jwks_failed(ngx_http_usage_gate_jwks_t *jwks,
    u_char *error, size_t len)
{
    time_t                           now, wait;
    ngx_uint_t                       have;
    ngx_http_usage_gate_jwks_sh_t   *sh;

    sh = jwks->sh;
    now = ngx_time();

    ngx_shmtx_lock(&jwks->shpool->mutex);

    sh->failures++;

    /* 1, 2, 4 ... 60 s: an issuer that is down is not hammered, one that
     * comes back is used again soon */
    wait = (sh->failures > 6) ? NGX_HTTP_USAGE_GATE_JWKS_BACKOFF
                              : (time_t) 1 << (sh->failures - 1);

    if (wait > jwks->refresh) {
        wait = jwks->refresh;
    }

    sh->due = now + wait;
    sh->lease = 0;

    len = ngx_min(len, NGX_HTTP_USAGE_GATE_JWKS_ERROR - 1);
    ngx_memcpy(sh->error, error, len);
    sh->error[len] = '\0';

    have = (sh->generation != 0);

    ngx_shmtx_unlock(&jwks->shpool->mutex);

    ngx_log_error(NGX_LOG_ERR, jwks->log, 0,
                  "usage_gate_jwt_keys: fetching \"%V\" failed: %*s; %s, "
                  "next try in %T s", &jwks->url, len, error,
                  have ? "the last good key set stays in use"
                       : "tokens get 503 until a key set is fetched",
                  wait);
}


ug_jwt_keys_t *
ngx_http_usage_gate_jwks_keys(ngx_http_usage_gate_jwks_t *jwks,
    ngx_log_t *log, uint64_t *generation)
{
    u_char  error[NGX_HTTP_USAGE_GATE_JWKS_ERROR];

    if (jwks->generation != jwks->sh->generation) {
        (void) ngx_http_usage_gate_jwks_load(jwks, log);
    }

    *generation = jwks->generation;

    if (jwks->keys) {
        return jwks->keys;
    }

    if (!jwks->no_keys_logged) {
        jwks->no_keys_logged = 1;

        ngx_shmtx_lock(&jwks->shpool->mutex);
        ngx_cpystrn(error, jwks->sh->error[0] ? jwks->sh->error
                                              : (u_char *) "the first fetch "
                                                "has not finished",
                    sizeof(error));
        ngx_shmtx_unlock(&jwks->shpool->mutex);

        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "usage_gate_jwt_keys: no key set from \"%V\" yet (%s): "
                      "bearer tokens get 503 until one is fetched",
                      &jwks->url, error);
    }

    return NULL;
}


/* Parses the zone's current text into this worker's key set. */
static ngx_int_t
ngx_http_usage_gate_jwks_load(ngx_http_usage_gate_jwks_t *jwks,
    ngx_log_t *log)
{
    char                  err[200];
    size_t                len;
    ug_jwt_keys_t        *keys;
    ngx_atomic_uint_t     generation;

    if (jwks->copy == NULL) {
        jwks->copy = ngx_alloc(NGX_HTTP_USAGE_GATE_JWKS_MAX, log);
        if (jwks->copy == NULL) {
            return NGX_ERROR;
        }
    }

    ngx_shmtx_lock(&jwks->shpool->mutex);

    generation = jwks->sh->generation;
    len = jwks->sh->len;
    ngx_memcpy(jwks->copy, jwks->sh->body, len);

    ngx_shmtx_unlock(&jwks->shpool->mutex);

    /* whatever happens next, this generation is done with */
    jwks->generation = generation;

    if (generation == 0) {
        return NGX_OK;
    }

    keys = ug_jwt_keys_new();
    if (keys == NULL) {
        return NGX_ERROR;
    }

    if (ug_jwt_keys_add_text(keys, (char *) jwks->copy, len, err,
                             sizeof(err))
        != 0)
    {
        /* the fetcher parsed the same bytes: only memory can fail here */
        ug_jwt_keys_free(keys);
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "usage_gate_jwt_keys: \"%V\": the stored key set did "
                      "not parse: %s", &jwks->url, err);
        return NGX_ERROR;
    }

    if (jwks->keys) {
        ug_jwt_keys_free(jwks->keys);
    }

    jwks->keys = keys;

    return NGX_OK;
}


void
ngx_http_usage_gate_jwks_unknown_kid(ngx_http_usage_gate_jwks_t *jwks,
    const char *kid, size_t len, ngx_log_t *log)
{
    time_t                           now;
    size_t                           i;
    uint32_t                         hash;
    ngx_uint_t                       fetch;
    ngx_http_usage_gate_jwks_sh_t   *sh;

    if (jwks->req != NULL) {
        return;
    }

    hash = ngx_crc32_short((u_char *) kid, len);
    now = ngx_time();
    sh = jwks->sh;
    fetch = 0;

    ngx_shmtx_lock(&jwks->shpool->mutex);

    if (sh->lease > now) {
        /* a fetch is under way: it brings the new kid, if there is one */
        goto done;
    }

    for (i = 0; i < NGX_HTTP_USAGE_GATE_JWKS_KIDS; i++) {
        if (sh->kid_hash[i] == hash
            && now - sh->kid_time[i] < NGX_HTTP_USAGE_GATE_JWKS_KID_QUIET)
        {
            goto done;
        }
    }

    if (now - sh->kid_minute >= 60) {
        sh->kid_minute = now;
        sh->kid_fetches = 0;
    }

    if (sh->kid_fetches >= NGX_HTTP_USAGE_GATE_JWKS_KID_FETCHES) {
        goto done;
    }

    sh->kid_fetches++;
    sh->kid_hash[sh->kid_next] = hash;
    sh->kid_time[sh->kid_next] = now;
    sh->kid_next = (sh->kid_next + 1) % NGX_HTTP_USAGE_GATE_JWKS_KIDS;

    sh->lease = now + NGX_HTTP_USAGE_GATE_JWKS_TIMEOUT / 1000 + 2;
    sh->fetcher = ngx_pid;
    fetch = 1;

done:

    ngx_shmtx_unlock(&jwks->shpool->mutex);

    if (fetch) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "usage_gate_jwt_keys: a token names kid \"%*s\", "
                      "which no key has: fetching \"%V\" again",
                      len, kid, &jwks->url);

        ngx_http_usage_gate_jwks_fetch(jwks, log);
    }
}
