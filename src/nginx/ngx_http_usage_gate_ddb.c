/*
 * DynamoDB as the fleet's shared store (issue 4).
 *
 * Each owner's node in the zone carries a small DynamoDB state after its
 * name: the table's count at the last answer (base), the units to add to
 * the table at the next sync (pending: usage allowed here and not yet
 * written), the units this node has claimed in the table ahead of use
 * (claimed, auto mode), and whether the table said the owner is at its
 * limit.  The zone's month_used of such an owner is base - claimed +
 * pending: the node's best view of the fleet-wide usage.
 *
 * Modes, for plans with a monthly limit (plans without one always decide
 * in the zone and sync later):
 *
 *   strict  every allowed request is one conditional UpdateItem (ADD cost
 *           with the limit as ceiling); the request waits for it,
 *           suspended in the precontent phase, where the gate runs.
 *   async   the zone decides as without DynamoDB; the sync flushes.
 *   auto    a request's conditional write also claims a block of units
 *           for the requests that follow (ADD cost + block, same
 *           ceiling); they are allowed here without a write while the
 *           claim lasts.  Blocks double while the owner is busy and are
 *           at most a quarter of what the table has left, so near the
 *           limit they shrink to nothing and every request is strict.
 *           Every allowed unit was covered by a conditional write: exact
 *           for any number of nodes.  The sync gives unused claims back
 *           (a negative ADD), so the table counts what was used.
 *
 * The sync: one worker per zone at a time walks the owners with pending
 * units or claims (a queue in the zone) and sends one ADD for each, at
 * most NGX_HTTP_USAGE_GATE_DDB_FLUSH_MAX at once.  Units leave the zone
 * only when DynamoDB has acknowledged them; a failed write gives them
 * back for the next round, and the state file carries them across
 * restarts.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_ddb.h"
#include "ngx_http_usage_gate_curl.h"
#include "ug_aws.h"
#include "ug_ddb.h"
#include "ug_time.h"


#define NGX_HTTP_USAGE_GATE_DDB_STRICT      1
#define NGX_HTTP_USAGE_GATE_DDB_ASYNC       2
#define NGX_HTTP_USAGE_GATE_DDB_AUTO        3

#define NGX_HTTP_USAGE_GATE_DDB_ALLOW       0
#define NGX_HTTP_USAGE_GATE_DDB_DENY        1

/* sync writes one worker keeps in flight for a zone */
#define NGX_HTTP_USAGE_GATE_DDB_FLUSH_MAX   32

/* AWS error types counted per zone; the last slot takes the rest */
#define NGX_HTTP_USAGE_GATE_DDB_ERRORS      16
#define NGX_HTTP_USAGE_GATE_DDB_TYPE_LEN    48

/*
 * How long a ConditionalCheckFailed answer stands for an owner: later
 * requests get 402 without a write (failed conditional writes are billed)
 * until a sync shows room, the admin API changes the owner here, or this
 * time passes (an admin change made on another node).
 */
#define NGX_HTTP_USAGE_GATE_DDB_AT_LIMIT    60

/* auto mode: the largest block a write claims ahead of use */
#define NGX_HTTP_USAGE_GATE_DDB_BLOCK_MAX   1024

/* a keep period for the TTL attribute unless ttl_keep= says otherwise */
#define NGX_HTTP_USAGE_GATE_DDB_TTL_KEEP    (400 * 86400)

#define NGX_HTTP_USAGE_GATE_DDB_REGION_MAX  32

/* flags of an owner's state */
#define NGX_HTTP_USAGE_GATE_DDB_BASE        0x01   /* base is the table's */
#define NGX_HTTP_USAGE_GATE_DDB_CLAIMING    0x02   /* a claim in flight */
#define NGX_HTTP_USAGE_GATE_DDB_DIRTY       0x04   /* in the sync queue */
#define NGX_HTTP_USAGE_GATE_DDB_USED        0x08   /* claims used lately */


/*
 * An owner's DynamoDB state, after its name in the zone's node (64 bytes).
 * pending may be negative: claims given back whose write failed.
 */
typedef struct {
    ngx_queue_t                      dirty;
    uint64_t                         base;
    int64_t                          pending;       /* for month */
    int64_t                          old_pending;   /* for old_month */
    int32_t                          month;         /* 0: not yet set */
    int32_t                          old_month;
    uint32_t                         claimed;
    uint32_t                         block;         /* the last claim */
    uint32_t                         at_limit_until;  /* unix s; 0 */
    uint16_t                         flags;
    uint16_t                         back;          /* bytes from the node */
} ngx_http_usage_gate_ddb_node_t;


typedef struct {
    u_char                           type[NGX_HTTP_USAGE_GATE_DDB_TYPE_LEN];
    ngx_atomic_t                     count;
} ngx_http_usage_gate_ddb_err_t;


/* The zone-wide part, in the zone's memory. */
typedef struct {
    ngx_queue_t                      dirty;
    ngx_uint_t                       dirty_n;
    ngx_atomic_t                     syncer;        /* pid, or 0 */
    ngx_atomic_t                     sync_started;  /* ngx_current_msec */
    ngx_atomic_t                     last_ok;       /* unix s; 0: never */
    ngx_atomic_t                     backlog;       /* units unwritten */
    ngx_atomic_t                     writes;        /* UpdateItem calls */
    ngx_atomic_t                     down_until;    /* ngx_current_msec */
    ngx_http_usage_gate_ddb_err_t    errors[NGX_HTTP_USAGE_GATE_DDB_ERRORS];
} ngx_http_usage_gate_ddb_sh_t;


typedef struct ngx_http_usage_gate_ddb_conf_s  ngx_http_usage_gate_ddb_conf_t;


/* One sync write in flight. */
typedef struct {
    ngx_http_usage_gate_ddb_conf_t  *conf;
    ngx_http_usage_gate_curl_req_t  *curl;
    int64_t                          delta;
    uint64_t                         usage;        /* its positive part */
    int32_t                          month;
    unsigned                         busy:1;
    size_t                           len;
    u_char                           owner[UG_OWNER_MAX];
} ngx_http_usage_gate_ddb_flush_t;


struct ngx_http_usage_gate_ddb_conf_s {
    ngx_shm_zone_t                  *shm_zone;
    ngx_str_t                        table;        /* NUL-terminated */
    char                             region[NGX_HTTP_USAGE_GATE_DDB_REGION_MAX
                                            + 1];
    char                            *endpoint;     /* NUL-terminated */
    ngx_uint_t                       mode;
    ngx_msec_t                       sync;
    ngx_msec_t                       timeout;
    ngx_msec_t                       connect_timeout;
    ngx_uint_t                       on_error;
    ngx_str_t                        profile;      /* NUL-terminated */
    ngx_str_t                        ttl;          /* NUL-terminated */
    time_t                           ttl_keep;
    u_char                          *file;
    ngx_uint_t                       line;

    /* the shared credentials file's, read with the configuration */
    ug_aws_creds_t                  *file_creds;

    /* per worker */
    ngx_event_t                      sync_event;
    ngx_uint_t                       syncing;      /* holds the claim */
    ngx_uint_t                       budget;       /* owners left */
    ngx_uint_t                       inflight;
    ngx_uint_t                       failed;       /* in this round */
    time_t                           logged;
    ngx_http_usage_gate_ddb_flush_t *flush;
};


/* A request that waits for the table, in its pool. */
typedef struct {
    ngx_http_request_t              *r;
    ngx_http_usage_gate_zone_t      *zone;
    ngx_http_usage_gate_ddb_conf_t  *conf;
    ngx_http_usage_gate_curl_req_t  *curl;
    ngx_event_t                      retry;
    ngx_queue_t                      queue;        /* waiting, per worker */
    ngx_str_t                        body;
    ngx_str_t                        owner;
    ug_limits_t                      limits;
    ug_decision_t                   *d;
    ngx_msec_t                       deadline;
    ngx_uint_t                       attempts;
    uint64_t                         cost;
    uint64_t                         taken;        /* pending carried */
    uint64_t                         extra;        /* units claimed */
    int32_t                          month;
    ngx_uint_t                       state;
    ngx_int_t                        rc;           /* for the handler */
    unsigned                         queued:1;
} ngx_http_usage_gate_ddb_req_t;

enum {
    NGX_HTTP_USAGE_GATE_DDB_NEW = 0,
    NGX_HTTP_USAGE_GATE_DDB_WAITING,
    NGX_HTTP_USAGE_GATE_DDB_ANSWERED,
    NGX_HTTP_USAGE_GATE_DDB_FINISHED
};

/* what the locked decision asks for */
enum {
    NGX_HTTP_USAGE_GATE_DDB_LOCAL = 0,
    NGX_HTTP_USAGE_GATE_DDB_FULL,
    NGX_HTTP_USAGE_GATE_DDB_WRITE,
    NGX_HTTP_USAGE_GATE_DDB_DOWN,
    NGX_HTTP_USAGE_GATE_DDB_CLAIM         /* LOCAL, and claim more */
};

/* what the table said */
enum {
    NGX_HTTP_USAGE_GATE_DDB_OK = 0,
    NGX_HTTP_USAGE_GATE_DDB_QUOTA,
    NGX_HTTP_USAGE_GATE_DDB_FAILED
};


/* A write no request waits for: an admin write-through, or a claim. */
typedef struct {
    ngx_queue_t                      queue;
    ngx_http_usage_gate_curl_req_t  *curl;
    ngx_http_usage_gate_zone_t      *zone;
    uint64_t                         extra;        /* a claim's units */
    int32_t                          month;
    size_t                           len;
    u_char                           owner[UG_OWNER_MAX];
} ngx_http_usage_gate_ddb_admin_t;


/* Credentials, per worker. */
enum {
    NGX_HTTP_USAGE_GATE_AWS_NONE = 0,
    NGX_HTTP_USAGE_GATE_AWS_ECS,
    NGX_HTTP_USAGE_GATE_AWS_IMDS_TOKEN,
    NGX_HTTP_USAGE_GATE_AWS_IMDS_ROLE,
    NGX_HTTP_USAGE_GATE_AWS_IMDS_CREDS
};

typedef struct {
    ug_aws_creds_t                   env;
    ug_aws_creds_t                   remote;
    ngx_uint_t                       have_env;
    ngx_uint_t                       have_remote;
    ngx_uint_t                       remote_kind;  /* ECS or IMDS_TOKEN */
    ngx_uint_t                       step;         /* fetch in progress */
    ngx_uint_t                       alerted;
    ngx_http_usage_gate_curl_req_t  *req;
    ngx_event_t                      refresh;
    ngx_log_t                       *log;
    char                             url[UG_AWS_URL_MAX];
    char                             header[UG_AWS_TOKEN_MAX + 64];
    char                             token[UG_AWS_IMDS_TOKEN_MAX + 1];
} ngx_http_usage_gate_ddb_aws_t;


static ngx_uint_t ngx_http_usage_gate_ddb_locked(
    ngx_http_usage_gate_ddb_req_t *dr, uint64_t now_us);
static ngx_int_t ngx_http_usage_gate_ddb_body(
    ngx_http_usage_gate_ddb_conf_t *dc, ngx_pool_t *pool, u_char *owner,
    size_t len, int32_t month, int64_t delta, int64_t limit,
    ngx_str_t *body, ngx_log_t *log);
static ngx_int_t ngx_http_usage_gate_ddb_send(
    ngx_http_usage_gate_ddb_req_t *dr);
static void ngx_http_usage_gate_ddb_answered(void *data, ngx_int_t rc,
    long status, ngx_str_t *body, const char *error);
static void ngx_http_usage_gate_ddb_retry(ngx_event_t *ev);
static void ngx_http_usage_gate_ddb_settle(ngx_http_usage_gate_ddb_req_t *dr,
    ngx_uint_t outcome, uint64_t count);
static void ngx_http_usage_gate_ddb_unclaim(ngx_http_usage_gate_ddb_req_t *dr,
    ngx_uint_t refused);
static void ngx_http_usage_gate_ddb_wake(ngx_http_usage_gate_ddb_req_t *dr);
static void ngx_http_usage_gate_ddb_cleanup(void *data);

static ngx_http_usage_gate_ddb_node_t *ngx_http_usage_gate_ddb_state(
    ngx_http_usage_gate_node_t *un);
static int64_t ngx_http_usage_gate_ddb_roll(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_ddb_node_t *st, int32_t month);
static int64_t ngx_http_usage_gate_ddb_add(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_ddb_node_t *st, int32_t month, int64_t units,
    ngx_uint_t fresh);
static void ngx_http_usage_gate_ddb_dirty(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_ddb_node_t *st);
static void ngx_http_usage_gate_ddb_used(ngx_http_usage_gate_node_t *un,
    ngx_http_usage_gate_ddb_node_t *st);
static void ngx_http_usage_gate_ddb_lost(ngx_http_usage_gate_zone_t *zone,
    u_char *owner, size_t len, int64_t units, ngx_log_t *log);
static ug_ddb_class_t ngx_http_usage_gate_ddb_parse(ngx_int_t rc,
    long status, ngx_str_t *body, const char *error, ug_ddb_result_t *res);
static void ngx_http_usage_gate_ddb_error(ngx_http_usage_gate_zone_t *zone,
    ug_ddb_result_t *res, const char *what, ngx_log_t *log);

static void ngx_http_usage_gate_ddb_sync_timer(ngx_event_t *ev);
static void ngx_http_usage_gate_ddb_sync_fill(
    ngx_http_usage_gate_ddb_conf_t *dc);
static void ngx_http_usage_gate_ddb_flushed(void *data, ngx_int_t rc,
    long status, ngx_str_t *body, const char *error);
