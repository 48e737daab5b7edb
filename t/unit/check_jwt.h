/*
 * What the JWT Check tests share: keys made once before the tests fork,
 * JWKs and PEM text of them, tokens signed here with OpenSSL, and
 * wrappers around the product's ug_jwt_verify().  Functions are static
 * inline so that each check file may use only some of them.
 */

#ifndef CHECK_JWT_H
#define CHECK_JWT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "ug_b64url.h"
#include "ug_check.h"
#include "ug_jwt.h"


#define NOW      1800000000LL
#define TOKBUF   40000


#define ASSERT_RC(got, want)                                                  \
    ck_assert_msg((got) == (want), "rc %s, expected %s",                      \
                  ug_jwt_rc_name(got), ug_jwt_rc_name(want))


/* keys made once, before the tests fork */
static EVP_PKEY       *k_rsa, *k_rsa2, *k_ec256, *k_ec256b, *k_ec384, *k_ed;
static unsigned char   hs_secret[64];


static inline void
make_keys(void)
{
    size_t  i;

    k_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
    k_rsa2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
    k_ec256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    k_ec256b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    k_ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    k_ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

    for (i = 0; i < sizeof(hs_secret); i++) {
        hs_secret[i] = (unsigned char) (i * 37 + 11);
    }

    if (!k_rsa || !k_rsa2 || !k_ec256 || !k_ec256b || !k_ec384 || !k_ed) {
        fprintf(stderr, "key generation failed\n");
        exit(2);
    }
}


static inline size_t
b64(char *dst, const void *src, size_t len)
{
    size_t  n;

    n = ug_b64url_encode(dst, TOKBUF, src, len);
    dst[n] = '\0';

    return n;
}


static inline void
bn_b64(char *dst, const BIGNUM *bn, int pad)
{
    int            n;
    unsigned char  buf[1024];

    n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
    ck_assert_int_gt(n, 0);
    b64(dst, buf, (size_t) n);
}


/* The public JWK of a key made here, as JSON text. */
static inline void
jwk_of(char *out, size_t size, EVP_PKEY *pk, const char *kid,
    const char *alg)
{
    char           a[2048], b[2048], extra[300];
    BIGNUM        *x, *y;
    size_t         len;
    unsigned char  pub[64];

    extra[0] = '\0';

    if (kid) {
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
                 ",\"kid\":\"%s\"", kid);
    }

    if (alg) {
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
                 ",\"alg\":\"%s\"", alg);
    }

    x = NULL;
    y = NULL;

    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_RSA:
        ck_assert(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &x));
        ck_assert(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &y));
        bn_b64(a, x, 0);
        bn_b64(b, y, 0);
        snprintf(out, size, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"%s}",
                 a, b, extra);
        break;

    case EVP_PKEY_EC:
        ck_assert(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &x));
        ck_assert(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &y));
        len = (EVP_PKEY_get_bits(pk) + 7) / 8;
        bn_b64(a, x, (int) len);
        bn_b64(b, y, (int) len);
        snprintf(out, size, "{\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\","
                 "\"y\":\"%s\"%s}", len == 32 ? "P-256" : "P-384", a, b,
                 extra);
        break;

    default:
        ck_assert(EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY,
                                                  pub, sizeof(pub), &len));
        b64(a, pub, len);
        snprintf(out, size, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
                 "\"x\":\"%s\"%s}", a, extra);
        break;
    }

    BN_free(x);
    BN_free(y);
}


static inline void
pem_of(char *out, size_t size, EVP_PKEY *pk)
{
    BIO   *bio;
    char  *p;
    long   n;

    bio = BIO_new(BIO_s_mem());
    ck_assert(PEM_write_bio_PUBKEY(bio, pk) == 1);
    n = BIO_get_mem_data(bio, &p);
    ck_assert((size_t) n < size);
    memcpy(out, p, (size_t) n);
    out[n] = '\0';
    BIO_free(bio);
}


static inline const EVP_MD *
md_of(int alg)
{
    if (alg & (UG_JWT_ALG_HS256 | UG_JWT_ALG_RS256 | UG_JWT_ALG_PS256
               | UG_JWT_ALG_ES256))
    {
        return EVP_sha256();
    }

    if (alg & (UG_JWT_ALG_HS384 | UG_JWT_ALG_RS384 | UG_JWT_ALG_PS384
               | UG_JWT_ALG_ES384))
    {
        return EVP_sha384();
    }

    if (alg & UG_JWT_ALG_EDDSA) {
        return NULL;
    }

    return EVP_sha512();
}


