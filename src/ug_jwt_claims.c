/*
 * The claims of a verified token: time limits, issuer and audience, then
 * who the caller is (sub, org) and which plan they are on.
 */

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ug_identity.h"
#include "ug_jwt_internal.h"


/*
 * Times are clamped to +-2^40 s (about 35,000 years) so that adding the
 * leeway can never overflow, whatever a token claims.
 */
#define UG_JWT_TIME_MAX   ((int64_t) 1 << 40)

/* Longest dotted claim path component looked up. */
#define UG_JWT_PATH_MAX   256


/* The suffix of a plan claim read as Clerk Billing's "pla". */
#define UG_JWT_CLERK_SUFFIX  ":clerk"

/* Which plan a Clerk "pla" entry gives. */
enum {
    UG_JWT_SCOPE_USER = 0,
    UG_JWT_SCOPE_ORG
};


/* Clerk's session tokens as they are: v2 first, then v1's claims */

static const char  *ug_jwt_default_plan_claims[] = {
    "pla:clerk", "public_metadata.plan", "meta.plan"
};

static const char  *ug_jwt_default_org_claims[] = {
    "o.id", "org_id", "org"
};


static int ug_jwt_seconds(json_t *v, int round_up, int64_t *out);
static int ug_jwt_string_in(json_t *v, const char **list, size_t n);
static json_t *ug_jwt_path(json_t *root, const char *path, size_t len);
static int ug_jwt_id_value(json_t *v, char *dst, size_t *dst_len);
static int ug_jwt_plan_value(json_t *payload, const char *claim, int scope,
    char *dst, size_t *dst_len);
static int ug_jwt_clerk_plan(json_t *v, int scope, char *dst,
    size_t *dst_len);


/* policy */


void
ug_jwt_policy_init(ug_jwt_policy_t *policy, const ug_jwt_keys_t *keys)
{
    memset(policy, 0, sizeof(ug_jwt_policy_t));

    policy->algs = ug_jwt_keys_algs(keys);
    policy->leeway = UG_JWT_LEEWAY;
    policy->plan_claims = ug_jwt_default_plan_claims;
    policy->n_plan_claims = sizeof(ug_jwt_default_plan_claims)
                            / sizeof(ug_jwt_default_plan_claims[0]);
    policy->org_claims = ug_jwt_default_org_claims;
    policy->n_org_claims = sizeof(ug_jwt_default_org_claims)
                           / sizeof(ug_jwt_default_org_claims[0]);
}


