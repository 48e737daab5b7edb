#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ug_fmt.h"
#include "ug_metrics.h"


/* Which zones a family applies to. */
#define UG_M_ALL       0
#define UG_M_STATE     1
#define UG_M_DYNAMODB  2
#define UG_M_NOTIFY    3


/*
 * An output that either writes or, with buf NULL, only counts: the size
 * function and the renderer are the same code, so they cannot disagree.
 */
typedef struct {
    char        *buf;
    size_t       size;
    size_t       len;
} ug_mw_t;


typedef uint64_t (*ug_m_get_pt)(const ug_metrics_zone_t *z);


typedef struct {
    const char   *name;
    const char   *type;
    const char   *help;
    int           need;
    ug_m_get_pt   get;
} ug_m_family_t;


static const char  *ug_m_results[UG_METRIC_RESULTS] = {
    "allowed", "quota", "rate", "dry_run_quota", "dry_run_rate", "bypass",
    "unauthorized", "bad_request", "unavailable", "preflight", "overflow",
    "overflow_rate", "full"
};


const char *
ug_metrics_result_name(unsigned result)
{
    return result < UG_METRIC_RESULTS ? ug_m_results[result] : NULL;
}


static void
ug_mw_put(ug_mw_t *w, const char *s, size_t n)
{
    if (w->buf && w->len <= w->size && n <= w->size - w->len) {
        memcpy(w->buf + w->len, s, n);
    }

    w->len += n;
}


static void
ug_mw_str(ug_mw_t *w, const char *s)
{
    ug_mw_put(w, s, strlen(s));
}


static void
ug_mw_u64(ug_mw_t *w, uint64_t v)
{
    char  tmp[24];
    int   n;

    n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
    ug_mw_put(w, tmp, (size_t) n);
}


static size_t
ug_mw_done(ug_mw_t *w)
{
    return w->len <= w->size ? w->len : 0;
}


/* The length of one well-formed UTF-8 sequence at p, or 0. */
static size_t
ug_m_utf8(const unsigned char *p, size_t n)
{
    unsigned char  lo, hi;
    size_t         k, i;

    if (p[0] < 0xc2 || p[0] > 0xf4) {
        return 0;
    }

    k = p[0] < 0xe0 ? 2 : (p[0] < 0xf0 ? 3 : 4);

    if (n < k) {
        return 0;
    }

    /* the second byte's range rules out overlong forms, surrogates and
     * code points past U+10FFFF */
    lo = 0x80;
    hi = 0xbf;

    if (p[0] == 0xe0) {
        lo = 0xa0;

    } else if (p[0] == 0xed) {
        hi = 0x9f;

    } else if (p[0] == 0xf0) {
        lo = 0x90;

    } else if (p[0] == 0xf4) {
        hi = 0x8f;
    }

    if (p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 2; i < k; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }

    return k;
}


/*
 * A label value as the exposition format wants it: backslash, double
 * quote and line feed escaped.  Other control bytes and bytes that are
 * not UTF-8 become U+FFFD, so that no parser stumbles on them.
 */
static void
ug_mw_label(ug_mw_t *w, const char *s, size_t n)
{
    const unsigned char  *p;
    size_t                i, k;

    p = (const unsigned char *) s;

    if (n > UG_METRICS_NAME_MAX) {
        n = UG_METRICS_NAME_MAX;
    }

    for (i = 0; i < n; i += k) {
        k = 1;

        if (p[i] == '\\') {
            ug_mw_put(w, "\\\\", 2);

        } else if (p[i] == '"') {
            ug_mw_put(w, "\\\"", 2);

        } else if (p[i] == '\n') {
            ug_mw_put(w, "\\n", 2);

        } else if (p[i] < 0x20 || p[i] == 0x7f) {
            ug_mw_put(w, "\xef\xbf\xbd", 3);

        } else if (p[i] < 0x80) {
            ug_mw_put(w, (const char *) p + i, 1);

        } else {
            k = ug_m_utf8(p + i, n - i);

            if (k) {
                ug_mw_put(w, (const char *) p + i, k);

            } else {
                ug_mw_put(w, "\xef\xbf\xbd", 3);
                k = 1;
            }
        }
    }
}


