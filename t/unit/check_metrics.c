/*
 * The metrics text, read back by a parser of the exposition format
 * written here from the format's rules, and the JSON, read back with
 * jansson.
 */

/* memmem() */
#define _GNU_SOURCE

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ug_check.h"
#include "ug_metrics.h"


#define T_MAX_SAMPLES   512
#define T_MAX_FAMILIES  64


typedef struct {
    char      name[128];
    char      labels[1024];     /* k=v,k=v with values unescaped */
    uint64_t  value;
} t_sample_t;


typedef struct {
    char      name[128];
    char      type[16];
    int       help;
    int       samples;
} t_family_t;


typedef struct {
    t_sample_t  s[T_MAX_SAMPLES];
    size_t      n;
    t_family_t  f[T_MAX_FAMILIES];
    size_t      nf;
} t_expo_t;


static int
t_name_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
           || c == ':';
}


static int
t_name_char(int c)
{
    return t_name_start(c) || (c >= '0' && c <= '9');
}


/* A metric name at p; returns its length (0: none). */
static size_t
t_metric_name(const char *p, const char *end)
{
    size_t  n;

    if (p == end || !t_name_start((unsigned char) *p)) {
        return 0;
    }

    for (n = 1; p + n < end && t_name_char((unsigned char) p[n]); n++) {
        /* void */
    }

    return n;
}


static t_family_t *
t_family(t_expo_t *e, const char *name, size_t len, int create)
{
    size_t  i;

    ck_assert_uint_lt(len, sizeof(e->f[0].name));

    for (i = 0; i < e->nf; i++) {
        if (strlen(e->f[i].name) == len
            && memcmp(e->f[i].name, name, len) == 0)
        {
            return &e->f[i];
        }
    }

    if (!create) {
        return NULL;
    }

    ck_assert_uint_lt(e->nf, T_MAX_FAMILIES);
    memset(&e->f[e->nf], 0, sizeof(t_family_t));
    memcpy(e->f[e->nf].name, name, len);

    return &e->f[e->nf++];
}


/*
 * Parses exposition text (format 0.0.4) strictly: HELP and TYPE at most
 * once per family and before its samples, each family's samples
 * together, label values with only the three escapes, valid UTF-8,
 * integer values, no duplicate series, counters named _total.
 */
