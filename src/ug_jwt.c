/*
 * JWS compact tokens: split, decode, check the header, find the key and
 * verify the signature; only then is the payload parsed and handed to the
 * claim checks of ug_jwt_claims.c.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include "ug_b64url.h"
#include "ug_identity.h"
#include "ug_jwt_internal.h"


/* Decoded segments of the largest token fit this buffer. */
#define UG_JWT_SEG_MAX    UG_B64URL_DECODED_LEN(UG_JWT_MAX_TOKEN)


static const ug_jwt_alg_t  ug_jwt_algs[] = {
    { "HS256", UG_JWT_ALG_HS256, UG_KTY_OCT, UG_MD_SHA256, 0 },
    { "HS384", UG_JWT_ALG_HS384, UG_KTY_OCT, UG_MD_SHA384, 0 },
    { "HS512", UG_JWT_ALG_HS512, UG_KTY_OCT, UG_MD_SHA512, 0 },
    { "RS256", UG_JWT_ALG_RS256, UG_KTY_RSA, UG_MD_SHA256, 0 },
    { "RS384", UG_JWT_ALG_RS384, UG_KTY_RSA, UG_MD_SHA384, 0 },
    { "RS512", UG_JWT_ALG_RS512, UG_KTY_RSA, UG_MD_SHA512, 0 },
    { "PS256", UG_JWT_ALG_PS256, UG_KTY_RSA, UG_MD_SHA256, 0 },
    { "PS384", UG_JWT_ALG_PS384, UG_KTY_RSA, UG_MD_SHA384, 0 },
    { "PS512", UG_JWT_ALG_PS512, UG_KTY_RSA, UG_MD_SHA512, 0 },
    { "ES256", UG_JWT_ALG_ES256, UG_KTY_EC, UG_MD_SHA256, 32 },
    { "ES384", UG_JWT_ALG_ES384, UG_KTY_EC, UG_MD_SHA384, 48 },
    { "EdDSA", UG_JWT_ALG_EDDSA, UG_KTY_OKP, UG_MD_NONE, 0 },
    { NULL, 0, 0, 0, 0 }
};

/* The pieces of a token that ug_jwt_parse found. */
typedef struct {
    const ug_jwt_alg_t   *alg;
    int                   has_kid;
    size_t                kid_len;      /* UG_ID_MAX + 1: too long */
    char                  kid[UG_ID_MAX + 1];
    size_t                input_len;    /* header.payload */
    size_t                payload_len;
    size_t                sig_len;
    unsigned char         payload[UG_JWT_SEG_MAX];
    unsigned char         sig[UG_JWT_SEG_MAX];
} ug_jwt_token_t;


static ug_jwt_rc_t ug_jwt_parse(unsigned algs, const char *token,
    size_t len, ug_jwt_token_t *t, ug_jwt_claims_t *claims,
    const char **detail);
static json_t *ug_jwt_json_object(const unsigned char *buf, size_t len,
    int is_header, const char **detail);
static ug_jwt_rc_t ug_jwt_check_signature(const ug_jwt_keys_t *keys,
    ug_jwt_token_t *t, const char *input, const char **detail);
static int ug_jwt_verify_key(const ug_jwt_keys_t *keys,
    const ug_jwt_key_t *key, const ug_jwt_alg_t *alg, const char *input,
    size_t input_len, const unsigned char *sig, size_t sig_len);
static int ug_jwt_digest_verify(EVP_PKEY *pkey, const EVP_MD *md, int pss,
    const char *input, size_t input_len, const unsigned char *sig,
    size_t sig_len);


int
ug_jwt_alg_from_name(const char *name, size_t len)
{
    const ug_jwt_alg_t  *a;

    for (a = ug_jwt_algs; a->name; a++) {
        if (strlen(a->name) == len && memcmp(a->name, name, len) == 0) {
            return a->alg;
        }
    }

    return -1;
}


const char *
ug_jwt_alg_name(int alg)
{
    const ug_jwt_alg_t  *a;

    a = ug_jwt_alg_find(alg);

    return a ? a->name : "?";
}


const ug_jwt_alg_t *
ug_jwt_alg_find(int alg)
{
    const ug_jwt_alg_t  *a;

    for (a = ug_jwt_algs; a->name; a++) {
        if (a->alg == alg) {
            return a;
        }
    }

    return NULL;
}


