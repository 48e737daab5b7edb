/*
 * The admin API: routes, owners, bodies, the arithmetic of a correction
 * and the JSON answer.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ug_admin.h"
#include "ug_cycle.h"
#include "ug_check.h"
#include "ug_time.h"


#define T_PREFIX  "/usage_gate/admin"
#define T_US      1000000ULL

/* 2024-02-29T23:59:30Z: a leap day, 30 s before March */
#define T_LEAP    1709251170LL


static ug_admin_req_t  t_req;


static int
t_route(const char *method, const char *uri)
{
    return ug_admin_route(&t_req, method, strlen(method), uri, strlen(uri),
                          T_PREFIX, sizeof(T_PREFIX) - 1);
}


static int
t_body(ug_admin_action_t action, const char *body)
{
    memset(&t_req, 0, sizeof(t_req));
    t_req.action = action;

    return ug_admin_body(&t_req, body, strlen(body));
}


static void
t_owner_is(const char *want)
{
    ck_assert_uint_eq(t_req.owner_len, strlen(want));
    ck_assert_mem_eq(t_req.owner, want, strlen(want));
}


START_TEST(test_routes)
{
    ck_assert_int_eq(t_route("GET", T_PREFIX "/owners/alice"), 0);
    ck_assert_int_eq(t_req.action, UG_ADMIN_GET);
    ck_assert_int_eq(t_req.status, 0);
    t_owner_is("alice");
    ck_assert(!ug_admin_needs_body(&t_req));

    ck_assert_int_eq(t_route("PUT", T_PREFIX "/owners/alice"), 0);
    ck_assert_int_eq(t_req.action, UG_ADMIN_SET);
    ck_assert(ug_admin_needs_body(&t_req));

    ck_assert_int_eq(t_route("POST", T_PREFIX "/owners/bob/reset"), 0);
    ck_assert_int_eq(t_req.action, UG_ADMIN_RESET);
    t_owner_is("bob");
    ck_assert(!ug_admin_needs_body(&t_req));

    ck_assert_int_eq(t_route("POST", T_PREFIX "/owners/org-7/adjust"), 0);
    ck_assert_int_eq(t_req.action, UG_ADMIN_ADJUST);
    t_owner_is("org-7");
    ck_assert(ug_admin_needs_body(&t_req));

    /* a query string is ignored */
    ck_assert_int_eq(t_route("GET", T_PREFIX "/owners/alice?x=1/reset"), 0);
    ck_assert_int_eq(t_req.action, UG_ADMIN_GET);
    t_owner_is("alice");

    /* a location name that ends in a slash */
    ck_assert_int_eq(ug_admin_route(&t_req, "GET", 3, "/adm/owners/a", 13,
                                    "/adm/", 5), 0);
    t_owner_is("a");
}
END_TEST


START_TEST(test_owner_decoding)
{
    int   i;
    char  uri[1024];

    /* anonymous owners hold a ':' */
    ck_assert_int_eq(t_route("GET", T_PREFIX
                             "/owners/anon:b109e04d0335ce95dea2a753"), 0);
    t_owner_is("anon:b109e04d0335ce95dea2a753");

    ck_assert_int_eq(t_route("GET", T_PREFIX
                             "/owners/anon%3Ab109e04d0335ce95dea2a753"), 0);
    t_owner_is("anon:b109e04d0335ce95dea2a753");

    ck_assert_int_eq(t_route("GET", T_PREFIX "/owners/anon%3ax"), 0);
    t_owner_is("anon:x");

    /* an encoded slash is part of the owner, not a path separator */
    ck_assert_int_eq(t_route("POST", T_PREFIX "/owners/a%2Fb/reset"), 0);
    t_owner_is("a/b");
    ck_assert_int_eq(t_req.action, UG_ADMIN_RESET);

    ck_assert_int_eq(t_route("GET", T_PREFIX "/owners/%25"), 0);
    t_owner_is("%");

    /* exactly 128 bytes, raw and encoded */
    strcpy(uri, T_PREFIX "/owners/");
    memset(uri + strlen(uri), 'x', 128);
    uri[sizeof(T_PREFIX "/owners/") - 1 + 128] = '\0';
    ck_assert_int_eq(t_route("GET", uri), 0);
    ck_assert_uint_eq(t_req.owner_len, 128);

    strcpy(uri, T_PREFIX "/owners/");
    for (i = 0; i < 128; i++) {
        strcat(uri, "%41");
    }
    ck_assert_int_eq(t_route("GET", uri), 0);
    ck_assert_uint_eq(t_req.owner_len, 128);
    ck_assert_int_eq(t_req.owner[127], 'A');

    /* 129 decoded bytes */
    strcat(uri, "B");
    ck_assert_int_eq(t_route("GET", uri), 400);
    ck_assert_ptr_nonnull(strstr(t_req.detail, "longer than 128"));
    ck_assert_int_eq(t_req.action, UG_ADMIN_NONE);
}
END_TEST


