#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ug_admin.h"
#include "ug_cycle.h"
#include "ug_fmt.h"
#include "ug_time.h"


#define UG_ADMIN_OWNERS  "owners/"
#define UG_US_PER_SEC    1000000ULL


static int ug_admin_fail(ug_admin_req_t *req, int status, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));


static int
ug_admin_fail(ug_admin_req_t *req, int status, const char *fmt, ...)
{
    va_list  ap;

    req->status = status;

    va_start(ap, fmt);
    vsnprintf(req->detail, sizeof(req->detail), fmt, ap);
    va_end(ap);

    return status;
}


static int
ug_admin_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/* Percent-decodes the owner segment into req->owner, bounded. */
static int
ug_admin_owner(ug_admin_req_t *req, const char *p, size_t len)
{
    int     hi, lo, rc;
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        if (n == UG_OWNER_MAX) {
            return ug_admin_fail(req, 400, "owner is longer than %d bytes",
                                 UG_OWNER_MAX);
        }

        if (p[i] != '%') {
            req->owner[n++] = (unsigned char) p[i];
            continue;
        }

        hi = i + 2 < len ? ug_admin_hex((unsigned char) p[i + 1]) : -1;
        lo = i + 2 < len ? ug_admin_hex((unsigned char) p[i + 2]) : -1;

        if (hi < 0 || lo < 0) {
            return ug_admin_fail(req, 400, "owner has a malformed percent "
                                 "escape");
        }

        req->owner[n++] = (unsigned char) (hi << 4 | lo);
        i += 2;
    }

    req->owner_len = n;

    rc = ug_id_check(req->owner, n);
    if (rc != UG_ID_OK) {
        return ug_admin_fail(req, 400, "owner %s", ug_id_strerror(rc));
    }

    return 0;
}


static int
ug_admin_method(const char *m, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(m, want, len) == 0;
}


int
ug_admin_route(ug_admin_req_t *req, const char *method, size_t method_len,
    const char *uri, size_t uri_len, const char *prefix, size_t prefix_len)
{
    size_t       n, olen, slen;
    const char  *p, *end, *owner, *slash, *q;

    memset(req, 0, sizeof(ug_admin_req_t));

    q = memchr(uri, '?', uri_len);
    if (q) {
        uri_len = (size_t) (q - uri);
    }

    if (uri_len < prefix_len || memcmp(uri, prefix, prefix_len) != 0) {
        return ug_admin_fail(req, 404, "unknown admin path");
    }

    p = uri + prefix_len;
    end = uri + uri_len;

    /* "location /usage_gate/admin" leaves "/owners/..."; a prefix that
     * ends in a slash leaves "owners/..." */
    if (p < end && *p == '/') {
        p++;

    } else if (prefix_len == 0 || prefix[prefix_len - 1] != '/') {
        return ug_admin_fail(req, 404, "unknown admin path");
    }

    n = sizeof(UG_ADMIN_OWNERS) - 1;

    if ((size_t) (end - p) < n || memcmp(p, UG_ADMIN_OWNERS, n) != 0) {
        return ug_admin_fail(req, 404, "unknown admin path");
    }

    owner = p + n;
    slash = memchr(owner, '/', (size_t) (end - owner));
    olen = (size_t) ((slash ? slash : end) - owner);

    if (slash == NULL) {
        if (ug_admin_method(method, method_len, "GET")) {
            req->action = UG_ADMIN_GET;

        } else if (ug_admin_method(method, method_len, "PUT")) {
            req->action = UG_ADMIN_SET;

        } else {
            req->allow = "GET, PUT";
            return ug_admin_fail(req, 405, "method not allowed here; use "
                                 "GET or PUT");
        }

    } else {
        slen = (size_t) (end - slash);

        if (slen == sizeof("/reset") - 1
            && memcmp(slash, "/reset", slen) == 0)
        {
            req->action = UG_ADMIN_RESET;

        } else if (slen == sizeof("/adjust") - 1
                   && memcmp(slash, "/adjust", slen) == 0)
        {
            req->action = UG_ADMIN_ADJUST;

        } else {
            return ug_admin_fail(req, 404, "unknown admin path");
        }

        if (!ug_admin_method(method, method_len, "POST")) {
            req->action = UG_ADMIN_NONE;
            req->allow = "POST";
            return ug_admin_fail(req, 405, "method not allowed here; use "
                                 "POST");
        }
    }

    if (ug_admin_owner(req, owner, olen) != 0) {
        req->action = UG_ADMIN_NONE;
        return req->status;
    }

    return 0;
}