static void ngx_http_usage_gate_ddb_flush_result(
    ngx_http_usage_gate_ddb_flush_t *f, ug_ddb_result_t *res);
static void ngx_http_usage_gate_ddb_sync_end(
    ngx_http_usage_gate_ddb_conf_t *dc);

static void ngx_http_usage_gate_ddb_admin_done(void *data, ngx_int_t rc,
    long status, ngx_str_t *body, const char *error);
static void ngx_http_usage_gate_ddb_claim(ngx_http_usage_gate_ddb_req_t *dr);
static void ngx_http_usage_gate_ddb_claimed(void *data, ngx_int_t rc,
    long status, ngx_str_t *body, const char *error);
static uint64_t ngx_http_usage_gate_ddb_block(
    ngx_http_usage_gate_ddb_node_t *st, int64_t limit, uint64_t more);

static void ngx_http_usage_gate_ddb_file_creds(ngx_conf_t *cf,
    ngx_http_usage_gate_ddb_conf_t *dc);
static const ug_aws_creds_t *ngx_http_usage_gate_ddb_creds(
    ngx_http_usage_gate_ddb_conf_t *dc);
static void ngx_http_usage_gate_ddb_aws_fetch(ngx_event_t *ev);
static void ngx_http_usage_gate_ddb_aws_done(void *data, ngx_int_t rc,
    long status, ngx_str_t *body, const char *error);
static void ngx_http_usage_gate_ddb_aws_failed(const char *why);
static void ngx_http_usage_gate_ddb_no_creds(ngx_log_t *log);


/* per worker */
static ngx_http_usage_gate_ddb_aws_t  *ngx_http_usage_gate_ddb_aws;
static ngx_queue_t                     ngx_http_usage_gate_ddb_waiting;
static ngx_queue_t                     ngx_http_usage_gate_ddb_admins;
static ngx_uint_t                      ngx_http_usage_gate_ddb_running;

static ngx_str_t  ngx_http_usage_gate_ddb_unavailable =
    ngx_string("The usage store (DynamoDB) is unavailable; try again later");


/* ------------------------------------------------------------ directive */

/*
 * Regions are named <area>-<place>-<digit>: us-east-1, ap-southeast-2,
 * us-gov-west-1.  ug_ddb_region_ok() checks the bytes (they go into the
 * URL and the signature); this catches a word that is no region at all.
 */
static ngx_uint_t
ngx_http_usage_gate_ddb_region_shape(ngx_str_t *v)
{
    ngx_uint_t  i, dashes;

    dashes = 0;

    for (i = 0; i < v->len; i++) {
        if (v->data[i] == '-') {
            dashes++;
        }
    }

    return dashes >= 2 && v->data[0] >= 'a' && v->data[0] <= 'z'
           && v->data[v->len - 1] >= '0' && v->data[v->len - 1] <= '9';
}


/*
 * usage_gate_dynamodb zone=NAME table=NAME region=NAME [endpoint=URL]
 *     [mode=strict|async|auto] [sync=TIME] [timeout=TIME]
 *     [connect_timeout=TIME] [on_error=allow|deny] [profile=NAME]
 *     [ttl=ATTR] [ttl_keep=TIME];
 */
char *
ngx_http_usage_gate_dynamodb(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_usage_gate_main_conf_t *mcf = conf;

    int                              rc;
    char                             buf[UG_DDB_BODY_MAX];
    size_t                           len;
    ngx_str_t                       *value, v, zname, *arg;
    ngx_int_t                        t, ms;
    ngx_uint_t                       i;
    ug_ddb_item_t                    item;
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_usage_gate_zone_t      *zone;
    ngx_http_usage_gate_zone_ref_t  *ref;
    ngx_http_usage_gate_ddb_conf_t  *dc, *prev, **dcp;

    static ngx_str_t  keys[] = {
        ngx_string("zone="), ngx_string("table="), ngx_string("region="),
        ngx_string("endpoint="), ngx_string("mode="), ngx_string("sync="),
        ngx_string("timeout="), ngx_string("connect_timeout="),
        ngx_string("on_error="), ngx_string("profile="), ngx_string("ttl="),
        ngx_string("ttl_keep="), ngx_null_string
    };

    dc = ngx_pcalloc(cf->pool, sizeof(ngx_http_usage_gate_ddb_conf_t));
    if (dc == NULL) {
        return NGX_CONF_ERROR;
    }

    dc->mode = NGX_HTTP_USAGE_GATE_DDB_AUTO;
    dc->sync = 1000;
    dc->timeout = 2000;
    dc->connect_timeout = NGX_CONF_UNSET_MSEC;
    dc->on_error = NGX_HTTP_USAGE_GATE_DDB_ALLOW;
    dc->ttl_keep = NGX_HTTP_USAGE_GATE_DDB_TTL_KEEP;
    dc->file = cf->conf_file->file.name.data;
    dc->line = cf->conf_file->line;

    ngx_str_null(&zname);

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        arg = &value[i];

        for (t = 0; keys[t].len; t++) {
            if (arg->len >= keys[t].len
                && ngx_strncmp(arg->data, keys[t].data, keys[t].len) == 0)
            {
                break;
            }
        }

        if (keys[t].len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate_dynamodb: unknown parameter "
                               "\"%V\" (use zone=, table=, region=, "
                               "endpoint=, mode=, sync=, timeout=, "
                               "connect_timeout=, on_error=, profile=, "
                               "ttl= or ttl_keep=)", arg);
            return NGX_CONF_ERROR;
        }

        v.data = arg->data + keys[t].len;
        v.len = arg->len - keys[t].len;

        if (v.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate_dynamodb: \"%V\" has no value",
                               arg);
            return NGX_CONF_ERROR;
        }

        switch (t) {

        case 0: /* zone= */
            zname = v;
            break;

        case 1: /* table= */
            if (!ug_ddb_table_name_ok((char *) v.data, v.len)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_dynamodb: invalid table name "
                                   "\"%V\": 3 to 255 of A-Z a-z 0-9 _ . -",
                                   &v);
                return NGX_CONF_ERROR;
            }

            dc->table = v;
            break;

        case 2: /* region= */
            if (v.len > NGX_HTTP_USAGE_GATE_DDB_REGION_MAX
                || !ug_ddb_region_ok((char *) v.data, v.len)
                || !ngx_http_usage_gate_ddb_region_shape(&v))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_dynamodb: invalid region "
                                   "\"%V\" (an AWS region such as "
                                   "us-east-1)", &v);
                return NGX_CONF_ERROR;
            }

            ngx_memcpy(dc->region, v.data, v.len);
            dc->region[v.len] = '\0';
            break;

        case 3: /* endpoint= */
            if (!((v.len > 7 && ngx_strncmp(v.data, "http://", 7) == 0)
                  || (v.len > 8 && ngx_strncmp(v.data, "https://", 8) == 0))
                || v.len > 1024)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_dynamodb: invalid endpoint "
                                   "\"%V\": an http:// or https:// URL",
                                   &v);
                return NGX_CONF_ERROR;
            }

            dc->endpoint = (char *) v.data;
            break;

        case 4: /* mode= */
            if (v.len == 6 && ngx_strncmp(v.data, "strict", 6) == 0) {
                dc->mode = NGX_HTTP_USAGE_GATE_DDB_STRICT;

            } else if (v.len == 5 && ngx_strncmp(v.data, "async", 5) == 0) {
                dc->mode = NGX_HTTP_USAGE_GATE_DDB_ASYNC;

            } else if (v.len == 4 && ngx_strncmp(v.data, "auto", 4) == 0) {
                dc->mode = NGX_HTTP_USAGE_GATE_DDB_AUTO;

            } else {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_dynamodb: unknown mode "
                                   "\"%V\" (use strict, async or auto)", &v);
                return NGX_CONF_ERROR;
            }

            break;

        case 5: /* sync= */
        case 6: /* timeout= */
        case 7: /* connect_timeout= */
            ms = ngx_parse_time(&v, 0);

            if (ms == NGX_ERROR || ms < 100 || ms > 3600000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_dynamodb: invalid \"%V\": a "
                                   "time from 100ms to 1h", arg);
                return NGX_CONF_ERROR;
            }

            if (t == 5) {
                dc->sync = (ngx_msec_t) ms;

            } else if (t == 6) {
                dc->timeout = (ngx_msec_t) ms;

            } else {
                dc->connect_timeout = (ngx_msec_t) ms;
            }

            break;

        case 8: /* on_error= */
            if (v.len == 5 && ngx_strncmp(v.data, "allow", 5) == 0) {
                dc->on_error = NGX_HTTP_USAGE_GATE_DDB_ALLOW;

            } else if (v.len == 4 && ngx_strncmp(v.data, "deny", 4) == 0) {
                dc->on_error = NGX_HTTP_USAGE_GATE_DDB_DENY;

            } else {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_dynamodb: invalid \"%V\" "
                                   "(use on_error=allow or on_error=deny)",
                                   arg);
                return NGX_CONF_ERROR;
            }

            break;

        case 9: /* profile= */
            if (v.len > UG_AWS_PROFILE_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_dynamodb: profile name "
                                   "\"%V\" is longer than %d bytes", &v,
                                   UG_AWS_PROFILE_MAX);
                return NGX_CONF_ERROR;
            }

            dc->profile = v;
            break;

        case 10: /* ttl= */
            dc->ttl = v;
            break;

        default: /* ttl_keep= */
            ms = ngx_parse_time(&v, 1);

            if (ms == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "usage_gate_dynamodb: invalid \"%V\" "
                                   "(e.g. 400d)", arg);
                return NGX_CONF_ERROR;
            }

            dc->ttl_keep = (time_t) ms;
            break;
        }
    }

    if (zname.len == 0 || dc->table.len == 0 || dc->region[0] == '\0') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_dynamodb: \"%s\" is required",
                           zname.len == 0 ? "zone="
                           : dc->table.len == 0 ? "table=" : "region=");
        return NGX_CONF_ERROR;
    }

    if (dc->connect_timeout == NGX_CONF_UNSET_MSEC) {
        dc->connect_timeout = ngx_min(dc->timeout, 1000);
    }

    if (dc->endpoint == NULL) {
        dc->endpoint = ngx_pnalloc(cf->pool, UG_DDB_ENDPOINT_MAX);
        if (dc->endpoint == NULL) {
            return NGX_CONF_ERROR;
        }

        if (ug_ddb_endpoint(dc->endpoint, UG_DDB_ENDPOINT_MAX, dc->region)
            != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate_dynamodb: no endpoint for region "
                               "\"%s\"; set endpoint=", dc->region);
            return NGX_CONF_ERROR;
        }
    }

    /* the same checks the request bodies get, once, with a sample owner:
     * a bad ttl= attribute is refused here rather than at every write */
    if (dc->ttl.len) {
        ngx_memzero(&item, sizeof(ug_ddb_item_t));
        item.table = (char *) dc->table.data;
        item.table_len = dc->table.len;
        item.owner = "owner";
        item.owner_len = 5;
        item.month = ug_month_index((int64_t) ngx_time());
        item.ttl_attr = (char *) dc->ttl.data;
        item.ttl_attr_len = dc->ttl.len;
        item.ttl_at = ug_ddb_ttl_at(item.month, dc->ttl_keep);

        rc = ug_ddb_build_add(buf, sizeof(buf), &len, &item, 1, -1);

        if (rc != UG_DDB_BUILD_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "usage_gate_dynamodb: invalid \"ttl=%V\": 1 "
                               "to 64 of A-Z a-z 0-9 _ . -, and not owner, "
                               "month or count", &dc->ttl);
            return NGX_CONF_ERROR;
        }
    }

    shm_zone = ngx_http_usage_gate_zone_add(cf, &zname, 0);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone = shm_zone->data;

    if (zone->ddb) {
        prev = zone->ddb;

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "usage_gate_dynamodb: zone \"%V\" already has a "
                           "usage_gate_dynamodb in %s:%ui", &zname,
                           prev->file, prev->line);
        return NGX_CONF_ERROR;
    }

    dc->shm_zone = shm_zone;
    zone->ddb = dc;
    zone->node_extra = sizeof(ngx_http_usage_gate_ddb_node_t);

    /* an undeclared zone is reported once http{} is read */
    ref = ngx_array_push(&mcf->refs);
    if (ref == NULL) {
        return NGX_CONF_ERROR;
    }

    ref->directive = "usage_gate_dynamodb";
    ref->shm_zone = shm_zone;
    ref->file = dc->file;
    ref->line = dc->line;

    if (mcf->ddb == NULL) {
        mcf->ddb = ngx_array_create(cf->pool, 1,
                                    sizeof(ngx_http_usage_gate_ddb_conf_t *));
        if (mcf->ddb == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    dcp = ngx_array_push(mcf->ddb);
    if (dcp == NULL) {
        return NGX_CONF_ERROR;
    }

    *dcp = dc;

    return NGX_CONF_OK;
}


char *
ngx_http_usage_gate_ddb_init_main_conf(ngx_conf_t *cf,
    ngx_http_usage_gate_main_conf_t *mcf)
{
    ngx_uint_t                        i;
    ngx_http_usage_gate_ddb_conf_t  **dcp;

    if (mcf->ddb == NULL) {
        return NGX_CONF_OK;
    }

    dcp = mcf->ddb->elts;

    for (i = 0; i < mcf->ddb->nelts; i++) {
        ngx_http_usage_gate_ddb_file_creds(cf, dcp[i]);
    }

    return NGX_CONF_OK;
}


/*
 * The shared credentials file is read with the configuration, by the
 * master: it has the environment that names the file ($HOME is not
 * passed to workers) and usually the rights to read it.
 */
static void
ngx_http_usage_gate_ddb_file_creds(ngx_conf_t *cf,
    ngx_http_usage_gate_ddb_conf_t *dc)
{
    int              rc;
    char             path[4096];
    u_char          *text;
    ssize_t          n;
    ngx_fd_t         fd;
    const char      *profile;
    ug_aws_creds_t  *c;
    ngx_file_info_t  fi;

    if (ug_aws_credentials_path(path, sizeof(path),
                                getenv("AWS_SHARED_CREDENTIALS_FILE"),
                                getenv("HOME"))
        != 0)
    {
        return;
    }

    profile = dc->profile.len ? (char *) dc->profile.data
                              : ug_aws_profile(getenv("AWS_PROFILE"));

    fd = ngx_open_file(path, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        if (dc->profile.len) {
            ngx_log_error(NGX_LOG_WARN, cf->log, ngx_errno,
                          "usage_gate_dynamodb: cannot read the AWS "
                          "credentials file \"%s\" for profile \"%s\"",
                          path, profile);
        }

        return;
    }

    text = NULL;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > UG_AWS_FILE_MAX)
    {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "usage_gate_dynamodb: AWS credentials file \"%s\" is "
                      "not a file of at most %d bytes; not used", path,
                      UG_AWS_FILE_MAX);
        goto done;
    }

    text = ngx_alloc(ngx_file_size(&fi) + 1, cf->log);
    if (text == NULL) {
        goto done;
    }

    n = ngx_read_fd(fd, text, ngx_file_size(&fi));
    if (n < 0) {
        ngx_log_error(NGX_LOG_WARN, cf->log, ngx_errno,
                      "usage_gate_dynamodb: cannot read the AWS credentials "
                      "file \"%s\"", path);
        goto done;
    }

    c = ngx_pcalloc(cf->pool, sizeof(ug_aws_creds_t));
    if (c == NULL) {
        goto done;
    }

    rc = ug_aws_creds_from_ini(c, (char *) text, (size_t) n, profile);

    if (rc == UG_AWS_OK) {
        dc->file_creds = c;

    } else if (rc != UG_AWS_NO_PROFILE || dc->profile.len) {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "usage_gate_dynamodb: AWS credentials file \"%s\", "
                      "profile \"%s\": %s; not used", path, profile,
                      ug_aws_strerror(rc));
    }

    /* the secret is in c now; leave no second copy in freed memory */
    ngx_explicit_memzero(text, (size_t) n);