/* A JSON string with its quotes. */
static void
ug_mw_json_str(ug_mw_t *w, const char *s, size_t n)
{
    char    tmp[6 * UG_METRICS_NAME_MAX];
    size_t  k;

    if (n > UG_METRICS_NAME_MAX) {
        n = UG_METRICS_NAME_MAX;
    }

    k = n ? ug_json_escape(tmp, sizeof(tmp), s, n) : 0;

    ug_mw_put(w, "\"", 1);
    ug_mw_put(w, tmp, k);
    ug_mw_put(w, "\"", 1);
}


static uint64_t
ug_m_time(int64_t t)
{
    return t > 0 ? (uint64_t) t : 0;
}


static uint64_t
ug_m_owners(const ug_metrics_zone_t *z)
{
    return z->owners;
}


static uint64_t
ug_m_size(const ug_metrics_zone_t *z)
{
    return z->bytes_total;
}


static uint64_t
ug_m_used(const ug_metrics_zone_t *z)
{
    return z->bytes_used;
}


static uint64_t
ug_m_free(const ug_metrics_zone_t *z)
{
    return z->bytes_total > z->bytes_used ? z->bytes_total - z->bytes_used
                                          : 0;
}


static uint64_t
ug_m_evictions(const ug_metrics_zone_t *z)
{
    return z->evictions;
}


static uint64_t
ug_m_fail_open(const ug_metrics_zone_t *z)
{
    return z->fail_open;
}


static uint64_t
ug_m_state_writes(const ug_metrics_zone_t *z)
{
    return z->state_writes;
}


static uint64_t
ug_m_state_failures(const ug_metrics_zone_t *z)
{
    return z->state_failures;
}


static uint64_t
ug_m_state_last(const ug_metrics_zone_t *z)
{
    return ug_m_time(z->state_last_write);
}


static uint64_t
ug_m_backlog(const ug_metrics_zone_t *z)
{
    return z->sync_backlog;
}


static uint64_t
ug_m_last_sync(const ug_metrics_zone_t *z)
{
    return ug_m_time(z->last_sync);
}


static uint64_t
ug_m_writes(const ug_metrics_zone_t *z)
{
    return z->writes;
}


static uint64_t
ug_m_notify_sent(const ug_metrics_zone_t *z)
{
    return z->notify_sent;
}


static uint64_t
ug_m_notify_failures(const ug_metrics_zone_t *z)
{
    return z->notify_failures;
}


static const ug_m_family_t  ug_m_families[] = {
    { "usage_gate_owners", "gauge",
      "Owners held in the zone.", UG_M_ALL, ug_m_owners },
    { "usage_gate_zone_size_bytes", "gauge",
      "Size of the shared memory zone.", UG_M_ALL, ug_m_size },
    { "usage_gate_zone_used_bytes", "gauge",
      "Bytes of the zone in use.", UG_M_ALL, ug_m_used },
    { "usage_gate_zone_free_bytes", "gauge",
      "Bytes of the zone free.", UG_M_ALL, ug_m_free },
    { "usage_gate_evictions_total", "counter",
      "Owners dropped from a full zone.", UG_M_ALL, ug_m_evictions },
    { "usage_gate_fail_open_total", "counter",
      "Requests let through because the zone had no room.", UG_M_ALL,
      ug_m_fail_open },
    { "usage_gate_state_writes_total", "counter",
      "State file writes completed.", UG_M_STATE, ug_m_state_writes },
    { "usage_gate_state_write_failures_total", "counter",
      "State file writes that failed.", UG_M_STATE, ug_m_state_failures },
    { "usage_gate_state_last_write_timestamp_seconds", "gauge",
      "Unix time of the last completed state file write (0: never).",
      UG_M_STATE, ug_m_state_last },
    { "usage_gate_notifications_total", "counter",
      "Threshold notifications delivered (answered with 2xx).",
      UG_M_NOTIFY, ug_m_notify_sent },
    { "usage_gate_notify_failures_total", "counter",
      "Threshold notification attempts that failed, retries included, "
      "and notifications dropped.", UG_M_NOTIFY, ug_m_notify_failures },
    { "usage_gate_dynamodb_sync_backlog", "gauge",
      "Usage counted locally and not yet written to DynamoDB.",
      UG_M_DYNAMODB, ug_m_backlog },
    { "usage_gate_dynamodb_last_sync_timestamp_seconds", "gauge",
      "Unix time of the last successful DynamoDB sync (0: never).",
      UG_M_DYNAMODB, ug_m_last_sync },
    { "usage_gate_dynamodb_writes_total", "counter",
      "DynamoDB write requests sent (UpdateItem), retries included.",
      UG_M_DYNAMODB, ug_m_writes },
};


