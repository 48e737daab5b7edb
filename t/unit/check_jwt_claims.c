/*
 * The claims of a verified token (ug_jwt_claims.c): exp and nbf with
 * leeway, issuer, audience and azp, the subject, and the org and plan
 * claims, with Clerk's v1 and v2 session tokens read by the defaults.
 */

#include "check_jwt.h"


START_TEST(test_expiry_and_leeway)
{
    char              tok[TOKBUF], p[256];
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);
    ck_assert_int_eq(pol.leeway, 60);

    snprintf(p, sizeof(p), "{\"sub\":\"u\",\"exp\":%lld}", NOW - 61);
    mint(tok, UG_JWT_ALG_ES256, NULL, p);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_EXPIRED);
    ck_assert_str_eq(detail_of(keys, &pol, tok, NOW), "token expired");

    /* exp - now within the leeway: still accepted */
    snprintf(p, sizeof(p), "{\"sub\":\"u\",\"exp\":%lld}", NOW - 59);
    mint(tok, UG_JWT_ALG_ES256, NULL, p);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    /* the leeway's last second is out: valid only before exp + leeway */
    snprintf(p, sizeof(p), "{\"sub\":\"u\",\"exp\":%lld}", NOW - 60);
    mint(tok, UG_JWT_ALG_ES256, NULL, p);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_EXPIRED);

    pol.leeway = 0;
    snprintf(p, sizeof(p), "{\"sub\":\"u\",\"exp\":%lld}", NOW);
    mint(tok, UG_JWT_ALG_ES256, NULL, p);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_EXPIRED);
    ASSERT_RC(verify(keys, &pol, tok, NOW - 1, NULL), UG_JWT_OK);

    /* a negative leeway counts as none */
    pol.leeway = -30;
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_EXPIRED);
    ASSERT_RC(verify(keys, &pol, tok, NOW - 1, NULL), UG_JWT_OK);
    pol.leeway = 0;

    /* a fractional exp counts down to the whole second */
    snprintf(p, sizeof(p), "{\"sub\":\"u\",\"exp\":%lld.5}", NOW);
    mint(tok, UG_JWT_ALG_ES256, NULL, p);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_EXPIRED);

    /* absurd values do not wrap around */
    mint(tok, UG_JWT_ALG_ES256, NULL,
         "{\"sub\":\"u\",\"exp\":-9223372036854775807}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_EXPIRED);
    mint(tok, UG_JWT_ALG_ES256, NULL, "{\"sub\":\"u\",\"exp\":-1e300}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_EXPIRED);
    mint(tok, UG_JWT_ALG_ES256, NULL, "{\"sub\":\"u\",\"exp\":1e300}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_exp_must_be_number)
{
    char              tok[TOKBUF];
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    mint(tok, UG_JWT_ALG_RS256, NULL, "{\"sub\":\"u\",\"exp\":\"2099\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_MALFORMED);
    ck_assert_str_eq(detail_of(keys, &pol, tok, NOW),
                     "malformed token: exp is not a number");

    mint(tok, UG_JWT_ALG_RS256, NULL, "{\"sub\":\"u\",\"exp\":null}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_MALFORMED);

    mint(tok, UG_JWT_ALG_RS256, NULL, "{\"sub\":\"u\",\"nbf\":true}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_MALFORMED);

    mint(tok, UG_JWT_ALG_RS256, NULL, "{\"sub\":\"u\",\"nbf\":[1]}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_MALFORMED);

    /* no exp at all is allowed (the cache caps how long it is kept) */
    mint(tok, UG_JWT_ALG_RS256, NULL, "{\"sub\":\"u\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_nbf_and_leeway)
{
    char              tok[TOKBUF], p[256];
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    snprintf(p, sizeof(p), "{\"sub\":\"u\",\"nbf\":%lld,\"exp\":%lld}",
             NOW + 61, NOW + 3600);
    mint(tok, UG_JWT_ALG_EDDSA, NULL, p);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_NOT_YET_VALID);
    ck_assert_str_eq(detail_of(keys, &pol, tok, NOW),
                     "token is not valid yet (nbf)");
    ASSERT_RC(verify(keys, &pol, tok, NOW + 1, NULL), UG_JWT_OK);

    snprintf(p, sizeof(p), "{\"sub\":\"u\",\"nbf\":%lld}", NOW + 59);
    mint(tok, UG_JWT_ALG_EDDSA, NULL, p);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    pol.leeway = 0;
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_NOT_YET_VALID);
    ASSERT_RC(verify(keys, &pol, tok, NOW + 59, NULL), UG_JWT_OK);

    /* a fractional nbf counts up */
    snprintf(p, sizeof(p), "{\"sub\":\"u\",\"nbf\":%lld.25}", NOW);
    mint(tok, UG_JWT_ALG_EDDSA, NULL, p);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_NOT_YET_VALID);
    ASSERT_RC(verify(keys, &pol, tok, NOW + 1, NULL), UG_JWT_OK);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_issuer)
{
    char              tok[TOKBUF];
    const char       *iss[] = { "https://clerk.example.com",
                                "https://other.example" };
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    mint(tok, UG_JWT_ALG_RS256, NULL,
         "{\"sub\":\"u\",\"iss\":\"https://evil.example\"}");

    /* not configured: not checked */
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    pol.issuers = iss;
    pol.n_issuers = 2;
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_BAD_ISSUER);
    ck_assert_str_eq(detail_of(keys, &pol, tok, NOW),
                     "issuer is not accepted");

    mint(tok, UG_JWT_ALG_RS256, NULL,
         "{\"sub\":\"u\",\"iss\":\"https://other.example\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    /* exact match only: no prefix, no missing iss, no array */
    mint(tok, UG_JWT_ALG_RS256, NULL,
         "{\"sub\":\"u\",\"iss\":\"https://other.example/\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_BAD_ISSUER);
    mint(tok, UG_JWT_ALG_RS256, NULL, "{\"sub\":\"u\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_BAD_ISSUER);
    mint(tok, UG_JWT_ALG_RS256, NULL,
         "{\"sub\":\"u\",\"iss\":[\"https://other.example\"]}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_BAD_ISSUER);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_audience_and_azp)
{
    char              tok[TOKBUF];
    const char       *aud[] = { "api://ask", "https://app.example.com" };
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);
    pol.audiences = aud;
    pol.n_audiences = 2;

    mint(tok, UG_JWT_ALG_ES384, NULL, "{\"sub\":\"u\",\"aud\":\"api://ask\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    mint(tok, UG_JWT_ALG_ES384, NULL,
         "{\"sub\":\"u\",\"aud\":[\"x\",\"https://app.example.com\"]}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    mint(tok, UG_JWT_ALG_ES384, NULL,
         "{\"sub\":\"u\",\"aud\":\"api://other\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_BAD_AUDIENCE);
    ck_assert_str_eq(detail_of(keys, &pol, tok, NOW),
                     "audience is not accepted");

    mint(tok, UG_JWT_ALG_ES384, NULL, "{\"sub\":\"u\",\"aud\":[\"a\",1,{}]}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_BAD_AUDIENCE);

    mint(tok, UG_JWT_ALG_ES384, NULL, "{\"sub\":\"u\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_BAD_AUDIENCE);

    /* Clerk: the authorized party stands for the audience */
    mint(tok, UG_JWT_ALG_ES384, NULL,
         "{\"sub\":\"u\",\"azp\":\"https://app.example.com\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    mint(tok, UG_JWT_ALG_ES384, NULL,
         "{\"sub\":\"u\",\"azp\":\"https://evil.example.com\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_BAD_AUDIENCE);

    ug_jwt_keys_free(keys);
}
END_TEST


/* claims */


START_TEST(test_subject)
{
    char              tok[TOKBUF], p[512];
    ug_jwt_keys_t    *keys;
    ug_jwt_claims_t   c;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    mint(tok, UG_JWT_ALG_RS256, NULL, "{\"exp\":1900000000}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_NO_SUBJECT);
    ck_assert_str_eq(detail_of(keys, &pol, tok, NOW),
                     "token has no subject (sub or sid)");

    /* Clerk session tokens: sid when there is no sub */
    mint(tok, UG_JWT_ALG_RS256, NULL, "{\"sid\":\"sess_123\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_OK);
    ck_assert_str_eq(c.sub, "sess_123");

    mint(tok, UG_JWT_ALG_RS256, NULL, "{\"sub\":\"user_1\",\"sid\":\"s\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_OK);
    ck_assert_str_eq(c.sub, "user_1");

    mint(tok, UG_JWT_ALG_RS256, NULL, "{\"sub\":null,\"sid\":\"s2\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_OK);
    ck_assert_str_eq(c.sub, "s2");

    mint(tok, UG_JWT_ALG_RS256, NULL, "{\"sub\":\"\",\"sid\":\"s3\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_OK);
    ck_assert_str_eq(c.sub, "s3");

    /* ids a header could not carry are refused, not trimmed */
    mint(tok, UG_JWT_ALG_RS256, NULL, "{\"sub\":\"user 1\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_MALFORMED);
    mint(tok, UG_JWT_ALG_RS256, NULL, "{\"sub\":\"user\\r\\nX-Plan: pro\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_MALFORMED);
    mint(tok, UG_JWT_ALG_RS256, NULL, "{\"sub\":12345}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_MALFORMED);
    mint(tok, UG_JWT_ALG_RS256, NULL, "{\"sub\":\"\\u00e9t\\u00e9\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_MALFORMED);

    snprintf(p, sizeof(p), "{\"sub\":\"%0128d\"}", 7);
    mint(tok, UG_JWT_ALG_RS256, NULL, p);
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_OK);
    ck_assert_uint_eq(c.sub_len, 128);

    snprintf(p, sizeof(p), "{\"sub\":\"%0129d\"}", 7);
    mint(tok, UG_JWT_ALG_RS256, NULL, p);
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_MALFORMED);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_plan_and_org_claims)
{
    char              tok[TOKBUF];
    const char       *plan_paths[] = { "a.b.c" };
    const char       *org_paths[] = { "o.id" };
    ug_jwt_keys_t    *keys;
    ug_jwt_claims_t   c;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    mint(tok, UG_JWT_ALG_ES256, NULL,
         "{\"sub\":\"u\",\"org_id\":\"org_1\",\"org\":\"org_2\","
         "\"public_metadata\":{\"plan\":\"team\"},"
         "\"meta\":{\"plan\":\"pro\"}}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_OK);
    ck_assert_str_eq(c.org, "org_1");
    ck_assert_str_eq(c.plan, "team");

    /* fallbacks: meta.plan and org */
    mint(tok, UG_JWT_ALG_ES256, NULL,
         "{\"sub\":\"u\",\"org\":\"org_2\",\"public_metadata\":{},"
         "\"meta\":{\"plan\":\"ENTERPRISE\"}}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_OK);
    ck_assert_str_eq(c.org, "org_2");
    ck_assert_str_eq(c.plan, "ENTERPRISE");
    ck_assert_uint_eq(c.plan_len, 10);

    mint(tok, UG_JWT_ALG_ES256, NULL,
         "{\"sub\":\"u\",\"public_metadata\":{\"plan\":null},"
         "\"meta\":{\"plan\":\"pro\"}}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_OK);
    ck_assert_str_eq(c.plan, "pro");

    /* public_metadata that is not an object is no plan */
    mint(tok, UG_JWT_ALG_ES256, NULL,
         "{\"sub\":\"u\",\"public_metadata\":\"pro\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_OK);
    ck_assert_uint_eq(c.plan_len, 0);
    ck_assert_uint_eq(c.org_len, 0);

    /* none at all */
    mint(tok, UG_JWT_ALG_ES256, NULL, "{\"sub\":\"u\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_OK);
    ck_assert_uint_eq(c.plan_len, 0);
    ck_assert_str_eq(c.plan, "");
    ck_assert_uint_eq(c.org_len, 0);

    /* a plan or org that is there but unusable is refused */
    mint(tok, UG_JWT_ALG_ES256, NULL,
         "{\"sub\":\"u\",\"public_metadata\":{\"plan\":7}}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_MALFORMED);
    ck_assert_str_eq(detail_of(keys, &pol, tok, NOW),
                     "malformed token: plan claim is not a valid name");
    mint(tok, UG_JWT_ALG_ES256, NULL,
         "{\"sub\":\"u\",\"org_id\":\"org one\"}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_MALFORMED);

    /* configured paths */
    pol.plan_claims = plan_paths;
    pol.n_plan_claims = 1;
    pol.org_claims = org_paths;
    pol.n_org_claims = 1;

    mint(tok, UG_JWT_ALG_ES256, NULL,
         "{\"sub\":\"u\",\"org_id\":\"x\",\"o\":{\"id\":\"org_v2\"},"
         "\"public_metadata\":{\"plan\":\"team\"},"
         "\"a\":{\"b\":{\"c\":\"gold\"}}}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_OK);
    ck_assert_str_eq(c.org, "org_v2");
    ck_assert_str_eq(c.plan, "gold");

    mint(tok, UG_JWT_ALG_ES256, NULL,
         "{\"sub\":\"u\",\"a\":{\"b\":\"c\"},\"o\":[\"id\"]}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_OK);
    ck_assert_uint_eq(c.plan_len, 0);
    ck_assert_uint_eq(c.org_len, 0);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_claims_cleared_on_failure)
{
    char              tok[TOKBUF];
    ug_jwt_keys_t    *keys;
    ug_jwt_claims_t   c;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    mint(tok, UG_JWT_ALG_RS256, "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
         "{\"sub\":\"u\",\"org_id\":\"o\",\"meta\":{\"plan\":\"pro\"},"
         "\"exp\":1}");

    memset(&c, 'x', sizeof(c));
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_EXPIRED);

    /* kid and alg stay for the logs; nothing else is believed */
    ck_assert_str_eq(c.kid, "rsa1");
    ck_assert_int_eq(c.alg, UG_JWT_ALG_RS256);
    ck_assert_str_eq(c.sub, "");
    ck_assert_str_eq(c.org, "");
    ck_assert_str_eq(c.plan, "");
    ck_assert_int_eq(c.exp, 0);

    ug_jwt_keys_free(keys);
}
END_TEST


/* Clerk's session tokens, v2 (o, pla) and v1 (org_id, public_metadata) */


/* Verifies payload under pol and checks org and both scopes' plans. */
static void
clerk_case(const ug_jwt_keys_t *keys, const ug_jwt_policy_t *pol,
    const char *payload, const char *org, const char *plan_user,
    const char *plan_org)
{
    char              tok[TOKBUF];
    ug_jwt_claims_t   c;

    mint(tok, UG_JWT_ALG_RS256, NULL, payload);
    ASSERT_RC(verify(keys, pol, tok, NOW, &c), UG_JWT_OK);

    ck_assert_msg(strcmp(c.org, org) == 0, "%s: org \"%s\", expected "
                  "\"%s\"", payload, c.org, org);
    ck_assert_msg(strcmp(c.plan, plan_user) == 0, "%s: scope=user plan "
                  "\"%s\", expected \"%s\"", payload, c.plan, plan_user);
    ck_assert_msg(strcmp(c.plan_org, plan_org) == 0, "%s: scope=org plan "
                  "\"%s\", expected \"%s\"", payload, c.plan_org, plan_org);
    ck_assert_uint_eq(c.plan_len, strlen(plan_user));
    ck_assert_uint_eq(c.plan_org_len, strlen(plan_org));
}


START_TEST(test_clerk_v2_defaults)
{
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    /* one entry serves both scopes */
    clerk_case(keys, &pol, "{\"sub\":\"user_1\",\"v\":2,\"pla\":\"u:pro\"}",
               "", "pro", "pro");
    clerk_case(keys, &pol, "{\"sub\":\"user_1\",\"v\":2,"
               "\"o\":{\"id\":\"org_9\",\"rol\":\"admin\",\"slg\":\"acme\"},"
               "\"pla\":\"o:team\"}", "org_9", "team", "team");

    /* each scope its own entry, in either order */
    clerk_case(keys, &pol, "{\"sub\":\"u\",\"o\":{\"id\":\"org_9\"},"
               "\"pla\":\"u:free,o:pro\"}", "org_9", "free", "pro");
    clerk_case(keys, &pol, "{\"sub\":\"u\",\"o\":{\"id\":\"org_9\"},"
               "\"pla\":\"o:pro,u:free\"}", "org_9", "free", "pro");
    clerk_case(keys, &pol, "{\"sub\":\"u\",\"pla\":\" u:free , o:Pro \"}",
               "", "free", "Pro");

    /* the first entry of a scope counts */
    clerk_case(keys, &pol, "{\"sub\":\"u\",\"pla\":\"u:team,u:pro\"}",
               "", "team", "team");

    /* pla comes before public_metadata.plan */
    clerk_case(keys, &pol, "{\"sub\":\"u\",\"pla\":\"u:free\","
               "\"public_metadata\":{\"plan\":\"team\"}}", "", "free",
               "free");

    /* v2 without pla: public_metadata.plan, then meta.plan */
    clerk_case(keys, &pol, "{\"sub\":\"u\",\"v\":2,\"o\":{\"id\":\"org_2\"},"
               "\"public_metadata\":{\"plan\":\"team\"}}", "org_2", "team",
               "team");
    clerk_case(keys, &pol, "{\"sub\":\"u\",\"meta\":{\"plan\":\"pro\"}}",
               "", "pro", "pro");

    /* v1: org_id, public_metadata.plan */
    clerk_case(keys, &pol, "{\"sub\":\"u\",\"org_id\":\"org_1\","
               "\"public_metadata\":{\"plan\":\"enterprise\"}}", "org_1",
               "enterprise", "enterprise");

    /* o.id before org_id before org; an "o" that is no object is none */
    clerk_case(keys, &pol, "{\"sub\":\"u\",\"o\":{\"id\":\"org_v2\"},"
               "\"org_id\":\"org_v1\",\"org\":\"org_x\"}", "org_v2", "", "");
    clerk_case(keys, &pol, "{\"sub\":\"u\",\"o\":\"org_v2\","
               "\"org_id\":\"org_v1\"}", "org_v1", "", "");
    clerk_case(keys, &pol, "{\"sub\":\"u\",\"o\":{\"rol\":\"admin\"},"
               "\"org\":\"org_x\"}", "org_x", "", "");

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_clerk_pla_falls_through)
{
    char              long_slug[UG_ID_MAX + 16], payload[512];
    char              tok[TOKBUF];
    size_t            i;
    ug_jwt_keys_t    *keys;
    ug_jwt_claims_t   c;
    ug_jwt_policy_t   pol;

    static const char  *nothing[] = {
        "", "free", "x:gold", "u:", "o:", ":pro", "u-pro", ",", " , ",
        "u:two words", "uu:pro", "U:pro"
    };

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    /* a pla that names no plan does not shadow public_metadata.plan */
    for (i = 0; i < sizeof(nothing) / sizeof(nothing[0]); i++) {
        snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"pla\":\"%s\","
                 "\"public_metadata\":{\"plan\":\"team\"}}", nothing[i]);
        clerk_case(keys, &pol, payload, "", "team", "team");
    }

    clerk_case(keys, &pol, "{\"sub\":\"u\",\"pla\":null,"
               "\"meta\":{\"plan\":\"pro\"}}", "", "pro", "pro");

    /* a bad entry beside a good one is skipped */
    clerk_case(keys, &pol, "{\"sub\":\"u\",\"pla\":\"x:gold,o:pro\","
               "\"public_metadata\":{\"plan\":\"team\"}}", "", "pro", "pro");

    /* a slug longer than any plan is no entry */
    memset(long_slug, 'a', UG_ID_MAX + 1);
    long_slug[UG_ID_MAX + 1] = '\0';
    snprintf(payload, sizeof(payload), "{\"sub\":\"u\",\"pla\":\"u:%s\","
             "\"meta\":{\"plan\":\"pro\"}}", long_slug);
    clerk_case(keys, &pol, payload, "", "pro", "pro");

    /* nothing anywhere */
    clerk_case(keys, &pol, "{\"sub\":\"u\",\"pla\":\"\"}", "", "", "");

    /* present but not a string: refused, as other plan claims are */
    mint(tok, UG_JWT_ALG_RS256, NULL, "{\"sub\":\"u\",\"pla\":[\"u:pro\"]}");
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_MALFORMED);
    ck_assert_str_eq(detail_of(keys, &pol, tok, NOW),
                     "malformed token: plan claim is not a valid name");

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_clerk_syntax_on_any_claim)
{
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    static const char  *custom[] = { "billing.plans:clerk", "app.plan" };
    static const char  *bare_pla[] = { "pla", "public_metadata.plan" };
    static const char  *raw_only[] = { "public_metadata.plan" };

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    pol.plan_claims = custom;
    pol.n_plan_claims = 2;

    clerk_case(keys, &pol, "{\"sub\":\"u\",\"billing\":{\"plans\":"
               "\"u:free,o:team\"},\"app\":{\"plan\":\"pro\"}}", "", "free",
               "team");
    clerk_case(keys, &pol, "{\"sub\":\"u\",\"billing\":{\"plans\":\"\"},"
               "\"app\":{\"plan\":\"pro\"}}", "", "pro", "pro");

    /* without the suffix the value is taken as it is */
    clerk_case(keys, &pol, "{\"sub\":\"u\",\"app\":{\"plan\":\"u:pro\"}}",
               "", "u:pro", "u:pro");

    /* Clerk's own claim needs no suffix */
    pol.plan_claims = bare_pla;
    pol.n_plan_claims = 2;

    clerk_case(keys, &pol, "{\"sub\":\"u\",\"pla\":\"u:free,o:pro\"}", "",
               "free", "pro");
    clerk_case(keys, &pol, "{\"sub\":\"u\",\"pla\":\"x:y\","
               "\"public_metadata\":{\"plan\":\"team\"}}", "", "team",
               "team");

    /* a policy that does not list pla ignores it */
    pol.plan_claims = raw_only;
    pol.n_plan_claims = 1;

    clerk_case(keys, &pol, "{\"sub\":\"u\",\"pla\":\"u:pro\"}", "", "", "");

    ug_jwt_keys_free(keys);
}
END_TEST


static Suite *
jwt_claims_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("jwt_claims");

    tc = tcase_create("time");
    tcase_add_test(tc, test_expiry_and_leeway);
    tcase_add_test(tc, test_exp_must_be_number);
    tcase_add_test(tc, test_nbf_and_leeway);
    suite_add_tcase(s, tc);

    tc = tcase_create("parties");
    tcase_add_test(tc, test_issuer);
    tcase_add_test(tc, test_audience_and_azp);
    suite_add_tcase(s, tc);

    tc = tcase_create("identity");
    tcase_add_test(tc, test_subject);
    tcase_add_test(tc, test_plan_and_org_claims);
    tcase_add_test(tc, test_claims_cleared_on_failure);
    suite_add_tcase(s, tc);

    tc = tcase_create("clerk");
    tcase_add_test(tc, test_clerk_v2_defaults);
    tcase_add_test(tc, test_clerk_pla_falls_through);
    tcase_add_test(tc, test_clerk_syntax_on_any_claim);
    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    make_keys();

    return ug_check_run(jwt_claims_suite());
}
