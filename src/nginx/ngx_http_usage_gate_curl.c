/*
 * libcurl's multi interface inside nginx's event loop.
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when
 * to call it back (CURLMOPT_TIMERFUNCTION); we wrap each socket in an
 * nginx connection and keep one nginx timer.  When an event fires we tell
 * curl which socket and which direction, then collect finished transfers.
 *
 * Events are registered level-triggered (NGX_LEVEL_EVENT, not nginx's
 * usual edge-triggered NGX_CLEAR_EVENT): curl may leave bytes unread in a
 * socket and expects to hear about it again, as with poll().  Interest
 * follows exactly what curl asks for, so a level-triggered socket never
 * spins: when curl no longer wants a direction, it is deleted.
 *
 * curl owns its sockets.  We never close one: on CURL_POLL_REMOVE (which
 * curl normally sends before it closes a socket) the nginx connection is
 * given back with the fd still open.
 *
 * "Normally": libcurl 7.88 to 8.1 close a socket whose connect() was cut
 * short (a timeout, a cancel, a lost happy-eyeballs race) without telling
 * the socket callback (curl commit a70d97c, issue 11439).  Its fd number
 * may then be reused at once, by curl or by nginx for a client.  So each
 * watched socket remembers its identity (device and inode), and before
 * any epoll_ctl() we check that the fd still is that socket; if it is
 * not, the kernel has already dropped the old registration and the fd
 * is left alone.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <curl/curl.h>

#include "ngx_http_usage_gate_curl.h"
#include "ug_ddb.h"


#if (LIBCURL_VERSION_NUM < 0x075700)
#error "libcurl 7.87.0 or newer is needed (CURLOPT_AWS_SIGV4, QUICK_EXIT)"
#endif


struct ngx_http_usage_gate_curl_req_s {
    CURL                              *easy;
    struct curl_slist                 *headers;
    ngx_http_usage_gate_curl_done_pt   done;
    void                              *data;
    ngx_log_t                         *log;
    ngx_queue_t                        queue;

    u_char                            *body;
    size_t                             len;
    size_t                             size;
    size_t                             max;

    unsigned                           too_big:1;
    unsigned                           no_conn:1;
    unsigned                           completing:1;

    char                               error[CURL_ERROR_SIZE];
};


/* A socket curl asked us to watch. */
typedef struct {
    ngx_connection_t                  *conn;       /* conn->data is this */
    curl_socket_t                      fd;
    dev_t                              dev;
    ino_t                              ino;
    ngx_queue_t                        queue;
} ngx_http_usage_gate_curl_sock_t;


typedef struct {
    CURLM                             *multi;
    ngx_log_t                         *log;
    ngx_event_t                        timer;

    /*
     * The timer's data: nginx's debug log reads ev->data as a connection
     * to print its fd, so it must point at one.
     */
    ngx_connection_t                   dummy;

    ngx_queue_t                        requests;
    ngx_queue_t                        sockets;    /* ..._curl_sock_t */
    ngx_uint_t                         pending;
    ngx_uint_t                         failed;     /* requests with no_conn */
} ngx_http_usage_gate_curl_ctx_t;


static ngx_http_usage_gate_curl_ctx_t  ngx_http_usage_gate_curl_ctx;


static int ngx_http_usage_gate_curl_socket(CURL *easy, curl_socket_t s,
    int what, void *userp, void *socketp);
static int ngx_http_usage_gate_curl_timer(CURLM *multi, long timeout_ms,
    void *userp);
static void ngx_http_usage_gate_curl_read_handler(ngx_event_t *ev);
static void ngx_http_usage_gate_curl_write_handler(ngx_event_t *ev);
static void ngx_http_usage_gate_curl_timer_handler(ngx_event_t *ev);
static void ngx_http_usage_gate_curl_action(curl_socket_t s, int mask);
static void ngx_http_usage_gate_curl_collect(void);
static void ngx_http_usage_gate_curl_finish(
    ngx_http_usage_gate_curl_req_t *req, CURLcode result);