static int
ug_m_applies(const ug_metrics_zone_t *z, int need)
{
    switch (need) {
    case UG_M_STATE:
        return z->state;
    case UG_M_DYNAMODB:
        return z->dynamodb;
    case UG_M_NOTIFY:
        return z->notify;
    default:
        return 1;
    }
}


/* HELP and TYPE, once per family, and only if some zone has samples. */
static int
ug_m_header(ug_mw_t *w, const ug_metrics_zone_t *zones, size_t n,
    const char *name, const char *type, const char *help, int need)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (ug_m_applies(&zones[i], need)) {
            break;
        }
    }

    if (i == n) {
        return 0;
    }

    ug_mw_str(w, "# HELP ");
    ug_mw_str(w, name);
    ug_mw_str(w, " ");
    ug_mw_str(w, help);
    ug_mw_str(w, "\n# TYPE ");
    ug_mw_str(w, name);
    ug_mw_str(w, " ");
    ug_mw_str(w, type);
    ug_mw_str(w, "\n");

    return 1;
}


static void
ug_m_zone_label(ug_mw_t *w, const char *name, const ug_metrics_zone_t *z)
{
    ug_mw_str(w, name);
    ug_mw_str(w, "{zone=\"");
    ug_mw_label(w, z->name, z->len);
    ug_mw_str(w, "\"");
}


/* A counter family with a sample per zone and plan. */
static void
ug_m_plan_units(ug_mw_t *w, const ug_metrics_zone_t *zones, size_t n,
    const char *name, const char *help, int overage)
{
    size_t                    i, k;
    const ug_metrics_zone_t  *z;

    if (!ug_m_header(w, zones, n, name, "counter", help, UG_M_ALL)) {
        return;
    }

    for (i = 0; i < n; i++) {
        z = &zones[i];

        for (k = 0; k < z->nplans; k++) {
            ug_m_zone_label(w, name, z);
            ug_mw_str(w, ",plan=\"");
            ug_mw_label(w, z->plans[k].name, z->plans[k].len);
            ug_mw_str(w, "\"} ");
            ug_mw_u64(w, overage ? z->plans[k].overage
                                 : z->plans[k].refunded);
            ug_mw_str(w, "\n");
        }
    }
}