static void
t_parse_expo(const char *text, size_t len, t_expo_t *e)
{
    size_t             n, k, lineno;
    char               buf[1024], *o;
    const char        *p, *end, *eol;
    json_t            *utf8;
    t_family_t        *f;
    t_sample_t        *s;
    const t_family_t  *last;

    memset(e, 0, sizeof(t_expo_t));
    ck_assert_msg(len > 0 && text[len - 1] == '\n', "no final newline");

    p = text;
    end = text + len;
    last = NULL;
    lineno = 0;

    while (p < end) {
        lineno++;
        eol = memchr(p, '\n', (size_t) (end - p));
        ck_assert_ptr_nonnull(eol);

        if (eol - p >= 7
            && (memcmp(p, "# HELP ", 7) == 0 || memcmp(p, "# TYPE ", 7) == 0))
        {
            n = t_metric_name(p + 7, eol);
            ck_assert_msg(n > 0, "line %zu: no metric name", lineno);
            ck_assert_msg(p[7 + n] == ' ', "line %zu: no space", lineno);

            f = t_family(e, p + 7, n, 1);
            ck_assert_msg(f->samples == 0, "line %zu: %s after samples",
                          lineno, f->name);

            if (p[2] == 'H') {
                ck_assert_msg(!f->help, "line %zu: second HELP", lineno);
                f->help = 1;

                for (k = 8 + n; p + k < eol; k++) {
                    ck_assert_msg((unsigned char) p[k] >= 0x20,
                                  "line %zu: control byte", lineno);
                    if (p[k] == '\\') {
                        ck_assert_msg(p[k + 1] == '\\' || p[k + 1] == 'n',
                                      "line %zu: bad escape", lineno);
                        k++;
                    }
                }

            } else {
                ck_assert_msg(f->type[0] == '\0', "line %zu: second TYPE",
                              lineno);
                k = (size_t) (eol - (p + 8 + n));
                ck_assert_uint_lt(k, sizeof(f->type));
                memcpy(f->type, p + 8 + n, k);
                ck_assert_msg(strcmp(f->type, "counter") == 0
                              || strcmp(f->type, "gauge") == 0,
                              "line %zu: type \"%s\"", lineno, f->type);

                if (strcmp(f->type, "counter") == 0) {
                    ck_assert_msg(n > 6
                                  && memcmp(p + 7 + n - 6, "_total", 6) == 0,
                                  "line %zu: counter without _total",
                                  lineno);
                }
            }

            p = eol + 1;
            continue;
        }

        ck_assert_msg(p[0] != '#', "line %zu: stray comment", lineno);

        /* a sample */
        ck_assert_uint_lt(e->n, T_MAX_SAMPLES);
        s = &e->s[e->n];
        memset(s, 0, sizeof(t_sample_t));

        n = t_metric_name(p, eol);
        ck_assert_msg(n > 0 && n < sizeof(s->name), "line %zu: name",
                      lineno);
        memcpy(s->name, p, n);

        f = t_family(e, p, n, 0);
        ck_assert_msg(f != NULL && f->type[0] && f->help,
                      "line %zu: %s has no TYPE or HELP", lineno, s->name);
        ck_assert_msg(f->samples == 0 || f == last,
                      "line %zu: %s samples are not together", lineno,
                      s->name);
        f->samples++;
        last = f;

        p += n;
        o = s->labels;

        if (*p == '{') {
            p++;

            for ( ;; ) {
                n = t_metric_name(p, eol);
                ck_assert_msg(n > 0 && p[n] == '=' && p[n + 1] == '"',
                              "line %zu: label", lineno);
                ck_assert_msg(memchr(p, ':', n) == NULL,
                              "line %zu: ':' in a label name", lineno);

                if (o != s->labels) {
                    *o++ = ',';
                }
                memcpy(o, p, n + 1);
                o += n + 1;
                p += n + 2;

                k = 0;

                while (p < eol && *p != '"') {
                    if (*p == '\\') {
                        ck_assert_msg(p[1] == '\\' || p[1] == '"'
                                      || p[1] == 'n',
                                      "line %zu: bad escape \\%c", lineno,
                                      p[1]);
                        buf[k++] = p[1] == 'n' ? '\n' : p[1];
                        p += 2;

                    } else {
                        ck_assert_msg((unsigned char) *p >= 0x20
                                      && *p != 0x7f,
                                      "line %zu: raw control byte", lineno);
                        buf[k++] = *p++;
                    }

                    ck_assert_uint_lt(k, sizeof(buf));
                }

                ck_assert_msg(p < eol, "line %zu: unterminated", lineno);
                p++;

                utf8 = json_stringn(buf, k);
                ck_assert_msg(utf8 != NULL, "line %zu: not UTF-8", lineno);
                json_decref(utf8);

                ck_assert_uint_lt((size_t) (o - s->labels) + k,
                                  sizeof(s->labels));
                memcpy(o, buf, k);
                o += k;

                if (*p == ',') {
                    p++;
                    continue;
                }

                ck_assert_msg(*p == '}', "line %zu: after a label", lineno);
                p++;
                break;
            }
        }

        ck_assert_msg(*p == ' ', "line %zu: no space before value", lineno);
        p++;
        ck_assert_msg(p < eol && *p >= '0' && *p <= '9',
                      "line %zu: value", lineno);

        while (p < eol && *p >= '0' && *p <= '9') {
            k = (size_t) (*p++ - '0');
            ck_assert_msg(s->value < UINT64_MAX / 10
                          || (s->value == UINT64_MAX / 10
                              && k <= UINT64_MAX % 10),
                          "line %zu: value overflows", lineno);
            s->value = s->value * 10 + k;
        }

        ck_assert_msg(p == eol, "line %zu: junk after the value", lineno);

        for (k = 0; k < e->n; k++) {
            ck_assert_msg(strcmp(e->s[k].name, s->name) != 0
                          || strcmp(e->s[k].labels, s->labels) != 0,
                          "line %zu: duplicate series", lineno);
        }

        e->n++;
        p = eol + 1;
    }
}


