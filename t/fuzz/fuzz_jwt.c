/*
 * libFuzzer target for the JWT verifier, its key file parser and the
 * verified-token cache.
 *
 * The first input byte picks a mode (its low two bits; the seed corpus
 * starts its files with '0'..'3'):
 *   0  the rest is a token, verified under the default policy;
 *   1  the rest is a token, verified under a strict policy (issuer,
 *      audience, other claim paths, no leeway), and as a bare JWS;
 *   2  the rest is a key file (JWKS, JWK or PEM) for a fresh key set;
 *   3  the rest is "header\npayload" JSON: the target encodes and signs
 *      it with the HS256 secret, so that claim checks past the signature
 *      are reached too.
 * The fixed key set holds the RFC 7515 / RFC 8037 example keys: an HS256
 * secret, an RSA, an EC P-256 and an Ed25519 key.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ug_b64url.h"
#include "ug_identity.h"
#include "ug_jwt.h"
#include "ug_jwt_cache.h"


#define FUZZ_NOW  1300819000LL


static const char  fuzz_jwks[] =
    "{\"keys\":["
    "{\"kty\":\"oct\",\"kid\":\"hs\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMk"
    "oqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"},"
    "{\"kty\":\"RSA\",\"kid\":\"rsa\",\"use\":\"sig\","
    "\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmf"
    "HQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG"
    "6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KX"
    "BdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJ"
    "H7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWy"
    "uXpoQ\",\"e\":\"AQAB\"},"
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec\","
    "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"},"
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}"
    "]}";

/* the decoded "k" above */
static const unsigned char  fuzz_secret[] = {
    3, 35, 53, 75, 43, 15, 165, 188, 131, 126, 6, 101, 119, 123, 166, 143,
    90, 179, 40, 230, 240, 84, 201, 40, 169, 15, 132, 178, 210, 80, 46, 191,
    211, 251, 90, 146, 210, 6, 71, 239, 150, 138, 180, 195, 119, 98, 61, 34,
    61, 46, 33, 114, 5, 46, 79, 8, 192, 205, 154, 245, 103, 208, 128, 163
};

static const char  *fuzz_issuers[] = { "joe", "https://clerk.example" };
static const char  *fuzz_audiences[] = { "api", "https://app.example" };
static const char  *fuzz_plan_claims[] = { "a.b.c:clerk", "plan", "" ,
                                           "x..y", ":clerk", "pla" };
static const char  *fuzz_org_claims[] = { "o.id", "org_id" };

static ug_jwt_keys_t    *fuzz_keys;
static ug_jwt_cache_t   *fuzz_cache;


static void
fuzz_init(void)
{
    fuzz_keys = ug_jwt_keys_new();

    if (fuzz_keys == NULL
        || ug_jwt_keys_add_text(fuzz_keys, fuzz_jwks, sizeof(fuzz_jwks) - 1,
                                NULL, 0) != 0
        || ug_jwt_keys_count(fuzz_keys) != 4)
    {
        abort();
    }

    fuzz_cache = ug_jwt_cache_new(8);
    if (fuzz_cache == NULL) {
        abort();
    }
}


static void
fuzz_check_str(const char *s, size_t len, int required)
{
    if (len > UG_ID_MAX || s[len] != '\0' || strlen(s) != len) {
        abort();
    }

    if ((len > 0 || required)
        && ug_id_check((const unsigned char *) s, len) != UG_ID_OK)
    {
        abort();
    }
}


static int
fuzz_same_claims(const ug_jwt_claims_t *a, const ug_jwt_claims_t *b)
{
    return a->sub_len == b->sub_len && a->org_len == b->org_len
           && a->plan_len == b->plan_len
           && a->plan_org_len == b->plan_org_len && a->kid_len == b->kid_len
           && a->alg == b->alg && a->exp == b->exp
           && strcmp(a->sub, b->sub) == 0 && strcmp(a->org, b->org) == 0
           && strcmp(a->plan, b->plan) == 0
           && strcmp(a->plan_org, b->plan_org) == 0
           && strcmp(a->kid, b->kid) == 0;
}


