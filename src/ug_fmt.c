#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ug_fmt.h"
#include "ug_time.h"


static size_t
ug_fmt_done(int n, size_t size)
{
    return (n < 0 || (size_t) n >= size) ? 0 : (size_t) n;
}


/*
 * The RateLimit fields are written on every response, so they are built
 * with plain appends rather than snprintf, which costs a few thousand
 * instructions a call.  Each appender returns 0 once the buffer is full.
 */

typedef struct {
    char    *p;
    char    *end;
    int      full;
} ug_fmt_buf_t;


static void
ug_fmt_str(ug_fmt_buf_t *b, const char *s, size_t len)
{
    if (b->full || (size_t) (b->end - b->p) < len) {
        b->full = 1;
        return;
    }

    memcpy(b->p, s, len);
    b->p += len;
}


/* "00" to "99": two digits per division */
static const char  ug_fmt_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";


static const uint64_t  ug_fmt_pow10[20] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL,
    10000000ULL, 100000000ULL, 1000000000ULL, 10000000000ULL,
    100000000000ULL, 1000000000000ULL, 10000000000000ULL,
    100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
    100000000000000000ULL, 1000000000000000000ULL,
    10000000000000000000ULL
};


size_t
ug_fmt_uint(char *buf, uint64_t v)
{
    char    *p;
    size_t   n, k;

    /* the digits from the bit length: bits * log10(2) (1233 / 4096),
     * then one more if v reaches that power of ten; v | 1 has the
     * digits of v (powers of ten are even) and a bit for 0 */
    n = ((size_t) (64 - __builtin_clzll(v | 1)) * 1233) >> 12;
    n += ((v | 1) >= ug_fmt_pow10[n]);

    p = buf + n;

    while (v >= 100) {
        k = (size_t) (v % 100) * 2;
        v /= 100;
        p -= 2;
        p[0] = ug_fmt_pairs[k];
        p[1] = ug_fmt_pairs[k + 1];
    }

    if (v >= 10) {
        k = (size_t) v * 2;
        buf[0] = ug_fmt_pairs[k];
        buf[1] = ug_fmt_pairs[k + 1];

    } else {
        buf[0] = (char) ('0' + v);
    }

    return n;
}


static void
ug_fmt_u64(ug_fmt_buf_t *b, uint64_t v)
{
    char    tmp[UG_FMT_UINT_MAX];

    if (!b->full && (size_t) (b->end - b->p) >= UG_FMT_UINT_MAX) {
        b->p += ug_fmt_uint(b->p, v);
        return;
    }

    ug_fmt_str(b, tmp, ug_fmt_uint(tmp, v));
}


#define ug_fmt_lit(b, s)  ug_fmt_str(b, s, sizeof(s) - 1)


static size_t
ug_fmt_end(ug_fmt_buf_t *b, char *start)
{
    /* as snprintf did: room for a NUL, which is written */
    if (b->full || b->p >= b->end) {
        return 0;
    }

    *b->p = '\0';

    return (size_t) (b->p - start);
}


size_t
ug_fmt_policy(char *buf, size_t size, const ug_limits_t *limits)
{
    ug_fmt_buf_t  b;

    if (limits->minute == UG_OFF && limits->month == UG_OFF) {
        return 0;
    }

    b.p = buf;
    b.end = buf + size;
    b.full = 0;

    if (limits->minute != UG_OFF) {
        ug_fmt_lit(&b, "\"minute\";q=");
        ug_fmt_u64(&b, (uint64_t) limits->minute);
        ug_fmt_lit(&b, ";w=60");
    }

    if (limits->month != UG_OFF) {
        if (limits->minute != UG_OFF) {
            ug_fmt_lit(&b, ", ");
        }

        ug_fmt_lit(&b, "\"month\";q=");
        ug_fmt_u64(&b, (uint64_t) limits->month);
        ug_fmt_lit(&b, ";w=");
        ug_fmt_u64(&b, UG_MONTH_WINDOW_SEC);
    }

    return ug_fmt_end(&b, buf);
}