static void
ug_m_render_text(ug_mw_t *w, const ug_metrics_zone_t *zones, size_t n)
{
    size_t                    i, k, f;
    unsigned                  r;
    const ug_m_family_t      *fam;
    const ug_metrics_zone_t  *z;

    if (ug_m_header(w, zones, n, "usage_gate_requests_total", "counter",
                    "Requests decided by the gate, by plan and result.",
                    UG_M_ALL))
    {
        for (i = 0; i < n; i++) {
            z = &zones[i];

            for (k = 0; k < z->nplans; k++) {
                for (r = 0; r < UG_METRIC_RESULTS; r++) {
                    ug_m_zone_label(w, "usage_gate_requests_total", z);
                    ug_mw_str(w, ",plan=\"");
                    ug_mw_label(w, z->plans[k].name, z->plans[k].len);
                    ug_mw_str(w, "\",result=\"");
                    ug_mw_str(w, ug_m_results[r]);
                    ug_mw_str(w, "\"} ");
                    ug_mw_u64(w, z->plans[k].count[r]);
                    ug_mw_str(w, "\n");
                }
            }
        }
    }

    ug_m_plan_units(w, zones, n, "usage_gate_refunded_units_total",
                    "Units given back for calls that failed on our side "
                    "(usage_gate_refund), by plan.", 0);
    ug_m_plan_units(w, zones, n, "usage_gate_overage_units_total",
                    "Units allowed past the included month (billed as "
                    "overage), by plan.", 1);

    for (f = 0; f < sizeof(ug_m_families) / sizeof(ug_m_families[0]); f++) {
        fam = &ug_m_families[f];

        if (!ug_m_header(w, zones, n, fam->name, fam->type, fam->help,
                         fam->need))
        {
            continue;
        }

        for (i = 0; i < n; i++) {
            if (!ug_m_applies(&zones[i], fam->need)) {
                continue;
            }

            ug_m_zone_label(w, fam->name, &zones[i]);
            ug_mw_str(w, "} ");
            ug_mw_u64(w, fam->get(&zones[i]));
            ug_mw_str(w, "\n");
        }
    }

    if (ug_m_header(w, zones, n, "usage_gate_dynamodb_errors_total",
                    "counter", "DynamoDB requests that failed, by AWS "
                    "error type.", UG_M_DYNAMODB))
    {
        for (i = 0; i < n; i++) {
            z = &zones[i];

            if (!z->dynamodb) {
                continue;
            }

            for (k = 0; k < z->nerrors; k++) {
                ug_m_zone_label(w, "usage_gate_dynamodb_errors_total", z);
                ug_mw_str(w, ",type=\"");
                ug_mw_label(w, z->errors[k].type, z->errors[k].len);
                ug_mw_str(w, "\"} ");
                ug_mw_u64(w, z->errors[k].count);
                ug_mw_str(w, "\n");
            }
        }
    }
}


size_t
ug_metrics_text_size(const ug_metrics_zone_t *zones, size_t n)
{
    ug_mw_t  w;

    w.buf = NULL;
    w.size = 0;
    w.len = 0;

    ug_m_render_text(&w, zones, n);

    return w.len;
}


size_t
ug_metrics_text(char *buf, size_t size, const ug_metrics_zone_t *zones,
    size_t n)
{
    ug_mw_t  w;

    w.buf = buf;
    w.size = size;
    w.len = 0;

    ug_m_render_text(&w, zones, n);

    return ug_mw_done(&w);
}


static void
ug_mw_field(ug_mw_t *w, const char *key, uint64_t v)
{
    ug_mw_str(w, "\"");
    ug_mw_str(w, key);
    ug_mw_str(w, "\":");
    ug_mw_u64(w, v);
}