done:

    if (text) {
        ngx_free(text);
    }

    (void) ngx_close_file(fd);
}


/* ----------------------------------------------------------- the zone */

ngx_int_t
ngx_http_usage_gate_ddb_init_zone(ngx_http_usage_gate_zone_t *zone,
    ngx_log_t *log)
{
    ngx_http_usage_gate_ddb_sh_t  *dsh;

    if (zone->ddb == NULL || zone->sh->ddb != NULL) {
        return NGX_OK;
    }

    dsh = ngx_slab_alloc(zone->shpool, sizeof(ngx_http_usage_gate_ddb_sh_t));
    if (dsh == NULL) {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "usage_gate_zone \"%V\": no room for the DynamoDB "
                      "state", &zone->name);
        return NGX_ERROR;
    }

    ngx_memzero(dsh, sizeof(ngx_http_usage_gate_ddb_sh_t));
    ngx_queue_init(&dsh->dirty);

    zone->sh->ddb = dsh;

    return NGX_OK;
}


static ngx_http_usage_gate_ddb_node_t *
ngx_http_usage_gate_ddb_state(ngx_http_usage_gate_node_t *un)
{
    ngx_http_usage_gate_ddb_node_t  *st;

    st = ngx_http_usage_gate_node_extra(un);
    st->back = (uint16_t) ((u_char *) st - (u_char *) un);

    return st;
}


/*
 * Under the lock: the owner's state moves to another month.  What was
 * still to be written for the month it leaves (usage, less the claims it
 * did not use) moves to the old slot; if that slot holds a third month's
 * (DynamoDB unreachable for over a month), those are lost, and their
 * number is returned for the log.
 */
static int64_t
ngx_http_usage_gate_ddb_roll(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_ddb_node_t *st, int32_t month)
{
    int64_t                        lost, left;
    ngx_http_usage_gate_ddb_sh_t  *dsh;

    if (st->month >= month) {
        return 0;
    }

    dsh = zone->sh->ddb;
    lost = 0;
    left = st->pending - (int64_t) st->claimed;

    /* usage covered by unused claims is in the table already */
    if (st->pending > 0) {
        dsh->backlog -= ngx_min((uint64_t) st->pending,
                                (uint64_t) st->claimed);
    }

    if (left != 0) {
        if (st->old_pending != 0 && st->old_month != st->month) {
            lost = st->old_pending;

            if (lost > 0) {
                dsh->backlog -= (ngx_atomic_uint_t) lost;
            }

            st->old_pending = 0;
        }

        st->old_month = st->month;
        st->old_pending += left;
    }

    st->month = month;
    st->base = 0;
    st->pending = 0;
    st->claimed = 0;
    st->block = 0;
    st->at_limit_until = 0;
    st->flags &= ~(NGX_HTTP_USAGE_GATE_DDB_BASE|NGX_HTTP_USAGE_GATE_DDB_USED);

    return lost;
}


/*
 * Under the lock: units to add to the table for an owner's month at the
 * next sync.  Fresh units are new usage (the backlog grows); others come
 * back from a write that failed; negative ones are claims to give back.
 * Returns the units that could not be kept (see the roll above).
 */
static int64_t
ngx_http_usage_gate_ddb_add(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_ddb_node_t *st, int32_t month, int64_t units,
    ngx_uint_t fresh)
{
    int64_t                        lost;
    ngx_http_usage_gate_ddb_sh_t  *dsh;

    if (units == 0) {
        return 0;
    }

    dsh = zone->sh->ddb;
    lost = 0;

    if (st->month == 0) {
        st->month = month;
    }

    if (month > st->month) {
        lost = ngx_http_usage_gate_ddb_roll(zone, st, month);
    }

    if (month == st->month) {
        st->pending += units;

    } else if (st->old_pending == 0 || st->old_month == month) {
        st->old_month = month;
        st->old_pending += units;

    } else {
        if (!fresh && units > 0) {
            dsh->backlog -= (ngx_atomic_uint_t) units;
        }

        return lost + units;
    }

    if (fresh && units > 0) {
        dsh->backlog += (ngx_atomic_uint_t) units;
    }

    ngx_http_usage_gate_ddb_dirty(zone, st);

    return lost;
}


/*
 * Under the lock: the sync is to visit the owner.  And this worker's sync
 * timer is to hold a graceful exit back until it has fired once more
 * (within a second), so that the last round writes this.
 */
static void
ngx_http_usage_gate_ddb_dirty(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_ddb_node_t *st)
{
    ngx_http_usage_gate_ddb_sh_t    *dsh;
    ngx_http_usage_gate_ddb_conf_t  *dc;

    dsh = zone->sh->ddb;
    dc = zone->ddb;

    dc->sync_event.cancelable = 0;

    if (!(st->flags & NGX_HTTP_USAGE_GATE_DDB_DIRTY)) {
        st->flags |= NGX_HTTP_USAGE_GATE_DDB_DIRTY;
        ngx_queue_insert_tail(&dsh->dirty, &st->dirty);
        dsh->dirty_n++;
    }
}


/* Under the lock: the zone's view of the owner's usage this month. */
static void
ngx_http_usage_gate_ddb_used(ngx_http_usage_gate_node_t *un,
    ngx_http_usage_gate_ddb_node_t *st)
{
    int64_t  used;

    if (un->counter.month != st->month) {
        return;
    }

    used = (int64_t) st->base - (int64_t) st->claimed + st->pending;

    un->counter.month_used = used > 0 ? (uint64_t) used : 0;
}


static void
ngx_http_usage_gate_ddb_lost(ngx_http_usage_gate_zone_t *zone, u_char *owner,
    size_t len, int64_t units, ngx_log_t *log)
{
    if (units == 0) {
        return;
    }

    ngx_log_error(NGX_LOG_ALERT, log, 0,
                  "usage_gate_dynamodb: zone \"%V\": %L units of owner "
                  "\"%*s\" could not be kept for DynamoDB (unreachable for "
                  "over a month, or the zone is full)", &zone->name, units,
                  len, owner);
}


ngx_uint_t
ngx_http_usage_gate_ddb_keep(ngx_http_usage_gate_node_t *un)
{
    ngx_http_usage_gate_ddb_node_t  *st;

    st = ngx_http_usage_gate_node_extra(un);

    /* units to write, claims to give back, or a claim in flight */
    return (st->flags & (NGX_HTTP_USAGE_GATE_DDB_DIRTY
                         |NGX_HTTP_USAGE_GATE_DDB_CLAIMING)) ? 1 : 0;
}


void
ngx_http_usage_gate_ddb_record(ngx_http_usage_gate_node_t *un,
    ngx_http_usage_gate_record_t *rec)
{
    int64_t                          left;
    ngx_http_usage_gate_ddb_node_t  *st;

    st = ngx_http_usage_gate_node_extra(un);

    /* a restart forgets claims: what it must write is the usage less
     * the claims not used (the state follows the counter's month, both
     * roll together; anything else is the old slot's) */
    left = st->pending - (int64_t) st->claimed;

    rec->unsynced = 0;
    rec->synced_base = 0;
    rec->old_unsynced = 0;
    rec->old_month = 0;

    if (st->month == un->counter.month) {
        rec->unsynced = left;
        rec->synced_base = (st->flags & NGX_HTTP_USAGE_GATE_DDB_BASE)
                           ? st->base : 0;

    } else if (left) {
        rec->old_unsynced = left;
        rec->old_month = st->month;
    }

    if (st->old_pending) {
        if (rec->old_unsynced == 0) {
            rec->old_unsynced = st->old_pending;
            rec->old_month = st->old_month;

        } else if (rec->old_month == st->old_month) {
            rec->old_unsynced += st->old_pending;
        }
    }
}