/* The value of one series; fails the test when it is absent. */
static uint64_t
t_get(const t_expo_t *e, const char *name, const char *labels)
{
    size_t  i;

    for (i = 0; i < e->n; i++) {
        if (strcmp(e->s[i].name, name) == 0
            && strcmp(e->s[i].labels, labels) == 0)
        {
            return e->s[i].value;
        }
    }

    ck_abort_msg("no series %s{%s}", name, labels);

    return 0;
}


static int
t_has(const t_expo_t *e, const char *name, const char *labels)
{
    size_t  i;

    for (i = 0; i < e->n; i++) {
        if (strcmp(e->s[i].name, name) == 0
            && (labels == NULL || strcmp(e->s[i].labels, labels) == 0))
        {
            return 1;
        }
    }

    return 0;
}


static const t_family_t *
t_fam(const t_expo_t *e, const char *name)
{
    size_t  i;

    for (i = 0; i < e->nf; i++) {
        if (strcmp(e->f[i].name, name) == 0) {
            return &e->f[i];
        }
    }

    return NULL;
}


/* Renders through the size function into a buffer with canaries. */
static char *
t_render(const ug_metrics_zone_t *z, size_t n, size_t *len)
{
    char    *buf;
    size_t   size;

    size = ug_metrics_text_size(z, n);
    buf = ug_canary_buf(size);
    *len = ug_metrics_text(buf, size, z, n);
    ck_assert_uint_eq(*len, size);
    ck_assert(ug_canary_ok(buf, size));

    return buf;
}


static ug_metrics_plan_t     t_plans_a[3];
static ug_metrics_plan_t     t_plans_b[1];
static ug_metrics_error_t    t_errors[2];
static ug_metrics_zone_t     t_zones[2];


static void
t_setup(void)
{
    unsigned  r;

    memset(t_plans_a, 0, sizeof(t_plans_a));
    memset(t_plans_b, 0, sizeof(t_plans_b));
    memset(t_zones, 0, sizeof(t_zones));

    t_plans_a[0].name = "free";
    t_plans_a[0].len = 4;
    t_plans_a[1].name = "pro";
    t_plans_a[1].len = 3;
    t_plans_a[2].name = "none";
    t_plans_a[2].len = 4;
    t_plans_b[0].name = "free";
    t_plans_b[0].len = 4;

    /* every counter distinct, so that a swap shows */
    for (r = 0; r < UG_METRIC_RESULTS; r++) {
        t_plans_a[0].count[r] = 100 + r;
        t_plans_a[1].count[r] = 200 + r;
        t_plans_a[2].count[r] = 300 + r;
        t_plans_b[0].count[r] = 400 + r;
    }

    t_plans_a[0].count[UG_METRIC_ALLOWED] = UINT64_MAX;

    t_plans_a[0].refunded = 11;
    t_plans_a[1].refunded = 12;
    t_plans_a[2].refunded = 13;
    t_plans_b[0].refunded = 14;
    t_plans_a[0].overage = 21;
    t_plans_a[1].overage = 22;
    t_plans_a[2].overage = 23;
    t_plans_b[0].overage = 24;

    t_errors[0].type = "ThrottlingException";
    t_errors[0].len = strlen(t_errors[0].type);
    t_errors[0].count = 7;
    t_errors[1].type = "ProvisionedThroughputExceededException";
    t_errors[1].len = strlen(t_errors[1].type);
    t_errors[1].count = 2;

    t_zones[0].name = "usage";
    t_zones[0].len = 5;
    t_zones[0].plans = t_plans_a;
    t_zones[0].nplans = 3;
    t_zones[0].owners = 1234;
    t_zones[0].bytes_total = 10485760;
    t_zones[0].bytes_used = 409600;
    t_zones[0].evictions = 3;
    t_zones[0].fail_open = 1;
    t_zones[0].state = 1;
    t_zones[0].state_writes = 17;
    t_zones[0].state_failures = 2;
    t_zones[0].state_last_write = 1767225600;
    t_zones[0].notify = 1;
    t_zones[0].notify_sent = 31;
    t_zones[0].notify_failures = 32;

    t_zones[1].name = "pulse";
    t_zones[1].len = 5;
    t_zones[1].plans = t_plans_b;
    t_zones[1].nplans = 1;
    t_zones[1].owners = 9;
    t_zones[1].bytes_total = 1048576;
    t_zones[1].bytes_used = 65536;
    t_zones[1].dynamodb = 1;
    t_zones[1].sync_backlog = 42;
    t_zones[1].last_sync = 1767225000;
    t_zones[1].writes = 1234;
    t_zones[1].errors = t_errors;
    t_zones[1].nerrors = 2;
}