START_TEST(test_bad_owners)
{
    size_t  i;

    static const char  *bad[] = {
        T_PREFIX "/owners/",
        T_PREFIX "/owners/%",
        T_PREFIX "/owners/a%",
        T_PREFIX "/owners/a%4",
        T_PREFIX "/owners/%zz",
        T_PREFIX "/owners/%4g",
        T_PREFIX "/owners/%g4",
        T_PREFIX "/owners/a%20b",
        T_PREFIX "/owners/a%00b",
        T_PREFIX "/owners/a%0Ab",
        T_PREFIX "/owners/a%7Fb",
        T_PREFIX "/owners/a%C3%A9",
        T_PREFIX "/owners/a\x80",
        T_PREFIX "/owners/a\tb",
        T_PREFIX "/owners/a b",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(t_route("GET", bad[i]) == 400, "owner %zu passed", i);
        ck_assert_int_eq(t_req.status, 400);
        ck_assert_int_eq(t_req.action, UG_ADMIN_NONE);
        ck_assert_msg(strncmp(t_req.detail, "owner ", 6) == 0,
                      "detail \"%s\"", t_req.detail);
    }

    ck_assert_int_eq(t_route("GET", T_PREFIX "/owners/"), 400);
    ck_assert_str_eq(t_req.detail, "owner is empty");

    ck_assert_int_eq(t_route("GET", T_PREFIX "/owners/a%2"), 400);
    ck_assert_str_eq(t_req.detail, "owner has a malformed percent escape");

    ck_assert_int_eq(t_route("GET", T_PREFIX "/owners/a%20b"), 400);
    ck_assert_str_eq(t_req.detail,
                     "owner may hold only printable ASCII without spaces");
}
END_TEST


START_TEST(test_unknown_paths)
{
    size_t  i;

    static const char  *bad[] = {
        "",
        "/",
        "/usage_gate",
        T_PREFIX,
        T_PREFIX "/",
        T_PREFIX "x/owners/a",
        T_PREFIX "/owners",
        T_PREFIX "/owner/a",
        T_PREFIX "/OWNERS/a",
        T_PREFIX "//owners/a",
        T_PREFIX "/owners/a/",
        T_PREFIX "/owners/a/b",
        T_PREFIX "/owners/a/reset/",
        T_PREFIX "/owners/a/resetx",
        T_PREFIX "/owners/a/adjust/x",
        T_PREFIX "/owners/a/b/reset",
        T_PREFIX "/metrics",
        "/usage_gate/%61dmin/owners/a",
        /* a bad owner under an unknown path is still 404 */
        T_PREFIX "/owners/%zz/delete",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(t_route("GET", bad[i]) == 404, "path %zu routed", i);
        ck_assert_int_eq(t_req.status, 404);
        ck_assert_int_eq(t_req.action, UG_ADMIN_NONE);
        ck_assert_str_eq(t_req.detail, "unknown admin path");
        ck_assert_msg(t_route("POST", bad[i]) == 404, "path %zu routed", i);
    }
}
END_TEST


