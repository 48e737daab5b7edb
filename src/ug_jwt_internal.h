/*
 * What the key sets (ug_jwk.c), the verifier (ug_jwt.c) and the claim
 * reader (ug_jwt_claims.c) share and nobody else needs: the layout of a
 * key set and the algorithm table.
 */

#ifndef UG_JWT_INTERNAL_H
#define UG_JWT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "ug_identity.h"
#include "ug_jwt.h"


enum {
    UG_KTY_OCT = 1,
    UG_KTY_RSA,
    UG_KTY_EC,
    UG_KTY_OKP
};

enum {
    UG_MD_NONE = -1,
    UG_MD_SHA256 = 0,
    UG_MD_SHA384,
    UG_MD_SHA512,
    UG_MD_N
};


typedef struct {
    unsigned        algs;         /* what this key may verify */
    int             kty;
    size_t          coord;        /* EC: bytes per coordinate */
    EVP_PKEY       *pkey;         /* RSA, EC, OKP */
    unsigned char  *secret;       /* oct */
    size_t          secret_len;
    int             has_kid;
    size_t          kid_len;
    char            kid[UG_ID_MAX + 1];
} ug_jwt_key_t;


struct ug_jwt_keys_s {
    EVP_MD         *md[UG_MD_N];  /* fetched once: an implicit fetch on
                                     every verify costs a lookup */
    size_t          n;
    ug_jwt_key_t    keys[UG_JWT_MAX_KEYS];
};


typedef struct {
    const char     *name;
    int             alg;
    int             kty;
    int             md;
    size_t          coord;        /* ES: bytes per coordinate */
} ug_jwt_alg_t;


/* The table row of one UG_JWT_ALG_* bit, or NULL. */
const ug_jwt_alg_t *ug_jwt_alg_find(int alg);

/*
 * 1 if the JSON text p nests no deeper than max, else 0; checked before
 * jansson allocates anything (it allows 2048 levels).
 */
int ug_jwt_json_depth_ok(const unsigned char *p, size_t len, int max);

/*
 * Checks exp, nbf, iss, aud (or azp) of a verified payload and fills the
 * subject, org and plans of claims.  Returns UG_JWT_OK or why not, with
 * *detail set.
 */
ug_jwt_rc_t ug_jwt_check_claims(const ug_jwt_policy_t *policy,
    json_t *payload, int64_t now, ug_jwt_claims_t *claims,
    const char **detail);

#endif /* UG_JWT_INTERNAL_H */