static void
ug_m_render_json(ug_mw_t *w, const ug_metrics_zone_t *zones, size_t n)
{
    size_t                    i, k;
    unsigned                  r;
    const ug_metrics_zone_t  *z;

    ug_mw_str(w, "{\"zones\":[");

    for (i = 0; i < n; i++) {
        z = &zones[i];

        ug_mw_str(w, i ? ",{\"zone\":" : "{\"zone\":");
        ug_mw_json_str(w, z->name, z->len);
        ug_mw_str(w, ",\"requests\":{");

        for (k = 0; k < z->nplans; k++) {
            if (k) {
                ug_mw_str(w, ",");
            }

            ug_mw_json_str(w, z->plans[k].name, z->plans[k].len);
            ug_mw_str(w, ":{");

            for (r = 0; r < UG_METRIC_RESULTS; r++) {
                if (r) {
                    ug_mw_str(w, ",");
                }
                ug_mw_field(w, ug_m_results[r], z->plans[k].count[r]);
            }

            ug_mw_str(w, "}");
        }

        ug_mw_str(w, "},\"refunded_units\":{");

        for (k = 0; k < z->nplans; k++) {
            if (k) {
                ug_mw_str(w, ",");
            }

            ug_mw_json_str(w, z->plans[k].name, z->plans[k].len);
            ug_mw_str(w, ":");
            ug_mw_u64(w, z->plans[k].refunded);
        }

        ug_mw_str(w, "},\"overage_units\":{");

        for (k = 0; k < z->nplans; k++) {
            if (k) {
                ug_mw_str(w, ",");
            }

            ug_mw_json_str(w, z->plans[k].name, z->plans[k].len);
            ug_mw_str(w, ":");
            ug_mw_u64(w, z->plans[k].overage);
        }

        ug_mw_str(w, "},");
        ug_mw_field(w, "owners", z->owners);
        ug_mw_str(w, ",\"zone_bytes\":{");
        ug_mw_field(w, "size", z->bytes_total);
        ug_mw_str(w, ",");
        ug_mw_field(w, "used", z->bytes_used);
        ug_mw_str(w, ",");
        ug_mw_field(w, "free", ug_m_free(z));
        ug_mw_str(w, "},");
        ug_mw_field(w, "evictions", z->evictions);
        ug_mw_str(w, ",");
        ug_mw_field(w, "fail_open", z->fail_open);

        if (z->state) {
            ug_mw_str(w, ",\"state_file\":{");
            ug_mw_field(w, "writes", z->state_writes);
            ug_mw_str(w, ",");
            ug_mw_field(w, "failures", z->state_failures);
            ug_mw_str(w, ",");
            ug_mw_field(w, "last_write", ug_m_time(z->state_last_write));
            ug_mw_str(w, "}");

        } else {
            ug_mw_str(w, ",\"state_file\":null");
        }

        if (z->notify) {
            ug_mw_str(w, ",\"notifications\":{");
            ug_mw_field(w, "sent", z->notify_sent);
            ug_mw_str(w, ",");
            ug_mw_field(w, "failures", z->notify_failures);
            ug_mw_str(w, "}");

        } else {
            ug_mw_str(w, ",\"notifications\":null");
        }

        if (z->dynamodb) {
            ug_mw_str(w, ",\"dynamodb\":{");
            ug_mw_field(w, "sync_backlog", z->sync_backlog);
            ug_mw_str(w, ",");
            ug_mw_field(w, "last_sync", ug_m_time(z->last_sync));
            ug_mw_str(w, ",");
            ug_mw_field(w, "writes", z->writes);
            ug_mw_str(w, ",\"errors\":{");

            for (k = 0; k < z->nerrors; k++) {
                if (k) {
                    ug_mw_str(w, ",");
                }

                ug_mw_json_str(w, z->errors[k].type, z->errors[k].len);
                ug_mw_str(w, ":");
                ug_mw_u64(w, z->errors[k].count);
            }

            ug_mw_str(w, "}}");

        } else {
            ug_mw_str(w, ",\"dynamodb\":null");
        }

        ug_mw_str(w, "}");
    }

    ug_mw_str(w, "]}");
}


size_t
ug_metrics_json_size(const ug_metrics_zone_t *zones, size_t n)
{
    ug_mw_t  w;

    w.buf = NULL;
    w.size = 0;
    w.len = 0;

    ug_m_render_json(&w, zones, n);

    return w.len;
}


size_t
ug_metrics_json(char *buf, size_t size, const ug_metrics_zone_t *zones,
    size_t n)
{
    ug_mw_t  w;

    w.buf = buf;
    w.size = size;
    w.len = 0;

    ug_m_render_json(&w, zones, n);

    return ug_mw_done(&w);
}
