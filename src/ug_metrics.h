/*
 * The metrics endpoint's text: the Prometheus text exposition format
 * (version 0.0.4) and the same numbers as JSON, rendered from a plain
 * snapshot that the glue copies out of the zones.
 *
 * The glue sizes first and renders second, so that it can allocate the
 * exact buffer from the request pool:
 *
 *     n = ug_metrics_text_size(zones, nzones);
 *     p = ngx_pnalloc(r->pool, n);
 *     len = ug_metrics_text(p, n, zones, nzones);     (len == n)
 *
 * Every family carries a "zone" label.  Zone names must be unique, and
 * plan names and error types unique within a zone, or the output holds
 * duplicate series (and duplicate JSON keys).
 */

#ifndef UG_METRICS_H
#define UG_METRICS_H

#include <stddef.h>
#include <stdint.h>


#define UG_METRICS_TEXT_TYPE  "text/plain; version=0.0.4; charset=utf-8"
#define UG_METRICS_JSON_TYPE  "application/json"

/* Longer zone, plan or error type names are cut to this many bytes. */
#define UG_METRICS_NAME_MAX   256

/* Results, in the order of the zone's statistics slots. */
enum {
    UG_METRIC_ALLOWED = 0,
    UG_METRIC_QUOTA,
    UG_METRIC_RATE,
    UG_METRIC_DRY_RUN_QUOTA,
    UG_METRIC_DRY_RUN_RATE,
    UG_METRIC_BYPASS,
    UG_METRIC_UNAUTHORIZED,
    UG_METRIC_BAD_REQUEST,
    UG_METRIC_UNAVAILABLE,
    UG_METRIC_PREFLIGHT,
    UG_METRIC_OVERFLOW,
    UG_METRIC_OVERFLOW_RATE,
    UG_METRIC_FULL,
    UG_METRIC_RESULTS
};


typedef struct {
    const char          *name;          /* plan name; "none" for requests
                                           refused before a plan was
                                           known */
    size_t               len;
    uint64_t             count[UG_METRIC_RESULTS];
    uint64_t             refunded;      /* units given back */
    uint64_t             overage;       /* units past the included month */
} ug_metrics_plan_t;


typedef struct {
    const char          *type;          /* e.g. "ThrottlingException" */
    size_t               len;
    uint64_t             count;
} ug_metrics_error_t;


typedef struct {
    const char                *name;    /* the zone's name */
    size_t                     len;

    const ug_metrics_plan_t   *plans;
    size_t                     nplans;

    uint64_t                   owners;
    uint64_t                   bytes_total;
    uint64_t                   bytes_used;
    uint64_t                   evictions;
    uint64_t                   fail_open;

    /* the state file, when the zone has one */
    int                        state;
    uint64_t                   state_writes;
    uint64_t                   state_failures;
    int64_t                    state_last_write;   /* unix s; 0: never */

    /* threshold notifications, when usage_gate_notify is set */
    int                        notify;
    uint64_t                   notify_sent;
    uint64_t                   notify_failures;

    /* DynamoDB, when the zone syncs to it */
    int                        dynamodb;
    uint64_t                   sync_backlog;
    int64_t                    last_sync;          /* unix s; 0: never */
    uint64_t                   writes;             /* UpdateItem calls */
    const ug_metrics_error_t  *errors;
    size_t                     nerrors;
} ug_metrics_zone_t;


/* "allowed", "quota", ... "bad_request"; NULL when out of range. */
const char *ug_metrics_result_name(unsigned result);

/* The exact length ug_metrics_text will write. */
size_t ug_metrics_text_size(const ug_metrics_zone_t *zones, size_t n);

/* Writes the exposition text; returns its length, or 0 if it did not fit
 * in size bytes (nothing useful is left in buf then).  No NUL. */
size_t ug_metrics_text(char *buf, size_t size,
    const ug_metrics_zone_t *zones, size_t n);

/* The same for JSON:
 * {"zones":[{"zone":"usage","requests":{"free":{"allowed":N,...}},
 *   "refunded_units":{"free":N},"overage_units":{"free":N},
 *   "owners":N,"zone_bytes":{"size":N,"used":N,"free":N},
 *   "evictions":N,"fail_open":N,
 *   "state_file":{"writes":N,"failures":N,"last_write":T} or null,
 *   "notifications":{"sent":N,"failures":N} or null,
 *   "dynamodb":{"sync_backlog":N,"last_sync":T,"writes":N,
 *               "errors":{"ThrottlingException":N}} or null}]} */
size_t ug_metrics_json_size(const ug_metrics_zone_t *zones, size_t n);
size_t ug_metrics_json(char *buf, size_t size,
    const ug_metrics_zone_t *zones, size_t n);

#endif /* UG_METRICS_H */
