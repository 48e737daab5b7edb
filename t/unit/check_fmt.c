/*
 * What the gate writes: the RateLimit-Policy and RateLimit fields, the
 * JSON deny body and detail, JSON escaping, and buffers that are too
 * small (0, nothing written past the end).
 */

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ug_check.h"
#include "ug_fmt.h"
#include "ug_time.h"


#define SEC  1000000ULL

/* 183022 s before 1 October 2025 00:00:00 UTC: the example. */
#define OCT_2025     1759276800ULL
#define EXAMPLE_NOW  ((OCT_2025 - 183022) * SEC)


static ug_limits_t
lim(int64_t month, int64_t minute)
{
    ug_limits_t  l;

    l.month = month;
    l.minute = minute;

    return l;
}


/* A decision after n requests at now, the last one's. */
static void
decide_n(const ug_limits_t *l, int n, uint64_t now, ug_decision_t *d)
{
    ug_counter_t  c;
    int           k;

    memset(&c, 0, sizeof(c));

    for (k = 0; k < n; k++) {
        ug_decide(&c, l, 1, now, d);
    }
}


/* Parses exactly len bytes as JSON; fails the test if it is not. */
static json_t *
parse(const char *buf, size_t len)
{
    json_t        *j;
    json_error_t   err;

    j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
    ck_assert_msg(j != NULL, "not JSON (%s): %.*s", err.text, (int) len,
                  buf);

    return j;
}


static const char *
jstr(json_t *o, const char *key)
{
    json_t  *v;

    v = json_object_get(o, key);
    ck_assert_msg(json_is_string(v), "\"%s\" is not a string", key);

    return json_string_value(v);
}


static json_int_t
jint(json_t *o, const char *key)
{
    json_t  *v;

    v = json_object_get(o, key);
    ck_assert_msg(json_is_integer(v), "\"%s\" is not an integer", key);

    return json_integer_value(v);
}


/*
 * A writer that needs `need` bytes (NUL included where it writes one)
 * must succeed with exactly that many and return 0 with any fewer,
 * writing nothing outside the buffer either way.
 */
typedef size_t (*writer_t)(char *buf, size_t size, const void *arg);


static void
check_sizes(writer_t w, const void *arg, const char *want, size_t need)
{
    char    *buf;
    size_t   size, n;

    for (size = 0; size <= need + 2; size++) {
        buf = ug_canary_buf(size);
        n = w(buf, size, arg);

        if (size < need) {
            ug_expect(n == 0, "size %zu < %zu: returned %zu", size, need, n);

        } else {
            ug_expect(n == strlen(want) && memcmp(buf, want, n) == 0,
                      "size %zu: returned %zu, want %zu", size, n,
                      strlen(want));
        }

        ug_expect(ug_canary_ok(buf, size), "size %zu: wrote out of bounds",
                  size);
        ug_canary_free(buf);
    }
}


START_TEST(test_policy)
{
    char         buf[UG_FMT_FIELD_MAX];
    ug_limits_t  l;
    size_t       n;

    l = lim(20, 30);
    n = ug_fmt_policy(buf, sizeof(buf), &l);
    ck_assert_str_eq(buf, "\"minute\";q=30;w=60, \"month\";q=20;w=2592000");
    ck_assert_uint_eq(n, strlen(buf));

    l = lim(UG_OFF, 120);
    n = ug_fmt_policy(buf, sizeof(buf), &l);
    ck_assert_str_eq(buf, "\"minute\";q=120;w=60");
    ck_assert_uint_eq(n, strlen(buf));

    l = lim(20, UG_OFF);
    n = ug_fmt_policy(buf, sizeof(buf), &l);
    ck_assert_str_eq(buf, "\"month\";q=20;w=2592000");
    ck_assert_uint_eq(n, strlen(buf));

    l = lim(0, 7);
    n = ug_fmt_policy(buf, sizeof(buf), &l);
    ck_assert_str_eq(buf, "\"minute\";q=7;w=60, \"month\";q=0;w=2592000");
    ck_assert_uint_eq(n, strlen(buf));

    /* both off: no field at all */
    l = lim(UG_OFF, UG_OFF);
    ck_assert_uint_eq(ug_fmt_policy(buf, sizeof(buf), &l), 0);

    /* the largest limits still fit the documented size */
    l = lim(UG_LIMIT_MAX, UG_LIMIT_MAX);
    n = ug_fmt_policy(buf, sizeof(buf), &l);
    ck_assert_str_eq(buf, "\"minute\";q=1000000000000;w=60, "
                          "\"month\";q=1000000000000;w=2592000");
    ck_assert_uint_eq(n, strlen(buf));
}
END_TEST


