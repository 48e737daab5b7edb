/*
 * The JWT verifier: the published examples (RFC 7515 appendix A, RFC
 * 8037 appendix A.4), every algorithm with keys made here, one test per
 * rejection rule, claims, and key file parsing.
 *
 * Tokens that need fresh signatures are signed here with OpenSSL; the
 * verification is always the product's (ug_jwt_verify).
 */

#include <stdio.h>
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


/* RFC 7515 appendix A.1: HS256, with the JWK secret of A.1.1 */
static const char  rfc7515_a1_jwk[] =
    "{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1"
    "qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"}";

static const char  rfc7515_a1_token[] =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
    "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/* A.2: RS256, public part of the JWK of A.2.1 */
static const char  rfc7515_a2_jwk[] =
    "{\"kty\":\"RSA\",\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k"
    "0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMs"
    "D1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexM"
    "dbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9k"
    "G4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW"
    "9gb54h4FRWyuXpoQ\",\"e\":\"AQAB\"}";

static const char  rfc7515_a2_token[] =
    "eyJhbGciOiJSUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
    "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7"
    "AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4"
    "BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K"
    "0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqv"
    "hJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrB"
    "p0igcN_IoypGlUPQGe77Rw";

/* A.3: ES256, public part of the JWK of A.3.1 */
static const char  rfc7515_a3_jwk[] =
    "{\"kty\":\"EC\",\"crv\":\"P-256\","
    "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}";

static const char  rfc7515_a3_token[] =
    "eyJhbGciOiJFUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
    "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSA"
    "pmWQxfKTUJqPP3-Kg6NU1Q";

/* RFC 8037 appendix A.4 (key of A.2): Ed25519 over a text payload */
static const char  rfc8037_jwk[] =
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";

static const char  rfc8037_token[] =
    "eyJhbGciOiJFZERTQSJ9."
    "RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5B"
    "hVsPt9g7sVvpAr_MuM0KAg";

/* the RFC 7515 examples expire at 1300819380 */
#define RFC_NOW  1300819000LL
#define RFC_EXP  1300819380LL


/* keys made once, before the tests fork */
static EVP_PKEY       *k_rsa, *k_rsa2, *k_ec256, *k_ec256b, *k_ec384, *k_ed;
static unsigned char   hs_secret[64];


static void
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


static size_t
b64(char *dst, const void *src, size_t len)
{
    size_t  n;

    n = ug_b64url_encode(dst, TOKBUF, src, len);
    dst[n] = '\0';

    return n;
}


static void
bn_b64(char *dst, const BIGNUM *bn, int pad)
{
    int            n;
    unsigned char  buf[1024];

    n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
    ck_assert_int_gt(n, 0);
    b64(dst, buf, (size_t) n);
}


/* The public JWK of a key made here, as JSON text. */
static void
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


static void
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


static const EVP_MD *
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
static size_t
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
static char *
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


static EVP_PKEY *
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


static char *
mint(char *out, int alg, const char *header, const char *payload)
{
    return mint_with(out, alg, key_for(alg), hs_secret, sizeof(hs_secret),
                     header, payload, 0);
}


/* The standard set: one key of each type, with kids, and the secret. */
static ug_jwt_keys_t *
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


static ug_jwt_keys_t *
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
static void
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


static ug_jwt_rc_t
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
        ck_assert_uint_eq(c->org_len, 0);
    }

    return rc;
}


static const char *
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
static const char *
good_payload(void)
{
    static char  p[256];

    snprintf(p, sizeof(p), "{\"sub\":\"user_2abc\",\"iat\":%lld,"
             "\"exp\":%lld}", NOW - 10, NOW + 3600);

    return p;
}


/* Flips one character in the middle of the given segment (0, 1, 2). */
static void
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