static ngx_http_usage_gate_curl_sock_t *ngx_http_usage_gate_curl_watch(
    ngx_http_usage_gate_curl_ctx_t *ctx, curl_socket_t s);
static ngx_uint_t ngx_http_usage_gate_curl_same(
    ngx_http_usage_gate_curl_sock_t *sock);
static void ngx_http_usage_gate_curl_release(
    ngx_http_usage_gate_curl_sock_t *sock);
static void ngx_http_usage_gate_curl_free(
    ngx_http_usage_gate_curl_req_t *req);
static void ngx_http_usage_gate_curl_count(ngx_int_t delta);
static size_t ngx_http_usage_gate_curl_write(char *ptr, size_t size,
    size_t nmemb, void *userdata);
static const char *ngx_http_usage_gate_curl_reason(
    ngx_http_usage_gate_curl_req_t *req, CURLcode result);
static ngx_http_usage_gate_curl_req_t *ngx_http_usage_gate_curl_req_of(
    CURL *easy);


ngx_int_t
ngx_http_usage_gate_curl_init(ngx_cycle_t *cycle)
{
    CURLM                           *multi;
    curl_version_info_data          *vi;
    ngx_http_usage_gate_curl_ctx_t  *ctx;

    ctx = &ngx_http_usage_gate_curl_ctx;

    if (ctx->multi != NULL) {
        return NGX_OK;
    }

    /*
     * Only workers (or a single process) get a multi handle: one made in
     * the master would be shared by every forked worker, and the cache
     * manager and loader, which run init_process too, send no requests.
     */
    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "usage_gate: curl_global_init() failed");
        return NGX_ERROR;
    }

    vi = curl_version_info(CURLVERSION_NOW);

    if (!(vi->features & CURL_VERSION_ASYNCHDNS)) {
        /* names would be resolved inside the event loop */
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "usage_gate: libcurl %s resolves host names "
                      "synchronously; use a numeric endpoint address",
                      vi->version);
    }

    multi = curl_multi_init();
    if (multi == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "usage_gate: curl_multi_init() failed");
        curl_global_cleanup();
        return NGX_ERROR;
    }

    ngx_memzero(ctx, sizeof(ngx_http_usage_gate_curl_ctx_t));

    ctx->multi = multi;
    ctx->log = cycle->log;

    ctx->dummy.fd = (ngx_socket_t) -1;
    ctx->timer.data = &ctx->dummy;
    ctx->timer.log = cycle->log;
    ctx->timer.handler = ngx_http_usage_gate_curl_timer_handler;
    ctx->timer.cancelable = 1;

    ngx_queue_init(&ctx->requests);
    ngx_queue_init(&ctx->sockets);

    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION,
                      ngx_http_usage_gate_curl_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, ctx);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION,
                      ngx_http_usage_gate_curl_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, ctx);

    /* more concurrent requests than this queue inside curl (and count
     * against their timeouts) instead of eating worker_connections */
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      (long) NGX_HTTP_USAGE_GATE_CURL_HOST_CONNS);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS,
                      (long) NGX_HTTP_USAGE_GATE_CURL_HOST_CONNS);

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, cycle->log, 0,
                   "usage_gate curl init: %s", vi->version);

    return NGX_OK;
}


void
ngx_http_usage_gate_curl_done(ngx_cycle_t *cycle)
{
    ngx_queue_t                      *q;
    ngx_http_usage_gate_curl_req_t   *req;
    ngx_http_usage_gate_curl_ctx_t   *ctx;
    ngx_http_usage_gate_curl_sock_t  *sock;

    ctx = &ngx_http_usage_gate_curl_ctx;

    if (ctx->multi == NULL) {
        return;
    }

    while (!ngx_queue_empty(&ctx->requests)) {
        q = ngx_queue_head(&ctx->requests);
        req = ngx_queue_data(q, ngx_http_usage_gate_curl_req_t, queue);
        ngx_http_usage_gate_curl_cancel(req);
    }

    if (ctx->timer.timer_set) {
        ngx_del_timer(&ctx->timer);
    }

    curl_multi_cleanup(ctx->multi);
    ctx->multi = NULL;

    if (ctx->timer.timer_set) {
        ngx_del_timer(&ctx->timer);
    }

    /*
     * Removing the transfers made curl send CURL_POLL_REMOVE for the
     * sockets it watched; anything left has been closed by curl (and is
     * recognised as such by its identity).
     */
    while (!ngx_queue_empty(&ctx->sockets)) {
        q = ngx_queue_head(&ctx->sockets);
        sock = ngx_queue_data(q, ngx_http_usage_gate_curl_sock_t, queue);
        ngx_http_usage_gate_curl_release(sock);
    }

    curl_global_cleanup();
}


