/*
 * HTTP(S) requests from inside a worker's event loop: libcurl's multi
 * interface driven by nginx's own events and timers.  One multi handle
 * per worker process; nothing here ever blocks.
 *
 * Used for DynamoDB (SigV4-signed POSTs) and for the ECS / EC2 metadata
 * endpoints that hand out temporary credentials.
 */

#ifndef _NGX_HTTP_USAGE_GATE_CURL_H_INCLUDED_
#define _NGX_HTTP_USAGE_GATE_CURL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ug_aws.h"


/* The largest answer kept by default (DynamoDB's are far smaller). */
#define NGX_HTTP_USAGE_GATE_CURL_BODY_MAX   65536

/* Connections a worker keeps to one host, and in its cache. */
#define NGX_HTTP_USAGE_GATE_CURL_HOST_CONNS 64


typedef struct ngx_http_usage_gate_curl_req_s
    ngx_http_usage_gate_curl_req_t;

/*
 * Called once per request that was not cancelled, always from the event
 * loop (never from inside ngx_http_usage_gate_curl_start/post).
 *
 * rc NGX_OK: an HTTP answer came; http_status is its status (any, 2xx
 *     or not) and body its bytes.
 * rc NGX_ERROR: no answer (connect, resolve, timeout, reset, answer over
 *     the cap, out of connections); http_status is 0, error a short
 *     static reason ("Timeout", "ConnectFailed", "ResolveFailed",
 *     "SendFailed", "RecvFailed", "TlsFailed", "ResponseTooLarge",
 *     "NoConnection", "TransportError") fit for ug_ddb_parse_error() and
 *     metrics labels, and body curl's detailed message for the log.
 *
 * body is valid only during the call.  The request object is freed when
 * the callback returns: do not cancel it afterwards.
 */
typedef void (*ngx_http_usage_gate_curl_done_pt)(void *data, ngx_int_t rc,
    long http_status, ngx_str_t *body, const char *error);


typedef struct {
    const char             *method;      /* "GET", "PUT" or "POST" */
    const char             *url;         /* http:// or https:// */
    ngx_str_t               body;        /* sent with PUT and POST */
    const char *const      *headers;     /* "Name: value" strings, ending
                                            with NULL; or NULL */
    ngx_msec_t              connect_timeout;  /* 0: curl's default */
    ngx_msec_t              timeout;     /* the whole request; 0: none */
    size_t                  max_response;     /* 0: ..._CURL_BODY_MAX */

    /* Sign with AWS SigV4 when creds is set: "aws:amz:<region>:<svc>" */
    const ug_aws_creds_t   *creds;
    const char             *sigv4;
} ngx_http_usage_gate_curl_opts_t;


/*
 * Per-worker setup and teardown, for the module's init_process and
 * exit_process.  init is idempotent and does nothing outside worker (or
 * single) processes, so the cache manager and loader may call it too;
 * start/post call it themselves if the module did not.  done cancels what
 * is still pending (callbacks are not called) and releases every
 * connection.
 */
ngx_int_t ngx_http_usage_gate_curl_init(ngx_cycle_t *cycle);
void ngx_http_usage_gate_curl_done(ngx_cycle_t *cycle);

/*
 * Starts a request; everything in opts is copied.  Returns NULL (and the
 * callback will not be called) if it could not be started: no url, creds
 * without sigv4, a header with a control character, out of memory.  log
 * must stay valid until the callback or a cancel.
 */
ngx_http_usage_gate_curl_req_t *ngx_http_usage_gate_curl_start(
    ngx_log_t *log, const ngx_http_usage_gate_curl_opts_t *opts,
    ngx_http_usage_gate_curl_done_pt done, void *data);

/*
 * A DynamoDB call: POST url with Content-Type application/x-amz-json-1.0,
 * X-Amz-Target DynamoDB_20120810.<op> ("UpdateItem"), signed by curl's
 * SigV4 for "aws:amz:<region>:dynamodb", with X-Amz-Security-Token (also
 * signed) when creds has a session token.
 */
ngx_http_usage_gate_curl_req_t *ngx_http_usage_gate_curl_post(
    ngx_log_t *log, const char *url, const char *op, ngx_str_t *body,
    ngx_msec_t connect_timeout, ngx_msec_t timeout,
    const ug_aws_creds_t *creds, const char *region,
    ngx_http_usage_gate_curl_done_pt done, void *data);

/*
 * Stops a request and frees it; its callback is never called.  Safe on
 * NULL, and from inside the request's own callback (a no-op there).
 */
void ngx_http_usage_gate_curl_cancel(ngx_http_usage_gate_curl_req_t *req);

/* Requests in flight in this worker (for metrics and tests). */
ngx_uint_t ngx_http_usage_gate_curl_pending(void);


#endif /* _NGX_HTTP_USAGE_GATE_CURL_H_INCLUDED_ */