START_TEST(test_wrong_methods)
{
    size_t  i;

    static const char  *owner_methods[] = {
        "POST", "DELETE", "HEAD", "PATCH", "get", "GETX", "GE", ""
    };
    static const char  *action_methods[] = {
        "GET", "PUT", "DELETE", "post", "POSTS", ""
    };

    for (i = 0; i < sizeof(owner_methods) / sizeof(owner_methods[0]); i++) {
        ck_assert_msg(t_route(owner_methods[i], T_PREFIX "/owners/a") == 405,
                      "%s allowed", owner_methods[i]);
        ck_assert_str_eq(t_req.allow, "GET, PUT");
        ck_assert_int_eq(t_req.action, UG_ADMIN_NONE);
        ck_assert_ptr_nonnull(strstr(t_req.detail, "GET or PUT"));
    }

    for (i = 0; i < sizeof(action_methods) / sizeof(action_methods[0]); i++) {
        ck_assert_msg(t_route(action_methods[i],
                              T_PREFIX "/owners/a/reset") == 405,
                      "%s allowed", action_methods[i]);
        ck_assert_str_eq(t_req.allow, "POST");
        ck_assert_int_eq(t_req.action, UG_ADMIN_NONE);

        ck_assert_int_eq(t_route(action_methods[i],
                                 T_PREFIX "/owners/a/adjust"), 405);
        ck_assert_str_eq(t_req.allow, "POST");
    }

    /* the method is judged before the owner */
    ck_assert_int_eq(t_route("DELETE", T_PREFIX "/owners/%zz"), 405);

    /* and a successful route leaves no Allow behind */
    ck_assert_int_eq(t_route("GET", T_PREFIX "/owners/a"), 0);
    ck_assert_ptr_null(t_req.allow);
}
END_TEST


START_TEST(test_bodies_ok)
{
    char  big[UG_ADMIN_BODY_MAX + 1];

    ck_assert_int_eq(t_body(UG_ADMIN_ADJUST, "{\"delta\": -5}"), 0);
    ck_assert_int_eq(t_req.value, -5);

    ck_assert_int_eq(t_body(UG_ADMIN_ADJUST, " { \"delta\" : 7 } \n"), 0);
    ck_assert_int_eq(t_req.value, 7);

    ck_assert_int_eq(t_body(UG_ADMIN_ADJUST, "{\"delta\":0}"), 0);
    ck_assert_int_eq(t_req.value, 0);

    ck_assert_int_eq(t_body(UG_ADMIN_ADJUST, "{\"delta\":-0}"), 0);
    ck_assert_int_eq(t_req.value, 0);

    ck_assert_int_eq(t_body(UG_ADMIN_ADJUST, "{\"delta\":1000000000000}"), 0);
    ck_assert_int_eq(t_req.value, UG_ADMIN_VALUE_MAX);

    ck_assert_int_eq(t_body(UG_ADMIN_ADJUST, "{\"delta\":-1000000000000}"),
                     0);
    ck_assert_int_eq(t_req.value, -UG_ADMIN_VALUE_MAX);

    ck_assert_int_eq(t_body(UG_ADMIN_SET, "{\"used\": 15}"), 0);
    ck_assert_int_eq(t_req.value, 15);

    ck_assert_int_eq(t_body(UG_ADMIN_SET, "{\"used\": 0}"), 0);
    ck_assert_int_eq(t_req.value, 0);

    ck_assert_int_eq(t_body(UG_ADMIN_SET, "{\"used\":1000000000000}"), 0);
    ck_assert_int_eq(t_req.value, UG_ADMIN_VALUE_MAX);

    /* exactly the largest body, padded with whitespace */
    memset(big, ' ', UG_ADMIN_BODY_MAX);
    memcpy(big, "{\"used\":3}", 10);
    big[UG_ADMIN_BODY_MAX] = '\0';
    ck_assert_int_eq(t_body(UG_ADMIN_SET, big), 0);
    ck_assert_int_eq(t_req.value, 3);

    /* actions without a body ignore one */
    ck_assert_int_eq(t_body(UG_ADMIN_GET, "garbage"), 0);
    ck_assert_int_eq(t_body(UG_ADMIN_RESET, "{\"delta\": 1}"), 0);
    ck_assert_int_eq(t_req.value, 0);
}
END_TEST


