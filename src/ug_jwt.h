/*
 * JWT (RFC 7519) bearer tokens in JWS compact form (RFC 7515), verified
 * with OpenSSL 3 before any claim in them is believed.
 *
 * A key set is built at configuration time and only read afterwards, so
 * one set can serve every request of a worker; ug_jwt_verify() keeps all
 * of its state on the caller's stack and in the claims it fills.
 */

#ifndef UG_JWT_H
#define UG_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "ug_identity.h"


/* Algorithms, as bits of an allow-list. */
enum {
    UG_JWT_ALG_HS256 = 1 << 0,
    UG_JWT_ALG_HS384 = 1 << 1,
    UG_JWT_ALG_HS512 = 1 << 2,
    UG_JWT_ALG_RS256 = 1 << 3,
    UG_JWT_ALG_RS384 = 1 << 4,
    UG_JWT_ALG_RS512 = 1 << 5,
    UG_JWT_ALG_PS256 = 1 << 6,
    UG_JWT_ALG_PS384 = 1 << 7,
    UG_JWT_ALG_PS512 = 1 << 8,
    UG_JWT_ALG_ES256 = 1 << 9,
    UG_JWT_ALG_ES384 = 1 << 10,
    UG_JWT_ALG_EDDSA = 1 << 11
};

#define UG_JWT_ALG_HMAC   (UG_JWT_ALG_HS256 | UG_JWT_ALG_HS384              \
                           | UG_JWT_ALG_HS512)
#define UG_JWT_ALG_RSA    (UG_JWT_ALG_RS256 | UG_JWT_ALG_RS384              \
                           | UG_JWT_ALG_RS512 | UG_JWT_ALG_PS256            \
                           | UG_JWT_ALG_PS384 | UG_JWT_ALG_PS512)
#define UG_JWT_ALG_ASYMMETRIC  (UG_JWT_ALG_RSA | UG_JWT_ALG_ES256           \
                                | UG_JWT_ALG_ES384 | UG_JWT_ALG_EDDSA)
#define UG_JWT_ALG_ALL    (UG_JWT_ALG_HMAC | UG_JWT_ALG_ASYMMETRIC)

/* Largest token accepted, in bytes (the text after "Bearer "). */
#define UG_JWT_MAX_TOKEN     8192

/* Deepest JSON nesting accepted in a token's header or payload. */
#define UG_JWT_MAX_DEPTH     32

/* Limits on a key set. */
#define UG_JWT_MAX_KEYS      64
#define UG_JWT_MAX_KEY_TEXT  (1024 * 1024)
#define UG_JWT_MIN_RSA_BITS  2048
#define UG_JWT_MAX_RSA_BITS  16384
#define UG_JWT_MIN_SECRET    32           /* HS256; HS384 48, HS512 64 */
#define UG_JWT_MAX_SECRET    4096

/* Default leeway for exp and nbf, in seconds. */
#define UG_JWT_LEEWAY        60


typedef struct ug_jwt_keys_s  ug_jwt_keys_t;


/* An empty key set, or NULL if out of memory. */
ug_jwt_keys_t *ug_jwt_keys_new(void);

void ug_jwt_keys_free(ug_jwt_keys_t *keys);

/*
 * Adds the keys in text: a JWKS ({"keys": [...]}), a single JWK, or one
 * or more PEM public keys ("-----BEGIN PUBLIC KEY-----", i.e.
 * SubjectPublicKeyInfo).  JWKs may be RSA (n, e), EC (crv P-256 or P-384,
 * x, y), OKP (crv Ed25519, x) or oct (k, for HS*); kid, alg and use are
 * honoured: a key with "alg" verifies only that algorithm, a key with
 * "use" other than "sig" is skipped.  Private members are ignored.
 *
 * All or nothing: returns 0, or -1 with a NUL-terminated message in err
 * naming the key and what is wrong with it, e.g.
 * "key 2: EC key with unsupported crv \"P-521\"", and the set unchanged.
 */
int ug_jwt_keys_add_text(ug_jwt_keys_t *keys, const char *text, size_t len,
    char *err, size_t err_size);

/*
 * Adds an HMAC secret without kid (usage_gate_jwt_secret_file: the
 * caller strips one trailing newline).  A secret verifies HS256 when it
 * is at least 32 bytes long, HS384 from 48 and HS512 from 64 (RFC 7518
 * section 3.2: no shorter than the hash).  Returns 0, or -1 with a
 * message in err.
 */
int ug_jwt_keys_add_secret(ug_jwt_keys_t *keys, const unsigned char *secret,
    size_t len, char *err, size_t err_size);

/* Number of keys in the set. */
size_t ug_jwt_keys_count(const ug_jwt_keys_t *keys);

/*
 * The UG_JWT_ALG_* bits that some key in the set can verify.  The
 * default allow-list is this mask: asymmetric algorithms of the keys
 * present, and HS* only when a secret (or an oct JWK) was configured.
 */
unsigned ug_jwt_keys_algs(const ug_jwt_keys_t *keys);

/*
 * UG_JWT_ALG_* for an algorithm name ("RS256", "EdDSA", ...), compared
 * exactly as RFC 7518 spells them; -1 if unknown ("none" is unknown).
 */
int ug_jwt_alg_from_name(const char *name, size_t len);

/* The name of one UG_JWT_ALG_* bit, or "?" */
const char *ug_jwt_alg_name(int alg);


typedef struct {
    unsigned      algs;             /* allowed UG_JWT_ALG_* bits */
    const char  **issuers;          /* accepted iss; 0 = not checked */
    size_t        n_issuers;
    const char  **audiences;        /* accepted aud or azp; 0 = not checked */
    size_t        n_audiences;
    int64_t       leeway;           /* seconds, for exp and nbf */
    const char  **plan_claims;      /* dotted paths, tried in order */
    size_t        n_plan_claims;
    const char  **org_claims;       /* dotted paths, tried in order */
    size_t        n_org_claims;
} ug_jwt_policy_t;

/*
 * Fills a policy with the defaults: algs = ug_jwt_keys_algs(keys) (0 if
 * keys is NULL), no issuer or audience check, leeway 60, plan claims
 * "public_metadata.plan" "meta.plan", org claims "org_id" "org".
 */
void ug_jwt_policy_init(ug_jwt_policy_t *policy, const ug_jwt_keys_t *keys);


typedef struct {
    char      sub[UG_ID_MAX + 1];   /* sub, else sid; NUL-terminated */
    size_t    sub_len;
    char      org[UG_ID_MAX + 1];   /* from the org claims; 0 if none */
    size_t    org_len;
    char      plan[UG_ID_MAX + 1];  /* raw plan claim value; 0 if none */
    size_t    plan_len;
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