size_t
ug_fmt_ratelimit(char *buf, size_t size, const ug_limits_t *limits,
    const ug_decision_t *d)
{
    ug_fmt_buf_t  b;

    if (limits->minute == UG_OFF && limits->month == UG_OFF) {
        return 0;
    }

    b.p = buf;
    b.end = buf + size;
    b.full = 0;

    if (limits->minute != UG_OFF) {
        ug_fmt_lit(&b, "\"minute\";r=");
        ug_fmt_u64(&b, d->minute_remaining);
        ug_fmt_lit(&b, ";t=");
        ug_fmt_u64(&b, d->minute_reset);
    }

    if (limits->month != UG_OFF) {
        if (limits->minute != UG_OFF) {
            ug_fmt_lit(&b, ", ");
        }

        ug_fmt_lit(&b, "\"month\";r=");
        ug_fmt_u64(&b, d->month_remaining);
        ug_fmt_lit(&b, ";t=");
        ug_fmt_u64(&b, d->month_reset);
    }

    return ug_fmt_end(&b, buf);
}


/*
 * The length of the well-formed UTF-8 sequence at p (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0.
 */
static size_t
ug_utf8_len(const unsigned char *p, size_t len)
{
    size_t         n, i;
    unsigned char  lo, hi;

    lo = 0x80;
    hi = 0xbf;

    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;

    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        lo = p[0] == 0xe0 ? 0xa0 : 0x80;
        hi = p[0] == 0xed ? 0x9f : 0xbf;

    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        lo = p[0] == 0xf0 ? 0x90 : 0x80;
        hi = p[0] == 0xf4 ? 0x8f : 0xbf;

    } else {
        return 0;
    }

    if (len < n || p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }

    return n;
}


size_t
ug_json_escape(char *dst, size_t size, const char *src, size_t len)
{
    static const char     hex[] = "0123456789abcdef";

    const unsigned char  *s;
    unsigned char         c;
    size_t                i, n, k, w;

    s = (const unsigned char *) src;
    n = 0;
    i = 0;

    while (i < len) {
        c = s[i];
        k = 1;

        /* the exact width of the output, so that a buffer that fits the
         * result exactly is enough */
        if (c == '"' || c == '\\') {
            w = 2;

        } else if (c < 0x20 || c == 0x7f) {
            w = 6;

        } else if (c < 0x80) {
            w = 1;

        } else {
            /* well-formed UTF-8 goes through as it is, so that a client
             * reads back the same text; a stray byte becomes U+FFFD,
             * never invalid UTF-8 in the output */
            k = ug_utf8_len(s + i, len - i);
            w = k ? k : 6;
            k = k ? k : 1;
        }

        if (size - n < w) {
            return 0;
        }

        if (c == '"' || c == '\\') {
            dst[n++] = '\\';
            dst[n++] = (char) c;

        } else if (c < 0x20 || c == 0x7f) {
            dst[n++] = '\\';
            dst[n++] = 'u';
            dst[n++] = '0';
            dst[n++] = '0';
            dst[n++] = hex[c >> 4];
            dst[n++] = hex[c & 0x0f];

        } else if (w == k) {
            memcpy(dst + n, s + i, k);
            n += k;

        } else {
            memcpy(dst + n, "\\ufffd", 6);
            n += 6;
        }

        i += k;
    }

    return n;
}


size_t
ug_fmt_deny_body_size(size_t plan_len, size_t url_len)
{
    return 256 + 12 * plan_len + 6 * url_len;
}