START_TEST(test_ratelimit_example)
{
    char           buf[UG_FMT_FIELD_MAX];
    ug_decision_t  d;
    ug_limits_t    l;
    size_t         n;

    /* the example, from a real first request on the free plan */
    l = lim(20, 30);
    decide_n(&l, 1, EXAMPLE_NOW, &d);

    n = ug_fmt_ratelimit(buf, sizeof(buf), &l, &d);
    ck_assert_str_eq(buf, "\"minute\";r=29;t=2, \"month\";r=19;t=183022");
    ck_assert_uint_eq(n, strlen(buf));

    n = ug_fmt_policy(buf, sizeof(buf), &l);
    ck_assert_str_eq(buf, "\"minute\";q=30;w=60, \"month\";q=20;w=2592000");

    /* pro: month off, left out; 120 a minute refills one in 0.5 s */
    l = lim(UG_OFF, 120);
    decide_n(&l, 1, EXAMPLE_NOW, &d);
    n = ug_fmt_ratelimit(buf, sizeof(buf), &l, &d);
    ck_assert_str_eq(buf, "\"minute\";r=119;t=1");
    ck_assert_uint_eq(n, strlen(buf));

    /* minute off */
    l = lim(20, UG_OFF);
    decide_n(&l, 3, EXAMPLE_NOW, &d);
    n = ug_fmt_ratelimit(buf, sizeof(buf), &l, &d);
    ck_assert_str_eq(buf, "\"month\";r=17;t=183022");
    ck_assert_uint_eq(n, strlen(buf));

    /* after a whole free burst: nothing left for a minute */
    l = lim(20, 30);
    decide_n(&l, 20, EXAMPLE_NOW, &d);
    n = ug_fmt_ratelimit(buf, sizeof(buf), &l, &d);
    ck_assert_str_eq(buf, "\"minute\";r=10;t=40, \"month\";r=0;t=183022");

    l = lim(UG_OFF, UG_OFF);
    ck_assert_uint_eq(ug_fmt_ratelimit(buf, sizeof(buf), &l, &d), 0);

    /* the largest numbers fit the documented size */
    l = lim(20, 30);
    d.minute_remaining = UINT64_MAX;
    d.minute_reset = UINT64_MAX;
    d.month_remaining = UINT64_MAX;
    d.month_reset = UINT64_MAX;
    n = ug_fmt_ratelimit(buf, sizeof(buf), &l, &d);
    ck_assert_uint_gt(n, 0);
    ck_assert_str_eq(buf, "\"minute\";r=18446744073709551615;"
                          "t=18446744073709551615, "
                          "\"month\";r=18446744073709551615;"
                          "t=18446744073709551615");
}
END_TEST


static size_t
w_policy(char *buf, size_t size, const void *arg)
{
    return ug_fmt_policy(buf, size, arg);
}


static const ug_decision_t  *rl_decision;


static size_t
w_ratelimit(char *buf, size_t size, const void *arg)
{
    return ug_fmt_ratelimit(buf, size, arg, rl_decision);
}


START_TEST(test_fields_small_buffers)
{
    static const char  *free_pol =
        "\"minute\";q=30;w=60, \"month\";q=20;w=2592000";
    static const char  *free_rl =
        "\"minute\";r=29;t=2, \"month\";r=19;t=183022";

    ug_decision_t  d;
    ug_limits_t    l, pro, month;

    l = lim(20, 30);
    pro = lim(UG_OFF, 120);
    month = lim(20, UG_OFF);

    /* these write a NUL: they need the length + 1 */
    check_sizes(w_policy, &l, free_pol, strlen(free_pol) + 1);
    check_sizes(w_policy, &pro, "\"minute\";q=120;w=60", 20);
    check_sizes(w_policy, &month, "\"month\";q=20;w=2592000", 23);

    decide_n(&l, 1, EXAMPLE_NOW, &d);
    rl_decision = &d;
    check_sizes(w_ratelimit, &l, free_rl, strlen(free_rl) + 1);
}
END_TEST