ngx_uint_t
ngx_http_usage_gate_curl_pending(void)
{
    return ngx_http_usage_gate_curl_ctx.pending;
}


static int
ngx_http_usage_gate_curl_method(CURL *easy,
    const ngx_http_usage_gate_curl_opts_t *opts)
{
    const char  *m;

    m = (opts->method != NULL) ? opts->method : "GET";

    if (ngx_strcmp(m, "GET") == 0) {
        return curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L) == CURLE_OK
               ? 0 : -1;
    }

    if (ngx_strcmp(m, "POST") != 0 && ngx_strcmp(m, "PUT") != 0) {
        return -1;
    }

    /* the body is copied: the caller's buffer may go once we return (and
     * curl's SigV4 hashes exactly these bytes) */
    if (curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t) opts->body.len) != CURLE_OK
        || curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS,
                            opts->body.len ? (char *) opts->body.data : "")
           != CURLE_OK)
    {
        return -1;
    }

    if (ngx_strcmp(m, "PUT") == 0
        && curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, "PUT") != CURLE_OK)
    {
        return -1;
    }

    return 0;
}


ngx_http_usage_gate_curl_req_t *
ngx_http_usage_gate_curl_start(ngx_log_t *log,
    const ngx_http_usage_gate_curl_opts_t *opts,
    ngx_http_usage_gate_curl_done_pt done, void *data)
{
    u_char                          *p;
    CURL                            *easy;
    CURLcode                         rc;
    CURLMcode                        mrc;
    struct curl_slist               *l;
    const char *const               *h;
    ngx_http_usage_gate_curl_req_t  *req;
    ngx_http_usage_gate_curl_ctx_t  *ctx;
    char                             token[sizeof("X-Amz-Security-Token: ")
                                           + UG_AWS_TOKEN_MAX];

    ctx = &ngx_http_usage_gate_curl_ctx;

    /* with creds but no SigV4 scope curl would send the secret as Basic
     * authentication */
    if (opts->url == NULL
        || (opts->creds != NULL && opts->sigv4 == NULL)
        || (opts->creds != NULL
            && opts->creds->token_len > UG_AWS_TOKEN_MAX))
    {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "usage_gate: curl request without url or sigv4");
        return NULL;
    }

    for (h = opts->headers; h != NULL && *h != NULL; h++) {
        if (!ug_aws_header_value_ok(*h, ngx_strlen(*h))) {
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "usage_gate: control character in a header");
            return NULL;
        }
    }

    if (ctx->multi == NULL
        && (ngx_http_usage_gate_curl_init((ngx_cycle_t *) ngx_cycle)
            != NGX_OK
            || ctx->multi == NULL))
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "usage_gate: no curl multi handle in this process");
        return NULL;
    }

    req = ngx_calloc(sizeof(ngx_http_usage_gate_curl_req_t), log);
    if (req == NULL) {
        return NULL;
    }

    req->done = done;
    req->data = data;
    req->log = log;
    req->max = opts->max_response ? opts->max_response
                                  : NGX_HTTP_USAGE_GATE_CURL_BODY_MAX;

    easy = curl_easy_init();
    if (easy == NULL) {
        ngx_free(req);
        return NULL;
    }

    req->easy = easy;

    rc = CURLE_OK;