START_TEST(test_rfc7515_a1_hs256)
{
    char              tok[sizeof(rfc7515_a1_token)];
    ug_jwt_keys_t    *keys;
    ug_jwt_claims_t   c;
    ug_jwt_policy_t   pol;

    keys = keys_from(rfc7515_a1_jwk);
    ug_jwt_policy_init(&pol, keys);
    ck_assert_uint_eq(pol.algs, UG_JWT_ALG_HMAC);

    /* the signature verifies; the example simply names no subject */
    ASSERT_RC(verify(keys, &pol, rfc7515_a1_token, RFC_NOW, &c),
              UG_JWT_NO_SUBJECT);
    ck_assert_int_eq(c.alg, UG_JWT_ALG_HS256);
    ASSERT_RC(ug_jwt_verify_jws(keys, pol.algs, rfc7515_a1_token,
                                strlen(rfc7515_a1_token), &c, NULL),
              UG_JWT_OK);

    /* and its exp is enforced, with the leeway */
    ASSERT_RC(verify(keys, &pol, rfc7515_a1_token, RFC_EXP + 59, &c),
              UG_JWT_NO_SUBJECT);
    ASSERT_RC(verify(keys, &pol, rfc7515_a1_token, RFC_EXP + 60, &c),
              UG_JWT_EXPIRED);

    strcpy(tok, rfc7515_a1_token);
    tamper(tok, 1);
    ASSERT_RC(verify(keys, &pol, tok, RFC_NOW, &c), UG_JWT_BAD_SIGNATURE);

    strcpy(tok, rfc7515_a1_token);
    tamper(tok, 2);
    ASSERT_RC(verify(keys, &pol, tok, RFC_NOW, &c), UG_JWT_BAD_SIGNATURE);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_rfc7515_a2_rs256)
{
    char              tok[sizeof(rfc7515_a2_token)];
    ug_jwt_keys_t    *keys;
    ug_jwt_claims_t   c;
    ug_jwt_policy_t   pol;

    keys = keys_from(rfc7515_a2_jwk);
    ug_jwt_policy_init(&pol, keys);
    ck_assert_uint_eq(pol.algs, UG_JWT_ALG_RSA);

    ASSERT_RC(verify(keys, &pol, rfc7515_a2_token, RFC_NOW, &c),
              UG_JWT_NO_SUBJECT);
    ck_assert_int_eq(c.alg, UG_JWT_ALG_RS256);
    ASSERT_RC(ug_jwt_verify_jws(keys, pol.algs, rfc7515_a2_token,
                                strlen(rfc7515_a2_token), &c, NULL),
              UG_JWT_OK);

    strcpy(tok, rfc7515_a2_token);
    tamper(tok, 1);
    ASSERT_RC(verify(keys, &pol, tok, RFC_NOW, &c), UG_JWT_BAD_SIGNATURE);

    strcpy(tok, rfc7515_a2_token);
    tamper(tok, 2);
    ASSERT_RC(verify(keys, &pol, tok, RFC_NOW, &c), UG_JWT_BAD_SIGNATURE);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_rfc7515_a3_es256)
{
    char              tok[sizeof(rfc7515_a3_token)];
    ug_jwt_keys_t    *keys;
    ug_jwt_claims_t   c;
    ug_jwt_policy_t   pol;

    keys = keys_from(rfc7515_a3_jwk);
    ug_jwt_policy_init(&pol, keys);
    ck_assert_uint_eq(pol.algs, UG_JWT_ALG_ES256);

    ASSERT_RC(verify(keys, &pol, rfc7515_a3_token, RFC_NOW, &c),
              UG_JWT_NO_SUBJECT);
    ck_assert_int_eq(c.alg, UG_JWT_ALG_ES256);
    ASSERT_RC(ug_jwt_verify_jws(keys, pol.algs, rfc7515_a3_token,
                                strlen(rfc7515_a3_token), &c, NULL),
              UG_JWT_OK);

    strcpy(tok, rfc7515_a3_token);
    tamper(tok, 1);
    ASSERT_RC(verify(keys, &pol, tok, RFC_NOW, &c), UG_JWT_BAD_SIGNATURE);

    strcpy(tok, rfc7515_a3_token);
    tamper(tok, 2);
    ASSERT_RC(verify(keys, &pol, tok, RFC_NOW, &c), UG_JWT_BAD_SIGNATURE);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_rfc8037_a4_ed25519)
{
    char              tok[sizeof(rfc8037_token)];
    ug_jwt_keys_t    *keys;
    ug_jwt_claims_t   c;
    ug_jwt_policy_t   pol;

    keys = keys_from(rfc8037_jwk);
    ug_jwt_policy_init(&pol, keys);
    ck_assert_uint_eq(pol.algs, UG_JWT_ALG_EDDSA);

    ASSERT_RC(ug_jwt_verify_jws(keys, pol.algs, rfc8037_token,
                                strlen(rfc8037_token), &c, NULL),
              UG_JWT_OK);
    ck_assert_int_eq(c.alg, UG_JWT_ALG_EDDSA);

    /* its payload is text, which a JWT may not be */
    ASSERT_RC(verify(keys, &pol, rfc8037_token, NOW, &c), UG_JWT_MALFORMED);
    ck_assert_str_eq(detail_of(keys, &pol, rfc8037_token, NOW),
                     "malformed token: payload is not a JSON object");

    strcpy(tok, rfc8037_token);
    tamper(tok, 2);
    ASSERT_RC(ug_jwt_verify_jws(keys, pol.algs, tok, strlen(tok), &c, NULL),
              UG_JWT_BAD_SIGNATURE);

    strcpy(tok, rfc8037_token);
    tamper(tok, 1);
    ASSERT_RC(ug_jwt_verify_jws(keys, pol.algs, tok, strlen(tok), &c, NULL),
              UG_JWT_BAD_SIGNATURE);

    ug_jwt_keys_free(keys);
}
END_TEST


/* every algorithm, with keys and signatures made here */


static const int  all_algs[] = {
    UG_JWT_ALG_HS256, UG_JWT_ALG_HS384, UG_JWT_ALG_HS512,
    UG_JWT_ALG_RS256, UG_JWT_ALG_RS384, UG_JWT_ALG_RS512,
    UG_JWT_ALG_PS256, UG_JWT_ALG_PS384, UG_JWT_ALG_PS512,
    UG_JWT_ALG_ES256, UG_JWT_ALG_ES384, UG_JWT_ALG_EDDSA
};


START_TEST(test_every_alg_accepted)
{
    int               alg;
    char              tok[TOKBUF], payload[512];
    ug_jwt_keys_t    *keys;
    ug_jwt_claims_t   c;
    ug_jwt_policy_t   pol;

    alg = all_algs[_i];
    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);
    ck_assert_uint_eq(pol.algs, UG_JWT_ALG_ALL);

    snprintf(payload, sizeof(payload),
             "{\"sub\":\"user_%s\",\"org_id\":\"org_9\","
             "\"public_metadata\":{\"plan\":\"Pro\"},\"exp\":%lld}",
             ug_jwt_alg_name(alg), NOW + 60);
    mint(tok, alg, NULL, payload);

    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_OK);
    ck_assert_int_eq(c.alg, alg);
    ck_assert_str_eq(c.sub + 5, ug_jwt_alg_name(alg));
    ck_assert_uint_eq(c.sub_len, 5 + strlen(ug_jwt_alg_name(alg)));
    ck_assert_str_eq(c.org, "org_9");
    ck_assert_uint_eq(c.org_len, 5);
    ck_assert_str_eq(c.plan, "Pro");
    ck_assert_uint_eq(c.plan_len, 3);
    ck_assert_int_eq(c.exp, NOW + 60);
    ck_assert_uint_eq(c.kid_len, 0);

    tamper(tok, 1);
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_BAD_SIGNATURE);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_alg_names)
{
    size_t  i;

    for (i = 0; i < sizeof(all_algs) / sizeof(all_algs[0]); i++) {
        ck_assert_int_eq(ug_jwt_alg_from_name(ug_jwt_alg_name(all_algs[i]),
                                              strlen(ug_jwt_alg_name(
                                                         all_algs[i]))),
                         all_algs[i]);
    }

    ck_assert_int_eq(ug_jwt_alg_from_name("RS256", 5), UG_JWT_ALG_RS256);
    ck_assert_int_eq(ug_jwt_alg_from_name("EdDSA", 5), UG_JWT_ALG_EDDSA);
    ck_assert_int_eq(ug_jwt_alg_from_name("rs256", 5), -1);
    ck_assert_int_eq(ug_jwt_alg_from_name("none", 4), -1);
    ck_assert_int_eq(ug_jwt_alg_from_name("RS2567", 6), -1);
    ck_assert_int_eq(ug_jwt_alg_from_name("RS25", 4), -1);
    ck_assert_int_eq(ug_jwt_alg_from_name("ES512", 5), -1);
}
END_TEST


/* rejection rules */


