/*
 * The JWT verifier (ug_jwt.c): the published examples (RFC 7515 appendix
 * A, RFC 8037 appendix A.4), every algorithm with keys made here, and one
 * test per rejection rule of the token and its signature.
 *
 * Tokens that need fresh signatures are signed here with OpenSSL; the
 * verification is always the product's (ug_jwt_verify).
 */

#include "check_jwt.h"


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

    tc = tcase_create("names");
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
