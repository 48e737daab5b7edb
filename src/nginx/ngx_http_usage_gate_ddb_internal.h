/*
 * DynamoDB as the fleet's shared store: what the ngx_http_usage_gate_ddb_*.c
 * files share.
 *
 * Each owner's node in the zone carries a small DynamoDB state after its
 * name: the table's count at the last answer (base), the units to add to
 * the table at the next sync (pending: usage allowed here and not yet
 * written), the units this node has claimed in the table ahead of use
 * (claimed, auto mode), and whether the table said the owner is at its
 * limit.  The zone's month_used of such an owner is base - claimed +
 * pending: the node's best view of the fleet-wide usage.  The state's
 * month is the table's `month` key: the month the owner's billing cycle
 * starts in (ngx_http_usage_gate_ddb_month), the counter's own for
 * calendar months.  A refund goes through the same arithmetic: back to
 * the claim, or pending down (below zero: a negative ADD at the sync).
 *
 * Modes, for plans with a monthly limit, whose ceiling is the included
 * month plus the overage band (plans without one, or with an unlimited
 * band, always decide in the zone and sync later):
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

#ifndef NGX_HTTP_USAGE_GATE_DDB_INTERNAL_H
#define NGX_HTTP_USAGE_GATE_DDB_INTERNAL_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_usage_gate_ddb.h"
#include "ngx_http_usage_gate_store.h"
#include "ngx_http_usage_gate_curl.h"
#include "ug_aws.h"
#include "ug_claim.h"
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


/* a keep period for the TTL attribute unless ttl_keep= says otherwise */
#define NGX_HTTP_USAGE_GATE_DDB_TTL_KEEP    (400 * 86400)

#define NGX_HTTP_USAGE_GATE_DDB_REGION_MAX  32


/*
 * An owner's DynamoDB state, after its name in the zone's node (104
 * bytes): its link in the zone's sync queue, the claim arithmetic's state
 * (ug_claim.h), whose `back` holds the bytes from the node to here, and
 * its sync write to settle.
 */
/*
 * A sync write of the owner's whose outcome is not known yet (seq 0:
 * none): sent, and its answer lost, or on its way.  It is settled, by
 * sending it again as it is (its writer's sequence makes it apply at
 * most once) and reading the item when it is refused, before the owner's
 * units are written again; new units wait in pending meanwhile.  It
 * stays in the zone across a reload and goes into the state file at a
 * stop.
 */
typedef struct {
    uint64_t                         seq;
    int64_t                          delta;
    int32_t                          month;
    uint32_t                         pid;          /* sending it; 0 */
    char                             writer[UG_DDB_WRITER_MAX];
} ngx_http_usage_gate_ddb_once_t;


