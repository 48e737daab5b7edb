/*
 * DynamoDB as the fleet's shared store: the JSON bodies the gate sends
 * (low-level API, x-amz-json-1.0), the answers it accepts, how failures
 * are classified, and the retry backoff.  No I/O here: the nginx glue
 * (ngx_http_usage_gate_curl.c) carries the bytes.
 *
 * The table is the seed's: partition key "owner" (S), sort key "month"
 * (S, "YYYY-MM"), attribute "count" (N).
 */

#ifndef UG_DDB_H
#define UG_DDB_H

#include <stddef.h>
#include <stdint.h>

/*
 * Every DynamoDB action the module calls, space-separated.  The IAM policy
 * in terraform/ must grant exactly these (t/integration/test_terraform.py
 * reads this line); add an action here before sending it.
 */
#define UG_DDB_IAM_ACTIONS     "dynamodb:UpdateItem dynamodb:GetItem"

/* X-Amz-Target is UG_DDB_TARGET_PREFIX followed by the operation. */
#define UG_DDB_TARGET_PREFIX   "DynamoDB_20120810."
#define UG_DDB_OP_UPDATE       "UpdateItem"
#define UG_DDB_OP_GET          "GetItem"
#define UG_DDB_CONTENT_TYPE    "application/x-amz-json-1.0"

/* Names in the seed's key schema. */
#define UG_DDB_ATTR_OWNER      "owner"
#define UG_DDB_ATTR_MONTH      "month"
#define UG_DDB_ATTR_COUNT      "count"

/* The writer attribute: UG_DDB_WRITER_PREFIX and up to 16 hex digits. */
#define UG_DDB_WRITER_PREFIX   "w_"
#define UG_DDB_WRITER_MAX      16

/* Table names per DynamoDB: 3..255 of [A-Za-z0-9_.-]. */
#define UG_DDB_TABLE_MIN       3
#define UG_DDB_TABLE_MAX       255

/* Longest owner accepted; DynamoDB allows 2048 bytes in a partition key. */
#define UG_DDB_OWNER_MAX       1024

/* An attribute name for the optional TTL: 1..64 of [A-Za-z0-9_.-]. */
#define UG_DDB_ATTR_MAX        64

/*
 * Bytes enough for any body the builders make with a table name and owner
 * within the limits above, even if every owner byte needs a \u00XX escape.
 */
#define UG_DDB_BODY_MAX        (1024 + 2 * UG_DDB_TABLE_MAX              \
                                + 6 * UG_DDB_OWNER_MAX)

/* Largest answer parsed; the glue caps what it reads at this size too. */
#define UG_DDB_RESPONSE_MAX    65536

/* Largest |delta| for one ADD; far above any real interval's usage. */
#define UG_DDB_DELTA_MAX       1000000000000LL

/*
 * Retries: full-jitter exponential backoff (AWS's "full jitter"), 50 ms
 * base, doubling, capped.  UG_DDB_MAX_ATTEMPTS counts the first try.
 */
#define UG_DDB_BACKOFF_BASE_MS 50
#define UG_DDB_BACKOFF_CAP_MS  1600
#define UG_DDB_MAX_ATTEMPTS    6


/* Builders' return codes. */
enum {
    UG_DDB_BUILD_OK = 0,
    UG_DDB_BUILD_NEVER,         /* delta > limit: this ADD can never pass */
    UG_DDB_BUILD_INVALID,       /* bad table, owner, month, TTL or value */
    UG_DDB_BUILD_TOO_BIG,       /* does not fit in the buffer */
    UG_DDB_BUILD_NOMEM
};


/* What an answer means to the caller. */
typedef enum {
    UG_DDB_OK = 0,
    UG_DDB_CONDITIONAL_FAILED,  /* the ceiling held: never retry */
    UG_DDB_RETRYABLE,           /* throttled, 5xx, transport: back off */
    UG_DDB_FATAL                /* validation, auth, missing table, junk */
} ug_ddb_class_t;


/* Which item: the seed's key. */
typedef struct {
    const char  *table;
    size_t       table_len;
    const char  *owner;         /* any bytes; JSON-escaped when sent */
    size_t       owner_len;
    int32_t      month;         /* ug_month_index() */

    /*
     * Optional TTL attribute (terraform's ttl_attribute): when ttl_attr is
     * set, writes also SET it to ttl_at (unix seconds), so DynamoDB can
     * expire past months.  ttl_attr NULL: no TTL written.
     */
    const char  *ttl_attr;
    size_t       ttl_attr_len;
    int64_t      ttl_at;

    /*
     * Optional writer (1..UG_DDB_WRITER_MAX lowercase hex digits, one per
     * worker process) and its sequence number, so that a retried write
     * is applied at most once: an ADD also SETs "w_<writer>" to seq and
     * is conditional on that attribute being absent or below seq.  A
     * retry reuses seq; if the first try was applied, the retry fails
     * the condition, and a GetItem of the attribute tells the two
     * failures apart.  writer NULL: no such attribute or condition.
     */
    const char  *writer;
    size_t       writer_len;
    uint64_t     seq;
} ug_ddb_item_t;


