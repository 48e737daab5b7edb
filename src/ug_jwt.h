/*
 * JWT (RFC 7519) bearer tokens in JWS compact form (RFC 7515), verified
 * with OpenSSL 3 before any claim in them is believed.
 *
 * Key sets are in ug_jwk.h; the claims a verified payload yields are
 * read by ug_jwt_claims.c.  ug_jwt_verify() keeps all of its state on the
 * caller's stack and in the claims it fills, so one key set and policy
 * can serve every request of a worker.
 */

#ifndef UG_JWT_H
#define UG_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "ug_identity.h"
#include "ug_jwk.h"


/* Largest token accepted, in bytes (the text after "Bearer "). */
#define UG_JWT_MAX_TOKEN     8192

/* Default leeway for exp and nbf, in seconds. */
#define UG_JWT_LEEWAY        60


typedef struct {
    unsigned      algs;             /* allowed UG_JWT_ALG_* bits */
    const char  **issuers;          /* accepted iss; 0 = not checked */
    size_t        n_issuers;
    const char  **audiences;        /* accepted aud or azp; 0 = not checked */
    size_t        n_audiences;
    int64_t       leeway;           /* seconds, for exp and nbf */
    const char  **plan_claims;      /* claims (below), tried in order */
    size_t        n_plan_claims;
    const char  **org_claims;       /* dotted paths, tried in order */
    size_t        n_org_claims;
} ug_jwt_policy_t;

/*
 * Fills a policy with the defaults, which read Clerk's v1 and v2 session
 * tokens as they are: algs = ug_jwt_keys_algs(keys) (0 if keys is NULL),
 * no issuer or audience check, leeway 60, plan claims "pla:clerk"
 * "public_metadata.plan" "meta.plan", org claims "o.id" "org_id" "org".
 *
 * A plan claim is a dotted path ("public_metadata.plan"), optionally
 * followed by ":clerk" to read its value as Clerk Billing's "pla": one or
 * more comma-separated "scope:slug" entries such as "u:free,o:pro", where
 * scope u is the user's plan and o the active organisation's.  The
 * top-level claim "pla" is always read so.  The claims are tried in order
 * for each scope (see ug_jwt_claims_t); one that is absent, null, "" or
 * (for the Clerk form) has no entry of either scope yields nothing, and
 * the next one is tried.
 */
void ug_jwt_policy_init(ug_jwt_policy_t *policy, const ug_jwt_keys_t *keys);


typedef struct {
    char      sub[UG_ID_MAX + 1];   /* sub, else sid; NUL-terminated */
    size_t    sub_len;
    char      org[UG_ID_MAX + 1];   /* from the org claims; 0 if none */
    size_t    org_len;
    char      plan[UG_ID_MAX + 1];  /* plan for scope=user, as sent (any
                                       case); 0 if none */
    size_t    plan_len;
    char      plan_org[UG_ID_MAX + 1];  /* plan for scope=org: differs
                                           only by a Clerk "o:" entry */
    size_t    plan_org_len;
    char      kid[UG_ID_MAX + 1];   /* header kid if printable; 0 if none */
    size_t    kid_len;
    int       alg;                  /* UG_JWT_ALG_*, 0 if not known */
    int64_t   exp;                  /* 0 if absent */
} ug_jwt_claims_t;


typedef enum {
    UG_JWT_OK = 0,
    UG_JWT_MALFORMED,
    UG_JWT_TOO_LARGE,
    UG_JWT_ALG_NONE,
    UG_JWT_ALG_NOT_ALLOWED,
    UG_JWT_CRIT,
    UG_JWT_UNKNOWN_KEY,
    UG_JWT_BAD_SIGNATURE,
    UG_JWT_EXPIRED,
    UG_JWT_NOT_YET_VALID,
    UG_JWT_BAD_ISSUER,
    UG_JWT_BAD_AUDIENCE,
    UG_JWT_NO_SUBJECT,
    UG_JWT_INTERNAL
} ug_jwt_rc_t;


/*
 * Verifies token (the bytes after "Bearer ") at unix time now and fills
 * claims.  Returns UG_JWT_OK or why not, and points *detail (if detail is
 * not NULL) at a static sentence for the client, such as "token expired"
 * or "malformed token: payload is not a JSON object"; it never quotes the
 * token.  On failure claims->kid and claims->alg may be set, for logs;
 * the other fields are empty.
 *
 * Order: size, header (JSON object, alg "none" in any case rejected
 * first, alg allowed, no crit), three canonical base64url segments, key
 * (type fitting alg, by kid) and signature; only then is the payload
 * parsed (JSON object) and exp, nbf, iss, aud (or azp), subject, org and
 * plan checked.  Bounded work on any input (about 20 KB of stack); safe
 * to call concurrently with one key set and policy.
 */
ug_jwt_rc_t ug_jwt_verify(const ug_jwt_keys_t *keys,
    const ug_jwt_policy_t *policy, const char *token, size_t len,
    int64_t now, ug_jwt_claims_t *claims, const char **detail);

/*
 * The JWS part of ug_jwt_verify alone: header checks, key and signature,
 * with the payload treated as opaque bytes (RFC 8037's example signs
 * text, not JSON).  For tests and tools; the gate uses ug_jwt_verify.
 */
ug_jwt_rc_t ug_jwt_verify_jws(const ug_jwt_keys_t *keys, unsigned algs,
    const char *token, size_t len, ug_jwt_claims_t *claims,
    const char **detail);

/* A short name of an rc for logs and $usage_gate_jwt_error: "expired". */
const char *ug_jwt_rc_name(ug_jwt_rc_t rc);

#endif /* UG_JWT_H */