typedef struct {
    ngx_queue_t                      dirty;
    ug_claim_t                       c;
    ngx_http_usage_gate_ddb_once_t   once;
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

    /* bumped when a configuration that uses this zone is committed (a
     * start, a reload that succeeds): a worker of an older one leaves the
     * zone's units to the new workers */
    ngx_atomic_t                     generation;
    ngx_atomic_t                     loss_logged;   /* at a stop: once */
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
    uint64_t                         seq;          /* the node's once */
    char                             writer[UG_DDB_WRITER_MAX + 1];
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
    ngx_atomic_uint_t                generation;   /* this config's */
    unsigned                         exiting:1;    /* quit or reload seen */
    unsigned                         final:1;      /* ran the last flush */
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
    ug_terms_t                       terms;        /* overage, anchor */
    int64_t                          hard;         /* the write's ceiling */
    ug_decision_t                   *d;
    ngx_msec_t                       deadline;
    ngx_uint_t                       attempts;
    uint64_t                         cost;
    uint64_t                         taken;        /* pending carried */
    uint64_t                         extra;        /* units claimed */
    int32_t                          month;        /* the item's key */
    int32_t                          cycle;        /* the counter's */
    ngx_uint_t                       state;
    ngx_int_t                        rc;           /* for the handler */
    ngx_uint_t                       lane;         /* writer lane held */
    uint64_t                         seq;          /* the body's sequence */
    unsigned                         queued:1;
    unsigned                         has_lane:1;
    char                             writer[UG_DDB_WRITER_MAX + 1];
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
    /* a claim: its write, resent as is until answered (see _request) */
    ngx_str_t                        body;
    ngx_event_t                      retry;
    ngx_msec_t                       deadline;
    ngx_uint_t                       attempts;
    ngx_uint_t                       lane;
    uint64_t                         seq;
    unsigned                         has_lane:1;
    char                             writer[UG_DDB_WRITER_MAX + 1];
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


/* the store's table (ngx_http_usage_gate_store.h), in the files named */

/* ngx_http_usage_gate_ddb_conf.c */
char *ngx_http_usage_gate_ddb_init_main_conf(ngx_conf_t *cf,
    ngx_http_usage_gate_main_conf_t *mcf);

/* ngx_http_usage_gate_ddb_owner.c */
ngx_int_t ngx_http_usage_gate_ddb_init_zone(ngx_http_usage_gate_zone_t *zone,
    ngx_log_t *log);
ngx_uint_t ngx_http_usage_gate_ddb_keep(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_node_t *un);
void ngx_http_usage_gate_ddb_record(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_node_t *un, ngx_http_usage_gate_record_t *rec);
void ngx_http_usage_gate_ddb_restore(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_record_t *rec);
uint64_t ngx_http_usage_gate_ddb_refund(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_node_t *un, int32_t cycle, uint64_t units);
int32_t ngx_http_usage_gate_ddb_month(int32_t cycle);

/* ngx_http_usage_gate_ddb_decide.c */
ngx_int_t ngx_http_usage_gate_ddb_decide(ngx_http_request_t *r,
    ngx_http_usage_gate_loc_conf_t *lcf, ngx_http_usage_gate_ctx_t *ctx,
    ngx_str_t *detail);
ngx_int_t ngx_http_usage_gate_ddb_resume(ngx_http_request_t *r,
    ngx_http_usage_gate_ctx_t *ctx, ngx_str_t *detail);

/* ngx_http_usage_gate_ddb_sync.c */
ngx_int_t ngx_http_usage_gate_ddb_init_process(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf);
void ngx_http_usage_gate_ddb_exit_process(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf);
ngx_int_t ngx_http_usage_gate_ddb_init_module(ngx_cycle_t *cycle,
    ngx_http_usage_gate_main_conf_t *mcf);

/* ngx_http_usage_gate_ddb_admin.c */
void ngx_http_usage_gate_ddb_admin_changed(ngx_http_usage_gate_zone_t *zone,
    ug_counter_t *counter, const ug_admin_req_t *req);
void ngx_http_usage_gate_ddb_admin_write(ngx_http_usage_gate_zone_t *zone,
    const ug_admin_req_t *req, const ug_counter_t *counter, ngx_log_t *log);
ngx_int_t ngx_http_usage_gate_ddb_metrics(ngx_http_usage_gate_zone_t *zone,
    ug_metrics_zone_t *mz, ngx_pool_t *pool);


/* shared between the files */
ngx_uint_t ngx_http_usage_gate_ddb_locked(
    ngx_http_usage_gate_ddb_req_t *dr, uint64_t now_us);
ngx_int_t ngx_http_usage_gate_ddb_body(
    ngx_http_usage_gate_ddb_conf_t *dc, ngx_pool_t *pool, u_char *owner,
    size_t len, int32_t month, int64_t delta, int64_t limit,
    ngx_str_t *body, ngx_log_t *log);
ngx_int_t ngx_http_usage_gate_ddb_lane_take(ngx_uint_t *lane, char *writer,
    ngx_log_t *log);
void ngx_http_usage_gate_ddb_lane_put(ngx_uint_t lane);
ngx_int_t ngx_http_usage_gate_ddb_sync_writer(char *writer,
    ngx_log_t *log);
uint64_t ngx_http_usage_gate_ddb_next_seq(void);
ngx_int_t ngx_http_usage_gate_ddb_body_once(
    ngx_http_usage_gate_ddb_conf_t *dc, ngx_pool_t *pool, u_char *owner,
    size_t len, int32_t month, int64_t delta, int64_t limit,
    const char *writer, uint64_t seq, ngx_uint_t get, ngx_str_t *body,
    ngx_log_t *log);
void ngx_http_usage_gate_ddb_admin_free(ngx_http_usage_gate_ddb_admin_t *a);
ngx_int_t ngx_http_usage_gate_ddb_req_body(
    ngx_http_usage_gate_ddb_req_t *dr, int64_t delta);
void ngx_http_usage_gate_ddb_release(ngx_http_usage_gate_ddb_req_t *dr);
ngx_int_t ngx_http_usage_gate_ddb_send(
    ngx_http_usage_gate_ddb_req_t *dr);
void ngx_http_usage_gate_ddb_answered(void *data, ngx_int_t rc,
    long status, ngx_str_t *body, const char *error);
void ngx_http_usage_gate_ddb_retry(ngx_event_t *ev);
void ngx_http_usage_gate_ddb_settle(ngx_http_usage_gate_ddb_req_t *dr,
    ngx_uint_t outcome, uint64_t count);
void ngx_http_usage_gate_ddb_unclaim(ngx_http_usage_gate_ddb_req_t *dr,
    ngx_uint_t refused);
void ngx_http_usage_gate_ddb_wake(ngx_http_usage_gate_ddb_req_t *dr);
void ngx_http_usage_gate_ddb_cleanup(void *data);

ngx_http_usage_gate_ddb_node_t *ngx_http_usage_gate_ddb_state(
    ngx_http_usage_gate_node_t *un);
int64_t ngx_http_usage_gate_ddb_roll(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_ddb_node_t *st, int32_t month);
int64_t ngx_http_usage_gate_ddb_add(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_ddb_node_t *st, int32_t month, int64_t units,
    ngx_uint_t fresh);
void ngx_http_usage_gate_ddb_dirty(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_ddb_node_t *st);
void ngx_http_usage_gate_ddb_used(ngx_http_usage_gate_node_t *un,
    ngx_http_usage_gate_ddb_node_t *st);
void ngx_http_usage_gate_ddb_lost(ngx_http_usage_gate_zone_t *zone,
    u_char *owner, size_t len, int64_t units, ngx_log_t *log);
ug_ddb_class_t ngx_http_usage_gate_ddb_parse(ngx_int_t rc,
    long status, ngx_str_t *body, const char *error, ug_ddb_result_t *res);
ug_ddb_class_t ngx_http_usage_gate_ddb_parse_check(const char *writer,
    ngx_int_t rc, long status, ngx_str_t *body, const char *error,
    ug_ddb_result_t *res);
void ngx_http_usage_gate_ddb_error(ngx_http_usage_gate_zone_t *zone,
    ug_ddb_result_t *res, const char *what, ngx_log_t *log);

void ngx_http_usage_gate_ddb_sync_timer(ngx_event_t *ev);
void ngx_http_usage_gate_ddb_sync_fill(
    ngx_http_usage_gate_ddb_conf_t *dc);
void ngx_http_usage_gate_ddb_flushed(void *data, ngx_int_t rc,
    long status, ngx_str_t *body, const char *error);
void ngx_http_usage_gate_ddb_flush_result(
    ngx_http_usage_gate_ddb_flush_t *f, ug_ddb_result_t *res);
void ngx_http_usage_gate_ddb_sync_end(
    ngx_http_usage_gate_ddb_conf_t *dc);

void ngx_http_usage_gate_ddb_admin_done(void *data, ngx_int_t rc,
    long status, ngx_str_t *body, const char *error);
void ngx_http_usage_gate_ddb_claim(ngx_http_usage_gate_ddb_req_t *dr);
void ngx_http_usage_gate_ddb_claimed(void *data, ngx_int_t rc,
    long status, ngx_str_t *body, const char *error);

void ngx_http_usage_gate_ddb_file_creds(ngx_conf_t *cf,
    ngx_http_usage_gate_ddb_conf_t *dc);
const ug_aws_creds_t *ngx_http_usage_gate_ddb_creds(
    ngx_http_usage_gate_ddb_conf_t *dc);
void ngx_http_usage_gate_ddb_aws_fetch(ngx_event_t *ev);
void ngx_http_usage_gate_ddb_aws_done(void *data, ngx_int_t rc,
    long status, ngx_str_t *body, const char *error);
void ngx_http_usage_gate_ddb_aws_failed(const char *why);
void ngx_http_usage_gate_ddb_no_creds(ngx_log_t *log);


/* per worker */
extern ngx_http_usage_gate_ddb_aws_t  *ngx_http_usage_gate_ddb_aws;
extern ngx_queue_t                     ngx_http_usage_gate_ddb_waiting;
extern ngx_queue_t                     ngx_http_usage_gate_ddb_admins;
extern ngx_uint_t                      ngx_http_usage_gate_ddb_running;

#endif /* NGX_HTTP_USAGE_GATE_DDB_INTERNAL_H */