const char *
ug_jwt_rc_name(ug_jwt_rc_t rc)
{
    switch (rc) {
    case UG_JWT_OK:
        return "ok";
    case UG_JWT_MALFORMED:
        return "malformed";
    case UG_JWT_TOO_LARGE:
        return "too_large";
    case UG_JWT_ALG_NONE:
        return "alg_none";
    case UG_JWT_ALG_NOT_ALLOWED:
        return "alg_not_allowed";
    case UG_JWT_CRIT:
        return "crit";
    case UG_JWT_UNKNOWN_KEY:
        return "unknown_key";
    case UG_JWT_BAD_SIGNATURE:
        return "bad_signature";
    case UG_JWT_EXPIRED:
        return "expired";
    case UG_JWT_NOT_YET_VALID:
        return "not_yet_valid";
    case UG_JWT_BAD_ISSUER:
        return "bad_issuer";
    case UG_JWT_BAD_AUDIENCE:
        return "bad_audience";
    case UG_JWT_NO_SUBJECT:
        return "no_subject";
    case UG_JWT_INTERNAL:
        return "internal";
    }

    return "internal";
}


/* verification */


ug_jwt_rc_t
ug_jwt_verify(const ug_jwt_keys_t *keys, const ug_jwt_policy_t *policy,
    const char *token, size_t len, int64_t now, ug_jwt_claims_t *claims,
    const char **detail)
{
    json_t          *payload;
    const char      *d;
    ug_jwt_rc_t      rc;
    ug_jwt_token_t   t;

    d = NULL;
    payload = NULL;

    rc = ug_jwt_parse(policy->algs, token, len, &t, claims, &d);

    /*
     * The signature first: nothing in the payload is even parsed before
     * it is known to come from a key holder (RFC 7515 section 5.2).
     */

    if (rc == UG_JWT_OK) {
        rc = ug_jwt_check_signature(keys, &t, token, &d);
    }

    if (rc == UG_JWT_OK) {
        payload = ug_jwt_json_object(t.payload, t.payload_len, 0, &d);
        rc = payload ? UG_JWT_OK : UG_JWT_MALFORMED;
    }

    if (rc == UG_JWT_OK) {
        rc = ug_jwt_check_claims(policy, payload, now, claims, &d);
    }

    json_decref(payload);

    if (rc != UG_JWT_OK) {
        claims->sub_len = 0;
        claims->org_len = 0;
        claims->plan_len = 0;
        claims->plan_org_len = 0;
        claims->sub[0] = '\0';
        claims->org[0] = '\0';
        claims->plan[0] = '\0';
        claims->plan_org[0] = '\0';
        claims->exp = 0;
    }

    if (detail) {
        *detail = d ? d : "token accepted";
    }

    return rc;
}


ug_jwt_rc_t
ug_jwt_verify_jws(const ug_jwt_keys_t *keys, unsigned algs,
    const char *token, size_t len, ug_jwt_claims_t *claims,
    const char **detail)
{
    const char      *d;
    ug_jwt_rc_t      rc;
    ug_jwt_token_t   t;

    d = NULL;

    rc = ug_jwt_parse(algs, token, len, &t, claims, &d);

    if (rc == UG_JWT_OK) {
        rc = ug_jwt_check_signature(keys, &t, token, &d);
    }

    if (detail) {
        *detail = d ? d : "signature verifies";
    }

    return rc;
}


/*
 * Splits and decodes a token and checks its header; the payload is only
 * decoded, into t->payload.
 */