/* The meaning of one answer (or of a transport failure). */
typedef struct {
    ug_ddb_class_t  cls;
    uint64_t        count;       /* UG_DDB_OK: the count now in the table */
    uint64_t        seq;         /* GetItem: the writer's attribute */
    unsigned        found:1;     /* GetItem: the item exists */
    unsigned        has_seq:1;   /* GetItem: the writer's attribute is set */
    unsigned        auth:1;      /* credentials rejected or expired:
                                    fetch fresh ones before the next try */
    long            status;      /* HTTP status, 0 for transport errors */
    char            type[64];    /* AWS error name (after '#') or a
                                    short reason of ours; "" when OK */
    char            message[128];  /* AWS message, truncated; may be "" */
} ug_ddb_result_t;


/*
 * UpdateItem that ADDs delta to count and returns the new count
 * (ReturnValues UPDATED_NEW):
 *
 *   delta >= 0, limit >= 0: with the ceiling
 *       ConditionExpression attribute_not_exists(#c) OR #c <= :max,
 *       :max = limit - delta, so the table never passes limit;
 *       delta > limit returns UG_DDB_BUILD_NEVER and builds nothing.
 *   delta >= 0, limit < 0 (UG_OFF): no condition (async flushes of
 *       requests already allowed must always land).
 *   delta < 0: with the floor #c >= :min, :min = -delta, so a correction
 *       never takes count below zero (and fails on a missing item).
 *
 * |delta| <= UG_DDB_DELTA_MAX.  Writes the body (no NUL) into buf and its
 * length into *len.
 */
int ug_ddb_build_add(char *buf, size_t size, size_t *len,
    const ug_ddb_item_t *item, int64_t delta, int64_t limit);

/*
 * GetItem of count with ConsistentRead (admin reads, sync of the base);
 * with item->writer set, of the writer's attribute too.
 */
int ug_ddb_build_get(char *buf, size_t size, size_t *len,
    const ug_ddb_item_t *item);

/*
 * UpdateItem SET count = used (admin PUT used=N), ReturnValues
 * UPDATED_NEW.  0 <= used <= UG_DDB_DELTA_MAX.
 */
int ug_ddb_build_set(char *buf, size_t size, size_t *len,
    const ug_ddb_item_t *item, int64_t used);

/* A static text for a UG_DDB_BUILD_* code. */
const char *ug_ddb_build_strerror(int rc);

/* 1 if name is a valid DynamoDB table name, else 0. */
int ug_ddb_table_name_ok(const char *name, size_t len);

/* 1 if region looks like an AWS region ("us-east-1"), else 0. */
int ug_ddb_region_ok(const char *region, size_t len);

/*
 * The public endpoint for a region, NUL-terminated:
 * "https://dynamodb.<region>.amazonaws.com/" (".com.cn" in China).
 * Returns 0, or -1 for a bad region or a small buffer.
 */
#define UG_DDB_ENDPOINT_MAX    80
int ug_ddb_endpoint(char *buf, size_t size, const char *region);

/*
 * Expiry for the TTL attribute: keep_sec after the month ends.  (DynamoDB
 * deletes within days of the time, so keep some margin for billing.)
 */
int64_t ug_ddb_ttl_at(int32_t month, int64_t keep_sec);


/*
 * Reading answers.  status is the HTTP status (0 when the transfer failed:
 * connection refused, timeout, reset, oversize answer), body the bytes
 * read.  Fills *res and returns res->cls.
 *
 * 200 from UpdateItem: {"Attributes":{"count":{"N":"123"}}}.
 * 200 from GetItem: {"Item":{... "count":{"N":"123"}}}, or {} when the
 *     item does not exist (count 0, found 0).
 * A 200 that cannot be read is FATAL, never RETRYABLE: the write may have
 * happened, and repeating an ADD would count twice.
 * Other statuses: classified by the "__type" after '#', else by status.
 */
ug_ddb_class_t ug_ddb_parse_update(long status, const char *body,
    size_t len, ug_ddb_result_t *res);
ug_ddb_class_t ug_ddb_parse_get(long status, const char *body, size_t len,
    ug_ddb_result_t *res);

/*
 * GetItem with item->writer set: as ug_ddb_parse_get, and the writer's
 * attribute in res->seq (res->has_seq 1) when the item has it.
 */
ug_ddb_class_t ug_ddb_parse_get_writer(long status, const char *body,
    size_t len, const ug_ddb_item_t *item, ug_ddb_result_t *res);

/*
 * Classifies an error answer (any status but 200) or, with status 0, a
 * transport error (RETRYABLE; reason names it in res->type, e.g.
 * "Timeout"; NULL gives "TransportError").
 */
ug_ddb_class_t ug_ddb_parse_error(long status, const char *body,
    size_t len, const char *reason, ug_ddb_result_t *res);

/* The class for an AWS error name (the text after '#' in __type). */
ug_ddb_class_t ug_ddb_classify_type(const char *type, size_t len,
    unsigned *auth);

/* "ok", "conditional_failed", "retryable" or "fatal" (metrics labels). */
const char *ug_ddb_class_name(ug_ddb_class_t cls);


/*
 * Milliseconds to wait before the next try after `attempt` failed tries
 * (attempt >= 1): uniform in [0, min(CAP, BASE * 2^(attempt-1))], drawn
 * from rnd (a uniformly random 32-bit value the caller supplies).
 * Returns 0 for attempt 0.
 */
uint32_t ug_ddb_backoff_ms(unsigned attempt, uint32_t rnd);

/* 1 if another try is allowed after `attempts` tries of this class. */
int ug_ddb_should_retry(ug_ddb_class_t cls, unsigned attempts);

#endif /* UG_DDB_H */