START_TEST(test_bodies_bad)
{
    size_t  i;
    char    big[UG_ADMIN_BODY_MAX + 2];

    static const char  *adjust[] = {
        "",
        " ",
        "{}",
        "[]",
        "[{\"delta\":1}]",
        "5",
        "\"delta\"",
        "null",
        "{\"delta\":1.0}",
        "{\"delta\":1e3}",
        "{\"delta\":\"5\"}",
        "{\"delta\":null}",
        "{\"delta\":true}",
        "{\"delta\":[1]}",
        "{\"delta\":{\"v\":1}}",
        "{\"used\":5}",
        "{\"Delta\":5}",
        "{\"delta\":1,\"x\":2}",
        "{\"delta\":1,\"delta\":2}",
        "{\"delta\":1000000000001}",
        "{\"delta\":-1000000000001}",
        "{\"delta\":9223372036854775807}",
        "{\"delta\":-9223372036854775808}",
        "{\"delta\":99999999999999999999}",
        "{\"delta\":1} x",
        "{\"delta\":1}{}",
        "{\"delta\":01}",
        "{\"delta\":+1}",
        "{\"delta\":0x10}",
        "{\"delta\":1",
        "{'delta':1}",
        "{\"d\xfflta\":1}",
        "{\"delta\":1,}",
    };

    static const char  *set[] = {
        "{\"used\":-1}",
        "{\"used\":1000000000001}",
        "{\"used\":-9223372036854775808}",
        "{\"delta\":5}",
        "{\"used\":5.5}",
        "{\"used\":\"5\"}",
        "{\"used\":5,\"delta\":1}",
    };

    for (i = 0; i < sizeof(adjust) / sizeof(adjust[0]); i++) {
        ck_assert_msg(t_body(UG_ADMIN_ADJUST, adjust[i]) == 400,
                      "adjust body %zu accepted: %s", i, adjust[i]);
        ck_assert_int_eq(t_req.status, 400);
        ck_assert_int_eq(t_req.value, 0);
        ck_assert(t_req.detail[0] != '\0');
    }

    for (i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
        ck_assert_msg(t_body(UG_ADMIN_SET, set[i]) == 400,
                      "set body %zu accepted: %s", i, set[i]);
        ck_assert_int_eq(t_req.value, 0);
    }

    /* a NUL inside the body */
    memset(&t_req, 0, sizeof(t_req));
    t_req.action = UG_ADMIN_ADJUST;
    ck_assert_int_eq(ug_admin_body(&t_req, "{\"delta\":1}\0", 12), 400);
    ck_assert_int_eq(ug_admin_body(&t_req, "{\"del\0ta\":1}", 12), 400);

    /* the details say what is wrong */
    t_body(UG_ADMIN_ADJUST, "{\"delta\":1.5}");
    ck_assert_str_eq(t_req.detail, "\"delta\" must be an integer");
    t_body(UG_ADMIN_ADJUST, "{\"delta\":1,\"x\":2}");
    ck_assert_str_eq(t_req.detail,
                     "body must hold exactly one field, \"delta\"");
    t_body(UG_ADMIN_SET, "[]");
    ck_assert_str_eq(t_req.detail, "body must be a JSON object: "
                     "{\"used\": N}");
    t_body(UG_ADMIN_SET, "{\"used\":-1}");
    ck_assert_str_eq(t_req.detail,
                     "\"used\" must be between 0 and 1000000000000");
    t_body(UG_ADMIN_ADJUST, "{\"delta\":2000000000000}");
    ck_assert_str_eq(t_req.detail, "\"delta\" must be between "
                     "-1000000000000 and 1000000000000");
    t_body(UG_ADMIN_ADJUST, "{\"delta\":");
    ck_assert_ptr_nonnull(strstr(t_req.detail, "not valid JSON"));

    /* one byte over the bound: 413, whatever the content */
    memset(big, ' ', sizeof(big));
    memcpy(big, "{\"used\":3}", 10);
    big[UG_ADMIN_BODY_MAX + 1] = '\0';
    ck_assert_int_eq(t_body(UG_ADMIN_SET, big), 413);
    ck_assert_int_eq(t_req.value, 0);
    ck_assert_ptr_nonnull(strstr(t_req.detail, "larger than 4096"));

    /* deep nesting within the bound is refused, not a stack overflow */
    memset(big, '[', UG_ADMIN_BODY_MAX);
    big[UG_ADMIN_BODY_MAX] = '\0';
    ck_assert_int_eq(t_body(UG_ADMIN_SET, big), 400);
}
END_TEST


