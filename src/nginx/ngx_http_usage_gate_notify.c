/*
 * usage_gate_notify: a webhook POST when an owner reaches a threshold of
 * the included month.  Which thresholds are due, once per owner and
 * cycle, is settled under the zone's lock (ngx_http_usage_gate_billing.c,
 * marks in the zone node); this file delivers them.
 *
 * Delivery never blocks a request: each notification is posted through
 * the worker's libcurl multi handle, in the event loop.  A failed one (no
 * answer, or a status other than 2xx) is retried with exponential backoff
 * and jitter, and each failure is logged and counted.  A worker keeps at
 * most NGX_HTTP_USAGE_GATE_NOTIFY_QUEUE notifications at a time; past
 * that, new ones are dropped (logged and counted), so that a receiver
 * that is down cannot make a worker hoard memory.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_billing.h"
#include "ngx_http_usage_gate_curl.h"
#include "ug_notify.h"


#define NGX_HTTP_USAGE_GATE_NOTIFY_QUEUE     1024
#define NGX_HTTP_USAGE_GATE_NOTIFY_ATTEMPTS  8
#define NGX_HTTP_USAGE_GATE_NOTIFY_BACKOFF   1000     /* ms, doubled */
#define NGX_HTTP_USAGE_GATE_NOTIFY_BACKOFF_MAX  60000
#define NGX_HTTP_USAGE_GATE_NOTIFY_TIMEOUT   10000
#define NGX_HTTP_USAGE_GATE_NOTIFY_SECRET_MAX  4096
#define NGX_HTTP_USAGE_GATE_NOTIFY_URL_MAX   2048


typedef struct {
    ngx_str_t                       url;         /* NUL-terminated */
    ug_thresholds_t                 thresholds;
    ngx_str_t                       secret;      /* empty: unsigned */
} ngx_http_usage_gate_notify_conf_t;


typedef struct {
    ngx_queue_t                     queue;       /* in the worker's list */
    ngx_pool_t                     *pool;
    ngx_http_usage_gate_notify_conf_t  *conf;
    ngx_http_usage_gate_zone_t     *zone;        /* counts failures */
    ngx_str_t                       body;
    ngx_str_t                       owner;       /* for the log */
    unsigned                        threshold;
    ngx_uint_t                      attempts;
    ngx_event_t                     retry;
    ngx_http_usage_gate_curl_req_t *req;
} ngx_http_usage_gate_notice_t;


static void ngx_http_usage_gate_notify_post(ngx_http_usage_gate_notice_t *n);
static void ngx_http_usage_gate_notify_done(void *data, ngx_int_t rc,
    long http_status, ngx_str_t *body, const char *error);
static void ngx_http_usage_gate_notify_retry(ngx_event_t *ev);
static void ngx_http_usage_gate_notify_free(ngx_http_usage_gate_notice_t *n);


/* per worker: notifications being sent or waiting for a retry */
static ngx_queue_t  ngx_http_usage_gate_notices;
static ngx_uint_t   ngx_http_usage_gate_nnotices;
static ngx_uint_t   ngx_http_usage_gate_notices_init;


/* usage_gate_notify URL [thresholds=80,100] [secret_file=FILE] */
char *
ngx_http_usage_gate_notify(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_usage_gate_main_conf_t *mcf = conf;

    int                                 rc;
    u_char                             *p, *last;
    ngx_str_t                          *value, name, text;
    ngx_uint_t                          i;
    ngx_http_usage_gate_notify_conf_t  *nc;

    if (mcf->notify) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (!((value[1].len > 7
           && ngx_strncasecmp(value[1].data, (u_char *) "http://", 7) == 0)
          || (value[1].len > 8
              && ngx_strncasecmp(value[1].data, (u_char *) "https://", 8)
                 == 0))
        || value[1].len > NGX_HTTP_USAGE_GATE_NOTIFY_URL_MAX)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_notify: \"%V\" is not an http:// or "
                           "https:// URL of at most %d bytes", &value[1],
                           NGX_HTTP_USAGE_GATE_NOTIFY_URL_MAX);
        return NGX_CONF_ERROR;
    }

    nc = ngx_pcalloc(cf->pool, sizeof(ngx_http_usage_gate_notify_conf_t));
    if (nc == NULL) {
        return NGX_CONF_ERROR;
    }

    nc->url = value[1];     /* the configuration's strings end in NUL */

    rc = ug_thresholds_parse("80,100", 6, &nc->thresholds);
    if (rc != UG_NOTIFY_OK) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "thresholds=", 11) == 0) {
            rc = ug_thresholds_parse((char *) value[i].data + 11,
                                     value[i].len - 11, &nc->thresholds);
            if (rc != UG_NOTIFY_OK) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_notify: invalid \"%V\": %s "
                                   "(percentages of the included month, "
                                   "e.g. thresholds=80,100)", &value[i],
                                   ug_thresholds_strerror(rc));
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "secret_file=", 12) == 0
            && value[i].len > 12)
        {
            name.data = value[i].data + 12;
            name.len = value[i].len - 12;

            if (ngx_http_usage_gate_read_file(cf, &name,
                                    NGX_HTTP_USAGE_GATE_NOTIFY_SECRET_MAX,
                                    &text)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            /* a trailing newline is the editor's, not the secret's */
            p = text.data;
            last = text.data + text.len;

            while (last > p && (last[-1] == '\n' || last[-1] == '\r'
                                || last[-1] == ' ' || last[-1] == '\t'))
            {
                last--;
            }

            if (last == p) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_notify: the secret file "
                                   "\"%V\" is empty", &name);
                return NGX_CONF_ERROR;
            }

            nc->secret.data = p;
            nc->secret.len = last - p;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_notify: unknown parameter \"%V\" "
                           "(use thresholds=N,... and secret_file=FILE)",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    mcf->notify = nc;

    return NGX_CONF_OK;
}


