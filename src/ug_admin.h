/*
 * The admin API, without nginx: routing a method and path below the
 * admin location, the JSON bodies, the arithmetic of a correction, and
 * the JSON answer for an owner.
 *
 *   GET   <prefix>/owners/{owner}           the owner's counts
 *   POST  <prefix>/owners/{owner}/reset     month and minute to zero
 *   POST  <prefix>/owners/{owner}/adjust    {"delta": -5}
 *   PUT   <prefix>/owners/{owner}           {"used": 15}
 *
 * {owner} is percent-decoded (so "anon%3Aabc" and "anon:abc" are the
 * same owner) and must then pass ug_id_check.  The glue calls
 * ug_admin_route, reads the body when ug_admin_needs_body says so, calls
 * ug_admin_body, and then, under the zone's lock, ug_admin_apply_counter.
 * A request that fails any step has req->status and req->detail set and
 * changes nothing.
 */

#ifndef UG_ADMIN_H
#define UG_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "ug_decide.h"
#include "ug_identity.h"
#include "ug_plan.h"


/* Larger bodies are refused (413) before they are parsed. */
#define UG_ADMIN_BODY_MAX    4096

/* The largest count an admin may set, or a delta may reach or move by. */
#define UG_ADMIN_VALUE_MAX   UG_LIMIT_MAX

#define UG_ADMIN_DETAIL_MAX  256

/* Enough for ug_admin_render with any owner. */
#define UG_ADMIN_RENDER_MAX  (6 * UG_OWNER_MAX + 256)


typedef enum {
    UG_ADMIN_NONE = 0,
    UG_ADMIN_GET,           /* GET  owners/{owner} */
    UG_ADMIN_RESET,         /* POST owners/{owner}/reset */
    UG_ADMIN_ADJUST,        /* POST owners/{owner}/adjust, {"delta": N} */
    UG_ADMIN_SET            /* PUT  owners/{owner}, {"used": N} */
} ug_admin_action_t;


typedef struct {
    ug_admin_action_t  action;
    unsigned char      owner[UG_OWNER_MAX];     /* decoded, not NUL-ended */
    size_t             owner_len;
    int64_t            value;                   /* ADJUST: delta;
                                                   SET: used */

    /* on failure: 400, 404, 405 or 413, and a sentence for "detail" */
    int                status;
    const char        *allow;                   /* with 405: for Allow */
    char               detail[UG_ADMIN_DETAIL_MAX];
} ug_admin_req_t;


/*
 * Routes a request.  uri is the raw request target as the client sent it
 * (nginx: r->unparsed_uri, not the decoded r->uri, so that %2F stays in
 * the owner); a query string is ignored.  prefix is the admin location's
 * name ("/usage_gate/admin"); a uri that does not start with it exactly
 * is 404.  Returns 0 or req->status.
 */
int ug_admin_route(ug_admin_req_t *req, const char *method,
    size_t method_len, const char *uri, size_t uri_len, const char *prefix,
    size_t prefix_len);

/* Non-zero when the routed action takes a body (ADJUST, SET). */
int ug_admin_needs_body(const ug_admin_req_t *req);

/*
 * Parses the body of ADJUST ({"delta": N}, |N| <= UG_ADMIN_VALUE_MAX) or
 * SET ({"used": N}, 0 <= N <= UG_ADMIN_VALUE_MAX): one JSON object with
 * exactly that one integer field.  Other actions ignore the body.
 * Returns 0 or req->status (400; 413 over UG_ADMIN_BODY_MAX bytes).
 */
int ug_admin_body(ug_admin_req_t *req, const char *body, size_t len);

/*
 * The new count for an owner whose count this month is `used`.  Refuses
 * (400, with *detail a static sentence) a result below zero or above
 * UG_ADMIN_VALUE_MAX.  GET leaves it as it is.  Returns 0 or 400.
 */
int ug_admin_apply(const ug_admin_req_t *req, uint64_t used,
    uint64_t *new_used, const char **detail);

/*
 * Applies the request to a counter at now_us, as ug_decide would see it:
 * a counter from another month or minute starts from zero first.  RESET
 * also clears the per-minute state (the GCRA and the minute's count), so
 * that a reset owner has its whole burst again.  On failure the counter
 * is left exactly as it was.  Returns 0 or 400.
 */
int ug_admin_apply_counter(const ug_admin_req_t *req, ug_counter_t *c,
    uint64_t now_us, const char **detail);

/*
 * The owner's plan-independent counts at now_us:
 * {"owner":"alice","month":"2026-01","used":5,"month_reset_seconds":N,
 *  "minute":{"bucket":"202601311259","used":2}}
 * Counts from another month or minute read as 0.  Returns the length, or
 * 0 if it did not fit (UG_ADMIN_RENDER_MAX always does).
 */
size_t ug_admin_render(char *buf, size_t size, const unsigned char *owner,
    size_t owner_len, const ug_counter_t *c, uint64_t now_us);

#endif /* UG_ADMIN_H */
