#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "ug_fmt.h"
#include "ug_notify.h"
#include "ug_time.h"


int
ug_thresholds_parse(const char *p, size_t len, ug_thresholds_t *th)
{
    ug_thresholds_t  list;
    unsigned         v, i, k;
    size_t           pos, digits;

    if (len > UG_NOTIFY_LIST_MAX) {
        return UG_NOTIFY_TOO_LONG;
    }

    list.n = 0;
    pos = 0;

    for ( ;; ) {
        v = 0;

        for (digits = 0; pos < len && p[pos] >= '0' && p[pos] <= '9';
             pos++, digits++)
        {
            /* five digits already exceed the maximum: stop growing */
            if (digits < 5) {
                v = v * 10 + (unsigned) (p[pos] - '0');
            }
        }

        if (digits == 0) {
            return UG_NOTIFY_SYNTAX;
        }

        if (v < 1 || v > UG_NOTIFY_PCT_MAX) {
            return UG_NOTIFY_RANGE;
        }

        /* insertion into the sorted list, once */

        for (i = 0; i < list.n && list.pct[i] < v; i++) { /* void */ }

        if (i == list.n || list.pct[i] != v) {
            if (list.n == UG_NOTIFY_MAX) {
                return UG_NOTIFY_TOO_MANY;
            }

            for (k = list.n; k > i; k--) {
                list.pct[k] = list.pct[k - 1];
            }

            list.pct[i] = (uint16_t) v;
            list.n++;
        }

        if (pos == len) {
            break;
        }

        if (p[pos] != ',') {
            return UG_NOTIFY_SYNTAX;
        }

        pos++;
    }

    *th = list;

    return UG_NOTIFY_OK;
}


const char *
ug_thresholds_strerror(int rc)
{
    switch (rc) {
    case UG_NOTIFY_OK:
        return "ok";
    case UG_NOTIFY_SYNTAX:
        return "thresholds are percentages separated by commas, "
               "such as 80,100";
    case UG_NOTIFY_RANGE:
        return "a threshold is a percentage from 1 to 1000";
    case UG_NOTIFY_TOO_MANY:
        return "at most 16 different thresholds";
    default:
        return "the threshold list is longer than 256 bytes";
    }
}


uint32_t
ug_thresholds_crossed(const ug_thresholds_t *th, uint64_t before,
    uint64_t after, int64_t limit)
{
    unsigned __int128  need;
    uint32_t           crossed;
    unsigned           i;

    if (limit <= 0) {
        return 0;
    }

    crossed = 0;

    for (i = 0; i < th->n && i < UG_NOTIFY_MAX; i++) {
        need = ((unsigned __int128) limit * th->pct[i] + 99) / 100;

        if (before < need && after >= need) {
            crossed |= (uint32_t) 1 << i;
        }
    }

    return crossed;
}


uint32_t
ug_notify_claim(ug_notify_mark_t *m, int32_t cycle, uint32_t crossed)
{
    uint32_t  fresh;

    if (m->cycle != cycle) {
        m->cycle = cycle;
        m->sent = 0;
    }

    fresh = crossed & ~m->sent;
    m->sent |= fresh;

    return fresh;
}


int
ug_notify_test_and_set(ug_notify_mark_t *m, int32_t cycle, unsigned i)
{
    if (i >= UG_NOTIFY_MAX) {
        return 0;
    }

    return ug_notify_claim(m, cycle, (uint32_t) 1 << i) != 0;
}


size_t
ug_notify_body_size(const ug_notify_event_t *ev)
{
    /* the keys, quotes and punctuation, three 20-digit numbers, a
     * threshold, the cycle key and the date, with room to spare */
    return 160 + 6 * ev->owner_len + 6 * ev->plan_len;
}


size_t
ug_notify_body(char *buf, size_t size, const ug_notify_event_t *ev)
{
    char     *p, *last, key[UG_MONTH_KEY_LEN + 1];
    size_t    n;
    int64_t   year, t;
    int       month, day, k;

    if (size < ug_notify_body_size(ev)) {
        return 0;
    }

    p = buf;
    last = buf + size;

    memcpy(p, "{\"owner\":\"", 10);
    p += 10;

    n = ug_json_escape(p, (size_t) (last - p), ev->owner, ev->owner_len);
    if (n == 0 && ev->owner_len != 0) {
        return 0;
    }

    p += n;

    memcpy(p, "\",\"plan\":\"", 10);
    p += 10;

    n = ug_json_escape(p, (size_t) (last - p), ev->plan, ev->plan_len);
    if (n == 0 && ev->plan_len != 0) {
        return 0;
    }

    p += n;

    ug_cycle_key(ev->cycle, key);

    t = ev->at;
    ug_civil_from_days(ug_floor_div(t, 86400), &year, &month, &day);
    t -= ug_floor_div(t, 86400) * 86400;

    if (year < 0 || year > 9999) {
        return 0;
    }

    k = snprintf(p, (size_t) (last - p),
                 "\",\"cycle\":\"%s\",\"used\":%llu,\"limit\":%lld,"
                 "\"threshold\":%u,"
                 "\"at\":\"%04d-%02d-%02dT%02d:%02d:%02dZ\"}",
                 key, (unsigned long long) ev->used, (long long) ev->limit,
                 ev->threshold, (int) year, month, day, (int) (t / 3600),
                 (int) (t / 60 % 60), (int) (t % 60));

    if (k < 0 || (size_t) k >= (size_t) (last - p)) {
        return 0;
    }

    return (size_t) (p + k - buf);
}


size_t
ug_notify_sign(const unsigned char *secret, size_t secret_len, int64_t t,
    const char *body, size_t body_len, char *out)
{
    static const char  hex[] = "0123456789abcdef";

    char            stamp[24];
    unsigned char   md[EVP_MAX_MD_SIZE];
    size_t          md_len, i;
    int             n, k;
    EVP_MAC        *mac;
    EVP_MAC_CTX    *ctx;
    OSSL_PARAM      params[2];

    n = snprintf(stamp, sizeof(stamp), "%lld", (long long) t);
    if (n < 0 || (size_t) n >= sizeof(stamp)) {
        return 0;
    }

    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();

    md_len = 0;

    /* an empty key is a valid HMAC key; OpenSSL wants a non-NULL one */
    k = ctx != NULL
        && EVP_MAC_init(ctx, secret_len ? secret : (const unsigned char *) "",
                        secret_len, params) == 1
        && EVP_MAC_update(ctx, (const unsigned char *) stamp, (size_t) n)
           == 1
        && EVP_MAC_update(ctx, (const unsigned char *) ".", 1) == 1
        && EVP_MAC_update(ctx, (const unsigned char *) body, body_len) == 1
        && EVP_MAC_final(ctx, md, &md_len, sizeof(md)) == 1
        && md_len == 32;

    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);

    if (!k) {
        return 0;
    }

    memcpy(out, "t=", 2);
    memcpy(out + 2, stamp, (size_t) n);
    memcpy(out + 2 + n, ",v1=", 4);

    for (i = 0; i < md_len; i++) {
        out[6 + n + 2 * i] = hex[md[i] >> 4];
        out[6 + n + 2 * i + 1] = hex[md[i] & 0xf];
    }

    out[6 + n + 64] = '\0';

    return (size_t) (6 + n + 64);
}