/*
 * Signs input with alg and key (or secret), JOSE style: raw r || s for
 * ES* unless der is set.  Returns the signature length.
 */
static inline size_t
sign(int alg, EVP_PKEY *pk, const unsigned char *secret, size_t secret_len,
    const char *input, unsigned char *sig, int der)
{
    size_t           len, c;
    ECDSA_SIG       *es;
    EVP_MD_CTX      *ctx;
    unsigned int     mlen;
    EVP_PKEY_CTX    *pctx;
    const BIGNUM    *r, *s;
    unsigned char    buf[4096];
    const unsigned char  *p;

    if (alg & UG_JWT_ALG_HMAC) {
        mlen = 0;
        ck_assert_ptr_nonnull(HMAC(md_of(alg), secret, (int) secret_len,
                                   (const unsigned char *) input,
                                   strlen(input), sig, &mlen));
        return mlen;
    }

    ctx = EVP_MD_CTX_new();
    pctx = NULL;
    ck_assert(EVP_DigestSignInit(ctx, &pctx, md_of(alg), NULL, pk) == 1);

    if (alg & (UG_JWT_ALG_PS256 | UG_JWT_ALG_PS384 | UG_JWT_ALG_PS512)) {
        ck_assert(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING)
                  == 1);
        ck_assert(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
                                                   RSA_PSS_SALTLEN_DIGEST)
                  == 1);
    }

    len = sizeof(buf);
    ck_assert(EVP_DigestSign(ctx, buf, &len, (const unsigned char *) input,
                             strlen(input)) == 1);
    EVP_MD_CTX_free(ctx);

    if (!(alg & (UG_JWT_ALG_ES256 | UG_JWT_ALG_ES384)) || der) {
        memcpy(sig, buf, len);
        return len;
    }

    c = (alg & UG_JWT_ALG_ES256) ? 32 : 48;
    p = buf;
    es = d2i_ECDSA_SIG(NULL, &p, (long) len);
    ck_assert_ptr_nonnull(es);
    ECDSA_SIG_get0(es, &r, &s);
    ck_assert(BN_bn2binpad(r, sig, (int) c) == (int) c);
    ck_assert(BN_bn2binpad(s, sig + c, (int) c) == (int) c);
    ECDSA_SIG_free(es);

    return 2 * c;
}


/* header.payload.signature from JSON texts, signed with key or secret. */
static inline char *
mint_with(char *out, int alg, EVP_PKEY *pk, const unsigned char *secret,
    size_t secret_len, const char *header, const char *payload, int der)
{
    char           h[512];
    size_t         n, slen;
    unsigned char  sig[4096];

    if (header == NULL) {
        snprintf(h, sizeof(h), "{\"alg\":\"%s\",\"typ\":\"JWT\"}",
                 ug_jwt_alg_name(alg));
        header = h;
    }

    n = b64(out, header, strlen(header));
    out[n++] = '.';
    n += b64(out + n, payload, strlen(payload));

    slen = sign(alg, pk, secret, secret_len, out, sig, der);

    out[n++] = '.';
    b64(out + n, sig, slen);

    return out;
}


static inline EVP_PKEY *
key_for(int alg)
{
    if (alg & UG_JWT_ALG_RSA) {
        return k_rsa;
    }

    if (alg & UG_JWT_ALG_ES256) {
        return k_ec256;
    }

    if (alg & UG_JWT_ALG_ES384) {
        return k_ec384;
    }

    if (alg & UG_JWT_ALG_EDDSA) {
        return k_ed;
    }

    return NULL;
}


static inline char *
mint(char *out, int alg, const char *header, const char *payload)
{
    return mint_with(out, alg, key_for(alg), hs_secret, sizeof(hs_secret),
                     header, payload, 0);
}