/* Checks a deny body's JSON; returns the parsed object for more. */
static json_t *
check_body(const char *buf, size_t n, const char *detail, const char *plan,
    json_int_t limit, json_int_t used, json_int_t reset)
{
    json_t  *j;
    size_t   i;

    ck_assert_uint_gt(n, 0);
    ck_assert_uint_eq(strlen(buf), n);

    /* no raw control bytes in a response body */
    for (i = 0; i < n; i++) {
        ck_assert_uint_ge((unsigned char) buf[i], 0x20);
    }

    j = parse(buf, n);
    ck_assert(json_is_object(j));
    ck_assert_uint_eq(json_object_size(j), 6);

    ck_assert_str_eq(jstr(j, "detail"), detail);
    ck_assert_str_eq(jstr(j, "plan"), plan);
    ck_assert_int_eq(jint(j, "limit"), limit);
    ck_assert_int_eq(jint(j, "used"), used);
    ck_assert_int_eq(jint(j, "reset_seconds"), reset);
    ck_assert_ptr_nonnull(json_object_get(j, "upgrade_url"));

    return j;
}


START_TEST(test_deny_body_quota)
{
    char           buf[1024];
    ug_decision_t  d;
    ug_limits_t    l;
    size_t         n;
    json_t        *j;

    /* 20 free requests 2 s apart, then the 21st */
    l = lim(20, 30);
    {
        ug_counter_t  c;
        int           k;

        memset(&c, 0, sizeof(c));
        for (k = 0; k < 21; k++) {
            ug_decide(&c, &l, 1, EXAMPLE_NOW + (uint64_t) k * 2 * SEC, &d);
        }
    }

    ck_assert_int_eq(d.verdict, UG_QUOTA);

    n = ug_fmt_deny_body(buf, sizeof(buf), &d, "free", 4, &l, NULL, 0);
    j = check_body(buf, n,
                   "Monthly quota reached for plan 'free'. Please upgrade.",
                   "free", 20, 20, 183022 - 40);
    ck_assert(json_is_null(json_object_get(j, "upgrade_url")));
    json_decref(j);

    n = ug_fmt_deny_body(buf, sizeof(buf), &d, "free", 4, &l,
                         "https://example.com/pricing", 27);
    j = check_body(buf, n,
                   "Monthly quota reached for plan 'free'. Please upgrade.",
                   "free", 20, 20, 183022 - 40);
    ck_assert_str_eq(jstr(j, "upgrade_url"), "https://example.com/pricing");
    json_decref(j);

    /* an empty URL is an empty string, not null */
    n = ug_fmt_deny_body(buf, sizeof(buf), &d, "free", 4, &l, "", 0);
    j = check_body(buf, n,
                   "Monthly quota reached for plan 'free'. Please upgrade.",
                   "free", 20, 20, 183022 - 40);
    ck_assert_str_eq(jstr(j, "upgrade_url"), "");
    json_decref(j);
}
END_TEST


START_TEST(test_deny_body_rate)
{
    char           buf[1024];
    ug_decision_t  d;
    ug_limits_t    l;
    size_t         n;
    json_t        *j;

    /* a burst of 121 on pro */
    l = lim(UG_OFF, 120);
    decide_n(&l, 121, EXAMPLE_NOW, &d);
    ck_assert_int_eq(d.verdict, UG_RATE);

    n = ug_fmt_deny_body(buf, sizeof(buf), &d, "pro", 3, &l, NULL, 0);
    j = check_body(buf, n,
                   "Rate limit reached for plan 'pro'. Try again in a minute.",
                   "pro", 120, 120, 1);
    ck_assert(json_is_null(json_object_get(j, "upgrade_url")));
    json_decref(j);

    /* free's cap, with a month quota it has not reached */
    l = lim(100, 30);
    decide_n(&l, 31, EXAMPLE_NOW, &d);
    ck_assert_int_eq(d.verdict, UG_RATE);
    ck_assert_uint_eq(d.retry_after, 2);

    n = ug_fmt_deny_body(buf, sizeof(buf), &d, "free", 4, &l,
                         "https://example.com/pricing", 27);
    j = check_body(buf, n,
                   "Rate limit reached for plan 'free'. "
                   "Try again in a minute.",
                   "free", 30, 30, 2);
    ck_assert_str_eq(jstr(j, "upgrade_url"), "https://example.com/pricing");
    json_decref(j);
}
END_TEST