#define ngx_ug_setopt(opt, val)                                              \
    if (rc == CURLE_OK) {                                                    \
        rc = curl_easy_setopt(easy, opt, val);                               \
    }

    ngx_ug_setopt(CURLOPT_URL, opts->url);
    ngx_ug_setopt(CURLOPT_PRIVATE, req);
    ngx_ug_setopt(CURLOPT_ERRORBUFFER, req->error);
    ngx_ug_setopt(CURLOPT_WRITEFUNCTION, ngx_http_usage_gate_curl_write);
    ngx_ug_setopt(CURLOPT_WRITEDATA, req);

    /* no signals from curl in nginx's process; no blocking wait for the
     * resolver thread when a request is cancelled or times out while a
     * name is being resolved (curl detaches the thread instead) */
    ngx_ug_setopt(CURLOPT_NOSIGNAL, 1L);
    ngx_ug_setopt(CURLOPT_QUICK_EXIT, 1L);

    ngx_ug_setopt(CURLOPT_PROTOCOLS_STR, "http,https");
    ngx_ug_setopt(CURLOPT_FOLLOWLOCATION, 0L);
    ngx_ug_setopt(CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
    ngx_ug_setopt(CURLOPT_TCP_KEEPALIVE, 1L);
    ngx_ug_setopt(CURLOPT_USERAGENT, "ngx_http_usage_gate");
    ngx_ug_setopt(CURLOPT_CONNECTTIMEOUT_MS, (long) opts->connect_timeout);
    ngx_ug_setopt(CURLOPT_TIMEOUT_MS, (long) opts->timeout);

    if (opts->creds != NULL) {
        ngx_ug_setopt(CURLOPT_AWS_SIGV4, opts->sigv4);
        ngx_ug_setopt(CURLOPT_USERNAME, opts->creds->key_id);
        ngx_ug_setopt(CURLOPT_PASSWORD, opts->creds->secret);
    }

#undef ngx_ug_setopt

    if (rc != CURLE_OK || ngx_http_usage_gate_curl_method(easy, opts) != 0)
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "usage_gate: curl request setup failed: %s",
                      rc != CURLE_OK ? curl_easy_strerror(rc)
                                     : "bad method");
        goto failed;
    }

    for (h = opts->headers; h != NULL && *h != NULL; h++) {
        l = curl_slist_append(req->headers, *h);
        if (l == NULL) {
            goto failed;
        }

        req->headers = l;
    }

    if (opts->creds != NULL && opts->creds->token_len != 0) {
        /* curl signs every header it is given, this one included */
        p = ngx_snprintf((u_char *) token, sizeof(token) - 1,
                         "X-Amz-Security-Token: %*s",
                         opts->creds->token_len, opts->creds->token);
        *p = '\0';

        l = curl_slist_append(req->headers, token);
        if (l == NULL) {
            goto failed;
        }

        req->headers = l;
    }

    if (req->headers != NULL
        && curl_easy_setopt(easy, CURLOPT_HTTPHEADER, req->headers)
           != CURLE_OK)
    {
        goto failed;
    }

    /* curl asks for a timer of 0 from here: the transfer starts in the
     * next turn of the event loop, never inside this call */
    mrc = curl_multi_add_handle(ctx->multi, easy);
    if (mrc != CURLM_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "usage_gate: curl_multi_add_handle() failed: %s",
                      curl_multi_strerror(mrc));
        goto failed;
    }

    ngx_queue_insert_tail(&ctx->requests, &req->queue);
    ngx_http_usage_gate_curl_count(1);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                   "usage_gate curl start %p %s %s", req,
                   opts->method ? opts->method : "GET", opts->url);

    return req;

failed:

    curl_easy_cleanup(easy);
    curl_slist_free_all(req->headers);
    ngx_free(req);

    return NULL;
}