static ug_admin_req_t
t_mk(ug_admin_action_t action, int64_t value)
{
    ug_admin_req_t  r;

    memset(&r, 0, sizeof(r));
    r.action = action;
    r.value = value;

    return r;
}


START_TEST(test_apply)
{
    uint64_t        n;
    const char     *detail;
    ug_admin_req_t  r;

    r = t_mk(UG_ADMIN_GET, 0);
    ck_assert_int_eq(ug_admin_apply(&r, 12, &n, &detail), 0);
    ck_assert_uint_eq(n, 12);

    r = t_mk(UG_ADMIN_RESET, 0);
    ck_assert_int_eq(ug_admin_apply(&r, 12, &n, &detail), 0);
    ck_assert_uint_eq(n, 0);

    r = t_mk(UG_ADMIN_SET, 15);
    ck_assert_int_eq(ug_admin_apply(&r, 12, &n, &detail), 0);
    ck_assert_uint_eq(n, 15);

    r = t_mk(UG_ADMIN_ADJUST, -5);
    ck_assert_int_eq(ug_admin_apply(&r, 5, &n, &detail), 0);
    ck_assert_uint_eq(n, 0);

    n = 77;
    detail = NULL;
    ck_assert_int_eq(ug_admin_apply(&r, 4, &n, &detail), 400);
    ck_assert_uint_eq(n, 77);
    ck_assert_str_eq(detail, "the adjustment would make usage negative");

    r = t_mk(UG_ADMIN_ADJUST, 3);
    ck_assert_int_eq(ug_admin_apply(&r, 5, &n, &detail), 0);
    ck_assert_uint_eq(n, 8);

    r = t_mk(UG_ADMIN_ADJUST, 1);
    ck_assert_int_eq(ug_admin_apply(&r, UG_ADMIN_VALUE_MAX - 1, &n,
                                    &detail), 0);
    ck_assert_uint_eq(n, UG_ADMIN_VALUE_MAX);

    n = 77;
    ck_assert_int_eq(ug_admin_apply(&r, UG_ADMIN_VALUE_MAX, &n, &detail),
                     400);
    ck_assert_uint_eq(n, 77);
    ck_assert_ptr_nonnull(strstr(detail, "past the largest"));

    /* extremes a parsed body never holds, still without overflow */
    r = t_mk(UG_ADMIN_ADJUST, INT64_MAX);
    ck_assert_int_eq(ug_admin_apply(&r, UINT64_MAX, &n, &detail), 400);
    ck_assert_int_eq(ug_admin_apply(&r, 0, &n, &detail), 400);

    r = t_mk(UG_ADMIN_ADJUST, INT64_MIN);
    ck_assert_int_eq(ug_admin_apply(&r, UINT64_MAX, &n, &detail), 0);
    ck_assert_uint_eq(n, UINT64_MAX - (1ULL << 63));
    ck_assert_int_eq(ug_admin_apply(&r, 1ULL << 62, &n, &detail), 400);

    r = t_mk(UG_ADMIN_ADJUST, 0);
    ck_assert_int_eq(ug_admin_apply(&r, UINT64_MAX, &n, &detail), 0);
    ck_assert_uint_eq(n, UINT64_MAX);

    r = t_mk(UG_ADMIN_SET, -1);
    ck_assert_int_eq(ug_admin_apply(&r, 0, &n, &detail), 400);
    r = t_mk(UG_ADMIN_SET, UG_ADMIN_VALUE_MAX + 1);
    ck_assert_int_eq(ug_admin_apply(&r, 0, &n, &detail), 400);

    r = t_mk(UG_ADMIN_NONE, 0);
    ck_assert_int_eq(ug_admin_apply(&r, 0, &n, &detail), 400);
}
END_TEST