ug_jwt_rc_t
ug_jwt_check_claims(const ug_jwt_policy_t *policy, json_t *payload,
    int64_t now, ug_jwt_claims_t *claims, const char **detail)
{
    int      rc;
    size_t   i;
    json_t  *v;
    int64_t  exp, nbf, leeway;

    leeway = policy->leeway;

    if (leeway < 0) {
        leeway = 0;

    } else if (leeway > UG_JWT_TIME_MAX) {
        leeway = UG_JWT_TIME_MAX;
    }

    if (now > UG_JWT_TIME_MAX) {
        now = UG_JWT_TIME_MAX;

    } else if (now < -UG_JWT_TIME_MAX) {
        now = -UG_JWT_TIME_MAX;
    }

    v = json_object_get(payload, "exp");

    if (v != NULL) {
        if (ug_jwt_seconds(v, 0, &exp) != 0) {
            *detail = "malformed token: exp is not a number";
            return UG_JWT_MALFORMED;
        }

        /* RFC 7519 section 4.1.4: valid only before exp */

        if (now - leeway >= exp) {
            *detail = "token expired";
            return UG_JWT_EXPIRED;
        }

        claims->exp = exp;
    }

    v = json_object_get(payload, "nbf");

    if (v != NULL) {
        if (ug_jwt_seconds(v, 1, &nbf) != 0) {
            *detail = "malformed token: nbf is not a number";
            return UG_JWT_MALFORMED;
        }

        if (now + leeway < nbf) {
            *detail = "token is not valid yet (nbf)";
            return UG_JWT_NOT_YET_VALID;
        }
    }

    if (policy->n_issuers > 0
        && !ug_jwt_string_in(json_object_get(payload, "iss"),
                             policy->issuers, policy->n_issuers))
    {
        *detail = "issuer is not accepted";
        return UG_JWT_BAD_ISSUER;
    }

    if (policy->n_audiences > 0) {
        v = json_object_get(payload, "aud");
        rc = ug_jwt_string_in(v, policy->audiences, policy->n_audiences);

        if (!rc && json_is_array(v)) {
            for (i = 0; i < json_array_size(v); i++) {
                if (ug_jwt_string_in(json_array_get(v, i), policy->audiences,
                                     policy->n_audiences))
                {
                    rc = 1;
                    break;
                }
            }
        }

        /* Clerk names the audience in azp (authorized party) */

        if (!rc) {
            rc = ug_jwt_string_in(json_object_get(payload, "azp"),
                                  policy->audiences, policy->n_audiences);
        }

        if (!rc) {
            *detail = "audience is not accepted";
            return UG_JWT_BAD_AUDIENCE;
        }
    }

    rc = ug_jwt_id_value(json_object_get(payload, "sub"), claims->sub,
                         &claims->sub_len);

    if (rc == 0) {
        rc = ug_jwt_id_value(json_object_get(payload, "sid"), claims->sub,
                             &claims->sub_len);
    }

    if (rc < 0) {
        *detail = "malformed token: sub is not a valid user id";
        return UG_JWT_MALFORMED;
    }

    if (rc == 0) {
        *detail = "token has no subject (sub or sid)";
        return UG_JWT_NO_SUBJECT;
    }

    for (i = 0; i < policy->n_org_claims; i++) {
        rc = ug_jwt_id_value(ug_jwt_path(payload, policy->org_claims[i],
                                         strlen(policy->org_claims[i])),
                             claims->org, &claims->org_len);
        if (rc < 0) {
            *detail = "malformed token: org claim is not a valid id";
            return UG_JWT_MALFORMED;
        }

        if (rc > 0) {
            break;
        }
    }

    /* one pass per scope: a claim that gives nothing for a scope lets
     * the next claim speak for it rather than shadow it */

    for (i = 0; i < policy->n_plan_claims; i++) {
        rc = ug_jwt_plan_value(payload, policy->plan_claims[i],
                               UG_JWT_SCOPE_USER, claims->plan,
                               &claims->plan_len);
        if (rc < 0) {
            *detail = "malformed token: plan claim is not a valid name";
            return UG_JWT_MALFORMED;
        }

        if (rc > 0) {
            break;
        }
    }

    for (i = 0; i < policy->n_plan_claims; i++) {
        rc = ug_jwt_plan_value(payload, policy->plan_claims[i],
                               UG_JWT_SCOPE_ORG, claims->plan_org,
                               &claims->plan_org_len);
        if (rc < 0) {
            *detail = "malformed token: plan claim is not a valid name";
            return UG_JWT_MALFORMED;
        }

        if (rc > 0) {
            break;
        }
    }

    return UG_JWT_OK;
}


/*
 * A NumericDate (RFC 7519 section 2) as whole seconds, clamped; fractions
 * round towards the stricter side.  Returns -1 if v is not a number.
 */
static int
ug_jwt_seconds(json_t *v, int round_up, int64_t *out)
{
    double   d;
    int64_t  s;

    if (json_is_integer(v)) {
        s = json_integer_value(v);

        if (s > UG_JWT_TIME_MAX) {
            s = UG_JWT_TIME_MAX;

        } else if (s < -UG_JWT_TIME_MAX) {
            s = -UG_JWT_TIME_MAX;
        }

        *out = s;
        return 0;
    }

    if (!json_is_real(v)) {
        return -1;
    }

    d = json_real_value(v);

    if (!(d < (double) UG_JWT_TIME_MAX)) {
        *out = UG_JWT_TIME_MAX;
        return 0;
    }

    if (!(d > (double) -UG_JWT_TIME_MAX)) {
        *out = -UG_JWT_TIME_MAX;
        return 0;
    }

    s = (int64_t) d;                      /* towards zero */

    if (round_up && (double) s < d) {
        s++;

    } else if (!round_up && (double) s > d) {
        s--;
    }

    *out = s;
    return 0;
}