START_TEST(test_deny_body_escaping)
{
    /* quotes, backslash, control bytes, DEL, UTF-8 (2 and 4 bytes), and
     * a stray byte that is not UTF-8 */
    static const char  url[] =
        "https://x.test/p?a=\"b\"&c=\\d\x01\n\t\x1f\x7f"
        "caf\xc3\xa9-\xf0\x9f\x98\x80-\xff-end";
    static const char  url_read[] =
        "https://x.test/p?a=\"b\"&c=\\d\x01\n\t\x1f\x7f"
        "caf\xc3\xa9-\xf0\x9f\x98\x80-\xef\xbf\xbd-end";

    char           buf[2048];
    ug_decision_t  d;
    ug_limits_t    l;
    size_t         n;
    json_t        *j;

    l = lim(20, 30);
    decide_n(&l, 1, EXAMPLE_NOW, &d);
    d.verdict = UG_QUOTA;
    d.retry_after = d.month_reset;

    n = ug_fmt_deny_body(buf, sizeof(buf), &d, "free", 4, &l, url,
                         sizeof(url) - 1);
    j = check_body(buf, n,
                   "Monthly quota reached for plan 'free'. Please upgrade.",
                   "free", 20, 1, 183022);
    ck_assert_str_eq(jstr(j, "upgrade_url"), url_read);
    json_decref(j);

    /* a plan name that needs escaping stays one JSON string */
    n = ug_fmt_deny_body(buf, sizeof(buf), &d, "we\"ird\\", 7, &l, NULL, 0);
    j = check_body(buf, n,
                   "Monthly quota reached for plan 'we\"ird\\'. "
                   "Please upgrade.",
                   "we\"ird\\", 20, 1, 183022);
    json_decref(j);
}
END_TEST


typedef struct {
    const ug_decision_t  *d;
    const ug_limits_t    *l;
    const char           *plan;
    const char           *url;
    size_t                url_len;
} body_arg_t;


static size_t
w_body(char *buf, size_t size, const void *arg)
{
    const body_arg_t  *a;

    a = arg;

    return ug_fmt_deny_body(buf, size, a->d, a->plan, strlen(a->plan), a->l,
                            a->url, a->url_len);
}


START_TEST(test_deny_body_small_buffers)
{
    static const char  *urls[] = {
        NULL, "", "https://example.com/pricing",
        "\"\\\x01\xc3\xa9\xff", "\x01\x02\x03\x04\x05\x06\x07\x08",
    };

    char           *want;
    size_t          i, n, size;
    ug_decision_t   d;
    ug_limits_t     l;
    body_arg_t      a;

    l = lim(20, 30);
    decide_n(&l, 31, EXAMPLE_NOW, &d);

    for (i = 0; i < 2 * sizeof(urls) / sizeof(urls[0]); i++) {
        d.verdict = i % 2 ? UG_RATE : UG_QUOTA;

        a.d = &d;
        a.l = &l;
        a.plan = "free";
        a.url = urls[i / 2];
        a.url_len = a.url ? strlen(a.url) : 0;

        size = ug_fmt_deny_body_size(4, a.url_len);
        want = ug_canary_buf(size);
        n = w_body(want, size, &a);
        ck_assert_uint_gt(n, 0);
        ck_assert(ug_canary_ok(want, size));

        /* the body and its NUL, exactly: anything less is 0 */
        check_sizes(w_body, &a, want, n + 1);

        ug_canary_free(want);
    }
}
END_TEST