const ug_thresholds_t *
ngx_http_usage_gate_notify_thresholds(ngx_http_usage_gate_main_conf_t *mcf)
{
    ngx_http_usage_gate_notify_conf_t  *nc;

    nc = mcf->notify;

    return nc ? &nc->thresholds : NULL;
}


void
ngx_http_usage_gate_notify_send(ngx_http_request_t *r,
    ngx_http_usage_gate_zone_t *zone, ngx_http_usage_gate_ctx_t *ctx,
    unsigned threshold)
{
    size_t                              size;
    ug_plan_t                          *plan;
    ngx_pool_t                         *pool;
    ug_notify_event_t                   ev;
    ngx_http_usage_gate_notice_t       *n;
    ngx_http_usage_gate_main_conf_t    *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_usage_gate_module);
    plan = &mcf->plans.plans[ctx->plan];

    if (!ngx_http_usage_gate_notices_init) {
        ngx_queue_init(&ngx_http_usage_gate_notices);
        ngx_http_usage_gate_notices_init = 1;
    }

    if (ngx_http_usage_gate_nnotices >= NGX_HTTP_USAGE_GATE_NOTIFY_QUEUE) {
        (void) ngx_atomic_fetch_add(&zone->sh->notify_failures, 1);
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "usage_gate_notify: %d notifications are pending in "
                      "this worker; the %ud%% notification for owner "
                      "\"%V\" is dropped", NGX_HTTP_USAGE_GATE_NOTIFY_QUEUE,
                      threshold, &ctx->owner);
        return;
    }

    ev.owner = (char *) ctx->owner.data;
    ev.owner_len = ctx->owner.len;
    ev.plan = plan->name;
    ev.plan_len = plan->len;
    ev.cycle = &ctx->d.cycle;
    ev.used = ctx->d.month_used;
    ev.limit = ctx->limits.month;
    ev.threshold = threshold;
    ev.at = (int64_t) ngx_time();

    size = ug_notify_body_size(&ev);

    pool = ngx_create_pool(ngx_max(1024, size + 512), ngx_cycle->log);
    if (pool == NULL) {
        return;
    }

    n = ngx_pcalloc(pool, sizeof(ngx_http_usage_gate_notice_t));
    if (n == NULL) {
        goto failed;
    }

    n->pool = pool;
    n->conf = mcf->notify;
    n->zone = zone;
    n->threshold = threshold;

    n->body.data = ngx_pnalloc(pool, size);
    n->owner.data = ngx_pnalloc(pool, ctx->owner.len);
    if (n->body.data == NULL || n->owner.data == NULL) {
        goto failed;
    }

    n->body.len = ug_notify_body((char *) n->body.data, size, &ev);
    if (n->body.len == 0) {
        goto failed;
    }

    n->owner.len = ctx->owner.len;
    ngx_memcpy(n->owner.data, ctx->owner.data, ctx->owner.len);

    n->retry.handler = ngx_http_usage_gate_notify_retry;
    n->retry.data = n;
    n->retry.log = ngx_cycle->log;
    n->retry.cancelable = 1;

    ngx_queue_insert_tail(&ngx_http_usage_gate_notices, &n->queue);
    ngx_http_usage_gate_nnotices++;

    ngx_http_usage_gate_notify_post(n);

    return;

failed:

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "usage_gate_notify: no memory for the %ud%% notification "
                  "for owner \"%V\"", threshold, &ctx->owner);
    ngx_destroy_pool(pool);
}


