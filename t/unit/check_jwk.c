/*
 * Key sets (ug_jwk.c): PEM public keys, JWKS and single JWKs of every
 * kind, "use" and "alg", secrets, and one test per refusal message.
 */

#include "check_jwt.h"


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


static Suite *
jwk_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("jwk");

    tc = tcase_create("keys");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_keys_pem);
    tcase_add_test(tc, test_keys_pem_unsupported);
    tcase_add_test(tc, test_keys_use_and_kinds);
    tcase_add_test(tc, test_keys_errors);
    tcase_add_test(tc, test_short_secret_not_for_hs512);
    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    make_keys();

    return ug_check_run(jwk_suite());
}