START_TEST(test_alg_none_any_spelling)
{
    static const char  *spell[] = { "none", "None", "NONE", "nOnE" };

    int               i;
    char              tok[TOKBUF], h[64], p[256];
    size_t            n;
    ug_jwt_keys_t    *keys;
    ug_jwt_claims_t   c;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);
    pol.algs = UG_JWT_ALG_ALL;

    snprintf(p, sizeof(p), "{\"sub\":\"user_1\",\"public_metadata\":"
             "{\"plan\":\"enterprise\"},\"exp\":%lld}", NOW + 60);

    for (i = 0; i < 4; i++) {
        snprintf(h, sizeof(h), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", spell[i]);

        /* the classic: empty signature */
        n = b64(tok, h, strlen(h));
        tok[n++] = '.';
        n += b64(tok + n, p, strlen(p));
        tok[n++] = '.';
        tok[n] = '\0';

        ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_ALG_NONE);

        /* with something in the signature, or no signature part at all */
        strcpy(tok + n, "c2ln");
        ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_ALG_NONE);
        tok[n - 1] = '\0';
        ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_ALG_NONE);
    }

    /* and a proper token right after is still checked in full */
    mint(tok, UG_JWT_ALG_RS256, NULL, good_payload());
    tamper(tok, 1);
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_BAD_SIGNATURE);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_alg_not_allowed)
{
    char              tok[TOKBUF];
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    pol.algs = UG_JWT_ALG_RS256;

    mint(tok, UG_JWT_ALG_RS256, NULL, good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    mint(tok, UG_JWT_ALG_PS256, NULL, good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_ALG_NOT_ALLOWED);

    mint(tok, UG_JWT_ALG_HS256, NULL, good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_ALG_NOT_ALLOWED);
    ck_assert_str_eq(detail_of(keys, &pol, tok, NOW),
                     "token algorithm is not accepted");

    /* names are exact: no case folding for real algorithms */
    mint(tok, UG_JWT_ALG_RS256, "{\"alg\":\"rs256\"}", good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_ALG_NOT_ALLOWED);

    pol.algs = UG_JWT_ALG_ALL;

    mint(tok, UG_JWT_ALG_HS256, "{\"alg\":\"HS1024\"}", good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_ALG_NOT_ALLOWED);

    mint(tok, UG_JWT_ALG_HS256, "{\"alg\":\"none \"}", good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_ALG_NOT_ALLOWED);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_crit_rejected)
{
    char              tok[TOKBUF];
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    mint(tok, UG_JWT_ALG_RS256, "{\"alg\":\"RS256\",\"crit\":[\"exp\"],"
         "\"exp\":1}", good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_CRIT);

    /* RFC 7797 unencoded payloads come only through crit */
    mint(tok, UG_JWT_ALG_ES256, "{\"alg\":\"ES256\",\"b64\":false,"
         "\"crit\":[\"b64\"]}", good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_CRIT);

    mint(tok, UG_JWT_ALG_ES256, "{\"alg\":\"ES256\",\"crit\":[]}",
         good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_CRIT);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_tampered_payload)
{
    char              tok[TOKBUF], forged[TOKBUF], p[256], *dot;
    size_t            n;
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    /* a real token whose payload is swapped for one claiming more */
    mint(tok, UG_JWT_ALG_RS256, NULL, good_payload());

    snprintf(p, sizeof(p), "{\"sub\":\"user_2abc\",\"public_metadata\":"
             "{\"plan\":\"enterprise\"},\"exp\":%lld}", NOW + 3600);

    dot = strchr(tok, '.');
    n = (size_t) (dot - tok) + 1;
    memcpy(forged, tok, n);
    n += b64(forged + n, p, strlen(p));
    strcpy(forged + n, strrchr(tok, '.'));

    ASSERT_RC(verify(keys, &pol, forged, NOW, NULL), UG_JWT_BAD_SIGNATURE);
    ck_assert_str_eq(detail_of(keys, &pol, forged, NOW),
                     "signature does not verify");

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_stripped_signature)
{
    char              tok[TOKBUF];
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    mint(tok, UG_JWT_ALG_RS256, NULL, good_payload());
    strrchr(tok, '.')[1] = '\0';
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_BAD_SIGNATURE);

    mint(tok, UG_JWT_ALG_HS256, NULL, good_payload());
    strrchr(tok, '.')[1] = '\0';
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_BAD_SIGNATURE);

    /* a truncated signature (86 characters to 84: still base64url) */
    mint(tok, UG_JWT_ALG_ES256, NULL, good_payload());
    ck_assert_uint_eq(strlen(strrchr(tok, '.') + 1), 86);
    tok[strlen(tok) - 2] = '\0';
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_BAD_SIGNATURE);

    /* RSA and Ed25519 signatures of the wrong length */
    mint(tok, UG_JWT_ALG_RS256, NULL, good_payload());
    tok[strlen(tok) - 2] = '\0';
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_BAD_SIGNATURE);

    mint(tok, UG_JWT_ALG_EDDSA, NULL, good_payload());
    strcat(tok, "AAAA");
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_BAD_SIGNATURE);

    ug_jwt_keys_free(keys);
}
END_TEST


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