static ug_jwt_rc_t
ug_jwt_parse(unsigned algs, const char *token, size_t len, ug_jwt_token_t *t,
    ug_jwt_claims_t *claims, const char **detail)
{
    int            a;
    long           n;
    json_t        *header, *v;
    const char    *dot1, *dot2, *end, *name, *sig;
    size_t         name_len;
    ug_jwt_rc_t    rc;
    unsigned char  buf[UG_JWT_SEG_MAX];

    memset(claims, 0, sizeof(ug_jwt_claims_t));
    t->alg = NULL;
    t->has_kid = 0;
    t->kid_len = 0;

    if (len > UG_JWT_MAX_TOKEN) {
        *detail = "token is larger than 8192 bytes";
        return UG_JWT_TOO_LARGE;
    }

    if (token == NULL || len == 0) {
        *detail = "malformed token: empty";
        return UG_JWT_MALFORMED;
    }

    end = token + len;

    dot1 = memchr(token, '.', len);
    if (dot1 == NULL) {
        *detail = "malformed token: not three dot-separated parts";
        return UG_JWT_MALFORMED;
    }

    n = ug_b64url_decode(buf, sizeof(buf), token, dot1 - token);
    if (n < 0) {
        *detail = "malformed token: header is not base64url";
        return UG_JWT_MALFORMED;
    }

    header = ug_jwt_json_object(buf, (size_t) n, 1, detail);
    if (header == NULL) {
        return UG_JWT_MALFORMED;
    }

    rc = UG_JWT_OK;

    /* alg "none" goes before anything else, in any spelling */

    v = json_object_get(header, "alg");

    if (v == NULL || !json_is_string(v)) {
        *detail = "malformed token: header has no alg";
        rc = UG_JWT_MALFORMED;
        goto done;
    }

    name = json_string_value(v);
    name_len = json_string_length(v);

    if (name_len == 4 && strncasecmp(name, "none", 4) == 0) {
        *detail = "unsigned token (alg \"none\") is not accepted";
        rc = UG_JWT_ALG_NONE;
        goto done;
    }

    a = ug_jwt_alg_from_name(name, name_len);

    if (a < 0) {
        *detail = "token algorithm is not supported";
        rc = UG_JWT_ALG_NOT_ALLOWED;
        goto done;
    }

    claims->alg = a;
    t->alg = ug_jwt_alg_find(a);

    v = json_object_get(header, "kid");

    if (v != NULL) {
        if (!json_is_string(v)) {
            *detail = "malformed token: kid is not a string";
            rc = UG_JWT_MALFORMED;
            goto done;
        }

        /* longer than any key's kid: it matches none */

        t->has_kid = 1;
        t->kid_len = json_string_length(v);

        if (t->kid_len > UG_ID_MAX) {
            t->kid_len = UG_ID_MAX + 1;

        } else {
            memcpy(t->kid, json_string_value(v), t->kid_len);

            /* for logs and $usage_gate_jwt_kid: only a printable kid */

            if (ug_id_check((const unsigned char *) t->kid, t->kid_len)
                == UG_ID_OK)
            {
                memcpy(claims->kid, t->kid, t->kid_len);
                claims->kid[t->kid_len] = '\0';
                claims->kid_len = t->kid_len;
            }
        }
    }

    if (!((unsigned) a & algs)) {
        *detail = "token algorithm is not accepted";
        rc = UG_JWT_ALG_NOT_ALLOWED;
        goto done;
    }

    /* RFC 7515 section 4.1.11: we understand no extension */

    if (json_object_get(header, "crit") != NULL) {
        *detail = "token has a crit header, which is not supported";
        rc = UG_JWT_CRIT;
        goto done;
    }

    dot2 = memchr(dot1 + 1, '.', end - (dot1 + 1));

    if (dot2 == NULL || memchr(dot2 + 1, '.', end - (dot2 + 1)) != NULL) {
        *detail = "malformed token: not three dot-separated parts";
        rc = UG_JWT_MALFORMED;
        goto done;
    }

    n = ug_b64url_decode(t->payload, sizeof(t->payload), dot1 + 1,
                         dot2 - (dot1 + 1));
    if (n < 0) {
        *detail = "malformed token: payload is not base64url";
        rc = UG_JWT_MALFORMED;
        goto done;
    }

    t->payload_len = (size_t) n;

    sig = dot2 + 1;

    if (sig == end) {
        *detail = "token has no signature";
        rc = UG_JWT_BAD_SIGNATURE;
        goto done;
    }

    n = ug_b64url_decode(t->sig, sizeof(t->sig), sig, end - sig);
    if (n < 0) {
        *detail = "malformed token: signature is not base64url";
        rc = UG_JWT_MALFORMED;
        goto done;
    }

    t->sig_len = (size_t) n;
    t->input_len = dot2 - token;

done:

    json_decref(header);

    return rc;
}


/* Parses decoded bytes that must be a JSON object of bounded depth. */
static json_t *
ug_jwt_json_object(const unsigned char *buf, size_t len, int is_header,
    const char **detail)
{
    json_t  *j;

    if (!ug_jwt_json_depth_ok(buf, len, UG_JWT_MAX_DEPTH)) {
        *detail = is_header
                  ? "malformed token: header nests deeper than 32"
                  : "malformed token: payload nests deeper than 32";
        return NULL;
    }

    j = json_loadb((const char *) buf, len, JSON_REJECT_DUPLICATES, NULL);

    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        *detail = is_header
                  ? "malformed token: header is not a JSON object"
                  : "malformed token: payload is not a JSON object";
        return NULL;
    }

    return j;
}