static int
ug_jwt_string_in(json_t *v, const char **list, size_t n)
{
    size_t       i, len;
    const char  *s;

    if (v == NULL || !json_is_string(v)) {
        return 0;
    }

    s = json_string_value(v);
    len = json_string_length(v);

    for (i = 0; i < n; i++) {
        if (strlen(list[i]) == len && memcmp(list[i], s, len) == 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * The value at a dotted path such as "public_metadata.plan" (its first
 * len bytes), or NULL.
 */
static json_t *
ug_jwt_path(json_t *root, const char *path, size_t len)
{
    size_t       n;
    json_t      *v;
    const char  *p, *dot, *last;

    v = root;
    p = path;
    last = path + len;

    for ( ;; ) {
        if (!json_is_object(v)) {
            return NULL;
        }

        dot = memchr(p, '.', last - p);
        n = dot ? (size_t) (dot - p) : (size_t) (last - p);

        if (n == 0 || n > UG_JWT_PATH_MAX) {
            return NULL;
        }

        v = json_object_getn(v, p, n);

        if (v == NULL || dot == NULL) {
            return v;
        }

        p = dot + 1;
    }
}


/*
 * Copies an id claim.  Returns 1 when v is a valid id string, 0 when it
 * is absent, null or "", and -1 for anything else, which the caller
 * refuses rather than guess at.
 */
static int
ug_jwt_id_value(json_t *v, char *dst, size_t *dst_len)
{
    size_t       len;
    const char  *s;

    if (v == NULL || json_is_null(v)) {
        return 0;
    }

    if (!json_is_string(v)) {
        return -1;
    }

    s = json_string_value(v);
    len = json_string_length(v);

    if (len == 0) {
        return 0;
    }

    if (ug_id_check_asserted((const unsigned char *) s, len) != UG_ID_OK) {
        return -1;
    }

    memcpy(dst, s, len);
    dst[len] = '\0';
    *dst_len = len;

    return 1;
}


/*
 * The plan one plan claim gives for a scope: 1 with dst set, 0 for none
 * (the next claim is tried), -1 for a value that cannot be a plan.
 */
static int
ug_jwt_plan_value(json_t *payload, const char *claim, int scope, char *dst,
    size_t *dst_len)
{
    int      clerk;
    size_t   len, n;
    json_t  *v;

    len = strlen(claim);
    n = sizeof(UG_JWT_CLERK_SUFFIX) - 1;

    clerk = (len > n
             && memcmp(claim + len - n, UG_JWT_CLERK_SUFFIX, n) == 0);

    if (clerk) {
        len -= n;

    } else if (strcmp(claim, "pla") == 0) {
        /* Clerk's own claim: its raw "u:pro" can never be a plan name */
        clerk = 1;
    }

    v = ug_jwt_path(payload, claim, len);

    if (!clerk) {
        return ug_jwt_id_value(v, dst, dst_len);
    }

    return ug_jwt_clerk_plan(v, scope, dst, dst_len);
}


/*
 * Clerk Billing's "pla": "scope:slug" entries separated by commas, such
 * as "u:free" or "u:free,o:pro".  The scope's own entry wins; the other
 * scope's is the fallback, so that a user-scoped gate still sees an
 * org-only plan.  Entries of other scopes or without a valid slug are
 * skipped, as Clerk may add scopes; nothing usable is 0.
 */
static int
ug_jwt_clerk_plan(json_t *v, int scope, char *dst, size_t *dst_len)
{
    size_t       len, slug_len, own_len, other_len;
    const char  *s, *p, *end, *last, *slug, *own, *other;

    if (v == NULL || json_is_null(v)) {
        return 0;
    }

    if (!json_is_string(v)) {
        return -1;
    }

    s = json_string_value(v);
    len = json_string_length(v);
    last = s + len;

    own = NULL;
    other = NULL;
    own_len = 0;
    other_len = 0;

    for (p = s; p < last; p = end + 1) {
        end = memchr(p, ',', last - p);
        if (end == NULL) {
            end = last;
        }

        while (p < end && *p == ' ') {
            p++;
        }

        slug = p + 2;
        slug_len = (slug <= end) ? (size_t) (end - slug) : 0;

        while (slug_len && slug[slug_len - 1] == ' ') {
            slug_len--;
        }

        if (end - p < 3 || p[1] != ':' || (p[0] != 'u' && p[0] != 'o')
            || ug_id_check((const unsigned char *) slug, slug_len)
               != UG_ID_OK)
        {
            continue;
        }

        if ((p[0] == 'o') == (scope == UG_JWT_SCOPE_ORG)) {
            if (own == NULL) {
                own = slug;
                own_len = slug_len;
            }

        } else if (other == NULL) {
            other = slug;
            other_len = slug_len;
        }
    }

    if (own == NULL) {
        own = other;
        own_len = other_len;
    }

    if (own == NULL) {
        return 0;
    }

    memcpy(dst, own, own_len);
    dst[own_len] = '\0';
    *dst_len = own_len;

    return 1;
}