START_TEST(test_kid_selects_key)
{
    char              tok[TOKBUF], jwks[TOKBUF], a[4096], b[4096];
    ug_jwt_keys_t    *keys;
    ug_jwt_claims_t   c;
    ug_jwt_policy_t   pol;

    jwk_of(a, sizeof(a), k_rsa, "k1", NULL);
    jwk_of(b, sizeof(b), k_rsa2, "k2", NULL);
    snprintf(jwks, sizeof(jwks), "{\"keys\":[%s,%s]}", a, b);
    keys = keys_from(jwks);
    ug_jwt_policy_init(&pol, keys);

    mint_with(tok, UG_JWT_ALG_RS256, k_rsa2, NULL, 0,
              "{\"alg\":\"RS256\",\"kid\":\"k2\"}", good_payload(), 0);
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_OK);
    ck_assert_str_eq(c.kid, "k2");
    ck_assert_uint_eq(c.kid_len, 2);

    /* without kid every RSA key is tried */
    mint_with(tok, UG_JWT_ALG_RS256, k_rsa2, NULL, 0,
              "{\"alg\":\"RS256\"}", good_payload(), 0);
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_OK);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_unknown_kid)
{
    char              tok[TOKBUF], head[300];
    ug_jwt_keys_t    *keys;
    ug_jwt_claims_t   c;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    /* the set has a kid-less secret; an RSA token matches no RSA kid */
    mint(tok, UG_JWT_ALG_RS256, "{\"alg\":\"RS256\",\"kid\":\"nope\"}",
         good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_UNKNOWN_KEY);
    ck_assert_str_eq(c.kid, "nope");
    ck_assert_str_eq(detail_of(keys, &pol, tok, NOW),
                     "no key matches the token's kid");

    /* a kid naming a key of another type does not fit either */
    mint(tok, UG_JWT_ALG_RS256, "{\"alg\":\"RS256\",\"kid\":\"ec1\"}",
         good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_UNKNOWN_KEY);

    /* an unprintable kid is not echoed into the claims */
    mint(tok, UG_JWT_ALG_RS256, "{\"alg\":\"RS256\",\"kid\":\"a b\\n\"}",
         good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_UNKNOWN_KEY);
    ck_assert_uint_eq(c.kid_len, 0);

    mint(tok, UG_JWT_ALG_RS256, "{\"alg\":\"RS256\",\"kid\":7}",
         good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_MALFORMED);

    /* a kid longer than any key's matches none and is not copied */
    snprintf(head, sizeof(head), "{\"alg\":\"RS256\",\"kid\":\"rsa1%0200d\"}",
             0);
    mint(tok, UG_JWT_ALG_RS256, head, good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_UNKNOWN_KEY);
    ck_assert_uint_eq(c.kid_len, 0);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_other_key_same_kid)
{
    char              tok[TOKBUF], jwk[4096], head[4500];
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    /* signed by an attacker's key, naming the real key's kid */
    mint_with(tok, UG_JWT_ALG_RS256, k_rsa2, NULL, 0,
              "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", good_payload(), 0);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_BAD_SIGNATURE);

    mint_with(tok, UG_JWT_ALG_ES256, k_ec256b, NULL, 0,
              "{\"alg\":\"ES256\",\"kid\":\"ec1\"}", good_payload(), 0);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_BAD_SIGNATURE);

    /* keys named or embedded in the header itself are never used */
    jwk_of(jwk, sizeof(jwk), k_rsa2, "rsa1", NULL);
    snprintf(head, sizeof(head), "{\"alg\":\"RS256\",\"kid\":\"rsa1\","
             "\"jku\":\"https://evil.example/jwks\",\"jwk\":%s}", jwk);
    mint_with(tok, UG_JWT_ALG_RS256, k_rsa2, NULL, 0, head, good_payload(),
              0);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_BAD_SIGNATURE);

    /* and the genuine one passes */
    mint(tok, UG_JWT_ALG_RS256, "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
         good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_hs256_with_rsa_public_key)
{
    char              tok[TOKBUF], pem[4096], jwk[4096];
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    pem_of(pem, sizeof(pem), k_rsa);

    /* the forgery: HMAC keyed with the public key's PEM bytes */
    mint_with(tok, UG_JWT_ALG_HS256, NULL, (const unsigned char *) pem,
              strlen(pem), NULL, good_payload(), 0);

    keys = keys_from(pem);
    ug_jwt_policy_init(&pol, keys);

    /* the default allow-list has no HS* without a secret */
    ck_assert_uint_eq(pol.algs, UG_JWT_ALG_RSA);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_ALG_NOT_ALLOWED);

    /* even with HS256 allowed, an RSA key never verifies it */
    pol.algs = UG_JWT_ALG_ALL;
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_UNKNOWN_KEY);
    ug_jwt_keys_free(keys);

    jwk_of(jwk, sizeof(jwk), k_rsa, "rsa1", NULL);
    keys = keys_from(jwk);
    ug_jwt_policy_init(&pol, keys);
    pol.algs = UG_JWT_ALG_ALL;
    mint_with(tok, UG_JWT_ALG_HS256, NULL, (const unsigned char *) jwk,
              strlen(jwk), "{\"alg\":\"HS256\",\"kid\":\"rsa1\"}",
              good_payload(), 0);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_UNKNOWN_KEY);

    /* while the key itself works for RS256 */
    mint(tok, UG_JWT_ALG_RS256, NULL, good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_es256_der_signature)
{
    char              tok[TOKBUF];
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    mint_with(tok, UG_JWT_ALG_ES256, k_ec256, NULL, 0, NULL, good_payload(),
              1);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_BAD_SIGNATURE);

    mint_with(tok, UG_JWT_ALG_ES384, k_ec384, NULL, 0, NULL, good_payload(),
              1);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_BAD_SIGNATURE);

    /* the same signatures in JOSE form verify */
    mint_with(tok, UG_JWT_ALG_ES256, k_ec256, NULL, 0, NULL, good_payload(),
              0);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_curve_must_fit)
{
    char              tok[TOKBUF], jwk[4096];
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    /* only a P-384 key: an ES256 token has no key, even with kid */
    jwk_of(jwk, sizeof(jwk), k_ec384, "ec", NULL);
    keys = keys_from(jwk);
    ug_jwt_policy_init(&pol, keys);
    pol.algs = UG_JWT_ALG_ALL;

    mint_with(tok, UG_JWT_ALG_ES256, k_ec256, NULL, 0,
              "{\"alg\":\"ES256\",\"kid\":\"ec\"}", good_payload(), 0);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_UNKNOWN_KEY);
    ck_assert_str_eq(detail_of(keys, &pol, tok, NOW),
                     "no key matches the token's kid");

    mint_with(tok, UG_JWT_ALG_ES256, k_ec256, NULL, 0, NULL, good_payload(),
              0);
    ck_assert_str_eq(detail_of(keys, &pol, tok, NOW),
                     "no key for the token's algorithm");

    mint(tok, UG_JWT_ALG_EDDSA, NULL, good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_UNKNOWN_KEY);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_jwk_alg_restricts)
{
    char              tok[TOKBUF], jwk[4096];
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    jwk_of(jwk, sizeof(jwk), k_rsa, "r", "RS256");
    keys = keys_from(jwk);
    ug_jwt_policy_init(&pol, keys);
    ck_assert_uint_eq(pol.algs, UG_JWT_ALG_RS256);

    pol.algs = UG_JWT_ALG_ALL;

    mint(tok, UG_JWT_ALG_RS256, NULL, good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    mint(tok, UG_JWT_ALG_PS256, NULL, good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_UNKNOWN_KEY);

    mint(tok, UG_JWT_ALG_RS512, NULL, good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_UNKNOWN_KEY);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_garbage)
{
    static const char  *junk[] = {
        "garbage", ".", "..", "...", "a.b.c", "e30.e30.e30", "e30..",
        "eyJhbGciOiJSUzI1NiJ9", "Bearer x", "{\"alg\":\"RS256\"}.e30.AA",
        "\xff\xfe.\x01.\x02", "eyJhbGciOiJSUzI1NiJ9.\x80.AA",
        "eyJhbGciOiJSUzI1NiJ9.e30.!!"
    };

    size_t            i;
    ug_jwt_keys_t    *keys;
    ug_jwt_claims_t   c;
    ug_jwt_policy_t   pol;
    const char       *detail;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        ck_assert_msg(verify(keys, &pol, junk[i], NOW, &c) == UG_JWT_MALFORMED,
                      "junk %zu: %s", i,
                      ug_jwt_rc_name(verify(keys, &pol, junk[i], NOW, &c)));
    }

    ASSERT_RC(ug_jwt_verify(keys, &pol, "", 0, NOW, &c, &detail),
              UG_JWT_MALFORMED);

    /* a NUL inside the given length */
    ASSERT_RC(ug_jwt_verify(keys, &pol, "e30\0.e30.AA", 11, NOW, &c,
                            &detail), UG_JWT_MALFORMED);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_size_limit)
{
    int               k;
    char             *tok, *p, head[64];
    size_t            pad, len;
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;
    ug_jwt_claims_t   c;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    tok = malloc(TOKBUF);
    p = malloc(TOKBUF);

    /* a real token of exactly 8192 bytes passes */
    len = 0;

    for (k = 1; k < 4 && len != UG_JWT_MAX_TOKEN; k++) {
        snprintf(head, sizeof(head), "{\"alg\":\"HS256\",\"kid\":\"%.*s\"}",
                 k, "xyz");

        for (pad = 5900; pad < 6200; pad++) {
            snprintf(p, TOKBUF, "{\"sub\":\"u\",\"pad\":\"%0*d\"}",
                     (int) pad, 0);
            mint(tok, UG_JWT_ALG_HS256, head, p);
            len = strlen(tok);

            if (len == UG_JWT_MAX_TOKEN) {
                break;
            }
        }
    }

    ck_assert_uint_eq(len, UG_JWT_MAX_TOKEN);
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_OK);

    /* one byte more is refused before any parsing */
    memset(tok, 'A', UG_JWT_MAX_TOKEN + 1);
    tok[UG_JWT_MAX_TOKEN + 1] = '\0';
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_TOO_LARGE);

    snprintf(p, TOKBUF, "{\"sub\":\"u\",\"pad\":\"%07000d\"}", 0);
    mint(tok, UG_JWT_ALG_HS256, NULL, p);
    ck_assert_uint_gt(strlen(tok), UG_JWT_MAX_TOKEN);
    ASSERT_RC(verify(keys, &pol, tok, NOW, &c), UG_JWT_TOO_LARGE);

    free(tok);
    free(p);
    ug_jwt_keys_free(keys);
}
END_TEST