START_TEST(test_text_counts)
{
    char             *buf, labels[128];
    size_t            len;
    unsigned          r;
    t_expo_t         *e;
    const char       *rn;

    e = malloc(sizeof(t_expo_t));
    buf = t_render(t_zones, 2, &len);
    t_parse_expo(buf, len, e);

    for (r = 0; r < UG_METRIC_RESULTS; r++) {
        rn = ug_metrics_result_name(r);

        snprintf(labels, sizeof(labels), "zone=usage,plan=free,result=%s",
                 rn);
        ck_assert_uint_eq(t_get(e, "usage_gate_requests_total", labels),
                          r == UG_METRIC_ALLOWED ? UINT64_MAX : 100 + r);
        snprintf(labels, sizeof(labels), "zone=usage,plan=pro,result=%s",
                 rn);
        ck_assert_uint_eq(t_get(e, "usage_gate_requests_total", labels),
                          200 + r);
        snprintf(labels, sizeof(labels), "zone=usage,plan=none,result=%s",
                 rn);
        ck_assert_uint_eq(t_get(e, "usage_gate_requests_total", labels),
                          300 + r);
        snprintf(labels, sizeof(labels), "zone=pulse,plan=free,result=%s",
                 rn);
        ck_assert_uint_eq(t_get(e, "usage_gate_requests_total", labels),
                          400 + r);
    }

    ck_assert_uint_eq(t_get(e, "usage_gate_owners", "zone=usage"), 1234);
    ck_assert_uint_eq(t_get(e, "usage_gate_owners", "zone=pulse"), 9);
    ck_assert_uint_eq(t_get(e, "usage_gate_zone_size_bytes", "zone=usage"),
                      10485760);
    ck_assert_uint_eq(t_get(e, "usage_gate_zone_used_bytes", "zone=usage"),
                      409600);
    ck_assert_uint_eq(t_get(e, "usage_gate_zone_free_bytes", "zone=usage"),
                      10485760 - 409600);
    ck_assert_uint_eq(t_get(e, "usage_gate_zone_free_bytes", "zone=pulse"),
                      1048576 - 65536);
    ck_assert_uint_eq(t_get(e, "usage_gate_evictions_total", "zone=usage"),
                      3);
    ck_assert_uint_eq(t_get(e, "usage_gate_fail_open_total", "zone=usage"),
                      1);
    ck_assert_uint_eq(t_get(e, "usage_gate_fail_open_total", "zone=pulse"),
                      0);

    /* the state file's families only for the zone that has one */
    ck_assert_uint_eq(t_get(e, "usage_gate_state_writes_total",
                            "zone=usage"), 17);
    ck_assert_uint_eq(t_get(e, "usage_gate_state_write_failures_total",
                            "zone=usage"), 2);
    ck_assert_uint_eq(t_get(e,
                            "usage_gate_state_last_write_timestamp_seconds",
                            "zone=usage"), 1767225600);
    ck_assert(!t_has(e, "usage_gate_state_writes_total", "zone=pulse"));

    /* and DynamoDB's likewise */
    ck_assert_uint_eq(t_get(e, "usage_gate_dynamodb_sync_backlog",
                            "zone=pulse"), 42);
    ck_assert_uint_eq(t_get(e,
                            "usage_gate_dynamodb_last_sync_timestamp_seconds",
                            "zone=pulse"), 1767225000);
    ck_assert_uint_eq(t_get(e, "usage_gate_dynamodb_errors_total",
                            "zone=pulse,type=ThrottlingException"), 7);
    ck_assert_uint_eq(t_get(e, "usage_gate_dynamodb_errors_total",
                            "zone=pulse,"
                            "type=ProvisionedThroughputExceededException"),
                      2);
    ck_assert_uint_eq(t_get(e, "usage_gate_dynamodb_writes_total",
                            "zone=pulse"), 1234);
    ck_assert(!t_has(e, "usage_gate_dynamodb_sync_backlog", "zone=usage"));

    /* billing: units per zone and plan, notifications for the zone
     * whose http{} has usage_gate_notify */
    ck_assert_uint_eq(t_get(e, "usage_gate_refunded_units_total",
                            "zone=usage,plan=free"), 11);
    ck_assert_uint_eq(t_get(e, "usage_gate_refunded_units_total",
                            "zone=usage,plan=pro"), 12);
    ck_assert_uint_eq(t_get(e, "usage_gate_refunded_units_total",
                            "zone=usage,plan=none"), 13);
    ck_assert_uint_eq(t_get(e, "usage_gate_refunded_units_total",
                            "zone=pulse,plan=free"), 14);
    ck_assert_uint_eq(t_get(e, "usage_gate_overage_units_total",
                            "zone=usage,plan=free"), 21);
    ck_assert_uint_eq(t_get(e, "usage_gate_overage_units_total",
                            "zone=pulse,plan=free"), 24);
    ck_assert_uint_eq(t_get(e, "usage_gate_notifications_total",
                            "zone=usage"), 31);
    ck_assert_uint_eq(t_get(e, "usage_gate_notify_failures_total",
                            "zone=usage"), 32);
    ck_assert(!t_has(e, "usage_gate_notify_failures_total", "zone=pulse"));
    ck_assert_str_eq(t_fam(e, "usage_gate_refunded_units_total")->type,
                     "counter");

    /* nothing else: 4 plans x the results, 6 families x 2 zones, 3 state
     * series, 3 + 2 DynamoDB series, 2 x 4 billing units series, 2
     * notification series */
    ck_assert_uint_eq(e->n, 4 * UG_METRIC_RESULTS + 12 + 3 + 5 + 8 + 2);
    ck_assert_str_eq(t_fam(e, "usage_gate_dynamodb_writes_total")->type,
                     "counter");

    ck_assert_str_eq(t_fam(e, "usage_gate_requests_total")->type,
                     "counter");
    ck_assert_str_eq(t_fam(e, "usage_gate_owners")->type, "gauge");
    ck_assert_str_eq(t_fam(e, "usage_gate_dynamodb_errors_total")->type,
                     "counter");

    ug_canary_free(buf);
    free(e);
}
END_TEST