START_TEST(test_apply_counter)
{
    int32_t         m;
    uint32_t        minute;
    uint64_t        now;
    const char     *detail;
    ug_counter_t    c, before;
    ug_admin_req_t  r;

    now = (uint64_t) T_LEAP * T_US;
    m = ug_month_index(T_LEAP);
    minute = (uint32_t) (T_LEAP / 60);

    memset(&c, 0, sizeof(c));
    c.month = m;
    c.month_used = 10;
    c.minute = minute;
    c.minute_used = 4;
    c.tat_us = now + 5 * T_US;

    r = t_mk(UG_ADMIN_ADJUST, -3);
    ck_assert_int_eq(ug_admin_apply_counter(&r, &c, now, &detail), 0);
    ck_assert_uint_eq(c.month_used, 7);
    ck_assert_uint_eq(c.minute_used, 4);
    ck_assert_uint_eq(c.tat_us, now + 5 * T_US);

    /* refused: the counter is untouched, byte for byte */
    before = c;
    r = t_mk(UG_ADMIN_ADJUST, -8);
    ck_assert_int_eq(ug_admin_apply_counter(&r, &c, now, &detail), 400);
    ck_assert_mem_eq(&c, &before, sizeof(c));

    r = t_mk(UG_ADMIN_SET, 20);
    ck_assert_int_eq(ug_admin_apply_counter(&r, &c, now, &detail), 0);
    ck_assert_uint_eq(c.month_used, 20);

    r = t_mk(UG_ADMIN_RESET, 0);
    ck_assert_int_eq(ug_admin_apply_counter(&r, &c, now, &detail), 0);
    ck_assert_uint_eq(c.month_used, 0);
    ck_assert_uint_eq(c.minute_used, 0);
    ck_assert_uint_eq(c.tat_us, 0);
    ck_assert_int_eq(c.month, m);

    /* a counter from last month counts from zero: -1 is refused, +2 is
     * 2 this month */
    c.month = m - 1;
    c.month_used = 50;
    before = c;
    r = t_mk(UG_ADMIN_ADJUST, -1);
    ck_assert_int_eq(ug_admin_apply_counter(&r, &c, now, &detail), 400);
    ck_assert_mem_eq(&c, &before, sizeof(c));

    r = t_mk(UG_ADMIN_ADJUST, 2);
    ck_assert_int_eq(ug_admin_apply_counter(&r, &c, now, &detail), 0);
    ck_assert_int_eq(c.month, m);
    ck_assert_uint_eq(c.month_used, 2);

    /* GET changes nothing, not even a stale month */
    c.month = m - 1;
    before = c;
    r = t_mk(UG_ADMIN_GET, 0);
    ck_assert_int_eq(ug_admin_apply_counter(&r, &c, now, &detail), 0);
    ck_assert_mem_eq(&c, &before, sizeof(c));

    /* 30 s later it is March: the same counter reads as a new month */
    c.month = m;
    c.month_used = 9;
    r = t_mk(UG_ADMIN_ADJUST, 1);
    ck_assert_int_eq(ug_admin_apply_counter(&r, &c, now + 30 * T_US,
                                            &detail), 0);
    ck_assert_int_eq(c.month, m + 1);
    ck_assert_uint_eq(c.month_used, 1);
}
END_TEST


/*
 * An owner billed on an anchored cycle (from the 15th): admin changes and
 * reads follow that cycle across the calendar month's end, not the 1st.
 */
START_TEST(test_anchored_cycle)
{
    char            buf[UG_ADMIN_RENDER_MAX];
    size_t          n;
    int64_t         march15;
    uint64_t        now;
    const char     *detail;
    ug_cycle_t      cy;
    ug_counter_t    c;
    ug_admin_req_t  r;

    ug_cycle_at(15, T_LEAP, &cy);
    ck_assert_int_ne(cy.id, ug_month_index(T_LEAP));

    memset(&c, 0, sizeof(c));
    c.month = cy.id;
    c.month_used = 8;

    /* 1 March, 00:00:30: still the cycle that began on 15 February */
    now = (uint64_t) (T_LEAP + 60) * T_US;
    r = t_mk(UG_ADMIN_ADJUST, 1);
    ck_assert_int_eq(ug_admin_apply_counter(&r, &c, now, &detail), 0);
    ck_assert_int_eq(c.month, cy.id);
    ck_assert_uint_eq(c.month_used, 9);

    march15 = cy.end;
    n = ug_admin_render(buf, sizeof(buf), (const unsigned char *) "bob", 3,
                        &c, now);
    ck_assert_uint_gt(n, 0);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "{\"owner\":\"bob\",\"month\":\"2024-02\","
                     "\"used\":9,\"month_reset_seconds\":1209570,"
                     "\"minute\":{\"bucket\":\"202403010000\",\"used\":0}}");
    ck_assert_int_eq(march15 - (T_LEAP + 60), 1209570);

    /* once that cycle has ended its count is closed: a change starts from
     * zero */
    now = (uint64_t) (march15 + 10) * T_US;
    n = ug_admin_render(buf, sizeof(buf), (const unsigned char *) "bob", 3,
                        &c, now);
    buf[n] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, "\"used\":0,"));

    r = t_mk(UG_ADMIN_ADJUST, 2);
    ck_assert_int_eq(ug_admin_apply_counter(&r, &c, now, &detail), 0);
    ck_assert_int_ne(c.month, cy.id);
    ck_assert_uint_eq(c.month_used, 2);
}
END_TEST