static void
ngx_http_usage_gate_notify_post(ngx_http_usage_gate_notice_t *n)
{
    size_t                            len;
    char                              sig[UG_NOTIFY_SIG_MAX + 1];
    char                              hsig[sizeof("X-Usage-Gate-Signature: ")
                                           + UG_NOTIFY_SIG_MAX];
    const char                       *headers[4];
    ngx_uint_t                        k;
    ngx_http_usage_gate_curl_opts_t   opts;

    k = 0;
    headers[k++] = "Content-Type: application/json";

    if (n->conf->secret.len) {
        /* signed at each attempt, so that t says when it was sent */
        len = ug_notify_sign(n->conf->secret.data, n->conf->secret.len,
                             (int64_t) ngx_time(), (char *) n->body.data,
                             n->body.len, sig);
        if (len == 0) {
            ngx_http_usage_gate_notify_done(n, NGX_ERROR, 0, NULL,
                                            "SigningFailed");
            return;
        }

        ngx_sprintf((u_char *) hsig, "X-Usage-Gate-Signature: %*s%Z",
                    len, sig);
        headers[k++] = hsig;
    }

    headers[k] = NULL;

    ngx_memzero(&opts, sizeof(opts));
    opts.method = "POST";
    opts.url = (char *) n->conf->url.data;
    opts.body = n->body;
    opts.headers = headers;
    opts.connect_timeout = NGX_HTTP_USAGE_GATE_NOTIFY_TIMEOUT / 2;
    opts.timeout = NGX_HTTP_USAGE_GATE_NOTIFY_TIMEOUT;
    opts.max_response = 4096;

    n->attempts++;

    n->req = ngx_http_usage_gate_curl_start(ngx_cycle->log, &opts,
                                            ngx_http_usage_gate_notify_done,
                                            n);
    if (n->req == NULL) {
        ngx_http_usage_gate_notify_done(n, NGX_ERROR, 0, NULL,
                                        "NoConnection");
    }
}


static void
ngx_http_usage_gate_notify_done(void *data, ngx_int_t rc, long http_status,
    ngx_str_t *body, const char *error)
{
    ngx_http_usage_gate_notice_t *n = data;

    u_char      why[64], *last;
    ngx_msec_t  delay;

    n->req = NULL;

    if (rc == NGX_OK && http_status >= 200 && http_status < 300) {
        (void) ngx_atomic_fetch_add(&n->zone->sh->notify_sent, 1);
        ngx_http_usage_gate_notify_free(n);
        return;
    }

    (void) ngx_atomic_fetch_add(&n->zone->sh->notify_failures, 1);

    last = (rc == NGX_OK)
           ? ngx_snprintf(why, sizeof(why) - 1, "status %l", http_status)
           : ngx_snprintf(why, sizeof(why) - 1, "%s", error);
    *last = '\0';

    if (n->attempts >= NGX_HTTP_USAGE_GATE_NOTIFY_ATTEMPTS) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "usage_gate_notify: the %ud%% notification for owner "
                      "\"%V\" to \"%V\" failed %ui times (last: %s); "
                      "given up", n->threshold, &n->owner, &n->conf->url,
                      n->attempts, why);
        ngx_http_usage_gate_notify_free(n);
        return;
    }

    /* 1 s, 2 s, 4 s ... up to a minute, plus up to a quarter more so that
     * workers retrying at once spread out */
    delay = NGX_HTTP_USAGE_GATE_NOTIFY_BACKOFF << (n->attempts - 1);

    if (delay > NGX_HTTP_USAGE_GATE_NOTIFY_BACKOFF_MAX) {
        delay = NGX_HTTP_USAGE_GATE_NOTIFY_BACKOFF_MAX;
    }

    delay += (ngx_msec_t) ngx_random() % (delay / 4 + 1);

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "usage_gate_notify: the %ud%% notification for owner "
                  "\"%V\" to \"%V\" failed (%s); retry %ui in %M ms",
                  n->threshold, &n->owner, &n->conf->url, why,
                  n->attempts, delay);

    ngx_add_timer(&n->retry, delay);
}


static void
ngx_http_usage_gate_notify_retry(ngx_event_t *ev)
{
    ngx_http_usage_gate_notify_post(ev->data);
}


static void
ngx_http_usage_gate_notify_free(ngx_http_usage_gate_notice_t *n)
{
    if (n->retry.timer_set) {
        ngx_del_timer(&n->retry);
    }

    if (n->req) {
        ngx_http_usage_gate_curl_cancel(n->req);
        n->req = NULL;
    }

    ngx_queue_remove(&n->queue);
    ngx_http_usage_gate_nnotices--;

    ngx_destroy_pool(n->pool);
}


void
ngx_http_usage_gate_notify_exit_process(ngx_cycle_t *cycle)
{
    ngx_queue_t                   *q;
    ngx_http_usage_gate_notice_t  *n;

    if (!ngx_http_usage_gate_notices_init) {
        return;
    }

    while (!ngx_queue_empty(&ngx_http_usage_gate_notices)) {
        q = ngx_queue_head(&ngx_http_usage_gate_notices);
        n = ngx_queue_data(q, ngx_http_usage_gate_notice_t, queue);

        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "usage_gate_notify: the %ud%% notification for owner "
                      "\"%V\" was not delivered before the worker exited",
                      n->threshold, &n->owner);

        ngx_http_usage_gate_notify_free(n);
    }
}