ngx_http_usage_gate_curl_req_t *
ngx_http_usage_gate_curl_post(ngx_log_t *log, const char *url,
    const char *op, ngx_str_t *body, ngx_msec_t connect_timeout,
    ngx_msec_t timeout, const ug_aws_creds_t *creds, const char *region,
    ngx_http_usage_gate_curl_done_pt done, void *data)
{
    size_t                            n;
    const char                       *headers[3];
    ngx_http_usage_gate_curl_opts_t   opts;
    char                              target[sizeof("X-Amz-Target: ")
                                             + sizeof(UG_DDB_TARGET_PREFIX)
                                             + 32];
    char                              sigv4[sizeof("aws:amz::dynamodb")
                                            + 32];

    n = ngx_strlen(op);

    if (n == 0 || n > 32 || region == NULL
        || !ug_ddb_region_ok(region, ngx_strlen(region)))
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "usage_gate: bad DynamoDB operation or region");
        return NULL;
    }

    ngx_sprintf((u_char *) target, "X-Amz-Target: " UG_DDB_TARGET_PREFIX
                "%s%Z", op);
    ngx_sprintf((u_char *) sigv4, "aws:amz:%s:dynamodb%Z", region);

    headers[0] = "Content-Type: " UG_DDB_CONTENT_TYPE;
    headers[1] = target;
    headers[2] = NULL;

    ngx_memzero(&opts, sizeof(ngx_http_usage_gate_curl_opts_t));

    opts.method = "POST";
    opts.url = url;
    opts.body = *body;
    opts.headers = headers;
    opts.connect_timeout = connect_timeout;
    opts.timeout = timeout;
    opts.max_response = UG_DDB_RESPONSE_MAX;
    opts.creds = creds;
    opts.sigv4 = sigv4;

    return ngx_http_usage_gate_curl_start(log, &opts, done, data);
}


void
ngx_http_usage_gate_curl_cancel(ngx_http_usage_gate_curl_req_t *req)
{
    ngx_http_usage_gate_curl_ctx_t  *ctx;

    if (req == NULL || req->completing) {
        return;
    }

    ctx = &ngx_http_usage_gate_curl_ctx;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, req->log, 0,
                   "usage_gate curl cancel %p", req);

    /* curl sends CURL_POLL_REMOVE for the request's sockets from here,
     * and closes a connection it cannot reuse */
    curl_multi_remove_handle(ctx->multi, req->easy);

    ngx_queue_remove(&req->queue);
    ngx_http_usage_gate_curl_count(-1);

    if (req->no_conn) {
        ctx->failed--;
    }

    ngx_http_usage_gate_curl_free(req);
}


static void
ngx_http_usage_gate_curl_free(ngx_http_usage_gate_curl_req_t *req)
{
    curl_easy_cleanup(req->easy);
    curl_slist_free_all(req->headers);

    if (req->body != NULL) {
        ngx_free(req->body);
    }

    ngx_free(req);
}


static void
ngx_http_usage_gate_curl_count(ngx_int_t delta)
{
    ngx_http_usage_gate_curl_ctx_t  *ctx;

    ctx = &ngx_http_usage_gate_curl_ctx;

    ctx->pending += delta;

    /*
     * While requests are in flight the timer holds a graceful shutdown
     * open (curl always has a timer while a transfer runs, and every
     * transfer has its total timeout): a last flush is not cut off.  Idle,
     * it does not keep a worker alive.
     */
    ctx->timer.cancelable = (ctx->pending == 0);
}


static size_t
ngx_http_usage_gate_curl_write(char *ptr, size_t size, size_t nmemb,
    void *userdata)
{
    ngx_http_usage_gate_curl_req_t *req = userdata;

    u_char  *p;
    size_t   n, want;

    n = size * nmemb;

    if (n > req->max - req->len) {
        /* returning less than n fails the transfer: CURLE_WRITE_ERROR */
        req->too_big = 1;
        return 0;
    }

    if (req->len + n > req->size) {
        want = ngx_max(req->size * 2, req->len + n);
        want = ngx_max(want, 1024);
        want = ngx_min(want, req->max);

        p = ngx_alloc(want, req->log);
        if (p == NULL) {
            return 0;
        }

        if (req->body != NULL) {
            ngx_memcpy(p, req->body, req->len);
            ngx_free(req->body);
        }

        req->body = p;
        req->size = want;
    }

    ngx_memcpy(req->body + req->len, ptr, n);
    req->len += n;

    return n;
}