size_t
ug_fmt_deny_body(char *buf, size_t size, const ug_decision_t *d,
    const char *plan, size_t plan_len, const ug_limits_t *limits,
    const char *url, size_t url_len)
{
    char      eplan[6 * UG_PLAN_NAME_MAX + 6 * 128];
    char     *eurl;
    size_t    elen, ulen, n, rest;
    int       k;
    int64_t   limit;
    uint64_t  used;
    const char  *fmt;

    elen = ug_json_escape(eplan, sizeof(eplan), plan, plan_len);
    if (elen == 0 && plan_len != 0) {
        return 0;
    }

    if (d->verdict == UG_RATE) {
        fmt = "{\"detail\":\"Rate limit reached for plan '%.*s'. "
              "Try again in a minute.\",\"plan\":\"%.*s\",\"limit\":%" PRId64
              ",\"used\":%" PRIu64 ",\"reset_seconds\":%" PRIu64
              ",\"upgrade_url\":";
        limit = limits->minute;
        used = limit > 0 && (uint64_t) limit > d->minute_remaining
               ? (uint64_t) limit - d->minute_remaining : 0;

    } else {
        fmt = "{\"detail\":\"Monthly quota reached for plan '%.*s'. "
              "Please upgrade.\",\"plan\":\"%.*s\",\"limit\":%" PRId64
              ",\"used\":%" PRIu64 ",\"reset_seconds\":%" PRIu64
              ",\"upgrade_url\":";
        limit = limits->month;
        used = d->month_used;
    }

    k = snprintf(buf, size, fmt, (int) elen, eplan, (int) elen, eplan,
                 limit, used, d->retry_after);
    n = ug_fmt_done(k, size);
    if (n == 0) {
        return 0;
    }

    rest = size - n;

    if (url == NULL) {
        if (rest < sizeof("null}")) {
            return 0;
        }
        memcpy(buf + n, "null}", sizeof("null}"));
        return n + sizeof("null}") - 1;
    }

    if (rest < 4) {
        return 0;
    }

    buf[n++] = '"';
    eurl = buf + n;
    ulen = ug_json_escape(eurl, size - n - 3, url, url_len);
    if (ulen == 0 && url_len != 0) {
        return 0;
    }

    n += ulen;
    buf[n++] = '"';
    buf[n++] = '}';
    buf[n] = '\0';

    return n;
}


size_t
ug_fmt_detail_size(size_t len)
{
    return sizeof("{\"detail\":\"\"}") + 6 * len;
}


size_t
ug_fmt_detail(char *buf, size_t size, const char *msg, size_t len)
{
    size_t  n, e;

    /* the body only: no NUL is written */
    if (size < sizeof("{\"detail\":\"\"}") - 1) {
        return 0;
    }

    memcpy(buf, "{\"detail\":\"", 11);
    n = 11;

    e = ug_json_escape(buf + n, size - n - 2, msg, len);
    if (e == 0 && len != 0) {
        return 0;
    }

    n += e;
    buf[n++] = '"';
    buf[n++] = '}';

    return n;
}


static size_t
ug_log_escape_len(unsigned char c)
{
    if (c == '"' || c == '\\') {
        return 2;
    }

    return (c < 0x20 || c > 0x7e) ? 4 : 1;
}


size_t
ug_log_escape(char *dst, size_t size, const unsigned char *src, size_t len)
{
    size_t                    i, n, total, room;
    unsigned char             c;
    static const char         hex[] = "0123456789abcdef";

    total = 0;

    for (i = 0; i < len; i++) {
        total += ug_log_escape_len(src[i]);
    }

    /* a value that does not fit is cut between two escapes, with room
     * kept for the "..." that says so */
    room = (total <= size) ? size : (size >= 3 ? size - 3 : 0);

    n = 0;

    for (i = 0; i < len; i++) {
        c = src[i];

        if (n + ug_log_escape_len(c) > room) {
            break;
        }

        if (c == '"' || c == '\\') {
            dst[n++] = '\\';
            dst[n++] = (char) c;

        } else if (c < 0x20 || c > 0x7e) {
            dst[n++] = '\\';
            dst[n++] = 'x';
            dst[n++] = hex[c >> 4];
            dst[n++] = hex[c & 0xf];

        } else {
            dst[n++] = (char) c;
        }
    }

    if (i < len && size >= 3) {
        memcpy(dst + n, "...", 3);
        n += 3;
    }

    return n;
}