static ug_jwt_rc_t
ug_jwt_check_signature(const ug_jwt_keys_t *keys, ug_jwt_token_t *t,
    const char *input, const char **detail)
{
    size_t               i, tried;
    const ug_jwt_key_t  *key;

    tried = 0;

    for (i = 0; keys != NULL && i < keys->n; i++) {
        key = &keys->keys[i];

        /* the key type must fit the algorithm: no HS256 on RSA bytes */

        if (!(key->algs & (unsigned) t->alg->alg)) {
            continue;
        }

        /*
         * With a kid, the keys of that kid and the keys that have none
         * (a PEM key, a secret); without, every key that fits.
         */

        if (t->has_kid && key->has_kid
            && (key->kid_len != t->kid_len
                || memcmp(key->kid, t->kid, t->kid_len) != 0))
        {
            continue;
        }

        tried++;

        if (ug_jwt_verify_key(keys, key, t->alg, input, t->input_len,
                              t->sig, t->sig_len)
            == 1)
        {
            ERR_clear_error();
            return UG_JWT_OK;
        }
    }

    /* a failed verify leaves OpenSSL errors that nginx must not log */
    ERR_clear_error();

    if (tried == 0) {
        *detail = t->has_kid ? "no key matches the token's kid"
                                   : "no key for the token's algorithm";
        return UG_JWT_UNKNOWN_KEY;
    }

    *detail = "signature does not verify";
    return UG_JWT_BAD_SIGNATURE;
}


/* Returns 1 only for a signature that verifies. */
static int
ug_jwt_verify_key(const ug_jwt_keys_t *keys, const ug_jwt_key_t *key,
    const ug_jwt_alg_t *alg, const char *input, size_t input_len,
    const unsigned char *sig, size_t sig_len)
{
    int             rc, der_len;
    BIGNUM         *r, *s;
    ECDSA_SIG      *es;
    unsigned int    mac_len;
    unsigned char  *p, mac[EVP_MAX_MD_SIZE], der[160];

    switch (key->kty) {

    case UG_KTY_OCT:
        mac_len = 0;

        if (HMAC(keys->md[alg->md], key->secret, (int) key->secret_len,
                 (const unsigned char *) input, input_len, mac, &mac_len)
            == NULL)
        {
            return -1;
        }

        return sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;

    case UG_KTY_RSA:
        if (sig_len != (size_t) EVP_PKEY_get_size(key->pkey)) {
            return 0;
        }

        return ug_jwt_digest_verify(key->pkey, keys->md[alg->md],
                                    alg->alg & (UG_JWT_ALG_PS256
                                                | UG_JWT_ALG_PS384
                                                | UG_JWT_ALG_PS512),
                                    input, input_len, sig, sig_len);

    case UG_KTY_EC:
        /* JOSE sends raw r || s; a DER signature has another length */

        if (sig_len != 2 * key->coord || key->coord != alg->coord) {
            return 0;
        }

        r = BN_bin2bn(sig, (int) key->coord, NULL);
        s = BN_bin2bn(sig + key->coord, (int) key->coord, NULL);
        es = ECDSA_SIG_new();

        if (r == NULL || s == NULL || es == NULL
            || ECDSA_SIG_set0(es, r, s) != 1)
        {
            BN_free(r);
            BN_free(s);
            ECDSA_SIG_free(es);
            return -1;
        }

        /* es owns r and s now */

        der_len = i2d_ECDSA_SIG(es, NULL);

        if (der_len <= 0 || (size_t) der_len > sizeof(der)) {
            ECDSA_SIG_free(es);
            return -1;
        }

        p = der;
        der_len = i2d_ECDSA_SIG(es, &p);
        ECDSA_SIG_free(es);

        if (der_len <= 0) {
            return -1;
        }

        return ug_jwt_digest_verify(key->pkey, keys->md[alg->md], 0, input,
                                    input_len, der, (size_t) der_len);

    case UG_KTY_OKP:
        if (sig_len != 64) {
            return 0;
        }

        /* Ed25519 hashes inside: no digest */
        rc = ug_jwt_digest_verify(key->pkey, NULL, 0, input, input_len, sig,
                                  sig_len);
        return rc;
    }

    return -1;
}


static int
ug_jwt_digest_verify(EVP_PKEY *pkey, const EVP_MD *md, int pss,
    const char *input, size_t input_len, const unsigned char *sig,
    size_t sig_len)
{
    int            rc;
    EVP_MD_CTX    *ctx;
    EVP_PKEY_CTX  *pctx;

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return -1;
    }

    pctx = NULL;
    rc = -1;

    if (EVP_DigestVerifyInit(ctx, &pctx, md, NULL, pkey) != 1) {
        goto done;
    }

    if (pss) {
        /* RFC 7518 section 3.5: MGF1 with the same hash, salt = hash */

        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST)
               != 1
            || EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1)
        {
            goto done;
        }
    }

    /* anything but 1 (0 bad, negative error) is a failure */
    rc = (EVP_DigestVerify(ctx, sig, sig_len,
                           (const unsigned char *) input, input_len) == 1);

done:

    EVP_MD_CTX_free(ctx);

    return rc;
}