void
ngx_http_usage_gate_ddb_restore(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_record_t *rec)
{
    int64_t                          lost;
    ngx_http_usage_gate_node_t      *un;
    ngx_http_usage_gate_ddb_node_t  *st;

    if (rec->unsynced == 0 && rec->old_unsynced == 0
        && rec->synced_base == 0)
    {
        return;
    }

    lost = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    un = ngx_http_usage_gate_zone_node_locked(zone, rec->owner, rec->len,
                                              ngx_http_usage_gate_now_us(),
                                              0);
    if (un == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return;
    }

    st = ngx_http_usage_gate_ddb_state(un);

    if (rec->old_unsynced) {
        lost += ngx_http_usage_gate_ddb_add(zone, st, rec->old_month,
                                            rec->old_unsynced, 1);
    }

    if (st->month < rec->counter.month) {
        lost += ngx_http_usage_gate_ddb_roll(zone, st, rec->counter.month);
    }

    lost += ngx_http_usage_gate_ddb_add(zone, st, rec->counter.month,
                                        rec->unsynced, 1);

    /* a base from before a restart is a fair first guess; it is replaced
     * by the table's at the first answer */
    if (rec->synced_base && st->month == rec->counter.month) {
        st->base = rec->synced_base;
        st->flags |= NGX_HTTP_USAGE_GATE_DDB_BASE;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_http_usage_gate_ddb_lost(zone, rec->owner, rec->len, lost,
                                 ngx_cycle->log);
}


/* ------------------------------------------------------- the decision */

ngx_int_t
ngx_http_usage_gate_ddb_decide(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ngx_http_usage_gate_ctx_t *ctx,
    ngx_str_t *detail)
{
    ngx_uint_t                       rc;
    ngx_http_cleanup_t              *cln;
    ngx_http_usage_gate_zone_t      *zone;
    ngx_http_usage_gate_ddb_req_t   *dr, tmp;
    ngx_http_usage_gate_ddb_conf_t  *dc;

    zone = lcf->shm_zone->data;
    dc = zone->ddb;

    ngx_memzero(&tmp, sizeof(ngx_http_usage_gate_ddb_req_t));

    tmp.r = r;
    tmp.zone = zone;
    tmp.conf = dc;
    tmp.owner = ctx->owner;
    tmp.limits = ctx->limits;
    tmp.cost = lcf->cost;
    tmp.d = &ctx->d;

    rc = ngx_http_usage_gate_ddb_locked(&tmp, ngx_http_usage_gate_now_us());

    switch (rc) {

    case NGX_HTTP_USAGE_GATE_DDB_LOCAL:
        return NGX_HTTP_USAGE_GATE_DECIDED;

    case NGX_HTTP_USAGE_GATE_DDB_CLAIM:
        /* allowed from a claim running low: the next one is fetched in
         * the background, so that no request waits while the owner is
         * busy */
        ngx_http_usage_gate_ddb_claim(&tmp);
        return NGX_HTTP_USAGE_GATE_DECIDED;

    case NGX_HTTP_USAGE_GATE_DDB_FULL:
        return NGX_HTTP_USAGE_GATE_FULL;

    case NGX_HTTP_USAGE_GATE_DDB_DOWN:
        *detail = ngx_http_usage_gate_ddb_unavailable;
        return NGX_HTTP_SERVICE_UNAVAILABLE;

    default: /* NGX_HTTP_USAGE_GATE_DDB_WRITE */
        break;
    }

    /* the table decides: the minute's units are taken, and what the
     * owner had pending, and in auto mode a claim, go with this write */

    dr = ngx_palloc(r->pool, sizeof(ngx_http_usage_gate_ddb_req_t));
    cln = (dr != NULL) ? ngx_http_cleanup_add(r, 0) : NULL;

    if (dr == NULL || cln == NULL
        || ngx_http_usage_gate_ddb_body(dc, r->pool, tmp.owner.data,
                                        tmp.owner.len, tmp.month,
                                        (int64_t) (tmp.cost + tmp.taken
                                                   + tmp.extra),
                                        tmp.limits.month, &tmp.body,
                                        r->connection->log)
           != NGX_OK)
    {
        ngx_http_usage_gate_ddb_settle(&tmp, NGX_HTTP_USAGE_GATE_DDB_FAILED,
                                       0);
        if (tmp.rc == NGX_HTTP_SERVICE_UNAVAILABLE) {
            *detail = ngx_http_usage_gate_ddb_unavailable;
        }

        return tmp.rc;
    }

    *dr = tmp;
    ctx->ddb = dr;

    cln->handler = ngx_http_usage_gate_ddb_cleanup;
    cln->data = dr;

    dr->retry.handler = ngx_http_usage_gate_ddb_retry;
    dr->retry.data = dr;
    dr->retry.log = r->connection->log;

    dr->deadline = ngx_current_msec + dc->timeout;

    if (ngx_http_usage_gate_ddb_send(dr) != NGX_OK) {
        ngx_http_usage_gate_ddb_settle(dr, NGX_HTTP_USAGE_GATE_DDB_FAILED, 0);
        dr->state = NGX_HTTP_USAGE_GATE_DDB_FINISHED;

        if (dr->rc == NGX_HTTP_SERVICE_UNAVAILABLE) {
            *detail = ngx_http_usage_gate_ddb_unavailable;
        }

        return dr->rc;
    }

    dr->state = NGX_HTTP_USAGE_GATE_DDB_WAITING;
    ngx_queue_insert_tail(&ngx_http_usage_gate_ddb_waiting, &dr->queue);
    dr->queued = 1;

    /* parked in its phase until the answer: a client that goes
     * away meanwhile ends the request (and the cleanup cancels) */
    r->main->count++;
    r->read_event_handler = ngx_http_test_reading;

    return NGX_DONE;
}


/*
 * Under the zone lock: what this request needs.  LOCAL: decided in the
 * zone (dr->d filled, allowed units queued for the sync).  WRITE: the
 * minute's units are taken and the table must say yes; dr has what the
 * write needs.  FULL, or DOWN (DynamoDB known to be down, on_error=deny).
 */
static ngx_uint_t
ngx_http_usage_gate_ddb_locked(ngx_http_usage_gate_ddb_req_t *dr,
    uint64_t now_us)
{
    int32_t                          month;
    int64_t                          limit, now_s, lost;
    ngx_uint_t                       rc;
    ngx_http_usage_gate_node_t      *un;
    ngx_http_usage_gate_zone_t      *zone;
    ngx_http_usage_gate_ddb_sh_t    *dsh;
    ngx_http_usage_gate_ddb_node_t  *st;
    ngx_http_usage_gate_ddb_conf_t  *dc;

    zone = dr->zone;
    dc = dr->conf;
    dsh = zone->sh->ddb;
    now_s = (int64_t) (now_us / 1000000);
    month = ug_month_index(now_s);
    limit = dr->limits.month;

    ngx_shmtx_lock(&zone->shpool->mutex);

    un = ngx_http_usage_gate_zone_node_locked(zone, dr->owner.data,
                                              dr->owner.len, now_us, 1);
    if (un == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        (void) ngx_atomic_fetch_add(&zone->sh->fail_open, 1);
        return NGX_HTTP_USAGE_GATE_DDB_FULL;
    }

    st = ngx_http_usage_gate_ddb_state(un);

    /* the counter and the state enter a new month together */
    lost = ngx_http_usage_gate_ddb_roll(zone, st, month);

    if (un->counter.month != month) {
        un->counter.month = month;
        un->counter.month_used = 0;
    }

    if (limit == UG_OFF || dc->mode == NGX_HTTP_USAGE_GATE_DDB_ASYNC) {
        goto local;
    }

    if (st->claimed >= dr->cost) {
        /* auto: units this node claimed in the table ahead of use; they
         * go first, even when a write of another request was refused */
        ug_take_minute(&un->counter, &dr->limits, dr->cost, now_us, dr->d);

        rc = NGX_HTTP_USAGE_GATE_DDB_LOCAL;

        if (dr->d->verdict == UG_ALLOWED) {
            st->claimed -= (uint32_t) dr->cost;
            st->flags |= NGX_HTTP_USAGE_GATE_DDB_USED;
            ngx_http_usage_gate_ddb_used(un, st);
            ug_peek(&un->counter, &dr->limits, now_us, dr->d);

            /* half of the last claim used: the next one, ahead */
            if (st->claimed < st->block / 2 + dr->cost
                && !(st->flags & NGX_HTTP_USAGE_GATE_DDB_CLAIMING))
            {
                dr->extra = ngx_http_usage_gate_ddb_block(st, limit, 0);

                if (dr->extra) {
                    st->flags |= NGX_HTTP_USAGE_GATE_DDB_CLAIMING;
                    dr->month = month;
                    rc = NGX_HTTP_USAGE_GATE_DDB_CLAIM;
                }
            }
        }

        goto done;
    }

    if (st->at_limit_until) {
        if (now_s < (int64_t) st->at_limit_until) {
            /* the table said no: answer as the zone answers at the limit */
            if (un->counter.month_used < (uint64_t) limit) {
                un->counter.month_used = (uint64_t) limit;
            }

            goto local;
        }

        st->at_limit_until = 0;
    }

    if (dr->cost > (uint64_t) limit) {
        goto local;
    }

    if ((ngx_msec_int_t) (dsh->down_until - ngx_current_msec) > 0) {
        /* a recent request waited the whole timeout: do not make every
         * request wait until the sync sees DynamoDB answer again */
        if (dc->on_error == NGX_HTTP_USAGE_GATE_DDB_ALLOW) {
            goto local;
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);
        ngx_http_usage_gate_ddb_lost(zone, dr->owner.data, dr->owner.len,
                                     lost, dr->r->connection->log);
        return NGX_HTTP_USAGE_GATE_DDB_DOWN;
    }

    ug_take_minute(&un->counter, &dr->limits, dr->cost, now_us, dr->d);

    if (dr->d->verdict != UG_ALLOWED) {
        rc = NGX_HTTP_USAGE_GATE_DDB_LOCAL;
        goto done;
    }

    /* usage allowed here before (while DynamoDB was down, or for a plan
     * without a limit then) goes with this write, under the same ceiling:
     * the table then says yes only if it and this request all fit */
    dr->taken = (st->pending > 0
                 && dr->cost + (uint64_t) st->pending <= (uint64_t) limit)
                ? (uint64_t) st->pending : 0;
    st->pending -= (int64_t) dr->taken;

    /*
     * auto: a claim for the requests to come, for an owner that sent
     * others this minute (a claim that is not used costs a write to give
     * back), one at a time per owner: twice the last one, and at most a
     * quarter of what the table had left at the last answer, so that
     * near the limit every node falls back to one write per request.
     */
    if (dc->mode == NGX_HTTP_USAGE_GATE_DDB_AUTO
        && un->counter.minute_used > dr->cost
        && !(st->flags & NGX_HTTP_USAGE_GATE_DDB_CLAIMING))
    {
        dr->extra = ngx_http_usage_gate_ddb_block(st, limit,
                                                  dr->cost + dr->taken);
        if (dr->extra) {
            st->flags |= NGX_HTTP_USAGE_GATE_DDB_CLAIMING;
        }
    }

    dr->month = month;

    rc = NGX_HTTP_USAGE_GATE_DDB_WRITE;
    goto done;

local:

    ug_decide(&un->counter, &dr->limits, dr->cost, now_us, dr->d);

    if (dr->d->verdict == UG_ALLOWED) {
        lost += ngx_http_usage_gate_ddb_add(zone, st, month,
                                            (int64_t) dr->cost, 1);

    }

    rc = NGX_HTTP_USAGE_GATE_DDB_LOCAL;

done:

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_http_usage_gate_ddb_lost(zone, dr->owner.data, dr->owner.len, lost,
                                 dr->r->connection->log);

    return rc;
}


/*
 * Under the lock: the size of the next claim, for an owner whose base is
 * known: twice the last, at most a quarter of what the table had left at
 * the last answer (less `more` units written with it), and at most
 * NGX_HTTP_USAGE_GATE_DDB_BLOCK_MAX.  0: no claim.
 */
static uint64_t
ngx_http_usage_gate_ddb_block(ngx_http_usage_gate_ddb_node_t *st,
    int64_t limit, uint64_t more)
{
    uint64_t  left, extra;

    if (!(st->flags & NGX_HTTP_USAGE_GATE_DDB_BASE)) {
        return 0;
    }

    left = (uint64_t) limit > st->base + more
           ? (uint64_t) limit - st->base - more : 0;

    extra = st->block ? 2 * (uint64_t) st->block : 1;
    extra = ngx_min(extra, left / 4);
    extra = ngx_min(extra, NGX_HTTP_USAGE_GATE_DDB_BLOCK_MAX);

    return extra;
}


static ngx_int_t
ngx_http_usage_gate_ddb_body(ngx_http_usage_gate_ddb_conf_t *dc,
    ngx_pool_t *pool, u_char *owner, size_t len, int32_t month,
    int64_t delta, int64_t limit, ngx_str_t *body, ngx_log_t *log)
{
    int            rc;
    char           buf[UG_DDB_BODY_MAX];
    size_t         n;
    ug_ddb_item_t  item;

    ngx_memzero(&item, sizeof(ug_ddb_item_t));

    item.table = (char *) dc->table.data;
    item.table_len = dc->table.len;
    item.owner = (char *) owner;
    item.owner_len = len;
    item.month = month;

    if (dc->ttl.len) {
        item.ttl_attr = (char *) dc->ttl.data;
        item.ttl_attr_len = dc->ttl.len;
        item.ttl_at = ug_ddb_ttl_at(month, dc->ttl_keep);
    }

    rc = ug_ddb_build_add(buf, sizeof(buf), &n, &item, delta, limit);

    if (rc != UG_DDB_BUILD_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "usage_gate_dynamodb: cannot build a write for owner "
                      "\"%*s\": %s", len, owner, ug_ddb_build_strerror(rc));
        return NGX_ERROR;
    }

    if (pool == NULL) {
        /* the caller sends it at once; curl copies the bytes */
        body->data = ngx_alloc(n, log);

    } else {
        body->data = ngx_pnalloc(pool, n);
    }

    if (body->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(body->data, buf, n);
    body->len = n;

    return NGX_OK;
}


/* One attempt of a waiting request's write. */
static ngx_int_t
ngx_http_usage_gate_ddb_send(ngx_http_usage_gate_ddb_req_t *dr)
{
    ngx_msec_int_t                   left;
    ug_ddb_result_t                  res;
    const ug_aws_creds_t            *creds;
    ngx_http_usage_gate_ddb_sh_t    *dsh;
    ngx_http_usage_gate_ddb_conf_t  *dc;

    dc = dr->conf;
    dsh = dr->zone->sh->ddb;

    creds = ngx_http_usage_gate_ddb_creds(dc);

    if (creds == NULL) {
        ngx_memzero(&res, sizeof(ug_ddb_result_t));
        ngx_cpystrn((u_char *) res.type, (u_char *) "NoCredentials",
                    sizeof(res.type));
        res.cls = UG_DDB_FATAL;
        ngx_http_usage_gate_ddb_error(dr->zone, &res, "UpdateItem",
                                      dr->r->connection->log);
        return NGX_DECLINED;
    }

    left = (ngx_msec_int_t) (dr->deadline - ngx_current_msec);

    if (left <= 0) {
        return NGX_DECLINED;
    }

    dr->attempts++;

    dr->curl = ngx_http_usage_gate_curl_post(dr->r->connection->log,
                          dc->endpoint, UG_DDB_OP_UPDATE, &dr->body,
                          ngx_min(dc->connect_timeout, (ngx_msec_t) left),
                          (ngx_msec_t) left, creds, dc->region,
                          ngx_http_usage_gate_ddb_answered, dr);

    if (dr->curl == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_atomic_fetch_add(&dsh->writes, 1);

    return NGX_OK;
}


static ug_ddb_class_t
ngx_http_usage_gate_ddb_parse(ngx_int_t rc, long status, ngx_str_t *body,
    const char *error, ug_ddb_result_t *res)
{
    if (rc == NGX_OK) {
        return ug_ddb_parse_update(status, (char *) body->data, body->len,
                                   res);
    }

    return ug_ddb_parse_error(0, (char *) body->data, body->len, error, res);
}


static void
ngx_http_usage_gate_ddb_answered(void *data, ngx_int_t rc, long status,
    ngx_str_t *body, const char *error)
{
    ngx_http_usage_gate_ddb_req_t *dr = data;

    uint32_t                         delay;
    ngx_msec_int_t                   left;
    ug_ddb_class_t                   cls;
    ug_ddb_result_t                  res;
    ngx_http_usage_gate_ddb_sh_t    *dsh;

    dr->curl = NULL;
    dsh = dr->zone->sh->ddb;

    cls = ngx_http_usage_gate_ddb_parse(rc, status, body, error, &res);

    switch (cls) {

    case UG_DDB_OK:
        dsh->down_until = 0;
        ngx_http_usage_gate_ddb_settle(dr, NGX_HTTP_USAGE_GATE_DDB_OK,
                                       res.count);
        break;

    case UG_DDB_CONDITIONAL_FAILED:
        dsh->down_until = 0;

        if (dr->extra) {
            /* no room for the claim: this request alone may still fit */
            ngx_http_usage_gate_ddb_unclaim(dr, 1);

            if (ngx_http_usage_gate_ddb_body(dr->conf, dr->r->pool,
                                             dr->owner.data, dr->owner.len,
                                             dr->month,
                                             (int64_t) (dr->cost + dr->taken),
                                             dr->limits.month, &dr->body,
                                             dr->r->connection->log)
                == NGX_OK
                && ngx_http_usage_gate_ddb_send(dr) == NGX_OK)
            {
                return;
            }

            ngx_http_usage_gate_ddb_settle(dr,
                                           NGX_HTTP_USAGE_GATE_DDB_FAILED, 0);
            break;
        }

        ngx_http_usage_gate_ddb_settle(dr, NGX_HTTP_USAGE_GATE_DDB_QUOTA, 0);
        break;

    case UG_DDB_RETRYABLE:
        ngx_http_usage_gate_ddb_error(dr->zone, &res, "UpdateItem",
                                      dr->r->connection->log);

        if (ug_ddb_should_retry(cls, dr->attempts)) {
            delay = ug_ddb_backoff_ms(dr->attempts, (uint32_t) ngx_random());
            left = (ngx_msec_int_t) (dr->deadline - ngx_current_msec);

            if (left > (ngx_msec_int_t) delay) {
                ngx_add_timer(&dr->retry, (ngx_msec_t) delay + 1);
                return;
            }
        }

        /* spare the next requests the same wait (see _locked) */
        dsh->down_until = ngx_current_msec + ngx_max(dr->conf->sync, 1000);

        ngx_http_usage_gate_ddb_settle(dr, NGX_HTTP_USAGE_GATE_DDB_FAILED, 0);
        break;

    default: /* UG_DDB_FATAL */
        ngx_http_usage_gate_ddb_error(dr->zone, &res, "UpdateItem",
                                      dr->r->connection->log);

        if (res.auth && ngx_http_usage_gate_ddb_aws
            && ngx_http_usage_gate_ddb_aws->remote_kind
            && ngx_http_usage_gate_ddb_aws->step
               == NGX_HTTP_USAGE_GATE_AWS_NONE)
        {
            /* expired or revoked temporary credentials: fetch again */
            if (ngx_http_usage_gate_ddb_aws->refresh.timer_set) {
                ngx_del_timer(&ngx_http_usage_gate_ddb_aws->refresh);
            }

            ngx_add_timer(&ngx_http_usage_gate_ddb_aws->refresh, 1);
        }

        ngx_http_usage_gate_ddb_settle(dr, NGX_HTTP_USAGE_GATE_DDB_FAILED, 0);
        break;
    }

    ngx_http_usage_gate_ddb_wake(dr);
}


/*
 * A claim that will not be made: the owner may claim again (smaller,
 * after a refusal).  A write that was sent and got no answer may have
 * been applied, claim included; that is the price of a lost answer
 * (docs/dynamodb.md).
 */
static void
ngx_http_usage_gate_ddb_unclaim(ngx_http_usage_gate_ddb_req_t *dr,
    ngx_uint_t refused)
{
    ngx_http_usage_gate_node_t      *un;
    ngx_http_usage_gate_zone_t      *zone;
    ngx_http_usage_gate_ddb_node_t  *st;

    if (dr->extra == 0) {
        return;
    }

    zone = dr->zone;

    ngx_shmtx_lock(&zone->shpool->mutex);

    un = ngx_http_usage_gate_zone_node_locked(zone, dr->owner.data,
                                              dr->owner.len,
                                              ngx_http_usage_gate_now_us(),
                                              0);
    if (un != NULL) {
        st = ngx_http_usage_gate_ddb_state(un);
        st->flags &= ~NGX_HTTP_USAGE_GATE_DDB_CLAIMING;

        if (refused) {
            st->block = (uint32_t) (dr->extra / 4);
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    dr->extra = 0;
}


static void
ngx_http_usage_gate_ddb_retry(ngx_event_t *ev)
{
    ngx_http_usage_gate_ddb_req_t *dr = ev->data;

    if (ngx_http_usage_gate_ddb_send(dr) == NGX_OK) {
        return;
    }

    ngx_http_usage_gate_ddb_settle(dr, NGX_HTTP_USAGE_GATE_DDB_FAILED, 0);
    ngx_http_usage_gate_ddb_wake(dr);
}


/*
 * The table's answer (or the lack of one) becomes the request's decision,
 * under the zone lock, as the zone would report it: dr->d and dr->rc.
 */
static void
ngx_http_usage_gate_ddb_settle(ngx_http_usage_gate_ddb_req_t *dr,
    ngx_uint_t outcome, uint64_t count)
{
    int64_t                          now_s, until, lost;
    uint64_t                         now_us;
    ug_counter_t                     none, *c;
    ngx_http_usage_gate_node_t      *un;
    ngx_http_usage_gate_zone_t      *zone;
    ngx_http_usage_gate_ddb_sh_t    *dsh;
    ngx_http_usage_gate_ddb_node_t  *st;

    zone = dr->zone;
    dsh = zone->sh->ddb;
    now_us = ngx_http_usage_gate_now_us();
    now_s = (int64_t) (now_us / 1000000);
    lost = 0;
    st = NULL;
    dr->rc = NGX_HTTP_USAGE_GATE_DECIDED;

    ngx_shmtx_lock(&zone->shpool->mutex);

    /* the owner may have been dropped while the request waited; if the
     * zone has no room for it now, it is decided as a zone that is full
     * decides (fail open), with a counter of its own */
    un = ngx_http_usage_gate_zone_node_locked(zone, dr->owner.data,
                                              dr->owner.len, now_us, 1);

    if (un != NULL) {
        c = &un->counter;
        st = ngx_http_usage_gate_ddb_state(un);

        if (dr->extra) {
            st->flags &= ~NGX_HTTP_USAGE_GATE_DDB_CLAIMING;
        }

    } else {
        ngx_memzero(&none, sizeof(ug_counter_t));
        none.month = dr->month;
        c = &none;
    }

    if (outcome != NGX_HTTP_USAGE_GATE_DDB_OK && dr->taken) {
        /* the carried units were allowed before: the sync writes them
         * without a condition */
        if (st) {
            lost += ngx_http_usage_gate_ddb_add(zone, st, dr->month,
                                                (int64_t) dr->taken, 0);
        } else {
            lost += (int64_t) dr->taken;
            dsh->backlog -= dr->taken;
        }
    }

    switch (outcome) {

    case NGX_HTTP_USAGE_GATE_DDB_OK:
        dsh->backlog -= dr->taken;

        if (st && st->month == dr->month) {
            st->base = count;
            st->flags |= NGX_HTTP_USAGE_GATE_DDB_BASE;
            st->at_limit_until = 0;

            if (dr->extra) {
                /* the claim is this node's to use; the sync gives back
                 * what is left of it */
                st->claimed += (uint32_t) dr->extra;
                st->block = (uint32_t) dr->extra;
                st->flags |= NGX_HTTP_USAGE_GATE_DDB_USED;
                ngx_http_usage_gate_ddb_dirty(zone, st);
            }

            ngx_http_usage_gate_ddb_used(un, st);

        } else if (dr->extra) {
            /* the month turned while the claim was on its way */
            if (st) {
                lost += ngx_http_usage_gate_ddb_add(zone, st, dr->month,
                                                    -(int64_t) dr->extra, 0);
            } else {
                lost -= (int64_t) dr->extra;
            }
        }

        if (st == NULL && c->month == dr->month) {
            c->month_used = count;
        }

        ug_peek(c, &dr->limits, now_us, dr->d);
        break;

    case NGX_HTTP_USAGE_GATE_DDB_QUOTA:
        ug_give_minute(c, &dr->limits, dr->cost, now_us);

        if (st && st->month == dr->month) {
            until = now_s + NGX_HTTP_USAGE_GATE_DDB_AT_LIMIT;

            if (until > ug_month_start(dr->month + 1)) {
                until = ug_month_start(dr->month + 1);
            }

            st->at_limit_until = (uint32_t) until;
        }

        if (c->month == dr->month
            && c->month_used < (uint64_t) dr->limits.month)
        {
            c->month_used = (uint64_t) dr->limits.month;
        }

        ug_peek(c, &dr->limits, now_us, dr->d);
        dr->d->verdict = UG_QUOTA;
        dr->d->retry_after = dr->d->month_reset;
        break;

    default: /* NGX_HTTP_USAGE_GATE_DDB_FAILED */

        if (dr->conf->on_error == NGX_HTTP_USAGE_GATE_DDB_DENY) {
            ug_give_minute(c, &dr->limits, dr->cost, now_us);
            dr->rc = NGX_HTTP_SERVICE_UNAVAILABLE;
            break;
        }

        /* on_error=allow: the zone decides, with what it knows */
        if (c->month == dr->month
            && c->month_used + dr->cost > (uint64_t) dr->limits.month)
        {
            ug_give_minute(c, &dr->limits, dr->cost, now_us);
            ug_peek(c, &dr->limits, now_us, dr->d);
            dr->d->verdict = UG_QUOTA;
            dr->d->retry_after = dr->d->month_reset;
            break;
        }

        if (c->month == dr->month) {
            c->month_used += dr->cost;
        }

        if (st) {
            lost += ngx_http_usage_gate_ddb_add(zone, st, dr->month,
                                                (int64_t) dr->cost, 1);

        } else {
            lost += (int64_t) dr->cost;
        }

        ug_peek(c, &dr->limits, now_us, dr->d);
        break;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    dr->extra = 0;

    ngx_http_usage_gate_ddb_lost(zone, dr->owner.data, dr->owner.len, lost,
                                 dr->r->connection->log);
}


/* Lets a waiting request go on: the gate's handler runs again. */
static void
ngx_http_usage_gate_ddb_wake(ngx_http_usage_gate_ddb_req_t *dr)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = dr->r;
    c = r->connection;

    dr->state = NGX_HTTP_USAGE_GATE_DDB_ANSWERED;

    if (dr->queued) {
        ngx_queue_remove(&dr->queue);
        dr->queued = 0;
    }

    r->main->count--;

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}


/* The request ends (normally, or terminated while it waited). */
static void
ngx_http_usage_gate_ddb_cleanup(void *data)
{
    ngx_http_usage_gate_ddb_req_t *dr = data;

    int64_t                      lost;
    uint64_t                     now_us;
    ngx_http_usage_gate_node_t  *un;
    ngx_http_usage_gate_zone_t  *zone;

    if (dr->state != NGX_HTTP_USAGE_GATE_DDB_WAITING) {
        return;
    }

    dr->state = NGX_HTTP_USAGE_GATE_DDB_FINISHED;

    /* the write may have landed already; the table then counts a request
     * whose client left, as the zone counts one allowed before it left */
    ngx_http_usage_gate_curl_cancel(dr->curl);
    dr->curl = NULL;

    if (dr->retry.timer_set) {
        ngx_del_timer(&dr->retry);
    }

    if (dr->queued) {
        ngx_queue_remove(&dr->queue);
        dr->queued = 0;
    }

    ngx_http_usage_gate_ddb_unclaim(dr, 0);

    zone = dr->zone;
    now_us = ngx_http_usage_gate_now_us();
    lost = (int64_t) dr->taken;

    ngx_shmtx_lock(&zone->shpool->mutex);

    un = ngx_http_usage_gate_zone_node_locked(zone, dr->owner.data,
                                              dr->owner.len, now_us, 1);
    if (un != NULL) {
        lost = ngx_http_usage_gate_ddb_add(zone,
                                           ngx_http_usage_gate_ddb_state(un),
                                           dr->month, (int64_t) dr->taken,
                                           0);
        ug_give_minute(&un->counter, &dr->limits, dr->cost, now_us);

    } else {
        ((ngx_http_usage_gate_ddb_sh_t *) zone->sh->ddb)->backlog -= dr->taken;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_http_usage_gate_ddb_lost(zone, dr->owner.data, dr->owner.len, lost,
                                 ngx_cycle->log);
}


ngx_int_t
ngx_http_usage_gate_ddb_resume(ngx_http_request_t *r,
    ngx_http_usage_gate_ctx_t *ctx, ngx_str_t *detail)
{
    ngx_http_usage_gate_ddb_req_t  *dr;

    dr = ctx->ddb;

    if (dr == NULL || dr->state == NGX_HTTP_USAGE_GATE_DDB_FINISHED) {
        return NGX_DECLINED;
    }

    if (dr->state == NGX_HTTP_USAGE_GATE_DDB_WAITING) {
        /* a stray event while the write is in flight */
        return NGX_DONE;
    }

    dr->state = NGX_HTTP_USAGE_GATE_DDB_FINISHED;

    if (dr->rc == NGX_HTTP_SERVICE_UNAVAILABLE) {
        *detail = ngx_http_usage_gate_ddb_unavailable;
    }

    return dr->rc;
}


/*
 * Counts an error by its AWS type in the zone, and logs it, at most once
 * a second per worker and zone.
 */
static void
ngx_http_usage_gate_ddb_error(ngx_http_usage_gate_zone_t *zone,
    ug_ddb_result_t *res, const char *what, ngx_log_t *log)
{
    size_t                           len;
    ngx_uint_t                       i;
    ngx_http_usage_gate_ddb_sh_t    *dsh;
    ngx_http_usage_gate_ddb_err_t   *e;
    ngx_http_usage_gate_ddb_conf_t  *dc;

    dsh = zone->sh->ddb;
    dc = zone->ddb;

    len = ngx_strlen(res->type);

    if (len == 0) {
        ngx_cpystrn((u_char *) res->type, (u_char *) "Unknown",
                    sizeof(res->type));
        len = 7;
    }

    if (len >= NGX_HTTP_USAGE_GATE_DDB_TYPE_LEN) {
        len = NGX_HTTP_USAGE_GATE_DDB_TYPE_LEN - 1;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    e = NULL;

    for (i = 0; i < NGX_HTTP_USAGE_GATE_DDB_ERRORS - 1; i++) {
        e = &dsh->errors[i];

        if (e->type[0] == '\0') {
            ngx_memcpy(e->type, res->type, len);
            e->type[len] = '\0';
            break;
        }

        if (ngx_strncmp(e->type, res->type, len) == 0
            && e->type[len] == '\0')
        {
            break;
        }
    }

    if (i == NGX_HTTP_USAGE_GATE_DDB_ERRORS - 1) {
        e = &dsh->errors[i];
        ngx_memcpy(e->type, "Other", sizeof("Other"));
    }

    e->count++;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (dc->logged == ngx_time()) {
        return;
    }

    dc->logged = ngx_time();

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "usage_gate_dynamodb: zone \"%V\": %s to \"%s\" failed: "
                  "%s (%s%s%s)", &zone->name, what, dc->endpoint, res->type,
                  ug_ddb_class_name(res->cls),
                  res->message[0] ? ": " : "", res->message);
}


/* ------------------------------------------------------------ the sync */

static void
ngx_http_usage_gate_ddb_sync_timer(ngx_event_t *ev)
{
    ngx_http_usage_gate_ddb_conf_t *dc = ev->data;

    ngx_atomic_uint_t              pid;
    ngx_msec_int_t                 since;
    ngx_http_usage_gate_zone_t    *zone;
    ngx_http_usage_gate_ddb_sh_t  *dsh;

    zone = dc->shm_zone->data;
    dsh = zone->sh->ddb;

    if (ngx_terminate) {
        return;
    }

    if (!dc->syncing) {
        since = (ngx_msec_int_t) (ngx_current_msec - dsh->sync_started);

        /* a worker that died holding the claim must not stop the sync */
        pid = dsh->syncer;

        if (pid != 0
            && since > (ngx_msec_int_t) ngx_max(60000, 10 * dc->timeout))
        {
            ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                          "usage_gate_dynamodb: zone \"%V\": sync by "
                          "process %P did not finish, taking over",
                          &zone->name, (ngx_pid_t) pid);
            (void) ngx_atomic_cmp_set(&dsh->syncer, pid, 0);
        }

        /* one round per interval for all workers together; a graceful
         * exit flushes at once */
        if ((ngx_exiting || since >= (ngx_msec_int_t) dc->sync)
            && ngx_atomic_cmp_set(&dsh->syncer, 0, ngx_pid))
        {
            dsh->sync_started = ngx_current_msec;
            dc->syncing = 1;
            dc->failed = 0;
            dc->budget = dsh->dirty_n;

            ngx_http_usage_gate_ddb_sync_fill(dc);
        }
    }

    /*
     * While usage waits to be written (or claims to be given back) the
     * timer holds a graceful exit back until it has fired once more; it
     * looks every second at most, so that such an exit never waits for a
     * long sync interval.
     */
    ev->cancelable = (dsh->dirty_n == 0 || ngx_exiting) ? 1 : 0;

    ngx_add_timer(ev, ngx_min(dc->sync, 1000));
}


/*
 * Takes owners off the zone's sync queue, their unsynced units with them,
 * and sends one ADD for each, up to the in-flight limit.  A round ends
 * when the owners queued at its start are done, or at its first failure
 * (the rest wait for the next round).
 */
static void
ngx_http_usage_gate_ddb_sync_fill(ngx_http_usage_gate_ddb_conf_t *dc)
{
    ngx_int_t                         rc;
    ngx_str_t                         body;
    ngx_uint_t                        i, n, want;
    ngx_queue_t                      *q;
    ug_ddb_result_t                   res;
    const ug_aws_creds_t             *creds;
    ngx_http_usage_gate_node_t       *un;
    ngx_http_usage_gate_zone_t       *zone;
    ngx_http_usage_gate_ddb_sh_t     *dsh;
    ngx_http_usage_gate_ddb_node_t   *st;
    ngx_http_usage_gate_ddb_flush_t  *f;
    ngx_http_usage_gate_ddb_flush_t  *slot[NGX_HTTP_USAGE_GATE_DDB_FLUSH_MAX];

    zone = dc->shm_zone->data;
    dsh = zone->sh->ddb;

    creds = ngx_http_usage_gate_ddb_creds(dc);

    if (creds == NULL && dc->budget && !dc->failed) {
        ngx_memzero(&res, sizeof(ug_ddb_result_t));
        ngx_cpystrn((u_char *) res.type, (u_char *) "NoCredentials",
                    sizeof(res.type));
        res.cls = UG_DDB_FATAL;
        ngx_http_usage_gate_ddb_error(zone, &res, "UpdateItem (sync)",
                                      ngx_cycle->log);
        dc->failed = 1;
    }

    while (!dc->failed && dc->budget
           && dc->inflight < NGX_HTTP_USAGE_GATE_DDB_FLUSH_MAX)
    {
        want = ngx_min(dc->budget,
                       NGX_HTTP_USAGE_GATE_DDB_FLUSH_MAX - dc->inflight);
        n = 0;

        for (i = 0; n < want && i < NGX_HTTP_USAGE_GATE_DDB_FLUSH_MAX; i++) {
            if (!dc->flush[i].busy) {
                slot[n++] = &dc->flush[i];
            }
        }

        want = n;
        n = 0;

        ngx_shmtx_lock(&zone->shpool->mutex);

        while (n < want && dc->budget && !ngx_queue_empty(&dsh->dirty)) {
            q = ngx_queue_head(&dsh->dirty);
            st = ngx_queue_data(q, ngx_http_usage_gate_ddb_node_t, dirty);
            un = (ngx_http_usage_gate_node_t *) ((u_char *) st - st->back);

            dc->budget--;
            f = slot[n];

            /* the month before goes first: it is complete; then this
             * month's usage, less the claims not used (given back) */
            if (st->old_pending) {
                f->month = st->old_month;
                f->delta = st->old_pending;
                st->old_pending = 0;

            } else if ((st->flags & NGX_HTTP_USAGE_GATE_DDB_USED)
                       && !ngx_exiting)
            {
                /* claims in use stay; they are looked at again next
                 * round, and given back once a round found them idle */
                st->flags &= ~NGX_HTTP_USAGE_GATE_DDB_USED;
                f->month = st->month;
                f->delta = st->pending;
                st->pending = 0;

            } else {
                /* usage, less the claims not used: those units are in
                 * the table already */
                f->month = st->month;
                f->delta = st->pending - (int64_t) st->claimed;

                if (st->pending > 0) {
                    dsh->backlog -= ngx_min((uint64_t) st->pending,
                                            (uint64_t) st->claimed);
                }

                st->pending = 0;
                st->claimed = 0;
            }

            f->usage = f->delta > 0 ? (uint64_t) f->delta : 0;

            ngx_queue_remove(q);

            if (st->pending == 0 && st->old_pending == 0
                && st->claimed == 0)
            {
                st->flags &= ~NGX_HTTP_USAGE_GATE_DDB_DIRTY;
                dsh->dirty_n--;

            } else {
                ngx_queue_insert_tail(&dsh->dirty, q);
            }

            if (f->delta == 0) {
                /* usage covered by claims this node did not use */
                dsh->backlog -= f->usage;
                continue;
            }

            f->len = un->len;
            ngx_memcpy(f->owner, un->owner, un->len);
            f->conf = dc;
            f->busy = 1;
            n++;
        }

        if (ngx_queue_empty(&dsh->dirty)) {
            dc->budget = 0;
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);

        if (n == 0) {
            break;
        }

        for (i = 0; i < n; i++) {
            f = slot[i];
            f->curl = NULL;

            rc = ngx_http_usage_gate_ddb_body(dc, NULL, f->owner, f->len,
                                              f->month, (int64_t) f->delta,
                                              -1, &body, ngx_cycle->log);
            if (rc == NGX_OK) {
                f->curl = ngx_http_usage_gate_curl_post(ngx_cycle->log,
                                 dc->endpoint, UG_DDB_OP_UPDATE, &body,
                                 dc->connect_timeout, dc->timeout, creds,
                                 dc->region, ngx_http_usage_gate_ddb_flushed,
                                 f);
                ngx_free(body.data);
            }

            if (f->curl == NULL) {
                /* as if DynamoDB had failed: the units go back */
                ngx_memzero(&res, sizeof(ug_ddb_result_t));
                ngx_cpystrn((u_char *) res.type, (u_char *) "NoRequest",
                            sizeof(res.type));
                res.cls = UG_DDB_FATAL;
                ngx_http_usage_gate_ddb_flush_result(f, &res);
                continue;
            }

            dc->inflight++;
            (void) ngx_atomic_fetch_add(&dsh->writes, 1);
        }
    }

    if (dc->inflight == 0) {
        ngx_http_usage_gate_ddb_sync_end(dc);
    }
}


static void
ngx_http_usage_gate_ddb_flushed(void *data, ngx_int_t rc, long status,
    ngx_str_t *body, const char *error)
{
    ngx_http_usage_gate_ddb_flush_t *f = data;

    ug_ddb_result_t                  res;
    ngx_http_usage_gate_ddb_conf_t  *dc;

    dc = f->conf;
    f->curl = NULL;
    dc->inflight--;

    (void) ngx_http_usage_gate_ddb_parse(rc, status, body, error, &res);

    ngx_http_usage_gate_ddb_flush_result(f, &res);

    if (dc->syncing) {
        ngx_http_usage_gate_ddb_sync_fill(dc);
    }
}


/* A sync write's outcome: the owner's base, or its units back. */
static void
ngx_http_usage_gate_ddb_flush_result(ngx_http_usage_gate_ddb_flush_t *f,
    ug_ddb_result_t *res)
{
    int64_t                          lost;
    uint64_t                         before;
    ngx_http_usage_gate_node_t      *un;
    ngx_http_usage_gate_zone_t      *zone;
    ngx_http_usage_gate_ddb_sh_t    *dsh;
    ngx_http_usage_gate_ddb_node_t  *st;
    ngx_http_usage_gate_ddb_conf_t  *dc;

    dc = f->conf;
    zone = dc->shm_zone->data;
    dsh = zone->sh->ddb;
    lost = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    if (res->cls == UG_DDB_OK) {
        dsh->backlog -= f->usage;
        dsh->down_until = 0;

        un = ngx_http_usage_gate_zone_node_locked(zone, f->owner, f->len,
                                              ngx_http_usage_gate_now_us(),
                                              0);
        if (un != NULL) {
            st = ngx_http_usage_gate_ddb_state(un);

            if (st->month == f->month) {
                st->base = res->count;
                st->flags |= NGX_HTTP_USAGE_GATE_DDB_BASE;

                before = un->counter.month_used;
                ngx_http_usage_gate_ddb_used(un, st);

                /* less than the zone thought: an admin change, maybe on
                 * another node; the table may have room again */
                if (un->counter.month_used < before) {
                    st->at_limit_until = 0;
                }
            }
        }

    } else if (res->cls == UG_DDB_CONDITIONAL_FAILED) {
        /* a give-back below zero (the count was set lower meanwhile, by
         * the admin API): there is nothing left to give back */
        dsh->backlog -= f->usage;

    } else {
        /* the units stay here for the next round */
        un = ngx_http_usage_gate_zone_node_locked(zone, f->owner, f->len,
                                              ngx_http_usage_gate_now_us(),
                                              1);
        if (un != NULL) {
            lost = ngx_http_usage_gate_ddb_add(zone,
                                          ngx_http_usage_gate_ddb_state(un),
                                          f->month, f->delta, 0);
        } else {
            lost = f->delta;
            dsh->backlog -= f->usage;
        }

        if (res->cls == UG_DDB_RETRYABLE) {
            dsh->down_until = ngx_current_msec + ngx_max(dc->sync, 1000);
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (res->cls != UG_DDB_OK && res->cls != UG_DDB_CONDITIONAL_FAILED) {
        dc->failed = 1;
        ngx_http_usage_gate_ddb_error(zone, res, "UpdateItem (sync)",
                                      ngx_cycle->log);
    }

    ngx_http_usage_gate_ddb_lost(zone, f->owner, f->len, lost,
                                 ngx_cycle->log);

    f->busy = 0;
}


static void
ngx_http_usage_gate_ddb_sync_end(ngx_http_usage_gate_ddb_conf_t *dc)
{
    ngx_http_usage_gate_zone_t    *zone;
    ngx_http_usage_gate_ddb_sh_t  *dsh;

    if (!dc->syncing) {
        return;
    }

    zone = dc->shm_zone->data;
    dsh = zone->sh->ddb;

    dc->syncing = 0;

    if (!dc->failed) {
        dsh->last_ok = (ngx_atomic_uint_t) ngx_time();
    }

    (void) ngx_atomic_cmp_set(&dsh->syncer, ngx_pid, 0);
}


/* ------------------------------------------------------ the admin API */

void
ngx_http_usage_gate_ddb_admin_changed(ngx_http_usage_gate_zone_t *zone,
    ug_counter_t *counter, const ug_admin_req_t *req)
{
    int64_t                          base;
    ngx_http_usage_gate_node_t      *un;
    ngx_http_usage_gate_ddb_sh_t    *dsh;
    ngx_http_usage_gate_ddb_node_t  *st;

    if (zone->ddb == NULL || req->action == UG_ADMIN_GET) {
        return;
    }

    dsh = zone->sh->ddb;

    un = (ngx_http_usage_gate_node_t *)
             ((u_char *) counter - offsetof(ngx_http_usage_gate_node_t,
                                            counter));
    st = ngx_http_usage_gate_ddb_state(un);

    (void) ngx_http_usage_gate_ddb_roll(zone, st, counter->month);

    if (st->month == 0) {
        st->month = counter->month;
    }

    if (req->action != UG_ADMIN_ADJUST) {
        /* reset and PUT say what the whole count is (a SET): usage not
         * yet written and this node's claims are part of what they
         * replace */
        if (st->pending > 0) {
            dsh->backlog -= (ngx_atomic_uint_t) st->pending;
        }

        st->pending = 0;
        st->claimed = 0;
    }

    base = (int64_t) counter->month_used - st->pending
           + (int64_t) st->claimed;

    st->base = base > 0 ? (uint64_t) base : 0;
    st->flags |= NGX_HTTP_USAGE_GATE_DDB_BASE;
    st->at_limit_until = 0;
}


/*
 * The table follows an admin change: reset and PUT set the count (SET),
 * adjust adds its delta (with a floor at zero when it subtracts), so
 * that what other nodes wrote meanwhile is kept.
 */
void
ngx_http_usage_gate_ddb_admin_write(ngx_http_usage_gate_zone_t *zone,
    const ug_admin_req_t *req, const ug_counter_t *counter, ngx_log_t *log)
{
    int                               rc;
    char                              buf[UG_DDB_BODY_MAX];
    size_t                            n;
    ngx_str_t                         body;
    ug_ddb_item_t                     item;
    const ug_aws_creds_t             *creds;
    ngx_http_usage_gate_ddb_conf_t   *dc;
    ngx_http_usage_gate_ddb_admin_t  *a;

    dc = zone->ddb;

    if (dc == NULL || req->action == UG_ADMIN_GET
        || !ngx_http_usage_gate_ddb_running)
    {
        return;
    }

    ngx_memzero(&item, sizeof(ug_ddb_item_t));

    item.table = (char *) dc->table.data;
    item.table_len = dc->table.len;
    item.owner = (char *) req->owner;
    item.owner_len = req->owner_len;
    item.month = counter->month;

    if (dc->ttl.len) {
        item.ttl_attr = (char *) dc->ttl.data;
        item.ttl_attr_len = dc->ttl.len;
        item.ttl_at = ug_ddb_ttl_at(item.month, dc->ttl_keep);
    }

    if (req->action == UG_ADMIN_ADJUST) {
        rc = ug_ddb_build_add(buf, sizeof(buf), &n, &item, req->value, -1);

    } else {
        rc = ug_ddb_build_set(buf, sizeof(buf), &n, &item,
                              (int64_t) counter->month_used);
    }

    creds = ngx_http_usage_gate_ddb_creds(dc);

    if (rc != UG_DDB_BUILD_OK || creds == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "usage_gate_dynamodb: zone \"%V\": the admin change "
                      "of owner \"%*s\" is not written to DynamoDB: %s",
                      &zone->name, req->owner_len, req->owner,
                      creds == NULL ? "no AWS credentials"
                                    : ug_ddb_build_strerror(rc));
        return;
    }

    /* the callback may come after the admin request is gone */
    a = ngx_alloc(sizeof(ngx_http_usage_gate_ddb_admin_t), log);
    if (a == NULL) {
        return;
    }

    a->zone = zone;
    a->extra = 0;
    a->month = item.month;
    a->len = req->owner_len;
    ngx_memcpy(a->owner, req->owner, req->owner_len);

    body.data = (u_char *) buf;
    body.len = n;

    a->curl = ngx_http_usage_gate_curl_post(ngx_cycle->log, dc->endpoint,
                                            UG_DDB_OP_UPDATE, &body,
                                            dc->connect_timeout, dc->timeout,
                                            creds, dc->region,
                                            ngx_http_usage_gate_ddb_admin_done,
                                            a);
    if (a->curl == NULL) {
        ngx_free(a);
        return;
    }

    (void) ngx_atomic_fetch_add(&((ngx_http_usage_gate_ddb_sh_t *)
                                  zone->sh->ddb)->writes, 1);

    ngx_queue_insert_tail(&ngx_http_usage_gate_ddb_admins, &a->queue);
}


static void
ngx_http_usage_gate_ddb_admin_done(void *data, ngx_int_t rc, long status,
    ngx_str_t *body, const char *error)
{
    ngx_http_usage_gate_ddb_admin_t *a = data;

    ug_ddb_class_t   cls;
    ug_ddb_result_t  res;

    ngx_queue_remove(&a->queue);

    cls = ngx_http_usage_gate_ddb_parse(rc, status, body, error, &res);

    if (cls != UG_DDB_OK) {
        ngx_http_usage_gate_ddb_error(a->zone, &res, "UpdateItem (admin)",
                                      ngx_cycle->log);

        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "usage_gate_dynamodb: zone \"%V\": the admin change "
                      "of owner \"%*s\" was not written to DynamoDB: %s",
                      &a->zone->name, a->len, a->owner, res.type);
    }

    ngx_free(a);
}


/*
 * A claim fetched ahead of use (auto mode): ADD extra under the ceiling,
 * with no request waiting for it.
 */
static void
ngx_http_usage_gate_ddb_claim(ngx_http_usage_gate_ddb_req_t *dr)
{
    ngx_str_t                         body;
    const ug_aws_creds_t             *creds;
    ngx_http_usage_gate_ddb_conf_t   *dc;
    ngx_http_usage_gate_ddb_admin_t  *a;

    dc = dr->conf;
    a = NULL;
    body.data = NULL;

    creds = ngx_http_usage_gate_ddb_creds(dc);

    if (creds == NULL) {
        goto failed;
    }

    a = ngx_alloc(sizeof(ngx_http_usage_gate_ddb_admin_t),
                  dr->r->connection->log);
    if (a == NULL) {
        goto failed;
    }

    a->zone = dr->zone;
    a->extra = dr->extra;
    a->month = dr->month;
    a->len = dr->owner.len;
    ngx_memcpy(a->owner, dr->owner.data, dr->owner.len);

    if (ngx_http_usage_gate_ddb_body(dc, NULL, a->owner, a->len, a->month,
                                     (int64_t) a->extra, dr->limits.month,
                                     &body, dr->r->connection->log)
        != NGX_OK)
    {
        goto failed;
    }

    a->curl = ngx_http_usage_gate_curl_post(ngx_cycle->log, dc->endpoint,
                                            UG_DDB_OP_UPDATE, &body,
                                            dc->connect_timeout, dc->timeout,
                                            creds, dc->region,
                                            ngx_http_usage_gate_ddb_claimed,
                                            a);
    ngx_free(body.data);

    if (a->curl == NULL) {
        goto failed;
    }

    (void) ngx_atomic_fetch_add(&((ngx_http_usage_gate_ddb_sh_t *)
                                  dr->zone->sh->ddb)->writes, 1);

    ngx_queue_insert_tail(&ngx_http_usage_gate_ddb_admins, &a->queue);

    return;

failed:

    if (a) {
        ngx_free(a);
    }

    ngx_http_usage_gate_ddb_unclaim(dr, 0);
}


static void
ngx_http_usage_gate_ddb_claimed(void *data, ngx_int_t rc, long status,
    ngx_str_t *body, const char *error)
{
    ngx_http_usage_gate_ddb_admin_t *a = data;

    ug_ddb_class_t                   cls;
    ug_ddb_result_t                  res;
    ngx_http_usage_gate_node_t      *un;
    ngx_http_usage_gate_zone_t      *zone;
    ngx_http_usage_gate_ddb_sh_t    *dsh;
    ngx_http_usage_gate_ddb_node_t  *st;

    ngx_queue_remove(&a->queue);

    zone = a->zone;
    dsh = zone->sh->ddb;

    cls = ngx_http_usage_gate_ddb_parse(rc, status, body, error, &res);

    ngx_shmtx_lock(&zone->shpool->mutex);

    un = ngx_http_usage_gate_zone_node_locked(zone, a->owner, a->len,
                                              ngx_http_usage_gate_now_us(),
                                              cls == UG_DDB_OK);
    st = (un != NULL) ? ngx_http_usage_gate_ddb_state(un) : NULL;

    if (st) {
        st->flags &= ~NGX_HTTP_USAGE_GATE_DDB_CLAIMING;
    }

    if (cls == UG_DDB_OK) {
        dsh->down_until = 0;

        if (st && st->month == a->month) {
            st->base = res.count;
            st->claimed += (uint32_t) a->extra;
            st->block = (uint32_t) a->extra;
            st->flags |= NGX_HTTP_USAGE_GATE_DDB_BASE
                         |NGX_HTTP_USAGE_GATE_DDB_USED;
            ngx_http_usage_gate_ddb_dirty(zone, st);
            ngx_http_usage_gate_ddb_used(un, st);

        } else if (st) {
            /* the month turned meanwhile: give it back to that month */
            (void) ngx_http_usage_gate_ddb_add(zone, st, a->month,
                                               -(int64_t) a->extra, 0);
        }

    } else if (cls == UG_DDB_CONDITIONAL_FAILED && st) {
        st->block = (uint32_t) (a->extra / 4);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (cls != UG_DDB_OK && cls != UG_DDB_CONDITIONAL_FAILED) {
        ngx_http_usage_gate_ddb_error(zone, &res, "UpdateItem (claim)",
                                      ngx_cycle->log);
    }

    ngx_free(a);
}


/* -------------------------------------------------------- the metrics */

ngx_int_t
ngx_http_usage_gate_ddb_metrics(ngx_http_usage_gate_zone_t *zone,
    ug_metrics_zone_t *mz, ngx_pool_t *pool)
{
    ngx_uint_t                     i, n;
    ug_metrics_error_t            *errors;
    ngx_http_usage_gate_ddb_sh_t  *dsh;

    if (zone->ddb == NULL || zone->sh->ddb == NULL) {
        return NGX_OK;
    }

    dsh = zone->sh->ddb;

    mz->dynamodb = 1;
    mz->sync_backlog = dsh->backlog;
    mz->last_sync = (int64_t) dsh->last_ok;
    mz->writes = dsh->writes;

    errors = ngx_pcalloc(pool, NGX_HTTP_USAGE_GATE_DDB_ERRORS
                               * sizeof(ug_metrics_error_t));
    if (errors == NULL) {
        return NGX_ERROR;
    }

    n = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    for (i = 0; i < NGX_HTTP_USAGE_GATE_DDB_ERRORS; i++) {
        if (dsh->errors[i].type[0] == '\0') {
            continue;
        }

        errors[n].len = ngx_strlen(dsh->errors[i].type);
        errors[n].type = ngx_pnalloc(pool, errors[n].len);

        if (errors[n].type == NULL) {
            ngx_shmtx_unlock(&zone->shpool->mutex);
            return NGX_ERROR;
        }

        ngx_memcpy((u_char *) errors[n].type, dsh->errors[i].type,
                   errors[n].len);
        errors[n].count = dsh->errors[i].count;
        n++;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    mz->errors = errors;
    mz->nerrors = n;

    return NGX_OK;
}


/* ------------------------------------------------------ the processes */

ngx_int_t
ngx_http_usage_gate_ddb_init_process(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf)
{
    int                               rc;
    char                             *v;
    ngx_uint_t                        i, need;
    ngx_msec_t                        delay;
    ngx_http_usage_gate_ddb_aws_t    *aws;
    ngx_http_usage_gate_ddb_conf_t  **dcp, *dc;

    if (mcf->ddb == NULL || mcf->ddb->nelts == 0
        || (ngx_process != NGX_PROCESS_WORKER
            && ngx_process != NGX_PROCESS_SINGLE))
    {
        return NGX_OK;
    }

    ngx_queue_init(&ngx_http_usage_gate_ddb_waiting);
    ngx_queue_init(&ngx_http_usage_gate_ddb_admins);

    aws = ngx_pcalloc(cycle->pool, sizeof(ngx_http_usage_gate_ddb_aws_t));
    if (aws == NULL) {
        return NGX_ERROR;
    }

    aws->log = cycle->log;
    aws->refresh.handler = ngx_http_usage_gate_ddb_aws_fetch;
    aws->refresh.data = aws;
    aws->refresh.log = cycle->log;
    aws->refresh.cancelable = 1;

    ngx_http_usage_gate_ddb_aws = aws;
    ngx_http_usage_gate_ddb_running = 1;

    /* workers see only the variables named by env directives */
    rc = ug_aws_creds_from_env(&aws->env, getenv("AWS_ACCESS_KEY_ID"),
                               getenv("AWS_SECRET_ACCESS_KEY"),
                               getenv("AWS_SESSION_TOKEN"));
    aws->have_env = (rc == UG_AWS_OK);

    if (rc != UG_AWS_OK && rc != UG_AWS_INCOMPLETE) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "usage_gate_dynamodb: AWS credentials in the "
                      "environment are not usable: %s", ug_aws_strerror(rc));
    }

    need = 0;
    dcp = mcf->ddb->elts;

    for (i = 0; i < mcf->ddb->nelts; i++) {
        dc = dcp[i];

        dc->flush = ngx_pcalloc(cycle->pool,
                                NGX_HTTP_USAGE_GATE_DDB_FLUSH_MAX
                                * sizeof(ngx_http_usage_gate_ddb_flush_t));
        if (dc->flush == NULL) {
            return NGX_ERROR;
        }

        dc->sync_event.handler = ngx_http_usage_gate_ddb_sync_timer;
        dc->sync_event.data = dc;
        dc->sync_event.log = cycle->log;
        dc->sync_event.cancelable = 1;

        /* workers start together: spread their first look (the timer
         * looks every second at most, see the sync timer) */
        delay = ngx_min(dc->sync, 1000);
        delay = delay / 2 + (ngx_msec_t) ngx_random() % (delay / 2 + 1);
        ngx_add_timer(&dc->sync_event, delay);

        if (!aws->have_env && dc->file_creds == NULL) {
            need = 1;
        }
    }

    if (!need) {
        return NGX_OK;
    }

    /* ECS task role, then EC2 instance profile (IMDSv2), asynchronously */
    if (getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
    {
        if (ug_aws_ecs_url(aws->url, sizeof(aws->url),
                           getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
                           getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
            != UG_AWS_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "usage_gate_dynamodb: the ECS credentials URL in "
                          "AWS_CONTAINER_CREDENTIALS_*_URI is not usable "
                          "(https, or http to a loopback or link-local "
                          "address)");
            ngx_http_usage_gate_ddb_no_creds(cycle->log);
            return NGX_OK;
        }

        aws->remote_kind = NGX_HTTP_USAGE_GATE_AWS_ECS;

    } else {
        v = getenv("AWS_EC2_METADATA_DISABLED");

        if (v && ngx_strcasecmp((u_char *) v, (u_char *) "true") == 0) {
            ngx_http_usage_gate_ddb_no_creds(cycle->log);
            return NGX_OK;
        }

        aws->remote_kind = NGX_HTTP_USAGE_GATE_AWS_IMDS_TOKEN;
    }

    ngx_add_timer(&aws->refresh, 1);

    return NGX_OK;
}


void
ngx_http_usage_gate_ddb_exit_process(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf)
{
    int64_t                           lost;
    ngx_uint_t                        i, k;
    ngx_queue_t                      *q;
    ngx_http_usage_gate_node_t       *un;
    ngx_http_usage_gate_zone_t       *zone;
    ngx_http_usage_gate_ddb_req_t    *dr;
    ngx_http_usage_gate_ddb_conf_t  **dcp, *dc;
    ngx_http_usage_gate_ddb_admin_t  *a;
    ngx_http_usage_gate_ddb_flush_t  *f;

    if (!ngx_http_usage_gate_ddb_running || mcf->ddb == NULL) {
        return;
    }

    ngx_http_usage_gate_ddb_running = 0;

    /*
     * Whatever is still in flight is cancelled: its units go back to the
     * zone, so that the state file written next keeps them.  (A graceful
     * exit waits for requests in flight; this is for a fast one.)
     */

    while (!ngx_queue_empty(&ngx_http_usage_gate_ddb_waiting)) {
        q = ngx_queue_head(&ngx_http_usage_gate_ddb_waiting);
        dr = ngx_queue_data(q, ngx_http_usage_gate_ddb_req_t, queue);
        ngx_http_usage_gate_ddb_cleanup(dr);
    }

    dcp = mcf->ddb->elts;

    for (i = 0; i < mcf->ddb->nelts; i++) {
        dc = dcp[i];
        zone = dc->shm_zone->data;

        if (dc->sync_event.timer_set) {
            ngx_del_timer(&dc->sync_event);
        }

        if (dc->flush == NULL || zone->sh == NULL) {
            continue;
        }

        for (k = 0; k < NGX_HTTP_USAGE_GATE_DDB_FLUSH_MAX; k++) {
            f = &dc->flush[k];

            if (!f->busy) {
                continue;
            }

            ngx_http_usage_gate_curl_cancel(f->curl);
            f->curl = NULL;
            f->busy = 0;

            lost = f->delta;

            ngx_shmtx_lock(&zone->shpool->mutex);

            un = ngx_http_usage_gate_zone_node_locked(zone, f->owner, f->len,
                                              ngx_http_usage_gate_now_us(),
                                              1);
            if (un != NULL) {
                lost = ngx_http_usage_gate_ddb_add(zone,
                                          ngx_http_usage_gate_ddb_state(un),
                                          f->month, f->delta, 0);
            }

            ngx_shmtx_unlock(&zone->shpool->mutex);

            ngx_http_usage_gate_ddb_lost(zone, f->owner, f->len, lost,
                                         cycle->log);
        }

        dc->inflight = 0;
        dc->failed = 1;
        ngx_http_usage_gate_ddb_sync_end(dc);
    }

    while (!ngx_queue_empty(&ngx_http_usage_gate_ddb_admins)) {
        q = ngx_queue_head(&ngx_http_usage_gate_ddb_admins);
        a = ngx_queue_data(q, ngx_http_usage_gate_ddb_admin_t, queue);
        ngx_queue_remove(q);
        ngx_http_usage_gate_curl_cancel(a->curl);

        if (a->extra && a->zone->sh) {
            /* a claim cut short: the owner may claim again */
            zone = a->zone;

            ngx_shmtx_lock(&zone->shpool->mutex);

            un = ngx_http_usage_gate_zone_node_locked(zone, a->owner, a->len,
                                              ngx_http_usage_gate_now_us(),
                                              0);
            if (un != NULL) {
                ngx_http_usage_gate_ddb_state(un)->flags &=
                                         ~NGX_HTTP_USAGE_GATE_DDB_CLAIMING;
            }

            ngx_shmtx_unlock(&zone->shpool->mutex);
        }

        ngx_free(a);
    }

    if (ngx_http_usage_gate_ddb_aws) {
        ngx_http_usage_gate_curl_cancel(ngx_http_usage_gate_ddb_aws->req);
        ngx_http_usage_gate_ddb_aws->req = NULL;

        if (ngx_http_usage_gate_ddb_aws->refresh.timer_set) {
            ngx_del_timer(&ngx_http_usage_gate_ddb_aws->refresh);
        }

        ngx_explicit_memzero(ngx_http_usage_gate_ddb_aws,
                             sizeof(ngx_http_usage_gate_ddb_aws_t));
        ngx_http_usage_gate_ddb_aws = NULL;
    }
}


/* -------------------------------------------------------- credentials */

static const ug_aws_creds_t *
ngx_http_usage_gate_ddb_creds(ngx_http_usage_gate_ddb_conf_t *dc)
{
    ngx_http_usage_gate_ddb_aws_t  *aws;

    aws = ngx_http_usage_gate_ddb_aws;

    if (aws == NULL) {
        return NULL;
    }

    if (aws->have_env && ug_aws_creds_usable(&aws->env, ngx_time())) {
        return &aws->env;
    }

    if (dc->file_creds) {
        return dc->file_creds;
    }

    if (aws->have_remote && ug_aws_creds_usable(&aws->remote, ngx_time())) {
        return &aws->remote;
    }

    return NULL;
}


static void
ngx_http_usage_gate_ddb_no_creds(ngx_log_t *log)
{
    ngx_http_usage_gate_ddb_aws_t  *aws;

    aws = ngx_http_usage_gate_ddb_aws;

    if (aws == NULL || aws->alerted) {
        return;
    }

    aws->alerted = 1;

    ngx_log_error(NGX_LOG_ALERT, log, 0,
                  "usage_gate_dynamodb: no AWS credentials: set "
                  "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and name "
                  "them with \"env\" in the main context of nginx.conf), "
                  "a shared credentials file, an ECS task role or an EC2 "
                  "instance profile; until then DynamoDB is treated as "
                  "unreachable (on_error)");
}


/* One step of fetching temporary credentials (ECS, or IMDSv2). */
static void
ngx_http_usage_gate_ddb_aws_fetch(ngx_event_t *ev)
{
    char                             *v;
    const char                       *headers[2];
    ngx_http_usage_gate_ddb_aws_t    *aws;
    ngx_http_usage_gate_curl_opts_t   opts;

    aws = ev->data;

    if (aws->req != NULL || aws->remote_kind == NGX_HTTP_USAGE_GATE_AWS_NONE)
    {
        return;
    }

    if (aws->step == NGX_HTTP_USAGE_GATE_AWS_NONE) {
        aws->step = aws->remote_kind;
    }

    ngx_memzero(&opts, sizeof(ngx_http_usage_gate_curl_opts_t));
    opts.connect_timeout = 1000;
    opts.timeout = 3000;
    opts.headers = headers;
    headers[0] = NULL;
    headers[1] = NULL;

    switch (aws->step) {

    case NGX_HTTP_USAGE_GATE_AWS_ECS:
        opts.method = "GET";
        opts.url = aws->url;

        v = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");

        if (v != NULL && *v != '\0') {
            if (ngx_strlen(v) > UG_AWS_TOKEN_MAX
                || !ug_aws_header_value_ok(v, ngx_strlen(v)))
            {
                ngx_http_usage_gate_ddb_aws_failed(
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN is not usable");
                return;
            }

            ngx_sprintf((u_char *) aws->header, "Authorization: %s%Z", v);
            headers[0] = aws->header;
        }

        break;

    case NGX_HTTP_USAGE_GATE_AWS_IMDS_TOKEN:
        opts.method = "PUT";
        opts.url = UG_AWS_IMDS_TOKEN_URL;
        headers[0] = UG_AWS_IMDS_TTL_HEADER;
        break;

    default: /* IMDS_ROLE, IMDS_CREDS */
        opts.method = "GET";

        if (aws->step == NGX_HTTP_USAGE_GATE_AWS_IMDS_ROLE) {
            opts.url = UG_AWS_IMDS_CREDS_URL;
        } else {
            opts.url = aws->url;
        }

        ngx_sprintf((u_char *) aws->header, UG_AWS_IMDS_TOKEN_HEADER ": %s%Z",
                    aws->token);
        headers[0] = aws->header;
        break;
    }

    aws->req = ngx_http_usage_gate_curl_start(aws->log, &opts,
                                              ngx_http_usage_gate_ddb_aws_done,
                                              aws);
    if (aws->req == NULL) {
        ngx_http_usage_gate_ddb_aws_failed("the request could not start");
    }
}


static void
ngx_http_usage_gate_ddb_aws_done(void *data, ngx_int_t rc, long status,
    ngx_str_t *body, const char *error)
{
    ngx_http_usage_gate_ddb_aws_t *aws = data;

    int              arc;
    char             role[UG_AWS_ROLE_MAX + 1];
    int64_t          wait;
    ug_aws_creds_t   c;

    aws->req = NULL;

    if (rc != NGX_OK || status != 200) {
        ngx_http_usage_gate_ddb_aws_failed(rc != NGX_OK ? error
                                           : "the answer was not 200");
        return;
    }

    switch (aws->step) {

    case NGX_HTTP_USAGE_GATE_AWS_IMDS_TOKEN:
        if (body->len > UG_AWS_IMDS_TOKEN_MAX
            || !ug_aws_imds_token_ok((char *) body->data, body->len))
        {
            ngx_http_usage_gate_ddb_aws_failed("no IMDSv2 session token");
            return;
        }

        ngx_memcpy(aws->token, body->data, body->len);
        aws->token[body->len] = '\0';
        aws->step = NGX_HTTP_USAGE_GATE_AWS_IMDS_ROLE;
        ngx_add_timer(&aws->refresh, 1);
        return;

    case NGX_HTTP_USAGE_GATE_AWS_IMDS_ROLE:
        if (ug_aws_imds_role((char *) body->data, body->len, role,
                             sizeof(role))
            != UG_AWS_OK
            || ug_aws_imds_creds_url(aws->url, sizeof(aws->url), role)
               != UG_AWS_OK)
        {
            ngx_http_usage_gate_ddb_aws_failed("no IAM role on this "
                                               "instance");
            return;
        }

        aws->step = NGX_HTTP_USAGE_GATE_AWS_IMDS_CREDS;
        ngx_add_timer(&aws->refresh, 1);
        return;

    default: /* ECS, IMDS_CREDS */
        arc = ug_aws_creds_from_json(&c, (char *) body->data, body->len);

        if (arc != UG_AWS_OK) {
            ngx_http_usage_gate_ddb_aws_failed(ug_aws_strerror(arc));
            return;
        }

        aws->remote = c;
        aws->have_remote = 1;
        aws->step = NGX_HTTP_USAGE_GATE_AWS_NONE;
        ngx_explicit_memzero(&c, sizeof(ug_aws_creds_t));

        /* again when UG_AWS_REFRESH_BEFORE remains, with some spread */
        wait = aws->remote.expires - (int64_t) ngx_time()
               - UG_AWS_REFRESH_BEFORE - (int64_t) (ngx_random() % 60);

        if (wait < 60) {
            wait = 60;
        }

        if (wait > 3600) {
            wait = 3600;
        }

        ngx_log_error(NGX_LOG_INFO, aws->log, 0,
                      "usage_gate_dynamodb: temporary AWS credentials "
                      "from the %s, valid for %L s",
                      aws->remote_kind == NGX_HTTP_USAGE_GATE_AWS_ECS
                      ? "ECS container endpoint" : "EC2 instance metadata",
                      aws->remote.expires - (int64_t) ngx_time());

        ngx_add_timer(&aws->refresh, (ngx_msec_t) wait * 1000);
        return;
    }
}


static void
ngx_http_usage_gate_ddb_aws_failed(const char *why)
{
    ngx_http_usage_gate_ddb_aws_t  *aws;

    aws = ngx_http_usage_gate_ddb_aws;

    aws->step = NGX_HTTP_USAGE_GATE_AWS_NONE;

    if (aws->have_remote && ug_aws_creds_usable(&aws->remote, ngx_time())) {
        /* the old ones still work for a while */
        ngx_log_error(NGX_LOG_WARN, aws->log, 0,
                      "usage_gate_dynamodb: refreshing AWS credentials "
                      "failed: %s; trying again in 10s", why);
        ngx_add_timer(&aws->refresh, 10000);
        return;
    }

    if (!aws->alerted) {
        ngx_log_error(NGX_LOG_ERR, aws->log, 0,
                      "usage_gate_dynamodb: no credentials from the %s: %s",
                      aws->remote_kind == NGX_HTTP_USAGE_GATE_AWS_ECS
                      ? "ECS container endpoint" : "EC2 instance metadata",
                      why);
    }

    ngx_http_usage_gate_ddb_no_creds(aws->log);

    ngx_add_timer(&aws->refresh, 30000);
}