START_TEST(test_text_optional_families)
{
    char      *buf;
    size_t     len;
    t_expo_t  *e;

    e = malloc(sizeof(t_expo_t));
    t_zones[0].state = 0;
    buf = t_render(t_zones, 1, &len);
    t_parse_expo(buf, len, e);

    /* no zone with a state file or DynamoDB: not even HELP or TYPE */
    ck_assert_ptr_null(t_fam(e, "usage_gate_state_writes_total"));
    ck_assert_ptr_null(t_fam(e, "usage_gate_dynamodb_errors_total"));
    ck_assert_ptr_null(memmem(buf, len, "state_", 6));
    ck_assert_ptr_null(memmem(buf, len, "dynamodb", 8));
    ck_assert_uint_eq(e->n, 3 * UG_METRIC_RESULTS + 6 + 6 + 2);

    /* without usage_gate_notify, no notification families */
    t_zones[0].notify = 0;
    ug_canary_free(buf);
    buf = t_render(t_zones, 1, &len);
    t_parse_expo(buf, len, e);
    ck_assert_ptr_null(t_fam(e, "usage_gate_notify_failures_total"));
    ck_assert_uint_eq(e->n, 3 * UG_METRIC_RESULTS + 6 + 6);

    ug_canary_free(buf);

    /* DynamoDB without errors yet: the errors family has no samples, but
     * stays declared */
    t_zones[1].nerrors = 0;
    buf = t_render(&t_zones[1], 1, &len);
    t_parse_expo(buf, len, e);
    ck_assert_ptr_nonnull(t_fam(e, "usage_gate_dynamodb_errors_total"));
    ck_assert(!t_has(e, "usage_gate_dynamodb_errors_total", NULL));
    ck_assert_uint_eq(t_get(e, "usage_gate_dynamodb_sync_backlog",
                            "zone=pulse"), 42);
    ug_canary_free(buf);

    /* no zones: nothing at all */
    ck_assert_uint_eq(ug_metrics_text_size(t_zones, 0), 0);
    free(e);
}
END_TEST