static int
ngx_http_usage_gate_curl_socket(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp)
{
    ngx_http_usage_gate_curl_ctx_t *ctx = userp;

    ngx_queue_t                      *q;
    ngx_connection_t                 *c;
    ngx_http_usage_gate_curl_req_t   *req;
    ngx_http_usage_gate_curl_sock_t  *sock, *stale;

    sock = socketp;

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, ctx->log, 0,
                   "usage_gate curl socket %d what:%d sock:%p", s, what,
                   sock);

    if (what == CURL_POLL_REMOVE) {
        if (sock != NULL) {
            ngx_http_usage_gate_curl_release(sock);
            curl_multi_assign(ctx->multi, s, NULL);
        }

        return 0;
    }

    if (sock != NULL && !ngx_http_usage_gate_curl_same(sock)) {
        /* curl closed the socket unannounced and made a new one with the
         * same number: the old registration died with the old socket */
        ngx_http_usage_gate_curl_release(sock);
        sock = NULL;
    }

    if (sock == NULL) {
        for (q = ngx_queue_head(&ctx->sockets);
             q != ngx_queue_sentinel(&ctx->sockets);
             q = ngx_queue_next(q))
        {
            stale = ngx_queue_data(q, ngx_http_usage_gate_curl_sock_t,
                                   queue);

            if (stale->fd == s) {
                ngx_http_usage_gate_curl_release(stale);
                break;
            }
        }

        sock = ngx_http_usage_gate_curl_watch(ctx, s);

        if (sock == NULL) {
            goto failed;
        }

        curl_multi_assign(ctx->multi, s, sock);
    }

    c = sock->conn;

    if ((what & CURL_POLL_IN) && !c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            goto failed;
        }

    } else if (!(what & CURL_POLL_IN) && c->read->active) {
        if (ngx_del_event(c->read, NGX_READ_EVENT, 0) != NGX_OK) {
            goto failed;
        }
    }

    if ((what & CURL_POLL_OUT) && !c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            goto failed;
        }

    } else if (!(what & CURL_POLL_OUT) && c->write->active) {
        if (ngx_del_event(c->write, NGX_WRITE_EVENT, 0) != NGX_OK) {
            goto failed;
        }
    }

    return 0;

failed:

    /*
     * Out of worker_connections, or the event module refused.  Returning
     * -1 would make curl fail every transfer in the multi handle: fail
     * this one after curl returns instead.
     */
    req = ngx_http_usage_gate_curl_req_of(easy);

    if (req != NULL && !req->no_conn) {
        req->no_conn = 1;
        ctx->failed++;
    }

    return 0;
}


static ngx_http_usage_gate_curl_sock_t *
ngx_http_usage_gate_curl_watch(ngx_http_usage_gate_curl_ctx_t *ctx,
    curl_socket_t s)
{
    struct stat                       st;
    ngx_connection_t                 *c;
    ngx_http_usage_gate_curl_sock_t  *sock;

    if (fstat(s, &st) == -1) {
        ngx_log_error(NGX_LOG_ALERT, ctx->log, ngx_errno,
                      "usage_gate: fstat() of curl socket %d failed", s);
        return NULL;
    }

    sock = ngx_alloc(sizeof(ngx_http_usage_gate_curl_sock_t), ctx->log);
    if (sock == NULL) {
        return NULL;
    }

    c = ngx_get_connection(s, ctx->log);
    if (c == NULL) {
        ngx_free(sock);
        return NULL;
    }

    c->number = ngx_atomic_fetch_add(ngx_connection_counter, 1);
    c->data = sock;
    c->read->log = ctx->log;
    c->write->log = ctx->log;
    c->read->handler = ngx_http_usage_gate_curl_read_handler;
    c->write->handler = ngx_http_usage_gate_curl_write_handler;

    sock->conn = c;
    sock->fd = s;
    sock->dev = st.st_dev;
    sock->ino = st.st_ino;

    ngx_queue_insert_tail(&ctx->sockets, &sock->queue);

    return sock;
}