START_TEST(test_render)
{
    char           buf[UG_ADMIN_RENDER_MAX];
    size_t         n;
    json_t        *j, *mi;
    json_error_t   jerr;
    ug_counter_t   c;
    unsigned char  owner[UG_OWNER_MAX];

    memset(&c, 0, sizeof(c));
    c.month = ug_month_index(T_LEAP);
    c.month_used = 17;
    c.minute = (uint32_t) (T_LEAP / 60);
    c.minute_used = 3;

    n = ug_admin_render(buf, sizeof(buf), (const unsigned char *) "alice",
                        5, &c, (uint64_t) T_LEAP * T_US + 999999);
    ck_assert_uint_gt(n, 0);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "{\"owner\":\"alice\",\"month\":\"2024-02\","
                     "\"used\":17,\"month_reset_seconds\":30,"
                     "\"minute\":{\"bucket\":\"202402292359\",\"used\":3}}");

    /* a minute later: March, a new month and minute */
    n = ug_admin_render(buf, sizeof(buf), (const unsigned char *) "alice",
                        5, &c, (uint64_t) (T_LEAP + 60) * T_US);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "{\"owner\":\"alice\",\"month\":\"2024-03\","
                     "\"used\":0,\"month_reset_seconds\":2678370,"
                     "\"minute\":{\"bucket\":\"202403010000\",\"used\":0}}");

    /* the longest owner, every byte needing an escape */
    memset(owner, '"', sizeof(owner));
    n = ug_admin_render(buf, sizeof(buf), owner, sizeof(owner), &c,
                        (uint64_t) T_LEAP * T_US);
    ck_assert_uint_gt(n, 0);
    j = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &jerr);
    ck_assert_msg(j != NULL, "%s", jerr.text);
    ck_assert_uint_eq(json_string_length(json_object_get(j, "owner")), 128);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "used")), 17);
    mi = json_object_get(j, "minute");
    ck_assert_str_eq(json_string_value(json_object_get(mi, "bucket")),
                     "202402292359");
    ck_assert_int_eq(json_integer_value(json_object_get(mi, "used")), 3);
    json_decref(j);

    /* too small a buffer */
    ck_assert_uint_eq(ug_admin_render(buf, 20, (const unsigned char *) "a",
                                      1, &c, (uint64_t) T_LEAP * T_US), 0);
    ck_assert_uint_eq(ug_admin_render(buf, sizeof(buf), owner,
                                      UG_OWNER_MAX + 1, &c,
                                      (uint64_t) T_LEAP * T_US), 0);
}
END_TEST


static Suite *
admin_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("admin");
    tc = tcase_create("core");

    tcase_add_test(tc, test_routes);
    tcase_add_test(tc, test_owner_decoding);
    tcase_add_test(tc, test_bad_owners);
    tcase_add_test(tc, test_unknown_paths);
    tcase_add_test(tc, test_wrong_methods);
    tcase_add_test(tc, test_bodies_ok);
    tcase_add_test(tc, test_bodies_bad);
    tcase_add_test(tc, test_apply);
    tcase_add_test(tc, test_apply_counter);
    tcase_add_test(tc, test_render);
    tcase_add_test(tc, test_anchored_cycle);
    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    return ug_check_run(admin_suite());
}
