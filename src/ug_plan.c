#include <string.h>

#include "ug_plan.h"


static int
ug_plan_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}


static int
ug_plan_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
           || c == '_' || c == '-';
}


int
ug_plan_find(const ug_plan_table_t *t, const char *name, size_t len)
{
    unsigned  i;
    size_t    k;

    for (i = 0; i < t->n; i++) {
        if (t->plans[i].len != len) {
            continue;
        }

        for (k = 0; k < len; k++) {
            if (ug_plan_lower((unsigned char) name[k]) != t->plans[i].name[k])
            {
                break;
            }
        }

        if (k == len) {
            return (int) i;
        }
    }

    return -1;
}


int
ug_plan_add(ug_plan_table_t *t, const char *name, size_t len,
    const ug_limits_t *limits)
{
    return ug_plan_add_overage(t, name, len, limits, 0);
}


int
ug_plan_add_overage(ug_plan_table_t *t, const char *name, size_t len,
    const ug_limits_t *limits, int64_t overage)
{
    ug_plan_t  *plan;
    size_t      k;

    if (len == 0 || len > UG_PLAN_NAME_MAX) {
        return UG_PLAN_BAD_NAME;
    }

    for (k = 0; k < len; k++) {
        if (!ug_plan_name_char(ug_plan_lower((unsigned char) name[k]))) {
            return UG_PLAN_BAD_NAME;
        }
    }

    if (ug_plan_find(t, name, len) >= 0) {
        return UG_PLAN_DUPLICATE;
    }

    /* a band is counted from the included month: there must be one */
    if (overage != 0 && limits->month == UG_OFF) {
        return UG_PLAN_OVERAGE;
    }

    if (t->n == UG_PLANS_MAX) {
        return UG_PLAN_TOO_MANY;
    }

    plan = &t->plans[t->n];

    for (k = 0; k < len; k++) {
        plan->name[k] = (char) ug_plan_lower((unsigned char) name[k]);
    }

    plan->name[len] = '\0';
    plan->len = len;
    plan->limits = *limits;
    plan->overage = overage < 0 ? UG_OFF : overage;

    return (int) t->n++;
}


void
ug_plan_table_default(ug_plan_table_t *t)
{
    static const struct {
        const char  *name;
        int64_t      month;
        int64_t      minute;
    } seed[] = {
        { "free",       20,     30 },
        { "pro",        UG_OFF, 120 },
        { "team",       UG_OFF, 300 },
        { "enterprise", UG_OFF, 600 },
    };

    ug_limits_t  limits;
    size_t       i;

    t->n = 0;

    for (i = 0; i < sizeof(seed) / sizeof(seed[0]); i++) {
        limits.month = seed[i].month;
        limits.minute = seed[i].minute;
        (void) ug_plan_add(t, seed[i].name, strlen(seed[i].name), &limits);
    }
}


int
ug_parse_limit(const char *p, size_t len, int64_t *out)
{
    int64_t  v;
    size_t   i;

    if (len == 3 && memcmp(p, "off", 3) == 0) {
        *out = UG_OFF;
        return 0;
    }

    if (len == 0 || len > 13) {
        return -1;
    }

    v = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }

        v = v * 10 + (p[i] - '0');
    }

    if (v > UG_LIMIT_MAX) {
        return -1;
    }

    *out = v;

    return 0;
}


int
ug_parse_overage(const char *p, size_t len, int64_t *out)
{
    if (len == 9 && memcmp(p, "unlimited", 9) == 0) {
        *out = UG_OFF;
        return 0;
    }

    if (len == 3 && memcmp(p, "off", 3) == 0) {
        return -1;
    }

    return ug_parse_limit(p, len, out);
}


const char *
ug_plan_strerror(int rc)
{
    switch (rc) {
    case UG_PLAN_BAD_NAME:
        return "a plan name is 1 to 32 characters of a-z, 0-9, \"_\" or \"-\"";
    case UG_PLAN_DUPLICATE:
        return "the plan is already defined";
    case UG_PLAN_TOO_MANY:
        return "too many plans (at most 32)";
    case UG_PLAN_OVERAGE:
        return "an overage band needs a monthly quota (month=N)";
    default:
        return "ok";
    }
}