/* 1 if the fd is still the socket we started to watch. */
static ngx_uint_t
ngx_http_usage_gate_curl_same(ngx_http_usage_gate_curl_sock_t *sock)
{
    struct stat  st;

    if (fstat(sock->fd, &st) == -1) {
        return 0;
    }

    return st.st_ino == sock->ino && st.st_dev == sock->dev;
}


static ngx_http_usage_gate_curl_req_t *
ngx_http_usage_gate_curl_req_of(CURL *easy)
{
    char  *p;

    p = NULL;

    if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &p) != CURLE_OK) {
        return NULL;
    }

    return (ngx_http_usage_gate_curl_req_t *) p;
}


static void
ngx_http_usage_gate_curl_release(ngx_http_usage_gate_curl_sock_t *sock)
{
    ngx_connection_t  *c;

    c = sock->conn;

    if (c->read->active || c->write->active) {

        if (ngx_http_usage_gate_curl_same(sock)) {
            if (c->read->active) {
                ngx_del_event(c->read, NGX_READ_EVENT, 0);
            }

            if (c->write->active) {
                ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
            }

        } else {
            /* closed behind our back: the kernel dropped the registration
             * with the socket, and the fd number may be someone else's */
            ngx_log_debug1(NGX_LOG_DEBUG_EVENT, c->log, 0,
                           "usage_gate curl socket %d closed unannounced",
                           sock->fd);
        }

        c->read->active = 0;
        c->write->active = 0;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, c->log, 0,
                   "usage_gate curl release fd:%d", sock->fd);

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_queue_remove(&sock->queue);

    /*
     * The fd is not closed here (it is curl's).  fd -1 marks the
     * connection free for the event loop: an event for it already fetched
     * in this turn is dropped as stale, and worker exit does not report
     * it as left open.
     */
    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;

    ngx_free(sock);
}


static int
ngx_http_usage_gate_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    ngx_http_usage_gate_curl_ctx_t *ctx = userp;

    /* never call curl from in here: only arm or disarm our timer */

    if (ctx->timer.timer_set) {
        /* ngx_add_timer() ignores a change of less than 300 ms on a set
         * timer, but curl's "now" (0) must not wait that long */
        ngx_del_timer(&ctx->timer);
    }

    if (timeout_ms >= 0) {
        ngx_add_timer(&ctx->timer, (ngx_msec_t) timeout_ms);
    }

    return 0;
}


static void
ngx_http_usage_gate_curl_read_handler(ngx_event_t *ev)
{
    ngx_connection_t                 *c;
    ngx_http_usage_gate_curl_sock_t  *sock;

    c = ev->data;
    sock = c->data;

    ngx_http_usage_gate_curl_action(sock->fd, CURL_CSELECT_IN
                                           | (ev->error ? CURL_CSELECT_ERR
                                                        : 0));
}


static void
ngx_http_usage_gate_curl_write_handler(ngx_event_t *ev)
{
    ngx_connection_t                 *c;
    ngx_http_usage_gate_curl_sock_t  *sock;

    c = ev->data;
    sock = c->data;

    ngx_http_usage_gate_curl_action(sock->fd, CURL_CSELECT_OUT
                                           | (ev->error ? CURL_CSELECT_ERR
                                                        : 0));
}


static void
ngx_http_usage_gate_curl_timer_handler(ngx_event_t *ev)
{
    ngx_http_usage_gate_curl_action(CURL_SOCKET_TIMEOUT, 0);
}


static void
ngx_http_usage_gate_curl_action(curl_socket_t s, int mask)
{
    int                              running;
    CURLMcode                        mrc;
    ngx_http_usage_gate_curl_ctx_t  *ctx;

    ctx = &ngx_http_usage_gate_curl_ctx;

    if (ctx->multi == NULL) {
        return;
    }

    /* the connection for s may be released inside this call */
    mrc = curl_multi_socket_action(ctx->multi, s, mask, &running);

    if (mrc != CURLM_OK) {
        ngx_log_error(NGX_LOG_ALERT, ctx->log, 0,
                      "usage_gate: curl_multi_socket_action() failed: %s",
                      curl_multi_strerror(mrc));
    }

    ngx_http_usage_gate_curl_collect();
}