/* The standard set: one key of each type, with kids, and the secret. */
static inline ug_jwt_keys_t *
std_keys(void)
{
    char            *text, jwk[5][4096];
    char             err[256];
    ug_jwt_keys_t   *keys;

    jwk_of(jwk[0], sizeof(jwk[0]), k_rsa, "rsa1", NULL);
    jwk_of(jwk[1], sizeof(jwk[1]), k_ec256, "ec1", NULL);
    jwk_of(jwk[2], sizeof(jwk[2]), k_ec384, "ec2", NULL);
    jwk_of(jwk[3], sizeof(jwk[3]), k_ed, "ed1", NULL);

    text = malloc(TOKBUF);
    snprintf(text, TOKBUF, "{\"keys\":[%s,%s,%s,%s]}", jwk[0], jwk[1],
             jwk[2], jwk[3]);

    keys = ug_jwt_keys_new();
    ck_assert_ptr_nonnull(keys);
    ck_assert_msg(ug_jwt_keys_add_text(keys, text, strlen(text), err,
                                       sizeof(err)) == 0, "%s", err);
    ck_assert_msg(ug_jwt_keys_add_secret(keys, hs_secret, sizeof(hs_secret),
                                         err, sizeof(err)) == 0, "%s", err);
    free(text);

    return keys;
}


static inline ug_jwt_keys_t *
keys_from(const char *text)
{
    char            err[256];
    ug_jwt_keys_t  *keys;

    keys = ug_jwt_keys_new();
    ck_assert_ptr_nonnull(keys);
    ck_assert_msg(ug_jwt_keys_add_text(keys, text, strlen(text), err,
                                       sizeof(err)) == 0, "%s", err);

    return keys;
}


/* Expects ug_jwt_keys_add_text to fail with a message holding want. */
static inline void
keys_error(const char *text, const char *want)
{
    char            err[256];
    ug_jwt_keys_t  *keys;

    keys = ug_jwt_keys_new();
    strcpy(err, "(unset)");

    ck_assert_msg(ug_jwt_keys_add_text(keys, text, strlen(text), err,
                                       sizeof(err)) == -1,
                  "accepted: %.200s", text);
    ck_assert_msg(strstr(err, want) != NULL, "message \"%s\" lacks \"%s\"",
                  err, want);
    ck_assert_uint_eq(ug_jwt_keys_count(keys), 0);

    ug_jwt_keys_free(keys);
}


static inline ug_jwt_rc_t
verify(const ug_jwt_keys_t *keys, const ug_jwt_policy_t *policy,
    const char *token, int64_t now, ug_jwt_claims_t *c)
{
    const char       *detail;
    ug_jwt_rc_t       rc;
    ug_jwt_claims_t   scratch;

    if (c == NULL) {
        c = &scratch;
    }

    detail = NULL;
    rc = ug_jwt_verify(keys, policy, token, strlen(token), now, c, &detail);

    ck_assert_ptr_nonnull(detail);
    ck_assert_int_gt((int) strlen(detail), 0);

    if (rc != UG_JWT_OK) {
        ck_assert_uint_eq(c->sub_len, 0);
        ck_assert_uint_eq(c->plan_len, 0);
        ck_assert_uint_eq(c->plan_org_len, 0);
        ck_assert_uint_eq(c->org_len, 0);
    }

    return rc;
}


static inline const char *
detail_of(const ug_jwt_keys_t *keys, const ug_jwt_policy_t *policy,
    const char *token, int64_t now)
{
    const char       *detail;
    ug_jwt_claims_t   c;

    detail = NULL;
    ug_jwt_verify(keys, policy, token, strlen(token), now, &c, &detail);

    return detail;
}


/* A payload with a subject, valid for an hour around NOW. */
static inline const char *
good_payload(void)
{
    static char  p[256];

    snprintf(p, sizeof(p), "{\"sub\":\"user_2abc\",\"iat\":%lld,"
             "\"exp\":%lld}", NOW - 10, NOW + 3600);

    return p;
}


/* Flips one character in the middle of the given segment (0, 1, 2). */
static inline void
tamper(char *token, int segment)
{
    char  *p, *q;

    p = token;

    while (segment-- > 0) {
        p = strchr(p, '.') + 1;
    }

    q = strchr(p, '.');
    if (q == NULL) {
        q = p + strlen(p);
    }

    p += (q - p) / 2;
    *p = (*p == 'A') ? 'B' : 'A';
}


/* the published examples */

#endif /* CHECK_JWT_H */