START_TEST(test_text_escaping)
{
    char       *buf, name[UG_METRICS_NAME_MAX + 50];
    size_t      len;
    t_expo_t   *e;

    static const char  weird[] = "a\\b\"c\nd";
    static const char  bytes[] = "x\x01y\xffz\xc3\xa9\x7f";
    static const char  raw[] = "zone=\"a\\\\b\\\"c\\nd\"";

    e = malloc(sizeof(t_expo_t));

    t_zones[0].name = weird;
    t_zones[0].len = sizeof(weird) - 1;
    t_errors[0].type = bytes;
    t_errors[0].len = sizeof(bytes) - 1;
    t_zones[1].errors = t_errors;

    buf = t_render(t_zones, 2, &len);
    t_parse_expo(buf, len, e);

    /* raw: each of the three escapes */
    ck_assert_ptr_nonnull(memmem(buf, len, raw, sizeof(raw) - 1));
    ck_assert_uint_eq(t_get(e, "usage_gate_owners", "zone=a\\b\"c\nd"),
                      1234);

    /* control bytes and a stray byte become U+FFFD; é stays */
    ck_assert_uint_eq(t_get(e, "usage_gate_dynamodb_errors_total",
                            "zone=pulse,type=x\xef\xbf\xbdy\xef\xbf\xbdz"
                            "\xc3\xa9\xef\xbf\xbd"), 7);
    ug_canary_free(buf);

    /* a long name is cut */
    memset(name, 'n', sizeof(name));
    t_zones[0].name = name;
    t_zones[0].len = sizeof(name);
    buf = t_render(t_zones, 1, &len);
    t_parse_expo(buf, len, e);
    name[UG_METRICS_NAME_MAX] = '\0';
    {
        char  labels[UG_METRICS_NAME_MAX + 8];

        memcpy(labels, "zone=", 5);
        memcpy(labels + 5, name, UG_METRICS_NAME_MAX + 1);
        ck_assert_uint_eq(t_get(e, "usage_gate_owners", labels), 1234);
    }

    ug_canary_free(buf);
    free(e);
}
END_TEST


/* Overlong forms, surrogates and code points past U+10FFFF are not
 * UTF-8: each becomes replacement characters, never passes through. */
START_TEST(test_text_bad_utf8)
{
    char        *buf;
    size_t       len, i;
    t_expo_t    *e;

    static const char  *bad[] = {
        "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "\xf8\x88\x80\x80\x80", "\xe2\x82", "\x80"
    };

    e = malloc(sizeof(t_expo_t));

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t_zones[0].name = bad[i];
        t_zones[0].len = strlen(bad[i]);
        buf = t_render(t_zones, 1, &len);
        t_parse_expo(buf, len, e);
        ck_assert_msg(memmem(buf, len, bad[i], strlen(bad[i])) == NULL,
                      "bad sequence %zu passed through", i);
        ug_canary_free(buf);
    }

    /* the longest valid forms do pass */
    t_zones[0].name = "\xf4\x8f\xbf\xbf\xed\x9f\xbf";
    t_zones[0].len = 7;
    buf = t_render(t_zones, 1, &len);
    t_parse_expo(buf, len, e);
    ck_assert_uint_eq(t_get(e, "usage_gate_owners",
                            "zone=\xf4\x8f\xbf\xbf\xed\x9f\xbf"), 1234);
    ug_canary_free(buf);
    free(e);
}
END_TEST