START_TEST(test_deny_body_size_bound)
{
    char           url[300], plan[UG_PLAN_NAME_MAX + 1];
    char          *buf;
    size_t         size, n, ulen;
    int            big;
    ug_decision_t  d;
    ug_limits_t    l;
    json_t        *j;

    /* the worst case: huge numbers, a long plan, a URL of bytes that each
     * take six to escape */
    memset(url, '\x01', sizeof(url));
    memset(plan, 'p', UG_PLAN_NAME_MAX);
    plan[UG_PLAN_NAME_MAX] = '\0';
    l = lim(UG_LIMIT_MAX, UG_LIMIT_MAX);

    for (big = 0; big < 2; big++) {
        for (ulen = 0; ulen <= sizeof(url); ulen += 50) {
            /* the largest counts; jansson reads integers up to INT64_MAX
             * only, so those runs are parsed and the others are not */
            memset(&d, 0, sizeof(d));
            d.month_used = big ? UINT64_MAX : INT64_MAX;
            d.retry_after = big ? UINT64_MAX : INT64_MAX;
            d.verdict = (ulen / 50) % 2 ? UG_RATE : UG_QUOTA;

            size = ug_fmt_deny_body_size(UG_PLAN_NAME_MAX, ulen);
            buf = ug_canary_buf(size);

            n = ug_fmt_deny_body(buf, size, &d, plan, UG_PLAN_NAME_MAX, &l,
                                 url, ulen);
            ck_assert_msg(n > 0, "url of %zu: %zu bytes not enough", ulen,
                          size);
            ck_assert_uint_lt(n, size);
            ck_assert(ug_canary_ok(buf, size));

            if (!big) {
                j = parse(buf, n);
                ck_assert_uint_eq(strlen(jstr(j, "upgrade_url")), ulen);
                ck_assert_str_eq(jstr(j, "plan"), plan);
                json_decref(j);
            }

            ug_canary_free(buf);
        }
    }
}
END_TEST


static size_t
w_detail(char *buf, size_t size, const void *arg)
{
    return ug_fmt_detail(buf, size, arg, strlen(arg));
}


START_TEST(test_detail)
{
    static const char  *msgs[] = {
        "", "X-User-Id is empty",
        "X-User-Id is longer than 128 bytes",
        "say \"hi\" \\ bye\r\n\x01\x7f caf\xc3\xa9 \xfe",
    };
    static const char  *read_back[] = {
        "", "X-User-Id is empty",
        "X-User-Id is longer than 128 bytes",
        "say \"hi\" \\ bye\r\n\x01\x7f caf\xc3\xa9 \xef\xbf\xbd",
    };

    char     buf[512];
    size_t   i, n;
    json_t  *j;

    for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        n = ug_fmt_detail(buf, sizeof(buf), msgs[i], strlen(msgs[i]));
        ck_assert_uint_gt(n, 0);
        ck_assert_uint_le(n, ug_fmt_detail_size(strlen(msgs[i])));

        j = parse(buf, n);
        ck_assert_uint_eq(json_object_size(j), 1);
        ck_assert_str_eq(jstr(j, "detail"), read_back[i]);
        json_decref(j);
    }

    n = ug_fmt_detail(buf, sizeof(buf), "is empty", 8);
    ck_assert_uint_eq(n, 21);
    ck_assert(memcmp(buf, "{\"detail\":\"is empty\"}", 21) == 0);

    /* ug_fmt_detail writes no NUL: the length alone is exactly enough */
    check_sizes(w_detail, "is empty", "{\"detail\":\"is empty\"}", 21);
    check_sizes(w_detail, "", "{\"detail\":\"\"}", 13);
    check_sizes(w_detail, "a\"\x01", "{\"detail\":\"a\\\"\\u0001\"}", 22);
}
END_TEST