static void
nested(char *out, int depth, const char *prefix)
{
    int  i;

    strcpy(out, prefix);

    for (i = 0; i < depth; i++) {
        strcat(out, i % 2 ? "[" : "{\"a\":");
    }

    strcat(out, "1");

    for (i = depth - 1; i >= 0; i--) {
        strcat(out, i % 2 ? "]" : "}");
    }
}


START_TEST(test_nesting_limit)
{
    char              tok[TOKBUF], p[1024], inner[512];
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    /* the payload object itself is level 1 */
    nested(inner, 31, "");
    snprintf(p, sizeof(p), "{\"sub\":\"u\",\"x\":%s}", inner);
    mint(tok, UG_JWT_ALG_HS256, NULL, p);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    nested(inner, 32, "");
    snprintf(p, sizeof(p), "{\"sub\":\"u\",\"x\":%s}", inner);
    mint(tok, UG_JWT_ALG_HS256, NULL, p);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_MALFORMED);
    ck_assert_str_eq(detail_of(keys, &pol, tok, NOW),
                     "malformed token: payload nests deeper than 32");

    /* brackets inside strings do not count */
    snprintf(p, sizeof(p), "{\"sub\":\"u\",\"x\":\"[[[[[[[[[[[[[[[[[[[[[[["
             "[[[[[[[[[[[[[[[[[[\\\"{{{{\"}");
    mint(tok, UG_JWT_ALG_HS256, NULL, p);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    /* in the header too */
    nested(inner, 32, "");
    snprintf(p, sizeof(p), "{\"alg\":\"HS256\",\"x\":%s}", inner);
    mint(tok, UG_JWT_ALG_HS256, p, good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_MALFORMED);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_header_not_object)
{
    static const char  *heads[] = {
        "[\"alg\",\"HS256\"]", "\"HS256\"", "1", "null", "",
        "{\"alg\":\"HS256\"", "{\"alg\":\"HS256\"} x",
        "{\"alg\":\"HS256\",\"alg\":\"HS256\"}",
        "{\"alg\":\"HS256\",\"alg\":\"none\"}", "{\"alg\":256}", "{}",
        "{\"typ\":\"JWT\"}"
    };

    size_t            i;
    char              tok[TOKBUF];
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        mint(tok, UG_JWT_ALG_HS256, heads[i], good_payload());
        ck_assert_msg(verify(keys, &pol, tok, NOW, NULL) == UG_JWT_MALFORMED,
                      "header %s", heads[i]);
    }

    mint(tok, UG_JWT_ALG_HS256, "[]", good_payload());
    ck_assert_str_eq(detail_of(keys, &pol, tok, NOW),
                     "malformed token: header is not a JSON object");

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_payload_not_object)
{
    static const char  *payloads[] = {
        "[]", "\"user\"", "42", "null", "", "{\"sub\":\"u\"",
        "{\"sub\":\"u\",\"sub\":\"admin\"}", "{\"sub\":\"\\u0000\"}"
    };

    size_t            i;
    char              tok[TOKBUF];
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    for (i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        mint(tok, UG_JWT_ALG_HS256, NULL, payloads[i]);
        ck_assert_msg(verify(keys, &pol, tok, NOW, NULL) == UG_JWT_MALFORMED,
                      "payload %s", payloads[i]);
    }

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_invalid_base64url)
{
    char              tok[TOKBUF], bad[TOKBUF + 64], *p;
    size_t            n;
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    mint(tok, UG_JWT_ALG_HS256, NULL, good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    /* standard-alphabet characters in each segment */
    for (n = 0; n < 3; n++) {
        strcpy(bad, tok);
        p = bad;

        if (n > 0) {
            p = strchr(p, '.') + 1;
        }

        if (n > 1) {
            p = strchr(p, '.') + 1;
        }

        p[1] = '+';
        ck_assert_msg(verify(keys, &pol, bad, NOW, NULL) == UG_JWT_MALFORMED,
                      "segment %zu", n);
        p[1] = '/';
        ASSERT_RC(verify(keys, &pol, bad, NOW, NULL), UG_JWT_MALFORMED);
        p[1] = ' ';
        ASSERT_RC(verify(keys, &pol, bad, NOW, NULL), UG_JWT_MALFORMED);
    }

    /* padding: HS256 is 32 bytes, 43 characters, "=" would follow */
    snprintf(bad, sizeof(bad), "%s=", tok);
    ASSERT_RC(verify(keys, &pol, bad, NOW, NULL), UG_JWT_MALFORMED);
    ck_assert_str_eq(detail_of(keys, &pol, bad, NOW),
                     "malformed token: signature is not base64url");

    /* a non-canonical last character: same bytes, other spelling */
    strcpy(bad, tok);
    p = bad + strlen(bad) - 1;
    *p = (char) (*p == 'A' ? 'B' : *p + 1);
    ASSERT_RC(verify(keys, &pol, bad, NOW, NULL), UG_JWT_MALFORMED);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_segment_count)
{
    char              tok[TOKBUF], bad[TOKBUF + 64], *p;
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    keys = std_keys();
    ug_jwt_policy_init(&pol, keys);

    mint(tok, UG_JWT_ALG_ES256, NULL, good_payload());

    /* two segments */
    strcpy(bad, tok);
    *strrchr(bad, '.') = '\0';
    ASSERT_RC(verify(keys, &pol, bad, NOW, NULL), UG_JWT_MALFORMED);
    ck_assert_str_eq(detail_of(keys, &pol, bad, NOW),
                     "malformed token: not three dot-separated parts");

    /* four, with the real signature in either place */
    snprintf(bad, sizeof(bad), "%s.AAAA", tok);
    ASSERT_RC(verify(keys, &pol, bad, NOW, NULL), UG_JWT_MALFORMED);

    strcpy(bad, tok);
    p = strrchr(bad, '.');
    memmove(p + 5, p, strlen(p) + 1);
    memcpy(p, ".AAAA", 5);
    ASSERT_RC(verify(keys, &pol, bad, NOW, NULL), UG_JWT_MALFORMED);

    /* five, like a JWE */
    snprintf(bad, sizeof(bad), "%s.AAAA.AAAA", tok);
    ASSERT_RC(verify(keys, &pol, bad, NOW, NULL), UG_JWT_MALFORMED);

    /* one */
    strcpy(bad, tok);
    *strchr(bad, '.') = '\0';
    ASSERT_RC(verify(keys, &pol, bad, NOW, NULL), UG_JWT_MALFORMED);

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


/* key files */


START_TEST(test_keys_pem)
{
    char              pem[3][4096], text[TOKBUF], tok[TOKBUF];
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    pem_of(pem[0], sizeof(pem[0]), k_rsa);
    pem_of(pem[1], sizeof(pem[1]), k_ec384);
    pem_of(pem[2], sizeof(pem[2]), k_ed);

    snprintf(text, sizeof(text), "# gate keys\n%s\n%s%s", pem[0], pem[1],
             pem[2]);

    keys = keys_from(text);
    ck_assert_uint_eq(ug_jwt_keys_count(keys), 3);
    ug_jwt_policy_init(&pol, keys);
    ck_assert_uint_eq(pol.algs, UG_JWT_ALG_RSA | UG_JWT_ALG_ES384
                                | UG_JWT_ALG_EDDSA);

    /* a PEM key has no kid, so it serves tokens with any kid */
    mint(tok, UG_JWT_ALG_PS384, "{\"alg\":\"PS384\",\"kid\":\"ins_2x\"}",
         good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    mint(tok, UG_JWT_ALG_ES384, NULL, good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    mint(tok, UG_JWT_ALG_EDDSA, NULL, good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    mint(tok, UG_JWT_ALG_ES256, NULL, good_payload());
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_ALG_NOT_ALLOWED);

    ug_jwt_keys_free(keys);

    pem_of(pem[0], sizeof(pem[0]), k_ec256);
    keys = keys_from(pem[0]);
    ug_jwt_policy_init(&pol, keys);
    ck_assert_uint_eq(pol.algs, UG_JWT_ALG_ES256);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);
    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_keys_pem_unsupported)
{
    char       pem[8192];
    EVP_PKEY  *pk;

    pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
    ck_assert_ptr_nonnull(pk);
    pem_of(pem, sizeof(pem), pk);
    keys_error(pem, "PEM key 1: unsupported key type");
    EVP_PKEY_free(pk);

    pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    ck_assert_ptr_nonnull(pk);
    pem_of(pem, sizeof(pem), pk);
    keys_error(pem, "PEM key 1: EC key on unsupported curve \"secp521r1\"");
    EVP_PKEY_free(pk);

    /* a block cut short */
    pem_of(pem, sizeof(pem), k_ed);
    *strstr(pem, "-----END") = '\0';
    keys_error(pem, "PEM key 1: no \"-----END PUBLIC KEY-----\"");

    /* the second of two blocks is refused: neither is kept */
    pem_of(pem, sizeof(pem), k_ed);
    strcat(pem, "-----BEGIN CERTIFICATE-----\nAAAA\n"
           "-----END CERTIFICATE-----\n");
    keys_error(pem, "PEM key 2: \"CERTIFICATE\" is not accepted");
}
END_TEST


START_TEST(test_keys_use_and_kinds)
{
    char              text[TOKBUF], a[4096], b[4096];
    ug_jwt_keys_t    *keys;

    /* an encryption key beside a signing key is skipped */
    jwk_of(a, sizeof(a), k_rsa, "enc1", NULL);
    jwk_of(b, sizeof(b), k_ec256, "sig1", NULL);
    a[strlen(a) - 1] = '\0';
    snprintf(text, sizeof(text), "{\"keys\":[%s,\"use\":\"enc\"},%s]}", a, b);

    keys = keys_from(text);
    ck_assert_uint_eq(ug_jwt_keys_count(keys), 1);
    ck_assert_uint_eq(ug_jwt_keys_algs(keys), UG_JWT_ALG_ES256);
    ug_jwt_keys_free(keys);

    snprintf(text, sizeof(text), "{\"keys\":[%s,\"use\":\"enc\"}]}", a);
    keys_error(text, "no key in \"keys\" has \"use\" \"sig\"");

    /* adding twice accumulates */
    keys = keys_from(b);
    jwk_of(a, sizeof(a), k_ed, NULL, NULL);
    ck_assert_int_eq(ug_jwt_keys_add_text(keys, a, strlen(a), NULL, 0), 0);
    ck_assert_uint_eq(ug_jwt_keys_count(keys), 2);
    ck_assert_uint_eq(ug_jwt_keys_algs(keys),
                      UG_JWT_ALG_ES256 | UG_JWT_ALG_EDDSA);
    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_keys_errors)
{
    char            text[TOKBUF], a[4096], pem[8192];
    size_t          i;
    BIO            *bio;
    char           *p;
    long            n;
    ug_jwt_keys_t  *keys;

    keys_error("{\"keys\":[", "invalid JSON");
    keys_error("{\"keys\":[{\"kty\":\"RSA\",\"kty\":\"EC\"}]}", "invalid JSON");
    keys_error("{\"keys\":[{\"kty\":\"XYZ\"}]}",
               "key 1: unsupported kty \"XYZ\"");
    keys_error("{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\"}]}",
               "key 1: no \"n\"");
    keys_error("{\"kty\":\"RSA\",\"n\":\"AQAB\"}", "key: no \"e\"");
    keys_error("{\"keys\":[{\"n\":\"x\"}]}", "key 1: no \"kty\"");
    keys_error("{\"keys\":{}}", "\"keys\" is not an array");
    keys_error("{\"keys\":[]}", "\"keys\" is empty");
    keys_error("{\"keys\":[7]}", "key 1: not a JSON object");
    keys_error("{\"kty\":1}", "key: \"kty\" is not a string");
    keys_error("{\"kty\":\"OKP\",\"use\":[\"sig\"]}",
               "key: \"use\" is not a string");
    keys_error("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":7}",
               "key: \"x\" is not a string");
    keys_error("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"\"}",
               "key: \"x\" is empty");
    keys_error("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\","
               "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
               "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
               "key: \"y\" is too long");
    keys_error("{\"kty\":\"EC\",\"x\":\"AAAA\"}",
               "key: EC key without a \"crv\" string");
    keys_error("{\"kty\":\"OKP\",\"crv\":null}",
               "key: OKP key without a \"crv\" string");
    keys_error("[]", "neither JWKS JSON nor a PEM public key");
    keys_error("", "neither JWKS JSON nor a PEM public key");
    keys_error("ssh-rsa AAAAB3Nza", "neither JWKS JSON nor a PEM public key");
    keys_error("{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2hvcnQ\"}]}",
               "key 1: secret \"k\" is 5 bytes long");
    keys_error("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"AA\"}]}",
               "key 1: OKP key with unsupported crv \"Ed448\"");
    keys_error("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
               "\"x\":\"AAAA\"}]}", "key 1: Ed25519 \"x\" must be 32 bytes");
    keys_error("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB=\",\"e\":\"AQAB\"}]}",
               "key 1: \"n\" is not base64url");

    /* the brief's example: the second key's curve */
    jwk_of(a, sizeof(a), k_rsa, "r1", NULL);
    snprintf(text, sizeof(text), "{\"keys\":[%s,{\"kty\":\"EC\","
             "\"crv\":\"P-521\",\"x\":\"AA\",\"y\":\"AA\"}]}", a);
    keys_error(text, "key 2: EC key with unsupported crv \"P-521\"");

    /* all or nothing: the good first key is not kept either */
    keys = ug_jwt_keys_new();
    ck_assert_int_eq(ug_jwt_keys_add_text(keys, text, strlen(text), NULL, 0),
                     -1);
    ck_assert_uint_eq(ug_jwt_keys_count(keys), 0);
    ug_jwt_keys_free(keys);

    /* EC coordinates of the wrong size, and a point off the curve */
    keys_error("{\"kty\":\"EC\",\"crv\":\"P-256\","
               "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
               "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0A\"}",
               "must be 32 bytes");
    keys_error("{\"kty\":\"EC\",\"crv\":\"P-256\","
               "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
               "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a4\"}",
               "key: EC point is not on P-256");

    /* kid and alg must be strings; kids are at most 128 bytes */
    jwk_of(a, sizeof(a), k_ed, NULL, NULL);
    snprintf(text, sizeof(text), "{\"kid\":5,%s", a + 1);
    keys_error(text, "key: \"kid\" is not a string");
    snprintf(text, sizeof(text), "{\"alg\":[],%s", a + 1);
    keys_error(text, "key: \"alg\" is not a string");
    snprintf(text, sizeof(text), "{\"kid\":\"%0129d\",%s", 0, a + 1);
    keys_error(text, "key: \"kid\" is longer than 128 bytes");
    snprintf(text, sizeof(text), "{\"kid\":\"%0128d\",%s", 0, a + 1);
    keys = keys_from(text);
    ug_jwt_keys_free(keys);

    /* an RSA key with an even modulus or exponent is no key */
    keys_error("{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\""
               "wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
               "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
               "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
               "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
               "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
               "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
               "key: not a valid RSA public key");

    /* an alg that does not fit the key type */
    jwk_of(a, sizeof(a), k_rsa, NULL, "ES256");
    keys_error(a, "key: alg \"ES256\" does not fit this key");
    jwk_of(a, sizeof(a), k_rsa, NULL, "RSA-OAEP");
    keys_error(a, "key: unsupported alg \"RSA-OAEP\"");
    jwk_of(a, sizeof(a), k_rsa, NULL, "none");
    keys_error(a, "key: unsupported alg \"none\"");

    /* weak RSA */
    p = NULL;
    {
        EVP_PKEY  *weak;

        weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 1024);
        ck_assert_ptr_nonnull(weak);
        jwk_of(a, sizeof(a), weak, NULL, NULL);
        keys_error(a, "key: RSA modulus of 1024 bits");
        pem_of(pem, sizeof(pem), weak);
        keys_error(pem, "PEM key 1: RSA modulus of 1024 bits");

        /* a private key is not what the gate should hold */
        bio = BIO_new(BIO_s_mem());
        ck_assert(PEM_write_bio_PrivateKey(bio, weak, NULL, NULL, 0, NULL,
                                           NULL) == 1);
        n = BIO_get_mem_data(bio, &p);
        ck_assert((size_t) n < sizeof(pem));
        memcpy(pem, p, (size_t) n);
        pem[n] = '\0';
        BIO_free(bio);
        keys_error(pem, "PEM key 1: \"PRIVATE KEY\" is not accepted");

        EVP_PKEY_free(weak);
    }

    /* damaged PEM */
    pem_of(pem, sizeof(pem), k_ec256);
    pem[40] = '*';
    keys_error(pem, "PEM key 1: not a valid public key");

    /* deep JSON */
    strcpy(text, "{\"keys\":");
    for (i = 0; i < 40; i++) {
        strcat(text, "[");
    }
    keys_error(text, "nests deeper than 32");

    /* unprintable values are not copied into the message */
    keys_error("{\"kty\":\"\\u0007bell\\n\"}", "unsupported kty \"?bell?\"");

    /* secrets */
    keys = ug_jwt_keys_new();
    ck_assert_int_eq(ug_jwt_keys_add_secret(keys, hs_secret, 31, text, 100),
                     -1);
    ck_assert_ptr_nonnull(strstr(text, "at least 32"));
    ck_assert_int_eq(ug_jwt_keys_add_secret(keys, hs_secret, 32, NULL, 0), 0);
    ck_assert_uint_eq(ug_jwt_keys_algs(keys), UG_JWT_ALG_HS256);
    ck_assert_int_eq(ug_jwt_keys_add_secret(keys, hs_secret, 48, NULL, 0), 0);
    ck_assert_uint_eq(ug_jwt_keys_algs(keys),
                      UG_JWT_ALG_HS256 | UG_JWT_ALG_HS384);
    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_short_secret_not_for_hs512)
{
    char              tok[TOKBUF];
    ug_jwt_keys_t    *keys;
    ug_jwt_policy_t   pol;

    keys = ug_jwt_keys_new();
    ck_assert_int_eq(ug_jwt_keys_add_secret(keys, hs_secret, 40, NULL, 0), 0);
    ug_jwt_policy_init(&pol, keys);
    pol.algs = UG_JWT_ALG_ALL;

    mint_with(tok, UG_JWT_ALG_HS256, NULL, hs_secret, 40, NULL,
              good_payload(), 0);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_OK);

    /* RFC 7518 3.2: a 40-byte key is too short for HS384 and HS512 */
    mint_with(tok, UG_JWT_ALG_HS512, NULL, hs_secret, 40, NULL,
              good_payload(), 0);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_UNKNOWN_KEY);

    /* a wrong secret */
    mint_with(tok, UG_JWT_ALG_HS256, NULL, hs_secret + 1, 40, NULL,
              good_payload(), 0);
    ASSERT_RC(verify(keys, &pol, tok, NOW, NULL), UG_JWT_BAD_SIGNATURE);

    ug_jwt_keys_free(keys);
}
END_TEST