START_TEST(test_text_too_small)
{
    char    *buf;
    size_t   size, cut;

    size = ug_metrics_text_size(t_zones, 2);
    ck_assert_uint_gt(size, 1000);

    /* every short size fails cleanly and writes nothing past the end */
    for (cut = 0; cut < size; cut += 97) {
        buf = ug_canary_buf(cut);
        ug_expect(ug_metrics_text(buf, cut, t_zones, 2) == 0,
                  "size %zu accepted", cut);
        ug_expect(ug_canary_ok(buf, cut), "size %zu overran", cut);
        ug_canary_free(buf);
    }

    buf = ug_canary_buf(size - 1);
    ck_assert_uint_eq(ug_metrics_text(buf, size - 1, t_zones, 2), 0);
    ck_assert(ug_canary_ok(buf, size - 1));
    ug_canary_free(buf);
}
END_TEST


START_TEST(test_free_bytes_saturate)
{
    char      *buf;
    size_t     len;
    t_expo_t  *e;

    e = malloc(sizeof(t_expo_t));
    t_zones[0].bytes_used = t_zones[0].bytes_total + 1;
    t_zones[0].state_last_write = -5;
    buf = t_render(t_zones, 1, &len);
    t_parse_expo(buf, len, e);
    ck_assert_uint_eq(t_get(e, "usage_gate_zone_free_bytes", "zone=usage"),
                      0);
    ck_assert_uint_eq(t_get(e,
                            "usage_gate_state_last_write_timestamp_seconds",
                            "zone=usage"), 0);
    ug_canary_free(buf);
    free(e);
}
END_TEST


static json_t *
t_json(const ug_metrics_zone_t *z, size_t n)
{
    char          *buf;
    size_t         size, len;
    json_t        *j;
    json_error_t   jerr;

    size = ug_metrics_json_size(z, n);
    buf = ug_canary_buf(size);
    len = ug_metrics_json(buf, size, z, n);
    ck_assert_uint_eq(len, size);
    ck_assert(ug_canary_ok(buf, size));

    ck_assert_uint_eq(ug_metrics_json(buf, size - 1, z, n), 0);

    j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    ck_assert_msg(j != NULL, "%s: %.*s", jerr.text, (int) len, buf);
    ug_canary_free(buf);

    return j;
}


static json_int_t
t_jint(json_t *j, const char *path)
{
    char        key[64];
    const char *p, *dot;
    json_t     *v;

    v = j;
    p = path;

    while (*p) {
        dot = strchr(p, '.');
        if (dot == NULL) {
            dot = p + strlen(p);
        }

        ck_assert_uint_lt((size_t) (dot - p), sizeof(key));
        memcpy(key, p, (size_t) (dot - p));
        key[dot - p] = '\0';

        v = json_object_get(v, key);
        ck_assert_msg(v != NULL, "no %s in %s", key, path);
        p = *dot ? dot + 1 : dot;
    }

    ck_assert_msg(json_is_integer(v), "%s is not an integer", path);

    return json_integer_value(v);
}