/* Hands finished transfers, and those that could get no connection, to
 * their callbacks. */
static void
ngx_http_usage_gate_curl_collect(void)
{
    int                              left;
    CURLMsg                         *msg;
    ngx_queue_t                     *q;
    ngx_http_usage_gate_curl_req_t  *req;
    ngx_http_usage_gate_curl_ctx_t  *ctx;

    ctx = &ngx_http_usage_gate_curl_ctx;

    for ( ;; ) {

        /* a callback may start, cancel or finish others: look again each
         * time round, never hold a message across a callback */

        if (ctx->multi == NULL) {
            return;
        }

        msg = curl_multi_info_read(ctx->multi, &left);

        if (msg != NULL) {
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }

            req = ngx_http_usage_gate_curl_req_of(msg->easy_handle);

            if (req == NULL) {
                continue;
            }

            ngx_http_usage_gate_curl_finish(req, msg->data.result);
            continue;
        }

        if (ctx->failed == 0) {
            return;
        }

        req = NULL;

        for (q = ngx_queue_head(&ctx->requests);
             q != ngx_queue_sentinel(&ctx->requests);
             q = ngx_queue_next(q))
        {
            req = ngx_queue_data(q, ngx_http_usage_gate_curl_req_t, queue);

            if (req->no_conn) {
                break;
            }

            req = NULL;
        }

        if (req == NULL) {
            ctx->failed = 0;
            return;
        }

        ngx_http_usage_gate_curl_finish(req, CURLE_COULDNT_CONNECT);
    }
}


static void
ngx_http_usage_gate_curl_finish(ngx_http_usage_gate_curl_req_t *req,
    CURLcode result)
{
    long                             status;
    ngx_int_t                        rc;
    ngx_str_t                        body;
    const char                      *error;
    ngx_http_usage_gate_curl_ctx_t  *ctx;

    ctx = &ngx_http_usage_gate_curl_ctx;

    status = 0;
    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);

    curl_multi_remove_handle(ctx->multi, req->easy);

    ngx_queue_remove(&req->queue);
    ngx_http_usage_gate_curl_count(-1);

    if (req->no_conn) {
        ctx->failed--;
    }

    if (result == CURLE_OK && !req->no_conn) {
        rc = NGX_OK;
        error = NULL;
        body.data = req->body;
        body.len = req->len;

    } else {
        rc = NGX_ERROR;
        status = 0;
        error = ngx_http_usage_gate_curl_reason(req, result);

        if (req->error[0] == '\0') {
            ngx_cpystrn((u_char *) req->error,
                        (u_char *) curl_easy_strerror(result),
                        CURL_ERROR_SIZE);
        }

        body.data = (u_char *) req->error;
        body.len = ngx_strlen(req->error);
    }

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, req->log, 0,
                   "usage_gate curl done %p rc:%i status:%l %s %V", req, rc,
                   status, error ? error : "", &body);

    req->completing = 1;

    if (req->done != NULL) {
        req->done(req->data, rc, status, &body, error);
    }

    ngx_http_usage_gate_curl_free(req);
}


static const char *
ngx_http_usage_gate_curl_reason(ngx_http_usage_gate_curl_req_t *req,
    CURLcode result)
{
    if (req->no_conn) {
        ngx_cpystrn((u_char *) req->error,
                    (u_char *) "no nginx connection for a curl socket "
                    "(worker_connections)", CURL_ERROR_SIZE);
        return "NoConnection";
    }

    if (req->too_big) {
        ngx_snprintf((u_char *) req->error, CURL_ERROR_SIZE - 1,
                     "answer larger than %uz bytes%Z", req->max);
        return "ResponseTooLarge";
    }

    switch (result) {

    case CURLE_OPERATION_TIMEDOUT:
        return "Timeout";

    case CURLE_COULDNT_CONNECT:
        return "ConnectFailed";

    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return "ResolveFailed";

    case CURLE_SEND_ERROR:
        return "SendFailed";

    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return "RecvFailed";

    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
        return "TlsFailed";

    default:
        return "TransportError";
    }
}