/* What ug_jwt_verify promises about its result, checked on every run. */
static void
fuzz_verify(const ug_jwt_policy_t *policy, const char *token, size_t len)
{
    const char       *detail;
    ug_jwt_rc_t       rc;
    ug_jwt_claims_t   c, cached;

    detail = NULL;
    rc = ug_jwt_verify(fuzz_keys, policy, token, len, FUZZ_NOW, &c, &detail);

    if (detail == NULL || rc > UG_JWT_INTERNAL) {
        abort();
    }

    fuzz_check_str(c.kid, c.kid_len, 0);

    if (rc != UG_JWT_OK) {
        if (c.sub_len || c.org_len || c.plan_len || c.plan_org_len
            || c.exp)
        {
            abort();
        }

        return;
    }

    fuzz_check_str(c.sub, c.sub_len, 1);
    fuzz_check_str(c.org, c.org_len, 0);
    fuzz_check_str(c.plan, c.plan_len, 0);
    fuzz_check_str(c.plan_org, c.plan_org_len, 0);

    /* a plan for one scope means a plan for the other */
    if ((c.plan_len == 0) != (c.plan_org_len == 0)) {
        abort();
    }

    if (!(policy->algs & (unsigned) c.alg)) {
        abort();
    }

    /* a token just put is found with the very same claims */
    ug_jwt_cache_put(fuzz_cache, 1, token, len, FUZZ_NOW, &c);

    if (c.exp == 0 || c.exp > FUZZ_NOW) {
        if (!ug_jwt_cache_get(fuzz_cache, 1, token, len, FUZZ_NOW, &cached)
            || !fuzz_same_claims(&cached, &c))
        {
            abort();
        }
    }
}


static void
fuzz_signed(const ug_jwt_policy_t *policy, const uint8_t *data, size_t size)
{
    char           *tok;
    size_t          hlen, n;
    unsigned int    mlen;
    unsigned char   mac[EVP_MAX_MD_SIZE];
    const uint8_t  *nl;

    if (size > UG_JWT_MAX_TOKEN) {
        return;
    }

    nl = memchr(data, '\n', size);
    hlen = nl ? (size_t) (nl - data) : size;

    tok = malloc(2 * UG_B64URL_ENCODED_LEN(size) + 64);
    if (tok == NULL) {
        return;
    }

    n = ug_b64url_encode(tok, UG_B64URL_ENCODED_LEN(hlen) + 1, data, hlen);
    tok[n++] = '.';

    if (nl) {
        n += ug_b64url_encode(tok + n, UG_B64URL_ENCODED_LEN(size) + 1,
                              nl + 1, size - hlen - 1);
    }

    mlen = 0;

    if (HMAC(EVP_sha256(), fuzz_secret, sizeof(fuzz_secret),
             (const unsigned char *) tok, n, mac, &mlen) == NULL)
    {
        abort();
    }

    tok[n++] = '.';
    n += ug_b64url_encode(tok + n, 64, mac, mlen);

    fuzz_verify(policy, tok, n);

    free(tok);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char              err[256];
    ug_jwt_keys_t    *keys;
    ug_jwt_claims_t   c;
    ug_jwt_policy_t   policy;

    if (fuzz_keys == NULL) {
        fuzz_init();
    }

    if (size == 0) {
        return 0;
    }

    ug_jwt_policy_init(&policy, fuzz_keys);

    switch (data[0] & 3) {

    case 0:
        fuzz_verify(&policy, (const char *) data + 1, size - 1);
        break;

    case 1:
        policy.issuers = fuzz_issuers;
        policy.n_issuers = 2;
        policy.audiences = fuzz_audiences;
        policy.n_audiences = 2;
        policy.leeway = 0;
        policy.plan_claims = fuzz_plan_claims;
        policy.n_plan_claims = 6;
        policy.org_claims = fuzz_org_claims;
        policy.n_org_claims = 2;

        fuzz_verify(&policy, (const char *) data + 1, size - 1);
        (void) ug_jwt_verify_jws(fuzz_keys, UG_JWT_ALG_ALL,
                                 (const char *) data + 1, size - 1, &c, NULL);
        break;

    case 2:
        keys = ug_jwt_keys_new();
        if (keys == NULL) {
            abort();
        }

        err[0] = '\0';

        if (ug_jwt_keys_add_text(keys, (const char *) data + 1, size - 1,
                                 err, sizeof(err))
            != 0)
        {
            /* a failed load says why and leaves the set empty */
            if (err[0] == '\0' || strlen(err) >= sizeof(err)
                || ug_jwt_keys_count(keys) != 0)
            {
                abort();
            }

        } else if (ug_jwt_keys_count(keys) == 0
                   || ug_jwt_keys_algs(keys) == 0)
        {
            abort();
        }

        ug_jwt_keys_free(keys);
        break;

    case 3:
        fuzz_signed(&policy, data + 1, size - 1);
        break;
    }

    return 0;
}