START_TEST(test_json)
{
    json_t    *j, *z0, *z1;
    unsigned   r;
    char       path[64];

    t_plans_a[0].count[UG_METRIC_ALLOWED] = 5;
    t_zones[1].name = "we\"ird\n";
    t_zones[1].len = 7;

    j = t_json(t_zones, 2);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "zones")), 2);
    z0 = json_array_get(json_object_get(j, "zones"), 0);
    z1 = json_array_get(json_object_get(j, "zones"), 1);

    ck_assert_str_eq(json_string_value(json_object_get(z0, "zone")),
                     "usage");
    ck_assert_str_eq(json_string_value(json_object_get(z1, "zone")),
                     "we\"ird\n");

    for (r = 0; r < UG_METRIC_RESULTS; r++) {
        snprintf(path, sizeof(path), "requests.pro.%s",
                 ug_metrics_result_name(r));
        ck_assert_int_eq(t_jint(z0, path), 200 + r);
        snprintf(path, sizeof(path), "requests.free.%s",
                 ug_metrics_result_name(r));
        ck_assert_int_eq(t_jint(z1, path), 400 + r);
    }

    ck_assert_int_eq(t_jint(z0, "requests.free.allowed"), 5);
    ck_assert_uint_eq(json_object_size(json_object_get(z0, "requests")), 3);
    ck_assert_int_eq(t_jint(z0, "owners"), 1234);
    ck_assert_int_eq(t_jint(z0, "zone_bytes.size"), 10485760);
    ck_assert_int_eq(t_jint(z0, "zone_bytes.used"), 409600);
    ck_assert_int_eq(t_jint(z0, "zone_bytes.free"), 10485760 - 409600);
    ck_assert_int_eq(t_jint(z0, "evictions"), 3);
    ck_assert_int_eq(t_jint(z0, "fail_open"), 1);
    ck_assert_int_eq(t_jint(z0, "state_file.writes"), 17);
    ck_assert_int_eq(t_jint(z0, "state_file.failures"), 2);
    ck_assert_int_eq(t_jint(z0, "state_file.last_write"), 1767225600);
    ck_assert(json_is_null(json_object_get(z0, "dynamodb")));
    ck_assert_int_eq(t_jint(z0, "refunded_units.pro"), 12);
    ck_assert_int_eq(t_jint(z0, "overage_units.none"), 23);
    ck_assert_uint_eq(json_object_size(json_object_get(z0,
                                                       "refunded_units")),
                      3);
    ck_assert_int_eq(t_jint(z0, "notifications.sent"), 31);
    ck_assert_int_eq(t_jint(z0, "notifications.failures"), 32);

    ck_assert(json_is_null(json_object_get(z1, "state_file")));
    ck_assert(json_is_null(json_object_get(z1, "notifications")));
    ck_assert_int_eq(t_jint(z1, "refunded_units.free"), 14);
    ck_assert_int_eq(t_jint(z1, "dynamodb.sync_backlog"), 42);
    ck_assert_int_eq(t_jint(z1, "dynamodb.last_sync"), 1767225000);
    ck_assert_int_eq(t_jint(z1, "dynamodb.writes"), 1234);
    ck_assert_int_eq(t_jint(z1, "dynamodb.errors.ThrottlingException"), 7);
    ck_assert_int_eq(t_jint(z1, "dynamodb.errors."
                                "ProvisionedThroughputExceededException"),
                     2);
    json_decref(j);

    /* no zones, no errors */
    j = t_json(t_zones, 0);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "zones")), 0);
    json_decref(j);

    t_zones[1].nerrors = 0;
    t_zones[1].nplans = 0;
    j = t_json(&t_zones[1], 1);
    z1 = json_array_get(json_object_get(j, "zones"), 0);
    ck_assert_uint_eq(json_object_size(json_object_get(z1, "requests")), 0);
    ck_assert_uint_eq(json_object_size(
        json_object_get(json_object_get(z1, "dynamodb"), "errors")), 0);
    json_decref(j);
}
END_TEST


START_TEST(test_result_names)
{
    ck_assert_str_eq(ug_metrics_result_name(UG_METRIC_ALLOWED), "allowed");
    ck_assert_str_eq(ug_metrics_result_name(UG_METRIC_QUOTA), "quota");
    ck_assert_str_eq(ug_metrics_result_name(UG_METRIC_RATE), "rate");
    ck_assert_str_eq(ug_metrics_result_name(UG_METRIC_DRY_RUN_QUOTA),
                     "dry_run_quota");
    ck_assert_str_eq(ug_metrics_result_name(UG_METRIC_DRY_RUN_RATE),
                     "dry_run_rate");
    ck_assert_str_eq(ug_metrics_result_name(UG_METRIC_BYPASS), "bypass");
    ck_assert_str_eq(ug_metrics_result_name(UG_METRIC_UNAUTHORIZED),
                     "unauthorized");
    ck_assert_str_eq(ug_metrics_result_name(UG_METRIC_BAD_REQUEST),
                     "bad_request");
    ck_assert_ptr_null(ug_metrics_result_name(UG_METRIC_RESULTS));
}
END_TEST


static Suite *
metrics_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("metrics");
    tc = tcase_create("core");
    tcase_add_checked_fixture(tc, t_setup, NULL);

    tcase_add_test(tc, test_text_counts);
    tcase_add_test(tc, test_text_optional_families);
    tcase_add_test(tc, test_text_escaping);
    tcase_add_test(tc, test_text_bad_utf8);
    tcase_add_test(tc, test_text_too_small);
    tcase_add_test(tc, test_free_bytes_saturate);
    tcase_add_test(tc, test_json);
    tcase_add_test(tc, test_result_names);
    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    return ug_check_run(metrics_suite());
}