START_TEST(test_rc_names)
{
    ck_assert_str_eq(ug_jwt_rc_name(UG_JWT_OK), "ok");
    ck_assert_str_eq(ug_jwt_rc_name(UG_JWT_EXPIRED), "expired");
    ck_assert_str_eq(ug_jwt_rc_name(UG_JWT_BAD_SIGNATURE), "bad_signature");
    ck_assert_str_eq(ug_jwt_rc_name(UG_JWT_UNKNOWN_KEY), "unknown_key");
    ck_assert_str_eq(ug_jwt_rc_name((ug_jwt_rc_t) 99), "internal");
}
END_TEST


START_TEST(test_rc_names_distinct)
{
    int  a, b;

    /* $usage_gate_jwt_error tells every reason apart */
    for (a = UG_JWT_OK; a <= UG_JWT_INTERNAL; a++) {
        for (b = a + 1; b <= UG_JWT_INTERNAL; b++) {
            ck_assert_str_ne(ug_jwt_rc_name((ug_jwt_rc_t) a),
                             ug_jwt_rc_name((ug_jwt_rc_t) b));
        }
    }
}
END_TEST


static Suite *
jwt_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("jwt");

    tc = tcase_create("rfc");
    tcase_add_test(tc, test_rfc7515_a1_hs256);
    tcase_add_test(tc, test_rfc7515_a2_rs256);
    tcase_add_test(tc, test_rfc7515_a3_es256);
    tcase_add_test(tc, test_rfc8037_a4_ed25519);
    suite_add_tcase(s, tc);

    tc = tcase_create("algs");
    tcase_add_loop_test(tc, test_every_alg_accepted, 0,
                        sizeof(all_algs) / sizeof(all_algs[0]));
    tcase_add_test(tc, test_alg_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("reject");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_alg_none_any_spelling);
    tcase_add_test(tc, test_alg_not_allowed);
    tcase_add_test(tc, test_crit_rejected);
    tcase_add_test(tc, test_tampered_payload);
    tcase_add_test(tc, test_stripped_signature);
    tcase_add_test(tc, test_expiry_and_leeway);
    tcase_add_test(tc, test_exp_must_be_number);
    tcase_add_test(tc, test_nbf_and_leeway);
    tcase_add_test(tc, test_issuer);
    tcase_add_test(tc, test_audience_and_azp);
    tcase_add_test(tc, test_kid_selects_key);
    tcase_add_test(tc, test_unknown_kid);
    tcase_add_test(tc, test_other_key_same_kid);
    tcase_add_test(tc, test_hs256_with_rsa_public_key);
    tcase_add_test(tc, test_es256_der_signature);
    tcase_add_test(tc, test_curve_must_fit);
    tcase_add_test(tc, test_jwk_alg_restricts);
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_size_limit);
    tcase_add_test(tc, test_nesting_limit);
    tcase_add_test(tc, test_header_not_object);
    tcase_add_test(tc, test_payload_not_object);
    tcase_add_test(tc, test_invalid_base64url);
    tcase_add_test(tc, test_segment_count);
    suite_add_tcase(s, tc);

    tc = tcase_create("claims");
    tcase_add_test(tc, test_subject);
    tcase_add_test(tc, test_plan_and_org_claims);
    tcase_add_test(tc, test_claims_cleared_on_failure);
    suite_add_tcase(s, tc);

    tc = tcase_create("keys");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_keys_pem);
    tcase_add_test(tc, test_keys_pem_unsupported);
    tcase_add_test(tc, test_keys_use_and_kinds);
    tcase_add_test(tc, test_keys_errors);
    tcase_add_test(tc, test_short_secret_not_for_hs512);
    tcase_add_test(tc, test_rc_names);
    tcase_add_test(tc, test_rc_names_distinct);
    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    make_keys();

    return ug_check_run(jwt_suite());
}
