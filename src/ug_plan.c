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
    default:
        return "ok";
    }
}