START_TEST(test_json_escape_table)
{
    static const struct {
        const char  *in;
        size_t       len;
        const char  *out;
    } cases[] = {
        { "plain", 5, "plain" },
        { "a\"b", 3, "a\\\"b" },
        { "\\", 1, "\\\\" },
        { "/", 1, "/" },
        { "\n\r\t", 3, "\\u000a\\u000d\\u0009" },
        { "\0", 1, "\\u0000" },
        { "\x1f\x20", 2, "\\u001f " },
        { "\x7f", 1, "\\u007f" },
        { "\xc3\xa9", 2, "\xc3\xa9" },                /* U+00E9 */
        { "\xe2\x82\xac", 3, "\xe2\x82\xac" },        /* U+20AC */
        { "\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80" },/* U+1F600 */
        { "\xf4\x8f\xbf\xbf", 4, "\xf4\x8f\xbf\xbf" },/* U+10FFFF */
        { "\xff", 1, "\\ufffd" },
        { "\x80", 1, "\\ufffd" },
        { "\xc0\xaf", 2, "\\ufffd\\ufffd" },          /* overlong "/" */
        { "\xe0\x80\xaf", 3, "\\ufffd\\ufffd\\ufffd" },
        { "\xed\xa0\x80", 3, "\\ufffd\\ufffd\\ufffd" },/* a surrogate */
        { "\xf4\x90\x80\x80", 4,                      /* > U+10FFFF */
          "\\ufffd\\ufffd\\ufffd\\ufffd" },
        { "\xe2\x82", 2, "\\ufffd\\ufffd" },          /* cut short */
        { "\xc3" "a", 2, "\\ufffda" },
    };

    char    *buf;
    size_t   i, want, n;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        want = strlen(cases[i].out);

        /* exactly the output's size is enough */
        buf = ug_canary_buf(want);
        n = ug_json_escape(buf, want, cases[i].in, cases[i].len);
        ck_assert_msg(n == want && memcmp(buf, cases[i].out, n) == 0,
                      "case %zu: %zu bytes \"%.*s\", want \"%s\"", i, n,
                      (int) n, buf, cases[i].out);
        ck_assert(ug_canary_ok(buf, want));
        ug_canary_free(buf);

        /* one byte less is not */
        buf = ug_canary_buf(want - 1);
        ck_assert_uint_eq(ug_json_escape(buf, want - 1, cases[i].in,
                                         cases[i].len), 0);
        ck_assert(ug_canary_ok(buf, want - 1));
        ug_canary_free(buf);
    }

    ck_assert_uint_eq(ug_json_escape(NULL, 0, "", 0), 0);
}
END_TEST


/* Any bytes at all: 6 per input byte suffice and the result is a JSON
 * string in valid UTF-8. */
