/*
 * Text the gate sends: the IETF RateLimit fields and the JSON deny body.
 * Each writer returns the length written, or 0 if it would not fit.
 */

#ifndef UG_FMT_H
#define UG_FMT_H

#include <stddef.h>
#include <stdint.h>

#include "ug_decide.h"
#include "ug_plan.h"

/* Enough for either RateLimit field. */
#define UG_FMT_FIELD_MAX  160

/* The most bytes ug_fmt_uint writes: the digits of UINT64_MAX. */
#define UG_FMT_UINT_MAX  20

/*
 * v in decimal at buf, which has room for UG_FMT_UINT_MAX bytes; no NUL.
 * Returns the number of digits.  For the usage headers on every response:
 * a few dozen instructions where ngx_sprintf or snprintf take hundreds.
 */
size_t ug_fmt_uint(char *buf, uint64_t v);

/*
 * RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers-10):
 * "minute";q=30;w=60, "month";q=20;w=2592000 -- policies that are off are
 * left out; 0 when both are off.
 */
size_t ug_fmt_policy(char *buf, size_t size, const ug_limits_t *limits);

/* RateLimit: "minute";r=29;t=2, "month";r=19;t=183022 */
size_t ug_fmt_ratelimit(char *buf, size_t size, const ug_limits_t *limits,
    const ug_decision_t *d);

/* Bytes enough for ug_fmt_deny_body with these string lengths. */
size_t ug_fmt_deny_body_size(size_t plan_len, size_t url_len);

/*
 * FastAPI's error shape with the gate's fields:
 * {"detail":"Monthly quota reached for plan 'free'. Please upgrade.",
 *  "plan":"free","limit":20,"used":20,"reset_seconds":N,"upgrade_url":...}
 * upgrade_url is null when url is NULL.
 */
size_t ug_fmt_deny_body(char *buf, size_t size, const ug_decision_t *d,
    const char *plan, size_t plan_len, const ug_limits_t *limits,
    const char *url, size_t url_len);

/* Bytes enough for ug_fmt_detail with a message of this length. */
size_t ug_fmt_detail_size(size_t len);

/* {"detail":"<msg, JSON-escaped>"} */
size_t ug_fmt_detail(char *buf, size_t size, const char *msg, size_t len);

/*
 * JSON string contents for src; dst needs 6 * len bytes at most.  Quotes,
 * backslashes and control bytes are escaped, well-formed UTF-8 is kept,
 * any other byte becomes \ufffd.  Returns 0 if it does not fit.
 */
size_t ug_json_escape(char *dst, size_t size, const char *src, size_t len);

/*
 * A value for an error-log line, where it stands between double quotes:
 * '"' and '\\' are escaped with a backslash and any byte outside
 * printable ASCII becomes \xNN, so that an owner id, a plan or a claim
 * can never end the quoted field early or forge the rest of a line for
 * a log parser.  dst needs 4 * len bytes at most; if it is smaller the
 * value is cut (never in the middle of an escape) and "..." marks the
 * cut.  Returns the length written; dst is not NUL-terminated.
 */
size_t ug_log_escape(char *dst, size_t size, const unsigned char *src,
    size_t len);

#endif /* UG_FMT_H */