int
ug_admin_needs_body(const ug_admin_req_t *req)
{
    return req->action == UG_ADMIN_ADJUST || req->action == UG_ADMIN_SET;
}


int
ug_admin_body(ug_admin_req_t *req, const char *body, size_t len)
{
    int           rc;
    json_t       *root, *v;
    json_int_t    n;
    const char   *field;
    json_error_t  jerr;

    if (!ug_admin_needs_body(req)) {
        return 0;
    }

    field = req->action == UG_ADMIN_ADJUST ? "delta" : "used";

    if (len > UG_ADMIN_BODY_MAX) {
        return ug_admin_fail(req, 413, "body is larger than %d bytes",
                             UG_ADMIN_BODY_MAX);
    }

    if (len == 0) {
        return ug_admin_fail(req, 400, "body must be a JSON object: "
                             "{\"%s\": N}", field);
    }

    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        return ug_admin_fail(req, 400, "body is not valid JSON: %s "
                             "(at byte %d)", jerr.text, jerr.position);
    }

    rc = 0;

    if (!json_is_object(root)) {
        rc = ug_admin_fail(req, 400, "body must be a JSON object: "
                           "{\"%s\": N}", field);
        goto done;
    }

    v = json_object_get(root, field);

    if (v == NULL || json_object_size(root) != 1) {
        rc = ug_admin_fail(req, 400, "body must hold exactly one field, "
                           "\"%s\"", field);
        goto done;
    }

    if (!json_is_integer(v)) {
        rc = ug_admin_fail(req, 400, "\"%s\" must be an integer", field);
        goto done;
    }

    n = json_integer_value(v);

    if (req->action == UG_ADMIN_ADJUST
        && (n < -UG_ADMIN_VALUE_MAX || n > UG_ADMIN_VALUE_MAX))
    {
        rc = ug_admin_fail(req, 400, "\"delta\" must be between %lld and "
                           "%lld", -UG_ADMIN_VALUE_MAX, UG_ADMIN_VALUE_MAX);
        goto done;
    }

    if (req->action == UG_ADMIN_SET && (n < 0 || n > UG_ADMIN_VALUE_MAX)) {
        rc = ug_admin_fail(req, 400, "\"used\" must be between 0 and %lld",
                           UG_ADMIN_VALUE_MAX);
        goto done;
    }

    req->value = (int64_t) n;

done:

    json_decref(root);

    return rc;
}


int
ug_admin_apply(const ug_admin_req_t *req, uint64_t used, uint64_t *new_used,
    const char **detail)
{
    uint64_t  d;

    switch (req->action) {

    case UG_ADMIN_GET:
        *new_used = used;
        return 0;

    case UG_ADMIN_RESET:
        *new_used = 0;
        return 0;

    case UG_ADMIN_SET:
        if (req->value < 0 || req->value > UG_ADMIN_VALUE_MAX) {
            *detail = "\"used\" is out of range";
            return 400;
        }

        *new_used = (uint64_t) req->value;
        return 0;

    case UG_ADMIN_ADJUST:
        if (req->value < 0) {
            d = (uint64_t) -(req->value + 1) + 1;

            if (d > used) {
                *detail = "the adjustment would make usage negative";
                return 400;
            }

            *new_used = used - d;
            return 0;
        }

        d = (uint64_t) req->value;

        if (d != 0
            && (used > (uint64_t) UG_ADMIN_VALUE_MAX
                || d > (uint64_t) UG_ADMIN_VALUE_MAX - used))
        {
            *detail = "the adjustment would take usage past the largest "
                      "count allowed";
            return 400;
        }

        *new_used = used + d;
        return 0;

    default:
        *detail = "no admin action";
        return 400;
    }
}