START_TEST(test_json_escape_random)
{
    unsigned char   in[64];
    char            out[6 * sizeof(in) + 2];
    uint64_t        x;
    size_t          len, i, n;
    int             round;
    json_t         *j;
    json_error_t    err;

    x = 0x0123456789abcdefULL;

    for (round = 0; round < 20000; round++) {
        len = 1 + round % sizeof(in);

        for (i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            in[i] = (unsigned char) x;

            /* bias towards UTF-8 lead and continuation bytes */
            if (round % 3 == 0 && i % 2) {
                in[i] = (unsigned char) (0x80 | (x >> 8 & 0x3f));
            }
        }

        out[0] = '"';
        n = ug_json_escape(out + 1, 6 * len, (const char *) in, len);
        ug_expect(n > 0 && n <= 6 * len, "round %d: %zu", round, n);
        out[n + 1] = '"';

        j = json_loadb(out, n + 2, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        ug_expect(j != NULL && json_is_string(j), "round %d: %s", round,
                  err.text);
        json_decref(j);
    }
}
END_TEST


START_TEST(test_log_escape)
{
    char            buf[64];
    char            big[4 * 256];
    size_t          n, size, i;
    unsigned char   all[256];

    n = ug_log_escape(buf, sizeof(buf), (const unsigned char *) "alice", 5);
    ck_assert_uint_eq(n, 5);
    ck_assert_int_eq(memcmp(buf, "alice", 5), 0);

    n = ug_log_escape(buf, sizeof(buf),
                      (const unsigned char *) "ev\"il\\x", 7);
    ck_assert_uint_eq(n, 9);
    ck_assert_int_eq(memcmp(buf, "ev\\\"il\\\\x", 9), 0);

    n = ug_log_escape(buf, sizeof(buf),
                      (const unsigned char *) "a\nb\x7f\xff", 5);
    ck_assert_uint_eq(n, 14);
    ck_assert_int_eq(memcmp(buf, "a\\x0ab\\x7f\\xff", 14), 0);

    /* every byte value: the output is printable ASCII, and a quote never
     * stands without the backslash before it */
    for (i = 0; i < 256; i++) {
        all[i] = (unsigned char) i;
    }

    n = ug_log_escape(big, sizeof(big), all, 256);
    ck_assert_uint_le(n, sizeof(big));

    for (i = 0; i < n; i++) {
        ck_assert(big[i] >= 0x20 && big[i] <= 0x7e);

        if (big[i] == '"') {
            ck_assert(i > 0 && big[i - 1] == '\\');
        }
    }

    /* too small: cut between two escapes, marked, never past size */
    for (size = 0; size < 16; size++) {
        memset(buf, UG_CANARY, sizeof(buf));
        n = ug_log_escape(buf, size, (const unsigned char *) "\"\"\"\"\"\"",
                          6);
        ck_assert_uint_le(n, size);
        ck_assert_int_eq((unsigned char) buf[size], UG_CANARY);

        if (size >= 12) {
            ck_assert_uint_eq(n, 12);

        } else if (size >= 3) {
            ck_assert_int_eq(memcmp(buf + n - 3, "...", 3), 0);
            ck_assert_uint_eq((n - 3) % 2, 0);
        }
    }
}
END_TEST

/* Every number of digits, both sides of each power of ten, and a spread
 * of others, against snprintf; nothing is written past the digits. */
START_TEST(test_uint)
{
    char      buf[UG_FMT_UINT_MAX + 8], want[32];
    size_t    n;
    unsigned  i, k;
    uint64_t  v, p10, vals[200];

    k = 0;
    vals[k++] = 0;
    vals[k++] = UINT64_MAX;
    vals[k++] = UINT64_MAX - 1;

    for (i = 1, p10 = 10; i < 20; i++, p10 *= 10) {
        vals[k++] = p10 - 1;
        vals[k++] = p10;
        vals[k++] = p10 + 1;
        vals[k++] = p10 / 2 + 7;
    }

    for (v = 0x9e3779b97f4a7c15ULL; k < 200; k++) {
        v = v * 6364136223846793005ULL + 1442695040888963407ULL;
        vals[k] = v >> (k % 64);
    }

    for (i = 0; i < k; i++) {
        memset(buf, '#', sizeof(buf));
        n = ug_fmt_uint(buf, vals[i]);
        snprintf(want, sizeof(want), "%" PRIu64, vals[i]);

        ck_assert_uint_eq(n, strlen(want));
        ck_assert_uint_le(n, UG_FMT_UINT_MAX);
        ck_assert_int_eq(memcmp(buf, want, n), 0);
        ck_assert_int_eq(buf[n], '#');
    }
}
END_TEST


/* A field whose last number only just fits, and one byte less. */
START_TEST(test_policy_number_at_the_end)
{
    char         buf[64];
    size_t       n;
    ug_limits_t  l;

    memset(&l, 0, sizeof(l));
    l.minute = UG_OFF;
    l.month = 1234567;

    /* "month";q=1234567;w=2592000 and the NUL */
    n = strlen("\"month\";q=1234567;w=2592000");

    memset(buf, '#', sizeof(buf));
    ck_assert_uint_eq(ug_fmt_policy(buf, n + 1, &l), n);
    ck_assert_str_eq(buf, "\"month\";q=1234567;w=2592000");
    ck_assert_int_eq(buf[n + 1], '#');

    memset(buf, '#', sizeof(buf));
    ck_assert_uint_eq(ug_fmt_policy(buf, n, &l), 0);
    ck_assert_int_eq(buf[n], '#');

    /* the digits themselves do not fit */
    memset(buf, '#', sizeof(buf));
    ck_assert_uint_eq(ug_fmt_policy(buf, n - 5, &l), 0);
    ck_assert_int_eq(buf[n - 5], '#');
}
END_TEST

static Suite *
fmt_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("ug_fmt");
    tc = tcase_create("core");

    tcase_add_test(tc, test_uint);
    tcase_add_test(tc, test_policy);
    tcase_add_test(tc, test_policy_number_at_the_end);
    tcase_add_test(tc, test_ratelimit_example);
    tcase_add_test(tc, test_fields_small_buffers);
    tcase_add_test(tc, test_deny_body_quota);
    tcase_add_test(tc, test_deny_body_rate);
    tcase_add_test(tc, test_deny_body_escaping);
    tcase_add_test(tc, test_deny_body_small_buffers);
    tcase_add_test(tc, test_deny_body_size_bound);
    tcase_add_test(tc, test_detail);
    tcase_add_test(tc, test_json_escape_table);
    tcase_add_test(tc, test_json_escape_random);
    tcase_add_test(tc, test_log_escape);

    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    return ug_check_run(fmt_suite());
}