int
ug_admin_apply_counter(const ug_admin_req_t *req, ug_counter_t *c,
    uint64_t now_us, const char **detail)
{
    int64_t       now_s;
    uint32_t      minute;
    uint64_t      used, new_used;
    ug_cycle_t    cy;
    ug_counter_t  n;

    now_s = (int64_t) (now_us / UG_US_PER_SEC);
    minute = (uint32_t) (now_s / 60);

    n = *c;

    /* the owner's own billing cycle, anchored or not, while it runs; a
     * cycle that has ended counts from zero in the calendar month (the
     * next request rolls it to its anchor's cycle, keeping the count) */
    if (ug_cycle_roll(n.month, 0, now_s, &cy)) {
        n.month = cy.id;
        n.month_used = 0;
    }

    if (n.minute != minute) {
        n.minute = minute;
        n.minute_used = 0;
    }

    used = n.month_used;

    if (ug_admin_apply(req, used, &new_used, detail) != 0) {
        return 400;
    }

    if (req->action == UG_ADMIN_GET) {
        return 0;
    }

    n.month_used = new_used;

    if (req->action == UG_ADMIN_RESET) {
        n.tat_us = 0;
        n.minute_used = 0;
    }

    *c = n;

    return 0;
}


static void
ug_admin_2d(char *p, int64_t v)
{
    p[0] = (char) ('0' + v / 10 % 10);
    p[1] = (char) ('0' + v % 10);
}


size_t
ug_admin_render(char *buf, size_t size, const unsigned char *owner,
    size_t owner_len, const ug_counter_t *c, uint64_t now_us)
{
    int         n;
    char        esc[6 * UG_OWNER_MAX], key[UG_MONTH_KEY_LEN + 1],
                cal[UG_MONTH_KEY_LEN + 1], bucket[13];
    size_t      elen;
    int64_t     now_s, day_s;
    int32_t     month;
    uint32_t    minute;
    uint64_t    used, minute_used;
    ug_cycle_t  cy;

    if (owner_len > UG_OWNER_MAX) {
        return 0;
    }

    now_s = (int64_t) (now_us / UG_US_PER_SEC);
    month = ug_month_index(now_s);
    minute = (uint32_t) (now_s / 60);

    /* "month" is the start month of the owner's cycle (the storage key
     * DynamoDB uses too) and the reset is that cycle's end */
    used = ug_cycle_roll(c->month, 0, now_s, &cy) ? 0 : c->month_used;
    minute_used = c->minute == minute ? c->minute_used : 0;

    (void) ug_cycle_key(&cy, key);

    /* YYYYMMDDHHMM of the current minute, from the month's start */
    day_s = now_s - ug_month_start(month);
    ug_month_key(month, cal);
    memcpy(bucket, cal, 4);
    memcpy(bucket + 4, cal + 5, 2);
    ug_admin_2d(bucket + 6, day_s / 86400 + 1);
    ug_admin_2d(bucket + 8, day_s % 86400 / 3600);
    ug_admin_2d(bucket + 10, day_s % 3600 / 60);
    bucket[12] = '\0';

    elen = owner_len ? ug_json_escape(esc, sizeof(esc), (const char *) owner,
                                      owner_len)
                     : 0;

    n = snprintf(buf, size,
                 "{\"owner\":\"%.*s\",\"month\":\"%s\",\"used\":%" PRIu64
                 ",\"month_reset_seconds\":%" PRId64
                 ",\"minute\":{\"bucket\":\"%s\",\"used\":%" PRIu64 "}}",
                 (int) elen, esc, key, used,
                 cy.end - now_s, bucket, minute_used);

    return (n < 0 || (size_t) n >= size) ? 0 : (size_t) n;
}
